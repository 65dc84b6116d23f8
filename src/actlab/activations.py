"""The activation registry: one place to add an activation function.

An :class:`Activation` bundles an element-wise function, its analytic derivative, their LaTeX, a
few verifiable properties and a reference. Parameterised families (``leaky_relu(slope)``,
``elu(alpha)``, ...) are factories; ``get_activation("leaky_relu(slope=0.2)")`` resolves a name
once, and models take the resulting object (never a string).

Every registered activation -- built in, added with :func:`register`, or found through the
``actlab.activations`` entry-point group -- is checked by the registry-driven tests
(``actlab.testing.check_activation``): analytic derivative against autograd in float64 away from
the declared kinks, each declared property against the function's values, and the documented
behaviour at +-1e4, +-inf and nan.

Conventions
-----------
``fn(x, *params)`` and ``deriv(x, *params)`` take a tensor ``x`` of any shape and the learnable
parameters (only PReLU has one: its negative slope), each a tensor broadcastable against ``x``.
NaN inputs give NaN outputs.

Values at +-inf
---------------
``at_inf`` documents ``fn`` at ``(-inf, +inf)``, never one machine's output:

* By default ``fn`` returns exactly ``at_inf`` there, on every CPU, because nothing in the formula
  it evaluates can go two ways in IEEE arithmetic. Either ``at_inf`` is the mathematical limit,
  reached through determinate operations (``exp(-inf) = 0``, ``tanh(+-inf) = +-1``, ``max``,
  ``clamp``, ``inf - 1``); or it is NaN, where that formula is an indeterminate form (``inf / inf``
  in softsign, ``0 * -inf`` in ``prelu(init=0)``) or phi has no limit (sine).
* Where ``at_inf_or_nan`` marks an end, ``at_inf`` is the limit and ``fn`` returns it *or NaN*,
  depending on the PyTorch kernel that runs (the CPU, the dtype, the tensor's size and layout).
  The self-gated kernels ``x * g(x)`` (and ``leaky_relu(slope=0)``'s ``slope * x``) meet
  ``-inf * 0`` at ``-inf``: PyTorch gives NaN there today, but does not document it (its
  Hardswish is documented as 0 for ``x <= -3``). GELU's float32 kernel comes from oneDNN, whose
  code is generated for the CPU: with PyTorch 2.13 it returns NaN at ``+inf`` on AVX-512 CPUs and
  ``+inf`` on AVX2 ones (float64, and float32 tensors of one element or strided, run PyTorch's
  own kernel: ``+inf``).

Returning the limit by construction at those ends would slow the engine, which calls ``fn`` on
every hidden layer: ``torch.where(x.isinf(), relu(x), fn(x))`` made the deep-MLP training step
with GELU about 1.4x slower, ``torch.fmin(fn(x), relu(x))`` about 1.2x, measured with
``benchmarks/bench_activations.py``. So the variation is documented, and tested as what it is.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.machinery
import importlib.util
import inspect
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Activation",
    "ActivationModule",
    "register",
    "get_activation",
    "list_activations",
    "load_activations_file",
    "UnknownActivationError",
]

NAN = math.nan
INF = math.inf
_aten = torch.ops.aten  # PyTorch's fused backward kernels (what autograd itself calls)


@dataclass(frozen=True, eq=False)
class Activation:
    """An element-wise activation function phi and its derivative phi'.

    Two activations are equal when their names are equal; the name encodes any non-default
    hyper-parameter (``"leaky_relu(slope=0.2)"``).

    Attributes:
        name: Canonical name, resolvable by :func:`get_activation`.
        fn: ``phi(x, *params)``; a tensor of the shape of ``x``.
        deriv: ``phi'(x, *params)``, the derivative with respect to ``x`` (analytic, not autograd);
            at a kink, the one-sided value that PyTorch's autograd also uses.
        latex: LaTeX of ``phi(x)``.
        latex_deriv: LaTeX of ``phi'(x)``.
        bounded: The output is bounded above and below.
        monotonic: ``phi`` is non-decreasing on the whole real line.
        zero_centred: ``phi`` is odd, ``phi(-x) = -phi(x)``, so its mean is 0 under any symmetric
            input distribution.
        smooth: ``phi`` is continuously differentiable everywhere (C1): no kinks.
        piecewise_linear: ``phi`` is linear (or constant) between its kinks.
        self_gated: ``phi(x) = x * g(x)`` for a gate ``g`` (SiLU, GELU, Mish, Hardswish).
        reference: One line naming where the function comes from.
        family: The registry key of the factory that made it (``"leaky_relu"``).
        hyper: Fixed hyper-parameters baked into ``fn`` (``{"slope": 0.01}``).
        params: Learnable parameters and their initial values (``{"slope": 0.25}`` for PReLU);
            models give each layer its own copy.
        param_derivs: ``d phi / d params``, one tensor shaped like ``x`` per learnable parameter
            (``None`` when there are none).
        kinks: Points where ``phi'`` jumps or ``phi`` itself jumps (empty when ``smooth``).
        backward: Optional fused ``backward(dh, x, h) -> dh * phi'(x)`` given the output
            ``h = phi(x)`` too: one pass instead of three, and PyTorch's own autograd kernel where
            there is one (``aten.tanh_backward`` ...), so the manual backward of the ensemble
            engine equals autograd bit for bit. It may write its result into ``dh`` and return
            it (the built-in ones do: no fresh tensor per call). Only for activations without
            learnable params.
        fn_out: Optional ``fn_out(x, out)``: ``phi(x)`` written into ``out`` (shaped like ``x``)
            bit for bit as ``fn(x)``, so that the ensemble engine reuses its buffers instead of
            a fresh multi-MB tensor per layer and step. Only for activations without learnable
            params.
        at_inf: ``fn`` at ``(-inf, +inf)`` (see "Values at +-inf" above): the limit, or NaN where
            the formula is indeterminate there or phi has no limit.
        at_inf_or_nan: Ends ``(-inf, +inf)`` at which ``fn`` returns ``at_inf`` (then the limit)
            *or NaN*, depending on the PyTorch kernel that runs: a documented platform variation.
    """

    name: str
    fn: Callable[..., Tensor]
    deriv: Callable[..., Tensor]
    latex: str
    latex_deriv: str
    bounded: bool
    monotonic: bool
    zero_centred: bool
    smooth: bool
    piecewise_linear: bool
    self_gated: bool
    reference: str
    family: str = ""
    hyper: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, float] = field(default_factory=dict)
    param_derivs: Callable[..., tuple[Tensor, ...]] | None = None
    kinks: tuple[float, ...] = ()
    at_inf: tuple[float, float] = (NAN, NAN)
    at_inf_or_nan: tuple[bool, bool] = (False, False)
    backward: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None
    fn_out: Callable[[Tensor, Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.name)
        object.__setattr__(self, "hyper", MappingProxyType(dict(self.hyper)))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        if self.smooth and self.kinks:
            raise ValueError(f"activation {self.name!r}: smooth=True but kinks={self.kinks}")
        if self.params and self.param_derivs is None:
            raise ValueError(f"activation {self.name!r}: learnable params need param_derivs")
        or_nan = tuple(self.at_inf_or_nan)
        if len(or_nan) != 2 or not all(isinstance(b, bool) for b in or_nan):
            raise ValueError(
                f"activation {self.name!r}: at_inf_or_nan must be two bools (-inf, +inf), "
                f"got {self.at_inf_or_nan!r}"
            )
        object.__setattr__(self, "at_inf_or_nan", or_nan)
        for side, flag, limit in zip(("-inf", "+inf"), or_nan, self.at_inf, strict=True):
            if flag and math.isnan(limit):
                raise ValueError(
                    f"activation {self.name!r}: at_inf_or_nan marks {side}, so at_inf there must "
                    f"be the limit that fn returns when it does not return NaN, not NaN"
                )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"

    def __reduce__(self):
        # Pickled (and sent to other processes) by name: the registry rebuilds it there.
        return (get_activation, (self.name,))

    def __deepcopy__(self, memo: dict) -> Activation:
        return self  # immutable

    def default_params(self, like: Tensor) -> tuple[Tensor, ...]:
        """The learnable parameters at their initial values, as 0-d tensors like ``like``."""
        return tuple(
            torch.tensor(v, dtype=like.dtype, device=like.device) for v in self.params.values()
        )

    def __call__(self, x: Tensor) -> Tensor:
        """``phi(x)`` with learnable parameters at their initial values."""
        return self.fn(x, *self.default_params(x))

    def derivative(self, x: Tensor) -> Tensor:
        """``phi'(x)`` with learnable parameters at their initial values."""
        return self.deriv(x, *self.default_params(x))

    def module(self) -> ActivationModule:
        """A ``torch.nn.Module`` applying this activation (learnable parameters become
        ``nn.Parameter``s, one scalar each, as in ``nn.PReLU(num_parameters=1)``)."""
        return ActivationModule(self)


