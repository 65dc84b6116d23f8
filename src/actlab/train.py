"""The vectorised trainer: every member of an :class:`EnsembleMLP` trained in one loop.

No file I/O: :func:`train` returns a :class:`TrainResult`. Probes run as scheduled callbacks
that see the step's loss and gradient before the update and return tensors to record. Each
optimiser step counts one unit of :mod:`actlab.progress` (a no-op unless a reporter is open).

Divergence isolation: at every step a member whose loss is non-finite or above
``TrainConfig.max_loss``, or whose gradient is non-finite, is frozen before the update (its
parameters keep their last finite values) and its ``diverged_step`` is set. Members never interact:
every other member's numbers are bit-identical to the same run in which that member did not
diverge. (Ensembles of different sizes agree to float rounding only: BLAS may sum a batched
product in another order for another batch count.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from actlab import progress
from actlab.models import EnsembleMLP, output_loss_and_grad
from actlab.optim import EnsembleOptimizer, OptimizerConfig
from actlab.seeding import derive_seed

__all__ = ["TrainConfig", "Callback", "StepState", "TrainResult", "train", "batch_order"]

LOSSES = ("mse", "cross_entropy")
BACKWARDS = ("auto", "manual", "autograd")


@dataclass(frozen=True)
class TrainConfig:
    """How to train (what to train is the model; what on is the data)."""

    epochs: int = 100
    """Passes over the training set (>= 1)."""
    batch_size: int | None = None
    """Minibatch size; ``None`` trains full batch (one step per epoch)."""
    lr: float = 1e-3
    """Learning rate of every member, unless ``train(lr=...)`` gives one per member."""
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    """Optimiser and its hyper-parameters."""
    loss: str = "mse"
    """``mse`` (regression, targets ``(n, out)``) or ``cross_entropy`` (class indices ``(n,)``)."""
    max_loss: float = 1e6
    """A member whose loss exceeds this (or is non-finite) is frozen as diverged."""
    backward: str = "auto"
    """``manual`` (exact analytic backward, fast), ``autograd``, or ``auto`` (= manual)."""

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if self.batch_size is not None and (
            not isinstance(self.batch_size, int) or self.batch_size < 1
        ):
            raise ValueError(f"batch_size must be None or an integer >= 1, got {self.batch_size!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be finite and > 0, got {self.lr!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not self.max_loss > 0:
            raise ValueError(f"max_loss must be > 0, got {self.max_loss!r}")
        if self.backward not in BACKWARDS:
            raise ValueError(f"backward must be one of {BACKWARDS}, got {self.backward!r}")


@dataclass
class StepState:
    """What a callback sees at a scheduled step, after the backward pass, before the update.

    Attributes:
        step: Index of the update about to be made (0 = the first).
        epoch: Epoch of this step (0-based).
        model: The ensemble (parameters as before this update).
        x: Inputs of this step, ``(B, in)`` or ``(E, B, in)``.
        y: Targets of this step.
        loss: Per-member loss ``(E,)``.
        grad: Flat gradient ``(N,)``; ``model.weight(l, grad)`` is layer l's ``(E, out, in)``.
        active: Members still training ``(E,)`` (False once diverged or stopped).
    """

    step: int
    epoch: int
    model: EnsembleMLP
    x: Tensor
    y: Tensor
    loss: Tensor
    grad: Tensor
    active: Tensor
    stop_requests: Tensor | None = None

    def stop(self, members: Tensor) -> None:
        """Stop training ``members`` (bool ``(E,)``, e.g. converged ones) before this update:
        their parameters stay as they are now, their ``stopped_step`` is this step, and their
        recorded loss stays finite (unlike a diverged member's)."""
        members = torch.as_tensor(members, dtype=torch.bool).reshape(-1)
        if members.numel() != self.active.numel():
            raise ValueError(f"stop needs a mask of {self.active.numel()} members")
        self.stop_requests = members if self.stop_requests is None else self.stop_requests | members


@dataclass(frozen=True)
class Callback:
    """``fn(state) -> {name: tensor with leading axis E}`` run at scheduled steps.

    Scheduled at every step in ``at`` and every ``every``-th step (0, every, 2*every, ...).
    """

    fn: Callable[[StepState], dict[str, Tensor] | None]
    at: Collection[int] = ()
    every: int | None = None

    def due(self, step: int) -> bool:
        return step in self.at or (self.every is not None and step % self.every == 0)


@dataclass
class TrainResult:
    """What training produced; every tensor here is on the CPU, whatever the model's device
    (the optimiser's state stays with the parameters).

    Attributes:
        loss: Training loss per step and member ``(steps, E)``; NaN after a member diverged.
        diverged_step: Step at which each member diverged, ``(E,)`` long; -1 if it never did.
            A member that diverged in an earlier call (training went on with its optimiser) is
            diverged from step 0 of this one, its loss NaN throughout.
        steps_per_epoch: Updates per epoch.
        records: Callback outputs: name -> (steps at which recorded, values stacked
            ``(n_records, E, ...)``).
        stopped_step: Step before which a callback stopped each member (``StepState.stop``),
            ``(E,)`` long; -1 if none did; 0 for a member stopped in an earlier call.
        optimizer: The optimiser with its state after the last step; pass it to another
            :func:`train` call to go on training with the state kept.
    """

    loss: Tensor
    diverged_step: Tensor
    steps_per_epoch: int
    records: dict[str, tuple[list[int], Tensor]]
    stopped_step: Tensor
    optimizer: EnsembleOptimizer

    @property
    def epoch_loss(self) -> Tensor:
        """Mean training loss per epoch ``(epochs, E)``."""
        return self.loss.view(-1, self.steps_per_epoch, self.loss.shape[1]).mean(1)


def batch_order(seed: int, n: int, epoch: int) -> Tensor:
    """The permutation of ``n`` training points a member with ``seed`` uses in ``epoch``."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "batches", epoch))
    return torch.randperm(n, generator=gen)


def _take(data: Tensor, idx: Tensor, shared: bool) -> Tensor:
    """Rows ``idx`` ``(E, b)`` of ``data`` ``(n, ...)`` (shared) or ``(E, n, ...)``."""
    if shared:
        return data[idx]
    return data[torch.arange(idx.shape[0], device=idx.device)[:, None], idx]


def train(
    model: EnsembleMLP,
    x: Tensor,
    y: Tensor,
    config: TrainConfig,
    *,
    lr: Sequence[float] | Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    optimizer: EnsembleOptimizer | None = None,
    first_epoch: int = 0,
) -> TrainResult:
    """Train every member of ``model`` on ``(x, y)`` in place.

    Args:
        model: The ensemble; its parameters are updated in place.
        x: Inputs ``(n, in)`` shared by all members, or ``(E, n, in)``.
        y: Targets ``(n, out)`` / ``(E, n, out)`` for ``mse``; class indices ``(n,)`` /
            ``(E, n)`` for ``cross_entropy``.
        config: Training settings.
        lr: One learning rate per member ``(E,)``; default ``config.lr`` for all.
        callbacks: Probes run at their scheduled steps.
        optimizer: Go on with this optimiser (``TrainResult.optimizer`` of an earlier call on
            the same ``model.flat``): its moments, step count, rates and frozen members are kept
            (``config.optimizer``, ``config.lr`` and ``lr`` must then be left at their defaults:
            a value there would be silently ignored). Default: a fresh one.
        first_epoch: Number of the first epoch of this call: it sets the minibatch order
            (:func:`batch_order`) and ``StepState.epoch``, so that a run continued with
            ``optimizer=`` and ``first_epoch=`` epochs already done draws the batches the
            uninterrupted run would. Steps (``loss`` rows, ``StepState.step``, callbacks'
            schedules) still count from 0 in every call.

    Returns:
        The loss per step, the divergence steps and the callbacks' records.
    """
    E = model.E
    if x.device != model.flat.device or y.device != model.flat.device:
        raise ValueError(
            f"x and y must be on the model's device ({model.flat.device}), "
            f"got {x.device} and {y.device}"
        )
    shared = x.dim() == 2
    n = x.shape[0] if shared else x.shape[1]
    if not shared and x.shape[0] != E:
        raise ValueError(f"x must be (n, in) or (E={E}, n, in), got {tuple(x.shape)}")
    if (y.shape[0] if shared else y.shape[1]) != n:
        raise ValueError(
            f"x and y hold different numbers of points: {tuple(x.shape)}, {tuple(y.shape)}"
        )
    if optimizer is not None:
        if optimizer.param is not model.flat:
            raise ValueError("optimizer belongs to another parameter buffer than model.flat")
        default_lr = TrainConfig.__dataclass_fields__["lr"].default
        if lr is not None or config.lr != default_lr or config.optimizer != OptimizerConfig():
            raise ValueError("with optimizer=, the rates and settings are the optimizer's own")
        opt = optimizer
    else:
        lr_t = (
            torch.full((E,), config.lr, dtype=torch.float64)  # float32 would round the rate
            if lr is None
            else torch.as_tensor(lr, dtype=torch.float64).reshape(-1)
        )
        if lr_t.numel() != E:
            raise ValueError(f"lr needs one value per member (E={E}), got {lr_t.numel()}")
        opt = EnsembleOptimizer(model.flat, lr_t, model.param_blocks(), config.optimizer)

    if isinstance(first_epoch, bool) or not isinstance(first_epoch, int) or first_epoch < 0:
        raise ValueError(f"first_epoch must be an integer >= 0, got {first_epoch!r}")
    batch = n if config.batch_size is None else min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / batch)
    total = config.epochs * steps_per_epoch
    losses = torch.empty(total, E, dtype=model.flat.dtype, device=model.flat.device)
    diverged = torch.full((E,), -1, dtype=torch.long)
    stopped = torch.full((E,), -1, dtype=torch.long)
    earlier = opt.diverged.clone()  # diverged in an earlier call with this optimiser
    diverged[earlier] = 0
    stopped[~opt.active.cpu() & ~earlier] = 0
    records: dict[str, tuple[list[int], list[Tensor]]] = {}
    grad = torch.zeros_like(model.flat, requires_grad=False)
    step = 0
    for epoch in range(first_epoch, first_epoch + config.epochs):
        if batch < n:
            order = torch.stack([batch_order(s, n, epoch) for s in model.seeds]).to(x.device)
        for start in range(0, n, batch):
            if batch < n:
                idx = order[:, start : start + batch]
                xb, yb = _take(x, idx, shared), _take(y, idx, shared)
            else:
                xb, yb = x, y
            loss = _loss_and_grad(model, xb, yb, config, grad)
            bad = ~torch.isfinite(loss) | (loss > config.max_loss)
            if not torch.isfinite(grad.sum()):  # a sum is ~30x cheaper than isfinite().all()
                bad |= model.nonfinite_members(grad)
            newly = bad & opt.active
            if newly.any():
                newly = newly.cpu()  # the bookkeeping is on the CPU (a GPU mask cannot index it)
                diverged[newly] = step
                opt.diverged |= newly
                opt.freeze(newly)
            recorded = loss.detach().clone()
            recorded[((diverged >= 0) & (diverged != step)) | earlier] = math.nan
            losses[step] = recorded
            for cb in callbacks:
                if cb.due(step):
                    state = StepState(step, epoch, model, xb, yb, loss, grad, opt.active.clone())
                    for key, value in (cb.fn(state) or {}).items():
                        steps, values = records.setdefault(key, ([], []))
                        steps.append(step)
                        values.append(value.detach().clone())
                    if state.stop_requests is not None:
                        newly = state.stop_requests.cpu() & opt.active.cpu()
                        stopped[newly] = step
                        opt.freeze(newly)
            opt.step(grad)
            step += 1
            progress.advance()
    model.release_buffers()  # the tile plans hold views of this call's gradient buffer
    stacked = {k: (s, torch.stack(v).cpu()) for k, (s, v) in records.items()}
    return TrainResult(losses.cpu(), diverged, steps_per_epoch, stacked, stopped, opt)


def _loss_and_grad(
    model: EnsembleMLP, x: Tensor, y: Tensor, config: TrainConfig, grad: Tensor
) -> Tensor:
    if config.backward in ("auto", "manual"):
        return model.loss_and_grad(x, y, config.loss, grad)
    model.flat.grad = None
    with torch.enable_grad():
        out = model(x)
        loss, _ = output_loss_and_grad(out, y, config.loss)
        loss.sum().backward()
    grad.copy_(model.flat.grad)
    return loss.detach()
