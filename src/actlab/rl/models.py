"""Networks of the RL agents: plain or Hadamard hidden layers, any registry activation.

Shapes: observations ``(B, obs_dim)`` for classic control and ``(B, C, 10, 10)`` float 0/1,
channels first, for MinAtar; outputs ``(B, n_outputs)`` (Q-values, or logits / a value for PPO);
hidden layer l gives ``h_l`` ``(B, units_l)``.

The Hadamard layer (Kooi, Hoogendoorn & François-Lavet, arXiv 2406.09079; ``docs/REFERENCES.md``,
"Hadamard representation") is ``h = phi(W1 x + b1) * phi(W2 x + b2)``: two independently
parameterised branches multiplied element-wise. Placements (``hadamard=``):

* ``"last"`` -- the representation (final hidden) layer is Hadamard: the paper's DQN placement.
  Also this module's choice for PPO, where the paper states none: the torso's last layer is the
  representation that the policy and value heads read, which is where the paper's claims (fewer
  saturated units, higher effective rank) are measured, and the earlier layers stay comparable
  to the plain network's.
* ``"all"`` -- every hidden layer is Hadamard: the paper's PQN placement (with ``layer_norm``).

``layer_norm=True`` puts a LayerNorm between each affine map and its activation (the PQN
networks of CleanRL and purejaxql); in a Hadamard layer each branch has its own.

Parameter-matched baselines: :func:`matched_hidden` and :func:`matched_minatar_width` give the
widths of a plain network whose parameter count is the *nearest* to the Hadamard network's (ties
go to the wider one). Nearest rather than at-least, so that neither side gets a systematic
advantage of up to one width step; the step is small (about ``width_in + n_outputs`` parameters
for the representation layer, well under 1% of the networks here).

Every network is a :class:`Network`: hidden blocks then a linear head, and
``forward_with_hidden(x) -> (out, [h_1, ..., h_L])`` for diagnostics. Nothing is cached on the
module: the hidden activations are returned, never stored. For hooks
(:func:`actlab.probes.probe`), each activation is an :class:`~actlab.activations.ActivationModule`
(one per Hadamard branch) and the Hadamard product passes through an ``nn.Identity`` named
``product``, so ``probe(net, pattern=r"product$")`` sees the representation itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actlab.activations import Activation, get_activation

__all__ = [
    "HadamardLayer",
    "DenseBlock",
    "ConvBlock",
    "Network",
    "HADAMARD_PLACEMENTS",
    "MINATAR_SIZE",
    "mlp_qnet",
    "minatar_net",
    "mlp_parameter_count",
    "minatar_parameter_count",
    "matched_hidden",
    "matched_minatar_width",
]

HADAMARD_PLACEMENTS = ("none", "last", "all")
MINATAR_SIZE = 10
"""Side of a MinAtar observation (10 x 10 cells)."""
CONV_CHANNELS = 16
"""Channels of MinAtar's reference convolution (3 x 3, stride 1, no padding)."""


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(hidden)
    if not widths:
        raise ValueError("hidden must name at least one hidden width, got ()")
    for width in widths:
        _check_int("every hidden width", width)
    return widths


def _check_placement(hadamard: str, allowed: Sequence[str] = HADAMARD_PLACEMENTS) -> str:
    if hadamard not in allowed:
        raise ValueError(f"hadamard must be one of {tuple(allowed)}, got {hadamard!r}")
    return hadamard


# --------------------------------------------------------------------------------------------
# Layers


