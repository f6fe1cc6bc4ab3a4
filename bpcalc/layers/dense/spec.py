"""The spec of a dense layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcalc.network.types import ActivationSpec, LayerSpec


@dataclass(frozen=True)
class DenseSpec(LayerSpec):
    """A dense layer: z = W·x + b (or x·W + b), its weights and bias as the file gives them."""

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
