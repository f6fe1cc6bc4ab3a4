"""The pieces every explainer uses: the Work record, number and symbol formatting, and a
view of a traced value in its internal (batch-first, channels-first) shape.

Symbols: a value's elements are named by one letter and the 1-based position of the element
in the value as shown, digits run together when every position is below 10 (x11 = x[0,0],
k12 = K[0,1], w21 = W[1,0], b = a scalar bias); otherwise with commas in braces (x_{12,3}).
Inside one explanation the letters are local to the layer: x its input, z before the
activation, a (p for probabilities) its output, k kernel, w weights, b bias, y target.
Per-sample values carry no sample mark (the element name says which sample); sums over the
batch mark each sample with a 1-based superscript: x1⁽²⁾ is x1 of the second sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc import losses
from bpcalc.network.types import flat_layers
from bpcalc.render.numbers import Precision, fmt, precision
from bpcalc.trace import StepTrace, Trace, element_name

MINUS = "−"
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class Work:
    """One element's explanation: the formula in symbols, the same with the numbers
    substituted, and the result, all as text (Unicode, numbers at the chosen decimals).

    symbol: the element's own symbol (z11, ∂L/∂k11, k11′) for write-ups; note: why a branch
    was taken (ReLU′ at 0, which element won a max-pool window, padding, a given value).
    value: the element's full-precision value from the trace.
    """

    name: str
    index: tuple[int, ...]
    symbolic: str
    substituted: str
    result: str
    note: str = ""
    symbol: str = ""
    value: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "symbolic": self.symbolic,
            "substituted": self.substituted,
            "result": self.result,
        }
        if math.isfinite(self.value):  # strict JSON has no NaN
            out["value"] = self.value
        if self.symbol:
            out["symbol"] = self.symbol
        if self.note:
            out["note"] = self.note
        return out


def sub(index: tuple[int, ...]) -> str:
    """1-based subscript text for a 0-based index: (0, 1) -> '12', (11, 2) -> '_{12,3}'."""
    if not index:
        return ""
    if all(i < 9 for i in index):
        return "".join(str(i + 1) for i in index)
    return "_{" + ",".join(str(i + 1) for i in index) + "}"


def sample_mark(n: int) -> str:
    """The superscript that marks sample n (0-based) in a sum over the batch: ⁽¹⁾ for n = 0."""
    return "⁽" + str(n + 1).translate(SUPERSCRIPT) + "⁾"


def grad(symbol: str) -> str:
    return f"∂L/∂{symbol}"


def paren(expr: str) -> str:
    """Wrap an expression in parentheses when it has a sum, a difference, a division or a
    leading minus outside any parentheses: 2·(a − y) stays, a − y becomes (a − y)."""
    depth = 0
    top = []
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            top.append(ch)
    flat = "".join(top)
    if expr.startswith(("−", "-")) or any(op in flat for op in (" + ", " − ", "/")):
        return f"({expr})"
    return expr


@dataclass(frozen=True)
class Fmt:
    """Number formatting for one explanation run: `decimals` (a Precision, or an int:
    fixed decimals), as the tables show them; a number that would keep fewer than `min_sig` significant digits (by default: one
    that would show as 0 though it is not) is written with significant digits instead
    (2.52e-12), so no step divides by a 0 that is not one."""

    decimals: int | Precision
    min_sig: int = 1
    extra: int = 0  # operands get this many more digits than results (see arith.py)

    def _text(self, v: float, extra: int = 0) -> str:
        p = precision(self.decimals)
        s = fmt(float(v), p.finer(extra) if extra else p)
        if v != 0 and _significant(s) < self.min_sig:
            s = f"{float(v):.{max(self.min_sig, 3)}g}"
        return s

    def num(self, v: float) -> str:
        """A number inside an expression: negative ones in parentheses, with a real minus."""
        s = self._text(v, self.extra)
        return f"({MINUS}{s[1:]})" if s.startswith("-") else s

    def result(self, v: float) -> str:
        s = self._text(v)
        return MINUS + s[1:] if s.startswith("-") else s

    @staticmethod
    def const(v: float) -> str:
        """A configuration constant (learning rate, slope): all its digits, as written."""
        s = f"{float(v):g}"
        return f"({MINUS}{s[1:]})" if s.startswith("-") else s


def _significant(s: str) -> int:
    """Significant digits of a fixed-point number's text: '0.0001' -> 1, '0' -> 0."""
    digits = s.lstrip("-").replace(".", "").lstrip("0")
    return len(digits)


def product(factors: list[str], tight: bool) -> str:
    return ("×" if tight else " × ").join(factors)


def sym_product(factors: list[str], tight: bool) -> str:
    return ("·" if tight else " · ").join(factors)


