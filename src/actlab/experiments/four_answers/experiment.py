"""The four answers side by side: one row per activation, one cell per question, each computed
from the runs of ``gradient-flow``, ``unit-states``, ``stability`` and ``capacity``.

A cell is a :func:`actlab.stats.mean_ci` dict over that run's seeds (``mean``, ``lo``, ``hi``,
``n``) plus what it needs to be read: the setting it was measured at and, for the columns with a
better direction, a mark -- ``"best"`` (the best mean), ``"within noise"`` (its 95% interval
overlaps the best's) or ``"worse"``. Nothing here trains a network: the cells are read from
the four runs' summaries (the rate cells from stability's arrays, see :func:`rate_cells`).

Columns (``COLUMNS``):

* ``gradient``: log10 of the backward signal's ratio, layer 1 over layer D, at initialisation
  (gradient-flow's deepest and widest network, its headline initialisation); closest to 0 (a
  ratio of 1) is best, and ``direction`` says whether it vanishes (interval below 0), explodes
  (above 0) or is kept (interval holds 0).
* ``off``: the fraction of hidden units dead (ReLU) or saturated (tanh, sigmoid) at the end of
  unit-states' training, the kind that applies to the activation; no mark (two definitions).
* ``dormant``: the fraction of τ-dormant units at the end (one definition for all); lower is
  better. A network whose training loss fell by less than half (unit-states' rule) is not
  ranked in either unit column; a fraction that is 0 in every seed gets the Wilson interval
  of its pooled count of units.
* ``rate/OPT``: the largest rate of optimiser OPT at stability's deepest depth at which the
  network was stable *and* learned (computed from stability's arrays; geometric mean over
  seeds); higher is better. Its interval is compared half-open, up to the next grid point.
* ``capacity``: capacity's held-out relative error (log10 of test MSE / Var f) on one target at
  the shape where the rates were tuned (the largest when every shape was), marked by the
  chapter's own paired verdicts; lower is better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from actlab.experiments.base import (
    ChunkRunner,
    Results,
    check_choice,
    check_config,
    get_experiment,
    run_inline,
)
from actlab.experiments.capacity.experiment import TARGETS
from actlab.experiments.stability.experiment import FLAT_FIT
from actlab.experiments.unit_states.experiment import TASKS
from actlab.stats import as_float, mean_ci, proportion_ci

__all__ = [
    "Config",
    "presets",
    "run",
    "NEEDS",
    "COLUMNS",
    "mark_column",
    "overlaps",
    "distance_from_zero",
    "direction",
]

NEEDS = ("gradient-flow", "unit-states", "stability", "capacity")

OPTIMIZERS = ("gd", "momentum", "adam")


@dataclass(frozen=True)
class Config:
    inputs_preset: str = "default"
    """Preset of the four runs this chapter reads (their folders are NAME-PRESET)."""
    units_task: str = "regression"
    """Which of unit-states' tasks the 'off' and 'dormant' cells come from."""
    dormant_tau: float = 0.1
    """τ of the dormant cell (one of unit-states' taus)."""
    optimizers: tuple[str, ...] = ("gd", "adam")
    """Optimisers whose largest stable rate gets a column (gd, momentum, adam)."""
    capacity_target: str = "sin4"
    """Target of the capacity cell (one of the capacity run's targets)."""

    def __post_init__(self) -> None:
        check_config(self)
        if self.inputs_preset not in ("smoke", "default", "full"):
            raise ValueError(
                f"inputs_preset must be smoke, default or full, got {self.inputs_preset!r}"
            )
        check_choice(self, "units_task", TASKS)
        check_choice(self, "capacity_target", tuple(TARGETS))
        bad = [o for o in self.optimizers if o not in OPTIMIZERS]
        if bad or not self.optimizers:
            raise ValueError(f"optimizers must be some of {', '.join(OPTIMIZERS)}, got {bad}")
        if not 0 <= self.dormant_tau < 1:
            raise ValueError(f"dormant_tau must be in [0, 1), got {self.dormant_tau}")


