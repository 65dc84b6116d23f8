"""actlab.tuning.grid_step on hand-made score tables."""

import math

import pytest

from actlab.tuning import grid_step, status_text

NAN, INF = math.nan, math.inf
BOUNDS = {"lr_min": 1e-5, "lr_max": 1e-1}


def test_interior_pick_asks_for_nothing():
    d = grid_step({"tanh": {1e-4: 0.3, 1e-3: 0.1, 1e-2: 0.2}}, **BOUNDS)["tanh"]
    assert (d.pick, d.status, d.next_rate) == (1e-3, "interior", None)
    assert status_text(d) == "interior"


def test_pick_at_the_low_edge_extends_one_step_down():
    d = grid_step({"relu": {3e-4: 0.1, 1e-3: 0.2, 3e-3: 0.3}}, **BOUNDS)["relu"]
    assert (d.pick, d.status, d.side) == (3e-4, "edge", "low")
    assert d.next_rate == pytest.approx(1e-4)


def test_pick_at_the_high_edge_extends_one_step_up():
    d = grid_step({"relu": {3e-4: 0.3, 1e-3: 0.2, 3e-3: 0.1}}, factor=10, **BOUNDS)["relu"]
    assert (d.pick, d.status, d.side) == (3e-3, "edge", "high")
    assert d.next_rate == pytest.approx(3e-2)


def test_extension_is_clipped_to_the_bound_then_flagged_there():
    d = grid_step({"a": {2e-5: 0.1, 1e-4: 0.2}}, **BOUNDS)["a"]
    assert d.status == "edge" and d.next_rate == pytest.approx(1e-5)  # not 6.7e-6
    d = grid_step({"a": {1e-5: 0.1, 3e-5: 0.2}}, **BOUNDS)["a"]
    assert (d.pick, d.status, d.next_rate, d.side) == (1e-5, "at lr_min", None, "low")
    assert "lower bound" in status_text(d)
    d = grid_step({"a": {3e-2: 0.2, 1e-1: 0.1}}, **BOUNDS)["a"]
    assert (d.pick, d.status, d.next_rate) == (1e-1, "at lr_max", None)


def test_diverged_rates_are_never_picked_but_bracket_the_pick():
    # 1e-2 diverged (NaN) and 3e-2 overflowed (inf): 3e-3 is the best finite rate and a tried
    # rate above it exists, so it is interior; no extension up into divergence.
    table = {1e-3: 0.3, 3e-3: 0.2, 1e-2: NAN, 3e-2: INF}
    d = grid_step({"a": table}, **BOUNDS)["a"]
    assert (d.pick, d.status, d.next_rate) == (3e-3, "interior", None)
    # The best finite rate is the smallest one: extend down, whatever diverged above.
    d = grid_step({"a": {1e-3: 0.3, 3e-3: NAN}}, **BOUNDS)["a"]
    assert (d.pick, d.status) == (1e-3, "edge") and d.next_rate == pytest.approx(1e-3 / 3)


def test_every_rate_diverged():
    d = grid_step({"a": {1e-3: NAN, 1e-2: INF}}, **BOUNDS)["a"]
    assert d.pick is None and d.status == "edge" and d.next_rate == pytest.approx(1e-3 / 3)
    d = grid_step({"a": {1e-5: NAN}}, **BOUNDS)["a"]
    assert (d.pick, d.status, d.next_rate) == (None, "diverged", None)


def test_arms_are_decided_independently_and_ties_take_the_smaller_rate():
    out = grid_step(
        {"x": {1e-3: 0.1, 3e-3: 0.1, 1e-2: 0.5}, "y": {1e-3: 0.5, 3e-3: 0.1, 1e-2: 0.5}},
        **BOUNDS,
    )
    assert list(out) == ["x", "y"]
    assert out["x"].pick == 1e-3 and out["x"].status == "edge"
    assert out["y"].pick == 3e-3 and out["y"].status == "interior"


def test_a_caller_loop_stops_inside_the_grid_or_at_the_budget():
    """Loop as deep-mlp does with a convex score in log10(rate) whose optimum is 1e-4:
    starting from {3e-4, 1e-3, 3e-3} the loop adds 1e-4 then 3.3e-5 and stops interior."""

    def score(r):
        return (math.log10(r) + 4) ** 2

    table = {r: score(r) for r in (3e-4, 1e-3, 3e-3)}
    for _ in range(5):
        d = grid_step({"a": table}, **BOUNDS)["a"]
        if d.next_rate is None:
            break
        table[d.next_rate] = score(d.next_rate)
    assert d.status == "interior" and d.pick == pytest.approx(1e-4)
    assert len(table) == 5
    # With a budget of one extension the pick stays at the edge, and says so.
    table = {r: score(r) for r in (1e-3, 3e-3)}
    d = grid_step({"a": table}, **BOUNDS)["a"]
    table[d.next_rate] = score(d.next_rate)
    d = grid_step({"a": table}, **BOUNDS)["a"]
    assert d.status == "edge" and "budget" in status_text(d)


def test_bad_arguments():
    with pytest.raises(ValueError, match="factor"):
        grid_step({"a": {1e-3: 0.1}}, factor=1.0, **BOUNDS)
    with pytest.raises(ValueError, match="lr_min"):
        grid_step({"a": {1e-3: 0.1}}, lr_min=1e-2, lr_max=1e-3)
    with pytest.raises(ValueError, match="no scores"):
        grid_step({"a": {}}, **BOUNDS)


def test_rates_to_try_groups_the_arms_by_the_rate_they_want_next():
    from actlab.tuning import GridDecision, rates_to_try

    decisions = {
        ("relu", "a"): GridDecision(0.1, "edge", next_rate=0.3, side="high"),
        ("tanh", "a"): GridDecision(0.01, "interior"),
        ("gelu", "b"): GridDecision(0.1, "edge", next_rate=0.3, side="high"),
        ("selu", "b"): GridDecision(0.001, "edge", next_rate=0.0003, side="low"),
    }
    assert rates_to_try(decisions) == {
        0.3: [("relu", "a"), ("gelu", "b")],
        0.0003: [("selu", "b")],
    }
    assert rates_to_try({"x": GridDecision(0.01, "interior")}) == {}
