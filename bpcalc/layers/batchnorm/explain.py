"""Worked explanations of batch normalization (training mode), over the m values of a feature
(N, or N·H·W per channel):
  μ = (Σ x) / m,  σ² = Σ (x − μ)² / m,  x̂ = (x − μ) / √(σ² + ε),  z = γ·x̂ + β
  ∂L/∂γ = Σ ∂L/∂z·x̂,  ∂L/∂β = Σ ∂L/∂z
  ∂L/∂x = γ / (m·√(σ² + ε)) · (m·∂L/∂z − ∂L/∂β − x̂·∂L/∂γ)
  running_mean′ = (1 − k)·running_mean + k·μ,  running_var′ = (1 − k)·running_var + k·σ²·m/(m − 1)
Symbols: μ1, σ1², x̂1, γ1, β1 carry the feature (channel) number; x, x̂ and z the element's.
"""

from __future__ import annotations

import numpy as np

from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import Ctx, Tensor, Work, grad, make, pad_index, split, sub


class _BN:
    """A batchnorm layer's values, per feature f (the channel for images)."""

    def __init__(self, ctx: Ctx, item: Item) -> None:
        layer = item.layer
        self.ctx, self.layer = ctx, layer
        self.shape = tuple(layer.in_shape)
        self.x = ctx.tensor(ctx.input_name(item.pos), "x", self.shape)
        self.eps = ctx.f.const(layer.eps)
        name = layer.name
        self.names = {k: f"{name}.{k}" for k in ("mean", "var", "xhat", "z", "gamma", "beta")}

    def feature(self, idx: tuple[int, ...]) -> int:
        return idx[0]

    def cells(self, f: int) -> list[tuple[int, tuple[int, ...]]]:
        """(sample, element) of every value of feature f in the batch."""
        rest = list(np.ndindex(*self.shape[1:]))
        return [(n, (f, *r)) for n in range(self.ctx.n) for r in rest]

    @property
    def m(self) -> int:
        return self.ctx.n * int(np.prod(self.shape[1:]))

    def per_feature(self, key: str, f: int) -> float:
        return float(np.asarray(self.ctx.st[self.names[key]]).reshape(-1)[f])

    def fsym(self, letter: str, f: int) -> str:
        return f"{letter}{sub((f,))}"

    def mark(self, n: int) -> int | None:
        return self.ctx.mark(n)