presets: dict[str, Config] = {
    "smoke": Config(inputs_preset="smoke", capacity_target="sin1"),
    "default": Config(),
    "full": Config(inputs_preset="full"),
}

COLUMNS = {
    "gradient": "one",
    "off": None,
    "dormant": "lower",
    "rate": "higher",
    "capacity": "lower",
}
"""The better direction of each column kind (``rate`` stands for ``rate/OPT``): ``"one"`` is a
log10 ratio whose best value is 0 (see :func:`mark_column`), ``None`` is not ranked."""


# -------------------------------------------------------------------------------- marks
def _bounds(c: dict[str, Any]) -> tuple[float, float, bool]:
    """``(lo, hi, hi_open)`` of the interval a cell is compared by: ``edge_hi`` (an exclusive
    upper end, a rate cell's next grid point) where the cell has one, else ``[lo, hi]``."""
    lo = as_float(c.get("lo"))
    lo = -math.inf if math.isnan(lo) else lo
    if c.get("edge_hi") is not None:
        return lo, as_float(c["edge_hi"]), True
    hi = as_float(c.get("hi"))
    return lo, (math.inf if math.isnan(hi) else hi), False


def overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether the intervals of two cells share a point (a missing bound is no bound: a
    one-seed cell overlaps everything it could be). A rate cell's interval is half-open,
    ``[lo, edge_hi)``: every seed's stability edge lies below the next grid point."""
    a_lo, a_hi, a_open = _bounds(a)
    b_lo, b_hi, b_open = _bounds(b)
    below_b = a_lo < b_hi if b_open else a_lo <= b_hi
    below_a = b_lo < a_hi if a_open else b_lo <= a_hi
    return below_b and below_a


def distance_from_zero(cell: dict[str, Any]) -> dict[str, float]:
    """The cell of ``|x|`` for a cell of ``x`` (a log10 ratio whose best value is 0): its mean
    is ``|mean|`` and its interval the set of ``|x|`` for ``x`` in ``[lo, hi]``."""
    mean, lo, hi = as_float(cell.get("mean")), as_float(cell.get("lo")), as_float(cell.get("hi"))
    if lo > 0:
        return {"mean": abs(mean), "lo": lo, "hi": hi}
    if hi < 0:
        return {"mean": abs(mean), "lo": -hi, "hi": -lo}
    return {"mean": abs(mean), "lo": 0.0 if lo <= 0 <= hi else lo, "hi": max(abs(lo), abs(hi))}


def mark_column(cells: dict[str, dict[str, Any]], better: str) -> dict[str, str]:
    """Mark each cell of one column against the best: ``"best"`` (the best mean, every cell
    with that mean on a tie), ``"within noise"`` (its interval overlaps a best's), else
    ``"worse"``.

    Args:
        cells: activation -> cell (``mean``, ``lo``, ``hi``, optionally ``edge_hi``,
            ``censored`` and ``unranked``). A cell with ``unranked`` set (a reason) is marked
            ``""``; so is one with neither a mean nor bounds. A cell censored ``"below"`` (some
            seed had no value on the grid: its mean is an upper bound) is never the best, and a
            cell with a NaN mean but bounds is compared by its interval only.
        better: ``"higher"``, ``"lower"``, or ``"one"`` (a log10 ratio: closest to 0 is best,
            compared through :func:`distance_from_zero`).
    """
    if better == "one":
        return mark_column({a: distance_from_zero(c) for a, c in cells.items()}, "lower")
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher', 'lower' or 'one', got {better!r}")
    sign = 1.0 if better == "higher" else -1.0
    ranked = {a: c for a, c in cells.items() if not c.get("unranked")}
    scored = {a: sign * as_float(c.get("mean")) for a, c in ranked.items()}
    valid = [
        a for a, s in scored.items() if not math.isnan(s) and ranked[a].get("censored") != "below"
    ]
    marks = {a: "" for a in cells}
    if not valid:
        return marks
    top = max(scored[a] for a in valid)
    best = [a for a in valid if scored[a] == top]
    for a, c in ranked.items():
        if a in best:
            marks[a] = "best"
        elif (
            math.isnan(scored[a])
            and math.isnan(as_float(c.get("lo")))
            and math.isnan(as_float(c.get("hi")))
        ):
            continue
        else:
            near = any(overlaps(c, cells[b]) for b in best)
            marks[a] = "within noise" if near else "worse"
    return marks


