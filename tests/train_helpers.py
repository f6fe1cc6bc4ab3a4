"""Shared by the bpcalc train tests: a tiny two-class network."""

from __future__ import annotations

# Four points, two classes: class 1 when x0 + x1 > 0.
TINY = """name: tiny
inputs: [[1.0, 0.5], [-1.0, -0.5], [0.5, 1.0], [-0.5, -1.0]]
targets: [1, 0, 1, 0]
layers:
  - {name: hidden, type: dense, units: 3, init: {type: normal, std: 0.5, seed: 0}, activation: tanh}
  - {name: out, type: dense, units: 2, init: {type: normal, std: 0.5, seed: 1}, activation: softmax}
loss: cross_entropy
learning_rate: 0.5
"""
