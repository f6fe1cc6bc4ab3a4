"""Name the slip behind a wrong answer by reproducing it.

For each usual slip, the engine reruns the step with that slip made on purpose (a modified
spec, or an engine.Substitution of other units for what no spec expresses: each unit states
its own slips) and with the student's own answers substituted, so the slip only has to
explain this one value. When the rerun gives the student's number, to the allowance the
grading used (scaled with the value), the slip is named. When it gives the number only from
the exact values and the student's right answers contradict it, both facts are said. When no
slip reproduces it, the report says so: we never guess. A right answer that a slip also
gives, within its rounding, is noted (`also_fits`). Wrong answers that another convention of
the sheet explains (δ = t − o, a velocity with η in it, a log base) get that convention.

The catalogue (each applies only where it changes something):
  half_missing / half_extra              the ½ of the squared error left out / added
  outputs_mean / outputs_sum             mean over the K outputs instead of the sum / reverse
  batch_sum / batch_mean                 sum over the batch instead of the mean / reverse
  conv_flip                              the kernel flipped (convolution vs cross-correlation)
  conv_flip_backward / conv_flip_kernel_grad   the kernel turned the wrong way in ∂L/∂x / ∂L/∂K
  dense_transposed                       a square weight matrix used transposed
  no_derivative                          an activation's derivative left out
  relu_one_at_zero / relu_flipped        ReLU′(0) taken as 1 / ReLU′ on the wrong side of 0
  sigmoid_as_sigma                       σ′ written as σ(z) instead of σ(z)(1 − σ(z))
  update_plus / update_no_lr / update_lr_twice   θ + η·g / θ − g / θ − η²·g
  adam_no_bias_correction / eps_inside_sqrt / velocity_textbook   the optimizers' own
  updated_weights_in_backprop            the new weights used to back-propagate
  log10 / log2                           cross-entropy with log base 10 or 2
  other_class                            the one-hot target read for the other class
  (and each layer unit's own: layernorm_unbiased, residual_no_skip, ...)
and, from the numbers alone: answer_transposed (a matrix written transposed) and sign.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc import activations, layers, losses
from bpcalc import optim as optim_mod
from bpcalc import regularization as reg_mod
from bpcalc.check.conventions import WORDS, option_of, yaml_of
from bpcalc.check.grade import (
    CORRECT,
    WRONG,
    Diagnosis,
    Graded,
    Report,
    given_names,
    given_of,
    grade,
    is_copied,
    region,
)
from bpcalc.check.runner import Runner
from bpcalc.check.sheet import Sheet
from bpcalc.check.tolerance import half_unit, within
from bpcalc.engine import Substitution, build_layer
from bpcalc.layers import Delegate, Layer
from bpcalc.network.types import NetworkSpec, RegSpec
from bpcalc.trace import StepTrace


@dataclass(frozen=True)
class Slip:
    key: str
    spec: NetworkSpec
    substitute: Substitution | None
    message: str


def diagnose(
    spec: NetworkSpec,
    report: Report,
    exact: StepTrace | list[StepTrace],
    runner: Runner | None = None,
    sheet: Sheet | None = None,
) -> Report:
    """The report with `diagnoses` for every ✗ answer and, for right answers, the slips they
    are also within rounding of (the report given is left as it is)."""
    steps = exact if isinstance(exact, list) else [exact]
    runner = runner or Runner(spec, len(steps), report.round_each, report.conventions)
    answers = [g.answer for g in report.entries]
    if not answers:
        return report
    given = given_of(answers, steps)
    wrong = [g for g in report.entries if g.verdict == WRONG]
    right = [g for g in report.entries if g.verdict == CORRECT]
    copied = given_names(spec)
    found: dict[int, list[Diagnosis]] = {id(g): [] for g in wrong}
    against: dict[int, list[Diagnosis]] = {id(g): [] for g in wrong}
    fits: dict[int, list[Diagnosis]] = {id(g): [] for g in right}
    n = len(steps[0].samples) if steps[0].samples is not None else int(spec.inputs.shape[0])
    for slip in slips(spec, n):
        slipped = dataclasses.replace(runner, spec=slip.spec)
        # with the student's own earlier numbers substituted...
        carried = slipped.run(given, substitute=slip.substitute)
        # ...and from the exact ones (students often keep more digits than they write down);
        # this one only counts when it agrees with every right answer before the value
        clean = slipped.run(None, substitute=slip.substitute) if wrong else None
        for g in wrong:
            if g.answer.transposed:
                continue
            own = is_copied(g.answer, copied)  # substituted as given: only the clean run says
            if carried is not None and not own and _reproduces(g, carried):
                found[id(g)].append(Diagnosis(slip.key, slip.message))
            elif clean is not None and _reproduces(g, clean):
                off = [r.answer.label for r in right if before(r, g) and not _reproduces(r, clean)]
                if not off:
                    found[id(g)].append(Diagnosis(slip.key, slip.message))
                else:
                    against[id(g)].append(_contradicted(slip, g, off))
        if carried is not None:
            for g in right:
                if not is_copied(g.answer, copied) and _also_fits(g, carried):
                    fits[id(g)].append(Diagnosis(slip.key, slip.message))
    entries = []
    for g in report.entries:
        if g.verdict == WRONG:
            named = _from_numbers(g) + found[id(g)]
            if not named:
                named = against[id(g)]
            if not named:
                named = [
                    Diagnosis(
                        "none",
                        "None of the usual slips gives your number; recompute it step by step "
                        f"from {g.formula}",
                    )
                ]
            g = dataclasses.replace(g, diagnoses=named)
        elif g.verdict == CORRECT and fits[id(g)]:
            g = dataclasses.replace(g, also_fits=fits[id(g)])
        entries.append(g)
    out = dataclasses.replace(report, entries=entries)
    if wrong and sheet is not None:
        out = _conventions(spec, out, runner, sheet)
    return out


def before(a: Graded, b: Graded) -> bool:
    """Does a come before b in computation order? (report entries are in that order)"""
    return a.order < b.order


def _value(g: Graded, st: list[StepTrace]) -> np.ndarray | None:
    """The slip's value of the answer; None when the rerun does not have it (a unit that
    records less, such as an RNN back-propagating through updated weights)."""
    trace = st[g.answer.step - 1]
    if g.answer.name not in trace:
        return None
    return region(trace[g.answer.name], g.answer)


def _reproduces(g: Graded, st: list[StepTrace]) -> bool:
    """The slip's value is the answer, to the answer's allowance scaled as the value is (a
    slip that doubles a value doubles the rounding it carries too)."""
    value = _value(g, st)
    if value is None:
        return False
    ref = np.abs(g.carried)
    ratio = np.where(ref > 0, np.abs(value) / np.where(ref > 0, ref, 1.0), 1.0)
    allowance = g.allowance * np.clip(ratio, 1.0, 100.0)
    return bool(within(g.answer.value, value, allowance).all())


def _also_fits(g: Graded, st: list[StepTrace]) -> bool:
    """The right answer is within rounding of this slip's value too, and the slip moves the
    value by more than the answer's last decimal: the numbers cannot tell them apart."""
    value = _value(g, st)
    if value is None:
        return False
    a = g.answer
    shown = np.abs(value - g.carried) > half_unit(a.decimals)
    return bool(within(a.value, value, g.allowance).all() and (shown & a.given).any())


