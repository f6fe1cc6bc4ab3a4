"""Explanations of the loss and of its gradient with respect to the network's output.

Per sample over the K output elements (natural logs):
  mse ((a − y)² summed) / K, half_mse ½·(…) / K, sse Σ (a − y)², half_sse ½·Σ (a − y)²,
  cross_entropy −Σ y·ln(p), binary_cross_entropy −Σ [y·ln(p) + (1 − y)·ln(1 − p)] / K.
Over a batch: the mean (divide by N) or the sum of the per-sample losses, the samples marked
with superscripts; the gradient of each sample then carries the 1/N of the mean.
Counts (K, N) are written as numbers, in the formula too.
A sequence output (T positions of K): the loss of each position, then their mean (divide by
T) or sum; K is then the elements of one position.
"""

from __future__ import annotations

import numpy as np

from bpcalc.explain.registry import Item, register
from bpcalc.explain.work import MINUS, Ctx, Tensor, Work, grad, make, out_letter, paren, split
from bpcalc.losses import EPS

SQUARED = ("mse", "half_mse", "sse", "half_sse")


def _out(ctx: Ctx) -> tuple[Tensor, Tensor, int]:
    last = ctx.spec.layers[-1]
    shape = tuple(last.out_shape)
    a = ctx.tensor(f"{last.name}.a", out_letter(ctx, last), shape)
    y = ctx.tensor("target", "y", shape)
    k = shape[-1] if ctx.spec.loss.positions else int(np.prod(shape))
    return a, y, k


def _per_sample(
    ctx: Ctx, kind: str, a: Tensor, y: Tensor, k: int, n: int, marked: bool = True
) -> tuple[str, str]:
    """ℓ of sample n: (symbols, numbers); marked: the symbols carry the sample's mark. Over a
    sequence: each position's loss, then their mean (or sum) over the positions."""
    positions = ctx.spec.loss.positions
    if not positions:
        return _over(ctx, kind, a, y, k, n, marked, list(np.ndindex(*a.internal)))
    t_count = a.internal[0]
    parts = [
        _over(ctx, kind, a, y, k, n, marked, [(t, j) for j in range(k)]) for t in range(t_count)
    ]
    if t_count == 1:
        return parts[0]
    sym = " + ".join(paren(s) for s, _ in parts)
    num = " + ".join(paren(v) for _, v in parts)
    if positions == "mean":
        return f"({sym}) / {t_count}", f"({num}) / {t_count}"
    return sym, num


def _over(
    ctx: Ctx,
    kind: str,
    a: Tensor,
    y: Tensor,
    k: int,
    n: int,
    marked: bool,
    cells: list[tuple[int, ...]],
) -> tuple[str, str]:
    """The loss over these cells (one sample's output, or one position of it)."""
    m = ctx.mark(n) if marked else None
    f = ctx.f
    if kind in SQUARED:
        sym = " + ".join(f"({a.s(c, m)} − {y.s(c, m)})²" for c in cells)
        num = " + ".join(f"({f.num(a.v(c, n))} − {f.num(y.v(c, n))})²" for c in cells)
        if kind in ("mse", "half_mse") and k > 1:
            sym, num = f"({sym}) / {k}", f"({num}) / {k}"
        if kind in ("half_mse", "half_sse"):
            if len(cells) > 1 or kind == "half_mse" and k > 1:
                sym, num = f"({sym})", f"({num})"
            sym, num = f"½·{sym}", f"0.5×{num}"
        return sym, num
    if kind == "cross_entropy":
        if ctx.spec.loss.positions:  # a class per position: its y·ln(p) terms of y = 0 are 0
            cells = [c for c in cells if y.v(c, n) != 0] or cells[:1]
        sym = " + ".join(f"{y.s(c, m)}·ln({a.s(c, m)})" for c in cells)
        num = " + ".join(f"{f.num(y.v(c, n))}×ln({f.num(a.v(c, n))})" for c in cells)
        return f"{MINUS}{paren(sym)}", f"{MINUS}{paren(num)}"
    if kind == "binary_cross_entropy":
        sym = " + ".join(
            f"{y.s(c, m)}·ln({a.s(c, m)}) + (1 − {y.s(c, m)})·ln(1 − {a.s(c, m)})" for c in cells
        )
        num = " + ".join(
            f"{f.num(y.v(c, n))}×ln({f.num(a.v(c, n))}) + (1 − {f.num(y.v(c, n))})×ln(1 − {f.num(a.v(c, n))})"
            for c in cells
        )
        sym, num = f"{MINUS}({sym})", f"{MINUS}({num})"
        if k > 1:
            sym, num = f"{sym} / {k}", f"{num} / {k}"
        return sym, num
    raise KeyError(kind)


