"""Activations, one unit each: a = f(z) and ∂L/∂z = ∂L/∂a ⊙ f′(z) side by side, with the
formula text, the worked explanation of one element, and the slips a student makes with it.

A unit registers itself below its class (`register(Sigmoid)`); the spec parser, the engine,
the explainer, the LaTeX writer and the checker ask the registry, never a list of names.
Adding an activation is one class here plus its tests and docs.

Conventions: derivatives are written from the outputs where the textbooks do (σ′ = a(1 − a),
tanh′ = 1 − a²). ReLU′(0) is taken as 0 (as PyTorch does). Softmax is over the last axis of
one sample; its Jacobian is not diagonal, so its backward is ∂L/∂z_i = a_i (∂L/∂a_i − Σ_j a_j ∂L/∂a_j).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from bpcalc.substeps import Radius, term

Array = np.ndarray
MINUS = "−"


# --- numerically careful building blocks (also used by the losses) ------------------------


def sigmoid(z: Array) -> Array:
    """σ(z) = 1 / (1 + e^(−z)), computed without overflow for large |z|."""
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def softmax(z: Array) -> Array:
    """softmax over the last axis, shifted by the max so e^z never overflows. z: (N, K)."""
    e = np.exp(z - np.maximum.reduce(z, axis=-1, keepdims=True))
    e /= np.add.reduce(e, axis=-1, keepdims=True)  # ufunc reductions: no Python wrapper per call
    return e


def log_softmax(z: Array) -> Array:
    """log softmax(z) = z − max − log Σ e^(z − max); finite even where softmax underflows to 0."""
    shifted = z - np.maximum.reduce(z, axis=-1, keepdims=True)
    shifted -= np.log(np.add.reduce(np.exp(shifted), axis=-1, keepdims=True))
    return shifted


def softmax_and_log(z: Array) -> tuple[Array, Array]:
    """(softmax(z), log_softmax(z)) from one shifted exponential, for training with softmax
    and cross-entropy. The same operations on the same numbers as the two functions above,
    so the same bits; only the shift, e^(z − max) and its sum are not computed twice. z: (N, K).
    """
    shifted = z - np.maximum.reduce(z, axis=-1, keepdims=True)
    e = np.exp(shifted)
    total = np.add.reduce(e, axis=-1, keepdims=True)
    shifted -= np.log(total)
    e /= total
    return e, shifted


def log_sigmoid(z: Array) -> Array:
    """log σ(z) = −softplus(−z), stable for z = ±1000."""
    return -np.logaddexp(0.0, -z)


_erf = np.frompyfunc(math.erf, 1, 1)


def erf(z: Array) -> Array:
    """The error function element-wise, to double precision (math.erf on each element)."""
    return _erf(z).astype(z.dtype) if z.size else np.zeros_like(z)


# --- what an explanation of one element needs ---------------------------------------------


@dataclass(frozen=True)
class Terms:
    """One element's symbols and numbers, for writing f and f′ out by hand.

    z, a, da: symbols of the input, the output and ∂L/∂a (z11, a11, ∂L/∂a11);
    zv, av, dav: their values; num: a number as the explanation prints it inside an
    expression; const: a configuration constant (slope) with all its digits; result: a
    number as a result. row: for softmax, every element of the row as (z, zv, a, av, da, dav).
    """

    z: str
    zv: float
    a: str
    av: float
    da: str
    dav: float
    num: Callable[[float], str]
    const: Callable[[float], str]
    result: Callable[[float], str]
    row: tuple[tuple[str, float, str, float, str, float], ...] = ()


# (symbols, numbers substituted, note)
Written = tuple[str, str, str]


def _times(*factors: str) -> str:
    return " × ".join(factors)


# --- the units --------------------------------------------------------------------------


@dataclass(frozen=True)
class Activation:
    """a = f(z), element-wise unless said otherwise. A unit's settings (LeakyReLU's slope) are
    its dataclass fields, named in `options` with their defaults.

    Class attributes, each unit's own:
      kind        the name in the YAML (activation: relu) and in the trace
      symbol      f(z) as text: "σ(z)"
      derivative  f′ as text, as the tables show it: "σ′(z) = a(1 − a)"
      word        how a sentence names it: "sigmoid σ"
      operators   (text, LaTeX) pairs of the operator names its formulas use
      options     YAML keys the activation takes, with their defaults
      choices     YAML keys that take a name, with the names (the default first)
    """

    kind: ClassVar[str] = ""
    symbol: ClassVar[str] = ""
    derivative_text: ClassVar[str] = ""
    word: ClassVar[str] = ""
    operators: ClassVar[tuple[tuple[str, str], ...]] = ()
    options: ClassVar[dict[str, float]] = {}
    # named settings: YAML key -> the names it takes, the default first (softmax's axis)
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    elementwise: ClassVar[bool] = True
    # Its PyTorch form, for `bpcalc export` ({x}: the input; {slope}, {alpha}: its settings)
    torch_call: ClassVar[str] = "{x}"
    torch_module: ClassVar[str] = "nn.Identity()"
    # A choice to state in the conventions block (one line per key, however many layers use it)
    convention: ClassVar[str] = ""
    convention_key: ClassVar[str] = ""
    # With its loss (softmax + cross-entropy), ∂L/∂z comes from the fused formula p − y.
    fuses_with_loss: ClassVar[bool] = True

    def forward(self, z: Array) -> Array:
        raise NotImplementedError

    def derivative(self, z: Array, a: Array) -> Array:
        """f′(z) element-wise."""
        raise NotImplementedError

    def backward(self, da: Array, z: Array, a: Array) -> Array:
        """∂L/∂z from ∂L/∂a."""
        return da * self.derivative(z, a)

    def group(self, idx: tuple[int, ...], shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The elements of one sample (internal shape) whose z the output at idx depends on:
        idx alone element-wise; softmax: the elements it normalizes over."""
        return [idx] if self.elementwise else list(np.ndindex(*shape))

    # formulas -----------------------------------------------------------------------------
    def formula(self) -> str:
        return f"a = {self.symbol}"

    def grad_formula(self) -> str:
        return f"∂L/∂z = ∂L/∂a ⊙ f′(z), {self.derivative_text}"

    # explanations -------------------------------------------------------------------------
    def explain_forward(self, t: Terms) -> Written:
        raise NotImplementedError

    def explain_backward(self, t: Terms) -> Written:
        """∂L/∂z = ∂L/∂a · f′(z) for one element."""
        raise NotImplementedError

    def torch(self, x: str) -> str:
        """The PyTorch expression of a = f(x) with this unit's settings."""
        return self.torch_call.format(x=x, **self._settings())

    def torch_layer(self) -> str:
        """The torch.nn module of this activation with its settings."""
        return self.torch_module.format(**self._settings())

    def _settings(self) -> dict[str, str]:
        return {k: repr(float(getattr(self, k))) for k in self.options}

    # the checker's slips: (key, the unit that makes the slip, what to tell the student) ----
    def slips(self, layer: str) -> list[tuple[str, Activation, str]]:
        return []

    # the checker's rounding allowance (bpcalc/substeps.py) --------------------------------
    def forward_substeps(self, z: Array, a: Array, radius: Radius) -> Array:
        """Σ_s |∂a/∂s|·radius(s) over the sub-steps a person rounds computing a = f(z)
        (bpcalc/substeps.py). Default: none (f from a calculator in one go: tanh, ReLU)."""
        return np.zeros(a.shape)

    def backward_substeps(self, da: Array, z: Array, a: Array, radius: Radius) -> Array:
        """∂L/∂z = ∂L/∂a ⊙ f′(z): f′ is rounded before the product (∂/∂f′ = ∂L/∂a)."""
        return term(da, self.derivative(z, a), radius)

    def without_derivative(self) -> Activation:
        """The slip every activation has: ∂L/∂z taken as ∂L/∂a."""
        return NoDerivative(inner=self)

    def no_derivative_message(self, layer: str, fused_with_ce: bool) -> str:
        return (
            f"You forgot to multiply by the derivative of the {self.word} in layer {layer}: "
            "∂L/∂z = ∂L/∂a ⊙ f′(z), not ∂L/∂a."
        )


