"""Exercises that close a lesson, with worked solutions that cannot rot.

A lesson's exercises are an ordered list of :class:`Exercise`. A *coding* exercise names a
function in the lesson's exercise module (``actlab.experiments.<lesson>.exercises``: the
signature and docstring a learner fills in, raising ``NotImplementedError``) and its worked
solution in ``actlab.experiments.<lesson>.solutions``; the tests call every solution against an
independent reference, and the report shows the solution's actual source, so what the tutorial
prints is what was tested.

:func:`exercises_markdown` renders the list as Markdown with each solution folded in an HTML
``<details>`` block (Markdown inside it is rendered: ``markdown="1"``, the ``md_in_html``
extension of :mod:`actlab.report.markdown`).
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
from dataclasses import dataclass

__all__ = ["KINDS", "Exercise", "exercises_markdown", "solution_source"]

KINDS = ("warm-up", "coding", "debug", "conceptual", "challenge")
"""The kinds of exercise, in the order a section lists them."""


@dataclass(frozen=True)
class Exercise:
    """One exercise.

    Attributes:
        kind: one of :data:`KINDS`.
        title: a few words.
        prompt: the task, in Markdown (may use ``$math$``).
        solution: the worked answer in Markdown; for a coding exercise, the prose around the
            solution's source, which is appended from ``function``.
        function: for a coding (or debug) exercise, ``"lesson:function_name"``: the stub lives in
            ``actlab.experiments.<lesson>.exercises`` and the solution in
            ``actlab.experiments.<lesson>.solutions``.
    """

    kind: str
    title: str
    prompt: str
    solution: str
    function: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.title.strip() or not self.prompt.strip() or not self.solution.strip():
            raise ValueError("an exercise needs a title, a prompt and a solution")
        if self.function is not None and ":" not in self.function:
            raise ValueError(f"function must read 'lesson:name', got {self.function!r}")


def _resolve(function: str, solutions: bool):
    lesson, name = function.split(":")
    module = "solutions" if solutions else "exercises"
    return getattr(importlib.import_module(f"actlab.experiments.{lesson}.{module}"), name)


def solution_source(function: str) -> str:
    """The source code of the worked solution of ``"lesson:name"``."""
    return textwrap.dedent(inspect.getsource(_resolve(function, solutions=True))).rstrip()


def exercises_markdown(exercises: list[Exercise], heading: str = "## Exercises") -> str:
    """The exercises as Markdown: numbered, kind in bold, each solution folded."""
    out = [heading, ""]
    for i, ex in enumerate(exercises, 1):
        stop = "" if ex.title.rstrip()[-1] in ".?!" else "."  # no "?." after a question
        out += [f"**{i}. {ex.kind.capitalize()}: {ex.title}{stop}** {ex.prompt.strip()}", ""]
        if ex.function is not None:
            lesson, name = ex.function.split(":")
            verb = "Fix" if ex.kind == "debug" else "Fill in"
            out += [f"*{verb}* `{name}` *in* `actlab/experiments/{lesson}/exercises.py`.", ""]
        body = ex.solution.strip()
        if ex.function is not None:
            body += f"\n\n```python\n{solution_source(ex.function)}\n```"
        out += [
            '<details markdown="1">',
            "<summary>Solution</summary>",
            "",
            body,
            "",
            "</details>",
            "",
        ]
    return "\n".join(out)