def _contradicted(slip: Slip, g: Graded, off: list[str]) -> Diagnosis:
    listed = ", ".join(off[:6]) + (" ..." if len(off) > 6 else "")
    verb = "is" if len(off) == 1 else "are"
    return Diagnosis(
        slip.key,
        f"Your number matches this slip: {slip.message} But your own {listed} {verb} right, "
        f"which that slip would have changed: work {g.answer.label} out again from your own "
        "answers.",
        tuple(off),
    )


def _conventions(spec: NetworkSpec, report: Report, runner: Runner, sheet: Sheet) -> Report:
    """Wrong answers that are right in another convention (δ = t − o, a velocity with η in
    it, a log base) get that convention as their diagnosis, never "you added the step"."""
    best: tuple[int, str, str, Report] | None = None
    exact_steps = None
    for key, value, conv in report.conventions.alternatives(spec):
        alt = dataclasses.replace(runner, conventions=conv)
        exact_steps = alt.run(None)
        if exact_steps is None:
            continue
        other = grade(spec, sheet, report.tolerance, exact_steps, runner=alt)
        pairs = list(zip(report.entries, other.entries, strict=True))
        cleared = sum(1 for g, h in pairs if g.verdict == WRONG and h.verdict != WRONG)
        # the other convention must explain wrong answers and contradict no right one
        # (θ + η·g after right gradients is "you added the step", not δ = t − o)
        contradicts = any(g.verdict != WRONG and h.verdict == WRONG for g, h in pairs)
        if cleared and not contradicts and (best is None or cleared > best[0]):
            best = (cleared, key, value, other)
    if best is None:
        return report
    _, key, value, other = best
    message = (
        f"Your numbers follow another convention: {WORDS[(key, value)]}. Add "
        f"`{yaml_of(key, value)}` to the sheet (or {option_of(key, value)}) to grade them in it."
    )
    # what the convention explains replaces "none" and, for δ = t − o, "you added the step"
    drop = {"none", "update_plus"} if key == "delta" else {"none"}
    entries = []
    for g, h in zip(report.entries, other.entries, strict=True):
        if g.verdict == WRONG and h.verdict != WRONG:
            kept = [d for d in g.diagnoses if d.slip not in drop]
            g = dataclasses.replace(g, diagnoses=[*kept, Diagnosis(f"convention_{key}", message)])
        entries.append(g)
    return dataclasses.replace(report, entries=entries)