class Tensor:
    """A traced value seen in its internal shape, with its symbols.

    shown: the record's value (with a batch axis when it has one); internal: the shape of one
    sample (per-sample values) or of the parameter, as the ops use it. Shown shapes only drop
    leading size-1 axes (a single channel, a single output channel), so the symbol index is
    the last len(shown) positions of the internal index.
    """

    def __init__(
        self,
        st: StepTrace,
        name: str,
        letter: str,
        internal: tuple[int, ...],
        n: int,
        per_sample: bool,
    ) -> None:
        rec = st.records[name]
        self.name = name
        self.letter = letter
        self.record = rec
        self.per_sample = per_sample
        self.shown_rank = rec.value.ndim - (1 if rec.per_sample else 0)
        full = ((n,) if per_sample else ()) + internal
        self.arr = np.asarray(rec.value, dtype=np.float64).reshape(full)
        self.internal = internal

    def v(self, idx: tuple[int, ...], n: int = 0) -> float:
        return float(self.arr[(n, *idx)] if self.per_sample else self.arr[idx])

    def s(self, idx: tuple[int, ...], n: int | None = None) -> str:
        """The symbol of element idx (internal index); n marks the sample in batch sums."""
        shown = idx[len(idx) - self.shown_rank :] if self.shown_rank else ()
        mark = sample_mark(n) if n is not None else ""
        return self.letter + sub(shown) + mark


@dataclass
class Ctx:
    """What an explainer may read: the trace's step, the spec, the number format."""

    trace: Trace
    st: StepTrace
    spec: Any  # NetworkSpec
    f: Fmt

    @property
    def n(self) -> int:
        """The samples in this step's batch (a mini-batch may hold fewer than the data)."""
        if self.st.samples is not None:
            return len(self.st.samples)
        return int(self.spec.inputs.shape[0])

    def dataset_index(self, n: int) -> int:
        """Sample n of this step's batch -> its index in the data."""
        return self.st.samples[n] if self.st.samples is not None else n

    def previous(self) -> StepTrace | None:
        """The step before this one in the trace (optimizer state carries over), if any."""
        k = self.trace.steps.index(self.st)
        return self.trace.steps[k - 1] if k > 0 else None

    @property
    def layers(self) -> list[Any]:
        """Every layer, those inside blocks too, in the order item.pos counts them."""
        return flat_layers(self.spec.layers)

    def layer_pos(self, name: str) -> int:
        for i, layer in enumerate(self.layers):
            if layer.name == name:
                return i
        raise KeyError(name)

    def input_name(self, pos: int) -> str:
        """The value a layer reads: the network input or the previous layer's output (the
        first layer inside a block reads the block's input)."""
        return _wiring(self.spec.layers, "input")[self.layers[pos].name][0]

    def next_layer(self, pos: int) -> Any:
        """The layer that reads this layer's output (None: the last layer of its list)."""
        return _wiring(self.spec.layers, "input")[self.layers[pos].name][1]

    def tensor(
        self, name: str, letter: str, internal: tuple[int, ...], per_sample: bool = True
    ) -> Tensor:
        """A per-sample value (input, z, a, their gradients) or, per_sample=False, a
        parameter-shaped one (parameters, their gradients, new values)."""
        return Tensor(self.st, name, letter, tuple(internal), self.n, per_sample)

    def batch_terms(self) -> list[int]:
        return list(range(self.n))

    def mark(self, n: int) -> int | None:
        """The sample to mark in a batch sum, or None when there is only one sample."""
        return n if self.n > 1 else None


def _wiring(layers: Any, first: str) -> dict[str, tuple[str, Any]]:
    """Layer name -> (the value it reads, the layer after it in its own list or None)."""
    out: dict[str, tuple[str, Any]] = {}
    before = first
    for i, layer in enumerate(layers):
        out[layer.name] = (before, layers[i + 1] if i + 1 < len(layers) else None)
        if layer.inner:
            out.update(_wiring(layer.inner, before))
        before = f"{layer.name}.a"
    return out


def split(
    per_sample_record: bool, index: tuple[int, ...], rank: int
) -> tuple[int, tuple[int, ...]]:
    """A shown index -> (sample, internal index of that sample's value of the given rank).

    per_sample_record: the record has a batch axis (a batched run's per-sample value).
    """
    n, rest = (index[0], index[1:]) if per_sample_record else (0, index)
    return n, (0,) * (rank - len(rest)) + tuple(rest)


def pad_index(index: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """A parameter's shown index -> its internal index (leading size-1 axes put back)."""
    return (0,) * (rank - len(index)) + tuple(index)


def make(
    ctx: Ctx,
    rec_name: str,
    index: tuple[int, ...],
    symbolic: str,
    substituted: str,
    note: str = "",
    symbol: str = "",
) -> Work:
    """A Work for element `index` (as shown) of record `rec_name`, its result from the trace."""
    rec = ctx.st.records[rec_name]
    v = float(rec.value[index]) if index else float(rec.value)
    return Work(
        element_name(rec_name, index),
        tuple(index),
        symbolic,
        substituted,
        ctx.f.result(v),
        note,
        symbol,
        v,
    )


def total(terms: list[str]) -> str:
    """A sum of terms; '0' when there are none."""
    return " + ".join(terms) if terms else "0"


def out_letter(ctx: Ctx, layer: Any) -> str:
    """p for probabilities (a softmax output, or the output a cross-entropy reads), else a."""
    act = getattr(layer, "activation", None)
    last = ctx.spec.layers[-1].name == layer.name
    if act is not None and act.kind == "softmax":
        return "p"
    return "p" if last and losses.get(ctx.spec.loss.kind).fused_with is not None else "a"
