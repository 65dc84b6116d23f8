"""Toy classification tasks in the plane, as pure functions of a seed or a ``torch.Generator``.

Every sampler takes ``n`` (number of points) and ``generator`` (a ``torch.Generator``, or an int
seed from which a fresh CPU generator is made) and returns ``(x, y)``: inputs ``x`` of shape
``(n, 2)`` and class indices ``y`` of shape ``(n,)`` (``torch.long``, 0 or 1). Nothing global is
read or changed: the same seed gives the same points, bit for bit. Random numbers are drawn in
float64 and the inputs are cast to ``dtype`` at the end.

The tasks (``u ~ U[0, 1)``, ``eps ~ N(0, 1)``, all draws independent):

* ``linear`` -- the classic lesson's task: ``x ~ N(0, I_2)``, ``y = [x_1 + x_2 > 0]``. Linearly
  separable through the origin; each label has probability 1/2 (the split is random, not exact).
* ``xor`` -- ``x ~ U[-1, 1]^2``, ``y = [x_1 x_2 > 0]`` (quadrants I and III are class 1): the
  classic problem that no linear model solves; each label has probability 1/2.
* ``moons`` -- two interleaved half circles (scikit-learn's ``make_moons`` with random angles,
  centred): class 0 at ``(cos t, sin t) - c``, class 1 at ``(1 - cos t, 1/2 - sin t) - c``, with
  ``t ~ U[0, pi)``, ``c = (1/2, 1/4)`` and Gaussian noise ``noise * eps`` added to each
  coordinate. Exactly ``n // 2`` points of class 0 first, then ``n - n // 2`` of class 1.
* ``circles`` -- two concentric circles: class 0 at radius 1, class 1 at radius ``factor``,
  ``(r cos t, r sin t)`` with ``t ~ U[0, 2 pi)``, plus ``noise * eps`` per coordinate. Exactly
  ``n // 2`` points of class 0 first, then ``n - n // 2`` of class 1. Not linearly separable;
  separable by the radius.

:func:`make_split` draws independent train, validation and held-out (test) sets of one task from
streams derived from one seed, so that the held-out points never overlap the training draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from actlab.seeding import derive_seed

__all__ = [
    "TASKS",
    "SAMPLERS",
    "BOUNDS",
    "Split",
    "linear",
    "xor",
    "two_moons",
    "circles",
    "sample",
    "make_split",
    "as_generator",
]

TASKS = ("linear", "xor", "moons", "circles")
"""The task names, in the order the lessons show them."""

MOONS_CENTRE = (0.5, 0.25)
"""Subtracted from scikit-learn's moons so that the two classes are centred on the origin."""

BOUNDS: dict[str, tuple[float, float, float, float]] = {
    "linear": (-3.0, 3.0, -3.0, 3.0),
    "xor": (-1.2, 1.2, -1.2, 1.2),
    "moons": (-1.8, 1.8, -1.1, 1.1),
    "circles": (-1.4, 1.4, -1.4, 1.4),
}
"""A box ``(x1_min, x1_max, x2_min, x2_max)`` per task that holds (almost) all its points at the
default noise: where decision boundaries are drawn."""


def as_generator(generator: torch.Generator | int) -> torch.Generator:
    """``generator`` itself, or a fresh CPU generator seeded with the int ``generator``."""
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise TypeError(f"generator must be a torch.Generator or an int seed, got {generator!r}")
    return torch.Generator().manual_seed(int(generator))


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")


def _check_noise(noise: float) -> None:
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be finite and >= 0, got {noise!r}")


