"""Run training steps: forward, loss, backward, update, and the loss after the update.

The engine computes and never prints. Every named value passes through an `Emit` function:
the recording one stores it in the trace (optionally rounded, for the hand-calculation mode,
or replaced by a student's answer, for the checker's carried-forward errors); the silent one
used by `train` only hands the array on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpcalc import losses, notation
from bpcalc import optim as optim_mod
from bpcalc.errors import NumericError
from bpcalc.ops import activations as act_ops
from bpcalc.ops.conv2d import Conv2d
from bpcalc.ops.dense import Dense
from bpcalc.ops.pool import AvgPool2d, Flatten, MaxPool2d
from bpcalc.spec.schema import (
    ActivationLayerSpec,
    ActivationSpec,
    Conv2dSpec,
    DenseSpec,
    FlattenSpec,
    LayerSpec,
    NetworkSpec,
    PoolSpec,
)
from bpcalc.trace import Record, StepTrace, Trace, element_name

Array = np.ndarray
Params = dict[str, dict[str, Array]]  # layer name -> parameter name -> array (internal shape)
# emit(name, array, stage, layer, formula, shape) -> the array to use downstream.
# `shape` is the shown shape of one sample (per-sample values) or of the parameter.
Emit = Callable[..., Array]


# --- layers at run time -------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A spec layer with its op: `op` is the linear or shape part, `activation` applied after it."""

    spec: LayerSpec
    op: Any  # Dense | Conv2d | MaxPool2d | AvgPool2d | Flatten | None (activation layer)
    activation: ActivationSpec | None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def parametric(self) -> bool:
        return isinstance(self.spec, (DenseSpec, Conv2dSpec))

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.op.param_names if self.op is not None else ()

    def out_shown(self) -> tuple[int, ...]:
        s = self.spec
        return s.out_shape[1:] if s.squeezed_out else s.out_shape

    def in_shown(self) -> tuple[int, ...]:
        s = self.spec
        return s.in_shape[1:] if s.squeezed_in else s.in_shape

    def param_shown(self, param: str) -> tuple[int, ...]:
        s = self.spec
        if isinstance(s, Conv2dSpec) and s.kernel_2d:
            return s.kernel.shape[2:] if param == "kernel" else ()
        if isinstance(s, DenseSpec):
            return s.weights_shown if param == "weights" else s.bias_shown
        return s.params[param].shape  # type: ignore[attr-defined]


def build_layer(spec: LayerSpec) -> Layer:
    if isinstance(spec, DenseSpec):
        return Layer(spec, Dense(spec.layout, spec.bias_shared), spec.activation)
    if isinstance(spec, Conv2dSpec):
        return Layer(spec, Conv2d(spec.stride, spec.padding, spec.flip), spec.activation)
    if isinstance(spec, PoolSpec):
        op = MaxPool2d if spec.kind == "max" else AvgPool2d
        return Layer(spec, op(spec.size, spec.stride), None)
    if isinstance(spec, FlattenSpec):
        return Layer(spec, Flatten(), None)
    if isinstance(spec, ActivationLayerSpec):
        return Layer(spec, None, spec.activation)
    raise AssertionError(f"no op for {type(spec).__name__}")


def initial_params(spec: NetworkSpec, dtype: Any = np.float64) -> Params:
    return {
        layer.name: {k: np.array(v, dtype=dtype) for k, v in layer.params.items()}  # type: ignore[attr-defined]
        for layer in spec.layers
        if isinstance(layer, (DenseSpec, Conv2dSpec))
    }


# --- emitting values ----------------------------------------------------------------------


def silent(name: str, arr: Array, *args: Any, **kwargs: Any) -> Array:
    """The emitter for fast loops: records nothing."""
    return arr


