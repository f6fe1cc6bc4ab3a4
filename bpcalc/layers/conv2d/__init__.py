"""2-D convolution layer: cross-correlation as in PyTorch, or the textbook (flipped) convolution.

z[n, o, h, w] = Σ_c Σ_i Σ_j x_pad[n, c, h·s_h + i, w·s_w + j] · K[o, c, i, j] + b[o]
(with `flip`, K[o, c, kh−1−i, kw−1−j] in place of K[o, c, i, j]). Without a bias (`bias: none`,
PyTorch's bias=False) the + b[o] is gone and K is the only parameter.

The forward pass is one matrix product per sample over the input's patches (im2col): the
patch matrix cols[n] (C·kh·kw, Ho·Wo) is filled by kh·kw strided slices of the padded input,
one per kernel tap, and z[n] = K (O, C·kh·kw) @ cols[n] comes out already in (N, O, Ho, Wo)
order. The backward pass reuses cols for ∂L/∂K and scatters ∂L/∂x back through the same
slices. The plain loop that reads like the formula is in tests/reference.py and the tests
compare the two.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc import activations
from bpcalc.layers import Delegate, Layer, LayerSlip
from bpcalc.layers.conv2d.spec import Conv2dSpec
from bpcalc.network import initializers as _init
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src
from bpcalc.substeps import KeyedRadius, sum_of_products

Array = np.ndarray


@dataclass(frozen=True)
class Conv2dCache:
    x_shape: tuple[int, ...]  # (N, C, H, W) before padding
    cols: Array  # (N, C·kh·kw, Ho·Wo): the padded input under each output position


class Conv2d(Layer):
    types = ("conv2d",)
    parametric = True

    def __init__(
        self,
        stride: tuple[int, int],
        padding: tuple[int, int],
        flip: bool,
        spec: Any = None,
        has_bias: bool = True,
    ) -> None:
        self.stride = stride
        self.padding = padding
        self.flip = flip
        self.has_bias = has_bias
        self.param_names = ("kernel", "bias") if has_bias else ("kernel",)
        self.spec = spec

    @classmethod
    def from_spec(cls, spec: Any) -> Conv2d:
        return cls(spec.stride, spec.padding, spec.flip, spec, spec.bias is not None)

    def _effective(self, kernel: Array) -> Array:
        return kernel[:, :, ::-1, ::-1] if self.flip else kernel

    def _taps(self, kh: int, kw: int, ho: int, wo: int) -> list[tuple[int, int, slice, slice]]:
        """(i, j, rows, cols) for each kernel tap: the padded input's positions that tap sees."""
        sh, sw = self.stride
        return [
            (i, j, slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))
            for i in range(kh)
            for j in range(kw)
        ]

    def _out_size(self, h: int, w: int, kh: int, kw: int) -> tuple[int, int]:
        (sh, sw), (ph, pw) = self.stride, self.padding
        return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def im2col(self, x: Array, kh: int, kw: int) -> Array:
        """(N, C, H, W) -> cols (N, C·kh·kw, Ho·Wo), rows in (c, i, j) order like K.reshape(O, -1)."""
        n, c, h, w = x.shape
        ph, pw = self.padding
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        ho, wo = self._out_size(h, w, kh, kw)
        cols = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
        for i, j, rows, cs in self._taps(kh, kw, ho, wo):
            cols[:, :, i, j] = x[:, :, rows, cs]
        return cols.reshape(n, c * kh * kw, ho * wo)

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, Conv2dCache]:
        """x: (N, C, H, W), kernel: (O, C, kh, kw), bias: (O,) -> z: (N, O, Ho, Wo)."""
        k = self._effective(params["kernel"])
        o, c, kh, kw = k.shape
        n, _, h, w = x.shape
        ho, wo = self._out_size(h, w, kh, kw)
        cols = self.im2col(x, kh, kw)
        z = np.matmul(k.reshape(o, -1), cols)  # (N, O, Ho·Wo)
        if self.has_bias:
            z += params["bias"][:, None]
        return z.reshape(n, o, ho, wo), Conv2dCache(x.shape, cols)

    def param_grads(
        self, dz: Array, cache: Conv2dCache, params: dict[str, Array]
    ) -> dict[str, Array]:
        """∂L/∂K[o,c,i,j] = Σ_{n,h,w} ∂L/∂z[n,o,h,w] · x_pad[n,c,h·s+i,w·s+j] = Σ_n dz[n] @ cols[n]ᵀ;
        ∂L/∂b[o] = Σ_{n,h,w} ∂L/∂z[n,o,h,w]."""
        o, c, kh, kw = params["kernel"].shape
        n = dz.shape[0]
        dz3 = dz.reshape(n, o, -1)
        dk = np.matmul(dz3, cache.cols.transpose(0, 2, 1)).sum(axis=0).reshape(o, c, kh, kw)
        if self.flip:
            dk = np.ascontiguousarray(dk[:, :, ::-1, ::-1])
        if not self.has_bias:
            return {"kernel": dk}
        return {"kernel": dk, "bias": dz3.sum(axis=(0, 2))}

    def backward(
        self, dz: Array, cache: Conv2dCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """The parameter gradients (see param_grads) and ∂L/∂x, which scatters
        ∂L/∂z[n,o,h,w] · K[o,c,i,j] back onto the input position each kernel tap saw."""
        grads = self.param_grads(dz, cache, params)
        k = self._effective(params["kernel"])
        o, c, kh, kw = k.shape
        n, _, h, w = cache.x_shape
        ho, wo = dz.shape[2:]
        ph, pw = self.padding
        dcols = np.matmul(k.reshape(o, -1).T, dz.reshape(n, o, -1))  # (N, C·kh·kw, Ho·Wo)
        dcols = dcols.reshape(n, c, kh, kw, ho, wo)
        dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dz.dtype)
        for i, j, rows, cs in self._taps(kh, kw, ho, wo):
            dxp[:, :, rows, cs] += dcols[:, :, i, j]
        dx = dxp[:, :, ph : ph + h, pw : pw + w]
        return np.ascontiguousarray(dx), grads

    # -- what the user sees -----------------------------------------------------------------
    def forward_formula(self) -> str:
        op = "x ∗ flip(K)" if self.flip else "x ⋆ K"
        b = " + b" if self.has_bias else " (no bias)"
        return f"z = {op}{b}  (stride {pair(self.stride)}, padding {pair(self.padding)})"

    def grad_param_formula(self, param: str) -> str:
        if param == "kernel":
            return "∂L/∂K[i,j] = Σ_{h,w} ∂L/∂z[h,w] · x[h·s+i, w·s+j]" + (
                " (flipped back)" if self.flip else ""
            )
        return "∂L/∂b = Σ_{h,w} ∂L/∂z[h,w]"

    def grad_input_formula(self) -> str:
        return "∂L/∂x = ∂L/∂z ⋆ K, full (each input gets every tap that saw it)"

    def convention(self) -> str:
        text = (
            "convolution: the kernel is flipped 180° before sliding (textbook)"
            if self.flip
            else "cross-correlation: the kernel slides unflipped (as in PyTorch)"
        )
        text += f", stride {pair(self.stride)}, zero padding {pair(self.padding)}"
        return text if self.has_bias else text + "; no bias (bias: none)"

    def param_shown(self, param: str) -> tuple[int, ...]:
        if self.spec.kernel_2d:
            return self.spec.kernel.shape[2:] if param == "kernel" else ()
        return tuple(self.spec.params[param].shape)

    # -- the checker ----------------------------------------------------------------------
    def substeps(
        self,
        x: Array,
        params: dict[str, Array],
        dz: Array | None,
        radius: KeyedRadius,
        stage: Any = None,
    ) -> dict[str, Array]:
        """Every product of z = Σ K·x + b (over the taps of a window), of ∂L/∂K = Σ ∂L/∂z·x
        (over the positions and samples) and of ∂L/∂x (over the taps that saw the input)."""
        k = self._effective(params["kernel"])
        o, c, kh, kw = k.shape
        n, _, h, w = x.shape
        ho, wo = self._out_size(h, w, kh, kw)
        cols = self.im2col(x, kh, kw)  # (N, CKK, HW)
        kf = k.reshape(o, -1)
        bias = np.broadcast_to(params["bias"] != 0 if "bias" in params else False, (o,))[
            None, :, None
        ]
        z = sum_of_products(
            kf[None, :, :, None] * cols[:, None], (2,), lambda s: radius("z", s), bias
        )
        out = {"z": z.reshape(n, o, ho, wo)}
        if dz is not None:
            d3 = dz.reshape(n, o, 1, -1)
            dk = sum_of_products(
                d3 * cols[:, None], (0, 3), lambda s: radius("kernel", s), 0
            ).reshape(o, c, kh, kw)
            out["kernel"] = np.ascontiguousarray(dk[:, :, ::-1, ::-1]) if self.flip else dk
            products = kf[None, :, :, None] * d3  # (N, O, CKK, HW)
            rounded = radius("input", products).sum(axis=1)
            terms = (products != 0).sum(axis=1).astype(np.float64)
            each = self._scatter(rounded, x.shape, ho, wo, kh, kw)
            many = self._scatter(terms, x.shape, ho, wo, kh, kw)
            out["input"] = np.where(many >= 2, each, 0.0)
        return out

    def _scatter(
        self, dcols: Array, x_shape: tuple[int, ...], ho: int, wo: int, kh: int, kw: int
    ) -> Array:
        """(N, C·kh·kw, Ho·Wo) onto the input positions each tap saw, summed: (N, C, H, W)."""
        n, c, h, w = x_shape
        ph, pw = self.padding
        d6 = dcols.reshape(n, c, kh, kw, ho, wo)
        dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=np.float64)
        for i, j, rows, cs in self._taps(kh, kw, ho, wo):
            dxp[:, :, rows, cs] += d6[:, :, i, j]
        return dxp[:, :, ph : ph + h, pw : pw + w]

    def slips(self) -> list[LayerSlip]:
        name = self.spec.name
        return [
            LayerSlip(
                "conv_flip",
                dataclasses.replace(self.spec, flip=not self.flip),
                f"In layer {name} you flipped the kernel (rotated it 180°: textbook "
                "convolution), but this network uses cross-correlation: the kernel slides "
                "unflipped, as in PyTorch."
                if not self.flip
                else f"In layer {name} you slid the kernel without flipping it "
                "(cross-correlation), but this network uses textbook convolution: "
                "rotate the kernel 180° first.",
            ),
            LayerSlip(
                "conv_flip_backward",
                self.spec,
                f"In layer {name} you turned the kernel the wrong way for ∂L/∂x: each input "
                "x[r,c] gets ∂L/∂z[h,w]·K[i,j] from every window (h, w) that covered it with "
                "the tap (i, j) the forward pass used"
                + (
                    ", so written as a sliding sum it is ∂L/∂z, zero-padded, slid over the "
                    "kernel rotated 180°."
                    if not self.flip
                    else ", which for a flipped (convolution) forward pass means sliding the "
                    "padded ∂L/∂z over the kernel as written."
                ),
                unit=_FlippedForInput(self),
            ),
            LayerSlip(
                "conv_flip_kernel_grad",
                self.spec,
                f"Your ∂L/∂K of layer {name} is rotated 180°: ∂L/∂K[i,j] = Σ ∂L/∂z[h,w]·x[h·s+i, "
                "w·s+j] is the input under the tap (i, j) of the kernel as written"
                + (", flipped back after a convolution." if self.flip else "."),
                unit=_FlippedKernelGrad(self),
            ),
        ]


