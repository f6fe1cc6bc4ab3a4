"""The networks a simulated class works (every hand-sized example and the kinds the tests
use), and grading one of its sheets through the command line, in-process."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from bpcalc.cli import run
from bpcalc.network.parse import load_network
from tests import student as student_mod
from tests.check_helpers import BATCH
from tests.student import Slip, Student, sheet_text

EXAMPLES = [
    "examples/example1.yaml",
    "examples/example2.yaml",
    "examples/mlp_2_3_1.yaml",
    "examples/scalar_linear.yaml",
    "examples/scalar_quadratic.yaml",
    "examples/gd_variants.yaml",
    "examples/layernorm.yaml",
    "examples/residual.yaml",
]

# A 3-2-2 worked example as published: sigmoid hidden layer, softmax output, cross-entropy,
# 3 decimals. Hidden: z = [0.2 + 0 − 0.5 − 0.4, 0.3 + 0 + 0.2 + 0.2] = [−0.7, 0.7],
# a = σ(z) = [0.332, 0.668]; output: z = [0.3·0.332 + 0.5·0.668 − 0.006,
# −0.2·0.332 + 0.3·0.668 + 0.023] = [0.428, 0.157]; the target is class 0.
PUBLISHED = """
name: 3-2-2 (sigmoid hidden, softmax output, cross-entropy)
input: [1.0, 0.0, 1.0]
target: 0
layers:
  - name: hidden
    type: dense
    weights: [[0.2, 0.4, -0.5], [0.3, 0.1, 0.2]]
    bias: [-0.4, 0.2]
    activation: sigmoid
  - name: out
    type: dense
    weights: [[0.3, 0.5], [-0.2, 0.3]]
    bias: [-0.006, 0.023]
    activation: softmax
loss: cross_entropy
learning_rate: 0.1
"""

# The author's page: out.z[1] slipped, 0.185 for 0.157, and everything after worked from it
# with a digit more kept than written: softmax(0.428, 0.185) = [0.56045, 0.43955], written
# [0.561, 0.439]; L = −ln 0.5605 = 0.579.
PUBLISHED_SHEET = """
hidden.z: [-0.7, 0.7]
hidden.a: [0.332, 0.668]
out.z: [0.428, 0.185]
out.a: [0.561, 0.439]
loss: 0.579
"""

NETWORKS: dict[str, str] = {
    "published_3_2_2": PUBLISHED,
    "dense_half_sse": """
input: [1, 2]
target: [1, 3]
layers:
  - {name: fc, type: dense, weights: [[1, 0], [2, 1]], bias: [0, 0]}
loss: half_sse
learning_rate: 0.1
""",
    "relu_two_layers": """
input: [1]
target: [1]
layers:
  - {name: h, type: dense, weights: [[-1], [2], [0.5]], bias: [0, 0, 0], activation: relu}
  - {name: out, type: dense, weights: [[1, 1, 1]], bias: [0]}
loss: half_sse
learning_rate: 0.1
""",
    "sigmoid_mse": """
input: [0.35, 0.9]
target: [0.5]
layers:
  - {name: h, type: dense, weights: [[0.1, 0.8], [0.4, 0.6]], bias: [0, 0], activation: sigmoid}
  - {name: o, type: dense, weights: [[0.3, 0.9]], bias: [0], activation: sigmoid}
loss: half_sse
learning_rate: 1
""",
    "tanh_mse_three_outputs": """
input: [0.5, -1.0]
target: [0.2, -0.4, 0.9]
layers:
  - {name: fc, type: dense, weights: [[0.3, -0.2], [0.7, 0.1], [-0.5, 0.6]], bias: [0.1, 0, -0.2], activation: tanh}
loss: mse
learning_rate: 0.2
""",
    "batch_mean": BATCH.format(reduction="mean"),
    "batch_sum": BATCH.format(reduction="sum"),
    "in_out_shared_bias": """
input: [0.05, 0.10]
target: [0.01, 0.99]
layers:
  - {name: h, type: dense, layout: in_out, weights: [[0.15, 0.25], [0.20, 0.30]], bias: 0.35, bias_shared: true, activation: sigmoid}
  - {name: o, type: dense, layout: in_out, weights: [[0.40, 0.50], [0.45, 0.55]], bias: 0.60, bias_shared: true, activation: sigmoid}
