"""Probes for any ``torch.nn.Module``, attached with forward hooks.

::

    with actlab.probes.probe(model) as p:
        for x, y in loader:              # the user's own training loop, unchanged
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step(); opt.zero_grad()
    p.compute()    # {module name: {metric key: 0-d float64 tensor}}
    p.to_frame()   # the same as a pandas DataFrame with columns module, metric, value

What is probed
--------------
* **Activation modules**, chosen by type (default: every ``nn.Module`` class defined in
  ``torch.nn.modules.activation`` -- ``nn.ReLU``, ``nn.Tanh``, ``nn.GELU``, ``nn.Softmax`` ... --
  except ``nn.MultiheadAttention``, plus :class:`actlab.activations.ActivationModule`), by a
  regular expression on the qualified module name (``pattern=``, ``re.search``; any type unless
  ``types=`` is also given), or listed by name (``modules=[...]``). The module's input is the
  pre-activation ``z`` (read by a forward *pre*-hook, so ``inplace=True`` modules are measured
  before they overwrite it) and its output the post-activation ``h``.
* **Functional activations are not modules** and no module hook sees them: ``F.relu(self.conv(x))``
  inside a custom ``forward`` is invisible. Probe them through the module that computes their
  input: ``preactivations={"block.conv": "relu"}`` hooks ``block.conv``'s output as ``z`` and
  applies the named actlab activation to it to get ``h`` (the same numbers as ``F.relu``).
* **Transformer layers.** ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer`` keep
  their activation as a plain *function* (``F.relu`` by default) in ``.activation``. A module with
  a non-module callable ``activation`` and a ``linear1`` submodule is detected and probed as
  ``preactivations={"<name>.linear1": <matching activation>}`` (relu, gelu, silu, tanh, ...;
  an unknown function gives a warning). If ``activation`` is a module (``activation=nn.GELU()``)
  it is an ordinary submodule and is found by type. *Fast path:* in eval mode with gradients
  off, ``TransformerEncoderLayer.forward`` may call one fused kernel that bypasses ``linear1``;
  in torch 2.13 it checks for forward hooks on its submodules and takes the ordinary path when
  there are any, so probing works in eval mode too -- but then a probed model in eval mode runs
  the unfused path, equal to the fused one only to rounding. A probed module that never ran
  (e.g. under an older PyTorch that does not check) is listed in :attr:`Probe.missing`, and
  :meth:`Probe.compute` warns about it.
* **Gradients.** The mean ``|dL/dh|`` and norm of each probed output (a tensor hook registered on
  the output in the forward hook; ``dL/dz`` for ``preactivations=`` sites, under the
  ``grad/preact_*`` keys) and of every parameter named ``weight`` or ``*_weight`` (a
  ``register_post_accumulate_grad_hook``, reading ``param.grad`` after each accumulation).

Units and inputs
----------------
Outputs of 2-D ``(B, D)`` and 3-D ``(B, T, D)`` shape have their units on the last axis and B or
B*T inputs; 4-D and 5-D convolution outputs ``(B, C, H, W)`` have channels as units and B*H*W
inputs. A 3-D ``Conv1d`` output ``(B, C, L)`` therefore needs ``unit_dim=1`` (an int for every
module or ``{name: dim}``). A module instance called several times per forward (a shared
``self.relu``) accumulates all its calls together; calls of different widths are kept apart and
reported as ``name[width]``.

Probing does not change outputs or gradients: hooks return None, statistics are computed on
detached tensors without gradient, and only statistics are kept (memory does not grow with the
number of steps). Hooks are removed by :meth:`Probe.close` or on leaving the ``with`` block.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actlab.activations import Activation, ActivationModule, get_activation
from actlab.probes import functional as Fm
from actlab.probes.stats import ActivationStats, FeatureRank, GradientStats

__all__ = ["probe", "Probe", "default_activation_types", "activation_of"]


def default_activation_types() -> tuple[type[nn.Module], ...]:
    """Every ``nn.Module`` class defined in ``torch.nn.modules.activation`` except
    ``nn.MultiheadAttention`` (not element-wise; returns a tuple), plus ``ActivationModule``."""
    import torch.nn.modules.activation as module

    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, nn.Module)
        and obj.__module__ == module.__name__
        and obj is not nn.MultiheadAttention
    ]
    return (*found, ActivationModule)


# Module types -> actlab activation spec (for the saturation band and the dead kind).
_MODULE_SPECS: dict[type[nn.Module], Callable[[nn.Module], str]] = {
    nn.ReLU: lambda m: "relu",
    nn.ReLU6: lambda m: "relu6",
    nn.Hardtanh: lambda m: f"hardtanh(min_val={m.min_val!r}, max_val={m.max_val!r})",
    nn.Tanh: lambda m: "tanh",
    nn.Sigmoid: lambda m: "sigmoid",
    nn.GELU: lambda m: "gelu_tanh" if m.approximate == "tanh" else "gelu",
    nn.SiLU: lambda m: "silu",
    nn.Mish: lambda m: "mish",
    nn.ELU: lambda m: f"elu(alpha={m.alpha!r})",
    nn.CELU: lambda m: f"celu(alpha={m.alpha!r})",
    nn.SELU: lambda m: "selu",
    nn.LeakyReLU: lambda m: f"leaky_relu(slope={m.negative_slope!r})",
    nn.PReLU: lambda m: "prelu",
    nn.Softplus: lambda m: f"softplus(beta={float(m.beta)!r})",
    nn.Hardsigmoid: lambda m: "hardsigmoid",
    nn.Hardswish: lambda m: "hardswish",
    nn.Softsign: lambda m: "softsign",
    nn.LogSigmoid: lambda m: "logsigmoid",
    nn.Tanhshrink: lambda m: "tanhshrink",
    nn.Softshrink: lambda m: f"softshrink(lambd={m.lambd!r})",
    nn.Hardshrink: lambda m: f"hardshrink(lambd={m.lambd!r})",
}

# Functions used as a transformer layer's activation -> actlab activation name.
_FUNCTIONS: dict[Callable, str] = {
    F.relu: "relu",
    torch.relu: "relu",
    F.gelu: "gelu",
    F.silu: "silu",
    F.mish: "mish",
    F.elu: "elu",
    F.selu: "selu",
    F.leaky_relu: "leaky_relu",
    F.softplus: "softplus",
    F.relu6: "relu6",
    F.hardswish: "hardswish",
    F.tanh: "tanh",
    torch.tanh: "tanh",
    F.sigmoid: "sigmoid",
    torch.sigmoid: "sigmoid",
}


def activation_of(module: nn.Module | Callable) -> Activation | None:
    """The actlab :class:`Activation` a module (or function) computes, if known; else None."""
    if isinstance(module, ActivationModule):
        return module.activation
    if isinstance(module, nn.Module):
        spec = _MODULE_SPECS.get(type(module))
        if spec is None:
            return None
        try:
            return get_activation(spec(module))
        except ValueError:  # hyper-parameters outside the registry's range
            return None
    try:
        name = _FUNCTIONS.get(module)  # type: ignore[arg-type]
    except TypeError:  # an unhashable callable
        return None
    return None if name is None else get_activation(name)


@dataclass(eq=False)
class _Site:
    """One probed module: an activation module, or a module whose output is a pre-activation."""

    name: str
    module: nn.Module
    activation: Activation | None  # what the module computes, or what to apply to its output
    preactivation: bool
    unit_dim: int | None
    band: tuple[float, float] | None
    entries: dict[int, _Entry] = field(default_factory=dict)  # keyed by width


@dataclass(eq=False)
class _Entry:
    stats: ActivationStats
    rank: FeatureRank | None
    grad: GradientStats


class Probe:
    """Hooks attached to a model and the statistics they accumulate; made by :func:`probe`.

    Use as a context manager (hooks removed on exit) or call :meth:`close`. :meth:`compute` can
    be called any time, before or after closing; :meth:`reset` clears the statistics.
    """

    def __init__(
        self,
        model: nn.Module,
        sites: list[_Site],
        *,
        tau: float,
        delta: float,
        eps: float,
        rank: bool,
        max_rank_units: int,
        grads: bool,
        weight_grads: bool,
    ):
        self.model = model
        self.sites = {site.name: site for site in sites}
        self.tau, self.delta, self.eps = tau, delta, eps
        self.rank, self.max_rank_units, self.grads = rank, max_rank_units, grads
        self.weight_stats = GradientStats("weight")
        self._handles: list = []
        self.closed = False
        for site in sites:
            if not site.preactivation:
                self._handles.append(site.module.register_forward_pre_hook(self._pre_hook(site)))
            self._handles.append(site.module.register_forward_hook(self._forward_hook(site)))
        if weight_grads:
            for name, param in model.named_parameters():
                last = name.rsplit(".", 1)[-1]
                if param.requires_grad and (last == "weight" or last.endswith("_weight")):
                    label = name[: -len(".weight")] if last == "weight" else name
                    self._handles.append(
                        param.register_post_accumulate_grad_hook(self._weight_hook(label))
                    )

    # ------------------------------------------------------------------ hooks
    def _entry(self, site: _Site, width: int) -> _Entry:
        entry = site.entries.get(width)
        if entry is None:
            low, high = site.band or (None, None)
            kind = None if site.activation is None else Fm.dead_kind(site.activation)
            stats = ActivationStats(low, high, tau=self.tau, eps=self.eps, kind=kind)
            use_rank = self.rank and width <= self.max_rank_units
            rank = FeatureRank(self.delta) if use_rank else None
            kind_grad = "preact" if site.preactivation else "act"
            entry = site.entries[width] = _Entry(stats, rank, GradientStats(kind_grad))
        return entry

    def _pre_hook(self, site: _Site):
        def hook(module: nn.Module, args: tuple) -> None:
            if self.closed or not args or not isinstance(args[0], Tensor):
                return
            with torch.no_grad():
                z = _units(args[0].detach(), site.unit_dim)
                if z is not None:
                    self._entry(site, z.shape[-1]).stats.update(z=z)

        return hook

    def _forward_hook(self, site: _Site):
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            if self.closed or not isinstance(output, Tensor):
                return
            with torch.no_grad():
                out = output.detach()
                if site.preactivation:
                    z = _units(out, site.unit_dim)
                    if z is None:
                        return
                    h = site.activation(z)
                    entry = self._entry(site, h.shape[-1])
                    entry.stats.update(h=h, z=z)
                else:
                    h = _units(out, site.unit_dim)
                    if h is None:
                        return
                    entry = self._entry(site, h.shape[-1])
                    entry.stats.update(h=h)
                if entry.rank is not None:
                    entry.rank.update(h)
            if self.grads and output.requires_grad:
                output.register_hook(self._grad_hook(entry))

        return hook

    def _grad_hook(self, entry: _Entry):
        def hook(grad: Tensor) -> None:
            if not self.closed:
                entry.grad.update({"g": grad[None]})

        return hook

    def _weight_hook(self, label: str):
        def hook(param: Tensor) -> None:
            if not self.closed and param.grad is not None:
                self.weight_stats.update({label: param.grad[None]})

        return hook

    # ------------------------------------------------------------------ results
    @property
    def missing(self) -> list[str]:
        """Probed modules that have not run since the last reset."""
        return [name for name, site in self.sites.items() if not site.entries]

    def compute(self) -> dict[str, dict[str, Tensor]]:
        """``{module name: {metric key: 0-d float64 tensor}}``: probed modules in the model's
        order, then weights not already listed (named by module, or ``module.in_proj_weight``).

        Activation sites give the ``act/*`` and ``rank/*`` keys and ``grad/act_*`` (or
        ``grad/preact_*``); modules with a weight give ``grad/weight_*``. Keys that do not apply
        are absent (no band: no ``act/saturated_fraction``; no gradient yet: no ``grad/*``).
        """
        if self.missing:
            warnings.warn(
                f"probed modules that never ran: {self.missing} (see Probe.missing)", stacklevel=2
            )
        out: dict[str, dict[str, Tensor]] = {}
        for name, site in self.sites.items():
            for width, entry in site.entries.items():
                label = name if len(site.entries) == 1 else f"{name}[{width}]"
                metrics = {**entry.stats.compute()}
                if entry.rank is not None:
                    metrics.update(entry.rank.compute())
                metrics.update({k: v[0] for k, v in entry.grad.compute().items()})  # (1, 1)
                out[label] = {k: v[0] for k, v in metrics.items()}  # (E=1,) -> 0-d
        weights = self.weight_stats.compute()
        for i, label in enumerate(self.weight_stats.layers):
            out.setdefault(label, {}).update({k: v[i, 0] for k, v in weights.items()})
        return out

    def to_frame(self):
        """:meth:`compute` as a tidy ``pandas.DataFrame`` with columns module, metric, value."""
        import pandas as pd

        rows = [
            (module, key, float(value))
            for module, metrics in self.compute().items()
            for key, value in metrics.items()
        ]
        return pd.DataFrame(rows, columns=["module", "metric", "value"])

    def reset(self) -> None:
        """Clear the statistics (hooks stay attached)."""
        for site in self.sites.values():
            site.entries.clear()
        self.weight_stats.reset()

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Remove every hook (idempotent). Statistics stay available to :meth:`compute`."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.closed = True

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "attached"
        return f"Probe({len(self.sites)} modules, {state}: {', '.join(self.sites)})"


def _units(t: Tensor, unit_dim: int | None) -> Tensor | None:
    """``t`` as ``(inputs, units)``: see "Units and inputs" in the module docstring."""
    if t.dim() == 0:
        return None
    if t.dim() == 1:
        return t.unsqueeze(0)
    dim = unit_dim if unit_dim is not None else (-1 if t.dim() <= 3 else 1)
    return t.movedim(dim, -1).reshape(-1, t.shape[dim])


def probe(
    model: nn.Module,
    *,
    modules: Iterable[str] | None = None,
    types: Iterable[type[nn.Module]] | None = None,
    pattern: str | None = None,
    preactivations: Mapping[str, str | Activation] | None = None,
    functional_activations: bool = True,
    tau: float = 0.025,
    delta: float = 0.01,
    eps: float = 0.0,
    unit_dim: int | Mapping[str, int] | None = None,
    bands: Mapping[str, tuple[float, float] | None] | None = None,
    rank: bool = True,
    max_rank_units: int = 1024,
    grads: bool = True,
    weight_grads: bool = True,
) -> Probe:
    """Attach probes to ``model``; see the module docstring for what is and is not seen.

    Args:
        model: Any ``nn.Module``.
        modules: Qualified names of the modules to probe (as in ``model.named_modules()``);
            excludes ``types`` and ``pattern``.
        types: Module classes to probe; default :func:`default_activation_types` (or any class
            when only ``pattern`` is given).
        pattern: Regular expression searched in each qualified module name.
        preactivations: ``{module name: activation}``: the module's output is a pre-activation
            to which the activation (actlab name or object) is applied, for functional
            activations (learnable parameters at their initial values). Takes precedence over a
            module of the same name found otherwise.
        functional_activations: Detect transformer layers whose ``activation`` is a function
            and probe their ``linear1`` output with it.
        tau: ReDo dormancy threshold.
        delta: srank threshold.
        eps: Sparsity tolerance.
        unit_dim: Axis holding the units, for every module or ``{name: axis}``; default: last
            axis for outputs of up to 3 dimensions, axis 1 beyond.
        bands: ``{name: (low, high) or None}`` overriding the saturation band taken from the
            module's activation (:func:`~actlab.probes.functional.saturation_band`).
        rank: Accumulate ``F^T F`` for srank and effective rank (``width^2`` float64 per module).
        max_rank_units: Skip the ranks of modules wider than this.
        grads: Record mean ``|grad|`` and norm of each probed output.
        weight_grads: Record gradient norms of every ``weight`` / ``*_weight`` parameter.

    Returns:
        A :class:`Probe` with hooks attached; use it in a ``with`` block or call ``close()``.
    """
    named = dict(model.named_modules())
    if modules is not None and (types is not None or pattern is not None):
        raise ValueError("give modules= or types=/pattern=, not both")
    if modules is not None:
        chosen = {_lookup(named, name, "modules") for name in modules}
    else:
        if types is None:
            types = None if pattern is not None else default_activation_types()
        regex = None if pattern is None else re.compile(pattern)
        chosen = {
            name
            for name, module in named.items()
            if (types is None or isinstance(module, tuple(types)))
            and (regex is None or regex.search(name))
        }
    pre: dict[str, Activation] = {}
    if functional_activations:
        pre.update(_functional_sites(named))
    for name, act in (preactivations or {}).items():
        pre[_lookup(named, name, "preactivations")] = get_activation(act)
    bands = dict(bands or {})

    def dim_of(name: str) -> int | None:
        return unit_dim.get(name) if isinstance(unit_dim, Mapping) else unit_dim

    def band_of(name: str, act: Activation | None) -> tuple[float, float] | None:
        if name in bands:
            return bands[name]
        return None if act is None else Fm.saturation_band(act)

    sites = []
    for name in named:  # model order
        if name in pre:
            act = pre[name]
            sites.append(_Site(name, named[name], act, True, dim_of(name), band_of(name, act)))
        elif name in chosen:
            act = activation_of(named[name])
            sites.append(_Site(name, named[name], act, False, dim_of(name), band_of(name, act)))
    return Probe(
        model,
        sites,
        tau=tau,
        delta=delta,
        eps=eps,
        rank=rank,
        max_rank_units=max_rank_units,
        grads=grads,
        weight_grads=weight_grads,
    )


def _lookup(named: Mapping[str, nn.Module], name: str, what: str) -> str:
    if name not in named:
        import difflib

        close = difflib.get_close_matches(name, list(named), n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(f"{what}: the model has no module named {name!r}.{hint}")
    return name


def _functional_sites(named: Mapping[str, nn.Module]) -> dict[str, Activation]:
    """``{"<layer>.linear1": activation}`` for transformer-style layers whose ``activation``
    attribute is a function rather than a submodule."""
    found = {}
    for name, module in named.items():
        fn = getattr(module, "activation", None)
        linear1 = getattr(module, "linear1", None)
        if fn is None or isinstance(fn, nn.Module) or not isinstance(linear1, nn.Module):
            continue
        act = activation_of(fn) if callable(fn) else None
        if act is None:
            warnings.warn(
                f"{name or type(module).__name__}: activation {fn!r} is a function actlab does "
                f"not recognise; pass preactivations={{'{name}.linear1': <activation>}}",
                stacklevel=3,
            )
            continue
        found[f"{name}.linear1" if name else "linear1"] = act
    return found