_REGISTRY: dict[str, type[Activation]] = {}


def register(cls: type[Activation]) -> type[Activation]:
    _REGISTRY[cls.kind] = cls
    return cls


def kinds() -> tuple[str, ...]:
    """Every activation's name, in the order they were registered."""
    return tuple(_REGISTRY)


def get(kind: str, **options: float | str) -> Activation:
    """The unit for `kind` with these settings (the defaults for those not given)."""
    return _REGISTRY[kind](**options)


def option_keys() -> tuple[str, ...]:
    """Every setting any activation takes (YAML keys beside activation:)."""
    return tuple(
        dict.fromkeys(k for cls in _REGISTRY.values() for k in (*cls.options, *cls.choices))
    )


def unit_class(kind: str) -> type[Activation]:
    return _REGISTRY[kind]


def operators() -> dict[str, str]:
    """Operator names in formulas and their LaTeX, from every registered activation."""
    return {text: tex for cls in _REGISTRY.values() for text, tex in cls.operators}


@dataclass(frozen=True)
class NoDerivative(Activation):
    """A slip, not an activation: the forward pass of `inner`, ∂L/∂z = ∂L/∂a."""

    inner: Activation = field(default=None)  # type: ignore[assignment]
    fuses_with_loss: ClassVar[bool] = False

    def forward(self, z: Array) -> Array:
        return self.inner.forward(z)

    def backward(self, da: Array, z: Array, a: Array) -> Array:
        return da

    def backward_substeps(self, da: Array, z: Array, a: Array, radius: Radius) -> Array:
        return np.zeros(da.shape)