loss: half_sse
learning_rate: 0.5
""",
    "momentum_two_steps": """
input: [1.0, 0.5]
target: [0.25]
layers:
  - {name: fc, type: dense, weights: [[0.4, -0.3]], bias: [0.1]}
loss: half_sse
optimizer: {type: momentum, lr: 0.1, momentum: 0.9}
""",
    "nesterov": """
input: [1.0, 2.0]
target: [1.0]
layers:
  - {name: fc, type: dense, weights: [[0.2, -0.1]], bias: [0.05]}
loss: half_sse
optimizer: {type: nesterov, lr: 0.1, momentum: 0.9}
""",
    "rmsprop": """
input: [0.5, -1.5]
target: [1.0]
layers:
  - {name: fc, type: dense, weights: [[0.6, 0.2]], bias: [0.0]}
loss: half_sse
optimizer: {type: rmsprop, lr: 0.01, alpha: 0.9, eps: 0.1}
""",
    "adam": """
input: [1.0, 2.0]
target: [3.0]
layers:
  - {name: h, type: dense, weights: [[0.3, -0.2], [0.1, 0.4]], bias: [0.0, 0.1], activation: relu}
  - {name: o, type: dense, weights: [[0.5, 0.6]], bias: [0.2]}
loss: half_sse
optimizer: {type: adam, lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 0.5}
""",
    "regularized_batch": """
inputs: [[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8]]
targets: [[1.0], [0.0], [1.0]]
regularization: {l2: 0.3, l1: 0.05}
layers:
  - name: hidden
    type: dense
    weights: [[0.4, -0.6], [0.7, 0.2], [-0.3, 0.5]]
    bias: [0.1, -0.2, 0.3]
    activation: tanh
  - name: out
    type: dense
    weights: [[0.6, -0.4, 0.9]]
    bias: [0.05]
    activation: sigmoid
    regularization: {l2: 0.1, l1: 0.02, include_bias: true}
loss: binary_cross_entropy
learning_rate: 0.1
""",
    "batchnorm": """
inputs: [[1.0, 2.0], [3.0, 0.5], [2.0, 1.0]]
targets: [[1.0], [0.0], [0.5]]
layers:
  - {name: fc, type: dense, weights: [[0.5, -0.25], [0.75, 0.5]], bias: [0.0, 0.1]}
  - {name: bn, type: batchnorm, gamma: [1.5, 0.8], beta: [0.1, -0.2], activation: relu}
  - {name: out, type: dense, weights: [[0.6, -0.3]], bias: [0.2]}
loss: half_mse
learning_rate: 0.1
""",
    "conv_pool": """
input: [[1, 0, 2, 1], [0, 1, 3, 0], [2, 1, 0, 1], [1, 2, 1, 0]]
target: [0.5]
layers:
  - {name: conv, type: conv2d, kernel: [[0.2, -0.1], [0.3, 0.4]], bias: 0.1, activation: relu}
  - {name: pool, type: maxpool2d, size: 2, stride: 1}
  - {type: flatten}
  - {name: fc, type: dense, weights: [[0.5, -0.4, 0.3, 0.2]], bias: [0.0]}
loss: half_sse
learning_rate: 0.05
""",
    "conv_channels_padding": """
input: [[[1, 2, 0], [0, 1, 1], [2, 0, 1]], [[0, 1, 1], [1, 0, 2], [1, 1, 0]]]
target: [1.0, 0.0]
layers:
  - name: conv
    type: conv2d
    kernel: [[[[0.1, -0.2], [0.3, 0.1]], [[0.2, 0.1], [-0.1, 0.3]]]]
    bias: [0.05]
    stride: 2
    padding: 1
  - {name: pool, type: avgpool2d, size: 2, stride: 2}
  - {type: flatten}
  - {name: fc, type: dense, weights: [[0.4], [-0.7]], bias: [0.1, 0.0], activation: softmax}
loss: cross_entropy
learning_rate: 0.1
""",
    "flipped_conv": """
