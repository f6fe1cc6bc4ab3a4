"""Layer normalization: each sample normalized over its last axis (or its last few axes), with
the same statistics in training and evaluation, as torch.nn.LayerNorm.

Over the D values of one row (one sample's last axis, or its last `normalized_shape` axes):
  μ = (1/D) Σ x          σ² = (1/D) Σ (x − μ)²   (biased, as torch.nn.LayerNorm)
  x̂ = (x − μ) / √(σ² + ε)          z = γ ⊙ x̂ + β      (γ, β: one per normalized position)
Backward, with g = ∂L/∂z and ĝ = γ ⊙ g:
  ∂L/∂γ = Σ g ⊙ x̂      ∂L/∂β = Σ g      (summed over the batch and the rows)
  ∂L/∂x = 1/(D·√(σ² + ε)) · (D·ĝ − Σ ĝ − x̂ · Σ (ĝ · x̂))   (sums over the row)
Shapes: x, x̂, z: (N, *in_shape); μ, σ²: (N, *in_shape[:-axes]); γ, β: in_shape[-axes:].
Unlike batchnorm nothing mixes samples, so a single sample and evaluation mode need nothing
special, and there are no running statistics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc import activations
from bpcalc.layers import Layer, LayerSlip, Recorded
from bpcalc.layers.layernorm.spec import LayerNormSpec
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src
from bpcalc.substeps import KeyedRadius

Array = np.ndarray


@dataclass(frozen=True)
class LayerNormCache:
    xhat: Array  # (N, *in_shape)
    mean: Array  # (N, *in_shape[:-axes], 1, ..., 1): keeps the normalized axes for broadcasting
    var: Array  # as mean; the biased σ² (the slip: unbiased)
    inv_std: Array  # 1/√(σ² + ε), as mean


class LayerNorm(Layer):
    """Parameters γ (gamma) and β (beta), each shaped like the normalized axes."""

    types = ("layernorm",)
    parametric = True
    param_names: tuple[str, ...] = ("gamma", "beta")

    def __init__(
        self, axes: int = 1, eps: float = 1e-5, unbiased: bool = False, spec: Any = None
    ) -> None:
        self.axes = axes
        self.eps = eps
        self.unbiased = unbiased
        self.spec = spec

    @classmethod
    def from_spec(cls, spec: Any) -> LayerNorm:
        return cls(spec.axes, spec.eps, spec.unbiased, spec)

    def _over(self, x: Array) -> tuple[int, ...]:
        return tuple(range(x.ndim - self.axes, x.ndim))

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, LayerNormCache]:
        """z = γ ⊙ (x − μ)/√(σ² + ε) + β, μ and σ² of each sample over the last axes."""
        return self.forward_staged(x, params, None, None)

    def forward_staged(
        self, x: Array, params: dict[str, Array], scope: Any, stage: Any
    ) -> tuple[Array, LayerNormCache]:
        """forward, with μ, σ² and x̂ handed to `stage` as they are computed (None: not)."""
        over = self._over(x)
        ddof = 1 if self.unbiased else 0
        mean = x.mean(axis=over, keepdims=True)
        if stage is None:
            var = x.var(axis=over, keepdims=True, ddof=ddof)
        else:
            recorded = self.recorded(LayerNormCache(x, mean, mean, mean))
            mean = stage(recorded[0])
            d = self.width()
            var = ((x - mean) ** 2).sum(axis=over, keepdims=True) / (d - ddof)
            var = stage(dataclasses.replace(self.recorded(LayerNormCache(x, mean, var, var))[1]))
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = (x - mean) * inv_std
        if stage is not None:
            xhat = stage(self.recorded(LayerNormCache(xhat, mean, var, inv_std))[2])
        z = params["gamma"] * xhat + params["beta"]
        return z, LayerNormCache(xhat, mean, var, inv_std)

    def param_grads(
        self, dz: Array, cache: LayerNormCache, params: dict[str, Array]
    ) -> dict[str, Array]:
        """∂L/∂γ = Σ ∂L/∂z ⊙ x̂, ∂L/∂β = Σ ∂L/∂z over the batch and every row."""
        lead = tuple(range(dz.ndim - self.axes))
        return {"gamma": (dz * cache.xhat).sum(axis=lead), "beta": dz.sum(axis=lead)}

    def backward(
        self, dz: Array, cache: LayerNormCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """∂L/∂x = 1/(D·√(σ² + ε)) · (D·ĝ − Σĝ − x̂·Σ(ĝ·x̂)), ĝ = γ ⊙ ∂L/∂z, sums over the row.
        (With the unbiased slip, the last sum is divided by D − 1 instead of D.)"""
        over = self._over(dz)
        d = int(np.prod(dz.shape[dz.ndim - self.axes :]))
        ghat = params["gamma"] * dz
        xhat = cache.xhat
        sum_g = ghat.sum(axis=over, keepdims=True)
        sum_gx = (ghat * xhat).sum(axis=over, keepdims=True)
        denom = d - 1 if self.unbiased else d
        dx = cache.inv_std * (ghat - sum_g / d - xhat * sum_gx / denom)
        return dx, self.param_grads(dz, cache, params)

    def recorded(self, cache: LayerNormCache) -> list[Recorded]:
        rows = self.stats_shown()
        d = self.width()
        how = (
            f"(1/{d - 1}) Σ (x − μ)² over each row (unbiased)"
            if self.unbiased
            else f"(1/{d}) Σ (x − μ)² over each row (biased, as PyTorch)"
        )
        return [
            Recorded("mean", cache.mean, f"μ = (1/{d}) Σ x over each sample's row", True, rows),
            Recorded("var", cache.var, f"σ² = {how}", True, rows),
            Recorded("xhat", cache.xhat, f"x̂ = (x − μ) / √(σ² + ε), ε = {self.eps:g}", True),
        ]

    def width(self) -> int:
        """D: how many values each mean and variance is taken over."""
        return int(np.prod(self.spec.in_shape[len(self.spec.in_shape) - self.axes :]))

    def stats_shown(self) -> tuple[int, ...]:
        """The shape of one sample's μ and σ² as shown: the axes that are not normalized (an
        image shown without its one channel keeps it hidden here too)."""
        rows = tuple(self.spec.in_shape[: len(self.spec.in_shape) - self.axes])
        return rows[1:] if self.spec.squeezed_in and rows else rows

    def substeps(
        self,
        x: Array,
        params: dict[str, Array],
        dz: Array | None,
        radius: KeyedRadius,
        stage: Any = None,
    ) -> dict[str, Array]:
        """σ² = (1/D) Σ (x − μ)²: each square (∂σ²/∂s = 1/D); x̂ = (x − μ)/r with r = √(σ² + ε)
        rounded (∂x̂/∂r = −x̂/r); z = γ ⊙ x̂ + β: the product γ·x̂ when β ≠ 0; ∂L/∂γ: each
        product ∂L/∂z·x̂ of the sum; ∂L/∂x = (ĝ − Σĝ/D − x̂·S/D)/r with ĝ = γ ⊙ ∂L/∂z and
        S = Σ ĝ·x̂: each ĝ_j (∂(∂L/∂x_i)/∂ĝ_j = (δ_ij − 1/D − x̂_i·x̂_j/D)/r), each product ĝ·x̂ of
        S, the product x̂·S and r (∂ = −∂L/∂x/r)."""
        over = self._over(x)
        d = self.width()
        z, cache = self.forward_staged(x, params, None, stage)
        r = np.sqrt(cache.var + self.eps)
        xhat = cache.xhat
        out: dict[str, Array] = {}
        if d >= 2:
            squares = (x - cache.mean) ** 2
            denom = d - 1 if self.unbiased else d
            out["var"] = radius("var", squares).sum(axis=over) / denom
        out["xhat"] = np.abs(xhat / r) * radius("xhat", np.broadcast_to(r, x.shape))
        gx = np.broadcast_to(params["gamma"], x.shape) * xhat
        out["z"] = np.where(np.broadcast_to(params["beta"], x.shape) != 0, radius("z", gx), 0.0)
        if dz is None:
            return out
        lead = tuple(range(dz.ndim - self.axes))
        products = dz * xhat
        n_terms = int(np.prod([dz.shape[a] for a in lead]))
        if n_terms >= 2:
            out["gamma"] = radius("gamma", products).sum(axis=lead)
        ghat = params["gamma"] * dz
        rin = radius
        r_g = rin("input", ghat)  # each ĝ_j
        gx_prod = ghat * xhat
        r_p = rin("input", gx_prod)
        big_s = gx_prod.sum(axis=over, keepdims=True)
        dx, _ = self.backward(dz, cache, params)
        # Σ_j |δ_ij − 1/D − x̂_i x̂_j/D|·r(ĝ_j) ≤ r(ĝ_i) + (Σ_j r(ĝ_j) + |x̂_i|·Σ_j |x̂_j| r(ĝ_j))/D
        through_g = (
            r_g
            + (
                r_g.sum(axis=over, keepdims=True)
                + np.abs(xhat) * (np.abs(xhat) * r_g).sum(axis=over, keepdims=True)
            )
            / d
        )
        through_s = np.abs(xhat) / d * r_p.sum(axis=over, keepdims=True)
        xs = rin("input", xhat * big_s) / d
        out["input"] = (through_g + through_s + xs) / r + np.abs(dx / r) * rin(
            "input", np.broadcast_to(r, x.shape)
        )
        return out

    # -- what the user sees -----------------------------------------------------------------
    def forward_formula(self) -> str:
        return "z = γ ⊙ x̂ + β, x̂ = (x − μ)/√(σ² + ε) over each sample's row"

    def grad_param_formula(self, param: str) -> str:
        if param == "gamma":
            return "∂L/∂γ = Σ ∂L/∂z ⊙ x̂ (over the batch and rows)"
        return "∂L/∂β = Σ ∂L/∂z (over the batch and rows)"

    def grad_input_formula(self) -> str:
        return "∂L/∂x = 1/(D·√(σ² + ε)) · (D·ĝ − Σĝ − x̂·Σ(ĝ·x̂)), ĝ = γ ⊙ ∂L/∂z, Σ over the row"

    def convention(self) -> str:
        shape = self.spec.in_shape[len(self.spec.in_shape) - self.axes :]
        over = "the last axis" if self.axes == 1 else f"the last {self.axes} axes"
        return (
            f"layer normalization of each sample over {over} ({V._fmt(shape)}, D = {self.width()} "
            "values): mean μ and biased variance σ² (as torch.nn.LayerNorm), "
            f"ε = {self.eps:g}; the same in training and evaluation, no running statistics"
        )

    # -- the checker ----------------------------------------------------------------------
    def slips(self) -> list[LayerSlip]:
        d = self.width()
        if d < 2 or self.unbiased:
            return []
        return [
            LayerSlip(
                "layernorm_unbiased",
                dataclasses.replace(self.spec, unbiased=True),
                f"In layer {self.spec.name} you divided the variance by D − 1 = {d - 1} "
                f"(the unbiased variance); layer normalization divides by D = {d}, as "
                "torch.nn.LayerNorm does.",
            )
        ]


# -- reading the layer from the network file ----------------------------------------------


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> LayerNormSpec:
    F.common(
        lsrc,
        (
            "normalized_shape",
            "gamma",
            "beta",
            "eps",
            "activation",
            *activations.option_keys(),
            "freeze",
        ),
    )
    v = lsrc.value
    axes = _axes(lsrc, name, shape, sq, prev) if "normalized_shape" in v else 1
    norm = shape[len(shape) - axes :]

    def param(key: str, default: float) -> np.ndarray:
        if key not in v:
            return np.full(norm, default)
        src = lsrc.child(key)
        a = V.array(src, f"{name}.{key}")
        if a.ndim == 0:
            return np.full(norm, float(a))  # one number for every normalized position
        if a.shape == norm:
            return a
        if sq and len(norm) == 3 and a.shape == norm[1:]:  # an image shown without its channel
            return a.reshape(norm)
        if a.size == int(np.prod(norm)) and a.ndim == 1 and len(norm) > 1:
            raise src.error(
                f"layernorm layer {name!r} normalizes shape {V._fmt(norm)}: give {key} in that "
                f"shape (nested lists), or one number for all; found a flat list of {a.size}"
            )
        raise src.error(
            f"layernorm layer {name!r} normalizes shape {V._fmt(norm)}, so {key} needs that "
            f"shape (or one number for all), found shape {V._fmt(a.shape)}"
        )

    eps = V.positive_number(lsrc.child("eps"), "eps") if "eps" in v else 1e-5
    return LayerNormSpec(
        **F.frame(lsrc, name, ltype, shape, sq),
        gamma=param("gamma", 1.0),
        beta=param("beta", 0.0),
        axes=axes,
        eps=eps,
        activation=F.activation(lsrc),
        freeze=F.freeze(lsrc, ("gamma", "beta")),
    )


def _axes(lsrc: Src, name: str, shape: tuple[int, ...], sq: bool, prev: str) -> int:
    """How many trailing axes `normalized_shape` names; it must be the input's last axes, as
    torch.nn.LayerNorm's normalized_shape. An image shown without its channel may leave the
    channel out here too."""
    src = lsrc.child("normalized_shape")
    raw = src.value
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise src.error("normalized_shape should be a number or a list of the input's last sizes")
    sizes = tuple(
        V.positive_int(src.child(i) if isinstance(raw, list) else src, "normalized_shape")
        for i in range(len(items))
    )
    if len(sizes) <= len(shape) and shape[len(shape) - len(sizes) :] == sizes:
        return len(sizes)
    shown = shape[1:] if sq else shape
    raise src.error(
        f"layernorm layer {name!r}: normalized_shape {V._fmt(sizes)} is not the last axes of "
        f"its input: {prev} gives shape {V._fmt(shown)}, so normalized_shape can be "
        + " or ".join(V._fmt(shown[i:]) for i in range(len(shown) - 1, -1, -1))
    )
