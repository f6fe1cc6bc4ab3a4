"""Fully connected layer: z = W·x + b (layout out_in) or z = x·W + b (layout in_out)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class DenseCache:
    x: Array  # (N, in)


class Dense:
    """W: (out, in) for out_in, (in, out) for in_out; b: (out,), or (1,) when shared by all neurons."""

    param_names = ("weights", "bias")

    def __init__(self, layout: str = "out_in", bias_shared: bool = False) -> None:
        self.layout = layout
        self.bias_shared = bias_shared

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, DenseCache]:
        """z[n, i] = Σ_j W[i, j] x[n, j] + b[i]. x: (N, in) -> z: (N, out)."""
        w = params["weights"]
        z = x @ (w.T if self.layout == "out_in" else w)
        z += params["bias"]  # broadcasts (out,) or the shared (1,)
        return z, DenseCache(x)

    def param_grads(
        self, dz: Array, cache: DenseCache, params: dict[str, Array]
    ) -> dict[str, Array]:
        """∂L/∂W = ∂L/∂z · xᵀ (summed over the batch), ∂L/∂b = Σ_n ∂L/∂z.

        A shared bias also sums over the neurons, since it feeds every one of them.
        """
        x = cache.x
        dw = dz.T @ x if self.layout == "out_in" else x.T @ dz
        db = np.add.reduce(dz, axis=0)
        if self.bias_shared:
            db = np.atleast_1d(db.sum())
        return {"weights": dw, "bias": db}

    def backward(
        self, dz: Array, cache: DenseCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        """The parameter gradients (see param_grads) and ∂L/∂x = Wᵀ · ∂L/∂z."""
        w = params["weights"]
        dx = dz @ w if self.layout == "out_in" else dz @ w.T
        return dx, self.param_grads(dz, cache, params)
