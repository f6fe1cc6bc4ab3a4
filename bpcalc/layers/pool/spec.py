"""The spec of a pool layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass

from bpcalc.network.types import LayerSpec


@dataclass(frozen=True)
class PoolSpec(LayerSpec):
    """Max or average pooling (type maxpool2d or avgpool2d): window size and stride."""

    size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)

    @property
    def kind(self) -> str:
        return "max" if self.type == "maxpool2d" else "avg"
