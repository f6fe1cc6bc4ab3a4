"""Worked explanations of a residual block, a = x + f(x):
  a_i = x_i + f_i                      (f = the output of the block's last layer)
  ∂L/∂f_i = ∂L/∂a_i                    (∂a/∂f = 1)
  ∂L/∂x_i = ∂L/∂a_i + ∂L/∂x_i through f   (the skip path and the path through f's layers)
The layers inside the block are explained by their own units, under their full names.
"""

from __future__ import annotations

from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import Ctx, Work, grad, make, split


def _paths(ctx: Ctx, item: Item) -> tuple[str, str, str]:
    """(the block's output, the last and the first layer inside it)."""
    block = item.layer
    return f"{block.name}.a", block.inner[-1].name, block.inner[0].name


def _at(ctx: Ctx, name: str, index: tuple[int, ...]) -> float:
    return float(ctx.st.records[name].value[index])


@register("layer", "residual")
def residual_a(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    block = item.layer
    _, last, _ = _paths(ctx, item)
    shape = tuple(block.in_shape)
    x = ctx.tensor(ctx.input_name(item.pos), "x", shape)
    f = ctx.tensor(f"{last}.a", "f", shape)
    n, idx = split(item.record.per_sample, index, len(shape))
    a = ctx.tensor(item.record.name, "a", shape)
    return make(
        ctx,
        item.record.name,
        index,
        f"{x.s(idx)} + {f.s(idx)}",
        f"{ctx.f.num(x.v(idx, n))} + {ctx.f.num(f.v(idx, n))}",
        f"the skip connection adds the input x back to f(x) = {last}.a",
        a.s(idx),
    )


@register("grad_a", "residual")
def residual_grad_f(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """∂L/∂a of the block's last layer: its output f enters a = x + f with ∂a/∂f = 1."""
    block = ctx.layers[ctx.layer_pos(item.layer.name.rsplit(".", 1)[0])]
    shape = tuple(block.out_shape)
    a = ctx.tensor(f"{block.name}.a", "a", shape)
    _, idx = split(item.record.per_sample, index, len(shape))
    f = ctx.tensor(f"{item.layer.name}.a", "f", shape)
    return make(
        ctx,
        item.record.name,
        index,
        grad(a.s(idx)),
        ctx.f.num(_at(ctx, f"grad.{block.name}.a", index)),
        f"{item.layer.name}'s output is f in {block.name}.a = x + f(x), and ∂a/∂f = 1: "
        f"grad.{block.name}.a",
        grad(f.s(idx)),
    )


@register("grad_path", "residual")
def residual_path(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    block = item.layer
    shape = tuple(block.in_shape)
    x = ctx.tensor(ctx.input_name(item.pos), "x", shape)
    a = ctx.tensor(f"{block.name}.a", "a", shape)
    _, idx = split(item.record.per_sample, index, len(shape))
    _, _, first = _paths(ctx, item)
    if item.param == "skip":
        return make(
            ctx,
            item.record.name,
            index,
            grad(a.s(idx)),
            ctx.f.num(_at(ctx, f"grad.{block.name}.a", index)),
            "the skip connection passes ∂L/∂a on unchanged (∂a/∂x = 1 along it)",
            grad(x.s(idx)) + " via the skip path",
        )
    return make(
        ctx,
        item.record.name,
        index,
        grad(x.s(idx)) + f" of {first}",
        ctx.f.num(_at(ctx, f"grad.{first}.input", index)),
        f"back through f's layers, from {block.inner[-1].name} to {first}",
        grad(x.s(idx)) + " through f",
    )


@register("grad_input", "residual")
def residual_grad_input(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """∂L/∂x = ∂L/∂a (skip) + ∂L/∂x through f: x reaches a along both paths."""
    block = item.layer
    shape = tuple(block.in_shape)
    x = ctx.tensor(ctx.input_name(item.pos), "x", shape)
    a = ctx.tensor(f"{block.name}.a", "a", shape)
    _, idx = split(item.record.per_sample, index, len(shape))
    skip = _at(ctx, f"grad.{block.name}.input.skip", index)
    through = _at(ctx, f"grad.{block.name}.input.f", index)
    return make(
        ctx,
        item.record.name,
        index,
        f"{grad(a.s(idx))} + {grad(x.s(idx))} through f",
        f"{ctx.f.num(skip)} + {ctx.f.num(through)}",
        f"x reaches a along two paths, the skip connection and f: the sum of "
        f"grad.{block.name}.input.skip and grad.{block.name}.input.f",
        grad(x.s(idx)),
    )
