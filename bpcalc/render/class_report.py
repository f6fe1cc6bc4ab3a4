"""The report of grading a class (bpcalc/check/klass.py): tables for people, CSV for a
spreadsheet (one row per student), one strict JSON document for scripts."""

from __future__ import annotations

import csv
import io
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bpcalc import __version__
from bpcalc.check.grade import CARRIED, CORRECT, WRONG
from bpcalc.check.klass import BLANK, INCOMPLETE, ClassReport, Row

MARKS = {CORRECT: "✓", CARRIED: "↪", WRONG: "✗", INCOMPLETE: "…", BLANK: "~"}


def _score(r: Row) -> str:
    return "" if r.score is None else f"{100 * r.score:.0f} %"


def _slips(r: Row) -> str:
    return ", ".join(dict.fromkeys(s.slip for s in r.slips))


def render(report: ClassReport, console: Console) -> None:
    n = len(report.rows)
    console.print(
        Text(f"bpcalc check · {report.title} · {n} sheet{'s' if n != 1 else ''}", style="bold")
    )
    console.print(f"  against: {report.source}   tolerance: {report.tolerance.describe()}")
    if report.round_each is not None:
        console.print(
            f"  expected values follow hand rounding: {report.round_each} decimals at every step"
        )
    console.print(
        f"  score: values right (✓) or carried forward (↪) out of {len(report.asked)} asked"
    )
    t = Table(title="Students", title_justify="left", show_lines=False)
    for col, just in (
        ("student", "left"),
        ("variant", "right"),
        ("score", "right"),
        ("✓", "right"),
        ("↪", "right"),
        ("✗", "right"),
        ("blank", "right"),
        ("first wrong", "left"),
        ("slips", "left"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in report.rows:
        if r.error is not None:
            t.add_row(
                Text(r.student), _v(r), Text("not graded", style="bold red"), "", "", "", "", "", ""
            )
            continue
        t.add_row(
            Text(r.student),
            _v(r),
            _score(r),
            str(r.count(CORRECT)),
            str(r.count(CARRIED)),
            str(r.count(WRONG)),
            str(r.count(BLANK) + r.count(INCOMPLETE)),
            Text(r.first_wrong or ""),
            Text(_slips(r)),
        )
    console.print(t)
    for r in report.rows:
        for note in ([r.error] if r.error else []) + r.notes:
            style = "bold red" if r.error else "yellow"
            console.print(Text(f"{r.sheet}: {note}", style=style))
    graded = report.graded
    if not graded:
        return
    v = Table(title=f"Values ({len(graded)} graded sheets)", title_justify="left")
    for col in ("value", "✓", "↪", "✗", "incomplete", "blank"):
        v.add_column(col, justify="left" if col == "value" else "right")
    for ref, c in report.per_value().items():
        v.add_row(
            Text(ref),
            str(c[CORRECT]),
            str(c[CARRIED]),
            str(c[WRONG]),
            str(c[INCOMPLETE]),
            str(c[BLANK]),
        )
    console.print(v)
    slips = report.slip_counts()
    if slips:
        console.print(Text("Slips the class made most", style="bold"))
        for s in slips:
            console.print(
                Text(
                    f"  {s.students} of {len(graded)} {s.phrase} ({s.slip}; in {', '.join(s.values)})"
                )
            )
    firsts = report.first_wrong_counts()
    if firsts:
        console.print(Text("Where the first wrong value was", style="bold"))
        for ref, k in firsts.most_common():
            console.print(Text(f"  {k} of {len(graded)} at {ref}"))


def _v(r: Row) -> str:
    return "" if r.variant is None else str(r.variant)


def _safe(text: str) -> str:
    """A spreadsheet cell that cannot start a formula (=, +, -, @ from a student's name)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_text(report: ClassReport) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        [
            "student",
            "sheet",
            "variant",
            "status",
            "score",
            "right",
            "carried_forward",
            "wrong",
            "incomplete",
            "not_answered",
            "first_wrong",
            "carried",
            "slips",
            "notes",
            *report.asked,
        ]
    )
    for r in report.rows:
        if r.error is not None:
            w.writerow(
                [
                    _safe(r.student),
                    _safe(r.sheet),
                    _v(r),
                    "error",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    _safe(r.error),
                    *["" for _ in report.asked],
                ]
            )
            continue
        w.writerow(
            [
                _safe(r.student),
                _safe(r.sheet),
                _v(r),
                "graded",
                f"{r.score:.4f}" if r.score is not None else "",
                r.count(CORRECT),
                r.count(CARRIED),
                r.count(WRONG),
                r.count(INCOMPLETE),
                r.count(BLANK),
                r.first_wrong or "",
                ";".join(r.carried),
                ";".join(dict.fromkeys(s.slip for s in r.slips)),
                _safe(" | ".join(r.notes)),
                *[MARKS[r.items.get(ref, BLANK)] for ref in report.asked],
            ]
        )
    return out.getvalue()


def document(report: ClassReport) -> dict[str, Any]:
    graded = report.graded
    rows = []
    for r in report.rows:
        rows.append(
            {
                "student": r.student,
                "sheet": r.sheet,
                "variant": r.variant,
                "status": "error" if r.error else "graded",
                "error": r.error,
                "score": r.score,
                "right": r.count(CORRECT),
                "carried_forward": r.count(CARRIED),
                "wrong": r.count(WRONG),
                "incomplete": r.count(INCOMPLETE),
                "not_answered": r.count(BLANK),
                "first_wrong": r.first_wrong,
                "carried": r.carried,
                "slips": [{"slip": s.slip, "value": s.ref, "message": s.message} for s in r.slips],
                "values": r.items,
                "fits_variant": r.fits,
                "notes": r.notes,
            }
        )
    return {
        "bpcalc": __version__,
        "title": report.title,
        "against": report.source,
        "round_each": report.round_each,
        "tolerance": {
            "rule": report.tolerance.describe(),
            "rtol": report.tolerance.rtol,
            "atol": report.tolerance.atol,
        },
        "asked": report.asked,
        "students": rows,
        "summary": {
            "sheets": len(report.rows),
            "graded": len(graded),
            "not_graded": len(report.rows) - len(graded),
            "all_right": sum(1 for r in graded if r.report is not None and not r.report.exit_code),
            "values": {ref: dict(c) for ref, c in report.per_value().items()},
            "slips": [
                {"slip": s.slip, "phrase": s.phrase, "students": s.students, "values": s.values}
                for s in report.slip_counts()
            ],
            "first_wrong": dict(report.first_wrong_counts()),
        },
        "exit_code": report.exit_code,
    }
