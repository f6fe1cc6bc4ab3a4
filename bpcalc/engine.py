"""Run training steps: forward, loss, backward, update, and the loss after the update.

The engine computes and never prints. Every named value passes through an `Emit` function:
the recording one stores it in the trace (optionally rounded, for the hand-calculation mode,
or replaced by a student's answer, for the checker's carried-forward errors); the silent one
used by `train` only hands the array on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bpcalc import batching, losses, notation
from bpcalc import optim as optim_mod
from bpcalc import regularization as reg_mod
from bpcalc.errors import Location, NumericError
from bpcalc.ops import activations as act_ops
from bpcalc.spec.schema import (
    ActivationLayerSpec,
    ActivationSpec,
    BatchNormSpec,
    Conv2dSpec,
    DenseSpec,
    DropoutSpec,
    FlattenSpec,
    LayerSpec,
    NetworkSpec,
    PoolSpec,
    RegSpec,
)
from bpcalc.trace import Record, StepTrace, Trace, element_name

if TYPE_CHECKING:  # only the checker builds a Variant: `bpcalc step` need not import it
    from bpcalc.variant import Variant

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
        return isinstance(self.spec, (DenseSpec, Conv2dSpec, BatchNormSpec))

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
    # Each op module is imported when a layer of its kind is built: a start-up cost (module
    # and dataclass creation, ~1 ms each) only the networks that use it pay (issue 7).
    if isinstance(spec, DenseSpec):
        from bpcalc.ops.dense import Dense

        return Layer(spec, Dense(spec.layout, spec.bias_shared), spec.activation)
    if isinstance(spec, Conv2dSpec):
        from bpcalc.ops.conv2d import Conv2d

        return Layer(spec, Conv2d(spec.stride, spec.padding, spec.flip), spec.activation)
    if isinstance(spec, PoolSpec):
        from bpcalc.ops.pool import AvgPool2d, MaxPool2d

        op = MaxPool2d if spec.kind == "max" else AvgPool2d
        return Layer(spec, op(spec.size, spec.stride), None)
    if isinstance(spec, FlattenSpec):
        from bpcalc.ops.pool import Flatten

        return Layer(spec, Flatten(), None)
    if isinstance(spec, ActivationLayerSpec):
        return Layer(spec, None, spec.activation)
    if isinstance(spec, DropoutSpec):
        from bpcalc.ops.dropout import Dropout

        seed = 0 if spec.seed is None else spec.seed
        return Layer(spec, Dropout(spec.p, spec.in_shape, spec.mask, seed), None)
    if isinstance(spec, BatchNormSpec):
        from bpcalc.ops.batchnorm import BatchNorm

        return Layer(spec, BatchNorm(spec.eps, spec.momentum), spec.activation)
    raise AssertionError(f"no op for {type(spec).__name__}")


def initial_params(spec: NetworkSpec, dtype: Any = np.float64) -> Params:
    return {
        layer.name: {k: np.array(v, dtype=dtype) for k, v in layer.params.items()}  # type: ignore[attr-defined]
        for layer in spec.layers
        if isinstance(layer, (DenseSpec, Conv2dSpec, BatchNormSpec))
    }


def set_training(layers: list[Layer], training: bool) -> None:
    """Training mode (the default) or evaluation: dropout off, batchnorm on its running stats."""
    for layer in layers:
        if hasattr(layer.op, "training"):
            layer.op.training = training


def carry_buffers(layers: list[Layer], fwd: ForwardResult, params: Params) -> None:
    """Store the running statistics a training forward pass produced (batchnorm) in params,
    in place: for loops that do not go through step_once."""
    for i, layer in enumerate(layers):
        buffers = getattr(layer.op, "buffers", None)
        if buffers is not None:
            for bname, (value, _) in buffers(fwd.caches[i][0]).items():
                params[layer.name][bname] = value.astype(params[layer.name][bname].dtype)


def begin_step(layers: list[Layer], samples: Array) -> None:
    """Tell layers with per-step randomness (dropout) which dataset samples this step uses."""
    for layer in layers:
        start = getattr(layer.op, "begin_step", None)
        if start is not None:
            start(samples)


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
            arr = round_decimals(arr, self.round_each)
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


def round_decimals(arr: Array, decimals: int) -> Array:
    """np.round(arr, decimals), except that it never overflows: np.round scales by 10^decimals
    first, so 1e300 rounded to 15 decimals would become inf. Numbers of magnitude 2^52 and
    more have no fractional digits in float64 and are kept as they are."""
    arr = np.asarray(arr)
    small = np.abs(arr) < 2.0**52
    if small.all():
        return np.round(arr, decimals)
    return np.where(small, np.round(np.where(small, arr, 0), decimals), arr).astype(arr.dtype)


def _check_finite(name: str, value: Array, formula: str) -> None:
    if np.isfinite(value).all():
        return
    idx = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
    bad = value[idx]
    raise NumericError(
        f"{element_name(name, idx)} became {bad} while computing {formula}; "
        "the numbers overflowed: try a smaller learning rate or smaller inputs",
        value=name,
    )


def value_location(spec: NetworkSpec, name: str) -> Location:
    """Where the user can act on a value: its layer's line for a layer's value (fc.z,
    grad.fc.weights, new.fc.bias), the loss: key for loss values, the input: / target: key
    for those; else the top of the file."""
    parts = name.split(".")
    layer = parts[1] if parts[0] in ("grad", "new", "state") and len(parts) > 1 else parts[0]
    where = next((lay.where for lay in spec.layers if lay.name == layer), None)
    if where is None and spec.doc is not None:
        key = "loss" if "loss" in layer else layer  # loss, loss_after, dataset_loss_after
        for k in (key, f"{key}s"):
            if (k,) in spec.doc.key_locations:
                where = spec.doc.key_locations[(k,)]
                break
    return where or Location(spec.file, 1, 1)


def _placed(exc: NumericError, spec: NetworkSpec, step: int, steps: int) -> NumericError:
    """The error located at the layer (or loss, or input) whose value went bad, with its step."""
    message = f"in step {step}: {exc.message}" if steps > 1 else exc.message
    return NumericError(message, value_location(spec, exc.value or ""), value=exc.value)


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
                "the parameter this step starts from"
                if k in layer.param_names
                else "the running statistic this step starts from (not trained)",
                layer.param_shown(k),
                per_sample=False,
            )
            for k, v in params.get(name, {}).items()
        }
        shape = layer.out_shown()
        if layer.op is not None:
            z, cache = layer.op.forward(x, p)
            for suffix, value, text, per in getattr(layer.op, "recorded", _nothing)(cache):
                shown = shape if per else (layer.spec.in_shape[0],)  # per sample, or per feature
                emit(f"{name}.{suffix}", value, "forward", name, text, shown, per_sample=per)
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


def _nothing(cache: Any) -> list[Any]:
    return []


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
    per = losses.per_sample(kind, out, y, use_z, warn, _output_element(spec))
    return losses.reduce(spec.loss.reduction, per), per


def _output_element(spec: NetworkSpec) -> Callable[[tuple[int, ...]], str]:
    """Names an element of the output from its (sample, flat index) as the user sees it,
    e.g. "fc.a[1]" for one sample, "fc.a[0,1]" for a batch."""
    last = spec.layers[-1]
    shown = last.out_shape[1:] if last.squeezed_out else last.out_shape

    def name(idx: tuple[int, ...]) -> str:
        n, k = idx
        el = tuple(int(i) for i in np.unravel_index(k, shown))
        return element_name(f"{last.name}.a", ((n,) if spec.batched else ()) + el)

    return name


def backward(
    spec: NetworkSpec,
    layers: list[Layer],
    params: Params,
    fwd: ForwardResult,
    y: Array,
    emit: Emit = silent,
    warn: Callable[[str], None] | None = None,
    input_grad: bool = True,
    variant: Variant | None = None,
) -> dict[str, dict[str, Array]]:
    """Chain rule from the loss back to the input; returns ∂L/∂θ for every parameter.

    `variant` (the checker's reproduced slips) is None for the correct maths."""
    n = y.shape[0]
    scale = losses.batch_scale(spec.loss.reduction, n)
    if variant is not None:
        scale *= variant.loss_factor
    kind = spec.loss.kind
    fused = losses.FUSED.get(kind) == spec.output_activation
    if fused and emit is silent and variant is None:  # training: ∂L/∂a is not needed
        da = None
    else:
        da = losses.grad_a(kind, fwd.out, y, warn, _output_element(spec)) * scale
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
            notation.batch_mean_formula(spec, losses.GRAD_FORMULAS[kind])
            if i == len(layers) - 1
            else f"∂L/∂a = ∂L/∂x of {layers[i + 1].name}",
            layer.out_shown(),
        )
        if layer.activation is not None:
            if variant is not None and name in variant.no_derivative:
                dz, formula = da, "∂L/∂z = ∂L/∂a (the derivative left out)"
            elif fused and i == len(layers) - 1:
                dz = losses.fused_grad_z(kind, a, y) * scale
                formula = notation.batch_mean_formula(spec, losses.FUSED_FORMULAS[kind])
            elif variant is not None:
                act = layer.activation
                dz = variant.activation_backward(name, act.kind, da, z, a, act.slope)
                formula = notation.grad_z_formula(layer.activation)
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
        reg = spec.regularization.get(name)
        for pname in layer.param_names:
            g_formula = notation.batch_sum_formula(spec, notation.grad_param_formula(lspec, pname))
            g = pgrads[pname]
            if reg_mod.applies(reg, pname):  # ∂L/∂θ = ∂L_data/∂θ + ∂penalty/∂θ
                g, g_formula = _with_penalty(emit, layer, pname, g, g_formula, reg, params)
            grads[name][pname] = emit(
                f"grad.{name}.{pname}",
                g,
                "backward",
                name,
                g_formula,
                layer.param_shown(pname),
                per_sample=False,
            )
        if variant is not None and variant.backprop_params is not None and dx is not None:
            if layer.parametric:
                through = variant.backprop_params(name, params[name], grads[name])
                dx, _ = layer.op.backward(dz, cache, through)
        if dx is not None:
            dx = emit(f"grad.{name}.input", dx, "backward", name, in_formula, layer.in_shown())
        da = dx
    return grads