class ActivationModule(nn.Module):
    """``nn.Module`` wrapper of an :class:`Activation`, for use in ordinary PyTorch models."""

    def __init__(self, activation: Activation):
        super().__init__()
        self.activation = activation
        self.params = nn.ParameterList(
            [nn.Parameter(torch.tensor(float(v))) for v in activation.params.values()]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.activation.fn(x, *self.params)

    def extra_repr(self) -> str:
        return self.activation.name


# --------------------------------------------------------------------------------------------
# Registry


class UnknownActivationError(ValueError):
    """Raised for a name that is not registered; the message lists the valid names."""


_FACTORIES: dict[str, Callable[..., Activation]] = {}
_ALIASES: dict[str, str] = {}
_PLUGINS_LOADED = False
_LOADING: Path | None = None  # the user file being imported by load_activations_file, if any
_CALL_RE = re.compile(r"^\s*([A-Za-z_][\w\-]*)\s*(?:\((.*)\))?\s*$")


def register(
    activation: Activation | Callable[..., Activation],
    *,
    name: str | None = None,
    aliases: tuple[str, ...] = (),
    overwrite: bool = False,
) -> Activation | Callable[..., Activation]:
    """Add an activation (or a factory of a parameterised family) to the registry.

    Args:
        activation: An :class:`Activation`, or a factory whose parameters all have defaults and
            which returns an :class:`Activation` (``leaky_relu(slope=0.01)``).
        name: Registry key; defaults to the activation's ``family`` or the factory's ``__name__``.
        aliases: Other names that resolve to it.
        overwrite: Replace an existing entry of that name instead of raising.

    Returns:
        ``activation`` unchanged, so ``register`` also works as a decorator.
    """
    if isinstance(activation, Activation):
        key = name or activation.family

        fixed = activation

        # No parameters, so that "relu(1)" is rejected instead of returning 1.0.
        def factory() -> Activation:
            return fixed

    elif callable(activation):
        key = name or activation.__name__
        missing = [
            p.name
            for p in inspect.signature(activation).parameters.values()
            if p.default is inspect.Parameter.empty
        ]
        if missing:
            raise ValueError(f"activation factory {key!r}: parameters {missing} need defaults")
        factory = activation
    else:
        raise TypeError(f"register() takes an Activation or a factory, got {type(activation)}")
    key = _normalise(key)
    taken = key in _FACTORIES or key in _ALIASES
    if _LOADING is not None:
        _check_free_for_file(key, aliases)
    if taken and not overwrite:
        raise ValueError(f"activation {key!r} is already registered (pass overwrite=True)")
    _FACTORIES[key] = factory
    for alias in aliases:
        _ALIASES[_normalise(alias)] = key
    if _LOADING is not None:  # recorded now, so that a second use in the same file says so
        for name in (key, *aliases):
            _ORIGIN[_normalise(name)] = _LOADING
    return activation


def unregister(name: str) -> None:
    """Remove an entry and its aliases (for tests and interactive use)."""
    key = _normalise(name)
    _FACTORIES.pop(key)
    for alias in [a for a, k in _ALIASES.items() if k == key]:
        del _ALIASES[alias]


def list_activations() -> list[str]:
    """The registry keys, sorted (aliases excluded)."""
    _load_plugins()
    return sorted(_FACTORIES)


def get_activation(spec: str | Activation) -> Activation:
    """Resolve a name such as ``"tanh"``, ``"swish"`` (an alias) or ``"leaky_relu(slope=0.2)"``.

    A positional argument is allowed for one-parameter families: ``"leaky_relu(0.2)"``. An
    :class:`Activation` is returned unchanged.

    A member of a family from a user's file (:func:`load_activations_file`) is checked the first
    time its name is resolved in this process (``check_activation``, and that its name gives it
    back), so that a config naming a broken member fails when it is made.

    Raises:
        UnknownActivationError: for an unknown name; lists the valid names and the closest match.
        ValueError: for malformed or out-of-range arguments, and for a user file's member that
            fails its checks (one line naming the member, the file and the problem).
    """
    if isinstance(spec, Activation):
        return spec
    key, make = _resolve(spec)
    origin = _ORIGIN.get(key)
    if origin is None:
        return make()
    # An entry of a user's file: each member is checked the first time it is resolved.
    try:
        act = make()
    except Exception as err:
        raise ValueError(
            f"activation {spec!r} (from {origin}): {_one_line(err)}{_line_of(err, origin)}"
        ) from None
    problem = _member_problem(key, act, origin)
    if problem:
        raise ValueError(f"activation {spec!r} (from {origin}) {problem}")
    return act


def _resolve(spec: str) -> tuple[str, Callable[[], Activation]]:
    """``(registry key, a call that builds the activation)`` for a name; no check."""
    if not isinstance(spec, str):
        raise TypeError(f"activation must be a name or an Activation, got {type(spec).__name__}")
    _load_plugins()
    match = _CALL_RE.match(spec)
    if match is None:
        raise ValueError(f"malformed activation spec {spec!r}; expected name or name(k=v, ...)")
    key = _normalise(match.group(1))
    key = _ALIASES.get(key, key)
    if key not in _FACTORIES:
        names = sorted(_FACTORIES) + sorted(_ALIASES)
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        # No file loaded: the name may well be in the user's file that was not given.
        mine = (
            ""
            if _USER_FILES
            else " (An activation of your own? Give the file that registers it: "
            "--activations-from FILE, or load_activations_file(FILE) in Python.)"
        )
        raise UnknownActivationError(
            f"unknown activation {match.group(1)!r}.{hint} "
            f"Valid names: {', '.join(sorted(_FACTORIES))}{mine}"
        )
    factory = _FACTORIES[key]
    args, kwargs = _parse_args(match.group(2) or "", spec)
    try:
        inspect.signature(factory).bind(*args, **kwargs)
    except TypeError as err:
        params = list(inspect.signature(factory).parameters)
        raise ValueError(
            f"activation {spec!r}: {err}; {key} takes {params or 'no arguments'}"
        ) from None
    return key, lambda: factory(*args, **kwargs)


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _parse_args(text: str, spec: str) -> tuple[list[float], dict[str, float]]:
    args: list[float] = []
    kwargs: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"activation {spec!r}: argument {part!r} is not a number") from None
        if key:
            kwargs[key.strip()] = number
        elif kwargs:
            raise ValueError(f"activation {spec!r}: positional argument after a keyword")
        else:
            args.append(number)
    return args, kwargs


