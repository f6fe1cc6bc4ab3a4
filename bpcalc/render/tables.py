"""Rich tables for people: one table per stage, matrices as grids. The only rich.table user
(through layout.fitted_table).

Each table is measured against the terminal before it is drawn (layout.py). When it does not
fit, the shape moves under the name; when it still does not fit, the stage is printed
stacked: the value's name and shape on one line, its grid under it, its formula under that.
Numbers are never cut and no column is squeezed to nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from bpcalc.render.layout import Column, Out, fitted_table, wrap
from bpcalc.render.numbers import Precision, fmt, grid, precision
from bpcalc.render.writeup import (
    UpdateRow,
    loss_change,
    samples_shown,
    shape_text,
    update_rows,
)
from bpcalc.trace import STAGE_TITLES, Record, StepTrace, Trace

Keep = Callable[[Record], bool]
INDENT = 2  # stacked layout: grids and formulas under the value's name
UNLIMITED = 10_000  # width for callers that want the tables whatever their size


def render(
    trace: Trace,
    console: Console,
    *,
    decimals: int | Precision | None = None,
    full: bool = False,
    keep: Keep = lambda r: True,
    summary: bool = False,
    work: dict[int, list[Any]] | None = None,
    wrap: bool | None = None,
) -> None:
    """decimals: a Precision (or an int: fixed decimals); wrap: prose wraps at the console's
    width (default: when the console is a terminal)."""
    out = Out(console, wrap)
    p = precision(decimals)
    print_header(out, trace)
    if summary:
        _fit_or_stack(out, *steps_summary_rows(trace, p))
        return
    for st in trace.steps:
        if len(trace.steps) > 1:
            used = f"samples {', '.join(map(str, st.samples))}" if st.samples else ""
            if used and len(used) + 20 <= out.width:
                console.rule(Text(f"Step {st.step} · {used}"))
            else:  # a long list of samples goes under the rule, wrapped as prose
                console.rule(Text(f"Step {st.step}"))
                if used:
                    out.prose(used)
        for block in step_tables(st, p, full, keep, out.width):
            out.print(block)
        if work is not None:
            print_work(out, work.get(st.step, []), symbols=st is trace.steps[0])
    if len(trace.steps) > 1 and "loss" in trace.steps[0] and keep(trace.steps[0].records["loss"]):
        _fit_or_stack(out, *steps_summary_rows(trace, p))


def steps_summary_rows(trace: Trace, p: Precision) -> tuple[str, list[Column], list[list[str]]]:
    """One row per step: the samples it used, the loss before and after its update."""
    cols = [Column("step", "right")]
    if trace.batched:
        cols.append(Column("samples", prose=True))
    cols += [Column("loss", "right"), Column("loss after", "right")]
    every = any("dataset_loss_after" in st for st in trace.steps)
    if every:
        cols.append(Column("loss after\n(all samples)", "right"))
    rows = []
    for st in trace.steps:
        used = [", ".join(map(str, st.samples or []))] if trace.batched else []
        after = fmt(float(st["loss_after"]), p) if "loss_after" in st else ""
        row = [str(st.step), *used, fmt(float(st["loss"]), p), after]
        if every:
            name = "dataset_loss_after" if "dataset_loss_after" in st else "loss_after"
            row.append(fmt(float(st[name]), p) if name in st else "")
        rows.append(row)
    return "Steps", cols, rows


def steps_summary(trace: Trace, decimals: int | Precision | None = None) -> RenderableType:
    title, cols, rows = steps_summary_rows(trace, precision(decimals))
    return fitted_table(title, cols, rows, UNLIMITED, show_lines=False) or Group()


def _fit_or_stack(out: Out, title: str, cols: list[Column], rows: list[list[str]]) -> None:
    """A small table of short cells, or, too wide, one line of 'header cell; ...' a row."""
    t = fitted_table(title, cols, rows, out.width, show_lines=False)
    if t is not None:
        out.print(t)
        return
    out.line(Text(title, style="bold"))
    for row in rows:
        cells = [f"{' '.join(c.header.split())} {v}" for c, v in zip(cols, row, strict=True) if v]
        out.prose("; ".join(cells), hanging=2)


def print_work(out: Out | Console, explained: list[Any], symbols: bool = True) -> None:
    """The work (bpcalc.explain.Explained per value) as lines, stage by stage; in a terminal
    a line too long for it wraps at a space, continued under its first '='."""
    from bpcalc.explain import SYMBOLS
    from bpcalc.explain.text import WIDTH, work_lines

    if isinstance(out, Console):
        out = Out(out)
    width = min(WIDTH, out.width) if out.wrap_prose else WIDTH
    stage = None
    if explained and symbols:
        out.prose(SYMBOLS, style="dim")
    for e in explained:
        if e.record.stage != stage:
            stage = e.record.stage
            out.line(Text(f"Work: {STAGE_TITLES[stage].lower()}", style="bold"))
        if e.skipped:
            out.prose(
                f"{e.record.name}: {e.record.value.size} elements, not explained "
                f"(--explain {e.record.name}, one element, or --full)",
                style="dim",
            )
        for w in e.works:
            lines = work_lines(w, width)
            for i, line in enumerate(lines):
                note = i > 0 and bool(w.note) and i == len(lines) - 1
                lead = len(line) - len(line.lstrip(" "))
                hanging = len(w.name) + 3 if i == 0 else 2
                out.prose(
                    line.lstrip(" "), indent=lead, hanging=hanging, style="dim" if note else ""
                )


def print_header(out: Out, trace: Trace) -> None:
    for line, style in header_lines(trace, out.width if out.wrap_prose else None):
        out.line(Text(line, style=style))


def header_lines(trace: Trace, width: int | None = None) -> list[tuple[str, str]]:
    """The title and the conventions, as (line, style); prose wrapped at `width` (None:
    not wrapped)."""
    lines = [(part, "bold") for part in wrap(f"bpcalc · {trace.network}", width, 0, 2)]
    lines.append(("Conventions", "bold underline"))
    for key, line in trace.conventions.items():
        lines += [(part, "") for part in wrap(f"{key}: {line}", width, 2, 2)]
    return lines


def header(trace: Trace) -> Group:
    """The title and the conventions as unwrapped lines (see print_header for a terminal)."""
    return Group(*(Text(line, style=style) for line, style in header_lines(trace)))


def step_tables(
    st: StepTrace,
    decimals: int | Precision | None,
    full: bool,
    keep: Keep,
    width: int = UNLIMITED,
) -> list[RenderableType]:
    """The step's stages, each a table that fits in `width`, or stacked when none does."""
    p = precision(decimals)
    blocks: list[RenderableType] = []
    for stage in ("forward", "loss", "backward"):
        rows = [r for r in st.stage(stage) if keep(r)]
        if rows:
            blocks.append(_records(STAGE_TITLES[stage], rows, p, full, st.samples, width))
    updates = update_rows(st, keep)
    if updates:
        blocks.append(_updates(updates, p, full, width))
        states = [r for r in st.stage("update") if r.name.startswith("state.") and keep(r)]
        if states:
            blocks.append(_records("Optimizer state", states, p, full, None, width))
    if "loss_after" in st and keep(st.records["loss_after"]):
        before, after, change, verdict = loss_change(st)
        cols = [
            Column("loss before", "right"),
            Column("loss after", "right"),
            Column("change", "right"),
        ]
        row = [
            fmt(before, p),
            fmt(after, p),
            f"{'+' if change > 0 else ''}{fmt(change, p)} ({verdict})",
        ]
        t = fitted_table(STAGE_TITLES["after"], cols, [row], width, show_lines=False)
        if t is None:
            t = Group(
                Text(STAGE_TITLES["after"], style="bold"),
                *(Text(f"{c.header}: {v}") for c, v in zip(cols, row, strict=True)),
            )
        blocks.append(t)
    return blocks