def direction(cell: dict[str, Any]) -> str:
    """For a log10 ratio layer 1 / layer D: ``"vanishes"`` (its interval lies below 0),
    ``"explodes"`` (above 0), ``"kept"`` (it holds 0, or there is no interval)."""
    lo, hi = as_float(cell.get("lo")), as_float(cell.get("hi"))
    if hi < 0:
        return "vanishes"
    if lo > 0:
        return "explodes"
    return "kept"


# -------------------------------------------------------------------------------- cells
def _stat(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d.get(k) for k in ("mean", "lo", "hi", "n")}


def gradient_cells(summary: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict]]:
    """gradient-flow: log10 of the per-example backward signal's ratio, layer 1 / layer D, at
    the deepest depth and widest width, under the headline initialisation."""
    rows = summary["table"]
    depth = max(r["depth"] for r in rows)
    width = max(r["width"] for r in rows)
    init = summary["headline"]["init"]
    cells = {}
    for r in rows:
        if (r["depth"], r["width"], r["init"]) == (depth, width, init):
            cell = _stat(r["log10_ratio_delta"])
            cell["pred"] = r["pred_log10_ratio_delta"]
            cell["direction"] = direction(cell)
            cells[r["activation"]] = cell
    kept: dict[str, list[str]] = {}  # the other initialisations: activations whose ratio holds 1
    for r in rows:
        if (r["depth"], r["width"]) == (depth, width) and r["init"] != init:
            if direction(_stat(r["log10_ratio_delta"])) == "kept":
                kept.setdefault(r["init"], []).append(r["activation"])
            else:
                kept.setdefault(r["init"], [])
    setting = {"depth": depth, "width": width, "init": init, "seeds": summary["seeds"]}
    return {**setting, "kept_at_other_inits": kept}, cells


def fraction_cell(stat: dict[str, Any], units: int) -> dict[str, Any]:
    """A fraction of units over seeds (a :func:`actlab.stats.mean_ci` dict over ``n`` seeds of
    ``units`` units each). Where every seed gave exactly 0 (or 1) the t-interval has no width,
    which would claim certainty: the interval is then the Wilson interval of the pooled count,
    0 (or all) of ``units * n`` units (``pooled`` says so)."""
    cell = _stat(stat)
    mean, lo, hi, n = (
        as_float(cell["mean"]),
        as_float(cell["lo"]),
        as_float(cell["hi"]),
        int(cell.get("n") or 0),
    )
    if n and lo == hi == mean and mean in (0.0, 1.0):
        total = units * n
        w = proportion_ci(round(mean * total), total)
        cell.update(lo=w["lo"], hi=w["hi"], pooled=total)
    return cell


