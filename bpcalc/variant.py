"""Deliberate slips the engine can make on request, so the answer checker can name a
student's mistake by reproducing it. The defaults mean the correct maths; the engine only
looks at a Variant when one is passed (`engine.run(spec, variant=...)`).

Slips that are a different network (a loss without its ½, a flipped kernel, a transposed
weight matrix, the update's sign or learning rate, the other class's target) are made by
changing the spec instead (see bpcalc/check/diagnose.py); only what no spec can express
lives here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpcalc.ops import activations as act_ops

Array = np.ndarray
# (layer name, the parameters the forward pass used, their gradients) -> the parameters to
# back-propagate ∂L/∂x through
BackpropParams = Callable[[str, dict[str, Array], dict[str, Array]], dict[str, Array]]


@dataclass(frozen=True)
class Variant:
    """One way of getting a step wrong.

    no_derivative: layers whose activation derivative is left out: ∂L/∂z = ∂L/∂a.
    relu_derivative: "standard" (1 if z > 0 else 0), "one_at_zero" (1 if z ≥ 0),
        "flipped" (1 if z < 0 else 0: the wrong side of 0).
    sigmoid_derivative: "standard" (σ′ = a(1 − a)) or "sigma" (σ′ taken as σ(z) = a).
    log_base: cross-entropy with log base b instead of e: the loss and its gradient are
        divided by ln b.
    backprop_params: when set, ∂L/∂x of a parametric layer goes through the parameters this
        function returns (e.g. the already-updated ones) instead of those the forward pass used.
    """

    no_derivative: frozenset[str] = frozenset()
    relu_derivative: str = "standard"
    sigmoid_derivative: str = "standard"
    log_base: float | None = None
    backprop_params: BackpropParams | None = None

    @property
    def loss_factor(self) -> float:
        """log_b(p) = ln(p) / ln(b): the factor on the loss and every gradient."""
        return 1.0 / math.log(self.log_base) if self.log_base else 1.0

    def activation_backward(
        self, layer: str, kind: str, da: Array, z: Array, a: Array, slope: float
    ) -> Array:
        """∂L/∂z from ∂L/∂a, with this variant's slip (if any) in f′."""
        if layer in self.no_derivative:
            return da
        if kind == "relu" and self.relu_derivative != "standard":
            d = z >= 0 if self.relu_derivative == "one_at_zero" else z < 0
            return da * d.astype(da.dtype)
        if kind == "sigmoid" and self.sigmoid_derivative == "sigma":
            return da * a
        return act_ops.backward(kind, da, z, a, slope)
