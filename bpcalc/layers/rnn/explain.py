"""Worked explanations of an Elman RNN, step by step: z_t and h_t forward; back through time
∂L/∂h_t as its two contributions (from the output at t, from step t+1) and their sum, ∂L/∂z_t,
the weights' gradients as sums over time written term by term, and ∂L/∂x_t.

Symbols inside the layer: x the input, z and h per step (h21 = h at step 2, unit 1; h0 the
given initial state), u the entries of W_ih, w those of W_hh, b the bias (b_ih and b_hh as
bi and bh in PyTorch's form)."""

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
    sample_mark,
    split,
    sub,
    sym_product,
    total,
)


class _Rnn:
    """The layer's traced values, with their symbols."""

    def __init__(self, ctx: Ctx, layer: Any, pos: int) -> None:
        self.ctx, self.layer = ctx, layer
        t_count, d = layer.in_shape
        hidden = layer.weights_hh.shape[0]
        self.t_count, self.d, self.hidden = t_count, d, hidden
        name = layer.name
        self.x = ctx.tensor(ctx.input_name(pos), "x", (t_count, d))
        self.z = ctx.tensor(f"{name}.z", "z", (t_count, hidden))
        self.h = ctx.tensor(f"{name}.h", "h", (t_count, hidden))
        self.h0 = ctx.tensor(f"{name}.h0", "h0", (hidden,), per_sample=False)
        self.u = ctx.tensor(f"{name}.weights_ih", "u", (hidden, d), per_sample=False)
        self.w = ctx.tensor(f"{name}.weights_hh", "w", (hidden, hidden), per_sample=False)
        self.single = "bias" in layer.params

    def grad(self, what: str) -> Tensor:
        return self.ctx.tensor(
            f"grad.{self.layer.name}.{what}",
            "h" if what != "z" else "z",
            (self.t_count, self.hidden),
        )

    def prev_s(self, t: int, k: int, n: int | None = None) -> str:
        """The symbol of h_{t−1}, unit k (t 0-based: h0 before the first step)."""
        if t > 0:
            return self.h.s((t - 1, k), n)
        if self.hidden > 1:
            return self.h0.s((k,), n)
        return "h0" + (sample_mark(n) if n is not None else "")

    def prev_v(self, t: int, k: int, n: int) -> float:
        return self.h.v((t - 1, k), n) if t > 0 else self.h0.v((k,))


def _bare(num: str) -> str:
    """A number as a function's argument: tanh(−0.05927), not tanh((−0.05927))."""
    return num[1:-1] if num.startswith("(") else num


def _rnn(ctx: Ctx, item: Item) -> _Rnn:
    return _Rnn(ctx, item.layer, item.pos)


