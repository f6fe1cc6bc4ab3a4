"""`bpcalc check` on real sheets: the rounding allowance, hand rounding (--round-each), sheets
whose answers contradict each other, decimal commas, shape messages in words, and the slips
that live in the optimizers and the conv layer. Every number is derived in a comment."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpcalc.cli import run
from tests.check_helpers import EX1, check, entry, slips_of, write
from tests.class_helpers import grade_text, network_files, write_sheet
from tests.student import Slip

# z = 2·0.4088 + 1·0.4468 + 1·0.05 = 0.8176 + 0.4468 + 0.05 = 1.3144 exactly
SUM3 = """
input: [2, 1, 1]
target: [1]
layers:
  - {name: fc, type: dense, weights: [[0.4088, 0.4468, 0.05]], bias: [0]}
loss: half_sse
learning_rate: 0.1
"""

# w = 1, x = 1, y = 0, ½ squared error, bias frozen: ∂L/∂w = z − y = 1 on the first step
ONE = """
input: [1.0]
target: [0.0]
layers:
  - {{name: fc, type: dense, weights: [[1.0]], freeze: bias}}
loss: half_sse
optimizer: {optimizer}
"""

# Matt Mazur's 2-2-2 worked example (biases not updated)
MAZUR = """
input: [0.05, 0.10]
target: [0.01, 0.99]
layers:
  - {name: h, type: dense, weights: [[0.15, 0.20], [0.25, 0.30]], bias: 0.35,
     bias_shared: true, activation: sigmoid, freeze: [bias]}
  - {name: o, type: dense, weights: [[0.40, 0.45], [0.50, 0.55]], bias: 0.60,
     bias_shared: true, activation: sigmoid, freeze: [bias]}
