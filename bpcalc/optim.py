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

from bpcalc.substeps import KeyedRadius, term

Array = np.ndarray
# slot(name, value) -> the value to go on with: how the engine records an optimizer's state as
# it is computed (and the checker substitutes a student's m̂ there)
Slot = Callable[[str, Array], Array]
Radius = Callable[[Array], Array]


def _as_is(name: str, value: Array) -> Array:
    return value


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

    # -- the checker ----------------------------------------------------------------------
    def slips(self) -> list[OptimizerSlip]:
        """Slips a student makes with this rule: the rule that makes each one."""
        return []

    def substeps(
        self,
        theta: Array,
        grad: Array,
        prev: dict[str, Array],
        state: dict[str, Array],
        t: int,
        radius: KeyedRadius,
    ) -> dict[str, Array]:
        """Σ_s |∂v/∂s|·radius(key, s) over the sub-steps a person rounds (bpcalc/substeps.py)
        computing each state value (key: the slot) and the new θ (key "new"), from the
        state before (prev) and after (state) this step."""
        return {}

    def velocity_scaled(self, scale: float) -> Optimizer | None:
        """The same rule with its velocity written scale times as large (η inside it: v ←
        μ·v + η·g, θ ← θ − v for scale η; v ← μ·v − η·g, θ ← θ + v for −η), None for a rule
        without a velocity."""
        return None

    def update(
        self,
        theta: Array,
        grad: Array,
        state: dict[str, Array],
        t: int,
        in_place: bool = False,
        slot: Slot = _as_is,
    ) -> tuple[Array, dict[str, Array]]:
        """One update at step t (1-based): returns the new θ and the new state.

        in_place: θ and the gradient may be overwritten (training, where nobody keeps them);
        a rule that can, returns θ itself, with the same numbers as a new array would hold.
        slot: each state value is handed to it as it is computed, and the rule goes on with
        what it returns."""
        raise NotImplementedError


@dataclass(frozen=True)
class OptimizerSlip:
    key: str
    optimizer: Optimizer  # the rule that makes the slip
    message: str


def _step(lr: float, step: Array, radius: Radius) -> Array:
    """θ − η·s: the product η·s is a sub-step (none when η = 1)."""
    if lr == 1:
        return np.zeros(np.shape(step))
    return term(1.0, lr * step, radius)


def _divided(lr: float, num: Array, v: Array, eps: float, radius: Radius) -> Array:
    """θ − η·num/(√v + ε) worked as r = √v, q = num/(r + ε), η·q: each rounded."""
    r = np.sqrt(v)
    d = r + eps
    q = num / d
    return term(lr * num / (d * d), r, radius) + term(lr, q, radius) + _step(lr, q, radius)


def _keyed(radius: KeyedRadius, key: str) -> Radius:
    return lambda s: radius(key, s)


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
        slot: Slot = _as_is,
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

    def substeps(
        self,
        theta: Array,
        grad: Array,
        prev: dict[str, Array],
        state: dict[str, Array],
        t: int,
        radius: KeyedRadius,
    ) -> dict[str, Array]:
        return {"new": _step(self.lr, grad, _keyed(radius, "new"))}


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
        slot: Slot = _as_is,
    ) -> tuple[Array, dict[str, Array]]:
        if "velocity" not in state:
            v = grad.copy()
        else:
            v = self.momentum * state["velocity"] + (1 - self.dampening) * grad
        v = slot("velocity", v)
        return theta - self.lr * v, {"velocity": v}

    def substeps(
        self,
        theta: Array,
        grad: Array,
        prev: dict[str, Array],
        state: dict[str, Array],
        t: int,
        radius: KeyedRadius,
    ) -> dict[str, Array]:
        return {
            "velocity": _velocity_substeps(
                self.momentum, self.dampening, grad, prev, _keyed(radius, "velocity")
            ),
            "new": _step(self.lr, state["velocity"], _keyed(radius, "new")),
        }

    def velocity_scaled(self, scale: float) -> Optimizer | None:
        return ScaledVelocity(self, scale)

    def slips(self) -> list[OptimizerSlip]:
        return [_textbook_velocity(self)]


register("momentum", lambda s: Momentum(s.lr, s.momentum, s.dampening))


def _velocity_substeps(
    momentum: float, dampening: float, grad: Array, prev: dict[str, Array], radius: Radius
) -> Array:
    """v = μ·v + (1 − d)·g: both products (none on the first step, v = g)."""
    if "velocity" not in prev:
        return np.zeros(grad.shape)
    out = term(1.0, momentum * prev["velocity"], radius)
    if dampening:
        out = out + term(1.0, (1 - dampening) * grad, radius)
    return out


