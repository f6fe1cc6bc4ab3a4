"""Batch normalization in training mode, per feature of (N, F) or per channel of (N, C, H, W).

Over the m values of a feature in the batch (m = N, or N·H·W per channel):
  μ = (1/m) Σ x          σ² = (1/m) Σ (x − μ)²   (biased, as PyTorch normalizes with)
  x̂ = (x − μ) / √(σ² + ε)          z = γ · x̂ + β
Backward, with g = ∂L/∂z:
  ∂L/∂γ = Σ g · x̂      ∂L/∂β = Σ g
  ∂L/∂x = γ / (m √(σ² + ε)) · (m·g − Σ g − x̂ · Σ (g · x̂))
Running statistics (PyTorch's convention; they are not used in training mode):
  running_mean ← (1 − momentum)·running_mean + momentum·μ
  running_var  ← (1 − momentum)·running_var + momentum·σ²·m/(m − 1)   (unbiased σ²)
Evaluation (`training = False`, for `train`'s test accuracy): μ and σ² are the running
statistics, which then stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc import activations
from bpcalc.layers import Buffer, Layer, Recorded
from bpcalc.layers.batchnorm.spec import BatchNormSpec
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src
from bpcalc.substeps import KeyedRadius, Radius, term

Array = np.ndarray
_VAR = "σ² = (1/m) Σ (x − μ)² (biased)"


@dataclass(frozen=True)
class BatchNormCache:
    xhat: Array  # as x
    inv_std: Array  # 1/√(σ² + ε), (F,) or (C,)
    mean: Array  # μ, (F,) or (C,)
    var: Array  # biased σ², (F,) or (C,)
    count: int  # m, the values averaged per feature
    running_mean: Array  # the running statistics this step starts from
    running_var: Array
    training: bool = True


class BatchNorm(Layer):
    """Parameters γ (gamma), β (beta) trained; running_mean, running_var carried."""

    types = ("batchnorm",)
    parametric = True
    param_names: tuple[str, ...] = ("gamma", "beta")

    def __init__(self, eps: float = 1e-5, momentum: float = 0.1, spec: Any = None) -> None:
        self.eps = eps
        self.momentum = momentum
        self.training = True
        self.spec = spec

    @classmethod
    def from_spec(cls, spec: Any) -> BatchNorm:
        return cls(spec.eps, spec.momentum, spec)

    @property
    def modal(self) -> bool:
        return True

    def set_training(self, training: bool) -> None:
        self.training = training

    @staticmethod
    def _axes(x: Array) -> tuple[int, ...]:
        return (0,) if x.ndim == 2 else (0, 2, 3)

    @staticmethod
    def _b(v: Array, ndim: int) -> Array:
        """(F,) -> broadcastable against (N, F) or (N, C, H, W)."""
        return v if ndim == 2 else v.reshape(1, -1, 1, 1)

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, BatchNormCache]:
        """z = γ · (x − μ)/√(σ² + ε) + β. x: (N, F) or (N, C, H, W) -> z: same shape."""
        return self.forward_staged(x, params, None, None)

    def forward_staged(
        self, x: Array, params: dict[str, Array], scope: Any, stage: Any
    ) -> tuple[Array, BatchNormCache]:
        """forward, with μ, σ² and x̂ handed to `stage` as they are computed (None: not)."""
        axes = self._axes(x)
        count = int(np.prod([x.shape[a] for a in axes]))
        if self.training:
            mean = x.mean(axis=axes)
            if stage is not None:
                mean = stage(Recorded("mean", mean, self._mean_formula(count), False))
            var = ((x - self._b(mean, x.ndim)) ** 2).mean(axis=axes) if stage else x.var(axis=axes)
            if stage is not None:
                var = stage(Recorded("var", var, _VAR, False))
        else:
            mean, var = params["running_mean"], params["running_var"]
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = (x - self._b(mean, x.ndim)) * self._b(inv_std, x.ndim)
        if stage is not None:
            xhat = stage(Recorded("xhat", xhat, self._xhat_formula(), True))
        z = self._b(params["gamma"], x.ndim) * xhat + self._b(params["beta"], x.ndim)
        cache = BatchNormCache(
            xhat,
            inv_std,
            mean,
            var,
            count,
            params["running_mean"],
            params["running_var"],
            self.training,
        )
        return z, cache

    def backward(
        self, dout: Array, cache: BatchNormCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """∂L/∂γ = Σ g·x̂, ∂L/∂β = Σ g, ∂L/∂x = γ/(m√(σ²+ε)) · (m·g − Σg − x̂·Σ(g·x̂))."""
        nd = dout.ndim
        axes = self._axes(dout)
        m = cache.count
        dgamma = (dout * cache.xhat).sum(axis=axes)
        dbeta = dout.sum(axis=axes)
        if not cache.training:  # μ and σ² are constants: ∂L/∂x = γ·g/√(σ² + ε)
            return self._b(params["gamma"] * cache.inv_std, nd) * dout, {
                "gamma": dgamma,
                "beta": dbeta,
            }
        dx = self._b(params["gamma"] * cache.inv_std / m, nd) * (
            m * dout - self._b(dbeta, nd) - cache.xhat * self._b(dgamma, nd)
        )
        return dx, {"gamma": dgamma, "beta": dbeta}

    def buffers(self, cache: BatchNormCache) -> dict[str, Buffer]:
        """The running statistics after this step, with their formulas."""
        k = 0.0 if not cache.training else self.momentum
        m = cache.count
        unbiased = cache.var * m / (m - 1) if m > 1 else cache.var
        return {
            "running_mean": Buffer(
                (1 - k) * cache.running_mean + k * cache.mean,
                f"running_mean′ = (1 − {k:g})·running_mean + {k:g}·μ",
            ),
            "running_var": Buffer(
                (1 - k) * cache.running_var + k * unbiased,
                f"running_var′ = (1 − {k:g})·running_var + {k:g}·σ²·m/(m − 1), m = {m}",
            ),
        }

    def recorded(self, cache: BatchNormCache) -> list[Recorded]:
        return [
            Recorded("mean", cache.mean, self._mean_formula(cache.count), False),
            Recorded("var", cache.var, _VAR, False),
            Recorded("xhat", cache.xhat, self._xhat_formula(), True),
        ]

    @staticmethod
    def _mean_formula(count: int) -> str:
        return f"μ = (1/m) Σ x over the batch, m = {count}"

    def _xhat_formula(self) -> str:
        return f"x̂ = (x − μ) / √(σ² + ε), ε = {self.eps:g}"

    def substeps(
        self,
        x: Array,
        params: dict[str, Array],
        dz: Array | None,
        radius: KeyedRadius,
        stage: Any = None,
    ) -> dict[str, Array]:
        """σ² = (1/m) Σ (x − μ)²: each square (∂σ²/∂s = 1/m); x̂ = (x − μ)/r with r = √(σ² + ε)
        rounded (∂x̂/∂r = −x̂/r); z = γ·x̂ + β: the product γ·x̂ when β ≠ 0; ∂L/∂γ = Σ ∂L/∂z·x̂:
        each product; ∂L/∂x = P·Q with P = γ/(m·r), Q = m·g − Σg − x̂·Σ(g·x̂): r, P and the
        product x̂·Σ(g·x̂); the running statistics (1 − k)·old + k·new: both products."""
        nd = x.ndim
        b = self._b
        axes = self._axes(x)
        z, cache = self.forward_staged(x, params, None, stage)
        m = cache.count
        r = np.sqrt(cache.var + self.eps)
        xhat = cache.xhat
        out: dict[str, Array] = {}
        if self.training and m >= 2:
            squares = (x - b(cache.mean, nd)) ** 2
            out["var"] = radius("var", squares).sum(axis=axes) / m
        out["xhat"] = term(
            xhat / b(r, nd), np.broadcast_to(b(r, nd), x.shape), _keyed(radius, "xhat")
        )
        out["z"] = np.where(
            b(params["beta"], nd) != 0,
            radius("z", b(params["gamma"], nd) * xhat),
            0.0,
        )
        k = self.momentum if self.training else 0.0
        if 0 < k < 1:
            unbiased = cache.var * m / (m - 1) if m >= 2 else cache.var
            out["running_mean"] = radius("running_mean", (1 - k) * cache.running_mean) + radius(
                "running_mean", k * cache.mean
            )
            out["running_var"] = (
                radius("running_var", (1 - k) * cache.running_var)
                + radius("running_var", k * unbiased)
                + k * radius("running_var", unbiased)
            )
        if dz is None:
            return out
        dx, grads = self.backward(dz, cache, params)
        if m >= 2:
            out["gamma"] = radius("gamma", dz * xhat).sum(axis=axes)
        p = b(params["gamma"] / (m * r), nd)
        q = np.where(p != 0, dx / np.where(p != 0, p, 1.0), 0.0)
        rin = _keyed(radius, "input")
        out["input"] = (
            term(q, np.broadcast_to(p, x.shape), rin)
            + term(p, xhat * b(grads["gamma"], nd), rin)
            + term(dx / b(r, nd), np.broadcast_to(b(r, nd), x.shape), rin)
        )
        return out

    # -- what the user sees -----------------------------------------------------------------
    def forward_formula(self) -> str:
        return "z = γ·x̂ + β, x̂ = (x − μ)/√(σ² + ε)"

    def grad_param_formula(self, param: str) -> str:
        return "∂L/∂γ = Σ_batch ∂L/∂z · x̂" if param == "gamma" else "∂L/∂β = Σ_batch ∂L/∂z"

    def grad_input_formula(self) -> str:
        return "∂L/∂x = γ/(m·√(σ² + ε)) · (m·∂L/∂z − Σ∂L/∂z − x̂·Σ(∂L/∂z·x̂))"

    def convention(self) -> str:
        per = "feature" if len(self.spec.in_shape) == 1 else "channel (over N, H and W)"
        return (
            f"batch normalization in training mode, per {per}: batch mean μ and biased "
            f"variance σ² (as PyTorch), ε = {self.eps:g}; running statistics "
            f"(momentum {self.momentum:g}, PyTorch's convention) use the unbiased variance; "
            "the step records their update and does not use them: evaluation mode does "
            "(dataset_loss_after, bpcalc train's test loss)"
        )


# -- reading the layer from the network file ----------------------------------------------


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> BatchNormSpec:
    F.common(
        lsrc,
        (
            "gamma",
            "beta",
            "eps",
            "momentum",
            "running_mean",
            "running_var",
            "activation",
            *activations.option_keys(),
            "freeze",
        ),
    )
    if len(shape) not in (1, 3):
        raise lsrc.error(
            f"batchnorm layer {name!r} normalizes features (N, F) or image channels (N, C, H, W), "
            f"but {prev} gives shape {V._fmt(shape)}"
        )
    f = shape[0]
    what = "features" if len(shape) == 1 else "channels"
    v = lsrc.value

    def vec(key: str, default: float) -> np.ndarray:
        if key not in v:
            return np.full(f, default)
        src = lsrc.child(key)
        a = V.array(src, f"{name}.{key}", ndims=(0, 1)).reshape(-1)
        if a.size == 1 and f > 1 and np.ndim(src.value) == 0:
            a = np.full(f, a[0])  # one number for every feature
        if a.size != f:
            raise src.error(
                f"batchnorm layer {name!r} normalizes {f} {what}, so {key} needs {f} "
                f"values (or one number for all), found {a.size}"
            )
        if key == "running_var" and (a < 0).any():
            raise src.error(f"{key} is a variance and cannot be negative, found {a.min():g}")
        return a

    eps = V.positive_number(lsrc.child("eps"), "eps") if "eps" in v else 1e-5
    momentum = 0.1
    if "momentum" in v:
        msrc = lsrc.child("momentum")
        momentum = V.number(msrc, "momentum")
        if not 0 <= momentum <= 1:
            raise msrc.error(
                "batchnorm momentum is the weight of the batch statistic in the running "
                f"average and should be between 0 and 1 (PyTorch's default is 0.1), found {momentum:g}"
            )
    F.check_sequence_options(lsrc, name, shape)
    return BatchNormSpec(
        **F.frame(lsrc, name, ltype, shape, sq),
        gamma=vec("gamma", 1.0),
        beta=vec("beta", 0.0),
        running_mean=vec("running_mean", 0.0),
        running_var=vec("running_var", 1.0),
        eps=eps,
        momentum=momentum,
        activation=F.activation(lsrc),
        freeze=F.freeze(lsrc, ("gamma", "beta")),
    )


def _keyed(radius: KeyedRadius, key: str) -> Radius:
    return lambda s: radius(key, s)
