"""Explanations of the optimizers' updates and state (see bpcalc/optim.py, torch.optim's rules):

  momentum  v = μ·v_prev + (1 − d)·g (v = g on the first step)     θ′ = θ − η·v
  nesterov  v = μ·v_prev + g (v = g on the first step)             θ′ = θ − η·(g + μ·v)
  rmsprop   v = α·v_prev + (1 − α)·g² (v_prev = 0 at first)        θ′ = θ − η·g / (√v + ε)
  adam      m = β₁·m_prev + (1 − β₁)·g, v = β₂·v_prev + (1 − β₂)·g² (both 0 at first)
            m̂ = m / (1 − β₁^t), v̂ = v / (1 − β₂^t)                θ′ = θ − η·m̂ / (√v̂ + ε)

g = ∂L/∂θ of this step; v_prev, m_prev are the state the previous step of the trace recorded.
"""

from __future__ import annotations

from typing import Any

from bpcalc.explain.basics import param_letter
from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import Ctx, Work, grad, make, pad_index

SLOT_LETTER = {"velocity": "v", "v": "v", "m": "m", "m_hat": "m̂", "v_hat": "v̂"}


class _P:
    """One element of a parameter: θ, g, and the optimizer state now and before."""

    def __init__(self, ctx: Ctx, item: Item, index: tuple[int, ...]) -> None:
        layer, param = item.layer, item.param
        self.ctx, self.index = ctx, index
        self.base = f"{layer.name}.{param}"
        shape = tuple(layer.params[param].shape)
        self.idx = pad_index(index, len(shape))
        theta = ctx.tensor(self.base, param_letter(param), shape, per_sample=False)
        self.sym = theta.s(self.idx)
        self.sub = self.sym[1:]  # the subscript, for the state's symbols (v11, m11)
        self.theta = theta.v(self.idx)
        clipped = f"clipped.{self.base}"  # the gradient the update used, when clipping fired
        grad_name = clipped if clipped in ctx.st else f"grad.{self.base}"
        self.g = float(ctx.st[grad_name][index])
        self.frozen = param in getattr(layer, "freeze", frozenset())
        self.t = ctx.trace.steps.index(ctx.st) + 1

    def now(self, slot: str) -> float:
        return float(self.ctx.st[f"state.{self.base}.{slot}"][self.index])

    def before(self, slot: str) -> float | None:
        """The slot's value after the previous step, or None on the first step."""
        prev = self.ctx.previous()
        name = f"state.{self.base}.{slot}"
        if prev is None or name not in prev:
            return None
        return float(prev[name][self.index])

    def s(self, slot: str) -> str:
        return SLOT_LETTER.get(slot, slot) + self.sub


def _frozen(ctx: Ctx, item: Item, p: _P) -> Work:
    return make(
        ctx,
        item.record.name,
        p.index,
        p.sym,
        ctx.f.num(p.theta),
        f"{p.base} is frozen: not updated",
        p.sym + "′",
    )


def _opt(ctx: Ctx) -> Any:
    return ctx.spec.optimizer


