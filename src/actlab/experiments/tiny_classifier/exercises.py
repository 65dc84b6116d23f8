"""Exercises of the tiny-classifier lesson: the stubs a learner fills in, and :data:`EXERCISES`.

Worked solutions: :mod:`actlab.experiments.tiny_classifier.solutions` (tested in
``tests/test_tiny_classifier.py``).
"""

from __future__ import annotations

from torch import Tensor, nn

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "first_layer_grad", "dead_fraction", "radial_features"]


def first_layer_grad(model: nn.Sequential, x: Tensor, y: Tensor) -> float:
    """The lesson's gradient trace at one step: mean ``|dL/dW_1|`` of the first ``nn.Linear``.

    ``L = cross_entropy(model(x), y)`` (mean over the batch); ``W_1`` is the weight of the first
    ``nn.Linear`` in ``model`` (shape ``(hidden, in)``). The parameters' ``.grad`` must be left as
    they were.

    Args:
        model: e.g. ``Linear(2, 8), ReLU(), Linear(8, 2)``.
        x: Inputs ``(n, 2)``.
        y: Class indices ``(n,)``.

    Returns:
        ``mean_ij |dL/dW_1[i, j]|`` as a float.
    """
    raise NotImplementedError("exercise: compute the first layer's mean |gradient|")


def dead_fraction(h: Tensor) -> Tensor:
    """Fraction of dead units of a ReLU layer: units whose output is 0 on *every* input.

    Args:
        h: Post-activations ``(n_inputs, n_units)``.

    Returns:
        A 0-d float tensor in [0, 1].
    """
    # Debug exercise: this reports far too many dead units. Find the bug.
    return (h == 0).any(dim=0).float().mean()


def radial_features(x: Tensor) -> Tensor:
    """Inputs ``(n, 2)`` with the squared radius appended: ``(n, 3)`` = ``(x_1, x_2, x_1^2 +
    x_2^2)``, so that a model with no hidden layer can separate the circles."""
    raise NotImplementedError("exercise: append the squared radius as a third feature")


EXERCISES: list[Exercise] = [
    Exercise(
        "warm-up",
        "Count the parameters",
        "How many trainable parameters does the lesson's 2 → 8 → 2 network have? And the network "
        "with 8 hidden layers of 8 units used for the depth trace?",
        "Each `nn.Linear(n_in, n_out)` has `n_in * n_out` weights and `n_out` biases. The "
        "lesson's network: "
        "$(2 \\cdot 8 + 8) + (8 \\cdot 2 + 2) = 24 + 18 = 42$. With 8 hidden layers: the first "
        "layer 24, seven $8 \\to 8$ layers of $64 + 8 = 72$ each (504), the output layer 18: "
        "$24 + 504 + 18 = 546$. Check: `sum(p.numel() for p in model.parameters())`.",
    ),
    Exercise(
        "coding",
        "The lesson's gradient trace",
        "Write `first_layer_grad(model, x, y)`: the mean absolute gradient of the cross-entropy "
        "with respect to the first layer's weights, the quantity the lesson plots per epoch. Do "
        "not leave gradients behind in the model's `.grad` (a training loop calling it would "
        "otherwise accumulate them).",
        "`torch.autograd.grad` returns the gradient without touching `.grad`. The tests compare "
        "it with the gradient of actlab's ensemble engine, which differentiates by hand.",
        function="tiny_classifier:first_layer_grad",
    ),
    Exercise(
        "debug",
        "Every unit looks dead",
        "This probe reports that almost every ReLU unit of a healthy network is dead:\n\n"
        "```python\nreturn (h == 0).any(dim=0).float().mean()\n```\n\n"
        "What does it compute instead, and what is the fix?",
        "It counts units that are 0 on *at least one* input: with ReLU, almost every unit is off "
        "for some inputs, which is normal (that is what makes the network piecewise linear). "
        "A dead unit is 0 on *every* input, so no gradient can ever reach its incoming weights: "
        "replace `any` with `all`. The tests check the fix against "
        "`actlab.probes.dead_fraction`.",
        function="tiny_classifier:dead_fraction",
    ),
    Exercise(
        "conceptual",
        "Why one hidden layer cannot show vanishing gradients",
        "The lesson records the first layer's gradient of a 2 → 8 → 2 network and concludes "
        "that sigmoid suffers from vanishing gradients in deep networks. Using "
        "$\\sigma'(z) = \\sigma(z)(1 - \\sigma(z)) \\le 1/4$, explain why the gradient that "
        "reaches layer 1 of a network with $D$ hidden layers can shrink geometrically with $D$, "
        "and why one hidden layer says little about it.",
        "Backpropagation multiplies, for every hidden layer between the loss and layer 1, by "
        "$W_l^\\top$ and by $\\mathrm{diag}(\\varphi'(z_l))$. For sigmoid each $\\varphi'$ factor "
        "is at most $1/4$; if each layer multiplies the backward signal by a factor $\\rho < 1$ "
        "(for sigmoid at most $1/4$ times the size of the weights), the gradient at layer 1 "
        "carries about $\\rho^{D-1}$: it vanishes geometrically with depth. With one hidden "
        "layer there is exactly one such factor, so a sigmoid gradient is at most a small "
        "constant factor smaller than a ReLU one: a difference of scale, not a vanishing. The "
        "depth trace of this section measures the ratio $\\kappa$ of the first layer's gradient "
        "to the last hidden layer's at several depths, and $\\rho$ beside its prediction.",
    ),
    Exercise(
        "challenge",
        "Circles without a hidden layer",
        "The concentric circles are not linearly separable in $(x_1, x_2)$. Write "
        "`radial_features(x)` so that a model with *no* hidden layer (logistic regression, "
        "`nn.Linear(3, 2)`) trained on the new features separates them. Why does this work, and "
        "what does it say about what the hidden layer of the tiny classifier learns?",
        "The classes differ only in their radius, so the squared radius $x_1^2 + x_2^2$ "
        "separates them with a threshold: a linear boundary in $(x_1, x_2, x_1^2 + x_2^2)$. A "
        "hidden layer has to *build* such a "
        "feature out of its activations (ReLU units approximate the circle by a polygon, tanh "
        "and sigmoid units by smooth bumps); giving it by hand makes the problem linear. The "
        "tests train logistic regression on both inputs: above 95% held-out accuracy with the "
        "feature, near chance without it.",
        function="tiny_classifier:radial_features",
    ),
]
"""The lesson's exercises, in the order the tutorial shows them."""
