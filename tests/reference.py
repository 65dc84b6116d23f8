"""Independent references shared by the experiment tests: networks written out with plain torch,
not exported by the engine."""

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn


def torch_default_draw(sizes: Sequence[int], seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Initial ``(W, b)`` of an MLP with layer widths ``sizes``: torch's default scheme
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) drawn in float64 from
    ``torch.Generator().manual_seed(seed)``, W then b, layer after layer (the draw order
    ``EnsembleMLP`` documents)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / math.sqrt(fan_in)
        w = torch.empty(fan_out, fan_in, dtype=torch.float64).uniform_(-bound, bound, generator=gen)
        b = torch.empty(fan_out, dtype=torch.float64).uniform_(-bound, bound, generator=gen)
        out.append((w, b))
    return out


def plain_sequential(
    sizes: Sequence[int], seed: int, activation: Callable[[], nn.Module]
) -> nn.Sequential:
    """:func:`torch_default_draw` as ``nn.Linear`` layers (float32) with ``activation()`` (a
    torch.nn module factory) after every hidden layer."""
    layers: list[nn.Module] = []
    draw = torch_default_draw(sizes, seed)
    for i, (w, b) in enumerate(draw):
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers += [lin, activation()] if i < len(draw) - 1 else [lin]
    return nn.Sequential(*layers)
