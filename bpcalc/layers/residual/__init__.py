"""A residual block: a = x + f(x), where f is the block's own list of layers (`layers:`).

Forward: f's layers run one after another on x (through the engine's own path: their values
are named <block>.<inner>.<value>, e.g. res.fc1.z), then the skip connection adds x back:
  a = x + f(x)        (f(x) must have the shape of x)
Backward: a depends on x along two paths, the skip connection (∂a/∂x = I) and f, so
  ∂L/∂x = ∂L/∂a + ∂L/∂x through f
with ∂L/∂x through f the chain rule back through f's layers from ∂L/∂f(x) = ∂L/∂a. Both paths
are recorded (grad.res.input.skip, grad.res.input.f) and their sum is grad.res.input. The
block has no parameters of its own; f's layers have theirs (res.fc1.weights, ...).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from bpcalc.layers import Layer, LayerSlip, Params, Scope
from bpcalc.layers.residual.spec import ResidualSpec
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.parse import parse_layers
from bpcalc.network.yaml_source import Src

Array = np.ndarray


class Residual(Layer):
    """a = x + f(x); f: the block's inner layers, which the engine runs (see Scope)."""

    types = ("residual",)

    def __init__(self, spec: Any = None, skip_grad: bool = True) -> None:
        self.spec = spec
        self.skip_grad = skip_grad

    @classmethod
    def from_spec(cls, spec: Any) -> Residual:
        return cls(spec, spec.skip_grad)

    def forward_with(self, x: Array, params: Params, scope: Scope) -> tuple[Array, None]:
        """a = x + f(x). x: (N, *shape) -> a: the same shape."""
        return x + scope.forward(x), None

    def backward_with(
        self, da: Array, cache: None, params: Params, scope: Scope
    ) -> tuple[Array | None, dict[str, Array]]:
        """∂L/∂x = ∂L/∂a (the skip path) + ∂L/∂x through f (f's layers, from ∂L/∂f = ∂L/∂a)."""
        name = self.spec.name
        skip = scope.record("input.skip", da, f"∂L/∂x via the skip path = ∂L/∂a of {name}")
        through = scope.backward(da, f"∂L/∂a = ∂L/∂a of {name} (a = x + f(x), ∂a/∂f = 1)")
        if through is None:  # nobody reads this block's ∂L/∂x (training)
            return None, {}
        first = self.spec.layers[0].name
        through = scope.record(
            "input.f", through, f"∂L/∂x through f = ∂L/∂x of {first} (back through f's layers)"
        )
        return (skip + through if self.skip_grad else through), {}

    # -- what the user sees -----------------------------------------------------------------
    def forward_formula(self) -> str:
        return f"a = x + f(x), f(x) = {self.spec.layers[-1].name}.a"

    def grad_param_formula(self, param: str) -> str:
        raise KeyError(param)  # a residual block has no parameters of its own

    def grad_input_formula(self) -> str:
        return "∂L/∂x = ∂L/∂a + ∂L/∂x through f (the skip path and the path through f)"

    def convention(self) -> str:
        inner = " → ".join(layer.name for layer in self.spec.layers)
        return f"residual block: a = x + f(x), f = {inner}; ∂L/∂x = ∂L/∂a + ∂L/∂x through f"

    # -- the checker ----------------------------------------------------------------------
    def slips(self) -> list[LayerSlip]:
        if not self.skip_grad:
            return []
        name = self.spec.name
        return [
            LayerSlip(
                "residual_no_skip",
                dataclasses.replace(self.spec, skip_grad=False),
                f"In block {name} you back-propagated only through f and dropped the skip "
                f"path: a = x + f(x) depends on x twice, so ∂L/∂x = ∂L/∂a + ∂L/∂x through f "
                f"(grad.{name}.input = grad.{name}.input.skip + grad.{name}.input.f).",
            )
        ]


# -- reading the block from the network file ----------------------------------------------


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> ResidualSpec:
    F.common(lsrc, ("layers",))
    if "layers" not in lsrc.value:
        raise lsrc.error(f"residual block {name!r} needs layers: (the layers of f in a = x + f(x))")
    src = lsrc.child("layers")
    if not isinstance(src.value, list) or not src.value:
        raise src.error(
            f"residual block {name!r}: layers should be a non-empty list of layers (f in "
            f"a = x + f(x)), found {V.type_name(src.value)}"
        )
    inner = parse_layers(src, shape, sq, prefix=f"{name}.")
    last = inner[-1]
    if tuple(last.out_shape) != tuple(shape):
        shown = shape[1:] if sq else shape
        out = last.out_shape[1:] if last.squeezed_out else last.out_shape
        raise lsrc.error(
            f"residual block {name!r}: a = x + f(x) needs f(x) in the shape of x, "
            f"{V._fmt(shown)}, but its layers end in shape {V._fmt(out)} "
            f"(layer {last.name!r}); change them so that they give {V._fmt(shown)}"
        )
    return ResidualSpec(**F.frame(lsrc, name, ltype, shape, sq), layers=tuple(inner))
