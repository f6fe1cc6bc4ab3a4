"""Typed network specs: the only shape downstream code ever sees.

Every spec is a frozen dataclass built by bpcalc.network.parse from a checked YAML file; the
engine trusts these objects and re-checks nothing. This module holds types and the names of
the kinds a file may use, no parsing, so any module can import it.

Each layer kind's own spec (DenseSpec, RNNSpec, ...) lives beside its unit, in
bpcalc/layers/<kind>/spec.py, and is given here by name on first use (`from
bpcalc.network.types import DenseSpec` works): creating a frozen dataclass costs about half a
millisecond at start-up, so a network pays only for the kinds of layer it has.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import import_module
from typing import TYPE_CHECKING, Any

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

# each layer kind's spec -> the unit folder whose spec.py defines it (imported on first use)
LAYER_SPECS = {
    "DenseSpec": "dense",
    "Conv2dSpec": "conv2d",
    "PoolSpec": "pool",
    "FlattenSpec": "flatten",
    "ActivationLayerSpec": "activation",
    "DropoutSpec": "dropout",
    "BatchNormSpec": "batchnorm",
    "LayerNormSpec": "layernorm",
    "ResidualSpec": "residual",
    "EmbeddingSpec": "embedding",
    "RNNSpec": "rnn",
    "AttentionSpec": "attention",
}


def __getattr__(name: str) -> Any:
    """A layer kind's spec class, from its unit's spec.py (see LAYER_SPECS)."""
    if name in LAYER_SPECS:
        return getattr(import_module(f"bpcalc.layers.{LAYER_SPECS[name]}.spec"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class ActivationSpec:
    """An activation and its settings, as the network file names them."""

    kind: str  # one of ACTIVATIONS
    options: tuple[tuple[str, float | str], ...] = ()  # the unit's own settings (LeakyReLU's slope)

    def unit(self) -> activations.Activation:
        """The activation unit with these settings."""
        return activations.get(self.kind, **dict(self.options))


@dataclass(frozen=True)
class LayerSpec:
    """What every layer spec has: its name, YAML type, place in the file, the shapes in and out
    (per sample), an activation after it and its frozen parameters. Each kind adds its own."""

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
    """The loss, its reduction over the batch and, for a sequence output, over the positions."""

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
    """The file's train: section: `bpcalc train`'s defaults and its test data."""

    epochs: int | None = None
    batch_size: int | None = None
    shuffle: bool | None = None
    seed: int | None = None
    test: DataSet | None = None


@dataclass(frozen=True)
class NetworkSpec:
    """A checked network: its samples, layers, loss, optimizer, batches and penalties."""

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
