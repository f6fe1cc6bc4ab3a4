"""Optimizers: they only update, after the backward pass, from the gradients it recorded.

Plain gradient descent: θ ← θ − η · ∂L/∂θ. Momentum, Nesterov, RMSprop and Adam follow
torch.optim's update rules exactly (see each class for where textbooks differ); their
per-parameter state is returned from `update` and recorded as state.<layer>.<param>.<slot>.
Each optimizer registers itself under its YAML name below its class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray


class Optimizer:
    """The base of every update rule.

    rule: the update rule in words and symbols, for the conventions block; formula: the same,
    short, for the Update table; slots: the per-parameter state it keeps (velocity, m, v);
    slot_formulas: how each slot is computed.
    """

    slots: tuple[str, ...] = ()

    @property
    def rule(self) -> str:
        raise NotImplementedError

    @property
    def formula(self) -> str:
        raise NotImplementedError

    @property
    def slot_formulas(self) -> dict[str, str]:
        return {}

    def init_state(self, theta: Array) -> dict[str, Array]:
        return {}

    def update(
        self,
        theta: Array,
        grad: Array,
        state: dict[str, Array],
        t: int,
        in_place: bool = False,
    ) -> tuple[Array, dict[str, Array]]:
        """One update at step t (1-based): returns the new θ and the new state.

        in_place: θ and the gradient may be overwritten (training, where nobody keeps them);
        a rule that can, returns θ itself, with the same numbers as a new array would hold."""
        raise NotImplementedError


_REGISTRY: dict[str, Callable[[Any], Optimizer]] = {}


def register(name: str, make: Callable[[Any], Optimizer]) -> None:
    """make: the optimizer from an OptimizerSpec (its hyper-parameters)."""
    _REGISTRY[name] = make


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def build(spec: Any) -> Optimizer:
    """The optimizer an OptimizerSpec asks for."""
    return _REGISTRY[spec.type](spec)


@dataclass(frozen=True)
class SGD(Optimizer):
    lr: float
    slots: tuple[str, ...] = ()

    @property
    def rule(self) -> str:
        return f"θ ← θ − η · ∂L/∂θ (plain gradient descent, η = {self.lr:g})"

    @property
    def formula(self) -> str:
        return "θ′ = θ − η·∂L/∂θ"

    def update(
        self,
        theta: Array,
        grad: Array,
        state: dict[str, Array],
        t: int,
        in_place: bool = False,
    ) -> tuple[Array, dict[str, Array]]:
        if (
            in_place
            and type(self.lr) is float
            and grad.dtype == theta.dtype
            and grad.shape == theta.shape
            and grad.flags.writeable
            and theta.flags.writeable
        ):  # θ −= η·g: the same numbers as θ − η·g, without two new arrays
            np.subtract(theta, np.multiply(grad, self.lr, out=grad), out=theta)
            return theta, {}
        return theta - self.lr * grad, {}


register("sgd", lambda s: SGD(s.lr))


@dataclass(frozen=True)
class Momentum(Optimizer):
    """SGD with momentum, as torch.optim.SGD(momentum=μ, dampening=d):

    v ← μ·v + (1 − d)·g  (on the first step v ← g, no dampening),   θ ← θ − η·v.

    Textbooks often write v ← μ·v − η·g, θ ← θ + v instead: with a constant η that is the
    same θ sequence (their v is −η times this one), but here v holds no learning rate.
    """

    lr: float
    momentum: float = 0.9
    dampening: float = 0.0
    slots: tuple[str, ...] = ("velocity",)

    @property
    def rule(self) -> str:
        damp = f"(1 − {self.dampening:g})·" if self.dampening else ""
        return (
            f"v ← μ·v + {damp}∂L/∂θ, θ ← θ − η·v (SGD with momentum as in PyTorch: v starts "
            f"as the first gradient, and holds no η; η = {self.lr:g}, μ = {self.momentum:g})"
        )

    @property
    def formula(self) -> str:
        return "θ′ = θ − η·v"

    @property
    def slot_formulas(self) -> dict[str, str]:
        damp = f"(1 − {self.dampening:g})·" if self.dampening else ""
        return {"velocity": f"v = μ·v + {damp}∂L/∂θ (v = ∂L/∂θ on step 1)"}

    def init_state(self, theta: Array) -> dict[str, Array]:
        return {}

    def update(
        self,
        theta: Array,
        grad: Array,
        state: dict[str, Array],
        t: int,
        in_place: bool = False,
    ) -> tuple[Array, dict[str, Array]]:
        if "velocity" not in state:
            v = grad.copy()
        else:
            v = self.momentum * state["velocity"] + (1 - self.dampening) * grad
        return theta - self.lr * v, {"velocity": v}


register("momentum", lambda s: Momentum(s.lr, s.momentum, s.dampening))


@dataclass(frozen=True)
class Nesterov(Optimizer):
    """Nesterov momentum, as torch.optim.SGD(momentum=μ, nesterov=True):

    v ← μ·v + g  (v ← g on the first step),   θ ← θ − η·(g + μ·v).

    Textbooks write the "look-ahead" form (Sutskever et al. 2013): g is taken at θ + μ·v and
    v ← μ·v − η·g, θ ← θ + v. PyTorch's form is that one rewritten in terms of the look-ahead
    point, so the θ it stores is the look-ahead point (the sequences differ by μ·v); g is
    taken at the stored θ.
    """

    lr: float
    momentum: float = 0.9
    slots: tuple[str, ...] = ("velocity",)

    @property
    def rule(self) -> str:
        return (
            "v ← μ·v + ∂L/∂θ, θ ← θ − η·(∂L/∂θ + μ·v) (Nesterov momentum as in PyTorch; "
            f"v starts as the first gradient; η = {self.lr:g}, μ = {self.momentum:g})"
        )

    @property
    def formula(self) -> str:
        return "θ′ = θ − η·(∂L/∂θ + μ·v)"

    @property
    def slot_formulas(self) -> dict[str, str]:
        return {"velocity": "v = μ·v + ∂L/∂θ (v = ∂L/∂θ on step 1)"}

    def init_state(self, theta: Array) -> dict[str, Array]:
        return {}

    def update(
        self,
        theta: Array,
        grad: Array,
        state: dict[str, Array],
        t: int,
        in_place: bool = False,
    ) -> tuple[Array, dict[str, Array]]:
        v = grad.copy() if "velocity" not in state else self.momentum * state["velocity"] + grad
        return theta - self.lr * (grad + self.momentum * v), {"velocity": v}


register("nesterov", lambda s: Nesterov(s.lr, s.momentum))


@dataclass(frozen=True)
class RMSprop(Optimizer):
    """RMSprop, as torch.optim.RMSprop(alpha=α, eps=ε):

    v ← α·v + (1 − α)·g²  (v starts at 0),   θ ← θ − η·g / (√v + ε).

    ε is added after the square root (PyTorch); some texts write √(v + ε). Hinton's lecture
    uses α = 0.9, PyTorch's default is α = 0.99.
    """

    lr: float
    alpha: float = 0.99
    eps: float = 1e-8
    slots: tuple[str, ...] = ("v",)

    @property
    def rule(self) -> str:
        return (
            "v ← α·v + (1 − α)·(∂L/∂θ)², θ ← θ − η·∂L/∂θ / (√v + ε) (RMSprop as in PyTorch, "
            f"v starts at 0; η = {self.lr:g}, α = {self.alpha:g}, ε = {self.eps:g})"
        )

    @property
    def formula(self) -> str:
        return "θ′ = θ − η·∂L/∂θ / (√v + ε)"

    @property
    def slot_formulas(self) -> dict[str, str]:
        return {"v": "v = α·v + (1 − α)·(∂L/∂θ)²"}

    def init_state(self, theta: Array) -> dict[str, Array]:
        return {"v": np.zeros_like(theta)}

    def update(
        self,
        theta: Array,
        grad: Array,
        state: dict[str, Array],
        t: int,
        in_place: bool = False,
    ) -> tuple[Array, dict[str, Array]]:
        v = self.alpha * state["v"] + (1 - self.alpha) * grad * grad
        return theta - self.lr * grad / (np.sqrt(v) + self.eps), {"v": v}


register("rmsprop", lambda s: RMSprop(s.lr, s.alpha, s.eps))


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam, as torch.optim.Adam(betas=(β₁, β₂), eps=ε), t = 1, 2, ...:

    m ← β₁·m + (1 − β₁)·g      v ← β₂·v + (1 − β₂)·g²      (both start at 0)
    m̂ = m / (1 − β₁ᵗ)          v̂ = v / (1 − β₂ᵗ)
    θ ← θ − η·m̂ / (√v̂ + ε)

    As in Kingma & Ba's Algorithm 1; PyTorch folds the corrections into the step size, which
    is the same number up to rounding. ε is added after the square root.
    """

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    slots: tuple[str, ...] = ("m", "v", "m_hat", "v_hat")

    @property
    def rule(self) -> str:
        return (
            "m ← β₁·m + (1 − β₁)·∂L/∂θ, v ← β₂·v + (1 − β₂)·(∂L/∂θ)², m̂ = m/(1 − β₁ᵗ), "
            "v̂ = v/(1 − β₂ᵗ), θ ← θ − η·m̂/(√v̂ + ε) (Adam as in PyTorch, m and v start at 0, "
            f"t = 1 on the first step; η = {self.lr:g}, β₁ = {self.beta1:g}, "
            f"β₂ = {self.beta2:g}, ε = {self.eps:g})"
        )

    @property
    def formula(self) -> str:
        return "θ′ = θ − η·m̂ / (√v̂ + ε)"

    @property
    def slot_formulas(self) -> dict[str, str]:
        return {
            "m": "m = β₁·m + (1 − β₁)·∂L/∂θ",
            "v": "v = β₂·v + (1 − β₂)·(∂L/∂θ)²",
            "m_hat": "m̂ = m / (1 − β₁ᵗ)",
            "v_hat": "v̂ = v / (1 − β₂ᵗ)",
        }

    def init_state(self, theta: Array) -> dict[str, Array]:
        return {"m": np.zeros_like(theta), "v": np.zeros_like(theta)}

    def update(
        self,
        theta: Array,
        grad: Array,
        state: dict[str, Array],
        t: int,
        in_place: bool = False,
    ) -> tuple[Array, dict[str, Array]]:
        m = self.beta1 * state["m"] + (1 - self.beta1) * grad
        v = self.beta2 * state["v"] + (1 - self.beta2) * grad * grad
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        new = theta - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return new, {"m": m, "v": v, "m_hat": m_hat, "v_hat": v_hat}


