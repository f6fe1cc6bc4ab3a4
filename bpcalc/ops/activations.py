"""Element-wise activations and softmax: forward and derivative side by side.

Derivatives are written from the outputs where the textbooks do (σ′ = a(1 − a),
tanh′ = 1 − a²). ReLU's derivative at exactly 0 is taken as 0 (as PyTorch does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class ActivationCache:
    z: Array
    a: Array


def sigmoid(z: Array) -> Array:
    """σ(z) = 1 / (1 + e^(−z)), computed without overflow for large |z|."""
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def softmax(z: Array) -> Array:
    """softmax over the last axis, shifted by the max so e^z never overflows. z: (N, K)."""
    e = np.exp(z - np.maximum.reduce(z, axis=-1, keepdims=True))
    e /= np.add.reduce(e, axis=-1, keepdims=True)  # ufunc reductions: no Python wrapper per call
    return e


def log_softmax(z: Array) -> Array:
    """log softmax(z) = z − max − log Σ e^(z − max); finite even where softmax underflows to 0."""
    shifted = z - np.maximum.reduce(z, axis=-1, keepdims=True)
    shifted -= np.log(np.add.reduce(np.exp(shifted), axis=-1, keepdims=True))
    return shifted


def softmax_and_log(z: Array) -> tuple[Array, Array]:
    """(softmax(z), log_softmax(z)) from one shifted exponential, for training with softmax
    and cross-entropy. The same operations on the same numbers as the two functions above,
    so the same bits; only the shift, e^(z − max) and its sum are not computed twice. z: (N, K).
    """
    shifted = z - np.maximum.reduce(z, axis=-1, keepdims=True)
    e = np.exp(shifted)
    total = np.add.reduce(e, axis=-1, keepdims=True)
    shifted -= np.log(total)
    e /= total
    return e, shifted


def log_sigmoid(z: Array) -> Array:
    """log σ(z) = −softplus(−z), stable for z = ±1000."""
    return -np.logaddexp(0.0, -z)


def forward(kind: str, z: Array, slope: float = 0.01) -> Array:
    """a = f(z)."""
    if kind == "identity":
        return z
    if kind == "relu":
        return np.maximum(z, 0.0)
    if kind == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if kind == "sigmoid":
        return sigmoid(z)
    if kind == "tanh":
        return np.tanh(z)
    if kind == "softmax":
        return softmax(z.reshape(z.shape[0], -1)).reshape(z.shape)
    raise AssertionError(f"unknown activation {kind}")


def derivative(kind: str, z: Array, a: Array, slope: float = 0.01) -> Array:
    """f′(z) element-wise (not defined for softmax, whose Jacobian is not diagonal)."""
    if kind == "identity":
        return np.ones_like(z)
    if kind == "relu":
        return (z > 0).astype(z.dtype)
    if kind == "leaky_relu":
        return np.where(z > 0, 1.0, slope).astype(z.dtype)
    if kind == "sigmoid":
        return a * (1.0 - a)
    if kind == "tanh":
        return 1.0 - a * a
    raise AssertionError(f"no element-wise derivative for {kind}")


def backward(kind: str, da: Array, z: Array, a: Array, slope: float = 0.01) -> Array:
    """∂L/∂z from ∂L/∂a. Softmax: ∂L/∂z_i = p_i (∂L/∂p_i − Σ_j p_j ∂L/∂p_j)."""
    if kind == "softmax":
        flat_a = a.reshape(a.shape[0], -1)
        flat_da = da.reshape(da.shape[0], -1)
        dz = flat_a * (flat_da - (flat_da * flat_a).sum(axis=-1, keepdims=True))
        return dz.reshape(z.shape)
    if kind == "relu":  # ∂L/∂a · 1[z > 0], without building the 0/1 array in z's dtype first
        return da * (z > 0)
    return da * derivative(kind, z, a, slope)
