"""EnsembleOptimizer against torch.optim: each member's share of the flat buffer, given the same
gradients, follows a plain torch.optim optimiser working on that member alone.

The gradients are synthetic (no model, no BLAS): they span eight orders of magnitude and include
exact zeros (a dead unit's gradient), so that Adam's and RMSprop's denominators are exercised
where ``eps`` matters and where ``sqrt(v)`` is tiny."""

from __future__ import annotations

import pytest
import torch

from actlab import optim
from actlab.optim import EnsembleOptimizer, OptimizerConfig

SIZES = (37, 10)  # a member's share of each block: e.g. a layer's weights, then its biases
LRS = (1e-2, 3e-3, 2e-2)  # one rate per member: a rate taken from another member shows

# (name, OptimizerConfig keywords, torch.optim class, its keywords): the defaults, then other
# values of every hyper-parameter, with weight decay.
CASES = {
    "sgd": ("sgd", {}, torch.optim.SGD, {}),
    "sgd-wd": ("sgd", {"weight_decay": 0.1}, torch.optim.SGD, {"weight_decay": 0.1}),
    "momentum": ("momentum", {}, torch.optim.SGD, {"momentum": 0.9}),
    "momentum-0.5-wd": (
        "momentum",
        {"momentum": 0.5, "weight_decay": 0.1},
        torch.optim.SGD,
        {"momentum": 0.5, "weight_decay": 0.1},
    ),
    "adam": ("adam", {}, torch.optim.Adam, {}),
    "adam-custom-wd": (
        "adam",
        {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05},
        torch.optim.Adam,
        {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05},
    ),
    "rmsprop": ("rmsprop", {}, torch.optim.RMSprop, {}),
    "rmsprop-custom-wd": (
        "rmsprop",
        {"alpha": 0.9, "eps": 1e-4, "weight_decay": 0.05},
        torch.optim.RMSprop,
        {"alpha": 0.9, "eps": 1e-4, "weight_decay": 0.05},
    ),
}


def _blocks(E: int) -> tuple[list[tuple[int, int]], int]:
    """``(offset, size)`` of each block for E members, and the buffer's length."""
    blocks, offset = [], 0
    for size in SIZES:
        blocks.append((offset, size))
        offset += E * size
    return blocks, offset


def _share(flat: torch.Tensor, E: int, m: int) -> torch.Tensor:
    """Member m's entries of every block, concatenated (a copy)."""
    blocks, _ = _blocks(E)
    return torch.cat([flat[o + m * s : o + (m + 1) * s] for o, s in blocks])


def _flat(shares: list[torch.Tensor]) -> torch.Tensor:
    """The flat buffer holding each member's share (the inverse of ``_share``)."""
    E = len(shares)
    blocks, n = _blocks(E)
    flat = torch.empty(n, dtype=shares[0].dtype)
    for m, share in enumerate(shares):
        start = 0
        for o, s in blocks:
            flat[o + m * s : o + (m + 1) * s] = share[start : start + s]
            start += s
    return flat


def _draws(steps: int, E: int, seed: int, dtype=torch.float64):
    """Initial shares and ``steps`` gradients per member: magnitudes from 1e-6 to 10, and a few
    exact zeros (the same entries at every step, as a dead unit's)."""
    gen = torch.Generator().manual_seed(seed)
    n = sum(SIZES)
    init = [torch.randn(n, generator=gen, dtype=torch.float64).to(dtype) for _ in range(E)]
    scale = 10.0 ** torch.randint(-6, 2, (E, n), generator=gen)
    scale[:, :3] = 0.0
    grads = [
        [
            (torch.randn(n, generator=gen, dtype=torch.float64) * scale[m]).to(dtype)
            for m in range(E)
        ]
        for _ in range(steps)
    ]
    return init, grads


