"""The four answers side by side: one row per activation, one cell per question, each computed
from the runs of ``gradient-flow``, ``unit-states``, ``stability`` and ``capacity``.

A cell is a :func:`actlab.stats.mean_ci` dict over that run's seeds (``mean``, ``lo``, ``hi``,
``n``) plus what it needs to be read: the setting it was measured at and, for the columns with a
better direction, a mark -- ``"best"`` (the best mean), ``"within noise"`` (its 95% interval
overlaps the best's) or ``"below"``/``"above"`` the best. Nothing here trains a network: the
cells are read from the four runs' summaries, which the chapters themselves report.

Columns (``COLUMNS``):

* ``gradient``: log10 of the backward signal's ratio, layer 1 over layer D, at initialisation
  (gradient-flow's deepest and widest network, its headline initialisation); closest to 0 (a
  ratio of 1) is best, and ``direction`` says whether it vanishes (interval below 0), explodes
  (above 0) or is kept (interval holds 0).
* ``off``: the fraction of hidden units dead (ReLU) or saturated (tanh, sigmoid) at the end of
  unit-states' training, the kind that applies to the activation; no mark (two definitions).
* ``dormant``: the fraction of τ-dormant units at the end (one definition for all); lower is better.
* ``rate/OPT``: stability's largest stable learning rate of optimiser OPT at its deepest depth
  (geometric mean over seeds); higher is better.
* ``capacity``: capacity's held-out relative error (log10 of test MSE / Var f) on one target at
  its deepest and widest shape; lower is better.
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
from actlab.experiments.unit_states.experiment import TASKS

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
def _f(x: Any) -> float:
    return math.nan if x is None else float(x)


def overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether the intervals ``[lo, hi]`` of two cells share a point (a missing bound is no
    bound: a one-seed cell overlaps everything it could be)."""
    a_lo, a_hi = _f(a.get("lo")), _f(a.get("hi"))
    b_lo, b_hi = _f(b.get("lo")), _f(b.get("hi"))
    a_lo = -math.inf if math.isnan(a_lo) else a_lo
    b_lo = -math.inf if math.isnan(b_lo) else b_lo
    a_hi = math.inf if math.isnan(a_hi) else a_hi
    b_hi = math.inf if math.isnan(b_hi) else b_hi
    return a_lo <= b_hi and b_lo <= a_hi


def distance_from_zero(cell: dict[str, Any]) -> dict[str, float]:
    """The cell of ``|x|`` for a cell of ``x`` (a log10 ratio whose best value is 0): its mean
    is ``|mean|`` and its interval the set of ``|x|`` for ``x`` in ``[lo, hi]``."""
    mean, lo, hi = _f(cell.get("mean")), _f(cell.get("lo")), _f(cell.get("hi"))
    if lo > 0:
        return {"mean": abs(mean), "lo": lo, "hi": hi}
    if hi < 0:
        return {"mean": abs(mean), "lo": -hi, "hi": -lo}
    return {"mean": abs(mean), "lo": 0.0 if lo <= 0 <= hi else lo, "hi": max(abs(lo), abs(hi))}


def mark_column(cells: dict[str, dict[str, Any]], better: str) -> dict[str, str]:
    """Mark each cell of one column against the best: ``"best"`` (the best mean; the first in
    order on a tie), ``"within noise"`` (its interval overlaps the best's), else ``"worse"``.

    Args:
        cells: activation -> cell (``mean``, ``lo``, ``hi``); cells with a NaN mean are left
            out (marked ``""``).
        better: ``"higher"``, ``"lower"``, or ``"one"`` (a log10 ratio: closest to 0 is best,
            compared through :func:`distance_from_zero`).
    """
    if better == "one":
        return mark_column({a: distance_from_zero(c) for a, c in cells.items()}, "lower")
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher', 'lower' or 'one', got {better!r}")
    sign = 1.0 if better == "higher" else -1.0
    scored = {a: sign * _f(c.get("mean")) for a, c in cells.items()}
    valid = [a for a, s in scored.items() if not math.isnan(s)]
    marks = {a: "" for a in cells}
    if not valid:
        return marks
    best = max(valid, key=lambda a: scored[a])  # max keeps the first of equal scores
    for a in valid:
        if a == best:
            marks[a] = "best"
        else:
            marks[a] = "within noise" if overlaps(cells[a], cells[best]) else "worse"
    return marks


def direction(cell: dict[str, Any]) -> str:
    """For a log10 ratio layer 1 / layer D: ``"vanishes"`` (its interval lies below 0),
    ``"explodes"`` (above 0), ``"kept"`` (it holds 0, or there is no interval)."""
    lo, hi = _f(cell.get("lo")), _f(cell.get("hi"))
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
    return {"depth": depth, "width": width, "init": init, "seeds": summary["seeds"]}, cells


