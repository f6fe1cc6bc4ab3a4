"""What the Markdown and LaTeX write-ups share: the order of the sections, the rows of the
update table, the loss change, and the work grouped by stage. Reads only the trace."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpcalc.trace import STAGE_TITLES, Record, StepTrace

Keep = Callable[[Record], bool]


@dataclass(frozen=True)
class UpdateRow:
    param: str  # conv.kernel
    old: np.ndarray | None
    grad: np.ndarray | None
    new: np.ndarray
    rule: str


def stage_records(st: StepTrace, stage: str, keep: Keep) -> list[Record]:
    return [r for r in st.stage(stage) if keep(r)]


def update_rows(st: StepTrace, keep: Keep) -> list[UpdateRow]:
    rows = []
    for r in st.stage("update"):
        if not r.name.startswith("new.") or not keep(r):
            continue
        pname = r.name[len("new.") :]
        old = st[pname] if pname in st else None
        g = st[f"grad.{pname}"] if f"grad.{pname}" in st else None
        rows.append(UpdateRow(pname, old, g, r.value, r.formula))
    return rows


def state_records(st: StepTrace, keep: Keep) -> list[Record]:
    return [r for r in st.stage("update") if not r.name.startswith("new.") and keep(r)]


def loss_change(st: StepTrace) -> tuple[float, float, float, str]:
    before, after = float(st["loss"]), float(st["loss_after"])
    change = after - before
    verdict = (
        "the step helped" if change < 0 else "the step did not help" if change > 0 else "no change"
    )
    return before, after, change, verdict


def shape_text(r: Record) -> str:
    return "scalar" if not r.shape else " x ".join(str(s) for s in r.shape)


TITLES = STAGE_TITLES
SAMPLES_SHOWN = 3  # per-sample values of larger batches show this many samples unless --full
MAX_TERMS = 12  # write-ups: a longer sum shows its first and last terms and how many


def samples_shown(n: int, full: bool) -> int:
    """How many of a batch's n samples a per-sample value shows."""
    return n if full or n <= SAMPLES_SHOWN + 1 else SAMPLES_SHOWN


def terms(expr: str) -> list[tuple[str, str]]:
    """A sum split at its top-level + and −: [('', t1), (' + ', t2), (' − ', t3), ...]."""
    out: list[tuple[str, str]] = []
    depth, start, op = 0, 0, ""
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and i > 0 and expr.startswith((" + ", " − "), i):
            out.append((op, expr[start:i]))
            op = expr[i : i + 3]
            start = i + 3
            i += 3
            continue
        i += 1
    out.append((op, expr[start:]))
    return out


_PARTS = re.compile(r"(\(|\)| \+ | − )")


def abbreviated(expr: str, most: int = MAX_TERMS) -> tuple[str, int]:
    """Every sum of more than `most` terms in an expression (inside parentheses too) as its
    first three terms, ' + … + ' and its last one; with the most terms a sum had (a batch
    of a thousand samples would fill pages)."""
    if expr.count(" + ") + expr.count(" − ") < most:
        return expr, len(terms(expr))
    longest = 0
    frames: list[list[list[str]]] = [[["", ""]]]  # per open parenthesis: its terms [op, text]

    def close(frame: list[list[str]]) -> str:
        nonlocal longest
        longest = max(longest, len(frame))
        if len(frame) > most:
            head = "".join(op + t for op, t in frame[:3])
            return f"{head} + … {frame[-1][0].strip()} {frame[-1][1]}"
        return "".join(op + t for op, t in frame)

    for tok in _PARTS.split(expr):
        if tok == "(":
            frames.append([["", ""]])
        elif tok == ")" and len(frames) > 1:
            inner = close(frames.pop())
            frames[-1][-1][1] += f"({inner})"
        elif tok in (" + ", " − ") and frames[-1][-1][1]:
            frames[-1].append([tok, ""])
        else:
            frames[-1][-1][1] += tok
    while len(frames) > 1:  # a parenthesis left open
        inner = close(frames.pop())
        frames[-1][-1][1] += "(" + inner
    return close(frames[0]), longest
