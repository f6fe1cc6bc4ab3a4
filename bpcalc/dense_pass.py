"""A training pass for the commonest small network: dense layers ending in softmax with
cross-entropy, every array of the step written into buffers kept from step to step.

Why (issue 18): on a small network the arithmetic of a step is a few microseconds; the rest
is fixed cost per step, and allocating each of the step's ~30 arrays anew is a good part of
it (the digits MLP 64-32-10 at batch 32: bpcalc's step took 0.74 × the hand-written NumPy
loop's steps per CPU-second). DensePass runs the very same ufuncs and matrix products as
TrainPass (Dense.forward / param_grads / backward, activations.forward / backward,
softmax_and_log, cross_entropy_from_log, losses.reduce, fused_grad_z), in the same order on
the same operands, each with `out=` a buffer of this batch size: the same bits
(tests/test_dense_pass.py checks them against TrainPass, step after step).

Used by training.Trainer instead of TrainPass when `DensePass.build` accepts the network
(only dense layers, hidden activations identity / relu / leaky_relu / sigmoid / tanh,
softmax output with cross-entropy, no regularization, plain SGD) and the batch is 2-D and of
the trainer's dtype; any other step goes through TrainPass. The output and the gradients it
returns live in its buffers: they are overwritten by the next step of the same batch size
(the trainer updates the parameters and reads the output before that).

For the lead's merge of engine.py and trainpass.py: this module depends on TrainPass only for
its plan (the layers as looked up once) and can sit beside whatever replaces it; the one
hook is in Trainer.__init__ / step_with_output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc import losses
from bpcalc.engine import ForwardResult, Params
from bpcalc.ops import activations as act_ops
from bpcalc.trainpass import TrainPass

Array = np.ndarray
HIDDEN = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")


@dataclass(frozen=True)
class _Dense:
    name: str
    out_in: bool  # W is (out, in): z = x·Wᵀ; else (in, out): z = x·W
    bias_shared: bool
    units: int
    act: str | None
    slope: float


class _Buffers:
    """Every array of one step at one batch size, and the gradient dict pointing into them."""

    def __init__(self, layers: list[_Dense], n: int, n_in: int, dtype: np.dtype) -> None:
        self.z = [np.empty((n, d.units), dtype) for d in layers]
        # a buffer for the a of a ReLU layer and for the softmax of the last one (no
        # activation: a is z; the other kinds make their own array)
        last = len(layers) - 1
        self.a = [
            np.empty_like(z) if d.act == "relu" or i == last else z
            for i, (d, z) in enumerate(zip(layers, self.z, strict=True))
        ]
        self.dz = [np.empty_like(z) for z in self.z]
        self.da = [np.empty_like(z) for z in self.z[:-1]]  # ∂L/∂a of every layer but the last
        self.mask = [np.empty(z.shape, dtype=bool) for z in self.z]
        k = layers[-1].units
        self.row = np.empty((n, 1), dtype)  # a row's maximum, then the log of its sum
        self.total = np.empty((n, 1), dtype)
        self.shifted = np.empty((n, k), dtype)  # then the log-softmax
        self.prod = np.empty((n, k), dtype)  # y · log p
        self.per = np.empty(n, dtype)  # ℓ_n
        self.forward = ForwardResult(self.a[last], self.z[last], [])  # what run returns
        self.scale = 1.0  # the batch reduction's factor, losses.batch_scale
        # ∂L/∂θ, every layer's weights then bias, as views of one array (`flat`), laid out
        # as DensePass.adopt lays out the parameters
        shapes = _param_shapes(layers, n_in)
        self.flat = np.empty(sum(math.prod(s) for _, _, s in shapes), dtype)
        self.grads: dict[str, dict[str, Array]] = {d.name: {} for d in layers}
        for name, pname, _, view in _views(self.flat, shapes):
            self.grads[name][pname] = view


def _param_shapes(layers: list[_Dense], n_in: int) -> list[tuple[str, str, tuple[int, ...]]]:
    """(layer, parameter, shape) of every parameter, in the order of the flat arrays."""
    out, prev = [], n_in
    for d in layers:
        out.append((d.name, "weights", (d.units, prev) if d.out_in else (prev, d.units)))
        out.append((d.name, "bias", (1,) if d.bias_shared else (d.units,)))
        prev = d.units
    return out


def _views(flat: Array, shapes: list[tuple[str, str, tuple[int, ...]]]) -> Any:
    """(layer, parameter, shape, the view of flat it occupies) for each parameter."""
    at = 0
    for name, pname, shape in shapes:
        size = math.prod(shape)
        yield name, pname, shape, flat[at : at + size].reshape(shape)
        at += size


class DensePass:
    """TrainPass.run for dense networks with softmax and cross-entropy, into buffers.

    The products are np.dot into a buffer where the ops write `a @ b`: for 2-D operands both
    make the same BLAS call (the same bits, which tests/test_dense_pass.py checks), and dot
    costs less per call on small matrices (about 0.5 µs of 1 to 2)."""

    def __init__(self, tp: TrainPass, layers: list[_Dense], n_in: int, dtype: np.dtype) -> None:
        self.fallback = tp
        self.layers = layers
        self.n_in = n_in
        self.dtype = dtype
        self.reduction = tp.reduction
        self._buffers: dict[int, _Buffers] = {}
        self._params: Array | None = None  # every parameter as one array, once adopted

    @classmethod
    def build(cls, tp: TrainPass, engine_layers: list[Any], dtype: np.dtype) -> DensePass | None:
        """The pass for this network, or None when it is not one DensePass runs."""
        from bpcalc.ops.dense import Dense

        if not tp.shared_log or not engine_layers:
            return None
        layers = []
        for lp, layer in zip(tp.plan, engine_layers, strict=True):
            op = layer.op
            if type(op) is not Dense or any(reg is not None for _, reg in lp.params):
                return None
            if lp is not tp.plan[-1] and lp.act not in (None, *HIDDEN):
                return None
            out = layer.spec.out_shape
            if len(out) != 1 or len(layer.spec.in_shape) != 1:
                return None
            layers.append(
                _Dense(lp.name, op.layout == "out_in", op.bias_shared, out[0], lp.act, lp.slope)
            )
        return cls(tp, layers, engine_layers[0].spec.in_shape[0], dtype)

    def adopt(self, params: Params) -> None:
        """Move the parameters into one array, each dict entry becoming a view of its place
        (same values, same shapes): plain SGD then updates them all in two ufunc calls
        (sgd_update) instead of two per parameter, the same bits element by element."""
        shapes = _param_shapes(self.layers, self.n_in)
        if any(params[name][p].shape != shape for name, p, shape in shapes):
            return
        flat = np.empty(sum(math.prod(s) for _, _, s in shapes), self.dtype)
        for name, pname, _, view in _views(flat, shapes):
            view[...] = params[name][pname]
            params[name][pname] = view
        self._params = flat

    def sgd_update(self, params: Params, grads: dict[str, dict[str, Array]], lr: float) -> bool:
        """θ −= η·∂L/∂θ for every parameter at once, when θ are still the adopted views and the
        gradients those of this pass's last run (else False: nothing done, update them one
        by one). The same numbers as Trainer's per-parameter np.subtract(θ, g·η)."""
        flat = self._params
        if flat is None:
            return False
        b = next((b for b in self._buffers.values() if b.grads is grads), None)
        if b is None or any(
            params[name][pname].base is not flat for name, ps in grads.items() for pname in ps
        ):
            return False
        np.subtract(flat, np.multiply(b.flat, lr, out=b.flat), out=flat)
        return True

    def run(
        self, params: Params, x: Array, y: Array, one_hot: bool = False
    ) -> tuple[float, ForwardResult, dict[str, dict[str, Array]]]:
        """(L, the forward pass (its output only), ∂L/∂θ), as TrainPass.run gives them.

        one_hot: the caller vouches that every row of y is zeros and a single 1 (training.fit
        checks its data once): Σy = 1 exactly, so fused_grad_z's p·Σy − y is p − y, the same
        bits without the sum and the product."""
        if (
            x.ndim != 2
            or y.ndim != 2
            or x.dtype != self.dtype
            or y.dtype != self.dtype
            or x.shape[1] != self.n_in
        ):
            return self.fallback.run(params, x, y)
        n = x.shape[0]
        b = self._buffers.get(n)
        if b is None:
            b = self._buffers[n] = _Buffers(self.layers, n, self.n_in, self.dtype)
            b.scale = losses.batch_scale(self.reduction, n)
        layers, last = self.layers, len(self.layers) - 1
        # forward: Dense.forward, then activations.forward (softmax_and_log for the last)
        inputs = []
        h = x
        for i, d in enumerate(layers):
            p = params[d.name]
            inputs.append(h)
            z = b.z[i]
            np.dot(h, p["weights"].T if d.out_in else p["weights"], out=z)
            np.add(z, p["bias"], out=z)
            if i == last:
                break
            h = _act_forward(d, z, b.a[i])
        z, shifted, e = b.z[last], b.shifted, b.a[last]
        np.maximum.reduce(z, axis=-1, keepdims=True, out=b.row)
        np.subtract(z, b.row, out=shifted)
        np.exp(shifted, out=e)
        np.add.reduce(e, axis=-1, keepdims=True, out=b.total)
        np.subtract(shifted, np.log(b.total, out=b.row), out=shifted)  # log-softmax
        np.divide(e, b.total, out=e)  # softmax
        # the loss: cross_entropy_from_log, then losses.reduce; ℓ_n = −Σ_k y·log p negated
        # after the sums rather than before (rounding is symmetric: the same bits, one pass
        # less)
        np.multiply(y, shifted, out=b.prod)
        loss = -losses.reduce(self.reduction, np.add.reduce(b.prod, axis=1, out=b.per))
        # backward: fused_grad_z (p·Σy − y, times the batch factor), then each layer's
        # param_grads, its ∂L/∂x (not for the first layer) and the activation below
        dz = b.dz[last]
        if one_hot:
            np.subtract(e, y, out=dz)
        else:
            np.add.reduce(y, axis=1, keepdims=True, out=b.total)
            np.multiply(e, b.total, out=dz)
            np.subtract(dz, y, out=dz)
        if b.scale != 1.0:
            np.multiply(dz, b.scale, out=dz)
        for i in range(last, -1, -1):
            d, p, g = layers[i], params[layers[i].name], b.grads[layers[i].name]
            w = p["weights"]
            if d.out_in:
                np.dot(dz.T, inputs[i], out=g["weights"])
            else:
                np.dot(inputs[i].T, dz, out=g["weights"])
            if d.bias_shared:
                g["bias"][0] = np.add.reduce(dz, axis=0).sum()
            else:
                np.add.reduce(dz, axis=0, out=g["bias"])
            if i == 0:
                break
            da = b.da[i - 1]
            np.dot(dz, w if d.out_in else w.T, out=da)
            # the layer below: its z, and its a, which is this layer's input
            j = i - 1
            dz = _act_backward(layers[j], da, b.z[j], inputs[i], b.dz[j], b.mask[j])
        return loss, b.forward, b.grads


def _act_forward(d: _Dense, z: Array, out: Array) -> Array:
    """activations.forward(kind, z): into `out` for relu; the other kinds as they are."""
    if d.act is None:
        return z
    if d.act == "relu":
        return np.maximum(z, 0.0, out=out)
    return act_ops.forward(d.act, z, d.slope)


def _act_backward(d: _Dense, da: Array, z: Array, a: Array, out: Array, mask: Array) -> Array:
    """activations.backward(kind, da, z, a): da · 1[z > 0] into `out` for relu."""
    if d.act is None:
        return da
    if d.act == "relu":
        return np.multiply(da, np.greater(z, 0, out=mask), out=out)
    return act_ops.backward(d.act, da, z, a, d.slope)
