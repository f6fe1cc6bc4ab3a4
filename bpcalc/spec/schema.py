"""Typed, validated network specs: the only shape downstream code ever sees.

Everything a user can get wrong is found here, with a location: unknown keys, wrong types,
ragged matrices, shapes that do not fit from one layer to the next, targets that do not fit
the output. The engine trusts these objects and re-checks nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bpcalc import batching
from bpcalc import budget as _budget
from bpcalc.errors import Location, SpecError
from bpcalc.spec import initializers as _init
from bpcalc.spec import values as V
from bpcalc.spec.load import SourceDoc, Src, load_yaml_file

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")
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
    *ACTIVATIONS,
)
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ActivationSpec:
    kind: str  # one of ACTIVATIONS
    slope: float = 0.01  # leaky_relu only


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


@dataclass(frozen=True)
class DenseSpec(LayerSpec):
    weights: np.ndarray = field(default=None)  # type: ignore[assignment]  # as written: (out, in) or (in, out)
    bias: np.ndarray = field(default=None)  # type: ignore[assignment]  # (out,), or (1,) when shared
    layout: str = "out_in"  # "out_in": z = W·x + b;  "in_out": z = x·W + b
    bias_shared: bool = False
    activation: ActivationSpec | None = None
    freeze: frozenset[str] = frozenset()
    weights_shown: tuple[int, ...] = ()  # the shape as written: a lone number stays a number
    bias_shown: tuple[int, ...] = ()

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "bias": self.bias}


@dataclass(frozen=True)
class Conv2dSpec(LayerSpec):
    kernel: np.ndarray = field(default=None)  # type: ignore[assignment]  # (O, C, kh, kw) internally
    bias: np.ndarray = field(default=None)  # type: ignore[assignment]  # (O,)
    kernel_2d: bool = False  # written as one kh x kw matrix: shown and reported that way
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    flip: bool = False  # True: textbook convolution (kernel rotated 180°); False: cross-correlation
    activation: ActivationSpec | None = None
    freeze: frozenset[str] = frozenset()

    @property
    def params(self) -> dict[str, np.ndarray]:
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
class LossSpec:
    kind: str
    reduction: str = "mean"  # over the batch: "mean" or "sum"


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
    # bpcalc.spec.train_section.TrainSpec: `bpcalc train`'s defaults and test data
    train: Any = None

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape

    @property
    def output_activation(self) -> str:
        last = self.layers[-1]
        act = getattr(last, "activation", None)
        return act.kind if act is not None else "identity"


TOP_KEYS = (
    "name",
    "input",
    "inputs",
    "target",
    "targets",
    "layers",
    "loss",
    "learning_rate",
    "optimizer",
    "batch_size",
    "mode",
    "shuffle",
    "seed",
    "regularization",
    "train",
)


def load_network(path: str, *, data_dtype: Any = np.float64) -> NetworkSpec:
    """Read and validate a network YAML file (or "-" for standard input)."""
    doc = load_yaml_file(path)
    return parse_network(doc, data_dtype=data_dtype)


def parse_network(doc: SourceDoc, *, data_dtype: Any = np.float64) -> NetworkSpec:
    """The network's typed, checked spec. data_dtype: what data read from files becomes
    (bpcalc.data.load): float64 for `bpcalc step`, the training dtype for `bpcalc train`;
    numbers written in the YAML are float64 either way."""
    root = doc.root()
    V.check_keys(root, TOP_KEYS, ("layers", "loss"), "the network")
    data = root.value
    name = V.text(root.child("name"), "name") if "name" in data else _default_title(doc.file)

    inputs, batched, in_src = _parse_inputs(root, data_dtype)
    layers_src = root.child("layers")
    if not isinstance(layers_src.value, list) or not layers_src.value:
        raise layers_src.error(
            f"layers should be a non-empty list of layers, found {V.type_name(layers_src.value)}"
        )

    first_type = _peek_type(layers_src.child(0))
    inputs, input_shape, squeezed = _shape_input(inputs, first_type, in_src, batched)
    layers = _parse_layers(layers_src, input_shape, squeezed)

    loss = _parse_loss(root.child("loss"), layers[-1])
    optimizer = _parse_optimizer(root)
    targets, classes = _parse_targets(root, loss, layers[-1], inputs.shape[0], batched, data_dtype)
    batching_spec = _parse_batching(root, inputs.shape[0])
    check_batchnorm_batches(layers, batching_spec, inputs.shape[0])
    _check_dropout_masks(layers, inputs.shape[0])
    layers = _with_dropout_seeds(layers, batching_spec.seed)
    regularization = _parse_regularization(root, layers_src, layers)
    train = _parse_train_section(root, layers, loss, data_dtype) if "train" in data else None
    return NetworkSpec(
        name=name,
        file=doc.file,
        inputs=inputs,
        targets=targets,
        target_classes=classes,
        batched=batched,
        input_squeezed=squeezed,
        layers=tuple(layers),
        loss=loss,
        optimizer=optimizer,
        doc=doc,
        batching=batching_spec,
        regularization=regularization,
        train=train,
    )


def _default_title(file: str) -> str:
    return file.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _is_data_reference(value: Any) -> bool:
    """bpcalc.data.is_reference, without importing bpcalc.data (its readers and dataclass
    cost start-up time) for the networks that write their numbers inline (issue 7)."""
    return isinstance(value, dict) and "file" in value


def _parse_inputs(root: Src, data_dtype: Any = np.float64) -> tuple[np.ndarray, bool, Src]:
    data = root.value
    if "input" in data and "inputs" in data:
        raise root.child("inputs").error(
            "give either input: (one sample) or inputs: (a list of samples), not both", at_key=True
        )
    if "input" in data:
        src = root.child("input")
        if _is_data_reference(src.value):
            from bpcalc import data as _data

            return _data.load(src, "input", batched=False, dtype=data_dtype).values, False, src
        x = V.array(src, "input")
        return x[None, ...], False, src
    if "inputs" in data:
        src = root.child("inputs")
        if _is_data_reference(src.value):
            from bpcalc import data as _data

            return _data.load(src, "inputs", dtype=data_dtype).values, True, src
        if not isinstance(src.value, list):
            raise src.error(f"inputs should be a list of samples, found {V.type_name(src.value)}")
        x = V.array(src, "inputs")
        return x, True, src
    raise root.error(
        "the network is missing its input: add input: (one sample) or inputs: (a list of samples)"
    )


def _peek_type(src: Src) -> str:
    v = src.value
    if isinstance(v, dict) and isinstance(v.get("type"), str):
        return v["type"]
    return ""


def _shape_input(
    x: np.ndarray, first_type: str, src: Src, batched: bool
) -> tuple[np.ndarray, tuple[int, ...], bool]:
    """Batch-first input of the right rank for the first layer; returns (x, per-sample shape, squeezed)."""
    sample = x.shape[1:]
    if first_type in ("conv2d", "maxpool2d", "avgpool2d"):
        if len(sample) == 2:
            return x[:, None, :, :], (1, *sample), True
        if len(sample) == 3:
            return x, sample, False
        per = "each sample" if batched else "input"
        raise src.error(
            f"{per} of a network that starts with {first_type} should be an image (H, W) or (C, H, W); found shape {V._fmt(sample)}"
        )
    if len(sample) == 0:
        return x[:, None], (1,), False
    if first_type == "dense" and len(sample) != 1:
        per = "each sample" if batched else "input"
        raise src.error(
            f"{per} of a network that starts with dense should be a vector (a flat list); found shape {V._fmt(sample)}: add a flatten layer first"
            + (" (or flatten: true in the data reference)" if _is_data_reference(src.value) else "")
        )
    return x, sample, False


def _parse_layers(src: Src, input_shape: tuple[int, ...], squeezed: bool) -> list[LayerSpec]:
    counters: dict[str, int] = {}
    names: dict[str, Location] = {}
    shape, sq = input_shape, squeezed
    out: list[LayerSpec] = []
    for i in range(len(src.value)):
        lsrc = src.child(i)
        V.mapping(lsrc, f"layer {i}")
        if "type" not in lsrc.value:
            raise lsrc.error(
                f"layer {i} has no type; expected type: one of {', '.join(LAYER_TYPES)}"
            )
        ltype = V.choice(lsrc.child("type"), f"layer {i}'s type", LAYER_TYPES)
        counters[ltype] = counters.get(ltype, 0) + 1
        if "name" in lsrc.value:
            name = V.text(lsrc.child("name"), "a layer name")
            if not NAME_RE.match(name):
                raise lsrc.child("name").error(
                    f"layer name {name!r} should be letters, digits and _ (it becomes part of value names such as {name}.z)"
                )
        else:
            name = f"{ltype}{counters[ltype]}"
        if name in names:
            raise lsrc.child("name").error(
                f"two layers are named {name!r} (the other is at line {names[name].line}); layer names must be unique"
            )
        if name in ("loss", "loss_after", "grad", "new", "state", "input", "target"):
            raise lsrc.child("name").error(
                f"{name!r} is reserved for value names; choose another layer name"
            )
        names[name] = lsrc.loc
        layer = _LAYER_PARSERS[ltype](
            lsrc, name, ltype, shape, sq, f"layer {out[-1].name!r}" if out else "the input"
        )
        _budget.check_layer(src, i, layer, f"layer {out[-1].name!r}" if out else "the input")
        out.append(layer)
        shape, sq = layer.out_shape, layer.squeezed_out
    return out


def _frame(
    lsrc: Src,
    name: str,
    ltype: str,
    shape: tuple[int, ...],
    sq: bool,
    out_shape: tuple[int, ...] | None = None,
    squeezed_out: bool | None = None,
) -> dict[str, Any]:
    """The fields every LayerSpec has: where it stands, what goes in and comes out. By default
    the output has the input's shape, and an image shown without its channel axis stays so."""
    out = shape if out_shape is None else out_shape
    return {
        "name": name,
        "type": ltype,
        "where": lsrc.loc,
        "in_shape": shape,
        "out_shape": out,
        "squeezed_in": sq,
        "squeezed_out": sq if squeezed_out is None else squeezed_out,
    }


