"""A standalone LaTeX document (article, amsmath only; compiles with pdflatex): the
conventions, every stage's values, and the work of each explained element in align* blocks
with proper partial derivatives (\\frac{\\partial L}{\\partial w}). Reads only the trace and
the explanations."""

from __future__ import annotations

from bpcalc.explain import SYMBOLS, Explained
from bpcalc.explain.text import chain
from bpcalc.render import texmath
from bpcalc.render.diagram import LATEX_PREAMBLE as DIAGRAM_PREAMBLE
from bpcalc.render.numbers import SUMMARY_THRESHOLD, Precision
from bpcalc.render.texmath import name as tt
from bpcalc.render.texmath import text as tx
from bpcalc.render.writeup import (
    TITLES,
    Keep,
    abbreviated,
    loss_change,
    samples_shown,
    shape_text,
    stage_records,
    state_records,
    terms,
    update_rows,
)
from bpcalc.trace import Record, Trace

PREAMBLE = (
    r"""\documentclass[10pt]{article}
\usepackage[T1]{fontenc}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath}
"""
    + DIAGRAM_PREAMBLE
    + r"""\allowdisplaybreaks
\setcounter{MaxMatrixCols}{64}
\setlength{\parindent}{0pt}
\setlength{\parskip}{4pt}
\sloppy
\emergencystretch=3em
% a line may break before a value; if it does, the line before is filled, not stretched
\newcommand{\softbreak}{\hfil\penalty0\hfilneg}
% a box wider than the line is scaled down to the line (wide matrices, long formulas)
% (to 0.96 of it, leaving room for the comma or full stop after it)
\newcommand{\fitwidth}[1]{\resizebox{\ifdim\width>0.96\linewidth0.96\linewidth\else\width\fi}{!}{#1}}
\newcommand{\fitmath}[1]{\resizebox{\ifdim\width>0.8\linewidth0.8\linewidth\else\width\fi}{!}{$\displaystyle #1$}}
\begin{document}
"""
)


def value_tex(value, decimals: int | Precision, full: bool, per_sample: bool = False) -> str:  # noqa: ANN001
    """A value as LaTeX: a matrix in math (scaled down if wider than the line), a large
    tensor as its shape, min, max, mean and corner; a batch's first samples unless --full."""
    if per_sample:
        n = value.shape[0]
        shown = samples_shown(n, full)
        parts = [
            rf"\softbreak sample {i}: {value_tex(value[i], decimals, full)}" for i in range(shown)
        ]
        if shown < n:
            parts.append(tx(f"… {n - shown} more samples (--full shows them all)"))
        return " ".join(parts)  # each sample labelled, no separator to hang past a full line
    if value.size > SUMMARY_THRESHOLD and not full:
        shape = " x ".join(str(s) for s in value.shape)
        corner = value[tuple(slice(0, 3) for _ in range(value.ndim))]
        while corner.ndim > 2:
            corner = corner[0]
        return (
            f"{tx(shape)}: min ${texmath.number(value.min(), decimals)}$, "
            f"max ${texmath.number(value.max(), decimals)}$, "
            f"mean ${texmath.number(value.mean(), decimals)}$, corner "
            + _fit(texmath.matrix(corner, decimals))
        )
    return _fit(texmath.matrix(value, decimals))


def _fit(latex: str) -> str:
    """Inline math in a box no wider than the line."""
    return rf"\softbreak\fitwidth{{${latex}$}}"


def render(
    trace: Trace,
    *,
    decimals: int | Precision | None = None,
    full: bool = False,
    keep: Keep = lambda r: True,
    work: dict[int, list[Explained]] | None = None,
    figure: str | None = None,
) -> str:
    """figure: LaTeX to show after the conventions (the network's diagram, render/diagram.py)."""
    out: list[str] = [PREAMBLE, rf"\section*{{bpcalc: {tx(trace.network)}}}", ""]
    out += [r"\subsection*{Conventions}", r"\begin{itemize}"]
    for key, text in trace.conventions.items():
        out.append(rf"\item \textbf{{{tx(key)}}}: {tx(text)}")
    out += [r"\end{itemize}", ""]
    if figure is not None:
        out += [r"\subsection*{The network}", figure, ""]
    if any(work.values() if work else ()):
        out += [rf"\emph{{{tx(SYMBOLS)}}}", ""]
    for st in trace.steps:
        sec = r"\subsection*"
        if len(trace.steps) > 1:
            out += [rf"\subsection*{{Step {st.step}}}", ""]
            sec = r"\subsubsection*"
        explained = (work or {}).get(st.step, [])
        for stage in ("forward", "loss", "backward"):
            rows = stage_records(st, stage, keep)
            if not rows:
                continue
            out += [f"{sec}{{{TITLES[stage]}}}", ""]
            out += _values(rows, decimals, full)
            out += _work(explained, stage)
        updates = update_rows(st, keep)
        if updates:
            out += [f"{sec}{{{TITLES['update']}}}", "", r"\begin{itemize}"]
            for u in updates:
                parts = []
                if u.old is not None:
                    parts.append("old " + value_tex(u.old, decimals, full))
                if u.grad is not None:
                    parts.append("gradient " + value_tex(u.grad, decimals, full))
                parts.append("new " + value_tex(u.new, decimals, full))
                out.append(rf"\item {tt(u.param)}: {', '.join(parts)}. Rule: {tx(u.rule)}")
            out += [r"\end{itemize}", ""]
            states = state_records(st, keep)
            if states:
                out += ["Optimizer state:", ""] + _values(states, decimals, full)
            out += _work(explained, "update")
        if "loss_after" in st and keep(st.records["loss_after"]):
            before, after, change, verdict = loss_change(st)
            sign = "+" if change > 0 else ""
            out += [
                f"{sec}{{{TITLES['after']}}}",
                "",
                f"Loss before ${texmath.number(before, decimals)}$, "
                f"after ${texmath.number(after, decimals)}$, "
                f"change ${sign}{texmath.number(change, decimals)}$ ({tx(verdict)}).",
                "",
            ]
            out += _work(explained, "after")
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


