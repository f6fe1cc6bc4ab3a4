"""Flatten: (N, C, H, W) -> (N, C·H·W), row-major; the gradient is reshaped back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc.layers import Layer
from bpcalc.layers.flatten.spec import FlattenSpec
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src

Array = np.ndarray


@dataclass(frozen=True)
class FlattenCache:
    x_shape: tuple[int, ...]


class Flatten(Layer):
    """(N, C, H, W) -> (N, C·H·W) in row-major (C, H, W) order."""

    types = ("flatten",)

    def __init__(self, spec: Any = None) -> None:
        self.spec = spec

    @classmethod
    def from_spec(cls, spec: Any) -> Flatten:
        return cls(spec)

    def forward_formula(self) -> str:
        return "a = flatten(x) (row-major)"

    def grad_input_formula(self) -> str:
        return "∂L/∂x = reshape(∂L/∂a)"

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, FlattenCache]:
        return x.reshape(x.shape[0], -1), FlattenCache(x.shape)

    def backward(
        self, dout: Array, cache: FlattenCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        return dout.reshape(cache.x_shape), {}


# -- reading the layer from the network file ----------------------------------------------


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> FlattenSpec:
    F.common(lsrc, ())
    return FlattenSpec(
        **F.frame(lsrc, name, ltype, shape, sq, (V.vector_len(shape),), squeezed_out=False),
    )
