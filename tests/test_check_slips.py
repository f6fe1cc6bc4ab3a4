"""`bpcalc check`'s diagnoses: each sheet makes exactly one slip, and the report names
it. Every wrong number is derived by hand in a comment from the slip it makes."""

from __future__ import annotations

import math

import pytest

from bpcalc.cli import run
from tests.check_helpers import (
    BATCH,
    EX1,
    EX2,
    check,
    entry,
    example2_probabilities,
    slips_of,
    write,
)

# z = W·x = [1·1 + 0·2, 2·1 + 1·2] = [1, 4]; a = z; y = [1, 3];
# L = ½((1 − 1)² + (4 − 3)²) = 0.5; ∂L/∂a = a − y = [0, 1];
# ∂L/∂W = ∂L/∂z · xᵀ = [[0, 0], [1, 2]]; ∂L/∂x = Wᵀ · ∂L/∂z = [2, 1];
# W′ = W − 0.1 · ∂L/∂W = [[1, 0], [1.9, 0.8]]
DENSE = """
input: [1, 2]
target: [1, 3]
layers:
  - name: fc
    type: dense
    weights: [[1, 0], [2, 1]]
    bias: [0, 0]
loss: {loss}
learning_rate: 0.1
"""


# h: z = [−1·1, 2·1, 0·1] = [−1, 2, 0], a = ReLU(z) = [0, 2, 0];
# out: z = 0 + 2 + 0 = 2, y = 1, L = ½(2 − 1)² = 0.5, ∂L/∂z_out = 1;
# ∂L/∂a_h = Wᵀ·1 = [1, 1, 1]; ∂L/∂z_h = [1, 1, 1] ⊙ ReLU′([−1, 2, 0]) = [0, 1, 0]
RELU = """
input: [1]
target: [1]
layers:
  - name: h
    type: dense
    weights: [[-1], [2], [0]]
    bias: [0, 0, 0]
    activation: relu
  - name: out
    type: dense
    weights: [[1, 1, 1]]
    bias: [0]
loss: half_sse
learning_rate: 0.1
"""


# z = 0·1 + ln 3 = ln 3, a = σ(ln 3) = 1/(1 + 1/3) = 0.75, y = 1: ∂L/∂a = a − y = −0.25,
# ∂L/∂z = −0.25 · 0.75 · (1 − 0.75) = −0.046875
SIGMOID = """
input: [1]
target: [1]
layers:
  - name: s
    type: dense
    weights: [[0]]
    bias: [1.0986122886681098]  # ln 3
    activation: sigmoid
loss: half_sse
learning_rate: 0.1
"""


# z = W·x = [1, 4, 2], y = [1, 3, 2]: a − y = [0, 1, 0], K = 3 outputs
DENSE3 = """
input: [1, 2]
target: [1, 3, 2]
layers:
  - name: fc
    type: dense
    weights: [[1, 0], [2, 1], [0, 1]]
    bias: [0, 0, 0]
loss: {loss}
learning_rate: 0.1
"""


# --- diagnoses: each sheet makes exactly one slip ---------------------------------------------


def test_the_half_left_out_of_the_squared_error_is_named(tmp_path, capsys):
    # without the ½: L = (4.5 − 10)² = 30.25 and ∂L/∂O = 2(4.5 − 10) = −11
    sheet = write(tmp_path, "a.yaml", "loss: 30.25\ngrad.conv.a: [[-11]]\n")
    code, doc, _ = check(capsys, EX1, sheet)
    assert code == 1
    assert slips_of(doc, "loss") == {"half_missing"}
    assert slips_of(doc, "grad.conv.a") == {"half_missing"}
    assert "½" in entry(doc, "loss")["diagnoses"][0]["message"]


def test_a_half_added_to_a_loss_without_one_is_named(tmp_path, capsys):
    # sse: ∂L/∂a = 2(a − y) = [0, 2, 0]; with a ½: a − y = [0, 1, 0]
    # (the mean over K = 3 would give [0, 0.6667, 0])
    # (written 1.0: a bare 1 on a sheet of whole numbers is right to the nearest whole
    # number for the mean's 0.6667 too)
    net = write(tmp_path, "n.yaml", DENSE3.format(loss="sse"))
    sheet = write(tmp_path, "a.yaml", "grad.fc.a: [0.0, 1.0, 0.0]\n")
    _, doc, _ = check(capsys, net, sheet)
    assert slips_of(doc, "grad.fc.a") == {"half_extra"}


