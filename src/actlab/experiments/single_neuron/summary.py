"""The summary of a single-neuron run: CIs over seeds, paired-test verdicts and the
least-squares check, computed once from the run's arrays (the report formats it and nothing
else).

Every comparison here is paired by draw: on one data seed, every activation and target trains
from the same initial points on the same inputs and noise, and the least-squares line is fitted
to that draw's data. So two scores are compared draw by draw (:func:`differs_by_seed`), not with
Welch's test, which would treat what a draw gives both sides as noise."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from actlab.activations import get_activation
from actlab.experiments.single_neuron import landscape as nl
from actlab.experiments.single_neuron.config import STOP_REASONS, TARGETS, snapshot_steps
from actlab.stats import mean_ci, paired_differs
from actlab.stats import paired_by_seed as stats_paired_by_seed

__all__ = ["summarise", "differs_by_seed", "REACH_TOL"]

REACH_TOL = 0.05
"""A restart *reaches the best* when its train MSE is within 5% of its seed's best."""


# --------------------------------------------------------------------------------------------
# Summary (computed once, in run)


def differs_by_seed(a: pd.Series, b: pd.Series, alpha: float = 0.05) -> bool:
    """Whether two per-seed scores differ by the paired t-test (:func:`paired_differs`), with
    the pairs lined up by seed: ``a`` and ``b`` are indexed by seed, in any order; a seed
    missing from either side is dropped from both, and both are sorted by seed.

    Raises:
        ValueError: if a seed appears twice on one side.
    """
    return paired_differs(*stats_paired_by_seed(a, b), alpha)


def _target_monotone(values: np.ndarray) -> bool:
    d = np.diff(values)
    return bool((d >= 0).all() or (d <= 0).all())


def _capped(
    arrays: dict, steps: list[int], t: int, a: int, reasons: np.ndarray
) -> dict[str, Any] | None:
    """The restarts that ran to the cap: how many, their median |w| and |v| at the end, and
    (draw 0, whose snapshots are kept) the share whose |w| shrank while |v| grew over the
    second half of training. None if no restart ran to the cap."""
    capped = reasons == 0  # STOP_REASONS[0] == "cap"
    if not capped.any():
        return None
    p = arrays["params"][t, a].reshape(-1, 4)[capped]
    out: dict[str, Any] = {
        "n": int(capped.sum()),
        "median_abs_w": float(np.median(np.abs(p[:, 0]))),
        "median_abs_v": float(np.median(np.abs(p[:, 2]))),
        "stretching": None,
    }
    capped0 = arrays["stop_reason"][t, a, 0] == 0  # (restart,)
    if capped0.any():
        half = int(np.argmin(np.abs(np.asarray(steps) - steps[-1] / 2)))
        snap = arrays["snapshots"][t, a][capped0]  # (restart, frame, 4)
        shrink = np.abs(snap[:, -1, 0]) < np.abs(snap[:, half, 0])
        grow = np.abs(snap[:, -1, 2]) > np.abs(snap[:, half, 2])
        out["stretching"] = float((shrink & grow).mean())
    return out


