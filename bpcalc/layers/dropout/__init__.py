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
from typing import Any

import numpy as np

from bpcalc.layers import Layer, Recorded
from bpcalc.layers.dropout.spec import DropoutSpec
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src

Array = np.ndarray


@dataclass(frozen=True)
class DropoutCache:
    mask: Array  # (N, ...) of 0 and 1, the shape of x
    scale: float  # 1 / (1 − p)


class Dropout(Layer):
    """p: probability of dropping a unit. mask: (M, *sample_shape) with M = 1 (the same mask
    for every sample) or M = N (one per dataset sample, picked by the step's sample indices)."""

    types = ("dropout",)

    def __init__(
        self,
        p: float,
        sample_shape: tuple[int, ...],
        mask: Array | None = None,
        seed: int = 0,
        spec: Any = None,
    ) -> None:
        self.spec = spec
        self.p = p
        self.scale = 1.0 / (1.0 - p)
        self.sample_shape = sample_shape
        self.fixed = mask
        self.rng = np.random.default_rng(seed)
        self.current: Array | None = None  # the mask begin_step chose, used until the next
        self.training = True

    @classmethod
    def from_spec(cls, spec: Any) -> Dropout:
        seed = 0 if spec.seed is None else spec.seed
        return cls(spec.p, spec.in_shape, spec.mask, seed, spec)

    @property
    def modal(self) -> bool:
        return True

    def set_training(self, training: bool) -> None:
        self.training = training

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

    def recorded(self, cache: DropoutCache) -> list[Recorded]:
        how = "given" if self.fixed is not None else f"drawn: kept when u ≥ p = {self.p:g}"
        return [Recorded("mask", cache.mask, f"m: 1 = kept, 0 = dropped ({how})", True)]

    # -- what the user sees -----------------------------------------------------------------
    def forward_formula(self) -> str:
        return f"a = x ⊙ m / (1 − p), p = {self.p:g} (inverted dropout)"

    def grad_input_formula(self) -> str:
        return "∂L/∂x = ∂L/∂a ⊙ m / (1 − p)"

    def convention(self) -> str:
        return (
            f"inverted dropout, p = {self.p:g}: kept units are scaled by 1/(1 − p) during "
            "training (as PyTorch), so nothing is rescaled at test time (evaluation mode: "
            "dataset_loss_after, bpcalc train's test loss, drops nothing); "
            + (
                "the mask is given"
                if self.fixed is not None
                else f"a unit is kept when u ≥ p, u from np.random.default_rng({self.spec.seed}), "
                "a new mask every step"
            )
        )


# -- reading the layer from the network file ----------------------------------------------


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> DropoutSpec:
    F.common(lsrc, ("p", "mask", "seed"))
    v = lsrc.value
    if "p" not in v:
        raise lsrc.error(
            f"dropout layer {name!r} needs p, the probability of dropping a unit (e.g. p: 0.5); "
            "kept units are scaled by 1/(1 − p)"
        )
    psrc = lsrc.child("p")
    p = V.number(psrc, "p")
    if not 0 <= p < 1:
        raise psrc.error(
            f"dropout layer {name!r}: p is the probability of dropping a unit and should be "
            f"at least 0 and less than 1, found {p:g}"
        )
    mask = None
    mask_where = None
    if "mask" in v:
        if "seed" in v:
            raise lsrc.child("seed").error(
                f"dropout layer {name!r} has a given mask, so there is nothing to draw with a seed",
                at_key=True,
            )
        msrc = lsrc.child("mask")
        m = V.array(msrc, f"{name}.mask")
        bad = m[(m != 0) & (m != 1)]
        if bad.size:
            raise msrc.error(
                f"a dropout mask holds 1 (kept) and 0 (dropped); found {bad[0]:g}. "
                "The 1/(1 − p) scaling is applied for you"
            )
        shown = shape[1:] if sq else shape
        if m.shape in (shown, shape):
            mask = m.reshape((1, *shape))
        elif m.shape[1:] in (shown, shape):
            mask = m.reshape((m.shape[0], *shape))
        else:
            raise msrc.error(
                f"dropout layer {name!r}: the mask has shape {V._fmt(m.shape)}, but {prev} gives "
                f"shape {V._fmt(shown)}; give one mask of that shape (used for every sample) or "
                "one per sample (a list with one per input)"
            )
        mask_where = msrc.loc
    seed = int(V.positive_int(lsrc.child("seed"), "seed", minimum=0)) if "seed" in v else None
    return DropoutSpec(
        **F.frame(lsrc, name, ltype, shape, sq),
        p=p,
        mask=mask,
        mask_where=mask_where,
        seed=seed,
    )
