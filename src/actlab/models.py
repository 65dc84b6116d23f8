"""Models: an ensemble of E independent MLPs evaluated in one vectorised pass.

Shapes, ensemble axis first:

* weights of layer l: ``(E, out, in)`` (the ``nn.Linear`` convention), biases ``(E, out)``;
* inputs ``(B, in)`` shared by every member, or ``(E, B, in)`` one batch per member;
* pre-activations ``z`` and activations ``h`` of a hidden layer: ``(E, B, width)``.

All parameters live in one flat buffer (``EnsembleMLP.flat``), layer after layer, so that an
optimiser updates every member with a handful of element-wise kernels; ``weight(l)`` and
``bias(l)`` are views into it. Members may use different activations: the members are grouped
into runs of consecutive members sharing an activation, and each run is one slice, so there is
no per-member Python loop (put members that share an activation next to each other).

Member ``m`` is initialised from its own ``torch.Generator`` seeded with ``seeds[m]``: its initial
weights depend only on its seed, the architecture and the scheme, never on the other members.
Members with equal seeds start from identical weights even when their activations differ.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from actlab.activations import Activation, get_activation

__all__ = ["EnsembleMLP", "INIT_SCHEMES", "PLAIN_INITS", "ActivationRun", "TILE_BYTES"]

INIT_SCHEMES = ("torch", "xavier", "he", "mean_field")
PLAIN_INITS = INIT_SCHEMES[:3]
"""The schemes that need no parameter besides the layer sizes (an experiment's ``init`` field)."""

TILE_BYTES = 1 << 20
"""Target size of one layer's ``(tile, batch, width)`` tensor in :meth:`EnsembleMLP.loss_and_grad`:
small enough that a tile's tensors stay in a core's L2 cache between operations (measured on a
2-core Xeon with 2 MiB L2 per core, benchmarks/bench_ensemble.py)."""


@dataclass(frozen=True)
class ActivationRun:
    """Members ``start:stop`` share ``activation``."""

    start: int
    stop: int
    activation: Activation


def _runs(activations: Sequence[Activation]) -> tuple[ActivationRun, ...]:
    runs: list[ActivationRun] = []
    start = 0
    for m in range(1, len(activations) + 1):
        if m == len(activations) or activations[m] != activations[start]:
            runs.append(ActivationRun(start, m, activations[start]))
            start = m
    return tuple(runs)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(eq=False)
class _Tile:
    """Members ``start:stop`` of an ensemble: views of their parameters and gradients per layer
    (input side first) and their slices of the work buffers ``(stop - start, batch, width)``."""

    start: int
    stop: int
    runs: list[tuple[int, int, Activation]]
    """Activation runs within the tile, ``(a, b, activation)`` with ``a:b`` counted from
    ``start``."""
    weights: list[Tensor]
    weights_t: list[Tensor]
    biases: list[Tensor]
    grad_weights: list[Tensor]
    grad_biases: list[Tensor]
    act_params: list[Tensor]
    grad_act_params: list[Tensor]
    z: list[Tensor]
    h: list[Tensor]
    dh: list[Tensor]


class EnsembleMLP(nn.Module):
    """E independent MLPs ``in_features -> hidden[0] -> ... -> hidden[-1] -> out_features``.

    Hidden layer l computes ``h_l = phi_m(W_l h_{l-1} + b_l)`` for member m; the output layer is
    affine (no activation). With ``init="mean_field"`` the weights are
    ``W ~ N(0, sigma_w2 / fan_in)`` and biases ``b ~ N(0, sigma_b2)``.

    Args:
        in_features: Input dimension (>= 1).
        hidden: Widths of the hidden layers, input side first (at least one, each >= 1).
        out_features: Output dimension (>= 1).
        activations: One activation (name or object) for every member, or a sequence of E.
        seeds: One seed per member, or an int E meaning seeds ``0..E-1``. When ``activations``
            is a sequence and ``seeds`` is omitted, seeds are ``0..E-1``.
        init: ``"torch"`` (``nn.Linear``'s default: ``U(+-1/sqrt(fan_in))`` for W and b),
            ``"xavier"`` (``U(+-sqrt(6/(fan_in+fan_out)))``, b = 0), ``"he"``
            (``N(0, 2/fan_in)``, b = 0) or ``"mean_field"`` (needs ``sigma_w2``, ``sigma_b2``).
        sigma_w2: Weight variance times fan-in for ``"mean_field"``.
        sigma_b2: Bias variance for ``"mean_field"``.
        dtype: Parameter dtype.
        device: Parameter device.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activations: str | Activation | Sequence[str | Activation],
        seeds: int | Sequence[int] | None = None,
        *,
        init: str = "torch",
        sigma_w2: float | None = None,
        sigma_b2: float | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        _check_int("in_features", in_features, 1)
        _check_int("out_features", out_features, 1)
        if isinstance(hidden, int) or len(hidden) < 1:
            raise ValueError(
                f"hidden must list at least one layer width (depth >= 1), got {hidden!r}"
            )
        for i, width in enumerate(hidden):
            _check_int(f"hidden[{i}] (width of hidden layer {i + 1})", width, 1)
        if isinstance(activations, (str, Activation)):
            if seeds is None:
                raise ValueError("seeds is required when one activation is given for all members")
            if isinstance(seeds, int):
                _check_int("number of members E", seeds, 1)
                seeds = range(seeds)
            acts = [get_activation(activations)] * len(seeds)
        else:
            acts = [get_activation(a) for a in activations]
            seeds = range(len(acts)) if seeds is None else seeds
            if isinstance(seeds, int):
                seeds = range(seeds)
        seeds = [int(s) for s in seeds]
        _check_int("number of members E", len(acts), 1)
        if len(seeds) != len(acts):
            raise ValueError(
                f"got {len(acts)} activations but {len(seeds)} seeds; need one per member"
            )
        if init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {INIT_SCHEMES}, got {init!r}")
        if init == "mean_field":
            for key, value in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
                if value is None or not math.isfinite(value) or value < 0:
                    raise ValueError(
                        f"init='mean_field' needs {key} finite and >= 0, got {value!r}"
                    )

        self.sizes = (in_features, *hidden, out_features)
        self.activations = tuple(acts)
        self.runs = _runs(acts)
        self.init = init
        self.sigma_w2, self.sigma_b2 = sigma_w2, sigma_b2
        self.n_act_params = max(len(a.params) for a in acts)

        # Layout of the flat buffer: per layer W (E*out*in), b (E*out), then per hidden layer the
        # learnable activation parameters (E*K, K = most parameters any member's activation has).
        E, offsets, n = len(acts), [], 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            offsets.append((n, n + E * fan_out * fan_in))
            n += E * fan_out * (fan_in + 1)
        self._act_offset = n
        n += E * self.n_act_params * self.n_hidden
        self._offsets = tuple(offsets)
        self.flat = nn.Parameter(torch.zeros(n, dtype=dtype, device=device))
        self.init_from(seeds)

    def set_activations(self, activations: str | Activation | Sequence[str | Activation]) -> None:
        """Swap every member's activation in place (e.g. tanh -> ReLU mid-training): weights,
        the flat buffer and any optimiser on it are untouched. The new activations must need as
        many learnable parameters as the old ones (the layout of ``flat`` cannot change)."""
        if isinstance(activations, (str, Activation)):
            acts = [get_activation(activations)] * self.E
        else:
            acts = [get_activation(a) for a in activations]
        if len(acts) != self.E:
            raise ValueError(f"need one activation per member (E={self.E}), got {len(acts)}")
        if max(len(a.params) for a in acts) != self.n_act_params:
            raise ValueError(
                "the new activations have another number of learnable parameters "
                f"({max(len(a.params) for a in acts)}, not {self.n_act_params})"
            )
        self.activations = tuple(acts)
        self.runs = _runs(acts)

    def release_buffers(self) -> None:
        """Drop the cached tile plans of :meth:`loss_and_grad` (views of the last gradient
        buffers and the work buffers); the next call rebuilds them."""
        self.__dict__.pop("_plans", None)

    def _apply(self, fn, recurse=True):  # .to(), .double(), .cuda(): new parameter storage
        self.release_buffers()
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        """Pickled and deep-copied without the cached tile plans (views and work buffers)."""
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        return {k: v for k, v in state.items() if k != "_plans"}

    # ---------------------------------------------------------------- structure and views
    @property
    def E(self) -> int:
        """Number of members."""
        return len(self.activations)

    @property
    def n_layers(self) -> int:
        """Number of affine layers (hidden layers + the output layer)."""
        return len(self.sizes) - 1

    @property
    def n_hidden(self) -> int:
        """Number of hidden layers."""
        return len(self.sizes) - 2

    def weight(self, layer: int, flat: Tensor | None = None) -> Tensor:
        """Weights of affine layer ``layer`` (0 = nearest the input), shape ``(E, out, in)``;
        a view into ``flat`` (default: the parameter buffer)."""
        flat = self.flat if flat is None else flat
        start, stop = self._offsets[layer][0], self._offsets[layer][1]
        return flat[start:stop].view(self.E, self.sizes[layer + 1], self.sizes[layer])

    def bias(self, layer: int, flat: Tensor | None = None) -> Tensor:
        """Biases of affine layer ``layer``, shape ``(E, out)``; a view into ``flat``."""
        flat = self.flat if flat is None else flat
        start = self._offsets[layer][1]
        return flat[start : start + self.E * self.sizes[layer + 1]].view(
            self.E, self.sizes[layer + 1]
        )

    def act_params(self, layer: int, flat: Tensor | None = None) -> Tensor:
        """Learnable activation parameters of hidden layer ``layer``, shape ``(E, K)``."""
        flat = self.flat if flat is None else flat
        K = self.n_act_params
        start = self._act_offset + layer * self.E * K
        return flat[start : start + self.E * K].view(self.E, K)

    def param_blocks(self) -> list[tuple[int, int]]:
        """``(offset, size)`` of every block of ``flat``: member m's part of a block is
        ``flat[offset + m * size : offset + (m + 1) * size]`` (weights, biases and activation
        parameters of each layer)."""
        blocks = []
        for layer, (w_start, b_start) in enumerate(self._offsets):
            fan_in, fan_out = self.sizes[layer], self.sizes[layer + 1]
            blocks += [(w_start, fan_out * fan_in), (b_start, fan_out)]
        K = self.n_act_params
        blocks += [(self._act_offset + layer * self.E * K, K) for layer in range(self.n_hidden)]
        return blocks

    def nonfinite_members(self, flat: Tensor) -> Tensor:
        """Members with a non-finite entry in ``flat`` (parameters or a gradient): bool ``(E,)``."""
        bad = torch.zeros(self.E, dtype=torch.bool, device=flat.device)
        for offset, size in self.param_blocks():
            if size:
                block = flat[offset : offset + self.E * size].view(self.E, size)
                bad |= ~torch.isfinite(block).all(dim=1)
        return bad

    # ---------------------------------------------------------------- initialisation
    @torch.no_grad()
    def init_from(self, seeds: Sequence[int]) -> None:
        """(Re-)initialise member m from ``torch.Generator().manual_seed(seeds[m])``.

        Draw order per member: W_0, b_0, W_1, b_1, ... so a member's weights depend only on its
        seed, the layer sizes and the scheme. Equal seeds give identical initial weights.
        """
        seeds = [int(s) for s in seeds]
        if len(seeds) != self.E:
            raise ValueError(f"init_from needs {self.E} seeds (one per member), got {len(seeds)}")
        self.seeds = tuple(seeds)
        for m, seed in enumerate(seeds):
            gen = torch.Generator(device="cpu").manual_seed(seed)
            for layer in range(self.n_layers):
                fan_in, fan_out = self.sizes[layer], self.sizes[layer + 1]
                # Drawn in float64 whatever the model's dtype, so that a float32 and a float64
                # model with the same seed start from the same weights (up to rounding).
                w = torch.empty(fan_out, fan_in, dtype=torch.float64)
                b = torch.empty(fan_out, dtype=torch.float64)
                if self.init == "torch":
                    bound = 1.0 / math.sqrt(fan_in)
                    w.uniform_(-bound, bound, generator=gen)
                    b.uniform_(-bound, bound, generator=gen)
                elif self.init == "xavier":
                    bound = math.sqrt(6.0 / (fan_in + fan_out))
                    w.uniform_(-bound, bound, generator=gen)
                    b.zero_()
                elif self.init == "he":
                    w.normal_(0.0, math.sqrt(2.0 / fan_in), generator=gen)
                    b.zero_()
                else:  # mean_field
                    w.normal_(0.0, math.sqrt(self.sigma_w2 / fan_in), generator=gen)
                    b.normal_(0.0, math.sqrt(self.sigma_b2), generator=gen)
                self.weight(layer)[m].copy_(w)
                self.bias(layer)[m].copy_(b)
        for layer in range(self.n_hidden):
            params = self.act_params(layer)
            params.zero_()
            for run in self.runs:
                for k, value in enumerate(run.activation.params.values()):
                    params[run.start : run.stop, k] = value

    # ---------------------------------------------------------------- forward
    def activate(self, z: Tensor, layer: int, flat: Tensor | None = None) -> Tensor:
        """Apply each member's activation to ``z`` ``(E, B, D)`` of hidden layer ``layer``."""
        params = self.act_params(layer, flat)
        if len(self.runs) == 1:
            return self._apply_run(self.runs[0], z, params)
        return torch.cat(
            [
                self._apply_run(run, z[run.start : run.stop], params[run.start : run.stop])
                for run in self.runs
            ]
        )

    @staticmethod
    def _apply_run(run: ActivationRun, z: Tensor, params: Tensor) -> Tensor:
        theta = [params[:, k, None, None] for k in range(len(run.activation.params))]
        return run.activation.fn(z, *theta)

    def _input(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            return x.expand(self.E, *x.shape)
        if x.dim() == 3 and x.shape[0] == self.E:
            return x
        raise ValueError(
            f"input must be (B, {self.sizes[0]}) or (E={self.E}, B, {self.sizes[0]}), "
            f"got {tuple(x.shape)}"
        )

    def forward(self, x: Tensor, *, return_hidden: bool = False, flat: Tensor | None = None):
        """Outputs ``(E, B, out)`` for inputs ``(B, in)`` (shared) or ``(E, B, in)``.

        With ``return_hidden=True`` also returns ``[(z_l, h_l)]`` for every hidden layer,
        pre- and post-activation, each ``(E, B, width_l)``, input side first. ``flat`` evaluates
        the ensemble at other parameters (e.g. for Hessian-vector products).
        """
        h = self._input(x)
        hidden = []
        for layer in range(self.n_layers):
            # bmm + add_ beats baddbmm on CPU (measured); bmm's backward does not need its output
            z = torch.bmm(h, self.weight(layer, flat).transpose(1, 2))
            z.add_(self.bias(layer, flat).unsqueeze(1))
            if layer == self.n_layers - 1:
                return (z, hidden) if return_hidden else z
            h = self.activate(z, layer, flat)
            hidden.append((z, h))
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------- exact manual backward
    @torch.no_grad()
    def loss_and_grad(self, x: Tensor, y: Tensor, loss: str, grad: Tensor) -> Tensor:
        """Per-member loss ``(E,)`` and its exact gradient, written into ``grad`` ``(N,)``.

        The same numbers as autograd on ``sum_m loss_m`` (each member's gradient is that of its
        own loss), without building a graph: ``dz = dh * phi'(z)``, ``dW = dz^T h_prev``,
        ``db = sum_B dz``, ``dh_prev = dz W``.

        The members are processed in tiles of consecutive members (:meth:`tiles`), each tile's
        whole forward and backward pass before the next, so that a layer's ``z`` and ``h`` are
        still in the core's cache when the next operation reads them. Pre-activations, backward
        signals and the activations that can (``Activation.fn_out``, fused ``backward``) are
        written into buffers reused from call to call (fresh multi-MB tensors cost a page fault
        per 4 KiB).

        Args:
            x: Inputs ``(B, in)`` or ``(E, B, in)``.
            y: Targets: for ``"mse"`` ``(B, out)`` or ``(E, B, out)``; for ``"cross_entropy"``
                class indices ``(B,)`` or ``(E, B)``.
            loss: ``"mse"`` (mean over batch and outputs) or ``"cross_entropy"`` (mean over batch).
            grad: Flat gradient buffer shaped like ``flat``; overwritten.
        """
        flat = self.flat.detach()
        x = self._input(x)
        shared_y = y.dim() == (1 if loss == "cross_entropy" else 2)
        value = flat.new_empty(self.E)
        for tile in self._tile_plan(x.shape[1], flat, grad):
            start, stop = tile.start, tile.stop
            y_tile = y if shared_y else y[start:stop]
            value[start:stop] = self._tile_loss_and_grad(tile, x[start:stop], y_tile, loss)
        return value

    tile_members: int | None = None
    """Members per tile of :meth:`loss_and_grad`; ``None`` chooses from :data:`TILE_BYTES`."""

    def tiles(self, batch: int) -> list[tuple[int, int]]:
        """``(start, stop)`` of the tiles of consecutive members that :meth:`loss_and_grad`
        processes one after the other at this batch size: as many members as keep one layer's
        ``(tile, batch, width)`` tensor within :data:`TILE_BYTES`, or ``tile_members``; the
        members spread evenly (tile sizes differ by at most one). No tile holds a single member
        of a larger ensemble unless ``tile_members`` is 1: PyTorch's ``bmm`` rounds some
        products of a batch of one otherwise than of a larger batch, and a member's numbers
        would then depend on where it sits."""
        E = self.E
        size = self.tile_members
        if size is None:
            per_member = batch * max(self.sizes[1:]) * self.flat.element_size()
            size = TILE_BYTES // per_member
        n_tiles = -(-E // max(1, min(size, E)))
        if self.tile_members != 1:
            n_tiles = max(1, min(n_tiles, E // 2))
        bounds = [E * k // n_tiles for k in range(n_tiles + 1)]
        return list(itertools.pairwise(bounds))

    def _tile_loss_and_grad(self, tile: _Tile, h: Tensor, y: Tensor, loss: str) -> Tensor:
        """:meth:`loss_and_grad` for the members of one tile; returns their losses."""
        zs, hs = [], [h]
        for layer in range(self.n_layers):
            # bmm + add_ beats baddbmm on CPU (measured); bmm's backward does not need its output
            z = torch.bmm(h, tile.weights_t[layer], out=tile.z[layer])
            z.add_(tile.biases[layer])
            zs.append(z)
            if layer < self.n_hidden:
                h = self._activate_into(z, tile, layer)
                hs.append(h)
        value, d = output_loss_and_grad(zs[-1], y, loss)
        for layer in reversed(range(self.n_layers)):
            torch.bmm(d.transpose(1, 2), hs[layer], out=tile.grad_weights[layer])
            torch.sum(d, dim=1, out=tile.grad_biases[layer])
            if layer == 0:
                break
            dh = torch.bmm(d, tile.weights[layer], out=tile.dh[layer - 1])
            d = self._backward_tile(dh, zs[layer - 1], hs[layer], tile, layer - 1)
        return value

    def _tile_plan(self, batch: int, flat: Tensor, grad: Tensor) -> list[_Tile]:
        """Every tile's views of ``flat`` and ``grad`` and its work buffers, made once for a
        batch size, parameter and gradient buffer and kept (slicing ~30 views per layer and
        tile on every call cost ~10% of a step). The last two plans are kept; they hold views
        of ``grad``, so :meth:`release_buffers` (called at the end of :func:`actlab.train.train`)
        and moving the model drop them."""
        cache = self.__dict__.setdefault("_plans", {})
        key = (batch, self.tile_members, self.runs, flat.dtype, flat.device)
        key += (flat.data_ptr(), grad.data_ptr(), grad.shape)
        if key in cache:
            return cache[key]
        if len(cache) >= 2:
            cache.pop(next(iter(cache)))
        tiles = self.tiles(batch)
        size = max(stop - start for start, stop in tiles)
        new = lambda width: flat.new_empty(size, batch, width)  # noqa: E731
        z_buf = [new(w) for w in self.sizes[1:]]
        h_buf = [new(w) for w in self.sizes[1:-1]]
        dh_buf = [new(w) for w in self.sizes[1:-1]]
        plan = []
        for start, stop in tiles:
            n, sl = stop - start, slice(start, stop)
            layers = range(self.n_layers)
            hidden = range(self.n_hidden)
            plan.append(
                _Tile(
                    start=start,
                    stop=stop,
                    runs=self._tile_runs(start, stop),
                    weights=[self.weight(i, flat)[sl] for i in layers],
                    weights_t=[self.weight(i, flat)[sl].transpose(1, 2) for i in layers],
                    biases=[self.bias(i, flat)[sl].unsqueeze(1) for i in layers],
                    grad_weights=[self.weight(i, grad)[sl] for i in layers],
                    grad_biases=[self.bias(i, grad)[sl] for i in layers],
                    act_params=[self.act_params(i, flat)[sl] for i in hidden],
                    grad_act_params=[self.act_params(i, grad)[sl] for i in hidden],
                    z=[buf[:n] for buf in z_buf],
                    h=[buf[:n] for buf in h_buf],
                    dh=[buf[:n] for buf in dh_buf],
                )
            )
        cache[key] = plan
        return plan

    def _tile_runs(self, start: int, stop: int) -> list[tuple[int, int, Activation]]:
        """The activation runs within members ``start:stop``, as ``(a, b, activation)`` with
        ``a:b`` counted from ``start``."""
        return [
            (max(run.start, start) - start, min(run.stop, stop) - start, run.activation)
            for run in self.runs
            if run.start < stop and run.stop > start
        ]

    def _activate_into(self, z: Tensor, tile: _Tile, layer: int) -> Tensor:
        """``phi_m(z)`` for the members of ``tile`` at hidden layer ``layer``, into the tile's
        buffer where the activation can write there (``Activation.fn_out``)."""
        out, params = tile.h[layer], tile.act_params[layer]
        for a, b, act in tile.runs:
            theta = [params[a:b, k, None, None] for k in range(len(act.params))]
            if act.fn_out is not None and not theta:
                act.fn_out(z[a:b], out[a:b])
            elif len(tile.runs) == 1:
                return act.fn(z, *theta)
            else:
                out[a:b].copy_(act.fn(z[a:b], *theta))
        return out

    def _backward_tile(self, dh: Tensor, z: Tensor, h: Tensor, tile: _Tile, layer: int) -> Tensor:
        """``dz = dh * phi'(z)`` for the members of ``tile`` at hidden layer ``layer`` (fused
        where the activation has a fused backward), and the gradients of its learnable
        activation parameters, written into the gradient buffer. May overwrite ``dh``."""
        params, gparams = tile.act_params[layer], tile.grad_act_params[layer]
        if gparams.numel():
            gparams.zero_()
        for a, b, act in tile.runs:
            theta = [params[a:b, k, None, None] for k in range(len(act.params))]
            dh_run, z_run = dh[a:b], z[a:b]
            for k, dp in enumerate(act.param_derivs(z_run, *theta) if theta else ()):
                gparams[a:b, k] = (dh_run * dp).sum(dim=(1, 2))
            if act.backward is not None and not theta:
                dz = act.backward(dh_run, z_run, h[a:b])
                if len(tile.runs) == 1:
                    return dz
                if dz.data_ptr() != dh_run.data_ptr():
                    dh_run.copy_(dz)
            else:
                dh_run.mul_(act.deriv(z_run, *theta))
        return dh

    # ---------------------------------------------------------------- export
    def member(self, m: int) -> nn.Sequential:
        """Member ``m`` as a plain ``nn.Sequential`` of ``nn.Linear`` and activation modules,
        with copies of its current parameters."""
        if not 0 <= m < self.E:
            raise IndexError(f"member {m} out of range for E = {self.E}")
        layers: list[nn.Module] = []
        act = self.activations[m]
        for layer in range(self.n_layers):
            lin = nn.Linear(self.sizes[layer], self.sizes[layer + 1], dtype=self.flat.dtype)
            with torch.no_grad():
                lin.weight.copy_(self.weight(layer)[m])
                lin.bias.copy_(self.bias(layer)[m])
            layers.append(lin)
            if layer < self.n_hidden:
                module = act.module().to(self.flat.dtype)
                with torch.no_grad():
                    for k, p in enumerate(module.params):
                        p.copy_(self.act_params(layer)[m, k])
                layers.append(module)
        return nn.Sequential(*layers)


def output_loss_and_grad(out: Tensor, y: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    """Per-member loss ``(E,)`` and its gradient with respect to ``out`` ``(E, B, out)``.

    ``"mse"``: ``L_m = mean_{b,k} (out - y)^2``, ``dL/dout = 2 (out - y) / (B K)``.
    ``"cross_entropy"``: ``L_m = mean_b [logsumexp(out_b) - out_b[y_b]]``,
    ``dL/dout = (softmax(out) - onehot(y)) / B``.
    """
    E, B, K = out.shape
    if loss == "mse":
        diff = out - y
        return diff.square().mean(dim=(1, 2)), diff * (2.0 / (B * K))
    if loss == "cross_entropy":
        logp = torch.log_softmax(out, dim=-1)
        idx = y.expand(E, B).unsqueeze(-1)
        value = -logp.gather(-1, idx).squeeze(-1).mean(1)
        d = logp.exp()
        d.scatter_add_(-1, idx, torch.full_like(idx, -1, dtype=out.dtype))
        return value, d / B
    raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")