loss: half_sse
learning_rate: 0.5
"""
MAZUR_NEW = (
    "new.h.weights: [[0.149780716, 0.19956143], [0.24975114, 0.29950229]]\n"
    "new.o.weights: [[0.35891648, 0.408666186], [0.511301270, 0.561370121]]\n"
)


# --- the allowance ---------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "verdict"), [("1.315", "correct"), ("1.316", "wrong")])
def test_products_rounded_before_adding_are_allowed_for(tmp_path, capsys, written, verdict):
    # 0.818 + 0.447 + 0.05 = 1.315 is 0.0006 from 1.3144: beyond ½ in the third decimal, but
    # rounding 0.8176 and 0.4468 moved it by 0.0004 + 0.0002; 1.316 is beyond that too
    net = write(tmp_path, "n.yaml", SUM3)
    _, doc, _ = check(capsys, net, write(tmp_path, "a.yaml", f"fc.z: [{written}]\n"))
    assert entry(doc, "fc.z")["verdict"] == verdict
    assert entry(doc, "fc.z")["allowance"] == [pytest.approx(0.0005 + 0.0004 + 0.0002)]


def test_a_zero_to_the_sheets_decimals_is_right_for_a_tiny_value(tmp_path, capsys):
    # y = 0.99956: ∂L/∂z = 1 − 0.99956 = 0.00044, written 0.000 on a sheet of 3 decimals (the
    # first significant digit is only asked of numbers written with fewer decimals)
    net = write(tmp_path, "n.yaml", SUM3.replace("[1]\nlayers", "[1.31396]\nlayers"))
    sheet = write(tmp_path, "a.yaml", "fc.z: [1.314]\ngrad.fc.z: [0.000]\nloss: 0.000\n")
    code, doc, err = check(capsys, net, sheet)
    assert code == 0, err
    assert entry(doc, "grad.fc.z")["expected"] == [pytest.approx(0.00044)]


def test_fewer_decimals_than_the_sheets_must_still_get_the_first_significant_digit(
    tmp_path, capsys
):
    # example 1: ∂L/∂K[0,0] = −5.5·1 = −5.5; a lone −10 on a sheet of 3 decimals misses the 5
    sheet = write(tmp_path, "a.yaml", "grad.conv.kernel[0,0]: -10\ngrad.conv.z: [[-5.500]]\n")
    _, doc, _ = check(capsys, EX1, sheet)
    assert entry(doc, "grad.conv.kernel[0,0]")["verdict"] == "wrong"


def test_a_slip_smaller_than_the_rounding_is_reported_as_within_rounding_of_both(tmp_path):
    # a student who leaves the learning rate out of the update: on this network the hidden
    # weights' gradients are so small that θ − g and θ − η·g agree to 3 decimals
    nets = network_files(tmp_path)
    _, text = write_sheet(nets["in_out_shared_bias"], slip=Slip("update_no_lr"))
    doc = grade_text(nets["in_out_shared_bias"], text, tmp_path)
    hidden = next(a for a in doc["answers"] if a["label"] == "new.h.weights")
    assert hidden["verdict"] == "correct"
    assert "update_no_lr" in {d["slip"] for d in hidden["also_fits"]}
    first = next(a for a in doc["answers"] if a["first_wrong"])
    assert "update_no_lr" in {d["slip"] for d in first["diagnoses"]}


def test_the_sign_slip_is_named_within_the_students_rounding(tmp_path):
    # worked sub-step by sub-step to 4 decimals, ∂L/∂z of the output written with the other
    # sign: not exactly −(the value), but within the rounding it rests on
    nets = network_files(tmp_path)
    net = nets["published_3_2_2"]
    _, text = write_sheet(net, decimals=4, style="steps", slip=Slip("sign", "grad.out.z"))
    doc = grade_text(net, text, tmp_path)
    first = next(a for a in doc["answers"] if a["first_wrong"])
    assert first["label"] == "grad.out.z"
    assert "sign" in {d["slip"] for d in first["diagnoses"]}


# --- hand rounding ---------------------------------------------------------------------------


def test_round_each_rounds_half_away_from_zero_and_covers_loss_after(tmp_path, capsys):
    # example 1, η = 0.01: K′ = K + 0.055·x = [[0.155, 0.31], [0.465, 0.62]], b′ = 1.555.
    # To 2 decimals, as a person rounds: [[0.16, 0.31], [0.47, 0.62]] and 1.56 (np.round has
    # 0.15 and 1.55: 0.155 is 0.15499… in binary). After the update, from those:
    # z′ = 0.16 + 0.62 + 1.41 + 2.48 + 1.56 = 6.23, L = ½(6.23 − 10)² = 7.10645 -> 7.11
    sheet = write(
        tmp_path,
        "a.yaml",
        "new.conv.kernel: [[0.16, 0.31], [0.47, 0.62]]\nnew.conv.bias: 1.56\nloss_after: 7.11\n",
    )
    code, doc, err = check(capsys, EX1, sheet, "--round-each", "2")
    assert code == 0, err
    assert entry(doc, "loss_after")["expected"] == pytest.approx(7.11)
    assert entry(doc, "new.conv.bias")["expected"] == pytest.approx(1.56)


@pytest.mark.parametrize("name", ["example2", "mlp_2_3_1", "sigmoid_mse", "regularized_batch"])
def test_a_sheet_rounded_value_by_value_is_right_under_round_each(tmp_path, name):
    # (networks whose given numbers have at most 2 decimals: --round-each rounds those too)
    nets = network_files(tmp_path)
    _, text = write_sheet(nets[name], decimals=2)
    doc = grade_text(nets[name], text, tmp_path, "--round-each", "2")
    assert doc["summary"]["wrong"] == 0
    assert doc["round_each"] == 2


# --- sheets that contradict themselves -------------------------------------------------------


def test_a_loss_after_that_contradicts_right_new_weights_gets_both_facts(tmp_path, capsys):
    # Mazur's page: every updated weight right, loss_after 0.291027924 (right: 0.291027774),
    # which is what back-propagating through the updated output weights gives; but that slip
    # would have changed the hidden layer's new weights, and those are right
    net = write(tmp_path, "n.yaml", MAZUR)
    sheet = write(tmp_path, "a.yaml", MAZUR_NEW + "loss_after: 0.291027924\n")
    code, doc, _ = check(capsys, net, sheet)
    assert code == 1
    assert entry(doc, "new.h.weights")["verdict"] == "correct"
    (d,) = entry(doc, "loss_after")["diagnoses"]
    assert d["slip"] == "updated_weights_in_backprop"
    assert d["contradicted_by"] == ["new.h.weights"]
    assert "new.h.weights is right" in d["message"]
    alone = write(tmp_path, "b.yaml", "loss_after: 0.291027924\n")
    _, doc, _ = check(capsys, net, alone)
    (d,) = entry(doc, "loss_after")["diagnoses"]
    assert d["slip"] == "updated_weights_in_backprop" and "contradicted_by" not in d


# --- reading the sheet -------------------------------------------------------------------


def test_a_decimal_comma_is_read_as_a_decimal_with_a_note(tmp_path, capsys):
    # L = ½(4.5 − 10)² = 15.125
    sheet = write(tmp_path, "a.yaml", "loss: 15,125\n")
    code, doc, err = check(capsys, EX1, sheet)
    assert code == 0, err
    assert entry(doc, "loss")["decimals"] == 3
    assert "read 15,125 as 15.125 (a decimal comma)" in err
    assert doc["notes"] and ":1:7" in doc["notes"][0]


def test_a_decimal_comma_inside_a_list_is_explained(tmp_path, capsys):
    # YAML splits [0,2, 0,3] into four numbers
    sheet = write(tmp_path, "a.yaml", "grad.conv.input: [[0,2, 0,3], [0,1, 0,5]]\n")
    code, _, err = check(capsys, EX1, sheet)
    assert code == 2
    assert "a decimal comma inside a list splits the number in two" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "loss: [1, 2]\n",
            "loss is a single number but this answer is a list of 2 numbers; "
            "write it as one number",
        ),
        (
            "grad.conv.kernel: [1, 2, 3]\n",
            "grad.conv.kernel is a 2 x 2 matrix (2 rows of 2) but "
            "this answer is a list of 3 numbers",
        ),
    ],
)
def test_shape_messages_read_naturally(tmp_path, capsys, text, message):
    code, _, err = check(capsys, EX1, write(tmp_path, "a.yaml", text))
    assert code == 2
    assert message in err
    assert "of shape a single number" not in err


# --- slips in the optimizers and the conv layer ----------------------------------------------


def test_adam_without_bias_correction_is_named_and_the_new_weight_carried(tmp_path, capsys):
    # g = 1: m = 0.1·1 = 0.1, v = 0.001·1 = 0.001; m̂ = m/(1 − 0.9) = 1, v̂ = v/(1 − 0.999) = 1.
    # Without the correction m̂ = 0.1, v̂ = 0.001 and w′ = 1 − 0.1·0.1/√0.001 = 0.684 (right:
    # 1 − 0.1·1/1 = 0.9): carried from the student's own m̂ and v̂
    net = write(tmp_path, "n.yaml", ONE.format(optimizer="{type: adam, lr: 0.1}"))
    sheet = write(
        tmp_path,
        "a.yaml",
        "state.fc.weights.m_hat: [[0.1]]\nstate.fc.weights.v_hat: [[0.001]]\n"
        "new.fc.weights: [[0.684]]\n",
    )
    code, doc, _ = check(capsys, net, sheet)
    assert code == 1
    assert "adam_no_bias_correction" in slips_of(doc, "state.fc.weights.m_hat")
    new = entry(doc, "new.fc.weights")
    assert new["verdict"] == "carried_forward"
    assert new["rests_on"] == ["state.fc.weights.m_hat", "state.fc.weights.v_hat"]


def test_epsilon_inside_the_square_root_is_named(tmp_path, capsys):
    # RMSprop α = 0.99, ε = 0.1, η = 0.01, g = 1: v = 0.01, √v + ε = 0.2, w′ = 1 − 0.01/0.2 =
    # 0.95; with √(v + ε) = √0.11 = 0.33166: w′ = 1 − 0.01/0.33166 = 0.970
    opt = "{type: rmsprop, lr: 0.01, alpha: 0.99, eps: 0.1}"
    net = write(tmp_path, "n.yaml", ONE.format(optimizer=opt))
    sheet = write(tmp_path, "a.yaml", "new.fc.weights: [[0.970]]\n")
    _, doc, _ = check(capsys, net, sheet)
    assert slips_of(doc, "new.fc.weights") == {"eps_inside_sqrt"}


@pytest.mark.parametrize(
    ("answer", "slip"),
    [
        # ∂L/∂x = ∂L/∂O·K = −5.5·[[0.1, 0.2], [0.3, 0.4]]; through the kernel turned 180°:
        ("grad.conv.input: [[-2.2, -1.65], [-1.1, -0.55]]", "conv_flip_backward"),
        # ∂L/∂K = −5.5·x = [[−5.5, −11], [−16.5, −22]]; turned 180°:
        ("grad.conv.kernel: [[-22, -16.5], [-11, -5.5]]", "conv_flip_kernel_grad"),
    ],
)
def test_a_kernel_flipped_in_the_backward_pass_is_named(tmp_path, capsys, answer, slip):
    _, doc, _ = check(capsys, EX1, write(tmp_path, "a.yaml", answer + "\n"))
    assert slips_of(doc, answer.split(":")[0]) == {slip}


def test_the_table_shows_the_sheets_precision_and_the_within_rounding_note(tmp_path, capsys):
    nets = network_files(tmp_path)
    _, text = write_sheet(nets["in_out_shared_bias"], slip=Slip("update_no_lr"))
    path = Path(tmp_path) / "s.yaml"
    path.write_text(text, encoding="utf-8")
    assert run(["check", nets["in_out_shared_bias"], str(path)]) == 1
    out = capsys.readouterr().out
    assert "your sheet is written to 3 decimals" in out
    assert "new.h.weights: within rounding of both the right value and a slip" in out
