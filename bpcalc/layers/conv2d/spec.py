"""The spec of a conv2d layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcalc.network.types import ActivationSpec, LayerSpec


@dataclass(frozen=True)
class Conv2dSpec(LayerSpec):
    """A 2-D convolution (cross-correlation unless flip): its kernel, bias, stride and padding."""

    kernel: np.ndarray = field(default=None)  # type: ignore[assignment]  # (O, C, kh, kw) internally
    bias: np.ndarray | None = None  # (O,); None: no bias at all (bias: none)
    kernel_2d: bool = False  # written as one kh x kw matrix: shown and reported that way
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    flip: bool = False  # True: textbook convolution (kernel rotated 180°); False: cross-correlation
    activation: ActivationSpec | None = None
    freeze: frozenset[str] = frozenset()

    @property
    def params(self) -> dict[str, np.ndarray]:
        if self.bias is None:
            return {"kernel": self.kernel}
        return {"kernel": self.kernel, "bias": self.bias}
