"""Optimizers: they only update, after the backward pass, from the gradients it recorded.

Plain gradient descent: θ ← θ − η · ∂L/∂θ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bpcalc.spec.schema import OptimizerSpec

Array = np.ndarray


class Optimizer(Protocol):
    rule: str  # the update rule in words and symbols, for the conventions block
    formula: str  # the same, short, for the Update table
    slots: tuple[str, ...]  # names of the per-parameter state it keeps (velocity, m, v, ...)

    def init_state(self, theta: Array) -> dict[str, Array]: ...

    def update(
        self, theta: Array, grad: Array, state: dict[str, Array], t: int
    ) -> tuple[Array, dict[str, Array]]:
        """One update at step t (1-based): returns the new θ and the new state."""
        ...


@dataclass(frozen=True)
class SGD:
    lr: float
    slots: tuple[str, ...] = ()

    @property
    def rule(self) -> str:
        return f"θ ← θ − η · ∂L/∂θ (plain gradient descent, η = {self.lr:g})"

    @property
    def formula(self) -> str:
        return "θ′ = θ − η·∂L/∂θ"

    def init_state(self, theta: Array) -> dict[str, Array]:
        return {}

    def update(
        self, theta: Array, grad: Array, state: dict[str, Array], t: int
    ) -> tuple[Array, dict[str, Array]]:
        return theta - self.lr * grad, {}


def build(spec: OptimizerSpec) -> Optimizer:
    if spec.type == "sgd":
        return SGD(spec.lr)
    raise AssertionError(f"unknown optimizer {spec.type}")