def _values(rows: list[Record], decimals: int, full: bool) -> list[str]:
    lines = [r"\begin{itemize}"]
    for r in rows:
        lines.append(
            rf"\item {tt(r.name)} ({tx(shape_text(r))}): "
            f"{value_tex(r.value, decimals, full, r.per_sample)} --- {tx(r.formula)}"
        )
    lines += [r"\end{itemize}", ""]
    return lines


def _work(explained: list[Explained], stage: str) -> list[str]:
    items = [e for e in explained if e.record.stage == stage]
    if not items:
        return []
    lines = [rf"\paragraph{{Work: {TITLES[stage].lower()}}}", ""]
    for e in items:
        if e.skipped:
            lines += [
                rf"{tt(e.record.name)}: {e.record.value.size} elements, not explained "
                rf"(name it with {tt('--explain ' + e.record.name)}, or use {tt('--full')}).",
                "",
            ]
            continue
        for w in e.works:
            lhs = texmath.math(w.symbol) + " " if w.symbol and w.symbol != w.symbolic else ""
            parts, notes = [], []
            for part in chain(w):
                short, n = abbreviated(part)
                parts.append(short)
                if short != part and not notes:
                    notes.append(f"a sum of {n} terms, shown by its first and last")
            if w.note:
                notes.insert(0, w.note)
            lines += [
                rf"{tt(w.name)}:",
                r"\begin{align*}",
                lhs + _aligned(parts),
                r"\end{align*}",
            ]
            if notes:
                lines.append(rf"\hspace*{{2em}}{tx('(' + '; '.join(notes) + ')')}")
            lines.append("")
    return lines


WIDTH = 64  # characters of formula text per line of an align* block


def _aligned(parts: list[str]) -> str:
    """'&= symbols = numbers = result' as align* rows: one row when it is short, else the
    symbols and the numbers each on rows of their own, long expressions broken at a
    top-level +, − or comma; a piece that cannot be broken is scaled to the line."""
    if sum(len(p) + 3 for p in parts) <= WIDTH:
        return "&= " + " = ".join(texmath.math(p) for p in parts)
    rows = []
    for k, part in enumerate(parts):
        last = k == len(parts) - 1
        if last and len(parts) > 1 and len(part) < 20 and len(rows[-1]) < 3 * WIDTH:
            rows[-1] += " = " + texmath.math(part)
            continue
        for i, (op, piece) in enumerate(_chunks(part)):
            if op == ",":
                rows[-1] += ","
            lead = (
                "&= "
                if i == 0
                else r"&\quad " + ("" if op == "," else texmath.math(op.strip()) + " ")
            )
            rows.append(lead + _math(piece))
    return " \\\\\n".join(rows)


def _math(piece: str) -> str:
    latex = texmath.math(piece)
    return latex if len(piece) <= WIDTH else rf"\fitmath{{{latex}}}"


def _chunks(expr: str) -> list[tuple[str, str]]:
    """Split an expression at its top-level ' + ', ' − ' (or, failing those, ', ') into
    pieces of at most WIDTH characters: [(operator before the piece, piece), ...]."""
    parts = terms(expr)
    if len(parts) == 1:
        parts = _commas(expr)
    chunks = [parts[0]]
    for op, t in parts[1:]:
        if len(chunks[-1][1]) + len(op) + len(t) <= WIDTH:
            chunks[-1] = (chunks[-1][0], chunks[-1][1] + (op if op != "," else ", ") + t)
        else:
            chunks.append((op, t))
    return chunks


def _commas(expr: str) -> list[tuple[str, str]]:
    """Prose-like formulas ('L = (1/N) Σ_n ℓ_n (mean over the batch), ℓ = ...') split at
    their top-level commas."""
    out: list[tuple[str, str]] = []
    depth, start, op = 0, 0, ""
    for i, ch in enumerate(expr):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and expr.startswith(", ", i):
            out.append((op, expr[start:i]))
            op, start = ",", i + 2
    out.append((op, expr[start:]))
    return out
