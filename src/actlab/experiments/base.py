"""What every experiment is made of, and the registry that lists them.

An experiment is one package ``actlab/experiments/NAME/`` whose modules define

* a frozen ``Config`` dataclass, each field with a docstring (it becomes the CLI's ``--help``);
* ``presets``: at least ``smoke`` (seconds on a CPU: what the tests run), ``default`` (what the
  tutorial uses) and ``full`` (paper quality);
* ``run(cfg, chunks) -> Results``: the computation, with no file I/O. Work is split into
  independent chunks through ``chunks(key, fn, work)``, which either calls ``fn()`` or returns
  the result saved by an earlier, interrupted run (the store decides; the experiment never
  knows). Chunks that may run at the same time go through :func:`run_chunks` (``chunks,
  [(key, fn, work), ...]`` -> their results, in order): a runner with a ``many`` method (every
  :class:`ChunkRunner`) may run them in parallel, the Ray backend (:mod:`actlab.backends`) as
  Ray tasks; the inline and store runners do them one by one. Such an ``fn`` must pickle
  (``cloudpickle``: a lambda over module-level functions and a frozen config does) and return
  what :func:`torch.save` can write. Progress: ``run`` declares its total work with
  :func:`actlab.progress.expect` first, gives each chunk its share as ``work``, and long loops
  inside report with :func:`actlab.progress.advance` (the trainer does, one unit per optimiser
  step);
* ``figures(results) -> {name: Figure}`` and ``report(results) -> str`` (Markdown that refers to
  the figures as ``figures/NAME.png``), computed from the results alone.

and whose ``__init__`` registers it with :func:`register_experiment` (figures and report through
:func:`deferred`, so that they are imported only when drawn).

An experiment that reads other runs (the side-by-side chapter) names them in ``needs``; its
``run(cfg, chunks, inputs)`` then takes ``inputs``, each needed experiment's :class:`Results` by
name, and its ``Config`` has a field ``inputs_preset`` (the preset of the runs it reads). The CLI
runs (or reuses) those runs first and hands their results over; the experiment still reads no
file, and is recomputed on every call (its inputs may have changed).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

__all__ = [
    "Results",
    "Experiment",
    "ChunkRunner",
    "run_inline",
    "run_chunks",
    "register_experiment",
    "get_experiment",
    "list_experiments",
    "UnknownExperimentError",
    "field_docs",
    "check_config",
    "check_device",
    "check_ints",
    "check_activations",
    "check_choice",
    "deferred",
]

# Columns every metrics table has; experiments add their member columns (activation, seed, ...).
METRIC_COLUMNS = ("member", "step", "metric", "value")


@dataclass
class Results:
    """Everything an experiment produced, in memory; the store writes and reads it.

    Attributes:
        metrics: Tidy table, one row per member x step x metric, with columns ``member``,
            ``step``, ``metric``, ``value`` and the member's descriptors (activation, seed,
            learning rate, ...). Metric keys are ``probe/stat``.
        arrays: Named arrays (NumPy), e.g. ``"hidden"`` of shape (member, epoch, layer, input,
            unit).
        axes: For each array, the names of its axes, in order.
        coords: Optional coordinate values for an axis, keyed ``"array/axis"``.
        summary: Scalars and small tables (JSON-serialisable) computed by the experiment.
    """

    metrics: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=METRIC_COLUMNS))
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    axes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    coords: dict[str, list] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in METRIC_COLUMNS if c not in self.metrics.columns]
        if missing:
            raise ValueError(f"metrics table lacks columns {missing}")
        for name, array in self.arrays.items():
            axes = self.axes.get(name)
            if axes is None or len(axes) != np.ndim(array):
                raise ValueError(
                    f"array {name!r} of shape {np.shape(array)} needs one axis name "
                    f"per dimension, got {axes}"
                )


Chunk = tuple[str, Callable[[], Any], float]
"""``(key, fn, work)``: one unit of work for :meth:`ChunkRunner.many`."""


class ChunkRunner:
    """Runs an experiment's chunks: ``chunks(key, fn, work=0)`` is the result of ``fn()``,
    computed now or restored from an earlier run; ``work`` is what the chunk counts for in
    :mod:`actlab.progress` (declare the run's total with :func:`actlab.progress.expect` before
    the first chunk).

    ``chunks.many([(key, fn, work), ...])`` is the list of their results, in order. This base
    class does them one by one, each through ``__call__``; a parallel backend overrides it.
    Subclasses implement ``__call__``.
    """

    def __call__(self, key: str, fn: Callable[[], Any], work: float = 0) -> Any:
        raise NotImplementedError

    def many(self, items: Sequence[Chunk]) -> list[Any]:
        return [self(key, fn, work) for key, fn, work in items]


class _Inline(ChunkRunner):
    """The chunk runner that keeps nothing: always calls ``fn()``."""

    def __call__(self, key: str, fn: Callable[[], Any], work: float = 0) -> Any:
        from actlab import progress

        with progress.span(work):
            return fn()

    def __repr__(self) -> str:
        return "run_inline"


run_inline = _Inline()
"""The chunk runner that keeps nothing: always calls ``fn()`` (``many``: one by one)."""


def run_chunks(chunks: Callable[..., Any], items: Sequence[Chunk]) -> list[Any]:
    """The results of ``items`` (``(key, fn, work)`` triples, independent of each other), in
    order: ``chunks.many(items)`` where the runner has it (it may run them in parallel), else
    ``chunks(key, fn, work)`` for each in turn (a plain function is a runner too)."""
    many = getattr(chunks, "many", None)
    if many is not None:
        return list(many(items))
    return [chunks(key, fn, work) for key, fn, work in items]


class Experiment(Protocol):
    """The module-level API of an experiment (see the module docstring)."""

    name: str
    title: str
    Config: type
    presets: Mapping[str, Any]

    def run(self, cfg: Any, chunks: ChunkRunner = run_inline) -> Results: ...

    def figures(self, results: Results) -> dict[str, Any]: ...

    def report(self, results: Results) -> str: ...


@dataclass(frozen=True)
class ExperimentSpec:
    """A registered experiment: its name, a one-line title and its functions."""

    name: str
    title: str
    Config: type
    presets: Mapping[str, Any]
    run: Callable[..., Results]
    figures: Callable[[Results], dict[str, Any]]
    report: Callable[[Results], str]
    order: int = 100
    needs: tuple[str, ...] = ()
    """Experiments whose results ``run`` takes as ``inputs`` (see the module docstring)."""
    sweep: Any = None
    """An :class:`actlab.sweep.SweepAdapter` if ``actlab sweep`` can sweep this experiment's
    settings (which fields may differ within one ensemble pass, its metrics, its pass)."""

    def preset(self, name: str) -> Any:
        if name not in self.presets:
            raise ValueError(
                f"unknown preset {name!r} for experiment {self.name!r}; "
                f"valid: {', '.join(self.presets)}"
            )
        return self.presets[name]


class UnknownExperimentError(ValueError):
    """Raised for an experiment name that is not registered."""


_EXPERIMENTS: dict[str, ExperimentSpec] = {}


def register_experiment(spec: ExperimentSpec) -> ExperimentSpec:
    """Add an experiment; its presets must include smoke, default and full."""
    missing = {"smoke", "default", "full"} - set(spec.presets)
    if missing:
        raise ValueError(f"experiment {spec.name!r} lacks presets {sorted(missing)}")
    for preset in spec.presets.values():
        if not isinstance(preset, spec.Config):
            raise TypeError(f"experiment {spec.name!r}: preset {preset!r} is not a {spec.Config}")
    _EXPERIMENTS[spec.name] = spec
    return spec


def list_experiments() -> list[str]:
    """Registered experiment names, in tutorial order."""
    _load_builtin()
    return sorted(_EXPERIMENTS, key=lambda n: (_EXPERIMENTS[n].order, n))


def get_experiment(name: str) -> ExperimentSpec:
    """The registered experiment ``name``; an unknown name raises with the closest match."""
    _load_builtin()
    if name not in _EXPERIMENTS:
        close = difflib.get_close_matches(name, list(_EXPERIMENTS), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownExperimentError(
            f"unknown experiment {name!r}.{hint} Valid: {', '.join(list_experiments())}"
        )
    return _EXPERIMENTS[name]


def check_activations(cfg: Any, *keys: str) -> None:
    """Each field named in ``keys`` (one activation name, or a sequence of them) names
    registered activations.

    Raises:
        ValueError: ``"KEY: unknown activation ..."``, with the registry's list of valid names and
            the closest match.
    """
    from actlab.activations import get_activation

    for key in keys:
        value = getattr(cfg, key)
        for name in (value,) if isinstance(value, str) else value:
            try:
                get_activation(name)
            except ValueError as err:
                raise type(err)(f"{key}: {err}") from None


def check_choice(cfg: Any, key: str, choices: tuple[str, ...]) -> None:
    """Field ``key`` is one of ``choices``; the error names the field, the valid values and the
    closest one."""
    value = getattr(cfg, key)
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}.{hint}")


def deferred(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported on the first call: an experiment's figures and report pull in
    matplotlib and Markdown, which listing or running it does not need."""
    import importlib

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"``{module}.{name}``, imported when first called."
    return call