def _common(lsrc: Src, extra: tuple[str, ...]) -> None:
    if lsrc.value.get("type") in PARAMETRIC:  # a layer's own penalty, read by _parse_regularization
        extra = (*extra, "regularization")
    V.check_keys(
        lsrc,
        ("type", "name", *extra),
        ("type",),
        f"layer {lsrc.path[-1]} ({lsrc.value.get('type')})",
    )


def _activation(lsrc: Src, key: str = "activation") -> ActivationSpec | None:
    if key not in lsrc.value:
        return None
    kind = V.choice(lsrc.child(key), "activation", ACTIVATIONS)
    slope = 0.01
    if "slope" in lsrc.value:
        if kind != "leaky_relu":
            raise lsrc.child("slope").error("slope only applies to leaky_relu", at_key=True)
        slope = V.number(lsrc.child("slope"), "slope")
    return None if kind == "identity" else ActivationSpec(kind, slope)


def _freeze(lsrc: Src, params: tuple[str, ...]) -> frozenset[str]:
    if "freeze" not in lsrc.value:
        return frozenset()
    fsrc = lsrc.child("freeze")
    v = fsrc.value
    if v == "all":
        return frozenset(params)
    if isinstance(v, str):
        v = [v]
        items = [fsrc]
    elif isinstance(v, list):
        items = [fsrc.child(i) for i in range(len(v))]
    else:
        raise fsrc.error(
            f"freeze should be 'all' or a list of parameter names ({', '.join(params)}), found {V.type_name(v)}"
        )
    return frozenset(V.choice(s, "a frozen parameter", params) for s in items)


