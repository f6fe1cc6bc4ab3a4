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

from bpcalc import activations, batching, losses, notation
from bpcalc import layers as layers_mod
from bpcalc import optim as optim_mod
from bpcalc import regularization as reg_mod
from bpcalc.errors import Location, NumericError
from bpcalc.network.types import LayerSpec, NetworkSpec, RegSpec
from bpcalc.trace import Record, StepTrace, Trace, element_name

Array = np.ndarray
Params = dict[str, dict[str, Array]]  # layer name -> parameter name -> array (internal shape)
# emit(name, array, stage, layer, formula, shape) -> the array to use downstream.
# `shape` is the shown shape of one sample (per-sample values) or of the parameter.
Emit = Callable[..., Array]


# --- layers at run time -------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A layer at run time: its unit (the linear or shape part) and the activation unit
    applied after it (None: a = z). An activation layer of its own is a unit that passes its
    input on, followed by its activation. A block (a residual block) has its own layers in
    `inner`, which its unit runs through this same path (see Scope). The value names and
    formulas a step records are written once, when the layer is built, so a step that records
    nothing pays nothing for them."""

    spec: LayerSpec
    op: layers_mod.Layer
    act: activations.Activation | None
    inner: tuple[Layer, ...] = ()
    # copied from the spec and the unit once, since a training step reads them every time
    name: str = field(init=False, repr=False, compare=False)
    parametric: bool = field(init=False, repr=False, compare=False)
    has_z: bool = field(init=False, repr=False, compare=False)  # a recorded z before f
    param_names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    text: LayerText = field(init=False, repr=False, compare=False)
    # the layer or a layer inside it has parameters to train (training's backward starts there)
    trains: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.spec.name)
        object.__setattr__(self, "parametric", self.op.parametric)
        object.__setattr__(self, "has_z", self.op.parametric and self.op.pre_activation)
        object.__setattr__(self, "param_names", self.op.param_names)
        object.__setattr__(self, "text", LayerText.of(self))
        trains = self.op.parametric or any(layer.trains for layer in self.inner)
        object.__setattr__(self, "trains", trains)

    def out_shown(self) -> tuple[int, ...]:
        s = self.spec
        return s.out_shape[1:] if s.squeezed_out else s.out_shape

    def in_shown(self) -> tuple[int, ...]:
        s = self.spec
        return s.in_shape[1:] if s.squeezed_in else s.in_shape

    def param_shown(self, param: str) -> tuple[int, ...]:
        return self.op.param_shown(param)


@dataclass(frozen=True)
class LayerText:
    """A layer's value names and formulas, as the trace records them."""

    z: str
    a: str
    grad_a: str
    grad_z: str
    grad_input: str
    z_formula: str  # the op's formula (z = W·x + b; a = maxpool2(x) for shape layers)
    a_formula: str  # a = f(z), or the op's formula for a layer without its own z
    grad_z_formula: str  # ∂L/∂z = ∂L/∂a ⊙ f′(z)
    grad_input_formula: str
    shown: tuple[int, ...]  # one sample's output, as the user sees it
    in_shown: tuple[int, ...]

    @classmethod
    def of(cls, layer: Layer) -> LayerText:
        name, op, act = layer.name, layer.op, layer.act
        z_formula = op.forward_formula()
        if act is not None:
            a_formula = act.formula() if layer.has_z else z_formula
            grad_z = act.grad_formula()
        else:
            a_formula = notation.NO_ACTIVATION if layer.has_z else z_formula
            grad_z = notation.NO_ACTIVATION_GRAD
        return cls(
            f"{name}.z",
            f"{name}.a",
            f"grad.{name}.a",
            f"grad.{name}.z",
            f"grad.{name}.input",
            z_formula,
            a_formula,
            grad_z,
            op.grad_input_formula(),
            layer.out_shown(),
            layer.in_shown(),
        )


def build_layer(spec: LayerSpec) -> Layer:
    """The layer's unit (its module imported now: a network pays only for the layers it
    uses), its activation unit, and a block's inner layers."""
    act = spec.activation
    unit = act.unit() if act is not None else None
    return Layer(spec, layers_mod.build(spec), unit, tuple(build_layer(s) for s in spec.inner))