def test_mean_over_the_outputs_instead_of_the_sum_is_named(tmp_path, capsys):
    # half_sse L = ½(0 + 1) = 0.5; averaged over the K = 2 outputs: 0.25
    net = write(tmp_path, "n.yaml", DENSE.format(loss="half_sse"))
    sheet = write(tmp_path, "a.yaml", "loss: 0.25\n")
    _, doc, _ = check(capsys, net, sheet)
    assert slips_of(doc, "loss") == {"outputs_mean"}


def test_sum_over_the_outputs_instead_of_the_mean_is_named(tmp_path, capsys):
    # mse ∂L/∂a = 2(a − y)/K = [0, 1]; summed instead, 2(a − y) = [0, 2]
    net = write(tmp_path, "n.yaml", DENSE.format(loss="mse"))
    sheet = write(tmp_path, "a.yaml", "grad.fc.a: [0, 2]\n")
    _, doc, _ = check(capsys, net, sheet)
    assert slips_of(doc, "grad.fc.a") == {"outputs_sum"}


def test_a_gradient_summed_over_the_batch_instead_of_averaged_is_named(tmp_path, capsys):
    # mean: ∂L/∂W = 8/3; summed over the 3 samples: 8; the loss summed: 2.5 (mean 0.8333)
    net = write(tmp_path, "n.yaml", BATCH.format(reduction="mean"))
    # (to one decimal: written as whole numbers, each could be up to ½ off what was used)
    sheet = write(
        tmp_path, "a.yaml", "grad.fc.weights: [[8.0]]\nloss: 2.5\nfc.z: [[1.0], [2.0], [3.0]]\n"
    )
    code, doc, _ = check(capsys, net, sheet)
    assert code == 1
    assert entry(doc, "fc.z")["verdict"] == "correct"
    assert slips_of(doc, "grad.fc.weights") == {"batch_sum"}
    assert slips_of(doc, "loss") == {"batch_sum"}


def test_a_gradient_averaged_over_the_batch_where_the_loss_sums_is_named(tmp_path, capsys):
    # reduction sum: ∂L/∂W = 8; averaged: 8/3 = 2.667
    net = write(tmp_path, "n.yaml", BATCH.format(reduction="sum"))
    sheet = write(tmp_path, "a.yaml", "grad.fc.weights: [[2.667]]\n")
    _, doc, _ = check(capsys, net, sheet)
    assert slips_of(doc, "grad.fc.weights") == {"batch_mean"}


def test_a_flipped_kernel_is_named(tmp_path, capsys):
    # flipped: 1·0.4 + 2·0.3 + 3·0.2 + 4·0.1 + 1.5 = 3.5 instead of 4.5
    sheet = write(tmp_path, "a.yaml", "conv.z: [[3.5]]\n")
    _, doc, _ = check(capsys, EX1, sheet)
    assert slips_of(doc, "conv.z") == {"conv_flip"}
    assert "cross-correlation" in entry(doc, "conv.z")["diagnoses"][0]["message"]


def test_a_transposed_weight_matrix_is_named(tmp_path, capsys):
    # Wᵀ·x = [[1, 2], [0, 1]]·[1, 2] = [5, 2] instead of W·x = [1, 4]
    net = write(tmp_path, "n.yaml", DENSE.format(loss="half_sse"))
    sheet = write(tmp_path, "a.yaml", "fc.z: [5, 2]\n")
    _, doc, _ = check(capsys, net, sheet)
    assert slips_of(doc, "fc.z") == {"dense_transposed"}


def test_a_gradient_written_in_the_transposed_shape_is_named(tmp_path, capsys):
    # example 2's ∂L/∂W is 2 x 1 ([[0.0447], [−0.0447]]); written as a 1 x 2 row
    sheet = write(tmp_path, "a.yaml", "grad.fc.weights: [[0.0447, -0.0447]]\n")
    code, doc, _ = check(capsys, EX2, sheet)
    assert code == 1
    e = entry(doc, "grad.fc.weights")
    assert e["verdict"] == "wrong" and e["transposed"] is True
    assert slips_of(doc, "grad.fc.weights") == {"answer_transposed"}


