"""What makes a drawn exercise degenerate or ambiguous. Each rule has a name; a draw that
breaks one is rejected and the rejection counted under that name.

  kink            a pre-activation exactly on an activation's kink (ReLU's z = 0), where
                  the derivative is a convention rather than a computation
  dead_unit       a unit (a neuron, or a conv channel) whose derivative is 0 for every
                  sample, beyond the exercise's `dead_units:`
  maxpool_tie     two equal largest numbers in a max-pool window: which one gets the
                  gradient is a convention
  zero_gradient   a gradient the exercise asks for is 0 (every element of a value asked
                  whole, or the element asked)
  too_large       a value a student computes is larger than limits.max in size
  too_small       a value a student computes is not 0 but smaller than limits.min in size
                  (rounding would lose it)
  rounding_tie    a value lies exactly half-way between two roundings of the rounding rule
                  (0.12345 to 4 decimals): people round it both ways
  overflow        a value overflows

The rules read the variant's own trace: `rounded` is the step as the students compute it
(every value rounded by the exercise's rule), `exact` each value computed from the rounded
values before it, before its own rounding (the engine with the rounded values substituted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcalc import engine
from bpcalc.errors import BpcalcError
from bpcalc.network.types import NetworkSpec, PoolSpec
from bpcalc.teach.section import Exercise
from bpcalc.trace import StepTrace, element_name, parse_ref

RULES = (
    "kink",
    "dead_unit",
    "maxpool_tie",
    "zero_gradient",
    "too_large",
    "too_small",
    "rounding_tie",
    "overflow",
)
EPS = 1e-12


@dataclass(frozen=True)
class Violation:
    rule: str  # one of RULES
    message: str


@dataclass(frozen=True)
class Traces:
    rounded: StepTrace
    exact: StepTrace


def _exact(spec: NetworkSpec, rounding: int | None, rounded: StepTrace) -> StepTrace:
    """Each value computed from the rounded values before it, before its own rounding."""
    if rounding is None:
        return rounded
    overrides = {r.name: r.value for r in rounded}
    return engine.run(spec, overrides=overrides).steps[0]


def check(
    spec: NetworkSpec, ex: Exercise, asked: list[str], *, first: bool = False
) -> list[Violation]:
    """Every rule the network breaks as an exercise (empty: a good exercise).

    first: stop after the rules read from the rounded trace alone when one of them is
    broken (a quicker no while drawing; the rules that need the second run go unchecked)."""
    try:
        rounded = engine.run(spec, round_each=ex.rounding).steps[0]
    except (BpcalcError, ArithmeticError, ValueError) as exc:
        return [Violation("overflow", str(exc))]
    out: list[Violation] = []
    out += _kinks_and_dead(spec, ex, rounded)
    out += _maxpool_ties(spec, rounded)
    out += _zero_gradients(asked, rounded)
    if out and first:
        return out
    try:
        t = Traces(rounded, _exact(spec, ex.rounding, rounded))
    except (BpcalcError, ArithmeticError, ValueError) as exc:
        return [*out, Violation("overflow", str(exc))]
    out += _magnitudes(spec, ex, asked, t)
    return out


def computed(spec: NetworkSpec, st: StepTrace, asked: list[str]) -> list[str]:
    """The values a student computes on the way to the asked ones: every computed value up to
    the last asked one in computation order (the input's gradient and the loss after the
    update only when asked)."""
    names = list(st.records)
    wanted = {parse_ref(a)[0] for a in asked}
    last = max((names.index(n) for n in wanted), default=len(names) - 1)
    first = spec.layers[0].name
    given = _given(spec)
    out = []
    for n in names[: last + 1]:
        if n in given:
            continue
        if n not in wanted and (
            n == f"grad.{first}.input" or n.startswith(("loss_after", "dataset_loss"))
        ):
            continue
        out.append(n)
    return out


def _given(spec: NetworkSpec) -> set[str]:
    names = {"input", "target"}
    for layer in spec.layers:
        names |= {f"{layer.name}.{p}" for p in getattr(layer, "params", {})}
    return names


def _pre_activations(spec: NetworkSpec, st: StepTrace) -> list[tuple[str, str, np.ndarray]]:
    """(layer, value name, z with a batch axis) for every activation in the network."""
    out = []
    prev = "input"
    for layer in spec.layers:
        act = layer.activation
        if act is not None and act.unit().elementwise:
            name = f"{layer.name}.z" if f"{layer.name}.z" in st else prev
            z = st[name]
            out.append((layer.name, name, z if spec.batched else z[None]))
        prev = f"{layer.name}.a"
    return out


def _kinks_and_dead(spec: NetworkSpec, ex: Exercise, st: StepTrace) -> list[Violation]:
    out = []
    dead = []
    for layer, name, z in _pre_activations(spec, st):
        unit = next(s for s in spec.layers if s.name == layer).activation.unit()  # type: ignore[union-attr]
        below, above = z - 1e-9, z + 1e-9
        d_lo = unit.derivative(below, unit.forward(below))
        d_hi = unit.derivative(above, unit.forward(above))
        kink = np.abs(d_lo - d_hi) > 1e-6
        if kink.any():
            idx = tuple(int(i) for i in np.argwhere(kink)[0])
            shown = idx if spec.batched else idx[1:]
            out.append(
                Violation(
                    "kink",
                    f"{element_name(name, shown)} = {float(z[idx]):g} sits on the kink of "
                    f"{unit.kind}, where its derivative is a convention",
                )
            )
        d = unit.derivative(z, unit.forward(z))
        off = np.isclose(d, 0.0, atol=EPS)
        # a unit: a neuron (a vector's element) or a channel (an image's first axis)
        per_unit = off.reshape(off.shape[0], off.shape[1], -1) if off.ndim == 4 else off
        if off.ndim == 3:  # one channel shown as (H, W)
            per_unit = off.reshape(off.shape[0], 1, -1)
        if per_unit.ndim == 2:
            per_unit = per_unit[:, :, None]
        for u in np.argwhere(per_unit.all(axis=(0, 2))):
            dead.append(f"{layer}[{int(u[0])}]")
    if ex.dead_units is not None and len(dead) > ex.dead_units:
        out.append(
            Violation(
                "dead_unit",
                f"{', '.join(dead)} {'is' if len(dead) == 1 else 'are'} off for every sample "
                f"(derivative 0); at most {ex.dead_units} allowed",
            )
        )
    return out


def _maxpool_ties(spec: NetworkSpec, st: StepTrace) -> list[Violation]:
    out = []
    prev = "input"
    for layer in spec.layers:
        if isinstance(layer, PoolSpec) and layer.kind == "max":
            x = st[prev] if spec.batched else st[prev][None]
            x = x.reshape(x.shape[0], *layer.in_shape)
            (kh, kw), (sh, sw) = layer.size, layer.stride
            _, ho, wo = layer.out_shape
            for n, c, i, j in np.ndindex(x.shape[0], x.shape[1], ho, wo):
                win = x[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
                if np.sum(np.abs(win - win.max()) <= EPS) > 1:
                    out.append(
                        Violation(
                            "maxpool_tie",
                            f"the max-pool window ({i},{j}) of layer {layer.name} has its "
                            f"largest number {win.max():g} more than once",
                        )
                    )
                    return out
        prev = f"{layer.name}.a"
    return out


def _zero_gradients(asked: list[str], st: StepTrace) -> list[Violation]:
    out = []
    for ref in asked:
        name, index = parse_ref(ref)
        if not name.startswith("grad.") or name not in st:
            continue
        v = st[name] if index is None else st[name][index]
        if np.all(np.abs(v) <= EPS):
            out.append(Violation("zero_gradient", f"{ref}, asked for, is 0"))
    return out


def _magnitudes(spec: NetworkSpec, ex: Exercise, asked: list[str], t: Traces) -> list[Violation]:
    out = []
    small = ex.smallest
    for name in computed(spec, t.rounded, asked):
        v = t.exact[name]
        a = np.abs(v)
        big = a > ex.max_abs
        if big.any():
            out.append(Violation("too_large", f"{_at(name, v, big)} is larger than {ex.max_abs:g}"))
        tiny = (a > EPS) & (a < small)
        if tiny.any():
            out.append(
                Violation("too_small", f"{_at(name, v, tiny)} is smaller than {small:g} (not 0)")
            )
        if ex.rounding is not None:
            scaled = a * 10.0**ex.rounding
            frac = scaled - np.floor(scaled)
            tie = np.abs(frac - 0.5) < 1e-6 * np.maximum(1.0, scaled)
            if tie.any():
                out.append(
                    Violation(
                        "rounding_tie",
                        f"{_at(name, v, tie)} lies half-way between two roundings to "
                        f"{ex.rounding} decimals",
                    )
                )
    return out


def _at(name: str, v: np.ndarray, mask: np.ndarray) -> str:
    idx = tuple(int(i) for i in np.argwhere(mask)[0]) if v.ndim else ()
    return f"{element_name(name, idx)} = {float(v[idx] if idx else v):.6g}"