def _from_numbers(g: Graded) -> list[Diagnosis]:
    a = g.answer
    name = a.name
    out = []
    allow = g.allowance
    if a.transposed:
        rows, cols = g.expected.shape
        fits = bool(within(a.value, g.expected, allow).all())
        out.append(
            Diagnosis(
                "answer_transposed",
                f"You wrote {name} as a {cols} x {rows} matrix; it is {rows} x {cols}"
                + (
                    " (a gradient has the shape of its parameter)"
                    if name.startswith("grad.")
                    else ""
                )
                + (
                    ": transposed back, your numbers are right."
                    if fits
                    else ". Transposed back, your numbers are still not right."
                ),
            )
        )
        return out
    v = a.value
    if v.ndim == 2 and v.shape[0] == v.shape[1] and v.shape[0] > 1:
        e = g.expected
        allow_t = allow.T if np.ndim(allow) == 2 else allow
        if not np.allclose(e, e.T) and within(v.T, e, allow_t).all():
            out.append(
                Diagnosis(
                    "answer_transposed",
                    f"Your {name} is the right matrix transposed (rows and columns swapped).",
                )
            )
    for ref in (g.carried, g.expected):
        if np.abs(ref[a.given]).max(initial=0.0) > 0 and within(-v, ref, allow).all():
            out.append(
                Diagnosis(
                    "sign",
                    "Your number has the right size but the wrong sign (+ and − swapped).",
                )
            )
            break
    return out


def slips(spec: NetworkSpec, n: int = 1) -> list[Slip]:
    """Every slip of the catalogue that can apply to this network (n: samples in the step)."""
    out: list[Slip] = []
    out += _loss_slips(spec, n)
    out += _layer_slips(spec)
    out += _update_slips(spec)
    return out


def _with_loss(spec: NetworkSpec, **changes: str) -> NetworkSpec:
    return dataclasses.replace(spec, loss=dataclasses.replace(spec.loss, **changes))


