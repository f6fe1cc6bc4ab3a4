"""--explain for sequences, embeddings, RNNs, attention and gradient clipping: every value has
its own explainer, and every substituted expression evaluates to the value it claims."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bpcalc import engine, explain
from bpcalc.explain import FALLBACK_NOTE
from bpcalc.network.parse import load_network
from tests.explain_helpers import evaluate, run_text, shown
from tests.test_explain_evaluates import all_work

# two samples, PyTorch's two biases, relu, only the last step returned, then a dense softmax
RNN_NET = """
inputs: [[[1.0, -0.5], [0.3, 0.9], [-1.2, 0.4]], [[-0.4, 1.1], [0.6, -0.8], [0.0, 0.5]]]
targets: [1, 0]
layers:
  - name: rnn
    type: rnn
    weights_ih: [[0.5, -0.3], [0.2, 0.8]]
    weights_hh: [[0.1, -0.4], [0.7, 0.2]]
    bias_ih: [0.1, -0.2]
    bias_hh: [0.05, 0.3]
    h0: [0.2, -0.1]
    activation: relu
    return: last
  - {name: out, type: dense, weights: [[1, -1], [0.5, 0.5]], activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""

# two heads with an output projection, biases, a mask, two samples, and clipping that fires
ATT_NET = """
inputs: [[[1, 0], [1, 1], [0, 1]], [[0.5, -1], [0, 2], [1, 0.5]]]
targets: [[[1, 0], [0, 1], [0, 0]], [[0, 0], [1, 1], [0.5, 0]]]
layers:
  - name: attn
    type: attention
    heads: 2
    weights_q: [[1, 0], [0.5, 1], [0, 1], [1, -1]]
    weights_k: [[1, 0.5], [1, 0], [0, 1], [0.5, 1]]
    weights_v: [[1, 0], [0, -1]]
    weights_o: [[1, 0.5], [-0.5, 1]]
    bias_q: [0.1, 0, -0.1, 0.2]
    bias_o: [0, 0.1]
    mask: [[1, 0, 1], [1, 1, 0], [1, 1, 1]]
loss: {type: half_mse, positions: sum}
optimizer: {type: sgd, lr: 0.1, clip_norm: 0.1}
"""

# a sequence into dense layers, a softmax over the positions, then one over the features
SEQ_NET = """
sequence: true
inputs: [[[1, 2], [3, 0], [0, 1]], [[0.5, 0.5], [1, -1], [2, 0]]]
targets: [[1, 0, 1], [0, 0, 1]]
layers:
  - {name: h, type: dense, weights: [[0.3, -0.2], [0.1, 0.4]], bias: [0, 0.1], activation: softmax, axis: positions}
  - {name: out, type: dense, weights: [[1, -1], [0.5, 0.5]], activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""

NETWORKS = {
    "embedding": lambda: engine.run(load_network("examples/embedding.yaml")),
    "rnn": lambda: engine.run(load_network("examples/rnn.yaml")),
    "attention": lambda: engine.run(load_network("examples/attention.yaml")),
    "rnn-last-relu-batch": lambda: run_text(RNN_NET),
    "attention-heads-mask-clip": lambda: run_text(ATT_NET),
    "sequence-dense-softmax": lambda: run_text(SEQ_NET),
    "embedding-rnn-clip": lambda: run_text(
        Path("examples/rnn.yaml")
        .read_text()
        .replace("learning_rate: 0.1", "optimizer: {type: momentum, lr: 0.1, clip_norm: 0.5}"),
        steps=2,
    ),
}


def _plain(expr: str) -> str:
    """The two forms these explanations add for the evaluator: √4 (a count) and relu(v)."""
    return re.sub(r"√(\d+)", r"√(\1)", expr).replace("relu(", "max(0, ")


@pytest.mark.parametrize("net", sorted(NETWORKS))
def test_every_sequence_explanation_evaluates_to_the_result_it_claims(net):
    trace = NETWORKS[net]()
    works = all_work(trace, decimals=14)
    assert works
    for rec, w in works:
        assert not w.note.startswith(FALLBACK_NOTE), (w.name, w.note)
        assert w.result == explain.work.Fmt(14, 12).result(w.value)
        if rec.name == "loss_after" or not w.substituted:
            continue
        got = evaluate(_plain(w.substituted))
        assert got == pytest.approx(w.value, rel=1e-7, abs=1e-8), (w.name, w.substituted)
        assert abs(got - shown(w.result)) < 1e-7, (w.name, w.substituted, w.result)


def test_clipping_fires_in_the_attention_network():
    st = NETWORKS["attention-heads-mask-clip"]().steps[0]
    assert "clipped.attn.weights_q" in st and float(st["grad_norm"]) > 0.1
