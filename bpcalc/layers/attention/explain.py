"""Worked explanations of self-attention: the projections q, k, v; one score written in full
(q_t·k_s/√d_k); one softmax row written in full (masked keys 0); the context as the weights'
mix of the values; and every gradient back through them.

Symbols inside the layer: x the input, q k v the projections, s the scores, α the attention
weights, c the context, a the output; wq wk wv wo the entries of W_q, W_k, W_v, W_o and
bq bk bv bo the biases. With several heads, the scores and weights are indexed (head, t, s)."""

from __future__ import annotations

import math
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


class _Att:
    """The layer's traced values with their symbols, and its sizes."""

    def __init__(self, ctx: Ctx, layer: Any, pos: int) -> None:
        self.ctx, self.layer, self.name = ctx, layer, layer.name
        self.t_count, self.d = layer.in_shape
        self.heads = layer.heads
        self.dk = layer.weights_q.shape[0] // layer.heads
        self.dv = layer.weights_v.shape[0] // layer.heads
        self.scale = layer.scale if layer.scale is not None else 1 / math.sqrt(self.dk)
        given = layer.scale is not None
        self.scale_sym = f"{layer.scale:g}" if given else f"√{self.dk}"
        # how a sum is scaled, in symbols and in numbers a calculator reads (√(4), not √4)
        self.by_sym = f" × {layer.scale:g}" if given else f" / √{self.dk}"
        self.by_num = f" × {layer.scale:g}" if given else f" / √({self.dk})"
        t = self.t_count
        self.sq = (t, t) if self.heads == 1 else (self.heads, t, t)
        self.x = ctx.tensor(ctx.input_name(pos), "x", (t, self.d))
        self.allowed = [
            [(not layer.causal or s <= r) and (layer.mask is None or layer.mask[r, s] == 1)
             for s in range(t)]
            for r in range(t)
        ]  # fmt: skip

    def value(self, what: str, letter: str, grad_of: bool = False) -> Tensor:
        name = f"grad.{self.name}.{what}" if grad_of else f"{self.name}.{what}"
        shape = self.sq if what in ("scores", "weights") else self._shape(what)
        return self.ctx.tensor(name, letter, shape)

    def _shape(self, what: str) -> tuple[int, ...]:
        cols = {"q": self.dk, "k": self.dk, "v": self.dv, "context": self.dv}
        if what in cols:
            return (self.t_count, cols[what] * self.heads)
        return tuple(self.layer.out_shape)

    def param(self, key: str, letter: str) -> Tensor:
        return self.ctx.tensor(
            f"{self.name}.{key}", letter, tuple(self.layer.params[key].shape), per_sample=False
        )

    def head_idx(self, hd: int, t: int, s: int) -> tuple[int, ...]:
        return (t, s) if self.heads == 1 else (hd, t, s)

    def cols(self, hd: int, width: int) -> range:
        return range(hd * width, (hd + 1) * width)


def _att(ctx: Ctx, item: Item) -> _Att:
    return _Att(ctx, item.layer, item.pos)