class Identity(Activation):
    kind = "identity"
    symbol = "z"
    derivative_text = "identity′(z) = 1"
    word = "identity"

    def forward(self, z: Array) -> Array:
        return z

    def derivative(self, z: Array, a: Array) -> Array:
        return np.ones_like(z)

    def backward(self, da: Array, z: Array, a: Array) -> Array:
        return da

    def explain_forward(self, t: Terms) -> Written:
        return t.z, t.num(t.zv), ""

    def explain_backward(self, t: Terms) -> Written:
        return t.da, t.num(t.dav), ""


register(Identity)


class ReLU(Activation):
    kind = "relu"
    torch_call = "F.relu({x})"
    torch_module = "nn.ReLU()"
    symbol = "ReLU(z)"
    derivative_text = "ReLU′(z) = 1 if z > 0 else 0"
    word = "ReLU"
    operators = (("ReLU", r"\operatorname{ReLU}"),)
    convention = "ReLU′(0) is taken as 0"
    convention_key = "relu"

    def forward(self, z: Array) -> Array:
        return np.maximum(z, 0.0)

    def derivative(self, z: Array, a: Array) -> Array:
        return (z > 0).astype(z.dtype)

    def backward(self, da: Array, z: Array, a: Array) -> Array:
        return da * (z > 0)  # without building the 0/1 array in z's dtype first

    def explain_forward(self, t: Terms) -> Written:
        return f"max(0, {t.z})", f"max(0, {t.num(t.zv)})", ""

    def explain_backward(self, t: Terms) -> Written:
        return _piecewise(t, self.word, "0")

    def slips(self, layer: str) -> list[tuple[str, Activation, str]]:
        return [
            (
                "relu_one_at_zero",
                _ReLUOneAtZero(),
                "You took ReLU′(0) = 1; bpcalc (like PyTorch) takes the derivative at exactly "
                "z = 0 as 0.",
            ),
            (
                "relu_flipped",
                _ReLUFlipped(),
                "You took ReLU's derivative on the wrong side of 0: it is 1 where z > 0 "
                "(the value passed through) and 0 where z < 0.",
            ),
        ]


register(ReLU)


class _ReLUOneAtZero(ReLU):
    """Slip: ReLU′(0) taken as 1."""

    def backward(self, da: Array, z: Array, a: Array) -> Array:
        return da * (z >= 0).astype(da.dtype)


class _ReLUFlipped(ReLU):
    """Slip: ReLU′ = 1 where z < 0."""

    def backward(self, da: Array, z: Array, a: Array) -> Array:
        return da * (z < 0).astype(da.dtype)


def _piecewise(t: Terms, name: str, low: str) -> Written:
    """∂L/∂z of ReLU-like units: ∂L/∂a times 1 or the low side's slope."""
    if t.zv > 0:
        d = "1"
        shown = t.result(t.zv)
        note = (
            f"{t.z} = {shown} > 0, so {name}′({t.z}) = 1"
            if shown != "0"
            else f"{t.z} = {t.zv:.3g} is just above 0, so {name}′({t.z}) = 1"
        )
    elif t.zv == 0:
        d = low
        note = f"{t.z} = 0 exactly: {name}′(0) is taken as {low} (as in PyTorch)"
    else:
        d = low
        note = f"{t.z} = {t.result(t.zv)} < 0, so {name}′({t.z}) = {low}"
    return f"{t.da} · {name}′({t.z})", _times(t.num(t.dav), d), note


