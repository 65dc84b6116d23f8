"""Sweeps: one experiment's settings over a grid, random draws and seeds, packed into as few
ensemble passes as the shapes allow.

Words used here:

* **point**: one member's full settings, an instance of the experiment's ``Point`` dataclass
  (its :class:`SweepAdapter`); for deep-mlp ``activation, lr, seed, depth, width, epochs, ...``;
* **member fields**: the fields that may differ between the members of one ensemble pass
  (deep-mlp: activation, learning rate, seed); every other field is a **shape field**;
* **setting**: a point without its seed (one row of the table, with a mean and a 95% interval
  over the seeds);
* **pass**: members whose shape fields are equal, at most ``max_members`` of them, trained as one
  ensemble. A pass is a self-contained unit of work: a :class:`PassTask` (plain, picklable data)
  in, a DataFrame with one row per member out (:func:`run_task`). The run store keeps each
  finished pass as one chunk, so an interrupted sweep resumes pass by pass.

Members are ``grid x random x seeds``: the Cartesian product of the ``--grid`` values (keys in
the order given), times ``N`` random points, times seeds ``0..K-1``. A random point draws each
key from its own range ``[lo, hi]``: log-uniform when ``lo > 0`` and ``hi / lo >= 100``,
uniform otherwise; integer fields stay integers. The draws come from a generator seeded by the
experiment's name, key by key in sorted order, so the same command draws the same points
whatever the order of its ``--random`` keys. A command with its ``--grid`` or ``--random``
arguments in another order is the same sweep (:func:`canonical`): the CLI finds its folder and
resumes it in the stored order.

No file I/O here except :func:`save`, which writes through a :class:`actlab.store.RunStore`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import math
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from actlab import progress
from actlab.seeding import derive_seed

__all__ = [
    "SweepAdapter",
    "SweepError",
    "Plan",
    "PassTask",
    "Estimate",
    "adapter_of",
    "make_plan",
    "run_task",
    "run",
    "table",
    "estimate",
    "describe",
    "format_table",
    "plot_metric",
    "figure",
    "save",
    "LOG_SPAN",
    "canonical",
    "pass_key",
    "Y_LOG_SPAN",
    "MAX_LINES",
]

LOG_SPAN = 100.0
"""A range or axis whose positive ends differ by this factor or more is treated on a log
scale (random draws log-uniform, figure axes logarithmic)."""


Y_LOG_SPAN = 10.0
"""An error metric's figure axis is logarithmic when its means span this factor or more."""

MAX_LINES = 12
"""Most series in one panel; beyond it the best ones are drawn and the panel says so."""


class SweepError(ValueError):
    """A sweep that cannot be planned (bad keys, values or ranges); the CLI prints one line."""


@dataclass(frozen=True)
class SweepAdapter:
    """How to sweep one experiment (the ``sweep`` field of its :class:`ExperimentSpec`).

    Attributes:
        Point: Frozen dataclass of one member's settings; validates itself in
            ``__post_init__`` (a bad value raises ``ValueError``). ``--grid``, ``--random`` and
            ``--set`` keys are its fields; it must have an integer field ``seed``.
        member_fields: Fields that may differ within one pass (``seed`` among them); members of
            a pass are ordered by these (so the engine sees runs of equal activations).
        metrics: Metric columns :attr:`run_pass` returns besides ``diverged``.
        plotted: The metrics the summary figure shows, one panel each.
        base: The experiment's preset config -> the point every unswept field comes from.
        default_grid: Preset config -> ``{field: values}`` swept when the user neither sweeps
            nor sets that field (deep-mlp: the preset's activations).
        default_seeds: Preset config -> the number of seeds when ``--seeds`` is not given.
        run_pass: ``run_pass(point, members) -> DataFrame``: train the members (a DataFrame of
            member fields, one row each; the shape fields come from ``point``) as one ensemble;
            one row per member, in order, with the columns ``metrics`` and ``diverged`` (bool).
            Members' numbers must not depend on which other members share the pass.
        steps: Point -> optimiser steps of its pass (progress units and the time estimate).
        cost: Point -> relative work of one member for one step (e.g. FLOPs), for scaling the
            calibration step to passes of other shapes.
        shorten: ``(point, steps)`` -> the same point trained for ``steps`` steps only (the
            calibration step of ``--dry-run``).
        bounds: Metric -> ``(lo, hi)``, the range it can take (``(0, inf)`` for an MSE): the
            table clips its interval to it (:func:`actlab.stats.mean_ci`'s ``bounds``: clipping,
            not log space; the mean is untouched). Metrics not named are not clipped.
        references: Metric -> a value the figure marks with a dashed line (a floor ratio's 1).
    """

    Point: type
    member_fields: tuple[str, ...]
    metrics: tuple[str, ...]
    plotted: tuple[str, ...]
    base: Callable[[Any], Any]
    default_grid: Callable[[Any], dict[str, tuple]]
    default_seeds: Callable[[Any], int]
    run_pass: Callable[[Any, pd.DataFrame], pd.DataFrame]
    steps: Callable[[Any], int]
    cost: Callable[[Any], float]
    shorten: Callable[[Any, int], Any]
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict, hash=False)
    references: dict[str, float] = field(default_factory=dict, hash=False)

    @property
    def fields(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.Point)]

    @property
    def shape_fields(self) -> list[str]:
        return [f for f in self.fields if f not in self.member_fields]


