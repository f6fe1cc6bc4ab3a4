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
from bpcalc.layers.pool.spec import PoolSpec
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
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
    x_shape: tuple[int, ...]  # (N, C, H, W)
    # (N, C, Ho, Wo): which position of each window won, as its row-major number i·kw + j
    # (the first of equal maxima); NO_WINNER where the maximum is NaN
    winner: Array


NO_WINNER = 255  # a window whose maximum is NaN: no element equals it, none gets a gradient


def _winner_dtype(taps: int) -> np.dtype:
    """The smallest unsigned integer that numbers every position of a window and keeps its
    largest value free for NO_WINNER (255 for the usual windows of up to 254 positions)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if taps < np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


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
        """a[n,c,h,w] = max over the window at (h·s_h, w·s_w); records each window's winner.

        The winner is the first position, in row-major order, holding the maximum: a position
        wins when it is strictly greater than the maximum so far. Each position is copied out
        of its strided slice once (contiguous, then compared and taken twice)."""
        ho, wo = _out_size(x.shape, self.size, self.stride)
        taps = _taps(self.size, self.stride, ho, wo)
        index = _winner_dtype(len(taps))
        rows, cols = taps[0]
        out = x[:, :, rows, cols].copy()
        winner = np.zeros(out.shape, dtype=index)
        if len(taps) > 1:
            tap = np.empty_like(out)
            larger = np.empty(out.shape, dtype=bool)
            number = np.empty(out.shape, dtype=index)
            for t, (rows, cols) in enumerate(taps[1:], start=1):
                np.copyto(tap, x[:, :, rows, cols])
                np.greater(tap, out, out=larger)
                # the positions come in increasing order: the winner so far is below t, so
                # max(winner, t·larger) puts t where this one is larger and keeps the rest
                np.multiply(larger.view(np.uint8), index.type(t), out=number)
                np.maximum(winner, number, out=winner)
                np.maximum(out, tap, out=out)  # NaN propagates, as it always did
        if out.dtype.kind == "f":
            nan = np.isnan(out)
            if nan.any():
                winner[nan] = np.iinfo(index).max  # NO_WINNER for windows of up to 254
        return out, MaxPoolCache(x.shape, winner)

    def backward(
        self, dout: Array, cache: MaxPoolCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """∂L/∂x is ∂L/∂a at the winning element of each window, 0 elsewhere (summed where windows
        overlap): for each position t of the window, ∂L/∂a where the winner is t, else 0.

        The same numbers, bit for bit, as comparing every element with the maximum: each element
        gets 0 + ∂L/∂a·[won] (so +0.0, never −0.0, where it lost), and overlapping windows add
        their shares in the windows' row-major order."""
        (kh, kw), (sh, sw) = self.size, self.stride
        ho, wo = dout.shape[2:]
        h, w = cache.x_shape[2:]
        disjoint = sh >= kh and sw >= kw  # each element in at most one window
        if sh == kh and sw == kw:  # tiled: every element up to ho·sh, wo·sw in one window
            dx = np.empty(cache.x_shape, dtype=dout.dtype)
            if ho * sh < h:  # the rows and columns past the last window
                dx[:, :, ho * sh :, :] = 0
            if wo * sw < w:
                dx[:, :, : ho * sh, wo * sw :] = 0
        else:
            dx = np.zeros(cache.x_shape, dtype=dout.dtype)
        won = np.empty(dout.shape, dtype=bool)
        share = None if disjoint else np.empty_like(dout)
        for t, (rows, cols) in enumerate(_taps(self.size, self.stride, ho, wo)):
            np.equal(cache.winner, t, out=won)
            if share is None:  # written once: ∂L/∂a·[won] straight into place
                np.multiply(dout, won, out=dx[:, :, rows, cols])
            else:
                np.multiply(dout, won, out=share)
                dx[:, :, rows, cols] += share
        if share is None:
            np.add(dx, 0.0, out=dx)  # 0 + ∂L/∂a·[won]: a lost element's −0.0 becomes +0.0
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