def _textbook_velocity(opt: Optimizer) -> OptimizerSlip:
    lr = opt.lr  # type: ignore[attr-defined]
    return OptimizerSlip(
        "velocity_textbook",
        ScaledVelocity(opt, -lr),
        "Your velocity follows the textbook form v ← μ·v − η·g (θ ← θ + v); this network "
        f"keeps PyTorch's v ← μ·v + g (θ ← θ − η·v), whose v holds no η = {lr:g}. Both give the "
        "same new weights; to grade your velocities as written, add "
        "`conventions: {velocity: textbook}` to the sheet.",
    )


@dataclass(frozen=True)
class ScaledVelocity(Optimizer):
    """Momentum or Nesterov with the velocity written scale·v (v as PyTorch keeps it): the
    textbook v ← μ·v − η·g, θ ← θ + v for scale −η, or v ← μ·v + η·g, θ ← θ − v for η. The
    same new θ; the velocity a student writes in that form is scale times PyTorch's."""

    inner: Optimizer
    scale: float
    slots: tuple[str, ...] = ("velocity",)

    @property
    def rule(self) -> str:
        return self.inner.rule

    @property
    def formula(self) -> str:
        return self.inner.formula

    @property
    def slot_formulas(self) -> dict[str, str]:
        return self.inner.slot_formulas

    def update(
        self,
        theta: Array,
        grad: Array,
        state: dict[str, Array],
        t: int,
        in_place: bool = False,
        slot: Slot = _as_is,
    ) -> tuple[Array, dict[str, Array]]:
        inner = {k: v / self.scale for k, v in state.items()}

        def scaled(name: str, value: Array) -> Array:
            return slot(name, value * self.scale) / self.scale

        new, st = self.inner.update(theta, grad, inner, t, slot=scaled)
        return new, {k: v * self.scale for k, v in st.items()}

    def substeps(
        self,
        theta: Array,
        grad: Array,
        prev: dict[str, Array],
        state: dict[str, Array],
        t: int,
        radius: KeyedRadius,
    ) -> dict[str, Array]:
        """v = μ·v + η·g: both products (η·g alone on the first step), then θ ± v (η·g and
        μ·v a step more for Nesterov)."""
        lr = self.inner.lr  # type: ignore[attr-defined]
        mu = self.inner.momentum  # type: ignore[attr-defined]
        rv = _keyed(radius, "velocity")
        v = term(1.0, lr * grad, rv)
        if "velocity" in prev:
            v = v + term(1.0, mu * prev["velocity"], rv)
        new = np.zeros(grad.shape)
        if isinstance(self.inner, Nesterov):
            rn = _keyed(radius, "new")
            new = term(1.0, lr * grad, rn) + term(1.0, mu * state["velocity"], rn)
        return {"velocity": v, "new": new}


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
        slot: Slot = _as_is,
    ) -> tuple[Array, dict[str, Array]]:
        v = grad.copy() if "velocity" not in state else self.momentum * state["velocity"] + grad
        v = slot("velocity", v)
        return theta - self.lr * (grad + self.momentum * v), {"velocity": v}

    def substeps(
        self,
        theta: Array,
        grad: Array,
        prev: dict[str, Array],
        state: dict[str, Array],
        t: int,
        radius: KeyedRadius,
    ) -> dict[str, Array]:
        """θ − η·(g + μ·v): μ·v (∂ = η) and the product η·(g + μ·v)."""
        v = state["velocity"]
        rn = _keyed(radius, "new")
        new = term(self.lr, self.momentum * v, rn) + _step(self.lr, grad + self.momentum * v, rn)
        velocity = _velocity_substeps(self.momentum, 0.0, grad, prev, _keyed(radius, "velocity"))
        return {"velocity": velocity, "new": new}

    def velocity_scaled(self, scale: float) -> Optimizer | None:
        return ScaledVelocity(self, scale)

    def slips(self) -> list[OptimizerSlip]:
        return [_textbook_velocity(self)]


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
        slot: Slot = _as_is,
    ) -> tuple[Array, dict[str, Array]]:
        v = slot("v", self.alpha * state["v"] + (1 - self.alpha) * grad * grad)
        return theta - self.lr * grad / self._denominator(v), {"v": v}

    def _denominator(self, v: Array) -> Array:
        return np.sqrt(v) + self.eps

    def substeps(
        self,
        theta: Array,
        grad: Array,
        prev: dict[str, Array],
        state: dict[str, Array],
        t: int,
        radius: KeyedRadius,
    ) -> dict[str, Array]:
        return {
            "v": _average_of_squares(self.alpha, prev["v"], grad, _keyed(radius, "v")),
            "new": _divided(self.lr, grad, state["v"], self.eps, _keyed(radius, "new")),
        }

    def slips(self) -> list[OptimizerSlip]:
        return [
            OptimizerSlip(
                "eps_inside_sqrt",
                _RMSpropEpsInside(self.lr, self.alpha, self.eps),
                f"You put ε inside the square root, √(v + ε); RMSprop here adds ε = {self.eps:g} "
                "after it: θ ← θ − η·g / (√v + ε).",
            )
        ]


