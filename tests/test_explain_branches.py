"""What each explainer says: ReLU at zero, max-pool winners, convolution padding and
stride, the fused softmax + cross-entropy, batch means, frozen parameters, the chain rule."""

from __future__ import annotations

from bpcalc import engine, explain
from bpcalc.network.parse import load_network
from tests.explain_helpers import AVG_NET, CONV_NET, LOSS_NETS, RELU0_NET, run_text

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
