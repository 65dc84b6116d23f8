"""Shared test set-up.

A user-defined activation is registered here, at import time (before any test module builds
its parametrisation from the registry), to prove that an activation added through
``actlab.register`` is tested exactly like the built-ins, with no test written for it.
"""

from __future__ import annotations

import math

import torch

import actlab

BENT_IDENTITY = actlab.Activation(
    name="bent_identity",
    fn=lambda x: (torch.sqrt(x * x + 1.0) - 1.0) / 2.0 + x,
    deriv=lambda x: x / (2.0 * torch.sqrt(x * x + 1.0)) + 1.0,
    latex=r"\frac{\sqrt{x^2 + 1} - 1}{2} + x",
    latex_deriv=r"\frac{x}{2\sqrt{x^2 + 1}} + 1",
    bounded=False,
    monotonic=True,  # phi' >= 1/2
    zero_centred=False,
    smooth=True,
    piecewise_linear=False,
    self_gated=False,
    reference="Bent identity; a user's example activation, registered by the tests.",
    # At -inf the formula computes inf + (-inf) = NaN, although the limit is -inf.
    at_inf=(math.nan, math.inf),
)

if "bent_identity" not in actlab.list_activations():  # conftest may be imported twice
    actlab.register(BENT_IDENTITY)
