"""Exercises of the lesson "Swapping activations mid-training" (worked solutions in
:mod:`actlab.experiments.activation_swap.solutions`, checked by ``tests/test_activation_swap.py``).

Fill in the functions below (they raise ``NotImplementedError``), except :func:`reset_adam`,
which is the *debug* exercise: it runs, but it is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "swap_activations", "reset_adam", "train_with_swap"]


def swap_activations(
    model: nn.Sequential,
    new: Callable[[], nn.Module],
    old: type[nn.Module] | tuple[type[nn.Module], ...] = nn.Tanh,
) -> nn.Sequential:
    """Replace, in place, every module of ``model`` that is an instance of ``old`` by a fresh
    ``new()``; return ``model``.

    The ``nn.Linear`` layers must stay the very same objects (same ``Parameter`` tensors), so that
    an optimiser built on ``model.parameters()`` before the swap keeps working after it.
    """
    raise NotImplementedError("exercise: swap the activation modules")


def reset_adam(optimizer: torch.optim.Adam) -> None:
    """Forget Adam's state, so that training goes on exactly as with a fresh
    ``torch.optim.Adam`` on the same parameters.

    DEBUG EXERCISE: this version runs but is wrong; find out why and fix it.
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if state:
                state["exp_avg"].zero_()
                state["exp_avg_sq"].zero_()


def train_with_swap(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    swap_epoch: int,
    new: Callable[[], nn.Module],
    reset: bool,
    lr: float = 1e-3,
) -> list[float]:
    """Train ``model`` (tanh activations) on ``(x, y)`` with full-batch Adam and the MSE for
    ``epochs`` updates, swapping every ``nn.Tanh`` for ``new()`` before update ``swap_epoch``;
    with ``reset``, Adam's state is forgotten at the swap, otherwise it is kept.

    Returns the training loss of each update, measured before it (``epochs`` numbers).
    """
    raise NotImplementedError("exercise: the whole experiment, for one network")


def _warm_up_solution() -> str:
    z = (-1.5, -0.3, 0.2, 2.0)
    rows = " | ".join(f"{v:g}" for v in z)
    tanh = " | ".join(f"{math.tanh(v):.3f}" for v in z)
    relu = " | ".join(f"{max(v, 0.0):g}" for v in z)
    change = [max(v, 0.0) - math.tanh(v) for v in z]
    big = sorted(range(len(z)), key=lambda i: -abs(change[i]))[:2]
    return (
        f"| $z$ | {rows} |\n|---|---|---|---|---|\n| $\\tanh z$ | {tanh} |\n"
        f"| $\\max(z, 0)$ | {relu} |\n\n"
        f"The outputs change most at $z = {z[big[0]]:g}$ (by {change[big[0]]:+.3f}) and "
        f"$z = {z[big[1]]:g}$ (by {change[big[1]]:+.3f}): a large positive $z$ is no longer "
        "squashed to at most 1, and a negative one no longer gives a negative output. Near "
        "$z = 0^+$ nothing changes, since $\\tanh z \\approx z$ there.\n\n"
        "The second unit's pre-activation is negative on every input, so after the swap it "
        "outputs 0 everywhere: it is *dead*. Its ReLU derivative is 0 on every input, so its "
        "incoming weights and bias get a zero gradient: plain gradient descent will never move "
        "them again. Only a change of its inputs (the layers below it) or an optimiser that "
        "keeps moving without gradient (momentum, Adam's first moment) can bring it back."
    )