def _load_builtin() -> None:
    # Importing the package imports every experiment module, and each registers itself.
    import actlab.experiments  # noqa: F401


def field_docs(config_cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (read from its source), for ``--help``."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(config_cls)))
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(getattr(nxt, "value", None), ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def check_config(cfg: Any) -> None:
    """Generic validation of a config: every float field is finite (the message names it), and
    a ``device`` field names a device this machine has (:func:`check_device`).

    Experiments call it from ``__post_init__`` and add their own range checks.
    """
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{f.name} must be finite, got {value}")
    if any(f.name == "device" for f in dataclasses.fields(cfg)):
        check_device(cfg.device)


def check_device(device: str) -> None:
    """``device`` is a PyTorch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``) that exists
    here.

    Raises:
        ValueError: ``"device 'gpu0' is not a PyTorch device ..."``, or ``"device 'cuda'
            requested but CUDA is not available"`` (also for an index past the last GPU).
    """
    import torch

    try:
        if not isinstance(device, str):
            raise TypeError
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device {device!r} is not a PyTorch device (e.g. cpu, cuda, cuda:1)"
        ) from None
    if dev.type == "cpu":
        return
    if dev.type != "cuda":
        raise ValueError(f"device {device!r}: only cpu and cuda are supported")
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} requested but this machine has {torch.cuda.device_count()} "
            "CUDA device(s)"
        )


def check_ints(cfg: Any, minimums: dict[str, int]) -> None:
    """Each field named in ``minimums`` is an integer (not a bool) at least its minimum.

    Raises:
        ValueError: naming the first field that is not, with its value.
    """
    for key, low in minimums.items():
        value = getattr(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
