"""A standalone LaTeX document (article, amsmath only; compiles with pdflatex): the
conventions, every stage's values, and the work of each explained element in align* blocks
with proper partial derivatives (\\frac{\\partial L}{\\partial w}). Reads only the trace and
the explanations."""

from __future__ import annotations

from bpcalc.explain import SYMBOLS, Explained
from bpcalc.explain.text import chain
from bpcalc.render import texmath
from bpcalc.render.diagram import LATEX_PREAMBLE as DIAGRAM_PREAMBLE
from bpcalc.render.numbers import SUMMARY_THRESHOLD, fmt, summary
from bpcalc.render.texmath import name as tt
from bpcalc.render.texmath import text as tx
from bpcalc.render.writeup import (
    TITLES,
    Keep,
    loss_change,
    shape_text,
    stage_records,
    state_records,
    update_rows,
)
from bpcalc.trace import Record, Trace

PREAMBLE = (
    r"""\documentclass[10pt]{article}
\usepackage[T1]{fontenc}
\usepackage{amsmath}
"""
    + DIAGRAM_PREAMBLE
    + r"""\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{4pt}
\begin{document}
"""
)


def value_tex(value, decimals: int, full: bool, per_sample: bool = False) -> str:  # noqa: ANN001
    if per_sample:
        return "; ".join(
            f"sample {i}: {value_tex(value[i], decimals, full)}" for i in range(value.shape[0])
        )
    if value.size > SUMMARY_THRESHOLD and not full:
        return tx(summary(value, decimals).replace("\n", " "))
    return f"${texmath.matrix(value, decimals)}$"


def render(
    trace: Trace,
    *,
    decimals: int = 4,
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
                f"Loss before ${fmt(before, decimals)}$, after ${fmt(after, decimals)}$, "
                f"change ${sign}{fmt(change, decimals)}$ ({tx(verdict)}).",
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
        lines.append(r"\begin{align*}")
        rows = []
        notes = []
        for w in e.works:
            lhs = texmath.math(w.symbol) if w.symbol and w.symbol != w.symbolic else ""
            label = rf"\text{{{tt(w.name)}}}\quad " + (lhs + " " if lhs else "")
            rows.append(label + _aligned(chain(w)))
            if w.note:
                notes.append(rf"{tt(w.name)}: {tx(w.note)}")
        lines.append(" \\\\\n".join(rows))
        lines.append(r"\end{align*}")
        if notes:
            lines += [r"\begin{itemize}"] + [rf"\item {n}" for n in notes] + [r"\end{itemize}"]
        lines.append("")
    return lines


WIDTH = 64  # characters of formula text per line of an align* block


def _aligned(parts: list[str]) -> str:
    """'&= symbols = numbers = result' as align* rows: one row when it is short, else the
    symbols and the numbers each on rows of their own, long sums broken at a top-level +."""
    if sum(len(p) for p in parts) <= WIDTH:
        return "&= " + " = ".join(texmath.math(p) for p in parts)
    rows = []
    for k, part in enumerate(parts):
        last = k == len(parts) - 1
        if last and len(parts) > 1 and len(part) < 20:
            rows[-1] += " = " + texmath.math(part)
            continue
        chunks = _chunks(part)
        rows.append("&= " + texmath.math(chunks[0]))
        rows += [r"&\quad + " + texmath.math(c) for c in chunks[1:]]
    return " \\\\\n".join(rows)


def _chunks(expr: str) -> list[str]:
    """Split a sum at its top-level ' + ' into pieces of at most WIDTH characters."""
    terms, depth, start = [], 0, 0
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and expr.startswith(" + ", i):
            terms.append(expr[start:i])
            start = i + 3
            i += 3
            continue
        i += 1
    terms.append(expr[start:])
    chunks = [terms[0]]
    for t in terms[1:]:
        if len(chunks[-1]) + 3 + len(t) <= WIDTH:
            chunks[-1] += " + " + t
        else:
            chunks.append(t)
    return chunks
