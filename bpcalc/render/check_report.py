"""The report of `bpcalc check`: a rich table for people, one strict JSON document for scripts.
Both read only the Report (bpcalc/check/grade.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.text import Text

from bpcalc import __version__
from bpcalc.check.grade import CARRIED, CORRECT, WRONG, Graded, Report
from bpcalc.render.layout import Column, Out, fitted_table
from bpcalc.render.numbers import Precision, fmt, grid, precision

STYLES = {CORRECT: "green", WRONG: "bold red", CARRIED: "yellow"}


def render(
    report: Report,
    console: Console,
    *,
    decimals: int | Precision | None = None,
    wrap: bool | None = None,
) -> None:
    """The report as a table that fits the console, or stacked (each answer's name and
    verdict on one line, the answer and the expected value under it) when it does not."""
    out = Out(console, wrap)
    p = precision(decimals)
    out.prose(f"bpcalc check · {report.network}", style="bold")
    out.prose(f"network: {report.network_file}   answers: {report.sheet_file}", indent=2)
    out.prose(f"tolerance: {report.tolerance.describe()}", indent=2)
    if report.round_each is not None:
        out.prose(
            f"expected values follow hand rounding: every value rounded to "
            f"{report.round_each} decimals before it is used",
            indent=2,
        )
    if not report.entries:
        out.prose("No answers yet: fill in the sheet (replace ~ with your numbers).")
        return
    wrong = [g for g in report.entries if g.verdict == WRONG]
    rows, styles, notes = [], [], []
    for g in report.entries:
        note = _note(g, wrong.index(g) + 1 if g in wrong else 0)
        notes.append(note)
        name = Text(g.answer.ref)
        if note:
            name.append("\n" + note, style=STYLES[g.verdict])
        rows.append(
            [
                name,
                Text(g.symbol, style=STYLES[g.verdict]),
                _answer(g),
                grid(g.expected, expected_precision(g, p)),
            ]
        )
        styles.append("on grey23" if g.first_wrong else None)
    cols = [
        Column("value", style="cyan", prose=True),
        Column("", "center"),
        Column("your answer", "right"),
        Column("expected", "right"),
    ]
    t = fitted_table(None, cols, rows, out.width, row_styles=styles)
    if t is not None:
        out.print(t)
    else:
        _stacked(out, report, notes, p)
    out.line(Text(report.summary(), style="bold"))
    for i, g in enumerate(wrong, start=1):
        w = g.answer.where
        head = f"({i}) {g.answer.ref}, line {w.line}"
        if g.first_wrong:
            head += ": the first wrong value, start here"
        out.prose(head, style="bold red" if g.first_wrong else "bold")
        msgs = [d.message for d in g.diagnoses]
        if len(msgs) > 1:
            out.prose("Each of these slips gives your number:", indent=4)
        for m in msgs:
            out.prose(m, indent=4, hanging=2)
    carried = [g for g in report.entries if g.verdict == CARRIED]
    if carried:
        out.prose(
            "↪ carried forward: wrong only because an earlier answer was; "
            "computed from your own earlier numbers, these are right.",
            style="yellow",
        )


def _stacked(out: Out, report: Report, notes: list[str], p: Precision) -> None:
    """One block per answer: verdict and name, then the answer and the expected value."""
    inner = out.width - 4
    for g, note in zip(report.entries, notes, strict=True):
        head = Text.assemble((g.symbol, STYLES[g.verdict]), " ", (g.answer.ref, "cyan"))
        out.line(head)
        for part in note.split("\n") if note else []:
            out.prose(part, indent=2, style=STYLES[g.verdict])
        for label, text in (
            ("your answer", _answer(g, inner)),
            ("expected", grid(g.expected, expected_precision(g, p), max_width=inner)),
        ):
            if "\n" not in text and 2 + len(label) + 2 + len(text) <= out.width:
                out.line(f"  {label}: {text}")
            else:
                out.line(f"  {label}:")
                out.block(text, indent=4)


def expected_precision(g: Graded, p: Precision) -> Precision:
    """The expected value shows at least as many digits as the student wrote, and never
    rounds to a number that reads as the student's wrong one (a ✗ for 0.00049 must not say
    "expected 0.0005"): digits are added until every wrong element reads differently."""
    a = g.answer
    given = a.given
    written = np.asarray(a.decimals)[given]
    most = int(written.max()) if written.size else 0
    if p.decimals is not None:
        base = Precision(decimals=max(p.decimals, most), min_decimals=max(most, 0), pad=True)
    else:
        base = Precision(
            digits=max(p.digits, _significant(a.value[given], written)),
            min_decimals=max(most, 0),
            pad=True,
        )
    expected = np.asarray(g.expected, dtype=np.float64)
    student = np.asarray(a.value.T if a.transposed else a.value, dtype=np.float64)
    if expected.shape != student.shape:
        return base
    differ = np.asarray(g.wrong) & given if np.shape(g.wrong) == student.shape else given
    pairs = [
        (float(e), float(s))
        for e, s, d in zip(expected.ravel(), student.ravel(), np.ravel(differ), strict=True)
        if d and e != s
    ]
    for extra in range(18):
        q = base.finer(extra)
        if all(float(fmt(e, q)) != s for e, s in pairs):
            return q
    return base.finer(17)


def _significant(values: np.ndarray, decimals: np.ndarray) -> int:
    """The most significant digits the student wrote: 0.00049 -> 2, 15.13 -> 4."""
    most = 0
    for v, d in zip(np.ravel(values), np.ravel(decimals), strict=True):
        if np.isfinite(v) and v != 0:
            most = max(most, int(d) + int(np.floor(np.log10(abs(v)))) + 1)
    return most


def _answer(g: Graded, max_width: int | None = None) -> str:
    a = g.answer
    given = a.decimals[a.given]
    d = max(0, int(given.max())) if given.size else 0
    value = a.value.T if a.transposed else a.value
    return grid(value, Precision(decimals=d), max_width=max_width).replace("nan", "~")


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
                "diagnoses": [{"slip": d.slip, "message": d.message} for d in g.diagnoses],
                "formula": g.formula,
            }
        )
    first = next((g.answer.ref for g in report.entries if g.first_wrong), None)
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