def unit_cells(summary: dict[str, Any], task: str, tau: float) -> tuple[dict, dict, dict]:
    """unit-states: at the last step of ``task``, the fraction of units off in the way that
    applies (dead for an activation that can die, else saturated for a bounded one) and the
    fraction τ-dormant (see :func:`fraction_cell`). An activation whose training loss fell by
    less than half (unit-states' rule) gets ``unranked="barely trained"``."""
    if task not in summary["tasks"]:
        raise ValueError(f"units_task must be one of {', '.join(summary['tasks'])}, got {task!r}")
    keys = {float(k.split("_", 1)[1]): k for k in summary["fractions"] if k.startswith("dormant_")}
    if tau not in keys:
        raise ValueError(f"dormant_tau must be one of unit-states' taus {sorted(keys)}, got {tau}")
    units = summary["depth"] * summary["width"]  # hidden units of one network
    off, dormant = {}, {}
    for r in summary["tasks"][task]:
        act = r["activation"]
        applies = summary["applicable"][act]
        kind = "dead" if applies.get("dead") else "saturated" if applies.get("saturated") else None
        # unit-states' own rule: a loss that fell by less than half barely trained, so its
        # unit states after training say little about training (not ranked here).
        slow = as_float(r["loss_end"]["mean"]) > 0.5 * as_float(r["loss_start"]["mean"])
        note = {"unranked": "barely trained"} if slow else {}
        loss = {"loss_start": r["loss_start"]["mean"], "loss_end": r["loss_end"]["mean"]}
        if kind is not None:
            off[act] = {**fraction_cell(r[kind]["end"], units), "kind": kind, **note, **loss}
        dormant[act] = {**fraction_cell(r[keys[tau]]["end"], units), **note, **loss}
    setting = {
        "task": task,
        "tau": tau,
        "depth": summary["depth"],
        "width": summary["width"],
        "steps": summary["steps"],
        "seeds": summary["seeds"],
        "init": summary.get("init"),
    }
    return setting, off, dormant


def learned_rates(
    rates: np.ndarray,
    diverged_step: np.ndarray,
    final_train: np.ndarray,
    init_loss: np.ndarray,
    var: float,
) -> np.ndarray:
    """Per seed, the largest rate of the grid at which the member was stable by stability's
    rule (it did not diverge and ended below its initial training loss) *and* learned (ended
    below ``FLAT_FIT`` of the targets' variance, stability's line for a flat fit); NaN where it
    learned at no rate. ``diverged_step``, ``final_train``: ``(rate, seed)``; ``init_loss``:
    ``(seed,)``."""
    rates = np.asarray(rates, dtype=np.float64)
    final = np.asarray(final_train, dtype=np.float64)
    ok = (np.asarray(diverged_step) < 0) & (final < np.asarray(init_loss)[None, :])
    ok &= final < FLAT_FIT * var
    best = np.where(ok, rates[:, None], -np.inf).max(axis=0)
    return np.where(np.isfinite(best), best, np.nan)


