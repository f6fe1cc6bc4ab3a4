"""Show the work: every explanation's numbers evaluate to the result it claims, the seed's
lines come back exactly, and each branch (ReLU at 0, max-pool winner, padding, fused
softmax + cross-entropy, batch sums) says what happened."""

from __future__ import annotations

import ast
import math
import operator
import re
import textwrap

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from bpcalc import engine, explain
from bpcalc.explain import FALLBACK_NOTE, work_lines
from bpcalc.explain.registry import Item, classify, explain_element
from bpcalc.explain.work import Ctx, Fmt
from bpcalc.spec.load import load_yaml_text
from bpcalc.spec.schema import load_network, parse_network
from bpcalc.trace import Record

# --- a tiny evaluator for the substituted expressions -------------------------------------

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
    s = re.sub(r"(?<![\d.])e\^([\d.]+)", r"exp(\1)", s).replace("e^(", "exp(")
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


def test_the_evaluator_reads_the_seed_notation():
    # 0.2×0.5 + 0.8×(−0.3) + 0.6×0.2 + 0.1×0.4 + 0.1 = 0.1 − 0.24 + 0.12 + 0.04 + 0.1 = 0.12
    assert evaluate("0.2×0.5 + 0.8×(−0.3) + 0.6×0.2 + 0.1×0.4 + 0.1") == pytest.approx(0.12)
    assert evaluate("0.5×(4.5 − 10)²") == pytest.approx(15.125)  # ½ · 5.5² = 15.125
    assert evaluate("e^0 / (e^0 + e^0)") == pytest.approx(0.5)
    assert evaluate("1 / (1 + e^(−(−0.3)))") == pytest.approx(1 / (1 + math.exp(0.3)))
    with pytest.raises(ValueError):
        evaluate("__import__('os')")


# --- networks -----------------------------------------------------------------------------

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


# activations as layers of their own: the softmax layer takes the fused p − y
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


@pytest.mark.parametrize("net", sorted(NETWORKS))
def test_every_explanation_evaluates_to_the_result_it_claims(net):
    trace = NETWORKS[net]()
    works = all_work(trace, decimals=14)
    assert works
    for rec, w in works:
        assert not w.note.startswith(FALLBACK_NOTE), (w.name, w.note)
        # a sum that cancels to float noise (−2.2e-16) is printed at the precision the
        # arithmetic has (1e-12 of its largest operand): 0 (see explain/arith.py)
        noise = abs(w.value) < 1e-12
        assert w.result == explain.work.Fmt(14, 12).result(w.value) or noise, w.name
        if rec.name == "loss_after" or not w.substituted:
            continue
        got = evaluate(w.substituted)
        # the numbers are shown with 14 decimals and at least 12 significant digits, so the
        # arithmetic on them lands within a relative 1e-7 of the full-precision value
        assert got == pytest.approx(w.value, rel=1e-7, abs=1e-8), (w.name, w.substituted)
        assert abs(got - shown(w.result)) < 1e-7, (w.name, w.substituted, w.result)


