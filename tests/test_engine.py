"""The ensemble engine against independent references: plain nn.Sequential models trained one by
one with torch.optim, autograd, and the distributions of torch.nn.init."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from actlab import get_activation, list_activations
from actlab.models import EnsembleMLP
from actlab.optim import OptimizerConfig
from actlab.train import Callback, TrainConfig, batch_order, train

# torch.nn modules used as the independent reference for each activation in the equivalence tests.
TORCH_MODULES = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "prelu": lambda: nn.PReLU(init=0.25),
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


def _data(n=64, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(-math.pi, math.pi, n, dtype=torch.float64)[:, None]
    y = torch.sin(x) + 0.1 * torch.randn(n, 1, generator=gen, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


def _reference_model(model: EnsembleMLP, m: int) -> nn.Sequential:
    """Member m rebuilt from torch.nn modules, holding a copy of its current parameters."""
    layers = []
    for layer in range(model.n_layers):
        lin = nn.Linear(model.sizes[layer], model.sizes[layer + 1], dtype=model.flat.dtype)
        with torch.no_grad():
            lin.weight.copy_(model.weight(layer)[m])
            lin.bias.copy_(model.bias(layer)[m])
        layers.append(lin)
        if layer < model.n_hidden:
            layers.append(TORCH_MODULES[model.activations[m].name]().to(model.flat.dtype))
    return nn.Sequential(*layers)


def _torch_optimizer(name, params, lr):
    return {
        "sgd": lambda: torch.optim.SGD(params, lr=lr),
        "momentum": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9),
        "adam": lambda: torch.optim.Adam(params, lr=lr),
        "rmsprop": lambda: torch.optim.RMSprop(params, lr=lr),
    }[name]()


def _train_reference(seq, x, y, opt_name, lr, steps, loss="mse", batches=None):
    opt = _torch_optimizer(opt_name, seq.parameters(), lr)
    loss_fn = nn.MSELoss() if loss == "mse" else nn.CrossEntropyLoss()
    trace = []
    for step in range(steps):
        xb, yb = (x, y) if batches is None else batches[step]
        opt.zero_grad()
        value = loss_fn(seq(xb), yb)
        value.backward()
        opt.step()
        trace.append(value.item())
    return trace


def _flat_of(seq: nn.Sequential) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in seq.parameters()])


def _member_flat(model: EnsembleMLP, m: int) -> torch.Tensor:
    parts = []
    for layer in range(model.n_layers):
        parts += [model.weight(layer)[m].reshape(-1), model.bias(layer)[m]]
        if layer < model.n_hidden:
            parts.append(model.act_params(layer)[m, : len(model.activations[m].params)])
    return torch.cat(parts).detach()


@pytest.mark.parametrize("opt_name", ["adam", "sgd", "momentum", "rmsprop"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_ensemble_equals_separate_models(opt_name, dtype, tol):
    acts = ["tanh", "tanh", "relu", "gelu", "prelu", "sigmoid"]
    seeds = [0, 1, 0, 0, 0, 3]
    lrs = [1e-2, 3e-3, 1e-2, 1e-2, 5e-3, 2e-2]
    if opt_name == "rmsprop":
        # RMSprop's first steps are ~lr * 10 * sign(g): at these rates a rounding difference in
        # a tiny gradient flips a sign and both runs drift apart (6e-12 in float64 seen at 1e-2).
        lrs = [lr / 10 for lr in lrs]
    x, y = _data(dtype=dtype)
    model = EnsembleMLP(1, [16, 16, 16], 1, acts, seeds, dtype=dtype)
    refs = [_reference_model(model, m) for m in range(model.E)]
    cfg = TrainConfig(epochs=50, optimizer=OptimizerConfig(name=opt_name))
    result = train(model, x, y, cfg, lr=lrs)
    for m, seq in enumerate(refs):
        trace = _train_reference(seq, x, y, opt_name, lrs[m], 50)
        assert (_member_flat(model, m) - _flat_of(seq)).abs().max().item() < tol
        assert torch.allclose(
            result.loss[:, m].double(),
            torch.tensor(trace, dtype=torch.float64),
            rtol=tol * 10,
            atol=tol,
        )


def _rows_in(rows: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """Index in ``data`` ``(n, d)`` (distinct rows) of each of ``rows`` ``(b, d)``."""
    return (rows[:, None, :] == data[None]).all(-1).nonzero()[:, 1]


@pytest.mark.parametrize("shared", [True, False])
def test_minibatch_cross_entropy_equals_separate_models(shared):
    """Minibatches, shared data ``(n, in)`` or one data set per member ``(E, n, in)``. The
    reference trains on the batches the trainer handed its callback (not on actlab's own
    batch_order), after checking that they are what the trainer promises: each epoch a fresh
    permutation of the member's own data, fixed by the member's seed."""
    gen = torch.Generator().manual_seed(5)
    E, n = 3, 40
    x = torch.randn(E, n, 2, generator=gen)
    y = (x[..., 0] * x[..., 1] > 0).long()
    if shared:
        x, y = x[0], y[0]
    data = [(x, y) if shared else (x[m], y[m]) for m in range(E)]
    acts, seeds = ["relu", "tanh", "elu"], [11, 11, 12]
    model = EnsembleMLP(2, [8, 8], 2, acts, seeds)
    refs = [_reference_model(model, m) for m in range(model.E)]
    cfg = TrainConfig(epochs=4, batch_size=16, loss="cross_entropy", lr=1e-2)
    seen = []  # (epoch, x, y) of every step, x (E, b, 2)
    keep = Callback(lambda s: seen.append((s.epoch, s.x.clone(), s.y.clone())), every=1)
    result = train(model, x, y, cfg, callbacks=[keep])
    assert result.steps_per_epoch == 3 and len(seen) == 12
    assert [xb.shape[1] for _, xb, _ in seen[:3]] == [16, 16, 8]
    orders = {}  # (member, epoch) -> the order in which the member saw its points
    for m in range(E):
        for epoch in range(4):
            rows = torch.cat([xb[m] for e, xb, _ in seen if e == epoch])
            labels = torch.cat([yb[m] for e, _, yb in seen if e == epoch])
            order = _rows_in(rows, data[m][0])
            assert sorted(order.tolist()) == list(range(n))  # every point once
            assert torch.equal(labels, data[m][1][order])  # with its own label
            orders[m, epoch] = order.tolist()
            # the public batch_order() names the same permutation (its promise, checked here;
            # the reference below trains on the batches seen, not on it)
            assert orders[m, epoch] == batch_order(seeds[m], n, epoch).tolist()
    assert orders[0, 0] == orders[1, 0]  # the same seed: the same order
    assert orders[0, 0] != orders[2, 0]  # another seed: another order
    assert orders[0, 0] != orders[0, 1]  # another epoch: another order
    for m, seq in enumerate(refs):
        batches = [(xb[m], yb[m]) for _, xb, yb in seen]
        trace = _train_reference(seq, None, None, "adam", 1e-2, 12, "cross_entropy", batches)
        assert (_member_flat(model, m) - _flat_of(seq)).abs().max().item() < 1e-5
        assert torch.allclose(result.loss[:, m], torch.tensor(trace), atol=1e-5)
    # the mean loss of each epoch: of its three steps' losses
    per_epoch = torch.stack([result.loss[3 * e : 3 * e + 3].mean(0) for e in range(4)])
    torch.testing.assert_close(result.epoch_loss, per_epoch)


@pytest.mark.parametrize("name", list_activations())
def test_manual_backward_equals_autograd(name):
    """The fast analytic backward gives autograd's gradient for every registered activation."""
    x, y = _data(n=32, dtype=torch.float64)
    model = EnsembleMLP(1, [8, 8], 1, [name, "tanh"], [0, 1], dtype=torch.float64)
    grad = torch.zeros_like(model.flat)
    loss = model.loss_and_grad(x, y, "mse", grad)
    out = model(x)
    reference_loss = ((out - y) ** 2).mean(dim=(1, 2))
    (auto,) = torch.autograd.grad(reference_loss.sum(), model.flat)
    assert torch.allclose(loss, reference_loss.detach(), rtol=1e-12)
    assert torch.allclose(grad, auto, rtol=1e-6, atol=1e-9)


