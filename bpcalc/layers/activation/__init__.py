"""An activation as a layer of its own (`type: relu`): a = f(x), ∂L/∂x = ∂L/∂a ⊙ f′(x).

The op itself passes its input on (z = x); the engine applies the activation unit after it,
as it does inside a dense or conv2d layer. The formulas are the activation's, written in x.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpcalc import activations
from bpcalc.layers import Layer
from bpcalc.layers.activation.spec import ActivationLayerSpec
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.types import ActivationSpec
from bpcalc.network.yaml_source import Src

Array = np.ndarray


class ActivationLayer(Layer):
    types = activations.kinds()

    def __init__(self, spec: Any = None) -> None:
        self.spec = spec

    @classmethod
    def from_spec(cls, spec: Any) -> ActivationLayer:
        return cls(spec)

    def _unit(self) -> activations.Activation:
        return self.spec.activation.unit()

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, None]:
        return x, None

    def backward(self, dz: Array, cache: None, params: dict[str, Array]) -> tuple[Array, dict]:
        return dz, {}

    def forward_formula(self) -> str:
        return self._unit().formula().replace("z", "x")

    def grad_input_formula(self) -> str:
        return self._unit().grad_formula().replace("∂L/∂z", "∂L/∂x")


# -- reading the layer from the network file ----------------------------------------------


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> ActivationLayerSpec:
    unit = activations.unit_class(ltype)
    F.common(lsrc, (*unit.options, *unit.choices))
    if not unit.elementwise and len(shape) not in (1, 2):
        raise lsrc.error(
            f"{ltype} layer {name!r} needs a vector input (or a sequence, T x d), but {prev} "
            f"gives shape {V._fmt(shape)}"
        )
    F.check_sequence_options(lsrc, name, shape)
    return ActivationLayerSpec(
        **F.frame(lsrc, name, ltype, shape, sq),
        activation=ActivationSpec(ltype, F.activation_options(lsrc, ltype)),
    )
