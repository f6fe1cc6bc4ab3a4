"""The sub-steps inside each value's formula, for every value of a run: the units say what a
person rounds inside their formulas (bpcalc/substeps.py); this module hands each unit the
numbers of the run it needs and the rounding of the value each sub-step leads to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from bpcalc import engine, losses
from bpcalc import optim as optim_mod
from bpcalc import regularization as reg_mod
from bpcalc.check.runner import Given, Runner
from bpcalc.layers import Recorded
from bpcalc.substeps import Radius
from bpcalc.trace import StepTrace

Key = tuple[int, str]  # (step, value name)
# the rounding of the sub-steps of a value (step, name); None: not wanted
RadiusOf = Callable[[int, str], "Radius | None"]


def _none(s: np.ndarray) -> np.ndarray:
    return np.zeros(np.shape(s))


def substeps(
    runner: Runner, steps: list[StepTrace], radius_of: RadiusOf, given: Given | None = None
) -> dict[Key, np.ndarray]:
    """(step, name) -> Σ_s |∂v/∂s|·radius(s) over the sub-steps of that value, in its shape
    as recorded, for the values radius_of wants. `steps`: the run as the student writes it;
    given: the student's own numbers, which the sub-steps are worked from where there are."""
    spec = runner.spec
    sub = runner.substitution
    layers = [engine.build_layer(s) for s in spec.layers]
    factor = 1.0
    optimizer = optim_mod.build(spec.optimizer)
    if sub is not None:
        layers, factor = sub.apply(layers), sub.loss_factor
        optimizer = sub.optimizer or optimizer
    out: dict[Key, np.ndarray] = {}
    previous: _Step | None = None
    for st in steps:
        k = st.step
        ctx = _Step(runner, st, out, radius_of, (given or {}).get(k, {}))
        x, y = ctx.get("input"), ctx.get("target")
        if x is not None and y is not None:
            n = len(st.samples) if st.samples is not None else 1
            _pass(ctx, layers, factor, "", n, x, y, backward=True)
            if any(name.startswith("after:") for name in st.hidden):
                _pass(ctx, layers, factor, "after:", n, x, y, backward=False)
            if any(name.startswith("dataset:") for name in st.hidden):
                engine.set_training(layers, False)
                try:
                    xs, ys = spec.inputs, spec.targets
                    _pass(ctx, layers, factor, "dataset:", xs.shape[0], xs, ys, backward=False)
                finally:
                    engine.set_training(layers, True)
            _update(ctx, layers, optimizer, k, previous)
        previous = ctx
    return out


class _Step:
    """One step's values (engine view) and where the results go."""

    def __init__(
        self,
        runner: Runner,
        st: StepTrace,
        out: dict[Key, np.ndarray],
        radius_of: RadiusOf,
        given: Mapping[str, np.ndarray],
    ) -> None:
        self.runner, self.st, self.out, self.radius_of = runner, st, out, radius_of
        self.given = given

    def get(self, name: str) -> np.ndarray | None:
        """The value as the student has it: their number where they wrote one."""
        rec = self.st.records.get(name) or self.st.hidden.get(name)
        if rec is None:
            return None
        value = rec.value
        if name in self.given:
            value = np.where(np.isnan(self.given[name]), value, self.given[name])
        return np.asarray(self.runner.to_engine(name, value))

    def radius(self, name: str) -> Radius:
        return self.radius_of(self.st.step, name) or _none

    def wanted(self, name: str) -> bool:
        return self.radius_of(self.st.step, name) is not None

    def put(self, name: str, value: np.ndarray | float) -> None:
        rec = self.st.records.get(name) or self.st.hidden.get(name)
        if rec is not None and self.wanted(name):
            arr = np.asarray(value, dtype=np.float64)
            if arr.size == 1:
                arr = np.full(rec.shape, float(arr.reshape(-1)[0]))
            arr = arr.reshape(rec.shape)
            self.out[(self.st.step, name)] = np.array(arr)


