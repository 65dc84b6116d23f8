"""Progress: counts that add up, silence without a reporter, and every experiment's bar moving
inside its chunks and ending exactly at its total (restored chunks included)."""

import io
import threading
import time

import pytest

from actlab import progress
from actlab.experiments import get_experiment, list_experiments
from actlab.store import RunStore


class Recorder(progress.Reporter):
    """Keeps every (done, total) it was shown."""

    def __init__(self):
        super().__init__("test")
        self.seen: list[tuple[float, float]] = []

    def refresh(self):
        self.seen.append((self.done, self.total))


def test_without_a_reporter_everything_is_a_no_op():
    progress.expect(10)
    progress.advance(3)
    progress.note("x")
    with progress.span(5):
        progress.advance()


def test_span_advances_what_the_work_inside_did_not_report():
    with progress.reporting(Recorder()) as r:
        progress.expect(10)
        with progress.span(4):
            progress.advance(1)
        assert r.done == 4
        with progress.span(3):
            pass
        assert r.done == 7
        with progress.span(2):  # reported more than declared: nothing taken back
            progress.advance(3)
        assert (r.done, r.total) == (10, 10)


def test_a_failed_span_adds_nothing():
    with progress.reporting(Recorder()) as r:
        with pytest.raises(RuntimeError), progress.span(5):
            progress.advance(1)
            raise RuntimeError
        assert r.done == 1


def test_the_reporter_is_per_thread_and_closed_on_exit():
    closed = []

    class Closing(Recorder):
        def close(self):
            closed.append(True)

    other: list[float] = []
    with progress.reporting(Closing()) as r:
        t = threading.Thread(target=lambda: (progress.advance(5), other.append(r.done)))
        t.start()
        t.join()
        progress.advance(2)
    assert r.done == 2 and other == [0] and closed == [True]


def test_terminal_reporter_shows_total_rate_and_time_left():
    stream = io.StringIO()
    rep = progress.TerminalReporter("demo (smoke)", stream)
    rep._bar.mininterval = 0  # draw every update in the test
    with progress.reporting(rep):
        progress.expect(100)
        for _ in range(50):
            progress.advance()
            time.sleep(0.005)
        rep._last = 0
        progress.advance(0)
    text = stream.getvalue()
    assert "demo (smoke)" in text and "/100" in text
    assert "<" in text and "step/s" in text  # elapsed<left and the rate


@pytest.mark.parametrize("name", list_experiments())
def test_every_experiment_moves_inside_its_chunks_and_ends_at_its_total(name, tmp_path):
    spec = get_experiment(name)
    cfg = spec.preset("smoke")
    store = RunStore(tmp_path)
    store.begin(spec.name, "smoke", cfg)
    with progress.reporting(Recorder()) as first:
        spec.run(cfg, store.chunk_runner())
    assert first.total > 0 and first.done == first.total
    assert all(done <= total for done, total in first.seen), "done ran past the total"
    # Work is reported as it is done (the trainer's steps inside a chunk included): the count
    # moves by one unit at a time, or (agents stepping K environment copies at once) by at most
    # 2% of the total.
    seen = sorted({d for d, _ in first.seen})
    assert seen[0] == 0 and seen[-1] == first.total
    assert max(b - a for a, b in zip(seen, seen[1:], strict=False)) <= max(1, first.total // 50)
    # Resumed from the saved chunks: nothing recomputed, and the count still ends at the total.
    with progress.reporting(Recorder()) as second:
        spec.run(cfg, store.chunk_runner())
    assert second.done == second.total == first.total
