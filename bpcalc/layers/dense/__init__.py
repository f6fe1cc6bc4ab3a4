"""Fully connected layer: z = W·x + b (layout out_in) or z = x·W + b (layout in_out).

W: (out, in) for out_in (one row per neuron, as PyTorch), (in, out) for in_out (one column per
neuron, as CS231n); b: (out,), or (1,) when one bias is shared by all neurons. Without a bias
(`bias: none`, PyTorch's bias=False) z = W·x and the layer has one parameter, W; leaving
`bias` out gives zero biases that are trained.
Over a sequence (T, in) the layer acts on every position with the same W and b (as
torch.nn.Linear on (N, T, in)): z_t = W·x_t + b, and ∂L/∂W, ∂L/∂b sum over the positions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc import activations
from bpcalc.layers import Layer, LayerSlip
from bpcalc.layers.dense.spec import DenseSpec
from bpcalc.network import initializers as _init
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src
from bpcalc.substeps import KeyedRadius, sum_of_products

Array = np.ndarray


@dataclass(frozen=True)
class DenseCache:
    x: Array  # (N, in), or (N, T, in) for a sequence


class Dense(Layer):
    """W: (out, in) for out_in, (in, out) for in_out; b: (out,), or (1,) when shared by all
    neurons, or none at all (has_bias False)."""

    types = ("dense",)
    parametric = True

    def __init__(
        self,
        layout: str = "out_in",
        bias_shared: bool = False,
        spec: Any = None,
        has_bias: bool = True,
    ) -> None:
        self.layout = layout
        self.bias_shared = bias_shared
        self.has_bias = has_bias
        self.param_names = ("weights", "bias") if has_bias else ("weights",)
        self.spec = spec

    @classmethod
    def from_spec(cls, spec: Any) -> Dense:
        return cls(spec.layout, spec.bias_shared, spec, spec.bias is not None)

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, DenseCache]:
        """z[n, i] = Σ_j W[i, j] x[n, j] + b[i]. x: (N, in) -> z: (N, out)."""
        w = params["weights"]
        z = x @ (w.T if self.layout == "out_in" else w)
        if self.has_bias:
            z += params["bias"]  # broadcasts (out,) or the shared (1,)
        return z, DenseCache(x)

    def param_grads(
        self, dz: Array, cache: DenseCache, params: dict[str, Array]
    ) -> dict[str, Array]:
        """∂L/∂W = ∂L/∂z · xᵀ (summed over the batch), ∂L/∂b = Σ_n ∂L/∂z.

        A shared bias also sums over the neurons, since it feeds every one of them.
        """
        x = cache.x
        if x.ndim == 3:  # a sequence: every position is one more term of the sums
            x, dz = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
        dw = dz.T @ x if self.layout == "out_in" else x.T @ dz
        if not self.has_bias:
            return {"weights": dw}
        db = np.add.reduce(dz, axis=0)
        if self.bias_shared:
            db = np.atleast_1d(db.sum())
        return {"weights": dw, "bias": db}

    def backward(
        self, dz: Array, cache: DenseCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """The parameter gradients (see param_grads) and ∂L/∂x = Wᵀ · ∂L/∂z."""
        w = params["weights"]
        dx = dz @ w if self.layout == "out_in" else dz @ w.T
        return dx, self.param_grads(dz, cache, params)

    # -- what the user sees -----------------------------------------------------------------
    def forward_formula(self) -> str:
        core = "W·x" if self.layout == "out_in" else "x·W"
        if not self.has_bias:
            return f"z = {core} (no bias)"
        return f"z = {core} + b" + (" (one shared b)" if self.bias_shared else "")

    def grad_param_formula(self, param: str) -> str:
        over_t = "Σ_t " if self.spec is not None and self.spec.sequence_out else ""
        if param == "weights":
            return (
                f"∂L/∂W = {over_t}∂L/∂z · xᵀ"
                if self.layout == "out_in"
                else f"∂L/∂W = {over_t}xᵀ · ∂L/∂z"
            )
        if self.bias_shared:
            return f"∂L/∂b = {over_t}Σ_i ∂L/∂z_i (shared bias)"
        return f"∂L/∂b = {over_t}∂L/∂z"

    def grad_input_formula(self) -> str:
        return "∂L/∂x = Wᵀ · ∂L/∂z" if self.layout == "out_in" else "∂L/∂x = ∂L/∂z · Wᵀ"

    def convention(self) -> str:
        text = (
            "z = W·x + b, W is out x in (one row per neuron, as in PyTorch)"
            if self.layout == "out_in"
            else "z = x·W + b, W is in x out (one column per neuron, as in CS231n)"
        )
        if self.bias_shared:
            text += "; one bias shared by all neurons, its gradient is the sum over them"
        if not self.has_bias:
            text = text.replace(" + b", "") + "; no bias (bias: none)"
        if self.spec is not None and self.spec.sequence_out:
            text += "; at every position of the sequence, with the same W and b"
        return text

    def param_shown(self, param: str) -> tuple[int, ...]:
        return self.spec.weights_shown if param == "weights" else self.spec.bias_shown

    # -- the checker ----------------------------------------------------------------------
    def substeps(
        self,
        x: Array,
        params: dict[str, Array],
        dz: Array | None,
        radius: KeyedRadius,
        stage: Any = None,
    ) -> dict[str, Array]:
        """Every product of z = Σ W·x + b, of ∂L/∂x = Σ W·∂L/∂z and of ∂L/∂W = Σ_n ∂L/∂z·x."""
        w = params["weights"]
        w_oi = w if self.layout == "out_in" else w.T  # (out, in)
        x = x.reshape(-1, x.shape[-1])  # a sequence: every position a row, as the layer sees it
        dz = None if dz is None else dz.reshape(-1, dz.shape[-1])
        bias = np.broadcast_to(params["bias"] != 0 if "bias" in params else False, (w_oi.shape[0],))
        out = {
            "z": sum_of_products(
                w_oi[None] * x[:, None, :], (2,), lambda s: radius("z", s), bias[None, :]
            )
        }
        if dz is not None:
            out["input"] = sum_of_products(
                w_oi[None] * dz[:, :, None], (1,), lambda s: radius("input", s), 0
            )
            dw = sum_of_products(
                dz[:, :, None] * x[:, None, :], (0,), lambda s: radius("weights", s), 0
            )
            out["weights"] = dw if self.layout == "out_in" else dw.T
        return out

    def slips(self) -> list[LayerSlip]:
        w = self.spec.weights
        if w.shape[0] != w.shape[1] or w.shape[0] == 1 or np.allclose(w, w.T):
            return []
        other = "in_out" if self.layout == "out_in" else "out_in"
        how = (
            "one row per neuron: z = W·x + b"
            if self.layout == "out_in"
            else "one column per neuron: z = x·W + b"
        )
        return [
            LayerSlip(
                "dense_transposed",
                dataclasses.replace(self.spec, layout=other),
                f"You used the weight matrix of layer {self.spec.name} transposed (rows and "
                f"columns swapped); in this network W has {how}.",
            )
        ]


# -- reading the layer from the network file ----------------------------------------------


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> DenseSpec:
    F.common(
        lsrc,
        (
            "weights",
            "bias",
            "activation",
            *activations.option_keys(),
            "freeze",
            "layout",
            "bias_shared",
            "units",
            "init",
        ),
    )
    _init.check_exclusive(lsrc, name, "weights", ("units",))
    if "weights" not in lsrc.value and "units" not in lsrc.value:
        raise lsrc.error(
            f"dense layer {name!r} needs weights: (values) or units: (a number of neurons, drawn by init:)"
        )
    if len(shape) not in (1, 2):
        raise lsrc.error(
            f"dense layer {name!r} needs a vector input (or a sequence, T x d), but {prev} gives "
            f"shape {V._fmt(shape)}: add a flatten layer before it"
        )
    n_in = shape[-1]  # a sequence (T, d): the layer acts on each position's d features
    layout = (
        V.choice(lsrc.child("layout"), "layout", ("out_in", "in_out"))
        if "layout" in lsrc.value
        else "out_in"
    )
    wsrc = lsrc.child("weights")
    w = (
        _init.dense_weights(lsrc, name, n_in, layout)
        if "units" in lsrc.value
        else V.array(wsrc, f"{name}.weights", ndims=(0, 1, 2))
    )
    weights_shown = w.shape
    # A single number or a flat list is one neuron's weights (out_in) or one input's (in_out).
    if w.ndim < 2:
        w = w.reshape(1, -1) if layout == "out_in" else w.reshape(-1, 1)
    rows, cols = w.shape
    fan_in = cols if layout == "out_in" else rows
    n_out = rows if layout == "out_in" else cols
    if fan_in != n_in:
        written = "out x in (z = W·x + b)" if layout == "out_in" else "in x out (z = x·W + b)"
        other = "in_out" if layout == "out_in" else "out_in"
        hint = (
            f"; the transposed matrix ({cols} x {rows}) would fit: transpose it, or write layout: {other}"
            if (rows if layout == "out_in" else cols) == n_in
            else ""
        )
        raise wsrc.error(
            f"dense layer {name!r}: weights are {rows} x {cols}, read as {written}, so it expects "
            f"{fan_in} input{'s' if fan_in != 1 else ''}, but {prev} gives {n_in} (shape {V._fmt(shape)}){hint}"
        )
    shared = (
        V.boolean(lsrc.child("bias_shared"), "bias_shared")
        if "bias_shared" in lsrc.value
        else False
    )
    bias_mode = F.bias_mode(lsrc, name)
    b: np.ndarray | None
    if bias_mode == "values":
        bsrc = lsrc.child("bias")
        b = V.array(bsrc, f"{name}.bias", ndims=(0, 1))
        bias_shown = b.shape
        b = b.reshape(-1)
        if shared:
            if b.size != 1:
                raise bsrc.error(
                    f"dense layer {name!r} has bias_shared: true, so its bias is one number; found {b.size}"
                )
        elif b.size == 1 and n_out > 1 and np.ndim(bsrc.value) == 0:
            raise bsrc.error(
                f"dense layer {name!r} has {n_out} neurons: give {n_out} biases, or one number with bias_shared: true"
            )
        elif b.size != n_out:
            raise bsrc.error(f"dense layer {name!r} has {n_out} neurons but {b.size} biases")
    elif bias_mode == "zeros":
        b = np.zeros(1 if shared else n_out)
        bias_shown = () if shared else (n_out,)
    else:
        b, bias_shown = None, ()
    if weights_shown == () and n_out != 1:
        weights_shown = w.shape
    out_shape = (*shape[:-1], n_out)
    F.check_sequence_options(lsrc, name, out_shape)
    return DenseSpec(
        **F.frame(lsrc, name, ltype, shape, sq, out_shape),
        weights=w,
        bias=b,
        layout=layout,
        bias_shared=shared,
        activation=F.activation(lsrc),
        freeze=F.freeze(
            lsrc,
            ("weights", "bias") if b is not None else ("weights",),
            {"bias": f"layer {name!r} has no bias"} if b is None else None,
        ),
        weights_shown=weights_shown,
        bias_shown=bias_shown,
    )
