"""The worked solution of one variant, in Markdown and LaTeX: the values the handout asks
for, each with the work behind it (the write-up of `bpcalc step --explain`, limited to
exactly those values), computed with the handout's rounding rule."""

from __future__ import annotations

import numpy as np

from bpcalc import engine, explain
from bpcalc.explain.text import chain
from bpcalc.render import diagram, texmath
from bpcalc.render.latex import _aligned
from bpcalc.render.markdown import cell
from bpcalc.render.texmath import text as tx
from bpcalc.teach import handout, symbols
from bpcalc.teach.model import Template, Variant
from bpcalc.trace import Trace, parse_ref

CR = r" \cr "  # a matrix row's end that no Markdown processor mistakes for an escape


def _decimals(t: Template) -> int:
    return t.exercise.rounding if t.exercise.rounding is not None else 4


def worked(t: Template, v: Variant) -> tuple[Trace, list[tuple[str, list[explain.Work]]]]:
    """The trace (with the rounding rule) and, for each asked value, its work."""
    trace = engine.run(v.spec, round_each=t.exercise.rounding)
    req = explain.Request()
    for ref in t.asked:
        name, index = parse_ref(ref)
        if index is None:
            req.values.add(name)
        else:
            req.elements.setdefault(name, []).append(index)
    asked = {parse_ref(r)[0] for r in t.asked}
    done = explain.explain_trace(
        trace, req, _decimals(t), full=True, keep=lambda r: r.name in asked
    )[1]
    by_name = {e.record.name: e.works for e in done}
    out = []
    for ref in t.asked:
        name, index = parse_ref(ref)
        works = by_name.get(name, [])
        if index is not None:
            works = [w for w in works if w.index == index]
        out.append((ref, works))
    return trace, out


def _value(trace: Trace, ref: str) -> np.ndarray:
    name, index = parse_ref(ref)
    v = trace.steps[0][name]
    return np.asarray(v if index is None else v[index])


def markdown(t: Template, v: Variant, svgs: tuple[str, str] | None = None) -> str:
    trace, items = worked(t, v)
    d = _decimals(t)
    out = [f"# Solution: {cell(t.title)}, variant {v.number}", ""]
    out += [f"**Rounding.** {cell(handout.rounding_rule(t))}", "", "## Conventions", ""]
    for what, text in handout.conventions(t, v.spec):
        out.append(f"- {'**' + cell(what) + '**: ' if what else ''}{cell(text)}")
    out.append("")
    if svgs is not None:
        out += [
            "## The step on the network",
            "",
            f"![Forward values on the nodes]({svgs[0]})",
            "",
            f"![Gradients: ∂L/∂z on the nodes, ∂L/∂w on the edges]({svgs[1]})",
            "",
        ]
    out += ["## Answers", ""]
    for ref, works in items:
        value = _value(trace, ref)
        shown = texmath.matrix(value, d, row_end=CR)
        out.append(f"**${symbols.latex(ref)}$** (`{ref}`) $= {shown}$")
        out.append("")
        for w in works:
            lhs = texmath.math(w.symbol) + " = " if w.symbol and w.symbol != w.symbolic else ""
            rhs = " = ".join(texmath.math(p) for p in chain(w))
            line = f"- `{w.name}`: ${lhs}{rhs}$"
            if w.note:
                line += f" — {cell(w.note)}"
            out.append(line)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def latex(t: Template, v: Variant) -> str:
    trace, items = worked(t, v)
    d = _decimals(t)
    st = trace.steps[0]
    body = [
        rf"\section*{{Solution: {tx(t.title)}, variant {v.number}}}",
        rf"\textbf{{Rounding.}} {tx(handout.rounding_rule(t))}",
        r"\subsection*{Conventions}",
        r"\begin{itemize}",
    ]
    for what, text in handout.conventions(t, v.spec):
        body.append(r"\item " + (rf"\textbf{{{tx(what)}}}: " if what else "") + tx(text))
    body += [r"\end{itemize}", r"\subsection*{The step on the network}"]
    body.append(tx("Forward values on the nodes:"))
    body.append(diagram.latex_figure(diagram.build(v.spec, st, "forward", d)))
    body.append(tx("Gradients: ∂L/∂z on the nodes, ∂L/∂w on the edges:"))
    body.append(diagram.latex_figure(diagram.build(v.spec, st, "backward", d)))
    body.append(r"\subsection*{Answers}")
    for ref, works in items:
        value = _value(trace, ref)
        body.append(
            rf"\paragraph{{${symbols.latex(ref)}$}} ({texmath.name(ref)}) "
            rf"$= {texmath.matrix(value, d)}$"
        )
        if not works:
            continue
        rows, notes = [], []
        for w in works:
            lhs = texmath.math(w.symbol) if w.symbol and w.symbol != w.symbolic else ""
            rows.append(
                rf"\text{{{texmath.name(w.name)}}}\quad "
                + (lhs + " " if lhs else "")
                + _aligned(chain(w))
            )
            if w.note:
                notes.append(rf"{texmath.name(w.name)}: {tx(w.note)}")
        body += [r"\begin{align*}", " \\\\\n".join(rows), r"\end{align*}"]
        if notes:
            body += [r"\begin{itemize}"] + [rf"\item {n}" for n in notes] + [r"\end{itemize}"]
    return handout.latex_document(t.title, body)
