"""Losses, one unit each: the per-sample loss ℓ, its gradient ∂ℓ/∂a side by side, with their
formulas, the convention in words, and the slips a student makes with it. A unit registers
itself under its YAML name below its class.

Per sample, over the K output elements:
  mse       ℓ = (1/K) Σ (a − y)²         ∂ℓ/∂a = 2(a − y)/K
  half_mse  ℓ = (1/2K) Σ (a − y)²        ∂ℓ/∂a = (a − y)/K
  sse       ℓ = Σ (a − y)²               ∂ℓ/∂a = 2(a − y)
  half_sse  ℓ = ½ Σ (a − y)²             ∂ℓ/∂a = a − y
  cross_entropy         ℓ = −Σ y·ln p                         ∂ℓ/∂p = −y/p; with softmax ∂ℓ/∂z = p − y
  binary_cross_entropy  ℓ = −(1/K) Σ [y ln p + (1−y) ln(1−p)]  ∂ℓ/∂p = (p − y)/(p(1 − p))/K;
                        with sigmoid ∂ℓ/∂z = (p − y)/K
Over the batch: L = (1/N) Σ_n ℓ_n ("mean", the default) or Σ_n ℓ_n ("sum").
Natural logarithms throughout. Where a probability is 0 (or 1 for BCE) the log and the
division are clamped at EPS and a warning names the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bpcalc.activations import log_sigmoid, log_softmax
from bpcalc.substeps import Radius, term

Array = np.ndarray
EPS = 1e-12
Warn = Callable[[str], None]
# How a warning names an element: a value name ("fc.a", then indexed [n, k] in the (N, K)
# flattened output) or a function from that (n, k) index to the element's name as shown.
Name = str | Callable[[tuple[int, ...]], str]


def _flat(v: Array) -> Array:
    return v.reshape(v.shape[0], -1)


def _label(name: Name, idx: tuple[int, ...], prefix: str = "") -> str:
    return prefix + (name(idx) if callable(name) else f"{name}{list(idx)}")


def _clamped_log(p: Array, what: Name, warn: Warn | None, needed: Array, prefix: str = "") -> Array:
    small = (p < EPS) & needed
    if small.any() and warn is not None:
        idx = tuple(int(i) for i in np.argwhere(small)[0])
        warn(f"{_label(what, idx, prefix)} is {p[idx]:.3g}: ln(0) clamped at ln({EPS:g})")
    return np.log(np.maximum(p, EPS))


def _warn_small(p: Array, needed: Array, what: Name, warn: Warn | None, prefix: str = "") -> None:
    small = (p < EPS) & needed
    if small.any() and warn is not None:
        idx = tuple(int(i) for i in np.argwhere(small)[0])
        warn(
            f"{_label(what, idx, prefix)} is {p[idx]:.3g}: division by it clamped at {EPS:g} in ∂L/∂a"
        )


def cross_entropy_from_log(logp: Array, y: Array) -> Array:
    """ℓ_n = −Σ_k y_nk · ln p_nk from the log-probabilities. logp, y: (N, K)."""
    return -np.add.reduce(y * logp, axis=1)


def batch_scale(reduction: str, n: int) -> float:
    """The factor each sample's gradient gets from the batch reduction: 1/N for mean, 1 for sum."""
    return 1.0 / n if reduction == "mean" else 1.0


def reduce(reduction: str, losses: Array) -> float:
    total = np.add.reduce(losses)  # what .mean() and .sum() do, without their Python wrappers
    return float(total / losses.shape[0] if reduction == "mean" else total)


@dataclass(frozen=True)
class Slip:
    """A slip with the loss: the loss the student used instead, and what to tell them."""

    key: str
    instead: str  # the kind of loss that makes the slip
    message: str


class Loss:
    """The base of every loss. Class attributes, each loss's own:

    kind: its YAML name; formula: L of one sample, as the tables print it; grad_formula:
    ∂L/∂a (∂L/∂p for probabilities); words: the convention in words; fused_with: the output
    activation whose ∂L/∂z has a simpler closed form with this loss; fused_formula: that form.
    """

    kind: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    grad_formula: ClassVar[str] = ""
    words: ClassVar[str] = ""
    fused_with: ClassVar[str | None] = None
    fused_formula: ClassVar[str] = ""

    def per_sample(
        self, a: Array, y: Array, z: Array | None = None, warn: Warn | None = None, name: Name = "a"
    ) -> Array:
        """ℓ_n for each sample. a, y: (N, ...). z: the logits, for a stable log when given."""
        raise NotImplementedError

    def grad_a(self, a: Array, y: Array, warn: Warn | None = None, name: Name = "a") -> Array:
        """∂ℓ_n/∂a for each sample (before the batch reduction's factor). Shapes as a."""
        raise NotImplementedError

    def fused_grad_z(self, p: Array, y: Array) -> Array:
        """∂ℓ_n/∂z through the fused output activation. Shapes as p."""
        raise NotImplementedError

    def slips(self, k: int) -> list[Slip]:
        """Slips with this loss on an output of k elements."""
        return []

    @property
    def log_based(self) -> bool:
        """Its value has a logarithm a student may take in another base."""
        return False

    # the checker's rounding allowance (bpcalc/substeps.py) --------------------------------
    def value_substeps(self, a: Array, y: Array, radius: Radius) -> Array:
        """Σ_s |∂ℓ_n/∂s|·radius(s) per sample over the sub-steps a person rounds computing ℓ_n
        (bpcalc/substeps.py): each term of the sum over the K outputs, unless there is one
        term alone. Default: none."""
        return np.zeros(a.shape[0])

    def grad_substeps(self, a: Array, y: Array, radius: Radius) -> Array:
        """The same for ∂ℓ/∂a (before the batch's factor). Default: none (a − y)."""
        return np.zeros(a.shape)


