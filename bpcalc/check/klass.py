"""Grading a class: many answer sheets at once, each against its variant of an exercise (or
all against one network), built on the one-sheet grader (grade.grade, diagnose.diagnose).

    bpcalc check EXERCISE_DIR sheets/*.yaml      # the folder `bpcalc exercise` wrote
    bpcalc check net.yaml alice.yaml bob.yaml    # one network for every sheet

A sheet names its variant with a `variant:` key, or its file name does (alice-v3.yaml,
variant_03.yaml); a `student:` key names the student (else the file name does). Each
sheet gets one row: its score (✓ and ↪ count as right: an error carried forward costs only
the value it started at), the first wrong value, the values carried forward, the slips.
The class summary counts, for each value asked, how many got it right, and the slips the
class made most ("14 of 30 forgot to multiply by the derivative of the sigmoid σ in layer out").

Sheets are untrusted: a sheet is plain YAML read with bpcalc's limits (no tags, no code, no
file names followed), at most MAX_SHEET_BYTES, and it may hold no more numbers than the
network has values (aliases count as what they repeat), so no sheet can make the grader
use unbounded time or memory. A sheet that cannot be read or graded is reported in its row
and never stops the others.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bpcalc import engine
from bpcalc.check.diagnose import diagnose
from bpcalc.check.grade import CARRIED, CORRECT, WRONG, Graded, Report, agrees, grade
from bpcalc.check.sheet import parse_sheet
from bpcalc.check.tolerance import Tolerance
from bpcalc.errors import BpcalcError, Location, SpecError, UsageError
from bpcalc.network import values as V
from bpcalc.network.parse import load_network
from bpcalc.network.types import NetworkSpec
from bpcalc.network.yaml_source import load_yaml_file, load_yaml_text
from bpcalc.trace import StepTrace, parse_ref

MANIFEST = "exercise.yaml"  # what bpcalc exercise writes (bpcalc/teach/generate.py)
MAX_SHEET_BYTES = 256 * 1024
MAX_SHEETS = 5000
BLANK, INCOMPLETE = "not_answered", "incomplete"
_VARIANT_IN_NAME = re.compile(r"(?:^|[^a-z0-9])v(?:ariant)?[-_ ]?0*(\d+)(?![0-9])", re.I)


@dataclass(frozen=True)
class Variant:
    number: int | None  # None: the one network of a class without variants
    spec: NetworkSpec
    exact: StepTrace


@dataclass(frozen=True)
class Assignment:
    """What a class is graded against: the variants, the values asked, the rounding."""

    title: str
    variants: dict[int | None, Variant]
    asked: list[str] | None  # None: whatever the sheets answer (no exercise manifest)
    round_each: int | None
    source: str


@dataclass(frozen=True)
class SlipSeen:
    slip: str
    ref: str
    message: str


@dataclass
class Row:
    """One student's sheet."""

    sheet: str
    student: str
    variant: int | None = None
    error: str | None = None  # the sheet could not be graded: why
    report: Report | None = None
    items: dict[str, str] = field(default_factory=dict)  # asked value -> verdict
    first_wrong: str | None = None
    carried: list[str] = field(default_factory=list)
    slips: list[SlipSeen] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fits: int | None = None  # another variant its numbers fit better (a wrong-variant sheet)

    def count(self, verdict: str) -> int:
        return sum(1 for v in self.items.values() if v == verdict)

    @property
    def points(self) -> int:
        return self.count(CORRECT) + self.count(CARRIED)

    @property
    def score(self) -> float | None:
        return None if self.error or not self.items else self.points / len(self.items)


@dataclass(frozen=True)
class SlipCount:
    slip: str
    phrase: str
    students: int
    values: list[str]