class _TorchMember:
    """One member's share as an ``nn.Parameter`` with its own torch.optim optimiser."""

    def __init__(self, share, lr, cls, kwargs):
        self.param = torch.nn.Parameter(share.clone())
        self.make = lambda: cls([self.param], lr=lr, **kwargs)
        self.opt = self.make()

    def step(self, grad):
        self.param.grad = grad.clone()
        self.opt.step()

    def restart(self):
        """A fresh optimiser: moments, momentum buffer and step count forgotten."""
        self.opt = self.make()


@pytest.fixture(params=["fused", "eager"])
def adam_kernel(request, monkeypatch):
    """Adam through PyTorch's fused kernel (the default) and through the plain element-wise
    fallback used when a PyTorch lacks ``torch._fused_adam_``."""
    monkeypatch.setattr(optim, "_FUSED_ADAM", request.param == "fused")
    return request.param


@pytest.mark.parametrize("case", list(CASES))
def test_each_member_follows_torch_optim(case, adam_kernel):
    name, ours, cls, theirs = CASES[case]
    if name != "adam" and adam_kernel == "eager":
        pytest.skip("one kernel only")
    E, steps = len(LRS), 25
    init, grads = _draws(steps, E, seed=0)
    flat = _flat(init)
    opt = EnsembleOptimizer(flat, LRS, _blocks(E)[0], OptimizerConfig(name=name, **ours))
    refs = [_TorchMember(init[m], LRS[m], cls, theirs) for m in range(E)]
    for g in grads:
        opt.step(_flat(g))
        for m, ref in enumerate(refs):
            ref.step(g[m])
    assert opt.step_count == steps
    for m, ref in enumerate(refs):
        want = ref.param.detach()
        assert not torch.equal(want, init[m])  # the member moved
        # float64; torch.optim orders some operations differently (addcdiv, lerp): rounding only
        torch.testing.assert_close(_share(flat, E, m), want, rtol=1e-12, atol=1e-15)


def test_float32_follows_torch_optim_to_float32_rounding(adam_kernel):
    """The per-member rates are held in the buffer's dtype: float32 rounding, no worse."""
    name, ours, cls, theirs = CASES["adam-custom-wd"]
    E = len(LRS)
    init, grads = _draws(25, E, seed=1, dtype=torch.float32)
    flat = _flat(init)
    opt = EnsembleOptimizer(flat, LRS, _blocks(E)[0], OptimizerConfig(name=name, **ours))
    refs = [_TorchMember(init[m], LRS[m], cls, theirs) for m in range(E)]
    for g in grads:
        opt.step(_flat(g))
        for m, ref in enumerate(refs):
            ref.step(g[m])
    for m, ref in enumerate(refs):
        torch.testing.assert_close(_share(flat, E, m), ref.param.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["momentum-0.5-wd", "adam-custom-wd", "rmsprop-custom-wd"])