def rate_cells(
    summary: dict[str, Any], arrays: dict[str, np.ndarray], optimizer: str
) -> tuple[dict[str, Any], dict[str, dict]]:
    """stability: the largest rate of ``optimizer`` at which the network at the deepest depth
    was stable *and learned* (:func:`learned_rates`, from the run's arrays; geometric mean over
    seeds). A largest *stable* rate alone rewards a network that does not learn: a flat network
    is hard to destabilise.

    ``censored``: ``"above"`` when some seed learned at the top of the grid (the value is a
    lower bound, ``hi`` infinite), ``"below"`` when some seed learned at no rate (``lo`` 0;
    with no seed at all the mean is NaN and ``hi`` the grid's first rate). ``edge_hi``: the
    interval's exclusive upper end for comparisons, ``hi`` times the grid's step (each seed's
    edge lies below the grid point after its value). ``stable``: the chapter's largest stable
    rate (its table's cell), with ``flat``, how many seeds fit no better than a constant there."""
    config = summary["config"]
    if optimizer not in summary["stable"]:
        raise ValueError(f"the stability run has no optimiser {optimizer!r}")
    depth = max(config["depths"])
    di = list(config["depths"]).index(depth)
    rates = np.asarray(config["rates"][optimizer], dtype=np.float64)
    step = float(rates[1] / rates[0])
    var = float(np.asarray(arrays["target_var"]).ravel()[0])
    cells = {}
    for ai, act in enumerate(config["activations"]):
        per_seed = learned_rates(
            rates,
            arrays[f"diverged_{optimizer}"][di, ai],
            arrays[f"train_{optimizer}"][di, ai],
            arrays[f"init_{optimizer}"][di, ai, 0],
            var,
        )
        got = per_seed[np.isfinite(per_seed)]
        stat = mean_ci(np.log2(got))
        cell = {k: (2.0 ** stat[k] if k in ("mean", "lo", "hi") else stat[k]) for k in stat}
        cell.pop("sd", None)
        cell["n"] = int(per_seed.size)
        cell["per_seed"] = [None if not math.isfinite(v) else float(v) for v in per_seed]
        at_top = bool(np.any(per_seed == rates[-1]))
        none = int(np.sum(~np.isfinite(per_seed)))
        cell["none"] = none
        cell["censored"] = "below" if none else "above" if at_top else ""
        if none:
            cell["lo"] = 0.0
            if not got.size:
                cell["mean"], cell["hi"] = math.nan, float(rates[0])
                cell["edge_hi"] = float(rates[0])
        if at_top:
            cell["hi"] = math.inf  # a lower bound: the grid ends before instability
        if "edge_hi" not in cell:
            hi = as_float(cell["hi"])
            cell["edge_hi"] = hi * step if math.isfinite(hi) else math.inf
        entry = summary["stable"][optimizer][f"{depth}/{act}"]
        cell["stable"] = {
            "mean": entry.get("mean"),
            "flat": int(entry.get("flat", 0)),
            "at_top": int(entry.get("at_top", 0)),
            "n": int(entry.get("n", 0)),
        }
        cells[act] = cell
    setting = {
        "optimizer": optimizer,
        "depth": depth,
        "width": config["width"],
        "steps": config["steps"],
        "seeds": config["seeds"],
        "rates": config["rates"][optimizer],
        "init": config.get("init"),
        "flat_fit": FLAT_FIT,
    }
    return setting, cells


def capacity_cells(summary: dict[str, Any], target: str) -> tuple[dict[str, Any], dict[str, dict]]:
    """capacity: log10 of the held-out relative error (test MSE / Var f) on ``target`` at the
    shape where every activation's rate was tuned (the largest shape when the run tuned every
    shape): elsewhere an activation's error also measures how well a rate tuned for another
    shape transfers. The setting carries the error of the best straight line
    (``affine_floor``, the same ratio). ``verdict``: the chapter's own marks for that shape
    (its paired test over seeds against the lowest error), which the column uses."""
    rows = [c for c in summary["cells"] if c["target"] == target]
    if not rows:
        targets = sorted({c["target"] for c in summary["cells"]})
        raise ValueError(
            f"capacity_target must be one of the capacity run's targets, {', '.join(targets)}; "
            f"got {target!r}"
        )
    largest = (max(c["depth"] for c in rows), max(c["width"] for c in rows))
    tuned_all = bool(summary.get("tune_all_shapes"))
    depth, width = largest if tuned_all else tuple(summary["tune_shape"])
    cells = {}
    for c in rows:
        if (c["depth"], c["width"]) == (depth, width):
            cells[c["activation"]] = {
                **_stat(c["log10_error"]),
                "diverged": c["diverged"],
                "lr": c.get("lr"),
                "lr_status": c.get("lr_status", ""),
            }
    verdict = next(
        (
            v
            for v in summary.get("verdicts", [])
            if (v["target"], v["depth"], v["width"]) == (target, depth, width)
        ),
        None,
    )
    worse = [a for a, t in summary.get("worse_at_largest", []) if t == target]
    setting = {
        "target": target,
        "label": summary["target_labels"][target],
        "affine_floor": summary["affine_floor"][target],
        "depth": depth,
        "width": width,
        "largest": list(largest),
        "tuned_all": tuned_all,
        "worse_at_largest": [] if tuned_all else worse,
        "steps": summary["steps"],
        "seeds": summary["seeds"],
        "init": summary.get("init"),
        "verdict": verdict,
    }
    return setting, cells