# Activations written out with plain torch, for forward passes that use no actlab code.
PLAIN = {
    "relu": lambda z, a: torch.relu(z),
    "tanh": lambda z, a: torch.tanh(z),
    "sigmoid": lambda z, a: torch.sigmoid(z),
    "sine": lambda z, a: torch.sin(z),
    "prelu": lambda z, a: nn.functional.prelu(z, a[:1]),
    "prelu(init=0.1)": lambda z, a: nn.functional.prelu(z, a[:1]),
}


def _plain_forward(model: EnsembleMLP, m: int, x: torch.Tensor) -> torch.Tensor:
    """Member m's outputs from its current numbers, with torch.nn.functional alone."""
    h = x
    for layer in range(model.n_layers):
        h = nn.functional.linear(h, model.weight(layer)[m], model.bias(layer)[m])
        if layer < model.n_hidden:
            h = PLAIN[model.activations[m].name](h, model.act_params(layer)[m])
    return h.detach()


def test_exported_members_carry_their_trained_parameters():
    """member(m) after training (PReLU slopes have moved off their initial values): a copy of
    member m's weights, biases and slopes, whose outputs equal the ensemble's and a plain
    torch.nn.functional forward pass to float64 rounding (bmm vs addmm)."""
    x, y = _data(n=20, dtype=torch.float64)
    acts = ["prelu", "relu", "sine", "prelu(init=0.1)"]
    model = EnsembleMLP(1, [5, 7], 1, acts, [3, 4, 5, 6], dtype=torch.float64)
    train(model, x, y, TrainConfig(epochs=30, lr=0.05))
    for layer in range(model.n_hidden):
        slopes = model.act_params(layer)[[0, 3], 0]
        assert (slopes - torch.tensor([0.25, 0.1], dtype=torch.float64)).abs().min() > 1e-3
    out = model(x).detach()
    for m in range(model.E):
        seq = model.member(m)
        want = _plain_forward(model, m, x)
        torch.testing.assert_close(seq(x).detach(), want, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(out[m], want, rtol=1e-13, atol=1e-13)
        assert torch.equal(_flat_of(seq), _member_flat(model, m))
        with torch.no_grad():  # a copy: changing it leaves the ensemble alone
            for p in seq.parameters():
                p.add_(1.0)
        assert torch.equal(model(x).detach()[m], out[m])


def test_an_ensemble_moves_between_dtypes_and_devices_like_any_module():
    """``.to``, ``.double``, ``.float`` and ``.cpu`` work (a method named ``_apply`` once shadowed
    ``nn.Module._apply`` and made every one of them raise) and keep the numbers."""
    x = torch.linspace(-1, 1, 9)[:, None]
    model = EnsembleMLP(1, [6, 6], 1, ["tanh", "relu"], [0, 1])
    out = model(x).detach()
    grad = torch.empty_like(model.flat)
    loss = model.loss_and_grad(x, torch.sin(x), "mse", grad)  # fills the work buffers
    wide = model.double()
    grad64 = torch.empty_like(model.flat)  # the buffers follow the new dtype
    loss64 = model.loss_and_grad(x.double(), torch.sin(x).double(), "mse", grad64)
    torch.testing.assert_close(loss64.float(), loss, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad64.float(), grad, rtol=1e-4, atol=1e-6)
    assert wide.flat.dtype == torch.float64 and wide is model
    torch.testing.assert_close(model(x.double()).detach().float(), out, rtol=1e-6, atol=1e-6)
    model.to(torch.float32).cpu()
    assert model.flat.dtype == torch.float32
    torch.testing.assert_close(model(x).detach(), out, rtol=0, atol=0)


def test_member_weights_independent_of_ensemble_size():
    one = EnsembleMLP(3, [32, 32], 2, "tanh", seeds=[7])
    many = EnsembleMLP(3, [32, 32], 2, "tanh", seeds=list(range(50, 73)) + [7] + list(range(26)))
    assert many.E == 50
    assert torch.equal(_member_flat(one, 0), _member_flat(many, 23))


def test_same_seed_same_weights_across_activations():
    model = EnsembleMLP(2, [16, 16], 1, ["tanh", "relu", "gelu", "tanh"], [4, 4, 4, 5])
    w = [_member_flat(model, m) for m in range(4)]
    assert torch.equal(w[0], w[1]) and torch.equal(w[0], w[2])
    assert not torch.equal(w[0], w[3])
    model.init_from([5, 5, 5, 5])
    assert torch.equal(_member_flat(model, 0), w[3])


def test_init_schemes_match_their_distributions():
    fan_in, fan_out = 400, 300
    n = fan_in * fan_out

    def layer0(**kw):
        return EnsembleMLP(fan_in, [fan_out], 1, "relu", seeds=[1], **kw).weight(0)[0].double()

    # nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance bound^2 / 3.
    w = layer0(init="torch")
    bound = 1 / math.sqrt(fan_in)
    assert w.abs().max() <= bound and abs(w.var().item() / (bound**2 / 3) - 1) < 0.02
    w = layer0(init="xavier")
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert w.abs().max() <= bound and abs(w.var().item() / (bound**2 / 3) - 1) < 0.02
    w = layer0(init="he")
    assert abs(w.var().item() / (2 / fan_in) - 1) < 0.02
    model = EnsembleMLP(
        fan_in, [fan_out], 1, "relu", seeds=[2], init="mean_field", sigma_w2=1.5, sigma_b2=0.3
    )
    assert abs(model.weight(0)[0].double().var().item() / (1.5 / fan_in) - 1) < 0.02
    # 300 biases: the sample variance is within ~4 standard errors (sqrt(2/300) = 8%) of 0.3.
    assert abs(model.bias(0)[0].double().var().item() / 0.3 - 1) < 0.35
    # the standard error of the variance of n normal samples is sqrt(2/n) relative
    assert math.sqrt(2 / n) < 0.005


def _bad_point_data(seeds, bad_steps):
    """One data set per member ``(E, 32, 1)``, minibatches of 4 (8 steps an epoch), and the same
    data with a bad point for members 1 and 3, met at ``bad_steps`` (mid-way through epoch 0):
    member 1 a target of 1e4 (a finite loss above max_loss = 1e6, a huge finite gradient),
    member 3 a NaN input (a NaN loss)."""
    x, y = _data(n=32)
    x, y = x.expand(len(seeds), -1, -1).clone(), y.expand(len(seeds), -1, -1).clone()
    bad_x, bad_y = x.clone(), y.clone()
    # where each bad point goes: the point the member's batch of that step starts with
    first = {m: batch_order(seeds[m], 32, 0)[4 * step].item() for m, step in bad_steps.items()}
    bad_y[1, first[1]] = 1e4
    bad_x[3, first[3]] = math.nan
    return (x, y), (bad_x, bad_y)


@pytest.mark.parametrize("opt_name", ["sgd", "momentum", "adam", "rmsprop"])
def test_divergence_is_isolated_and_frozen_before_the_update(opt_name):
    """Members 1 and 3 diverge mid-training (a loss above max_loss, a NaN loss), at different
    steps. Each keeps the parameters it had before the update of its divergence step; the other
    members, and the diverged ones up to their divergence, are bit-identical to the same run
    with clean data (same E, same kernels). Under stateful optimisers this also shows that no
    one's moments are touched when another member diverges."""
    seeds = [0, 1, 2, 3, 4]
    bad_steps = {1: 3, 3: 6}
    clean, bad = _bad_point_data(seeds, bad_steps)
    acts = ["tanh", "tanh", "relu", "relu", "tanh"]
    cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-2, optimizer=OptimizerConfig(name=opt_name))
    before = []  # (E, P): every member's parameters at each step, before that step's update

    def snapshot(state):
        before.append(torch.stack([_member_flat(state.model, m) for m in range(5)]))

    model = EnsembleMLP(1, [16, 16], 1, acts, seeds)
    res = train(model, *bad, cfg, callbacks=[Callback(snapshot, every=1)])
    tame = EnsembleMLP(1, [16, 16], 1, acts, seeds)
    ref = train(tame, *clean, cfg)

    assert res.diverged_step.tolist() == [-1, 3, -1, 6, -1]
    assert (ref.diverged_step == -1).all()
    for m, step in bad_steps.items():
        # frozen before the update of its divergence step, which did change the others
        assert torch.equal(_member_flat(model, m), before[step][m])
        assert not torch.equal(before[step + 1][0], before[step][0])
        assert torch.equal(res.loss[:step, m], ref.loss[:step, m])
        assert res.loss[step + 1 :, m].isnan().all()
    assert res.loss[3, 1].isfinite() and res.loss[3, 1] > 1e6  # the loss that tripped it
    assert res.loss[6, 3].isnan()
    for m in (0, 2, 4):
        assert torch.equal(_member_flat(model, m), _member_flat(tame, m))
        assert torch.equal(res.loss[:, m], ref.loss[:, m])