class _FlippedForInput(Delegate):
    """Slip: ∂L/∂x through the kernel rotated 180° from the one the forward pass used."""

    def __init__(self, inner: Conv2d) -> None:
        super().__init__(inner)
        self.other = Conv2d(inner.stride, inner.padding, not inner.flip, inner.spec)

    def backward(
        self, dz: Array, cache: Any, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        dx, _ = self.other.backward(dz, cache, params)
        return dx, self.inner.param_grads(dz, cache, params)


class _FlippedKernelGrad(Delegate):
    """Slip: ∂L/∂K rotated 180°."""

    def param_grads(self, dz: Array, cache: Any, params: dict[str, Array]) -> dict[str, Array]:
        return self._turned(self.inner.param_grads(dz, cache, params))

    def backward(
        self, dz: Array, cache: Any, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        dx, grads = self.inner.backward(dz, cache, params)
        return dx, self._turned(grads)

    @staticmethod
    def _turned(grads: dict[str, Array]) -> dict[str, Array]:
        return {**grads, "kernel": np.ascontiguousarray(grads["kernel"][:, :, ::-1, ::-1])}


def pair(p: tuple[int, int]) -> str:
    """A size or stride as written in formulas: 2 for (2, 2), 2x3 otherwise."""
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


# -- reading the layer from the network file ----------------------------------------------


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> Conv2dSpec:
    F.common(
        lsrc,
        ("kernel", "bias", "stride", "padding", "flip", "activation", *activations.option_keys())
        + ("freeze",)
        + ("out_channels", "kernel_size", "init"),
    )
    _init.check_exclusive(lsrc, name, "kernel", ("out_channels", "kernel_size"))
    if len(shape) != 3:
        raise lsrc.error(
            f"conv2d layer {name!r} needs an image input (C, H, W), but {prev} gives shape {V._fmt(shape)}"
            + F.sequence_hint(shape)
        )
    c, h, w = shape
    ksrc = lsrc.child("kernel")
    k = (
        V.array(ksrc, f"{name}.kernel", ndims=(2, 4))
        if "kernel" in lsrc.value
        else _init.conv_kernel(lsrc, name, c)
    )
    kernel_2d = k.ndim == 2
    if kernel_2d:
        if c != 1:
            raise ksrc.error(
                f"conv2d layer {name!r}: a 2-D kernel is for one input channel, but {prev} has {c} channels; write the kernel as out x in x kh x kw"
            )
        k = k[None, None]
    o, kc, kh, kw = k.shape
    if kc != c:
        raise ksrc.error(
            f"conv2d layer {name!r}: the kernel has {kc} input channels but {prev} has {c}"
        )
    stride = V.pair(lsrc.child("stride"), "stride", minimum=1) if "stride" in lsrc.value else (1, 1)
    padding = (
        V.pair(lsrc.child("padding"), "padding", minimum=0) if "padding" in lsrc.value else (0, 0)
    )
    if kh > h + 2 * padding[0] or kw > w + 2 * padding[1]:
        raise ksrc.error(
            f"conv2d layer {name!r}: the kernel ({kh} x {kw}) is larger than the padded input "
            f"({h + 2 * padding[0]} x {w + 2 * padding[1]})"
        )
    bias_mode = F.bias_mode(lsrc, name)
    b: np.ndarray | None
    if bias_mode == "values":
        bsrc = lsrc.child("bias")
        b = V.array(bsrc, f"{name}.bias", ndims=(0, 1)).reshape(-1)
        if b.size != o:
            raise bsrc.error(
                f"conv2d layer {name!r} has {o} output channels but {b.size} biases (one per output channel)"
            )
    elif bias_mode == "zeros":
        b = np.zeros(o)
    else:
        b = None
    flip = V.boolean(lsrc.child("flip"), "flip") if "flip" in lsrc.value else False
    ho, wo = F.conv_out(h, kh, stride[0], padding[0]), F.conv_out(w, kw, stride[1], padding[1])
    F.check_sequence_options(lsrc, name, (o, ho, wo))
    return Conv2dSpec(
        **F.frame(lsrc, name, ltype, shape, sq, (o, ho, wo), squeezed_out=kernel_2d),
        kernel=k,
        bias=b,
        kernel_2d=kernel_2d,
        stride=stride,
        padding=padding,
        flip=flip,
        activation=F.activation(lsrc),
        freeze=F.freeze(
            lsrc,
            ("kernel", "bias") if b is not None else ("kernel",),
            {"bias": f"layer {name!r} has no bias"} if b is None else None,
        ),
    )