def test_reset_and_freeze_follow_torch_optim(case, adam_kernel):
    """After 6 steps member 1's state is reset (torch: a fresh optimiser), after 14 member 2 is
    frozen (torch: no more steps); member 0 goes on as if nothing happened."""
    name, ours, cls, theirs = CASES[case]
    if name != "adam" and adam_kernel == "eager":
        pytest.skip("one kernel only")
    E, steps = len(LRS), 20
    init, grads = _draws(steps, E, seed=2)
    flat = _flat(init)
    opt = EnsembleOptimizer(flat, LRS, _blocks(E)[0], OptimizerConfig(name=name, **ours))
    refs = [_TorchMember(init[m], LRS[m], cls, theirs) for m in range(E)]
    for step, g in enumerate(grads):
        if step == 6:
            opt.reset(torch.tensor([False, True, False]))
            refs[1].restart()
        if step == 14:
            opt.freeze(torch.tensor([False, False, True]))
        grad = _flat(g)
        opt.step(grad)
        for m, ref in enumerate(refs):
            if not (m == 2 and step >= 14):
                ref.step(g[m])
    assert opt.steps[:2].tolist() == [steps, steps - 6]
    assert opt.active.tolist() == [True, True, False]
    assert not _share(grad, E, 2).any()  # a frozen member's gradient is zeroed in place
    assert torch.equal(_share(grad, E, 0), grads[-1][0])  # the others' are left alone
    for m, ref in enumerate(refs):
        torch.testing.assert_close(_share(flat, E, m), ref.param.detach(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", ["sgd-wd", "momentum-0.5-wd", "adam-custom-wd", "rmsprop"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_members_update_does_not_depend_on_its_position(case, dtype, adam_kernel):
    """The module's promise: a member's numbers are bit-identical alone (E = 1) and inside an
    ensemble, although its entries then sit elsewhere in the buffer (a buffer of 141 or 47
    elements: with a plain kernel some in a vectorised loop's body, some in its scalar tail;
    Adam's fused kernel is only given multiples of ALIGN)."""
    name, ours, _, _ = CASES[case]
    if name != "adam" and adam_kernel == "eager":
        pytest.skip("one kernel only")
    E = len(LRS)
    init, grads = _draws(20, E, seed=3, dtype=dtype)
    config = OptimizerConfig(name=name, **ours)
    flat = _flat(init)
    together = EnsembleOptimizer(flat, LRS, _blocks(E)[0], config)
    alone = [init[m].clone() for m in range(E)]
    single = [EnsembleOptimizer(alone[m], [LRS[m]], _blocks(1)[0], config) for m in range(E)]
    for g in grads:
        together.step(_flat(g))
        for m in range(E):
            single[m].step(g[m].clone())
    for m in range(E):
        assert torch.equal(_share(flat, E, m), alone[m])


def test_bad_arguments():
    flat = torch.zeros(_blocks(2)[1])
    with pytest.raises(ValueError, match="lr must be finite"):
        EnsembleOptimizer(flat, [1e-3, 0.0], _blocks(2)[0], OptimizerConfig())
    opt = EnsembleOptimizer(flat, [1e-3, 1e-3], _blocks(2)[0], OptimizerConfig())
    with pytest.raises(ValueError, match="mask of 2"):
        opt.reset(torch.tensor([True]))
    for bad in (
        {"momentum": 1.0},
        {"betas": (0.9, 1.0)},
        {"alpha": -0.1},
        {"eps": float("nan")},
        {"weight_decay": -1e-4},
    ):
        with pytest.raises(ValueError, match="out of range"):
            OptimizerConfig(**bad)


def test_adams_fused_kernel_is_only_given_whole_multiples_of_align(monkeypatch):
    """Whatever the buffer's length, every tensor handed to torch._fused_adam_ holds a multiple
    of ALIGN elements, so that no element reaches the kernel's scalar tail (which may round
    otherwise than its vectorised body on some builds): checked on the calls themselves."""
    seen = []
    real = torch._fused_adam_

    def spy(params, grads, exp_avgs, exp_avg_sqs, *args, **kwargs):
        for group in (params, grads, exp_avgs, exp_avg_sqs):
            seen.extend(t.numel() for t in group)
        return real(params, grads, exp_avgs, exp_avg_sqs, *args, **kwargs)

    monkeypatch.setattr(torch, "_fused_adam_", spy)
    for E in (1, 2, 3, 5):
        init, grads = _draws(3, E, seed=E)
        flat = _flat(init)
        opt = EnsembleOptimizer(flat, LRS[:1] * E, _blocks(E)[0], OptimizerConfig())
        for step, g in enumerate(grads):
            if step == 1 and E > 1:
                opt.reset(torch.tensor([True] + [False] * (E - 1)))  # two step counts
            opt.step(_flat(g))
    # 16, not optim.ALIGN: the widest vector (16 floats) decides, whatever the module says
    assert seen and all(n % 16 == 0 for n in seen), sorted(set(seen))
