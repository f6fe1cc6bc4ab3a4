"""Layers: forward and backward side by side, with the cache the backward pass needs.

Every op works on a batch: arrays carry a leading batch axis N, images are (N, C, H, W).
Parameters live outside the ops (the engine owns them) so an update makes new arrays and
the loss after the update can be recomputed from them.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

Array = np.ndarray


class Op(Protocol):
    """The linear (or shape) part of a layer; activations are ops of their own."""

    param_names: tuple[str, ...]

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, Any]: ...

    def backward(
        self, dout: Array, cache: Any, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]: ...