def verdict_marks(cells: dict[str, dict], verdict: dict[str, Any]) -> dict[str, str]:
    """Marks from a chapter's own verdict (``best``, ``tied_with_best``, ``differs_from_best``)."""
    marks = {a: "" for a in cells}
    for a in cells:
        if a == verdict["best"]:
            marks[a] = "best"
        elif a in verdict.get("tied_with_best", []):
            marks[a] = "within noise"
        elif a in verdict.get("differs_from_best", []):
            marks[a] = "worse"
    return marks


# -------------------------------------------------------------------------------- run
def run(
    cfg: Config, chunks: ChunkRunner = run_inline, inputs: dict[str, Results] | None = None
) -> Results:
    """The side-by-side table from the four runs' results (``inputs``, by experiment name;
    a missing one is run here with its ``cfg.inputs_preset`` preset, keeping nothing)."""
    inputs = dict(inputs or {})
    for name in NEEDS:
        if name not in inputs:
            spec = get_experiment(name)
            inputs[name] = spec.run(spec.preset(cfg.inputs_preset))
    summaries = {name: inputs[name].summary for name in NEEDS}

    columns: dict[str, dict[str, Any]] = {}
    setting, cells = gradient_cells(summaries["gradient-flow"])
    columns["gradient"] = {"setting": setting, "cells": cells}
    setting, off, dormant = unit_cells(summaries["unit-states"], cfg.units_task, cfg.dormant_tau)
    columns["off"] = {"setting": setting, "cells": off}
    columns["dormant"] = {"setting": setting, "cells": dormant}
    for opt in cfg.optimizers:
        setting, cells = rate_cells(summaries["stability"], inputs["stability"].arrays, opt)
        columns[f"rate/{opt}"] = {"setting": setting, "cells": cells}
    setting, cells = capacity_cells(summaries["capacity"], cfg.capacity_target)
    columns["capacity"] = {"setting": setting, "cells": cells}

    for key, column in columns.items():
        better = COLUMNS[key.split("/")[0]]
        if better is None:
            continue
        verdict = column["setting"].get("verdict")
        if verdict is not None:  # the chapter's paired test, sharper than overlap
            marks = verdict_marks(column["cells"], verdict)
            column["setting"]["rule"] = "paired"
        else:
            marks = mark_column(column["cells"], better)
            column["setting"]["rule"] = "overlap"
        for act, mark in marks.items():
            column["cells"][act]["mark"] = mark

    activations: list[str] = []  # in the order the runs list them, gradient-flow's first
    for column in columns.values():
        activations += [a for a in column["cells"] if a not in activations]
    summary = {
        "activations": activations,
        "columns": columns,
        "tally": tally(columns, activations),
        "inputs_preset": cfg.inputs_preset,
    }
    rows = [
        {
            "member": i,
            "step": 0,
            "metric": f"{key}/{part}",
            "value": as_float(cell.get(part)),
            "activation": act,
        }
        for key, column in columns.items()
        for i, act in enumerate(activations)
        if (cell := column["cells"].get(act)) is not None
        for part in ("mean", "lo", "hi")
    ]
    metrics = pd.DataFrame(rows, columns=["member", "step", "metric", "value", "activation"])
    return Results(metrics=metrics, summary=_json_safe(summary))


def tally(columns: dict[str, dict[str, Any]], activations: list[str]) -> dict[str, dict]:
    """Per activation, in how many of the ranked columns it is at the top (``top``: best or
    within noise) out of how many it is ranked in (``of``; a cell left unranked, e.g. a network
    that barely trained, counts in neither)."""
    out = {a: {"top": 0, "of": 0} for a in activations}
    for column in columns.values():
        for act, cell in column["cells"].items():
            mark = cell.get("mark", "")
            if not mark:
                continue
            out[act]["of"] += 1
            out[act]["top"] += mark in ("best", "within noise")
    return out


def _json_safe(obj: Any) -> Any:
    """Infinite bounds as strings (JSON has no inf; the store writes NaN as null)."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float | np.floating) and math.isinf(obj):
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