def _score_index(a: _Att, item: Item, index: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(sample, head, query t, key s) of a scores / weights element."""
    n, idx = split(item.record.per_sample, index, len(a.sq))
    hd, t, s = (0, *idx) if a.heads == 1 else idx
    return n, hd, t, s


@register("value", "attention")
def attention_value(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    a = _att(ctx, item)
    f = ctx.f
    what = item.param
    if what in ("q", "k", "v"):
        n, (t, j) = split(item.record.per_sample, index, 2)
        w = a.param(f"weights_{what}", f"w{what}")
        out = a.value(what, what)
        syms = [f"{a.x.s((t, i))}·{w.s((j, i))}" for i in range(a.d)]
        nums = [f"{f.num(a.x.v((t, i), n))}×{f.num(w.v((j, i)))}" for i in range(a.d)]
        if f"bias_{what}" in item.layer.params:
            b = a.param(f"bias_{what}", f"b{what}")
            syms.append(b.s((j,)))
            nums.append(f.num(b.v((j,))))
        return make(ctx, item.record.name, index, total(syms), total(nums), "", out.s((t, j)))
    if what == "scores":
        n, hd, t, s = _score_index(a, item, index)
        q, k = a.value("q", "q"), a.value("k", "k")
        cols = a.cols(hd, a.dk)
        syms = " + ".join(f"{q.s((t, j))}·{k.s((s, j))}" for j in cols)
        nums = " + ".join(f"{f.num(q.v((t, j), n))}×{f.num(k.v((s, j), n))}" for j in cols)
        head = f", head {hd + 1}" if a.heads > 1 else ""
        return make(
            ctx,
            item.record.name,
            index,
            f"({syms}){a.by_sym}",
            f"({nums}){a.by_num}",
            f"query {t + 1} against key {s + 1}{head}: q_t·k_s scaled by"
            + (f" {a.scale_sym}" if item.layer.scale is not None else f" 1/{a.scale_sym}"),
            a.value("scores", "s").s(a.head_idx(hd, t, s)),
        )
    if what == "weights":
        n, hd, t, s = _score_index(a, item, index)
        sc = a.value("scores", "s")
        alpha = a.value("weights", "α").s(a.head_idx(hd, t, s))
        if not a.allowed[t][s]:
            why = "causal: key s > t" if item.layer.causal and s > t else "the mask is 0 here"
            return make(ctx, item.record.name, index, "0", "", f"masked ({why})", alpha)
        row = [r for r in range(a.t_count) if a.allowed[t][r]]
        syms = " + ".join(f"e^{sc.s(a.head_idx(hd, t, r))}" for r in row)
        nums = " + ".join(f"e^{f.num(sc.v(a.head_idx(hd, t, r), n))}" for r in row)
        left = [r + 1 for r in range(a.t_count) if not a.allowed[t][r]]
        note = f"the softmax of row {t + 1} of the scores"
        if left:
            note += f"; keys {', '.join(map(str, left))} are masked out of it"
        return make(
            ctx,
            item.record.name,
            index,
            f"e^{sc.s(a.head_idx(hd, t, s))} / ({syms})",
            f"e^{f.num(sc.v(a.head_idx(hd, t, s), n))} / ({nums})",
            note,
            alpha,
        )
    # context: c_tj = Σ_s α_ts·v_sj
    n, (t, j) = split(item.record.per_sample, index, 2)
    hd = j // a.dv
    w, v = a.value("weights", "α"), a.value("v", "v")
    row = [s for s in range(a.t_count) if a.allowed[t][s]]
    tight = len(row) > 1
    syms = [sym_product([w.s(a.head_idx(hd, t, s)), v.s((s, j))], tight) for s in row]
    nums = [
        product([f.num(w.v(a.head_idx(hd, t, s), n)), f.num(v.v((s, j), n))], tight) for s in row
    ]
    return make(
        ctx, item.record.name, index, total(syms), total(nums),
        "the weights' mix of the values (masked keys left out: their weight is 0)",
        a.value("context", "c").s((t, j)),
    )  # fmt: skip


@register("layer", "attention")
def attention_a(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    a = _att(ctx, item)
    f = ctx.f
    n, (t, i) = split(item.record.per_sample, index, 2)
    c = a.value("context", "c")
    if "weights_o" not in item.layer.params:
        return make(
            ctx,
            item.record.name,
            index,
            c.s((t, i)),
            f.num(c.v((t, i), n)),
            "no output projection: a = context",
            f"a{t + 1}{i + 1}",
        )
    wo = a.param("weights_o", "wo")
    width = wo.internal[1]
    syms = [f"{c.s((t, j))}·{wo.s((i, j))}" for j in range(width)]
    nums = [f"{f.num(c.v((t, j), n))}×{f.num(wo.v((i, j)))}" for j in range(width)]
    if "bias_o" in item.layer.params:
        b = a.param("bias_o", "bo")
        syms.append(b.s((i,)))
        nums.append(f.num(b.v((i,))))
    return make(ctx, item.record.name, index, total(syms), total(nums), "", f"a{t + 1}{i + 1}")


@register("grad_value", "attention")
def attention_grad_value(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    a = _att(ctx, item)
    f = ctx.f
    what = item.param
    dc = a.value("context" if "weights_o" in item.layer.params else "a", "c", grad_of=True)
    if what == "context":
        n, (t, j) = split(item.record.per_sample, index, 2)
        da = a.value("a", "a", grad_of=True)
        wo = a.param("weights_o", "wo")
        rows = range(wo.internal[0])
        tight = len(rows) > 1
        syms = [sym_product([grad(da.s((t, i))), wo.s((i, j))], tight) for i in rows]
        nums = [product([f.num(da.v((t, i), n)), f.num(wo.v((i, j)))], tight) for i in rows]
        return make(
            ctx, item.record.name, index, total(syms), total(nums), "", grad(f"c{t + 1}{j + 1}")
        )
    if what in ("weights", "scores"):
        n, hd, t, s = _score_index(a, item, index)
        at = a.head_idx(hd, t, s)
        w = a.value("weights", "α")
        if what == "weights":  # ∂L/∂α_ts = Σ_j ∂L/∂c_tj·v_sj
            v = a.value("v", "v")
            cols = a.cols(hd, a.dv)
            tight = len(cols) > 1
            syms = [sym_product([grad(dc.s((t, j))), v.s((s, j))], tight) for j in cols]
            nums = [product([f.num(dc.v((t, j), n)), f.num(v.v((s, j), n))], tight) for j in cols]
            return make(
                ctx,
                item.record.name,
                index,
                total(syms),
                total(nums),
                "α_ts multiplies v_s in c_t",
                grad(w.s(at)),
            )
        dw = a.value("weights", "α", grad_of=True)
        if not a.allowed[t][s]:
            return make(
                ctx,
                item.record.name,
                index,
                "0",
                "",
                "masked: its weight is the constant 0",
                grad(f"s{t + 1}{s + 1}"),
            )
        row = [r for r in range(a.t_count) if a.allowed[t][r]]
        inner_s = " + ".join(
            f"{w.s(a.head_idx(hd, t, r))}·{grad(w.s(a.head_idx(hd, t, r)))}" for r in row
        )
        inner_n = " + ".join(
            f"{f.num(w.v(a.head_idx(hd, t, r), n))}×{f.num(dw.v(a.head_idx(hd, t, r), n))}"
            for r in row
        )
        return make(
            ctx, item.record.name, index,
            f"{w.s(at)}·({grad(w.s(at))} − ({inner_s}))",
            f"{f.num(w.v(at, n))}×({f.num(dw.v(at, n))} − ({inner_n}))",
            "the softmax of the row couples its weights: ∂L/∂s_ts = α_ts(∂L/∂α_ts − Σ_s′ α_ts′∂L/∂α_ts′)",
            grad(a.value("scores", "s").s(at)),
        )  # fmt: skip
    n, (t, j) = split(item.record.per_sample, index, 2)
    ds = a.value("scores", "s", grad_of=True)
    if what in ("q", "k"):
        hd = j // a.dk
        other = a.value("k" if what == "q" else "q", "k" if what == "q" else "q")
        # the scores' entries q_t (row t) or k_t (column t) is in, masked ones left out
        if what == "q":
            terms = [(r, a.head_idx(hd, t, r)) for r in range(a.t_count) if a.allowed[t][r]]
        else:
            terms = [(r, a.head_idx(hd, r, t)) for r in range(a.t_count) if a.allowed[r][t]]
        tight = True
        syms = [sym_product([grad(ds.s(at)), other.s((r, j))], tight) for r, at in terms]
        nums = [product([f.num(ds.v(at, n)), f.num(other.v((r, j), n))], tight) for r, at in terms]
        note = (
            "q_t meets every key k_s in row t of the scores"
            if what == "q"
            else "k_t meets every query q_r in column t of the scores"
        )
        return make(
            ctx,
            item.record.name,
            index,
            f"({total(syms)}){a.by_sym}",
            f"({total(nums)}){a.by_num}",
            note,
            grad(f"{what}{t + 1}{j + 1}"),
        )
    # v: ∂L/∂v_sj = Σ_t α_ts·∂L/∂c_tj
    hd = j // a.dv
    w = a.value("weights", "α")
    rows = [r for r in range(a.t_count) if a.allowed[r][t]]
    tight = len(rows) > 1
    syms = [sym_product([w.s(a.head_idx(hd, r, t)), grad(dc.s((r, j)))], tight) for r in rows]
    nums = [
        product([f.num(w.v(a.head_idx(hd, r, t), n)), f.num(dc.v((r, j), n))], tight) for r in rows
    ]
    return make(
        ctx,
        item.record.name,
        index,
        total(syms),
        total(nums),
        "v_t is mixed into every context row that attends to it",
        grad(f"v{t + 1}{j + 1}"),
    )


@register("grad_param", "attention")
def attention_grad_param(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """A sum over the positions (and the batch), term by term."""
    a = _att(ctx, item)
    f = ctx.f
    which = item.param[-1]
    src = a.value("context", "c") if which == "o" else a.x
    d_out = a.value("a" if which == "o" else which, "a" if which == "o" else which, grad_of=True)
    samples = ctx.batch_terms()
    tight = len(samples) * a.t_count > 1
    syms, nums = [], []
    if item.param.startswith("weights"):
        j, i = pad_index(index, 2)
        for n in samples:
            m = ctx.mark(n)
            for t in range(a.t_count):
                syms.append(sym_product([grad(d_out.s((t, j), m)), src.s((t, i), m)], tight))
                nums.append(product([f.num(d_out.v((t, j), n)), f.num(src.v((t, i), n))], tight))
        p = a.param(item.param, f"w{which}")
        return make(
            ctx,
            item.record.name,
            index,
            total(syms),
            total(nums),
            f"a sum over the {a.t_count} positions",
            grad(p.s((j, i))),
        )
    (j,) = pad_index(index, 1)
    for n in samples:
        for t in range(a.t_count):
            syms.append(grad(d_out.s((t, j), ctx.mark(n))))
            nums.append(f.num(d_out.v((t, j), n)))
    return make(
        ctx,
        item.record.name,
        index,
        total(syms),
        total(nums),
        f"a sum over the {a.t_count} positions",
        grad(f"b{which}{j + 1}"),
    )


@register("grad_input", "attention")
def attention_grad_input(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """x_t feeds q_t, k_t and v_t: three sums."""
    a = _att(ctx, item)
    f = ctx.f
    n, (t, i) = split(item.record.per_sample, index, 2)
    syms, nums = [], []
    for which in "qkv":
        d = a.value(which, which, grad_of=True)
        w = a.param(f"weights_{which}", f"w{which}")
        for j in range(w.internal[0]):
            syms.append(f"{grad(d.s((t, j)))}·{w.s((j, i))}")
            nums.append(f"{f.num(d.v((t, j), n))}×{f.num(w.v((j, i)))}")
    return make(
        ctx,
        item.record.name,
        index,
        total(syms),
        total(nums),
        "x_t feeds q_t, k_t and v_t: the three paths add up",
        grad(a.x.s((t, i))),
    )
