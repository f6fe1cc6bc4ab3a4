"""Shared by the --explain tests: a tiny evaluator for the substituted expressions, and
the networks whose explanations are checked."""

from __future__ import annotations

import ast
import math
import operator
import re
import textwrap

from bpcalc import engine, explain
from bpcalc.network.parse import load_network, parse_network
from bpcalc.network.yaml_source import load_yaml_text

CONV_NET = """
name: padded strided flipped two-channel conv, leaky relu, maxpool, relu layer, dense in_out
  with a shared bias, sigmoid, binary cross-entropy, batch mean
inputs:
  - [[0.5, -1.0, 2.0, 0.3], [1.5, 0.2, -0.7, 0.9], [0.4, 0.8, -1.2, 0.6], [1.1, -0.5, 0.3, 0.2]]
  - [[0.1, 0.2, 0.3, 0.4], [-0.5, 0.6, 0.7, -0.8], [0.9, 1.0, -1.1, 1.2], [0.3, 0.3, 0.3, 0.3]]
targets: [[1], [0]]
layers:
  - name: conv
    type: conv2d
    kernel: [[[[0.2, -0.1, 0.3], [0.5, 0.1, -0.4], [0.05, 0.2, 0.1]]],
             [[[0.1, 0.1, 0.1], [-0.2, 0.3, 0.0], [0.25, -0.15, 0.2]]]]
    bias: [0.05, -0.1]
    stride: 2
    padding: 1
    flip: true
    activation: leaky_relu
    slope: 0.1
  - name: pool
    type: maxpool2d
    size: 2
    stride: 1
  - type: relu
  - type: flatten
  - name: out
    type: dense
    layout: in_out
    bias_shared: true
    weights: [[0.3], [-0.2]]
    bias: 0.1
    activation: sigmoid
loss: {type: binary_cross_entropy, reduction: mean}
learning_rate: 0.5
"""


AVG_NET = """
name: avgpool, tanh, softmax with mse (no fused gradient), sum over the batch
inputs:
  - [[0.5, -1.0], [2.0, 0.3]]
  - [[0.1, 0.2], [-0.3, 0.4]]
targets: [[0.2, 0.8], [1.0, 0.0]]
layers:
  - name: pool
    type: avgpool2d
    size: 2
  - type: flatten
  - name: h
    type: dense
    weights: [[0.7], [-0.4], [0.2]]
    bias: [0.1, 0.0, -0.2]
    activation: tanh
  - name: out
    type: dense
    weights: [[0.3, -0.6, 0.5], [0.2, 0.1, -0.3]]
    bias: [0.05, -0.05]
    activation: softmax
loss: {type: mse, reduction: sum}
learning_rate: 0.1
"""


# h.z = [0.5·1 − 0.25·2 + 0, 0.3·1 + 0.1·2 − 0.5] = [0, 0]: ReLU at exactly 0 for both
RELU0_NET = """
name: relu at exactly zero, identity output, half_mse
input: [1.0, 2.0]
target: [0.5, -0.25]
layers:
  - name: h
    type: dense
    weights: [[0.5, -0.25], [0.3, 0.1]]
    bias: [0.0, -0.5]
    activation: relu
  - name: out
    type: dense
    weights: [[1.0, 2.0], [-1.0, 0.5]]
    bias: [0.1, 0.2]
loss: half_mse
learning_rate: 0.1
"""


def _loss_net(loss: str, act: str, target: str) -> str:
    return f"""
name: {loss} with {act}
inputs: [[0.3, -0.8], [1.2, 0.4]]
targets: [{target}, {target}]
layers:
  - name: h
    type: dense
    weights: [[0.4, -0.3], [0.25, 0.6]]
    bias: [0.1, -0.1]
    activation: {act}
loss: {loss}
learning_rate: 0.2
"""


LOSS_NETS = {
    "mse": _loss_net("mse", "tanh", "[0.5, -0.5]"),
    "half_mse": _loss_net("half_mse", "sigmoid", "[0.5, 0.2]"),
    "sse": _loss_net("sse", "identity", "[0.5, -0.5]"),
    "half_sse": _loss_net("half_sse", "leaky_relu", "[0.5, -0.5]"),
    "cross_entropy": _loss_net("cross_entropy", "softmax", "[0, 1]"),
    "binary_cross_entropy": _loss_net("binary_cross_entropy", "sigmoid", "[1, 0]"),
}


def run_text(text: str, **kwargs):
    return engine.run(parse_network(load_yaml_text(textwrap.dedent(text), "net.yaml")), **kwargs)


_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


_FUN = {"exp": math.exp, "log": math.log, "max": max, "tanh": math.tanh, "sqrt": math.sqrt}


