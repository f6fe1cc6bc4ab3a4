"""`bpcalc check`: grading, carried-forward errors, tolerance, the template, and the slip
diagnoses. Every wrong number below is derived by hand in a comment from the slip it makes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bpcalc import engine
from bpcalc.check.sheet import decimals_of
from bpcalc.check.tolerance import Tolerance
from bpcalc.cli import run
from bpcalc.network.parse import load_network
from bpcalc.variant import Variant

EX1 = "examples/example1.yaml"  # O = 4.5, y = 10, half_sse, η = 0.01
EX2 = "examples/example2.yaml"  # conv + relu + dense + softmax + cross-entropy, η = 0.1
# the examples/*.yaml that run as they are (MNIST's needs the files a user downloads)
HOMEWORK_EXAMPLES = sorted(
    str(p) for p in Path("examples").glob("*.yaml") if p.name != "mnist_784_128_10.yaml"
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

# three samples x = 1, 2, 3 through z = 1·x, y = 1: errors a − y = [0, 1, 2];
# mean: L = (½·0 + ½·1 + ½·4)/3 = 2.5/3, ∂L/∂z_n = (a − y)/3 = [0, 1/3, 2/3],
#       ∂L/∂W = 0·1 + (1/3)·2 + (2/3)·3 = 8/3
# sum:  L = 2.5, ∂L/∂z_n = [0, 1, 2], ∂L/∂W = 0 + 2 + 6 = 8
BATCH = """
inputs: [[1], [2], [3]]
targets: [[1], [1], [1]]
layers:
  - name: fc
    type: dense
    weights: [[1]]
    bias: [0]
loss: {{type: half_sse, reduction: {reduction}}}
learning_rate: 0.1
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def check(capsys, *args: str) -> tuple[int, dict, str]:
    """Run `bpcalc check ... --json`; returns (exit code, the JSON report, stderr)."""
    code = run(["check", *args, "--json"])
    out = capsys.readouterr()
    doc = json.loads(out.out) if out.out.strip() else {}
    return code, doc, out.err


def entry(doc: dict, ref: str) -> dict:
    return next(a for a in doc["answers"] if a["ref"] == ref)


def slips_of(doc: dict, ref: str) -> set[str]:
    return {d["slip"] for d in entry(doc, ref)["diagnoses"]}


# --- grading --------------------------------------------------------------------------------


def test_a_correct_sheet_from_the_seed_numbers_passes_with_exit_0(tmp_path, capsys):
    # the seed's own printed numbers: softmax [0.372, 0.628], loss −ln 0.628 = 0.466,
    # ∂L/∂K = 0.335 · x, k11′ = 0.5 − 0.1 · 0.067 = 0.4933
    sheet = write(
        tmp_path,
        "a.yaml",
        "conv.z: [[0.12]]\n"
        "fc.a: [0.372, 0.628]\n"
        "loss: 0.466\n"
        "grad.conv.kernel: [[0.067, 0.268], [0.201, 0.034]]\n"
        "new.conv.kernel[0,0]: 0.4933\n",
    )
    code, doc, err = check(capsys, EX2, sheet)
    assert code == 0, err
    assert [a["symbol"] for a in doc["answers"]] == ["✓"] * 5
    assert doc["summary"]["correct"] == 5
    assert doc["summary"]["wrong"] == 0
    assert doc["first_wrong"] is None


def test_the_table_shows_verdicts_the_summary_and_where_to_start(tmp_path, capsys):
    # conv.z = 4.4 is wrong (4.5); ∂L/∂O = 4.4 − 10 = −5.6 follows from it
    sheet = write(tmp_path, "a.yaml", "conv.z: [[4.4]]\ngrad.conv.z: [[-5.6]]\nloss: 15.125\n")
    code = run(["check", EX1, sheet])
    out = capsys.readouterr().out
    assert code == 1
    assert "✗" in out and "↪" in out and "✓" in out
    assert "1 correct, 1 wrong, 1 carried forward, 12 not answered" in out
    assert "(1) conv.z, line 1: the first wrong value, start here" in out
    assert "↪ from your conv.z" in out


