"""The sub-steps a person rounds inside one formula, for the answer checker's allowance.

Computing z = w₁x₁ + w₂x₂ + b by hand, a person writes each product w·x rounded before adding
(0.818 + 0.447 + 0.05 = 1.315 where the exact value is 1.3144); for σ(z) = 1/(1 + e^(−z))
they round e^(−z) first; for θ′ = θ − η·g they round η·g. Each such sub-step s moves the
value v by |∂v/∂s| times its own rounding. A unit states, for each value it computes, the sum
of those partial derivatives, exactly (from the unit's own formula), in two forms:

  count = Σ_s |∂v/∂s|        for rounding to fixed decimals: each s is off by ½·10⁻ᵈ
  size  = Σ_s |∂v/∂s|·|s|    for rounding to significant figures: each s off by ½·|s|·10^(1−S)

A value that is one operation on numbers already written (a − y, a single product, a sum of
written numbers) has no sub-steps. Arrays are element-wise in the value's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class SubSteps:
    count: Array
    size: Array

    @staticmethod
    def none(shape: tuple[int, ...] = ()) -> SubSteps:
        return SubSteps(np.zeros(shape), np.zeros(shape))

    @staticmethod
    def of(sensitivity: Array, step: Array) -> SubSteps:
        """One sub-step s per element with ∂v/∂s = sensitivity."""
        sens = np.abs(np.asarray(sensitivity, dtype=np.float64))
        return SubSteps(sens, sens * np.abs(np.asarray(step, dtype=np.float64)))

    def __add__(self, other: SubSteps) -> SubSteps:
        return SubSteps(self.count + other.count, self.size + other.size)

    def scaled(self, k: Array | float) -> SubSteps:
        """The sub-steps of k·v (k a constant)."""
        k = np.abs(np.asarray(k, dtype=np.float64))
        return SubSteps(self.count * k, self.size * k)

    def where(self, keep: Array) -> SubSteps:
        """Only where `keep` is true (elsewhere the value has no sub-steps)."""
        return SubSteps(np.where(keep, self.count, 0.0), np.where(keep, self.size, 0.0))

    def reshaped(self, shape: tuple[int, ...]) -> SubSteps:
        return SubSteps(
            np.broadcast_to(self.count, shape).copy()
            if np.ndim(self.count) == 0
            else np.reshape(self.count, shape),
            np.broadcast_to(self.size, shape).copy()
            if np.ndim(self.size) == 0
            else np.reshape(self.size, shape),
        )


def nonzero(a: Array) -> Array:
    return (np.asarray(a) != 0).astype(np.float64)


def sums_of_products(count: Array, size: Array, terms: Array) -> SubSteps:
    """v = Σ of `count` products (size = Σ |product|) and `terms` terms in all: the products
    are sub-steps (∂v/∂product = 1) unless v is one product alone, which is v itself."""
    return SubSteps(np.asarray(count, dtype=np.float64), np.asarray(size, dtype=np.float64)).where(
        np.asarray(terms) >= 2
    )
