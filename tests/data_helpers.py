"""Shared by the data tests: the output layer the test networks end with."""

from __future__ import annotations

MLP_TAIL = """layers:
  - {name: out, type: dense, units: 3, init: {type: normal, std: 0.1, seed: 5}, activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""
