"""Show the work: for an element of a traced value, the formula in symbols, the same with the
numbers substituted, and the result, as a student would write it on paper.

Reads only the trace (every value is there) and the spec it came from (`trace.spec`, for the
configuration: stride, padding, flip, pool size, activation, layout, shared bias, loss,
learning rate). Explainers live in a registry (see registry.py): a new layer, activation or
optimizer adds its own with `@register(role, kind)`; a value with none shows its record's
formula and value.

Selection (the CLI's --explain): `all` explains every value with at most LIMIT elements
(--full lifts the limit); a value name explains all its elements, `name[i,j]` one element,
a glob (`grad.*`) the matching values within the limit; `none` nothing.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from bpcalc import layers as _layers
from bpcalc.errors import UsageError
from bpcalc.explain import (  # noqa: F401  (they register their explainers)
    basics,
    clipping,
    losses,
    optimizers,
    regularization,
)
from bpcalc.explain.arith import explained
from bpcalc.explain.registry import (
    FALLBACK_NOTE,
    Item,
    classify,
    explain_element,
    lookup,
    register,
    registered,
)
from bpcalc.explain.text import work_lines
from bpcalc.explain.work import Ctx, Fmt, Work
from bpcalc.render.numbers import Precision
from bpcalc.trace import Record, StepTrace, Trace, element_name, parse_ref
from bpcalc.usage import close_names, did_you_mean

for _module in _layers.explain_modules():  # each layer unit's worked explanations
    importlib.import_module(_module)

LIMIT = 16  # values with more elements are explained only when named (or with --full)
SYMBOLS = (
    "Symbols: one letter and the element's 1-based position (x12 = x[0,1]); inside a layer "
    "x is its input, z before the activation, a its output (p: probabilities), k kernel, "
    "w weights, b bias, y target, η learning rate; ⁽n⁾ marks the n-th sample of the step's batch in sums over it."
)

__all__ = [
    "FALLBACK_NOTE",
    "LIMIT",
    "SYMBOLS",
    "Explained",
    "Item",
    "Request",
    "Work",
    "classify",
    "explain_element",
    "explain_trace",
    "explain_value",
    "lookup",
    "parse_requests",
    "register",
    "registered",
    "work_lines",
]


@dataclass
class Request:
    """What the user asked to see explained."""

    all: bool = False
    values: set[str] = field(default_factory=set)  # whole values, named
    elements: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)
    globs: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.all or self.values or self.elements or self.globs)

    def named(self) -> set[str]:
        return self.values | set(self.elements)


@dataclass
class Explained:
    """The work for one value: `works` for the elements explained; `skipped` when the value
    was left out for its size (name it, or use --full, to see it)."""

    record: Record
    works: list[Work]
    skipped: bool = False


def parse_requests(requests: Iterable[str], trace: Trace) -> Request:
    """Check each --explain argument against the trace's value names; UsageError if unknown."""
    req = Request()
    st = trace.steps[0]
    names = list(st.records)
    for raw in requests:
        text = raw.strip()
        if text == "all":
            req.all = True
            continue
        if text == "none":
            continue
        if text in st:
            req.values.add(text)
            continue
        try:
            name, index = parse_ref(text)
        except ValueError:
            name, index = None, None
        if name is not None and name in st:
            if index is None:
                req.values.add(name)
                continue
            shape = st.records[name].shape
            if len(index) != len(shape) or any(
                not 0 <= i < s for i, s in zip(index, shape, strict=False)
            ):
                dims = "x".join(str(s) for s in shape) or "a scalar (no index)"
                raise UsageError(
                    f"--explain {text}: {name} has shape {dims}; give one index per axis, "
                    f"0-based, such as {element_name(name, tuple(0 for _ in shape))}"
                )
            req.elements.setdefault(name, []).append(index)
            continue
        if any(ch in text for ch in "*?[") and any(fnmatch.fnmatchcase(n, text) for n in names):
            req.globs.append(text)
            continue
        hint = did_you_mean(close_names(name or text, names))
        raise UsageError(
            f"--explain {text}: no value of that name{hint} "
            "(give all, a value name such as conv.z, an element such as conv.z[0,0], or a glob such as 'grad.*')"
        )
    return req


def explain_trace(
    trace: Trace,
    request: Request,
    decimals: int | Precision = 4,
    full: bool = False,
    keep: Callable[[Record], bool] = lambda r: True,
    min_sig: int = 1,
) -> dict[int, list[Explained]]:
    """Step number -> the explained values of that step, in computation order.
    min_sig: see Fmt (tests ask for many significant digits to check the arithmetic)."""
    fmt = Fmt(decimals, min_sig)
    return {st.step: _explain_step(trace, st, request, fmt, full, keep) for st in trace.steps}


def _explain_step(
    trace: Trace,
    st: StepTrace,
    request: Request,
    fmt: Fmt,
    full: bool,
    keep: Callable[[Record], bool],
) -> list[Explained]:
    ctx = Ctx(trace, st, trace.spec, fmt)
    out = []
    for rec in st:
        if not keep(rec):
            continue
        chosen = selected(rec, request, full)
        if chosen is None:
            continue
        if chosen == "skipped":
            out.append(Explained(rec, [], skipped=True))
            continue
        indices = request.elements[rec.name] if chosen == "elements" else np.ndindex(*rec.shape)
        item = classify(trace.spec, rec, st.records)
        out.append(Explained(rec, [explained(ctx, item, tuple(i)) for i in indices]))
    return out


def selected(rec: Record, request: Request, full: bool) -> str | None:
    """What of `rec` the request explains: "elements" (those named), "all" its elements,
    "skipped" (too large without --full), or None."""
    if rec.name in request.elements and rec.name not in request.values:
        return "elements"
    if rec.name in request.values:
        return "all"
    if request.all or any(fnmatch.fnmatchcase(rec.name, g) for g in request.globs):
        return "skipped" if rec.value.size > LIMIT and not full else "all"
    return None


def explain_value(
    trace: Trace, ref: str, decimals: int | Precision = 4, step: int = 1
) -> list[Work]:
    """The work for a value (`conv.z`) or one element (`conv.z[0,0]`) of step `step`."""
    st = trace.steps[step - 1]
    name, index = parse_ref(ref)
    rec = st.records[name]
    ctx = Ctx(trace, st, trace.spec, Fmt(decimals))
    item = classify(trace.spec, rec, st.records)
    indices = [index] if index is not None else list(np.ndindex(*rec.shape))
    return [explained(ctx, item, tuple(i)) for i in indices]