@dataclass
class Recorder:
    """Stores every emitted value in a StepTrace, as the user sees it.

    round_each: round each value to that many decimals before it is used further.
    overrides: values to use instead of the computed ones (shown shape; NaN = not given),
    so downstream values follow from them; the computed value is still what is recorded.
    """

    step: StepTrace
    n: int
    batched: bool
    round_each: int | None = None
    overrides: Mapping[str, Array] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __call__(
        self,
        name: str,
        arr: Array,
        stage: str,
        layer: str | None,
        formula: str,
        shape: tuple[int, ...],
        per_sample: bool = True,
    ) -> Array:
        shown_shape = ((self.n,) if self.batched else ()) + shape if per_sample else shape
        if self.round_each is not None:
            arr = np.round(arr, self.round_each)
        shown = np.array(arr, dtype=np.float64).reshape(shown_shape)
        _check_finite(name, shown, formula)
        self.step.records[name] = Record(
            name, shown, stage, layer, formula, per_sample and self.batched
        )
        if name in self.overrides:
            given = np.asarray(self.overrides[name], dtype=np.float64).reshape(shown_shape)
            merged = np.where(np.isnan(given), shown, given)
            return merged.reshape(arr.shape).astype(arr.dtype)
        return arr

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def _check_finite(name: str, value: Array, formula: str) -> None:
    if np.isfinite(value).all():
        return
    idx = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
    bad = value[idx]
    raise NumericError(
        f"{element_name(name, idx)} became {bad} while computing {formula}; "
        "the numbers overflowed: try a smaller learning rate or smaller inputs"
    )


# --- one pass -----------------------------------------------------------------------------


@dataclass
class ForwardResult:
    out: Array  # the network's output a
    z_out: Array | None  # the last activation's input (logits), when the output has an activation
    caches: list[Any]  # per layer: (op cache, z, a)


def forward(layers: list[Layer], params: Params, x: Array, emit: Emit = silent) -> ForwardResult:
    """a⁽0⁾ = x; for each layer z = op(a_prev), a = f(z). Emits <layer>.z and <layer>.a."""
    caches: list[Any] = []
    z_out = None
    for layer in layers:
        name, spec = layer.name, layer.spec
        p = {
            k: emit(
                f"{name}.{k}",
                v,
                "forward",
                name,
                "the parameter this step starts from",
                layer.param_shown(k),
                per_sample=False,
            )
            for k, v in params.get(name, {}).items()
        }
        shape = layer.out_shown()
        if layer.op is not None:
            z, cache = layer.op.forward(x, p)
            if layer.parametric:
                z = emit(f"{name}.z", z, "forward", name, notation.linear_formula(spec), shape)
        else:
            z, cache = x, None
        if layer.activation is not None:
            a = act_ops.forward(layer.activation.kind, z, layer.activation.slope)
            formula = notation.activation_formula(layer.activation)
            if not layer.parametric:
                formula = notation.linear_formula(spec)
        else:
            a = z
            formula = "a = z (no activation)" if layer.parametric else notation.linear_formula(spec)
        a = emit(f"{name}.a", a, "forward", name, formula, shape)
        caches.append((cache, z, a))
        z_out = z if layer.activation is not None else None
        x = a
    return ForwardResult(x, z_out, caches)


def loss_value(
    spec: NetworkSpec,
    out: Array,
    z_out: Array | None,
    y: Array,
    warn: Callable[[str], None] | None = None,
) -> tuple[float, Array]:
    """(L, ℓ per sample). Uses the logits for a stable log when the output is softmax/sigmoid."""
    kind = spec.loss.kind
    use_z = z_out if losses.FUSED.get(kind) == spec.output_activation else None
    per = losses.per_sample(kind, out, y, use_z, warn, f"{spec.layers[-1].name}.a")
    return losses.reduce(spec.loss.reduction, per), per