def summarise(cfg: Any, data: dict, arrays: dict, extra: dict) -> dict[str, Any]:
    """The summary of a run: see the module docstring of ``single_neuron``."""

    cfg_steps = snapshot_steps(cfg)

    test, train = arrays["test_mse"], arrays["train_mse"]  # (T, A, S, R)
    best = arrays["best_restart"]  # (T, A, S)
    take = lambda arr: np.take_along_axis(arr, best[..., None], axis=3)[..., 0]  # noqa: E731
    best_test, best_train = take(test), take(train)  # (T, A, S)
    var_test = data["y_test"].var(axis=-1)  # (T, S)
    line = nl.least_squares_line(data["x_train"][None], data["y_train"])  # (T, S)
    line_test = (
        (line["slope"][..., None] * data["x_test"][None] + line["intercept"][..., None])
        - data["y_test"]
    ) ** 2
    line_test = line_test.mean(-1)  # (T, S)
    cases = []
    for t, tname in enumerate(cfg.targets):
        for a, aname in enumerate(cfg.activations):
            tr = train[t, a]
            finite = np.where(np.isfinite(tr), tr, np.inf)
            reach = finite <= finite.min(axis=1, keepdims=True) * (1 + REACH_TOL) + 1e-12
            held = test[t, a][np.isfinite(test[t, a])]
            reasons = arrays["stop_reason"][t, a].reshape(-1)
            p = arrays["best_params"][t, a, 0]
            curve = arrays["best_curves"][t, a, 0]
            cases.append(
                {
                    "target": tname,
                    "activation": aname,
                    "heldout": mean_ci(best_test[t, a]),
                    "heldout_values": best_test[t, a].tolist(),
                    "train": mean_ci(best_train[t, a]),
                    "r2": mean_ci(1 - best_test[t, a] / var_test[t]),
                    "spread": {
                        "min": float(held.min()) if held.size else math.nan,
                        "p10": float(np.quantile(held, 0.1)) if held.size else math.nan,
                        "median": float(np.median(held)) if held.size else math.nan,
                        "p90": float(np.quantile(held, 0.9)) if held.size else math.nan,
                        "max": float(held.max()) if held.size else math.nan,
                    },
                    "reach_best": float(reach.mean()),
                    "stopped": {r: int((reasons == i).sum()) for i, r in enumerate(STOP_REASONS)},
                    "members": int(reasons.size),
                    # Why each draw's best restart stopped (the restart that is scored).
                    "best_stopped": {
                        r: int(
                            (
                                arrays["stop_reason"][t, a][np.arange(cfg.seeds), best[t, a]] == i
                            ).sum()
                        )
                        for i, r in enumerate(STOP_REASONS)
                    },
                    "capped": _capped(arrays, cfg_steps, t, a, reasons),
                    "dead": int(arrays["dead"][t, a].sum()),
                    "best_seed0": {
                        **{k: float(v) for k, v in zip("wbvc", p, strict=True)},
                        "yhat_min": float(curve.min()),
                        "yhat_max": float(curve.max()),
                        "train": float(best_train[t, a, 0]),
                        "heldout": float(best_test[t, a, 0]),
                        "restart": int(best[t, a, 0]),
                        "stop_step": int(arrays["stop_step"][t, a, 0, best[t, a, 0]]),
                    },
                }
            )
    ranking, least_squares = {}, {}
    seeds = np.arange(cfg.seeds)  # axis 2 of the case arrays is the data seed, in order
    by_seed = lambda v: pd.Series(v, index=seeds)  # noqa: E731
    for t, tname in enumerate(cfg.targets):
        means = {a: float(np.mean(best_test[t, i])) for i, a in enumerate(cfg.activations)}
        order = sorted(means, key=lambda a: (means[a], cfg.activations.index(a)))
        idx = {a: cfg.activations.index(a) for a in order}
        top = by_seed(best_test[t, idx[order[0]]])
        # Paired: on a draw every activation starts from the same points on the same data.
        tied = [
            a
            for a in order
            if a == order[0] or not differs_by_seed(top, by_seed(best_test[t, idx[a]]))
        ]
        monotone = [a for a in order if get_activation(a).monotonic]
        ranking[tname] = {
            "order": order,
            "best": order[0],
            "runner_up": order[1] if len(order) > 1 else None,
            "differs": bool(
                len(order) > 1 and differs_by_seed(top, by_seed(best_test[t, idx[order[1]]]))
            ),
            "tied": tied,
            "line": mean_ci(line_test[t]),
            # Paired: the line is fitted to the same draw's training points.
            "best_beats_line": bool(
                means[order[0]] < float(line_test[t].mean())
                and differs_by_seed(top, by_seed(line_test[t]))
            ),
            "best_monotone": monotone[0] if monotone else None,
            "target_monotone": _target_monotone(arrays["truth"][t]),
            "var": float(var_test[t].mean()),
        }
        entry: dict[str, Any] = {
            "slope": line["slope"][t].tolist(),
            "intercept": line["intercept"][t].tolist(),
            "train_mse": line["mse"][t].tolist(),
            "heldout": mean_ci(line_test[t]),
        }
        if "identity" in cfg.activations:
            a = cfg.activations.index("identity")
            w, b, v, c = (arrays["best_params"][t, a, :, k] for k in range(4))
            entry.update(
                {
                    "identity_slope": (v * w).tolist(),
                    "identity_intercept": (v * b + c).tolist(),
                    "identity_train_mse": best_train[t, a].tolist(),
                    "max_slope_diff": float(np.abs(v * w - line["slope"][t]).max()),
                    "max_intercept_diff": float(np.abs(v * b + c - line["intercept"][t]).max()),
                    "max_mse_diff": float(np.abs(best_train[t, a] - line["mse"][t]).max()),
                }
            )
        least_squares[tname] = entry
    mirror = None
    if "cubic" in cfg.targets and "neg_cubic" in cfg.targets:
        # The same activation on both: the S-cubic's winner, draw by draw.
        a = cfg.activations.index(ranking["cubic"]["best"])
        up, down = (
            best_test[cfg.targets.index("cubic"), a],
            best_test[cfg.targets.index("neg_cubic"), a],
        )
        mirror = {
            "activation": ranking["cubic"]["best"],
            "cubic": mean_ci(up),
            "neg_cubic": mean_ci(down),
            # Paired: the two targets share a draw's inputs, noise and initial points.
            "differs": differs_by_seed(by_seed(up), by_seed(down)),
        }
    # The finite draws' noise floor: the held-out MSE of the noiseless target itself.
    fn0 = TARGETS[cfg.targets[0]].fn
    truth_heldout = ((data["y_test"][0] - fn0(data["x_test"])) ** 2).mean(-1)  # (S,)
    stopped = {}
    early_codes = [STOP_REASONS.index("gradient"), STOP_REASONS.index("plateau")]
    for a, aname in enumerate(cfg.activations):
        by_draw = arrays["stop_reason"][:, a]  # (T, S, R)
        reasons = by_draw.reshape(-1)
        scored = np.take_along_axis(by_draw, best[:, a, :, None], axis=2)  # (T, S, 1)
        stopped[aname] = {
            **{r: int((reasons == i).sum()) for i, r in enumerate(STOP_REASONS)},
            "members": int(reasons.size),
            "best": {r: int((scored == i).sum()) for i, r in enumerate(STOP_REASONS)},
            "best_members": int(scored.size),
            # Per draw (the independent repeats: targets share a draw's inputs, noise and
            # initial points): restarts that stopped on a test, and scored fits at the cap.
            "early_per_draw": np.isin(by_draw, early_codes).sum(axis=(0, 2)).tolist(),
            "members_per_draw": int(by_draw.shape[0] * by_draw.shape[2]),
            "best_cap_per_draw": (scored[..., 0] == 0).sum(axis=0).tolist(),
            "best_members_per_draw": int(scored.shape[0]),
        }
    return {
        "mirror": mirror,
        "stopped": stopped,
        "targets": list(cfg.targets),
        "activations": list(cfg.activations),
        "target_info": {
            t: {"label": TARGETS[t].label, "latex": TARGETS[t].latex} for t in cfg.targets
        },
        "activation_monotone": {a: bool(get_activation(a).monotonic) for a in cfg.activations},
        "x_min": cfg.x_min,
        "x_max": cfg.x_max,
        "n_train": cfg.n_train,
        "n_test": cfg.n_test,
        "noise": cfg.noise,
        "noise_floor": cfg.noise**2,
        "truth_heldout": mean_ci(truth_heldout),
        "seeds": cfg.seeds,
        "restarts": cfg.restarts,
        "epochs": cfg.epochs,
        "lr": cfg.lr,
        "check_every": cfg.check_every,
        "grad_tol": cfg.grad_tol,
        "plateau_tol": cfg.plateau_tol,
        "init": cfg.init,
        "reach_tol": REACH_TOL,
        "gif_frames": cfg.gif_frames,
        "cases": cases,
        "ranking": ranking,
        "least_squares": least_squares,
        **extra,
    }