def adapter_of(spec: Any) -> SweepAdapter:
    """The sweep adapter of experiment ``spec``; raises :class:`SweepError` naming the
    experiments that have one."""
    if spec.sweep is None:
        from actlab.experiments import get_experiment, list_experiments

        able = [n for n in list_experiments() if get_experiment(n).sweep is not None]
        raise SweepError(f"{spec.name} cannot be swept; experiments that can: {', '.join(able)}")
    return spec.sweep


@dataclass(frozen=True)
class Plan:
    """Everything a sweep will do, fixed before any training (saved as ``config.json``).

    Attributes:
        experiment: Experiment name.
        preset: Preset the unswept fields come from.
        base: The point every member starts from (every field; ``--set`` applied).
        grid: Swept key -> its values, in the order given (defaults of the adapter last).
        default_keys: The keys of ``grid`` that the adapter added (the user swept others).
        ranges: ``--random`` key -> ``[lo, hi]``.
        random: ``--random`` key -> its ``N`` drawn values (point i takes value i of each).
        seeds: Seeds ``0..seeds-1`` per setting.
        max_members: Most members in one pass.
        passes: Member ids of each pass (ids number :meth:`members`' rows).
    """

    experiment: str
    preset: str
    base: dict[str, Any]
    grid: dict[str, list]
    ranges: dict[str, list]
    random: dict[str, list]
    seeds: int
    max_members: int
    passes: list[list[int]] = field(default_factory=list)
    default_keys: list[str] = field(default_factory=list)

    @property
    def n_random(self) -> int:
        return len(next(iter(self.random.values()))) if self.random else 0

    @property
    def swept(self) -> list[str]:
        """Keys that vary across settings: the user's grid keys, random keys, then the grid keys
        the adapter added (the figure's x axis is the first)."""
        mine = [k for k in self.grid if k not in self.default_keys]
        return [*mine, *self.random, *self.default_keys]

    def members(self) -> pd.DataFrame:
        """One row per member: ``member`` and every point field; grid combinations outermost
        (first key slowest), then random points, then seeds."""
        combos = list(itertools.product(*self.grid.values()))
        randoms = range(self.n_random) if self.random else [None]
        rows = []
        for combo, r, seed in itertools.product(combos, randoms, range(self.seeds)):
            row = dict(self.base)
            row.update(zip(self.grid, combo, strict=True))
            if r is not None:
                row.update({k: v[r] for k, v in self.random.items()})
            row["seed"] = seed
            rows.append(row)
        frame = pd.DataFrame(rows, columns=list(self.base))
        frame.insert(0, "member", np.arange(len(frame)))
        return frame

    def tasks(self) -> list[PassTask]:
        """One :class:`PassTask` per pass, in order."""
        members = self.members().set_index("member")
        adapter = _adapter(self.experiment)
        out = []
        for ids in self.passes:
            rows = members.loc[ids]
            point = {k: _plain(v) for k, v in rows.iloc[0].items()}
            cols = list(adapter.member_fields)
            listed = [
                {"member": int(m), **{k: _plain(v) for k, v in zip(cols, vals, strict=True)}}
                for m, vals in zip(ids, rows[cols].itertuples(index=False), strict=True)
            ]
            out.append(PassTask(self.experiment, point, listed))
        return out


