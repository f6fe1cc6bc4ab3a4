"""--explain: every substituted expression evaluates to the value it claims, for the
shipped examples, every layer, loss and optimizer, and any small network."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from bpcalc import activations, explain
from bpcalc.explain import FALLBACK_NOTE
from bpcalc.explain.registry import classify
from tests.explain_helpers import (
    LOSS_NETS,
    NETWORKS,
    OPT_NETS,
    all_work,
    evaluate,
    run_text,
    shown,
)

# every element-wise activation that is registered: a new one is explained without editing this
ELEMENTWISE = [k for k in activations.kinds() if activations.unit_class(k).elementwise]


# activations as layers of their own: the softmax layer takes the fused p − y
def test_the_evaluator_reads_the_seed_notation():
    # 0.2×0.5 + 0.8×(−0.3) + 0.6×0.2 + 0.1×0.4 + 0.1 = 0.1 − 0.24 + 0.12 + 0.04 + 0.1 = 0.12
    assert evaluate("0.2×0.5 + 0.8×(−0.3) + 0.6×0.2 + 0.1×0.4 + 0.1") == pytest.approx(0.12)
    assert evaluate("0.5×(4.5 − 10)²") == pytest.approx(15.125)  # ½ · 5.5² = 15.125
    assert evaluate("e^0 / (e^0 + e^0)") == pytest.approx(0.5)
    assert evaluate("1 / (1 + e^(−(−0.3)))") == pytest.approx(1 / (1 + math.exp(0.3)))
    with pytest.raises(ValueError):
        evaluate("__import__('os')")


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
    act = draw(hs.sampled_from(ELEMENTWISE))
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
            "activation": draw(hs.sampled_from([a for a in ELEMENTWISE if a != "identity"])),
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