def _load_plugins() -> None:
    """Register activations advertised by installed packages (entry-point group
    ``actlab.activations``), once, on first use of the registry."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for entry in metadata.entry_points(group="actlab.activations"):
        obj = entry.load()
        register(obj, name=entry.name, overwrite=True)


# --------------------------------------------------------------------------------------------
# Activations from a user's file (``actlab ... --activations-from FILE``)

_USER_FILES: dict[Path, tuple[str, tuple[str, ...]]] = {}  # resolved path -> (sha256, names)
_ORIGIN: dict[str, Path] = {}  # registry key or alias -> the user file that registered it


def load_activations_file(path: str | os.PathLike[str]) -> list[str]:
    """Register the activations that a user's Python file defines, each checked first.

    The convention: the file calls :func:`register` (``actlab.register``) for each activation,
    with an :class:`Activation` or a factory of a parameterised family, exactly as the built-ins
    do (see ``examples/my_activations.py``). The file is imported as a module of its own (under
    a name unique to its path, with ``importlib``; never read as a string and ``exec``'d); its
    folder is not put on ``sys.path``. An :class:`Activation` that the file only assigns to a
    variable is not registered: a file that registers nothing is an error that names them.

    Every registry entry the file adds is resolved at its defaults and verified with
    :func:`actlab.testing.check_activation` (derivative against autograd, declared properties,
    values at +-inf and nan) before this returns; its name must resolve back to it
    (``get_activation(act.name)`` has the same name and parameters: activations are pickled by
    name) and its LaTeX must not be empty. Each other member of a family (``isru(alpha=0.5)``)
    gets the same checks from :func:`get_activation`, the first time it resolves that name. If
    anything fails, the registry is left as it was before the call.

    Loading the same unchanged file again returns its names without importing it again; a file
    that changed since it was loaded replaces the activations of its earlier version.

    Args:
        path: The file (any suffix; ``.py`` by convention).

    Returns:
        The registry keys the file added, in the order it registered them.

    Raises:
        ValueError: one line naming the file, for a missing or unreadable file, an error while
            importing it (``SyntaxError``, ``ImportError``, any exception it raises), a file that
            registers nothing, a name or alias already taken (by a built-in, a plugin, another
            file or earlier in the same file), a name that does not resolve back to its
            activation, an empty LaTeX, or an activation that fails ``check_activation`` (naming
            the activation and its first broken promise). Where the error comes from a line of
            the file, the message ends with ``(line N of FILE)``.
    """
    global _LOADING
    _load_plugins()  # so that entry-point plugins are never counted as the file's own
    where = Path(path).expanduser().resolve()
    try:
        sha = hashlib.sha256(where.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ValueError(f"activations file {path}: no such file") from None
    except OSError as err:
        raise ValueError(f"activations file {path}: cannot read it ({err.strerror})") from None
    earlier = _USER_FILES.get(where)
    if earlier is not None and earlier[0] == sha and all(n in _FACTORIES for n in earlier[1]):
        return list(earlier[1])

    saved = (dict(_FACTORIES), dict(_ALIASES), dict(_ORIGIN))
    if earlier is not None:  # the file changed: its new version replaces the old one's entries
        for key in [k for k, origin in _ORIGIN.items() if origin == where]:
            _FACTORIES.pop(key, None)
            _ALIASES.pop(key, None)
            del _ORIGIN[key]
    before = set(_FACTORIES)
    module_name = f"_actlab_user_{_identifier(where.stem)}_{_digest(str(where))}"
    _LOADING = where
    try:
        module = _import_file(where, module_name, path)
        added = [k for k in _FACTORIES if k not in before]
        if not added:
            raise ValueError(f"activations file {path}: {_registers_nothing(module)}")
        for key in added:
            _check_user_activation(key, where, path)
    except BaseException:
        for live, old in zip((_FACTORIES, _ALIASES, _ORIGIN), saved, strict=True):
            live.clear()
            live.update(old)
        sys.modules.pop(module_name, None)
        raise
    finally:
        _LOADING = None
    _USER_FILES[where] = (sha, tuple(added))
    return added


def _import_file(where: Path, module_name: str, shown: str | os.PathLike[str]) -> object:
    """Import the file at ``where`` as module ``module_name``; any error -> one-line ValueError."""
    if not where.is_file():
        raise ValueError(f"activations file {shown}: not a file")
    loader = importlib.machinery.SourceFileLoader(module_name, str(where))
    spec = importlib.util.spec_from_file_location(module_name, where, loader=loader)
    assert spec is not None  # an explicit loader always gives a spec
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickle look the module up there
    try:
        loader.exec_module(module)
    except SyntaxError as err:
        where_in = f"line {err.lineno}" + (f", column {err.offset}" if err.offset else "")
        raise ValueError(
            f"activations file {shown}: cannot import it: SyntaxError at {where_in}: {err.msg}"
        ) from None
    except _NameTaken as err:
        raise ValueError(f"activations file {shown}: {err}{_line_of(err, where)}") from None
    except (Exception, SystemExit) as err:
        hint = ""
        if isinstance(err, ModuleNotFoundError):
            hint = (
                f"; its folder {where.parent} is not on sys.path (put that code in the file, or "
                "install it as a package)"
            )
        raise ValueError(
            f"activations file {shown}: cannot import it: {_one_line(err)}"
            f"{_line_of(err, where)}{hint}"
        ) from None
    return module


class _NameTaken(ValueError):
    """A user file registers a name that is taken (raised by :func:`register` while loading)."""


def _check_free_for_file(key: str, aliases: tuple[str, ...]) -> None:
    """While a user file is imported: its names and aliases must all be new."""
    for name in (key, *(_normalise(a) for a in aliases)):
        target = _ALIASES.get(name, name)
        if name in _FACTORIES or name in _ALIASES:
            origin = _ORIGIN.get(name) or _ORIGIN.get(target)
            owner = f"by {origin}" if origin else "by a built-in activation"
            if origin == _LOADING:
                owner = "earlier in the same file"
            raise _NameTaken(f"the name {name!r} is already registered {owner}; choose another")


def _check_user_activation(key: str, where: Path, shown: str | os.PathLike[str]) -> None:
    """The default member of a user file's entry ``key``: built and checked, or one line."""
    try:
        act = _FACTORIES[key]()
    except Exception as err:
        raise ValueError(
            f"activations file {shown}: activation {key!r} cannot be checked: "
            f"{_one_line(err)}{_line_of(err, where)}"
        ) from None
    problem = _member_problem(key, act, where)
    if problem:
        raise ValueError(f"activations file {shown}: activation {key!r} {problem}")


_CHECKED: dict[str, Callable[..., Activation]] = {}
"""Names of user-file activations that passed :func:`_member_problem`, each with the factory that
made it: a member is checked once per process, and again when its file is reloaded (a new
factory)."""


def _member_problem(key: str, act: object, origin: Path) -> str:
    """What is wrong with ``act``, made by the user-file entry ``key``; ``""`` if nothing.

    In order: ``act`` is an :class:`Activation`; its name resolves back to it
    (``get_activation(act.name)`` has the same name, hyper-parameters and learnable parameters:
    activations are pickled by name); it passes :func:`actlab.testing.check_activation` (about
    10 ms, so its result is kept per name); its LaTeX is not empty.
    """
    from actlab.testing import check_activation  # testing imports this module

    if not isinstance(act, Activation):
        return (
            "cannot be checked: TypeError: its factory returned "
            f"{type(act).__name__}, not an Activation"
        )
    try:
        _, make = _resolve(act.name)
        back = make()
    except UnknownActivationError:
        return (
            f"is named {act.name!r}, which get_activation does not know (it is registered as "
            f"{key!r}): give the Activation the name it is registered under"
        )
    except Exception as err:
        return (
            f"is named {act.name!r}, which get_activation cannot resolve ({_one_line(err)}): "
            "a name starts with a letter or _, then letters, digits, _ or -"
        )
    if not isinstance(back, Activation) or (back.name, _params(back)) != (act.name, _params(act)):
        shown = f"{back.name!r} with {_params(back)}" if isinstance(back, Activation) else back
        return (
            f"is named {act.name!r} with {_params(act)}, but get_activation({act.name!r}) gives "
            f"{shown}: activations are pickled by name, so the name must hold every "
            "hyper-parameter that differs from the defaults"
        )
    if _CHECKED.get(act.name) is _FACTORIES[key]:
        return ""
    try:
        check_activation(act)
    except AssertionError as err:
        what = re.sub(r"^check_activation\('[^']*'\):\s*", "", " ".join(str(err).split()))
        return f"fails check_activation: {what}"
    except Exception as err:
        return f"cannot be checked: {_one_line(err)}{_line_of(err, origin)}"
    for name in ("latex", "latex_deriv"):
        if not str(getattr(act, name)).strip():
            return f"cannot be used: its {name} is empty (the gallery and the reports show it)"
    _CHECKED[act.name] = _FACTORIES[key]
    return ""


def _params(act: Activation) -> str:
    """``"a=4"``: the hyper-parameters and learnable parameters, for messages and comparison."""
    both = {**act.hyper, **{f"learnable {k}": v for k, v in act.params.items()}}
    return ", ".join(f"{k}={_number(v)}" for k, v in both.items()) or "no parameters"


def _line_of(err: BaseException, origin: Path) -> str:
    """`` (line N of FILE)``: the last frame of ``err``'s traceback in the user's file, if any."""
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(err.__traceback__)
        if Path(frame.filename) == origin
    ]
    return f" (line {lines[-1]} of {origin})" if lines else ""


