"""The spec of a dropout layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcalc.errors import Location
from bpcalc.network.types import LayerSpec


@dataclass(frozen=True)
class DropoutSpec(LayerSpec):
    """Inverted dropout: a = x ⊙ mask / (1 − p); mask 1 = kept, 0 = dropped."""

    p: float = 0.5  # probability of dropping a unit, 0 ≤ p < 1
    mask: np.ndarray | None = None  # (M, *in_shape): M = 1 (every sample) or N (one per sample)
    mask_where: Location | None = None
    seed: int | None = None  # None: the network's top-level seed

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {}
