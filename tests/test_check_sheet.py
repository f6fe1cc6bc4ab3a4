"""`bpcalc check`'s answer sheet: names, shapes and locations, the template, standard
input and the help text."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bpcalc import engine
from bpcalc.cli import run
from bpcalc.network.parse import load_network
from tests.check_helpers import BATCH, EX1, check, write

# the examples/*.yaml that run as they are (MNIST's needs the files a user downloads)
HOMEWORK_EXAMPLES = sorted(
    str(p) for p in Path("examples").glob("*.yaml") if p.name != "mnist_784_128_10.yaml"
)


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
        (
            "conv.z: [[1, 2]]\n",
            "conv.z is a 1 x 1 matrix (1 row of 1) but this answer is a 1 x 2",
            ":1:9:",
        ),
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