def unit_cells(summary: dict[str, Any], task: str, tau: float) -> tuple[dict, dict, dict]:
    """unit-states: at the last step of ``task``, the fraction of units off in the way that
    applies (dead for an activation that can die, else saturated for a bounded one) and the
    fraction τ-dormant."""
    if task not in summary["tasks"]:
        raise ValueError(f"units_task must be one of {', '.join(summary['tasks'])}, got {task!r}")
    keys = {float(k.split("_", 1)[1]): k for k in summary["fractions"] if k.startswith("dormant_")}
    if tau not in keys:
        raise ValueError(f"dormant_tau must be one of unit-states' taus {sorted(keys)}, got {tau}")
    off, dormant = {}, {}
    for r in summary["tasks"][task]:
        act = r["activation"]
        applies = summary["applicable"][act]
        kind = "dead" if applies.get("dead") else "saturated" if applies.get("saturated") else None
        if kind is not None:
            off[act] = {**_stat(r[kind]["end"]), "kind": kind}
        dormant[act] = _stat(r[keys[tau]]["end"])
    setting = {
        "task": task,
        "tau": tau,
        "depth": summary["depth"],
        "width": summary["width"],
        "steps": summary["steps"],
        "seeds": summary["seeds"],
    }
    return setting, off, dormant


def rate_cells(summary: dict[str, Any], optimizer: str) -> tuple[dict[str, Any], dict[str, dict]]:
    """stability: the largest stable rate of ``optimizer`` at the deepest depth (geometric mean
    over seeds). ``censored``: ``"above"`` when some seed was stable at the top of the grid (the
    value is then a lower bound), ``"below"`` when some seed was stable at no rate tried;
    ``flat``: how many seeds, at their largest stable rate, fit no better than a constant."""
    config = summary["config"]
    if optimizer not in summary["stable"]:
        raise ValueError(f"the stability run has no optimiser {optimizer!r}")
    depth = max(config["depths"])
    cells = {}
    for act in config["activations"]:
        entry = summary["stable"][optimizer][f"{depth}/{act}"]
        cell = _stat(entry)
        cell["flat"] = entry.get("flat", 0)  # seeds stable there but fitting like a constant
        cell["censored"] = (
            "above" if entry.get("at_top") else "below" if entry.get("none_stable") else ""
        )
        if cell["censored"] == "above":
            cell["hi"] = math.inf  # a lower bound: the grid ends before instability
        elif cell["censored"] == "below":
            cell["lo"] = 0.0
        cells[act] = cell
    setting = {
        "optimizer": optimizer,
        "depth": depth,
        "width": config["width"],
        "steps": config["steps"],
        "seeds": config["seeds"],
        "rates": config["rates"][optimizer],
    }
    return setting, cells


def capacity_cells(summary: dict[str, Any], target: str) -> tuple[dict[str, Any], dict[str, dict]]:
    """capacity: log10 of the held-out relative error (test MSE / Var f) on ``target`` at the
    deepest and widest shape; the setting carries the error of the best straight line
    (``affine_floor``, the same ratio)."""
    rows = [c for c in summary["cells"] if c["target"] == target]
    if not rows:
        targets = sorted({c["target"] for c in summary["cells"]})
        raise ValueError(
            f"capacity_target must be one of the capacity run's targets, {', '.join(targets)}; "
            f"got {target!r}"
        )
    depth = max(c["depth"] for c in rows)
    width = max(c["width"] for c in rows)
    cells = {}
    for c in rows:
        if (c["depth"], c["width"]) == (depth, width):
            cells[c["activation"]] = {**_stat(c["log10_error"]), "diverged": c["diverged"]}
    setting = {
        "target": target,
        "label": summary["target_labels"][target],
        "affine_floor": summary["affine_floor"][target],
        "depth": depth,
        "width": width,
        "steps": summary["steps"],
        "seeds": summary["seeds"],
    }
    return setting, cells


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
        setting, cells = rate_cells(summaries["stability"], opt)
        columns[f"rate/{opt}"] = {"setting": setting, "cells": cells}
    setting, cells = capacity_cells(summaries["capacity"], cfg.capacity_target)
    columns["capacity"] = {"setting": setting, "cells": cells}

    for key, column in columns.items():
        better = COLUMNS[key.split("/")[0]]
        if better is not None:
            for act, mark in mark_column(column["cells"], better).items():
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
            "value": _f(cell.get(part)),
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
    within noise) out of how many it appears in (``of``)."""
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
