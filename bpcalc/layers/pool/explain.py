"""Worked explanations of max and average pooling: the window, its winner (max) or mean,
and where the gradient goes."""

from __future__ import annotations

from typing import Any

from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import (
    Ctx,
    Tensor,
    Work,
    grad,
    make,
    split,
    total,
)


def _window(layer: Any, h: int, w: int) -> list[tuple[int, int]]:
    kh, kw = layer.size
    sh, sw = layer.stride
    return [(h * sh + i, w * sw + j) for i in range(kh) for j in range(kw)]


def _covering(layer: Any, r: int, q: int, ho: int, wo: int) -> list[tuple[int, int]]:
    """The output positions whose window contains input position (r, q)."""
    (kh, kw), (sh, sw) = layer.size, layer.stride
    rows = [
        h for h in range(max(0, (r - kh) // sh), min(ho, r // sh + 1)) if h * sh <= r < h * sh + kh
    ]
    cols = [
        w for w in range(max(0, (q - kw) // sw), min(wo, q // sw + 1)) if w * sw <= q < w * sw + kw
    ]
    return [(h, w) for h in rows for w in cols]


def _winner(x: Tensor, n: int, c: int, cells: list[tuple[int, int]]) -> tuple[int, int]:
    """The window's max; on a tie the first in row-major order (as the op does)."""
    best = cells[0]
    for cell in cells[1:]:
        if x.v((c, *cell), n) > x.v((c, *best), n):
            best = cell
    return best


@register("layer", "maxpool2d", "avgpool2d")
def pool_a(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    x = ctx.tensor(ctx.input_name(item.pos), "x", tuple(layer.in_shape))
    a = ctx.tensor(item.record.name, "a", tuple(layer.out_shape))
    n, (c, h, w) = split(item.record.per_sample, index, 3)
    cells = _window(layer, h, w)
    syms = [x.s((c, *cell)) for cell in cells]
    nums = [ctx.f.num(x.v((c, *cell), n)) for cell in cells]
    if layer.kind == "max":
        win = _winner(x, n, c, cells)
        note = f"the max is {x.s((c, *win))}: ∂L/∂{a.s((c, h, w))} goes back to it alone"
        if sum(x.v((c, *cell), n) == x.v((c, *win), n) for cell in cells) > 1:
            note += " (a tie: the first in row-major order wins)"
        return make(
            ctx,
            item.record.name,
            index,
            f"max({', '.join(syms)})",
            f"max({', '.join(nums)})",
            note,
            a.s((c, h, w)),
        )
    size = len(cells)
    return make(
        ctx,
        item.record.name,
        index,
        f"({' + '.join(syms)}) / {size}",
        f"({' + '.join(nums)}) / {size}",
        "",
        a.s((c, h, w)),
    )


@register("grad_input", "maxpool2d", "avgpool2d")
def pool_grad_input(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    x = ctx.tensor(ctx.input_name(item.pos), "x", tuple(layer.in_shape))
    a = ctx.tensor(f"{layer.name}.a", "a", tuple(layer.out_shape))
    da = ctx.tensor(f"grad.{layer.name}.a", "a", tuple(layer.out_shape))
    n, (c, r, q) = split(item.record.per_sample, index, 3)
    _, ho, wo = layer.out_shape
    covering = _covering(layer, r, q, ho, wo)
    me = x.s((c, r, q))
    if layer.kind == "max":
        won = [(h, w) for h, w in covering if _winner(x, n, c, _window(layer, h, w)) == (r, q)]
        lost = [hw for hw in covering if hw not in won]
        syms = [grad(da.s((c, *hw))) for hw in won]
        nums = [ctx.f.num(da.v((c, *hw), n)) for hw in won]
        parts = []
        if won:
            parts.append(
                f"{me} is the max of the window of {', '.join(a.s((c, *hw)) for hw in won)}"
            )
        if lost:
            parts.append(
                f"{me} is not the max of the window of {', '.join(a.s((c, *hw)) for hw in lost)}"
            )
        if not covering:
            parts.append(f"no window covers {me}")
        note = "; ".join(parts) + ("" if won else ", so no gradient reaches it")
        return make(ctx, item.record.name, index, total(syms), total(nums), note, grad(me))
    size = layer.size[0] * layer.size[1]
    syms = [f"{grad(da.s((c, *hw)))} / {size}" for hw in covering]
    nums = [f"{ctx.f.num(da.v((c, *hw), n))} / {size}" for hw in covering]
    note = f"each element of a window gets 1/{size} of the window's gradient"
    return make(ctx, item.record.name, index, total(syms), total(nums), note, grad(me))
