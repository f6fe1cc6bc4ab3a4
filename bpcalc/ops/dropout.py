"""Inverted dropout: a = x ⊙ m / (1 − p), ∂L/∂x = ∂L/∂a ⊙ m / (1 − p).

m is 1 for a kept unit and 0 for a dropped one. Kept units are scaled by 1/(1 − p) during
training so that nothing needs rescaling at test time (PyTorch's nn.Dropout does the same;
some textbooks instead scale by (1 − p) at test time). The mask is either given (a
reproducible homework) or drawn: a unit is kept when u ≥ p for u ~ U[0, 1) from
np.random.default_rng(seed). `begin_step` draws the mask of a step, and both passes of that
step (the step and the loss after its update) use it; a forward pass without a mask for its
batch draws a fresh one. With `training = False` (evaluation) dropout is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class DropoutCache:
    mask: Array  # (N, ...) of 0 and 1, the shape of x
    scale: float  # 1 / (1 − p)


class Dropout:
    """p: probability of dropping a unit. mask: (M, *sample_shape) with M = 1 (the same mask
    for every sample) or M = N (one per dataset sample, picked by the step's sample indices)."""

    param_names: tuple[str, ...] = ()

    def __init__(
        self, p: float, sample_shape: tuple[int, ...], mask: Array | None = None, seed: int = 0
    ) -> None:
        self.p = p
        self.scale = 1.0 / (1.0 - p)
        self.sample_shape = sample_shape
        self.fixed = mask
        self.rng = np.random.default_rng(seed)
        self.current: Array | None = None  # the mask begin_step chose, used until the next
        self.training = True

    def begin_step(self, samples: Array) -> None:
        """Choose the mask for a step whose batch holds these dataset samples."""
        n = len(samples)
        if self.fixed is None:
            u = self.rng.random((n, *self.sample_shape))
            self.current = (u >= self.p).astype(np.float64)
        elif self.fixed.shape[0] == 1:
            self.current = np.repeat(self.fixed, n, axis=0)
        else:
            self.current = self.fixed[np.asarray(samples)]

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, DropoutCache]:
        """a = x ⊙ m / (1 − p). x: (N, ...) -> a: same shape. Evaluation: a = x."""
        if not self.training:
            return x, DropoutCache(np.ones_like(x), 1.0)
        mask = self.current
        if mask is None or mask.shape != x.shape:
            self.begin_step(np.arange(x.shape[0]))
            mask, self.current = self.current, None  # drawn for this pass only
        assert mask is not None
        mask = mask.astype(x.dtype, copy=False)  # float32 training stays float32
        return x * mask * x.dtype.type(self.scale), DropoutCache(mask, self.scale)

    def backward(
        self, dout: Array, cache: DropoutCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """∂L/∂x = ∂L/∂a ⊙ m / (1 − p): a dropped unit gets no gradient."""
        return dout * cache.mask * dout.dtype.type(cache.scale), {}

    def recorded(self, cache: DropoutCache) -> list[tuple[str, Array, str, bool]]:
        """Extra values the engine records: (suffix, value, formula, per sample)."""
        how = "given" if self.fixed is not None else f"drawn: kept when u ≥ p = {self.p:g}"
        return [("mask", cache.mask, f"m: 1 = kept, 0 = dropped ({how})", True)]