@pytest.mark.parametrize(
    ("answer", "slip"),
    [
        # derivative left out: ∂L/∂z = ∂L/∂a = [1, 1, 1]
        ("[1, 1, 1]", "no_derivative"),
        # ReLU′(0) taken as 1: [0, 1, 1]
        ("[0, 1, 1]", "relu_one_at_zero"),
        # 1 where z < 0, 0 where z > 0: [1, 0, 0]
        ("[1, 0, 0]", "relu_flipped"),
    ],
)
def test_relu_derivative_slips_are_named(tmp_path, capsys, answer, slip):
    net = write(tmp_path, "n.yaml", RELU)
    sheet = write(tmp_path, "a.yaml", f"grad.h.a: [1, 1, 1]\ngrad.h.z: {answer}\n")
    code, doc, _ = check(capsys, net, sheet)
    assert code == 1
    assert entry(doc, "grad.h.a")["verdict"] == "correct"
    assert slips_of(doc, "grad.h.z") == {slip}


def test_sigmoid_derivative_written_as_sigma_is_named(tmp_path, capsys):
    # σ′ taken as σ(z) = 0.75: ∂L/∂z = −0.25 · 0.75 = −0.1875 (correct −0.046875)
    net = write(tmp_path, "n.yaml", SIGMOID)
    sheet = write(tmp_path, "a.yaml", "grad.s.z: [-0.1875]\n")
    _, doc, _ = check(capsys, net, sheet)
    assert slips_of(doc, "grad.s.z") == {"sigmoid_as_sigma"}


def test_sigmoid_derivative_forgotten_is_named(tmp_path, capsys):
    # no σ′ at all: ∂L/∂z = ∂L/∂a = −0.25
    net = write(tmp_path, "n.yaml", SIGMOID)
    sheet = write(tmp_path, "a.yaml", "grad.s.z: [-0.25]\n")
    _, doc, _ = check(capsys, net, sheet)
    assert slips_of(doc, "grad.s.z") == {"no_derivative"}


@pytest.mark.parametrize(
    ("answer", "slip"),
    [
        # θ + η·g: [[1, 0], [2 + 0.1, 1 + 0.2]]
        ("[[1, 0], [2.1, 1.2]]", "update_plus"),
        # θ − g: [[1, 0], [2 − 1, 1 − 2]]
        ("[[1, 0], [1, -1]]", "update_no_lr"),
        # θ − η²·g = θ − 0.01·g: [[1, 0], [1.99, 0.98]]
        ("[[1, 0], [1.99, 0.98]]", "update_lr_twice"),
    ],
)
def test_update_slips_are_named(tmp_path, capsys, answer, slip):
    net = write(tmp_path, "n.yaml", DENSE.format(loss="half_sse"))
    sheet = write(tmp_path, "a.yaml", f"new.fc.weights: {answer}\n")
    _, doc, _ = check(capsys, net, sheet)
    assert slips_of(doc, "new.fc.weights") == {slip}


def test_back_propagating_through_already_updated_weights_is_named(tmp_path, capsys):
    # out's ∂L/∂W = 1 · a_hᵀ = [[0, 2, 0]]; W′ = [1, 1, 1] − 0.1·[0, 2, 0] = [1, 0.8, 1];
    # back-propagating through W′: ∂L/∂a_h = W′ᵀ · 1 = [1, 0.8, 1] instead of [1, 1, 1]
    net = write(tmp_path, "n.yaml", RELU)
    sheet = write(tmp_path, "a.yaml", "grad.out.input: [1, 0.8, 1]\n")
    _, doc, _ = check(capsys, net, sheet)
    assert slips_of(doc, "grad.out.input") == {"updated_weights_in_backprop"}


