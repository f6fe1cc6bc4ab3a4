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
A sequence output (T positions of K elements): the loss of each position ℓ_{n,t} as above,
then ℓ_n = (1/T) Σ_t ℓ_{n,t} ("mean", the default, as PyTorch's CrossEntropyLoss over (N, T))
or Σ_t ℓ_{n,t} ("sum", as textbooks' BPTT), see OverPositions.
Natural logarithms throughout. Where a probability is 0 (or 1 for BCE) the log and the
division are clamped at EPS and a warning names the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

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

    def from_log(self, logp: Array, y: Array) -> Array:
        """ℓ_n from the log-probabilities the forward pass already has (cross-entropy with
        softmax, in training). logp, y: shaped as the output."""
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

    def from_log(self, logp: Array, y: Array) -> Array:
        return cross_entropy_from_log(_flat(logp), _flat(y))


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


# --- a sequence output: the loss at every position -----------------------------------------


class OverPositions(Loss):
    """A loss unit applied at each position of a sequence output a: (N, T, K), then the mean
    (or sum) over the T positions:  ℓ_n = (1/T) Σ_t ℓ(a_{n,t}, y_{n,t})  (or Σ_t), so
    ∂ℓ_n/∂a_{n,t} = ∂ℓ/∂a_{n,t} / T  (or without the 1/T).

    Each position is one sample of the inner loss: its K elements are what the inner loss sums
    or averages over (the classes of a softmax at that position)."""

    def __init__(self, inner: Loss, positions: str) -> None:
        self.inner = inner
        self.positions = positions

    # the inner loss's words, said per position
    @property  # type: ignore[misc]
    def kind(self) -> str:  # type: ignore[override]
        return self.inner.kind

    @property  # type: ignore[misc]
    def formula(self) -> str:  # type: ignore[override]
        per = self.inner.formula.removeprefix("L = ")
        over = "(1/T) Σ_t" if self.positions == "mean" else "Σ_t"
        return f"L = {over} ℓ_t, ℓ_t = {per} at position t"

    @property  # type: ignore[misc]
    def grad_formula(self) -> str:  # type: ignore[override]
        g = self.inner.grad_formula
        return f"{g} / T at each position" if self.positions == "mean" else f"{g} at each position"

    @property  # type: ignore[misc]
    def words(self) -> str:  # type: ignore[override]
        over = (
            "then the mean over the T positions"
            if self.positions == "mean"
            else "then the sum over the T positions"
        )
        return f"{self.inner.words}, at each position; {over}"

    @property  # type: ignore[misc]
    def fused_with(self) -> str | None:  # type: ignore[override]
        return self.inner.fused_with

    @property  # type: ignore[misc]
    def fused_formula(self) -> str:  # type: ignore[override]
        f = self.inner.fused_formula
        return f"{f}, at each position" + (", divided by T" if self.positions == "mean" else "")

    @property
    def log_based(self) -> bool:
        return self.inner.log_based

    def _scale(self, t: int) -> float:
        return 1.0 / t if self.positions == "mean" else 1.0

    def _reduce(self, per: Array, n: int) -> Array:
        """(N·T,) per-position losses -> (N,): mean or sum over the positions."""
        per = per.reshape(n, -1)
        total = np.add.reduce(per, axis=1)
        return total / per.shape[1] if self.positions == "mean" else total

    @staticmethod
    def _rows(v: Array) -> Array:
        return v.reshape(-1, v.shape[-1])

    @staticmethod
    def _name(name: Name, t: int, k: int) -> Name:
        """Names a position's element (row n·T + t, k) as the whole output's (n, t·K + k)."""
        if not callable(name):
            return name
        return lambda idx: name((idx[0] // t, (idx[0] % t) * k + idx[1]))

    def per_sample(
        self, a: Array, y: Array, z: Array | None = None, warn: Warn | None = None, name: Name = "a"
    ) -> Array:
        n, t, k = a.shape
        per = self.inner.per_sample(
            self._rows(a),
            self._rows(y),
            None if z is None else self._rows(z),
            warn,
            self._name(name, t, k),
        )
        return self._reduce(per, n)

    def grad_a(self, a: Array, y: Array, warn: Warn | None = None, name: Name = "a") -> Array:
        _, t, k = a.shape
        g = self.inner.grad_a(self._rows(a), self._rows(y), warn, self._name(name, t, k))
        if self.positions == "mean":
            g *= self._scale(t)
        return g.reshape(a.shape)

    def fused_grad_z(self, p: Array, y: Array) -> Array:
        g = self.inner.fused_grad_z(self._rows(p), self._rows(y))
        if self.positions == "mean":
            g *= self._scale(p.shape[1])
        return g.reshape(p.shape)

    def from_log(self, logp: Array, y: Array) -> Array:
        return self._reduce(self.inner.from_log(self._rows(logp), self._rows(y)), logp.shape[0])

    def value_substeps(self, a: Array, y: Array, radius: Radius) -> Array:
        """Each position's sub-steps, then (for the mean) divided by T as ℓ_n is."""
        n, t, _ = a.shape
        per = self.inner.value_substeps(self._rows(a), self._rows(y), radius).reshape(n, t)
        return per.sum(axis=1) * self._scale(t)

    def grad_substeps(self, a: Array, y: Array, radius: Radius) -> Array:
        _, t, _ = a.shape
        g = self.inner.grad_substeps(self._rows(a), self._rows(y), radius) * self._scale(t)
        return g.reshape(a.shape)

    def slips(self, k: int) -> list[Slip]:
        return self.inner.slips(k)


def of(spec: Any) -> Loss:
    """The loss unit a LossSpec asks for: per position when the output is a sequence."""
    unit = get(spec.kind)
    return OverPositions(unit, spec.positions) if spec.positions else unit
