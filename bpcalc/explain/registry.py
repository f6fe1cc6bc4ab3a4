"""Which explainer explains which value, and the fallback when none does.

A value name is classified into a role (what kind of computation made it) and a kind (the
layer type, activation, loss or optimizer it depends on). Explainers register for a
(role, kind) pair, so a new op or optimizer only adds `@register("update", "momentum")` in
its own module. A value nobody explains still gets its record's formula and value, and an
explainer that fails falls back the same way: an explanation never stops a run.

Roles:
  given       input, target, <layer>.<param>, a dropout mask     kind: input | target | param | mask
  linear      <layer>.z                                          kind: layer type (dense, conv2d)
  activation  <layer>.a of a dense/conv layer, or an activation layer's output
                                                                 kind: activation (identity, relu, ...)
  layer       <layer>.a of a shape layer                         kind: layer type (maxpool2d, flatten, dropout)
  bn          <layer>.mean, .var, .xhat of a batchnorm layer     kind: mean | var | xhat
  recorded    another value a layer records, <layer>.<what>      kind: <layer type>.<what>
              (layernorm.mean, layernorm.var, layernorm.xhat)
  loss        loss                                               kind: loss kind
  loss_grad   grad.<last layer>.a                                kind: loss kind
  grad_a      grad.<layer>.a of an inner layer                   kind: "next", or the block's
              type for the last layer inside a block (residual)
  grad_path   grad.<block>.input.<path>: one path of ∂L/∂x       kind: layer type (residual)
  grad_z      grad.<layer>.z, or grad.<activation layer>.input   kind: activation, or "fused"
  grad_param  grad.<layer>.<param>                               kind: layer type
  grad_input  grad.<layer>.input                                 kind: layer type
  update      new.<layer>.<param>                                kind: optimizer type
  running     new.<layer>.running_mean / running_var             kind: layer type (batchnorm)
  state       state.<layer>.<param>.<slot>                       kind: optimizer type
  after       loss_after, dataset_loss_after                     kind: loss_after
  loss_sample loss.per_sample                                    kind: loss kind
  penalty     loss.penalty, grad.<layer>.<param>.penalty         kind: loss | grad
  sum         loss = L_data + penalty, grad.<l>.<p> = data + penalty   kind: penalty | grad
  value       <layer>.<what> of a layer that names its own values (rnn.h, attn.scores)
                                                                 kind: layer type; param: what
  grad_value  grad.<layer>.<what> of such a layer (grad.rnn.h.from_next)  kind: layer type
  clip        grad_norm, clipped.<layer>.<param>                 kind: norm | clipped
  other       anything else (values added later)                 kind: ""
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from bpcalc import activations, losses
from bpcalc.explain.work import Ctx, Work
from bpcalc.network.types import flat_layers
from bpcalc.trace import Record, element_name

FALLBACK_NOTE = "no step-by-step explanation for this value"


@dataclass(frozen=True)
class Item:
    """A record with what made it: the role, the kind, and its layer (if any)."""

    record: Record
    role: str
    kind: str
    layer: Any = None  # LayerSpec
    pos: int | None = None  # the layer's position in the network
    param: str | None = None


Explainer = Callable[[Ctx, Item, tuple[int, ...]], Work]
_REGISTRY: dict[tuple[str, str], Explainer] = {}


def register(role: str, *kinds: str) -> Callable[[Explainer], Explainer]:
    """Register an explainer for a role and one or more kinds ("*": any kind of the role)."""

    def deco(fn: Explainer) -> Explainer:
        for kind in kinds:
            _REGISTRY[(role, kind)] = fn
        return fn

    return deco


def lookup(role: str, kind: str) -> Explainer | None:
    return _REGISTRY.get((role, kind)) or _REGISTRY.get((role, "*"))


def registered() -> list[tuple[str, str]]:
    return sorted(_REGISTRY)


PARAMETRIC = ("dense", "conv2d", "batchnorm", "layernorm")  # a z before the activation
OWN_VALUES = ("rnn", "attention")  # layers that name values of their own (rnn.h, attn.scores)
ACTIVATION_KINDS = activations.kinds()


def param_names(layer: Any) -> tuple[str, ...]:
    params = getattr(layer, "params", None)
    return tuple(params) if isinstance(params, dict) else ()


def _act_kind(layer: Any) -> str:
    act = getattr(layer, "activation", None)
    return act.kind if act is not None else "identity"


def classify(spec: Any, rec: Record, st_names: Container[str] = ()) -> Item:
    """Find what computed a record from its name (the value-name contract) and the spec.
    st_names: the names of the step's other values (whether a penalty was recorded)."""
    name = rec.name
    if spec is None:
        return Item(rec, "other", "")
    # every layer, those inside blocks too (named <block>.<inner>); pos: the place in that list
    flat = flat_layers(spec.layers)
    layers = {layer.name: (i, layer) for i, layer in enumerate(flat)}
    last = layers[spec.layers[-1].name][0]
    ends = {block.inner[-1].name: block.type for block in flat if block.inner}
    parts = _parts(name, layers)
    if name in ("input", "target"):
        return Item(rec, "given", name)
    if name == "loss":
        if "loss.penalty" in st_names:
            return Item(rec, "sum", "penalty")
        return Item(rec, "loss", spec.loss.kind)
    if name == "loss.data":
        return Item(rec, "loss", spec.loss.kind)
    if name == "loss.per_sample":
        return Item(rec, "loss_sample", spec.loss.kind)
    if name == "loss.penalty":
        return Item(rec, "penalty", "loss")
    if name in ("loss_after", "dataset_loss_after"):
        return Item(rec, "after", "loss_after")
    if name == "grad_norm":
        return Item(rec, "clip", "norm")
    if parts[0] == "clipped" and len(parts) == 3 and parts[1] in layers:
        pos, layer = layers[parts[1]]
        return Item(rec, "clip", "clipped", layer, pos, parts[2])
    if parts[0] == "grad" and len(parts) == 4 and parts[1] in layers and parts[2] == "input":
        pos, layer = layers[parts[1]]
        return Item(rec, "grad_path", layer.type, layer, pos, parts[3])
    if (
        parts[0] == "grad"
        and len(parts) == 4
        and parts[1] in layers
        and parts[3] in ("data", "penalty")
    ):
        pos, layer = layers[parts[1]]
        if parts[3] == "data":
            return Item(rec, "grad_param", layer.type, layer, pos, parts[2])
        return Item(rec, "penalty", "grad", layer, pos, parts[2])
    if parts[0] == "grad" and len(parts) >= 3 and parts[1] in layers:
        pos, layer = layers[parts[1]]
        what = ".".join(parts[2:])
        if layer.type in OWN_VALUES and what not in ("a", "input", *param_names(layer)):
            return Item(rec, "grad_value", layer.type, layer, pos, what)
    if parts[0] == "grad" and len(parts) == 3 and parts[1] in layers:
        pos, layer = layers[parts[1]]
        what = parts[2]
        fused = pos == last and losses.get(spec.loss.kind).fused_with == _act_kind(layer)
        is_act_layer = layer.type in ACTIVATION_KINDS
        if what == "a":
            if pos == last:
                return Item(rec, "loss_grad", spec.loss.kind, layer, pos)
            return Item(rec, "grad_a", ends.get(layer.name, "next"), layer, pos)
        if what == "z" or (what == "input" and is_act_layer):
            return Item(rec, "grad_z", "fused" if fused else _act_kind(layer), layer, pos)
        if what == "input":
            return Item(rec, "grad_input", layer.type, layer, pos)
        if what in param_names(layer):
            if f"{name}.data" in st_names:
                return Item(rec, "sum", "grad", layer, pos, what)
            return Item(rec, "grad_param", layer.type, layer, pos, what)
    if parts[0] == "new" and len(parts) == 3 and parts[1] in layers:
        pos, layer = layers[parts[1]]
        if parts[2] in ("running_mean", "running_var"):
            return Item(rec, "running", layer.type, layer, pos, parts[2])
        return Item(rec, "update", spec.optimizer.type, layer, pos, parts[2])
    if parts[0] == "state" and len(parts) >= 4 and parts[1] in layers:
        pos, layer = layers[parts[1]]
        return Item(rec, "state", spec.optimizer.type, layer, pos, parts[2])
    if len(parts) == 2 and parts[0] in layers:
        pos, layer = layers[parts[0]]
        what = parts[1]
        if layer.type in OWN_VALUES and what not in ("a", *param_names(layer)):
            return Item(rec, "value", layer.type, layer, pos, what)
        if what == "z":
            return Item(rec, "linear", layer.type, layer, pos)
        if what == "a":
            if layer.type in PARAMETRIC or layer.type in ACTIVATION_KINDS:
                return Item(rec, "activation", _act_kind(layer), layer, pos)
            return Item(rec, "layer", layer.type, layer, pos)
        if what in param_names(layer):
            return Item(rec, "given", "param", layer, pos, what)
        if what in ("mean", "var", "xhat") and layer.type == "batchnorm":
            return Item(rec, "bn", what, layer, pos)
        if what == "mask" and layer.type == "dropout":
            return Item(rec, "given", "mask", layer, pos)
        return Item(rec, "recorded", f"{layer.type}.{what}", layer, pos)
    return Item(rec, "other", "")


