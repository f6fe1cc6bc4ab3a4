"""Explanations of the given values, of the gradient handed from one layer to the one
before it, and of the plain gradient-descent update θ′ = θ − η·∂L/∂θ."""

from __future__ import annotations

from typing import Any

from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import Ctx, Work, grad, make, pad_index, split
from bpcalc.trace import element_name

PARAM_LETTER = {
    "weights": "w",
    "kernel": "k",
    "bias": "b",
    "gamma": "γ",
    "beta": "β",
    "running_mean": "M",
    "running_var": "V",
    "weights_ih": "u",  # an RNN's W_ih (U in Goodfellow et al.), W_hh, and its two biases
    "weights_hh": "w",
    "bias_ih": "bi",
    "bias_hh": "bh",
    "weights_q": "wq",  # attention's projections and their biases
    "weights_k": "wk",
    "weights_v": "wv",
    "weights_o": "wo",
    "bias_q": "bq",
    "bias_k": "bk",
    "bias_v": "bv",
    "bias_o": "bo",
}


def param_letter(param: str) -> str:
    return PARAM_LETTER.get(param, param)


def _param_tensor(ctx: Ctx, layer: Any, param: str, name: str | None = None):  # noqa: ANN202
    shape = tuple(layer.params[param].shape)
    return ctx.tensor(name or f"{layer.name}.{param}", param_letter(param), shape, per_sample=False)


@register("given", "input", "target", "param")
def given(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    name = item.record.name
    if item.kind == "param":
        t = _param_tensor(ctx, item.layer, item.param)
        sym = t.s(pad_index(index, len(t.internal)))
        return make(ctx, name, index, sym, "", "", sym)
    if item.kind == "input":
        shape = tuple(ctx.spec.layers[0].in_shape)
        t = ctx.tensor(name, "x", shape)
        note = ""
    else:
        shape = tuple(ctx.spec.layers[-1].out_shape)
        t = ctx.tensor(name, "y", shape)
        note = ""
        classes = ctx.spec.target_classes
        if classes is not None:
            n, at = split(item.record.per_sample, index, len(shape))
            c = classes[ctx.dataset_index(n)]
            if classes.ndim == 2:  # a class per position of a sequence
                c = c[at[0]]
            note = f"one-hot of class {int(c)}"
    _, idx = split(item.record.per_sample, index, len(shape))
    sym = t.s(idx)
    return make(ctx, name, index, sym, "", note, sym)


@register("grad_a", "next")
def grad_from_next(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """∂L/∂a of a layer is ∂L/∂x of the next one: the output of one is the input of the next."""
    nxt = ctx.next_layer(item.pos)
    dx = ctx.tensor(f"grad.{nxt.name}.input", "x", tuple(nxt.in_shape))
    n, idx = split(item.record.per_sample, index, len(nxt.in_shape))
    a = ctx.tensor(f"{item.layer.name}.a", "a", tuple(item.layer.out_shape))
    return make(
        ctx,
        item.record.name,
        index,
        grad(dx.s(idx)),
        ctx.f.num(dx.v(idx, n)),
        f"{item.layer.name}'s output is the input x of {nxt.name}: "
        f"{element_name(f'grad.{nxt.name}.input', index)}",
        grad(a.s(idx)),
    )


@register("update", "sgd")
def sgd_update(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """θ′ = θ − η·∂L/∂θ, element by element."""
    layer, param = item.layer, item.param
    theta = _param_tensor(ctx, layer, param)
    clipped = f"clipped.{layer.name}.{param}" in ctx.st  # clip_norm fired: ĝ is what it uses
    g_name = f"clipped.{layer.name}.{param}" if clipped else f"grad.{layer.name}.{param}"
    g = _param_tensor(ctx, layer, param, g_name)
    idx = pad_index(index, len(theta.internal))
    ts = theta.s(idx)
    if param in getattr(layer, "freeze", frozenset()):
        return make(
            ctx,
            item.record.name,
            index,
            ts,
            ctx.f.num(theta.v(idx)),
            f"{layer.name}.{param} is frozen: not updated",
            ts + "′",
        )
    eta = ctx.f.const(ctx.spec.optimizer.lr)
    return make(
        ctx,
        item.record.name,
        index,
        f"{ts} − η·{'ĝ' if clipped else grad(ts)}",
        f"{ctx.f.num(theta.v(idx))} − {eta} × {ctx.f.num(g.v(idx))}",
        "ĝ: the clipped gradient (clip_norm)" if clipped else "",
        ts + "′",
    )


AFTER_NOTES = {
    "loss_after": "a forward pass of this step's batch with the updated parameters, in "
    "training mode (the same dropout mask, batchnorm on the batch's own statistics); its "
    "values are not traced one by one",
    "dataset_loss_after": "a forward pass over all the samples with the updated parameters, "
    "in evaluation mode: dropout off, batchnorm on its running statistics (the new "
    "running_mean and running_var of this step), as bpcalc train's test loss; its values are "
    "not traced one by one",
}


@register("after", "loss_after")
def loss_after(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """The loss of a fresh forward pass with the updated parameters (not traced value by
    value): loss_after on the step's batch in training mode, dataset_loss_after on every
    sample in evaluation mode (engine.dataset_loss)."""
    name = item.record.name
    return make(ctx, name, index, item.record.formula, "", AFTER_NOTES[name], "L′")
