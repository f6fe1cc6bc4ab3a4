"""Explanations of weight penalties (see bpcalc/regularization.py for the convention):

loss.penalty             = Σ (λ₂/2)·Σθ² + λ₁·Σ|θ| over the penalised parameters
loss                     = L_data + penalty
grad.<l>.<p>.penalty     = λ₂·θ + λ₁·sign(θ)        (sign(0) = 0)
grad.<l>.<p>             = ∂L_data/∂θ + ∂penalty/∂θ
"""

from __future__ import annotations

import numpy as np

from bpcalc.explain.basics import param_letter
from bpcalc.explain.registry import Item, param_names, register
from bpcalc.explain.work import Ctx, Work, grad, make, pad_index


def _applies(reg, param: str) -> bool:  # noqa: ANN001
    from bpcalc import regularization

    return regularization.applies(reg, param)


def _theta(ctx: Ctx, layer, param: str):  # noqa: ANN001, ANN202
    shape = tuple(layer.params[param].shape)
    return ctx.tensor(f"{layer.name}.{param}", param_letter(param), shape, per_sample=False)


@register("penalty", "grad")
def penalty_grad(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    reg = ctx.spec.regularization[item.layer.name]
    theta = _theta(ctx, item.layer, item.param)
    idx = pad_index(index, len(theta.internal))
    ts, tv = theta.s(idx), theta.v(idx)
    syms, nums, notes = [], [], []
    if reg.l2:
        syms.append(f"λ₂·{ts}")
        nums.append(f"{ctx.f.const(reg.l2)}×{ctx.f.num(tv)}")
    if reg.l1:
        sign = int(np.sign(tv))
        syms.append(f"λ₁·sign({ts})")
        nums.append(f"{ctx.f.const(reg.l1)}×{ctx.f.num(sign)}")
        if tv == 0:
            notes.append(f"{ts} = 0: sign(0) is taken as 0")
    return make(
        ctx,
        item.record.name,
        index,
        " + ".join(syms),
        " + ".join(nums),
        "; ".join(notes),
        f"∂penalty/∂{ts}",
    )


@register("penalty", "loss")
def penalty_loss(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    syms, nums = [], []
    for layer in ctx.layers:  # inside blocks too
        reg = ctx.spec.regularization.get(layer.name)
        if reg is None:
            continue
        for param in param_names(layer):
            if not _applies(reg, param):
                continue
            theta = _theta(ctx, layer, param)
            cells = list(np.ndindex(*theta.internal))
            if reg.l2:
                syms.append(
                    f"({ctx.f.const(reg.l2)}/2)·({' + '.join(theta.s(c) + '²' for c in cells)})"
                )
                nums.append(
                    f"({ctx.f.const(reg.l2)}/2)×({' + '.join(ctx.f.num(theta.v(c)) + '²' for c in cells)})"
                )
            if reg.l1:
                syms.append(
                    f"{ctx.f.const(reg.l1)}·({' + '.join('|' + theta.s(c) + '|' for c in cells)})"
                )
                nums.append(
                    f"{ctx.f.const(reg.l1)}×({' + '.join(ctx.f.num(abs(theta.v(c))) for c in cells)})"
                )
    note = "symbols are each layer's own: w of one layer is not w of another"
    return make(ctx, item.record.name, index, " + ".join(syms), " + ".join(nums), note, "penalty")


@register("sum", "penalty")
def loss_total(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    data, pen = float(ctx.st["loss.data"]), float(ctx.st["loss.penalty"])
    return make(
        ctx,
        item.record.name,
        index,
        "L_data + penalty",
        f"{ctx.f.num(data)} + {ctx.f.num(pen)}",
        "",
        "L",
    )


@register("sum", "grad")
def grad_total(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer, param = item.layer, item.param
    theta = _theta(ctx, layer, param)
    base = f"grad.{layer.name}.{param}"
    d = float(ctx.st[f"{base}.data"][index])
    p = float(ctx.st[f"{base}.penalty"][index])
    ts = theta.s(pad_index(index, len(theta.internal)))
    return make(
        ctx,
        item.record.name,
        index,
        f"∂L_data/∂{ts} + ∂penalty/∂{ts}",
        f"{ctx.f.num(d)} + {ctx.f.num(p)}",
        "",
        grad(ts),
    )