def test_nan_inputs_to_one_member_do_not_leak():
    x, y = _data(n=16)
    xe = x.expand(3, -1, -1).clone()
    xe[1, 3] = math.nan
    model = EnsembleMLP(1, [8], 1, "tanh", seeds=[0, 1, 2])
    ref = EnsembleMLP(1, [8], 1, "tanh", seeds=[0, 1, 2])
    start = _member_flat(model, 1)
    res = train(model, xe, y.expand(3, -1, -1), TrainConfig(epochs=5))
    train(ref, x.expand(3, -1, -1), y.expand(3, -1, -1), TrainConfig(epochs=5))
    assert res.diverged_step.tolist() == [-1, 0, -1]
    assert torch.equal(_member_flat(model, 1), start)
    for m in (0, 2):
        assert torch.equal(_member_flat(model, m), _member_flat(ref, m))


def test_a_non_finite_gradient_freezes_a_member_whose_loss_is_finite():
    """Float32 overflow in the backward pass only. Member 1's first hidden unit carries 1e38
    (finite), its output is 2e8 (loss 4e16, below max_loss), but dL/dW of the output layer is
    4e8 * 1e38 = inf for that unit (and finite for the other unit, so the whole block is not
    non-finite)."""

    def model_and_data(overflow):
        model = EnsembleMLP(1, [2], 1, "identity", seeds=[0, 1])
        if overflow:
            with torch.no_grad():
                model.weight(0)[1] = torch.tensor([[1e30], [1.0]])
                model.bias(0)[1] = 0.0
                model.weight(1)[1] = torch.tensor([[1e-30, 1.0]])
                model.bias(1)[1] = 0.0
        x = torch.stack([torch.ones(1, 1), torch.full((1, 1), 1e8 if overflow else 1.0)])
        return model, x, torch.zeros(2, 1, 1)

    model, x, y = model_and_data(overflow=True)
    start = model.flat.detach().clone()
    grad = torch.zeros_like(model.flat)
    loss = model.loss_and_grad(x, y, "mse", grad)
    assert loss[1].item() == pytest.approx(4e16, rel=1e-6)
    assert model.weight(1, grad)[1].isinf().tolist() == [[True, False]]
    res = train(model, x, y, TrainConfig(epochs=4, max_loss=1e20))
    assert res.diverged_step.tolist() == [-1, 0]
    assert torch.equal(model.weight(1)[1], model.weight(1, start)[1])
    assert torch.equal(model.weight(0)[1], model.weight(0, start)[1])
    tame, x_tame, _ = model_and_data(overflow=False)
    train(tame, x_tame, y, TrainConfig(epochs=4, max_loss=1e20))
    assert torch.equal(_member_flat(model, 0), _member_flat(tame, 0))


