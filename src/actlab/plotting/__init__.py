"""Figures: ``plot_*(results, ax=None)`` functions, one module per family.

They draw from a :class:`~actlab.experiments.base.Results` only; they never compute results,
save or show. Colours per activation and the common look live in :mod:`actlab.plotting.style`.
"""

from actlab.plotting.style import COLORS, color_of, new_figure, style

__all__ = ["COLORS", "color_of", "new_figure", "style"]
