"""Worked explanations of inverted dropout: a = x·m / (1 − p), ∂L/∂x = ∂L/∂a·m / (1 − p);
m = 1 kept, 0 dropped."""

from __future__ import annotations

from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import Ctx, Tensor, Work, grad, make, split, sub


def _drop(ctx: Ctx, item: Item) -> tuple[Tensor, Tensor, str]:
    layer = item.layer
    shape = tuple(layer.in_shape)
    x = ctx.tensor(ctx.input_name(item.pos), "x", shape)
    m = ctx.tensor(f"{layer.name}.mask", "m", shape)
    return x, m, ctx.f.const(layer.p)


@register("given", "mask")
def mask(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    _, m, _ = _drop(ctx, item)
    _, idx = split(item.record.per_sample, index, len(m.internal))
    return make(ctx, item.record.name, index, m.s(idx), "", "1 = kept, 0 = dropped", m.s(idx))


@register("layer", "dropout")
def dropout_a(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    x, m, p = _drop(ctx, item)
    n, idx = split(item.record.per_sample, index, len(x.internal))
    kept = m.v(idx, n) != 0
    note = (
        f"kept ({m.s(idx)} = 1): scaled by 1/(1 − p)"
        if kept
        else f"dropped ({m.s(idx)} = 0): the output is 0"
    )
    return make(
        ctx,
        item.record.name,
        index,
        f"{x.s(idx)}·{m.s(idx)} / (1 − p)",
        f"{ctx.f.num(x.v(idx, n))}×{ctx.f.num(m.v(idx, n))} / (1 − {p})",
        note,
        "a" + sub(idx[len(idx) - x.shown_rank :]),
    )


@register("grad_input", "dropout")
def dropout_grad(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    x, m, p = _drop(ctx, item)
    da = ctx.tensor(f"grad.{item.layer.name}.a", "a", tuple(item.layer.out_shape))
    n, idx = split(item.record.per_sample, index, len(x.internal))
    kept = m.v(idx, n) != 0
    return make(
        ctx,
        item.record.name,
        index,
        f"{grad(da.s(idx))}·{m.s(idx)} / (1 − p)",
        f"{ctx.f.num(da.v(idx, n))}×{ctx.f.num(m.v(idx, n))} / (1 − {p})",
        "" if kept else "a dropped unit gets no gradient",
        grad(x.s(idx)),
    )