@pytest.mark.parametrize(("base", "slip"), [(10.0, "log10"), (2.0, "log2")])
def test_cross_entropy_with_the_wrong_log_base_is_named(tmp_path, capsys, base, slip):
    # L = −ln p₁ = 0.4658; with log_b: −ln p₁ / ln b (0.2023 for base 10, 0.6720 for 2)
    loss = -math.log(example2_probabilities()[1]) / math.log(base)
    # (the report also says how to grade the sheet in that base, as a convention)
    sheet = write(tmp_path, "a.yaml", f"loss: {loss:.4f}\n")
    _, doc, _ = check(capsys, EX2, sheet)
    assert slips_of(doc, "loss") == {slip, "convention_log"}


def test_the_one_hot_target_read_for_the_other_class_is_named(tmp_path, capsys):
    # target [1, 0] instead of [0, 1]: L = −ln p₀ = 0.9878; ∂L/∂z = p − y = [p₀ − 1, p₁]
    p0, p1 = example2_probabilities()
    sheet = write(
        tmp_path,
        "a.yaml",
        f"loss: {-math.log(p0):.4f}\ngrad.fc.z: [{p0 - 1:.4f}, {p1:.4f}]\n",
    )
    _, doc, _ = check(capsys, EX2, sheet)
    assert slips_of(doc, "loss") == {"other_class"}
    assert slips_of(doc, "grad.fc.z") == {"other_class"}


def test_a_slip_contradicted_by_an_earlier_right_answer_is_not_named(tmp_path, capsys):
    # σ(0) = 0.5, so σ′ written as σ gives (a − y)·a = −0.5 · 0.5 = −0.25, and so does the
    # ½ left out: 2(a − y)·a(1 − a) = −1 · 0.25. Alone, both are named; with ∂L/∂a = −0.5
    # written (right), the ½ cannot be the slip.
    net = write(tmp_path, "n.yaml", SIGMOID.replace("1.0986122886681098", "0"))
    alone = write(tmp_path, "a.yaml", "grad.s.z: [-0.25]\n")
    _, doc, _ = check(capsys, net, alone)
    assert slips_of(doc, "grad.s.z") == {"sigmoid_as_sigma", "half_missing"}
    both = write(tmp_path, "b.yaml", "grad.s.a: [-0.5]\ngrad.s.z: [-0.25]\n")
    _, doc, _ = check(capsys, net, both)
    assert slips_of(doc, "grad.s.z") == {"sigmoid_as_sigma"}


def test_when_no_slip_reproduces_the_number_the_report_says_so(tmp_path, capsys):
    sheet = write(tmp_path, "a.yaml", "loss: 7.77\n")
    _, doc, _ = check(capsys, EX1, sheet)
    (d,) = entry(doc, "loss")["diagnoses"]
    assert d["slip"] == "none"
    assert "None of the usual slips" in d["message"]


def test_the_table_prints_each_diagnosis_in_words(tmp_path, capsys):
    sheet = write(tmp_path, "a.yaml", "conv.z: [[3.5]]\n")
    assert run(["check", EX1, sheet]) == 1
    out = capsys.readouterr().out
    assert "(1) conv.z, line 1: the first wrong value, start here" in out
    assert "flipped the kernel" in out


def test_the_right_number_with_the_wrong_sign_is_named(tmp_path, capsys):
    # ∂L/∂O = O − y = 4.5 − 10 = −5.5; written y − O = 5.5
    # (alone, it could also be the textbook's δ = t − o, and the report says so too)
    sheet = write(tmp_path, "a.yaml", "grad.conv.z: [[5.5]]\n")
    _, doc, _ = check(capsys, EX1, sheet)
    assert slips_of(doc, "grad.conv.z") == {"sign", "convention_delta"}


def test_the_softmax_derivative_left_out_is_named_in_its_own_words(tmp_path, capsys):
    # ∂L/∂z taken as ∂L/∂p = −y/p = [0, −1/p₁] instead of p − y
    _, p1 = example2_probabilities()
    sheet = write(tmp_path, "a.yaml", f"grad.fc.z: [0, {-1 / p1:.4f}]\n")
    _, doc, _ = check(capsys, EX2, sheet)
    assert slips_of(doc, "grad.fc.z") == {"no_derivative"}
    assert "∂L/∂z = p − y" in entry(doc, "grad.fc.z")["diagnoses"][0]["message"]
