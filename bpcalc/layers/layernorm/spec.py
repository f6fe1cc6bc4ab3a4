"""The spec of a layernorm layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcalc.network.types import ActivationSpec, LayerSpec


@dataclass(frozen=True)
class LayerNormSpec(LayerSpec):
    """Layer normalization of each sample over its last `axes` axes (torch.nn.LayerNorm with
    normalized_shape = in_shape[-axes:]), the same in training and evaluation."""

    gamma: np.ndarray = field(default=None)  # type: ignore[assignment]  # in_shape[-axes:]
    beta: np.ndarray = field(default=None)  # type: ignore[assignment]
    axes: int = 1  # how many trailing axes are normalized together
    eps: float = 1e-5
    activation: ActivationSpec | None = None
    freeze: frozenset[str] = frozenset()
    # the checker's slip: σ² divided by D − 1 (unbiased) instead of D; never read from YAML
    unbiased: bool = False

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {"gamma": self.gamma, "beta": self.beta}