@dataclass(frozen=True)
class PassTask:
    """One ensemble pass as plain data (picklable; what a worker process or Ray task gets).

    Attributes:
        experiment: Experiment name (its adapter is looked up in the registry).
        point: Every field of a point of this pass (its shape fields are the pass's).
        members: One dict per member: ``member`` (its id) and its member fields.
    """

    experiment: str
    point: dict[str, Any]
    members: list[dict[str, Any]]


def _adapter(name: str) -> SweepAdapter:
    from actlab.experiments import get_experiment

    return adapter_of(get_experiment(name))


def _plain(value: Any) -> Any:
    """NumPy scalars as Python ones (JSON, dataclass checks)."""
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------- planning
def make_plan(
    spec: Any,
    preset: str,
    overrides: dict[str, Any],
    grid: dict[str, list],
    ranges: dict[str, tuple[float, float]],
    n_random: int = 0,
    seeds: int | None = None,
    max_members: int = 1000,
) -> Plan:
    """The plan of a sweep of ``spec`` (values already parsed to the fields' types).

    Args:
        spec: The experiment.
        preset: Its preset whose config gives the unswept fields.
        overrides: ``--set`` values.
        grid: ``--grid`` key -> values.
        ranges: ``--random`` key -> ``(lo, hi)``.
        n_random: ``N`` of ``--random`` (>= 1 when ``ranges`` is given).
        seeds: Seeds per setting (default: the adapter's default for the preset).
        max_members: Most members in one pass (>= 1).

    Raises:
        SweepError: for anything the user can fix (one line, naming the key or value).
    """
    adapter = adapter_of(spec)
    fields = adapter.fields
    hints = typing.get_type_hints(adapter.Point)
    try:
        cfg = spec.preset(preset)
    except ValueError as err:
        raise SweepError(str(err)) from None
    for source, keys in (("--set", overrides), ("--grid", grid), ("--random", ranges)):
        if "seed" in keys:
            raise SweepError(f"{source} seed: seeds are set by --seeds K (seeds 0..K-1)")
        for key in keys:
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise SweepError(f"unknown field {key!r}.{hint} Fields: {', '.join(fields)}")
    given = [*grid, *ranges, *overrides]
    twice = [k for k in given if given.count(k) > 1]
    if twice:
        raise SweepError(f"{twice[0]} is given twice (--grid, --random, --set exclude each other)")
    for key, values in grid.items():
        if not values:
            raise SweepError(f"--grid {key}= needs at least one value")
        if len(set(values)) != len(values):
            raise SweepError(f"--grid {key}: a value is repeated in {values}")
    if ranges and (isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 1):
        raise SweepError(f"--random N needs N >= 1, got {n_random!r}")
    if n_random and not ranges:
        raise SweepError("--random N needs at least one KEY=LO:HI")
    seeds = adapter.default_seeds(cfg) if seeds is None else seeds
    for name, value in (("--seeds", seeds), ("--max-members", max_members)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SweepError(f"{name} must be an integer >= 1, got {value!r}")
    try:
        base = dataclasses.replace(adapter.base(cfg), **overrides)
    except (ValueError, TypeError) as err:
        raise SweepError(f"{spec.name}: {err}") from None
    grid = {k: list(v) for k, v in grid.items()}
    defaults = []
    for key, values in adapter.default_grid(cfg).items():
        if key not in grid and key not in ranges and key not in overrides:
            grid[key] = list(values)
            defaults.append(key)
    random = _draw(spec.name, ranges, n_random, hints)
    plan = Plan(
        experiment=spec.name,
        preset=preset,
        base=dataclasses.asdict(base),
        grid=grid,
        ranges={k: [lo, hi] for k, (lo, hi) in ranges.items()},
        random=random,
        seeds=seeds,
        max_members=max_members,
        default_keys=defaults,
    )
    members = plan.members()
    _check_points(spec.name, adapter, members)
    return dataclasses.replace(plan, passes=_pack(adapter, members, max_members))


def _draw(name: str, ranges: dict, n: int, hints: dict) -> dict[str, list]:
    """``n`` values per key of ``ranges`` (see the module docstring), key by key."""
    gen = np.random.default_rng(derive_seed(0, "sweep-random", name))
    out = {}
    # drawn in sorted key order (the --random order does not change the points), returned in
    # the order given
    for key, (lo, hi) in sorted(ranges.items()):
        tp = hints[key]
        if tp not in (int, float):
            raise SweepError(f"--random {key}: only number fields can be drawn, not {tp}")
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise SweepError(f"--random {key}={lo}:{hi} needs finite lo <= hi")
        log = lo > 0 and hi / lo >= LOG_SPAN
        if tp is int:
            if log:  # log-uniform over [lo, hi + 1), floored: each integer its share
                u = np.exp(gen.uniform(math.log(lo), math.log(hi + 1), n))
                values = np.minimum(np.floor(u), hi).astype(int)
            else:
                values = gen.integers(lo, hi + 1, n)
            out[key] = [int(v) for v in values]
        else:
            u = gen.uniform(math.log(lo), math.log(hi), n) if log else gen.uniform(lo, hi, n)
            out[key] = [float(v) for v in (np.exp(u) if log else u)]
    return {k: out[k] for k in ranges}


def _sort_key(value: Any) -> tuple:
    return (type(value).__name__, value)


def canonical(config: dict[str, Any]) -> dict[str, Any]:
    """A plan's record (``config.json``'s ``config``) without what the order of the command's
    arguments decides: ``grid``, ``ranges`` and ``random`` keyed in sorted order, each grid
    key's values sorted, ``default_keys`` sorted, and without ``passes`` (member ids number the
    members in grid order; the passes follow from the rest). Two plans with equal canonical
    records train the same members; the CLI then keeps the stored plan's order (its passes
    are the saved chunks)."""
    out = {k: v for k, v in config.items() if k != "passes"}
    out["grid"] = {k: sorted(v, key=_sort_key) for k, v in sorted(config["grid"].items())}
    for key in ("ranges", "random"):
        out[key] = dict(sorted(config[key].items()))
    out["default_keys"] = sorted(config.get("default_keys", []))
    return out


def pass_key(i: int) -> str:
    """The chunk key of pass ``i`` (its results in the run folder)."""
    return f"pass-{i:04d}"


def _check_points(name: str, adapter: SweepAdapter, members: pd.DataFrame) -> None:
    """Every distinct setting is a valid point (its own checks, before any work starts)."""
    fields = adapter.fields
    seen = set()
    for values in members[fields].itertuples(index=False):
        key = tuple(v for f, v in zip(fields, values, strict=True) if f != "seed")
        if key in seen:
            continue
        seen.add(key)
        try:
            adapter.Point(**{f: _plain(v) for f, v in zip(fields, values, strict=True)})
        except (ValueError, TypeError) as err:
            raise SweepError(f"{name}: {err}") from None


def _pack(adapter: SweepAdapter, members: pd.DataFrame, max_members: int) -> list[list[int]]:
    """Members grouped by equal shape fields (groups in order of first appearance), ordered
    within a group by the member fields, each group split into the fewest passes of at most
    ``max_members`` and of near-equal sizes."""
    shape = adapter.shape_fields
    groups: dict[tuple, list[int]] = {}
    for m, values in zip(members.member, members[shape].itertuples(index=False), strict=True):
        groups.setdefault(tuple(values), []).append(int(m))
    order = list(adapter.member_fields)
    by_member = members.set_index("member")[order]
    passes = []
    for ids in groups.values():
        ids = sorted(ids, key=lambda m: tuple(by_member.loc[m]))
        parts = math.ceil(len(ids) / max_members)
        passes += [[int(m) for m in part] for part in np.array_split(ids, parts)]
    return passes


# ---------------------------------------------------------------------- running
def run_task(task: PassTask) -> pd.DataFrame:
    """Train one pass; one row per member: ``member``, the adapter's metrics, ``diverged``."""
    adapter = _adapter(task.experiment)
    frame = pd.DataFrame(task.members)
    point = adapter.Point(**task.point)
    out = adapter.run_pass(point, frame[list(adapter.member_fields)].reset_index(drop=True))
    missing = [c for c in (*adapter.metrics, "diverged") if c not in out.columns]
    if len(out) != len(frame) or missing:
        raise RuntimeError(
            f"{task.experiment}'s run_pass returned {len(out)} rows for {len(frame)} members"
            f" (missing columns: {missing})"
        )
    out = out[[*adapter.metrics, "diverged"]].reset_index(drop=True)
    out.insert(0, "member", frame.member.to_numpy())
    return out


def run(plan: Plan, chunks: Callable[..., Any] | None = None) -> pd.DataFrame:
    """Train every pass (one chunk each, key ``pass-NNNN``, handed to ``chunks`` together
    through :func:`actlab.experiments.base.run_chunks`; default runner:
    :func:`~actlab.experiments.base.run_inline`); returns :meth:`Plan.members` with
    the metric columns and ``diverged`` joined on. No file I/O."""
    # imported here: experiments import this module (their adapters), and base's package
    # imports every experiment
    from actlab.experiments.base import run_chunks, run_inline

    chunks = run_inline if chunks is None else chunks
    adapter = _adapter(plan.experiment)
    tasks = plan.tasks()
    steps = [adapter.steps(adapter.Point(**t.point)) for t in tasks]
    progress.expect(sum(steps))  # one unit per optimiser step of a pass's ensemble
    # all passes at once: a runner that can (Ray) trains them in parallel
    items = [
        (pass_key(i), functools.partial(run_task, task), n)
        for i, (task, n) in enumerate(zip(tasks, steps, strict=True))
    ]
    parts = run_chunks(chunks, items)
    results = pd.concat(parts, ignore_index=True)
    return plan.members().merge(results, on="member", validate="one_to_one")


def table(plan: Plan, results: pd.DataFrame) -> pd.DataFrame:
    """One row per setting (every field but ``seed``, in the order of the members): ``n``
    (seeds run), ``diverged`` (how many of them diverged), ``n_finite`` (``n - diverged``: the
    seeds every mean and interval is over) and per metric ``METRIC/mean``, ``METRIC/lo``,
    ``METRIC/hi``: the mean and 95% Student-t interval over those ``n_finite`` seeds
    (:func:`actlab.stats.mean_ci`; ``lo``, ``hi`` NaN with fewer than two; all NaN when every
    seed diverged). A setting with ``diverged > 0`` reports its survivors only.

    What the interval covers: the spread over **initialisation seeds** ``0..n-1`` on **one
    fixed data draw** (the point's ``data_seed``; not over data draws), and a seed gives every
    activation and rate the same initial weights (so settings sharing seeds are paired, and
    their intervals overlap more than independent ones would). Intervals are clipped to the
    adapter's ``bounds`` (an MSE's to ``[0, inf)``; clipping, not log space)."""
    from actlab.stats import mean_ci

    adapter = _adapter(plan.experiment)
    keys = [f for f in adapter.fields if f != "seed"]
    rows = []
    for values, group in results.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, values, strict=True))
        ok = ~group.diverged.to_numpy(dtype=bool)
        row["n"] = len(group)
        row["diverged"] = int((~ok).sum())
        row["n_finite"] = int(ok.sum())
        for metric in adapter.metrics:
            values = group[metric].to_numpy(dtype=np.float64)[ok]
            stat = mean_ci(values, bounds=adapter.bounds.get(metric))
            row.update({f"{metric}/{k}": stat[k] for k in ("mean", "lo", "hi")})
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- dry run
@dataclass(frozen=True)
class Estimate:
    """The time a sweep should take, from a calibration step.

    Attributes:
        seconds: Estimated total.
        per_pass: Estimated seconds of each pass.
        calibrated_pass: Index of the pass timed (the one with the most work per step).
        steps_timed: Steps of the longer calibration run.
        step_seconds: Seconds per step of that pass.
        overhead_seconds: Seconds of a pass outside its steps (data, initialisation, metrics).
    """

    seconds: float
    per_pass: list[float]
    calibrated_pass: int
    steps_timed: int
    step_seconds: float
    overhead_seconds: float