register("rmsprop", lambda s: RMSprop(s.lr, s.alpha, s.eps))


def _average_of_squares(decay: float, prev: Array, grad: Array, radius: Radius) -> Array:
    """v = β·v + (1 − β)·g²: g² (∂ = 1 − β), and both products once v was not 0."""
    g2 = grad * grad
    out = term(1 - decay, g2, radius)
    later = term(1.0, decay * prev, radius) + term(1.0, (1 - decay) * g2, radius)
    return out + np.where(prev != 0, later, 0.0)


class _RMSpropEpsInside(RMSprop):  # a plain subclass: its fields are the rule's
    """Slip: √(v + ε) for √v + ε."""

    def _denominator(self, v: Array) -> Array:
        return np.sqrt(v + self.eps)


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
        slot: Slot = _as_is,
    ) -> tuple[Array, dict[str, Array]]:
        m = slot("m", self.beta1 * state["m"] + (1 - self.beta1) * grad)
        v = slot("v", self.beta2 * state["v"] + (1 - self.beta2) * grad * grad)
        m_hat = slot("m_hat", m / self._correction(self.beta1, t))
        v_hat = slot("v_hat", v / self._correction(self.beta2, t))
        new = theta - self.lr * m_hat / self._denominator(v_hat)
        return new, {"m": m, "v": v, "m_hat": m_hat, "v_hat": v_hat}

    @staticmethod
    def _correction(beta: float, t: int) -> float:
        return 1 - beta**t

    def _denominator(self, v_hat: Array) -> Array:
        return np.sqrt(v_hat) + self.eps

    def substeps(
        self,
        theta: Array,
        grad: Array,
        prev: dict[str, Array],
        state: dict[str, Array],
        t: int,
        radius: KeyedRadius,
    ) -> dict[str, Array]:
        """m = β₁·m + (1 − β₁)·g: both products once m was not 0; v likewise with g²; m̂ and
        v̂ one division each; θ′ as RMSprop's with m̂ and v̂."""
        m_prev = prev["m"]
        rm = _keyed(radius, "m")
        m = term(1.0, self.beta1 * m_prev, rm) + term(1.0, (1 - self.beta1) * grad, rm)
        return {
            "m": np.where(m_prev != 0, m, 0.0),
            "v": _average_of_squares(self.beta2, prev["v"], grad, _keyed(radius, "v")),
            "new": _divided(
                self.lr, state["m_hat"], state["v_hat"], self.eps, _keyed(radius, "new")
            ),
        }

    def slips(self) -> list[OptimizerSlip]:
        args = (self.lr, self.beta1, self.beta2, self.eps)
        return [
            OptimizerSlip(
                "adam_no_bias_correction",
                _AdamNoCorrection(*args),
                "You left out Adam's bias correction: m̂ = m / (1 − β₁ᵗ) and v̂ = v / (1 − β₂ᵗ), "
                f"with β₁ = {self.beta1:g}, β₂ = {self.beta2:g} and t the step number "
                "(on step 1, m̂ = g and v̂ = g²).",
            ),
            OptimizerSlip(
                "eps_inside_sqrt",
                _AdamEpsInside(*args),
                f"You put ε inside the square root, √(v̂ + ε); Adam adds ε = {self.eps:g} after "
                "it: θ ← θ − η·m̂ / (√v̂ + ε).",
            ),
        ]


register("adam", lambda s: Adam(s.lr, s.beta1, s.beta2, s.eps))


class _AdamNoCorrection(Adam):  # a plain subclass: its fields are the rule's
    """Slip: m̂ = m and v̂ = v."""

    @staticmethod
    def _correction(beta: float, t: int) -> float:
        return 1.0


class _AdamEpsInside(Adam):  # a plain subclass: its fields are the rule's
    """Slip: √(v̂ + ε) for √v̂ + ε."""

    def _denominator(self, v_hat: Array) -> Array:
        return np.sqrt(v_hat + self.eps)

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
