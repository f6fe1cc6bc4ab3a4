"""The engine's substitution hook and errors carried forward: a wrong value the student wrote
is used for the values computed from it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpcalc import engine
from bpcalc.check.tolerance import Tolerance
from bpcalc.engine import Substitution
from bpcalc.network.parse import load_network
from tests.check_helpers import EX1, EX2, check, entry, example2_probabilities, slips_of, write

# --- the engine's substitution hook ----------------------------------------------------------


@pytest.mark.parametrize("net", [EX1, EX2])
def test_an_empty_substitution_is_the_correct_maths(net):
    spec = load_network(net)
    plain = engine.run(spec).steps[0]
    with_default = engine.run(spec, substitute=Substitution()).steps[0]
    for r in plain:
        assert np.array_equal(r.value, with_default[r.name]), r.name


def test_a_miscopied_weight_carries_forward_through_the_backward_pass_and_the_update(
    tmp_path, capsys
):
    # k22 copied as 0.5 (it is 0.4): O = 0.1 + 0.4 + 0.9 + 4·0.5 + 1.5 = 4.9, ∂L/∂O = −5.1;
    # ∂L/∂x = ∂L/∂O · K = −5.1 · [[0.1, 0.2], [0.3, 0.5]] = [[−0.51, −1.02], [−1.53, −2.55]];
    # k22′ = 0.5 − 0.01 · (−5.1 · 4) = 0.704
    sheet = write(
        tmp_path,
        "a.yaml",
        "conv.kernel: [[0.1, 0.2], [0.3, 0.5]]\n"
        "conv.z: [[4.9]]\n"
        "grad.conv.input: [[-0.51, -1.02], [-1.53, -2.55]]\n"
        "new.conv.kernel[1,1]: 0.704\n",
    )
    code, doc, _ = check(capsys, EX1, sheet)
    assert code == 1
    assert entry(doc, "conv.kernel")["verdict"] == "wrong"
    assert entry(doc, "conv.kernel")["wrong_elements"] == [[1, 1]]
    for ref in ("conv.z", "grad.conv.input", "new.conv.kernel[1,1]"):
        assert entry(doc, ref)["verdict"] == "carried_forward", ref
        assert entry(doc, ref)["rests_on"] == ["conv.kernel"], ref


def test_a_target_written_for_the_other_class_is_named_and_its_loss_carried(tmp_path, capsys):
    # the target is class 1, one-hot [0, 1]; written [1, 0]. From it L = −ln p₀ (↪), and
    # the target itself is diagnosed as the other class, not as every slip at once
    p0, _ = example2_probabilities()
    sheet = write(tmp_path, "a.yaml", f"target: [1, 0]\nloss: {-math.log(p0):.4f}\n")
    code, doc, _ = check(capsys, EX2, sheet)
    assert code == 1
    assert slips_of(doc, "target") == {"other_class"}
    assert entry(doc, "loss")["verdict"] == "carried_forward"
    assert entry(doc, "loss")["rests_on"] == ["target"]


@given(delta=st.floats(0.01, 5.0) | st.floats(-5.0, -0.01))
def test_any_wrong_output_carries_forward_to_the_values_computed_from_it(delta):
    # example 1 with O = 4.5 + δ written: ∂L/∂O = O − 10 and ∂L/∂b = ∂L/∂O follow from it
    from bpcalc.check.grade import grade
    from bpcalc.check.sheet import parse_sheet

    spec = load_network(EX1)
    step = engine.run(spec).steps[0]
    o = 4.5 + delta
    text = f"conv.z: [[{o:.6f}]]\ngrad.conv.z: [[{o - 10:.6f}]]\ngrad.conv.bias: {o - 10:.6f}\n"
    report = grade(spec, parse_sheet(text, "a.yaml", step), Tolerance(), step)
    assert [g.verdict for g in report.entries] == ["wrong", "carried_forward", "carried_forward"]
    assert all(g.rests_on == ["conv.z"] for g in report.entries[1:])


MINIBATCH = """
inputs: [[0], [1], [2], [3]]
targets: [[1], [3], [5], [7]]
mode: minibatch
batch_size: 2
shuffle: false
layers:
  - {name: fc, type: dense, weights: [[0]], bias: [0]}
loss: mse
learning_rate: 0.03
"""


def test_in_a_mini_batch_a_miscopied_target_carries_forward_and_sums_are_per_batch(
    tmp_path, capsys
):
    # step 1 takes samples 0 and 1: x = [0, 1], y = [1, 3], a = 0. With y₁ copied as 4:
    # L = ((0 − 1)² + (0 − 4)²)/2 = 8.5; ∂L/∂z = 2(a − y)/2 = [−1, −4];
    # ∂L/∂W = −1·0 − 4·1 = −4. Correct ∂L/∂b = −1 − 3 = −4; summed, not averaged over the
    # 2 samples of the batch: 2·(−1) + 2·(−3) = −8.
    net = write(tmp_path, "n.yaml", MINIBATCH)
    sheet = write(
        tmp_path,
        "a.yaml",
        "target: [[1], [4]]\nloss: 8.5\ngrad.fc.weights: [[-4]]\ngrad.fc.bias: [-8]\n",
    )
    code, doc, _ = check(capsys, net, sheet)
    assert code == 1
    assert entry(doc, "target")["verdict"] == "wrong"
    for ref in ("loss", "grad.fc.weights"):
        assert entry(doc, ref)["verdict"] == "carried_forward", ref
        assert entry(doc, ref)["rests_on"] == ["target"], ref
    assert slips_of(doc, "grad.fc.bias") == {"batch_sum"}
    assert "divide by 2" in entry(doc, "grad.fc.bias")["diagnoses"][0]["message"]