@dataclass(frozen=True)
class LeakyReLU(Activation):
    kind = "leaky_relu"
    torch_call = "F.leaky_relu({x}, {slope})"
    torch_module = "nn.LeakyReLU({slope})"
    symbol = "LeakyReLU(z)"
    derivative_text = "LeakyReLU′(z) = 1 if z > 0 else slope"
    word = "leaky ReLU"
    operators = (("LeakyReLU", r"\operatorname{LeakyReLU}"),)
    convention = "ReLU′(0) is taken as 0"
    convention_key = "relu"
    options = {"slope": 0.01}
    slope: float = 0.01

    def forward(self, z: Array) -> Array:
        return np.where(z > 0, z, self.slope * z)

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1.0, self.slope).astype(z.dtype)

    def explain_forward(self, t: Terms) -> Written:
        if t.zv > 0:
            return t.z, t.num(t.zv), f"{t.z} > 0, so LeakyReLU({t.z}) = {t.z}"
        alpha = t.const(self.slope)
        return (
            f"α·{t.z}",
            f"{alpha} × {t.num(t.zv)}",
            f"{t.z} ≤ 0, so LeakyReLU({t.z}) = α·{t.z} with slope α = {alpha}",
        )

    def explain_backward(self, t: Terms) -> Written:
        return _piecewise(t, "LeakyReLU", t.const(self.slope))


register(LeakyReLU)


class Sigmoid(Activation):
    kind = "sigmoid"
    torch_call = "torch.sigmoid({x})"
    torch_module = "nn.Sigmoid()"
    symbol = "σ(z)"
    derivative_text = "σ′(z) = a(1 − a)"
    word = "sigmoid σ"
    operators = (("sigmoid", r"\operatorname{sigmoid}"),)

    def forward(self, z: Array) -> Array:
        return sigmoid(z)

    def derivative(self, z: Array, a: Array) -> Array:
        return a * (1.0 - a)

    def forward_substeps(self, z: Array, a: Array, radius: Radius) -> Array:
        """e^(−z) rounded: ∂a/∂e = −1/(1 + e)² = −a²."""
        with np.errstate(over="ignore"):
            return term(a * a, np.exp(np.minimum(-z, 700.0)), radius)

    def explain_forward(self, t: Terms) -> Written:
        return f"1 / (1 + e^({MINUS}{t.z}))", f"1 / (1 + e^({MINUS}{t.num(t.zv)}))", ""

    def explain_backward(self, t: Terms) -> Written:
        av = t.num(t.av)
        return (
            f"{t.da} · {t.a}·(1 − {t.a})",
            f"{t.num(t.dav)} × {av}×(1 − {av})",
            f"σ′({t.z}) = {t.a}·(1 − {t.a}), from the output",
        )

    def slips(self, layer: str) -> list[tuple[str, Activation, str]]:
        return [
            (
                "sigmoid_as_sigma",
                _SigmoidAsSigma(),
                "You wrote the sigmoid's derivative as σ(z); it is σ(z)(1 − σ(z)) = a(1 − a).",
            )
        ]


register(Sigmoid)


class _SigmoidAsSigma(Sigmoid):
    """Slip: σ′ taken as σ(z) = a."""

    def derivative(self, z: Array, a: Array) -> Array:
        return a


class Tanh(Activation):
    kind = "tanh"
    torch_call = "torch.tanh({x})"
    torch_module = "nn.Tanh()"
    symbol = "tanh(z)"
    derivative_text = "tanh′(z) = 1 − a²"
    word = "tanh"

    def forward(self, z: Array) -> Array:
        return np.tanh(z)

    def derivative(self, z: Array, a: Array) -> Array:
        return 1.0 - a * a

    def explain_forward(self, t: Terms) -> Written:
        return f"tanh({t.z})", f"tanh({t.num(t.zv)})", ""

    def explain_backward(self, t: Terms) -> Written:
        return (
            f"{t.da} · (1 − {t.a}²)",
            f"{t.num(t.dav)} × (1 − {t.num(t.av)}²)",
            f"tanh′({t.z}) = 1 − {t.a}², from the output",
        )


register(Tanh)


