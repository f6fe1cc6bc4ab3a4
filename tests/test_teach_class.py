"""Grading a class in one command: right sheets, sheets with planted slips, a malformed
sheet, a sheet for the wrong variant and hostile sheets; one row per student and the class
summary, as table, CSV and JSON."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from bpcalc.teach import generate
from tests.helpers import cli, strict_json
from tests.test_teach_exercise import MLP, plant


@pytest.fixture(scope="module")
def exercise(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("class") / "ex"
    generate.generate(MLP, variants=3, seed=11, out_dir=str(out), pdf=False)
    return out


def _key(ex: Path, k: int) -> str:
    return (ex / f"variant-{k:02d}" / "key.yaml").read_text()


def _slipped(ex: Path, k: int, ref: str, slip: str) -> str:
    d = ex / f"variant-{k:02d}"
    return plant(d / "key.yaml", d / "network.yaml", ref, slip, 4)


@pytest.fixture(scope="module")
def sheets(exercise: Path, tmp_path_factory) -> Path:
    s = tmp_path_factory.mktemp("sheets")
    (s / "ada.yaml").write_text("student: Ada\n" + _key(exercise, 1))
    (s / "bob_v2.yaml").write_text(_key(exercise, 2).replace("variant: 2\n", ""))  # by name
    (s / "cy.yaml").write_text(
        "student: Cy\n" + _slipped(exercise, 1, "new.out.weights", "update_plus")
    )
    (s / "di.yaml").write_text(
        "student: Di\n" + _slipped(exercise, 3, "new.out.weights", "update_plus")
    )
    (s / "ed.yaml").write_text("student: Ed\n" + _slipped(exercise, 2, "loss", "log10"))
    (s / "fay.yaml").write_text("student: Fay\nvariant: 1\nhidden.z: [1, 2\n")  # malformed
    # variant 3's numbers handed in as variant 1
    (s / "gus.yaml").write_text(
        "student: Gus\n" + _key(exercise, 3).replace("variant: 3", "variant: 1")
    )
    return s


def test_a_class_is_graded_in_one_command_with_its_summary(exercise, sheets, capsys):
    code, out, err = cli(capsys, "check", str(exercise), str(sheets), "--format", "json")
    assert code == 1, err
    doc = strict_json(out)
    rows = {r["student"]: r for r in doc["students"]}
    assert set(rows) == {
        "Ada",
        "bob_v2",
        "Cy",
        "Di",
        "Ed",
        "fay",
        "Gus",
    }  # fay: unreadable, named by file
    s = doc["summary"]
    assert (s["sheets"], s["graded"], s["not_graded"], s["all_right"]) == (7, 6, 1, 2)
    n_asked = len(doc["asked"])
    assert rows["Ada"]["score"] == 1.0 and rows["Ada"]["variant"] == 1
    assert rows["bob_v2"]["score"] == 1.0 and rows["bob_v2"]["variant"] == 2
    # one slip at the last value: one value off, nothing carried
    assert rows["Cy"]["first_wrong"] == "new.out.weights"
    assert rows["Cy"]["wrong"] == 1 and rows["Cy"]["right"] == n_asked - 1
    assert {x["slip"] for x in rows["Cy"]["slips"]} == {"update_plus"}
    # a slip in the loss: the loss is wrong; nothing asked rests on it (the fused ∂L/∂z)
    assert rows["Ed"]["first_wrong"] == "loss"
    assert "log10" in {x["slip"] for x in rows["Ed"]["slips"]}
    assert rows["fay"]["status"] == "error" and "not valid YAML" in rows["fay"]["error"]
    assert rows["Gus"]["fits_variant"] == 3
    assert any("fit variant 3" in n for n in rows["Gus"]["notes"])
    values = s["values"]
    # right: Ada, Bob, Ed; wrong: Cy and Di (the slip), Gus (another variant's numbers)
    assert values["new.out.weights"] == {"correct": 3, "wrong": 3}
    assert values["loss"] == {"correct": 4, "carried_forward": 1, "wrong": 1}  # Gus: ↪
    slips = {x["slip"]: x for x in s["slips"]}
    assert slips["update_plus"]["students"] == 2
    assert slips["update_plus"]["values"] == ["new.out.weights"]
    assert s["first_wrong"]["new.out.weights"] == 2


def test_the_class_table_says_how_many_made_each_slip(exercise, sheets, capsys):
    code, out, err = cli(capsys, "check", str(exercise), str(sheets))
    assert code == 1
    assert "7 sheets" in out
    assert "2 of 6 added the step instead of subtracting it (update_plus" in out
    assert "fay.yaml" in out and "not valid YAML" in out
    assert "Ada" in out and "100 %" in out


def test_the_class_csv_has_one_row_per_student_and_a_column_per_value(exercise, sheets, capsys):
    code, out, _ = cli(capsys, "check", str(exercise), str(sheets), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 7
    cy = next(r for r in rows if r["student"] == "Cy")
    assert cy["new.out.weights"] == "✗" and cy["loss"] == "✓" and cy["slips"] == "update_plus"
    fay = next(r for r in rows if r["student"] == "fay")
    assert fay["status"] == "error"


def test_hostile_sheets_are_reported_and_never_stop_the_others(exercise, tmp_path, capsys):
    ok = tmp_path / "ok_v1.yaml"
    ok.write_text(_key(exercise, 1))
    (tmp_path / "big_v1.yaml").write_text("loss: 0.1\n" + "# x\n" * 70_000)
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcd", "bcde", strict=True)
    )
    (tmp_path / "bomb_v1.yaml").write_text("variant: 1\n" + bomb)
    (tmp_path / "tag_v1.yaml").write_text("loss: !!python/object/apply:os.system ['echo hi']\n")
    (tmp_path / "file_v1.yaml").write_text("loss: {file: /etc/passwd}\n")
    (tmp_path / "nine_v9.yaml").write_text(_key(exercise, 1).replace("variant: 1\n", ""))
    (tmp_path / "anon.yaml").write_text(_key(exercise, 2).replace("variant: 2\n", ""))
    code, out, err = cli(capsys, "check", str(exercise), str(tmp_path), "--format", "json")
    doc = strict_json(out)
    rows = {Path(r["sheet"]).name: r for r in doc["students"]}
    assert rows["ok_v1.yaml"]["score"] == 1.0
    assert "larger than 256 KiB" in rows["big_v1.yaml"]["error"]
    assert "more numbers than the network has values" in rows["bomb_v1.yaml"]["error"]
    assert "unsupported YAML tag" in rows["tag_v1.yaml"]["error"]
    assert "should be a number" in rows["file_v1.yaml"]["error"]
    assert "there is no variant 9" in rows["nine_v9.yaml"]["error"]
    assert "fit variant 2 best" in rows["anon.yaml"]["error"]
    assert doc["summary"]["graded"] == 1 and code == 1


def test_one_network_grades_many_sheets_without_variants(tmp_path, capsys):
    net = Path(__file__).parent.parent / "examples" / "example1.yaml"
    (tmp_path / "a.yaml").write_text("conv.z: [[4.5]]\nloss: 15.125\n")
    (tmp_path / "b.yaml").write_text("conv.z: [[4.4]]\nloss: 15.68\n")
    code, out, _ = cli(
        capsys, "check", str(net), str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--json"
    )
    doc = strict_json(out)
    assert doc["asked"] == ["conv.z", "loss"]
    a, b = doc["students"]
    assert a["score"] == 1.0 and b["first_wrong"] == "conv.z" and b["carried"] == ["loss"]
    assert doc["summary"]["values"]["loss"] == {"correct": 1, "carried_forward": 1}
    assert code == 1