def backward(
    spec: NetworkSpec,
    layers: list[Layer],
    params: Params,
    fwd: ForwardResult,
    y: Array,
    emit: Emit = silent,
    warn: Callable[[str], None] | None = None,
    input_grad: bool = True,
) -> dict[str, dict[str, Array]]:
    """Chain rule from the loss back to the input; returns ∂L/∂θ for every parameter."""
    n = y.shape[0]
    scale = losses.batch_scale(spec.loss.reduction, n)
    kind = spec.loss.kind
    last = layers[-1]
    fused = losses.FUSED.get(kind) == spec.output_activation
    da = losses.grad_a(kind, fwd.out, y, warn, f"{last.name}.a") * scale
    grads: dict[str, dict[str, Array]] = {}
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        name, lspec = layer.name, layer.spec
        cache, z, a = fwd.caches[i]
        da = emit(
            f"grad.{name}.a",
            da,
            "backward",
            name,
            losses.GRAD_FORMULAS[kind]
            if i == len(layers) - 1
            else f"∂L/∂a = ∂L/∂x of {layers[i + 1].name}",
            layer.out_shown(),
        )
        if layer.activation is not None:
            if fused and i == len(layers) - 1:
                dz = losses.fused_grad_z(kind, a, y) * scale
                formula = losses.FUSED_FORMULAS[kind]
            else:
                dz = act_ops.backward(layer.activation.kind, da, z, a, layer.activation.slope)
                formula = notation.grad_z_formula(layer.activation)
        else:
            dz, formula = da, "∂L/∂z = ∂L/∂a (no activation)"
        if layer.parametric:
            dz = emit(f"grad.{name}.z", dz, "backward", name, formula, layer.out_shown())
        if layer.op is None:  # an activation layer: ∂L/∂x is its ∂L/∂z
            dx, pgrads = dz, {}
            in_formula = formula.replace("∂L/∂z", "∂L/∂x")
        elif i == 0 and not input_grad and layer.parametric:
            _, pgrads = _param_grads_only(layer, dz, cache, params)
            dx, in_formula = None, ""
        else:
            dx, pgrads = layer.op.backward(dz, cache, params.get(name, {}))
            in_formula = notation.grad_input_formula(lspec)
        grads[name] = {}
        for pname in layer.param_names:
            grads[name][pname] = emit(
                f"grad.{name}.{pname}",
                pgrads[pname],
                "backward",
                name,
                notation.grad_param_formula(lspec, pname),
                layer.param_shown(pname),
                per_sample=False,
            )
        if dx is not None:
            dx = emit(f"grad.{name}.input", dx, "backward", name, in_formula, layer.in_shown())
        da = dx
    return grads


def _param_grads_only(
    layer: Layer, dz: Array, cache: Any, params: Params
) -> tuple[None, dict[str, Array]]:
    """The first layer's parameter gradients without its ∂L/∂x (nobody reads it in training)."""
    param_grads = getattr(layer.op, "param_grads", None)
    if param_grads is not None:  # ops that can skip the input gradient's product
        return None, param_grads(dz, cache, params.get(layer.name, {}))
    _, pgrads = layer.op.backward(dz, cache, params.get(layer.name, {}))
    return None, pgrads


# --- a whole step -------------------------------------------------------------------------


@dataclass
class RunState:
    """What carries over from one step to the next."""

    params: Params
    opt_state: dict[str, dict[str, dict[str, Array]]] = field(default_factory=dict)
    t: int = 0


