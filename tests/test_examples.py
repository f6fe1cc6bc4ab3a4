"""Every shipped example's numbers, asserted against values derived by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bpcalc import engine
from bpcalc.network.parse import load_network


def approx(expected: object) -> object:
    """pytest.approx for numbers and (nested) lists of numbers."""
    return pytest.approx(
        np.array(expected, dtype=float) if isinstance(expected, list) else expected
    )


def step_values(path: str) -> dict[str, np.ndarray]:
    trace = engine.run(load_network(path))
    return {r.name: r.value for r in trace.steps[0]}


def test_example1_reproduces_the_seed_output_and_gradient():
    v = step_values("examples/example1.yaml")
    # O = 1·0.1 + 2·0.2 + 3·0.3 + 4·0.4 + 1.5 = 4.5
    assert v["conv.z"] == approx([[4.5]])
    # L = ½ (4.5 − 10)² = 15.125; ∂L/∂O = O − y = −5.5
    assert v["loss"] == approx(15.125)
    assert v["grad.conv.a"] == approx([[-5.5]])
    # ∂L/∂k_ij = ∂L/∂O · x_ij
    assert v["grad.conv.kernel"] == approx([[-5.5, -11.0], [-16.5, -22.0]])
    assert v["grad.conv.bias"] == approx(-5.5)
    # k ← k − 0.01 · ∂L/∂k = k + 0.055 · x
    assert v["new.conv.kernel"] == approx([[0.155, 0.31], [0.465, 0.62]])
    assert v["new.conv.bias"] == approx(1.555)
    # O' = 0.155 + 0.62 + 1.395 + 2.48 + 1.555 = 6.205; L' = ½ (6.205 − 10)² = 7.2010125
    assert v["loss_after"] == approx(7.2010125)


def test_example2_reproduces_the_seed_conv_output_and_kernel_update():
    v = step_values("examples/example2.yaml")
    # 0.2·0.5 + 0.8·(−0.3) + 0.6·0.2 + 0.1·0.4 + 0.1 = 0.12, ReLU keeps it
    assert v["conv.z"] == approx([[0.12]])
    assert v["conv.a"] == approx([[0.12]])
    # fc.z = W·0.12 + b = [0.6·0.12 + 0, −0.3·0.12 + 0.63] = [0.072, 0.594]
    assert v["fc.z"] == approx([0.072, 0.594])
    p0 = 1 / (1 + math.exp(0.594 - 0.072))
    assert v["fc.a"] == approx([p0, 1 - p0])
    assert round(p0, 3) == 0.372 and round(1 - p0, 3) == 0.628  # the seed's probabilities
    # target class 1: L = −ln p1; fused ∂L/∂z = p − y
    assert v["loss"] == approx(-math.log(1 - p0))
    # p − y = [p0, (1 − p0) − 1] = [p0, −p0]
    assert v["grad.fc.z"] == approx([p0, -p0])
    # ∂L/∂a_conv = Σ_i W_i ∂L/∂z_i = 0.6·p0 + (−0.3)·(−p0) = 0.9·p0; ReLU′(0.12) = 1 passes it on
    dz_conv = 0.9 * p0
    assert v["grad.conv.z"] == approx([[dz_conv]])
    assert round(dz_conv, 3) == 0.335  # the seed's 0.335
    x = np.array([[0.2, 0.8], [0.6, 0.1]])
    assert v["grad.conv.kernel"] == approx(dz_conv * x)
    new_k = np.array([[0.5, -0.3], [0.2, 0.4]]) - 0.1 * dz_conv * x
    assert v["new.conv.kernel"] == approx(new_k)
    # the seed's printed new kernel, to its 4 decimals (its 0.3967 is 0.39665 rounded up)
    assert np.round(new_k, 4)[0].tolist() == [0.4933, -0.3268]
    assert round(new_k[1, 0], 4) == 0.1799
    assert v["new.conv.bias"] == approx(0.1 - 0.1 * dz_conv)
    assert round(float(v["new.conv.bias"]), 4) == 0.0665  # the seed's new bias
    assert v["loss_after"] < v["loss"]


def test_mlp_2_3_1_matches_the_hand_computation():
    v = step_values("examples/mlp_2_3_1.yaml")
    # z1 = W1·[1, 0.5] + b1 = [0.2 − 0.05 + 0.1, 0.4 + 0.15 + 0, −0.5 + 0.1 + 0.05]
    assert v["hidden.z"] == approx([0.25, 0.55, -0.35])
    assert v["hidden.a"] == approx([0.25, 0.55, 0.0])
    # z2 = 0.3·0.25 − 0.2·0.55 + 0.5·0 + 0.1 = 0.065
    assert v["out.z"] == approx([0.065])
    s = 1 / (1 + math.exp(-0.065))
    assert v["out.a"] == approx([s])
    assert v["loss"] == approx(-math.log(s))
    # sigmoid + BCE: ∂L/∂z2 = ŷ − y
    d2 = s - 1
    assert v["grad.out.z"] == approx([d2])
    assert v["grad.out.weights"] == approx([[d2 * 0.25, d2 * 0.55, 0.0]])
    # ∂L/∂z1 = W2ᵀ ∂L/∂z2 ⊙ ReLU′(z1); the third neuron is off
    assert v["grad.hidden.z"] == approx([0.3 * d2, -0.2 * d2, 0.0])
    assert v["grad.hidden.weights"] == approx(
        [[0.3 * d2, 0.3 * d2 * 0.5], [-0.2 * d2, -0.2 * d2 * 0.5], [0.0, 0.0]]
    )
    assert v["new.out.bias"] == approx([0.1 - 0.5 * d2])
    assert v["new.hidden.weights"][2] == approx([-0.5, 0.2])  # a dead neuron does not move


def test_scalar_quadratic_gradient_is_minus_4_and_x_moves_to_2_4():
    v = step_values("examples/scalar_quadratic.yaml")
    assert v["loss"] == approx(4.0)  # (2 − 4)²
    assert v["grad.x.weights"] == approx(-4.0)  # 2(x − 4)
    assert v["new.x.weights"] == approx(2.4)  # 2 − 0.1·(−4)
    assert v["new.x.bias"] == approx(0.0)  # frozen


def test_scalar_linear_gradients_are_minus_18_and_minus_6():
    v = step_values("examples/scalar_linear.yaml")
    assert v["lin.z"] == approx([7.0])  # 2·3 + 1
    assert v["loss"] == approx(9.0)  # (7 − 10)²
    assert v["grad.lin.weights"] == approx(-18.0)  # 2(7 − 10)·3
    assert v["grad.lin.bias"] == approx(-6.0)
    assert v["new.lin.weights"] == approx(2.18)
    assert v["new.lin.bias"] == approx(1.06)
