"""Explanations of the activations: a = f(z) forward, and ∂L/∂z = ∂L/∂a · f′(z) back.

Each activation unit (bpcalc/activations.py) writes its own element out from the symbols and
numbers gathered here; the fused softmax + cross-entropy form p − y (sigmoid with binary
cross-entropy: (p − y)/K) is the loss's. For an activation layer of its own, the input is x
instead of z.
"""

from __future__ import annotations

import numpy as np

from bpcalc import activations
from bpcalc.activations import Terms
from bpcalc.explain.registry import PARAMETRIC, Item, register
from bpcalc.explain.work import Ctx, Tensor, Work, grad, make, out_letter, paren, split


def _io(ctx: Ctx, item: Item) -> tuple[Tensor, Tensor, str]:
    """(input of f, output of f, the name of ∂L/∂input) for the item's layer."""
    layer = item.layer
    shape = tuple(layer.out_shape)
    if layer.type in PARAMETRIC:  # a z of its own before the activation
        zin = ctx.tensor(f"{layer.name}.z", "z", shape)
        dname = f"grad.{layer.name}.z"
    else:
        zin = ctx.tensor(ctx.input_name(item.pos), "x", shape)
        dname = f"grad.{layer.name}.input"
    return zin, ctx.tensor(f"{layer.name}.a", out_letter(ctx, layer), shape), dname


def _terms(
    ctx: Ctx, item: Item, index: tuple[int, ...]
) -> tuple[Terms, Tensor, str, tuple[int, ...]]:
    """The element's symbols and numbers for its activation unit, the output tensor, the name of
    ∂L/∂input and the element's internal index."""
    layer = item.layer
    z, a, dname = _io(ctx, item)
    da = ctx.tensor(f"grad.{layer.name}.a", a.letter, tuple(layer.out_shape))
    n, idx = split(item.record.per_sample, index, len(layer.out_shape))
    have_grad = da.name in ctx.st.records
    row: tuple[tuple[str, float, str, float, str, float], ...] = ()
    if not activations.unit_class(item.kind).elementwise:
        row = tuple(
            (
                z.s(c),
                z.v(c, n),
                a.s(c),
                a.v(c, n),
                grad(da.s(c)),
                da.v(c, n) if have_grad else 0.0,
            )
            for c in _unit(item).group(idx, z.internal)
        )
    terms = Terms(
        z=z.s(idx),
        zv=z.v(idx, n),
        a=a.s(idx),
        av=a.v(idx, n),
        da=grad(da.s(idx)),
        dav=da.v(idx, n) if have_grad else 0.0,
        num=ctx.f.num,
        const=ctx.f.const,
        result=ctx.f.result,
        row=row,
    )
    return terms, a, dname, idx


def _unit(item: Item) -> activations.Activation:
    act = getattr(item.layer, "activation", None)
    return act.unit() if act is not None else activations.get(item.kind)


@register("activation", "*")
def activation_a(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    t, a, _, idx = _terms(ctx, item, index)
    sym, num, note = _unit(item).explain_forward(t)
    return make(ctx, item.record.name, index, sym, num, note, a.s(idx))


@register("grad_z", "*")
def activation_grad(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    t, _, dname, _ = _terms(ctx, item, index)
    sym, num, note = _unit(item).explain_backward(t)
    return make(ctx, dname, index, sym, num, note, grad(t.z))


@register("grad_z", "fused")
def fused_grad(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """Softmax + cross-entropy: ∂L/∂z = p − y; sigmoid + binary cross-entropy: (p − y)/K;
    over a batch with the mean, divided by N too."""
    layer = item.layer
    z, p, dname = _io(ctx, item)
    y = ctx.tensor("target", "y", tuple(layer.out_shape))
    n, idx = split(item.record.per_sample, index, len(layer.out_shape))
    sym = f"{p.s(idx)} − {y.s(idx)}"
    num = f"{ctx.f.num(p.v(idx, n))} − {ctx.f.num(y.v(idx, n))}"
    loss = ctx.spec.loss
    if loss.kind == "binary_cross_entropy":
        k = layer.out_shape[-1] if loss.positions else int(np.prod(layer.out_shape))
        if k > 1:
            sym, num = f"{paren(sym)} / {k}", f"{paren(num)} / {k}"
        note = "sigmoid and binary cross-entropy together: ∂L/∂z = (p − y)/K"
    else:
        note = "softmax and cross-entropy together: ∂L/∂z = p − y"
    t_count = layer.out_shape[0]
    if loss.positions == "mean" and t_count > 1:
        sym, num = f"{paren(sym)} / {t_count}", f"{paren(num)} / {t_count}"
        note += f"; the mean over the positions divides by T = {t_count}"
    if loss.reduction == "mean" and ctx.n > 1:
        sym, num = f"{paren(sym)} / {ctx.n}", f"{paren(num)} / {ctx.n}"
        note += "; the batch mean divides by N"
    return make(ctx, dname, index, sym, num, note, grad(z.s(idx)))