def _registers_nothing(module: object) -> str:
    unregistered = [k for k, v in vars(module).items() if isinstance(v, Activation)]
    hint = (
        f"; it defines {', '.join(unregistered)} but does not register them" if unregistered else ""
    )
    return (
        "registers no activation: call actlab.register(...) for each one (see "
        f"examples/my_activations.py){hint}"
    )


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _identifier(text: str) -> str:
    return re.sub(r"\W", "_", text) or "file"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _name(family: str, hyper: Mapping[str, float], defaults: Mapping[str, float]) -> str:
    """Canonical name: the family, plus the hyper-parameters that differ from the defaults."""
    changed = {k: v for k, v in hyper.items() if v != defaults[k]}
    if not changed:
        return family
    return f"{family}({', '.join(f'{k}={_number(v)}' for k, v in changed.items())})"


def _number(value: float) -> str:
    """``f"{value:g}"`` where that is exact (``0.2``, ``1e-05``), else ``repr`` (``0.123456789``),
    so that a name gives back its hyper-parameters exactly."""
    text = f"{value:g}"
    return text if float(text) == value else repr(float(value))


def _positive(family: str, **values: float) -> None:
    for key, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"activation {family}: {key} must be a finite number > 0, got {value}")


def _finite(family: str, **values: float) -> None:
    for key, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"activation {family}: {key} must be finite, got {value}")


# --------------------------------------------------------------------------------------------
# Built-in activations. Each entry states its formula in its LaTeX; the tests check every
# derivative against autograd and every property against the values.

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def _times(value: float) -> str:
    """LaTeX of a coefficient followed by a thin space, or nothing for 1."""
    return "" if value == 1.0 else f"{value:g}\\,"


def _over(var: str, value: float) -> str:
    """LaTeX of ``var / value``, or ``var`` for 1."""
    return var if value == 1.0 else f"{var}/{value:g}"


def _step(x: Tensor) -> Tensor:
    """Indicator 1[x > 0] in the dtype of ``x``.

    Written as ``max(sign(x), 0)``: on CPU, comparisons, ``torch.where`` and bool-to-float casts
    are several times slower than plain arithmetic kernels (measured with 1.3M elements).
    """
    return torch.sign(x).clamp_(min=0)