_REGISTRY: dict[str, Loss] = {}


def register(unit: Loss) -> Loss:
    _REGISTRY[unit.kind] = unit
    return unit


def get(kind: str) -> Loss:
    return _REGISTRY[kind]


def kinds() -> tuple[str, ...]:
    return tuple(_REGISTRY)


# --- the squared errors -----------------------------------------------------------------


@dataclass(frozen=True)
class SquaredError(Loss):
    """ℓ = c · Σ (a − y)² with c = 1, ½, 1/K or 1/(2K): ∂ℓ/∂a = 2c (a − y)."""

    kind: str = ""  # type: ignore[misc]
    formula: str = ""  # type: ignore[misc]
    grad_formula: str = ""  # type: ignore[misc]
    words: str = ""  # type: ignore[misc]
    half: bool = False
    mean: bool = False

    def _scale(self, k: int) -> float:
        return (0.5 if self.half else 1.0) / (k if self.mean else 1)

    def per_sample(
        self, a: Array, y: Array, z: Array | None = None, warn: Warn | None = None, name: Name = "a"
    ) -> Array:
        a, y = _flat(a), _flat(y)
        return self._scale(a.shape[1]) * ((a - y) ** 2).sum(axis=1)

    def value_substeps(self, a: Array, y: Array, radius: Radius) -> Array:
        """Each square (a − y)² rounded: ∂ℓ/∂s = c."""
        a, y = _flat(a), _flat(y)
        k = a.shape[1]
        c = self._scale(k)
        if k == 1 and c == 1:  # ℓ = (a − y)² is the square itself
            return np.zeros(a.shape[0])
        return c * radius((a - y) ** 2).sum(axis=1)

    def grad_a(self, a: Array, y: Array, warn: Warn | None = None, name: Name = "a") -> Array:
        shape = a.shape
        a, y = _flat(a), _flat(y)
        k = a.shape[1]
        d = a - y
        if self.half:
            g = d / k if self.mean else d
        else:
            g = 2 * d / k if self.mean else 2 * d
        return g.reshape(shape)

    def slips(self, k: int) -> list[Slip]:
        out = []
        if self.half:
            out.append(
                Slip(
                    "half_missing",
                    self.kind.removeprefix("half_"),
                    "You left out the ½ of the squared error: this loss is ½ Σ (a − y)², so "
                    "∂L/∂a = a − y; without the ½ everything from the loss on is twice as big.",
                )
            )
        else:
            out.append(
                Slip(
                    "half_extra",
                    "half_" + self.kind,
                    "You put a ½ in front of the squared error, but this loss has none: "
                    "L = Σ (a − y)², so ∂L/∂a = 2(a − y), not a − y.",
                )
            )
        if k > 1 and not self.mean:
            out.append(
                Slip(
                    "outputs_mean",
                    self.kind.replace("sse", "mse"),
                    f"You averaged over the {k} outputs (divided by {k}); this loss adds them up "
                    "without dividing.",
                )
            )
        if k > 1 and self.mean:
            out.append(
                Slip(
                    "outputs_sum",
                    self.kind.replace("mse", "sse"),
                    f"You added up the squared errors of the {k} outputs; this loss is their mean "
                    f"(divide by {k}), and so is its gradient.",
                )
            )
        return out


register(
    SquaredError(
        "mse",
        "L = (1/K) Σ (a − y)²",
        "∂L/∂a = 2(a − y)/K",
        "mean over the output elements, no ½",
        mean=True,
    )
)
register(
    SquaredError(
        "half_mse",
        "L = ½ · (1/K) Σ (a − y)²",
        "∂L/∂a = (a − y)/K",
        "½ times the mean over the output elements",
        half=True,
        mean=True,
    )
)
register(
    SquaredError("sse", "L = Σ (a − y)²", "∂L/∂a = 2(a − y)", "sum over the output elements, no ½")
)
register(
    SquaredError(
        "half_sse",
        "L = ½ Σ (a − y)²",
        "∂L/∂a = a − y",
        "½ times the sum over the output elements, so ∂L/∂a = a − y",
        half=True,
    )
)


# --- the cross-entropies ----------------------------------------------------------------