def _records(
    title: str,
    rows: list[Record],
    p: Precision,
    full: bool,
    samples: list[int] | None,
    width: int,
) -> RenderableType:
    """name | shape | value | formula; or the shape under the name; or stacked."""
    values = [_value(r, p, full, samples) for r in rows]
    names = [Text(r.name, style="cyan") for r in rows]
    shapes = [shape_text(r) for r in rows]
    formulas = [Text(r.formula, style="dim") for r in rows]
    cols = [
        Column("name"),
        Column("shape", style="dim"),
        Column("value", "right"),
        Column("formula", prose=True),
    ]
    t = fitted_table(title, cols, list(zip(names, shapes, values, formulas, strict=True)), width)
    if t is not None:
        return t
    named = [
        Text.assemble((r.name, "cyan"), "\n", (s, "dim")) for r, s in zip(rows, shapes, strict=True)
    ]
    cols = [Column("name, shape"), Column("value", "right"), Column("formula", prose=True)]
    t = fitted_table(title, cols, list(zip(named, values, formulas, strict=True)), width)
    if t is not None:
        return t
    return _stacked(title, rows, p, full, samples, width)


def _stacked(
    title: str,
    rows: list[Record],
    p: Precision,
    full: bool,
    samples: list[int] | None,
    width: int,
) -> RenderableType:
    lines: list[Text] = [Text(title, style="bold")]
    for r in rows:
        lines.append(Text.assemble((r.name, "cyan"), " ", (f"({shape_text(r)})", "dim")))
        g = _value(r, p, full, samples, width - INDENT)
        lines += [Text(" " * INDENT + part) for part in g.split("\n")]
        lines += [Text(part, style="dim") for part in wrap(r.formula, width, INDENT, 2)]
    return Group(*lines)


