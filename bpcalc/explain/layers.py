"""Explanations of the layers: dense, conv2d, max/avg pooling, flatten — forward, the
parameter gradients, and the chain rule back to the layer's input.

Conventions as in the ops: dense z_i = Σ_j w_ij·x_j + b_i (layout out_in) or
z_j = Σ_i x_i·w_ij + b_j (in_out); conv z[o,h,w] = Σ_{c,i,j} x[c, h·s+i−p, w·s+j−p]·k[o,c,i,j] + b[o]
(k flipped 180° with flip: true); taps that fall on the zero padding are left out.
"""

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

# --- dense --------------------------------------------------------------------------------


def _dense_tensors(ctx: Ctx, layer: Any, pos: int) -> tuple[Tensor, Tensor, Tensor]:
    x = ctx.tensor(ctx.input_name(pos), "x", tuple(layer.in_shape))
    w = ctx.tensor(f"{layer.name}.weights", "w", tuple(layer.weights.shape), per_sample=False)
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


# --- conv2d -------------------------------------------------------------------------------


def _conv_tensors(ctx: Ctx, layer: Any, pos: int) -> tuple[Tensor, Tensor, Tensor]:
    x = ctx.tensor(ctx.input_name(pos), "x", tuple(layer.in_shape))
    k = ctx.tensor(f"{layer.name}.kernel", "k", tuple(layer.kernel.shape), per_sample=False)
    b = ctx.tensor(f"{layer.name}.bias", "b", tuple(layer.bias.shape), per_sample=False)
    return x, k, b


def _tap(layer: Any, o: int, c: int, i: int, j: int) -> tuple[int, int, int, int]:
    """The kernel element that multiplies window position (i, j): K[i,j], or K[kh−1−i, kw−1−j]
    when the kernel is flipped (textbook convolution)."""
    kh, kw = layer.kernel.shape[2:]
    return (o, c, kh - 1 - i, kw - 1 - j) if layer.flip else (o, c, i, j)


def _pair(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


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
    syms.append(b.s((o,)))
    nums.append(ctx.f.num(b.v((o,))))
    notes = []
    if layer.stride != (1, 1) or layer.padding != (0, 0):
        r0, q0 = h * sh - ph + 1, w * sw - pw + 1
        notes.append(
            f"stride {_pair(layer.stride)}, padding {_pair(layer.padding)}: the window covers rows "
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


# --- pooling and flatten ------------------------------------------------------------------


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
