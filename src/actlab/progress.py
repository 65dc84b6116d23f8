"""Progress of long work: one mechanism for experiments, the trainer, agents and sweeps.

Code that does work says so with :func:`advance`; code that knows how much work lies ahead says
so with :func:`expect`. Both are no-ops (one context-variable lookup) unless a :class:`Reporter`
is active, which only the command line opens, and only on a terminal: the library itself never
prints. The unit is whatever the experiment counts (training steps of its ensemble passes,
activations, chunks): what matters is that ``expect`` and ``advance`` count the same thing.

Chunks that the run store restores instead of computing still count: the chunk runner wraps
each chunk in :func:`span` with the work the experiment declared for it, which advances whatever
the chunk did not report itself (all of it, for a restored chunk).

Example::

    with reporting(Reporter("deep-mlp")):     # the CLI does this
        expect(3 * 500)                       # the experiment, before its first chunk
        for step in range(500):               # the trainer, deep inside
            advance()
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["Reporter", "TerminalReporter", "reporting", "expect", "advance", "note", "span"]

_CURRENT: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "actlab_progress", default=None
)


class Reporter:
    """Counts work done against work expected; subclasses show it (:meth:`refresh`).

    Attributes:
        label: What is running, e.g. ``"[2/6] deep-mlp (default)"``.
        total: Work expected so far (grows with every :func:`expect`).
        done: Work done so far (never shown above ``total``).
        status: A short note on what is happening now (e.g. the chunk being restored).
        unit: What is counted (``"step"`` unless :func:`expect` names it).
    """

    def __init__(self, label: str):
        self.label = label
        self.total = 0
        self.done = 0
        self.status = ""
        self.unit = "step"

    def expect(self, n: float, unit: str | None = None) -> None:
        self.total += n
        self.unit = unit or self.unit
        self.refresh()

    def advance(self, n: float) -> None:
        self.done += n
        self.refresh()

    def note(self, text: str) -> None:
        self.status = text
        self.refresh()

    def refresh(self) -> None:
        """Show the state; the base class keeps it to itself (tests read the attributes)."""

    def close(self) -> None:
        """Called once when the work ends (or fails)."""


class TerminalReporter(Reporter):
    """A tqdm bar on ``stream``: total, rate and time left, redrawn at most every 0.2 s on
    progress and at least every second without (so that the clock moves while figures are
    drawn or a long step runs)."""

    def __init__(self, label: str, stream: TextIO | None = None):
        super().__init__(label)
        from tqdm import tqdm

        self._bar = tqdm(
            desc=label,
            total=0,
            unit=self.unit,
            file=stream or sys.stderr,
            leave=False,
            mininterval=0.2,
            dynamic_ncols=True,
        )
        self._shown: float = 0
        self._last = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._bar.refresh()

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        with self._lock:
            self._draw()

    def _draw(self) -> None:
        bar = self._bar
        if bar.total != self.total:
            bar.total = self.total
        bar.unit = self.unit
        shown = min(self.done, self.total)
        bar.update(shown - self._shown)
        self._shown = shown
        if self.status:
            bar.set_postfix_str(self.status, refresh=False)
        bar.refresh()

    def close(self) -> None:
        self._stop.set()
        self._ticker.join()
        self._bar.close()


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Make ``reporter`` the one that :func:`expect` and :func:`advance` feed, in this
    context (thread and task) only; it is closed on exit."""
    token = _CURRENT.set(reporter)
    try:
        yield reporter
    finally:
        _CURRENT.reset(token)
        reporter.close()


def expect(n: float, unit: str | None = None) -> None:
    """Announce ``n`` more units of work (``unit`` names them, e.g. ``"activation"``)."""
    reporter = _CURRENT.get()
    if reporter is not None and n > 0:
        reporter.expect(n, unit)


def advance(n: float = 1) -> None:
    """Report ``n`` units of work done."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter.advance(n)


def note(text: str) -> None:
    """Say what is happening now (shown beside the bar)."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter.note(text)


@contextmanager
def span(work: float) -> Iterator[Any]:
    """A piece of work worth ``work`` units: on exit, advance by what the code inside did not
    report itself (everything, if it reported nothing), so the count stays exact."""
    reporter = _CURRENT.get()
    start = reporter.done if reporter is not None else 0
    yield
    if reporter is not None:
        rest = work - (reporter.done - start)
        if rest > 0:
            reporter.advance(rest)
