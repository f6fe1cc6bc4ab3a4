"""Worked explanations of a dense layer: z_i = Σ_j w_ij·x_j + b_i (layout out_in) or
z_j = Σ_i x_i·w_ij + b_j (in_out), its parameter gradients, and ∂L/∂x. Over a sequence the
same at every position t (x_tj, z_ti), and the parameter gradients sum over the positions."""

from __future__ import annotations

from typing import Any

from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import (
    Ctx,
    Tensor,
    Work,
    grad,
    make,
    pad_index,
    product,
    split,
    sub,
    sym_product,
    total,
)


def _dense_tensors(ctx: Ctx, layer: Any, pos: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """x, W and b (None for a layer with bias: none)."""
    x = ctx.tensor(ctx.input_name(pos), "x", tuple(layer.in_shape))
    w = ctx.tensor(f"{layer.name}.weights", "w", tuple(layer.weights.shape), per_sample=False)
    if layer.bias is None:
        return x, w, None
    b = ctx.tensor(f"{layer.name}.bias", "b", tuple(layer.bias.shape), per_sample=False)
    return x, w, b


def _w_index(layer: Any, out: int, inp: int) -> tuple[int, int]:
    return (out, inp) if layer.layout == "out_in" else (inp, out)


def _positions(layer: Any) -> list[tuple[int, ...]]:
    """The positions of a sequence as index prefixes ((0,), (1,), …); [()] for a vector."""
    return [(t,) for t in range(layer.in_shape[0])] if len(layer.in_shape) == 2 else [()]


@register("linear", "dense")
def dense_z(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    x, w, b = _dense_tensors(ctx, layer, item.pos)
    n, idx = split(item.record.per_sample, index, len(layer.out_shape))
    pos, i = idx[:-1], idx[-1]
    syms, nums = [], []
    for j in range(layer.in_shape[-1]):
        wi = _w_index(layer, i, j)
        xj = (*pos, j)
        if layer.layout == "out_in":
            syms.append(f"{w.s(wi)}·{x.s(xj)}")
            nums.append(f"{ctx.f.num(w.v(wi))}×{ctx.f.num(x.v(xj, n))}")
        else:
            syms.append(f"{x.s(xj)}·{w.s(wi)}")
            nums.append(f"{ctx.f.num(x.v(xj, n))}×{ctx.f.num(w.v(wi))}")
    notes = []
    if b is None:
        notes.append("no bias (bias: none)")
    else:
        bi = (0,) if layer.bias_shared else (i,)
        syms.append(b.s(bi))
        nums.append(ctx.f.num(b.v(bi)))
        if layer.bias_shared:
            notes.append("one bias b shared by all neurons")
    if pos:
        notes.append(
            f"position {pos[0] + 1} of the sequence, with the same W and b as every position"
        )
    return make(
        ctx, item.record.name, index, total(syms), total(nums), "; ".join(notes), f"z{sub(idx)}"
    )


@register("grad_param", "dense")
def dense_grad_param(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    x, w, b = _dense_tensors(ctx, layer, item.pos)
    dz = ctx.tensor(f"grad.{layer.name}.z", "z", tuple(layer.out_shape))
    samples = ctx.batch_terms()
    positions = _positions(layer)
    over_t = len(positions) > 1
    syms, nums = [], []
    if item.param == "weights":
        r, c = pad_index(index, 2)
        out, inp = (r, c) if layer.layout == "out_in" else (c, r)
        tight = len(samples) * len(positions) > 1
        for n in samples:
            m = ctx.mark(n)
            for pos in positions:
                gs, xs = grad(dz.s((*pos, out), m)), x.s((*pos, inp), m)
                gv, xv = ctx.f.num(dz.v((*pos, out), n)), ctx.f.num(x.v((*pos, inp), n))
                if layer.layout == "out_in":
                    syms.append(sym_product([gs, xs], tight))
                    nums.append(product([gv, xv], tight))
                else:
                    syms.append(sym_product([xs, gs], tight))
                    nums.append(product([xv, gv], tight))
        note = "a sum over the positions: the same W acts at every one" if over_t else ""
        return make(ctx, item.record.name, index, total(syms), total(nums), note, grad(w.s((r, c))))
    outs = range(layer.out_shape[-1]) if layer.bias_shared else [pad_index(index, 1)[0]]
    for n in samples:
        for pos in positions:
            for i in outs:
                syms.append(grad(dz.s((*pos, i), ctx.mark(n))))
                nums.append(ctx.f.num(dz.v((*pos, i), n)))
    notes = []
    if layer.bias_shared:
        notes.append("the shared bias feeds every neuron, so its gradient sums over them")
    if over_t:
        notes.append("a sum over the positions: the same b acts at every one")
    assert b is not None  # a gradient of the bias exists only when the layer has one
    bsym = b.s((0,) if layer.bias_shared else pad_index(index, 1))
    return make(
        ctx, item.record.name, index, total(syms), total(nums), "; ".join(notes), grad(bsym)
    )


@register("grad_input", "dense")
def dense_grad_input(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """∂L/∂x_j = Σ_i w_ij·∂L/∂z_i: the chain rule back through the layer (at each position)."""
    layer = item.layer
    x, w, _ = _dense_tensors(ctx, layer, item.pos)
    dz = ctx.tensor(f"grad.{layer.name}.z", "z", tuple(layer.out_shape))
    n, idx = split(item.record.per_sample, index, len(layer.in_shape))
    pos, j = idx[:-1], idx[-1]
    outs = range(layer.out_shape[-1])
    tight = len(outs) > 1
    syms, nums = [], []
    for i in outs:
        wi = _w_index(layer, i, j)
        syms.append(sym_product([w.s(wi), grad(dz.s((*pos, i)))], tight))
        nums.append(product([ctx.f.num(w.v(wi)), ctx.f.num(dz.v((*pos, i), n))], tight))
    return make(ctx, item.record.name, index, total(syms), total(nums), "", grad(x.s(idx)))
