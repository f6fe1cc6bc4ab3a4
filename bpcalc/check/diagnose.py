"""Name the slip behind a wrong answer by reproducing it.

For each usual slip, the engine reruns the step with that slip made on purpose (a modified
spec, or an engine.Substitution of other units for what no spec expresses) and with the student's own
answers substituted, so the slip only has to explain this one value. When the rerun gives
the student's number, to the same tolerance the grading used, the slip is named. When no
slip reproduces it, the report says so: we never guess.

The catalogue (each applies only where it changes something):
  half_missing / half_extra              the ½ of the squared error left out / added
  outputs_mean / outputs_sum             mean over the K outputs instead of the sum / reverse
  batch_sum / batch_mean                 sum over the batch instead of the mean / reverse
  conv_flip                              the kernel flipped (convolution vs cross-correlation)
  dense_transposed                       a square weight matrix used transposed
  no_derivative                          an activation's derivative left out
  relu_one_at_zero / relu_flipped        ReLU′(0) taken as 1 / ReLU′ on the wrong side of 0
  sigmoid_as_sigma                       σ′ written as σ(z) instead of σ(z)(1 − σ(z))
  update_plus / update_no_lr / update_lr_twice   θ + η·g / θ − g / θ − η²·g
  updated_weights_in_backprop            the new weights used to back-propagate
  log10 / log2                           cross-entropy with log base 10 or 2
  other_class                            the one-hot target read for the other class
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
from bpcalc.check.grade import (
    CORRECT,
    WRONG,
    Diagnosis,
    Graded,
    Report,
    agrees,
    given_names,
    overrides_of,
    run_step,
)
from bpcalc.check.sheet import Answer
from bpcalc.check.tolerance import Tolerance
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


def diagnose(spec: NetworkSpec, report: Report, exact: StepTrace) -> Report:
    """The report with `diagnoses` for every ✗ answer (the report given is left as it is)."""
    wrong = [g for g in report.entries if g.verdict == WRONG]
    if not wrong:
        return report
    answers = [g.answer for g in report.entries]
    overrides = overrides_of(answers, exact)
    tol = report.tolerance
    found: dict[int, list[Diagnosis]] = {id(g): [] for g in wrong}
    right = [g for g in report.entries if g.verdict == CORRECT]
    copied = given_names(spec)
    n = len(exact.samples) if exact.samples is not None else int(spec.inputs.shape[0])
    for slip in slips(spec, n):
        # with the student's own earlier numbers substituted...
        carried = run_step(
            slip.spec, report.round_each, overrides, exact.samples, substitute=slip.substitute
        )
        # ...and from the exact ones (students often keep more digits than they write down);
        # this one only counts when it agrees with every right answer before the value
        clean = run_step(slip.spec, report.round_each, None, substitute=slip.substitute)
        for g in wrong:
            if g.answer.transposed:
                continue
            own = g.answer.name in copied  # substituted as given: only the clean run says
            if (carried is not None and not own and _reproduces(g.answer, carried, tol)) or (
                clean is not None
                and _reproduces(g.answer, clean, tol)
                and all(_reproduces(r.answer, clean, tol) for r in right if before(r, g))
            ):
                found[id(g)].append(Diagnosis(slip.key, slip.message))
    entries = []
    for g in report.entries:
        if g.verdict == WRONG:
            named = _from_numbers(g, tol) + found[id(g)]
            if not named:
                named = [
                    Diagnosis(
                        "none",
                        "None of the usual slips gives your number; recompute it step by step "
                        f"from {g.formula}",
                    )
                ]
            g = dataclasses.replace(g, diagnoses=named)
        entries.append(g)
    return dataclasses.replace(report, entries=entries)


def before(a: Graded, b: Graded) -> bool:
    """Does a come before b in computation order? (report entries are in that order)"""
    return a.order < b.order


def _reproduces(a: Answer, st: StepTrace, tol: Tolerance) -> bool:
    """A slip's rerun gives the answer (a rerun through a unit that records less, such as an
    RNN back-propagating through updated weights, does not have every value)."""
    return a.name in st and bool(agrees(a, st[a.name], tol).all())


def _from_numbers(g: Graded, tol: Tolerance) -> list[Diagnosis]:
    a = g.answer
    name = a.name
    out = []
    if a.transposed:
        rows, cols = g.expected.shape
        fits = bool(tol.agrees(a.value, g.expected, a.decimals).all())
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
        if not np.allclose(e, e.T) and tol.agrees(v.T, e, a.decimals.T).all():
            out.append(
                Diagnosis(
                    "answer_transposed",
                    f"Your {name} is the right matrix transposed (rows and columns swapped).",
                )
            )
    e = g.expected
    if np.abs(e[a.given]).max(initial=0.0) > 0 and tol.agrees(-v, e, a.decimals).all():
        out.append(
            Diagnosis(
                "sign", "Your number has the right size but the wrong sign (+ and − swapped)."
            )
        )
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
            if slip.op is not None:  # a unit that makes the slip, in place of the layer's
                out.append(Slip(slip.key, spec, Substitution(ops={name: slip.op}), slip.message))
                continue
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
