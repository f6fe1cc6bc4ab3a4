"""Reading the YAML never crashes bpcalc: a file that is not YAML, not UTF-8, empty,
missing or hostile (aliases, tags, billion laughs) is one located message with exit 2.
Also what the reader accepts: standard input, 1e-1 as a number, a date as text."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from bpcalc.network import yaml_source as load
from tests.errors_helpers import (
    DENSE,
    Case,
    assert_one_located_error,
    run_cli,
    sub,
)


def _levels(n: int) -> str:
    """The "billion laughs": level k is a list of 9 aliases of level k - 1."""
    names = "abcdefghi"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip(names, names[1:n], strict=False):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


CASES = [
    # --- the file itself ------------------------------------------------------------------
    Case("not YAML", "input: [1, 2\nlayers: x\n", "2:7", ("not valid YAML", "','", "']'")),
    Case("empty file", "", "1:1", ("empty", "expected a YAML mapping")),
    Case("only a comment", "# nothing here\n", "1:1", ("empty",)),
    Case("a list, not a mapping", "- 1\n- 2\n", "1:1", ("should be a mapping", "found a list")),
    Case(
        "not UTF-8 (Latin-1 é)",
        b"name: caf\xe9\ninput: [1]\n",
        "1:10",
        ("not UTF-8", "0xe9", "save it as UTF-8"),
    ),
    Case("UTF-16", "input: [1]\n".encode("utf-16"), "1:1", ("not UTF-8",)),
    Case("a NUL byte", b"input: [1]\x00\n", "1:11", ("control character", "binary")),
    Case("a missing file", None, "1:1", ("no such file",), path="missing.yaml"),
    Case("a directory", None, "1:1", ("directory", "expected a YAML file"), path="adir"),
    Case(
        "a file name too long for the system",
        None,
        "1:1",
        ("cannot read the file", "File name too long"),
        path="n" * 300,
    ),
    Case("bad YAML on standard input", "input: [1\n", "2:1", ("not valid YAML",), path="-"),
    Case("two documents", "input: [1]\n---\ninput: [2]\n", "2:1", ("more than one YAML document",)),
    Case(
        "a tab in the indentation",
        "layers:\n\t- type: dense\n",
        "2:1",
        ("not valid YAML", "tab", "spaces"),
    ),
    # --- hostile YAML ---------------------------------------------------------------------
    Case(
        "a billion laughs",
        _levels(9),
        # before g: 672,604 values; g's list is one more and each *f adds 597,871, so the
        # 8th alias passes 5,000,000; it stands at column 8 + 3·7 = 29.
        "7:29",
        ("expands to more than 5,000,000 values", "alias bomb"),
    ),
    Case(
        "100,000 nested lists",
        "input: " + "[" * 100_000 + "1" + "]" * 100_000 + "\n",
        # the mapping is level 1, the bracket at column 8 level 2: level 65 is at column 71
        "1:71",
        ("nested deeper than 64 levels",),
    ),
    Case(
        "deeply nested block mappings",
        "".join("  " * i + "a:\n" for i in range(100)),
        "65:129",  # level 65 is the mapping starting on line 65, indented 128 spaces
        ("nested deeper than 64 levels",),
    ),
    Case(
        "a tag that would run a command",
        "input: !!python/object/apply:os.system ['touch PWNED']\n",
        "1:8",
        ("unsupported YAML tag '!!python/object/apply:os.system'", "plain numbers"),
    ),
    Case(
        "a tag that would import a name",
        "input: !!python/name:os.system\n",
        "1:8",
        ("unsupported YAML tag '!!python/name:os.system'",),
    ),
    Case("a set", "input: !!set {a, b}\n", "1:8", ("unsupported YAML tag '!!set'",)),
    Case("binary data", "input: !!binary aGVsbG8=\n", "1:8", ("unsupported YAML tag '!!binary'",)),
    Case("a merge key", "base: &b {x: 1}\nother:\n  <<: *b\n", "3:3", ("merge keys",)),
    Case("an undefined alias", "input: *nothing\n", "1:8", ("alias *nothing", "no anchor")),
    Case("a self-referencing alias", "input: &a [1, *a]\n", "1:15", ("alias *a", "it is in")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_located_message_with_exit_code_2(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_one_located_error(case, tmp_path, capsys, monkeypatch)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:  # valid YAML, one byte over the limit
        fh.write(b"name: x\n#")
        fh.write(b"x" * (load.MAX_BYTES - 9))
        fh.write(b"\n")
    assert path.stat().st_size == load.MAX_BYTES + 1
    code, out, err = run_cli(["step", str(path)], capsys)
    assert code == 2
    assert err.startswith(f"bpcalc: error: {path}:1:1: the file is larger than 32 MiB"), err
    assert "Traceback" not in out + err


def test_standard_input_works_like_a_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = Path("examples/example1.yaml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    code, out, err = run_cli(["step", "-", "--json"], capsys)
    assert code == 0, err
    # example1: O = 1·0.1 + 2·0.2 + 3·0.3 + 4·0.4 + 1.5 = 4.5; L = ½(4.5 − 10)² = 15.125
    assert json.loads(out)["steps"][0]["values"]["loss"] == 15.125


def test_scientific_notation_without_a_dot_is_a_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # YAML 1.1 (PyYAML) reads 1e-1 as text; bpcalc reads it as YAML 1.2 does: 0.1.
    path = tmp_path / "net.yaml"
    text = sub(DENSE, "learning_rate: 0.1", "learning_rate: 1e-1")
    path.write_text(sub(text, "target: [0.5]", "target: [1.5]"))
    code, out, err = run_cli(["step", str(path), "--json"], capsys)
    assert code == 0, err
    values = json.loads(out)["steps"][0]["values"]
    # z = 0.1·1 + 0.2·2 = 0.5, ∂L/∂z = z − y = −1, ∂L/∂W = [−1, −2];
    # W − 0.1·∂L/∂W = [0.1 + 0.1, 0.2 + 0.2] = [0.2, 0.4]
    assert values["new.fc.weights"][0] == pytest.approx([0.2, 0.4], abs=1e-15)


def test_a_plain_date_is_text_not_a_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "net.yaml"
    path.write_text("name: 2024-05-01\n" + DENSE)
    code, out, err = run_cli(["step", str(path), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["network"] == "2024-05-01"


def test_the_loader_can_keep_each_scalar_as_written() -> None:
    doc = load.load_yaml_text("a: [[0.120, 1e-3], [2, x]]\nb: 0.50\n", "s.yaml", keep_text=True)
    assert doc.data == {"a": [[0.12, 0.001], [2, "x"]], "b": 0.5}
    assert doc.scalar_text is not None
    assert doc.scalar_text[("a", 0, 0)] == "0.120"
    assert doc.scalar_text[("a", 1, 1)] == "x"
    assert doc.scalar_text[("b",)] == "0.50"
    assert str(doc.locations[("a", 1, 1)]) == "s.yaml:1:24"
