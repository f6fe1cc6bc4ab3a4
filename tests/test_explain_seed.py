"""--explain reproduces the seed's hand-written lines, and --round-each reproduces a
hand-rounded calculation."""

from __future__ import annotations

from bpcalc import engine, explain
from bpcalc.explain import work_lines
from bpcalc.network.parse import load_network

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
    trace = engine.run(load_network("examples/example2.yaml"))
    (chain_rule,) = explain.explain_value(trace, "grad.fc.input[0]")
    assert chain_rule.symbolic == "w11·∂L/∂z1 + w21·∂L/∂z2"
    # but 0.9 × 0.3724 = 0.33516 reads 0.3352 to 4 decimals: the operands get a digit more,
    # 0.9 × 0.37238 = 0.335142, so the line adds up to the 0.3351 it prints
    assert chain_rule.substituted == "0.6×0.37238 + (−0.3)×(−0.37238)"
    assert chain_rule.result == "0.3351"
    (g,) = explain.explain_value(trace, "grad.conv.kernel[0,0]")
    assert work_lines(g) == ["grad.conv.kernel[0,0] = ∂L/∂z11 · x11 = 0.3351 × 0.2 = 0.067"]
    (new,) = explain.explain_value(trace, "new.conv.kernel[0,0]")
    assert work_lines(new) == [
        "new.conv.kernel[0,0] = k11 − η·∂L/∂k11 = 0.5 − 0.1 × 0.067 = 0.4933"
    ]


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