def evaluate(expr: str) -> float:
    """Evaluate an explanation's numbers: × · → *, − → -, ² → **2, e^v → exp(v), ln → log,
    √(v) → sqrt(v), b^t → b**t. Only numbers, + − × / **, parentheses and
    exp/log/max/tanh/sqrt are allowed."""
    s = expr.replace("×", "*").replace("·", "*").replace("−", "-").replace("²", "**2")
    s = re.sub(r"(?<![\d.])e\^([\d.]+(?:e[-+]?\d+)?)", r"exp(\1)", s).replace("e^(", "exp(")
    s = s.replace("ln(", "log(").replace("√(", "sqrt(").replace("^", "**")
    tree = ast.parse(s, mode="eval")

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            return _BIN[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUN:
            return float(_FUN[node.func.id](*(ev(a) for a in node.args)))
        raise ValueError(f"not allowed in an explanation: {ast.dump(node)} in {expr!r}")

    return ev(tree)


def shown(result: str) -> float:
    return float(result.replace("−", "-"))


ACT_LAYERS_NET = """
name: activation layers
inputs: [[0.3, -0.8], [1.2, 0.4]]
targets: [2, 0]
layers:
  - {name: h, type: dense, weights: [[0.4, -0.3], [0.25, 0.6], [-0.5, 0.2]], bias: [0.1, -0.1, 0.0]}
  - {name: act, type: leaky_relu, slope: 0.2}
  - {name: t, type: tanh}
  - {name: s, type: sigmoid}
  - {name: out, type: dense, weights: [[0.4, -0.3, 0.2], [0.25, 0.6, -0.1], [-0.5, 0.2, 0.3]]}
  - {name: sm, type: softmax}
loss: cross_entropy
learning_rate: 0.2
"""


REG_NET = """
name: L2 and L1 penalties, bias included on one layer
inputs: [[0.3, -0.8], [1.2, 0.4]]
targets: [[1.0], [0.0]]
regularization: {l2: 0.3, l1: 0.05}
layers:
  - {name: h, type: dense, weights: [[0.4, 0.0], [0.25, 0.6]], bias: [0.1, -0.1], activation: tanh}
  - name: out
    type: dense
    weights: [[0.5, -0.7]]
    bias: [0.2]
    regularization: {l2: 0.1, l1: 0.02, include_bias: true}
loss: half_mse
learning_rate: 0.1
"""


DROP_BN_NET = """
name: dropout with a given mask, batchnorm after dense and after conv, mini-batches
inputs:
  - [[0.5, -1.0, 0.2], [2.0, 0.3, -0.4], [0.1, 0.9, -0.6]]
  - [[0.1, 0.2, 0.3], [-0.3, 0.4, 0.8], [0.7, -0.2, 0.5]]
  - [[-0.5, 0.6, 0.1], [0.2, -0.9, 0.4], [0.3, 0.3, -0.1]]
  - [[0.4, 0.4, -0.2], [0.6, 0.1, 0.0], [-0.1, 0.5, 0.9]]
targets: [[1.0], [0.0], [0.5], [0.2]]
mode: minibatch
batch_size: 2
shuffle: true
seed: 3
layers:
  - {name: conv, type: conv2d, kernel: [[[[0.5, -0.3], [0.2, 0.4]]], [[[0.1, 0.2], [-0.2, 0.3]]]], bias: [0.1, 0.0]}
  - {name: bnc, type: batchnorm, gamma: [1.5, 0.7], beta: [0.2, -0.3], activation: relu}
  - {type: flatten}
  - {name: drop, type: dropout, p: 0.25, mask: [1, 0, 1, 1, 1, 1, 0, 1]}
  - {name: h, type: dense, weights: [[0.4, -0.3, 0.2, 0.1, -0.1, 0.3, 0.2, -0.2], [0.25, 0.6, -0.1, 0.2, 0.1, -0.4, 0.3, 0.1]], bias: [0.1, -0.1]}
  - {name: bn, type: batchnorm, gamma: [1.2, 0.8], beta: [0.1, -0.1], activation: sigmoid}
  - {name: out, type: dense, weights: [[0.5, -0.7]], bias: [0.2]}
loss: mse
learning_rate: 0.1
"""


def _opt_net(opt: str) -> str:
    return f"""
name: "{opt}"
inputs: [[0.3, -0.8], [1.2, 0.4]]
targets: [[1.0], [0.0]]
optimizer: {opt}
layers:
  - name: h
    type: dense
    weights: [[0.4, -0.3], [0.25, 0.6]]
    bias: [0.1, -0.1]
    activation: tanh
    freeze: [bias]
  - {{name: out, type: dense, weights: [[0.5, -0.7]], bias: [0.2]}}
loss: half_mse
"""


OPT_NETS = {
    "momentum": _opt_net("{type: momentum, lr: 0.1, momentum: 0.9, dampening: 0.2}"),
    "nesterov": _opt_net("{type: nesterov, lr: 0.1, momentum: 0.8}"),
    "rmsprop": _opt_net("{type: rmsprop, lr: 0.01, alpha: 0.9, eps: 0.001}"),
    "adam": _opt_net("{type: adam, lr: 0.05, beta1: 0.8, beta2: 0.9, eps: 0.001}"),
}


def all_work(trace, decimals: int = 10, min_sig: int = 12):
    """Every explanation of a trace, numbers with at least 12 significant digits."""
    request = explain.parse_requests(["all"], trace)
    works = []
    for exps in explain.explain_trace(trace, request, decimals, True, min_sig=min_sig).values():
        for e in exps:
            works += [(e.record, w) for w in e.works]
    return works


NETWORKS = {
    "example1": lambda: engine.run(load_network("examples/example1.yaml")),
    "example2": lambda: engine.run(load_network("examples/example2.yaml")),
    "conv": lambda: run_text(CONV_NET),
    "avg": lambda: run_text(AVG_NET),
    "relu0": lambda: run_text(RELU0_NET),
    "act-layers": lambda: run_text(ACT_LAYERS_NET),
    "mlp": lambda: engine.run(load_network("examples/mlp_2_3_1.yaml")),
    "scalar": lambda: engine.run(load_network("examples/scalar_quadratic.yaml"), steps=2),
    **{f"loss-{k}": (lambda v=v: run_text(v)) for k, v in LOSS_NETS.items()},
    **{f"opt-{k}": (lambda v=v: run_text(v, steps=3)) for k, v in OPT_NETS.items()},
    "regularization": lambda: run_text(REG_NET, steps=2),
    "dropout-batchnorm": lambda: run_text(DROP_BN_NET, steps=3),
    "gd-variants": lambda: engine.run(load_network("examples/gd_variants.yaml"), steps=3),
}