def test_every_layer_activation_loss_and_the_update_has_its_own_explainer():
    covered = set()
    for make in NETWORKS.values():
        trace = make()
        for st in trace.steps:
            for rec in st:
                item = classify(trace.spec, rec, st.records)
                covered.add((item.role, item.kind))
    expected = {
        ("linear", "dense"),
        ("linear", "conv2d"),
        ("layer", "maxpool2d"),
        ("layer", "avgpool2d"),
        ("layer", "flatten"),
        *(
            ("activation", a)
            for a in ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")
        ),
        *(("grad_z", a) for a in ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")),
        ("grad_z", "fused"),
        *(("grad_param", t) for t in ("dense", "conv2d")),
        *(("grad_input", t) for t in ("dense", "conv2d", "maxpool2d", "avgpool2d", "flatten")),
        *(("loss", k) for k in LOSS_NETS),
        *(("loss_grad", k) for k in LOSS_NETS),
        ("grad_a", "next"),
        ("update", "sgd"),
        *(("update", k) for k in OPT_NETS),
        *(("state", k) for k in OPT_NETS),
        ("loss_sample", "mse"),
        ("penalty", "loss"),
        ("penalty", "grad"),
        ("sum", "penalty"),
        ("sum", "grad"),
        ("given", "mask"),
        ("layer", "dropout"),
        ("grad_input", "dropout"),
        *(("bn", k) for k in ("mean", "var", "xhat")),
        ("linear", "batchnorm"),
        ("grad_param", "batchnorm"),
        ("grad_input", "batchnorm"),
        ("running", "batchnorm"),
    }
    assert expected <= covered
    for role, kind in expected:
        assert explain.lookup(role, kind) is not None, (role, kind)


# --- the seed's lines ---------------------------------------------------------------------


def test_seed_example2_conv_line_is_reproduced_exactly():
    trace = engine.run(load_network("examples/example2.yaml"))
    (w,) = explain.explain_value(trace, "conv.z[0,0]", decimals=4)
    assert work_lines(w) == [
        "conv.z[0,0] = x11·k11 + x12·k12 + x21·k21 + x22·k22 + b",
        "            = 0.2×0.5 + 0.8×(−0.3) + 0.6×0.2 + 0.1×0.4 + 0.1 = 0.12",
    ]


def test_seed_example1_update_line_is_reproduced_exactly():
    # kernel k11 = 0.1, input x11 = 1, O = 4.5, target 10, half_sse: ∂L/∂O = 4.5 − 10 = −5.5,
    # ∂L/∂k11 = −5.5 × 1 = −5.5; η = 0.01: k11′ = 0.1 − 0.01 × (−5.5) = 0.1 + 0.055 = 0.155
    trace = engine.run(load_network("examples/example1.yaml"))
    (w,) = explain.explain_value(trace, "new.conv.kernel[0,0]", decimals=4)
    assert work_lines(w) == ["new.conv.kernel[0,0] = k11 − η·∂L/∂k11 = 0.1 − 0.01 × (−5.5) = 0.155"]


def test_seed_example2_gradient_and_update_lines_follow_the_seed():
    # ∂L/∂z_conv = 0.6 × 0.3724 + (−0.3) × (−0.3724) = 0.9 × 0.3724 = 0.3351 (the seed: 0.335)
    # but 0.9 × 0.3724 = 0.33516 reads 0.3352 to 4 decimals: the operands get a digit more,
    # 0.9 × 0.37238 = 0.335142, so the line adds up to the 0.3351 it prints
    trace = engine.run(load_network("examples/example2.yaml"))
    (chain_rule,) = explain.explain_value(trace, "grad.fc.input[0]")
    assert chain_rule.symbolic == "w11·∂L/∂z1 + w21·∂L/∂z2"
    assert chain_rule.substituted == "0.6×0.37238 + (−0.3)×(−0.37238)"
    assert chain_rule.result == "0.3351"
    (g,) = explain.explain_value(trace, "grad.conv.kernel[0,0]")
    assert work_lines(g) == ["grad.conv.kernel[0,0] = ∂L/∂z11 · x11 = 0.3351 × 0.2 = 0.067"]
    (new,) = explain.explain_value(trace, "new.conv.kernel[0,0]")
    assert work_lines(new) == [
        "new.conv.kernel[0,0] = k11 − η·∂L/∂k11 = 0.5 − 0.1 × 0.067 = 0.4933"
    ]


# --- what each branch says ----------------------------------------------------------------


def test_relu_at_exactly_zero_uses_derivative_zero_and_says_so():
    trace = run_text(RELU0_NET)
    assert trace.steps[0]["h.z"].tolist() == [0.0, 0.0]
    w0, w1 = explain.explain_value(trace, "grad.h.z")
    for w in (w0, w1):
        assert w.substituted.endswith("× 0")
        assert "0 exactly" in w.note and "ReLU′(0) is taken as 0" in w.note
        assert w.result == "0"
    (a,) = explain.explain_value(trace, "h.a[0]")
    assert a.symbolic == "max(0, z1)" and a.substituted == "max(0, 0)"


def test_relu_derivative_is_one_above_zero_and_zero_below():
    trace = run_text(AVG_NET.replace("activation: tanh", "activation: relu"))
    z = trace.steps[0]["h.z"]
    for w in explain.explain_value(trace, "grad.h.z"):
        above = z[w.index] > 0
        assert w.substituted.endswith("× 1" if above else "× 0"), (w.name, z[w.index])
        assert ("> 0" if above else "< 0") in w.note


def test_maxpool_names_the_winner_and_sends_the_gradient_only_there():
    trace = run_text(CONV_NET)
    st = trace.steps[0]
    # sample 0, channel 0: the window holds conv.a = [[−0.051, 1.11], [0.59, −0.0305]]; 1.11 wins
    (a,) = explain.explain_value(trace, "pool.a[0,0,0,0]")
    assert a.symbolic == "max(x111, x112, x121, x122)"
    assert "the max is x112" in a.note
    grads = {w.index: w for w in explain.explain_value(trace, "grad.pool.input")}
    winner = grads[(0, 0, 0, 1)]
    assert winner.symbolic == "∂L/∂a111"
    assert winner.value == st["grad.pool.a"][0, 0, 0, 0]
    loser = grads[(0, 0, 0, 0)]
    assert loser.symbolic == "0" and "not the max" in loser.note and loser.value == 0


def test_maxpool_tie_goes_to_the_first_in_row_major_order():
    net = """
    input: [[0.5, 0.5], [0.1, 0.2]]
    target: [1.0]
    layers:
      - {name: pool, type: maxpool2d, size: 2}
      - {type: flatten}
      - {name: out, type: dense, weights: [[2.0]]}
    loss: half_sse
    learning_rate: 0.1
    """
    trace = run_text(net)
    (a,) = explain.explain_value(trace, "pool.a[0,0]")
    assert "the max is x11" in a.note and "tie" in a.note
    first, second = explain.explain_value(trace, "grad.pool.input")[:2]
    assert first.symbolic == "∂L/∂a11" and second.symbolic == "0"


def test_conv_padding_and_stride_are_spelled_out():
    trace = run_text(CONV_NET)
    (w,) = explain.explain_value(trace, "conv.z[0,0,0,0]")
    # output (0,0) with stride 2, padding 1 sees rows 0–2 and columns 0–2 (1-based; 0 is padding)
    assert "rows 0–2, columns 0–2" in w.note
    assert "meet the zero padding" in w.note
    # flipped kernel: window position (1,1) of the padded input, x11, meets k[2,2] → symbol k1122...
    # window (i, j) meets K[2−i, 2−j]: x11 is at window (1,1) → K[1,1] = k1122
    assert w.symbolic.startswith("x11·k1122 + x12·k1121 + x21·k1112 + x22·k1111 + b1")
    assert "rotated 180°" in w.note


def test_conv_kernel_gradient_is_the_sum_over_the_batch_with_sample_marks():
    trace = run_text(CONV_NET)
    (w,) = explain.explain_value(trace, "grad.conv.kernel[0,0,0,0]")
    assert "⁽¹⁾" in w.symbolic and "⁽²⁾" in w.symbolic
    assert w.symbolic.count("+") == 7  # 4 output positions × 2 samples


def test_sigmoid_and_tanh_derivatives_are_written_from_the_outputs():
    sig = run_text(LOSS_NETS["half_mse"])
    w = explain.explain_value(sig, "grad.h.z[0,0]")[0]
    assert w.symbolic == "∂L/∂a1 · a1·(1 − a1)"
    tanh = run_text(AVG_NET)
    w = explain.explain_value(tanh, "grad.h.z[0,0]")[0]
    assert w.symbolic == "∂L/∂a1 · (1 − a1²)"


def test_softmax_with_cross_entropy_uses_the_fused_p_minus_y():
    trace = engine.run(load_network("examples/example2.yaml"))
    w0, w1 = explain.explain_value(trace, "grad.fc.z")
    assert (w0.symbolic, w0.substituted, w0.result) == ("p1 − y1", "0.3724 − 0", "0.3724")
    assert (w1.symbolic, w1.substituted, w1.result) == ("p2 − y2", "0.6276 − 1", "−0.3724")
    assert "softmax and cross-entropy together" in w0.note


def test_softmax_without_cross_entropy_writes_out_the_jacobian():
    trace = run_text(AVG_NET)
    w = explain.explain_value(trace, "grad.out.z[0,0]")[0]
    assert w.symbolic == "p1·(∂L/∂p1 − (p1·∂L/∂p1 + p2·∂L/∂p2))"


def test_batch_mean_divides_the_loss_and_its_gradient_by_n():
    trace = run_text(LOSS_NETS["mse"])
    (loss,) = explain.explain_value(trace, "loss")
    assert loss.symbolic.endswith(") / 2") and "mean over the batch" in loss.note
    w = explain.explain_value(trace, "grad.h.a[0,0]")[0]
    # mse over K = 2 outputs: 2·(a − y)/2, then the batch mean: / 2
    assert w.symbolic == "(2·(a1 − y1) / 2) / 2"


def test_dense_in_out_layout_and_shared_bias_are_respected():
    trace = run_text(CONV_NET)
    w = explain.explain_value(trace, "out.z[0,0]")[0]
    assert w.symbolic == "x1·w11 + x2·w21 + b"
    g = explain.explain_value(trace, "grad.out.bias")[0]
    assert g.symbolic == "∂L/∂z1⁽¹⁾ + ∂L/∂z1⁽²⁾" and "shared bias" in g.note


def test_frozen_parameters_say_they_are_not_updated():
    net = RELU0_NET.replace("    bias: [0.1, 0.2]", "    bias: [0.1, 0.2]\n    freeze: [bias]")
    trace = run_text(net)
    w = explain.explain_value(trace, "new.out.bias[1]")[0]
    assert "frozen" in w.note and w.result == "0.2"


def test_the_chain_rule_hands_the_gradient_to_the_previous_layer():
    trace = engine.run(load_network("examples/example2.yaml"))
    (w,) = explain.explain_value(trace, "grad.flatten1.a[0]")
    assert w.symbolic == "∂L/∂x1" and "grad.fc.input[0]" in w.note
    assert w.value == trace.steps[0]["grad.fc.input"][0]


# --- round-each ----------------------------------------------------------------------------


def test_round_each_reproduces_a_hand_rounded_calculation():
    # Example 2 by hand, rounding every value to 3 decimals before using it:
    #   conv.z = 0.2·0.5 + 0.8·(−0.3) + 0.6·0.2 + 0.1·0.4 + 0.1 = 0.12; ReLU → 0.12
    #   fc.z = [0.6·0.12 + 0, −0.3·0.12 + 0.63] = [0.072, 0.594]
    #   e^0.072 = 1.07466, e^0.594 = 1.81122: p = [0.37239…, 0.62761…] → [0.372, 0.628]
    #   L = −ln(0.628) = 0.46522… → 0.465 (the seed's 0.465; full precision gives 0.4658)
    #   ∂L/∂z_fc = p − y = [0.372, −0.372]; ∂L/∂W_fc = [0.372·0.12, −0.372·0.12] = ±0.04464 → ±0.045
    #   ∂L/∂x_fc = 0.6·0.372 + (−0.3)·(−0.372) = 0.3348 → 0.335 (the seed's 0.335)
    #   ∂L/∂k11 = 0.335·0.2 = 0.067; k11′ = 0.5 − 0.1·0.067 = 0.4933 → 0.493
    #   ∂L/∂k12 = 0.335·0.8 = 0.268; k12′ = −0.3 − 0.0268 = −0.3268 → −0.327
    trace = engine.run(load_network("examples/example2.yaml"), round_each=3)
    st = trace.steps[0]
    assert st["fc.a"].tolist() == [0.372, 0.628]
    assert float(st["loss"]) == 0.465
    assert st["grad.fc.weights"].ravel().tolist() == [0.045, -0.045]
    assert st["grad.fc.input"].tolist() == [0.335]
    assert st["grad.conv.kernel"].tolist() == [[0.067, 0.268], [0.201, 0.034]]
    assert st["new.conv.kernel"].tolist() == [[0.493, -0.327], [0.18, 0.397]]
    # and the explanation substitutes the rounded numbers, as on paper
    (w,) = explain.explain_value(trace, "grad.fc.input[0]", decimals=3)
    assert w.substituted == "0.6×0.372 + (−0.3)×(−0.372)" and w.result == "0.335"
    assert "rounding" in trace.conventions


# --- never crash ----------------------------------------------------------------------------


def test_a_value_without_an_explainer_shows_its_formula_and_value():
    trace = engine.run(load_network("examples/example1.yaml"))
    st = trace.steps[0]
    rec = Record(
        "dropout1.mask", np.array([1.0, 0.0]), "forward", "dropout1", "m ~ Bernoulli(1 − p)"
    )
    item = classify(trace.spec, rec)
    assert item.role == "other"
    w = explain_element(Ctx(trace, st, trace.spec, Fmt(4)), item, (1,))
    assert (w.symbolic, w.result, w.name) == ("m ~ Bernoulli(1 − p)", "0", "dropout1.mask[1]")
    assert w.note.startswith(FALLBACK_NOTE)


def test_an_explainer_that_fails_falls_back_instead_of_crashing(monkeypatch):
    trace = engine.run(load_network("examples/example1.yaml"))
    st = trace.steps[0]

    def broken(ctx, item, index):
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(explain.registry._REGISTRY, ("linear", "conv2d"), broken)
    item = classify(trace.spec, st.records["conv.z"])
    w = explain_element(Ctx(trace, st, trace.spec, Fmt(4)), item, (0, 0))
    assert w.result == "4.5" and "ZeroDivisionError" in w.note


def test_a_new_optimizer_can_register_its_own_explainer(monkeypatch):
    trace = engine.run(load_network("examples/example1.yaml"))
    st = trace.steps[0]
    monkeypatch.delitem(explain.registry._REGISTRY, ("update", "sgd"))
    item = classify(trace.spec, st.records["new.conv.bias"])
    ctx = Ctx(trace, st, trace.spec, Fmt(4))
    assert explain_element(ctx, item, ()).note.startswith(FALLBACK_NOTE)

    @explain.register("update", "sgd")
    def custom(ctx, item: Item, index):
        return explain.Work("new.conv.bias", index, "b − η·g", "1.5 − 0.01 × (−5.5)", "1.555")

    assert explain_element(ctx, item, ()).symbolic == "b − η·g"


# --- selection ------------------------------------------------------------------------------


def test_large_values_are_explained_only_when_named():
    trace = run_text(CONV_NET)
    request = explain.parse_requests(["all"], trace)
    exps = {e.record.name: e for e in explain.explain_trace(trace, request)[1]}
    assert exps["input"].skipped and not exps["input"].works  # 32 elements > 16
    assert not exps["conv.bias"].skipped and len(exps["conv.bias"].works) == 2
    request = explain.parse_requests(["input", "conv.z[1,0,1,1]"], trace)
    exps = {e.record.name: e for e in explain.explain_trace(trace, request)[1]}
    assert len(exps["input"].works) == 32
    assert [w.name for w in exps["conv.z"].works] == ["conv.z[1,0,1,1]"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("conv.zz", "did you mean conv.z"),
        ("conv.z[0]", "conv.z has shape 1x1"),
        ("conv.z[5,0]", "conv.z has shape 1x1"),
    ],
)
def test_unknown_names_and_bad_indices_are_usage_errors(ref, message):
    from bpcalc.errors import UsageError

    trace = engine.run(load_network("examples/example1.yaml"))
    with pytest.raises(UsageError, match=re.escape(message)):
        explain.parse_requests([ref], trace)


