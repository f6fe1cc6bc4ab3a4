"""The spec of a rnn layer, as bpcalc.network.parse builds it from the YAML (see
bpcalc.network.types, which gives it by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcalc.network.types import LayerSpec


@dataclass(frozen=True)
class RNNSpec(LayerSpec):
    """Elman RNN over a sequence (T, input): h_t = f(W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh).

    bias_form: "pytorch" (two biases b_ih and b_hh, as torch.nn.RNN) or "single" (one b, as
    textbooks write it); the unused one is absent from params."""

    weights_ih: np.ndarray = field(default=None)  # type: ignore[assignment]  # (hidden, input)
    weights_hh: np.ndarray = field(default=None)  # type: ignore[assignment]  # (hidden, hidden)
    bias_ih: np.ndarray | None = None  # (hidden,), bias_form "pytorch"
    bias_hh: np.ndarray | None = None
    bias: np.ndarray | None = None  # (hidden,), bias_form "single"
    h0: np.ndarray = field(default=None)  # type: ignore[assignment]  # (hidden,), given, not trained
    nonlinearity: str = "tanh"  # tanh | relu
    returns: str = "all"  # all: h_1..h_T (T, hidden); last: h_T (hidden,)

    @property
    def hidden(self) -> int:
        return int(self.weights_hh.shape[0])

    @property
    def bias_form(self) -> str:
        return "single" if self.bias is not None else "pytorch"

    @property
    def params(self) -> dict[str, np.ndarray]:
        out = {"weights_ih": self.weights_ih, "weights_hh": self.weights_hh}
        if self.bias is not None:
            out["bias"] = self.bias
        else:
            out["bias_ih"] = self.bias_ih  # type: ignore[assignment]
            out["bias_hh"] = self.bias_hh  # type: ignore[assignment]
        return out
