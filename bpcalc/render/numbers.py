"""Number formatting shared by every text renderer.

By default a number keeps 4 significant digits (0.0004386, 15.13, −5.5, 1.555) and never
loses a digit of its integer part (12346, not 1.235e+04); exact short decimals stay as they
are (0.155, not 0.1550 or 0.15500000000000003). `--decimals N` asks for N fixed decimals
instead, `--digits N` for N significant digits. Rounding is half up on the number's shortest
decimal form, as a person rounds (15.125 -> 15.13), not half-even on its binary value.
"""

from __future__ import annotations

import decimal
import math
from dataclasses import dataclass, replace

import numpy as np

SUMMARY_THRESHOLD = 64  # tensors with more elements are summarised unless --full
ROW_LENGTH = 8  # a vector longer than this wraps onto several lines
DIGITS = 4  # significant digits shown by default
SCI_BELOW = -5  # a number whose first digit is further right than 1e-5 is shown as 4.386e-06
SCI_FROM = 15  # ... and one of 1e15 or more
_CONTEXT = decimal.Context(prec=1200, rounding=decimal.ROUND_HALF_UP)


@dataclass(frozen=True)
class Precision:
    """How many digits a number is shown with: `digits` significant digits, or, when
    `decimals` is set, that many fixed decimals. `min_decimals`: at least this many decimals
    (the check report shows the expected value with as many as the student wrote, padded
    with zeros when `pad`)."""

    digits: int = DIGITS
    decimals: int | None = None
    min_decimals: int = 0
    pad: bool = False  # keep trailing zeros up to min_decimals (0.1200 beside a student's 0.1338)

    def finer(self, extra: int) -> Precision:
        """The same style with `extra` more digits."""
        if self.decimals is not None:
            return replace(self, decimals=self.decimals + extra)
        return replace(self, digits=self.digits + extra)

    def shown_decimals(self) -> int:
        """About how many digits a number takes after the point (for sizing output)."""
        return self.decimals if self.decimals is not None else max(self.digits, self.min_decimals)

    def describe(self) -> str:
        if self.decimals is not None:
            return f"{self.decimals} decimals"
        return f"{self.digits} significant digits"


DEFAULT = Precision()


def precision(p: int | Precision | None) -> Precision:
    """An int is a number of fixed decimals (the older calling convention)."""
    if p is None:
        return DEFAULT
    if isinstance(p, Precision):
        return p
    return Precision(decimals=int(p))


def fmt(v: float, p: int | Precision | None = None) -> str:
    """One number as text: 0.000438568 -> 0.0004386, 15.125 -> 15.13, -5.50 -> -5.5,
    0.15500000000000003 -> 0.155, -0.0 -> 0; with Precision(decimals=2): 0.0670 -> 0.07."""
    p = precision(p)
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if p.decimals is not None:
        s = _fixed(v, max(p.decimals, p.min_decimals))
    else:
        lead = _lead(v)  # the power of ten of the first significant digit
        if lead < SCI_BELOW or lead >= SCI_FROM:
            return _scientific(decimal.Decimal(repr(v)), p.digits)
        s = _fixed(v, max(p.digits - 1 - lead, p.min_decimals, 0))
    if p.pad and p.min_decimals > 0:
        head, _, tail = s.partition(".")
        s = f"{head}.{tail.ljust(p.min_decimals, '0')}"
    return s


def decimals_shown(text: str) -> int:
    """The decimals a formatted number shows: '0.0004386' -> 7, '12' -> 0, '4.386e-06' -> 9
    (the position of its last digit after the point)."""
    t = text.lstrip("-−")
    mant, _, exp = t.partition("e")
    frac = mant.partition(".")[2]
    return len(frac) - (int(exp) if exp else 0)


def _lead(v: float) -> int:
    """The power of ten of v's first significant digit in its shortest decimal form."""
    lead = math.floor(math.log10(abs(v)))
    if 10.0**lead > abs(v):  # log10 rounded up across a power of ten
        lead -= 1
    elif 10.0 ** (lead + 1) <= abs(v):
        lead += 1
    return lead


def _fixed(v: float, decimals: int) -> str:
    """v rounded half up to `decimals` decimals, trailing zeros dropped. The binary value
    rounds like its shortest decimal form except at a decimal tie (15.125 to 2 decimals:
    half-even on the binary value gives 15.12); only a tie takes the slow exact path."""
    r = repr(v)
    frac = r.partition(".")[2]
    if "e" in r or (len(frac) == decimals + 1 and frac.endswith("5")):
        q = _CONTEXT.quantize(decimal.Decimal(r), decimal.Decimal(1).scaleb(-decimals))
        s = f"{q:f}"
    else:
        s = f"{v:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _scientific(exact: decimal.Decimal, digits: int) -> str:
    lead = exact.adjusted()
    mant = _CONTEXT.quantize(exact.scaleb(-lead), decimal.Decimal(1).scaleb(1 - digits))
    if abs(mant) >= 10:  # 9.9996e-06 rounds up to 10.00e-06
        lead += 1
        mant = _CONTEXT.quantize(exact.scaleb(-lead), decimal.Decimal(1).scaleb(1 - digits))
    m = f"{mant:f}"
    if "." in m:
        m = m.rstrip("0").rstrip(".")
    return f"{m}e{lead:+03d}"


# --- tensors as text --------------------------------------------------------------------------


