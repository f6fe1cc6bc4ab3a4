"""Typed network specs: the only shape downstream code ever sees.

Every spec is a frozen dataclass built by bpcalc.network.parse from a checked YAML file; the
engine trusts these objects and re-checks nothing. This module holds types and the names of
the kinds a file may use, no parsing, so any module can import it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from bpcalc import activations
from bpcalc.errors import Location

if TYPE_CHECKING:
    from bpcalc.network.yaml_source import SourceDoc


ACTIVATIONS = activations.kinds()

LOSSES = ("mse", "half_mse", "sse", "half_sse", "cross_entropy", "binary_cross_entropy")

PARAMETRIC = ("dense", "conv2d")

LAYER_TYPES = (
    "dense",
    "conv2d",
    "maxpool2d",
    "avgpool2d",
    "flatten",
    "dropout",
    "batchnorm",
    "layernorm",
    "residual",
    "embedding",
    "rnn",
    "attention",
    *ACTIVATIONS,
)

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ActivationSpec:
    kind: str  # one of ACTIVATIONS
    options: tuple[tuple[str, float | str], ...] = ()  # the unit's own settings (LeakyReLU's slope)

    def unit(self) -> activations.Activation:
        """The activation unit with these settings."""
        return activations.get(self.kind, **dict(self.options))


@dataclass(frozen=True)
class LayerSpec:
    name: str
    type: str
    where: Location
    in_shape: tuple[int, ...]  # per sample, as computed (channels first for images)
    out_shape: tuple[int, ...]
    squeezed_in: bool = (
        False  # an image shown without its single channel axis, as the user wrote it
    )
    squeezed_out: bool = False
    activation: ActivationSpec | None = None  # applied after the layer's own op
    freeze: frozenset[str] = frozenset()  # parameters not updated

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The layer's parameters (and carried statistics) as the network gives them."""
        return {}

    @property
    def inner(self) -> tuple[LayerSpec, ...]:
        """The layers inside a block (a residual block's f), in order; none for a layer."""
        return ()

    def with_inner(self, inner: tuple[LayerSpec, ...]) -> LayerSpec:
        """The block with these inner layers (a layer has none to replace)."""
        return self

    @property
    def sequence_out(self) -> bool:
        """The output is a sequence: T positions of d features, (T, d) per sample."""
        return len(self.out_shape) == 2


@dataclass(frozen=True)
class DenseSpec(LayerSpec):
    weights: np.ndarray = field(default=None)  # type: ignore[assignment]  # as written: (out, in) or (in, out)
    # (out,), or (1,) when shared; None: no bias at all (bias: none), z = W·x
    bias: np.ndarray | None = None
    layout: str = "out_in"  # "out_in": z = W·x + b;  "in_out": z = x·W + b
    bias_shared: bool = False
    activation: ActivationSpec | None = None
    freeze: frozenset[str] = frozenset()
    weights_shown: tuple[int, ...] = ()  # the shape as written: a lone number stays a number
    bias_shown: tuple[int, ...] = ()

    @property
    def params(self) -> dict[str, np.ndarray]:
        if self.bias is None:
            return {"weights": self.weights}
        return {"weights": self.weights, "bias": self.bias}


@dataclass(frozen=True)
class Conv2dSpec(LayerSpec):
    kernel: np.ndarray = field(default=None)  # type: ignore[assignment]  # (O, C, kh, kw) internally
    bias: np.ndarray | None = None  # (O,); None: no bias at all (bias: none)
    kernel_2d: bool = False  # written as one kh x kw matrix: shown and reported that way
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    flip: bool = False  # True: textbook convolution (kernel rotated 180°); False: cross-correlation
    activation: ActivationSpec | None = None
    freeze: frozenset[str] = frozenset()

    @property
    def params(self) -> dict[str, np.ndarray]:
        if self.bias is None:
            return {"kernel": self.kernel}
        return {"kernel": self.kernel, "bias": self.bias}


@dataclass(frozen=True)
class PoolSpec(LayerSpec):
    size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)

    @property
    def kind(self) -> str:
        return "max" if self.type == "maxpool2d" else "avg"


@dataclass(frozen=True)
class FlattenSpec(LayerSpec):
    pass


@dataclass(frozen=True)
class ActivationLayerSpec(LayerSpec):
    activation: ActivationSpec = field(default=None)  # type: ignore[assignment]


@dataclass(frozen=True)
class DropoutSpec(LayerSpec):
    """Inverted dropout: a = x ⊙ mask / (1 − p); mask 1 = kept, 0 = dropped."""

    p: float = 0.5  # probability of dropping a unit, 0 ≤ p < 1
    mask: np.ndarray | None = None  # (M, *in_shape): M = 1 (every sample) or N (one per sample)
    mask_where: Location | None = None
    seed: int | None = None  # None: the network's top-level seed

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {}


