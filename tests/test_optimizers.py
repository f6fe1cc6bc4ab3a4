"""Optimizers: each one's first three steps against values derived by hand.

The problem is chosen so every gradient is easy: one weight w, input x = 1, target y = 0,
the bias frozen at 0, half_sse: L = ½ (w·1 − 0)², so ∂L/∂w = w. Starting from w = 1.
"""

import math

import numpy as np
import pytest

from bpcalc import engine
from bpcalc.cli import run
from bpcalc.network.parse import parse_network
from bpcalc.network.yaml_source import load_yaml_text

NET = """input: [1.0]
target: [0.0]
layers:
  - name: fc
    type: dense
    weights: [[1.0]]
    freeze: bias
loss: half_sse
"""


def three_steps(optimizer: str):
    spec = parse_network(load_yaml_text(NET + f"optimizer: {optimizer}\n", "net.yaml"))
    return engine.run(spec, steps=3).steps


def w(st, name="new.fc.weights") -> float:
    return float(np.asarray(st[name]).reshape(-1)[0])


def test_plain_sgd_moves_against_the_gradient():
    steps = three_steps("{type: sgd, lr: 0.1}")
    # w ← w − 0.1·w: 1 -> 0.9 -> 0.81 -> 0.729
    assert [w(st) for st in steps] == pytest.approx([0.9, 0.81, 0.729])


def test_momentum_keeps_a_velocity_without_the_learning_rate_in_it():
    steps = three_steps("{type: momentum, lr: 0.1, momentum: 0.9}")
    # step 1: g = 1,    v = g = 1,                     w = 1 − 0.1·1 = 0.9
    # step 2: g = 0.9,  v = 0.9·1 + 0.9 = 1.8,         w = 0.9 − 0.18 = 0.72
    # step 3: g = 0.72, v = 0.9·1.8 + 0.72 = 2.34,     w = 0.72 − 0.234 = 0.486
    assert [w(st, "state.fc.weights.velocity") for st in steps] == pytest.approx([1, 1.8, 2.34])
    assert [w(st) for st in steps] == pytest.approx([0.9, 0.72, 0.486])


def test_momentum_dampening_is_skipped_on_the_first_step_as_in_pytorch():
    steps = three_steps("{type: momentum, lr: 0.1, momentum: 0.9, dampening: 0.5}")
    # step 1: v = g = 1 (no dampening yet),              w = 0.9
    # step 2: g = 0.9,   v = 0.9·1 + 0.5·0.9 = 1.35,       w = 0.9 − 0.135 = 0.765
    # step 3: g = 0.765, v = 0.9·1.35 + 0.5·0.765 = 1.5975, w = 0.765 − 0.15975 = 0.60525
    assert [w(st, "state.fc.weights.velocity") for st in steps] == pytest.approx([1, 1.35, 1.5975])
    assert [w(st) for st in steps] == pytest.approx([0.9, 0.765, 0.60525])


def test_nesterov_steps_along_the_gradient_plus_the_momentum_of_the_new_velocity():
    steps = three_steps("{type: nesterov, lr: 0.1, momentum: 0.9}")
    # step 1: g = 1,      v = 1,                          w = 1 − 0.1·(1 + 0.9·1) = 0.81
    # step 2: g = 0.81,   v = 0.9·1 + 0.81 = 1.71,        w = 0.81 − 0.1·(0.81 + 1.539) = 0.5751
    # step 3: g = 0.5751, v = 0.9·1.71 + 0.5751 = 2.1141,
    #         w = 0.5751 − 0.1·(0.5751 + 0.9·2.1141) = 0.5751 − 0.247779 = 0.327321
    assert [w(st, "state.fc.weights.velocity") for st in steps] == pytest.approx([1, 1.71, 2.1141])
    assert [w(st) for st in steps] == pytest.approx([0.81, 0.5751, 0.327321])


def test_rmsprop_divides_by_the_root_of_the_running_squared_gradient():
    steps = three_steps("{type: rmsprop, lr: 0.01, alpha: 0.99, eps: 1.0e-8}")
    # step 1: g = 1,  v = 0.01·1 = 0.01,                  w = 1 − 0.01·1/(0.1 + 1e-8)
    w1 = 1 - 0.01 * 1 / (0.1 + 1e-8)
    # step 2: g = w1, v = 0.99·0.01 + 0.01·w1²,            w = w1 − 0.01·w1/(√v + 1e-8)
    v2 = 0.99 * 0.01 + 0.01 * w1**2
    w2 = w1 - 0.01 * w1 / (math.sqrt(v2) + 1e-8)
    v3 = 0.99 * v2 + 0.01 * w2**2
    w3 = w2 - 0.01 * w2 / (math.sqrt(v3) + 1e-8)
    # in round numbers: v = 0.01, 0.018, 0.024758; w = 0.9, 0.832918, 0.779982
    assert [w(st, "state.fc.weights.v") for st in steps] == pytest.approx([0.01, v2, v3])
    assert [w(st) for st in steps] == pytest.approx([w1, w2, w3], rel=1e-12)
    assert [w(st) for st in steps] == pytest.approx([0.9, 0.832918, 0.779982], abs=1e-6)


