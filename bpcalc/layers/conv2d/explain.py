"""Worked explanations of a conv2d layer: z[o,h,w] = Σ_{c,i,j} x[c, h·s+i−p, w·s+j−p]·k[o,c,i,j] + b[o]
(k flipped 180° with flip: true); taps that fall on the zero padding are left out."""

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
from bpcalc.layers.conv2d import pair


def _conv_tensors(ctx: Ctx, layer: Any, pos: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """x, K and b (None for a layer with bias: none)."""
    x = ctx.tensor(ctx.input_name(pos), "x", tuple(layer.in_shape))
    k = ctx.tensor(f"{layer.name}.kernel", "k", tuple(layer.kernel.shape), per_sample=False)
    if layer.bias is None:
        return x, k, None
    b = ctx.tensor(f"{layer.name}.bias", "b", tuple(layer.bias.shape), per_sample=False)
    return x, k, b


def _tap(layer: Any, o: int, c: int, i: int, j: int) -> tuple[int, int, int, int]:
    """The kernel element that multiplies window position (i, j): K[i,j], or K[kh−1−i, kw−1−j]
    when the kernel is flipped (textbook convolution)."""
    kh, kw = layer.kernel.shape[2:]
    return (o, c, kh - 1 - i, kw - 1 - j) if layer.flip else (o, c, i, j)


def _span(a: int, b: int) -> str:
    return str(a) if a == b else f"{a}–{b}"


@register("linear", "conv2d")
def conv_z(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    x, k, b = _conv_tensors(ctx, layer, item.pos)
    n, (o, h, w) = split(item.record.per_sample, index, 3)
    c_in, hh, ww = layer.in_shape
    kh, kw = layer.kernel.shape[2:]
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    syms, nums, padded = [], [], []
    for c in range(c_in):
        for i in range(kh):
            for j in range(kw):
                kidx = _tap(layer, o, c, i, j)
                r, q = h * sh + i - ph, w * sw + j - pw
                if not (0 <= r < hh and 0 <= q < ww):
                    padded.append(k.s(kidx))
                    continue
                syms.append(f"{x.s((c, r, q))}·{k.s(kidx)}")
                nums.append(f"{ctx.f.num(x.v((c, r, q), n))}×{ctx.f.num(k.v(kidx))}")
    notes = []
    if b is not None:
        syms.append(b.s((o,)))
        nums.append(ctx.f.num(b.v((o,))))
    else:
        notes.append("no bias (bias: none)")
    if layer.stride != (1, 1) or layer.padding != (0, 0):
        r0, q0 = h * sh - ph + 1, w * sw - pw + 1
        notes.append(
            f"stride {pair(layer.stride)}, padding {pair(layer.padding)}: the window covers rows "
            f"{_span(r0, r0 + kh - 1)}, columns {_span(q0, q0 + kw - 1)} of x (1-based; "
            f"rows and columns outside 1–{hh}, 1–{ww} are the zero padding)"
        )
    if padded:
        notes.append(f"{', '.join(padded)} meet the zero padding: those terms are 0 and left out")
    if layer.flip:
        notes.append("flip: the kernel is rotated 180° before it slides")
    z = ctx.tensor(item.record.name, "z", tuple(layer.out_shape))
    return make(
        ctx, item.record.name, index, total(syms), total(nums), "; ".join(notes), z.s((o, h, w))
    )


@register("grad_param", "conv2d")
def conv_grad_param(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    x, k, b = _conv_tensors(ctx, layer, item.pos)
    dz = ctx.tensor(f"grad.{layer.name}.z", "z", tuple(layer.out_shape))
    _, ho, wo = layer.out_shape
    _, hh, ww = layer.in_shape
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    samples = ctx.batch_terms()
    syms, nums = [], []
    if item.param == "kernel":
        kidx = pad_index(index, 4)
        o, c, i, j = kidx
        # which window position this kernel element multiplies (the inverse of _tap)
        ie, je = _tap(layer, o, c, i, j)[2:]
        terms = []
        for n in samples:
            for h in range(ho):
                for w in range(wo):
                    r, q = h * sh + ie - ph, w * sw + je - pw
                    if 0 <= r < hh and 0 <= q < ww:
                        terms.append((n, h, w, r, q))
        tight = len(terms) > 1
        for n, h, w, r, q in terms:
            m = ctx.mark(n)
            syms.append(sym_product([grad(dz.s((o, h, w), m)), x.s((c, r, q), m)], tight))
            nums.append(
                product([ctx.f.num(dz.v((o, h, w), n)), ctx.f.num(x.v((c, r, q), n))], tight)
            )
        note = "" if terms else "this kernel element only ever meets the zero padding"
        return make(ctx, item.record.name, index, total(syms), total(nums), note, grad(k.s(kidx)))
    assert b is not None  # a gradient of the bias exists only when the layer has one
    (o,) = pad_index(index, 1)
    for n in samples:
        for h in range(ho):
            for w in range(wo):
                syms.append(grad(dz.s((o, h, w), ctx.mark(n))))
                nums.append(ctx.f.num(dz.v((o, h, w), n)))
    return make(ctx, item.record.name, index, total(syms), total(nums), "", grad(b.s((o,))))


@register("grad_input", "conv2d")
def conv_grad_input(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """∂L/∂x[c,r,q] = Σ k·∂L/∂z over every (output position, kernel element) that saw x[c,r,q]."""
    layer = item.layer
    x, k, _ = _conv_tensors(ctx, layer, item.pos)
    dz = ctx.tensor(f"grad.{layer.name}.z", "z", tuple(layer.out_shape))
    n, (c, r, q) = split(item.record.per_sample, index, 3)
    o_n, ho, wo = layer.out_shape
    kh, kw = layer.kernel.shape[2:]
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    # output rows h whose window reaches padded row r + ph: 0 <= r + ph − h·sh < kh
    rows = range(max(0, (r + ph - kh) // sh), min(ho, (r + ph) // sh + 1))
    cols = range(max(0, (q + pw - kw) // sw), min(wo, (q + pw) // sw + 1))
    terms = []
    for o in range(o_n):
        for h in rows:
            for w in cols:
                i, j = r + ph - h * sh, q + pw - w * sw
                if 0 <= i < kh and 0 <= j < kw:
                    terms.append((_tap(layer, o, c, i, j), (o, h, w)))
    tight = len(terms) > 1
    syms = [sym_product([k.s(ki), grad(dz.s(zi))], tight) for ki, zi in terms]
    nums = [product([ctx.f.num(k.v(ki)), ctx.f.num(dz.v(zi, n))], tight) for ki, zi in terms]
    note = (
        ""
        if terms
        else f"no window covers {x.s((c, r, q))} (the stride skips it), so no gradient reaches it"
    )
    return make(ctx, item.record.name, index, total(syms), total(nums), note, grad(x.s((c, r, q))))