input: [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
target: [[1, 0], [0, 1]]
layers:
  - {name: conv, type: conv2d, kernel: [[0.1, 0.2], [0.3, 0.4]], bias: 0.0, flip: true}
loss: half_sse
learning_rate: 0.01
""",
    "leaky_activation_layer": """
input: [1.0, -2.0]
target: [0.3, 0.1]
layers:
  - {name: fc, type: dense, weights: [[0.5, 0.4], [-0.3, 0.8]], bias: [0.1, 0.1]}
  - {name: act, type: leaky_relu, slope: 0.1}
  - {name: out, type: dense, weights: [[1.0, -0.5], [0.2, 0.3]], bias: [0.0, 0.0], activation: sigmoid}
loss: binary_cross_entropy
learning_rate: 0.5
""",
    "dropout_given_mask": """
inputs: [[1.0, 2.0, 0.5], [0.5, 1.0, 1.5]]
targets: [[1.0], [0.0]]
layers:
  - {name: h, type: dense, weights: [[0.2, 0.1, -0.3], [0.4, -0.2, 0.1], [0.3, 0.3, 0.3]], bias: [0, 0, 0], activation: relu}
  - {name: drop, type: dropout, p: 0.5, mask: [[1, 0, 1], [0, 1, 1]]}
  - {name: out, type: dense, weights: [[0.5, -0.5, 0.25]], bias: [0.1]}
loss: mse
learning_rate: 0.1
""",
    "layernorm_batch": """
inputs: [[0.3, -1.2, 0.8], [1.5, 0.4, -0.6]]
targets: [[1.0], [-0.5]]
layers:
  - {name: fc, type: dense, weights: [[0.6, -0.2, 0.1], [0.3, 0.9, -0.4], [-0.5, 0.2, 0.7]], bias: [0.1, 0, -0.1]}
  - {name: ln, type: layernorm, gamma: [1.2, 0.8, 1.0], beta: [0.1, -0.1, 0.05], activation: tanh}
  - {name: out, type: dense, weights: [[0.7, -0.3, 0.45]], bias: [0.02]}
loss: half_mse
learning_rate: 0.1
""",
    "residual_relu": """
inputs: [[0.7, -0.2], [0.1, 0.9]]
targets: [[0.3], [1.1]]
layers:
  - name: res
    type: residual
    layers:
      - {name: fc1, type: dense, weights: [[0.35, -0.6], [0.8, 0.15]], bias: [0.05, -0.1], activation: relu}
      - {name: fc2, type: dense, weights: [[0.4, 0.25], [-0.3, 0.55]], bias: [0.0, 0.02]}
  - {name: out, type: dense, weights: [[0.9, -0.35]], bias: [0.1], activation: sigmoid}
loss: mse
learning_rate: 0.3
""",
    "softmax_mse": """
input: [0.2, 0.6]
target: [0.0, 1.0]
layers:
  - {name: fc, type: dense, weights: [[0.5, -0.5], [0.3, 0.8]], bias: [0.0, 0.1], activation: softmax}
loss: half_sse
learning_rate: 0.5
""",
}


def network_files(tmp: Path) -> dict[str, str]:
    """Every network of the class, as files: the examples and those above."""
    out = {Path(p).stem: p for p in EXAMPLES}
    for name, text in NETWORKS.items():
        path = tmp / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        out[name] = str(path)
    return out


def copied_names(net: str) -> set[str]:
    spec = load_network(net)
    names = {"input", "target"}
    for layer in spec.layers:
        names |= {f"{layer.name}.{p}" for p in getattr(layer, "params", {})}
    return names


def write_sheet(net: str, **kwargs: Any) -> tuple[Student, str]:
    """The sheet a simulated student writes for this network (Student's settings)."""
    st = Student(load_network(net), **kwargs)
    st.work()
    header = "conventions: {delta: t_minus_o}" if st.delta_t_minus_o else ""
    return st, sheet_text(st, copied_names(net), header)


def grade_text(net: str, text: str, tmp: Path, *args: str) -> dict[str, Any]:
    """`bpcalc check NET SHEET --json ...` in-process; the JSON report."""
    path = tmp / "sheet.yaml"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["check", net, str(path), "--json", *args])
    assert code in (0, 1), err.getvalue() + "\n" + text
    return json.loads(out.getvalue())


__all__ = ["Slip", "Student", "grade_text", "network_files", "student_mod", "write_sheet"]
