"""Shared by the bad-input tests: the networks the rows of the tables change, a row (Case),
and the check every row gets.

Each row is a network file (or a file setup) and what the error must say: the location
(line:column, 1-based, counted by hand from the text in the row) and key words."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bpcalc.cli import run

# Line numbers of DENSE:       1 input, 2 target, 3 layers, 4 "- name: fc", 5 type,
# 6 weights (the "[[" at column 14, the first number at column 16, the second at 21),
# 7 loss (value at column 7), 8 learning_rate (value at column 16).
DENSE = """\
input: [1, 2]
target: [0.5]
layers:
  - name: fc
    type: dense
    weights: [[0.1, 0.2]]
loss: half_sse
learning_rate: 0.1
"""

# fc1 maps 2 inputs to 3 outputs; fc2 (line 7) has its weights at 9:14.
TWO = """\
input: [1, 2]
target: [0.5]
layers:
  - name: fc1
    type: dense
    weights: [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
  - name: fc2
    type: dense
    weights: [[0.1, 0.2]]
loss: half_sse
learning_rate: 0.1
"""

# A 3 x 3 image and a 2 x 2 kernel (its value at 8:13): a 2 x 2 output.
CONV = """\
input: [[1, 2, 3],
        [4, 5, 6],
        [7, 8, 9]]
target: [[1, 2], [3, 4]]
layers:
  - name: conv
    type: conv2d
    kernel: [[1, 0], [0, 1]]
loss: half_sse
learning_rate: 0.1
"""

# A 3 x 3 image under 2 x 2 windows with stride 2 (the stride's value at 7:13): 1 left over.
POOL = """\
input: [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
target: [[1]]
layers:
  - name: pool
    type: maxpool2d
    size: 2
    stride: 2
loss: half_sse
learning_rate: 0.1
"""

# Two classes from logits ±1000; the target (2:9) is the class index 1.
CE = """\
input: [1]
target: 1
layers:
  - name: fc
    type: dense
    weights: [[1000], [-1000]]
    activation: softmax
loss: cross_entropy
learning_rate: 0.1
"""


@dataclass(frozen=True)
class Case:
    id: str
    text: str | bytes | None  # the file's content; None: see `path`
    loc: str  # "line:column" of the error
    words: tuple[str, ...]  # each must appear in the message
    args: tuple[str, ...] = ()
    path: str = "net.yaml"  # "-" reads `text` from standard input
    absent: tuple[str, ...] = ()  # must not appear in the message


def sub(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_located_error(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bpcalc step` on the case's file: exit 2, nothing on stdout, no traceback, and one line
    on stderr that starts with the file:line:column of the row and has each of its words."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    if case.path == "-":
        raw = case.text.encode() if isinstance(case.text, str) else case.text
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
        shown = "<stdin>"
    elif case.text is not None:
        data = case.text.encode() if isinstance(case.text, str) else case.text
        (tmp_path / case.path).write_bytes(data)
        shown = case.path
    else:
        shown = case.path
    code, out, err = run_cli(["step", case.path, *case.args], capsys)
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in out + err
    assert err.startswith(f"bpcalc: error: {shown}:{case.loc}: "), err
    assert len(err.strip().splitlines()) == 1, err
    for word in case.words:
        assert word in err, f"{word!r} not in {err!r}"
    for word in case.absent:
        assert word not in err, f"{word!r} in {err!r}"
    assert not (tmp_path / "PWNED").exists()
