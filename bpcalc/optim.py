"""Optimizers: they only update, after the backward pass, from the gradients it recorded.

Plain gradient descent: θ ← θ − η · ∂L/∂θ. Momentum, Nesterov, RMSprop and Adam (in
bpcalc/optim_stateful.py, imported when used) follow torch.optim's update rules exactly
(see each class for where textbooks differ); their per-parameter state is returned from
`update` and recorded as state.<layer>.<param>.<slot>.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bpcalc.network.types import OptimizerSpec

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
    # The stateful rules are imported only when asked for (start-up, issue 7).
    from bpcalc.optim_stateful import Adam, Momentum, Nesterov, RMSprop

    if spec.type == "momentum":
        return Momentum(spec.lr, spec.momentum, spec.dampening)
    if spec.type == "nesterov":
        return Nesterov(spec.lr, spec.momentum)
    if spec.type == "rmsprop":
        return RMSprop(spec.lr, spec.alpha, spec.eps)
    if spec.type == "adam":
        return Adam(spec.lr, spec.beta1, spec.beta2, spec.eps)
    raise AssertionError(f"unknown optimizer {spec.type}")


_STATEFUL = ("Momentum", "Nesterov", "RMSprop", "Adam")


def __getattr__(name: str) -> object:
    """bpcalc.optim.Adam and the other stateful optimizers, from bpcalc.optim_stateful."""
    if name in _STATEFUL:
        from bpcalc import optim_stateful

        return getattr(optim_stateful, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
