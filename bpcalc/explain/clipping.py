"""Explanations of gradient clipping by norm (the optimizer's clip_norm, as
torch.nn.utils.clip_grad_norm_):

  ‖g‖ = √(Σ g²) over every element of every trained parameter's gradient
  ĝ = c·g with c = clip_norm / (‖g‖ + 1e-6), when ‖g‖ is above clip_norm
"""

from __future__ import annotations

from bpcalc.explain.basics import param_letter
from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import Ctx, Work, grad, make, pad_index


def _trained(ctx: Ctx) -> list[tuple[str, str]]:
    """(layer, parameter) of the gradients in the norm: every trained one, frozen left out."""
    return [
        (layer.name, p)
        for layer in ctx.spec.layers
        for p in layer.params
        if f"grad.{layer.name}.{p}" in ctx.st and p not in layer.freeze
    ]


@register("clip", "norm")
def grad_norm(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    syms, nums = [], []
    for name, p in _trained(ctx):
        g = ctx.st[f"grad.{name}.{p}"]
        syms.append(f"Σ (∂L/∂{name}.{p})²")
        nums += [f"{ctx.f.num(float(v))}²" for v in g.reshape(-1)]
    return make(
        ctx,
        item.record.name,
        index,
        f"√({' + '.join(syms)})",
        f"√({' + '.join(nums)})",
        f"clip_norm is {ctx.spec.optimizer.clip_norm:g}: "
        + ("it fires" if any(r.startswith("clipped.") for r in ctx.st.records) else "no clipping"),
        "‖g‖",
    )


@register("clip", "clipped")
def clipped(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    layer, param = item.layer, item.param
    shape = tuple(layer.params[param].shape)
    idx = pad_index(index, len(shape))
    norm = float(ctx.st["grad_norm"])
    max_norm = ctx.spec.optimizer.clip_norm
    g = float(ctx.st[f"grad.{layer.name}.{param}"][index])
    sym = param_letter(param) + "".join(str(i + 1) for i in idx)
    return make(
        ctx,
        item.record.name,
        index,
        f"clip_norm / (‖g‖ + 1e-6) · {grad(sym)}",
        f"{ctx.f.const(max_norm)} / ({ctx.f.num(norm)} + 0.000001) × {ctx.f.num(g)}",
        "‖g‖ is above clip_norm, so every gradient is scaled down by the same factor",
        "ĝ",
    )
