"""`bpcalc check`: the conventions a sheet is written in (δ = t − o, a velocity with η in it,
a log base), declared or recognised, and sheets that answer several steps."""

from __future__ import annotations

import math

import pytest

from bpcalc.cli import run
from tests.check_helpers import EX1, EX2, check, entry, example2_probabilities, slips_of, write
from tests.class_helpers import grade_text, network_files, write_sheet

# example 1 with δ = t − o: δ = 10 − 4.5 = 5.5 (∂L/∂O = −5.5); the textbook's "gradient" of
# K is δ·x = [[5.5, 11], [16.5, 22]], and w ← w + η·δ·x: K′ = K + 0.01·[[5.5, 11], [16.5, 22]]
# = [[0.155, 0.31], [0.465, 0.62]], b′ = 1.5 + 0.055 = 1.555 (the same numbers as bpcalc's)
DELTA_SHEET = (
    "grad.conv.z: [[5.5]]\n"
    "grad.conv.kernel: [[5.5, 11], [16.5, 22]]\n"
    "grad.conv.bias: 5.5\n"
    "new.conv.kernel: [[0.155, 0.31], [0.465, 0.62]]\n"
    "new.conv.bias: 1.555\n"
)

# w = 1, x = 1, y = 0, ½ squared error, bias frozen
ONE = """
input: [1.0]
target: [0.0]
layers:
  - {{name: fc, type: dense, weights: [[1.0]], freeze: bias}}
loss: half_sse
optimizer: {optimizer}
"""
MOMENTUM = ONE.format(optimizer="{type: momentum, lr: 0.1, momentum: 0.9}")
SGD = ONE.format(optimizer="{type: sgd, lr: 0.1}")
# momentum, PyTorch's: step 1 g = 1, v = 1, w = 0.9; step 2 g = 0.9, v = 0.9·1 + 0.9 = 1.8,
# w = 0.9 − 0.18 = 0.72. Textbook (v ← μ·v − η·g, w ← w + v): v = −0.1, w = 0.9;
# v = 0.9·(−0.1) − 0.1·0.9 = −0.18, w = 0.72. With η inside (v ← μ·v + η·g): 0.1, 0.18.
VELOCITY = (
    "state.fc.weights.velocity: [[{v1}]]\nnew.fc.weights: [[0.9]]\n"
    "step 2:\n  state.fc.weights.velocity: [[{v2}]]\n  new.fc.weights: [[0.72]]\n"
)


# --- δ = t − o ----------------------------------------------------------------------------


def test_a_sheet_in_delta_t_minus_o_is_right_when_it_says_so(tmp_path, capsys):
    sheet = write(tmp_path, "a.yaml", "conventions: {delta: t_minus_o}\n" + DELTA_SHEET)
    code, doc, err = check(capsys, EX1, sheet)
    assert code == 0, err
    assert doc["conventions"] == {"delta": "t_minus_o"}
    assert doc["summary"]["correct"] == 5


def test_the_delta_convention_can_be_given_on_the_command_line(tmp_path, capsys):
    sheet = write(tmp_path, "a.yaml", DELTA_SHEET)
    assert check(capsys, EX1, sheet, "--delta", "t_minus_o")[0] == 0


def test_an_undeclared_delta_convention_is_the_diagnosis_never_you_added_the_step(tmp_path, capsys):
    # the δ's are −∂L/∂(·): the first is wrong as bpcalc writes it and said to follow δ = t − o,
    # the others follow from it (↪); the new weights are right (w + η·δ·x is θ − η·∂L/∂θ)
    sheet = write(tmp_path, "a.yaml", DELTA_SHEET)
    code, doc, _ = check(capsys, EX1, sheet)
    assert code == 1
    first = entry(doc, "grad.conv.z")
    assert first["verdict"] == "wrong" and first["first_wrong"]
    assert "convention_delta" in slips_of(doc, "grad.conv.z")
    assert "conventions: {delta: t_minus_o}" in first["diagnoses"][-1]["message"]
    for ref in ("grad.conv.kernel", "grad.conv.bias"):
        assert entry(doc, ref)["verdict"] == "carried_forward", ref
    for ref in ("new.conv.kernel", "new.conv.bias"):
        assert entry(doc, ref)["verdict"] == "correct"
    assert all(d["slip"] != "update_plus" for a in doc["answers"] for d in a["diagnoses"])


