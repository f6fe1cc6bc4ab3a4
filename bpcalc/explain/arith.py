"""Explanations that add up: a reader who types the substituted numbers into a calculator
gets the printed result, to its last printed digit.

Operands are first written with the precision of the tables; where the rounded operands do
not give the printed result ((−0.525) × 6 is −3.15, the result −3.1499 needs −0.52498),
the element is explained again with more digits in its operands, the result still at the
tables' precision. `evaluate` reads the explanations' notation: numbers, + − × · /,
parentheses, powers (², ^), e^v, ln, √, max, tanh.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import replace
from typing import Any

from bpcalc.explain.registry import Item, explain_element
from bpcalc.explain.work import Ctx, Work
from bpcalc.render.numbers import Precision, decimals_shown, fmt

EXTRA = (1, 2, 3, 4, 6, 8, 12, 20)  # more operand digits to try, in turn (20: every digit)

_BIN: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_FUN: dict[str, Any] = {
    "exp": math.exp,
    "log": math.log,
    "max": max,
    "min": min,
    "tanh": math.tanh,
    "sqrt": math.sqrt,
}


def evaluate(expr: str) -> float:
    """The value of an explanation's substituted numbers: × · -> *, − -> -, ² -> **2,
    e^v -> exp(v), ln -> log, √(v) -> sqrt(v), b^t -> b**t. ValueError for anything else
    (a symbol, a name, a call that is not one of exp/log/max/min/tanh/sqrt)."""
    s = expr.replace("×", "*").replace("·", "*").replace("−", "-").replace("²", "**2")
    s = re.sub(r"(?<![\d.])e\^([\d.]+)", r"exp(\1)", s).replace("e^(", "exp(")
    s = s.replace("ln(", "log(").replace("√(", "sqrt(").replace("^", "**")
    try:
        tree = ast.parse(s, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:  # not arithmetic, or too deep
        raise ValueError(f"not arithmetic: {expr[:80]!r}") from exc

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            # a long sum (a batch of a thousand samples) nests to the left: walk down the
            # left spine instead of recursing into it
            chain = []
            while isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
                chain.append(node)
                node = node.left
            if chain:
                total = ev(node)
                for op in reversed(chain):
                    total = _BIN[type(op.op)](total, ev(op.right))
                return float(total)
            return float(_BIN[type(node.op)](ev(node.left), ev(node.right)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUN:
            return float(_FUN[node.func.id](*(ev(a) for a in node.args)))
        raise ValueError(f"not allowed in an explanation: {ast.dump(node)} in {expr!r}")

    try:
        return ev(tree)
    except RecursionError as exc:
        raise ValueError(f"too deeply nested: {expr[:80]!r}") from exc


def shown(result: str) -> float:
    """A printed result as a number: '−3.15' -> -3.15."""
    return float(result.replace("−", "-"))


def adds_up(w: Work) -> bool:
    """The substituted numbers, evaluated, round to the printed result: they lie within half
    a unit of its last digit. True when there is nothing to evaluate (a given value, a
    symbol, a note) or the result is not a plain number."""
    if not w.substituted:
        return True
    try:
        got = evaluate(w.substituted)
        want = shown(w.result)
    except (ValueError, ZeroDivisionError, OverflowError):
        return True
    if not (math.isfinite(got) and math.isfinite(want)):
        return True
    half = 0.5 * 10.0 ** -decimals_shown(w.result)
    return abs(got - want) <= half * (1 + 1e-9) + 1e-15 * max(abs(got), abs(want))


def explained(ctx: Ctx, item: Item, index: tuple[int, ...]) -> Work:
    """The element's work, with more digits in its operands where the rounded ones would
    not add up to the printed result."""
    w = explain_element(ctx, item, index)
    for extra in EXTRA:
        if adds_up(w):
            return w
        w = explain_element(replace(ctx, f=replace(ctx.f, extra=extra)), item, index)
    if adds_up(w):
        return w
    return _at_float_precision(w)


_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]\d+)?")


def _at_float_precision(w: Work) -> Work:
    """A result that float64 cannot give to the digits asked for: a sum that cancels to
    rounding noise (0.2087 + 0.1327 + ... = −2.22e-16, where the same numbers added in
    another order give −9.5e-17). With every operand digit printed, the result is rounded
    to the absolute precision of the arithmetic, 1e-12 of its largest operand: 0."""
    scale = max((float(m) for m in _NUMBER.findall(w.substituted)), default=0.0)
    if not math.isfinite(w.value) or scale == 0:
        return w
    decimals = max(0, 12 - math.floor(math.log10(scale)))
    text = fmt(w.value, Precision(decimals=decimals))
    return replace(w, result="−" + text[1:] if text.startswith("-") else text)