def test_a_loss_equal_to_max_loss_is_not_divergence():
    """A member whose loss *exceeds* max_loss is frozen: one whose loss equals it trains on.
    The comparison is made in the loss's dtype (float32), so the thresholds are float32 numbers."""
    x, y = _data(n=16)

    def diverged(max_loss):
        model = EnsembleMLP(1, [8], 1, "tanh", seeds=[0, 1])
        return train(model, x, y, TrainConfig(epochs=1, max_loss=max_loss)).diverged_step

    first = train(EnsembleMLP(1, [8], 1, "tanh", seeds=[0, 1]), x, y, TrainConfig(epochs=1))
    top, worst = first.loss[0].max(), first.loss[0].argmax().item()
    assert first.loss[0].min() < top
    assert diverged(top.item()).tolist() == [-1, -1]
    below = torch.nextafter(top, torch.tensor(0.0)).item()
    assert diverged(below).tolist() == [0 if m == worst else -1 for m in range(2)]


def test_callbacks_see_the_gradient_at_scheduled_steps():
    x, y = _data(n=16, dtype=torch.float64)
    model = EnsembleMLP(1, [4, 4], 1, "tanh", seeds=[0, 1], dtype=torch.float64)
    seen = []

    def probe(state):
        seen.append(state.step)
        out = state.model(state.x)
        (auto,) = torch.autograd.grad(
            ((out - state.y) ** 2).mean(dim=(1, 2)).sum(), state.model.flat
        )
        assert torch.allclose(auto, state.grad)
        return {"grad_norm/layer1": state.model.weight(0, state.grad).flatten(1).norm(dim=1)}

    res = train(
        model, x, y, TrainConfig(epochs=10), callbacks=[Callback(probe, at={0, 7}, every=5)]
    )
    assert seen == [0, 5, 7]
    steps, values = res.records["grad_norm/layer1"]
    assert steps == [0, 5, 7] and values.shape == (3, 2)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(hidden=[0]), r"hidden\[0\].*>= 1"),
        (dict(hidden=[8, -3]), r"hidden\[1\].*>= 1"),
        (dict(hidden=[]), "depth >= 1"),
        (dict(in_features=0), "in_features"),
        (dict(out_features=-1), "out_features"),
        (dict(activations=[]), "E.*>= 1"),
        (dict(activations="tanh", seeds=0), "E.*>= 1"),
        (dict(activations=["tanhh"]), "Did you mean 'tanh'"),
        (dict(init="kaiming"), "init must be one of"),
        (dict(init="mean_field", sigma_w2=float("nan"), sigma_b2=0.0), "sigma_w2"),
        (dict(activations=["relu", "tanh"], seeds=[1]), "one per member"),
    ],
)
def test_bad_model_input(kwargs, match):
    args = dict(in_features=1, hidden=[8], out_features=1, activations=["tanh"], seeds=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        EnsembleMLP(**args)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(lr=float("nan")), "lr must be finite"),
        (dict(lr=float("inf")), "lr must be finite"),
        (dict(lr=0.0), "lr must be finite and > 0"),
        (dict(epochs=0), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(loss="l1"), "loss must be one of"),
        (dict(backward="numeric"), "backward"),
    ],
)
def test_bad_train_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_bad_per_member_lr_and_optimizer():
    x, y = _data(n=8)
    model = EnsembleMLP(1, [4], 1, "tanh", seeds=[0, 1])
    with pytest.raises(ValueError, match="lr must be finite"):
        train(model, x, y, TrainConfig(epochs=1), lr=[1e-3, float("nan")])
    with pytest.raises(ValueError, match="one value per member"):
        train(model, x, y, TrainConfig(epochs=1), lr=[1e-3])
    with pytest.raises(ValueError, match="optimizer must be one of"):
        OptimizerConfig(name="lbfgs")


