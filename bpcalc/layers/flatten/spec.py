"""The spec of a flatten layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass

from bpcalc.network.types import LayerSpec


@dataclass(frozen=True)
class FlattenSpec(LayerSpec):
    """Flatten: each sample's values in one row, row-major ((C, H, W) -> C·H·W)."""
