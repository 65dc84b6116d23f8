"""Two activations of your own, for ``actlab ... --activations-from examples/my_activations.py``.

A file given to ``--activations-from`` (or to :func:`actlab.activations.load_activations_file`)
is imported as a module of its own and registers each activation with ``actlab.register``, as
the built-ins do: an :class:`actlab.Activation` for a fixed function, or a factory (every
parameter with a default) for a parameterised family. Before any experiment sees them, actlab
checks each one with :func:`actlab.testing.check_activation`: the analytic derivative against
autograd, each declared property against the values, and the values at +-inf and nan against
``at_inf``. A wrong derivative or a wrong flag stops the command with one line that says what is
wrong.

    actlab list activations --activations-from examples/my_activations.py
    actlab run gallery --preset smoke --set activations=relu,squareplus,isru \\
        --activations-from examples/my_activations.py

The names must be new: a file cannot replace a built-in (``relu``) or an alias (``swish``).
"""

import math

import torch

import actlab

_B = 4.0  # Barron's choice: squareplus(0) = 1, close to softplus(0) = log 2


def _squareplus(x: torch.Tensor) -> torch.Tensor:
    # (x + sqrt(x^2 + b)) / 2 cancels to 0 for very negative x, and at -inf it is -inf + inf =
    # NaN; for x < 0 the same number is b / (2 (sqrt(x^2 + b) - x)), which has neither problem.
    s = torch.sqrt(x * x + _B)
    return torch.where(x >= 0, 0.5 * (x + s), _B / (2.0 * (s - x)))


def _squareplus_deriv(x: torch.Tensor) -> torch.Tensor:
    # (1 + x / s) / 2, rewritten for x < 0 as b / (2 s (s - x)) for the same reason.
    s = torch.sqrt(x * x + _B)
    return torch.where(x >= 0, 0.5 * (1.0 + x / s), _B / (2.0 * s * (s - x)))


actlab.register(
    actlab.Activation(
        name="squareplus",
        fn=_squareplus,
        deriv=_squareplus_deriv,
        latex=r"\tfrac12\left(x + \sqrt{x^2 + 4}\right)",
        latex_deriv=r"\tfrac12\left(1 + \frac{x}{\sqrt{x^2 + 4}}\right)",
        bounded=False,
        monotonic=True,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Squareplus, a softplus-like algebraic rectifier; Barron (2021).",
        at_inf=(0.0, math.inf),
    )
)


@actlab.register
def isru(alpha: float = 1.0) -> actlab.Activation:
    """Inverse square root unit x / sqrt(1 + alpha x^2): a tanh-like curve with limits
    +-1 / sqrt(alpha) (Carlile et al. 2017). ``get_activation("isru(alpha=0.5)")`` makes one."""
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"activation isru: alpha must be a finite number > 0, got {alpha}")
    limit = 1.0 / math.sqrt(alpha)
    coef = "" if alpha == 1.0 else f"{alpha:g}\\,"  # LaTeX of the coefficient of x^2

    def fn(x: torch.Tensor) -> torch.Tensor:
        # At +-inf the formula is inf * 0 = NaN; the limit is returned there instead.
        return torch.where(x.isinf(), torch.sign(x) * limit, x * torch.rsqrt(1.0 + alpha * x * x))

    return actlab.Activation(
        # The name holds every non-default hyper-parameter exactly (repr, not :g): activations
        # are pickled by name, and get_activation(name) must give this one back.
        name="isru" if alpha == 1.0 else f"isru(alpha={alpha!r})",
        family="isru",
        hyper={"alpha": alpha},
        fn=fn,
        deriv=lambda x: torch.rsqrt(1.0 + alpha * x * x) ** 3,
        latex=rf"\frac{{x}}{{\sqrt{{1 + {coef}x^2}}}}",
        latex_deriv=rf"\left(1 + {coef}x^2\right)^{{-3/2}}",
        bounded=True,
        monotonic=True,
        zero_centred=True,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Inverse square root unit (ISRU); Carlile et al. (2017).",
        at_inf=(-limit, limit),
    )