def _loss_slips(spec: NetworkSpec, n: int) -> list[Slip]:
    loss = losses.get(spec.loss.kind)
    # the outputs one loss sums or averages over: a sample's, or one position's of a sequence
    k = spec.output_shape[-1] if spec.loss.positions else int(np.prod(spec.output_shape))
    out = [
        Slip(slip.key, _with_loss(spec, kind=slip.instead), None, slip.message)
        for slip in loss.slips(k)
    ]
    if n > 1:
        if spec.loss.reduction == "mean":
            out.append(
                Slip(
                    "batch_sum",
                    _with_loss(spec, reduction="sum"),
                    None,
                    f"You summed over the {n} samples of the batch where the loss (and so "
                    f"every gradient) is averaged: divide by {n}.",
                )
            )
        else:
            out.append(
                Slip(
                    "batch_mean",
                    _with_loss(spec, reduction="mean"),
                    None,
                    f"You averaged over the {n} samples of the batch (divided by {n}), but "
                    "this network's loss is the sum over the batch.",
                )
            )
    t = spec.output_shape[0] if spec.loss.positions else 1
    if t > 1:
        other = "sum" if spec.loss.positions == "mean" else "mean"
        out.append(
            Slip(
                f"positions_{other}",
                _with_loss(spec, positions=other),
                None,
                f"You summed the losses of the {t} positions where this loss averages them: "
                f"divide by T = {t} (and so does every gradient)."
                if other == "sum"
                else f"You averaged the losses of the {t} positions (divided by {t}), but this "
                "loss is their sum over the positions.",
            )
        )
    if loss.log_based:
        for base, label in ((10.0, "log10"), (2.0, "log2")):
            out.append(
                Slip(
                    label,
                    spec,
                    Substitution(loss_factor=1.0 / math.log(base)),
                    f"You used log base {base:g} ({label}) in the cross-entropy; it uses the "
                    "natural logarithm ln (base e).",
                )
            )
        other = _other_class(spec)
        if other is not None:
            out.append(other)
    return out


def _other_class(spec: NetworkSpec) -> Slip | None:
    y = spec.targets
    if spec.loss.kind == "binary_cross_entropy":
        flipped = dataclasses.replace(spec, targets=1.0 - y)
        return Slip(
            "other_class",
            flipped,
            None,
            "You used the target of the other class (y and 1 − y swapped).",
        )
    # one target per row: per sample, or per position of a sequence
    k = spec.output_shape[-1] if spec.loss.positions else int(np.prod(spec.output_shape))
    flat = y.reshape(-1, k)
    if k == 2:
        swapped = flat[:, ::-1].reshape(y.shape)
        return Slip(
            "other_class",
            dataclasses.replace(spec, targets=swapped),
            None,
            "You read the one-hot target for the other class: "
            + _target_words(spec)
            + "; the slip swaps the two entries.",
        )
    if spec.target_classes is not None and k > 2:
        shifted = np.roll(flat, -1, axis=1).reshape(y.shape)
        return Slip(
            "other_class",
            dataclasses.replace(spec, targets=shifted),
            None,
            "You read the one-hot target one class off (class c as c − 1, counting from 1?): "
            + _target_words(spec)
            + ".",
        )
    return None


def _target_words(spec: NetworkSpec) -> str:
    if spec.target_classes is not None:
        cls = ", ".join(str(int(c)) for c in spec.target_classes.reshape(-1))
        k = spec.output_shape[-1] if spec.loss.positions else int(np.prod(spec.output_shape))
        onehot = "; ".join(
            "[" + ", ".join(f"{v:g}" for v in row) + "]" for row in spec.targets.reshape(-1, k)
        )
        return f"the target is class {cls}, counting from 0, i.e. one-hot {onehot}"
    return "the 1 of the one-hot target marks the correct class"