def test_an_error_carried_forward_gets_the_arrow_and_names_the_answer_it_rests_on(tmp_path, capsys):
    # conv.z written 4.4 (correct 4.5). From 4.4: ∂L/∂O = 4.4 − 10 = −5.6 and
    # ∂L/∂K = −5.6 · x = [[−5.6, −11.2], [−16.8, −22.4]]: right given their number.
    # ∂L/∂b written −5.5 is right outright.
    sheet = write(
        tmp_path,
        "a.yaml",
        "conv.z: [[4.4]]\n"
        "grad.conv.z: [[-5.6]]\n"
        "grad.conv.kernel: [[-5.6, -11.2], [-16.8, -22.4]]\n"
        "grad.conv.bias: -5.5\n",
    )
    code, doc, err = check(capsys, EX1, sheet)
    assert code == 1, err
    assert entry(doc, "conv.z")["verdict"] == "wrong"
    assert entry(doc, "conv.z")["first_wrong"] is True
    for ref in ("grad.conv.z", "grad.conv.kernel"):
        assert entry(doc, ref)["verdict"] == "carried_forward"
        assert entry(doc, ref)["symbol"] == "↪"
        assert entry(doc, ref)["rests_on"] == ["conv.z"]
    assert entry(doc, "grad.conv.bias")["verdict"] == "correct"
    assert doc["summary"] == {"correct": 1, "wrong": 1, "carried_forward": 2, "not_answered": 11}


def test_a_value_wrong_even_given_the_earlier_mistake_stays_wrong(tmp_path, capsys):
    # from conv.z = 4.4 the gradient would be −5.6; −5.7 follows from nothing
    sheet = write(tmp_path, "a.yaml", "conv.z: [[4.4]]\ngrad.conv.z: [[-5.7]]\n")
    code, doc, _ = check(capsys, EX1, sheet)
    assert code == 1
    assert entry(doc, "grad.conv.z")["verdict"] == "wrong"
    assert entry(doc, "grad.conv.z")["first_wrong"] is False


def test_own_rounding_of_right_answers_carried_forward_counts_as_right(tmp_path, capsys):
    # z1 = 0.3724 written 0.37 (right to 2 decimals); z2 = 100 · z1 = 37.24 exactly, but
    # from their 0.37 it is 37.0: right given right (rounded) numbers, so ✓, not ↪
    net = write(
        tmp_path,
        "n.yaml",
        "input: [1]\ntarget: [0]\nlayers:\n"
        "  - {name: l1, type: dense, weights: [[0.3724]], bias: [0]}\n"
        "  - {name: l2, type: dense, weights: [[100]], bias: [0]}\n"
        "loss: half_sse\nlearning_rate: 0.1\n",
    )
    sheet = write(tmp_path, "a.yaml", "l1.z: [0.37]\nl2.z: [37.0]\n")
    code, doc, err = check(capsys, net, sheet)
    assert code == 0, err
    assert [a["verdict"] for a in doc["answers"]] == ["correct", "correct"]


def test_answers_are_graded_in_computation_order_whatever_the_sheet_order(tmp_path, capsys):
    sheet = write(tmp_path, "a.yaml", "loss: 15.125\ngrad.conv.z: [[-5.5]]\nconv.z: [[4.5]]\n")
    code, doc, err = check(capsys, EX1, sheet)
    assert code == 0, err
    assert [a["ref"] for a in doc["answers"]] == ["conv.z", "loss", "grad.conv.z"]


def test_single_elements_and_blanks_are_graded_alone(tmp_path, capsys):
    # ∂L/∂K = −5.5 · x = [[−5.5, −11], [−16.5, −22]]: element [0,1] right, [1,1] wrong
    sheet = write(
        tmp_path,
        "a.yaml",
        "grad.conv.kernel[0,1]: -11\ngrad.conv.kernel[1][1]: -21\n"
        "new.conv.kernel: [[~, ~], [~, 0.62]]\n",
    )
    code, doc, _ = check(capsys, EX1, sheet)
    assert code == 1
    assert entry(doc, "grad.conv.kernel[0,1]")["verdict"] == "correct"
    assert entry(doc, "grad.conv.kernel[1,1]")["verdict"] == "wrong"
    # k22′ = 0.4 − 0.01 · (−22) = 0.62
    new = entry(doc, "new.conv.kernel")
    assert new["verdict"] == "correct"
    assert new["answer"] == [[None, None], [None, 0.62]]


