"""What every layer's parser shares: the fields every layer spec has (where it stands, the
shapes that go in and out), the keys every layer takes, the activation and its settings, the
parameters to freeze. Each layer unit (bpcalc/layers/<kind>/) parses its own keys with these.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bpcalc import activations
from bpcalc.errors import SpecError
from bpcalc.network import values as V
from bpcalc.network.types import (
    ACTIVATIONS,
    PARAMETRIC,
    ActivationSpec,
    LayerSpec,
    map_layers,
)
from bpcalc.network.yaml_source import Src


def frame(
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


def common(lsrc: Src, extra: tuple[str, ...]) -> None:
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


def activation(lsrc: Src, key: str = "activation") -> ActivationSpec | None:
    if key not in lsrc.value:
        return None
    kind = V.choice(lsrc.child(key), "activation", ACTIVATIONS)
    return None if kind == "identity" else ActivationSpec(kind, activation_options(lsrc, kind))


def activation_options(lsrc: Src, kind: str) -> tuple[tuple[str, float | str], ...]:
    """The activation's own settings written in the layer (slope: 0.2 for leaky_relu; axis:
    positions for a softmax over a sequence)."""
    unit = activations.unit_class(kind)
    out: list[tuple[str, float | str]] = []
    for option in activations.option_keys():
        if option not in lsrc.value:
            continue
        if option not in unit.options and option not in unit.choices:
            users = [
                k
                for k in activations.kinds()
                if option in activations.unit_class(k).options
                or option in activations.unit_class(k).choices
            ]
            raise lsrc.child(option).error(
                f"{option} only applies to {' and '.join(users)}", at_key=True
            )
        if option in unit.choices:
            out.append((option, V.choice(lsrc.child(option), option, unit.choices[option])))
        else:
            out.append((option, V.number(lsrc.child(option), option)))
    return tuple(out)


def sequence_hint(shape: tuple[int, ...]) -> str:
    """What a layer that wants an image says when it gets a sequence."""
    if len(shape) != 2:
        return ""
    return f", a sequence of {shape[0]} positions of {shape[1]} features where an image is expected"


def check_sequence_options(lsrc: Src, name: str, out_shape: tuple[int, ...]) -> None:
    """A setting that only means something over a sequence (softmax's axis) on a layer whose
    output is not one."""
    if "axis" in lsrc.value and len(out_shape) != 2:
        raise lsrc.child("axis").error(
            f"axis: chooses what a softmax normalizes over in a sequence (T x d), but the output "
            f"of layer {name!r} has shape {V._fmt(out_shape)}, which is not a sequence",
            at_key=True,
        )


def bias_mode(lsrc: Src, name: str) -> str:
    """How the layer's `bias:` key reads: "values" (biases given), "zeros" (left out, or
    `bias: true`: zero biases, trained, as PyTorch's bias=True) or "none" (`bias: none`, `false`
    or `null`: the layer has no bias parameter at all, as PyTorch's bias=False)."""
    if "bias" not in lsrc.value:
        return "zeros"
    v = lsrc.value["bias"]
    if v is True:
        return "zeros"
    if v is None or v is False or (isinstance(v, str) and v.lower() == "none"):
        if lsrc.value.get("bias_shared") is True:
            raise lsrc.child("bias_shared").error(
                f"layer {name!r} has no bias (bias: {_written(v)}), so there is no bias to share; "
                "give one bias number, or leave bias_shared out",
                at_key=True,
            )
        return "none"
    if isinstance(v, str):
        raise lsrc.child("bias").error(
            f"bias should be numbers, none (no bias) or true (zero biases), found {V.type_name(v)}"
        )
    return "values"


def _written(v: object) -> str:
    return "null" if v is None else str(v).lower()


def freeze(
    lsrc: Src, params: tuple[str, ...], absent: dict[str, str] | None = None
) -> frozenset[str]:
    """The parameters `freeze:` names. absent: parameters this kind of layer can have but this
    one has not, and why (a bias left out with bias: none), so freezing one says so."""
    if "freeze" not in lsrc.value:
        return frozenset()
    fsrc = lsrc.child("freeze")
    v = fsrc.value
    for i, item in enumerate(v if isinstance(v, list) else [v]):
        if isinstance(item, str) and item in (absent or {}):
            where = fsrc.child(i) if isinstance(v, list) else fsrc
            raise where.error(f"there is no {item} to freeze: {absent[item]}")  # type: ignore[index]
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


def conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def check_dropout_masks(layers: list[LayerSpec], n: int) -> None:
    """A list of masks needs one per sample."""
    for layer in layers:
        if layer.type == "dropout" and layer.mask is not None and layer.mask.shape[0] > 1:
            if layer.mask.shape[0] != n:
                raise SpecError(
                    f"dropout layer {layer.name!r} has {layer.mask.shape[0]} masks but there "
                    f"are {n} samples; give one mask per sample, or one mask for all",
                    layer.mask_where,
                )


def with_dropout_seeds(layers: list[LayerSpec], seed: int) -> list[LayerSpec]:
    """Dropout layers without their own seed (inside blocks too) draw from the network's seed."""
    return list(
        map_layers(
            layers,
            lambda layer: (
                replace(layer, seed=seed)
                if layer.type == "dropout" and layer.seed is None and layer.mask is None
                else layer
            ),
        )
    )
