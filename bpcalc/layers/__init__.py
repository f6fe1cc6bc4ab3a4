"""Layers, one unit each: the forward and backward pass side by side with the cache the backward
pass needs, the formulas the tables print, the convention the header states and the slips the
checker can make with the layer. Each unit lives in its own folder (`bpcalc/layers/dense/`),
whose `explain.py` holds its worked explanations (imported only when a user asks for them).

Every op works on a batch: arrays carry a leading batch axis N, images are (N, C, H, W).
Parameters live outside the units (the engine owns them), so an update makes new arrays and
the loss after the update can be recomputed from them.

A unit registers the YAML types it serves below its class. The engine, the notation, the
explainer and the checker ask the unit (`build(spec)`), never `isinstance`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from bpcalc import activations
from bpcalc.substeps import KeyedRadius

Array = np.ndarray
Params = dict[str, Array]


@dataclass(frozen=True)
class Recorded:
    """A value a layer computes besides z and a (batchnorm's μ, σ², x̂; dropout's mask).

    per_sample: one per sample of the batch (shaped like the layer's output), else one per
    feature or channel. shape: one sample's (or the value's) shape as shown, when it is
    neither (layer norm's μ and σ²: one per row of a sample)."""

    suffix: str
    value: Array
    formula: str
    per_sample: bool
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Buffer:
    """A non-trained state a training step moves on (batchnorm's running statistics)."""

    value: Array
    formula: str


@dataclass(frozen=True)
class LayerSlip:
    """A slip a student makes with this layer: the network changed so that the engine makes it
    (a layer spec with other settings, or a unit in place of the layer's own, for a slip no
    setting expresses), and what to tell the student."""

    key: str
    layer: Any  # the LayerSpec that makes the slip
    message: str
    unit: Any = None  # or: a Layer that makes the slip in place of the layer's (a backward
    # pass that leaves a term out, which no setting of the layer expresses)


class Scope(Protocol):
    """What the engine hands a unit as it runs it (forward_with, backward_with): the values the
    unit records under its own name as it goes, and the layers inside it (a residual block's f)
    run through the engine's one path, their values named <block>.<inner>.<value>. In training
    the scope records nothing, and a unit that records pays nothing for it.

    need_input: the backward pass needs ∂L/∂x (False for the first trained layer in training).
    """

    need_input: bool

    def record(
        self,
        suffix: str,
        value: Array,
        formula: str,
        like: str | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> Array:
        """Record one per-sample value of this layer: <layer>.<suffix> in the forward pass,
        grad.<layer>.<suffix> in the backward pass, shaped like the layer's "input" or
        "output" (like=None: the output in the forward pass, the input in the backward pass),
        or, shape given, as one sample of that shape (an RNN's h, T x hidden; attention's
        scores, T x T).
        Returns the value to go on with (a student's answer where the checker substitutes one,
        rounded with --round-each)."""
        ...

    def forward(self, x: Array) -> Array:
        """The output of the layers inside this one, for input x."""
        ...

    def backward(self, da: Array, formula: str) -> Array | None:
        """∂L/∂x through the layers inside, from ∂L/∂(their output) = da, which `formula`
        explains in the table; their parameter gradients go where the engine keeps them.
        None when need_input is False."""
        ...


class Unrecorded:
    """The scope of a pass nobody records, for a unit that records its own values but is
    called without the engine (forward / backward directly: a slip's Delegate, a test): each
    value goes on as it is. It has no layers inside."""

    need_input = True

    def record(self, suffix: str, value: Array, *args: Any, **kwargs: Any) -> Array:
        return value

    def forward(self, x: Array) -> Array:
        raise AssertionError("a layer without inner layers asked for their forward pass")

    def backward(self, da: Array, formula: str) -> Array | None:
        raise AssertionError("a layer without inner layers asked for their backward pass")


UNRECORDED = Unrecorded()


class Layer:
    """The base of every layer unit. Defaults describe a layer with no parameters, no
    state and nothing recorded besides its output.

    parametric: the layer has trained parameters (dense, conv2d, batchnorm, embedding, rnn,
    attention): the optimizer updates them.
    pre_activation: a parametric layer's output is a pre-activation z (dense, conv2d,
    batchnorm): its z and ∂L/∂z are recorded and an activation may follow inside it. False
    for layers whose output is already their a, with values of their own (embedding, rnn,
    attention).
    """

    types: ClassVar[tuple[str, ...]] = ()
    parametric: ClassVar[bool] = False
    pre_activation: ClassVar[bool] = True
    param_names: tuple[str, ...] = ()
    spec: Any = None  # the LayerSpec it was built from (None when built directly, in tests)

    # -- the maths ---------------------------------------------------------------------------
    def forward(self, x: Array, params: Params) -> tuple[Array, Any]:
        """(z, cache) for input x."""
        raise NotImplementedError

    def backward(self, dz: Array, cache: Any, params: Params) -> tuple[Array, dict[str, Array]]:
        """(∂L/∂x, {parameter: ∂L/∂θ}) from ∂L/∂z."""
        raise NotImplementedError

    def param_grads(self, dz: Array, cache: Any, params: Params) -> dict[str, Array]:
        """The parameter gradients alone (a unit can skip ∂L/∂x's product)."""
        return self.backward(dz, cache, params)[1]

    def forward_with(self, x: Array, params: Params, scope: Scope) -> tuple[Array, Any]:
        """forward, as the engine calls it: with a scope, for a unit that records values of its
        own as it goes or has layers inside it (a residual block). Others: forward."""
        return self.forward(x, params)

    def forward_staged(
        self, x: Array, params: Params, scope: Scope, stage: Callable[[Recorded], Array]
    ) -> tuple[Array, Any]:
        """forward_with, as a recording pass calls it: each value `recorded` lists is handed to
        `stage` as it is computed, and the unit goes on with the array `stage` returns (the
        checker substitutes a student's batch mean there, so that what follows rests on it).
        Default: forward_with, then the recorded values, which nothing in the layer reads
        again."""
        z, cache = self.forward_with(x, params, scope)
        for r in self.recorded(cache):
            stage(r)
        return z, cache

    def backward_with(
        self, dz: Array, cache: Any, params: Params, scope: Scope
    ) -> tuple[Array | None, dict[str, Array]]:
        """backward, as the engine calls it (see forward_with); without ∂L/∂x when the scope
        says nobody needs it."""
        if scope.need_input:
            return self.backward(dz, cache, params)
        return None, self.param_grads(dz, cache, params)

    @classmethod
    def check_input(cls, spec: Any, x: Array, src: Any) -> None:
        """The network's input, when this layer reads it first: raise a SpecError at src (the
        input: node) if its values do not fit (an embedding's token ids)."""

    def recorded(self, cache: Any) -> list[Recorded]:
        """Values the engine records besides z and a."""
        return []

    def buffers(self, cache: Any) -> dict[str, Buffer]:
        """Non-trained state after this step (name -> value and formula)."""
        return {}

    def begin_step(self, samples: Array) -> None:
        """A new step on these dataset samples begins (dropout draws its mask)."""

    def set_training(self, training: bool) -> None:
        """Training mode (the default) or evaluation (dropout off, batchnorm's running stats)."""

    @property
    def modal(self) -> bool:
        """Does the layer behave differently in evaluation?"""
        return False

    # -- what the user sees -----------------------------------------------------------------
    def forward_formula(self) -> str:
        raise NotImplementedError

    def grad_param_formula(self, param: str) -> str:
        raise NotImplementedError

    def grad_input_formula(self) -> str:
        raise NotImplementedError

    def convention(self) -> str | None:
        """The line of the conventions block for this layer, if it has a choice to state."""
        return None

    def param_shown(self, param: str) -> tuple[int, ...]:
        """A parameter's shape as the user wrote it."""
        return tuple(self.spec.params[param].shape)

    # -- the checker ----------------------------------------------------------------------
    def slips(self) -> list[LayerSlip]:
        return []

    def substeps(
        self,
        x: Array,
        params: Params,
        dz: Array | None,
        radius: KeyedRadius,
        stage: Callable[[Recorded], Array] | None = None,
    ) -> dict[str, Array]:
        """Σ_s |∂v/∂s|·radius(s) over the sub-steps a person rounds inside this layer's
        formulas (bpcalc/substeps.py), for input x, parameters params and dz = ∂L/∂z (None:
        the forward pass only), in the internal shapes. Keys: "z", a recorded value's suffix
        ("var"), "input" (∂L/∂x), a parameter (∂L/∂θ), a buffer (its new value); radius is
        called with the same key. stage: the student's own recorded values (μ, σ², as in
        forward_staged), which the sub-steps are worked from. A value not named has none.
        Default: none."""
        return {}


_REGISTRY: dict[str, tuple[str, str]] = {}  # YAML type -> (module, class name)


def register(module: str, cls: str, *types: str) -> None:
    """Register a unit by name, so its module is imported only when a network uses it."""
    for t in types:
        _REGISTRY[t] = (module, cls)


def unit_class(type_: str) -> type[Layer]:
    module, cls = _REGISTRY[type_]
    return getattr(importlib.import_module(module), cls)


def parse(type_: str) -> Any:
    """The parser of a layer type: parse(lsrc, name, type, shape in, squeezed, previous) -> spec,
    defined in the unit's module beside the unit."""
    module, _ = _REGISTRY[type_]
    return importlib.import_module(module).parse


def build(spec: Any) -> Layer:
    """The unit for a layer spec."""
    return unit_class(spec.type).from_spec(spec)  # type: ignore[attr-defined]


def explain_modules() -> list[str]:
    """The modules with the layers' worked explanations."""
    return sorted({f"{module}.explain" for module, _ in _REGISTRY.values()})


# Each unit's module, imported when a network has a layer of its type (start-up: a network
# pays only for the layers it uses).
register("bpcalc.layers.dense", "Dense", "dense")
register("bpcalc.layers.conv2d", "Conv2d", "conv2d")
register("bpcalc.layers.pool", "MaxPool2d", "maxpool2d")
register("bpcalc.layers.pool", "AvgPool2d", "avgpool2d")
register("bpcalc.layers.flatten", "Flatten", "flatten")
register("bpcalc.layers.dropout", "Dropout", "dropout")
register("bpcalc.layers.batchnorm", "BatchNorm", "batchnorm")
register("bpcalc.layers.layernorm", "LayerNorm", "layernorm")
register("bpcalc.layers.residual", "Residual", "residual")
register("bpcalc.layers.activation", "ActivationLayer", *activations.kinds())
register("bpcalc.layers.embedding", "Embedding", "embedding")
register("bpcalc.layers.rnn", "RNN", "rnn")
register("bpcalc.layers.attention", "Attention", "attention")


def check_input(spec: Any, x: Array, src: Any) -> None:
    """The first layer's check of the network's input values (see Layer.check_input)."""
    unit_class(spec.type).check_input(spec, x, src)


class Delegate(Layer):
    """A unit that behaves as `inner` does except where a subclass says otherwise: how a slip
    changes one part of a layer (its backward pass) and keeps the rest."""

    def __init__(self, inner: Layer) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.param_names = inner.param_names

    @property
    def parametric(self) -> bool:  # type: ignore[override]
        return self.inner.parametric

    @property
    def pre_activation(self) -> bool:  # type: ignore[override]
        return self.inner.pre_activation

    def forward(self, x: Array, params: Params) -> tuple[Array, Any]:
        return self.inner.forward(x, params)

    def forward_with(self, x: Array, params: Params, scope: Scope) -> tuple[Array, Any]:
        return self.inner.forward_with(x, params, scope)

    def backward(self, dz: Array, cache: Any, params: Params) -> tuple[Array, dict[str, Array]]:
        return self.inner.backward(dz, cache, params)

    def param_grads(self, dz: Array, cache: Any, params: Params) -> dict[str, Array]:
        return self.inner.param_grads(dz, cache, params)

    def forward_staged(
        self, x: Array, params: Params, scope: Scope, stage: Callable[[Recorded], Array]
    ) -> tuple[Array, Any]:
        if type(self).forward_with is Delegate.forward_with:  # the inner unit's forward pass
            return self.inner.forward_staged(x, params, scope, stage)
        return super().forward_staged(x, params, scope, stage)

    def recorded(self, cache: Any) -> list[Recorded]:
        return self.inner.recorded(cache)

    def buffers(self, cache: Any) -> dict[str, Buffer]:
        return self.inner.buffers(cache)

    def begin_step(self, samples: Array) -> None:
        self.inner.begin_step(samples)

    def set_training(self, training: bool) -> None:
        self.inner.set_training(training)

    def forward_formula(self) -> str:
        return self.inner.forward_formula()

    def grad_param_formula(self, param: str) -> str:
        return self.inner.grad_param_formula(param)

    def grad_input_formula(self) -> str:
        return self.inner.grad_input_formula()

    def param_shown(self, param: str) -> tuple[int, ...]:
        return self.inner.param_shown(param)

    def substeps(
        self,
        x: Array,
        params: Params,
        dz: Array | None,
        radius: KeyedRadius,
        stage: Callable[[Recorded], Array] | None = None,
    ) -> dict[str, Array]:
        return self.inner.substeps(x, params, dz, radius, stage)