@dataclass(frozen=True)
class BatchNormSpec(LayerSpec):
    """Batch normalization in training mode, per feature (N, F) or per channel (N, C, H, W)."""

    gamma: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F,) or (C,)
    beta: np.ndarray = field(default=None)  # type: ignore[assignment]
    running_mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    running_var: np.ndarray = field(default=None)  # type: ignore[assignment]
    eps: float = 1e-5
    momentum: float = 0.1  # running = (1 − momentum)·running + momentum·batch statistic
    activation: ActivationSpec | None = None
    freeze: frozenset[str] = frozenset()

    @property
    def features(self) -> int:
        return self.in_shape[0]

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The trained γ and β, then the running statistics (carried, not trained)."""
        return {
            "gamma": self.gamma,
            "beta": self.beta,
            "running_mean": self.running_mean,
            "running_var": self.running_var,
        }


@dataclass(frozen=True)
class EmbeddingSpec(LayerSpec):
    """Token ids (T,) in, rows of E (vocab x dim) out: a_t = E[x_t], (T, dim)."""

    weights: np.ndarray = field(default=None)  # type: ignore[assignment]  # E: (vocab, dim)

    @property
    def vocab(self) -> int:
        return int(self.weights.shape[0])

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights}


@dataclass(frozen=True)
class RNNSpec(LayerSpec):
    """Elman RNN over a sequence (T, input): h_t = f(W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh).

    bias_form: "pytorch" (two biases b_ih and b_hh, as torch.nn.RNN) or "single" (one b, as
    textbooks write it); the unused one is absent from params."""

    weights_ih: np.ndarray = field(default=None)  # type: ignore[assignment]  # (hidden, input)
    weights_hh: np.ndarray = field(default=None)  # type: ignore[assignment]  # (hidden, hidden)
    bias_ih: np.ndarray | None = None  # (hidden,), bias_form "pytorch"
    bias_hh: np.ndarray | None = None
    bias: np.ndarray | None = None  # (hidden,), bias_form "single"
    h0: np.ndarray = field(default=None)  # type: ignore[assignment]  # (hidden,), given, not trained
    nonlinearity: str = "tanh"  # tanh | relu
    returns: str = "all"  # all: h_1..h_T (T, hidden); last: h_T (hidden,)

    @property
    def hidden(self) -> int:
        return int(self.weights_hh.shape[0])

    @property
    def bias_form(self) -> str:
        return "single" if self.bias is not None else "pytorch"

    @property
    def params(self) -> dict[str, np.ndarray]:
        out = {"weights_ih": self.weights_ih, "weights_hh": self.weights_hh}
        if self.bias is not None:
            out["bias"] = self.bias
        else:
            out["bias_ih"] = self.bias_ih  # type: ignore[assignment]
            out["bias_hh"] = self.bias_hh  # type: ignore[assignment]
        return out


@dataclass(frozen=True)
class AttentionSpec(LayerSpec):
    """Scaled dot-product self-attention over a sequence X (T, d), one head or `heads`:
    q = X·W_qᵀ + b_q, k, v alike; scores = q·kᵀ·scale; weights = softmax of each row
    (causal: positions after the row's masked to exactly 0); context = weights·v;
    a = context·W_oᵀ + b_o (or a = context without an output projection)."""

    weights_q: np.ndarray = field(default=None)  # type: ignore[assignment]  # (d_k·heads, d)
    weights_k: np.ndarray = field(default=None)  # type: ignore[assignment]
    weights_v: np.ndarray = field(default=None)  # type: ignore[assignment]  # (d_v·heads, d)
    weights_o: np.ndarray | None = None  # (d_out, d_v·heads), optional
    bias_q: np.ndarray | None = None  # (d_k·heads,), optional: all four biases or none
    bias_k: np.ndarray | None = None
    bias_v: np.ndarray | None = None
    bias_o: np.ndarray | None = None
    causal: bool = False
    heads: int = 1
    mask: np.ndarray | None = None  # (T, T) of 0 and 1: 1 where query t may attend to key s
    scale: float | None = None  # None: 1/√d_k

    @property
    def params(self) -> dict[str, np.ndarray]:
        out = {
            "weights_q": self.weights_q,
            "weights_k": self.weights_k,
            "weights_v": self.weights_v,
        }
        if self.weights_o is not None:
            out["weights_o"] = self.weights_o
        for key, b in (
            ("bias_q", self.bias_q),
            ("bias_k", self.bias_k),
            ("bias_v", self.bias_v),
            ("bias_o", self.bias_o),
        ):
            if b is not None:
                out[key] = b
        return out


@dataclass(frozen=True)
class LayerNormSpec(LayerSpec):
    """Layer normalization of each sample over its last `axes` axes (torch.nn.LayerNorm with
    normalized_shape = in_shape[-axes:]), the same in training and evaluation."""

    gamma: np.ndarray = field(default=None)  # type: ignore[assignment]  # in_shape[-axes:]
    beta: np.ndarray = field(default=None)  # type: ignore[assignment]
    axes: int = 1  # how many trailing axes are normalized together
    eps: float = 1e-5
    activation: ActivationSpec | None = None
    freeze: frozenset[str] = frozenset()
    # the checker's slip: σ² divided by D − 1 (unbiased) instead of D; never read from YAML
    unbiased: bool = False

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {"gamma": self.gamma, "beta": self.beta}


@dataclass(frozen=True)
class ResidualSpec(LayerSpec):
    """A residual block: a = x + f(x), f its own layers in order (named <block>.<inner>),
    whose output has the shape of x."""

    layers: tuple[LayerSpec, ...] = ()
    # the checker's slip: the skip path dropped from ∂L/∂x; never read from YAML
    skip_grad: bool = True

    @property
    def inner(self) -> tuple[LayerSpec, ...]:
        return self.layers

    def with_inner(self, inner: tuple[LayerSpec, ...]) -> LayerSpec:
        return replace(self, layers=tuple(inner))


def flat_layers(layers: tuple[LayerSpec, ...] | list[LayerSpec]) -> list[LayerSpec]:
    """Every layer, each block followed by the layers inside it (depth first)."""
    out: list[LayerSpec] = []
    for layer in layers:
        out.append(layer)
        out += flat_layers(layer.inner)
    return out


def map_layers(
    layers: tuple[LayerSpec, ...] | list[LayerSpec], fn: Callable[[LayerSpec], LayerSpec]
) -> tuple[LayerSpec, ...]:
    """fn applied to every layer, blocks rebuilt around their (mapped) inner layers."""
    out = []
    for layer in layers:
        if layer.inner:
            layer = layer.with_inner(map_layers(layer.inner, fn))
        out.append(fn(layer))
    return tuple(out)


@dataclass(frozen=True)
class LossSpec:
    kind: str
    reduction: str = "mean"  # over the batch: "mean" or "sum"
    # a sequence output (T, K): the per-position losses' "mean" or "sum" over the T positions;
    # None: the output is not a sequence
    positions: str | None = None


@dataclass(frozen=True)
class OptimizerSpec:
    """The update rule and its hyper-parameters; defaults are PyTorch's (torch.optim)."""

    type: str = "sgd"  # one of OPTIMIZERS
    lr: float = 0.01
    momentum: float = 0.9  # momentum, nesterov: μ
    dampening: float = 0.0  # momentum: v = μ·v + (1 − dampening)·g (PyTorch's SGD)
    alpha: float = 0.99  # rmsprop: smoothing constant of the squared-gradient average
    beta1: float = 0.9  # adam
    beta2: float = 0.999  # adam
    eps: float = 1e-8  # rmsprop, adam: added to the denominator
    clip_norm: float | None = None  # gradients scaled to this global norm when above it


@dataclass(frozen=True)
class BatchingSpec:
    """Which samples each step uses (see bpcalc.batching)."""

    mode: str = "batch"  # batch | sgd | minibatch
    batch_size: int | None = None  # minibatch only (sgd: 1; batch: all)
    shuffle: bool = False
    seed: int = 0  # for shuffle (and the default for dropout layers without their own seed)


@dataclass(frozen=True)
class RegSpec:
    """Weight penalties: λ₂/2 · Σθ² (L2) and λ₁ · Σ|θ| (L1) over a layer's weights or kernel,
    and over its bias too when include_bias is true."""

    l2: float = 0.0
    l1: float = 0.0
    include_bias: bool = False
    where: Location | None = None

    @property
    def active(self) -> bool:
        return self.l2 > 0 or self.l1 > 0


@dataclass(frozen=True)
class DataSet:
    """Samples batch-first, shaped as the network's input and output."""

    inputs: np.ndarray  # (N, *input_shape)
    targets: np.ndarray  # (N, *output_shape)
    classes: np.ndarray | None  # (N,) when the targets were class indices
    where: Location


@dataclass(frozen=True)
class TrainSpec:
    epochs: int | None = None
    batch_size: int | None = None
    shuffle: bool | None = None
    seed: int | None = None
    test: DataSet | None = None


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    file: str
    inputs: np.ndarray  # (N, *input_shape) with input_shape channels-first for images
    targets: np.ndarray  # (N, *output_shape), one-hot for class indices
    target_classes: np.ndarray | None  # (N,) when the user gave class indices
    batched: bool  # False: `input:`/`target:`; values are shown without the batch axis
    input_squeezed: bool  # an image given as (H, W): shown without its channel axis
    layers: tuple[LayerSpec, ...]
    loss: LossSpec
    optimizer: OptimizerSpec
    doc: SourceDoc | None = None
    batching: BatchingSpec = BatchingSpec()
    # layer name -> the penalty that applies to it (global or the layer's own); active ones only
    regularization: dict[str, RegSpec] = field(default_factory=dict)
    # `bpcalc train`'s defaults and test data (the file's train: section)
    train: TrainSpec | None = None

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape

    @property
    def all_layers(self) -> list[LayerSpec]:
        """Every layer, the layers inside blocks included (see flat_layers)."""
        return flat_layers(self.layers)

    def with_layer(self, new: LayerSpec) -> NetworkSpec:
        """The network with `new` in place of the layer of the same name, wherever it is."""
        layers = map_layers(self.layers, lambda layer: new if layer.name == new.name else layer)
        return replace(self, layers=layers)

    @property
    def output_activation(self) -> str:
        last = self.layers[-1]
        act = getattr(last, "activation", None)
        return act.kind if act is not None else "identity"
