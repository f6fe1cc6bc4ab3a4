"""Grade an answer sheet: right (✓), wrong (✗), or carried forward (↪).

Three runs of the engine decide it:
  exact    the step as bpcalc computes it (with --round-each, rounded as on paper);
  carried  the same step with every given answer substituted for the computed value
           (engine overrides), so each value follows from the student's own earlier numbers;
  solo(W)  for each wrong answer W, the step with only W substituted: which values move
           when W is wrong, i.e. which later answers rest on it.

An answer is ✓ when it agrees with `exact`; ↪ when it does not but agrees with `carried` and
some wrong earlier answer moves it (the error was carried forward, as teachers grade); ✓ also
when it agrees with `carried` and only moves with the student's own rounding of right
earlier answers; ✗ otherwise. Elements of one answer are judged together: one wrong element
makes the answer ✗.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from bpcalc import engine
from bpcalc import layers as layers_mod
from bpcalc.check.sheet import Answer, Sheet
from bpcalc.check.tolerance import Tolerance
from bpcalc.errors import BpcalcError, ExitCode
from bpcalc.network.types import NetworkSpec
from bpcalc.trace import StepTrace

CORRECT, WRONG, CARRIED = "correct", "wrong", "carried_forward"
SYMBOLS = {CORRECT: "✓", WRONG: "✗", CARRIED: "↪"}


@dataclass(frozen=True)
class Diagnosis:
    slip: str  # a stable key for scripts: "half_missing", "conv_flip", "none", ...
    message: str  # in words a student understands


@dataclass
class Graded:
    answer: Answer
    stage: str
    formula: str
    expected: np.ndarray  # the correct value, in the answer's shape
    carried: np.ndarray  # the value that follows from the student's own earlier answers
    verdict: str
    wrong: np.ndarray  # bool, the elements that disagree with `expected`
    rests_on: list[str] = field(default_factory=list)  # refs of the wrong answers it follows
    diagnoses: list[Diagnosis] = field(default_factory=list)
    first_wrong: bool = False
    order: int = 0  # the value's position in computation order

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


def overrides_of(answers: list[Answer], step: StepTrace) -> dict[str, np.ndarray]:
    """The given numbers as engine overrides: value name -> array of its shape, NaN = not given."""
    out: dict[str, np.ndarray] = {}
    for a in answers:
        arr = out.setdefault(a.name, np.full(step.records[a.name].shape, np.nan))
        if a.index is None:
            arr[a.given] = a.value[a.given]
        elif not np.isnan(a.value):
            arr[a.index] = float(a.value)
    return out


def region(value: np.ndarray, answer: Answer) -> np.ndarray:
    """The part of a value an answer is about: the whole value, or one element."""
    return value if answer.index is None else np.asarray(value[answer.index])


def agrees(answer: Answer, value: np.ndarray, tol: Tolerance) -> np.ndarray:
    return tol.agrees(answer.value, region(value, answer), answer.decimals)


def order_key(step: StepTrace) -> dict[str, int]:
    return {name: i for i, name in enumerate(step.records)}


def given_names(spec: NetworkSpec) -> set[str]:
    """The values a student copies from the network rather than computes."""
    names = {"input", "target"}
    for layer in spec.all_layers:
        names |= {f"{layer.name}.{p}" for p in layers_mod.build(layer).param_names}
    return names


def _merged(
    original: np.ndarray, given: np.ndarray, samples: list[int] | None = None
) -> np.ndarray:
    """The student's copy where they gave one (same elements, shown shape), else the original.
    samples: the rows of a dataset the step used (a mini-batch), when only those were shown."""
    if samples is not None and len(samples) != original.shape[0]:
        out = np.array(original, dtype=np.float64)
        out[samples] = _merged(out[samples], given)
        return out
    g = np.asarray(given, dtype=np.float64).reshape(original.shape)
    return np.where(np.isnan(g), original, g)


def with_given(
    spec: NetworkSpec, overrides: dict[str, np.ndarray], samples: list[int] | None = None
) -> tuple[NetworkSpec, dict[str, np.ndarray]]:
    """Put the student's copies of the input, target and parameters into the spec itself, so
    that the backward pass and the update use them too (an engine override only reaches the
    forward pass); returns the new spec and the remaining overrides."""
    rest = dict(overrides)
    changes: dict[str, object] = {}
    if "input" in rest:
        changes["inputs"] = _merged(spec.inputs, rest.pop("input"), samples)
    if "target" in rest:
        changes["targets"] = _merged(spec.targets, rest.pop("target"), samples)
    new = dataclasses.replace(spec, **changes) if changes else spec  # type: ignore[arg-type]
    for layer in spec.all_layers:  # the layers inside blocks too
        params = {
            p: _merged(layer.params[p], rest.pop(f"{layer.name}.{p}"))
            for p in layers_mod.build(layer).param_names
            if f"{layer.name}.{p}" in rest
        }
        if params:
            new = new.with_layer(dataclasses.replace(layer, **params))  # type: ignore[arg-type]
    return new, rest


def run_step(
    spec: NetworkSpec,
    round_each: int | None,
    overrides: dict[str, np.ndarray] | None = None,
    samples: list[int] | None = None,
    **kwargs: object,
) -> StepTrace | None:
    """One step of the engine with the student's numbers substituted (None: none); None when
    they make it overflow. samples: the dataset rows of the step (StepTrace.samples)."""
    if overrides:
        spec, overrides = with_given(spec, overrides, samples)
    try:
        return engine.run(spec, round_each=round_each, overrides=overrides, **kwargs).steps[0]  # type: ignore[arg-type]
    except (BpcalcError, ArithmeticError, ValueError):
        return None


def grade(
    spec: NetworkSpec,
    sheet: Sheet,
    tol: Tolerance,
    exact: StepTrace,
    round_each: int | None = None,
) -> Report:
    """Compare every answer with the correct value and with what follows from the student's
    own earlier answers; find the first wrong answer and what each ↪ rests on."""
    pos = order_key(exact)
    answers = sorted(sheet.answers, key=lambda a: (pos[a.name], a.index is not None, a.index or ()))
    overrides = overrides_of(answers, exact)
    warnings: list[str] = []
    carried = run_step(spec, round_each, overrides, exact.samples)
    if carried is None:
        warnings.append(
            "your answers make the later values overflow, so no error is carried forward"
        )
        carried = exact
    entries: list[Graded] = []
    solo: dict[int, StepTrace] = {}
    copied = given_names(spec)
    for a in answers:
        rec = exact.records[a.name]
        ok_exact = agrees(a, exact[a.name], tol)
        # a copied value (input, target, a parameter) rests on nothing earlier
        ok_carried = ok_exact if a.name in copied else agrees(a, carried[a.name], tol)
        g = Graded(
            answer=a,
            stage=rec.stage,
            formula=rec.formula,
            expected=region(exact[a.name], a),
            carried=region(carried[a.name], a),
            verdict=CORRECT,
            wrong=~ok_exact,
            order=pos[a.name],
        )
        if a.transposed:
            g.verdict = WRONG
        elif ok_exact.all():
            g.verdict = CORRECT
        elif (ok_exact | ok_carried).all():
            g.rests_on = _rests_on(spec, a, ~ok_exact, entries, exact, solo, tol, round_each)
            g.verdict = CARRIED if g.rests_on else CORRECT
        else:
            g.verdict = WRONG
        entries.append(g)
    # A recurrent layer records each of its values whole though they interleave in time (an
    # RNN's z at step 2 follows from its h at step 1): an answer that agrees only with the
    # student's own numbers may rest on a wrong answer graded after it
    for g in entries:
        if g.verdict == CORRECT and g.wrong.any() and not g.answer.transposed:
            g.rests_on = _rests_on(spec, g.answer, g.wrong, entries, exact, solo, tol, round_each)
            if g.rests_on:
                g.verdict = CARRIED
    first = next((g for g in entries if g.verdict == WRONG), None)
    if first is not None:
        first.first_wrong = True
    answered = {a.name for a in answers}
    not_answered = [n for n in exact.records if n not in answered]
    return Report(
        network=spec.name,
        network_file=spec.file,
        sheet_file=sheet.file,
        tolerance=tol,
        round_each=round_each,
        entries=entries,
        not_answered=not_answered,
        warnings=warnings,
    )


def _rests_on(
    spec: NetworkSpec,
    a: Answer,
    off: np.ndarray,
    earlier: list[Graded],
    exact: StepTrace,
    solo: dict[int, StepTrace],
    tol: Tolerance,
    round_each: int | None,
) -> list[str]:
    """The wrong earlier answers that move this answer's value where it differs from the
    correct one (each found by substituting that wrong answer alone)."""
    out = []
    for i, w in enumerate(earlier):
        if w.verdict != WRONG or w.answer.name == a.name:
            continue
        if i not in solo:
            st = run_step(spec, round_each, overrides_of([w.answer], exact), exact.samples)
            if st is None:
                continue
            solo[i] = st
        moved = ~tol.agrees(region(solo[i][a.name], a), region(exact[a.name], a), a.decimals)
        if (moved & off).any():
            out.append(w.answer.ref)
    return out
