"""Elman RNN over a sequence, as torch.nn.RNN (one layer, batch_first):

  z_t = W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh      (bias form "pytorch": two biases)
  z_t = W_ih·x_t + W_hh·h_{t−1} + b                 (bias form "single": one, as textbooks)
  h_t = f(z_t), f = tanh (default) or relu;  h_0 given (zeros by default, not trained)
  a = h_1 … h_T (return: all, (T, hidden)) or a = h_T (return: last, (hidden,))
W_ih: (hidden, input), W_hh: (hidden, hidden), biases (hidden,). The two bias forms give the
same z when b = b_ih + b_hh; each bias's gradient is the same Σ_t ∂L/∂z_t.

Back-propagation through time, t = T … 1, with ∂L/∂h_{T+1}'s term 0:
  ∂L/∂h_t = ∂L/∂a_t (from the output at t; with return: last only at t = T)
            + W_hhᵀ·∂L/∂z_{t+1} (from step t+1, which read h_t)
  ∂L/∂z_t = ∂L/∂h_t ⊙ f′(z_t)        (tanh′ = 1 − h_t², relu′ = 1 where z_t > 0)
  ∂L/∂W_ih = Σ_t ∂L/∂z_t·x_tᵀ,  ∂L/∂W_hh = Σ_t ∂L/∂z_t·h_{t−1}ᵀ,  ∂L/∂b = Σ_t ∂L/∂z_t
  ∂L/∂x_t = W_ihᵀ·∂L/∂z_t
The same weights act at every step, so their gradients are sums over time (and the batch).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc.layers import UNRECORDED, Layer, LayerSlip, Recorded, Scope
from bpcalc.layers.rnn.spec import RNNSpec
from bpcalc.network import initializers as _init
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src

Array = np.ndarray
NONLINEARITIES = ("tanh", "relu")


@dataclass(frozen=True)
class RNNCache:
    x: Array  # (N, T, input)
    z: Array  # (N, T, hidden)
    h: Array  # (N, T, hidden): h_1 … h_T
    h0: Array  # (N, hidden)


@dataclass(frozen=True)
class BPTT:
    """What back-propagation through time computes on the way, every array (N, T, hidden)."""

    from_output: Array  # ∂L/∂h_t through the output at t
    from_next: Array  # ∂L/∂h_t through step t+1: W_hhᵀ·∂L/∂z_{t+1}, 0 at t = T
    dh: Array  # their sum
    dz: Array  # ∂L/∂z_t


_NEXT = "∂L/∂h_t through step t+1: W_hhᵀ·∂L/∂z_{t+1} (0 at the last step)"
_SUM = "∂L/∂h_t = (through the output at t) + (through step t+1)"


class RNN(Layer):
    """An Elman RNN layer; its parameters are named as the YAML keys (weights_ih, …)."""

    types = ("rnn",)
    parametric = True
    pre_activation = False

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.param_names = tuple(spec.params)
        self.nonlinearity = spec.nonlinearity
        self.last_only = spec.returns == "last"

    @classmethod
    def from_spec(cls, spec: Any) -> RNN:
        return cls(spec)

    def _f(self, z: Array) -> Array:
        return np.tanh(z) if self.nonlinearity == "tanh" else np.maximum(z, 0)

    def _df(self, z: Array, h: Array) -> Array:
        """f′(z_t), from h_t where the textbooks write it so (tanh′ = 1 − h²)."""
        return 1 - h * h if self.nonlinearity == "tanh" else (z > 0).astype(z.dtype)

    def _biases(self, params: dict[str, Array]) -> tuple[Array, Array | int]:
        if "bias" in params:
            return params["bias"], 0
        return params["bias_ih"], params["bias_hh"]

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, RNNCache]:
        """x: (N, T, input) -> h_1 … h_T (N, T, hidden), or h_T (N, hidden) for return: last."""
        return self.forward_with(x, params, UNRECORDED)

    def forward_with(
        self, x: Array, params: dict[str, Array], scope: Scope
    ) -> tuple[Array, RNNCache]:
        """The forward pass, step by step, recording z and h as each step makes them: the step
        after goes on with the recorded h (a student's, where the checker gives one)."""
        w_ih, w_hh = params["weights_ih"], params["weights_hh"]
        b_ih, b_hh = self._biases(params)
        n, t_count, _ = x.shape
        hidden = w_hh.shape[0]
        shape = (t_count, hidden)
        h0 = np.broadcast_to(self.spec.h0.astype(x.dtype), (n, hidden))
        xw = x @ w_ih.T + b_ih  # every step's input term in one product
        # each step computed from the values the steps before went on with (z, h), and
        # recorded as computed (z_new, h_new): a recorder records what is computed and hands
        # back what to go on with (a student's number, where the checker gives one)
        z_new = np.zeros((n, t_count, hidden), dtype=xw.dtype)
        h_new, z, h = np.zeros_like(z_new), np.zeros_like(z_new), np.zeros_like(z_new)
        z_formula, h_formula = self._z_formula(), f"h_t = {self.nonlinearity}(z_t)"
        prev = h0
        for t in range(t_count):
            z_new[:, t] = xw[:, t] + prev @ w_hh.T + b_hh
            z[:, t] = scope.record("z", z_new, z_formula, shape=shape)[:, t]
            h_new[:, t] = self._f(z[:, t])
            h[:, t] = scope.record("h", h_new, h_formula, shape=shape)[:, t]
            prev = h[:, t]
        out = h[:, -1] if self.last_only else h
        return out, RNNCache(x, z, h, h0)

    def bptt(
        self, dout: Array, cache: RNNCache, params: dict[str, Array], scope: Scope | None = None
    ) -> BPTT:
        """∂L/∂h_t and ∂L/∂z_t for t = T … 1 (see the module docstring), each recorded as
        it is made (grad.<layer>.h.from_output, .h.from_next, .h, .z); the steps before go on
        with the recorded values."""
        scope = scope or UNRECORDED
        w_hh = params["weights_hh"]
        shape = cache.h.shape[1:]
        f = "tanh′(z_t) = 1 − h_t²" if self.nonlinearity == "tanh" else "relu′(z_t) = [z_t > 0]"
        from_output = np.zeros_like(cache.h)
        if self.last_only:
            from_output[:, -1] = dout
            out_formula = "∂L/∂h_t through the output: ∂L/∂a at t = T, 0 before (return: last)"
        else:
            from_output[:] = dout
            out_formula = "∂L/∂h_t through the output at t: ∂L/∂a_t"
        from_output = scope.record("h.from_output", from_output, out_formula, shape=shape)
        # as in the forward pass: computed (…_new, recorded) and gone on with (from_next, dh, dz)
        next_new, dh_new, dz_new = (np.zeros_like(cache.h) for _ in range(3))
        from_next, dh, dz = (np.zeros_like(cache.h) for _ in range(3))
        dz_formula = f"∂L/∂z_t = ∂L/∂h_t ⊙ {f}"
        carry = np.zeros_like(cache.h[:, 0])  # W_hhᵀ·∂L/∂z_{t+1}: nothing after the last step
        for t in range(cache.h.shape[1] - 1, -1, -1):
            next_new[:, t] = self._from_next(carry)
            from_next[:, t] = scope.record("h.from_next", next_new, _NEXT, shape=shape)[:, t]
            dh_new[:, t] = from_output[:, t] + from_next[:, t]
            dh[:, t] = scope.record("h", dh_new, _SUM, shape=shape)[:, t]
            dz_new[:, t] = self._dz(dh[:, t], cache.z[:, t], cache.h[:, t])
            dz[:, t] = scope.record("z", dz_new, dz_formula, shape=shape)[:, t]
            carry = dz[:, t] @ w_hh
        return BPTT(from_output, from_next, dh, dz)

    # the pieces a slip changes
    def _from_next(self, carry: Array) -> Array:
        return carry

    def _dz(self, dh: Array, z: Array, h: Array) -> Array:
        return dh * self._df(z, h)

    def _weights_hh_grad(self, dz: Array, h_prev: Array) -> Array:
        return dz.reshape(-1, dz.shape[-1]).T @ h_prev.reshape(-1, h_prev.shape[-1])

    def _grads(self, b: BPTT, cache: RNNCache) -> dict[str, Array]:
        dz2 = b.dz.reshape(-1, b.dz.shape[-1])
        h_prev = np.concatenate([cache.h0[:, None], cache.h[:, :-1]], axis=1)
        db = np.add.reduce(dz2, axis=0)
        out = {
            "weights_ih": dz2.T @ cache.x.reshape(-1, cache.x.shape[-1]),
            "weights_hh": self._weights_hh_grad(b.dz, h_prev),
        }
        for name in self.param_names[2:]:  # bias, or bias_ih and bias_hh: the same sum
            out[name] = db.copy()
        return out

    def backward_with(
        self, dz: Array, cache: RNNCache, params: dict[str, Array], scope: Scope
    ) -> tuple[Array | None, dict[str, Array]]:
        b = self.bptt(dz, cache, params, scope)
        dx = b.dz @ params["weights_ih"] if scope.need_input else None
        return dx, self._grads(b, cache)

    def backward(
        self, dz: Array, cache: RNNCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        b = self.bptt(dz, cache, params)
        return b.dz @ params["weights_ih"], self._grads(b, cache)

    def param_grads(self, dz: Array, cache: RNNCache, params: dict[str, Array]) -> dict[str, Array]:
        return self._grads(self.bptt(dz, cache, params), cache)

    def recorded(self, cache: RNNCache) -> list[Recorded]:
        """h_0, which is not per sample (z and h are recorded as they are made)."""
        hidden = cache.h.shape[2]
        return [Recorded("h0", cache.h0[0], "h_0, given (not trained)", False, (hidden,))]

    # -- what the user sees -----------------------------------------------------------------
    def _z_formula(self) -> str:
        if "bias" in self.param_names:
            return "z_t = W_ih·x_t + W_hh·h_{t−1} + b"
        return "z_t = W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh"

    def forward_formula(self) -> str:
        if self.last_only:
            return "a = h_T (the last step's hidden state; return: last)"
        return "a = h (every step's hidden state h_1 … h_T; return: all)"

    def grad_param_formula(self, param: str) -> str:
        if param == "weights_ih":
            return "∂L/∂W_ih = Σ_t ∂L/∂z_t · x_tᵀ (a sum over time)"
        if param == "weights_hh":
            return "∂L/∂W_hh = Σ_t ∂L/∂z_t · h_{t−1}ᵀ (a sum over time: one W_hh at every step)"
        sym = {"bias": "b", "bias_ih": "b_ih", "bias_hh": "b_hh"}[param]
        return f"∂L/∂{sym} = Σ_t ∂L/∂z_t"

    def grad_input_formula(self) -> str:
        return "∂L/∂x_t = W_ihᵀ · ∂L/∂z_t"

    def convention(self) -> str:
        s = self.spec
        bias = (
            "one bias b (the textbook form)"
            if "bias" in self.param_names
            else "two biases b_ih and b_hh (PyTorch's form; they act as one b = b_ih + b_hh)"
        )
        returns = "h_T only (return: last)" if self.last_only else "every h_t (return: all)"
        return (
            f"Elman RNN as torch.nn.RNN: h_t = {s.nonlinearity}(W_ih·x_t + W_hh·h_{{t−1}} + b), "
            f"W_ih is hidden x input ({s.hidden} x {s.in_shape[1]}), W_hh hidden x hidden, "
            f"{bias}; h_0 given ({'zeros' if not s.h0.any() else 'as written'}); the output is "
            f"{returns}; back-propagation through time over all {s.in_shape[0]} steps, so the "
            "weights' gradients are sums over time"
        )

    def param_shown(self, param: str) -> tuple[int, ...]:
        return tuple(self.spec.params[param].shape)

    # -- the checker ----------------------------------------------------------------------
    def slips(self) -> list[LayerSlip]:
        name, t_count = self.spec.name, self.spec.in_shape[0]
        out = []
        if t_count > 1:
            out.append(
                LayerSlip(
                    "rnn_no_from_next",
                    self.spec,
                    f"You left out what flows back from step t+1 in layer {name}: h_t also "
                    "feeds z_{t+1}, so ∂L/∂h_t = ∂L/∂a_t + W_hhᵀ·∂L/∂z_{t+1} (back-propagation "
                    "through time), not only the gradient from the output at t.",
                    unit=_Slip(self.spec, "no_from_next"),
                )
            )
            out.append(
                LayerSlip(
                    "rnn_last_term_only",
                    self.spec,
                    f"You kept only the last step's term of ∂L/∂W_hh in layer {name}: the same "
                    f"W_hh acts at every step, so ∂L/∂W_hh = Σ_t ∂L/∂z_t·h_{{t−1}}ᵀ over all "
                    f"{t_count} steps.",
                    unit=_Slip(self.spec, "last_term_only"),
                )
            )
        out.append(
            LayerSlip(
                "rnn_no_derivative",
                self.spec,
                f"You took ∂L/∂z_t = ∂L/∂h_t in layer {name}, leaving out the derivative of "
                f"{self.spec.nonlinearity}"
                + (": tanh′(z_t) = 1 − h_t²." if self.nonlinearity == "tanh" else "."),
                unit=_Slip(self.spec, "no_derivative"),
            )
        )
        return out


class _Slip(RNN):
    """The RNN with one slip in its backward pass (see RNN.slips)."""

    def __init__(self, spec: Any, slip: str) -> None:
        super().__init__(spec)
        self.slip = slip

    def _from_next(self, carry: Array) -> Array:
        return np.zeros_like(carry) if self.slip == "no_from_next" else carry

    def _dz(self, dh: Array, z: Array, h: Array) -> Array:
        return dh if self.slip == "no_derivative" else super()._dz(dh, z, h)

    def _weights_hh_grad(self, dz: Array, h_prev: Array) -> Array:
        if self.slip == "last_term_only":
            return dz[:, -1].T @ h_prev[:, -1]
        return super()._weights_hh_grad(dz, h_prev)


# -- reading the layer from the network file ----------------------------------------------


def parse(lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str) -> RNNSpec:
    keys = ("weights_ih", "weights_hh", "bias", "bias_ih", "bias_hh", "h0", "activation")
    F.common(lsrc, (*keys, "return", "units", "init", "freeze"))
    if len(shape) != 2:
        raise lsrc.error(
            f"rnn layer {name!r} needs a sequence (T x d: T steps of d inputs), but {prev} "
            f"gives shape {V._fmt(shape)}"
        )
    t_count, d = shape
    v = lsrc.value
    given = [k for k in ("weights_ih", "weights_hh") if k in v]
    _init.check_exclusive(lsrc, name, given[0] if given else "weights_ih", ("units",))
    if "units" in v:
        hidden = V.positive_int(lsrc.child("units"), f"units of rnn layer {name!r}")
        w_ih, w_hh = _drawn(lsrc, hidden, d)
    else:
        if len(given) < 2:
            missing = "weights_hh" if given else "weights_ih and weights_hh"
            raise lsrc.error(
                f"rnn layer {name!r} needs weights_ih: (hidden x input) and weights_hh: "
                f"(hidden x hidden), or units: (the hidden size, drawn by init:); {missing} missing"
            )
        w_ih = V.array(lsrc.child("weights_ih"), f"{name}.weights_ih", ndims=(2,))
        w_hh = V.array(lsrc.child("weights_hh"), f"{name}.weights_hh", ndims=(2,))
        hidden = w_hh.shape[0]
        if w_hh.shape != (hidden, hidden):
            raise lsrc.child("weights_hh").error(
                f"rnn layer {name!r}: weights_hh is hidden x hidden, found {w_hh.shape[0]} x "
                f"{w_hh.shape[1]}"
            )
        if w_ih.shape != (hidden, d):
            hint = (
                "; the transposed matrix would fit: transpose it (rows are hidden units)"
                if w_ih.shape == (d, hidden)
                else ""
            )
            raise lsrc.child("weights_ih").error(
                f"rnn layer {name!r}: weights_ih should be hidden x input = {hidden} x {d} "
                f"({prev} gives {d} inputs per step, weights_hh has {hidden} hidden units), "
                f"found {w_ih.shape[0]} x {w_ih.shape[1]}{hint}"
            )

    def vec(key: str) -> np.ndarray:
        src = lsrc.child(key)
        b = V.array(src, f"{name}.{key}", ndims=(1,))
        if b.size != hidden:
            raise src.error(f"rnn layer {name!r} has {hidden} hidden units but {key} has {b.size}")
        return b

    pytorch = [k for k in ("bias_ih", "bias_hh") if k in v]
    if "bias" in v and pytorch:
        raise lsrc.child(pytorch[0]).error(
            "give one bias: (the textbook form) or bias_ih: and bias_hh: (PyTorch's form), not "
            "both",
            at_key=True,
        )
    if pytorch:
        biases = {k: vec(k) if k in v else np.zeros(hidden) for k in ("bias_ih", "bias_hh")}
    else:
        biases = {"bias": vec("bias") if "bias" in v else np.zeros(hidden)}
    nonlinearity = (
        V.choice(lsrc.child("activation"), "rnn activation", NONLINEARITIES)
        if "activation" in v
        else "tanh"
    )
    returns = V.choice(lsrc.child("return"), "return", ("all", "last")) if "return" in v else "all"
    h0 = vec("h0") if "h0" in v else np.zeros(hidden)
    spec = RNNSpec(
        **F.frame(
            lsrc, name, ltype, shape, sq, (t_count, hidden) if returns == "all" else (hidden,)
        ),
        weights_ih=w_ih,
        weights_hh=w_hh,
        h0=h0,
        nonlinearity=nonlinearity,
        returns=returns,
        **biases,
    )
    return dataclasses.replace(spec, freeze=F.freeze(lsrc, tuple(spec.params)))


def _drawn(lsrc: Src, hidden: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """W_ih and W_hh drawn as one hidden x (input + hidden) matrix, so one seed gives both.
    Without init: U(−1/√hidden, 1/√hidden), torch.nn.RNN's default."""
    init = _init.parse_init(lsrc)
    if "init" not in lsrc.value:
        init = dataclasses.replace(init, limit=1.0 / math.sqrt(hidden))
    w = _init.sample(init, (hidden, d + hidden), d + hidden, hidden)
    return w[:, :d].copy(), w[:, d:].copy()