def _two_slopes(x: Tensor, slope: float) -> Tensor:
    """1 for x > 0, ``slope`` otherwise (without ``torch.where``, see :func:`_step`)."""
    return _step(x).mul_(1.0 - slope).add_(slope)


register(
    Activation(
        name="identity",
        fn=lambda x: x,
        deriv=lambda x: torch.ones_like(x),
        latex=r"x",
        latex_deriv=r"1",
        bounded=False,
        monotonic=True,
        zero_centred=True,
        smooth=True,
        piecewise_linear=True,
        self_gated=False,
        reference="No activation: the network is one affine map.",
        at_inf=(-INF, INF),
        backward=lambda dh, x, h: dh,
    ),
    aliases=("linear", "none"),
)

register(
    Activation(
        name="sigmoid",
        fn=torch.sigmoid,
        deriv=lambda x: torch.sigmoid(x) * torch.sigmoid(-x),
        latex=r"\sigma(x) = \frac{1}{1 + e^{-x}}",
        latex_deriv=r"\sigma(x)\,(1 - \sigma(x))",
        bounded=True,
        monotonic=True,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Logistic function; classic units of Rumelhart et al. (1986).",
        at_inf=(0.0, 1.0),
        backward=lambda dh, x, h: _aten.sigmoid_backward.grad_input(dh, h, grad_input=dh),
        fn_out=lambda x, out: _aten.sigmoid.out(x, out=out),
    ),
    aliases=("logistic",),
)

register(
    Activation(
        name="tanh",
        fn=torch.tanh,
        deriv=lambda x: 1.0 - torch.tanh(x) ** 2,
        latex=r"\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}",
        latex_deriv=r"1 - \tanh^2(x)",
        bounded=True,
        monotonic=True,
        zero_centred=True,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Hyperbolic tangent; LeCun et al. (1998), 'Efficient BackProp'.",
        at_inf=(-1.0, 1.0),
        backward=lambda dh, x, h: _aten.tanh_backward.grad_input(dh, h, grad_input=dh),
        fn_out=lambda x, out: _aten.tanh.out(x, out=out),
    )
)

register(
    Activation(
        name="relu",
        fn=torch.relu,
        deriv=_step,
        latex=r"\max(0, x)",
        latex_deriv=r"\mathbb{1}[x > 0]",
        bounded=False,
        monotonic=True,
        zero_centred=False,
        smooth=False,
        piecewise_linear=True,
        self_gated=False,
        reference="Rectified linear unit; Nair & Hinton (2010), Glorot et al. (2011).",
        kinks=(0.0,),
        at_inf=(0.0, INF),
        backward=lambda dh, x, h: _aten.threshold_backward.grad_input(dh, h, 0, grad_input=dh),
        fn_out=lambda x, out: _aten.relu.out(x, out=out),
    )
)


@register
def leaky_relu(slope: float = 0.01) -> Activation:
    """LeakyReLU: x for x > 0, slope * x otherwise (Maas et al. 2013)."""
    _finite("leaky_relu", slope=slope)
    return Activation(
        name=_name("leaky_relu", {"slope": slope}, {"slope": 0.01}),
        family="leaky_relu",
        hyper={"slope": slope},
        fn=lambda x: F.leaky_relu(x, slope),
        deriv=lambda x: _two_slopes(x, slope),
        latex=rf"\begin{{cases}} x & x > 0 \\ {slope:g}\,x & x \le 0 \end{{cases}}",
        latex_deriv=rf"\begin{{cases}} 1 & x > 0 \\ {slope:g} & x \le 0 \end{{cases}}",
        bounded=False,
        monotonic=slope >= 0,
        zero_centred=slope == 1.0,
        smooth=slope == 1.0,
        piecewise_linear=True,
        self_gated=False,
        reference="Leaky ReLU; Maas, Hannun & Ng (2013).",
        kinks=() if slope == 1.0 else (0.0,),
        # slope = 0 at -inf: the limit is 0, but PyTorch's kernel computes slope * x there, and
        # 0 * -inf is NaN (it does today); how the kernel is written is not documented.
        at_inf=(-INF * math.copysign(1.0, slope) if slope != 0 else 0.0, INF),
        at_inf_or_nan=(slope == 0, False),
        backward=lambda dh, x, h: _aten.leaky_relu_backward.grad_input(
            dh, x, slope, False, grad_input=dh
        ),
        fn_out=lambda x, out: _aten.leaky_relu.out(x, slope, out=out),
    )


_ALIASES["lrelu"] = "leaky_relu"


@register
def prelu(init: float = 0.25) -> Activation:
    """PReLU: LeakyReLU whose negative slope is learned, one per layer (He et al. 2015)."""
    _finite("prelu", init=init)
    return Activation(
        name=_name("prelu", {"init": init}, {"init": 0.25}),
        family="prelu",
        hyper={"init": init},
        params={"slope": init},
        fn=lambda x, a: torch.where(x > 0, x, a * x),
        deriv=lambda x, a: torch.where(x > 0, torch.ones_like(x), a.expand_as(x)),
        param_derivs=lambda x, a: (torch.where(x > 0, torch.zeros_like(x), x),),
        latex=r"\begin{cases} x & x > 0 \\ \alpha\,x & x \le 0 \end{cases},"
        r"\ \alpha \text{ learned}",
        latex_deriv=r"\begin{cases} 1 & x > 0 \\ \alpha & x \le 0 \end{cases}",
        bounded=False,
        monotonic=init >= 0,
        zero_centred=False,
        smooth=False,
        piecewise_linear=True,
        self_gated=False,
        reference="Parametric ReLU; He et al. (2015), 'Delving deep into rectifiers'.",
        kinks=(0.0,),
        # init = 0 at -inf: a * x above is 0 * -inf, NaN by IEEE arithmetic (the limit is 0).
        at_inf=(-INF * math.copysign(1.0, init) if init != 0 else NAN, INF),
    )


@register
def elu(alpha: float = 1.0) -> Activation:
    """ELU: x for x > 0, alpha * (exp(x) - 1) otherwise (Clevert et al. 2016)."""
    _positive("elu", alpha=alpha)
    return Activation(
        name=_name("elu", {"alpha": alpha}, {"alpha": 1.0}),
        family="elu",
        hyper={"alpha": alpha},
        fn=lambda x: F.elu(x, alpha),
        deriv=lambda x: torch.where(
            x > 0, torch.ones_like(x), alpha * torch.exp(torch.clamp(x, max=0))
        ),
        latex=rf"\begin{{cases}} x & x > 0 \\ {_times(alpha)}(e^{{x}} - 1) & x \le 0 \end{{cases}}",
        latex_deriv=rf"\begin{{cases}} 1 & x > 0 \\ {_times(alpha)}e^{{x}} & x \le 0 \end{{cases}}",
        bounded=False,
        monotonic=True,
        zero_centred=False,
        smooth=alpha == 1.0,
        piecewise_linear=False,
        self_gated=False,
        reference="Exponential linear unit; Clevert, Unterthiner & Hochreiter (2016).",
        kinks=() if alpha == 1.0 else (0.0,),
        at_inf=(-alpha, INF),
        backward=lambda dh, x, h: _aten.elu_backward.grad_input(
            dh, alpha, 1.0, 1.0, False, x, grad_input=dh
        ),
        fn_out=lambda x, out: _aten.elu.out(x, alpha, out=out),
    )