def test_new_weights_written_from_delta_t_minus_o_to_rounding_are_not_you_added_the_step(
    tmp_path,
):
    # a whole sheet in δ = t − o, worked sub-step by sub-step to 3 decimals
    nets = network_files(tmp_path)
    net = nets["sigmoid_mse"]
    _, text = write_sheet(net, decimals=3, style="steps", delta_t_minus_o=True)
    assert grade_text(net, text, tmp_path)["summary"]["wrong"] == 0
    undeclared = text.replace("conventions: {delta: t_minus_o}\n", "")
    doc = grade_text(net, undeclared, tmp_path)
    slips = {d["slip"] for a in doc["answers"] for d in a["diagnoses"]}
    assert "convention_delta" in slips and "update_plus" not in slips
    # (with η = 1 the rounding of η·δ·x is the rounding of δ·x itself, and these δ's are
    # graded as wrong, so a new weight can be off by it: then it too names the convention)
    for a in doc["answers"]:
        if a["verdict"] == "wrong":
            assert "convention_delta" in {d["slip"] for d in a["diagnoses"]}, a["label"]


def test_right_gradients_then_theta_plus_eta_g_is_still_you_added_the_step(tmp_path, capsys):
    # ∂L/∂O = −5.5 written right; K′ = K − 0.01·(−5.5·x) written as K + ... the other way:
    # K + 0.01·(−5.5·x) = [[0.045, 0.09], [0.135, 0.18]]
    sheet = write(
        tmp_path,
        "a.yaml",
        "grad.conv.z: [[-5.5]]\nnew.conv.kernel: [[0.045, 0.09], [0.135, 0.18]]\n",
    )
    _, doc, _ = check(capsys, EX1, sheet)
    assert slips_of(doc, "new.conv.kernel") == {"update_plus"}


# --- the momentum velocity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "v1", "v2"), [("textbook", -0.1, -0.18), ("lr_inside", 0.1, 0.18)]
)
def test_a_velocity_written_with_eta_in_it_is_right_in_its_convention(
    tmp_path, capsys, form, v1, v2
):
    net = write(tmp_path, "n.yaml", MOMENTUM)
    text = f"conventions: {{velocity: {form}}}\n" + VELOCITY.format(v1=v1, v2=v2)
    code, doc, err = check(capsys, net, write(tmp_path, "a.yaml", text))
    assert code == 0, err
    assert doc["steps"] == 2


def test_an_undeclared_textbook_velocity_is_named_and_the_weights_stay_right(tmp_path, capsys):
    net = write(tmp_path, "n.yaml", MOMENTUM)
    sheet = write(tmp_path, "a.yaml", VELOCITY.format(v1=-0.1, v2=-0.18))
    code, doc, _ = check(capsys, net, sheet)
    assert code == 1
    first = entry(doc, "state.fc.weights.velocity")
    assert first["first_wrong"]
    assert {"velocity_textbook", "convention_velocity"} <= slips_of(
        doc, "state.fc.weights.velocity"
    )
    assert entry(doc, "new.fc.weights")["verdict"] == "correct"
    step2 = next(a for a in doc["answers"] if a["label"] == "new.fc.weights (step 2)")
    assert step2["verdict"] == "correct"


# --- the log base ----------------------------------------------------------------------------


def test_a_cross_entropy_in_log10_is_right_when_the_sheet_says_so(tmp_path, capsys):
    # L = −log10 p₁ = −ln p₁ / ln 10
    _, p1 = example2_probabilities()
    sheet = write(tmp_path, "a.yaml", f"conventions: {{log: log10}}\nloss: {-math.log10(p1):.4f}\n")
    code, _, err = check(capsys, EX2, sheet)
    assert code == 0, err
    assert check(capsys, EX2, sheet, "--log", "ln")[0] == 1  # the command line wins


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conventions: {delta: sideways}\n", ":1:22: delta: 'sideways' is not one of"),
        ("conventions: {sign: flipped}\n", ":1:15: unknown convention 'sign'"),
        ("conventions: t_minus_o\n", ":1:14: conventions: should be a mapping"),
    ],
)
def test_a_bad_conventions_block_is_exit_2_at_its_place(tmp_path, capsys, text, message):
    code, _, err = check(capsys, EX1, write(tmp_path, "a.yaml", text))
    assert code == 2
    assert message in err