# --- property: any small network's explanations add up -------------------------------------

_small = hs.floats(-2, 2, allow_nan=False).map(lambda v: round(v, 2))


@hs.composite
def conv_networks(draw):
    """A conv layer of any stride, padding, flip and channel count, maybe a pool, then dense."""
    c_in = draw(hs.integers(1, 2))
    c_out = draw(hs.integers(1, 2))
    h, w = draw(hs.integers(3, 5)), draw(hs.integers(3, 5))
    kh, kw = draw(hs.integers(1, 3)), draw(hs.integers(1, 3))
    stride, padding = draw(hs.integers(1, 2)), draw(hs.integers(0, 1))
    n = draw(hs.integers(1, 2))
    image = lambda: [[[draw(_small) for _ in range(w)] for _ in range(h)] for _ in range(c_in)]  # noqa: E731
    kernel = [
        [[[draw(_small) for _ in range(kw)] for _ in range(kh)] for _ in range(c_in)]
        for _ in range(c_out)
    ]
    act = draw(hs.sampled_from(["identity", "relu", "leaky_relu", "sigmoid", "tanh"]))
    conv = {
        "name": "conv",
        "type": "conv2d",
        "kernel": kernel,
        "bias": [draw(_small) for _ in range(c_out)],
        "stride": stride,
        "padding": padding,
        "flip": draw(hs.booleans()),
        "activation": act,
    }
    layers = [conv]
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    if ho >= 2 and wo >= 2 and draw(hs.booleans()):
        kind = draw(hs.sampled_from(["maxpool2d", "avgpool2d"]))
        layers.append({"name": "pool", "type": kind, "size": 2, "stride": 1})
        ho, wo = ho - 1, wo - 1
    layers.append({"type": "flatten"})
    k = c_out * ho * wo
    layers.append(
        {
            "name": "out",
            "type": "dense",
            "weights": [[draw(_small) for _ in range(k)]],
            "bias": [0.1],
        }
    )
    doc = {
        "inputs": [image() for _ in range(n)],
        "targets": [[draw(_small)] for _ in range(n)],
        "layers": layers,
        "loss": {
            "type": draw(hs.sampled_from(["half_sse", "mse"])),
            "reduction": draw(hs.sampled_from(["mean", "sum"])),
        },
        "learning_rate": 0.1,
    }
    return yaml.safe_dump(doc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_networks())