def _vector_len(shape: tuple[int, ...]) -> int:
    return math.prod(shape)  # Python ints: np.prod would overflow int64 for huge shapes


def _parse_dense(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> DenseSpec:
    _common(
        lsrc,
        (
            "weights",
            "bias",
            "activation",
            "slope",
            "freeze",
            "layout",
            "bias_shared",
            "units",
            "init",
        ),
    )
    _init.check_exclusive(lsrc, name, "weights", ("units",))
    if "weights" not in lsrc.value and "units" not in lsrc.value:
        raise lsrc.error(
            f"dense layer {name!r} needs weights: (values) or units: (a number of neurons, drawn by init:)"
        )
    if len(shape) != 1:
        raise lsrc.error(
            f"dense layer {name!r} needs a vector input, but {prev} gives shape {V._fmt(shape)}: add a flatten layer before it"
        )
    n_in = shape[0]
    layout = (
        V.choice(lsrc.child("layout"), "layout", ("out_in", "in_out"))
        if "layout" in lsrc.value
        else "out_in"
    )
    wsrc = lsrc.child("weights")
    w = (
        _init.dense_weights(lsrc, name, n_in, layout)
        if "units" in lsrc.value
        else V.array(wsrc, f"{name}.weights", ndims=(0, 1, 2))
    )
    weights_shown = w.shape
    # A single number or a flat list is one neuron's weights (out_in) or one input's (in_out).
    if w.ndim < 2:
        w = w.reshape(1, -1) if layout == "out_in" else w.reshape(-1, 1)
    rows, cols = w.shape
    fan_in = cols if layout == "out_in" else rows
    n_out = rows if layout == "out_in" else cols
    if fan_in != n_in:
        written = "out x in (z = W·x + b)" if layout == "out_in" else "in x out (z = x·W + b)"
        other = "in_out" if layout == "out_in" else "out_in"
        hint = (
            f"; the transposed matrix ({cols} x {rows}) would fit: transpose it, or write layout: {other}"
            if (rows if layout == "out_in" else cols) == n_in
            else ""
        )
        raise wsrc.error(
            f"dense layer {name!r}: weights are {rows} x {cols}, read as {written}, so it expects "
            f"{fan_in} input{'s' if fan_in != 1 else ''}, but {prev} gives {n_in} (shape ({n_in},)){hint}"
        )
    shared = (
        V.boolean(lsrc.child("bias_shared"), "bias_shared")
        if "bias_shared" in lsrc.value
        else False
    )
    if "bias" in lsrc.value:
        bsrc = lsrc.child("bias")
        b = V.array(bsrc, f"{name}.bias", ndims=(0, 1))
        bias_shown = b.shape
        b = b.reshape(-1)
        if shared:
            if b.size != 1:
                raise bsrc.error(
                    f"dense layer {name!r} has bias_shared: true, so its bias is one number; found {b.size}"
                )
        elif b.size == 1 and n_out > 1 and np.ndim(bsrc.value) == 0:
            raise bsrc.error(
                f"dense layer {name!r} has {n_out} neurons: give {n_out} biases, or one number with bias_shared: true"
            )
        elif b.size != n_out:
            raise bsrc.error(f"dense layer {name!r} has {n_out} neurons but {b.size} biases")
    else:
        b = np.zeros(1 if shared else n_out)
        bias_shown = () if shared else (n_out,)
    if weights_shown == () and n_out != 1:
        weights_shown = w.shape
    return DenseSpec(
        **_frame(lsrc, name, ltype, shape, sq, (n_out,)),
        weights=w,
        bias=b,
        layout=layout,
        bias_shared=shared,
        activation=_activation(lsrc),
        freeze=_freeze(lsrc, ("weights", "bias")),
        weights_shown=weights_shown,
        bias_shown=bias_shown,
    )


def conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _parse_conv(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> Conv2dSpec:
    _common(
        lsrc,
        ("kernel", "bias", "stride", "padding", "flip", "activation", "slope", "freeze")
        + ("out_channels", "kernel_size", "init"),
    )
    _init.check_exclusive(lsrc, name, "kernel", ("out_channels", "kernel_size"))
    if len(shape) != 3:
        raise lsrc.error(
            f"conv2d layer {name!r} needs an image input (C, H, W), but {prev} gives shape {V._fmt(shape)}"
        )
    c, h, w = shape
    ksrc = lsrc.child("kernel")
    k = (
        V.array(ksrc, f"{name}.kernel", ndims=(2, 4))
        if "kernel" in lsrc.value
        else _init.conv_kernel(lsrc, name, c)
    )
    kernel_2d = k.ndim == 2
    if kernel_2d:
        if c != 1:
            raise ksrc.error(
                f"conv2d layer {name!r}: a 2-D kernel is for one input channel, but {prev} has {c} channels; write the kernel as out x in x kh x kw"
            )
        k = k[None, None]
    o, kc, kh, kw = k.shape
    if kc != c:
        raise ksrc.error(
            f"conv2d layer {name!r}: the kernel has {kc} input channels but {prev} has {c}"
        )
    stride = V.pair(lsrc.child("stride"), "stride", minimum=1) if "stride" in lsrc.value else (1, 1)
    padding = (
        V.pair(lsrc.child("padding"), "padding", minimum=0) if "padding" in lsrc.value else (0, 0)
    )
    if kh > h + 2 * padding[0] or kw > w + 2 * padding[1]:
        raise ksrc.error(
            f"conv2d layer {name!r}: the kernel ({kh} x {kw}) is larger than the padded input "
            f"({h + 2 * padding[0]} x {w + 2 * padding[1]})"
        )
    if "bias" in lsrc.value:
        bsrc = lsrc.child("bias")
        b = V.array(bsrc, f"{name}.bias", ndims=(0, 1)).reshape(-1)
        if b.size != o:
            raise bsrc.error(
                f"conv2d layer {name!r} has {o} output channels but {b.size} biases (one per output channel)"
            )
    else:
        b = np.zeros(o)
    flip = V.boolean(lsrc.child("flip"), "flip") if "flip" in lsrc.value else False
    ho, wo = conv_out(h, kh, stride[0], padding[0]), conv_out(w, kw, stride[1], padding[1])
    return Conv2dSpec(
        **_frame(lsrc, name, ltype, shape, sq, (o, ho, wo), squeezed_out=kernel_2d),
        kernel=k,
        bias=b,
        kernel_2d=kernel_2d,
        stride=stride,
        padding=padding,
        flip=flip,
        activation=_activation(lsrc),
        freeze=_freeze(lsrc, ("kernel", "bias")),
    )


def _parse_pool(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> PoolSpec:
    _common(lsrc, ("size", "stride"))
    if len(shape) != 3:
        raise lsrc.error(
            f"{ltype} layer {name!r} needs an image input, but {prev} gives shape {V._fmt(shape)}"
        )
    c, h, w = shape
    size = V.pair(lsrc.child("size"), "size", minimum=1) if "size" in lsrc.value else (2, 2)
    stride = V.pair(lsrc.child("stride"), "stride", minimum=1) if "stride" in lsrc.value else size
    if size[0] > h or size[1] > w:
        raise lsrc.error(
            f"{ltype} layer {name!r}: the window ({size[0]} x {size[1]}) is larger than its input ({h} x {w})"
        )
    for axis, n, k, s in (("height", h, size[0], stride[0]), ("width", w, size[1], stride[1])):
        if (n - k) % s != 0:
            where = (
                lsrc.child("stride")
                if "stride" in lsrc.value
                else lsrc.child("size")
                if "size" in lsrc.value
                else lsrc
            )
            raise where.error(
                f"{ltype} layer {name!r}: windows of {k} with stride {s} do not tile the input's {axis} of {n} "
                f"({(n - k) % s} left over); choose a size and stride that cover it exactly"
            )
    return PoolSpec(
        **_frame(
            lsrc,
            name,
            ltype,
            shape,
            sq,
            (c, conv_out(h, size[0], stride[0], 0), conv_out(w, size[1], stride[1], 0)),
        ),
        size=size,
        stride=stride,
    )


def _parse_flatten(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> FlattenSpec:
    _common(lsrc, ())
    return FlattenSpec(
        **_frame(lsrc, name, ltype, shape, sq, (_vector_len(shape),), squeezed_out=False),
    )


def _parse_activation_layer(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> ActivationLayerSpec:
    _common(lsrc, ("slope",) if ltype == "leaky_relu" else ())
    slope = V.number(lsrc.child("slope"), "slope") if "slope" in lsrc.value else 0.01
    if ltype == "softmax" and len(shape) != 1:
        raise lsrc.error(
            f"softmax layer {name!r} needs a vector input, but {prev} gives shape {V._fmt(shape)}"
        )
    return ActivationLayerSpec(
        **_frame(lsrc, name, ltype, shape, sq),
        activation=ActivationSpec(ltype, slope),
    )


_LAYER_PARSERS: dict[str, Any] = {
    "dense": _parse_dense,
    "conv2d": _parse_conv,
    "maxpool2d": _parse_pool,
    "avgpool2d": _parse_pool,
    "flatten": _parse_flatten,
    **dict.fromkeys(ACTIVATIONS, _parse_activation_layer),
}


def _parse_loss(src: Src, last: LayerSpec) -> LossSpec:
    v = src.value
    if isinstance(v, dict):
        V.check_keys(src, ("type", "reduction"), ("type",), "the loss")
        kind = V.choice(src.child("type"), "loss type", LOSSES)
        reduction = (
            V.choice(src.child("reduction"), "loss reduction over the batch", ("mean", "sum"))
            if "reduction" in v
            else "mean"
        )
        where = src.child("type")
    else:
        kind = V.choice(src, "loss", LOSSES)
        reduction = "mean"
        where = src
    act = getattr(last, "activation", None)
    act_kind = act.kind if act is not None else "identity"
    if kind == "cross_entropy" and act_kind != "softmax":
        raise where.error(
            f"cross_entropy needs probabilities, but the last layer {last.name!r} outputs {act_kind} "
            "values; give it activation: softmax (or use binary_cross_entropy with sigmoid)"
        )
    if kind == "binary_cross_entropy" and act_kind != "sigmoid":
        raise where.error(
            f"binary_cross_entropy needs probabilities, but the last layer {last.name!r} outputs {act_kind} "
            "values; give it activation: sigmoid"
        )
    return LossSpec(kind, reduction)


def _parse_optimizer(root: Src) -> OptimizerSpec:
    data = root.value
    if "optimizer" in data:
        if "learning_rate" in data:
            raise root.child("learning_rate").error(
                "give either learning_rate: (plain gradient descent) or optimizer: {type, lr, ...}, "
                "not both",
                at_key=True,
            )
        return _parse_optimizer_block(root.child("optimizer"))
    if "learning_rate" not in data:
        raise root.error(
            "the network is missing its learning_rate (for example learning_rate: 0.1)"
        )
    return OptimizerSpec("sgd", V.positive_number(root.child("learning_rate"), "learning_rate"))


def _parse_targets(
    root: Src, loss: LossSpec, last: LayerSpec, n: int, batched: bool, data_dtype: Any = np.float64
) -> tuple[np.ndarray, np.ndarray | None]:
    data = root.value
    key = "targets" if batched else "target"
    other = "target" if batched else "targets"
    if other in data:
        raise root.child(other).error(
            f"{other}: does not go with {'inputs' if batched else 'input'}:; use {key}:",
            at_key=True,
        )
    if key not in data:
        raise root.error(f"the network is missing its {key}:")
    src = root.child(key)
    if _is_data_reference(src.value):
        from bpcalc import data as _data

        return _data.targets_from_file(
            src, key, loss.kind, last.out_shape, last.name, n, batched, data_dtype
        )
    out_shape = last.out_shape
    k = _vector_len(out_shape)
    if batched:
        if not isinstance(src.value, list):
            raise src.error(
                f"targets should be a list with one target per sample, found {V.type_name(src.value)}"
            )
        if len(src.value) != n:
            raise src.error(f"there are {n} inputs but {len(src.value)} targets")
        items = [src.child(i) for i in range(n)]
    else:
        items = [src]
    if loss.kind == "cross_entropy" and all(_is_class_index(s.value) for s in items):
        classes = np.array([int(s.value) for s in items])
        for s, c in zip(items, classes, strict=True):
            if not 0 <= c < k:
                raise s.error(
                    f"class index {c} does not fit the output, which has {k} classes (0 to {k - 1})"
                )
        from bpcalc.data import one_hot_rows

        return one_hot_rows(src, classes, k).reshape((n, *out_shape)), classes
    rows = []
    for s in items:
        t = V.array(s, key)
        if t.size != k:
            raise s.error(
                f"the target has {t.size} value{'s' if t.size != 1 else ''} (shape {V._fmt(t.shape)}) but the output of {last.name!r} has {k} (shape {V._fmt(_shown(last))})"
            )
        if loss.kind in ("cross_entropy", "binary_cross_entropy") and (
            (t < 0).any() or (t > 1).any()
        ):
            raise s.error(
                f"{loss.kind} needs targets between 0 and 1 (probabilities or one-hot), found {t.min():g} to {t.max():g}"
            )
        if loss.kind == "cross_entropy" and not np.isclose(t.sum(), 1.0):
            raise s.error(
                f"a cross_entropy target should be one-hot (or sum to 1), or a class index; this one sums to {t.sum():g}"
            )
        rows.append(t.reshape(out_shape))
    return np.stack(rows), None


def _is_class_index(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _shown(layer: LayerSpec) -> tuple[int, ...]:
    return layer.out_shape[1:] if layer.squeezed_out else layer.out_shape


# --- batches, optimizers, regularization, dropout, batchnorm ------------------------------


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


def _parse_dropout(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> DropoutSpec:
    _common(lsrc, ("p", "mask", "seed"))
    v = lsrc.value
    if "p" not in v:
        raise lsrc.error(
            f"dropout layer {name!r} needs p, the probability of dropping a unit (e.g. p: 0.5); "
            "kept units are scaled by 1/(1 − p)"
        )
    psrc = lsrc.child("p")
    p = V.number(psrc, "p")
    if not 0 <= p < 1:
        raise psrc.error(
            f"dropout layer {name!r}: p is the probability of dropping a unit and should be "
            f"at least 0 and less than 1, found {p:g}"
        )
    mask = None
    mask_where = None
    if "mask" in v:
        if "seed" in v:
            raise lsrc.child("seed").error(
                f"dropout layer {name!r} has a given mask, so there is nothing to draw with a seed",
                at_key=True,
            )
        msrc = lsrc.child("mask")
        m = V.array(msrc, f"{name}.mask")
        bad = m[(m != 0) & (m != 1)]
        if bad.size:
            raise msrc.error(
                f"a dropout mask holds 1 (kept) and 0 (dropped); found {bad[0]:g}. "
                "The 1/(1 − p) scaling is applied for you"
            )
        shown = shape[1:] if sq else shape
        if m.shape in (shown, shape):
            mask = m.reshape((1, *shape))
        elif m.shape[1:] in (shown, shape):
            mask = m.reshape((m.shape[0], *shape))
        else:
            raise msrc.error(
                f"dropout layer {name!r}: the mask has shape {V._fmt(m.shape)}, but {prev} gives "
                f"shape {V._fmt(shown)}; give one mask of that shape (used for every sample) or "
                "one per sample (a list with one per input)"
            )
        mask_where = msrc.loc
    seed = int(V.positive_int(lsrc.child("seed"), "seed", minimum=0)) if "seed" in v else None
    return DropoutSpec(
        **_frame(lsrc, name, ltype, shape, sq),
        p=p,
        mask=mask,
        mask_where=mask_where,
        seed=seed,
    )


def _parse_batchnorm(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> BatchNormSpec:
    _common(
        lsrc,
        (
            "gamma",
            "beta",
            "eps",
            "momentum",
            "running_mean",
            "running_var",
            "activation",
            "slope",
            "freeze",
        ),
    )
    if len(shape) not in (1, 3):
        raise lsrc.error(
            f"batchnorm layer {name!r} normalizes features (N, F) or image channels (N, C, H, W), "
            f"but {prev} gives shape {V._fmt(shape)}"
        )
    f = shape[0]
    what = "features" if len(shape) == 1 else "channels"
    v = lsrc.value

    def vec(key: str, default: float) -> np.ndarray:
        if key not in v:
            return np.full(f, default)
        src = lsrc.child(key)
        a = V.array(src, f"{name}.{key}", ndims=(0, 1)).reshape(-1)
        if a.size == 1 and f > 1 and np.ndim(src.value) == 0:
            a = np.full(f, a[0])  # one number for every feature
        if a.size != f:
            raise src.error(
                f"batchnorm layer {name!r} normalizes {f} {what}, so {key} needs {f} "
                f"values (or one number for all), found {a.size}"
            )
        if key == "running_var" and (a < 0).any():
            raise src.error(f"{key} is a variance and cannot be negative, found {a.min():g}")
        return a

    eps = V.positive_number(lsrc.child("eps"), "eps") if "eps" in v else 1e-5
    momentum = 0.1
    if "momentum" in v:
        msrc = lsrc.child("momentum")
        momentum = V.number(msrc, "momentum")
        if not 0 <= momentum <= 1:
            raise msrc.error(
                "batchnorm momentum is the weight of the batch statistic in the running "
                f"average and should be between 0 and 1 (PyTorch's default is 0.1), found {momentum:g}"
            )
    return BatchNormSpec(
        **_frame(lsrc, name, ltype, shape, sq),
        gamma=vec("gamma", 1.0),
        beta=vec("beta", 0.0),
        running_mean=vec("running_mean", 0.0),
        running_var=vec("running_var", 1.0),
        eps=eps,
        momentum=momentum,
        activation=_activation(lsrc),
        freeze=_freeze(lsrc, ("gamma", "beta")),
    )


_OPT_KEYS = {
    "sgd": (),
    "momentum": ("momentum", "dampening"),
    "nesterov": ("momentum",),
    "rmsprop": ("alpha", "eps"),
    "adam": ("beta1", "beta2", "eps"),
}


def _parse_optimizer_block(src: Src) -> OptimizerSpec:
    """optimizer: {type, lr, ...}: each type takes only its own hyper-parameters."""
    every = sorted({k for keys in _OPT_KEYS.values() for k in keys})
    V.check_keys(src, ("type", "lr", *every), ("lr",), "the optimizer")
    v = src.value
    kind = V.choice(src.child("type"), "optimizer type", OPTIMIZERS) if "type" in v else "sgd"
    for key in v:
        if key not in ("type", "lr") and key not in _OPT_KEYS[kind]:
            takes = ", ".join(("lr", *_OPT_KEYS[kind]))
            raise src.child(key).error(
                f"{key} does not apply to the {kind} optimizer, which takes {takes}",
                at_key=True,
            )
    values: dict[str, Any] = {"type": kind, "lr": V.positive_number(src.child("lr"), "lr")}
    for key in _OPT_KEYS[kind]:
        if key not in v:
            continue
        ksrc = src.child(key)
        x = V.number(ksrc, key)
        if key == "eps":
            if x <= 0:
                raise ksrc.error(f"eps should be greater than 0, found {x:g}")
        elif not 0 <= x < 1:
            raise ksrc.error(f"{key} should be at least 0 and less than 1, found {x:g}")
        values[key] = x
    return OptimizerSpec(**values)


def _parse_batching(root: Src, n: int) -> BatchingSpec:
    v = root.value
    mode = (
        V.choice(root.child("mode"), "mode (samples per step)", batching.MODES)
        if "mode" in v
        else None
    )
    size = V.positive_int(root.child("batch_size"), "batch_size") if "batch_size" in v else None
    if mode is None:
        mode = "minibatch" if size is not None else "batch"
    found = batching.problem(n, mode, size)
    if found is not None:
        key, message = found
        raise (root.child(key) if key in v else root).error(message)
    shuffle = V.boolean(root.child("shuffle"), "shuffle") if "shuffle" in v else False
    seed = V.positive_int(root.child("seed"), "seed", minimum=0) if "seed" in v else 0
    return BatchingSpec(mode, size if mode == "minibatch" else None, shuffle, int(seed))


def check_batchnorm_batches(layers: list[LayerSpec], spec: BatchingSpec, n: int) -> None:
    """Batchnorm after a dense layer needs at least 2 samples in every batch (as in PyTorch):
    one sample has variance 0 and no unbiased running variance."""
    size = batching.batch_size_for(spec.mode, spec.batch_size, n)
    smallest = n % size or size
    for layer in layers:
        if not isinstance(layer, BatchNormSpec):
            continue
        per_sample = 1 if len(layer.in_shape) == 1 else math.prod(layer.in_shape[1:])
        if smallest * per_sample >= 2:
            continue
        why = (
            "every step uses one sample"
            if size == 1
            else f"the last batch of each epoch has one sample ({n} samples, batch_size {size})"
        )
        if len(layer.in_shape) == 1:
            raise SpecError(
                f"batchnorm layer {layer.name!r} normalizes each feature over the batch, but "
                f"{why}: its variance would be 0. Use batches of at least 2 samples",
                layer.where,
            )
        raise SpecError(  # as PyTorch: "Expected more than 1 value per channel when training"
            f"batchnorm layer {layer.name!r} normalizes each channel over N·H·W values, but its "
            f"input is 1 x 1 per channel and {why}: one value, variance 0. Use batches of at "
            "least 2 samples",
            layer.where,
        )


def _check_dropout_masks(layers: list[LayerSpec], n: int) -> None:
    """A list of masks needs one per sample."""
    for layer in layers:
        if isinstance(layer, DropoutSpec) and layer.mask is not None and layer.mask.shape[0] > 1:
            if layer.mask.shape[0] != n:
                raise SpecError(
                    f"dropout layer {layer.name!r} has {layer.mask.shape[0]} masks but there "
                    f"are {n} samples; give one mask per sample, or one mask for all",
                    layer.mask_where,
                )


def _parse_reg_block(src: Src, what: str) -> RegSpec:
    V.check_keys(src, ("l2", "l1", "include_bias"), (), what)
    v = src.value
    out = {}
    for key in ("l2", "l1"):
        if key in v:
            x = V.number(src.child(key), f"{key} (λ)")
            if x < 0:
                raise src.child(key).error(f"{key} (λ) cannot be negative, found {x:g}")
            out[key] = x
    inc = V.boolean(src.child("include_bias"), "include_bias") if "include_bias" in v else False
    return RegSpec(out.get("l2", 0.0), out.get("l1", 0.0), inc, src.loc)


def _parse_regularization(
    root: Src, layers_src: Src, layers: list[LayerSpec]
) -> dict[str, RegSpec]:
    """The global `regularization:` applies to every dense and conv2d layer; a layer's own
    `regularization:` replaces it for that layer (`regularization: {}` turns it off)."""
    glob = (
        _parse_reg_block(root.child("regularization"), "regularization")
        if "regularization" in root.value
        else RegSpec()
    )
    out: dict[str, RegSpec] = {}
    for i, layer in enumerate(layers):
        if layer.type not in PARAMETRIC:
            continue
        lsrc = layers_src.child(i)
        reg = (
            _parse_reg_block(lsrc.child("regularization"), f"layer {layer.name!r}'s regularization")
            if "regularization" in lsrc.value
            else glob
        )
        if reg.active:
            out[layer.name] = reg
    return out


def _with_dropout_seeds(layers: list[LayerSpec], seed: int) -> list[LayerSpec]:
    """Dropout layers without their own seed draw from the network's seed."""
    return [
        replace(layer, seed=seed)
        if isinstance(layer, DropoutSpec) and layer.seed is None and layer.mask is None
        else layer
        for layer in layers
    ]


_LAYER_PARSERS["dropout"] = _parse_dropout
_LAYER_PARSERS["batchnorm"] = _parse_batchnorm


def with_batching(spec: NetworkSpec, mode: str | None, batch_size: int | None) -> NetworkSpec:
    """The spec with the command line's --mode / --batch-size instead of the file's.

    --batch-size alone means mode minibatch; --mode minibatch alone keeps the file's
    batch_size. Raises UsageError when they do not fit the data.
    """
    from bpcalc.errors import UsageError

    old = spec.batching
    n = spec.inputs.shape[0]
    if mode is None:
        mode = "minibatch" if batch_size is not None else old.mode
    if mode == "minibatch" and batch_size is None:
        batch_size = old.batch_size
    found = batching.problem(n, mode, batch_size)
    if found is not None:
        key, message = found
        flag = "--batch-size" if key == "batch_size" else "--mode"
        message = (
            message.replace("batch_size: ", "--batch-size ")
            .replace("batch_size", "--batch-size")
            .replace("mode: ", "--mode ")
        )
        raise UsageError(message if message.startswith(flag) else f"{flag}: {message}")
    new = replace(old, mode=mode, batch_size=batch_size if mode == "minibatch" else None)
    check_batchnorm_batches(list(spec.layers), new, n)
    return replace(spec, batching=new)


def _parse_train_section(
    root: Src, layers: list[LayerSpec], loss: LossSpec, data_dtype: Any
) -> Any:
    from bpcalc.spec.train_section import parse_train

    return parse_train(root.child("train"), layers, loss, data_dtype)