class CrossEntropy(Loss):
    """ℓ = −Σ_k y_k ln p_k over a softmax output; with the softmax, ∂ℓ/∂z = p·Σy − y (= p − y
    for a one-hot y)."""

    kind = "cross_entropy"
    formula = "L = −Σ y · ln(p)"
    grad_formula = "∂L/∂p = −y / p"
    words = "natural log, summed over the classes"
    fused_with = "softmax"
    fused_formula = "∂L/∂z = p − y (softmax and cross-entropy together)"

    @property
    def log_based(self) -> bool:
        return True

    def per_sample(
        self, a: Array, y: Array, z: Array | None = None, warn: Warn | None = None, name: Name = "a"
    ) -> Array:
        a, y = _flat(a), _flat(y)
        logp = log_softmax(_flat(z)) if z is not None else _clamped_log(a, name, warn, y > 0)
        return cross_entropy_from_log(logp, y)

    def grad_a(self, a: Array, y: Array, warn: Warn | None = None, name: Name = "a") -> Array:
        shape = a.shape
        a, y = _flat(a), _flat(y)
        _warn_small(a, y > 0, name, warn)
        return (-y / np.maximum(a, EPS)).reshape(shape)

    def fused_grad_z(self, p: Array, y: Array) -> Array:
        shape = p.shape
        p, y = _flat(p), _flat(y)
        return (p * np.add.reduce(y, axis=1, keepdims=True) - y).reshape(shape)

    def value_substeps(self, a: Array, y: Array, radius: Radius) -> Array:
        """Each term y·ln p rounded when more than one y is not 0 (∂ℓ/∂term = −1)."""
        a, y = _flat(a), _flat(y)
        terms = np.where(y != 0, radius(y * np.log(np.maximum(a, EPS))), 0.0)
        many = (y != 0).sum(axis=1)
        return np.where(many >= 2, terms.sum(axis=1), 0.0)


register(CrossEntropy())


class BinaryCrossEntropy(Loss):
    """ℓ = −(1/K) Σ [y ln p + (1 − y) ln(1 − p)] over sigmoid outputs; with the sigmoid,
    ∂ℓ/∂z = (p − y)/K."""

    kind = "binary_cross_entropy"
    formula = "L = −(1/K) Σ [y · ln(p) + (1 − y) · ln(1 − p)]"
    grad_formula = "∂L/∂p = (p − y) / (p(1 − p)) / K"
    words = "natural log, mean over the output elements"
    fused_with = "sigmoid"
    fused_formula = "∂L/∂z = (p − y)/K (sigmoid and binary cross-entropy together)"

    @property
    def log_based(self) -> bool:
        return True

    def per_sample(
        self, a: Array, y: Array, z: Array | None = None, warn: Warn | None = None, name: Name = "a"
    ) -> Array:
        a, y = _flat(a), _flat(y)
        k = a.shape[1]
        if z is not None:
            zf = _flat(z)
            logp, log1mp = log_sigmoid(zf), log_sigmoid(-zf)
        else:
            logp = _clamped_log(a, name, warn, y > 0)
            log1mp = _clamped_log(1.0 - a, name, warn, y < 1, "1 − ")
        return -(y * logp + (1 - y) * log1mp).sum(axis=1) / k

    def grad_a(self, a: Array, y: Array, warn: Warn | None = None, name: Name = "a") -> Array:
        shape = a.shape
        a, y = _flat(a), _flat(y)
        _warn_small(a, y > 0, name, warn)
        _warn_small(1.0 - a, y < 1, name, warn, "1 − ")
        return ((a - y) / np.maximum(a * (1 - a), EPS) / a.shape[1]).reshape(shape)

    def fused_grad_z(self, p: Array, y: Array) -> Array:
        shape = p.shape
        p, y = _flat(p), _flat(y)
        return ((p - y) / p.shape[1]).reshape(shape)

    def value_substeps(self, a: Array, y: Array, radius: Radius) -> Array:
        """Each log term rounded (∂ℓ/∂term = 1/K), unless ℓ is one log alone."""
        a, y = _flat(a), _flat(y)
        k = a.shape[1]
        t1 = np.where(y != 0, radius(y * np.log(np.maximum(a, EPS))), 0.0)
        t0 = np.where(y != 1, radius((1 - y) * np.log(np.maximum(1 - a, EPS))), 0.0)
        many = (y != 0).sum(axis=1) + (y != 1).sum(axis=1)
        return np.where(many >= 2, (t1 + t0).sum(axis=1) / k, 0.0)

    def grad_substeps(self, a: Array, y: Array, radius: Radius) -> Array:
        """(a − y)/(a(1 − a))/K with s = a(1 − a) rounded: ∂/∂s = −(a − y)/(K·s²)."""
        shape = a.shape
        a, y = _flat(a), _flat(y)
        s = np.maximum(a * (1 - a), EPS)
        k = a.shape[1]
        return term((a - y) / (k * s * s), s, radius).reshape(shape)


register(BinaryCrossEntropy())