def _updates(updates: list[UpdateRow], p: Precision, full: bool, width: int) -> RenderableType:
    """parameter | old | gradient | new | rule; the rule said once above the table when
    every parameter has the same; or stacked."""
    title = STAGE_TITLES["update"]
    cells = [
        [
            Text(u.param, style="cyan"),
            grid(u.old, p, full) if u.old is not None else "",
            grid(u.grad, p, full) if u.grad is not None else "",
            grid(u.new, p, full),
        ]
        for u in updates
    ]
    numbers = [Column("parameter"), *(Column(h, "right") for h in ("old", "gradient", "new"))]
    rule_col = Column("rule", style="dim", prose=True)
    rows = [[*c, Text(u.rule)] for c, u in zip(cells, updates, strict=True)]
    t = fitted_table(title, [*numbers, rule_col], rows, width)
    if t is not None:
        return t
    rules = {u.rule for u in updates}
    if len(rules) == 1:
        (rule,) = rules
        t = fitted_table(title, numbers, cells, width)
        if t is not None and len(f"rule: {rule}") <= width:
            return Group(t, Text(f"rule: {rule}", style="dim"))
    lines: list[Text] = [Text(title, style="bold")]
    inner = width - 2 * INDENT
    for u in updates:
        lines.append(Text.assemble((u.param, "cyan"), " ", (f"({_shape(u.new)})", "dim")))
        for label, v in (("old", u.old), ("gradient", u.grad), ("new", u.new)):
            if v is None:
                continue
            g = grid(v, p, full, inner)
            if "\n" not in g and len(label) + 2 + len(g) + INDENT <= width:
                lines.append(Text(f"{' ' * INDENT}{label}: {g}"))
                continue
            lines.append(Text(f"{' ' * INDENT}{label}:"))
            lines += [Text(" " * 2 * INDENT + part) for part in g.split("\n")]
        lines += [Text(part, style="dim") for part in wrap(f"rule: {u.rule}", width, INDENT, 2)]
    return Group(*lines)


def _shape(v: Any) -> str:
    return "scalar" if not v.shape else " x ".join(str(s) for s in v.shape)


def _value(
    r: Record,
    p: Precision,
    full: bool,
    samples: list[int] | None = None,
    max_width: int | None = None,
) -> str:
    """Per-sample values are labelled with their dataset index (the step's batch may be a
    mini-batch or a shuffled one); a large batch shows its first samples unless --full."""
    if r.per_sample:
        n = r.value.shape[0]
        labels = samples if samples and len(samples) == n else None
        shown = samples_shown(n, full)
        lines = []
        for i in range(shown):
            label = f"sample {labels[i] if labels else i}:"
            room = None if max_width is None else max_width - len(label) - 1
            g = grid(r.value[i], p, full, room)
            if "\n" in g or (room is not None and len(g) > room):
                g = grid(r.value[i], p, full, max_width)
                lines.append(f"{label}\n{g}")  # a grid of several lines starts on a line of its own
            else:
                lines.append(f"{label} {g}")
        if shown < n:
            lines.append(f"… {n - shown} more samples (--full shows them all)")
        return "\n".join(lines)
    return grid(r.value, p, full, max_width)


__all__ = ["Table", "header", "print_work", "render", "step_tables", "steps_summary"]