def _with_penalty(
    emit: Emit,
    layer: Layer,
    pname: str,
    g: Array,
    formula: str,
    reg: RegSpec,
    params: Params,
) -> tuple[Array, str]:
    """Emit the data and penalty parts of a regularized parameter's gradient; return the sum."""
    name, shown = layer.name, layer.param_shown(pname)
    sym = notation.PARAM_SYMBOL.get(pname, "θ")
    g = emit(
        f"grad.{name}.{pname}.data",
        g,
        "backward",
        name,
        formula.replace("∂L/", "∂L_data/"),
        shown,
        per_sample=False,
    )
    pen = emit(
        f"grad.{name}.{pname}.penalty",
        reg_mod.grad(reg, params[name][pname]),
        "backward",
        name,
        f"∂penalty/∂{sym} = {reg_mod.grad_formula(reg, sym)}",
        shown,
        per_sample=False,
    )
    return g + pen, f"∂L/∂{sym} = ∂L_data/∂{sym} + {reg_mod.grad_formula(reg, sym)}"


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
    variant: Variant | None = None,
) -> RunState:
    """One forward / loss / backward / update / loss-after step, every value into `rec`."""
    factor = variant.loss_factor if variant is not None else 1.0
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
    loss, per = loss_value(
        spec, fwd.out, fwd.z_out if _untouched(rec, layers[-1]) else None, y, rec.warn
    )
    if spec.batched:
        rec("loss.per_sample", per, "loss", None, notation.per_sample_loss_formula(spec), ())
    if spec.regularization:  # L = L_data + penalty
        loss = _record_penalty(spec, rec, loss, params)
    rec(
        "loss",
        np.asarray(loss * factor),
        "loss",
        None,
        notation.total_loss_formula(spec),
        (),
        per_sample=False,
    )
    grads = backward(spec, layers, params, fwd, y, rec, rec.warn, variant=variant)

    t = state.t + 1
    new_params: Params = {}
    new_opt: dict[str, dict[str, dict[str, Array]]] = {}
    for i, layer in enumerate(layers):
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
                        getattr(optimizer, "slot_formulas", {}).get(
                            slot, f"{slot} of the optimizer"
                        ),
                        shape,
                        per_sample=False,
                    )
            new_params[name][pname] = rec(
                f"new.{name}.{pname}", new, "update", name, formula, shape, per_sample=False
            )
            new_opt[name][pname] = slot_state
        buffers = getattr(layer.op, "buffers", None)  # batchnorm's running statistics
        if buffers is not None:
            for bname, (value, text) in buffers(fwd.caches[i][0]).items():
                new_params[name][bname] = rec(
                    f"new.{name}.{bname}",
                    value,
                    "update",
                    name,
                    text,
                    layer.param_shown(bname),
                    per_sample=False,
                )
    after = forward(layers, new_params, x)
    loss_after, _ = loss_value(spec, after.out, after.z_out, y, rec.warn)
    loss_after += reg_mod.penalty(spec.regularization, new_params)
    rec(
        "loss_after",
        np.asarray(loss_after * factor),
        "after",
        None,
        notation.total_loss_formula(spec) + " with the updated parameters",
        (),
        per_sample=False,
    )
    return RunState(new_params, new_opt, t)


