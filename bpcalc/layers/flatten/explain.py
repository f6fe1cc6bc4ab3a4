"""Worked explanations of flatten: which input element each output element is."""

from __future__ import annotations

from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import (
    Ctx,
    Work,
    grad,
    make,
    split,
)


def _unravel(k: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for dim in reversed(shape):
        out.append(k % dim)
        k //= dim
    return tuple(reversed(out))


@register("layer", "flatten")
def flatten_a(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    x = ctx.tensor(ctx.input_name(item.pos), "x", tuple(layer.in_shape))
    n, (k,) = split(item.record.per_sample, index, 1)
    src = _unravel(k, tuple(layer.in_shape))
    return make(
        ctx,
        item.record.name,
        index,
        x.s(src),
        ctx.f.num(x.v(src, n)),
        f"row-major order: element {k + 1} of the flat vector is {x.s(src)}",
        f"a{k + 1}",
    )


@register("grad_input", "flatten")
def flatten_grad_input(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    x = ctx.tensor(ctx.input_name(item.pos), "x", tuple(layer.in_shape))
    da = ctx.tensor(f"grad.{layer.name}.a", "a", tuple(layer.out_shape))
    n, src = split(item.record.per_sample, index, len(layer.in_shape))
    k = 0
    for dim, i in zip(layer.in_shape, src, strict=True):
        k = k * dim + i
    return make(
        ctx,
        item.record.name,
        index,
        grad(da.s((k,))),
        ctx.f.num(da.v((k,), n)),
        "flatten only moves values: the gradient goes back to where each came from",
        grad(x.s(src)),
    )
