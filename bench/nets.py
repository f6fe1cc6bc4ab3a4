"""The benchmark's networks and data, the same for every contender.

Each network is written as a bpcalc YAML document (weights included, drawn once from a
seeded generator, written with 8 decimals), so bpcalc parses it exactly as a user's file; the NumPy and PyTorch
loops start from the very same parameter arrays. The data are synthetic, of MNIST's shape:
pixels uniform in [0, 1), classes uniform in 0..9, one-hot targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcalc.network import NetworkSpec, parse_network
from bpcalc.network.yaml_source import load_yaml_text

LR = 0.1


@dataclass(frozen=True)
class Net:
    name: str
    spec: NetworkSpec
    params: dict[str, np.ndarray]  # float64 initial values, keyed "<layer>.<param>"
    text: str = ""  # the YAML document, parameters inline

    def train_yaml(self, data: str = "data.npz") -> str:
        """The same network for `bpcalc train`: inputs `x` and targets `y` (class indices)
        from the .npz file `data` instead of the placeholder sample."""
        lines = self.text.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.startswith("inputs:"):
                lines[i] = f"inputs: {{file: {data}, key: x}}\n"
            elif line.startswith("targets:"):
                lines[i] = f"targets: {{file: {data}, key: y}}\n"
        return "".join(lines)


def _flow(a: np.ndarray) -> str:
    """A YAML flow sequence in fixed-point notation (8 decimals).

    Not json.dumps: YAML 1.1 reads `1e-05` (no dot, unsigned exponent) as text, not a number.
    """
    if a.ndim == 0:
        return f"{float(a):.8f}"
    return "[" + ", ".join(_flow(v) for v in a) + "]"


def mlp(sizes: tuple[int, int, int] = (784, 128, 10), seed: int = 0) -> Net:
    """784-128-10: dense + ReLU, dense + softmax, cross-entropy; weights N(0, 0.01²), bias 0."""
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = sizes
    w1 = rng.normal(0.0, 0.01, (n_hidden, n_in))
    w2 = rng.normal(0.0, 0.01, (n_out, n_hidden))
    text = f"""
name: bench MLP {n_in}-{n_hidden}-{n_out}
inputs: [{_flow(np.zeros(n_in))}]
targets: [0]
layers:
  - name: hidden
    type: dense
    weights: {_flow(w1)}
    bias: {_flow(np.zeros(n_hidden))}
    activation: relu
  - name: out
    type: dense
    weights: {_flow(w2)}
    bias: {_flow(np.zeros(n_out))}
    activation: softmax
loss: cross_entropy
learning_rate: {LR}
"""
    spec = parse_network(load_yaml_text(text, "bench-mlp.yaml"))
    return Net("mlp", spec, _params(spec), text)


def cnn(filters: int = 8, side: int = 28, n_out: int = 10, seed: int = 0) -> Net:
    """conv (filters x 3x3, valid) + ReLU -> maxpool 2 -> flatten -> dense + softmax, CE."""
    rng = np.random.default_rng(seed)
    k = rng.normal(0.0, 0.1, (filters, 1, 3, 3))
    flat = filters * ((side - 2) // 2) ** 2
    w = rng.normal(0.0, 0.01, (n_out, flat))
    text = f"""
name: bench CNN
inputs: [{_flow(np.zeros((1, side, side)))}]
targets: [0]
layers:
  - name: conv
    type: conv2d
    kernel: {_flow(k)}
    bias: {_flow(np.zeros(filters))}
    activation: relu
  - name: pool
    type: maxpool2d
    size: 2
  - type: flatten
  - name: fc
    type: dense
    weights: {_flow(w)}
    bias: {_flow(np.zeros(n_out))}
    activation: softmax
loss: cross_entropy
learning_rate: {LR}
"""
    spec = parse_network(load_yaml_text(text, "bench-cnn.yaml"))
    return Net("cnn", spec, _params(spec), text)


def _params(spec: NetworkSpec) -> dict[str, np.ndarray]:
    """The parameters as bpcalc read them, so every contender starts from the same numbers."""
    return {
        f"{layer.name}.{k}": np.asarray(v, dtype=np.float64)
        for layer in spec.layers
        for k, v in getattr(layer, "params", {}).items()
    }


def batches(
    shape: tuple[int, ...], batch: int = 64, count: int = 16, seed: int = 1, n_out: int = 10
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`count` batches of (x float32 (batch, *shape), one-hot y float32, class indices int64)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        x = rng.random((batch, *shape), dtype=np.float32)
        cls = rng.integers(0, n_out, batch)
        y = np.zeros((batch, n_out), dtype=np.float32)
        y[np.arange(batch), cls] = 1.0
        out.append((x, y, cls))
    return out