def leaves(layers: list[Layer] | tuple[Layer, ...]) -> list[Layer]:
    """Every layer, each block followed by the layers inside it (depth first)."""
    out: list[Layer] = []
    for layer in layers:
        out.append(layer)
        out += leaves(layer.inner)
    return out


@dataclass(frozen=True)
class Substitution:
    """Other units in place of the network's own: how the checker reproduces a slip with the
    one engine (an activation without its derivative, a ReLU′(0) of 1, an op that
    back-propagates through updated weights, a logarithm of another base). Empty: the
    network as written.

    activations: layer name -> the activation unit to use; ops: layer name -> the op to use;
    loss_factor: a factor on the loss and every gradient (log_b(p) = ln(p) / ln(b));
    optimizer: the update rule to use instead of the network's (None: the network's).
    """

    activations: Mapping[str, activations.Activation] = field(default_factory=dict)
    ops: Mapping[str, Any] = field(default_factory=dict)
    loss_factor: float = 1.0
    optimizer: optim_mod.Optimizer | None = None

    def __add__(self, other: Substitution) -> Substitution:
        """Both substitutions at once (other's units win where both replace one)."""
        return Substitution(
            {**self.activations, **other.activations},
            {**self.ops, **other.ops},
            self.loss_factor * other.loss_factor,
            other.optimizer or self.optimizer,
        )

    def apply(self, layers: list[Layer] | tuple[Layer, ...]) -> list[Layer]:
        return [
            Layer(
                layer.spec,
                self.ops.get(layer.name, layer.op),
                self.activations.get(layer.name, layer.act),
                tuple(self.apply(layer.inner)),
            )
            for layer in layers
        ]


def initial_params(spec: NetworkSpec, dtype: Any = np.float64) -> Params:
    return {
        layer.name: {k: np.array(v, dtype=dtype) for k, v in layer.params.items()}
        for layer in spec.all_layers
        if layer.params
    }


def set_training(layers: list[Layer], training: bool) -> None:
    """Training mode (the default) or evaluation: dropout off, batchnorm on its running stats."""
    for layer in leaves(layers):
        layer.op.set_training(training)


def op_caches(
    layers: list[Layer] | tuple[Layer, ...], fwd: ForwardResult
) -> list[tuple[Layer, Any]]:
    """(layer, its op's cache) for every layer of a forward pass, inside blocks too."""
    out: list[tuple[Layer, Any]] = []
    for i, layer in enumerate(layers):
        out.append((layer, fwd.caches[i][0]))
        if layer.inner:
            out += op_caches(layer.inner, fwd.inner[layer.name])
    return out


def carry_buffers(layers: list[Layer], fwd: ForwardResult, params: Params) -> None:
    """Store the running statistics a training forward pass produced (batchnorm) in params,
    in place: for loops that do not go through step_once."""
    for layer, cache in op_caches(layers, fwd):
        for bname, buf in layer.op.buffers(cache).items():
            params[layer.name][bname] = buf.value.astype(params[layer.name][bname].dtype)


def begin_step(layers: list[Layer], samples: Array) -> None:
    """Tell layers with per-step randomness (dropout) which dataset samples this step uses."""
    for layer in leaves(layers):
        layer.op.begin_step(samples)


# --- emitting values ----------------------------------------------------------------------


def silent(name: str, arr: Array, *args: Any, **kwargs: Any) -> Array:
    """The emitter for fast loops: records nothing."""
    return arr


@dataclass
class Recorder:
    """Stores every emitted value in a StepTrace, as the user sees it.

    round_each: round each value to that many decimals (half away from zero, as people do)
    before it is used further, in the passes after the update too; the numbers the exercise
    gives (input, target, the parameters a step starts from) stay as they are.
    overrides: values to use instead of the computed ones (shown shape; NaN = not given),
    so downstream values follow from them; the computed value is still what is recorded.
    passes: also record the forward passes after the update (loss_after's, and the dataset's
    for dataset_loss_after) in StepTrace.hidden, as "after:fc.z", "dataset:fc.z", where
    overrides reach them too (the answer checker's rounding allowance).
    """

    step: StepTrace
    n: int
    batched: bool
    round_each: int | None = None
    overrides: Mapping[str, Array] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    passes: bool = False

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
        if self.round_each is not None and not _copied(name, formula):
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

    def pass_emitter(self, prefix: str, n: int) -> Emit:
        """The emitter of a forward pass after the update (prefix "after:" or "dataset:", n
        samples): silent, or rounding (round_each), or recording into StepTrace.hidden."""
        if not self.passes:
            if self.round_each is None:
                return silent
            digits = self.round_each
            return lambda name, arr, *args, **kwargs: round_decimals(arr, digits)
        hidden = Recorder(
            StepTrace(self.step.step), n, self.batched, self.round_each, self.overrides
        )
        hidden.step.records = self.step.hidden

        def emit(name: str, arr: Array, *args: Any, **kwargs: Any) -> Array:
            return hidden(prefix + name, arr, *args, **kwargs)

        return emit


