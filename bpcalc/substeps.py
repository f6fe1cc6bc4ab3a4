"""The sub-steps a person rounds inside one formula, for the answer checker's allowance.

Computing z = w₁x₁ + w₂x₂ + b by hand, a person writes each product w·x rounded before adding
(0.818 + 0.447 + 0.05 = 1.315 where the exact value is 1.3144); for σ(z) = 1/(1 + e^(−z))
they round e^(−z) first; for θ′ = θ − η·g they round η·g. Each such sub-step s moves the
value v by |∂v/∂s| times its own rounding. A unit states, for each value it computes,

    Σ_s |∂v/∂s| · radius(s)

with the partial derivatives exact (from the unit's own formula) and the sub-steps' values
s as this step has them; `radius` is the checker's: how far a person's rounding can move a
number s (0 for a product such as 0.1·4 that is exact at the decimals written). A value that
is one operation on numbers already written (a − y, a single product, a sum of written
numbers) has no sub-steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray
# radius(s) -> how far rounding moves each number of s, element-wise
Radius = Callable[[Array], Array]
# radius(key, s): the same, for the sub-steps of the value a unit calls `key` ("z", "input")
KeyedRadius = Callable[[str, Array], Array]


def term(sensitivity: Array | float, step: Array, radius: Radius) -> Array:
    """One sub-step s per element with ∂v/∂s = sensitivity."""
    s = np.asarray(step, dtype=np.float64)
    return np.abs(np.asarray(sensitivity, dtype=np.float64)) * radius(s)


def sum_of_products(products: Array, axes: tuple[int, ...], radius: Radius, extra: Array) -> Array:
    """v = Σ over `axes` of the products (each a sub-step, ∂v/∂product = 1), plus `extra`
    terms (a bias: 1 where there is one): none when v is one product alone."""
    p = np.asarray(products, dtype=np.float64)
    rounded = radius(p).sum(axis=axes)
    terms = (p != 0).sum(axis=axes) + np.asarray(extra)
    return np.where(terms >= 2, rounded, 0.0)
