"""Sharpness: HVPs, top eigenvalues, Adam's preconditioned sharpness and the thresholds, against
independent references: each member exported as a plain ``nn.Sequential`` (``model.member``)
differentiated twice by ``torch.autograd.functional.hessian`` with ``torch.nn.functional``'s
losses, ``numpy.linalg.eigvalsh``, ``torch.optim.Adam``'s state, and gradient descent actually
run on quadratics.

Tolerances: HVPs and Hessians are different float64 computations (relative 1e-9); power
iteration stops at a relative change of the Rayleigh quotient, so its eigenvalue is compared at
a tolerance stated per test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor
from torch.func import functional_call
from torch.nn import functional as F

from actlab.models import EnsembleMLP
from actlab.optim import EnsembleOptimizer, OptimizerConfig
from actlab.sharpness import (
    HVP_METHODS,
    MemberLayout,
    adam_preconditioner,
    adam_threshold,
    batched_top_eigenvalue,
    gd_threshold,
    hessian_operator,
    hvp,
    momentum_threshold,
    preconditioned_sharpness,
    top_eigenvalue,
    top_eigenvalue_lanczos,
)
from actlab.train import Callback, TrainConfig, train

D = torch.float64
ACTIVATION_SETS = {
    "tanh": ["tanh"] * 3,
    "relu": ["relu"] * 3,
    "mixed": ["tanh", "relu", "prelu", "gelu"],  # prelu: a learnable activation parameter
}


# ------------------------------------------------------------------------ independent reference
def member_entries(model: EnsembleMLP, vec: Tensor, m: int) -> list[Tensor]:
    """Member m's pieces of a flat vector through the engine's own views (not MemberLayout):
    W_0, b_0, ..., W_L, b_L, then the activation parameters of each hidden layer."""
    pieces = []
    for layer in range(model.n_layers):
        pieces += [model.weight(layer, vec)[m], model.bias(layer, vec)[m]]
    pieces += [model.act_params(layer, vec)[m] for layer in range(model.n_hidden)]
    return pieces


def reference_hessian(model: EnsembleMLP, x: Tensor, y: Tensor, loss: str, m: int) -> Tensor:
    """``(P, P)`` Hessian of member m's loss: its exported ``nn.Sequential`` called through
    ``functional_call``, ``F.mse_loss`` / ``F.cross_entropy``, ``autograd.functional.hessian``;
    parameters ordered as :func:`member_entries` (activation parameters that the member's
    activation does not have are entries the loss does not depend on)."""
    seq = model.member(m)
    shapes = [p.shape for p in member_entries(model, model.flat.detach(), m)]
    sizes = [math.prod(s) for s in shapes]
    n_own = len(model.activations[m].params)

    def loss_of(theta: Tensor) -> Tensor:
        parts = [t.view(s) for t, s in zip(theta.split(sizes), shapes, strict=True)]
        params = {}
        for layer in range(model.n_layers):
            params[f"{2 * layer}.weight"] = parts[2 * layer]
            params[f"{2 * layer}.bias"] = parts[2 * layer + 1]
        for layer in range(model.n_hidden):
            act = parts[2 * model.n_layers + layer]
            for k in range(n_own):
                params[f"{2 * layer + 1}.params.{k}"] = act[k]
        out = functional_call(seq, params, (x,))
        if loss == "mse":
            return F.mse_loss(out, y)
        return F.cross_entropy(out, y)

    theta0 = torch.cat([p.reshape(-1) for p in member_entries(model, model.flat.detach(), m)])
    return torch.autograd.functional.hessian(loss_of, theta0)


def problem(acts: list[str], loss: str, seed: int = 0):
    model = EnsembleMLP(3, [5, 4], 3 if loss == "cross_entropy" else 2, acts, dtype=D)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(17, 3, generator=gen, dtype=D)
    if loss == "mse":
        y = torch.randn(17, 2, generator=gen, dtype=D)
    else:
        y = torch.randint(0, 3, (17,), generator=gen)
    return model, x, y


# ------------------------------------------------------------------------ HVP
@pytest.mark.parametrize("method", HVP_METHODS)
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("acts", ACTIVATION_SETS.values(), ids=ACTIVATION_SETS.keys())
def test_hvp_is_every_members_own_hessian_times_its_vector(acts, loss, method):
    model, x, y = problem(acts, loss)
    v = torch.randn(model.flat.numel(), generator=torch.Generator().manual_seed(1), dtype=D)
    hv = hvp(model, x, y, v, loss, method=method)
    op = hessian_operator(model, x, y, loss, method=method)
    torch.testing.assert_close(op(v), hv, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(op(2 * v), 2 * hv, rtol=1e-12, atol=1e-14)  # graph reused
    for m in range(model.E):
        H = reference_hessian(model, x, y, loss, m)
        v_m = torch.cat([p.reshape(-1) for p in member_entries(model, v, m)])
        hv_m = torch.cat([p.reshape(-1) for p in member_entries(model, hv, m)])
        torch.testing.assert_close(hv_m, H @ v_m, rtol=1e-9, atol=1e-12)


def test_hvp_at_other_parameters_and_per_member_batches():
    model, _, _ = problem(["tanh", "relu"], "mse")
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 11, 3, generator=gen, dtype=D)  # (E, B, in): one batch per member
    y = torch.randn(2, 11, 2, generator=gen, dtype=D)
    other = model.flat.detach() + 0.3 * torch.randn(model.flat.shape, generator=gen, dtype=D)
    v = torch.randn(model.flat.numel(), generator=gen, dtype=D)
    hv = hvp(model, x, y, v, flat=other)
    before = model.flat.detach().clone()
    with torch.no_grad():
        model.flat.copy_(other)
    for m in range(model.E):
        H = reference_hessian(model, x[m], y[m], "mse", m)
        v_m = torch.cat([p.reshape(-1) for p in member_entries(model, v, m)])
        hv_m = torch.cat([p.reshape(-1) for p in member_entries(model, hv, m)])
        torch.testing.assert_close(hv_m, H @ v_m, rtol=1e-9, atol=1e-12)
    assert not torch.equal(before, other)


def test_weight_decay_adds_its_identity():
    model, x, y = problem(["tanh"] * 2, "mse")
    v = torch.randn(model.flat.numel(), generator=torch.Generator().manual_seed(1), dtype=D)
    plain = hessian_operator(model, x, y)(v)
    torch.testing.assert_close(hessian_operator(model, x, y, weight_decay=0.3)(v), plain + 0.3 * v)


def test_member_layout_round_trip():
    model, _, _ = problem(ACTIVATION_SETS["mixed"], "mse")
    layout = MemberLayout(model)
    assert layout.P * layout.E == model.flat.numel()
    flat = model.flat.detach()
    rows = layout.gather(flat)
    assert torch.equal(layout.scatter(rows), flat)
    for m in range(model.E):
        own = torch.cat([p.reshape(-1) for p in member_entries(model, flat, m)])
        assert torch.equal(rows[m], own)


# ------------------------------------------------------------------------ top eigenvalue
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("acts", ACTIVATION_SETS.values(), ids=ACTIVATION_SETS.keys())
def test_top_eigenvalue_matches_eigvalsh(acts, loss):
    model, x, y = problem(acts, loss)
    expected = torch.tensor(
        [
            np.linalg.eigvalsh(reference_hessian(model, x, y, loss, m).numpy())[-1]
            for m in range(model.E)
        ],
        dtype=D,
    )
    eig = top_eigenvalue(model, x, y, loss, tol=1e-12, max_iter=5000)
    assert eig.converged.all()
    torch.testing.assert_close(eig.value, expected, rtol=1e-9, atol=0)  # seen: ~15 tol
    lanczos = top_eigenvalue_lanczos(model, x, y, loss)
    torch.testing.assert_close(lanczos, expected, rtol=1e-9, atol=1e-12)
    # the returned vectors are unit eigenvectors: |H v - lambda v| small
    H = hessian_operator(model, x, y, loss)
    layout = MemberLayout(model)
    hv = layout.gather(H(layout.scatter(eig.vector)))
    torch.testing.assert_close(eig.vector.norm(dim=1), torch.ones(model.E, dtype=D))
    resid = (hv - eig.value[:, None] * eig.vector).norm(dim=1)
    assert (resid <= 1e-2 * eig.value.abs()).all()


def negative_dominant_problem():
    """Members 5, 6 and 7 have |lambda_min| > lambda_max (large targets: the residual term of
    the Hessian dominates the positive Gauss-Newton term); checked against eigvalsh below."""
    model = EnsembleMLP(1, [6], 1, "tanh", seeds=8, init="he", dtype=D)
    x = torch.linspace(-2, 2, 20, dtype=D)[:, None]
    return model, x, 30 * torch.sin(3 * x)


def test_top_eigenvalue_is_the_largest_algebraic_when_a_negative_one_dominates():
    model, x, y = negative_dominant_problem()
    spectra = [
        np.linalg.eigvalsh(reference_hessian(model, x, y, "mse", m).numpy()) for m in range(model.E)
    ]
    dominated = [m for m, ev in enumerate(spectra) if -ev[0] > 1.1 * ev[-1]]
    assert dominated == [5, 6, 7]
    expected = torch.tensor([ev[-1] for ev in spectra], dtype=D)
    eig = top_eigenvalue(model, x, y, tol=1e-12, max_iter=20000)
    assert eig.converged.all()
    assert (eig.shift[dominated] > 0).all()
    torch.testing.assert_close(eig.value, expected, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(top_eigenvalue_lanczos(model, x, y), expected, rtol=1e-9, atol=0)


def explicit_operator(mats: Tensor):
    """``(E, P) -> (E, P)`` for a batch of symmetric matrices ``(E, P, P)``."""
    return lambda rows: torch.einsum("epq,eq->ep", mats, rows)


def symmetric_with(eigenvalues: list[float], seed: int) -> Tensor:
    q, _ = torch.linalg.qr(
        torch.randn(
            len(eigenvalues),
            len(eigenvalues),
            dtype=D,
            generator=torch.Generator().manual_seed(seed),
        )
    )
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=D)) @ q.T


def test_batched_top_eigenvalue_on_known_spectra():
    spectra = [
        [3.0, 1.0, 0.5, -0.2],  # positive dominant
        [-5.0, 1.0, 0.5, 0.1],  # negative dominant
        [-1.0, -2.0, -3.0, -4.0],  # negative definite: lambda_max = -1
        [4.0, -4.0, 1.0, 0.0],  # +-4: power iteration on H alone cannot settle
        [0.0, 0.0, 0.0, 0.0],  # zero Hessian
        [1e150, 0.5e150, -0.9e150, 0.0],  # members differ by 300 decades:
        [1e-150, -0.5e-150, 0.2e-150, 0.0],  # normalised together, this one would vanish
    ]
    mats = torch.stack([symmetric_with(ev, seed) for seed, ev in enumerate(spectra)])
    eig = batched_top_eigenvalue(
        explicit_operator(mats), len(spectra), 4, tol=1e-13, max_iter=20000
    )
    expected = torch.tensor([max(ev) for ev in spectra], dtype=D)
    torch.testing.assert_close(eig.value, expected, rtol=1e-6, atol=0)
    assert eig.converged.all()
    assert eig.shift[0] == 0 and (eig.shift[1:4] > 0).all()


def test_seeded_start_and_no_global_rng():
    model, x, y = problem(["tanh"] * 2, "mse")
    state = torch.random.get_rng_state()
    a = top_eigenvalue(model, x, y, seed=3, tol=1e-3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = top_eigenvalue(model, x, y, seed=3, tol=1e-3)
    c = top_eigenvalue(model, x, y, seed=4, tol=1e-3)
    assert torch.equal(a.value, b.value) and torch.equal(a.vector, b.vector)
    assert not torch.equal(a.vector, c.vector)


def test_max_iter_reports_non_convergence():
    model, x, y = problem(["tanh"] * 2, "mse")
    eig = top_eigenvalue(model, x, y, tol=1e-15, max_iter=2)
    assert not eig.converged.any()
    assert (eig.iterations <= 4).all()  # at most max_iter per phase, two phases


@pytest.mark.parametrize("method", HVP_METHODS)
def test_as_a_training_callback_and_under_no_grad(method):
    model, x, y = problem(["tanh", "relu"], "mse")
    before = top_eigenvalue(model, x, y, tol=1e-10, max_iter=3000, method=method).value

    def probe(state):
        eig = top_eigenvalue(
            state.model,
            state.x,
            state.y,
            members=state.active,
            tol=1e-10,
            max_iter=3000,
            method=method,
        )
        return {"sharpness": eig.value}

    result = train(
        model,
        x,
        y,
        TrainConfig(epochs=3, lr=0.05, optimizer=OptimizerConfig("sgd")),
        callbacks=[Callback(probe, at=[0])],
    )
    torch.testing.assert_close(result.records["sharpness"][1][0], before, rtol=1e-12, atol=0)
    with torch.no_grad():
        after = top_eigenvalue(model, x, y, tol=1e-10, max_iter=3000, method=method).value
    assert torch.isfinite(after).all() and not torch.equal(after, before)


# ------------------------------------------------------------------------ diverged members
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_diverged_member_is_nan_and_poisons_no_other(bad):
    model, x, y = problem(ACTIVATION_SETS["mixed"], "mse")
    clean = top_eigenvalue(model, x, y, tol=1e-10, max_iter=3000)
    clean_lz = top_eigenvalue_lanczos(model, x, y)
    with torch.no_grad():
        model.weight(0)[2, 1, 0] = bad
    eig = top_eigenvalue(model, x, y, tol=1e-10, max_iter=3000)
    others = [0, 1, 3]
    assert math.isnan(eig.value[2]) and torch.isnan(eig.vector[2]).all()
    assert torch.isfinite(eig.value[others]).all()
    torch.testing.assert_close(eig.value[others], clean.value[others], rtol=1e-12, atol=0)
    lz = top_eigenvalue_lanczos(model, x, y)
    assert math.isnan(lz[2])
    torch.testing.assert_close(lz[others], clean_lz[others], rtol=1e-9, atol=0)
    masked = top_eigenvalue(model, x, y, members=torch.tensor([True, False, True, True]))
    assert torch.isnan(masked.value[1:3]).all() and torch.isfinite(masked.value[[0, 3]]).all()


# ------------------------------------------------------------------------ Adam
def run_both_adams(model, x, y, lr, betas, eps, steps, reset_at=None, weight_decay=0.0):
    """Adam on the ensemble (EnsembleOptimizer) and torch.optim.Adam on each exported member,
    from the same start. With ``reset_at=(k, m)`` member m's state is reset after step k on
    the ensemble and its plain twin gets a fresh torch.optim.Adam then (its own t)."""
    seqs = [model.member(m) for m in range(model.E)]
    kw = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    torch_opts = [torch.optim.Adam(s.parameters(), **kw) for s in seqs]
    cfg = OptimizerConfig("adam", betas=betas, eps=eps, weight_decay=weight_decay)
    opt = EnsembleOptimizer(model.flat, [lr] * model.E, model.param_blocks(), cfg)
    grad = torch.zeros_like(model.flat)
    for k in range(steps):
        model.loss_and_grad(x, y, "mse", grad)
        opt.step(grad)
        for m, (seq, o) in enumerate(zip(seqs, torch_opts, strict=True)):
            o.zero_grad()
            F.mse_loss(seq(x), y).backward()
            o.step()
            if reset_at == (k, m):
                torch_opts[m] = torch.optim.Adam(seq.parameters(), **kw)
        if reset_at is not None and reset_at[0] == k:
            mask = torch.zeros(model.E, dtype=torch.bool)
            mask[reset_at[1]] = True
            opt.reset(mask)
    return opt, seqs, torch_opts


def torch_adam_preconditioner(seq, o, betas, eps) -> Tensor:
    """``(1 - b1^t)(sqrt(v / (1 - b2^t)) + eps)`` from torch.optim.Adam's state, in the order
    of :func:`member_entries` (W, b per layer; these members have no activation parameters)."""
    b1, b2 = betas
    pieces = []
    for p in seq.parameters():
        st = o.state[p]
        t = int(st["step"])
        pieces.append(((1 - b1**t) * ((st["exp_avg_sq"] / (1 - b2**t)).sqrt() + eps)).reshape(-1))
    return torch.cat(pieces)


@pytest.mark.parametrize(("eps", "weight_decay"), [(1e-8, 0.0), (1e-3, 0.0), (1e-8, 0.5)])
def test_preconditioned_sharpness_matches_torch_adam(eps, weight_decay):
    betas, lr = (0.9, 0.999), 0.02
    model = EnsembleMLP(2, [6], 1, ["tanh", "tanh", "relu"], dtype=D)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(25, 2, generator=gen, dtype=D)
    y = torch.sin(x.sum(1, keepdim=True))
    # member 1 is reset after step 4 of 7: its own t = 3, the others' t = 7
    opt, seqs, torch_opts = run_both_adams(
        model, x, y, lr, betas, eps, 7, reset_at=(3, 1), weight_decay=weight_decay
    )
    assert opt.steps.tolist() == [7, 3, 7]
    P = adam_preconditioner(opt)
    eig = preconditioned_sharpness(model, x, y, opt, tol=1e-12, max_iter=5000)
    lz = top_eigenvalue_lanczos(model, x, y, preconditioner=P, weight_decay=weight_decay)
    for m, (seq, o) in enumerate(zip(seqs, torch_opts, strict=True)):
        d = torch_adam_preconditioner(seq, o, betas, eps)
        own_P = torch.cat([p.reshape(-1) for p in member_entries(model, P, m)])
        torch.testing.assert_close(own_P, d, rtol=1e-10, atol=0)
        # the plain member's Hessian at its own (torch.optim-trained) parameters
        # the objective Adam descends with coupled weight decay: loss + wd/2 |theta|^2
        H = reference_hessian_of(seq, x, y) + weight_decay * torch.eye(len(d), dtype=D)
        s = d.rsqrt()
        expected = np.linalg.eigvalsh((s[:, None] * H * s[None, :]).numpy())[-1]
        assert eig.value[m] == pytest.approx(expected, rel=1e-5)
        assert lz[m] == pytest.approx(expected, rel=1e-9)
        # and it is not the plain sharpness (the preconditioner matters here)
        assert abs(np.linalg.eigvalsh(H.numpy())[-1] - expected) > 0.1 * abs(expected)


def reference_hessian_of(seq, x, y) -> Tensor:
    names = [n for n, _ in seq.named_parameters()]
    params = [p.detach() for _, p in seq.named_parameters()]
    shapes, sizes = [p.shape for p in params], [p.numel() for p in params]

    def loss_of(theta):
        parts = [t.view(s) for t, s in zip(theta.split(sizes), shapes, strict=True)]
        return F.mse_loss(functional_call(seq, dict(zip(names, parts, strict=True)), (x,)), y)

    return torch.autograd.functional.hessian(loss_of, torch.cat([p.reshape(-1) for p in params]))


def test_adam_member_without_a_step_or_diverged_is_nan():
    model, x, y = problem(["tanh"] * 3, "mse")
    opt = EnsembleOptimizer(model.flat, [0.01] * 3, model.param_blocks(), OptimizerConfig())
    grad = torch.zeros_like(model.flat)
    model.loss_and_grad(x, y, "mse", grad)
    opt.step(grad)
    opt.reset(torch.tensor([False, True, False]))
    eig = preconditioned_sharpness(model, x, y, opt, tol=1e-10, max_iter=3000)
    assert math.isnan(eig.value[1]) and torch.isfinite(eig.value[[0, 2]]).all()
    with torch.no_grad():
        model.bias(1)[2, 0] = math.nan
    diverged = preconditioned_sharpness(model, x, y, opt, tol=1e-10, max_iter=3000)
    assert torch.isnan(diverged.value[1:]).all()
    torch.testing.assert_close(diverged.value[0], eig.value[0], rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="not 'adam'"):
        sgd = EnsembleOptimizer(model.flat, [0.1] * 3, model.param_blocks(), OptimizerConfig("sgd"))
        adam_preconditioner(sgd)


# ------------------------------------------------------------------------ thresholds
def quadratic(seed: int, eigenvalues: list[float]) -> Tensor:
    return symmetric_with(eigenvalues, seed)


def run(step_fn, A: Tensor, steps: int = 3000) -> float:
    """Distance from the minimum after ``steps`` updates of L = x^T A x / 2 from x = 1."""
    x = torch.ones(A.shape[0], dtype=D)
    state: dict = {}
    for _ in range(steps):
        x = step_fn(x, A @ x, state)
    return float(x.norm())


def sharpness_of(A: Tensor) -> float:
    eig = batched_top_eigenvalue(
        explicit_operator(A[None]), 1, A.shape[0], tol=1e-14, max_iter=10000
    )
    return float(eig.value[0])


def test_gd_threshold_separates_convergence_from_divergence():
    A = quadratic(0, [4.0, 2.5, 1.0, 0.3])
    lam = sharpness_of(A)
    assert lam == pytest.approx(4.0, rel=1e-10)
    gd = lambda eta: lambda x, g, s: x - eta * g  # noqa: E731
    assert run(gd(0.99 * gd_threshold(1.0) / lam), A) < 1e-3
    assert run(gd(1.01 * gd_threshold(1.0) / lam), A) > 1e3
    # the threshold is 2/eta: at a fixed eta, sharpness just below / above it
    eta = 0.1
    for factor, converges in ((0.99, True), (1.01, False)):
        B = A * (factor * gd_threshold(eta) / lam)
        assert (run(gd(eta), B) < 1e-3) == converges


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_momentum_threshold_with_torch_sgd(beta):
    A = quadratic(1, [3.0, 1.0, 0.2])
    lam = sharpness_of(A)
    eta = 0.05
    for factor, converges in ((0.98, True), (1.02, False)):
        B = A * (factor * momentum_threshold(eta, beta) / lam)
        x = torch.ones(3, dtype=D, requires_grad=True)
        opt = torch.optim.SGD([x], lr=eta, momentum=beta)
        for _ in range(4000):
            opt.zero_grad()
            (0.5 * x @ B @ x).backward()
            opt.step()
        assert (float(x.detach().norm()) < 1e-3) == converges
    assert momentum_threshold(eta, 0.0) == gd_threshold(eta)


def test_adam_threshold_with_a_frozen_preconditioner():
    """Adam's update with P held fixed, ``m = b1 m + (1 - b1) g``, ``x -= eta m / P``, is stable
    iff lambda_max(P^{-1/2} A P^{-1/2}) < (2 + 2 b1) / ((1 - b1) eta) (= 38/eta at b1 = 0.9)."""
    A = quadratic(2, [5.0, 2.0, 0.5, 0.1])
    P = torch.tensor([0.3, 2.0, 1.0, 0.05], dtype=D)
    s = P.rsqrt()
    lam = sharpness_of(s[:, None] * A * s[None, :])
    b1, eta = 0.9, 0.01
    assert adam_threshold(eta, b1) == pytest.approx(38 / eta)

    def adam_frozen(x, g, state):
        state["m"] = b1 * state.get("m", torch.zeros_like(x)) + (1 - b1) * g
        return x - eta * state["m"] / P

    for factor, converges in ((0.98, True), (1.02, False)):
        B = A * (factor * adam_threshold(eta, b1) / lam)
        assert (run(adam_frozen, B, steps=6000) < 1e-3) == converges
