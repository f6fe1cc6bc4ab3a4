"""Typed, validated network specs: the only shape downstream code ever sees.

Everything a user can get wrong is found here, with a location: unknown keys, wrong types,
ragged matrices, shapes that do not fit from one layer to the next, targets that do not fit
the output. The engine trusts these objects and re-checks nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpcalc import data as _data
from bpcalc.errors import Location
from bpcalc.spec import init as _init
from bpcalc.spec import values as V
from bpcalc.spec.load import SourceDoc, Src, load_yaml_file

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")
LOSSES = ("mse", "half_mse", "sse", "half_sse", "cross_entropy", "binary_cross_entropy")
PARAMETRIC = ("dense", "conv2d")
LAYER_TYPES = ("dense", "conv2d", "maxpool2d", "avgpool2d", "flatten", *ACTIVATIONS)
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
    type: str = "sgd"
    lr: float = 0.01


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
    "train",
)


def load_network(path: str) -> NetworkSpec:
    """Read and validate a network YAML file (or "-" for standard input)."""
    doc = load_yaml_file(path)
    return parse_network(doc)


def parse_network(doc: SourceDoc) -> NetworkSpec:
    root = doc.root()
    V.check_keys(root, TOP_KEYS, ("layers", "loss"), "the network")
    data = root.value
    name = V.text(root.child("name"), "name") if "name" in data else _default_title(doc.file)

    inputs, batched, in_src = _parse_inputs(root)
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
    targets, classes = _parse_targets(root, loss, layers[-1], inputs.shape[0], batched)
    train = _parse_train_section(root, layers, loss) if "train" in data else None
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
        train=train,
    )


def _default_title(file: str) -> str:
    return file.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _parse_inputs(root: Src) -> tuple[np.ndarray, bool, Src]:
    data = root.value
    if "input" in data and "inputs" in data:
        raise root.child("inputs").error(
            "give either input: (one sample) or inputs: (a list of samples), not both", at_key=True
        )
    if "input" in data:
        src = root.child("input")
        if _data.is_reference(src.value):
            return _data.load(src, "input", batched=False).values, False, src
        x = V.array(src, "input")
        return x[None, ...], False, src
    if "inputs" in data:
        src = root.child("inputs")
        if _data.is_reference(src.value):
            return _data.load(src, "inputs").values, True, src
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
            + (" (or flatten: true in the data reference)" if _data.is_reference(src.value) else "")
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
            lsrc, name, ltype, shape, sq, out[-1].name if out else "the input"
        )
        out.append(layer)
        shape, sq = layer.out_shape, layer.squeezed_out
    return out


def _common(lsrc: Src, extra: tuple[str, ...]) -> None:
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
    return int(np.prod(shape))


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
            f"{fan_in} inputs, but {prev} gives {n_in}{hint}"
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
        name=name,
        type=ltype,
        where=lsrc.loc,
        in_shape=shape,
        out_shape=(n_out,),
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
        name=name,
        type=ltype,
        where=lsrc.loc,
        in_shape=shape,
        out_shape=(o, ho, wo),
        squeezed_in=sq,
        squeezed_out=kernel_2d,
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
        name=name,
        type=ltype,
        where=lsrc.loc,
        in_shape=shape,
        out_shape=(c, conv_out(h, size[0], stride[0], 0), conv_out(w, size[1], stride[1], 0)),
        squeezed_in=sq,
        squeezed_out=sq,
        size=size,
        stride=stride,
    )


def _parse_flatten(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> FlattenSpec:
    _common(lsrc, ())
    return FlattenSpec(
        name=name,
        type=ltype,
        where=lsrc.loc,
        in_shape=shape,
        out_shape=(_vector_len(shape),),
        squeezed_in=sq,
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
        name=name,
        type=ltype,
        where=lsrc.loc,
        in_shape=shape,
        out_shape=shape,
        squeezed_in=sq,
        squeezed_out=sq,
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
        src = root.child("optimizer")
        V.check_keys(src, ("type", "lr"), ("lr",), "the optimizer")
        kind = (
            V.choice(src.child("type"), "optimizer type", ("sgd",))
            if "type" in src.value
            else "sgd"
        )
        return OptimizerSpec(kind, V.positive_number(src.child("lr"), "the learning rate (lr)"))
    if "learning_rate" not in data:
        raise root.error(
            "the network is missing its learning_rate (for example learning_rate: 0.1)"
        )
    return OptimizerSpec("sgd", V.positive_number(root.child("learning_rate"), "learning_rate"))


def _parse_targets(
    root: Src, loss: LossSpec, last: LayerSpec, n: int, batched: bool
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
    if _data.is_reference(src.value):
        return _data.targets_from_file(src, key, loss.kind, last.out_shape, last.name, n, batched)
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
        return np.eye(k)[classes].reshape((n, *out_shape)), classes
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


def _parse_train_section(root: Src, layers: list[LayerSpec], loss: LossSpec) -> Any:
    from bpcalc.spec.train_section import parse_train

    return parse_train(root.child("train"), layers, loss)
