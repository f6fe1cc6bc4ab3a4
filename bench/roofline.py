"""The benchmark's roofline: what a training step must compute, and how fast this machine can.

- products(spec, batch): the matrix products of one training step, (m, k, n) each, counted
  from the layer shapes: a dense layer (in → out) is x·Wᵀ forward (B, in, out), ∂L/∂W
  (out, B, in), and ∂L/∂x (B, out, in) unless it is the first layer with parameters (the
  training pass skips that one); a conv layer (C·kh·kw → F over Ho·Wo positions) the same
  three over its patches, with B·Ho·Wo rows. Element-wise work (activations, pooling, the
  loss, the update) is left out: it is memory traffic, not arithmetic.
- flops(products): Σ 2·m·k·n.
- matmul_peak(): the float32 GFLOP/s of one large square product (n = 1024), on the threads
  NumPy's BLAS was given: the machine's practical peak for this arithmetic.
- products_rate(products): the GFLOP/s of the step's own products alone, one call each,
  at their shapes: what BLAS can do with matrices this small, the limit of any
  implementation that makes the same products.

Both rates are measured by a clock given (CPU time of the process or elapsed time).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import numpy as np

Product = tuple[int, int, int]  # (m, k, n): an (m × k) by (k × n) product


def products(spec: object, batch: int) -> list[Product]:
    out: list[Product] = []
    first = True
    shape = tuple(spec.inputs.shape[1:])  # type: ignore[attr-defined]
    for layer in spec.layers:  # type: ignore[attr-defined]
        kind = layer.type
        if kind == "dense":
            n_in, n_out = math.prod(shape), math.prod(layer.out_shape)
            out.append((batch, n_in, n_out))
            out.append((n_out, batch, n_in))
            if not first:
                out.append((batch, n_out, n_in))
            first = False
        elif kind == "conv2d":
            f, c, kh, kw = layer.params["kernel"].shape
            rows = batch * math.prod(layer.out_shape[1:])  # B · Ho · Wo
            out.append((rows, c * kh * kw, f))
            out.append((f, rows, c * kh * kw))
            if not first:
                out.append((rows, f, c * kh * kw))
            first = False
        shape = tuple(layer.out_shape)
    return out


def flops(prods: list[Product]) -> int:
    return sum(2 * m * k * n for m, k, n in prods)


def _rate(work: Callable[[], None], count: int, clock: Callable[[], float], repeat: int) -> float:
    """calls per second of work, the median of `repeat` timings of `count` calls."""
    work()
    rates = []
    for _ in range(repeat):
        t = clock()
        for _ in range(count):
            work()
        rates.append(count / max(clock() - t, 1e-9))
    return statistics.median(rates)


def matmul_peak(clock: Callable[[], float], n: int = 1024, repeat: int = 5) -> float:
    """GFLOP/s of an (n × n) float32 product."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    return 2 * n**3 * _rate(lambda: np.matmul(a, b, out=out), 3, clock, repeat) / 1e9


def products_rate(prods: list[Product], clock: Callable[[], float], repeat: int = 5) -> float:
    """GFLOP/s of the step's products alone, one np.matmul each into a ready output."""
    rng = np.random.default_rng(0)
    operands = [
        (
            rng.random((m, k), dtype=np.float32),
            rng.random((k, n), dtype=np.float32),
            np.empty((m, n), dtype=np.float32),
        )
        for m, k, n in prods
    ]

    def step() -> None:
        for a, b, out in operands:
            np.matmul(a, b, out=out)

    total = flops(prods)
    count = max(3, int(2e8 // max(total, 1)))  # about 0.2 GFLOP a timing
    return total * _rate(step, count, clock, repeat) / 1e9