def step_once(
    spec: NetworkSpec,
    layers: list[Layer],
    state: RunState,
    optimizer: optim_mod.Optimizer,
    x: Array,
    y: Array,
    rec: Recorder,
) -> RunState:
    """One forward / loss / backward / update / loss-after step, every value into `rec`."""
    params = state.params
    x = rec("input", x, "forward", None, "x, the network's input", _input_shown(spec))
    fwd = forward(layers, params, x, rec)
    rec(
        "target",
        y,
        "loss",
        None,
        "y, the target"
        + (" (one-hot of the class index)" if spec.target_classes is not None else ""),
        layers[-1].out_shown(),
    )
    loss, _ = loss_value(
        spec, fwd.out, fwd.z_out if _untouched(rec, layers[-1]) else None, y, rec.warn
    )
    rec(
        "loss",
        np.asarray(loss),
        "loss",
        None,
        losses.FORMULAS[spec.loss.kind],
        (),
        per_sample=False,
    )
    grads = backward(spec, layers, params, fwd, y, rec, rec.warn)

    t = state.t + 1
    new_params: Params = {}
    new_opt: dict[str, dict[str, dict[str, Array]]] = {}
    for layer in layers:
        if not layer.parametric:
            continue
        name = layer.name
        new_params[name] = {}
        new_opt[name] = {}
        frozen = getattr(layer.spec, "freeze", frozenset())
        for pname in layer.param_names:
            theta, g = params[name][pname], grads[name][pname]
            shape = layer.param_shown(pname)
            if pname in frozen:
                new = theta
                formula = f"{pname} is frozen: not updated"
                slot_state = state.opt_state.get(name, {}).get(pname, {})
            else:
                prev = state.opt_state.get(name, {}).get(pname) or optimizer.init_state(theta)
                new, slot_state = optimizer.update(theta, g, prev, t)
                formula = optimizer.formula
                for slot, value in slot_state.items():
                    slot_state[slot] = rec(
                        f"state.{name}.{pname}.{slot}",
                        value,
                        "update",
                        name,
                        f"{slot} of the optimizer",
                        shape,
                        per_sample=False,
                    )
            new_params[name][pname] = rec(
                f"new.{name}.{pname}", new, "update", name, formula, shape, per_sample=False
            )
            new_opt[name][pname] = slot_state
    after = forward(layers, new_params, x)
    loss_after, _ = loss_value(spec, after.out, after.z_out, y, rec.warn)
    rec(
        "loss_after",
        np.asarray(loss_after),
        "after",
        None,
        losses.FORMULAS[spec.loss.kind] + " with the updated parameters",
        (),
        per_sample=False,
    )
    return RunState(new_params, new_opt, t)


def _input_shown(spec: NetworkSpec) -> tuple[int, ...]:
    shape = spec.layers[0].in_shape
    return shape[1:] if spec.input_squeezed else shape


def _untouched(rec: Recorder, last: Layer) -> bool:
    """The stable log-from-logits is only right when the output is exactly f(z) as computed."""
    return (
        rec.round_each is None
        and f"{last.name}.a" not in rec.overrides
        and f"{last.name}.z" not in rec.overrides
    )


def run(
    spec: NetworkSpec,
    *,
    steps: int = 1,
    round_each: int | None = None,
    overrides: Mapping[str, Array] | None = None,
    dtype: Any = np.float64,
) -> Trace:
    """Run `steps` full-batch steps and return the trace of all of them."""
    layers = [build_layer(s) for s in spec.layers]
    optimizer = optim_mod.build(spec.optimizer)
    state = RunState(initial_params(spec, dtype))
    trace = Trace(
        network=spec.name,
        file=spec.file,
        conventions=notation.conventions(spec, optimizer.rule, np.dtype(dtype).name, round_each),
        batched=spec.batched,
        dtype=np.dtype(dtype).name,
        round_each=round_each,
    )
    x = spec.inputs.astype(dtype)
    y = spec.targets.astype(dtype)
    warnings: list[str] = []
    for k in range(1, steps + 1):
        st = StepTrace(step=k, samples=list(range(x.shape[0])) if spec.batched else None)
        rec = Recorder(st, x.shape[0], spec.batched, round_each, overrides or {}, warnings)
        if round_each is not None:
            x_used = np.round(x, round_each)
        else:
            x_used = x
        state = step_once(spec, layers, state, optimizer, x_used, y, rec)
        trace.steps.append(st)
    trace.warnings = warnings
    return trace