def _copied(name: str, formula: str) -> bool:
    """A number a person copies from the exercise rather than works out (the input, the
    target, the parameters the step starts from): hand rounding leaves it as given."""
    return name in ("input", "target") or formula in (notation.GIVEN_PARAM, notation.GIVEN_BUFFER)


def round_decimals(arr: Array, decimals: int) -> Array:
    """Round to `decimals` decimals half away from zero, as a person rounds the number they
    see (0.3925 -> 0.393, 0.0005 -> 0.001, -2.5 -> -3), where np.round rounds half to even on
    the binary value (0.3925 is 0.39249999999999996 in float64). It never overflows: numbers
    of magnitude 2^52 and more have no fractional digits in float64 and are kept as they are."""
    arr = np.asarray(arr)
    small = np.abs(arr) < 2.0**52
    x = np.where(small, arr, 0).astype(np.float64)
    scale = 10.0**decimals
    y = np.abs(x) * scale
    # a few units in the last place: the decimal the person sees, 392.49999999999994 -> 392.5
    # (for y of 2^40 and more those units are too coarse, and y has no tie to break)
    big = y >= 2.0**40
    r = np.where(big, np.round(y), np.floor(y + 0.5 + 4 * np.spacing(y))) / scale
    out = np.where(small, np.copysign(r, x), arr)
    return out.astype(arr.dtype) if arr.dtype.kind == "f" else out


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
    rest = parts[1:] if parts[0] in ("grad", "new", "state") and len(parts) > 1 else parts
    layer = rest[0]
    # the innermost layer the name starts with (res.fc.z: the layer res.fc inside block res)
    where = None
    for lay in spec.all_layers:
        if lay.name == ".".join(rest[: lay.name.count(".") + 1]):
            layer, where = lay.name, lay.where
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
    # log p of a softmax output, from the same exponential as p (for the cross-entropy)
    log_out: Array | None = None
    # a block's name -> the pass through the layers inside it
    inner: dict[str, ForwardResult] = field(default_factory=dict)


_NONE: dict[str, Array] = {}