def test_the_json_report_is_one_strict_document(tmp_path, capsys):
    # k12′ = 0.2 − 0.01 · (−5.5 · 2) = 0.31
    sheet = write(tmp_path, "a.yaml", "new.conv.kernel: [[~, 0.31], [~, ~]]\nloss: 15\n")
    code = run(["check", EX1, sheet, "--json"])
    out = capsys.readouterr().out

    def no_constants(c: str) -> None:
        raise AssertionError(f"non-standard JSON constant {c}")

    doc = json.loads(out, parse_constant=no_constants)
    assert code == doc["exit_code"] == 0
    assert set(doc["summary"]) == {"correct", "wrong", "carried_forward", "not_answered"}
    assert doc["answers"][1]["answer"] == [[None, 0.31], [None, None]]


# --- tolerance ------------------------------------------------------------------------------


def test_an_answer_is_right_to_the_decimals_written():
    tol = Tolerance()
    # 0.11997 to 2 decimals is 0.12; 0.13 and 0.11 are a hundredth off
    got = tol.agrees(np.array([0.12, 0.13, 0.11]), np.array(0.11997), np.array([2, 2, 2]))
    assert got.tolist() == [True, False, False]
    # 0.120 asks for three decimals (|0.120 − 0.11997| = 0.00003 ≤ 0.0005); 0.12000 for five
    got = tol.agrees(np.array([0.12, 0.12]), np.array(0.11997), np.array([3, 5]))
    assert got.tolist() == [True, False]


def test_answers_with_very_few_digits_must_get_the_first_significant_digit():
    tol = Tolerance()
    # 0 for 0.3 and 1 for 0.6 are within ½ of a unit but miss the first significant digit;
    # 0.003 for 0.0031 gets it
    got = tol.agrees(np.array([0.0, 1.0, 0.003]), np.array([0.3, 0.6, 0.0031]), np.array([0, 0, 3]))
    assert got.tolist() == [False, False, True]


def test_decimals_are_counted_as_written():
    assert decimals_of("0.120", 0.12) == 3
    assert decimals_of("12", 12) == 0
    assert decimals_of("-.5", -0.5) == 1
    assert decimals_of("1.5e-3", 0.0015) == 4
    assert decimals_of("2e3", 2000.0) == -3


def test_the_trailing_zero_the_student_wrote_makes_the_answer_stricter(tmp_path, capsys):
    # loss = 15.125: 15.1 is right to 1 decimal, 15.100 is not right to 3
    for text, verdict in (("15.1", "correct"), ("15.100", "wrong")):
        sheet = write(tmp_path, "a.yaml", f"loss: {text}\n")
        _, doc, _ = check(capsys, EX1, sheet)
        assert doc["answers"][0]["verdict"] == verdict, text


def test_rtol_and_atol_replace_the_decimals_rule(tmp_path, capsys):
    # 15 for 15.125 is right to 0 decimals; within 1 % (0.15) but not within atol 0.1
    sheet = write(tmp_path, "a.yaml", "loss: 15\n")
    assert check(capsys, EX1, sheet)[0] == 0
    assert check(capsys, EX1, sheet, "--rtol", "0.01")[0] == 0
    assert check(capsys, EX1, sheet, "--atol", "0.1")[0] == 1
    assert check(capsys, EX1, sheet, "--rtol", "0.001")[0] == 1


@given(
    value=st.floats(-1e3, 1e3, allow_nan=False).filter(lambda v: abs(v) > 1e-3),
    d=st.integers(0, 6),
)
def test_the_correct_value_rounded_to_any_decimals_is_right(value, d):
    written = round(value, d)
    lead = math.floor(math.log10(abs(value)))
    if d < -lead:  # fewer decimals than the first significant digit needs: the floor applies
        return
    assert Tolerance().agrees(np.array(written), np.array(value), np.array(d))


def test_round_each_makes_the_expected_values_follow_hand_rounding(tmp_path, capsys):
    # rounding every value to 2 decimals: fc.z = [0.07, 0.59], p = [0.37, 0.63],
    # ∂L/∂z = [0.37, −0.37], ∂L/∂x = 0.6·0.37 + 0.3·0.37 = 0.333 → 0.33,
    # ∂L/∂K = 0.33 · x = [[0.066, 0.264], [0.198, 0.033]] → [[0.07, 0.26], [0.2, 0.03]]
    # Without rounding ∂L/∂K[0,1] = 0.2681, so 0.26 is wrong to 2 decimals.
    sheet = write(tmp_path, "a.yaml", "grad.conv.kernel: [[0.07, 0.26], [0.20, 0.03]]\n")
    assert check(capsys, EX2, sheet)[0] == 1
    code, doc, err = check(capsys, EX2, sheet, "--round-each", "2")
    assert code == 0, err
    assert doc["round_each"] == 2