@register("value", "rnn")
def rnn_value(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    r = _rnn(ctx, item)
    f = ctx.f
    if item.param == "h0":
        (k,) = pad_index(index, 1)
        sym = r.prev_s(0, k)
        return make(
            ctx, item.record.name, index, sym, "", "the state before the first step, given", sym
        )
    n, (t, i) = split(item.record.per_sample, index, 2)
    if item.param == "h":
        fn = item.layer.nonlinearity
        return make(
            ctx,
            item.record.name,
            index,
            f"{fn}({r.z.s((t, i))})",
            f"{fn}({_bare(f.num(r.z.v((t, i), n)))})",
            "",
            r.h.s((t, i)),
        )
    # z_t,i = Σ_j u_ij·x_t,j + Σ_k w_ik·h_{t−1},k + b_i
    syms = [f"{r.u.s((i, j))}·{r.x.s((t, j))}" for j in range(r.d)]
    nums = [f"{f.num(r.u.v((i, j)))}×{f.num(r.x.v((t, j), n))}" for j in range(r.d)]
    syms += [f"{r.w.s((i, k))}·{r.prev_s(t, k)}" for k in range(r.hidden)]
    nums += [f"{f.num(r.w.v((i, k)))}×{f.num(r.prev_v(t, k, n))}" for k in range(r.hidden)]
    for key, letter in (("bias", "b"), ("bias_ih", "bi"), ("bias_hh", "bh")):
        if key in item.layer.params:
            b = ctx.tensor(f"{item.layer.name}.{key}", letter, (r.hidden,), per_sample=False)
            syms.append(b.s((i,)))
            nums.append(f.num(b.v((i,))))
    note = "the first step reads the given h0" if t == 0 else f"step {t + 1} reads h of step {t}"
    return make(ctx, item.record.name, index, total(syms), total(nums), note, r.z.s((t, i)))


@register("layer", "rnn")
def rnn_a(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    r = _rnn(ctx, item)
    if item.layer.returns == "last":
        n, (i,) = split(item.record.per_sample, index, 1)
        t = r.t_count - 1
        note = "return: last: the output is the last step's hidden state"
    else:
        n, (t, i) = split(item.record.per_sample, index, 2)
        note = "return: all: the output is every step's hidden state"
    return make(
        ctx,
        item.record.name,
        index,
        r.h.s((t, i)),
        ctx.f.num(r.h.v((t, i), n)),
        note,
        f"a{sub((t, i))}" if item.layer.returns == "all" else f"a{sub((i,))}",
    )


@register("grad_value", "rnn")
def rnn_grad_value(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    r = _rnn(ctx, item)
    f = ctx.f
    n, (t, i) = split(item.record.per_sample, index, 2)
    name = item.layer.name
    last = t == r.t_count - 1
    dh_sym = grad(r.h.s((t, i)))
    if item.param == "h.from_output":
        if item.layer.returns == "last" and not last:
            return make(
                ctx,
                item.record.name,
                index,
                "0",
                "",
                "return: last: only h_T reaches the output",
                dh_sym,
            )
        da = ctx.tensor(f"grad.{name}.a", "a", tuple(item.layer.out_shape))
        at = (i,) if item.layer.returns == "last" else (t, i)
        return make(
            ctx,
            item.record.name,
            index,
            grad(da.s(at)),
            f.num(da.v(at, n)),
            "h_t is the layer's output at t",
            dh_sym,
        )
    if item.param == "h.from_next":
        if last:
            return make(ctx, item.record.name, index, "0", "", "no step after the last one", dh_sym)
        dz = r.grad("z")
        tight = r.hidden > 1
        syms = [
            sym_product([r.w.s((k, i)), grad(dz.s((t + 1, k)))], tight) for k in range(r.hidden)
        ]
        nums = [
            product([f.num(r.w.v((k, i))), f.num(dz.v((t + 1, k), n))], tight)
            for k in range(r.hidden)
        ]
        return make(
            ctx,
            item.record.name,
            index,
            total(syms),
            total(nums),
            f"h at step {t + 1} feeds z at step {t + 2} through W_hh: (W_hhᵀ·∂L/∂z_{{t+1}})",
            dh_sym,
        )
    if item.param == "h":
        fo = ctx.tensor(f"grad.{name}.h.from_output", "h", (r.t_count, r.hidden))
        fn = ctx.tensor(f"grad.{name}.h.from_next", "h", (r.t_count, r.hidden))
        return make(
            ctx,
            item.record.name,
            index,
            "(from the output at t) + (from step t+1)",
            f"{f.num(fo.v((t, i), n))} + {f.num(fn.v((t, i), n))}",
            "both paths from h_t to the loss add up",
            dh_sym,
        )
    # grad z: ∂L/∂z_t = ∂L/∂h_t ⊙ f′(z_t)
    dh = r.grad("h")
    if item.layer.nonlinearity == "tanh":
        hv = r.h.v((t, i), n)
        sym = f"{grad(r.h.s((t, i)))}·(1 − {r.h.s((t, i))}²)"
        num = f"{f.num(dh.v((t, i), n))}×(1 − {f.num(hv)}²)"
        note = "tanh′(z) = 1 − tanh(z)² = 1 − h²"
    else:
        zv = r.z.v((t, i), n)
        sym = f"{grad(r.h.s((t, i)))}·relu′({r.z.s((t, i))})"
        num = f"{f.num(dh.v((t, i), n))}×{1 if zv > 0 else 0}"
        note = f"{r.z.s((t, i))} = {f.num(zv)} {'> 0' if zv > 0 else '≤ 0'}"
    return make(ctx, item.record.name, index, sym, num, note, grad(r.z.s((t, i))))


@register("grad_param", "rnn")
def rnn_grad_param(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """A sum over time (and the batch), term by term."""
    r = _rnn(ctx, item)
    f = ctx.f
    dz = r.grad("z")
    samples = ctx.batch_terms()
    tight = len(samples) * r.t_count > 1
    syms, nums = [], []
    param = item.param
    if param in ("weights_ih", "weights_hh"):
        i, j = pad_index(index, 2)
        for n in samples:
            m = ctx.mark(n)
            for t in range(r.t_count):
                g_s, g_v = grad(dz.s((t, i), m)), f.num(dz.v((t, i), n))
                if param == "weights_ih":
                    o_s, o_v = r.x.s((t, j), m), f.num(r.x.v((t, j), n))
                else:
                    o_s, o_v = r.prev_s(t, j, m), f.num(r.prev_v(t, j, n))
                syms.append(sym_product([g_s, o_s], tight))
                nums.append(product([g_v, o_v], tight))
        what = "x_t" if param == "weights_ih" else "h_{t−1} (h0 at the first step)"
        note = f"a sum over the {r.t_count} steps: the same weights act at every step, each term ∂L/∂z_t·{what}"
        letter = r.u if param == "weights_ih" else r.w
        return make(
            ctx, item.record.name, index, total(syms), total(nums), note, grad(letter.s((i, j)))
        )
    (i,) = pad_index(index, 1)
    for n in samples:
        for t in range(r.t_count):
            syms.append(grad(dz.s((t, i), ctx.mark(n))))
            nums.append(f.num(dz.v((t, i), n)))
    return make(
        ctx,
        item.record.name,
        index,
        total(syms),
        total(nums),
        f"a sum over the {r.t_count} steps",
        grad(f"b{i + 1}"),
    )


@register("grad_input", "rnn")
def rnn_grad_input(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    r = _rnn(ctx, item)
    f = ctx.f
    dz = r.grad("z")
    n, (t, j) = split(item.record.per_sample, index, 2)
    tight = r.hidden > 1
    syms = [sym_product([r.u.s((i, j)), grad(dz.s((t, i)))], tight) for i in range(r.hidden)]
    nums = [product([f.num(r.u.v((i, j))), f.num(dz.v((t, i), n))], tight) for i in range(r.hidden)]
    return make(ctx, item.record.name, index, total(syms), total(nums), "", grad(r.x.s((t, j))))