def test_activation_objects_survive_pickling():
    import pickle

    act = get_activation("leaky_relu(slope=0.2)")
    assert pickle.loads(pickle.dumps(act)) == act


def test_member_numbers_do_not_depend_on_the_other_members():
    """Same ensemble size and position, different neighbours (activations, rates, seeds) and a
    rate given as a scalar or per member: bit-identical parameters. (Across different ensemble
    sizes BLAS may sum in another order, so there only float rounding is promised.)"""
    x, y = _data(n=40)
    acts = ["relu", "tanh", "gelu"]
    a = EnsembleMLP(1, [16, 16], 1, ["relu", "relu", *acts, "relu"], [7, 8, 0, 1, 2, 9])
    b = EnsembleMLP(1, [16, 16], 1, ["sigmoid", "elu", *acts, "tanh"], [5, 6, 0, 1, 2, 4])
    train(a, x, y, TrainConfig(epochs=60, lr=1e-3))
    train(b, x, y, TrainConfig(epochs=60), lr=[3e-3, 3e-3, 1e-3, 1e-3, 1e-3, 1e-2])
    for m in (2, 3, 4):
        assert torch.equal(_member_flat(a, m), _member_flat(b, m))


@pytest.mark.parametrize("batch_size", [None, 16])
def test_training_goes_on_with_the_optimizer_state_kept(batch_size):
    """Two calls passing the optimizer (and, with minibatches, the epoch count) along are
    bit-identical to one call of the sum."""
    x = torch.linspace(-2, 2, 40)[:, None]
    y = torch.sin(2 * x)

    def fresh():
        return EnsembleMLP(1, [16, 16], 1, ["tanh", "relu", "tanh"], [0, 1, 2])

    cfg = TrainConfig(epochs=30, lr=3e-3, batch_size=batch_size)
    whole = fresh()
    one = train(whole, x, y, cfg)
    split = fresh()
    first = train(split, x, y, dataclasses.replace(cfg, epochs=12))
    second = train(
        split,
        x,
        y,
        TrainConfig(epochs=18, batch_size=batch_size),
        optimizer=first.optimizer,
        first_epoch=12,
    )
    assert torch.equal(split.flat, whole.flat)
    assert torch.equal(torch.cat([first.loss, second.loss]), one.loss)
    # Without the state (a fresh Adam at step 12) the path differs.
    reset = fresh()
    train(reset, x, y, dataclasses.replace(cfg, epochs=12))
    train(reset, x, y, dataclasses.replace(cfg, epochs=18), first_epoch=12)
    assert not torch.equal(reset.flat, whole.flat)
    if batch_size is not None:  # epochs counted from 0 again replay epoch 0's batches
        replay = fresh()
        r1 = train(replay, x, y, dataclasses.replace(cfg, epochs=12))
        train(replay, x, y, TrainConfig(epochs=18, batch_size=batch_size), optimizer=r1.optimizer)
        assert not torch.equal(replay.flat, whole.flat)
    with pytest.raises(ValueError, match="first_epoch"):
        train(fresh(), x, y, cfg, first_epoch=-1)
    with pytest.raises(ValueError, match="another parameter buffer"):
        train(fresh(), x, y, cfg, optimizer=first.optimizer)
    with pytest.raises(ValueError, match="optimizer's own"):
        train(split, x, y, cfg, lr=[1e-3] * 3, optimizer=first.optimizer)
    with pytest.raises(ValueError, match="optimizer's own"):  # a config.lr would be ignored
        train(split, x, y, TrainConfig(epochs=1, lr=0.5), optimizer=first.optimizer)