# --- the sheet: names, shapes, locations ------------------------------------------------------


def test_an_unknown_name_is_an_error_with_its_location_and_the_closest_names(tmp_path, capsys):
    sheet = write(tmp_path, "a.yaml", "conv.z: [[4.5]]\ngrad.conv.kernal: [[1, 2], [3, 4]]\n")
    code = run(["check", EX1, sheet])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{sheet}:2:1:" in err
    assert "'grad.conv.kernel'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        ("conv.z: [[1, 2]]\n", "conv.z is 1 x 1 but this answer is 1 x 2", ":1:9:"),
        ("grad.conv.kernel[2,0]: 1\n", "outside grad.conv.kernel", ":1:1:"),
        ("loss: one\n", "should be a number", ":1:7:"),
        ("loss: 1/3\n", "0.3333, not 1/3", ":1:7:"),
        ("- loss\n", "should be a mapping of value names", ":1:1:"),
        ("conv.kernel: [[1, 2], [3]]\n", "ragged", ":1:23:"),
        ("conv.z: [[4.5]]\nconv.z[0,0]: 4.5\n", "answered twice (also at line 1)", ":2:1:"),
        ("loss: 1\nloss: 2\n", "duplicate key", ":2:1:"),
        ("grad.conv.kernel[0,1: 1\n", "is not a value name", ":1:1:"),
    ],
)
def test_a_bad_sheet_is_exit_2_with_a_located_message(tmp_path, capsys, text, message, where):
    sheet = write(tmp_path, "a.yaml", text)
    code = run(["check", EX1, sheet])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert f"{sheet}{where}" in err


def test_check_without_a_sheet_or_with_both_a_sheet_and_template_is_a_usage_error(capsys):
    assert run(["check", EX1]) == 2
    assert "--template" in capsys.readouterr().err
    assert run(["check", EX1, "answers.yaml", "--template"]) == 2
    assert "standard output" in capsys.readouterr().err


# --- the template -----------------------------------------------------------------------------


def _fill(template: str, step) -> str:
    blank = yaml.safe_load(template)
    assert all(v is None or isinstance(v, list) for v in blank.values())
    return yaml.safe_dump({k: step[k].tolist() for k in blank})


@pytest.mark.parametrize("net", HOMEWORK_EXAMPLES)
def test_the_template_lists_every_value_in_order_and_filled_in_it_passes(tmp_path, capsys, net):
    assert run(["check", net, "--template"]) == 0
    template = capsys.readouterr().out
    step = engine.run(load_network(net)).steps[0]
    assert list(yaml.safe_load(template)) == list(step.records)
    assert "# scalar" in template  # the loss, at least
    sheet = write(tmp_path, "filled.yaml", _fill(template, step))
    code, doc, err = check(capsys, net, sheet)
    assert code == 0, err
    assert doc["summary"]["correct"] == len(step.records)
    assert doc["summary"]["not_answered"] == 0


def test_a_batched_template_round_trips_and_an_empty_sheet_grades_nothing(tmp_path, capsys):
    net = write(tmp_path, "n.yaml", BATCH.format(reduction="mean"))
    assert run(["check", net, "--template"]) == 0
    template = capsys.readouterr().out
    assert "fc.z:" in template and "[[~], [~], [~]]" in template
    blank = write(tmp_path, "blank.yaml", template)
    code, doc, err = check(capsys, net, blank)
    assert code == 0, err
    assert doc["answers"] == []
    step = engine.run(load_network(net)).steps[0]
    filled = write(tmp_path, "filled.yaml", _fill(template, step))
    assert check(capsys, net, filled)[0] == 0


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
    net = write(tmp_path, "n.yaml", DENSE3.format(loss="sse"))
    sheet = write(tmp_path, "a.yaml", "grad.fc.a: [0, 1, 0]\n")
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
    sheet = write(tmp_path, "a.yaml", "grad.fc.weights: [[8]]\nloss: 2.5\nfc.z: [[1], [2], [3]]\n")
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


