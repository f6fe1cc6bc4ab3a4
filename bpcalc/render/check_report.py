"""The report of `bpcalc check`: a rich table for people, one strict JSON document for scripts.
Both read only the Report (bpcalc/check/grade.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bpcalc import __version__
from bpcalc.check.grade import CARRIED, CORRECT, WRONG, Graded, Report
from bpcalc.render.numbers import grid

STYLES = {CORRECT: "green", WRONG: "bold red", CARRIED: "yellow"}


def render(report: Report, console: Console, *, decimals: int = 4) -> None:
    console.print(Text(f"bpcalc check · {report.network}", style="bold"))
    console.print(f"  network: {report.network_file}   answers: {report.sheet_file}")
    console.print(f"  tolerance: {report.tolerance.describe()}")
    if report.precision is not None and report.entries:
        console.print(f"  your sheet is written to {report.precision.describe()}")
    for line in report.conventions.describe():
        console.print(f"  convention: {line}")
    if report.steps > 1:
        console.print(f"  steps: {report.steps} (later steps start from your own new values)")
    if report.round_each is not None:
        console.print(
            f"  expected values follow hand rounding: every value rounded to "
            f"{report.round_each} decimals (half away from zero) before it is used"
        )
    if not report.entries:
        console.print("No answers yet: fill in the sheet (replace ~ with your numbers).")
        return
    t = Table(show_lines=True, title_justify="left")
    longest = max(len(g.answer.label) for g in report.entries)
    # the name and the verdict never shrink; long rows of numbers wrap rather than hide
    t.add_column("value", style="cyan", min_width=min(longest, 32))
    t.add_column("", justify="center", no_wrap=True, min_width=1)
    t.add_column("your answer", justify="right")
    t.add_column("expected", justify="right")
    wrong = [g for g in report.entries if g.verdict == WRONG]
    for g in report.entries:
        style = "on grey23" if g.first_wrong else None
        name = Text(g.answer.label)
        note = _note(g, wrong.index(g) + 1 if g in wrong else 0)
        if note:
            name.append("\n" + note, style=STYLES[g.verdict])
        t.add_row(
            name,
            Text(g.symbol, style=STYLES[g.verdict]),
            _answer(g),
            grid(g.expected, _shown_decimals(g, decimals)),
            style=style,
        )
    console.print(t)
    console.print(Text(report.summary(), style="bold"))
    for i, g in enumerate(wrong, start=1):
        w = g.answer.where
        head = f"({i}) {g.answer.label}, line {w.line}"
        if g.first_wrong:
            head += ": the first wrong value, start here"
        console.print(Text(head, style="bold red" if g.first_wrong else "bold"))
        msgs = [d.message for d in g.diagnoses]
        if len(msgs) > 1:
            console.print("    Each of these slips gives your number:")
        for m in msgs:
            console.print(f"    {m}")
    both = [g for g in report.entries if g.also_fits]
    for g in both:
        console.print(
            Text(
                f"{g.answer.label}: within rounding of both the right value and a slip, so "
                "your numbers cannot tell which you did:",
                style="yellow",
            )
        )
        for d in g.also_fits:
            console.print(f"    {d.message}")
    carried = [g for g in report.entries if g.verdict == CARRIED]
    if carried:
        console.print(
            Text(
                "↪ carried forward: wrong only because an earlier answer was; "
                "computed from your own earlier numbers, these are right.",
                style="yellow",
            )
        )


def _shown_decimals(g: Graded, decimals: int) -> int:
    given = g.answer.decimals[g.answer.given]
    most = int(given.max()) if given.size else 0
    return max(decimals, most)


def _answer(g: Graded) -> str:
    a = g.answer
    given = a.decimals[a.given]
    d = max(0, int(given.max())) if given.size else 0
    value = a.value.T if a.transposed else a.value
    return grid(value, d).replace("nan", "~")


def _note(g: Graded, number: int) -> str:
    parts = []
    if g.verdict == WRONG:
        parts.append(f"({number})" + (" start here" if g.first_wrong else ""))
        if g.expected.ndim > 0 and not g.answer.transposed:
            where = [_idx(ix) for ix in np.argwhere(g.wrong & g.answer.given)]
            if len(where) < g.answer.given.sum():
                parts.append(
                    "wrong at " + ", ".join(where[:6]) + (" ..." if len(where) > 6 else "")
                )
    if g.verdict == CARRIED:
        parts.append(f"↪ from your {', '.join(g.rests_on)}")
    return "\n".join(parts)


def _diagnosis(d: Any) -> dict[str, Any]:
    out = {"slip": d.slip, "message": d.message}
    if d.contradicted_by:
        out["contradicted_by"] = list(d.contradicted_by)
    return out


def _idx(ix: Any) -> str:
    return "[" + ",".join(str(int(i)) for i in ix) + "]"


def _listed(v: np.ndarray) -> Any:
    """NaN (a blank) -> None, so the JSON stays strict."""
    if v.ndim == 0:
        return None if np.isnan(v) else float(v)
    return [_listed(x) for x in v]


def document(report: Report) -> dict[str, Any]:
    answers = []
    for g in report.entries:
        a = g.answer
        answers.append(
            {
                "ref": a.ref,
                "label": a.label,
                "step": a.step,
                "name": a.name,
                "index": list(a.index) if a.index is not None else None,
                "location": str(a.where),
                "stage": g.stage,
                "answer": _listed(a.value),
                "decimals": np.asarray(a.decimals).tolist(),
                "expected": np.asarray(g.expected).tolist(),
                "carried": np.asarray(g.carried).tolist(),
                "verdict": g.verdict,
                "symbol": g.symbol,
                "first_wrong": g.first_wrong,
                "wrong_elements": [[int(i) for i in ix] for ix in np.argwhere(g.wrong & a.given)],
                "rests_on": g.rests_on,
                "transposed": a.transposed,
                "diagnoses": [_diagnosis(d) for d in g.diagnoses],
                "also_fits": [_diagnosis(d) for d in g.also_fits],
                "allowance": np.asarray(g.allowance, dtype=np.float64).tolist(),
                "formula": g.formula,
            }
        )
    first = next((g.answer.label for g in report.entries if g.first_wrong), None)
    return {
        "bpcalc": __version__,
        "network": report.network,
        "network_file": report.network_file,
        "sheet": report.sheet_file,
        "tolerance": {
            "rule": report.tolerance.describe(),
            "rtol": report.tolerance.rtol,
            "atol": report.tolerance.atol,
        },
        "round_each": report.round_each,
        "steps": report.steps,
        "conventions": report.conventions.declared(),
        "precision": (
            None
            if report.precision is None
            else {"decimals": report.precision.decimals, "sigfigs": report.precision.sigfigs}
        ),
        "notes": report.notes,
        "answers": answers,
        "summary": {
            "correct": report.count(CORRECT),
            "wrong": report.count(WRONG),
            "carried_forward": report.count(CARRIED),
            "not_answered": len(report.not_answered),
        },
        "first_wrong": first,
        "not_answered": report.not_answered,
        "warnings": report.warnings,
        "exit_code": int(report.exit_code),
    }
