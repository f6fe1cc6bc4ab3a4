"""The spec of a activation layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bpcalc.network.types import ActivationSpec, LayerSpec


@dataclass(frozen=True)
class ActivationLayerSpec(LayerSpec):
    activation: ActivationSpec = field(default=None)  # type: ignore[assignment]
