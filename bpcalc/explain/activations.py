"""Explanations of the activations: a = f(z) forward, and ∂L/∂z = ∂L/∂a · f′(z) back.

ReLU′(0) is taken as 0 (as the op and PyTorch do); σ′ and tanh′ are written from the
outputs (a(1 − a), 1 − a²); softmax's Jacobian gives ∂L/∂z_i = p_i (∂L/∂p_i − Σ_j p_j ∂L/∂p_j),
and with cross-entropy the fused form p − y (sigmoid with binary cross-entropy: (p − y)/K).
For an activation layer of its own, the input is x instead of z.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpcalc.explain.registry import FUSED, Item, register
from bpcalc.explain.work import (
    MINUS,
    Ctx,
    Tensor,
    Work,
    grad,
    make,
    paren,
    product,
    split,
    sym_product,
)


def out_letter(ctx: Ctx, layer: Any) -> str:
    """p for probabilities (a softmax output, or the output a cross-entropy reads), else a."""
    act = getattr(layer, "activation", None)
    last = ctx.spec.layers[-1].name == layer.name
    if act is not None and act.kind == "softmax":
        return "p"
    return "p" if last and ctx.spec.loss.kind in FUSED else "a"


def _io(ctx: Ctx, item: Item) -> tuple[Tensor, Tensor, str]:
    """(input of f, output of f, the name of ∂L/∂input) for the item's layer."""
    layer = item.layer
    shape = tuple(layer.out_shape)
    if layer.type in ("dense", "conv2d", "batchnorm"):
        zin = ctx.tensor(f"{layer.name}.z", "z", shape)
        dname = f"grad.{layer.name}.z"
    else:
        zin = ctx.tensor(ctx.input_name(item.pos), "x", shape)
        dname = f"grad.{layer.name}.input"
    return zin, ctx.tensor(f"{layer.name}.a", out_letter(ctx, layer), shape), dname


@register("activation", "identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")
def activation_a(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    z, a, _ = _io(ctx, item)
    kind = item.kind
    n, idx = split(item.record.per_sample, index, len(layer.out_shape))
    zs, zv = z.s(idx), z.v(idx, n)
    zn = ctx.f.num(zv)
    note = ""
    if kind == "identity":
        sym, num = zs, zn
    elif kind == "relu":
        sym, num = f"max(0, {zs})", f"max(0, {zn})"
    elif kind == "leaky_relu":
        alpha = ctx.f.const(layer.activation.slope)
        if zv > 0:
            sym, num = zs, zn
            note = f"{zs} > 0, so LeakyReLU({zs}) = {zs}"
        else:
            sym, num = f"α·{zs}", f"{alpha} × {zn}"
            note = f"{zs} ≤ 0, so LeakyReLU({zs}) = α·{zs} with slope α = {alpha}"
    elif kind == "sigmoid":
        sym = f"1 / (1 + e^({MINUS}{zs}))"
        num = f"1 / (1 + e^({MINUS}{zn}))"
    elif kind == "tanh":
        sym, num = f"tanh({zs})", f"tanh({zn})"
    elif kind == "softmax":
        cells = list(np.ndindex(*z.internal))
        sym = f"e^{zs} / ({' + '.join('e^' + z.s(c) for c in cells)})"
        num = f"e^{zn} / ({' + '.join('e^' + ctx.f.num(z.v(c, n)) for c in cells)})"
    else:
        raise KeyError(kind)
    return make(ctx, item.record.name, index, sym, num, note, a.s(idx))


@register("grad_z", "identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")
def activation_grad(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer = item.layer
    z, a, dname = _io(ctx, item)
    da = ctx.tensor(f"grad.{layer.name}.a", a.letter, tuple(layer.out_shape))
    kind = item.kind
    n, idx = split(item.record.per_sample, index, len(layer.out_shape))
    zs, zv = z.s(idx), z.v(idx, n)
    das, dav = grad(da.s(idx)), ctx.f.num(da.v(idx, n))
    av = ctx.f.num(a.v(idx, n))
    note = ""
    if kind == "identity":
        sym, num = das, dav
    elif kind in ("relu", "leaky_relu"):
        name = "ReLU" if kind == "relu" else "LeakyReLU"
        low = "0" if kind == "relu" else ctx.f.const(layer.activation.slope)
        if zv > 0:
            d = "1"
            shown = ctx.f.result(zv)
            note = (
                f"{zs} = {shown} > 0, so {name}′({zs}) = 1"
                if shown != "0"
                else f"{zs} = {zv:.3g} is just above 0, so {name}′({zs}) = 1"
            )
        elif zv == 0:
            d = low
            note = f"{zs} = 0 exactly: {name}′(0) is taken as {low} (as in PyTorch)"
        else:
            d = low
            note = f"{zs} = {ctx.f.result(zv)} < 0, so {name}′({zs}) = {low}"
        sym = sym_product([das, f"{name}′({zs})"], False)
        num = product([dav, d], False)
    elif kind == "sigmoid":
        as_ = a.s(idx)
        sym = f"{das} · {as_}·(1 − {as_})"
        num = f"{dav} × {av}×(1 − {av})"
        note = f"σ′({zs}) = {as_}·(1 − {as_}), from the output"
    elif kind == "tanh":
        as_ = a.s(idx)
        sym = f"{das} · (1 − {as_}²)"
        num = f"{dav} × (1 − {av}²)"
        note = f"tanh′({zs}) = 1 − {as_}², from the output"
    elif kind == "softmax":
        cells = list(np.ndindex(*a.internal))
        inner_s = " + ".join(f"{a.s(c)}·{grad(da.s(c))}" for c in cells)
        inner_n = " + ".join(f"{ctx.f.num(a.v(c, n))}×{ctx.f.num(da.v(c, n))}" for c in cells)
        sym = f"{a.s(idx)}·({das} − ({inner_s}))"
        num = f"{av}×({dav} − ({inner_n}))"
        note = "softmax couples its outputs: ∂L/∂z_i = p_i (∂L/∂p_i − Σ_j p_j ∂L/∂p_j)"
    else:
        raise KeyError(kind)
    return make(ctx, dname, index, sym, num, note, grad(zs))


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
        k = int(np.prod(layer.out_shape))
        if k > 1:
            sym, num = f"{paren(sym)} / {k}", f"{paren(num)} / {k}"
        note = "sigmoid and binary cross-entropy together: ∂L/∂z = (p − y)/K"
    else:
        note = "softmax and cross-entropy together: ∂L/∂z = p − y"
    if loss.reduction == "mean" and ctx.n > 1:
        sym, num = f"{paren(sym)} / {ctx.n}", f"{paren(num)} / {ctx.n}"
        note += "; the batch mean divides by N"
    return make(ctx, dname, index, sym, num, note, grad(z.s(idx)))
