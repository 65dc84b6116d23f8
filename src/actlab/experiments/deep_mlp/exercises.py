"""Exercises of the deep-MLP lesson: the stubs a learner fills in, and :data:`EXERCISES`.

Worked solutions: :mod:`actlab.experiments.deep_mlp.solutions` (tested in
``tests/experiments/test_deep_mlp.py``).
"""

from __future__ import annotations

from torch import Tensor, nn

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "spread_factor", "adam_first_step"]


def spread_factor(net: nn.Sequential, x: Tensor) -> float:
    """The factor per layer by which the hidden signal's spread changes through ``net``.

    ``net`` alternates ``nn.Linear`` and activation modules and ends with an ``nn.Linear``
    (the output layer). The output of each activation module is a hidden layer's output
    ``h_l`` ``(n_inputs, width)``. Its *spread* is the standard deviation over the inputs of each
    unit (population sd, ``unbiased=False``), averaged over the units. Return
    ``(spread_D / spread_1) ** (1 / (D - 1))``, the geometric mean over the ``D - 1`` steps
    from the first hidden layer to the last (``D >= 2`` hidden layers).

    Args:
        net: e.g. ``Linear(1, 64), Identity(), Linear(64, 64), Identity(), ..., Linear(64, 1)``.
        x: Inputs ``(n_inputs, in_features)``.

    Returns:
        The factor as a float (about 0.577 for an identity network with PyTorch's default
        initialisation).
    """
    raise NotImplementedError("exercise: measure the spread of every hidden layer")


def adam_first_step(grad: Tensor, lr: float, eps: float = 1e-8) -> Tensor:
    """The update Adam applies to the parameters at its first step, for gradient ``grad``.

    Adam keeps ``m_t = beta1 m_{t-1} + (1 - beta1) g`` and
    ``v_t = beta2 v_{t-1} + (1 - beta2) g^2`` (from ``m_0 = v_0 = 0``), corrects their bias
    (``m_hat_t = m_t / (1 - beta1^t)``, likewise ``v_hat_t``) and adds
    ``-lr * m_hat_t / (sqrt(v_hat_t) + eps)`` to the parameters (``eps`` is Adam's epsilon).

    Args:
        grad: The gradient at step 1, any shape.
        lr: The learning rate.
        eps: Adam's epsilon.

    Returns:
        The update (new parameters minus old), the shape of ``grad``.
    """
    raise NotImplementedError("exercise: work out m_hat_t and v_hat_t at t = 1")


