"""The spec of a attention layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcalc.network.types import LayerSpec


@dataclass(frozen=True)
class AttentionSpec(LayerSpec):
    """Scaled dot-product self-attention over a sequence X (T, d), one head or `heads`:
    q = X·W_qᵀ + b_q, k, v alike; scores = q·kᵀ·scale; weights = softmax of each row
    (causal: positions after the row's masked to exactly 0); context = weights·v;
    a = context·W_oᵀ + b_o (or a = context without an output projection)."""

    weights_q: np.ndarray = field(default=None)  # type: ignore[assignment]  # (d_k·heads, d)
    weights_k: np.ndarray = field(default=None)  # type: ignore[assignment]
    weights_v: np.ndarray = field(default=None)  # type: ignore[assignment]  # (d_v·heads, d)
    weights_o: np.ndarray | None = None  # (d_out, d_v·heads), optional
    bias_q: np.ndarray | None = None  # (d_k·heads,), optional: all four biases or none
    bias_k: np.ndarray | None = None
    bias_v: np.ndarray | None = None
    bias_o: np.ndarray | None = None
    causal: bool = False
    heads: int = 1
    mask: np.ndarray | None = None  # (T, T) of 0 and 1: 1 where query t may attend to key s
    scale: float | None = None  # None: 1/√d_k

    @property
    def params(self) -> dict[str, np.ndarray]:
        out = {
            "weights_q": self.weights_q,
            "weights_k": self.weights_k,
            "weights_v": self.weights_v,
        }
        if self.weights_o is not None:
            out["weights_o"] = self.weights_o
        for key, b in (
            ("bias_q", self.bias_q),
            ("bias_k", self.bias_k),
            ("bias_v", self.bias_v),
            ("bias_o", self.bias_o),
        ):
            if b is not None:
                out[key] = b
        return out