def _p() -> tuple[float, float]:
    # example 2: fc.z = [0.6·0.12, −0.3·0.12 + 0.63] = [0.072, 0.594]; p = softmax(fc.z)
    e0, e1 = math.exp(0.072), math.exp(0.594)
    return e0 / (e0 + e1), e1 / (e0 + e1)


@pytest.mark.parametrize(("base", "slip"), [(10.0, "log10"), (2.0, "log2")])
def test_cross_entropy_with_the_wrong_log_base_is_named(tmp_path, capsys, base, slip):
    # L = −ln p₁ = 0.4658; with log_b: −ln p₁ / ln b (0.2023 for base 10, 0.6720 for 2)
    loss = -math.log(_p()[1]) / math.log(base)
    sheet = write(tmp_path, "a.yaml", f"loss: {loss:.4f}\n")
    _, doc, _ = check(capsys, EX2, sheet)
    assert slips_of(doc, "loss") == {slip}


def test_the_one_hot_target_read_for_the_other_class_is_named(tmp_path, capsys):
    # target [1, 0] instead of [0, 1]: L = −ln p₀ = 0.9878; ∂L/∂z = p − y = [p₀ − 1, p₁]
    p0, p1 = _p()
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


# --- the engine's variant hook ----------------------------------------------------------------


@pytest.mark.parametrize("net", [EX1, EX2])
def test_the_default_variant_is_the_correct_maths(net):
    spec = load_network(net)
    plain = engine.run(spec).steps[0]
    with_default = engine.run(spec, variant=Variant()).steps[0]
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
    p0, _ = _p()
    sheet = write(tmp_path, "a.yaml", f"target: [1, 0]\nloss: {-math.log(p0):.4f}\n")
    code, doc, _ = check(capsys, EX2, sheet)
    assert code == 1
    assert slips_of(doc, "target") == {"other_class"}
    assert entry(doc, "loss")["verdict"] == "carried_forward"
    assert entry(doc, "loss")["rests_on"] == ["target"]


def _written(v: object, d: int) -> str:
    """A value as a student writes it: every number rounded to d decimals, as YAML."""
    if isinstance(v, list):
        return "[" + ", ".join(_written(x, d) for x in v) + "]"
    return f"{v:.{d}f}"


@pytest.mark.parametrize("net", HOMEWORK_EXAMPLES)
@pytest.mark.parametrize("d", [3, 4, 6])
def test_every_correct_value_rounded_to_a_few_decimals_passes(tmp_path, capsys, net, d):
    step = engine.run(load_network(net)).steps[0]
    text = "".join(f"{r.name}: {_written(r.value.tolist(), d)}\n" for r in step)
    sheet = write(tmp_path, "a.yaml", text)
    code, doc, err = check(capsys, net, sheet)
    assert code == 0, [
        (a["ref"], a["answer"], a["expected"]) for a in doc["answers"] if a["verdict"] != "correct"
    ]


def test_the_sheet_can_come_from_standard_input(monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"conv.z: [[4.5]]\n")))
    code, doc, err = check(capsys, EX1, "-")
    assert code == 0, err
    assert doc["sheet"] == "<stdin>"


def test_check_help_shows_examples_and_the_exit_status(capsys):
    assert run(["check", "--help"]) == 0
    out = capsys.readouterr().out
    assert "bpcalc check examples/example2.yaml --template > answers.yaml" in out
    assert "Exit status" in out


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


def test_the_right_number_with_the_wrong_sign_is_named(tmp_path, capsys):
    # ∂L/∂O = O − y = 4.5 − 10 = −5.5; written y − O = 5.5
    sheet = write(tmp_path, "a.yaml", "grad.conv.z: [[5.5]]\n")
    _, doc, _ = check(capsys, EX1, sheet)
    assert slips_of(doc, "grad.conv.z") == {"sign"}


def test_the_softmax_derivative_left_out_is_named_in_its_own_words(tmp_path, capsys):
    # ∂L/∂z taken as ∂L/∂p = −y/p = [0, −1/p₁] instead of p − y
    _, p1 = _p()
    sheet = write(tmp_path, "a.yaml", f"grad.fc.z: [0, {-1 / p1:.4f}]\n")
    _, doc, _ = check(capsys, EX2, sheet)
    assert slips_of(doc, "grad.fc.z") == {"no_derivative"}
    assert "∂L/∂z = p − y" in entry(doc, "grad.fc.z")["diagnoses"][0]["message"]
