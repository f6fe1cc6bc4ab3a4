"""2-D convolution layer: cross-correlation as in PyTorch, or the textbook (flipped) convolution.

z[n, o, h, w] = Σ_c Σ_i Σ_j x_pad[n, c, h·s_h + i, w·s_w + j] · K[o, c, i, j] + b[o]
(with `flip`, K[o, c, kh−1−i, kw−1−j] in place of K[o, c, i, j]).

The forward pass is one matrix product over a strided view of the padded input (im2col
without the copy until the product needs it); the plain loop that reads like the formula is
in tests/reference.py and the tests compare the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Array = np.ndarray


@dataclass(frozen=True)
class Conv2dCache:
    x_shape: tuple[int, ...]  # (N, C, H, W) before padding
    windows: Array  # (N, Ho, Wo, C, kh, kw) view of the padded input


class Conv2d:
    param_names = ("kernel", "bias")

    def __init__(self, stride: tuple[int, int], padding: tuple[int, int], flip: bool) -> None:
        self.stride = stride
        self.padding = padding
        self.flip = flip

    def _effective(self, kernel: Array) -> Array:
        return kernel[:, :, ::-1, ::-1] if self.flip else kernel

    def windows(self, x: Array, kh: int, kw: int) -> Array:
        """(N, C, H, W) -> (N, Ho, Wo, C, kh, kw): the input patch under each output position."""
        ph, pw = self.padding
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        sh, sw = self.stride
        win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        return win.transpose(0, 2, 3, 1, 4, 5)

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, Conv2dCache]:
        """x: (N, C, H, W), kernel: (O, C, kh, kw), bias: (O,) -> z: (N, O, Ho, Wo)."""
        k = self._effective(params["kernel"])
        o, c, kh, kw = k.shape
        win = self.windows(x, kh, kw)
        n, ho, wo = win.shape[:3]
        cols = win.reshape(n * ho * wo, c * kh * kw)
        z = cols @ k.reshape(o, -1).T + params["bias"]
        return z.reshape(n, ho, wo, o).transpose(0, 3, 1, 2), Conv2dCache(x.shape, win)

    def backward(
        self, dz: Array, cache: Conv2dCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """∂L/∂K[o,c,i,j] = Σ_{n,h,w} ∂L/∂z[n,o,h,w] · x_pad[n,c,h·s+i,w·s+j]; ∂L/∂b[o] = Σ ∂L/∂z[n,o,·,·];
        ∂L/∂x scatters ∂L/∂z[n,o,h,w] · K[o,c,i,j] back onto the input positions each kernel tap saw.
        """
        k = self._effective(params["kernel"])
        o, c, kh, kw = k.shape
        win = cache.windows
        n, ho, wo = win.shape[:3]
        dz_rows = dz.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)
        dk = (dz_rows.T @ win.reshape(n * ho * wo, c * kh * kw)).reshape(o, c, kh, kw)
        if self.flip:
            dk = dk[:, :, ::-1, ::-1]
        db = dz.sum(axis=(0, 2, 3))
        dcols = (dz_rows @ k.reshape(o, -1)).reshape(n, ho, wo, c, kh, kw)
        _, _, h, w = cache.x_shape
        ph, pw = self.padding
        sh, sw = self.stride
        dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dz.dtype)
        dcols = dcols.transpose(0, 3, 1, 2, 4, 5)  # (N, C, Ho, Wo, kh, kw)
        for i in range(kh):
            for j in range(kw):
                dxp[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw] += dcols[..., i, j]
        dx = dxp[:, :, ph : ph + h, pw : pw + w]
        return np.ascontiguousarray(dx), {"kernel": np.ascontiguousarray(dk), "bias": db}