EXERCISES: list[Exercise] = [
    Exercise(
        "coding",
        "Measure the collapse of the forward signal",
        "Write `spread_factor(net, x)`: the factor per layer by which the spread of a plain "
        "`nn.Sequential`'s hidden outputs (sd over the inputs, averaged over units) shrinks "
        "from its first hidden layer to its last. Build identity networks of width 64 and "
        "depth 10 with [PyTorch's default initialisation](#term-default-init) and compare "
        r"your measurement with the prediction $\rho = \sqrt{\text{width}\cdot\mathrm{Var}(w)}$, "
        r"where $w \sim U(-B, B)$ with $B = 1/\sqrt{64}$. Then try "
        "`nn.init.xavier_uniform_` ([Xavier initialisation](#term-xavier-init)) on the weights.",
        r"For $w \sim U(-B, B)$, $\mathrm{Var}(w) = B^2/3$; with $B = 1/\sqrt{64}$ the "
        r"prediction is $\rho = \sqrt{64/(3 \cdot 64)} = \sqrt{1/3} \approx 0.577$ per layer, "
        r"$0.577^9 \approx 0.007$ over nine layers: the deep layers of a linear network see "
        "almost the same value for every input. The bias is the same for every input, so it "
        r"does not enter the spread. Xavier's $B = \sqrt{6/(64 + 64)}$ gives "
        r"$\mathrm{Var}(w) = 1/64$ and a factor near 1. The tests compare the solution with "
        "a NumPy forward pass written out separately.",
        function="deep_mlp:spread_factor",
    ),
    Exercise(
        "coding",
        "Why a 100× smaller gradient is not a 100× smaller step under Adam",
        "Write `adam_first_step(grad, lr, eps)`: the update Adam makes at its first step. "
        "What is the update for a gradient of $10^{-2}$ and for one of $10^{-4}$, with "
        r"$\eta = 10^{-3}$? What does this say about reading the ratio $\kappa$ of layer 1's "
        "to layer 10's gradient as a measure of how much more slowly layer 1 learns?",
        r"Adam starts from $m_0 = v_0 = 0$. At step $t = 1$, $m_1 = (1-\beta_1) g$ and "
        r"$\hat m_1 = m_1/(1-\beta_1) = g$; $v_1 = (1-\beta_2) g^2$ and $\hat v_1 = g^2$, so "
        r"the update $-\eta\, \hat m_1/(\sqrt{\hat v_1} + \epsilon)$ is "
        r"$-\eta\, g / (|g| + \epsilon)$: "
        r"$-\eta\,\mathrm{sign}(g)$ for any $|g| \gg \epsilon$. Both gradients move their "
        r"weight by $10^{-3}$. Later steps divide by the running root mean square of each "
        "weight's own gradient, which keeps the steps of a layer with consistently small "
        "gradients near $\\eta$ as well. A small gradient ratio therefore does not mean "
        "slow learning at layer 1 under Adam (it would under plain SGD); what it can still "
        "mean is a noisy or collapsed signal. The tests compare with `torch.optim.Adam`.",
        function="deep_mlp:adam_first_step",
    ),
    Exercise(
        "conceptual",
        "Below the floor on the training set",
        r"A model is fitted by least squares to $n$ points $y_i = f(x_i) + \xi_i$, "
        r"$\xi_i \sim \mathcal{N}(0, s^2)$. Show that for a linear model with $|\theta|$ "
        r"parameters that contains $f$, the expected training MSE is $s^2(1 - |\theta|/n)$. "
        "Why does this "
        "make 'training MSE below the floor' a poor test of overfitting, and what do the "
        "lesson's verdicts use instead?",
        r"The fitted values are $Hy$ with $H$ the hat matrix (a projection of rank "
        r"$|\theta|$). If $f$ lies in the model's span, the residual is $(I - H)\xi$, and "
        r"$E\|(I-H)\xi\|^2 = s^2\,\mathrm{tr}(I - H) = s^2 (n - |\theta|)$; divided by $n$: "
        r"$s^2(1 - |\theta|/n)$. So *every* fitted model, even the right one, scores below "
        "$s^2$ on its training points, by more the more parameters it has. Overfitting is "
        "what that costs away from the training points: the lesson measures the error to the true "
        "function directly (known here, the task is synthetic) and the held-out MSE minus "
        r"the test draw's own floor (the MSE of $\sin x$ itself on those labels, which for "
        r"one finite draw is not exactly $s^2$).",
    ),
    Exercise(
        "conceptual",
        "How much one test draw can move a verdict",
        r"A fit $\hat y$ is fixed; write $\hat y_i = \hat y(x_i)$ and $f_i = f(x_i)$ at the "
        r"$n$ test inputs, whose labels are $y_i = f_i + \xi_i$ with "
        r"$\xi_i \sim \mathcal{N}(0, s^2)$ independent. The lesson's *excess* is the test MSE "
        r"of $\hat y$ minus that of $f$ on the same labels. Show that its mean over new draws "
        r"is the fit's error to the truth at those inputs, "
        r"$\frac{1}{n}\sum_i (\hat y_i - f_i)^2$, and its standard deviation "
        r"$2s\sqrt{\text{error to the truth}/n}$. Why do the intervals over seeds not "
        "contain this spread?",
        r"$(\hat y_i - y_i)^2 - (f_i - y_i)^2 = (\hat y_i - f_i - \xi_i)^2 - \xi_i^2 = "
        r"(\hat y_i - f_i)^2 - 2(\hat y_i - f_i)\,\xi_i$: the noise's own square cancels, "
        "which makes the excess a much sharper estimate than the test MSE itself. Averaged "
        r"over $i$, the second term has mean 0 and variance "
        r"$\frac{4 s^2}{n^2}\sum_i (\hat y_i - f_i)^2 = \frac{4 s^2}{n}"
        r"\cdot\text{error to the truth}$, hence the standard deviation. The seeds change "
        "the initial weights and so the fit, but every seed is scored on the same test draw: "
        "that draw's second term is in every seed's number, and the spread over seeds cannot "
        "show it. The tests check the formula by Monte Carlo.",
    ),
]
"""The lesson's exercises, in the order the tutorial shows them."""
