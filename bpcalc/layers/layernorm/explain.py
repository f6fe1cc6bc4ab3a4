"""Worked explanations of layer normalization, over the D values of one row of a sample:
  μ = (x1 + … + xD) / D,  σ² = ((x1 − μ)² + … + (xD − μ)²) / D,  x̂ = (x − μ) / √(σ² + ε)
  z = γ·x̂ + β
  ∂L/∂γ = Σ ∂L/∂z·x̂,  ∂L/∂β = Σ ∂L/∂z   (over the samples and rows)
  ∂L/∂x = 1/(D·√(σ² + ε)) · (D·γ·∂L/∂z − Σ γ·∂L/∂z − x̂·Σ γ·∂L/∂z·x̂)   (Σ over the row)
Symbols: x, x̂, z carry the element's position; μ and σ² the row's (none for a vector
input: one row per sample); γ and β the position within the row.
"""

from __future__ import annotations

import numpy as np

from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import Ctx, Tensor, Work, grad, make, pad_index, split, total


class _LN:
    """A layernorm layer's values: rows are the axes not normalized, positions the others."""

    def __init__(self, ctx: Ctx, item: Item) -> None:
        layer = item.layer
        self.ctx, self.layer = ctx, layer
        self.shape = tuple(layer.in_shape)
        k = layer.axes
        self.rows_shape = self.shape[: len(self.shape) - k]
        self.norm_shape = self.shape[len(self.shape) - k :]
        self.d = int(np.prod(self.norm_shape))
        self.x = ctx.tensor(ctx.input_name(item.pos), "x", self.shape)
        self.eps = ctx.f.const(layer.eps)
        name = layer.name
        self.mean = ctx.tensor(f"{name}.mean", "μ", self.rows_shape)
        self.var = ctx.tensor(f"{name}.var", "σ", self.rows_shape)
        self.gamma = ctx.tensor(f"{name}.gamma", "γ", self.norm_shape, per_sample=False)
        self.beta = ctx.tensor(f"{name}.beta", "β", self.norm_shape, per_sample=False)

    def xhat(self) -> Tensor:
        return self.ctx.tensor(f"{self.layer.name}.xhat", "x̂", self.shape)

    def positions(self) -> list[tuple[int, ...]]:
        return list(np.ndindex(*self.norm_shape))

    def row_of(self, idx: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """An element's internal index -> (its row, its position in the row)."""
        cut = len(self.rows_shape)
        return idx[:cut], idx[cut:]

    def mu(self, row: tuple[int, ...]) -> str:
        return self.mean.s(row)

    def sigma2(self, row: tuple[int, ...]) -> str:
        return self.var.s(row) + "²"

    def g(self, p: tuple[int, ...]) -> str:
        return self.gamma.s(p)


@register("recorded", "layernorm.mean")
def ln_mean(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    ln = _LN(ctx, item)
    n, row = split(item.record.per_sample, index, len(ln.rows_shape))
    cells = [row + p for p in ln.positions()]
    return make(
        ctx,
        item.record.name,
        index,
        f"({' + '.join(ln.x.s(c) for c in cells)}) / {ln.d}",
        f"({' + '.join(ctx.f.num(ln.x.v(c, n)) for c in cells)}) / {ln.d}",
        f"the mean of the {ln.d} values of this sample's row",
        ln.mu(row),
    )


@register("recorded", "layernorm.var")
def ln_var(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    ln = _LN(ctx, item)
    n, row = split(item.record.per_sample, index, len(ln.rows_shape))
    cells = [row + p for p in ln.positions()]
    mu_s, mu = ln.mu(row), ctx.f.num(ln.mean.v(row, n))
    denom = ln.d - 1 if item.layer.unbiased else ln.d
    return make(
        ctx,
        item.record.name,
        index,
        f"({' + '.join(f'({ln.x.s(c)} − {mu_s})²' for c in cells)}) / {denom}",
        f"({' + '.join(f'({ctx.f.num(ln.x.v(c, n))} − {mu})²' for c in cells)}) / {denom}",
        "unbiased: divided by D − 1" if item.layer.unbiased else "biased: divided by D, as PyTorch",
        ln.sigma2(row),
    )


@register("recorded", "layernorm.xhat")
def ln_xhat(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    ln = _LN(ctx, item)
    n, idx = split(item.record.per_sample, index, len(ln.shape))
    row, _ = ln.row_of(idx)
    return make(
        ctx,
        item.record.name,
        index,
        f"({ln.x.s(idx)} − {ln.mu(row)}) / √({ln.sigma2(row)} + ε)",
        f"({ctx.f.num(ln.x.v(idx, n))} − {ctx.f.num(ln.mean.v(row, n))}) / "
        f"√({ctx.f.num(ln.var.v(row, n))} + {ln.eps})",
        "",
        ln.xhat().s(idx),
    )


@register("linear", "layernorm")
def ln_z(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    ln = _LN(ctx, item)
    xh = ln.xhat()
    n, idx = split(item.record.per_sample, index, len(ln.shape))
    _, p = ln.row_of(idx)
    z = ctx.tensor(item.record.name, "z", ln.shape)
    return make(
        ctx,
        item.record.name,
        index,
        f"{ln.g(p)}·{xh.s(idx)} + {ln.beta.s(p)}",
        f"{ctx.f.num(ln.gamma.v(p))}×{ctx.f.num(xh.v(idx, n))} + {ctx.f.num(ln.beta.v(p))}",
        "",
        z.s(idx),
    )


@register("grad_param", "layernorm")
def ln_grad_param(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    ln = _LN(ctx, item)
    xh = ln.xhat()
    dz = ctx.tensor(f"grad.{ln.layer.name}.z", "z", ln.shape)
    p = pad_index(index, len(ln.norm_shape))
    cells = [(n, r + p) for n in ctx.batch_terms() for r in np.ndindex(*ln.rows_shape)]
    mark = ctx.mark if len(cells) > 1 else (lambda n: None)
    if item.param == "gamma":
        syms = [f"{grad(dz.s(c, mark(n)))}·{xh.s(c, mark(n))}" for n, c in cells]
        nums = [f"{ctx.f.num(dz.v(c, n))}×{ctx.f.num(xh.v(c, n))}" for n, c in cells]
        symbol = grad(ln.g(p))
    else:
        syms = [grad(dz.s(c, mark(n))) for n, c in cells]
        nums = [ctx.f.num(dz.v(c, n)) for n, c in cells]
        symbol = grad(ln.beta.s(p))
    note = "summed over the samples" + (" and the rows" if ln.rows_shape else "")
    return make(ctx, item.record.name, index, total(syms), total(nums), note, symbol)


@register("grad_input", "layernorm")
def ln_grad_input(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    ln = _LN(ctx, item)
    xh = ln.xhat()
    dz = ctx.tensor(f"grad.{ln.layer.name}.z", "z", ln.shape)
    n, idx = split(item.record.per_sample, index, len(ln.shape))
    row, p = ln.row_of(idx)
    f, d = ctx.f.num, ln.d
    cells = [(row + q, q) for q in ln.positions()]
    s_g = [f"{ln.g(q)}·{grad(dz.s(c))}" for c, q in cells]
    v_g = [f"{f(ln.gamma.v(q))}×{f(dz.v(c, n))}" for c, q in cells]
    s_gx = [f"{ln.g(q)}·{grad(dz.s(c))}·{xh.s(c)}" for c, q in cells]
    v_gx = [f"{f(ln.gamma.v(q))}×{f(dz.v(c, n))}×{f(xh.v(c, n))}" for c, q in cells]
    sig = ln.sigma2(row)
    return make(
        ctx,
        item.record.name,
        index,
        f"1/({d}·√({sig} + ε))·({d}·{ln.g(p)}·{grad(dz.s(idx))} − ({' + '.join(s_g)}) − "
        f"{xh.s(idx)}·({' + '.join(s_gx)}))",
        f"1 / ({d}×√({f(ln.var.v(row, n))} + {ln.eps}))×({d}×{f(ln.gamma.v(p))}×"
        f"{f(dz.v(idx, n))} − ({' + '.join(v_g)}) − {f(xh.v(idx, n))}×({' + '.join(v_gx)}))",
        "μ and σ² depend on every x of the row, so each x also feels its row's other gradients",
        grad(ln.x.s(idx)),
    )
