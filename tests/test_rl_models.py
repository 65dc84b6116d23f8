"""Tests of actlab.rl.models (networks, Hadamard layer, parameter counts) and actlab.rl.ensemble
(stacked agents' networks): against autograd on the explicit formulas, closed forms, and
separate ``nn.Module``s trained one by one."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from actlab.probes import probe
from actlab.rl.ensemble import (
    clip_grad_norm_per_member,
    ensemble_call,
    member_params,
    n_members,
    stack,
)
from actlab.rl.models import (
    DenseBlock,
    HadamardLayer,
    Network,
    matched_hidden,
    matched_minatar_width,
    minatar_net,
    minatar_parameter_count,
    mlp_parameter_count,
    mlp_qnet,
)


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def seeded(factory, seed: int, dtype=torch.float32):
    torch.manual_seed(seed)
    return factory().to(dtype)


# --------------------------------------------------------------------------------------------
# HadamardLayer


def explicit_hadamard(x, w1, b1, w2, b2):
    return torch.tanh(x @ w1.T + b1) * torch.tanh(x @ w2.T + b2)


def test_hadamard_forward_and_backward_match_the_explicit_product():
    torch.manual_seed(0)
    layer = HadamardLayer(5, 7, "tanh").double()
    x = torch.randn(11, 5, dtype=torch.float64, requires_grad=True)
    h = layer(x)
    g = torch.randn_like(h)
    grads = torch.autograd.grad(h, [x, *layer.parameters()], g)

    w1 = layer.branch1.linear.weight.detach().clone().requires_grad_()
    b1 = layer.branch1.linear.bias.detach().clone().requires_grad_()
    w2 = layer.branch2.linear.weight.detach().clone().requires_grad_()
    b2 = layer.branch2.linear.bias.detach().clone().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    ref = explicit_hadamard(x2, w1, b1, w2, b2)
    ref_grads = torch.autograd.grad(ref, [x2, w1, b1, w2, b2], g)

    torch.testing.assert_close(h, ref, rtol=1e-13, atol=1e-13)
    names = [name for name, _ in layer.named_parameters()]
    assert names == [
        "branch1.linear.weight",
        "branch1.linear.bias",
        "branch2.linear.weight",
        "branch2.linear.bias",
    ]
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_hadamard_gradcheck_float64():
    torch.manual_seed(1)
    layer = HadamardLayer(3, 4, "tanh", layer_norm=True).double()
    names = [name for name, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)

    def f(x, *ps):
        return functional_call(layer, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))


def test_hadamard_branches_are_independent_and_default_initialised():
    torch.manual_seed(2)
    layer = HadamardLayer(6, 5, "relu")
    w1, w2 = layer.branch1.linear.weight, layer.branch2.linear.weight
    assert w1.data_ptr() != w2.data_ptr() and not torch.equal(w1, w2)
    bound = 1 / 6**0.5  # nn.Linear's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    for p in layer.parameters():
        assert p.abs().max() <= bound
    # the same draws as two nn.Linear layers made one after the other
    torch.manual_seed(2)
    ref1, ref2 = nn.Linear(6, 5), nn.Linear(6, 5)
    assert torch.equal(w1, ref1.weight) and torch.equal(w2, ref2.weight)


def test_layer_norm_variant_is_linear_layernorm_activation_per_branch():
    torch.manual_seed(3)
    layer = HadamardLayer(4, 6, "tanh", layer_norm=True).double()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(9, 4, dtype=torch.float64)

    def branch(b):
        z = x @ b.linear.weight.T + b.linear.bias
        mu, var = z.mean(-1, keepdim=True), z.var(-1, unbiased=False, keepdim=True)
        return torch.tanh((z - mu) / torch.sqrt(var + 1e-5) * b.norm.weight + b.norm.bias)

    want = branch(layer.branch1) * branch(layer.branch2)
    torch.testing.assert_close(layer(x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_layer_parameter_counts_closed_form(layer_norm):
    assert numel(HadamardLayer(7, 5, "tanh", layer_norm)) == HadamardLayer.parameter_count(
        7, 5, layer_norm
    )
    assert numel(DenseBlock(7, 5, "tanh", layer_norm)) == DenseBlock.parameter_count(
        7, 5, layer_norm
    )
    # by hand: 2 (7 + 1) 5 = 80, plus 2 LayerNorms of 2 * 5
    assert HadamardLayer.parameter_count(7, 5, layer_norm) == 80 + (20 if layer_norm else 0)


def test_probes_see_each_branch_and_the_product():
    torch.manual_seed(4)
    net = mlp_qnet(4, 2, hidden=(8, 6), activation="tanh", hadamard="last")
    x = torch.randn(10, 4)
    with probe(net) as p:
        net(x)
    assert set(p.sites) == {"hidden.0.act", "hidden.1.branch1.act", "hidden.1.branch2.act"}
    with probe(net, pattern=r"product$") as p:
        net(x)
    assert list(p.sites) == ["hidden.1.product"]


# --------------------------------------------------------------------------------------------
# Networks


def test_mlp_qnet_structure_and_forward_with_hidden():
    torch.manual_seed(5)
    net = mlp_qnet(4, 3, hidden=(9, 7), activation="tanh", hadamard="last").double()
    x = torch.randn(5, 4, dtype=torch.float64)
    out, hidden = net.forward_with_hidden(x)
    assert [h.shape for h in hidden] == [(5, 9), (5, 7)]
    l0, l1, head = net.hidden[0].linear, net.hidden[1], net.head
    h1 = torch.tanh(x @ l0.weight.T + l0.bias)
    b1, b2 = l1.branch1.linear, l1.branch2.linear
    h2 = explicit_hadamard(h1, b1.weight, b1.bias, b2.weight, b2.bias)
    torch.testing.assert_close(hidden[0], h1, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(hidden[1], h2, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(out, h2 @ head.weight.T + head.bias, rtol=1e-13, atol=1e-13)
    assert torch.equal(net(x), out)


@pytest.mark.parametrize(
    ("hadamard", "kinds"),
    [
        ("none", [DenseBlock, DenseBlock, DenseBlock]),
        ("last", [DenseBlock, DenseBlock, HadamardLayer]),
        ("all", [HadamardLayer, HadamardLayer, HadamardLayer]),
    ],
)
def test_hadamard_placements(hadamard, kinds):
    net = mlp_qnet(3, 2, hidden=(5, 6, 4), hadamard=hadamard, layer_norm=True)
    assert [type(layer) for layer in net.hidden] == kinds
    for layer in net.hidden:
        blocks = [layer] if isinstance(layer, DenseBlock) else [layer.branch1, layer.branch2]
        assert all(isinstance(b.norm, nn.LayerNorm) for b in blocks)


def test_minatar_net_is_the_reference_network():
    torch.manual_seed(6)
    net = minatar_net(4, 3, activation="relu").double()
    x = (torch.rand(2, 4, 10, 10) < 0.3).double()
    out, hidden = net.forward_with_hidden(x)
    assert out.shape == (2, 3)
    assert [h.shape for h in hidden] == [(2, 1024), (2, 128)]
    conv = net.hidden[0].conv
    assert (conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == (
        16,
        (3, 3),
        (1, 1),
        (0, 0),
    )
    h1 = torch.relu(nn.functional.conv2d(x, conv.weight, conv.bias)).reshape(2, -1)
    torch.testing.assert_close(hidden[0], h1, rtol=1e-13, atol=1e-13)
    dense = net.hidden[1].linear
    torch.testing.assert_close(hidden[1], torch.relu(h1 @ dense.weight.T + dense.bias))


def test_minatar_layer_norm_normalises_channels_at_each_position():
    torch.manual_seed(7)
    net = minatar_net(3, 2, activation="tanh", layer_norm=True).double()
    x = (torch.rand(2, 3, 10, 10) < 0.5).double()
    block = net.hidden[0]
    z = nn.functional.conv2d(x, block.conv.weight, block.conv.bias)  # (B, 16, 8, 8)
    mu, var = z.mean(1, keepdim=True), z.var(1, unbiased=False, keepdim=True)
    want = torch.tanh((z - mu) / torch.sqrt(var + 1e-5))  # LayerNorm's initial gain 1, bias 0
    torch.testing.assert_close(block(x), want.reshape(2, -1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("hadamard", ["none", "last", "all"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_mlp_parameter_count_equals_numel(hadamard, layer_norm):
    for hidden in [(120, 84), (5,), (3, 8, 2)]:
        net = mlp_qnet(6, 3, hidden, "tanh", hadamard, layer_norm)
        assert numel(net) == mlp_parameter_count(6, 3, hidden, hadamard, layer_norm)


def test_mlp_parameter_count_by_hand():
    # CartPole, hadamard last: 4->120 (600), Hadamard 120->84 (2 * 121 * 84), head 85 * 2
    assert mlp_parameter_count(4, 2, (120, 84), "last") == 600 + 2 * 121 * 84 + 170


@pytest.mark.parametrize("hadamard", ["none", "last"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_minatar_parameter_count_equals_numel(hadamard, layer_norm):
    for channels, hidden in [(4, 128), (10, 33)]:
        net = minatar_net(channels, 5, "relu", hadamard, layer_norm, hidden=hidden)
        assert numel(net) == minatar_parameter_count(channels, 5, hadamard, layer_norm, hidden)


@pytest.mark.parametrize("hadamard", ["last", "all"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_matched_hidden_is_the_nearest_count(hadamard, layer_norm):
    hidden = (120, 84)
    target = mlp_parameter_count(4, 2, hidden, hadamard, layer_norm)
    widths = matched_hidden(4, 2, hidden, hadamard, layer_norm)
    plain = mlp_qnet(4, 2, widths, "relu", "none", layer_norm)
    got = numel(plain)
    assert got == mlp_parameter_count(4, 2, widths, "none", layer_norm)
    # brute force over the same family of widths: no other last width is nearer
    for w in range(84, 400):
        if hadamard == "last":
            other = (120, w)
        else:
            other = (max(120, round(120 * w / 84)), w)
        count = mlp_parameter_count(4, 2, other, "none", layer_norm)
        assert abs(got - target) <= abs(count - target)
    if hadamard == "last":
        assert widths[0] == 120 and widths[1] > 84
        # the count grows by (120 + 1 + 2) (+2 with LayerNorm) per unit: within half a step
        assert abs(got - target) <= (123 + 2 * layer_norm) / 2
    else:
        assert widths[0] > 120 and widths[1] > 84


@pytest.mark.parametrize("layer_norm", [False, True])
def test_matched_minatar_width(layer_norm):
    target = minatar_parameter_count(4, 3, "last", layer_norm)
    w = matched_minatar_width(4, 3, layer_norm)
    got = numel(minatar_net(4, 3, "relu", "none", layer_norm, hidden=w))
    step = 1024 + 1 + 3 + 2 * layer_norm
    assert abs(got - target) <= step / 2
    for other in (w - 1, w + 1):
        count = minatar_parameter_count(4, 3, "none", layer_norm, other)
        assert abs(got - target) <= abs(count - target)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mlp_qnet(4, 2, hadamard="first"), "hadamard"),
        (lambda: mlp_qnet(4, 0), "n_outputs"),
        (lambda: mlp_qnet(0, 2), "obs_dim"),
        (lambda: mlp_qnet(4, 2, hidden=()), "hidden"),
        (lambda: mlp_qnet(4, 2, hidden=(8, 0)), "hidden"),
        (lambda: minatar_net(4, 3, hadamard="all"), "hadamard"),
        (lambda: minatar_net(0, 3), "in_channels"),
        (lambda: mlp_qnet(4, 2, activation="rleu"), "relu"),
    ],
)
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------------------------
# Ensembles


def small_qnet():
    return mlp_qnet(4, 2, hidden=(16, 12), activation="tanh", hadamard="last")


def small_minatar():
    return minatar_net(4, 3, activation="relu", hadamard="last", layer_norm=True, hidden=16)


def test_stack_copies_each_member():
    modules = [seeded(small_qnet, s) for s in range(3)]
    base, params = stack(modules)
    assert n_members(params) == 3
    assert all(p.is_leaf and p.requires_grad for p in params.values())
    assert next(base.parameters()).device.type == "meta"
    for i, module in enumerate(modules):
        state = member_params(params, i)
        for name, p in module.named_parameters():
            assert torch.equal(state[name], p)
            assert state[name].data_ptr() != p.data_ptr()
        fresh = seeded(small_qnet, 99)
        fresh.load_state_dict(state)
        assert torch.equal(fresh.head.weight, module.head.weight)


@pytest.mark.parametrize("factory", [small_qnet, small_minatar])
def test_ensemble_call_matches_separate_modules(factory):
    modules = [seeded(factory, s, torch.float64) for s in range(3)]
    base, params = stack(modules)
    shape = (3, 5, 4) if factory is small_qnet else (3, 5, 4, 10, 10)
    x = torch.randn(shape, dtype=torch.float64)
    out, hidden = ensemble_call(base, params, x, with_hidden=True)
    assert torch.equal(ensemble_call(base, params, x), out)
    for i, module in enumerate(modules):
        want_out, want_hidden = module.forward_with_hidden(x[i])
        # float64; another batched kernel may sum in another order: rounding ~1e-16 relative
        torch.testing.assert_close(out[i], want_out, rtol=1e-12, atol=1e-12)
        for got, want in zip(hidden, want_hidden, strict=True):
            torch.testing.assert_close(got[i], want, rtol=1e-12, atol=1e-12)


def test_ensemble_call_gives_each_member_its_own_learnable_activation_parameters():
    # prelu's slope is a learnable parameter per activation module: members with different
    # slopes (and gradients flowing to them) must each see their own
    def factory():
        return minatar_net(4, 3, activation="prelu", hadamard="last", layer_norm=True, hidden=8)

    modules = [seeded(factory, s, torch.float64) for s in range(3)]
    with torch.no_grad():
        for i, module in enumerate(modules):
            for k, (name, p) in enumerate(module.named_parameters()):
                if ".act.params." in name:
                    p.fill_(0.05 + 0.1 * i + 0.01 * k)
    base, params = stack(modules)
    x = torch.randn(3, 5, 4, 10, 10, dtype=torch.float64)
    out = ensemble_call(base, params, x)
    out.square().sum().backward()
    for i, module in enumerate(modules):
        want = module(x[i])
        torch.testing.assert_close(out[i].detach(), want.detach(), rtol=1e-12, atol=1e-12)
        want.square().sum().backward()
        for name, p in module.named_parameters():
            if ".act.params." in name:
                torch.testing.assert_close(params[name].grad[i], p.grad, rtol=1e-10, atol=1e-12)


def gradients_of(module, x, y):
    loss = ((module(x) - y) ** 2).mean()
    module.zero_grad()
    loss.backward()


def test_clip_grad_norm_per_member_matches_torch_on_separate_modules():
    modules = [seeded(small_qnet, s, torch.float64) for s in range(4)]
    base, params = stack(modules)
    # targets of very different scales: some members above max_norm, some below
    x = torch.randn(4, 8, 4, dtype=torch.float64)
    y = (
        torch.randn(4, 8, 2, dtype=torch.float64)
        * torch.tensor([0.01, 1.0, 30.0, 0.001]).view(4, 1, 1).double()
    )
    ((ensemble_call(base, params, x) - y) ** 2).mean(dim=(1, 2)).sum().backward()
    norms = clip_grad_norm_per_member(params, max_norm=0.5)
    assert norms.shape == (4,)
    assert (norms > 0.5).any() and (norms < 0.5).any()
    for i, module in enumerate(modules):
        gradients_of(module, x[i], y[i])
        want = nn.utils.clip_grad_norm_(module.parameters(), max_norm=0.5)
        torch.testing.assert_close(norms[i], want, rtol=1e-12, atol=0)
        for name, p in module.named_parameters():
            torch.testing.assert_close(params[name].grad[i], p.grad, rtol=1e-10, atol=1e-14)


def test_clip_grad_norm_per_member_by_hand():
    params = {
        "a": torch.zeros(2, 2, requires_grad=True),
        "b": torch.zeros(2, 1, requires_grad=True),
    }
    params["a"].grad = torch.tensor([[3.0, 0.0], [0.1, 0.0]])
    params["b"].grad = torch.tensor([[4.0], [0.0]])
    norms = clip_grad_norm_per_member(params, max_norm=1.0)
    torch.testing.assert_close(norms, torch.tensor([5.0, 0.1]))
    coef = 1.0 / (5.0 + 1e-6)
    torch.testing.assert_close(params["a"].grad, torch.tensor([[3 * coef, 0.0], [0.1, 0.0]]))
    torch.testing.assert_close(params["b"].grad, torch.tensor([[4 * coef], [0.0]]))


def agent_data(seed: int, steps: int, shape: tuple[int, ...], n_outputs: int, dtype):
    """Inputs (steps, B, ...) and targets (steps, B, n_outputs) of one agent: its own stream."""
    gen = torch.Generator().manual_seed(1000 + seed)
    x = torch.randn(steps, 16, *shape, generator=gen, dtype=dtype)
    y = torch.randn(steps, 16, n_outputs, generator=gen, dtype=dtype)
    return x, y


def train_ensemble(factory, seeds, shape, n_outputs, dtype, steps=4, poison=()):
    """Adam + per-member clipping on the stacked parameters; members in ``poison`` get
    non-finite inputs (they diverge). Returns the parameters and the norms ``(steps, E)``."""
    base, params = stack([seeded(factory, s, dtype) for s in seeds])
    opt = torch.optim.Adam(params.values(), lr=1e-2)
    data = [agent_data(s, steps, shape, n_outputs, dtype) for s in seeds]
    for i in poison:
        data[i][0].fill_(float("inf"))
    norms = []
    for t in range(steps):
        x = torch.stack([xs[t] for xs, _ in data])
        y = torch.stack([ys[t] for _, ys in data])
        loss = ((ensemble_call(base, params, x) - y) ** 2).mean(dim=(1, 2))  # (E,)
        opt.zero_grad()
        loss.sum().backward()
        norms.append(clip_grad_norm_per_member(params, max_norm=MAX_NORM))
        opt.step()
    return params, torch.stack(norms)


def train_alone(factory, seed, shape, n_outputs, dtype, steps=4):
    """The same steps on one plain nn.Module (no vmap, torch's own clipping)."""
    module = seeded(factory, seed, dtype)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    xs, ys = agent_data(seed, steps, shape, n_outputs, dtype)
    for t in range(steps):
        loss = ((module(xs[t]) - ys[t]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), max_norm=MAX_NORM)
        opt.step()
    return dict(module.named_parameters())


SIX = [11, 12, 13, 7, 14, 15]  # agent 7 sits at index 3
MAX_NORM = 0.2  # below agent 7's gradient norms in both networks: the clipping acts


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mlp_agent_alone_and_in_ensemble_of_six_are_bit_identical(dtype):
    # Exact, not rounding: Network.forward_stacked runs each nn.Linear as torch.baddbmm over the
    # E members, and on CPU the member's slice is one matrix product of the same shapes
    # whatever E is; the bias
    # gradients sum over the batch axis of each member; Adam and the clipping are element-wise
    # or per member. Measured bit-identical on this CPU; a platform whose batched matmul picked
    # its kernel by batch size would break this, and the float64 tolerance tests below hold.
    alone, norms = train_ensemble(small_qnet, [7], (4,), 2, dtype)
    six, _ = train_ensemble(small_qnet, SIX, (4,), 2, dtype)
    assert (norms > MAX_NORM).all()  # the clipping acts at every step
    for name, p in alone.items():
        assert torch.equal(p[0], six[name][3]), name
    # and the companions matter not even when one diverges
    poisoned, _ = train_ensemble(small_qnet, SIX, (4,), 2, dtype, poison=(0, 5))
    assert not torch.isfinite(poisoned["head.weight"][0]).all()
    for name, p in alone.items():
        assert torch.equal(p[0], poisoned[name][3]), name


def test_minatar_agent_alone_and_in_ensemble_of_six_equal_to_rounding():
    # Network.forward_stacked runs one conv2d per member (the kernel of a member alone) and the
    # dense layers as torch.baddbmm: bit-identical on one thread on this CPU, but with two
    # threads the convolution's backward may split its sums differently (seen: a differing
    # last bit in the conv weights). float64 rounding of 2^-53 relative, summed over at most
    # 1024 terms and carried through 4 Adam steps of lr 1e-2, stays far below 1e-12.
    shape = (4, 10, 10)
    alone, norms = train_ensemble(small_minatar, [7], shape, 3, torch.float64)
    six, _ = train_ensemble(small_minatar, SIX, shape, 3, torch.float64)
    assert (norms > MAX_NORM).all()
    for name, p in alone.items():
        torch.testing.assert_close(p[0], six[name][3], rtol=0, atol=1e-12, msg=name)


@pytest.mark.parametrize(
    ("factory", "shape", "n_outputs"), [(small_qnet, (4,), 2), (small_minatar, (4, 10, 10), 3)]
)
def test_ensemble_training_matches_a_plain_module_trained_alone(factory, shape, n_outputs):
    # float64: batched (baddbmm) and single kernels (addmm) may sum in
    # another order; the same rounding argument as above gives far less than 1e-12.
    alone = train_alone(factory, 7, shape, n_outputs, torch.float64)
    six, _ = train_ensemble(factory, SIX, shape, n_outputs, torch.float64)
    for name, p in alone.items():
        torch.testing.assert_close(six[name][3], p, rtol=0, atol=1e-12, msg=name)


def test_ensemble_errors():
    modules = [seeded(small_qnet, s) for s in range(2)]
    base, params = stack(modules)
    with pytest.raises(ValueError, match="ensemble axis"):
        ensemble_call(base, params, torch.randn(3, 5, 4))
    with pytest.raises(ValueError, match="forward_with_hidden"):
        plain_base, plain_params = stack([nn.Linear(4, 2), nn.Linear(4, 2)])
        ensemble_call(plain_base, plain_params, torch.randn(2, 5, 4), with_hidden=True)
    with pytest.raises(ValueError, match="at least one"):
        stack([])
    with pytest.raises(ValueError, match="shapes"):
        stack([mlp_qnet(4, 2, hidden=(8,)), mlp_qnet(4, 2, hidden=(9,))])
    with pytest.raises(ValueError, match="buffers"):
        stack([nn.BatchNorm1d(3), nn.BatchNorm1d(3)])
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_per_member(params, 0.0)
    with pytest.raises(ValueError, match="member index"):
        member_params(params, 2)
    assert isinstance(base, Network)
