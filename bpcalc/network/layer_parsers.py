"""One parser per layer type, registered in LAYER_PARSERS by the `type:` a file writes.

Each parser gets the layer's YAML node, its name and type, and the shape that comes in (per
sample, channels first for images); it checks the layer's keys and values and returns the
layer's spec with the shape that goes out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from bpcalc import activations
from bpcalc.errors import SpecError
from bpcalc.network import initializers as _init
from bpcalc.network import values as V
from bpcalc.network.types import (
    ACTIVATIONS,
    PARAMETRIC,
    ActivationLayerSpec,
    ActivationSpec,
    BatchNormSpec,
    Conv2dSpec,
    DenseSpec,
    DropoutSpec,
    FlattenSpec,
    LayerSpec,
    PoolSpec,
)
from bpcalc.network.yaml_source import Src


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
    if (
        lsrc.value.get("type") in PARAMETRIC
    ):  # a layer's own penalty, read by sections.parse_regularization
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
    return None if kind == "identity" else ActivationSpec(kind, _activation_options(lsrc, kind))


def _activation_options(lsrc: Src, kind: str) -> tuple[tuple[str, float], ...]:
    """The activation's own settings written in the layer (slope: 0.2 for leaky_relu)."""
    mine = activations.unit_class(kind).options
    out = []
    for option in activations.option_keys():
        if option not in lsrc.value:
            continue
        if option not in mine:
            users = [k for k in activations.kinds() if option in activations.unit_class(k).options]
            raise lsrc.child(option).error(
                f"{option} only applies to {' and '.join(users)}", at_key=True
            )
        out.append((option, V.number(lsrc.child(option), option)))
    return tuple(out)


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


def _parse_dense(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> DenseSpec:
    _common(
        lsrc,
        (
            "weights",
            "bias",
            "activation",
            *activations.option_keys(),
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
        ("kernel", "bias", "stride", "padding", "flip", "activation", *activations.option_keys())
        + ("freeze",)
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
        **_frame(lsrc, name, ltype, shape, sq, (V.vector_len(shape),), squeezed_out=False),
    )


def _parse_activation_layer(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> ActivationLayerSpec:
    _common(lsrc, tuple(activations.unit_class(ltype).options))
    if not activations.unit_class(ltype).elementwise and len(shape) != 1:
        raise lsrc.error(
            f"{ltype} layer {name!r} needs a vector input, but {prev} gives shape {V._fmt(shape)}"
        )
    return ActivationLayerSpec(
        **_frame(lsrc, name, ltype, shape, sq),
        activation=ActivationSpec(ltype, _activation_options(lsrc, ltype)),
    )


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
            *activations.option_keys(),
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


LAYER_PARSERS: dict[str, Any] = {
    "dense": _parse_dense,
    "conv2d": _parse_conv,
    "maxpool2d": _parse_pool,
    "avgpool2d": _parse_pool,
    "flatten": _parse_flatten,
    "dropout": _parse_dropout,
    "batchnorm": _parse_batchnorm,
    **dict.fromkeys(ACTIVATIONS, _parse_activation_layer),
}


def check_dropout_masks(layers: list[LayerSpec], n: int) -> None:
    """A list of masks needs one per sample."""
    for layer in layers:
        if isinstance(layer, DropoutSpec) and layer.mask is not None and layer.mask.shape[0] > 1:
            if layer.mask.shape[0] != n:
                raise SpecError(
                    f"dropout layer {layer.name!r} has {layer.mask.shape[0]} masks but there "
                    f"are {n} samples; give one mask per sample, or one mask for all",
                    layer.mask_where,
                )


def with_dropout_seeds(layers: list[LayerSpec], seed: int) -> list[LayerSpec]:
    """Dropout layers without their own seed draw from the network's seed."""
    return [
        replace(layer, seed=seed)
        if isinstance(layer, DropoutSpec) and layer.seed is None and layer.mask is None
        else layer
        for layer in layers
    ]
