"""GitHub-flavoured Markdown: the conventions, one table per stage (values as $...$ math),
and the work of each explained element as $...$ math, ready to paste into a write-up.
Reads only the trace and the explanations."""

from __future__ import annotations

from bpcalc.explain import SYMBOLS, Explained
from bpcalc.explain.text import chain
from bpcalc.render import texmath
from bpcalc.render.numbers import SUMMARY_THRESHOLD, Precision
from bpcalc.render.writeup import (
    TITLES,
    Keep,
    abbreviated,
    loss_change,
    samples_shown,
    shape_text,
    stage_records,
    state_records,
    update_rows,
)
from bpcalc.trace import Record, Trace


def cell(text: str) -> str:
    """Plain text safe in a table cell: pipes, emphasis and HTML characters escaped."""
    out = text.replace("\\", "\\\\")
    for ch in "|*_`<>[]$":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", "<br>")


def code(name: str) -> str:
    return f"`{name}`"


def m(latex: str) -> str:
    """Inline math: $...$ (GitHub needs no space just inside the dollars)."""
    return f"${latex.strip()}$"


def value_md(value, decimals: int | Precision | None, full: bool, per_sample: bool = False) -> str:  # noqa: ANN001
    """A value as $...$ math; a large tensor as its shape, min, max, mean and corner; a
    batch's first samples unless --full."""
    if per_sample:
        n = value.shape[0]
        shown = samples_shown(n, full)
        parts = [f"sample {i}: {value_md(value[i], decimals, full)}" for i in range(shown)]
        if shown < n:
            parts.append(cell(f"… {n - shown} more samples (--full shows them all)"))
        return "<br>".join(parts)
    if value.size > SUMMARY_THRESHOLD and not full:
        shape = " x ".join(str(s) for s in value.shape)
        corner = value[tuple(slice(0, 3) for _ in range(value.ndim))]
        while corner.ndim > 2:
            corner = corner[0]
        return (
            f"{shape}: min {m(texmath.number(value.min(), decimals))}, "
            f"max {m(texmath.number(value.max(), decimals))}, "
            f"mean {m(texmath.number(value.mean(), decimals))}, corner "
            + m(texmath.matrix(corner, decimals, row_end=r" \cr "))
        )
    return m(texmath.matrix(value, decimals, row_end=r" \cr "))


def render(
    trace: Trace,
    *,
    decimals: int | Precision | None = None,
    full: bool = False,
    keep: Keep = lambda r: True,
    work: dict[int, list[Explained]] | None = None,
) -> str:
    out: list[str] = [f"# bpcalc · {cell(trace.network)}", "", "## Conventions", ""]
    for key, text in trace.conventions.items():
        out.append(f"- **{cell(key)}**: {cell(text)}")
    out.append("")
    if any(work.values() if work else ()):
        out += [f"*{cell(SYMBOLS)}*", ""]
    for st in trace.steps:
        level = "##"
        if len(trace.steps) > 1:
            out += [f"## Step {st.step}", ""]
            level = "###"
        explained = (work or {}).get(st.step, [])
        for stage in ("forward", "loss", "backward"):
            rows = stage_records(st, stage, keep)
            if not rows:
                continue
            out += [f"{level} {TITLES[stage]}", ""]
            out += _values_table(rows, decimals, full)
            out += _work(explained, stage, level)
        updates = update_rows(st, keep)
        if updates:
            out += [f"{level} {TITLES['update']}", ""]
            out += [
                "| parameter | old | gradient | new | rule |",
                "| --- | --- | --- | --- | --- |",
            ]
            for u in updates:
                old = value_md(u.old, decimals, full) if u.old is not None else ""
                g = value_md(u.grad, decimals, full) if u.grad is not None else ""
                out.append(
                    f"| {code(u.param)} | {old} | {g} | {value_md(u.new, decimals, full)} | {cell(u.rule)} |"
                )
            out.append("")
            states = state_records(st, keep)
            if states:
                out += ["Optimizer state:", ""] + _values_table(states, decimals, full)
            out += _work(explained, "update", level)
        if "loss_after" in st and keep(st.records["loss_after"]):
            before, after, change, verdict = loss_change(st)
            sign = "+" if change > 0 else ""
            out += [
                f"{level} {TITLES['after']}",
                "",
                "| loss before | loss after | change |",
                "| --- | --- | --- |",
                f"| {m(texmath.number(before, decimals))} | {m(texmath.number(after, decimals))} | "
                f"{m(sign + texmath.number(change, decimals))} ({verdict}) |",
                "",
            ]
            out += _work(explained, "after", level)
    return "\n".join(out).rstrip() + "\n"


def _values_table(rows: list[Record], decimals: int, full: bool) -> list[str]:
    lines = ["| value | shape | value | formula |", "| --- | --- | --- | --- |"]
    for r in rows:
        lines.append(
            f"| {code(r.name)} | {shape_text(r)} | {value_md(r.value, decimals, full, r.per_sample)} "
            f"| {cell(r.formula)} |"
        )
    lines.append("")
    return lines


def _work(explained: list[Explained], stage: str, level: str) -> list[str]:
    items = [e for e in explained if e.record.stage == stage]
    if not items:
        return []
    lines = [f"{level}# Work: {TITLES[stage].lower()}", ""]
    for e in items:
        if e.skipped:
            lines.append(
                f"- {code(e.record.name)}: {e.record.value.size} elements, not explained; "
                f"name it (`--explain {e.record.name}` or one element, `--explain '{e.record.name}[…]'`) "
                "or use `--full`"
            )
            continue
        for w in e.works:
            lhs = texmath.math(w.symbol) + " = " if w.symbol and w.symbol != w.symbolic else ""
            parts = [abbreviated(p) for p in chain(w)]
            rhs = " = ".join(texmath.math(p) for p, _ in parts)
            line = f"- {code(w.name)}: {m(lhs + rhs)}"
            notes = [w.note] if w.note else []
            notes += [
                f"a sum of {n} terms, shown by its first and last"
                for (p, n), whole in zip(parts, chain(w), strict=True)
                if p != whole
            ][:1]
            if notes:
                line += f" — {cell('; '.join(notes))}"
            lines.append(line)
    lines.append("")
    return lines