register(
    Activation(
        name="selu",
        fn=F.selu,
        deriv=lambda x: torch.where(
            x > 0,
            torch.full_like(x, SELU_LAMBDA),
            SELU_LAMBDA * SELU_ALPHA * torch.exp(torch.clamp(x, max=0)),
        ),
        latex=r"\lambda \begin{cases} x & x > 0 \\ \alpha (e^{x} - 1) & x \le 0 \end{cases},"
        r"\ \lambda \approx 1.0507,\ \alpha \approx 1.6733",
        latex_deriv=r"\lambda \begin{cases} 1 & x > 0 \\ \alpha e^{x} & x \le 0 \end{cases}",
        bounded=False,
        monotonic=True,
        zero_centred=False,
        smooth=False,
        piecewise_linear=False,
        self_gated=False,
        reference="Scaled ELU, self-normalising networks; Klambauer et al. (2017).",
        kinks=(0.0,),
        at_inf=(-SELU_LAMBDA * SELU_ALPHA, INF),
        backward=lambda dh, x, h: _aten.elu_backward.grad_input(
            dh, SELU_ALPHA, SELU_LAMBDA, 1.0, False, x, grad_input=dh
        ),
        fn_out=lambda x, out: _aten.elu.out(x, SELU_ALPHA, SELU_LAMBDA, out=out),
    )
)


@register
def celu(alpha: float = 1.0) -> Activation:
    """CELU: max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) (Barron 2017)."""
    _positive("celu", alpha=alpha)
    return Activation(
        name=_name("celu", {"alpha": alpha}, {"alpha": 1.0}),
        family="celu",
        hyper={"alpha": alpha},
        fn=lambda x: F.celu(x, alpha),
        deriv=lambda x: torch.where(
            x > 0, torch.ones_like(x), torch.exp(torch.clamp(x, max=0) / alpha)
        ),
        latex=rf"\max(0, x) + \min(0, {_times(alpha)}(e^{{{_over('x', alpha)}}} - 1))",
        latex_deriv=rf"\begin{{cases}} 1 & x > 0 \\ e^{{{_over('x', alpha)}}} & x \le 0 "
        r"\end{cases}",
        bounded=False,
        monotonic=True,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Continuously differentiable ELU; Barron (2017).",
        at_inf=(-alpha, INF),
        backward=lambda dh, x, h: _aten.elu_backward.grad_input(
            dh, alpha, 1.0, 1.0 / alpha, False, x, grad_input=dh
        ),
        fn_out=lambda x, out: _aten.elu.out(x, alpha, 1.0, 1.0 / alpha, out=out),
    )


def _normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1.0 + torch.erf(x * _INV_SQRT_2))


def _normal_pdf(x: Tensor) -> Tensor:
    return _INV_SQRT_2PI * torch.exp(-0.5 * x * x)


register(
    Activation(
        name="gelu",
        fn=F.gelu,
        deriv=lambda x: _normal_cdf(x) + x * _normal_pdf(x),
        latex=r"x\,\Phi(x) = \tfrac{x}{2}\left(1 + \operatorname{erf}(x/\sqrt{2})\right)",
        latex_deriv=r"\Phi(x) + x\,\Phi'(x)",
        bounded=False,
        monotonic=False,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=True,
        reference="Gaussian error linear unit (exact); Hendrycks & Gimpel (2016).",
        # -inf: x Phi(x) meets -inf * 0 in PyTorch's kernel. +inf: float32 runs oneDNN's kernel,
        # NaN on AVX-512 CPUs and +inf on AVX2 ones (module docstring).
        at_inf=(0.0, INF),
        at_inf_or_nan=(True, True),
        backward=lambda dh, x, h: _aten.gelu_backward.grad_input(dh, x, grad_input=dh),
        fn_out=lambda x, out: _aten.gelu.out(x, out=out),
    ),
    aliases=("gelu_exact",),
)


def _gelu_tanh_deriv(x: Tensor) -> Tensor:
    inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
    t = torch.tanh(inner)
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_OVER_PI * (
        1.0 + 3 * 0.044715 * x * x
    )


register(
    Activation(
        name="gelu_tanh",
        fn=lambda x: F.gelu(x, approximate="tanh"),
        deriv=_gelu_tanh_deriv,
        latex=r"\tfrac{x}{2}\left(1 + \tanh\!\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right)",
        latex_deriv=r"\tfrac12(1 + \psi) + \tfrac{x}{2}(1 - \psi^2)\sqrt{2/\pi}\,"
        r"(1 + 0.134145\,x^2),\ \psi = \tanh\!\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)",
        bounded=False,
        monotonic=False,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=True,
        reference="GELU, tanh approximation; Hendrycks & Gimpel (2016).",
        at_inf=(0.0, INF),
        at_inf_or_nan=(True, False),  # x/2 (1 + tanh(u)) at -inf: -inf * 0
        backward=lambda dh, x, h: _aten.gelu_backward.grad_input(
            dh, x, approximate="tanh", grad_input=dh
        ),
        fn_out=lambda x, out: _aten.gelu.out(x, approximate="tanh", out=out),
    ),
    aliases=("gelu_approx",),
)

register(
    Activation(
        name="silu",
        fn=F.silu,
        deriv=lambda x: torch.sigmoid(x) * (1.0 + x * torch.sigmoid(-x)),
        latex=r"x\,\sigma(x)",
        latex_deriv=r"\sigma(x)\,\left(1 + x\,(1 - \sigma(x))\right)",
        bounded=False,
        monotonic=False,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=True,
        reference="SiLU / Swish; Elfwing et al. (2018), Ramachandran et al. (2017).",
        at_inf=(0.0, INF),
        at_inf_or_nan=(True, False),  # x sigma(x) at -inf: -inf * 0
        backward=lambda dh, x, h: _aten.silu_backward.grad_input(dh, x, grad_input=dh),
        fn_out=lambda x, out: _aten.silu.out(x, out=out),
    ),
    aliases=("swish",),
)


def _mish_deriv(x: Tensor) -> Tensor:
    t = torch.tanh(F.softplus(x))
    return t + x * torch.sigmoid(x) * (1.0 - t * t)


