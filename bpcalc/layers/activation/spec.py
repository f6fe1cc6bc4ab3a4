"""The spec of a activation layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bpcalc.network.types import ActivationSpec, LayerSpec


@dataclass(frozen=True)
class ActivationLayerSpec(LayerSpec):
    """An activation as a layer of its own (type relu, softmax, ...)."""

    activation: ActivationSpec = field(default=None)  # type: ignore[assignment]