@dataclass
class ClassReport:
    title: str
    source: str
    round_each: int | None
    tolerance: Tolerance
    asked: list[str]
    rows: list[Row]

    @property
    def graded(self) -> list[Row]:
        return [r for r in self.rows if r.error is None]

    def per_value(self) -> dict[str, Counter[str]]:
        """For each value asked: how many sheets have it right, carried forward, wrong,
        incomplete or blank."""
        out: dict[str, Counter[str]] = {ref: Counter() for ref in self.asked}
        for r in self.graded:
            for ref in self.asked:
                out[ref][r.items.get(ref, BLANK)] += 1
        return out

    def slip_counts(self) -> list[SlipCount]:
        """The slips named on the class's sheets, most frequent first (a student counts once
        per slip, wherever it showed)."""
        students: dict[tuple[str, str], set[str]] = {}
        values: dict[tuple[str, str], list[str]] = {}
        for r in self.graded:
            for s in r.slips:
                key = (s.slip, phrase(s.message))
                students.setdefault(key, set()).add(r.sheet)
                if s.ref not in values.setdefault(key, []):
                    values[key].append(s.ref)
        out = [SlipCount(k[0], k[1], len(v), values[k]) for k, v in students.items()]
        return sorted(out, key=lambda c: (-c.students, c.slip, c.phrase))

    def first_wrong_counts(self) -> Counter[str]:
        return Counter(r.first_wrong for r in self.graded if r.first_wrong is not None)

    @property
    def exit_code(self) -> int:
        if not self.graded:
            return 2
        if any(r.error for r in self.rows):
            return 1
        return 1 if any(r.report is not None and r.report.exit_code for r in self.rows) else 0


def phrase(message: str) -> str:
    """A diagnosis as a short phrase for the class summary: its first clause, without the
    'You' ("You forgot to ... in layer out: ..." -> "forgot to ... in layer out")."""
    text = message.strip()
    cut = len(text)
    for mark in (": ", "; ", ". ", " (", ", not "):
        i = text.find(mark, 12)
        if i != -1:
            cut = min(cut, i)
    text = text[:cut].rstrip(".")
    text = text.removeprefix("You ")
    return text[:1].lower() + text[1:]


# --- what the class is graded against -----------------------------------------------------


def load_assignment(path: str, round_each: int | None) -> Assignment:
    """An exercise folder (or its exercise.yaml), or one network file for every sheet."""
    p = Path(path)
    manifest = p / MANIFEST if p.is_dir() else p
    if p.is_dir() and not manifest.exists():
        raise UsageError(
            f"{path} is a folder without {MANIFEST}; give the folder bpcalc exercise wrote, "
            "or a network file"
        )
    if manifest.name == MANIFEST and manifest.exists():
        return _from_manifest(manifest, round_each)
    spec = load_network(path)
    exact = engine.run(spec, round_each=round_each).steps[0]
    return Assignment(spec.name, {None: Variant(None, spec, exact)}, None, round_each, path)


def _from_manifest(path: Path, round_each: int | None) -> Assignment:
    doc = load_yaml_file(str(path))
    root = doc.root()
    V.check_keys(
        root,
        ("bpcalc_exercise", "title", "template", "seed", "rounding", "ask", "variants"),
        ("bpcalc_exercise", "ask", "variants"),
        "an exercise manifest",
    )
    fmt = V.positive_int(root.child("bpcalc_exercise"), "bpcalc_exercise")
    if fmt != 1:
        raise root.child("bpcalc_exercise").error(
            f"this exercise was written in format {fmt}; this bpcalc reads format 1"
        )
    rounding = root.value.get("rounding")
    if rounding is not None:
        rounding = V.positive_int(root.child("rounding"), "rounding", minimum=0)
    if round_each is None:
        round_each = rounding
    ask_src = root.child("ask")
    if not isinstance(ask_src.value, list) or not ask_src.value:
        raise ask_src.error("ask should be a list of value names")
    asked = [V.text(ask_src.child(i), "a value asked") for i in range(len(ask_src.value))]
    vs = root.child("variants")
    if not isinstance(vs.value, list) or not vs.value:
        raise vs.error("variants should be a list")
    variants: dict[int | None, Variant] = {}
    folder = path.parent.resolve()
    for i in range(len(vs.value)):
        vsrc = vs.child(i)
        V.mapping(vsrc, "a variant")
        number = V.positive_int(vsrc.child("variant"), "variant")
        rel = V.text(vsrc.child("network"), "network")
        net = (folder / rel).resolve()
        if folder not in net.parents:
            raise vsrc.child("network").error("a variant's network should lie inside the folder")
        spec = load_network(str(net))
        exact = engine.run(spec, round_each=round_each).steps[0]
        for ref in asked:
            if parse_ref(ref)[0] not in exact:
                raise ask_src.error(f"{ref} is not a value of variant {number}'s network")
        variants[number] = Variant(number, spec, exact)
    title = V.text(root.child("title"), "title") if "title" in root.value else path.parent.name
    return Assignment(title, variants, asked, round_each, str(path.parent))


# --- the sheets ---------------------------------------------------------------------------