def _pass(
    ctx: _Step,
    layers: list[engine.Layer],
    factor: float,
    prefix: str,
    n: int,
    x: np.ndarray,
    y: np.ndarray,
    backward: bool,
) -> None:
    """One forward pass (prefix "": the step's, with its backward pass; "after:" and
    "dataset:" the passes after the update) and its loss."""
    spec = ctx.runner.spec
    x = np.asarray(x, dtype=np.float64).reshape(n, *spec.layers[0].in_shape)
    loss = losses.of(spec.loss)  # per position when the output is a sequence
    fused = loss.fused_with == spec.output_activation
    params_all: dict[str, dict[str, np.ndarray]] = {}
    out = _layers(ctx, layers, prefix, n, x, backward, fused, params_all)
    if out is None:
        return
    x = out
    yy = np.asarray(y, dtype=np.float64).reshape(x.shape)
    if backward:  # recorded as ∂L/∂a even where ∂L/∂z comes from the fused formula
        target = f"grad.{layers[-1].name}.a"
        scale = losses.batch_scale(spec.loss.reduction, n) * factor
        ctx.put(target, scale * loss.grad_substeps(x, yy, ctx.radius(target)))
    total = (
        ("loss.data" if spec.regularization else "loss")
        if prefix == ""
        else ("loss_after" if prefix == "after:" else "dataset_loss_after")
    )
    if not ctx.wanted(total) and not (backward and spec.batched):
        return
    r = ctx.radius(total)
    if backward and spec.batched:
        ctx.put("loss.per_sample", loss.value_substeps(x, yy, ctx.radius("loss.per_sample")))
    w = 1.0 / n if spec.loss.reduction == "mean" else 1.0
    per = loss.per_sample(x, yy)
    data = w * float(loss.value_substeps(x, yy, r).sum())
    if n >= 2:  # each sample's loss is a sub-step of their mean or sum
        data += w * float(r(per).sum())
    data *= abs(factor)
    if prefix == "":
        ctx.put(total, data)
        if spec.regularization:
            pen = reg_mod.penalty_substeps(
                spec.regularization, params_all, ctx.radius("loss.penalty")
            )
            ctx.put("loss.penalty", pen)
        return
    if spec.regularization:  # L = L_data + penalty, each worked out and rounded
        value = reg_mod.penalty(spec.regularization, params_all)
        data_value = w * float(per.sum()) * factor
        data += reg_mod.penalty_substeps(spec.regularization, params_all, r)
        data += float(r(np.asarray([data_value, value])).sum())
    ctx.put(total, data)


def _layers(
    ctx: _Step,
    layers: list[engine.Layer] | tuple[engine.Layer, ...],
    prefix: str,
    n: int,
    x: np.ndarray,
    backward: bool,
    fused: bool,
    params_all: dict[str, dict[str, np.ndarray]],
) -> np.ndarray | None:
    """The sub-steps of each layer in turn (a block's inner layers too, from the block's
    input); the output of the last, None when the run does not have it."""
    spec = ctx.runner.spec
    shapes = engine.initial_params(spec)
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        name, lspec = layer.name, layer.spec
        params = {}
        for p, arr in shapes.get(name, {}).items():
            got = ctx.get(f"{prefix}{name}.{p}")
            params[p] = (got if got is not None else arr).reshape(arr.shape)
        params_all[name] = params
        if layer.inner:  # a block: its layers, from the block's input
            _layers(ctx, layer.inner, prefix, n, x, backward, False, params_all)
        a = ctx.get(f"{prefix}{name}.a")
        if a is None:
            return None
        a = a.reshape(n, *lspec.out_shape)
        dz = None
        if backward and layer.parametric:
            g = ctx.get(f"grad.{name}.z")
            dz = None if g is None else g.reshape(n, *lspec.out_shape)
        reg = spec.regularization.get(name)
        names = _names(layer, params, prefix, backward, reg)
        found = layer.op.substeps(x, params, dz, _keyed(ctx, names), _staged(ctx, prefix, name))
        for key, value in found.items():
            ctx.put(names(key), value)
        if layer.act is not None:
            z = ctx.get(f"{prefix}{name}.z") if layer.parametric else None
            z = z.reshape(a.shape) if z is not None else x.reshape(a.shape)
            a_name = f"{prefix}{name}.a"
            ctx.put(a_name, layer.act.forward_substeps(z, a, ctx.radius(a_name)))
            if backward and not (fused and i == last and layer.act.fuses_with_loss):
                da = ctx.get(f"grad.{name}.a")
                target = f"grad.{name}.z" if layer.parametric else f"grad.{name}.input"
                if da is not None and ctx.wanted(target):
                    r = ctx.radius(target)
                    ctx.put(target, layer.act.backward_substeps(da.reshape(a.shape), z, a, r))
        if backward and reg is not None:
            for p in layer.param_names:
                target = f"grad.{name}.{p}.penalty"
                if reg_mod.applies(reg, p) and ctx.wanted(target):
                    ctx.put(target, reg_mod.grad_substeps(reg, params[p], ctx.radius(target)))
        x = a
    return x