register("adam", lambda s: Adam(s.lr, s.beta1, s.beta2, s.eps))


# --- gradient clipping by norm (optimizer: {clip_norm: c}) ----------------------------------

CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides by ‖g‖ + 1e-6
GRAD_NORM_FORMULA = "‖g‖ = √(Σ (∂L/∂θ)²) over every element of every trained parameter"


def clip_scale(grads: list[Array], max_norm: float) -> tuple[float, float]:
    """(‖g‖, c): the L2 norm of all the gradients together, and the factor they are scaled by,
    c = max_norm / (‖g‖ + 1e-6) when that is below 1, else 1 (torch.nn.utils.clip_grad_norm_).
    Frozen parameters are not in the norm (as PyTorch leaves out what has no gradient)."""
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    c = max_norm / (norm + CLIP_EPS)
    return norm, (c if c < 1.0 else 1.0)


def clip_in_place(grads: list[Array], max_norm: float) -> None:
    """Scale the gradients by clip_scale's c, in place (training)."""
    _, c = clip_scale(grads, max_norm)
    if c < 1.0:
        for g in grads:
            g *= c


def clipped_formula(max_norm: float, norm: float, c: float) -> str:
    return (
        f"ĝ = c·∂L/∂θ, c = {max_norm:g}/(‖g‖ + 1e-6) = {c:.6g}: ‖g‖ = {norm:.6g} is above "
        f"clip_norm {max_norm:g}, so every gradient is scaled by c"
    )


def with_clipped(formula: str) -> str:
    """The update rule read with the clipped gradient ĝ in place of ∂L/∂θ."""
    return formula.replace("∂L/∂θ", "ĝ") + " (ĝ: the clipped gradient)"


def clip_convention(max_norm: float) -> str:
    return (
        f"gradient clipping by norm: when ‖g‖, the norm of all the gradients together, is "
        f"above {max_norm:g}, every gradient is scaled by {max_norm:g}/(‖g‖ + 1e-6) before the "
        "update (torch.nn.utils.clip_grad_norm_); grad_norm is shown every step, the clipped "
        "gradients when it fires"
    )