def _layer_slips(spec: NetworkSpec) -> list[Slip]:
    out = []
    kinds: dict[str, list[tuple[str, activations.Activation]]] = {}
    for layer in spec.all_layers:  # the layers inside blocks too
        name = layer.name
        for slip in layers.build(layer).slips():
            if slip.unit is not None:
                out.append(Slip(slip.key, spec, Substitution(ops={name: slip.unit}), slip.message))
            else:
                out.append(Slip(slip.key, spec.with_layer(slip.layer), None, slip.message))
        act = layer.activation
        if act is not None:
            unit = act.unit()
            kinds.setdefault(act.kind, []).append((name, unit))
            fused = spec.loss.kind == "cross_entropy" and layer is spec.layers[-1]
            out.append(
                Slip(
                    "no_derivative",
                    spec,
                    Substitution(activations={name: unit.without_derivative()}),
                    unit.no_derivative_message(name, fused),
                )
            )
    # A slip in an activation's derivative is made wherever that activation is used.
    for used in kinds.values():
        for key, _, message in used[0][1].slips(used[0][0]):
            substitute = {
                name: next(u for k, u, _ in unit.slips(name) if k == key) for name, unit in used
            }
            out.append(Slip(key, spec, Substitution(activations=substitute), message))
    return out


def _update_slips(spec: NetworkSpec) -> list[Slip]:
    lr = spec.optimizer.lr
    opt = spec.optimizer

    def with_lr(v: float) -> NetworkSpec:
        return dataclasses.replace(spec, optimizer=dataclasses.replace(opt, lr=v))

    sgd = opt.type == "sgd"
    formula = optim_mod.build(opt).formula
    rule = formula if sgd else f"{opt.type}'s {formula}"
    out = [
        Slip(
            "update_plus",
            with_lr(-lr),
            None,
            f"You added the step instead of subtracting it: {rule} "
            "(gradient descent goes against the gradient).",
        )
    ]
    if lr != 1:
        out.append(
            Slip(
                "update_no_lr",
                with_lr(1.0),
                None,
                f"You left out the learning rate: {rule} with η = {lr:g}.",
            )
        )
        out.append(
            Slip(
                "update_lr_twice",
                with_lr(lr * lr),
                None,
                f"You applied the learning rate twice (η² = {lr * lr:g}); multiply by "
                f"η = {lr:g} once: {rule}.",
            )
        )
    for oslip in optim_mod.build(spec.optimizer).slips():
        out.append(Slip(oslip.key, spec, Substitution(optimizer=oslip.optimizer), oslip.message))
    parametric = [s for s in spec.all_layers if layers.build(s).parametric]
    if parametric:
        opt = optim_mod.build(spec.optimizer)
        ops = {
            s.name: ThroughUpdated(
                build_layer(s).op, opt, s.freeze, spec.regularization.get(s.name)
            )
            for s in parametric
        }
        out.append(
            Slip(
                "updated_weights_in_backprop",
                spec,
                Substitution(ops=ops),
                "You back-propagated through weights you had already updated. ∂L/∂x of a "
                "layer uses the weights of the forward pass; update all weights only after "
                "the whole backward pass.",
            )
        )
    return out


class ThroughUpdated(Delegate):
    """A layer unit that makes the slip of back-propagating ∂L/∂x through the parameters
    after their first update (θ′ from the optimizer, with any penalty in the gradient),
    instead of those the forward pass used. Its parameter gradients are the right ones."""

    def __init__(
        self,
        inner: Layer,
        optimizer: optim_mod.Optimizer,
        frozen: frozenset[str],
        reg: RegSpec | None,
    ) -> None:
        super().__init__(inner)
        self.optimizer = optimizer
        self.frozen = frozen
        self.reg = reg

    def backward(
        self, dz: np.ndarray, cache: Any, params: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        _, grads = self.inner.backward(dz, cache, params)
        opt = self.optimizer
        through = {}
        for k, v in params.items():
            if k in self.frozen or k not in grads:
                through[k] = v
                continue
            g = grads[k]
            if reg_mod.applies(self.reg, k):
                g = g + reg_mod.grad(self.reg, v)
            through[k] = opt.update(v, g, opt.init_state(v), 1)[0]
        dx, _ = self.inner.backward(dz, cache, through)
        return dx, grads