def estimate(plan: Plan, budget: float = 2.0) -> Estimate:
    """Time the pass with the most work per step for a few steps and scale.

    The pass is trained for 1 step (warm-up), then ``k1 = 2`` and ``k2`` steps, each twice,
    keeping the faster time (``k2`` doubled from 4 until the difference takes ``budget``
    seconds or ``k2`` reaches the pass's steps):
    ``step = (t2 - t1) / (k2 - k1)``, ``overhead = max(t1 - k1 step, 0)``. A pass ``p`` takes
    ``overhead + steps_p * step * work_p / work_cal`` with ``work = members x cost(point)``;
    a smaller pass uses the engine less efficiently per member (its steps come out
    underestimated) but has less overhead (overestimated). Trains but writes nothing.
    """
    adapter = _adapter(plan.experiment)
    tasks = plan.tasks()
    points = [adapter.Point(**t.point) for t in tasks]
    work = [len(t.members) * adapter.cost(p) for t, p in zip(tasks, points, strict=True)]
    steps = [adapter.steps(p) for p in points]
    i = int(np.argmax(work))

    def timed(k: int) -> float:
        # the faster of two runs: on a shared machine the slower one measures the neighbours
        short = dataclasses.replace(
            tasks[i], point=dataclasses.asdict(adapter.shorten(points[i], k))
        )
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            run_task(short)
            seconds.append(time.perf_counter() - start)
        return min(seconds)

    run_task(dataclasses.replace(tasks[i], point=dataclasses.asdict(adapter.shorten(points[i], 1))))
    k1, k2 = 2, max(3, min(4, steps[i]))
    t1 = timed(k1)
    t2 = timed(k2)
    while t2 - t1 < budget and k2 < steps[i]:
        k2 = min(2 * k2, steps[i])
        t2 = timed(k2)
    step = max(t2 - t1, 0.0) / (k2 - k1)
    overhead = max(t1 - k1 * step, 0.0)
    per_pass = [overhead + n * step * w / work[i] for n, w in zip(steps, work, strict=True)]
    return Estimate(float(sum(per_pass)), per_pass, i, k2, step, overhead)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def describe(plan: Plan, est: Estimate | None = None, limit: int = 20) -> str:
    """The plan in words: members, passes with their sizes and shapes, the estimated time."""
    adapter = _adapter(plan.experiment)
    members = plan.members()
    sizes = [f"{len(v)} {k}" for k, v in plan.grid.items()]
    if plan.random:
        sizes.append(f"{plan.n_random} random ({', '.join(plan.random)})")
    settings = " x ".join(sizes) if sizes else "1 setting"
    lines = [
        f"sweep of {plan.experiment} (preset {plan.preset}): {len(members)} members = "
        f"{settings} x {plan.seeds} seeds; {len(plan.passes)} pass"
        f"{'es' if len(plan.passes) > 1 else ''} of at most "
        f"{plan.max_members}",
        f"{'pass':>6s} {'members':>8s} {'steps':>7s}  shape",
    ]
    tasks = plan.tasks()
    shape = adapter.shape_fields
    for i, task in enumerate(tasks[:limit]):
        point = adapter.Point(**task.point)
        text = ", ".join(f"{k}={task.point[k]}" for k in shape)
        lines.append(f"{i:6d} {len(task.members):8d} {adapter.steps(point):7d}  {text}")
    if len(tasks) > limit:
        lines.append(f"   ... {len(tasks) - limit} more passes")
    if est is not None:
        cal = tasks[est.calibrated_pass]
        lines.append(
            f"estimated time: {_duration(est.seconds)} (calibration: pass "
            f"{est.calibrated_pass}, {len(cal.members)} members, {est.steps_timed} steps: "
            f"{est.step_seconds * 1e3:.3g} ms per step, {est.overhead_seconds:.2g} s per pass "
            "besides)"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- output
def _varying(plan: Plan) -> list[str]:
    return [k for k in plan.swept if len(set(plan.grid.get(k, plan.random.get(k, [])))) > 1]


def format_table(plan: Plan, tab: pd.DataFrame) -> str:
    """The table for a terminal: the swept keys, ``n``, ``diverged`` and ``mean [lo, hi]`` of
    every metric (3 significant digits)."""
    adapter = _adapter(plan.experiment)
    keys = _varying(plan) or plan.swept
    out = tab[keys + [c for c in ("n", "diverged", "n_finite") if c in tab]].copy()

    def g(x: float) -> str:
        return "nan" if not math.isfinite(x) else f"{x:.3g}"

    for metric in adapter.metrics:
        out[metric] = [
            g(m) if not math.isfinite(lo) else f"{g(m)} [{g(lo)}, {g(hi)}]"
            for m, lo, hi in zip(*(tab[f"{metric}/{k}"] for k in ("mean", "lo", "hi")), strict=True)
        ]
    return out.to_string(index=False)


def _x_key(plan: Plan) -> str:
    """The first swept key that takes more than one value (else the first swept key)."""
    if plan.swept:
        return (_varying(plan) or plan.swept)[0]
    return [f for f in _adapter(plan.experiment).member_fields if f != "seed"][0]


def _log_axis(values: np.ndarray, span: float = LOG_SPAN) -> bool:
    """Finite ``values`` all > 0 and spanning ``span`` x or more."""
    v = values[np.isfinite(values)]
    return bool(v.size and (v > 0).all() and v.max() / v.min() >= span)


def plot_metric(
    plan: Plan, tab: pd.DataFrame, metric: str, ax: Any = None, max_lines: int = MAX_LINES
) -> Any:
    """``metric`` (mean and 95% interval over seeds) against the first swept key that takes
    more than one value (the user's grid keys first, then random keys, then keys the adapter
    added), one series per setting of the other swept keys (colour: the series' activation
    where its points share one, fixed per activation; line style tells apart series of one
    activation).

    Numeric x: lines with a band from ``lo`` to ``hi``, on a log axis where the values span
    :data:`LOG_SPAN` x or more, integer ticks for an integer field. Categorical x (activation):
    points with error bars, side by side, not connected. y on a log axis for a metric bounded
    below by 0 (the adapter's ``bounds``) whose finite means are all > 0 and span
    :data:`Y_LOG_SPAN` x or more; a dashed line at the adapter's ``references`` (deep-mlp: 1 for
    the floor ratio). Settings with diverged seeds are marked at the top (see :func:`table`).
    With more than ``max_lines`` series only the ``max_lines`` with the lowest mean of the
    metric are drawn, and the panel's title says so. A legend always. Returns the Axes."""
    from actlab.plotting.style import PALETTE, color_of

    if ax is None:
        from actlab.plotting.style import new_figure

        ax = new_figure().subplots()
    adapter = _adapter(plan.experiment)
    x_key = _x_key(plan)
    others = [k for k in _varying(plan) if k != x_key and (x_key in plan.grid or k in plan.grid)]
    categorical = not pd.api.types.is_numeric_dtype(tab[x_key])
    cats = list(dict.fromkeys(tab[x_key])) if categorical else []
    styles = ("-", "--", ":", "-.")
    per_colour: dict[str, int] = {}
    groups = list(tab.groupby(others, sort=False)) if others else [((), tab)]
    hidden: list = []  # series not drawn; their diverged seeds are still marked
    if len(groups) > max_lines:
        score = [
            np.nanmin(np.r_[g[f"{metric}/mean"].to_numpy(dtype=float), np.inf]) for _, g in groups
        ]
        keep = sorted(np.argsort(score, kind="stable")[:max_lines])
        ax.set_title(
            f"best {max_lines} of {len(groups)} settings (lowest mean {metric});"
            " the others' diverged seeds in grey",
            fontsize=7,
        )
        hidden = [g for i, g in enumerate(groups) if i not in set(keep)]
        groups = [groups[i] for i in keep]
    width = 0.6 / max(len(groups), 1)  # side by side within a category
    diverged: list[tuple[float, Any, int, int]] = []
    for n, (values, line) in enumerate(groups):
        values = values if isinstance(values, tuple) else (values,)
        setting = dict(zip(others, values, strict=True))
        acts = set(line["activation"]) if "activation" in line and x_key != "activation" else ()
        colour = color_of(next(iter(acts))) if len(acts) == 1 else PALETTE[n % len(PALETTE)]
        k = per_colour[colour] = per_colour.get(colour, -1) + 1
        line = line.sort_values(x_key, key=lambda s: s.map(cats.index) if categorical else s)
        mean, lo, hi = (line[f"{metric}/{s}"].to_numpy(dtype=float) for s in ("mean", "lo", "hi"))
        label = ", ".join(f"{k_}={_short(v)}" for k_, v in setting.items()) or "mean, 95% interval"
        if categorical:
            x = np.array([cats.index(v) for v in line[x_key]], dtype=float)
            x += (n - (len(groups) - 1) / 2) * width
            err = np.vstack([mean - lo, hi - mean])
            ax.errorbar(
                x,
                mean,
                yerr=np.where(np.isfinite(err), err, 0.0),
                fmt="os^vDP"[k % 6],
                ms=4,
                color=colour,
                capsize=2,
                lw=1,
                label=label,
            )
        else:
            x = line[x_key].to_numpy(dtype=float)
            ax.plot(x, mean, styles[k % len(styles)], marker="o", ms=3, color=colour, label=label)
            ax.fill_between(x, lo, hi, color=colour, alpha=0.15, lw=0)
        if "diverged" in line:
            bad = line["diverged"].to_numpy(dtype=int) > 0
            diverged.extend(
                (xi, colour, int(d), int(m))
                for xi, d, m in zip(x[bad], line["diverged"][bad], line["n"][bad], strict=True)
            )
    for _, line in hidden:
        bad = line[line["diverged"].to_numpy(dtype=int) > 0] if "diverged" in line else line[:0]
        diverged.extend(
            (cats.index(v) if categorical else float(v), "0.5", int(d), int(m))
            for v, d, m in zip(bad[x_key], bad["diverged"], bad["n"], strict=True)
        )
    for value in [adapter.references[metric]] if metric in adapter.references else []:
        ax.axhline(value, ls="--", lw=0.8, color="0.35", label=f"{metric} = {value:g}")
    if diverged:
        # at the top of the panel (x in data, y in axes units): every setting with a diverged
        # seed, its count; its mean (if any) is over the survivors only
        top = ax.get_xaxis_transform()
        for xi, colour, d, m in diverged:
            full = d == m
            ax.plot(
                xi,
                0.97,
                "x" if full else "v",
                color=colour,
                ms=6 if full else 5,
                mfc=colour if full else "none",
                transform=top,
                clip_on=False,
            )
            ax.annotate(
                f"{d}/{m}",
                (xi, 0.97),
                xycoords=top,
                xytext=(4, -2),
                textcoords="offset points",
                fontsize=6,
                color=colour,
            )
        ax.plot([], [], "x", color="0.3", label="diverged: all seeds (no mean)")
        ax.plot([], [], "v", color="0.3", mfc="none", label="diverged: some seeds (mean of rest)")
    if categorical:
        ax.set_xticks(range(len(cats)), [str(c) for c in cats], rotation=30, ha="right")
        if x_key == "activation":
            for tick, cat in zip(ax.get_xticklabels(), cats, strict=True):
                tick.set_color(color_of(str(cat)))
    else:
        xs = np.unique(tab[x_key].to_numpy(dtype=float))
        if _log_axis(xs):
            ax.set_xscale("log")
        if pd.api.types.is_integer_dtype(tab[x_key]):
            from matplotlib.ticker import MaxNLocator, NullLocator

            if len(xs) <= 12:
                ax.set_xticks(xs, [str(int(v)) for v in xs])
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.xaxis.set_minor_locator(NullLocator())
    bounded = adapter.bounds.get(metric, (-math.inf, math.inf))[0] == 0
    if bounded and _log_axis(tab[f"{metric}/mean"].to_numpy(dtype=float), Y_LOG_SPAN):
        ax.set_yscale("log")
    ax.set_xlabel(x_key)
    ax.set_ylabel(metric)
    if len(groups) > 4:  # below the panel, out of the data's way
        ax.legend(
            fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False
        )
    else:
        ax.legend(fontsize=7)
    return ax


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _title(plan: Plan) -> str:
    """What the bands are over: init seeds on one data draw, the same weights per seed."""
    data = plan.base.get("data_seed")
    if "data_seed" in plan.grid or "data_seed" in plan.random:
        draw = "one data draw per setting (data_seed as swept)"
    elif data is not None:
        draw = f"one fixed data draw (data_seed={data})"
    else:
        draw = "one fixed data draw"
    return (
        f"{plan.experiment} sweep: mean and 95% interval over {plan.seeds} initialisation seeds"
        f" on {draw};\na seed starts every setting from the same weights"
    )


def figure(plan: Plan, tab: pd.DataFrame) -> Any:
    """The summary figure: one panel per plotted metric (:func:`plot_metric`)."""
    from actlab.plotting.style import new_figure, style

    adapter = _adapter(plan.experiment)
    with style():
        x_key = _x_key(plan)
        others = [
            k for k in _varying(plan) if k != x_key and (x_key in plan.grid or k in plan.grid)
        ]
        series = len(tab.groupby(others, sort=False)) if others else 1
        legend = 0.13 * math.ceil((min(series, MAX_LINES) + 3) / 2) if series > 4 else 0.0
        fig = new_figure(figsize=(4.2 * len(adapter.plotted), 3.4 + legend))
        axes = np.atleast_1d(fig.subplots(1, len(adapter.plotted)))
        for ax, metric in zip(axes, adapter.plotted, strict=True):
            plot_metric(plan, tab, metric, ax=ax)
        fig.suptitle(_title(plan), fontsize=9)
    return fig


def save(store: Any, results: pd.DataFrame, tab: pd.DataFrame, fig: Any) -> None:
    """Write ``members.parquet`` (one row per member), ``table.csv`` and ``table.parquet`` (one
    per setting) and ``figures/summary.png`` into the run folder of ``store``, atomically."""
    import io

    from actlab.store import atomic_write_bytes

    for name, frame in (("members", results), ("table", tab)):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(store.path / f"{name}.parquet", buffer.getvalue())
    atomic_write_bytes(store.path / "table.csv", tab.to_csv(index=False).encode())
    store.save_figure("summary", fig)
