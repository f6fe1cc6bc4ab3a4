"""The spec of a embedding layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcalc.network.types import LayerSpec


@dataclass(frozen=True)
class EmbeddingSpec(LayerSpec):
    """Token ids (T,) in, rows of E (vocab x dim) out: a_t = E[x_t], (T, dim)."""

    weights: np.ndarray = field(default=None)  # type: ignore[assignment]  # E: (vocab, dim)

    @property
    def vocab(self) -> int:
        return int(self.weights.shape[0])

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights}
