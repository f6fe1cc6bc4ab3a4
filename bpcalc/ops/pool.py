"""Max and average pooling over (kh, kw) windows with a stride; flatten.

Max pooling sends the gradient to the window's largest element; on a tie, to the first in
row-major order (as PyTorch's CPU kernel does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Array = np.ndarray


def _windows(x: Array, size: tuple[int, int], stride: tuple[int, int]) -> Array:
    """(N, C, H, W) -> (N, C, Ho, Wo, kh, kw)."""
    return sliding_window_view(x, size, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]


@dataclass(frozen=True)
class MaxPoolCache:
    x_shape: tuple[int, ...]
    argmax: Array  # (N, C, Ho, Wo): flat index inside the window of the element that won


@dataclass(frozen=True)
class AvgPoolCache:
    x_shape: tuple[int, ...]


class MaxPool2d:
    param_names: tuple[str, ...] = ()

    def __init__(self, size: tuple[int, int], stride: tuple[int, int]) -> None:
        self.size = size
        self.stride = stride

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, MaxPoolCache]:
        """a[n,c,h,w] = max over the window at (h·s_h, w·s_w)."""
        win = _windows(x, self.size, self.stride)
        flat = win.reshape(*win.shape[:4], -1)
        arg = flat.argmax(axis=-1)
        out = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
        return out, MaxPoolCache(x.shape, arg)

    def backward(
        self, dout: Array, cache: MaxPoolCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """∂L/∂x is ∂L/∂a at the winning element of each window, 0 elsewhere (summed where windows overlap)."""
        kh, kw = self.size
        sh, sw = self.stride
        dx = np.zeros(cache.x_shape, dtype=dout.dtype)
        n, c, ho, wo = dout.shape
        di, dj = np.divmod(cache.argmax, kw)
        rows = di + (np.arange(ho) * sh)[None, None, :, None]
        cols = dj + (np.arange(wo) * sw)[None, None, None, :]
        nn = np.arange(n)[:, None, None, None]
        cc = np.arange(c)[None, :, None, None]
        np.add.at(dx, (nn, cc, rows, cols), dout)
        return dx, {}


class AvgPool2d:
    param_names: tuple[str, ...] = ()

    def __init__(self, size: tuple[int, int], stride: tuple[int, int]) -> None:
        self.size = size
        self.stride = stride

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, AvgPoolCache]:
        """a[n,c,h,w] = mean of the window at (h·s_h, w·s_w)."""
        return _windows(x, self.size, self.stride).mean(axis=(-2, -1)), AvgPoolCache(x.shape)

    def backward(
        self, dout: Array, cache: AvgPoolCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """Each element of a window gets ∂L/∂a / (kh·kw)."""
        kh, kw = self.size
        sh, sw = self.stride
        dx = np.zeros(cache.x_shape, dtype=dout.dtype)
        ho, wo = dout.shape[2:]
        share = dout / (kh * kw)
        for i in range(kh):
            for j in range(kw):
                dx[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw] += share
        return dx, {}


@dataclass(frozen=True)
class FlattenCache:
    x_shape: tuple[int, ...]


class Flatten:
    """(N, C, H, W) -> (N, C·H·W) in row-major (C, H, W) order."""

    param_names: tuple[str, ...] = ()

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, FlattenCache]:
        return x.reshape(x.shape[0], -1), FlattenCache(x.shape)

    def backward(
        self, dout: Array, cache: FlattenCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        return dout.reshape(cache.x_shape), {}