class _ForwardScope:
    """The scope (bpcalc.layers.Scope) of the layer a forward pass is at: one per pass, moved
    from layer to layer (a block's inner layers get their own pass and scope)."""

    __slots__ = ("emit", "layer", "params", "result")
    need_input = True

    def __init__(self, params: Params, emit: Emit, result: ForwardResult) -> None:
        self.params, self.emit, self.result = params, emit, result
        self.layer: Layer

    def record(
        self,
        suffix: str,
        value: Array,
        formula: str,
        like: str | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> Array:
        if self.emit is silent:
            return value
        name, t = self.layer.name, self.layer.text
        shown = shape if shape is not None else t.in_shown if like == "input" else t.shown
        return self.emit(f"{name}.{suffix}", value, "forward", name, formula, shown)

    def forward(self, x: Array) -> Array:
        inner = forward(list(self.layer.inner), self.params, x, self.emit)
        self.result.inner[self.layer.name] = inner
        return inner.out

    def backward(self, da: Array, formula: str) -> Array | None:
        raise AssertionError("a unit asked for the backward pass during the forward pass")


def forward(
    layers: list[Layer],
    params: Params,
    x: Array,
    emit: Emit = silent,
    log_softmax_out: bool = False,
) -> ForwardResult:
    """a⁽0⁾ = x; for each layer z = op(a_prev), a = f(z). Emits <layer>.z and <layer>.a (and
    through a block's scope, the values of the layers inside it).

    log_softmax_out: the output is a softmax read by a cross-entropy: compute its log from
    the same shifted exponential (activations.softmax_and_log: the same bits as the two
    apart) and hand it on as log_out."""
    result = ForwardResult(x, None, [])
    caches = result.caches
    scope = _ForwardScope(params, emit, result)
    recording = emit is not silent
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        name, t = layer.name, layer.text
        p = params.get(name, _NONE)
        if recording and p:
            p = {
                k: emit(
                    f"{name}.{k}",
                    v,
                    "forward",
                    name,
                    notation.GIVEN_PARAM if k in layer.param_names else notation.GIVEN_BUFFER,
                    layer.param_shown(k),
                    per_sample=False,
                )
                for k, v in p.items()
            }
            params[name] = p  # a student's copy of a parameter reaches backward and update too
        scope.layer = layer
        if recording:
            per_feature = (layer.spec.in_shape[0],)

            def stage(
                r: layers_mod.Recorded, name: str = name, t: LayerText = t, f: Any = per_feature
            ) -> Array:
                if r.shape is not None:
                    shown = r.shape
                else:
                    shown = t.shown if r.per_sample else f  # or per feature
                return emit(
                    f"{name}.{r.suffix}", r.value, "forward", name, r.formula, shown, r.per_sample
                )

            z, cache = layer.op.forward_staged(x, p, scope, stage)
        else:
            z, cache = layer.op.forward_with(x, p, scope)
        if recording and layer.has_z:
            z = emit(t.z, z, "forward", name, t.z_formula, t.shown)
        if layer.act is None:
            a = z
        elif i == last and log_softmax_out and layer.act.kind == "softmax":
            a, result.log_out = layer.act.with_log(z)
        else:
            a = layer.act.forward(z)
        if recording:
            a = emit(t.a, a, "forward", name, t.a_formula, t.shown)
        caches.append((cache, z, a))
        result.z_out = z if layer.act is not None else None
        x = a
    result.out = x
    return result


def loss_value(
    spec: NetworkSpec,
    out: Array,
    z_out: Array | None,
    y: Array,
    warn: Callable[[str], None] | None = None,
    log_out: Array | None = None,
) -> tuple[float, Array]:
    """(L, ℓ per sample). Uses the logits for a stable log when the output is softmax/sigmoid
    (or the log-softmax the forward pass already has)."""
    loss = losses.of(spec.loss)
    if log_out is not None:
        per = loss.from_log(log_out, y)
    else:
        use_z = z_out if loss.fused_with == spec.output_activation else None
        per = loss.per_sample(out, y, use_z, warn, _output_element(spec) if warn else "a")
    return losses.reduce(spec.loss.reduction, per), per


def shares_log_softmax(spec: NetworkSpec) -> bool:
    """Softmax output with cross-entropy: the loss can read the forward pass's log-softmax."""
    return spec.loss.kind == "cross_entropy" and spec.output_activation == "softmax"


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


class _BackwardScope:
    """The scope (bpcalc.layers.Scope) of the layer a backward pass is at: one per pass,
    moved from layer to layer (a block's inner layers get their own)."""

    __slots__ = ("emit", "fwd", "grads", "layer", "need_input", "params", "spec")

    def __init__(
        self,
        spec: NetworkSpec,
        params: Params,
        fwd: ForwardResult,
        emit: Emit,
        grads: dict[str, dict[str, Array]],
    ) -> None:
        self.spec, self.params, self.fwd = spec, params, fwd
        self.emit, self.grads = emit, grads
        self.layer: Layer
        self.need_input = True

    def record(
        self,
        suffix: str,
        value: Array,
        formula: str,
        like: str | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> Array:
        if self.emit is silent:
            return value
        name, t = self.layer.name, self.layer.text
        shown = shape if shape is not None else t.shown if like == "output" else t.in_shown
        return self.emit(f"grad.{name}.{suffix}", value, "backward", name, formula, shown)

    def forward(self, x: Array) -> Array:
        raise AssertionError("a unit asked for the forward pass during the backward pass")

    def backward(self, da: Array, formula: str) -> Array | None:
        """formula: how ∂L/∂a of the last inner layer follows from the block's gradient."""
        inner = self.fwd.inner[self.layer.name]
        return _chain_back(
            self.spec,
            self.layer.inner,
            self.params,
            inner,
            da,
            self.emit,
            self.grads,
            self.need_input,
            formula,
        )


def backward(
    spec: NetworkSpec,
    layers: list[Layer],
    params: Params,
    fwd: ForwardResult,
    y: Array,
    emit: Emit = silent,
    warn: Callable[[str], None] | None = None,
    input_grad: bool = True,
    loss_factor: float = 1.0,
) -> dict[str, dict[str, Array]]:
    """Chain rule from the loss back to the input; returns ∂L/∂θ for every parameter.

    input_grad=False: stop at the first layer with parameters, whose ∂L/∂x nobody reads
    (training). loss_factor: a factor on every gradient (a Substitution's; 1 for the
    correct maths)."""
    n = y.shape[0]
    scale = losses.batch_scale(spec.loss.reduction, n) * loss_factor
    loss = losses.of(spec.loss)
    fused = loss.fused_with == spec.output_activation
    recording = emit is not silent
    if fused and not recording:  # training: ∂L/∂a is not needed
        da = None
    else:
        da = loss.grad_a(fwd.out, y, warn, _output_element(spec) if warn else "a")
        if scale != 1.0:
            da *= scale  # in place: the same numbers as da * scale, without a new array
    grads: dict[str, dict[str, Array]] = {}
    output = _Output(loss, y, scale) if fused else None
    top = notation.batch_mean_formula(spec, loss.grad_formula) if recording else ""
    _chain_back(spec, tuple(layers), params, fwd, da, emit, grads, input_grad, top, output)
    return grads


class _Output:
    """The output layer's ∂L/∂z fused with the loss (softmax with the cross-entropy). A plain
    class: a frozen dataclass costs a microsecond to build, on every training step."""

    __slots__ = ("loss", "scale", "y")

    def __init__(self, loss: losses.Loss, y: Array, scale: float) -> None:
        self.loss, self.y, self.scale = loss, y, scale


def _chain_back(
    spec: NetworkSpec,
    layers: tuple[Layer, ...],
    params: Params,
    fwd: ForwardResult,
    da: Array | None,
    emit: Emit,
    grads: dict[str, dict[str, Array]],
    input_grad: bool,
    top_formula: str,
    output: _Output | None = None,
) -> Array | None:
    """∂L/∂x of the first of `layers` from ∂L/∂a of the last (top_formula says where that came
    from), each layer's parameter gradients into grads; None when input_grad is False.
    output: the last layer's ∂L/∂z is the loss's fused form (the network's output layer)."""
    recording = emit is not silent
    last = len(layers) - 1
    stop = 0
    if not input_grad:
        stop = last + 1
        for i, layer in enumerate(layers):
            if layer.trains:
                stop = i
                break
    scope = _BackwardScope(spec, params, fwd, emit, grads)
    for i in range(last, stop - 1, -1):
        layer = layers[i]
        name, t = layer.name, layer.text
        cache, z, a = fwd.caches[i]
        if recording:
            formula = top_formula if i == last else notation.grad_from_next(layers[i + 1].name)
            da = emit(t.grad_a, da, "backward", name, formula, t.shown)
        formula = t.grad_z_formula
        if layer.act is None:
            dz = da
        elif output is not None and i == last and layer.act.fuses_with_loss:
            dz = output.loss.fused_grad_z(a, output.y)
            if output.scale != 1.0:
                dz *= output.scale
            if recording:
                formula = notation.batch_mean_formula(spec, output.loss.fused_formula)
        else:
            dz = layer.act.backward(da, z, a)
        if recording and layer.has_z:
            dz = emit(t.grad_z, dz, "backward", name, formula, t.shown)
        p = params.get(name, _NONE)
        scope.layer = layer
        scope.need_input = input_grad or i > stop  # in training nobody reads the first's ∂L/∂x
        dx, pgrads = layer.op.backward_with(dz, cache, p, scope)
        if recording or spec.regularization:
            if layer.param_names:
                grads[name] = _param_grads(spec, layer, pgrads, params, emit, recording)
        elif pgrads:
            grads[name] = pgrads
        if recording and dx is not None:
            dx = emit(t.grad_input, dx, "backward", name, t.grad_input_formula, t.in_shown)
        da = dx
    return da if input_grad else None


def _param_grads(
    spec: NetworkSpec,
    layer: Layer,
    pgrads: dict[str, Array],
    params: Params,
    emit: Emit,
    recording: bool,
) -> dict[str, Array]:
    """∂L/∂θ of the layer's parameters: the data part, plus the penalty's where one applies."""
    name = layer.name
    reg = spec.regularization.get(name)
    out = {}
    for pname in layer.param_names:
        g = pgrads[pname]
        if not recording:
            if reg_mod.applies(reg, pname):  # ∂L/∂θ = ∂L_data/∂θ + ∂penalty/∂θ
                g = g + reg_mod.grad(reg, params[name][pname])
            out[pname] = g
            continue
        g_formula = notation.batch_sum_formula(spec, layer.op.grad_param_formula(pname))
        if reg_mod.applies(reg, pname):
            g, g_formula = _with_penalty(emit, layer, pname, g, g_formula, reg, params)
        out[pname] = emit(
            f"grad.{name}.{pname}",
            g,
            "backward",
            name,
            g_formula,
            layer.param_shown(pname),
            per_sample=False,
        )
    return out


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
        notation.data_part(formula),
        shown,
        per_sample=False,
    )
    pen = emit(
        f"grad.{name}.{pname}.penalty",
        reg_mod.grad(reg, params[name][pname]),
        "backward",
        name,
        notation.penalty_grad_formula(reg_mod.grad_formula(reg, sym), sym),
        shown,
        per_sample=False,
    )
    return g + pen, notation.regularized_grad_formula(reg_mod.grad_formula(reg, sym), sym)


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
    loss_factor: float = 1.0,
) -> RunState:
    """One forward / loss / backward / update / loss-after step, every value into `rec`."""
    factor = loss_factor
    params = state.params
    x = rec("input", x, "forward", None, notation.INPUT, _input_shown(spec))
    fwd = forward(layers, params, x, rec)
    y = rec(
        "target",
        y,
        "loss",
        None,
        notation.target(spec.target_classes is not None),
        layers[-1].out_shown(),
    )
    loss, per = loss_value(
        spec, fwd.out, fwd.z_out if _untouched(rec, layers[-1]) else None, y, rec.warn
    )
    if spec.batched:
        per = rec("loss.per_sample", per, "loss", None, notation.per_sample_loss_formula(spec), ())
        loss = losses.reduce(spec.loss.reduction, per)
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
    grads = backward(spec, layers, params, fwd, y, rec, rec.warn, loss_factor=factor)
    clipped = _clip(spec, layers, grads, rec)

    t = state.t + 1
    new_params: Params = {}
    new_opt: dict[str, dict[str, dict[str, Array]]] = {}
    for layer, cache in op_caches(layers, fwd):  # the layers inside blocks too
        if not layer.parametric:
            continue
        name = layer.name
        new_params[name] = {}
        new_opt[name] = {}
        frozen = layer.spec.freeze
        for pname in layer.param_names:
            theta, g = params[name][pname], grads[name][pname]
            shape = layer.param_shown(pname)
            if pname in frozen:
                new = theta
                formula = notation.frozen(pname)
                slot_state = state.opt_state.get(name, {}).get(pname, {})
            else:
                prev = state.opt_state.get(name, {}).get(pname) or optimizer.init_state(theta)

                def slot(
                    key: str, value: Array, name: str = name, pname: str = pname, shape: Any = shape
                ) -> Array:
                    return rec(
                        f"state.{name}.{pname}.{key}",
                        value,
                        "update",
                        name,
                        optimizer.slot_formulas[key],
                        shape,
                        per_sample=False,
                    )

                new, slot_state = optimizer.update(theta, g, prev, t, slot=slot)
                formula = (
                    optim_mod.with_clipped(optimizer.formula) if clipped else optimizer.formula
                )
            new_params[name][pname] = rec(
                f"new.{name}.{pname}", new, "update", name, formula, shape, per_sample=False
            )
            new_opt[name][pname] = slot_state
        for bname, buf in layer.op.buffers(cache).items():  # running statistics
            new_params[name][bname] = rec(
                f"new.{name}.{bname}",
                buf.value,
                "update",
                name,
                buf.formula,
                layer.param_shown(bname),
                per_sample=False,
            )
    emit_after = rec.pass_emitter("after:", x.shape[0])
    after = forward(layers, {k: dict(v) for k, v in new_params.items()}, x, emit_after)
    z_out = after.z_out if emit_after is silent else None  # the log of the rounded p, as on paper
    loss_after, _ = loss_value(spec, after.out, z_out, y, rec.warn)
    loss_after += reg_mod.penalty(spec.regularization, new_params)
    rec(
        "loss_after",
        np.asarray(loss_after * factor),
        "after",
        None,
        notation.loss_after_formula(spec),
        (),
        per_sample=False,
    )
    return RunState(new_params, new_opt, t)