def test_a_bad_convention_option_is_exit_2_naming_it(tmp_path, capsys):
    code, _, err = check(capsys, EX1, write(tmp_path, "a.yaml", "loss: 15.125\n"), "--delta", "x")
    assert code == 2
    assert "--delta: delta: 'x' is not one of o_minus_t, t_minus_o" in err


# --- several steps ---------------------------------------------------------------------------


def test_a_second_step_is_graded_from_the_first(tmp_path, capsys):
    net = write(tmp_path, "n.yaml", MOMENTUM)
    sheet = write(tmp_path, "a.yaml", VELOCITY.format(v1=1, v2=1.8))
    code, doc, err = check(capsys, net, sheet)
    assert code == 0, err
    assert [a["step"] for a in doc["answers"]] == [1, 1, 2, 2]


def test_a_wrong_new_weight_in_step_1_carries_into_step_2(tmp_path, capsys):
    # SGD η = 0.1: w = 1 -> 0.9 -> 0.81. Step 1's new weight written 0.8 (wrong); step 2 from
    # it: z = 0.8, ∂L/∂w = 0.8, w = 0.8 − 0.08 = 0.72
    net = write(tmp_path, "n.yaml", SGD)
    sheet = write(
        tmp_path,
        "a.yaml",
        "new.fc.weights: [[0.8]]\n"
        "step 2:\n  fc.z: [0.8]\n  grad.fc.weights: [[0.8]]\n  new.fc.weights: [[0.72]]\n",
    )
    code, doc, _ = check(capsys, net, sheet)
    assert code == 1
    assert entry(doc, "new.fc.weights")["first_wrong"]
    for a in doc["answers"][1:]:
        assert a["verdict"] == "carried_forward", a["label"]
        assert a["rests_on"] == ["new.fc.weights"], a["label"]
    assert doc["answers"][-1]["label"] == "new.fc.weights (step 2)"


def test_steps_asks_for_as_many_steps_as_the_sheet_needs(tmp_path, capsys):
    net = write(tmp_path, "n.yaml", SGD)
    sheet = write(tmp_path, "a.yaml", "step 3:\n  new.fc.weights: [[0.729]]\n")
    code, doc, err = check(capsys, net, sheet)
    assert code == 0, err  # the sheet asks for 3 steps: w = 0.9, 0.81, 0.729
    code, _, err = check(capsys, net, sheet, "--steps", "2")
    assert code == 2
    assert "--steps 2: the sheet" in err and "answers step 3" in err


def test_a_bad_step_section_is_exit_2_at_its_place(tmp_path, capsys):
    net = write(tmp_path, "n.yaml", SGD)
    code, _, err = check(capsys, net, write(tmp_path, "a.yaml", "step 2: 0.5\n"))
    assert code == 2
    assert ":1:9: step 2: should hold that step's answers" in err
    code, _, err = check(capsys, net, write(tmp_path, "b.yaml", "step 2:\n  fc.zz: [1]\n"))
    assert code == 2
    assert ":2:3: there is no value named 'fc.zz'" in err


def test_the_template_for_two_steps_has_a_section_per_step_and_grades_as_blank(tmp_path, capsys):
    net = write(tmp_path, "n.yaml", MOMENTUM)
    assert run(["check", net, "--template", "--steps", "2"]) == 0
    text = capsys.readouterr().out
    assert "\nstep 2:\n" in text
    assert "fc.weights:" in text.split("step 2:")[1]
    sheet = write(tmp_path, "a.yaml", text)
    code, doc, _ = check(capsys, net, sheet, "--steps", "2")
    assert code == 0 and doc["answers"] == []