register(
    Activation(
        name="mish",
        fn=F.mish,
        deriv=_mish_deriv,
        latex=r"x \tanh(\operatorname{softplus}(x))",
        latex_deriv=r"\tanh(u) + x\,\sigma(x)\,(1 - \tanh^2(u)),\ u = \operatorname{softplus}(x)",
        bounded=False,
        monotonic=False,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=True,
        reference="Mish; Misra (2019).",
        at_inf=(0.0, INF),
        at_inf_or_nan=(True, False),  # x tanh(softplus(x)) at -inf: -inf * 0
        backward=lambda dh, x, h: _aten.mish_backward(dh, x),
        fn_out=lambda x, out: _aten.mish.out(x, out=out),
    )
)


@register
def softplus(beta: float = 1.0) -> Activation:
    """Softplus: log(1 + exp(beta x)) / beta (Dugas et al. 2001)."""
    _positive("softplus", beta=beta)
    # PyTorch's softplus returns x itself once beta * x > 20; so does the derivative below.
    return Activation(
        name=_name("softplus", {"beta": beta}, {"beta": 1.0}),
        family="softplus",
        hyper={"beta": beta},
        fn=lambda x: F.softplus(x, beta=beta),
        deriv=lambda x: torch.where(beta * x > 20.0, torch.ones_like(x), torch.sigmoid(beta * x)),
        latex=(
            r"\log\left(1 + e^{x}\right)"
            if beta == 1.0
            else rf"\tfrac{{1}}{{{beta:g}}} \log\left(1 + e^{{{beta:g} x}}\right)"
        ),
        latex_deriv=rf"\sigma({_times(beta)}x)",
        bounded=False,
        monotonic=True,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Softplus; Dugas et al. (2001).",
        at_inf=(0.0, INF),
        backward=lambda dh, x, h: _aten.softplus_backward.grad_input(
            dh, x, beta, 20.0, grad_input=dh
        ),
        fn_out=lambda x, out: _aten.softplus.out(x, beta, 20.0, out=out),
    )


register(
    Activation(
        name="softsign",
        # F.softsign's own formula, written here so that the NaN at +-inf (inf / inf) is this
        # code's, not a detail of PyTorch's that could change.
        fn=lambda x: x / (x.abs() + 1),
        deriv=lambda x: 1.0 / (1.0 + x.abs()) ** 2,
        latex=r"\frac{x}{1 + |x|}",
        latex_deriv=r"\frac{1}{(1 + |x|)^2}",
        bounded=True,
        monotonic=True,
        zero_centred=True,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Softsign; Bergstra et al. (2009), Glorot & Bengio (2010).",
        at_inf=(NAN, NAN),  # inf / inf, although the limits are -1 and 1
    )
)


@register
def hardtanh(min_val: float = -1.0, max_val: float = 1.0) -> Activation:
    """Hardtanh: clamp(x, min_val, max_val)."""
    _finite("hardtanh", min_val=min_val, max_val=max_val)
    if not min_val < max_val:
        raise ValueError(f"activation hardtanh: need min_val < max_val, got {min_val}, {max_val}")
    return Activation(
        name=_name(
            "hardtanh", {"min_val": min_val, "max_val": max_val}, {"min_val": -1.0, "max_val": 1.0}
        ),
        family="hardtanh",
        hyper={"min_val": min_val, "max_val": max_val},
        fn=lambda x: F.hardtanh(x, min_val, max_val),
        deriv=lambda x: ((x > min_val) & (x < max_val)).to(x.dtype),
        latex=rf"\min({max_val:g}, \max({min_val:g}, x))",
        latex_deriv=rf"\mathbb{{1}}[{min_val:g} < x < {max_val:g}]",
        bounded=True,
        monotonic=True,
        zero_centred=min_val == -max_val,
        smooth=False,
        piecewise_linear=True,
        self_gated=False,
        reference="Hard tanh; Collobert (2004).",
        kinks=(min_val, max_val),
        at_inf=(min_val, max_val),
        backward=lambda dh, x, h: _aten.hardtanh_backward.grad_input(
            dh, x, min_val, max_val, grad_input=dh
        ),
        fn_out=lambda x, out: _aten.hardtanh.out(x, min_val, max_val, out=out),
    )


register(
    Activation(
        name="hardsigmoid",
        fn=F.hardsigmoid,
        deriv=lambda x: ((x > -3.0) & (x < 3.0)).to(x.dtype) / 6.0,
        latex=r"\frac{\operatorname{ReLU6}(x + 3)}{6}",
        latex_deriv=r"\tfrac16\,\mathbb{1}[-3 < x < 3]",
        bounded=True,
        monotonic=True,
        zero_centred=False,
        smooth=False,
        piecewise_linear=True,
        self_gated=False,
        reference="Hard sigmoid as in MobileNetV3; Howard et al. (2019).",
        kinks=(-3.0, 3.0),
        at_inf=(0.0, 1.0),
        backward=lambda dh, x, h: _aten.hardsigmoid_backward.grad_input(dh, x, grad_input=dh),
        fn_out=lambda x, out: _aten.hardsigmoid.out(x, out=out),
    )
)

register(
    Activation(
        name="hardswish",
        fn=F.hardswish,
        deriv=lambda x: torch.where(
            x <= -3.0,
            torch.zeros_like(x),
            torch.where(x < 3.0, (2.0 * x + 3.0) / 6.0, torch.ones_like(x)),
        ),
        latex=r"x\,\frac{\operatorname{ReLU6}(x + 3)}{6}",
        latex_deriv=r"\begin{cases} 0 & x \le -3 \\ (2x + 3)/6 & -3 < x < 3 \\ "
        r"1 & x \ge 3 \end{cases}",
        bounded=False,
        monotonic=False,
        zero_centred=False,
        smooth=False,
        piecewise_linear=False,
        self_gated=True,
        reference="Hard swish; Howard et al. (2019), 'Searching for MobileNetV3'.",
        kinks=(-3.0, 3.0),
        # PyTorch documents 0 for x <= -3, but its kernel computes x * relu6(x + 3) / 6, NaN at
        # -inf (-inf * 0).
        at_inf=(0.0, INF),
        at_inf_or_nan=(True, False),
        backward=lambda dh, x, h: _aten.hardswish_backward.out(dh, x, out=dh),
        fn_out=lambda x, out: _aten.hardswish.out(x, out=out),
    )
)

register(
    Activation(
        name="relu6",
        fn=F.relu6,
        deriv=lambda x: ((x > 0.0) & (x < 6.0)).to(x.dtype),
        latex=r"\min(6, \max(0, x))",
        latex_deriv=r"\mathbb{1}[0 < x < 6]",
        bounded=True,
        monotonic=True,
        zero_centred=False,
        smooth=False,
        piecewise_linear=True,
        self_gated=False,
        reference="ReLU capped at 6; Krizhevsky (2010), used in MobileNets.",
        kinks=(0.0, 6.0),
        at_inf=(0.0, 6.0),
        backward=lambda dh, x, h: _aten.hardtanh_backward.grad_input(
            dh, x, 0.0, 6.0, grad_input=dh
        ),
        fn_out=lambda x, out: _aten.hardtanh.out(x, 0.0, 6.0, out=out),
    )
)

