"""Reports and the tutorial: Markdown from results, assembled into offline HTML.

:mod:`actlab.report.markdown` converts Markdown with LaTeX math to HTML with MathML;
:mod:`actlab.report.html` is the self-contained page; :mod:`actlab.report.tutorial` assembles the
run folders' reports into ``index.md`` and ``index.html``. Imports are lazy (the ``markdown`` and
``latex2mathml`` packages are needed only to build the tutorial).
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_tutorial", "render_markdown"]


def __getattr__(name: str) -> Any:
    if name == "build_tutorial":
        from actlab.report.tutorial import build_tutorial

        return build_tutorial
    if name == "render_markdown":
        from actlab.report.markdown import render_markdown

        return render_markdown
    raise AttributeError(f"module 'actlab.report' has no attribute {name!r}")
