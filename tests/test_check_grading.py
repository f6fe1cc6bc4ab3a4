"""`bpcalc check` grading: verdicts, errors carried forward, the order answers are
graded in, the JSON report, and the tolerance an answer is graded with."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from bpcalc.check.sheet import decimals_of
from bpcalc.check.tolerance import Tolerance
from bpcalc.cli import run
from tests.check_helpers import EX1, EX2, check, entry, write

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
    # from conv.z = 4.4 (4.35 to 4.45 before it was rounded to one decimal) the gradient
    # would be −5.65 to −5.55, written −5.7 to −5.5; −5.8 follows from nothing
    sheet = write(tmp_path, "a.yaml", "conv.z: [[4.4]]\ngrad.conv.z: [[-5.8]]\n")
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
