"""Grade an answer sheet: right (✓), wrong (✗), or carried forward (↪).

Three kinds of run of the engine decide it (bpcalc/check/runner.py: the sheet's steps,
conventions and hand rounding):
  exact    the steps as bpcalc computes them (with --round-each, rounded as on paper);
  carried  the same steps with every given answer substituted for the computed value
           (engine overrides), so each value follows from the student's own earlier numbers,
           across steps too (a wrong new weight of step 1 is step 2's weight);
  solo(W)  for each wrong answer W, the steps with only W substituted: which values move
           when W is wrong, i.e. which later answers rest on it.

Each answer gets an allowance for rounding (bpcalc/check/tolerance.py for the rule,
bpcalc/check/allowance.py for how it is computed). An answer is ✓ when it is within its
allowance of `exact`; ↪ when it is not but is within it of `carried` and some wrong earlier
answer moves it (the error was carried forward, as teachers grade); ✓ also when it agrees
with `carried` and only moves with the student's own rounding of right earlier answers; ✗
otherwise. Elements of one answer are judged together: one wrong element makes it ✗.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcalc import layers as layers_mod
from bpcalc.check import allowance as allowance_mod
from bpcalc.check.conventions import Conventions
from bpcalc.check.runner import Given, Runner
from bpcalc.check.sheet import Answer, Sheet
from bpcalc.check.tolerance import Precision, Tolerance, half_unit, within
from bpcalc.errors import ExitCode
from bpcalc.network.types import NetworkSpec
from bpcalc.trace import StepTrace

CORRECT, WRONG, CARRIED = "correct", "wrong", "carried_forward"
SYMBOLS = {CORRECT: "✓", WRONG: "✗", CARRIED: "↪"}


@dataclass(frozen=True)
class Diagnosis:
    slip: str  # a stable key for scripts: "half_missing", "conv_flip", "none", ...
    message: str  # in words a student understands
    contradicted_by: tuple[str, ...] = ()  # the student's right answers the slip would change


@dataclass
class Graded:
    answer: Answer
    stage: str
    formula: str
    expected: np.ndarray  # the correct value, in the answer's shape
    carried: np.ndarray  # the value that follows from the student's own earlier answers
    verdict: str
    wrong: np.ndarray  # bool, the elements that disagree with `expected`
    rests_on: list[str] = field(default_factory=list)  # labels of the wrong answers it follows
    diagnoses: list[Diagnosis] = field(default_factory=list)
    first_wrong: bool = False
    order: int = 0  # the value's position in computation order (over all steps)
    allowance: np.ndarray = field(default_factory=lambda: np.asarray(0.0))
    also_fits: list[Diagnosis] = field(default_factory=list)  # slips within rounding too

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.verdict]


@dataclass
class Report:
    network: str
    network_file: str
    sheet_file: str
    tolerance: Tolerance
    round_each: int | None
    entries: list[Graded]
    not_answered: list[str]  # value names with no answer at all, in computation order
    warnings: list[str] = field(default_factory=list)
    steps: int = 1
    conventions: Conventions = Conventions()
    precision: Precision | None = None  # how the sheet was written (None: --rtol/--atol)
    notes: list[str] = field(default_factory=list)  # what reading the sheet assumed

    def count(self, verdict: str) -> int:
        return sum(1 for g in self.entries if g.verdict == verdict)

    @property
    def exit_code(self) -> int:
        if any(g.verdict != CORRECT for g in self.entries):
            return ExitCode.WRONG_ANSWERS
        return ExitCode.OK

    def summary(self) -> str:
        return (
            f"{self.count(CORRECT)} correct, {self.count(WRONG)} wrong, "
            f"{self.count(CARRIED)} carried forward, {len(self.not_answered)} not answered"
        )


def given_of(answers: list[Answer], steps: list[StepTrace]) -> dict[int, dict[str, np.ndarray]]:
    """The given numbers per step: value name -> array of its shape, NaN = not given."""
    out: dict[int, dict[str, np.ndarray]] = {}
    for a in answers:
        shape = steps[a.step - 1].records[a.name].shape
        arr = out.setdefault(a.step, {}).setdefault(a.name, np.full(shape, np.nan))
        if a.index is None:
            arr[a.given] = a.value[a.given]
        elif not np.isnan(a.value):
            arr[a.index] = float(a.value)
    return out


def overrides_of(answers: list[Answer], step: StepTrace) -> dict[str, np.ndarray]:
    """The given numbers of step 1 as engine overrides (value name -> array, NaN = not given)."""
    return given_of([a for a in answers if a.step == 1], [step]).get(1, {})


def region(value: np.ndarray, answer: Answer) -> np.ndarray:
    """The part of a value an answer is about: the whole value, or one element."""
    return value if answer.index is None else np.asarray(value[answer.index])


def order_key(steps: list[StepTrace]) -> dict[tuple[int, str], int]:
    out = {}
    for st in steps:
        for name in st.records:
            out[(st.step, name)] = len(out)
    return out


def param_names(spec: NetworkSpec) -> set[str]:
    """<layer>.<param> for every parameter (and buffer) the network gives."""
    names = set()
    for layer in spec.all_layers:  # the layers inside blocks too
        names |= {f"{layer.name}.{p}" for p in layers_mod.build(layer).param_names}
    return names


def given_names(spec: NetworkSpec) -> set[str]:
    """The values a student copies from the network rather than computes (in step 1)."""
    return {"input", "target"} | param_names(spec)


def is_copied(a: Answer, copied: set[str]) -> bool:
    return a.name in ("input", "target") or (a.step == 1 and a.name in copied)


def grade(
    spec: NetworkSpec,
    sheet: Sheet,
    tol: Tolerance,
    exact: StepTrace | list[StepTrace],
    round_each: int | None = None,
    runner: Runner | None = None,
) -> Report:
    """Compare every answer with the correct value and with what follows from the student's
    own earlier answers; find the first wrong answer and what each ↪ rests on.
    exact: the steps as the student should write them (runner.run())."""
    steps = exact if isinstance(exact, list) else [exact]
    runner = runner or Runner(spec, len(steps), round_each)
    pos = order_key(steps)
    answers = sorted(
        sheet.answers,
        key=lambda a: (pos[(a.step, a.name)], a.index is not None, a.index or ()),
    )
    given = given_of(answers, steps)
    warnings: list[str] = []
    passes = any(a.name in ("loss_after", "dataset_loss_after") for a in answers)
    carried = runner.run(given, passes=passes) if answers else steps
    if carried is None:
        warnings.append(
            "your answers make the later values overflow, so no error is carried forward"
        )
        carried = runner.run(None, passes=passes) or steps
    copied = given_names(spec)
    own_numbers = [
        (float(v), int(d))
        for a in answers
        if not is_copied(a, copied)
        for v, d in zip(
            np.atleast_1d(a.value)[np.atleast_1d(a.given)],
            np.atleast_1d(a.decimals)[np.atleast_1d(a.given)],
            strict=True,
        )
    ]
    precision = None if tol.explicit else Precision.of(own_numbers)
    al = None
    if precision is not None and answers:
        al = allowance_mod.compute(runner, answers, given, carried, precision, param_names(spec))
        if not al.complete:
            warnings.append(
                "this sheet has too many answers to work out how far each rests on the "
                "others' rounding: each is graded to its own decimals and the steps inside it"
            )
    entries: list[Graded] = []
    solo: dict[int, list[StepTrace] | None] = {}
    for a in answers:
        rec = steps[a.step - 1].records[a.name]
        expected = region(steps[a.step - 1][a.name], a)
        follows = region(carried[a.step - 1][a.name], a)
        if al is not None:
            allow_c = al.of(a)
            allow_e = al.of(a, _wrong_numbers(entries))
        else:
            allow_e, allow_c = tol.explicit_allowance(expected), tol.explicit_allowance(follows)
        ok_exact = within(a.value, expected, allow_e)
        # a copied value (input, target, a first parameter) rests on nothing earlier
        own = is_copied(a, copied)
        ok_carried = ok_exact if own else within(a.value, follows, allow_c)
        g = Graded(
            answer=a,
            stage=rec.stage,
            formula=rec.formula,
            expected=expected,
            carried=follows,
            verdict=CORRECT,
            wrong=~ok_exact,
            order=pos[(a.step, a.name)],
            allowance=np.asarray(allow_c),
        )
        if a.transposed:
            g.verdict = WRONG
        elif ok_exact.all():
            g.verdict = CORRECT
        elif (ok_exact | ok_carried).all():
            g.rests_on = _rests_on(runner, a, ~ok_exact, entries, steps, solo)
            g.verdict = CARRIED if g.rests_on else CORRECT
        else:
            g.verdict = WRONG
        entries.append(g)
    # A recurrent layer records each of its values whole though they interleave in time (an
    # RNN's z at step 2 follows from its h at step 1): an answer that agrees only with the
    # student's own numbers may rest on a wrong answer graded after it
    for g in entries:
        if g.verdict == CORRECT and g.wrong.any() and not g.answer.transposed:
            g.rests_on = _rests_on(runner, g.answer, g.wrong, entries, steps, solo)
            if g.rests_on:
                g.verdict = CARRIED
    first = next((g for g in entries if g.verdict == WRONG), None)
    if first is not None:
        first.first_wrong = True
    answered = {(a.step, a.name) for a in answers}
    not_answered = [
        name if st.step == 1 else f"{name} (step {st.step})"
        for st in steps
        for name in st.records
        if (st.step, name) not in answered
    ]
    return Report(
        network=spec.name,
        network_file=spec.file,
        sheet_file=sheet.file,
        tolerance=tol,
        round_each=runner.round_each,
        entries=entries,
        not_answered=not_answered,
        warnings=warnings,
        steps=runner.steps,
        conventions=runner.conventions,
        precision=precision,
        notes=list(sheet.notes),
    )


def _wrong_numbers(entries: list[Graded]) -> list[tuple[int, str, tuple[int, ...]]]:
    """The written numbers graded wrong so far: (step, name, index)."""
    out = []
    for g in entries:
        if g.verdict == CORRECT:
            continue
        a = g.answer
        if a.index is not None:
            if bool(np.all(g.wrong)):
                out.append((a.step, a.name, a.index))
            continue
        for idx in np.argwhere(g.wrong & a.given):
            out.append((a.step, a.name, tuple(int(i) for i in idx)))
    return out


def _rests_on(
    runner: Runner,
    a: Answer,
    off: np.ndarray,
    earlier: list[Graded],
    steps: list[StepTrace],
    solo: dict[int, list[StepTrace] | None],
) -> list[str]:
    """The wrong earlier answers that move this answer's value where it differs from the
    correct one (each found by substituting that wrong answer alone)."""
    out = []
    for i, w in enumerate(earlier):
        if w.verdict != WRONG or (w.answer.name == a.name and w.answer.step == a.step):
            continue
        if w.answer.step > a.step:
            continue
        if i not in solo:
            solo[i] = runner.run(given_of([w.answer], steps))
        st = solo[i]
        if st is None:
            continue
        value = region(st[a.step - 1][a.name], a)
        exact = region(steps[a.step - 1][a.name], a)
        moved = np.abs(value - exact) > 0.5 * half_unit(a.decimals)
        if (moved & off).any():
            out.append(w.answer.label)
    return out


def run_step(
    spec: NetworkSpec,
    round_each: int | None,
    overrides: dict[str, np.ndarray] | None = None,
    samples: list[int] | None = None,
    **kwargs: object,
) -> StepTrace | None:
    """One step of the engine with the student's numbers substituted (None: none); None when
    they make it overflow."""
    st = Runner(spec, 1, round_each).run({1: overrides or {}}, **kwargs)  # type: ignore[arg-type]
    return None if st is None else st[0]


def agrees(answer: Answer, value: np.ndarray, tol: Tolerance) -> np.ndarray:
    """A number on its own against a value (the decimals written, the floor)."""
    return tol.agrees(answer.value, region(value, answer), answer.decimals)


__all__ = ["Given", "agrees", "grade", "given_of"]
