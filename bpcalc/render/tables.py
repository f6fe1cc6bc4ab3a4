"""Rich tables for people: one table per stage, matrices as grids. The only rich.table user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from bpcalc.render.numbers import fmt, grid
from bpcalc.render.writeup import loss_change, shape_text, state_records, update_rows
from bpcalc.trace import STAGE_TITLES, Record, StepTrace, Trace


def render(
    trace: Trace,
    console: Console,
    *,
    decimals: int = 4,
    full: bool = False,
    keep: Callable[[Record], bool] = lambda r: True,
    summary: bool = False,
    work: dict[int, list[Any]] | None = None,
) -> None:
    console.print(header(trace))
    if summary:
        console.print(steps_summary(trace, decimals))
        return
    for st in trace.steps:
        if len(trace.steps) > 1:
            used = f" · samples {', '.join(map(str, st.samples))}" if st.samples else ""
            console.rule(f"Step {st.step}{used}")
        for table in step_tables(st, decimals, full, keep):
            console.print(table)
        if work is not None:
            print_work(console, work.get(st.step, []), symbols=st is trace.steps[0])
    if len(trace.steps) > 1 and "loss" in trace.steps[0] and keep(trace.steps[0].records["loss"]):
        console.print(steps_summary(trace, decimals))


def steps_summary(trace: Trace, decimals: int) -> Table:
    """One row per step: the samples it used, the loss before and after its update."""
    t = Table(title="Steps", title_justify="left")
    t.add_column("step", justify="right")
    if trace.batched:
        t.add_column("samples")
    t.add_column("loss", justify="right")
    t.add_column("loss after", justify="right")
    every = any("dataset_loss_after" in st for st in trace.steps)
    if every:
        t.add_column("loss after, all samples", justify="right")
    for st in trace.steps:
        used = [", ".join(map(str, st.samples or []))] if trace.batched else []
        after = fmt(float(st["loss_after"]), decimals) if "loss_after" in st else ""
        row = [str(st.step), *used, fmt(float(st["loss"]), decimals), after]
        if every:
            name = "dataset_loss_after" if "dataset_loss_after" in st else "loss_after"
            row.append(fmt(float(st[name]), decimals) if name in st else "")
        t.add_row(*row)
    return t


def print_work(console: Console, explained: list[Any], symbols: bool = True) -> None:
    """The work (bpcalc.explain.Explained per value) as plain lines, stage by stage."""
    from bpcalc.explain import SYMBOLS
    from bpcalc.explain.text import work_lines

    stage = None
    if explained and symbols:
        console.print(Text(SYMBOLS, style="dim"), soft_wrap=True)
    for e in explained:
        if e.record.stage != stage:
            stage = e.record.stage
            console.print(Text(f"Work: {STAGE_TITLES[stage].lower()}", style="bold"))
        if e.skipped:
            console.print(
                Text(
                    f"{e.record.name}: {e.record.value.size} elements, not explained "
                    f"(--explain {e.record.name}, one element, or --full)",
                    style="dim",
                )
            )
        for w in e.works:
            for i, line in enumerate(work_lines(w)):
                note = i > 0 and w.note and i == len(work_lines(w)) - 1
                console.print(Text(line, style="dim" if note else ""), soft_wrap=True)


def header(trace: Trace) -> Group:
    title = Text(f"bpcalc · {trace.network}", style="bold")
    lines = [title, Text("Conventions", style="bold underline")]
    for key, text in trace.conventions.items():
        lines.append(Text(f"  {key}: {text}"))
    return Group(*lines)


def step_tables(
    st: StepTrace, decimals: int, full: bool, keep: Callable[[Record], bool]
) -> list[Table]:
    tables = []
    for stage in ("forward", "loss", "backward"):
        rows = [r for r in st.stage(stage) if keep(r)]
        if not rows:
            continue
        t = Table(title=STAGE_TITLES[stage], title_justify="left", show_lines=True)
        t.add_column("value", style="cyan", no_wrap=True)
        t.add_column("shape", style="dim")
        t.add_column("value", justify="right", no_wrap=True)
        t.add_column("formula", style="dim")
        for r in rows:
            t.add_row(r.name, shape_text(r), _value(r, decimals, full, st.samples), r.formula)
        tables.append(t)
    updates = update_rows(st, keep)
    if updates:
        t = Table(title="Update", title_justify="left", show_lines=True)
        t.add_column("parameter", style="cyan", no_wrap=True)
        t.add_column("old", justify="right", no_wrap=True)
        t.add_column("gradient", justify="right", no_wrap=True)
        t.add_column("new", justify="right", no_wrap=True)
        t.add_column("rule", style="dim")
        for u in updates:
            t.add_row(
                u.param,
                grid(u.old, decimals, full) if u.old is not None else "",
                grid(u.grad, decimals, full) if u.grad is not None else "",
                grid(u.new, decimals, full),
                u.rule,
            )
        tables.append(t)
        states = state_records(st, keep)  # optimizer state, gradient clipping
        if states:
            title = (
                "Optimizer state"
                if all(r.name.startswith("state.") for r in states)
                else "Gradient clipping and optimizer state"
            )
            t = Table(title=title, title_justify="left", show_lines=True)
            t.add_column("value", style="cyan", no_wrap=True)
            t.add_column("value", justify="right")
            t.add_column("formula", style="dim")
            for r in states:
                t.add_row(r.name, _value(r, decimals, full), r.formula)
            tables.append(t)
    if "loss_after" in st and keep(st.records["loss_after"]):
        before, after, change, verdict = loss_change(st)
        t = Table(title=STAGE_TITLES["after"], title_justify="left")
        t.add_column("loss before", justify="right")
        t.add_column("loss after", justify="right")
        t.add_column("change", justify="right")
        t.add_row(
            fmt(before, decimals),
            fmt(after, decimals),
            f"{'+' if change > 0 else ''}{fmt(change, decimals)} ({verdict})",
        )
        tables.append(t)
    return tables


SAMPLES_SHOWN = 3  # per-sample values of larger batches show this many samples unless --full


def _value(r: Record, decimals: int, full: bool, samples: list[int] | None = None) -> str:
    """Per-sample values are labelled with their dataset index (the step's batch may be a
    mini-batch or a shuffled one); a large batch shows its first samples unless --full."""
    if r.per_sample:
        n = r.value.shape[0]
        labels = samples if samples and len(samples) == n else None
        shown = n if full or n <= SAMPLES_SHOWN + 1 else SAMPLES_SHOWN
        lines = []
        for i in range(shown):
            g = grid(r.value[i], decimals, full)
            sep = "\n" if "\n" in g else " "  # a grid of several lines starts on a line of its own
            lines.append(f"sample {labels[i] if labels else i}:{sep}{g}")
        if shown < n:
            lines.append(f"… {n - shown} more samples (--full shows them all)")
        return "\n".join(lines)
    return grid(r.value, decimals, full)
