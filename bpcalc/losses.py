"""Losses: the per-sample loss ℓ, its gradient ∂ℓ/∂a, and the batch reduction.

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

import numpy as np

from bpcalc.activations import log_sigmoid, log_softmax

Array = np.ndarray
EPS = 1e-12
Warn = Callable[[str], None]

FORMULAS = {
    "mse": "L = (1/K) Σ (a − y)²",
    "half_mse": "L = ½ · (1/K) Σ (a − y)²",
    "sse": "L = Σ (a − y)²",
    "half_sse": "L = ½ Σ (a − y)²",
    "cross_entropy": "L = −Σ y · ln(p)",
    "binary_cross_entropy": "L = −(1/K) Σ [y · ln(p) + (1 − y) · ln(1 − p)]",
}

GRAD_FORMULAS = {
    "mse": "∂L/∂a = 2(a − y)/K",
    "half_mse": "∂L/∂a = (a − y)/K",
    "sse": "∂L/∂a = 2(a − y)",
    "half_sse": "∂L/∂a = a − y",
    "cross_entropy": "∂L/∂p = −y / p",
    "binary_cross_entropy": "∂L/∂p = (p − y) / (p(1 − p)) / K",
}

FUSED = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}
FUSED_FORMULAS = {
    "cross_entropy": "∂L/∂z = p − y (softmax and cross-entropy together)",
    "binary_cross_entropy": "∂L/∂z = (p − y)/K (sigmoid and binary cross-entropy together)",
}


def _flat(v: Array) -> Array:
    return v.reshape(v.shape[0], -1)


# How a warning names an element: a value name ("fc.a", then indexed [n, k] in the (N, K)
# flattened output) or a function from that (n, k) index to the element's name as shown.
Name = str | Callable[[tuple[int, ...]], str]


def _label(name: Name, idx: tuple[int, ...], prefix: str = "") -> str:
    return prefix + (name(idx) if callable(name) else f"{name}{list(idx)}")


def _clamped_log(p: Array, what: Name, warn: Warn | None, needed: Array, prefix: str = "") -> Array:
    small = (p < EPS) & needed
    if small.any() and warn is not None:
        idx = tuple(int(i) for i in np.argwhere(small)[0])
        warn(f"{_label(what, idx, prefix)} is {p[idx]:.3g}: ln(0) clamped at ln({EPS:g})")
    return np.log(np.maximum(p, EPS))


def per_sample(
    kind: str,
    a: Array,
    y: Array,
    z: Array | None = None,
    warn: Warn | None = None,
    name: Name = "a",
) -> Array:
    """ℓ_n for each sample. a, y: (N, ...). z: the logits, used for a stable log when given."""
    a, y = _flat(a), _flat(y)
    k = a.shape[1]
    if kind in ("mse", "half_mse", "sse", "half_sse"):
        sq = ((a - y) ** 2).sum(axis=1)
        scale = {"mse": 1 / k, "half_mse": 0.5 / k, "sse": 1.0, "half_sse": 0.5}[kind]
        return scale * sq
    if kind == "cross_entropy":
        logp = log_softmax(_flat(z)) if z is not None else _clamped_log(a, name, warn, y > 0)
        return cross_entropy_from_log(logp, y)
    if kind == "binary_cross_entropy":
        if z is not None:
            zf = _flat(z)
            logp, log1mp = log_sigmoid(zf), log_sigmoid(-zf)
        else:
            logp = _clamped_log(a, name, warn, y > 0)
            log1mp = _clamped_log(1.0 - a, name, warn, y < 1, "1 − ")
        return -(y * logp + (1 - y) * log1mp).sum(axis=1) / k
    raise AssertionError(kind)


def cross_entropy_from_log(logp: Array, y: Array) -> Array:
    """ℓ_n = −Σ_k y_nk · ln p_nk from the log-probabilities. logp, y: (N, K)."""
    return -np.add.reduce(y * logp, axis=1)


def batch_scale(reduction: str, n: int) -> float:
    """The factor each sample's gradient gets from the batch reduction: 1/N for mean, 1 for sum."""
    return 1.0 / n if reduction == "mean" else 1.0


def reduce(reduction: str, losses: Array) -> float:
    total = np.add.reduce(losses)  # what .mean() and .sum() do, without their Python wrappers
    return float(total / losses.shape[0] if reduction == "mean" else total)


def grad_a(kind: str, a: Array, y: Array, warn: Warn | None = None, name: Name = "a") -> Array:
    """∂ℓ_n/∂a for each sample (before the batch reduction's factor). Shapes as a."""
    shape = a.shape
    a, y = _flat(a), _flat(y)
    k = a.shape[1]
    if kind == "mse":
        g = 2 * (a - y) / k
    elif kind == "half_mse":
        g = (a - y) / k
    elif kind == "sse":
        g = 2 * (a - y)
    elif kind == "half_sse":
        g = a - y
    elif kind == "cross_entropy":
        _warn_small(a, y > 0, name, warn)
        g = -y / np.maximum(a, EPS)
    elif kind == "binary_cross_entropy":
        _warn_small(a, y > 0, name, warn)
        _warn_small(1.0 - a, y < 1, name, warn, "1 − ")
        g = (a - y) / np.maximum(a * (1 - a), EPS) / k
    else:
        raise AssertionError(kind)
    return g.reshape(shape)


def _warn_small(p: Array, needed: Array, what: Name, warn: Warn | None, prefix: str = "") -> None:
    small = (p < EPS) & needed
    if small.any() and warn is not None:
        idx = tuple(int(i) for i in np.argwhere(small)[0])
        warn(
            f"{_label(what, idx, prefix)} is {p[idx]:.3g}: division by it clamped at {EPS:g} in ∂L/∂a"
        )


def fused_grad_z(kind: str, p: Array, y: Array) -> Array:
    """∂ℓ_n/∂z through softmax + cross-entropy (p·Σy − y, = p − y for one-hot y) or
    sigmoid + binary cross-entropy ((p − y)/K). Shapes as p."""
    shape = p.shape
    p, y = _flat(p), _flat(y)
    if kind == "cross_entropy":
        g = p * np.add.reduce(y, axis=1, keepdims=True) - y
    elif kind == "binary_cross_entropy":
        g = (p - y) / p.shape[1]
    else:
        raise AssertionError(kind)
    return g.reshape(shape)
