"""The spec of a batchnorm layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcalc.network.types import ActivationSpec, LayerSpec


@dataclass(frozen=True)
class BatchNormSpec(LayerSpec):
    """Batch normalization in training mode, per feature (N, F) or per channel (N, C, H, W)."""

    gamma: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F,) or (C,)
    beta: np.ndarray = field(default=None)  # type: ignore[assignment]
    running_mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    running_var: np.ndarray = field(default=None)  # type: ignore[assignment]
    eps: float = 1e-5
    momentum: float = 0.1  # running = (1 − momentum)·running + momentum·batch statistic
    activation: ActivationSpec | None = None
    freeze: frozenset[str] = frozenset()

    @property
    def features(self) -> int:
        return self.in_shape[0]

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The trained γ and β, then the running statistics (carried, not trained)."""
        return {
            "gamma": self.gamma,
            "beta": self.beta,
            "running_mean": self.running_mean,
            "running_var": self.running_var,
        }