@dataclass(frozen=True)  # a unit with a setting of its own (axis)
class Softmax(Activation):
    """softmax over one sample's elements (the last axis after flattening). Over a sequence
    (N, T, K): at each position over its K features (axis: features, the default, as
    PyTorch's softmax(dim=-1)), or for each feature over the T positions (axis: positions)."""

    kind = "softmax"
    torch_call = "torch.softmax({x}, dim=1)"
    torch_module = "nn.Softmax(dim=1)"
    symbol = "softmax(z)"
    derivative_text = "∂L/∂z_i = a_i (∂L/∂a_i − Σ_j a_j ∂L/∂a_j)"
    word = "softmax"
    operators = (("softmax", r"\operatorname{softmax}"),)
    elementwise = False
    choices = {"axis": ("features", "positions")}

    axis: str = "features"

    def _seq_axis(self) -> int:
        """The axis of a sequence (N, T, K) the softmax normalizes over."""
        return 2 if self.axis == "features" else 1

    def forward(self, z: Array) -> Array:
        if z.ndim == 3:  # a sequence
            return np.swapaxes(softmax(np.swapaxes(z, self._seq_axis(), 2)), self._seq_axis(), 2)
        return softmax(z.reshape(z.shape[0], -1)).reshape(z.shape)

    def with_log(self, z: Array) -> tuple[Array, Array]:
        """(softmax(z), its log) from one shifted exponential, shaped as z (for training with
        cross-entropy, which needs the features' softmax of a sequence)."""
        if z.ndim == 3 and self.axis == "features":
            p, logp = softmax_and_log(z.reshape(-1, z.shape[-1]))
        else:
            p, logp = softmax_and_log(z.reshape(z.shape[0], -1))
        return p.reshape(z.shape), logp.reshape(z.shape)

    def backward(self, da: Array, z: Array, a: Array) -> Array:
        if z.ndim == 3:
            ax = self._seq_axis()
            return a * (da - (da * a).sum(axis=ax, keepdims=True))
        flat_a = a.reshape(a.shape[0], -1)
        flat_da = da.reshape(da.shape[0], -1)
        dz = flat_a * (flat_da - (flat_da * flat_a).sum(axis=-1, keepdims=True))
        return dz.reshape(z.shape)

    def _rows(self, x: Array) -> Array:
        """x as rows of what one softmax normalizes: (N, K) for a sample, (N·T, K) at each
        position of a sequence, or (N·K, T) for each feature over the positions."""
        if x.ndim == 3:
            return np.swapaxes(x, self._seq_axis(), 2).reshape(-1, x.shape[self._seq_axis()])
        return x.reshape(x.shape[0], -1)

    def _unrows(self, rows: Array, like: Array) -> Array:
        if like.ndim == 3:
            ax = self._seq_axis()
            swapped = np.swapaxes(like, ax, 2).shape
            return np.swapaxes(rows.reshape(swapped), ax, 2)
        return rows.reshape(like.shape)

    def forward_substeps(self, z: Array, a: Array, radius: Radius) -> Array:
        """Each e^(z_k) rounded: ∂p_i/∂e_i = (1 − p_i)/S, ∂p_i/∂e_k = −p_i/S, S = Σ e^(z_k)."""
        flat = self._rows(z)
        p = self._rows(a)
        with np.errstate(over="ignore"):
            e = np.exp(np.minimum(flat, 700.0))
        s = e.sum(axis=1, keepdims=True)
        r = self._rows(radius(self._unrows(e, z)))
        total = (p * r.sum(axis=1, keepdims=True) + (1.0 - 2.0 * p) * r) / s
        return self._unrows(total, a)

    def backward_substeps(self, da: Array, z: Array, a: Array, radius: Radius) -> Array:
        """Each product p_j·∂L/∂p_j of the sum is rounded (∂(∂L/∂z_i)/∂s = −p_i)."""
        p = self._rows(a)
        g = self._rows(da.reshape(a.shape))
        r = self._rows(radius(self._unrows(p * g, a))).sum(axis=1, keepdims=True)
        return self._unrows(p * r, a)
    def group(self, idx: tuple[int, ...], shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        if len(shape) == 2:  # a sequence: the position's row, or the feature's column
            t, k = idx
            if self.axis == "features":
                return [(t, j) for j in range(shape[1])]
            return [(s, k) for s in range(shape[0])]
        return list(np.ndindex(*shape))

    def formula(self) -> str:
        if self.axis == "positions":
            return "a = softmax(z) over the positions (each feature's column of a sequence)"
        return f"a = {self.symbol}"

    def grad_formula(self) -> str:
        if self.axis == "positions":
            return self.derivative_text + ", i and j positions of one feature"
        return self.derivative_text

    def explain_forward(self, t: Terms) -> Written:
        sym = f"e^{t.z} / ({' + '.join('e^' + c[0] for c in t.row)})"
        num = f"e^{t.num(t.zv)} / ({' + '.join('e^' + t.num(c[1]) for c in t.row)})"
        return sym, num, ""

    def explain_backward(self, t: Terms) -> Written:
        inner_s = " + ".join(f"{c[2]}·{c[4]}" for c in t.row)
        inner_n = " + ".join(f"{t.num(c[3])}×{t.num(c[5])}" for c in t.row)
        return (
            f"{t.a}·({t.da} − ({inner_s}))",
            f"{t.num(t.av)}×({t.num(t.dav)} − ({inner_n}))",
            "softmax couples its outputs: ∂L/∂z_i = p_i (∂L/∂p_i − Σ_j p_j ∂L/∂p_j)",
        )

    def no_derivative_message(self, layer: str, fused_with_ce: bool) -> str:
        return f"You took ∂L/∂z = ∂L/∂p in layer {layer}, leaving out the softmax's derivative" + (
            "; with cross-entropy, ∂L/∂z = p − y."
            if fused_with_ce
            else ": ∂L/∂z_i = p_i (∂L/∂p_i − Σ_j p_j ∂L/∂p_j)."
        )


register(Softmax)


SQRT_2PI = math.sqrt(2.0 * math.pi)


class GELU(Activation):
    """GELU(z) = z·Φ(z), Φ(z) = ½(1 + erf(z/√2)): the exact erf form (PyTorch's default,
    approximate='none'). GELU′(z) = Φ(z) + z·φ(z), φ(z) = e^(−z²/2)/√(2π)."""

    kind = "gelu"
    torch_call = "F.gelu({x})"
    torch_module = "nn.GELU()"
    symbol = "z·Φ(z)"
    derivative_text = "GELU′(z) = Φ(z) + z·φ(z), Φ(z) = ½(1 + erf(z/√2)), φ(z) = e^(−z²/2)/√(2π)"
    word = "GELU"
    operators = (("GELU", r"\operatorname{GELU}"), ("erf", r"\operatorname{erf}"))

    @staticmethod
    def cdf(z: Array) -> Array:
        return 0.5 * (1.0 + erf(z / math.sqrt(2.0)))

    def forward(self, z: Array) -> Array:
        return z * self.cdf(z)

    def derivative(self, z: Array, a: Array) -> Array:
        return self.cdf(z) + z * np.exp(-0.5 * z * z) / SQRT_2PI

    def formula(self) -> str:
        return "a = GELU(z) = z·Φ(z), Φ(z) = ½(1 + erf(z/√2))"

    def forward_substeps(self, z: Array, a: Array, radius: Radius) -> Array:
        """Φ(z) rounded, then times z."""
        return term(z, self.cdf(z), radius)

    def explain_forward(self, t: Terms) -> Written:
        phi = 0.5 * (1.0 + math.erf(t.zv / math.sqrt(2.0)))
        z = t.num(t.zv)
        return (
            f"{t.z} · ½(1 + erf({t.z}/√2))",
            f"{z} × {t.num(phi)}",
            f"Φ({t.z}) = ½(1 + erf({z}/√2)) = {t.result(phi)}",
        )

    def explain_backward(self, t: Terms) -> Written:
        cdf = 0.5 * (1.0 + math.erf(t.zv / math.sqrt(2.0)))
        pdf = math.exp(-0.5 * t.zv * t.zv) / SQRT_2PI
        return (
            f"{t.da} · (Φ({t.z}) + {t.z}·φ({t.z}))",
            f"{t.num(t.dav)} × ({t.num(cdf)} + {t.num(t.zv)} × {t.num(pdf)})",
            f"Φ({t.z}) = {t.result(cdf)}, φ({t.z}) = e^(−{t.z}²/2)/√(2π) = {t.result(pdf)}",
        )

    def slips(self, layer: str) -> list[tuple[str, Activation, str]]:
        return [
            (
                "gelu_cdf_only",
                _GELUCdfOnly(),
                "You took GELU′(z) as Φ(z) and left out the z·φ(z) term: GELU(z) = z·Φ(z) is a "
                "product, so GELU′(z) = Φ(z) + z·φ(z).",
            )
        ]


register(GELU)


class _GELUCdfOnly(GELU):
    """Slip: GELU′ taken as Φ(z) (the product rule's second term left out)."""

    def derivative(self, z: Array, a: Array) -> Array:
        return self.cdf(z)


class SiLU(Activation):
    """SiLU(z) = z·σ(z) (also called swish). SiLU′(z) = σ(z)·(1 + z·(1 − σ(z)))."""

    kind = "silu"
    torch_call = "F.silu({x})"
    torch_module = "nn.SiLU()"
    symbol = "z·σ(z)"
    derivative_text = "SiLU′(z) = σ(z)·(1 + z·(1 − σ(z)))"
    word = "SiLU (swish)"
    operators = (("SiLU", r"\operatorname{SiLU}"),)

    def forward(self, z: Array) -> Array:
        return z * sigmoid(z)

    def derivative(self, z: Array, a: Array) -> Array:
        s = sigmoid(z)
        return s * (1.0 + z * (1.0 - s))

    def formula(self) -> str:
        return "a = SiLU(z) = z·σ(z)"

    def forward_substeps(self, z: Array, a: Array, radius: Radius) -> Array:
        """σ(z) rounded, then times z."""
        return term(z, sigmoid(z), radius)

    def explain_forward(self, t: Terms) -> Written:
        s = float(sigmoid(np.array([t.zv]))[0])
        return (
            f"{t.z} · σ({t.z})",
            f"{t.num(t.zv)} × {t.num(s)}",
            f"σ({t.z}) = 1 / (1 + e^({MINUS}{t.num(t.zv)})) = {t.result(s)}",
        )

    def explain_backward(self, t: Terms) -> Written:
        s = float(sigmoid(np.array([t.zv]))[0])
        sn, zn = t.num(s), t.num(t.zv)
        return (
            f"{t.da} · σ({t.z})·(1 + {t.z}·(1 − σ({t.z})))",
            f"{t.num(t.dav)} × {sn}×(1 + {zn}×(1 − {sn}))",
            f"σ({t.z}) = {t.result(s)}; SiLU′ = σ + z·σ·(1 − σ), by the product rule",
        )

    def slips(self, layer: str) -> list[tuple[str, Activation, str]]:
        return [
            (
                "silu_sigma_only",
                _SiLUSigmaOnly(),
                "You took SiLU′(z) as σ(z); SiLU(z) = z·σ(z) is a product, so "
                "SiLU′(z) = σ(z) + z·σ(z)(1 − σ(z)).",
            )
        ]


register(SiLU)


class _SiLUSigmaOnly(SiLU):
    """Slip: SiLU′ taken as σ(z)."""

    def derivative(self, z: Array, a: Array) -> Array:
        return sigmoid(z)


class Softplus(Activation):
    """softplus(z) = ln(1 + e^z), computed as logaddexp(0, z) so it never overflows;
    softplus′(z) = σ(z). The exact form everywhere (PyTorch switches to z above z = 20,
    a difference below 2.1e-9)."""

    kind = "softplus"
    torch_call = "F.softplus({x}, threshold=50.0)"
    torch_module = "nn.Softplus(threshold=50.0)"
    symbol = "ln(1 + e^z)"
    derivative_text = "softplus′(z) = σ(z) = 1/(1 + e^(−z))"
    word = "softplus"
    operators = (("softplus", r"\operatorname{softplus}"),)

    def forward(self, z: Array) -> Array:
        return np.logaddexp(0.0, z)

    def derivative(self, z: Array, a: Array) -> Array:
        return sigmoid(z)

    def formula(self) -> str:
        return "a = softplus(z) = ln(1 + e^z)"

    def forward_substeps(self, z: Array, a: Array, radius: Radius) -> Array:
        """e^z rounded: ∂a/∂e = 1/(1 + e^z) = σ(−z)."""
        with np.errstate(over="ignore"):
            return term(sigmoid(-z), np.exp(np.minimum(z, 700.0)), radius)

    def explain_forward(self, t: Terms) -> Written:
        return f"ln(1 + e^{t.z})", f"ln(1 + e^{t.num(t.zv)})", ""

    def explain_backward(self, t: Terms) -> Written:
        return (
            f"{t.da} · 1/(1 + e^({MINUS}{t.z}))",
            f"{t.num(t.dav)} × 1/(1 + e^({MINUS}{t.num(t.zv)}))",
            f"softplus′({t.z}) = σ({t.z})",
        )

    def slips(self, layer: str) -> list[tuple[str, Activation, str]]:
        return [
            (
                "softplus_sigma_of_minus_z",
                _SoftplusWrongSign(),
                "You took softplus′(z) as 1/(1 + e^z) = σ(−z); the derivative of ln(1 + e^z) is "
                "e^z/(1 + e^z) = 1/(1 + e^(−z)) = σ(z).",
            )
        ]


register(Softplus)


class _SoftplusWrongSign(Softplus):
    """Slip: softplus′ taken as σ(−z)."""

    def derivative(self, z: Array, a: Array) -> Array:
        return sigmoid(-z)


@dataclass(frozen=True)
class ELU(Activation):
    """ELU(z) = z for z > 0, α(e^z − 1) otherwise (torch.nn.ELU). ELU′(z) = 1 for z > 0,
    α·e^z = a + α otherwise, written from the output as for σ and tanh; at z = 0 exactly,
    α (the z ≤ 0 side, as PyTorch)."""

    kind = "elu"
    torch_call = "F.elu({x}, {alpha})"
    torch_module = "nn.ELU({alpha})"
    symbol = "ELU(z)"
    derivative_text = "ELU′(z) = 1 if z > 0 else a + α"
    word = "ELU"
    operators = (("ELU", r"\operatorname{ELU}"),)
    options = {"alpha": 1.0}
    alpha: float = 1.0

    def forward(self, z: Array) -> Array:
        return np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0.0)))

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1.0, a + self.alpha).astype(z.dtype)

    def formula(self) -> str:
        return "a = ELU(z) = z if z > 0 else α(e^z − 1)"

    def forward_substeps(self, z: Array, a: Array, radius: Radius) -> Array:
        """For z ≤ 0, e^z rounded: ∂a/∂e = α."""
        return np.where(z <= 0, term(self.alpha, np.exp(np.minimum(z, 0.0)), radius), 0.0)

    def explain_forward(self, t: Terms) -> Written:
        if t.zv > 0:
            return t.z, t.num(t.zv), f"{t.z} > 0, so ELU({t.z}) = {t.z}"
        alpha = t.const(self.alpha)
        return (
            f"α·(e^{t.z} − 1)",
            f"{alpha} × (e^{t.num(t.zv)} − 1)",
            f"{t.z} ≤ 0, so ELU({t.z}) = α(e^{t.z} − 1) with α = {alpha}",
        )

    def explain_backward(self, t: Terms) -> Written:
        if t.zv > 0:
            return f"{t.da} · 1", _times(t.num(t.dav), "1"), f"{t.z} > 0, so ELU′({t.z}) = 1"
        alpha = t.const(self.alpha)
        return (
            f"{t.da} · ({t.a} + α)",
            f"{t.num(t.dav)} × ({t.num(t.av)} + {alpha})",
            f"{t.z} ≤ 0, so ELU′({t.z}) = α·e^{t.z} = {t.a} + α, from the output",
        )

    def slips(self, layer: str) -> list[tuple[str, Activation, str]]:
        return [
            (
                "elu_alpha_left_out",
                _ELUOutputAsDerivative(self.alpha),
                "You took ELU′(z) as a = α(e^z − 1) where z ≤ 0; the derivative of α(e^z − 1) "
                "is α·e^z = a + α.",
            )
        ]