def _parts(name: str, layers: Container[str]) -> list[str]:
    """A value name split at its dots, with a layer's name kept whole even when it has dots
    (grad.res.fc.weights -> grad, res.fc, weights): the longest layer name that fits."""
    parts = name.split(".")
    head = 1 if parts[0] in ("grad", "new", "state") else 0
    for k in range(len(parts) - head, 1, -1):
        joined = ".".join(parts[head : head + k])
        if joined in layers:
            return [*parts[:head], joined, *parts[head + k :]]
    return parts


def fallback(ctx: Ctx, item: Item, index: tuple[int, ...], note: str = FALLBACK_NOTE) -> Work:
    """The record's own formula and the element's value."""
    v = float(item.record.value[index]) if index else float(item.record.value)
    return Work(
        element_name(item.record.name, index),
        index,
        item.record.formula,
        "",
        ctx.f.result(v),
        note,
        value=v,
    )


def explain_element(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """The explanation of one element (index as shown), never raising."""
    fn = lookup(item.role, item.kind)
    if fn is None:
        return fallback(ctx, item, index)
    try:
        return fn(ctx, item, index)
    except Exception as exc:  # an explanation must never stop a run: show the formula
        return fallback(ctx, item, index, f"{FALLBACK_NOTE} ({type(exc).__name__}: {exc})")
