"""Loop versions of the fast ops, written to read like the formulas (the house style: the fast
op lives in bpcalc/layers, the loop that can be checked by eye lives here, and tests compare them).

Shapes: images (N, C, H, W), kernels (O, C, kh, kw), strides and paddings (rows, columns).
Every function is plain Python over NumPy scalars: slow on purpose, obvious on purpose.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def pad(x: Array, padding: tuple[int, int]) -> Array:
    """x_pad[n, c, h + p_h, w + p_w] = x[n, c, h, w], zeros around."""
    n, c, h, w = x.shape
    ph, pw = padding
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    for i in range(n):
        for ch in range(c):
            for r in range(h):
                for q in range(w):
                    out[i, ch, r + ph, q + pw] = x[i, ch, r, q]
    return out


def out_size(n: int, k: int, s: int, p: int) -> int:
    """The number of window positions: ⌊(n + 2p − k) / s⌋ + 1."""
    return (n + 2 * p - k) // s + 1


def tap(kernel: Array, o: int, c: int, i: int, j: int, flip: bool) -> float:
    """K[o, c, i, j], or K[o, c, kh−1−i, kw−1−j] for the textbook (flipped) convolution."""
    kh, kw = kernel.shape[2:]
    return kernel[o, c, kh - 1 - i, kw - 1 - j] if flip else kernel[o, c, i, j]


def conv2d_forward(
    x: Array,
    kernel: Array,
    bias: Array,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    flip: bool = False,
) -> Array:
    """z[n, o, h, w] = Σ_c Σ_i Σ_j x_pad[n, c, h·s_h + i, w·s_w + j] · K[o, c, i, j] + b[o]."""
    n, c, h, w = x.shape
    o, _, kh, kw = kernel.shape
    sh, sw = stride
    xp = pad(x, padding)
    ho, wo = out_size(h, kh, sh, padding[0]), out_size(w, kw, sw, padding[1])
    z = np.zeros((n, o, ho, wo))
    for s in range(n):
        for f in range(o):
            for r in range(ho):
                for q in range(wo):
                    total = float(bias[f])
                    for ch in range(c):
                        for i in range(kh):
                            for j in range(kw):
                                total += xp[s, ch, r * sh + i, q * sw + j] * tap(
                                    kernel, f, ch, i, j, flip
                                )
                    z[s, f, r, q] = total
    return z


def conv2d_backward(
    x: Array,
    kernel: Array,
    dz: Array,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    flip: bool = False,
) -> tuple[Array, Array, Array]:
    """(∂L/∂x, ∂L/∂K, ∂L/∂b) by the chain rule, one term of the forward sum at a time:
    the term x_pad[n, c, h·s+i, w·s+j] · K[o, c, i, j] sends ∂L/∂z[n, o, h, w] · K[o, c, i, j] to
    that input element and ∂L/∂z[n, o, h, w] · x_pad[...] to that kernel element (to K's
    element kh−1−i, kw−1−j when flipped); the bias gets every ∂L/∂z[n, o, ·, ·]."""
    n, c, h, w = x.shape
    o, _, kh, kw = kernel.shape
    sh, sw = stride
    ph, pw = padding
    xp = pad(x, padding)
    dxp = np.zeros(xp.shape)
    dk = np.zeros(kernel.shape)
    db = np.zeros(o)
    ho, wo = dz.shape[2:]
    for s in range(n):
        for f in range(o):
            for r in range(ho):
                for q in range(wo):
                    g = float(dz[s, f, r, q])
                    db[f] += g
                    for ch in range(c):
                        for i in range(kh):
                            for j in range(kw):
                                row, col = r * sh + i, q * sw + j
                                dxp[s, ch, row, col] += g * tap(kernel, f, ch, i, j, flip)
                                ki, kj = (kh - 1 - i, kw - 1 - j) if flip else (i, j)
                                dk[f, ch, ki, kj] += g * xp[s, ch, row, col]
    return dxp[:, :, ph : ph + h, pw : pw + w], dk, db


def _windows(
    shape: tuple[int, ...], size: tuple[int, int], stride: tuple[int, int]
) -> list[tuple[int, int, int, int, list[tuple[int, int]]]]:
    """(n, c, h, w, the input positions of that window in row-major order) for every window."""
    n, c, hh, ww = shape
    (kh, kw), (sh, sw) = size, stride
    ho, wo = out_size(hh, kh, sh, 0), out_size(ww, kw, sw, 0)
    return [
        (s, ch, r, q, [(r * sh + i, q * sw + j) for i in range(kh) for j in range(kw)])
        for s in range(n)
        for ch in range(c)
        for r in range(ho)
        for q in range(wo)
    ]


def _out_shape(
    shape: tuple[int, ...], size: tuple[int, int], stride: tuple[int, int]
) -> tuple[int, int, int, int]:
    n, c, hh, ww = shape
    return n, c, out_size(hh, size[0], stride[0], 0), out_size(ww, size[1], stride[1], 0)


def maxpool_forward(x: Array, size: tuple[int, int], stride: tuple[int, int]) -> Array:
    """a[n, c, h, w] = max of x over the window at (h·s_h, w·s_w)."""
    out = np.zeros(_out_shape(x.shape, size, stride))
    for s, ch, r, q, cells in _windows(x.shape, size, stride):
        out[s, ch, r, q] = max(x[s, ch, i, j] for i, j in cells)
    return out


def maxpool_backward(
    x: Array, dout: Array, size: tuple[int, int], stride: tuple[int, int]
) -> Array:
    """∂L/∂x: each window's ∂L/∂a goes to its largest element (the first one in row-major
    order on a tie), added up where windows overlap."""
    dx = np.zeros(x.shape)
    for s, ch, r, q, cells in _windows(x.shape, size, stride):
        best = cells[0]
        for i, j in cells[1:]:
            if x[s, ch, i, j] > x[s, ch, best[0], best[1]]:  # strictly: a tie keeps the first
                best = (i, j)
        dx[s, ch, best[0], best[1]] += dout[s, ch, r, q]
    return dx


def avgpool_forward(x: Array, size: tuple[int, int], stride: tuple[int, int]) -> Array:
    """a[n, c, h, w] = (1 / kh·kw) Σ of x over the window at (h·s_h, w·s_w)."""
    out = np.zeros(_out_shape(x.shape, size, stride))
    for s, ch, r, q, cells in _windows(x.shape, size, stride):
        out[s, ch, r, q] = sum(x[s, ch, i, j] for i, j in cells) / len(cells)
    return out


def avgpool_backward(
    x: Array, dout: Array, size: tuple[int, int], stride: tuple[int, int]
) -> Array:
    """∂L/∂x: each element of a window gets ∂L/∂a / (kh·kw), added up where windows overlap."""
    dx = np.zeros(x.shape)
    for s, ch, r, q, cells in _windows(x.shape, size, stride):
        for i, j in cells:
            dx[s, ch, i, j] += dout[s, ch, r, q] / len(cells)
    return dx
