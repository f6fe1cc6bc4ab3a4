"""Worked explanations of an embedding: which row of E each output row is, and ∂L/∂E as the
scatter-add of the rows' gradients, term by term (every position, in every sample, where the
token appears)."""

from __future__ import annotations

from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import Ctx, Work, grad, make, pad_index, split, sub, total


@register("layer", "embedding")
def embedding_a(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """a_{t,j} = E[x_t, j]."""
    layer = item.layer
    x = ctx.tensor(ctx.input_name(item.pos), "x", tuple(layer.in_shape))
    e = ctx.tensor(f"{layer.name}.weights", "e", tuple(layer.weights.shape), per_sample=False)
    n, (t, j) = split(item.record.per_sample, index, 2)
    v = int(x.v((t,), n))
    return make(
        ctx,
        item.record.name,
        index,
        e.s((v, j)),
        ctx.f.num(e.v((v, j))),
        f"{x.s((t,))} = {v}: token ids count from 0, so token {v} is row {v + 1} of E",
        f"a{sub((t, j))}",
    )


@register("grad_param", "embedding")
def embedding_grad(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """∂L/∂E[v, j] = Σ over the positions t (of every sample) with x_t = v of ∂L/∂a_{t,j}."""
    layer = item.layer
    x = ctx.tensor(ctx.input_name(item.pos), "x", tuple(layer.in_shape))
    da = ctx.tensor(f"grad.{layer.name}.a", "a", tuple(layer.out_shape))
    e = ctx.tensor(f"{layer.name}.weights", "e", tuple(layer.weights.shape), per_sample=False)
    v, j = pad_index(index, 2)
    syms, nums, where = [], [], []
    for n in ctx.batch_terms():
        for t in range(layer.in_shape[0]):
            if int(x.v((t,), n)) != v:
                continue
            syms.append(grad(da.s((t, j), ctx.mark(n))))
            nums.append(ctx.f.num(da.v((t, j), n)))
            where.append(x.s((t,), ctx.mark(n)))
    if not where:
        note = f"token {v} appears nowhere in the input, so its row gets no gradient"
    elif len(where) == 1:
        note = f"token {v} appears once ({where[0]} = {v})"
    else:
        note = (
            f"token {v} appears {len(where)} times ({', '.join(where)} = {v}): "
            "a scatter-add, its row gets the sum of their gradients"
        )
    return make(ctx, item.record.name, index, total(syms), total(nums), note, grad(e.s((v, j))))