def test_a_callback_can_stop_members():
    """A stopped member keeps the parameters it had at the stop and a finite loss; the others
    are bit-identical to a run without the stop. Two requests in one step add up."""
    x = torch.linspace(-2, 2, 40)[:, None]
    y = torch.sin(2 * x)
    cfg = TrainConfig(epochs=20, lr=3e-3)
    snap = {}

    def stop_two(state):
        if state.step == 7:
            snap["flat"] = state.model.flat.clone()
            state.stop(torch.tensor([True, False, False]))
            state.stop(torch.tensor([False, False, True]))

    acts, seeds = ["tanh", "tanh", "relu"], [0, 1, 2]
    model = EnsembleMLP(1, [8], 1, acts, seeds)
    result = train(model, x, y, cfg, callbacks=[Callback(stop_two, every=1)])
    free = EnsembleMLP(1, [8], 1, acts, seeds)
    train(free, x, y, cfg)
    assert result.stopped_step.tolist() == [7, -1, 7]
    assert result.diverged_step.tolist() == [-1, -1, -1]
    at_stop = EnsembleMLP(1, [8], 1, acts, seeds)
    with torch.no_grad():
        at_stop.flat.copy_(snap["flat"])
    for m in (0, 2):
        assert torch.equal(_member_flat(model, m), _member_flat(at_stop, m))
        assert torch.equal(result.loss[7:, m], result.loss[7:8, m].expand(13))
    assert torch.equal(_member_flat(model, 1), _member_flat(free, 1))
    assert torch.isfinite(result.loss).all()


