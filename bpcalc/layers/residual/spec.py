"""The spec of a residual layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bpcalc.network.types import LayerSpec


@dataclass(frozen=True)
class ResidualSpec(LayerSpec):
    """A residual block: a = x + f(x), f its own layers in order (named <block>.<inner>),
    whose output has the shape of x."""

    layers: tuple[LayerSpec, ...] = ()
    # the checker's slip: the skip path dropped from ∂L/∂x; never read from YAML
    skip_grad: bool = True

    @property
    def inner(self) -> tuple[LayerSpec, ...]:
        return self.layers

    def with_inner(self, inner: tuple[LayerSpec, ...]) -> LayerSpec:
        return replace(self, layers=tuple(inner))