register(
    Activation(
        name="logsigmoid",
        fn=F.logsigmoid,
        deriv=lambda x: torch.sigmoid(-x),
        latex=r"\log \sigma(x) = -\log(1 + e^{-x})",
        latex_deriv=r"1 - \sigma(x)",
        bounded=False,
        monotonic=True,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Log of the logistic function (PyTorch's LogSigmoid).",
        at_inf=(-INF, 0.0),
    )
)

register(
    Activation(
        name="tanhshrink",
        fn=F.tanhshrink,
        deriv=lambda x: torch.tanh(x) ** 2,
        latex=r"x - \tanh(x)",
        latex_deriv=r"\tanh^2(x)",
        bounded=False,
        monotonic=True,
        zero_centred=True,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Tanhshrink (PyTorch); a shrinkage function from sparse coding.",
        at_inf=(-INF, INF),
    )
)


@register
def softshrink(lambd: float = 0.5) -> Activation:
    """Soft shrinkage: x - lambd for x > lambd, x + lambd for x < -lambd, 0 between."""
    _positive("softshrink", lambd=lambd)
    return Activation(
        name=_name("softshrink", {"lambd": lambd}, {"lambd": 0.5}),
        family="softshrink",
        hyper={"lambd": lambd},
        fn=lambda x: F.softshrink(x, lambd),
        deriv=lambda x: (x.abs() > lambd).to(x.dtype),
        latex=rf"\operatorname{{sign}}(x)\max(0, |x| - {lambd:g})",
        latex_deriv=rf"\mathbb{{1}}[|x| > {lambd:g}]",
        bounded=False,
        monotonic=True,
        zero_centred=True,
        smooth=False,
        piecewise_linear=True,
        self_gated=False,
        reference="Soft thresholding; Donoho (1995).",
        kinks=(-lambd, lambd),
        at_inf=(-INF, INF),
    )


@register
def hardshrink(lambd: float = 0.5) -> Activation:
    """Hard shrinkage: x where |x| > lambd, 0 elsewhere (discontinuous at +-lambd)."""
    _positive("hardshrink", lambd=lambd)
    return Activation(
        name=_name("hardshrink", {"lambd": lambd}, {"lambd": 0.5}),
        family="hardshrink",
        hyper={"lambd": lambd},
        fn=lambda x: F.hardshrink(x, lambd),
        deriv=lambda x: (x.abs() > lambd).to(x.dtype),
        latex=rf"x\,\mathbb{{1}}[|x| > {lambd:g}]",
        latex_deriv=rf"\mathbb{{1}}[|x| > {lambd:g}]",
        bounded=False,
        monotonic=True,
        zero_centred=True,
        smooth=False,
        piecewise_linear=True,
        self_gated=False,
        reference="Hard thresholding; Donoho & Johnstone (1994).",
        kinks=(-lambd, lambd),
        at_inf=(-INF, INF),
    )


@register
def sine(w0: float = 1.0) -> Activation:
    """Sine: sin(w0 x), the SIREN activation (Sitzmann et al. 2020 use w0 = 30 in layer 1)."""
    _positive("sine", w0=w0)
    return Activation(
        name=_name("sine", {"w0": w0}, {"w0": 1.0}),
        family="sine",
        hyper={"w0": w0},
        fn=lambda x: torch.sin(w0 * x),
        deriv=lambda x: w0 * torch.cos(w0 * x),
        latex=rf"\sin({w0:g}\,x)" if w0 != 1.0 else r"\sin(x)",
        latex_deriv=rf"{w0:g}\cos({w0:g}\,x)" if w0 != 1.0 else r"\cos(x)",
        bounded=True,
        monotonic=False,
        zero_centred=True,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Sinusoidal representation networks (SIREN); Sitzmann et al. (2020).",
        at_inf=(NAN, NAN),  # no limit; sin(+-inf) is NaN in IEEE arithmetic
    )


_ALIASES["sin"] = "sine"
_ALIASES["siren"] = "sine"

register(
    Activation(
        name="gaussian",
        fn=lambda x: torch.exp(-x * x),
        deriv=lambda x: -2.0 * x * torch.exp(-x * x),
        latex=r"e^{-x^2}",
        latex_deriv=r"-2x\,e^{-x^2}",
        bounded=True,
        monotonic=False,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Gaussian bump, as in radial-basis networks (Broomhead & Lowe 1988).",
        at_inf=(0.0, 0.0),
    )
)

register(
    Activation(
        name="binary_step",
        fn=lambda x: torch.where(torch.isnan(x), x, _step(x)),
        deriv=lambda x: torch.zeros_like(x),
        latex=r"\mathbb{1}[x > 0]",
        latex_deriv=r"0 \text{ (almost everywhere: no gradient reaches earlier layers)}",
        bounded=True,
        monotonic=True,
        zero_centred=False,
        smooth=False,
        piecewise_linear=True,
        self_gated=False,
        reference="Heaviside step of the perceptron (Rosenblatt 1958); no gradient, for teaching.",
        kinks=(0.0,),
        at_inf=(0.0, 1.0),
    ),
    aliases=("step", "heaviside"),
)


@register
def penalized_tanh(a: float = 0.25) -> Activation:
    """Penalized tanh: tanh(x) for x > 0, a tanh(x) otherwise (Xu et al. 2016, Eger et al. 2018)."""
    _finite("penalized_tanh", a=a)
    return Activation(
        name=_name("penalized_tanh", {"a": a}, {"a": 0.25}),
        family="penalized_tanh",
        hyper={"a": a},
        fn=lambda x: torch.where(x > 0, torch.tanh(x), a * torch.tanh(x)),
        deriv=lambda x: torch.where(
            x > 0, 1.0 - torch.tanh(x) ** 2, a * (1.0 - torch.tanh(x) ** 2)
        ),
        latex=rf"\begin{{cases}} \tanh(x) & x > 0 \\ {a:g}\tanh(x) & x \le 0 \end{{cases}}",
        latex_deriv=rf"\begin{{cases}} 1 - \tanh^2(x) & x > 0 \\ "
        rf"{a:g}\,(1 - \tanh^2(x)) & x \le 0 \end{{cases}}",
        bounded=True,
        monotonic=a >= 0,
        zero_centred=a == 1.0,
        smooth=a == 1.0,
        piecewise_linear=False,
        self_gated=False,
        reference="Penalized tanh; Xu et al. (2016), most stable of 21 in Eger et al. (2018).",
        kinks=() if a == 1.0 else (0.0,),
        at_inf=(-a, 1.0),
    )
