"""One look for every figure of the project, and one colour per activation.

A reader learns the colours once: :func:`color_of` gives the same colour to an activation in
every figure (a fixed table for the registered activations, a deterministic hash into a palette
for any other name -- never random, never dependent on the order of plotting). :func:`style` is a
context manager around ``matplotlib.style.context``; it never touches the global rcParams.

Figures are built as ``matplotlib.figure.Figure`` objects (see :func:`new_figure`), not through
pyplot: no backend is selected, nothing is shown, and saving a PNG uses the Agg renderer.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib.style
from matplotlib.figure import Figure

__all__ = ["COLORS", "PALETTE", "RC", "color_of", "style", "new_figure"]

# Tableau-10 for the activations that appear together most often (the classic four first),
# then distinct colours for the rest of the registry.
COLORS: dict[str, str] = {
    "relu": "#1f77b4",
    "tanh": "#ff7f0e",
    "sigmoid": "#2ca02c",
    "leaky_relu": "#9467bd",
    "gelu": "#d62728",
    "silu": "#8c564b",
    "elu": "#e377c2",
    "identity": "#7f7f7f",
    "softplus": "#bcbd22",
    "sine": "#17becf",
    "selu": "#393b79",
    "mish": "#ad494a",
    "gelu_tanh": "#e7969c",
    "celu": "#ce6dbd",
    "prelu": "#6b6ecf",
    "softsign": "#e6550d",
    "hardtanh": "#fd8d3c",
    "hardsigmoid": "#31a354",
    "hardswish": "#843c39",
    "relu6": "#3182bd",
    "logsigmoid": "#637939",
    "tanhshrink": "#8c6d31",
    "softshrink": "#7b4173",
    "hardshrink": "#a55194",
    "gaussian": "#17a589",
    "binary_step": "#525252",
    "penalized_tanh": "#bd9e39",
}

# For names outside the table (user activations, non-default hyper-parameters).
PALETTE: tuple[str, ...] = (
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#e41a1c",
    "#377eb8",
    "#4daf4a",
    "#984ea3",
    "#ff7f00",
    "#a65628",
    "#f781bf",
)

RC: dict[str, Any] = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.titlesize": 10,
    "axes.titlepad": 4,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "font.size": 9,
    "figure.titlesize": 12,
}


def color_of(name: str) -> str:
    """The colour of activation ``name`` (a hex string), the same in every figure.

    Registered names have a fixed colour; any other name (``"leaky_relu(slope=0.2)"``, a user's
    activation) is hashed with CRC-32 into :data:`PALETTE`, so that it too never changes.
    """
    if name in COLORS:
        return COLORS[name]
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


@contextmanager
def style(**overrides: Any) -> Iterator[None]:
    """Apply the project's look (plus ``overrides``, rcParams keys) inside a ``with`` block."""
    with matplotlib.style.context({**RC, **overrides}):
        yield


def new_figure(**kwargs: Any) -> Figure:
    """A Figure that belongs to no pyplot state (so nothing leaks, shows or picks a backend);
    constrained layout unless ``layout`` is given."""
    kwargs.setdefault("layout", "constrained")
    return Figure(**kwargs)
