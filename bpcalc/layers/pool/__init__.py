"""Max and average pooling over (kh, kw) windows with a stride.

Max pooling sends the gradient to the window's largest element; on a tie, to the first in
row-major order (as PyTorch's CPU kernel does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc.layers import Layer
from bpcalc.layers.conv2d import pair
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.types import PoolSpec
from bpcalc.network.yaml_source import Src

Array = np.ndarray


def _taps(
    size: tuple[int, int], stride: tuple[int, int], ho: int, wo: int
) -> list[tuple[slice, slice]]:
    """(rows, cols) for each position (i, j) in the window, in row-major order: x[:, :, rows, cols]
    holds element (i, j) of every window, shaped (N, C, Ho, Wo)."""
    (kh, kw), (sh, sw) = size, stride
    return [
        (slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))
        for i in range(kh)
        for j in range(kw)
    ]


def _out_size(
    x_shape: tuple[int, ...], size: tuple[int, int], stride: tuple[int, int]
) -> tuple[int, int]:
    h, w = x_shape[2:]
    return (h - size[0]) // stride[0] + 1, (w - size[1]) // stride[1] + 1


@dataclass(frozen=True)
class MaxPoolCache:
    x: Array  # (N, C, H, W), the input (a reference, not a copy)
    out: Array  # (N, C, Ho, Wo), each window's maximum


@dataclass(frozen=True)
class AvgPoolCache:
    x_shape: tuple[int, ...]


class _Pool(Layer):
    """What max and average pooling share: the window, and how it is written."""

    kind = ""

    def __init__(self, size: tuple[int, int], stride: tuple[int, int], spec: Any = None) -> None:
        self.size = size
        self.stride = stride
        self.spec = spec

    @classmethod
    def from_spec(cls, spec: Any) -> _Pool:
        return cls(spec.size, spec.stride, spec)

    def forward_formula(self) -> str:
        return f"a = {self.kind}pool{pair(self.size)}(x), stride {pair(self.stride)}"


class MaxPool2d(_Pool):
    """Windows are visited through kh·kw strided slices, one per position in the window, so
    each pass is a whole-array operation (no argmax over a generic window view)."""

    types = ("maxpool2d",)
    kind = "max"

    def grad_input_formula(self) -> str:
        return "∂L/∂x = ∂L/∂a at each window's max, 0 elsewhere"

    def convention(self) -> str:
        return "max pooling: the gradient goes to each window's max (first one on a tie)"

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, MaxPoolCache]:
        """a[n,c,h,w] = max over the window at (h·s_h, w·s_w)."""
        ho, wo = _out_size(x.shape, self.size, self.stride)
        taps = _taps(self.size, self.stride, ho, wo)
        rows, cols = taps[0]
        out = x[:, :, rows, cols].copy()
        for rows, cols in taps[1:]:
            np.maximum(out, x[:, :, rows, cols], out=out)
        return out, MaxPoolCache(x, out)

    def backward(
        self, dout: Array, cache: MaxPoolCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """∂L/∂x is ∂L/∂a at the winning element of each window, 0 elsewhere (summed where windows
        overlap). The winner is the first element, in row-major order, equal to the maximum."""
        x, out = cache.x, cache.out
        ho, wo = out.shape[2:]
        dx = np.zeros(x.shape, dtype=dout.dtype)
        open_ = np.ones(out.shape, dtype=bool)  # windows whose winner is not found yet
        for rows, cols in _taps(self.size, self.stride, ho, wo):
            won = (x[:, :, rows, cols] == out) & open_
            open_ &= ~won
            dx[:, :, rows, cols] += dout * won
        return dx, {}


class AvgPool2d(_Pool):
    types = ("avgpool2d",)
    kind = "avg"

    def grad_input_formula(self) -> str:
        return "∂L/∂x = ∂L/∂a / (window size), spread over the window"

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, AvgPoolCache]:
        """a[n,c,h,w] = mean of the window at (h·s_h, w·s_w): the sum of kh·kw strided slices."""
        ho, wo = _out_size(x.shape, self.size, self.stride)
        taps = _taps(self.size, self.stride, ho, wo)
        rows, cols = taps[0]
        out = x[:, :, rows, cols].copy()
        for rows, cols in taps[1:]:
            out += x[:, :, rows, cols]
        out /= len(taps)
        return out, AvgPoolCache(x.shape)

    def backward(
        self, dout: Array, cache: AvgPoolCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """Each element of a window gets ∂L/∂a / (kh·kw)."""
        kh, kw = self.size
        dx = np.zeros(cache.x_shape, dtype=dout.dtype)
        ho, wo = dout.shape[2:]
        share = dout / (kh * kw)
        for rows, cols in _taps(self.size, self.stride, ho, wo):
            dx[:, :, rows, cols] += share
        return dx, {}


# -- reading the layer from the network file ----------------------------------------------


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> PoolSpec:
    F.common(lsrc, ("size", "stride"))
    if len(shape) != 3:
        raise lsrc.error(
            f"{ltype} layer {name!r} needs an image input, but {prev} gives shape {V._fmt(shape)}"
            + F.sequence_hint(shape)
        )
    c, h, w = shape
    size = V.pair(lsrc.child("size"), "size", minimum=1) if "size" in lsrc.value else (2, 2)
    stride = V.pair(lsrc.child("stride"), "stride", minimum=1) if "stride" in lsrc.value else size
    if size[0] > h or size[1] > w:
        raise lsrc.error(
            f"{ltype} layer {name!r}: the window ({size[0]} x {size[1]}) is larger than its input ({h} x {w})"
        )
    for axis, n, k, s in (("height", h, size[0], stride[0]), ("width", w, size[1], stride[1])):
        if (n - k) % s != 0:
            where = (
                lsrc.child("stride")
                if "stride" in lsrc.value
                else lsrc.child("size")
                if "size" in lsrc.value
                else lsrc
            )
            raise where.error(
                f"{ltype} layer {name!r}: windows of {k} with stride {s} do not tile the input's {axis} of {n} "
                f"({(n - k) % s} left over); choose a size and stride that cover it exactly"
            )
    return PoolSpec(
        **F.frame(
            lsrc,
            name,
            ltype,
            shape,
            sq,
            (c, F.conv_out(h, size[0], stride[0], 0), F.conv_out(w, size[1], stride[1], 0)),
        ),
        size=size,
        stride=stride,
    )