def _staged(ctx: _Step, prefix: str, name: str) -> Callable[[Recorded], np.ndarray]:
    """The student's own value of what a unit records (μ, σ², x̂), where they wrote one."""

    def stage(r: Recorded) -> np.ndarray:
        got = ctx.get(f"{prefix}{name}.{r.suffix}")
        return r.value if got is None else got.reshape(r.value.shape)

    return stage


def _keyed(ctx: _Step, names: Callable[[str], str]) -> Callable[[str, np.ndarray], np.ndarray]:
    return lambda key, s: ctx.radius(names(key))(s)


def _names(
    layer: engine.Layer, params: dict[str, np.ndarray], prefix: str, backward: bool, reg: object
) -> Callable[[str], str]:
    """The value a unit's sub-step key stands for."""
    name = layer.name

    def of(key: str) -> str:
        if key == "z":
            return f"{prefix}{name}.z"
        if key == "input":
            return f"grad.{name}.input" if backward else ""
        if key in layer.param_names:
            data = reg_mod.applies(reg, key)  # type: ignore[arg-type]
            return f"grad.{name}.{key}" + (".data" if data else "") if backward else ""
        if key in params:  # a buffer: its new value, recorded with the update
            return f"new.{name}.{key}" if backward else ""
        return f"{prefix}{name}.{key}"

    return of


def _update(
    ctx: _Step,
    layers: list[engine.Layer],
    optimizer: optim_mod.Optimizer,
    k: int,
    previous: _Step | None,
) -> None:
    for layer in engine.leaves(layers):
        if not layer.parametric:
            continue
        name = layer.name
        for p in layer.param_names:
            if p in layer.spec.freeze:
                continue
            keys = {"new": f"new.{name}.{p}"}
            keys |= {s: f"state.{name}.{p}.{s}" for s in optimizer.slots}
            if not any(ctx.wanted(v) for v in keys.values()):
                continue
            theta, g = ctx.get(f"{name}.{p}"), ctx.get(f"grad.{name}.{p}")
            if theta is None or g is None:
                continue
            slots = {s: ctx.get(f"state.{name}.{p}.{s}") for s in optimizer.slots}
            state = {s: v for s, v in slots.items() if v is not None}
            if len(state) != len(slots):
                continue
            prev = optimizer.init_state(theta)
            if previous is not None:
                for s in optimizer.slots:
                    before = previous.get(f"state.{name}.{p}.{s}")
                    if before is not None:
                        prev[s] = before
            found = optimizer.substeps(theta, g, prev, state, k, _keyed(ctx, keys.__getitem__))
            for key, value in found.items():
                ctx.put(keys[key], value)
