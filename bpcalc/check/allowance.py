"""The rounding allowance of every answer (the rule is in bpcalc/check/tolerance.py).

  allowance(v) = ½·10^(−d(v)) + Σ_u |∂v/∂u|·r(u) + Σ_s |∂v/∂s|·½·10^(−d(v))

The partial derivatives ∂v/∂u of each value v with respect to each number u the student wrote
come from the engine itself, by finite perturbation: the step is rerun (engine.run with the
student's numbers as overrides) with one written number moved by a small h, and every value
that follows from it moves by ∂v/∂u·h. One run per written number gives a column of the
Jacobian for every value at once, and |∂v/∂u| is taken element by element, so an error in u
can never be cancelled by another (a Jacobian-vector product of the absolute Jacobian with
the radii r(u): a bound, to first order, on how far v can move when every u moves within its
rounding). For loss_after the same is done for every value of the forward pass after the
update (recorded for the checker as after:fc.z, ...), whose rounding is a sub-step of
loss_after. The sub-steps inside each formula (∂v/∂s) are the units' own, exact
(bpcalc/check/inside.py).

Worked example (a 3-2-2 network, 3 decimals; the output pre-activations written 0.428 and
0.185, the softmax output p₀ written 0.561): from the student's own numbers
p₀ = e^0.428/(e^0.428 + e^0.185) = 0.560453. The written z's add |∂p₀/∂z₀|·0.0005 +
|∂p₀/∂z₁|·0.0005 = 2·p₀p₁·0.0005 = 0.000246 (∂p₀/∂z₀ = p₀p₁ = 0.2463 = −∂p₀/∂z₁). The
sub-steps e^0.428 = 1.534186 and e^0.185 = 1.203218, rounded to 1.534 and 1.203, are off
by 0.000186 and 0.000218; through ∂p₀/∂e₀ = p₁/S and ∂p₀/∂e₁ = −p₀/S (S = 2.7374, the
student's p₀ = 0.561) they add 0.000075. With the answer's own 0.0005 the allowance is
0.000821, and |0.561 − 0.560453| = 0.000547 is inside it: ↪, carried forward from the slip
in z₁. Under the old ±½-in-the-last-decimal rule it was ✗.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from bpcalc.check import inside
from bpcalc.check.runner import Given, Runner
from bpcalc.check.sheet import Answer
from bpcalc.check.tolerance import Precision, first_digit, half_unit
from bpcalc.substeps import Radius
from bpcalc.trace import StepTrace

Key = tuple[int, str]
Element = tuple[int, str, tuple[int, ...]]  # (step, name, index) of one written number
MAX_RUNS = 4000  # perturbation runs per sheet; beyond, the written answers' terms are left out


@dataclass
class Allowance:
    """The allowance of each (step, value) element-wise in the value's shape, and its parts
    (for the report): own, rests_on (Σ_u), inside (Σ_s)."""

    own: dict[Key, np.ndarray] = field(default_factory=dict)
    inside: dict[Key, np.ndarray] = field(default_factory=dict)
    floor: dict[Key, np.ndarray] = field(default_factory=dict)
    # written number (step, name, index) -> value -> |∂v/∂u|·r(u)
    rests_on: dict[Element, dict[Key, np.ndarray]] = field(default_factory=dict)
    complete: bool = True  # False when the sheet was too large to perturb every answer

    def of(self, a: Answer, without: Iterable[Element] = ()) -> np.ndarray:
        """The allowance of an answer, in the answer's shape (one element or the whole);
        without: written numbers whose rounding does not count (wrong ones, when the answer
        is compared with the correct value rather than with what follows from them)."""
        key = (a.step, a.name)
        total = self.own[key] + self.inside.get(key, 0.0)
        skip = set(without)
        for u, moved in self.rests_on.items():
            if u not in skip and key in moved:
                total = total + moved[key]
        total = np.minimum(total, self.floor[key])
        return total if a.index is None else np.asarray(total[a.index])


def copied(name: str, step: int, param_names: set[str]) -> bool:
    """A number copied from the network (input, target, the first step's parameters): the
    student did not round it."""
    return name in ("input", "target") or (step == 1 and name in param_names)


def compute(
    runner: Runner,
    answers: list[Answer],
    given: Given,
    carried: list[StepTrace],
    precision: Precision,
    param_names: set[str],
) -> Allowance:
    al = Allowance()
    decimals: dict[Key, np.ndarray] = {}
    for a in answers:
        key = (a.step, a.name)
        shape = carried[a.step - 1].records[a.name].shape
        d = decimals.setdefault(key, np.full(shape, precision.decimals, dtype=np.int64))
        if a.index is None:
            d[a.given] = a.decimals[a.given]
        else:
            d[a.index] = int(a.decimals)
    for key, d in decimals.items():
        value = carried[key[0] - 1][key[1]]
        al.own[key] = half_unit(d)
        fewer = d < precision.decimals
        al.floor[key] = np.where(fewer, first_digit(value), np.inf)
    wanted = set(decimals)
    after = {k: key for key in wanted for k in [key[0]] if key[1] == "loss_after"}
    dataset = {k: key for key in wanted for k in [key[0]] if key[1] == "dataset_loss_after"}

    def radius_of(k: int, name: str) -> Radius | None:
        key = (k, name)
        if name.startswith("after:") and k in after:
            key = after[k]
        elif name.startswith("dataset:") and k in dataset:
            key = dataset[k]
        if key not in decimals:
            return None
        return precision.radius(int(decimals[key].max()))

    subs = inside.substeps(runner, carried, radius_of, given)
    for key in wanted:
        if key in subs:
            al.inside[key] = subs[key]
    passes = any(name in ("loss_after", "dataset_loss_after") for _, name in wanted)
    written = [
        (k, name, idx, float(v[idx]), int(decimals[(k, name)][idx]))
        for k, values in given.items()
        for name, v in values.items()
        if not copied(name, k, param_names)
        for idx in np.ndindex(*np.shape(v))
        if not np.isnan(v[idx])
    ]
    if len(written) > MAX_RUNS:
        al.complete = False
        written = []
    for k, name, idx, value, d in written:
        r = float(precision.given(np.asarray(value), np.asarray(d)))
        moved = _moved(runner, given, carried, k, name, idx, value, passes, wanted)
        al.rests_on[(k, name, tuple(int(i) for i in idx))] = {
            key: np.abs(dv) * r for key, dv in moved.items()
        }
    for key in wanted:
        if key[1] in ("loss_after", "dataset_loss_after"):
            r = precision.radius(int(decimals[key].max()))
            extra = _after_pass(runner, given, carried, key, r, subs)
            al.inside[key] = al.inside.get(key, 0.0) + extra
    return al


def _moved(
    runner: Runner,
    given: Given,
    carried: list[StepTrace],
    k: int,
    name: str,
    idx: tuple[int, ...],
    value: float,
    passes: bool,
    wanted: Iterable[Key],
) -> dict[Key, np.ndarray]:
    """∂v/∂u for the written number u = (step k, name, idx) and every wanted value v."""
    h = 1e-7 * max(1.0, abs(value))
    moved_given = {s: dict(v) for s, v in given.items()}
    arr = np.array(moved_given[k][name], dtype=np.float64)
    arr[idx] = value + h
    moved_given[k][name] = arr
    st = runner.run(moved_given, passes=passes)
    if st is None:
        return {}
    out = {}
    for key in wanted:
        j, v = key
        if j < k:
            continue
        out[key] = (st[j - 1][v] - carried[j - 1][v]) / h
    return out


def _after_pass(
    runner: Runner,
    given: Given,
    carried: list[StepTrace],
    key: Key,
    radius: Radius,
    subs: dict[Key, np.ndarray],
) -> np.ndarray:
    """Σ_w |∂L/∂w|·(the rounding of w and of w's sub-steps) over the values w of the forward
    pass after the update (or over the dataset), each unwritten and rounded by the student."""
    k, name = key
    prefix = "after:" if name == "loss_after" else "dataset:"
    st = carried[k - 1]
    base = float(st[name])
    total = 0.0
    params = {f"{prefix}{n}" for n in _param_records(st)}
    for hname, rec in st.hidden.items():
        if not hname.startswith(prefix) or hname in params:
            continue
        own = radius(rec.value)
        inner = subs.get((k, hname))
        for idx in np.ndindex(*rec.shape):
            w = float(rec.value[idx])
            r = float(own[idx]) + (float(inner[idx]) if inner is not None else 0.0)
            if r == 0:
                continue
            h = 1e-7 * max(1.0, abs(w))
            arr = np.full(rec.shape, np.nan)
            arr[idx] = w + h
            moved = {s: dict(v) for s, v in given.items()}
            moved[k] = {**moved.get(k, {}), hname: arr}
            run = runner.run(moved, passes=True, steps=k)
            if run is None:
                continue
            total += abs(float(run[k - 1][name]) - base) / h * r
    return np.asarray(total)


def _param_records(st: StepTrace) -> set[str]:
    """The parameters the pass after the update starts from (new.* values, not its own)."""
    return {n.removeprefix("new.") for n in st.records if n.startswith("new.")}
