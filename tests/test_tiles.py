"""The engine's tiled manual backward (``EnsembleMLP.loss_and_grad`` works on tiles of
consecutive members, writing into reused buffers) against autograd on the whole ensemble, and
the activations' buffer-writing variants (``fn_out``, ``backward`` into ``dh``) against their
plain functions."""

import math

import pytest
import torch

from actlab import get_activation, list_activations
from actlab.activations import Activation
from actlab.models import TILE_BYTES, EnsembleMLP
from actlab.train import TrainConfig, train

# A user activation without fn_out whose fused backward returns a fresh tensor (the engine must
# copy it into the tile's buffer when the tile holds other activations too).
CUBE = Activation(
    name="test_cube",
    fn=lambda x: x * x * x / 3.0,
    deriv=lambda x: x * x,
    latex=r"x^3/3",
    latex_deriv=r"x^2",
    bounded=False,
    monotonic=True,
    zero_centred=True,
    smooth=True,
    piecewise_linear=False,
    self_gated=False,
    reference="test",
    backward=lambda dh, x, h: dh * (x * x),
)

# Runs of activations that cross the tile boundaries below: fused backward with fn_out (tanh,
# relu, gelu), learnable parameters (prelu), neither fused nor fn_out (sine, softsign), and
# a fresh-tensor fused backward (CUBE).
MIXED = ["tanh", "tanh", "tanh", "prelu", "prelu", "sine", "relu", CUBE, CUBE, "gelu", "softsign"]


def _autograd(model, x, y, loss):
    out = model(x)
    if loss == "mse":
        per_member = ((out - y) ** 2).mean(dim=(1, 2))
    else:
        logp = torch.log_softmax(out, dim=-1)
        target = y.expand(model.E, -1) if y.dim() == 1 else y
        per_member = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).mean(1)
    (grad,) = torch.autograd.grad(per_member.sum(), model.flat)
    return per_member.detach(), grad