register(ELU)


class _ELUOutputAsDerivative(ELU):
    """Slip: ELU′ taken as a (the + α left out) where z ≤ 0."""

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1.0, a).astype(z.dtype)


class Softsign(Activation):
    """softsign(z) = z / (1 + |z|) (torch.nn.Softsign); softsign′(z) = 1 / (1 + |z|)²."""

    kind = "softsign"
    torch_call = "F.softsign({x})"
    torch_module = "nn.Softsign()"
    symbol = "z/(1 + |z|)"
    derivative_text = "softsign′(z) = 1/(1 + |z|)²"
    word = "softsign"
    operators = (("softsign", r"\operatorname{softsign}"),)

    def forward(self, z: Array) -> Array:
        return z / (1.0 + np.abs(z))

    def derivative(self, z: Array, a: Array) -> Array:
        d = 1.0 + np.abs(z)
        return 1.0 / (d * d)

    def formula(self) -> str:
        return "a = softsign(z) = z/(1 + |z|)"

    def explain_forward(self, t: Terms) -> Written:
        return (
            f"{t.z} / (1 + |{t.z}|)",
            f"{t.num(t.zv)} / (1 + {t.num(abs(t.zv))})",
            "",
        )

    def explain_backward(self, t: Terms) -> Written:
        return (
            f"{t.da} / (1 + |{t.z}|)²",
            f"{t.num(t.dav)} / (1 + {t.num(abs(t.zv))})²",
            f"softsign′({t.z}) = 1/(1 + |{t.z}|)²",
        )

    def slips(self, layer: str) -> list[tuple[str, Activation, str]]:
        return [
            (
                "softsign_square_left_out",
                _SoftsignNoSquare(),
                "You took softsign′(z) as 1/(1 + |z|); by the quotient rule it is 1/(1 + |z|)².",
            )
        ]


register(Softsign)


class _SoftsignNoSquare(Softsign):
    """Slip: softsign′ taken as 1/(1 + |z|)."""

    def derivative(self, z: Array, a: Array) -> Array:
        return 1.0 / (1.0 + np.abs(z))