@register("state", "momentum", "nesterov")
def velocity(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    p = _P(ctx, item, index)
    o, f = _opt(ctx), ctx.f
    prev = p.before("velocity")
    if prev is None:
        return make(
            ctx,
            item.record.name,
            index,
            grad(p.sym),
            f.num(p.g),
            "the first step: v starts as the gradient (as in PyTorch)",
            p.s("velocity"),
        )
    damp = o.dampening if item.kind == "momentum" else 0.0
    g_sym = grad(p.sym) if not damp else f"(1 − d)·{grad(p.sym)}"
    g_num = f.num(p.g) if not damp else f"(1 − {f.const(damp)})×{f.num(p.g)}"
    return make(
        ctx,
        item.record.name,
        index,
        f"μ·{p.s('velocity')} + {g_sym}",
        f"{f.const(o.momentum)}×{f.num(prev)} + {g_num}",
        "v on the right is the previous step's",
        p.s("velocity"),
    )


@register("update", "momentum")
def momentum_update(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    p = _P(ctx, item, index)
    if p.frozen:
        return _frozen(ctx, item, p)
    f = ctx.f
    return make(
        ctx,
        item.record.name,
        index,
        f"{p.sym} − η·{p.s('velocity')}",
        f"{f.num(p.theta)} − {f.const(_opt(ctx).lr)} × {f.num(p.now('velocity'))}",
        "",
        p.sym + "′",
    )


@register("update", "nesterov")
def nesterov_update(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    p = _P(ctx, item, index)
    if p.frozen:
        return _frozen(ctx, item, p)
    f, o = ctx.f, _opt(ctx)
    return make(
        ctx,
        item.record.name,
        index,
        f"{p.sym} − η·({grad(p.sym)} + μ·{p.s('velocity')})",
        f"{f.num(p.theta)} − {f.const(o.lr)} × ({f.num(p.g)} + {f.const(o.momentum)}×{f.num(p.now('velocity'))})",
        "",
        p.sym + "′",
    )


def _average(
    p: _P, f: Any, slot: str, rate_sym: str, rate: float, g_sym: str, g_num: str
) -> tuple[str, str, str]:
    """rate·s_prev + (1 − rate)·g-term, s_prev = 0 on the first step: (symbols, numbers, note)."""
    prev = p.before(slot)
    note = "" if prev is not None else f"the first step: {p.s(slot)} before it is 0"
    prev_v = 0.0 if prev is None else prev
    sym = f"{rate_sym}·{p.s(slot)} + (1 − {rate_sym})·{g_sym}"
    num = f"{f.const(rate)}×{f.num(prev_v)} + (1 − {f.const(rate)})×{g_num}"
    return sym, num, note


@register("state", "rmsprop")
def rmsprop_state(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    p = _P(ctx, item, index)
    o, f = _opt(ctx), ctx.f
    sym, num, note = _average(p, f, "v", "α", o.alpha, f"({grad(p.sym)})²", f"{f.num(p.g)}²")
    return make(ctx, item.record.name, index, sym, num, note, p.s("v"))


@register("update", "rmsprop")
def rmsprop_update(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    p = _P(ctx, item, index)
    if p.frozen:
        return _frozen(ctx, item, p)
    f, o = ctx.f, _opt(ctx)
    return make(
        ctx,
        item.record.name,
        index,
        f"{p.sym} − η·{grad(p.sym)} / (√{p.s('v')} + ε)",
        f"{f.num(p.theta)} − {f.const(o.lr)} × {f.num(p.g)} / (√({f.num(p.now('v'))}) + {f.const(o.eps)})",
        "",
        p.sym + "′",
    )


@register("state", "adam")
def adam_state(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    p = _P(ctx, item, index)
    o, f = _opt(ctx), ctx.f
    slot = item.record.name.rsplit(".", 1)[1]
    if slot == "m":
        sym, num, note = _average(p, f, "m", "β₁", o.beta1, grad(p.sym), f.num(p.g))
    elif slot == "v":
        sym, num, note = _average(p, f, "v", "β₂", o.beta2, f"({grad(p.sym)})²", f"{f.num(p.g)}²")
    elif slot in ("m_hat", "v_hat"):
        raw, beta_s, beta = ("m", "β₁", o.beta1) if slot == "m_hat" else ("v", "β₂", o.beta2)
        sym = f"{p.s(raw)} / (1 − {beta_s}^t)"
        num = f"{f.num(p.now(raw))} / (1 − {f.const(beta)}^{p.t})"
        note = f"bias correction at step t = {p.t}"
    else:
        raise KeyError(slot)
    return make(ctx, item.record.name, index, sym, num, note, p.s(slot))


@register("update", "adam")
def adam_update(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    p = _P(ctx, item, index)
    if p.frozen:
        return _frozen(ctx, item, p)
    f, o = ctx.f, _opt(ctx)
    return make(
        ctx,
        item.record.name,
        index,
        f"{p.sym} − η·{p.s('m_hat')} / (√{p.s('v_hat')} + ε)",
        f"{f.num(p.theta)} − {f.const(o.lr)} × {f.num(p.now('m_hat'))} / (√({f.num(p.now('v_hat'))}) + {f.const(o.eps)})",
        "",
        p.sym + "′",
    )