@register("bn", "mean")
def bn_mean(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    bn = _BN(ctx, item)
    (f,) = pad_index(index, 1)
    cells = bn.cells(f)
    syms = [bn.x.s(c, bn.mark(n)) for n, c in cells]
    nums = [ctx.f.num(bn.x.v(c, n)) for n, c in cells]
    return make(
        ctx,
        item.record.name,
        index,
        f"({' + '.join(syms)}) / {bn.m}",
        f"({' + '.join(nums)}) / {bn.m}",
        f"the mean of feature {f + 1} over the batch (m = {bn.m} values)",
        bn.fsym("μ", f),
    )


@register("bn", "var")
def bn_var(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    bn = _BN(ctx, item)
    (f,) = pad_index(index, 1)
    mu_s, mu = bn.fsym("μ", f), ctx.f.num(bn.per_feature("mean", f))
    cells = bn.cells(f)
    syms = [f"({bn.x.s(c, bn.mark(n))} − {mu_s})²" for n, c in cells]
    nums = [f"({ctx.f.num(bn.x.v(c, n))} − {mu})²" for n, c in cells]
    return make(
        ctx,
        item.record.name,
        index,
        f"({' + '.join(syms)}) / {bn.m}",
        f"({' + '.join(nums)}) / {bn.m}",
        "biased: divided by m, as PyTorch normalizes",
        f"σ{sub((f,))}²",
    )


@register("bn", "xhat")
def bn_xhat(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    bn = _BN(ctx, item)
    n, idx = split(item.record.per_sample, index, len(bn.shape))
    f = bn.feature(idx)
    return make(
        ctx,
        item.record.name,
        index,
        f"({bn.x.s(idx)} − {bn.fsym('μ', f)}) / √(σ{sub((f,))}² + ε)",
        f"({ctx.f.num(bn.x.v(idx, n))} − {ctx.f.num(bn.per_feature('mean', f))}) / "
        f"√({ctx.f.num(bn.per_feature('var', f))} + {bn.eps})",
        "",
        "x̂" + sub(idx[len(idx) - bn.x.shown_rank :]),
    )


def _xhat(ctx: Ctx, bn: _BN) -> Tensor:
    return ctx.tensor(bn.names["xhat"], "x̂", bn.shape)


@register("linear", "batchnorm")
def bn_z(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    bn = _BN(ctx, item)
    xh = _xhat(ctx, bn)
    n, idx = split(item.record.per_sample, index, len(bn.shape))
    f = bn.feature(idx)
    return make(
        ctx,
        item.record.name,
        index,
        f"{bn.fsym('γ', f)}·{xh.s(idx)} + {bn.fsym('β', f)}",
        f"{ctx.f.num(bn.per_feature('gamma', f))}×{ctx.f.num(xh.v(idx, n))} + "
        f"{ctx.f.num(bn.per_feature('beta', f))}",
        "",
        "z" + sub(idx[len(idx) - xh.shown_rank :]),
    )


@register("grad_param", "batchnorm")
def bn_grad_param(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    bn = _BN(ctx, item)
    xh = _xhat(ctx, bn)
    dz = ctx.tensor(f"grad.{bn.layer.name}.z", "z", bn.shape)
    (f,) = pad_index(index, 1)
    cells = bn.cells(f)
    tight = len(cells) > 1
    if item.param == "gamma":
        syms = [f"{grad(dz.s(c, bn.mark(n)))}·{xh.s(c, bn.mark(n))}" for n, c in cells]
        nums = [f"{ctx.f.num(dz.v(c, n))}×{ctx.f.num(xh.v(c, n))}" for n, c in cells]
        if not tight:
            syms, nums = (
                [s.replace("·", " · ") for s in syms],
                [v.replace("×", " × ") for v in nums],
            )
        symbol = grad(bn.fsym("γ", f))
    else:
        syms = [grad(dz.s(c, bn.mark(n))) for n, c in cells]
        nums = [ctx.f.num(dz.v(c, n)) for n, c in cells]
        symbol = grad(bn.fsym("β", f))
    return make(ctx, item.record.name, index, " + ".join(syms), " + ".join(nums), "", symbol)


@register("grad_input", "batchnorm")
def bn_grad_input(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    bn = _BN(ctx, item)
    xh = _xhat(ctx, bn)
    dz = ctx.tensor(f"grad.{bn.layer.name}.z", "z", bn.shape)
    n, idx = split(item.record.per_sample, index, len(bn.shape))
    f = bn.feature(idx)
    fs = sub((f,))
    g = ctx.f.num
    dgamma = float(np.asarray(ctx.st[f"grad.{bn.layer.name}.gamma"]).reshape(-1)[f])
    dbeta = float(np.asarray(ctx.st[f"grad.{bn.layer.name}.beta"]).reshape(-1)[f])
    m = bn.m
    return make(
        ctx,
        item.record.name,
        index,
        f"γ{fs} / ({m}·√(σ{fs}² + ε))·({m}·{grad(dz.s(idx))} − ∂L/∂β{fs} − {xh.s(idx)}·∂L/∂γ{fs})",
        f"{g(bn.per_feature('gamma', f))} / ({m}×√({g(bn.per_feature('var', f))} + {bn.eps}))×"
        f"({m}×{g(dz.v(idx, n))} − {g(dbeta)} − {g(xh.v(idx, n))}×{g(dgamma)})",
        "μ and σ² depend on every x of the batch, so each x also feels the others' gradients",
        grad(bn.x.s(idx)),
    )


@register("running", "batchnorm")
def bn_running(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    bn = _BN(ctx, item)
    (f,) = pad_index(index, 1)
    k = ctx.f.const(bn.layer.momentum)
    stat = item.param  # running_mean | running_var
    old = float(np.asarray(ctx.st[f"{bn.layer.name}.{stat}"]).reshape(-1)[f])
    fs = sub((f,))
    g = ctx.f.num
    r = ("M" if stat == "running_mean" else "V") + fs
    if stat == "running_mean":
        sym = f"(1 − k)·{r} + k·μ{fs}"
        num = f"(1 − {k})×{g(old)} + {k}×{g(bn.per_feature('mean', f))}"
        note = f"M: the running mean; k = momentum = {k}"
    else:
        m = bn.m
        sym = f"(1 − k)·{r} + k·σ{fs}²·{m}/{m - 1}" if m > 1 else f"(1 − k)·{r} + k·σ{fs}²"
        num = f"(1 − {k})×{g(old)} + {k}×{g(bn.per_feature('var', f))}" + (
            f"×{m}/{m - 1}" if m > 1 else ""
        )
        note = f"V: the running variance, from the unbiased σ²·m/(m − 1); k = momentum = {k}"
    return make(ctx, item.record.name, index, sym, num, note, r + "′")