def grid(
    value: np.ndarray,
    p: int | Precision | None = None,
    full: bool = False,
    max_width: int | None = None,
) -> str:
    """A tensor as aligned text: a number, a row [a  b], a matrix one row per line (each
    column aligned on its decimal point), higher ranks as labelled 2-D slices; large tensors
    summarised. max_width: no line is wider (a long vector takes fewer numbers a line, a
    wide matrix is shown in blocks of columns); a number is never cut."""
    p = precision(p)
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return fmt(float(value), p)
    if value.size > SUMMARY_THRESHOLD and not full:
        return summary(value, p, max_width)
    if value.ndim == 1:
        return _vector([fmt(float(v), p) for v in value], max_width)
    if value.ndim == 2:
        return _matrix([[fmt(float(v), p) for v in row] for row in value], max_width)
    parts = []
    for idx in np.ndindex(*value.shape[:-2]):
        label = "[" + ",".join(str(i) for i in idx) + ",:,:]"
        parts.append(label + "\n" + grid(value[idx], p, True, max_width))
    return "\n".join(parts)


def _vector(cells: list[str], max_width: int | None) -> str:
    one = "[" + "  ".join(cells) + "]"
    if len(cells) <= ROW_LENGTH and (max_width is None or len(one) <= max_width):
        return one
    # a long vector wraps: as many numbers a line as fit (at most ROW_LENGTH), each
    # position aligned on its decimal point, so the table stays within the terminal
    for per_line in range(min(ROW_LENGTH, len(cells)), 0, -1):
        rows = [cells[i : i + per_line] for i in range(0, len(cells), per_line)]
        lines = _aligned_rows(rows)
        if max_width is None or max(len(x) for x in lines) + 2 <= max_width or per_line == 1:
            return _bracket(lines)
    raise AssertionError("unreachable")


def _matrix(cells: list[list[str]], max_width: int | None) -> str:
    lines = _aligned_rows(cells)
    if len(lines) == 1:
        one = "[[" + lines[0] + "]]"
        if max_width is None or len(one) <= max_width:
            return one
    elif max_width is None or len(lines[0]) + 2 <= max_width:
        return _bracket(lines)
    # too wide: blocks of columns, each labelled with the columns it holds
    n = len(cells[0])
    blocks, start = [], 0
    while start < n:
        stop = start + 1
        while stop < n and _block_width(cells, start, stop + 1) + 2 <= (max_width or 0):
            stop += 1
        label = f"columns {start}-{stop - 1}:" if stop - start > 1 else f"column {start}:"
        block = _aligned_rows([row[start:stop] for row in cells])
        blocks.append(label + "\n" + _bracket(block, single="[[]]"))
        start = stop
    return "\n".join(blocks)


def _block_width(cells: list[list[str]], start: int, stop: int) -> int:
    return len(_aligned_rows([row[start:stop] for row in cells])[0])


def _aligned_rows(rows: list[list[str]]) -> list[str]:
    """Rows of cells (the last may be shorter) as lines of equal width, every column
    aligned on its decimal point, two spaces between columns."""
    ncol = max(len(r) for r in rows)
    cols = [[r[j] for r in rows if j < len(r)] for j in range(ncol)]
    heads = [max(len(_split(c)[0]) for c in col) for col in cols]
    tails = [max(len(_split(c)[1]) for c in col) for col in cols]
    lines = []
    for r in rows:
        parts = []
        for j in range(ncol):
            if j < len(r):
                h, t = _split(r[j])
                parts.append(h.rjust(heads[j]) + t.ljust(tails[j]))
            else:
                parts.append(" " * (heads[j] + tails[j]))
        lines.append("  ".join(parts))
    return lines


def _split(cell: str) -> tuple[str, str]:
    """'-0.0726' -> ('-0', '.0726'); '12' -> ('12', '')."""
    head, dot, tail = cell.partition(".")
    return head, dot + tail


def _bracket(lines: list[str], single: str = "") -> str:
    """Lines of equal width between tall brackets (a trailing space would be trimmed and
    break the right alignment of table cells)."""
    if len(lines) == 1:
        return ("[[" if single else "[") + lines[0] + ("]]" if single else "]")
    last = len(lines) - 1
    return "\n".join(
        ("⎡" if i == 0 else "⎣" if i == last else "⎢")
        + line
        + ("⎤" if i == 0 else "⎦" if i == last else "⎥")
        for i, line in enumerate(lines)
    )


def summary(
    value: np.ndarray, p: int | Precision | None = None, max_width: int | None = None
) -> str:
    """A large tensor: its shape, min, max and mean, and its top-left corner."""
    p = precision(p)
    shape = "x".join(str(s) for s in value.shape)
    corner = value[tuple(slice(0, 3) for _ in range(value.ndim))]
    while corner.ndim > 2:
        corner = corner[0]
    parts = [
        f"{shape}: min {fmt(value.min(), p)},",
        f"max {fmt(value.max(), p)},",
        f"mean {fmt(value.mean(), p)}",
    ]
    head = " ".join(parts)
    if max_width is not None and len(head) > max_width:
        head = "\n".join(parts)
    return f"{head}\ncorner:\n{grid(corner, p, True, max_width)}"


def widest(text: str) -> int:
    """The widest line of a multi-line text, in characters."""
    return max((len(line) for line in text.split("\n")), default=0)