def test_set_activations_swaps_in_place():
    x = torch.linspace(-2, 2, 9)[:, None]
    model = EnsembleMLP(1, [6, 6], 1, ["tanh", "tanh", "sigmoid"], [0, 1, 2])
    flat = model.flat.data_ptr()
    before = model.flat.detach().clone()
    model.set_activations(["relu", "tanh", "relu"])
    assert model.flat.data_ptr() == flat and torch.equal(model.flat, before)
    assert [a.name for a in model.activations] == ["relu", "tanh", "relu"]
    out = model(x).detach()
    for m in range(3):  # the new activations, against plain torch (float32 rounding: bmm)
        torch.testing.assert_close(out[m], _plain_forward(model, m, x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one activation per member"):
        model.set_activations(["relu"] * 2)
    with pytest.raises(ValueError, match="learnable parameters"):
        model.set_activations("prelu")


@pytest.mark.parametrize("opt_name", ["adam", "momentum"])
def test_resetting_some_members_leaves_the_others_bit_identical(opt_name):
    """Reset members 1 and 3 halfway: they follow a run in which every member was reset (and
    torch.optim with a fresh optimiser), the others the run without any reset, to the bit."""
    x = torch.linspace(-2, 2, 32)[:, None]
    y = torch.sin(2 * x)
    acts, seeds = ["tanh", "tanh", "relu", "relu"], [0, 1, 2, 3]
    opt_cfg = OptimizerConfig(name=opt_name)
    cfg = TrainConfig(epochs=10, lr=1e-2, optimizer=opt_cfg)
    mask = torch.tensor([False, True, False, True])

    def two_phases(reset):
        model = EnsembleMLP(1, [8, 8], 1, acts, seeds)
        first = train(model, x, y, cfg)
        reset(first.optimizer)
        train(model, x, y, TrainConfig(epochs=10), optimizer=first.optimizer)
        return model, first.optimizer

    partial, opt = two_phases(lambda o: o.reset(mask))
    none, _ = two_phases(lambda o: None)
    no_one, _ = two_phases(lambda o: o.reset(torch.zeros(4, dtype=torch.bool)))
    every, _ = two_phases(lambda o: o.reset())
    assert torch.equal(no_one.flat, none.flat)  # an empty mask resets nothing
    assert opt.steps.tolist() == [20, 10, 20, 10]
    with pytest.raises(ValueError, match="differ"):
        _ = opt.step_count
    for layer in range(partial.n_layers):
        w = partial.weight(layer)
        assert torch.equal(w[~mask], none.weight(layer)[~mask])
        assert torch.equal(w[mask], every.weight(layer)[mask])
    # Member 1 against torch.optim: 10 steps, then a fresh optimiser for 10 more.
    seq = _reference_model(EnsembleMLP(1, [8, 8], 1, ["tanh"], [1]), 0)
    make = {
        "adam": lambda: torch.optim.Adam(seq.parameters(), lr=1e-2),
        "momentum": lambda: torch.optim.SGD(seq.parameters(), lr=1e-2, momentum=0.9),
    }[opt_name]
    for _ in range(2):
        torch_opt = make()
        for _ in range(10):
            torch_opt.zero_grad()
            nn.functional.mse_loss(seq(x), y).backward()
            torch_opt.step()
    linears = [m for m in seq if isinstance(m, nn.Linear)]
    for layer, lin in enumerate(linears):
        torch.testing.assert_close(partial.weight(layer)[1], lin.weight, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="mask of 4"):
        opt.reset(torch.tensor([True]))


def test_a_continued_run_keeps_members_diverged_or_stopped_in_an_earlier_call():
    # Member 1's target is huge: it diverges (loss > max_loss) in the first call. Member 2 is
    # stopped by a callback. A second call with the same optimiser must still report both.
    x1 = torch.linspace(-1, 1, 20)[:, None]
    x = x1.expand(3, -1, -1)
    y = torch.stack([torch.sin(x1), torch.full_like(x1, 1e4), torch.cos(x1)])
    model = EnsembleMLP(1, [8], 1, "tanh", [0, 1, 2])
    stop = Callback(lambda s: s.stop(torch.tensor([False, False, True])) or {}, at={1})
    cfg = TrainConfig(epochs=3, lr=1e-2, max_loss=1e6)
    first = train(model, x, y, cfg, callbacks=[stop])
    assert first.diverged_step.tolist() == [-1, 0, -1]
    assert first.stopped_step.tolist() == [-1, -1, 1]
    frozen = [[p.clone() for p in model.member(m).parameters()] for m in (1, 2)]
    second = train(model, x, y, TrainConfig(epochs=3), optimizer=first.optimizer)
    assert second.diverged_step.tolist() == [-1, 0, -1]
    assert second.stopped_step.tolist() == [-1, -1, 0]
    assert second.loss[:, 1].isnan().all() and second.loss[:, [0, 2]].isfinite().all()
    for m, before in zip((1, 2), frozen, strict=True):
        after = list(model.member(m).parameters())
        assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