EXERCISES = [
    Exercise(
        kind="warm-up",
        title="What the swap does to one unit",
        prompt=(
            "A tanh unit sees the pre-activations $z = -1.5, -0.3, 0.2, 2.0$ on four inputs. "
            "Write down its outputs before the swap ($\\tanh z$) and after it ($\\max(z, 0)$); "
            "which outputs change most? A second unit has $z = -2, -0.5, -0.1$ on every input "
            "of the training set: what happens to it at the swap, and what gradient reaches its "
            "incoming weights afterwards?"
        ),
        solution=_warm_up_solution(),
    ),
    Exercise(
        kind="coding",
        title="Swap the activation modules of a plain network",
        prompt=(
            "Write `swap_activations(model, new, old=nn.Tanh)`: replace every `old` module of "
            "an `nn.Sequential` by `new()`, in place, leaving the linear layers (and so their "
            "parameters, and any optimiser holding them) untouched."
        ),
        solution=(
            "Assigning `model[i] = new()` replaces the module at position `i` of the "
            "`nn.Sequential`; the `nn.Linear` layers are the same objects as before, so "
            "`optimizer.param_groups` still point at the live parameters and Adam's state "
            "(keyed by those tensors) carries over."
        ),
        function="activation_swap:swap_activations",
    ),
    Exercise(
        kind="debug",
        title="A reset that does not reset",
        prompt=(
            "`reset_adam` zeroes Adam's two moment buffers, yet training after it is not the "
            "same as with a fresh `torch.optim.Adam`. Find the bug and fix it. Hint: Adam "
            "divides the moments by $1 - \\beta_1^t$ and $1 - \\beta_2^t$."
        ),
        solution=(
            "The step count $t$ (`state['step']`) is not reset. At step $t$, with gradient $g$, "
            "Adam updates its moments $m_t$ and $v_t$, running means of $g$ and $g^2$ (each "
            "step keeps a share $\\beta_1$, resp. $\\beta_2$, of the old value and adds "
            "$1 - \\beta_1$, resp. $1 - \\beta_2$, times the new one), and moves "
            "$\\theta \\leftarrow \\theta - \\eta\\,\\hat m_t / (\\sqrt{\\hat v_t} + "
            "\\epsilon)$ with $\\hat m_t = m_t / (1 - \\beta_1^t)$ and "
            "$\\hat v_t = v_t / (1 - \\beta_2^t)$. A fresh Adam starts from $m_0 = v_0 = 0$ and "
            "has $t = 1$ at its first step, so $\\hat m_1 = g$, $\\hat v_1 = g^2$ and the step "
            "is $\\eta$ per parameter. After hundreds of steps the corrections are "
            "$\\approx 1$, so the moments rebuilt from zero are *not* rescaled: $m_t = 0.1 g$, "
            "$v_t = 0.001 g^2$, and the first step is $0.1/\\sqrt{0.001} \\approx 3.2$ times "
            "too large; $v_t$ stays too small for about $1/(1-\\beta_2) = 1000$ steps. "
            "Forgetting the whole state fixes it (the next step re-creates it, with $t = 1$ at "
            "that step):"
        ),
        function="activation_swap:reset_adam",
    ),
    Exercise(
        kind="conceptual",
        title="Why a dead unit can come back only with Adam's state kept",
        prompt=(
            "After the swap, a unit of the **first** hidden layer whose pre-activation is "
            "negative on every training input gets exactly zero gradient. Explain why, in the "
            "arm that keeps Adam's state, its weights can still move for a while (and the unit "
            "could come back to life), while in the arm that resets the state they are frozen "
            "for good. Why can a dead unit of the **second** hidden layer come back in both "
            "arms? Compare with the revived counts in the report."
        ),
        solution=(
            "Adam's update is $-\\eta\\,\\hat m_t/(\\sqrt{\\hat v_t} + \\epsilon)$. Count the "
            "steps $t$ from the swap, where the moments are $m_0$ and $v_0$. With the state "
            "kept, $m_0$ still holds the (non-zero) tanh-era gradients; with $g = 0$ it decays "
            "as $m_t = \\beta_1^t m_0$ while $\\sqrt{v_t}$ decays only as $\\beta_2^{t/2}$, so the "
            "unit keeps drifting, by a geometrically shrinking amount (in total at most about "
            "$\\eta\\,|m_0|/((1-\\beta_1)\\sqrt{v_0})$ per weight), in the direction it was "
            "going before the swap. That drift may or may not push its pre-activation back "
            "above 0 somewhere. With the state reset, $m_0 = v_0 = 0$ and $g = 0$ give a zero step "
            "forever: nothing can move a dead first-layer unit, whose inputs (the data) never "
            "change. A second-layer unit's pre-activation $W h_1 + b$ depends on the first "
            "layer's outputs $h_1$, which keep changing while the network learns, so it can be "
            "pushed back into the active region in either arm (or die later)."
        ),
    ),
    Exercise(
        kind="challenge",
        title="The whole experiment for one network, in plain PyTorch",
        prompt=(
            "Write `train_with_swap(model, x, y, epochs=..., swap_epoch=..., new=..., "
            "reset=..., lr=...)`: full-batch Adam on the MSE, the tanh modules swapped for "
            "`new()` before update `swap_epoch`, Adam's state kept or reset; return the loss "
            "before each update. The tests compare it with the experiment's engine (one "
            "`EnsembleMLP` trained in two `train` calls) for both arms."
        ),
        solution=(
            "Reuse the two functions above. The order matters: the loss of update `swap_epoch` "
            "is measured with the new activation (it is the loss right after the swap, the top "
            "of the jump), and the reset happens before that update. Resetting by building a "
            "new `torch.optim.Adam` would do as well as the fixed `reset_adam`."
        ),
        function="activation_swap:train_with_swap",
    ),
]
"""The lesson's exercises, in order (rendered by
:func:`actlab.report.exercises.exercises_markdown`)."""