@pytest.mark.parametrize("tile", [1, 2, 3, 4, 11, None])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_every_tiling_gives_autograds_loss_and_gradient(tile, loss):
    """Members in tiles of 1, 2, 3, 4 (the runs of activations cross the tiles' boundaries),
    one tile, and the automatic size: each member's loss and gradient are autograd's on the
    whole ensemble (float64), for shared inputs and one batch per member."""
    E, B = len(MIXED), 17
    gen = torch.Generator().manual_seed(3)
    out = 1 if loss == "mse" else 4
    model = EnsembleMLP(2, [6, 5], out, MIXED, seeds=range(E), dtype=torch.float64)
    with torch.no_grad():  # learnable slopes that differ per member and layer
        model.act_params(0)[3:5, 0] = torch.tensor([0.1, -0.3], dtype=torch.float64)
        model.act_params(1)[3:5, 0] = torch.tensor([0.7, 0.2], dtype=torch.float64)
    model.tile_members = tile
    for shared in (True, False):
        shape = (B, 2) if shared else (E, B, 2)
        x = torch.randn(*shape, generator=gen, dtype=torch.float64)
        if loss == "mse":
            y = torch.randn(*shape[:-1], 1, generator=gen, dtype=torch.float64)
        else:
            y = torch.randint(0, out, shape[:-1], generator=gen)
        grad = torch.full_like(model.flat, math.nan)  # every entry must be written
        value = model.loss_and_grad(x, y, loss, grad)
        want_value, want_grad = _autograd(model, x, y, loss)
        torch.testing.assert_close(value, want_value, rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(grad, want_grad, rtol=1e-10, atol=1e-13)
        # a second call reuses the buffers and gives the same numbers
        again = torch.zeros_like(grad)
        assert torch.equal(model.loss_and_grad(x, y, loss, again), value)
        assert torch.equal(again, grad)


def test_tiles_cover_the_members_in_order_and_evenly():
    """Tiles are consecutive, cover 0..E-1 once, differ in size by at most one, hold
    tile_members at most (but never one member alone unless tile_members is 1), and the
    automatic size keeps a layer's tile within TILE_BYTES."""
    model = EnsembleMLP(1, [64, 32], 1, "tanh", seeds=103)
    for tile in (1, 2, 7, 50, 103, 500):
        model.tile_members = tile
        tiles = model.tiles(200)
        assert [start for start, _ in tiles] == [0] + [stop for _, stop in tiles[:-1]]
        assert tiles[-1][1] == 103
        sizes = [stop - start for start, stop in tiles]
        assert max(sizes) - min(sizes) <= 1
        if tile == 1:
            assert sizes == [1] * 103
        else:
            assert min(sizes) >= 2 and max(sizes) <= max(tile, 3)
            assert len(tiles) == min(math.ceil(103 / tile), 103 // 2)
    model.tile_members = None
    sizes = [stop - start for start, stop in model.tiles(200)]
    per_member = 200 * 64 * 4  # a layer's (batch, widest layer) float32 tensor
    assert max(sizes) * per_member <= TILE_BYTES < (max(sizes) + 1) * per_member * 2
    assert min(len(model.tiles(b)) for b in (10**5, 10**6)) == 51  # pairs (one triple)
    assert EnsembleMLP(1, [4], 1, "tanh", seeds=1).tiles(10**6) == [(0, 1)]


def test_members_in_other_tiles_do_not_change_a_members_numbers():
    """With the same tiles, members 2..4 (across a tile boundary) train bit-identically whatever
    their neighbours are (activations, seeds, rates), as without tiles."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, generator=gen)
    y = torch.sin(3 * x)
    a = EnsembleMLP(1, [16, 16], 1, ["relu", "relu", "relu", "tanh", "gelu", "relu"], range(6))
    b = EnsembleMLP(1, [16, 16], 1, ["sigmoid", "elu", "relu", "tanh", "gelu", "prelu"], range(6))
    with torch.no_grad():
        b.weight(0)[[0, 1, 5]] *= 3.0
    a.tile_members = b.tile_members = 2
    train(a, x, y, TrainConfig(epochs=40, lr=1e-2))
    train(b, x, y, TrainConfig(epochs=40), lr=[0.1, 0.05, 1e-2, 1e-2, 1e-2, 0.2])
    for m in (2, 3, 4):
        for layer in range(a.n_layers):
            assert torch.equal(a.weight(layer)[m], b.weight(layer)[m])
            assert torch.equal(a.bias(layer)[m], b.bias(layer)[m])


def test_tiled_training_matches_untiled_training():
    """Training with tiles of 3 and with one tile gives the same members to float64 rounding
    (the batched products differ only in how many members they hold)."""
    x = torch.linspace(-2, 2, 30, dtype=torch.float64)[:, None]
    y = torch.cos(2 * x)
    runs = []
    for tile in (3, None):
        model = EnsembleMLP(1, [12, 12], 1, MIXED, seeds=range(11), dtype=torch.float64)
        model.tile_members = tile
        result = train(model, x, y, TrainConfig(epochs=25, lr=3e-3))
        runs.append((model.flat.detach().clone(), result.loss))
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(runs[0][1], runs[1][1], rtol=1e-11, atol=1e-13)


def test_plans_are_rebuilt_when_the_buffers_or_activations_change():
    """A new gradient buffer, a new batch size, swapped activations and a copied model each get
    their own views: the numbers stay autograd's."""
    x = torch.linspace(-1, 1, 9, dtype=torch.float64)[:, None]
    model = EnsembleMLP(1, [5], 1, ["tanh", "relu", "relu"], range(3), dtype=torch.float64)
    model.tile_members = 2

    kept = torch.zeros_like(model.flat)

    def check(m, xx, grad=None):
        grad = torch.zeros_like(m.flat) if grad is None else grad
        m.loss_and_grad(xx, torch.sin(xx), "mse", grad)
        torch.testing.assert_close(grad, _autograd(m, xx, torch.sin(xx), "mse")[1])

    check(model, x, kept)
    check(model, x)  # another gradient buffer
    check(model, x[:4], kept)  # another batch size
    check(model, x, kept)
    model.set_activations(["sigmoid", "sigmoid", "gelu"])
    check(model, x, kept)  # the same buffers, other activations
    import copy

    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.flat.mul_(2.0)
    check(twin, x)
    check(model, x)


# Family members away from their defaults: a wrong hyper-parameter in fn_out (celu's
# input scale 1/alpha equals alpha at alpha = 1) shows only there.
NON_DEFAULT = [
    "celu(alpha=0.5)",
    "elu(alpha=0.5)",
    "leaky_relu(slope=0.2)",
    "softplus(beta=2)",
    "hardtanh(min_val=-2, max_val=0.5)",
]


@pytest.mark.parametrize(
    "name", [n for n in list_activations() if get_activation(n).fn_out is not None] + NON_DEFAULT
)
def test_fn_out_and_inplace_backward_equal_the_plain_functions(name):
    """``fn_out(x, out)`` writes ``fn(x)`` bit for bit (non-contiguous slices of a buffer too);
    the built-in fused ``backward`` writes ``dh * phi'(x)`` into ``dh`` and equals the same call on
    a copy."""
    act = get_activation(name)
    x = torch.cat([torch.linspace(-30, 30, 2001), torch.tensor([0.0, -0.0, math.nan])])
    out = torch.full((3, x.numel()), 7.0)
    act.fn_out(x, out[1])
    torch.testing.assert_close(out[1], act.fn(x), rtol=0, atol=0, equal_nan=True)
    assert (out[[0, 2]] == 7.0).all()
    h = act.fn(x)
    dh = torch.linspace(-2, 2, x.numel())
    leaf = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(act.fn(leaf), leaf, dh)  # dh * phi'(x) by autograd
    written = act.backward(dh, x, h)
    if name != "mish":  # aten.mish_backward has no out= overload
        assert written.data_ptr() == dh.data_ptr()
    torch.testing.assert_close(written, expected, rtol=0, atol=0, equal_nan=True)


def test_no_tile_holds_a_single_member_so_equal_members_stay_equal():
    """Three members with one seed, in tiles of at most two: PyTorch's bmm rounds a batch of one
    otherwise than a larger batch (matrix-vector products), so a tile of one would make them
    differ; the tiles are [0, 3) instead of [0, 1), [1, 3)."""
    x = torch.linspace(-2, 2, 1000)[:, None]
    y = torch.sin(3 * x)
    model = EnsembleMLP(1, [128, 128], 1, "tanh", seeds=[7, 7, 7])
    model.tile_members = 2
    train(model, x, y, TrainConfig(epochs=5, lr=1e-3))
    for layer in range(model.n_layers):
        for m in (1, 2):
            assert torch.equal(model.weight(layer)[m], model.weight(layer)[0])
    assert all(stop - start >= 2 for start, stop in model.tiles(1000))


def test_plans_follow_the_parameter_storage_and_are_not_kept_or_copied():
    """The cached views follow a new parameter storage under the same gradient buffer (.data
    swapped, .double()); train() drops its plan when it returns; copies and pickles carry none."""
    import copy
    import pickle

    x = torch.linspace(-1, 1, 11, dtype=torch.float64)[:, None]
    y = torch.sin(3 * x)
    model = EnsembleMLP(1, [6, 6], 1, ["tanh", "relu", "gelu"], range(3), dtype=torch.float64)
    model.tile_members = 2
    grad = torch.zeros_like(model.flat)
    model.loss_and_grad(x, y, "mse", grad)
    size = len(pickle.dumps(model))
    model.flat.data = model.flat.data * 2.0  # another storage, the same gradient buffer
    value = model.loss_and_grad(x, y, "mse", grad)
    want_value, want_grad = _autograd(model, x, y, "mse")
    torch.testing.assert_close(value, want_value)
    torch.testing.assert_close(grad, want_grad)
    assert "_plans" not in copy.deepcopy(model).__dict__
    assert len(pickle.dumps(model)) == size
    model.float()
    assert "_plans" not in model.__dict__
    model.double()
    train(model, x, y, TrainConfig(epochs=2))
    assert "_plans" not in model.__dict__