def test_any_conv_network_explanations_evaluate_to_their_values(text):
    trace = run_text(text)
    for rec, w in all_work(trace, decimals=12):
        assert not w.note.startswith(FALLBACK_NOTE), (w.name, w.note)
        if rec.name == "loss_after" or not w.substituted:
            continue
        assert evaluate(w.substituted) == pytest.approx(w.value, rel=1e-9, abs=1e-10), (
            w.name,
            w.symbolic,
            w.substituted,
        )


@hs.composite
def dense_networks(draw):
    """An MLP with any activations, loss, reduction, optimizer, penalty, batchnorm, dropout."""
    n_in = draw(hs.integers(1, 3))
    hidden = draw(hs.integers(1, 3))
    loss = draw(
        hs.sampled_from(
            ["mse", "half_mse", "sse", "half_sse", "cross_entropy", "binary_cross_entropy"]
        )
    )
    n_out = 1 if loss == "binary_cross_entropy" else draw(hs.integers(2, 3))
    out_act = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}.get(
        loss, draw(hs.sampled_from(["identity", "relu", "tanh", "sigmoid", "softmax"]))
    )
    n = draw(hs.integers(2, 3))
    mat = lambda r, c: [[draw(_small) for _ in range(c)] for _ in range(r)]  # noqa: E731
    layers = [
        {
            "name": "h",
            "type": "dense",
            "weights": mat(hidden, n_in),
            "bias": [draw(_small) for _ in range(hidden)],
            "activation": draw(hs.sampled_from(["relu", "leaky_relu", "tanh", "sigmoid"])),
        }
    ]
    if draw(hs.booleans()):
        layers.append(
            {"name": "bn", "type": "batchnorm", "gamma": [1.5] * hidden, "beta": [0.1] * hidden}
        )
    if draw(hs.booleans()):
        layers.append(
            {"name": "drop", "type": "dropout", "p": 0.25, "mask": [1] + [0] * (hidden - 1)}
        )
    layers.append(
        {
            "name": "out",
            "type": "dense",
            "layout": "in_out",
            "weights": mat(hidden, n_out),
            "bias": [draw(_small) for _ in range(n_out)],
            "activation": out_act,
        }
    )
    if loss == "cross_entropy":
        targets = [draw(hs.integers(0, n_out - 1)) for _ in range(n)]
    elif loss == "binary_cross_entropy":
        targets = [[draw(hs.sampled_from([0.0, 1.0]))] for _ in range(n)]
    else:
        targets = [[draw(_small) for _ in range(n_out)] for _ in range(n)]
    opt = draw(hs.sampled_from(["sgd", "momentum", "nesterov", "rmsprop", "adam"]))
    doc = {
        "inputs": [[draw(_small) for _ in range(n_in)] for _ in range(n)],
        "targets": targets,
        "layers": layers,
        "loss": {"type": loss, "reduction": draw(hs.sampled_from(["mean", "sum"]))},
        "optimizer": {"type": opt, "lr": 0.1},
    }
    if draw(hs.booleans()):
        doc["regularization"] = {"l2": 0.1, "l1": 0.05, "include_bias": draw(hs.booleans())}
    return yaml.safe_dump(doc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_networks())
def test_any_dense_network_explanations_evaluate_to_their_values(text):
    trace = run_text(text, steps=2)
    for rec, w in all_work(trace, decimals=14):
        assert not w.note.startswith(FALLBACK_NOTE), (w.name, w.note)
        if rec.name == "loss_after" or not w.substituted:
            continue
        assert evaluate(w.substituted) == pytest.approx(w.value, rel=1e-7, abs=1e-9), (
            w.name,
            w.symbolic,
            w.substituted,
        )
