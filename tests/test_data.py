"""The toy tasks: deterministic per seed, with the documented labels, class balance and geometry."""

from __future__ import annotations

import math

import pytest
import torch

from actlab import data as D


@pytest.mark.parametrize("task", D.TASKS)
def test_same_seed_same_points_and_generator_equals_int_seed(task):
    x1, y1 = D.sample(task, 50, 7)
    x2, y2 = D.sample(task, 50, 7)
    x3, y3 = D.sample(task, 50, torch.Generator().manual_seed(7))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert torch.equal(x1, x3) and torch.equal(y1, y3)
    x4, _ = D.sample(task, 50, 8)
    assert not torch.equal(x1, x4)
    assert x1.shape == (50, 2) and x1.dtype == torch.float32
    assert y1.shape == (50,) and y1.dtype == torch.long
    assert set(y1.tolist()) <= {0, 1}


@pytest.mark.parametrize("task", D.TASKS)
def test_no_global_rng_is_read_or_changed(task):
    torch.manual_seed(0)
    before = torch.get_rng_state()
    x1, _ = D.sample(task, 20, 3)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(123)
    x2, _ = D.sample(task, 20, 3)
    assert torch.equal(x1, x2)


@pytest.mark.parametrize("task", D.TASKS)
def test_float64_is_the_same_draw(task):
    x32, y32 = D.sample(task, 30, 1)
    x64, y64 = D.sample(task, 30, 1, dtype=torch.float64)
    assert x64.dtype == torch.float64
    assert torch.equal(x64.float(), x32) and torch.equal(y64, y32)


def test_linear_labels_and_gaussian_inputs():
    x, y = D.linear(20000, 0)
    assert torch.equal(y, (x[:, 0] + x[:, 1] > 0).long())
    # x ~ N(0, I): sample mean within 5 standard errors, covariance near the identity
    assert x.mean(0).abs().max() < 5 / math.sqrt(20000)
    cov = torch.cov(x.double().T)
    assert torch.allclose(cov, torch.eye(2, dtype=torch.float64), atol=0.05)
    assert abs(y.double().mean().item() - 0.5) < 5 * 0.5 / math.sqrt(20000)


def test_the_lesson_task_has_100_points_by_default():
    x, y = D.linear()
    assert x.shape == (100, 2) and y.shape == (100,)


def test_xor_labels_square_and_balance():
    x, y = D.xor(20000, 1)
    assert torch.equal(y, (x[:, 0] * x[:, 1] > 0).long())
    assert x.abs().max() <= 1.0
    # uniform: each quadrant holds a quarter of the points (within 5 binomial sd)
    quadrant = (x[:, 0] > 0).long() * 2 + (x[:, 1] > 0).long()
    counts = torch.bincount(quadrant, minlength=4).double() / 20000
    assert (counts - 0.25).abs().max() < 5 * math.sqrt(0.25 * 0.75 / 20000)
    # a linear classifier cannot solve it: the class means coincide at the origin
    for k in (0, 1):
        assert x[y == k].mean(0).abs().max() < 0.03


