"""Number formatting shared by every text renderer."""

from __future__ import annotations

import numpy as np

SUMMARY_THRESHOLD = 64  # tensors with more elements are summarised unless --full
ROW_LENGTH = 8  # a vector longer than this wraps onto several lines


def fmt(v: float, decimals: int) -> str:
    """Round to `decimals`, drop trailing zeros: 0.0670 -> 0.067, -5.50 -> -5.5, -0.0 -> 0."""
    if not np.isfinite(v):
        return str(v)
    s = f"{v:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    return s


def grid(value: np.ndarray, decimals: int, full: bool = False) -> str:
    """A tensor as aligned text: a number, a row [a  b], a matrix one row per line, higher
    ranks as labelled 2-D slices; large tensors summarised."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return fmt(float(value), decimals)
    if value.size > SUMMARY_THRESHOLD and not full:
        return summary(value, decimals)
    if value.ndim == 1:
        cells = [fmt(float(v), decimals) for v in value]
        if len(cells) <= ROW_LENGTH:
            return "[" + "  ".join(cells) + "]"
        # a long vector wraps, ROW_LENGTH numbers a line, so tables stay within the terminal
        width = max(len(c) for c in cells)
        cells += [""] * (-len(cells) % ROW_LENGTH)  # pad the last row so every line is as wide
        rows = [
            "  ".join(c.rjust(width) for c in cells[i : i + ROW_LENGTH])
            for i in range(0, len(cells), ROW_LENGTH)
        ]
        return _bracket(rows)
    if value.ndim == 2:
        cells = [[fmt(float(v), decimals) for v in row] for row in value]
        width = max(len(c) for row in cells for c in row)
        lines = ["  ".join(c.rjust(width) for c in row) for row in cells]
        if len(lines) == 1:
            return "[[" + lines[0] + "]]"
        return _bracket(lines)
    parts = []
    for idx in np.ndindex(*value.shape[:-2]):
        label = "[" + ",".join(str(i) for i in idx) + ",:,:]"
        parts.append(label + "\n" + grid(value[idx], decimals, True))
    return "\n".join(parts)


def _bracket(lines: list[str]) -> str:
    """Lines of equal width between tall brackets (a trailing space would be trimmed and
    break the right alignment of table cells)."""
    last = len(lines) - 1
    return "\n".join(
        ("⎡" if i == 0 else "⎣" if i == last else "⎢")
        + line
        + ("⎤" if i == 0 else "⎦" if i == last else "⎥")
        for i, line in enumerate(lines)
    )


def summary(value: np.ndarray, decimals: int) -> str:
    shape = "x".join(str(s) for s in value.shape)
    corner = value[tuple(slice(0, 3) for _ in range(value.ndim))]
    while corner.ndim > 2:
        corner = corner[0]
    return (
        f"{shape}: min {fmt(value.min(), decimals)}, max {fmt(value.max(), decimals)}, "
        f"mean {fmt(value.mean(), decimals)}\ncorner:\n{grid(corner, decimals, True)}"
    )