def _trained(layers: list[Layer]) -> list[tuple[str, str]]:
    """(layer, parameter) of every parameter the optimizer updates (frozen ones left out)."""
    return [
        (layer.name, p)
        for layer in layers
        if layer.parametric
        for p in layer.param_names
        if p not in layer.spec.freeze
    ]


def _clip(spec: NetworkSpec, layers: list[Layer], grads: Params, rec: Recorder) -> bool:
    """Gradient clipping by norm (the optimizer's clip_norm): records ‖g‖ and, when it fires,
    replaces each trained parameter's gradient in `grads` by its clipped one, recorded as
    clipped.<layer>.<param>. Returns whether it fired."""
    max_norm = spec.optimizer.clip_norm
    if max_norm is None:
        return False
    trained = _trained(layers)
    norm, c = optim_mod.clip_scale([grads[name][p] for name, p in trained], max_norm)
    # at the end of the backward stage: they are the gradients the update reads
    rec("grad_norm", np.asarray(norm), "backward", None, optim_mod.GRAD_NORM_FORMULA, (), False)
    if c >= 1.0:
        return False
    shown = {layer.name: layer for layer in layers}
    formula = optim_mod.clipped_formula(max_norm, norm, c)
    for name, p in trained:
        grads[name][p] = rec(
            f"clipped.{name}.{p}",
            grads[name][p] * c,
            "backward",
            name,
            formula,
            shown[name].param_shown(p),
            per_sample=False,
        )
    return True