def _record_penalty(spec: NetworkSpec, rec: Recorder, loss: float, params: Params) -> float:
    """Record loss.data and loss.penalty; return the total L = L_data + penalty."""
    rec(
        "loss.data",
        np.asarray(loss),
        "loss",
        None,
        notation.data_loss_formula(spec),
        (),
        per_sample=False,
    )
    pen = reg_mod.penalty(spec.regularization, params)
    rec(
        "loss.penalty",
        np.asarray(pen),
        "loss",
        None,
        reg_mod.penalty_formula(spec.regularization),
        (),
        per_sample=False,
    )
    return loss + pen


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


DATASET_LOSS = (
    "L over all the samples with the updated parameters (evaluation mode: no dropout, "
    "batchnorm on its running statistics)"
)


def dataset_loss(
    spec: NetworkSpec, layers: list[Layer], params: Params, x: Array, y: Array
) -> float:
    """The loss (with any penalty) over the whole dataset, in evaluation mode."""
    set_training(layers, False)
    try:
        fwd = forward(layers, params, x)
        loss, _ = loss_value(spec, fwd.out, fwd.z_out, y)
    finally:
        set_training(layers, True)
    return loss + reg_mod.penalty(spec.regularization, params)


def run(
    spec: NetworkSpec,
    *,
    steps: int = 1,
    round_each: int | None = None,
    overrides: Mapping[str, Array] | None = None,
    dtype: Any = np.float64,
    variant: Variant | None = None,
) -> Trace:
    """Run `steps` steps, each on the next batch of spec.batching, and return their trace.

    variant: a deliberate slip for the answer checker (None: the correct maths)."""
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
    trace.spec = spec
    x = spec.inputs.astype(dtype)
    y = spec.targets.astype(dtype)
    b = spec.batching  # each step takes the next batch: all, one or batch_size samples
    order = batching.schedule(x.shape[0], b.mode, b.batch_size, b.shuffle, b.seed)
    x_all, y_all = x, y
    warnings: list[str] = []
    for k in range(1, steps + 1):
        idx = next(order)
        x, y = x_all[idx], y_all[idx]
        begin_step(layers, idx)
        st = StepTrace(step=k, samples=idx.tolist() if spec.batched else None)
        rec = Recorder(st, x.shape[0], spec.batched, round_each, overrides or {}, warnings)
        if round_each is not None:
            x_used = round_decimals(x, round_each)
        else:
            x_used = x
        try:
            state = step_once(spec, layers, state, optimizer, x_used, y, rec, variant)

            if spec.batched and len(idx) < x_all.shape[0]:  # comparable across batch sizes
                rec(
                    "dataset_loss_after",
                    np.asarray(dataset_loss(spec, layers, state.params, x_all, y_all)),
                    "after",
                    None,
                    DATASET_LOSS,
                    (),
                    per_sample=False,
                )
        except NumericError as exc:
            raise _placed(exc, spec, k, steps) from None
        trace.steps.append(st)
    trace.warnings = warnings
    return trace
