"""Worked explanations of a dense layer: z_i = Σ_j w_ij·x_j + b_i (layout out_in) or
z_j = Σ_i x_i·w_ij + b_j (in_out), its parameter gradients, and ∂L/∂x."""

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


@register("linear", "dense")
def dense_z(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    x, w, b = _dense_tensors(ctx, layer, item.pos)
    n, (i,) = split(item.record.per_sample, index, 1)
    syms, nums = [], []
    for j in range(layer.in_shape[0]):
        wi = _w_index(layer, i, j)
        if layer.layout == "out_in":
            syms.append(f"{w.s(wi)}·{x.s((j,))}")
            nums.append(f"{ctx.f.num(w.v(wi))}×{ctx.f.num(x.v((j,), n))}")
        else:
            syms.append(f"{x.s((j,))}·{w.s(wi)}")
            nums.append(f"{ctx.f.num(x.v((j,), n))}×{ctx.f.num(w.v(wi))}")
    if b is None:
        note = "no bias (bias: none)"
    else:
        bi = (0,) if layer.bias_shared else (i,)
        syms.append(b.s(bi))
        nums.append(ctx.f.num(b.v(bi)))
        note = "one bias b shared by all neurons" if layer.bias_shared else ""
    return make(ctx, item.record.name, index, total(syms), total(nums), note, f"z{i + 1}")


@register("grad_param", "dense")
def dense_grad_param(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    x, w, b = _dense_tensors(ctx, layer, item.pos)
    dz = ctx.tensor(f"grad.{layer.name}.z", "z", tuple(layer.out_shape))
    samples = ctx.batch_terms()
    syms, nums = [], []
    if item.param == "weights":
        r, c = pad_index(index, 2)
        out, inp = (r, c) if layer.layout == "out_in" else (c, r)
        tight = len(samples) > 1
        for n in samples:
            m = ctx.mark(n)
            gs, xs = grad(dz.s((out,), m)), x.s((inp,), m)
            gv, xv = ctx.f.num(dz.v((out,), n)), ctx.f.num(x.v((inp,), n))
            if layer.layout == "out_in":
                syms.append(sym_product([gs, xs], tight))
                nums.append(product([gv, xv], tight))
            else:
                syms.append(sym_product([xs, gs], tight))
                nums.append(product([xv, gv], tight))
        return make(ctx, item.record.name, index, total(syms), total(nums), "", grad(w.s((r, c))))
    outs = range(layer.out_shape[0]) if layer.bias_shared else [pad_index(index, 1)[0]]
    for n in samples:
        for i in outs:
            syms.append(grad(dz.s((i,), ctx.mark(n))))
            nums.append(ctx.f.num(dz.v((i,), n)))
    note = (
        "the shared bias feeds every neuron, so its gradient sums over them"
        if layer.bias_shared
        else ""
    )
    assert b is not None  # a gradient of the bias exists only when the layer has one
    bsym = b.s((0,) if layer.bias_shared else pad_index(index, 1))
    return make(ctx, item.record.name, index, total(syms), total(nums), note, grad(bsym))


@register("grad_input", "dense")
def dense_grad_input(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """∂L/∂x_j = Σ_i w_ij·∂L/∂z_i: the chain rule back through the layer."""
    layer = item.layer
    x, w, _ = _dense_tensors(ctx, layer, item.pos)
    dz = ctx.tensor(f"grad.{layer.name}.z", "z", tuple(layer.out_shape))
    n, (j,) = split(item.record.per_sample, index, 1)
    outs = range(layer.out_shape[0])
    tight = len(outs) > 1
    syms, nums = [], []
    for i in outs:
        wi = _w_index(layer, i, j)
        syms.append(sym_product([w.s(wi), grad(dz.s((i,)))], tight))
        nums.append(product([ctx.f.num(w.v(wi)), ctx.f.num(dz.v((i,), n))], tight))
    return make(ctx, item.record.name, index, total(syms), total(nums), "", grad(x.s((j,))))