def _record_penalty(spec: NetworkSpec, rec: Recorder, loss: float, params: Params) -> float:
    """Record loss.data and loss.penalty; return the total L = L_data + penalty."""
    loss = rec(
        "loss.data",
        np.asarray(loss),
        "loss",
        None,
        notation.data_loss_formula(spec),
        (),
        per_sample=False,
    )
    pen = rec(
        "loss.penalty",
        np.asarray(reg_mod.penalty(spec.regularization, params)),
        "loss",
        None,
        reg_mod.penalty_formula(spec.regularization),
        (),
        per_sample=False,
    )
    return float(loss) + float(pen)


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


DATASET_LOSS = notation.DATASET_LOSS


def dataset_loss(
    spec: NetworkSpec,
    layers: list[Layer],
    params: Params,
    x: Array,
    y: Array,
    emit: Emit = silent,
) -> float:
    """The loss (with any penalty) over the whole dataset, in evaluation mode."""
    set_training(layers, False)
    try:
        fwd = forward(layers, params, x, emit)
        loss, _ = loss_value(spec, fwd.out, fwd.z_out if emit is silent else None, y)
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
    substitute: Substitution | None = None,
    step_overrides: Mapping[int, Mapping[str, Array]] | None = None,
    passes: bool = False,
) -> Trace:
    """Run `steps` steps, each on the next batch of spec.batching, and return their trace.

    substitute: other units in place of the network's own, to reproduce a slip for the answer
    checker (None: the network as written). overrides: values to use instead of the computed
    ones in every step; step_overrides: per step (1-based), in place of `overrides` there.
    passes: record the forward passes after each update too (see Recorder)."""
    layers = [build_layer(s) for s in spec.layers]
    factor = 1.0
    optimizer = optim_mod.build(spec.optimizer)
    if substitute is not None:
        layers, factor = substitute.apply(layers), substitute.loss_factor
        optimizer = substitute.optimizer or optimizer
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
        given = (step_overrides or {}).get(k, overrides or {})
        rec = Recorder(st, x.shape[0], spec.batched, round_each, given, warnings, passes)
        try:
            state = step_once(spec, layers, state, optimizer, x, y, rec, factor)

            if spec.batched and len(idx) < x_all.shape[0]:  # comparable across batch sizes
                rec(
                    "dataset_loss_after",
                    np.asarray(
                        dataset_loss(
                            spec,
                            layers,
                            {k: dict(v) for k, v in state.params.items()},
                            x_all,
                            y_all,
                            rec.pass_emitter("dataset:", x_all.shape[0]),
                        )
                    ),
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