def _halves(n: int) -> Tensor:
    """Labels ``[0] * (n // 2) + [1] * (n - n // 2)``."""
    y = torch.ones(n, dtype=torch.long)
    y[: n // 2] = 0
    return y


def linear(
    n: int = 100, generator: torch.Generator | int = 0, *, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """The lesson's linearly separable task: ``x ~ N(0, I_2)``, ``y = [x_1 + x_2 > 0]``.

    Returns:
        ``x`` ``(n, 2)`` and ``y`` ``(n,)`` long.
    """
    _check_n(n)
    gen = as_generator(generator)
    x = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x.to(dtype), y


def xor(
    n: int = 100, generator: torch.Generator | int = 0, *, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """XOR-like quadrants: ``x ~ U[-1, 1]^2``, ``y = [x_1 x_2 > 0]``.

    Returns:
        ``x`` ``(n, 2)`` and ``y`` ``(n,)`` long.
    """
    _check_n(n)
    gen = as_generator(generator)
    x = 2.0 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 1.0
    y = (x[:, 0] * x[:, 1] > 0).long()
    return x.to(dtype), y


def two_moons(
    n: int = 100,
    generator: torch.Generator | int = 0,
    *,
    noise: float = 0.1,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Two interleaved half circles, centred on the origin.

    Class 0 (the first ``n // 2`` points): ``(cos t, sin t) - c``; class 1 (the rest):
    ``(1 - cos t, 1/2 - sin t) - c``; ``t ~ U[0, pi)`` per point, ``c = (1/2, 1/4)``, then
    ``noise * N(0, 1)`` added to each coordinate.

    Returns:
        ``x`` ``(n, 2)`` and ``y`` ``(n,)`` long.
    """
    _check_n(n)
    _check_noise(noise)
    gen = as_generator(generator)
    y = _halves(n)
    t = math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
    outer = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    inner = torch.stack([1.0 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
    x = torch.where((y == 0)[:, None], outer, inner) - torch.tensor(MOONS_CENTRE, dtype=t.dtype)
    x = x + noise * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return x.to(dtype), y


def circles(
    n: int = 100,
    generator: torch.Generator | int = 0,
    *,
    factor: float = 0.5,
    noise: float = 0.08,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Two concentric circles: class 0 at radius 1, class 1 at radius ``factor``.

    Point i: ``r_i (cos t_i, sin t_i) + noise * N(0, I_2)`` with ``t_i ~ U[0, 2 pi)``, ``r_i = 1``
    for the first ``n // 2`` points (class 0) and ``factor`` for the rest (class 1).

    Returns:
        ``x`` ``(n, 2)`` and ``y`` ``(n,)`` long.
    """
    _check_n(n)
    _check_noise(noise)
    if not (math.isfinite(factor) and 0 < factor < 1):
        raise ValueError(f"factor must be in (0, 1), got {factor!r}")
    gen = as_generator(generator)
    y = _halves(n)
    t = 2.0 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
    r = torch.where(y == 0, 1.0, factor).to(torch.float64)
    x = r[:, None] * torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    x = x + noise * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return x.to(dtype), y


SAMPLERS: dict[str, Callable[..., tuple[Tensor, Tensor]]] = {
    "linear": linear,
    "xor": xor,
    "moons": two_moons,
    "circles": circles,
}
"""Task name -> sampler ``(n, generator, **options) -> (x, y)``."""


def sample(
    task: str, n: int, generator: torch.Generator | int, **options: object
) -> tuple[Tensor, Tensor]:
    """``n`` points of ``task`` (one of :data:`TASKS`); ``options`` go to its sampler."""
    if task not in SAMPLERS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    return SAMPLERS[task](n, generator, **options)


@dataclass(frozen=True)
class Split:
    """Independent draws of one task: inputs ``(n, 2)`` and labels ``(n,)`` per part."""

    task: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor


def make_split(
    task: str,
    seed: int,
    n_train: int = 100,
    n_test: int = 1000,
    n_val: int = 0,
    **options: object,
) -> Split:
    """Train, validation and held-out sets of ``task``, each from its own stream.

    Part ``p`` (``"train"``, ``"val"``, ``"test"``) is drawn from a generator seeded with
    ``derive_seed(seed, "data", task, p)``, so the three parts are independent draws, and a part
    does not change when another part's size does. ``n_val = 0`` gives empty validation tensors.
    """
    parts = {}
    for part, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if part == "val" and n == 0:
            x, y = sample(task, 1, 0, **options)
            parts[part] = (x[:0], y[:0])
            continue
        gen = torch.Generator().manual_seed(derive_seed(seed, "data", task, part))
        parts[part] = sample(task, n, gen, **options)
    return Split(
        task,
        parts["train"][0],
        parts["train"][1],
        parts["val"][0],
        parts["val"][1],
        parts["test"][0],
        parts["test"][1],
    )