@register("loss", "mse", "half_mse", "sse", "half_sse", "cross_entropy", "binary_cross_entropy")
def loss(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    a, y, k = _out(ctx)
    parts = [_per_sample(ctx, item.kind, a, y, k, n) for n in range(ctx.n)]
    if len(parts) == 1:
        sym, num = parts[0]
        note = ""
    else:
        sym = " + ".join(paren(s) for s, _ in parts)
        num = " + ".join(paren(v) for _, v in parts)
        if ctx.spec.loss.reduction == "mean":
            sym, num = f"({sym}) / {ctx.n}", f"({num}) / {ctx.n}"
            note = f"the mean over the batch of the {ctx.n} per-sample losses"
        else:
            note = f"the sum over the batch of the {ctx.n} per-sample losses"
    symbol = "L_data" if item.record.name == "loss.data" else "L"
    return make(ctx, item.record.name, index, sym, num, note, symbol)


@register(
    "loss_sample", "mse", "half_mse", "sse", "half_sse", "cross_entropy", "binary_cross_entropy"
)
def loss_sample(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """ℓ of one sample of the batch (loss.per_sample[n])."""
    a, y, k = _out(ctx)
    (n,) = index
    sym, num = _per_sample(ctx, item.kind, a, y, k, n, marked=False)
    return make(ctx, item.record.name, index, sym, num, "", "ℓ")


@register(
    "loss_grad", "mse", "half_mse", "sse", "half_sse", "cross_entropy", "binary_cross_entropy"
)
def loss_grad(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    a, y, k = _out(ctx)
    n, idx = split(item.record.per_sample, index, len(a.internal))
    f = ctx.f
    as_, ys = a.s(idx), y.s(idx)
    av, yv = f.num(a.v(idx, n)), f.num(y.v(idx, n))
    kind = item.kind
    if kind in SQUARED:
        sym, num = f"{as_} − {ys}", f"{av} − {yv}"
        if kind in ("mse", "sse"):
            sym, num = f"2·({sym})", f"2×({num})"
        if kind in ("mse", "half_mse") and k > 1:
            sym, num = f"{paren(sym)} / {k}", f"{paren(num)} / {k}"
        note = {
            "mse": "from (1/K) Σ (a − y)²",
            "half_mse": "from ½·(1/K) Σ (a − y)²: the ½ cancels the 2",
            "sse": "from Σ (a − y)²",
            "half_sse": "from ½ Σ (a − y)²: the ½ cancels the 2",
        }[kind]
    elif kind == "cross_entropy":
        sym, num = f"{MINUS}{ys} / {as_}", f"{MINUS}{yv} / {av}"
        note = "from −Σ y·ln(p)"
        if a.v(idx, n) < EPS and y.v(idx, n) > 0:  # the division is clamped, as in losses.py
            sym, num = f"{MINUS}{ys} / max({as_}, ε)", f"{MINUS}{yv} / max({av}, {EPS:g})"
            note += f"; {as_} is below ε = {EPS:g}, so the division uses ε"
    elif kind == "binary_cross_entropy":
        pv = a.v(idx, n)
        if pv * (1 - pv) < EPS:  # the division is clamped, as in losses.py
            sym = f"({as_} − {ys}) / max({as_}·(1 − {as_}), ε)"
            num = f"({av} − {yv}) / max({av}×(1 − {av}), {EPS:g})"
            clamp = f"; {as_}·(1 − {as_}) is below ε = {EPS:g}, so the division uses ε"
        else:
            sym = f"({as_} − {ys}) / ({as_}·(1 − {as_}))"
            num = f"({av} − {yv}) / ({av}×(1 − {av}))"
            clamp = ""
        if k > 1:
            sym, num = f"{sym} / {k}", f"{num} / {k}"
        note = "from −[y·ln(p) + (1 − y)·ln(1 − p)] / K" + clamp
    else:
        raise KeyError(kind)
    t_count = a.internal[0]
    if ctx.spec.loss.positions == "mean" and t_count > 1:
        sym, num = f"{paren(sym)} / {t_count}", f"{paren(num)} / {t_count}"
        note += f"; the mean over the positions divides by T = {t_count}"
    if ctx.spec.loss.reduction == "mean" and ctx.n > 1:
        sym, num = f"{paren(sym)} / {ctx.n}", f"{paren(num)} / {ctx.n}"
        note += f"; the batch mean divides by N = {ctx.n}"
    return make(ctx, item.record.name, index, sym, num, note, grad(as_))