class DenseBlock(nn.Module):
    """A plain hidden layer ``h = phi(LN(W x + b))`` (LN only with ``layer_norm=True``).

    Args:
        in_features: Input width (>= 1).
        out_features: Output width, the number of units (>= 1).
        activation: Registry name or :class:`~actlab.activations.Activation`.
        layer_norm: LayerNorm (with its affine parameters) between the affine map and phi.

    Shapes: ``(B, in_features) -> (B, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str | Activation,
        layer_norm: bool = False,
    ):
        super().__init__()
        _check_int("in_features", in_features)
        _check_int("out_features", out_features)
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.LayerNorm(out_features) if layer_norm else nn.Identity()
        self.act = get_activation(activation).module()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.linear(x)))

    def stacked(self, params: Mapping[str, Tensor], prefix: str, x: Tensor) -> Tensor:
        """E members at once: ``x`` ``(E, B, in)``, ``params[prefix + name]`` ``(E, *shape)``
        -> ``(E, B, out)``; ``z_m = x_m W_m^T + b_m`` by one batched product."""
        w, b = params[prefix + "linear.weight"], params[prefix + "linear.bias"]
        z = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
        if isinstance(self.norm, nn.LayerNorm):
            z = _stacked_layer_norm(z, params, prefix + "norm.", self.norm.eps)
        return _stacked_activation(self.act, params, prefix + "act.", z)

    @staticmethod
    def parameter_count(in_features: int, out_features: int, layer_norm: bool = False) -> int:
        """``(in + 1) out`` for W and b, plus ``2 out`` for the LayerNorm's gain and bias.

        (Learnable activation parameters, PReLU's slope, are not counted.)
        """
        return (in_features + 1) * out_features + (2 * out_features if layer_norm else 0)


class HadamardLayer(nn.Module):
    """``h = phi(W1 x + b1) * phi(W2 x + b2)``, two independently parameterised branches.

    Each branch is a :class:`DenseBlock` (``branch1``, ``branch2``) with its own ``nn.Linear``
    (PyTorch's default initialisation, drawn one after the other), its own LayerNorm when
    ``layer_norm=True`` (``phi(LN(W x + b))``, the PQN variant) and its own activation module.

    Args:
        in_features: Input width (>= 1).
        out_features: Output width, the number of units of ``h`` (>= 1).
        activation: Registry name or :class:`~actlab.activations.Activation`; the same phi for
            both branches.
        layer_norm: A LayerNorm before each branch's activation.

    Shapes: ``(B, in_features) -> (B, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str | Activation,
        layer_norm: bool = False,
    ):
        super().__init__()
        self.branch1 = DenseBlock(in_features, out_features, activation, layer_norm)
        self.branch2 = DenseBlock(in_features, out_features, activation, layer_norm)
        self.product = nn.Identity()  # a hook site for the representation h itself

    def forward(self, x: Tensor) -> Tensor:
        return self.product(self.branch1(x) * self.branch2(x))

    def stacked(self, params: Mapping[str, Tensor], prefix: str, x: Tensor) -> Tensor:
        """E members at once, ``(E, B, in) -> (E, B, out)`` (see :meth:`DenseBlock.stacked`)."""
        h1 = self.branch1.stacked(params, prefix + "branch1.", x)
        return h1 * self.branch2.stacked(params, prefix + "branch2.", x)

    @staticmethod
    def parameter_count(in_features: int, out_features: int, layer_norm: bool = False) -> int:
        """Twice a plain layer's: ``2 (in + 1) out``, plus ``4 out`` with LayerNorms."""
        return 2 * DenseBlock.parameter_count(in_features, out_features, layer_norm)


class ConvBlock(nn.Module):
    """MinAtar's convolutional layer: ``phi(LN(conv(x)))`` flattened.

    ``Conv2d(in_channels, 16, 3, stride=1)`` without padding; with ``layer_norm=True`` a
    LayerNorm over the 16 channels at each position (what purejaxql's ``nn.LayerNorm`` does on
    its channels-last feature maps), then phi, then flatten.

    Shapes: ``(B, C, S, S) -> (B, 16 (S - 2)^2)``; for MinAtar ``S = 10``: ``(B, 1024)``. A unit
    of the flattened output is one channel at one position (reshape to ``(B, 16, 8, 8)`` for
    per-channel statistics).
    """

    def __init__(self, in_channels: int, activation: str | Activation, layer_norm: bool = False):
        super().__init__()
        _check_int("in_channels", in_channels)
        self.conv = nn.Conv2d(in_channels, CONV_CHANNELS, kernel_size=3, stride=1)
        self.norm = nn.LayerNorm(CONV_CHANNELS) if layer_norm else None
        self.act = get_activation(activation).module()

    def forward(self, x: Tensor) -> Tensor:
        z = self.conv(x)  # (B, 16, S-2, S-2)
        if self.norm is not None:
            z = self.norm(z.movedim(1, -1)).movedim(-1, 1)
        return self.act(z).flatten(1)

    def stacked(self, params: Mapping[str, Tensor], prefix: str, x: Tensor) -> Tensor:
        """E members at once: ``(E, B, C, S, S) -> (E, B, 16 (S-2)^2)``.

        One ``conv2d`` per member, stacked: the exact kernel of a member alone, and on CPU
        faster than one grouped convolution over the E members side by side (measured 1.1 ms
        against 2.9 ms for E = 6, B = 128, C = 4).
        """
        w, b = params[prefix + "conv.weight"], params[prefix + "conv.bias"]  # (E, 16, C, 3, 3)
        z = torch.stack([F.conv2d(x[m], w[m], b[m]) for m in range(x.shape[0])])
        if self.norm is not None:
            z = z.movedim(2, -1)  # (E, B, S-2, S-2, 16)
            z = _stacked_layer_norm(z, params, prefix + "norm.", self.norm.eps).movedim(-1, 2)
        return _stacked_activation(self.act, params, prefix + "act.", z).flatten(2)

    @staticmethod
    def parameter_count(in_channels: int, layer_norm: bool = False) -> int:
        """``16 (9 C + 1)``, plus 32 with the LayerNorm."""
        return CONV_CHANNELS * (9 * in_channels + 1) + (2 * CONV_CHANNELS if layer_norm else 0)


# --------------------------------------------------------------------------------------------
# Networks


class Network(nn.Module):
    """Hidden blocks ``hidden[0], ..., hidden[L-1]`` then an affine ``head``.

    ``out = head(h_L)``, ``h_l = hidden[l-1](h_{l-1})``, ``h_0 = x``. Build with
    :func:`mlp_qnet` or :func:`minatar_net`.
    """

    def __init__(self, hidden: Sequence[nn.Module], head: nn.Linear):
        super().__init__()
        self.hidden = nn.ModuleList(hidden)
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.hidden:
            x = layer(x)
        return self.head(x)

    def forward_with_hidden(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(out, [h_1, ..., h_L])``: the output ``(B, n_outputs)`` and every hidden layer's
        output ``(B, units_l)``, input side first; ``h_L`` is the representation."""
        hidden = []
        for layer in self.hidden:
            x = layer(x)
            hidden.append(x)
        return self.head(x), hidden

    def forward_stacked(self, params: Mapping[str, Tensor], x: Tensor, with_hidden: bool = False):
        """E members at once, parameters stacked ``name -> (E, *shape)`` (from
        :func:`actlab.rl.ensemble.stack`): ``x`` ``(E, B, ...)`` -> ``(E, B, n_outputs)``, and
        with ``with_hidden`` the list of ``h_l`` ``(E, B, units_l)``.

        The same arithmetic as :meth:`forward` for each member, written with batched kernels
        (``baddbmm``, one ``conv2d`` per member) instead of ``torch.vmap`` over ``functional_call``,
        whose per-call overhead dominated the small networks of the agents. Called by
        :func:`actlab.rl.ensemble.ensemble_call`; ``self`` may live on the ``meta`` device (only
        its structure is read).
        """
        hidden = []
        for l, layer in enumerate(self.hidden):
            x = layer.stacked(params, f"hidden.{l}.", x)
            hidden.append(x)
        w, b = params["head.weight"], params["head.bias"]
        out = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
        return (out, hidden) if with_hidden else out


def _stacked_layer_norm(z: Tensor, params: Mapping[str, Tensor], prefix: str, eps: float):
    """LayerNorm over the last axis of ``z`` ``(E, ..., n)`` with member m's gain and bias
    ``(E, n)``: ``(z - mean) / sqrt(var + eps) * g_m + beta_m``."""
    g, beta = params[prefix + "weight"], params[prefix + "bias"]
    shape = (g.shape[0],) + (1,) * (z.dim() - 2) + (g.shape[1],)
    return F.layer_norm(z, z.shape[-1:], eps=eps) * g.view(shape) + beta.view(shape)


def _stacked_activation(act: nn.Module, params: Mapping[str, Tensor], prefix: str, z: Tensor):
    """``phi(z)`` for ``z`` ``(E, ...)``, member m with its own learnable activation
    parameters (scalars stacked to ``(E,)``, broadcast over the member's slice)."""
    theta = []
    k = 0
    while (name := f"{prefix}params.{k}") in params:
        p = params[name]
        theta.append(p.view(p.shape[0], *([1] * (z.dim() - 1))))
        k += 1
    return act.activation.fn(z, *theta)


def _hidden_layer(
    in_features: int, out_features: int, activation: Activation, layer_norm: bool, hadamard: bool
) -> nn.Module:
    layer = HadamardLayer if hadamard else DenseBlock
    return layer(in_features, out_features, activation, layer_norm)


def _hadamard_mask(n_layers: int, hadamard: str) -> list[bool]:
    """Which of ``n_layers`` hidden layers are Hadamard under a placement."""
    return [
        hadamard == "all" or (hadamard == "last" and l == n_layers - 1) for l in range(n_layers)
    ]


def mlp_qnet(
    obs_dim: int,
    n_outputs: int,
    hidden: Sequence[int] = (120, 84),
    activation: str | Activation = "relu",
    hadamard: str = "none",
    layer_norm: bool = False,
) -> Network:
    """The classic-control MLP (CleanRL's 120 -> 84 torso) with a linear head.

    Args:
        obs_dim: Observation width (>= 1).
        n_outputs: Head width: actions for a Q-network, or whatever the agent reads.
        hidden: Hidden widths, input side first.
        activation: Registry name or Activation, for every hidden layer.
        hadamard: ``"none"``, ``"last"`` (the representation layer is a :class:`HadamardLayer`)
            or ``"all"`` (every hidden layer is).
        layer_norm: LayerNorm before every hidden activation (PQN).

    Shapes: ``(B, obs_dim) -> (B, n_outputs)``.
    """
    _check_int("obs_dim", obs_dim)
    _check_int("n_outputs", n_outputs)
    widths = _check_hidden(hidden)
    _check_placement(hadamard)
    act = get_activation(activation)
    sizes = (obs_dim, *widths)
    mask = _hadamard_mask(len(widths), hadamard)
    layers = [
        _hidden_layer(sizes[l], sizes[l + 1], act, layer_norm, mask[l]) for l in range(len(widths))
    ]
    return Network(layers, nn.Linear(widths[-1], n_outputs))


def minatar_net(
    in_channels: int,
    n_outputs: int,
    activation: str | Activation = "relu",
    hadamard: str = "none",
    layer_norm: bool = False,
    hidden: int = 128,
) -> Network:
    """MinAtar's reference network: ``Conv(16, 3x3, stride 1) -> phi -> flatten ->
    Linear(hidden) -> phi -> head``.

    Args:
        in_channels: Channels C of the ``(B, C, 10, 10)`` observation.
        n_outputs: Head width.
        activation: Registry name or Activation, for the convolution and the dense layer.
        hadamard: ``"none"`` or ``"last"`` (the dense representation layer is a
            :class:`HadamardLayer`; the convolution stays plain).
        layer_norm: LayerNorm before each activation (purejaxql's PQN network).
        hidden: Width of the representation layer (128 in MinAtar's network).

    Shapes: ``(B, in_channels, 10, 10) -> (B, n_outputs)``; hidden outputs ``(B, 1024)`` and
    ``(B, hidden)``.
    """
    _check_int("n_outputs", n_outputs)
    _check_int("hidden", hidden)
    _check_placement(hadamard, ("none", "last"))
    act = get_activation(activation)
    conv = ConvBlock(in_channels, act, layer_norm)
    flat = CONV_CHANNELS * (MINATAR_SIZE - 2) ** 2
    dense = _hidden_layer(flat, hidden, act, layer_norm, hadamard == "last")
    return Network([conv, dense], nn.Linear(hidden, n_outputs))


# --------------------------------------------------------------------------------------------
# Parameter counts and matched widths


def mlp_parameter_count(
    obs_dim: int,
    n_outputs: int,
    hidden: Sequence[int] = (120, 84),
    hadamard: str = "none",
    layer_norm: bool = False,
) -> int:
    """Parameters of :func:`mlp_qnet` (closed form): the hidden layers' counts
    (:meth:`DenseBlock.parameter_count` or :meth:`HadamardLayer.parameter_count`) plus the head's
    ``(width_L + 1) n_outputs``."""
    widths = _check_hidden(hidden)
    _check_placement(hadamard)
    sizes = (obs_dim, *widths)
    total = (widths[-1] + 1) * n_outputs
    for l, is_hadamard in enumerate(_hadamard_mask(len(widths), hadamard)):
        layer = HadamardLayer if is_hadamard else DenseBlock
        total += layer.parameter_count(sizes[l], sizes[l + 1], layer_norm)
    return total


def minatar_parameter_count(
    in_channels: int,
    n_outputs: int,
    hadamard: str = "none",
    layer_norm: bool = False,
    hidden: int = 128,
) -> int:
    """Parameters of :func:`minatar_net` (closed form): convolution + dense layer + head."""
    _check_placement(hadamard, ("none", "last"))
    flat = CONV_CHANNELS * (MINATAR_SIZE - 2) ** 2
    dense = HadamardLayer if hadamard == "last" else DenseBlock
    return (
        ConvBlock.parameter_count(in_channels, layer_norm)
        + dense.parameter_count(flat, hidden, layer_norm)
        + (hidden + 1) * n_outputs
    )


def _nearest(count, target: int, start: int) -> int:
    """The integer ``w >= start`` minimising ``|count(w) - target|`` for ``count`` increasing in
    ``w``; ties go to the larger ``w``."""
    w = start
    while count(w + 1) <= target:
        w += 1
    # count(w) <= target < count(w + 1), or w == start with count(start) > target
    below, above = target - count(w), count(w + 1) - target
    return w + 1 if above <= below else w


def matched_hidden(
    obs_dim: int,
    n_outputs: int,
    hidden: Sequence[int] = (120, 84),
    hadamard: str = "last",
    layer_norm: bool = False,
) -> tuple[int, ...]:
    """Hidden widths of a plain :func:`mlp_qnet` whose parameter count is nearest the Hadamard
    network's (``mlp_parameter_count(..., hidden, hadamard)``); ties to the wider network.

    * ``hadamard="last"``: only the representation layer widens, ``hidden[:-1] + (w,)``.
    * ``hadamard="all"``: every layer widens by a common factor, ``round(h_l * w / h_L)`` for
      the last width ``w`` (at least ``h_l``), so the torso keeps its shape.
    * ``hadamard="none"``: ``hidden`` unchanged.
    """
    widths = _check_hidden(hidden)
    _check_placement(hadamard)
    target = mlp_parameter_count(obs_dim, n_outputs, widths, hadamard, layer_norm)

    def shape(w: int) -> tuple[int, ...]:
        if hadamard == "all":
            return tuple(max(h, round(h * w / widths[-1])) for h in widths[:-1]) + (w,)
        return (*widths[:-1], w)

    def count(w: int) -> int:
        return mlp_parameter_count(obs_dim, n_outputs, shape(w), "none", layer_norm)

    return shape(_nearest(count, target, widths[-1]))


def matched_minatar_width(
    in_channels: int, n_outputs: int, layer_norm: bool = False, hidden: int = 128
) -> int:
    """Width of a plain :func:`minatar_net` representation layer whose parameter count is
    nearest that of the Hadamard network with ``hidden`` units (ties to the wider)."""
    _check_int("hidden", hidden)
    target = minatar_parameter_count(in_channels, n_outputs, "last", layer_norm, hidden)

    def count(w: int) -> int:
        return minatar_parameter_count(in_channels, n_outputs, "none", layer_norm, w)

    return _nearest(count, target, hidden)