def test_adam_records_its_moments_and_their_bias_corrections():
    steps = three_steps("{type: adam, lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1.0e-8}")
    # step 1: g = 1, m = 0.1·1 = 0.1, v = 0.001·1 = 0.001,
    #         m̂ = 0.1/(1 − 0.9) = 1, v̂ = 0.001/(1 − 0.999) = 1, w = 1 − 0.1·1/(1 + 1e-8)
    w1 = 1 - 0.1 / (1 + 1e-8)
    # step 2: g = w1 ≈ 0.9, m = 0.9·0.1 + 0.1·w1 ≈ 0.18, v = 0.999·0.001 + 0.001·w1² ≈ 0.001809
    m2, v2 = 0.9 * 0.1 + 0.1 * w1, 0.999 * 0.001 + 0.001 * w1**2
    mh2, vh2 = m2 / (1 - 0.9**2), v2 / (1 - 0.999**2)  # ≈ 0.947368, 0.904952
    w2 = w1 - 0.1 * mh2 / (math.sqrt(vh2) + 1e-8)  # ≈ 0.9 − 0.099588 = 0.800412
    m3, v3 = 0.9 * m2 + 0.1 * w2, 0.999 * v2 + 0.001 * w2**2
    mh3, vh3 = m3 / (1 - 0.9**3), v3 / (1 - 0.999**3)
    w3 = w2 - 0.1 * mh3 / (math.sqrt(vh3) + 1e-8)
    slot = lambda st, s: w(st, f"state.fc.weights.{s}")  # noqa: E731
    assert [slot(st, "m") for st in steps] == pytest.approx([0.1, m2, m3], rel=1e-12)
    assert [slot(st, "v") for st in steps] == pytest.approx([0.001, v2, v3], rel=1e-12)
    assert [slot(st, "m_hat") for st in steps] == pytest.approx([1, mh2, mh3], rel=1e-12)
    assert [slot(st, "v_hat") for st in steps] == pytest.approx([1, vh2, vh3], rel=1e-12)
    assert [w(st) for st in steps] == pytest.approx([w1, w2, w3], rel=1e-12)
    assert w(steps[1]) == pytest.approx(0.800412, abs=1e-6)


def test_the_learning_rate_key_stays_plain_sgd():
    spec = parse_network(load_yaml_text(NET + "learning_rate: 0.1\n", "net.yaml"))
    assert spec.optimizer.type == "sgd"
    assert w(engine.run(spec).steps[0]) == pytest.approx(0.9)


def test_the_optimizer_state_is_shown_in_the_tables_and_the_rule_in_the_conventions(
    capsys, tmp_path
):
    path = tmp_path / "net.yaml"
    path.write_text(NET + "optimizer: {type: adam, lr: 0.1}\n")
    code = run(["step", str(path)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Optimizer state" in out.out
    assert "state.fc.weights.m_hat" in out.out
    assert "m̂ = m / (1 − β₁ᵗ)" in out.out
    assert "Adam as in PyTorch" in out.out


@pytest.mark.parametrize(
    ("optimizer", "where", "message"),
    [
        ("{type: adam, lr: 0.1, momentum: 0.9}", "9:34", "momentum does not apply to the adam"),
        ("{type: adma, lr: 0.1}", "9:19", "did you mean 'adam'"),
        ("{type: adam, lr: 0.1, beta1: 1.0}", "9:41", "beta1 should be at least 0 and less than 1"),
        ("{type: rmsprop, lr: 0.1, eps: 0}", "9:42", "eps should be greater than 0"),
        ("{type: momentum, lr: -1}", "9:33", "lr should be greater than 0"),
        ("{type: sgd}", "9:12", "missing the required key 'lr'"),
    ],
)
def test_optimizer_mistakes_are_spec_errors_with_locations(
    capsys, tmp_path, optimizer, where, message
):
    path = tmp_path / "net.yaml"
    path.write_text(NET + f"optimizer: {optimizer}\n")
    code = run(["step", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"net.yaml:{where}: " in err
    assert message in err


def test_learning_rate_and_optimizer_together_are_an_error(capsys, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(NET + "learning_rate: 0.1\noptimizer: {type: sgd, lr: 0.1}\n")
    code = run(["step", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "net.yaml:9:1: give either learning_rate:" in err