@pytest.mark.parametrize("n", [1, 7, 100])
@pytest.mark.parametrize("task", ["moons", "circles"])
def test_exact_class_balance(task, n):
    _, y = D.sample(task, n, 0)
    assert (y == 0).sum().item() == n // 2
    assert torch.equal(y[: n // 2], torch.zeros(n // 2, dtype=torch.long))
    assert (y == 1).sum().item() == n - n // 2


def test_moons_geometry_without_noise():
    x, y = D.two_moons(400, 2, noise=0.0, dtype=torch.float64)
    c = torch.tensor(D.MOONS_CENTRE, dtype=torch.float64)
    outer, inner = x[y == 0] + c, x[y == 1] + c
    # class 0 on the upper unit half circle around (0, 0) (before centring)
    assert torch.allclose(outer.norm(dim=1), torch.ones(len(outer), dtype=torch.float64))
    assert (outer[:, 1] >= 0).all()
    # class 1 on the lower unit half circle around (1, 1/2)
    shifted = inner - torch.tensor([1.0, 0.5], dtype=torch.float64)
    assert torch.allclose(shifted.norm(dim=1), torch.ones(len(inner), dtype=torch.float64))
    assert (shifted[:, 1] <= 1e-12).all()
    # centred: the two arcs' points average to the origin (uniform angles)
    x_big, _ = D.two_moons(40000, 3, noise=0.0, dtype=torch.float64)
    assert x_big.mean(0).abs().max() < 0.01


def test_moons_noise_has_the_documented_scale():
    clean, _ = D.two_moons(20000, 4, noise=0.0, dtype=torch.float64)
    noisy, _ = D.two_moons(20000, 4, noise=0.1, dtype=torch.float64)
    # same angles (drawn first), so the difference is the noise alone
    residual = noisy - clean
    assert residual.std().item() == pytest.approx(0.1, rel=0.03)
    assert residual.mean(0).abs().max().item() < 5 * 0.1 / math.sqrt(20000)


def test_circles_geometry():
    x, y = D.circles(300, 5, factor=0.3, noise=0.0, dtype=torch.float64)
    r = x.norm(dim=1)
    assert torch.allclose(r[y == 0], torch.ones((y == 0).sum(), dtype=torch.float64))
    assert torch.allclose(r[y == 1], torch.full(((y == 1).sum(),), 0.3, dtype=torch.float64))
    x, y = D.circles(20000, 6, noise=0.08, dtype=torch.float64)
    r = x.norm(dim=1)
    assert r[y == 0].mean().item() == pytest.approx(1.0, abs=0.01)
    assert r[y == 1].mean().item() == pytest.approx(0.5, abs=0.01)
    # same angles (drawn first), so the difference is the noise: N(0, 0.08^2) per coordinate
    clean, _ = D.circles(20000, 6, noise=0.0, dtype=torch.float64)
    residual = x - clean
    assert residual.std().item() == pytest.approx(0.08, rel=0.03)
    assert residual.mean(0).abs().max().item() < 5 * 0.08 / math.sqrt(20000)


@pytest.mark.parametrize("task", D.TASKS)
def test_bounds_hold_the_points(task):
    x, _ = D.sample(task, 5000, 9)
    x1lo, x1hi, x2lo, x2hi = D.BOUNDS[task]
    inside = (x[:, 0] > x1lo) & (x[:, 0] < x1hi) & (x[:, 1] > x2lo) & (x[:, 1] < x2hi)
    assert inside.double().mean().item() > 0.99


def test_split_parts_are_independent_and_stable():
    a = D.make_split("moons", 11, n_train=50, n_test=80, n_val=30)
    b = D.make_split("moons", 11, n_train=50, n_test=200, n_val=0)
    assert a.x_train.shape == (50, 2) and a.x_val.shape == (30, 2) and a.x_test.shape == (80, 2)
    assert torch.equal(a.x_train, b.x_train)  # a part does not depend on another part's size
    assert not torch.equal(a.x_train[:30], a.x_val)
    assert not torch.equal(a.x_train, a.x_test[:50])
    assert b.x_val.shape == (0, 2) and b.y_val.shape == (0,)
    c = D.make_split("moons", 12, n_train=50)
    assert not torch.equal(a.x_train, c.x_train)
    d = D.make_split("xor", 11, n_train=50)
    assert not torch.equal(a.x_train, d.x_train)
    # independent draws share no point (for linear, one stream would give x_test[:50] = x_train)
    for task in ("linear", "xor"):
        s = D.make_split(task, 11, n_train=50, n_test=80, n_val=30)
        parts = [s.x_train, s.x_val, s.x_test]
        for i in range(3):
            for j in range(i + 1, 3):
                shared = (parts[i][:, None, :] == parts[j][None, :, :]).all(-1)
                assert not shared.any(), (task, i, j)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: D.sample("spiral", 10, 0), "unknown task"),
        (lambda: D.linear(0, 0), "n must be"),
        (lambda: D.two_moons(10, 0, noise=-1.0), "noise"),
        (lambda: D.circles(10, 0, factor=1.5), "factor"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_generator():
    with pytest.raises(TypeError, match="generator"):
        D.linear(10, 1.5)