def sheet_files(paths: list[str]) -> list[str]:
    """The sheets named: files as given, folders as the .yaml/.yml files in them (sorted)."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(
                str(f)
                for f in path.iterdir()
                if f.suffix in (".yaml", ".yml") and f.is_file() and f.name != MANIFEST
            )
        else:
            out.append(p)
        if len(out) > MAX_SHEETS:
            raise UsageError(f"more than {MAX_SHEETS} sheets; grade the class in parts")
    if not out:
        raise UsageError("no answer sheets found (give files, or folders of .yaml files)")
    return out


def _read(path: str) -> str:
    where = Location(path if path.isprintable() else repr(path)[1:-1], 1, 1)
    p = Path(path)
    try:
        if not p.is_file():
            raise SpecError("no such file" if not p.exists() else "not a file", where)
        with p.open("rb") as fh:
            raw = fh.read(MAX_SHEET_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read the sheet: {exc.strerror or exc}", where) from None
    if len(raw) > MAX_SHEET_BYTES:
        raise SpecError(
            f"the sheet is larger than {MAX_SHEET_BYTES // 1024} KiB; an answer sheet is a few "
            "lines of numbers",
            where,
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError("the sheet is not UTF-8 text", where) from None


def _count_numbers(data: Any, cap: int) -> int:
    """How many scalars the sheet holds (aliases counted each time), stopping past cap."""
    stack, n = [data], 0
    while stack and n <= cap:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        else:
            n += 1
    return n


def _meta(data: Any, file: str) -> tuple[str | None, Any]:
    if not isinstance(data, dict):
        return None, None
    student = data.get("student")
    return (str(student).strip() or None) if student is not None else None, data.get("variant")


def _variant_number(value: Any, file: str, a: Assignment) -> tuple[int | None, list[str]]:
    """The variant the sheet answers: its `variant:` key, else its file name."""
    notes: list[str] = []
    named = {int(m) for m in _VARIANT_IN_NAME.findall(Path(file).stem)}
    by_key: int | None = None
    if value is not None:
        text = str(value).strip()
        m = re.fullmatch(r"(?:v(?:ariant)?[-_ ]?)?0*(\d+)", text, re.I)
        if isinstance(value, bool) or m is None:
            raise SpecError(
                f"variant: should be a variant number, found {text[:40]!r}", Location(file, 1, 1)
            )
        by_key = int(m.group(1))
    if by_key is not None:
        if named and by_key not in named:
            notes.append(f"its variant: key says {by_key}, its file name {sorted(named)[0]}")
        return by_key, notes
    if len(named) > 1:
        raise SpecError(
            f"the file name names more than one variant ({', '.join(map(str, sorted(named)))}); "
            "add a variant: key to the sheet",
            Location(file, 1, 1),
        )
    return (named.pop() if named else None), notes


def grade_sheet(path: str, a: Assignment, tol: Tolerance) -> Row:
    row = Row(sheet=path, student=Path(path).stem)
    try:
        _grade_into(row, path, a, tol)
    except BpcalcError as exc:
        row.error = str(exc)
    except RecursionError:
        row.error = f"{path}: the sheet is nested too deeply"
    return row


def _grade_into(row: Row, path: str, a: Assignment, tol: Tolerance) -> None:
    text = _read(path)
    doc = load_yaml_text(text, path)
    student, key = _meta(doc.data, path)
    if student:
        row.student = student[:80]
    some = next(iter(a.variants.values())).exact  # every variant has the same values
    cap = 4 * sum(r.value.size for r in some) + 100
    if _count_numbers(doc.data, cap) > cap:
        raise SpecError(
            "the sheet holds more numbers than the network has values", Location(path, 1, 1)
        )
    if None in a.variants:
        variant = a.variants[None]
    else:
        number, row.notes = _variant_number(key, path, a)
        if number is None:
            hint = _best_fit_hint(text, path, a)
            raise SpecError(
                "the sheet does not say which variant it answers: add variant: N, or put "
                f"v{{N}} in its file name{hint}",
                Location(path, 1, 1),
            )
        if number not in a.variants:
            known = sorted(k for k in a.variants if k is not None)
            raise SpecError(
                f"there is no variant {number} (the exercise has {known[0]} to {known[-1]})",
                Location(path, 1, 1),
            )
        variant = a.variants[number]
        row.variant = number
    sheet = parse_sheet(text, path, variant.exact)
    report = grade(variant.spec, sheet, tol, variant.exact, a.round_each)
    report = diagnose(variant.spec, report, variant.exact)
    row.report = report
    asked = a.asked if a.asked is not None else _answered(report, variant.exact)
    row.items = {ref: item_verdict(report.entries, ref, variant.exact) for ref in asked}
    row.first_wrong = next((g.answer.ref for g in report.entries if g.first_wrong), None)
    row.carried = [g.answer.ref for g in report.entries if g.verdict == CARRIED]
    for g in report.entries:
        for d in g.diagnoses:
            if d.slip != "none":
                row.slips.append(SlipSeen(d.slip, g.answer.ref, d.message))
    if len(a.variants) > 1 and report.exit_code:
        better = _fits_better(report, a, row.variant, tol)
        if better is not None:
            row.fits, theirs, ours, n = better
            row.notes.append(
                f"its numbers fit variant {row.fits} ({theirs} of {n} right there, {ours} here): "
                "a sheet for another variant?"
            )


def _answered(report: Report, exact: StepTrace) -> list[str]:
    names = {g.answer.name for g in report.entries}
    return [n for n in exact.records if n in names]


def item_verdict(entries: list[Graded], ref: str, exact: StepTrace) -> str:
    """One asked value's verdict from the sheet's entries: wrong if any part is; blank if
    none is answered; incomplete if some elements are missing; else carried or correct."""
    name, index = parse_ref(ref)
    shape = exact.records[name].shape
    covered = np.zeros(shape, dtype=bool)
    verdicts: list[str] = []
    for g in entries:
        a = g.answer
        if a.name != name:
            continue
        if index is None:
            if a.index is None:
                covered |= a.given
            else:
                covered[a.index] = True
            verdicts.append(g.verdict)
        elif a.index == index:
            covered[index] = True
            verdicts.append(g.verdict)
        elif a.index is None and a.given[index]:
            covered[index] = True
            verdicts.append(g.verdict if g.wrong[index] else CORRECT)
    if not verdicts:
        return BLANK
    if WRONG in verdicts:
        return WRONG
    needed = covered if index is None else covered[index]
    if not np.all(needed):
        return INCOMPLETE
    return CARRIED if CARRIED in verdicts else CORRECT


def _right_against(report: Report, exact: StepTrace, tol: Tolerance) -> int:
    """How many of the sheet's answers agree with another variant's values."""
    return sum(bool(agrees(g.answer, exact[g.answer.name], tol).all()) for g in report.entries)


def _fits_better(
    report: Report, a: Assignment, number: int | None, tol: Tolerance
) -> tuple[int, int, int, int] | None:
    """Another variant whose values more of the sheet's answers agree with (and at least
    half of them): (its number, right there, right here, answers)."""
    n = len(report.entries)
    ours = sum(1 for g in report.entries if g.verdict == CORRECT)
    best = None
    for k, v in a.variants.items():
        if k == number or k is None:
            continue
        theirs = _right_against(report, v.exact, tol)
        if theirs > ours and 2 * theirs >= n and (best is None or theirs > best[1]):
            best = (k, theirs, ours, n)
    return best


def _best_fit_hint(text: str, path: str, a: Assignment) -> str:
    """'; its numbers fit variant 3 best' for a sheet that does not name its variant."""
    best, score = None, 0
    for k, v in a.variants.items():
        try:
            sheet = parse_sheet(text, path, v.exact)
        except BpcalcError:
            continue
        right = sum(
            bool(agrees(ans, v.exact[ans.name], Tolerance()).all()) for ans in sheet.answers
        )
        if right > score:
            best, score = k, right
    return f"; its numbers fit variant {best} best ({score} values)" if best is not None else ""


def grade_class(assignment: Assignment, sheets: list[str], tol: Tolerance) -> ClassReport:
    rows = [grade_sheet(s, assignment, tol) for s in sheets]
    asked = assignment.asked
    if asked is None:  # every value some sheet answered, in computation order
        only = next(iter(assignment.variants.values())).exact
        seen: set[str] = set()
        for r in rows:
            seen |= set(r.items)
        asked = [n for n in only.records if n in seen]
        for r in rows:
            if r.error is None:
                for ref in asked:
                    r.items.setdefault(ref, BLANK)
                r.items = {ref: r.items[ref] for ref in asked}
    return ClassReport(assignment.title, assignment.source, assignment.round_each, tol, asked, rows)
