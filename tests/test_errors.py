"""Bad input never crashes bpcalc: one line on stderr naming file:line:column, what was found
and what was expected, exit code 2, and no traceback.

Each row of CASES is a network file (or a file setup) and what the error must say: the
location (line:column, 1-based, counted by hand from the text in the row) and key words.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bpcalc.cli import app, run
from bpcalc.network import yaml_source as load

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


def _levels(n: int) -> str:
    """The "billion laughs": level k is a list of 9 aliases of level k - 1."""
    names = "abcdefghi"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip(names, names[1:n], strict=False):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


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
    # --- keys -----------------------------------------------------------------------------
    Case(
        "a duplicate top-level key",
        DENSE + "learning_rate: 0.2\n",
        "9:1",
        ("duplicate key 'learning_rate'", "already given at line 8"),
    ),
    Case(
        "a duplicate key in a layer",
        sub(DENSE, "    type: dense\n", "    type: dense\n    type: dense\n"),
        "6:5",
        ("duplicate key 'type'", "line 5"),
    ),
    Case(
        "learning-rate for learning_rate",
        sub(DENSE, "learning_rate", "learning-rate"),
        "8:1",
        ("unknown key 'learning-rate'", "did you mean 'learning_rate'"),
    ),
    Case(
        "kernal for kernel",
        sub(CONV, "kernel:", "kernal:"),
        "8:5",
        ("unknown key 'kernal'", "did you mean 'kernel'"),
    ),
    Case(
        "an unknown key with no near miss",
        DENSE + "colour: blue\n",
        "9:1",
        ("unknown key 'colour'", "expected one of", "learning_rate"),
    ),
    Case(
        "no loss",
        sub(DENSE, "loss: half_sse\n", ""),
        "1:1",
        ("missing the required key 'loss'",),
    ),
    Case(
        "no weights in a dense layer",
        sub(DENSE, "    weights: [[0.1, 0.2]]\n", ""),
        "4:5",
        ("dense layer 'fc' needs weights:", "units:"),
    ),
    Case(
        "no learning rate",
        sub(DENSE, "learning_rate: 0.1\n", ""),
        "1:1",
        ("missing its learning_rate",),
    ),
    Case(
        "a layer without a type",
        sub(DENSE, "    type: dense\n", ""),
        "4:5",
        ("layer 0 has no type", "dense"),
    ),
    Case(
        "a misspelt layer type",
        sub(DENSE, "type: dense", "type: dence"),
        "5:11",
        ("layer 0's type", "'dence'", "did you mean 'dense'"),
    ),
    # --- value types ----------------------------------------------------------------------
    Case(
        "text for the learning rate",
        sub(DENSE, "learning_rate: 0.1", "learning_rate: fast"),
        "8:16",
        ("learning_rate should be a number", "the text 'fast'"),
    ),
    Case(
        "a quoted number",
        sub(DENSE, "learning_rate: 0.1", 'learning_rate: "0.1"'),
        "8:16",
        ("should be a number", "the text '0.1'"),
    ),
    Case(
        "a list for the loss",
        sub(DENSE, "loss: half_sse", "loss: [half_sse]"),
        "7:7",
        ("loss should be one of", "found a list"),
    ),
    Case(
        "a mapping for layers",
        sub(DENSE, "layers:\n  - name: fc", "layers:\n    name: fc"),
        "4:5",
        ("layers should be a non-empty list", "found a mapping"),
    ),
    Case(
        "a ragged matrix",
        sub(DENSE, "[[0.1, 0.2]]", "[[0.1, 0.2], [0.3]]"),
        "6:27",
        ("fc.weights is ragged", "row 1 has 1 numbers", "row 0 has 2"),
    ),
    Case(
        "text in a matrix",
        sub(DENSE, "[[0.1, 0.2]]", "[[0.1, x]]"),
        "6:21",
        ("every element of fc.weights should be a number", "the text 'x'"),
    ),
    Case(
        "a boolean in a matrix",
        sub(DENSE, "[[0.1, 0.2]]", "[[0.1, yes]]"),
        "6:21",
        ("should be a number", "a boolean (true)"),
    ),
    Case(
        "null in a matrix",
        sub(DENSE, "[[0.1, 0.2]]", "[[0.1, ~]]"),
        "6:21",
        ("should be a number", "nothing (null)"),
    ),
    Case(
        ".nan in the input",
        sub(DENSE, "input: [1, 2]", "input: [1, .nan]"),
        "1:12",
        ("every element of input should be a finite number", "nan"),
    ),
    Case(
        ".inf in the weights",
        sub(DENSE, "[[0.1, 0.2]]", "[[0.1, .inf]]"),
        "6:21",
        ("should be a finite number", "inf"),
    ),
    Case(
        "-.inf in the target",
        sub(DENSE, "target: [0.5]", "target: [-.inf]"),
        "2:10",
        ("should be a finite number", "-inf"),
    ),
    Case(
        "a number beyond float64",
        sub(DENSE, "[[0.1, 0.2]]", "[[0.1, 1.0e999]]"),
        "6:21",
        ("should be a finite number", "inf"),
    ),
    Case(
        "a whole number beyond float64",
        sub(DENSE, "[[0.1, 0.2]]", "[[0.1, 1" + "0" * 330 + "]]"),
        "6:21",
        ("should be a number up to about 1.8e308",),
    ),
    Case(
        "a whole number too long for Python to read",
        sub(DENSE, "[[0.1, 0.2]]", "[[0.1, 1" + "0" * 5000 + "]]"),
        "6:21",
        ("should be a finite number",),
    ),
    # --- shapes ---------------------------------------------------------------------------
    Case(
        "weights that do not fit the input",
        sub(DENSE, "[[0.1, 0.2]]", "[[0.1, 0.2, 0.3]]"),
        "6:14",
        ("dense layer 'fc'", "1 x 3", "expects 3 inputs", "the input gives 2", "(2,)"),
        absent=("transposed",),
    ),
    Case(
        "weights that do not fit the previous layer",
        TWO,
        "9:14",
        ("dense layer 'fc2'", "1 x 2", "expects 2 inputs", "layer 'fc1' gives 3", "(3,)"),
        absent=("transposed",),
    ),
    Case(
        "weights whose transpose would fit",
        sub(TWO, "weights: [[0.1, 0.2]]\n", "weights: [[0.1], [0.2], [0.3]]\n"),
        "9:14",
        ("'fc2'", "3 x 1", "layer 'fc1' gives 3", "transposed matrix (1 x 3) would fit"),
    ),
    Case(
        "a kernel larger than the padded input",
        sub(CONV, "[[1, 0], [0, 1]]", "[[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]"),
        "8:13",
        ("conv2d layer 'conv'", "kernel (4 x 4) is larger than the padded input (3 x 3)"),
    ),
    Case(
        "a stride that does not tile a pooling window",
        POOL,
        "7:13",
        ("maxpool2d layer 'pool'", "windows of 2 with stride 2", "height of 3", "1 left over"),
    ),
    Case(
        "a target of the wrong shape",
        sub(DENSE, "target: [0.5]", "target: [0.5, 0.5]"),
        "2:9",
        ("the target has 2 values", "output of 'fc' has 1"),
    ),
    Case(
        "a class index beyond the output",
        sub(CE, "target: 1", "target: 2"),
        "2:9",
        ("class index 2 does not fit", "2 classes (0 to 1)"),
    ),
    Case(
        "a one-hot target that does not sum to 1",
        sub(CE, "target: 1", "target: [0.5, 0.6]"),
        "2:9",
        ("one-hot", "sums to 1.1"),
    ),
    Case(
        "cross-entropy on outputs that are not probabilities",
        sub(CE, "activation: softmax", "activation: relu"),
        "8:7",
        ("cross_entropy needs probabilities", "'fc' outputs relu", "softmax"),
    ),
    Case(
        "binary cross-entropy on outputs that are not probabilities",
        sub(
            sub(CE, "loss: cross_entropy", "loss: binary_cross_entropy"),
            "target: 1",
            "target: [0, 1]",
        ),
        "8:7",
        ("binary_cross_entropy needs probabilities", "'fc' outputs softmax", "sigmoid"),
    ),
    Case(
        "inputs and targets of different lengths",
        sub(
            sub(DENSE, "input: [1, 2]", "inputs: [[1, 2], [3, 4]]"),
            "target: [0.5]",
            "targets: [[0.5]]",
        ),
        "2:10",
        ("2 inputs but 1 targets",),
    ),
    # --- ranges ---------------------------------------------------------------------------
    Case(
        "a zero learning rate",
        sub(DENSE, "learning_rate: 0.1", "learning_rate: 0"),
        "8:16",
        ("learning_rate should be greater than 0", "found 0"),
    ),
    Case(
        "a negative learning rate",
        sub(DENSE, "learning_rate: 0.1", "learning_rate: -0.5"),
        "8:16",
        ("greater than 0", "-0.5"),
    ),
    Case(
        "a negative lr in the optimizer",
        sub(DENSE, "learning_rate: 0.1", "optimizer: {type: sgd, lr: -1}"),
        "8:28",
        ("lr should be greater than 0", "found -1"),
    ),
    Case(
        "a zero stride",
        sub(POOL, "stride: 2", "stride: 0"),
        "7:13",
        ("stride should be a whole number of at least 1", "found 0"),
    ),
    Case(
        "a dropout p of 1",
        sub(DENSE, "loss:", "  - name: drop\n    type: dropout\n    p: 1\nloss:"),
        "9:8",
        ("dropout layer 'drop'", "at least 0 and less than 1", "found 1"),
    ),
    Case(
        "a negative dropout p",
        sub(DENSE, "loss:", "  - name: drop\n    type: dropout\n    p: -0.1\nloss:"),
        "9:8",
        ("dropout layer 'drop'", "at least 0 and less than 1", "found -0.1"),
    ),
    Case(
        "a batch size larger than the data",
        sub(
            sub(DENSE, "input: [1, 2]", "inputs: [[1, 2], [3, 4]]"),
            "target: [0.5]",
            "targets: [[0.5], [1]]\nbatch_size: 3",
        ),
        "3:13",
        ("batch_size 3 is larger than the data", "2 samples", "at most 2"),
    ),
    Case(
        "a data file name with a newline in it",
        sub(DENSE, "input: [1, 2]", 'inputs: {file: "d\\nata.npz"}'),
        "1:16",  # the file name, after 'inputs: {file: '
        ("no such data file", "d\\nata.npz"),
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
    # --- numbers that overflow during the run ---------------------------------------------
    Case(
        "an input that overflows the first layer",
        sub(DENSE, "input: [1, 2]", "input: [1.0e200, 1]").replace("0.1, 0.2", "1.0e200, 1"),
        "4:5",  # the layer fc, whose z = W·x + b is 1e400
        ("fc.z[0] became inf", "z = W·x + b", "overflowed"),
    ),
    Case(
        "an image that overflows a convolution",
        sub(CONV, "[[1, 0], [0, 1]]", "[[1.0e200, 0], [0, 1]]").replace(
            "[1, 2, 3]", "[1.0e200, 2, 3]"
        ),
        "6:5",  # the layer conv: z[0,0] = 1e200·1e200 + 5 = inf, shown as a 2 x 2 image
        ("conv.z[0,0] became inf", "z = x ⋆ K + b"),
    ),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_located_message_with_exit_code_2(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
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
    code, out, err = _run(["step", case.path, *case.args], capsys)
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


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:  # valid YAML, one byte over the limit
        fh.write(b"name: x\n#")
        fh.write(b"x" * (load.MAX_BYTES - 9))
        fh.write(b"\n")
    assert path.stat().st_size == load.MAX_BYTES + 1
    code, out, err = _run(["step", str(path)], capsys)
    assert code == 2
    assert err.startswith(f"bpcalc: error: {path}:1:1: the file is larger than 32 MiB"), err
    assert "Traceback" not in out + err


def test_standard_input_works_like_a_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = Path("examples/example1.yaml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    code, out, err = _run(["step", "-", "--json"], capsys)
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
    code, out, err = _run(["step", str(path), "--json"], capsys)
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
    code, out, err = _run(["step", str(path), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["network"] == "2024-05-01"


@pytest.mark.parametrize(
    "args, words",
    [
        (["step", "examples/example1.yaml", "--decimals", "99"], ("--decimals",)),
        (["step", "examples/example1.yaml", "--bogus"], ("--bogus",)),
        (["step", "examples/example1.yaml", "--steps", "0"], ("--steps",)),
        (["step"], ("NETWORK",)),
        (["train", "examples/example1.yaml", "-e", "1", "--lr", "inf"], ("--lr", "finite")),
        (["new", "mlp", "--sizes", "2,1", "--lr", "0"], ("--lr", "greater than 0")),
        (
            ["step", "examples/gd_variants.yaml", "--batch-size", "5"],
            ("--batch-size 5 is larger than the data", "4 samples"),
        ),
        (["no-such-command"], ("no-such-command",)),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(
    args: list[str], words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(args, capsys)
    assert code == 2, err
    assert "Traceback" not in out + err
    for word in words:
        assert word.lower() in err.lower(), err


def _commands() -> list[str]:
    return [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]


@pytest.mark.parametrize("command", _commands())
def test_every_command_reports_a_missing_file_without_a_traceback(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run([command, "missing.yaml"], capsys)
    assert code in (0, 2), err
    assert "Traceback" not in out + err
    if code == 2:
        assert err.startswith("bpcalc: error: ") or "Usage" in err, err


@pytest.mark.parametrize("command", _commands())
def test_every_command_rejects_an_unknown_option_with_exit_2(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run([command, "--no-such-option"], capsys)
    assert code == 2, err
    assert "Traceback" not in out + err


def test_a_bug_is_one_line_and_exit_70_unless_debugging(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpcalc import engine

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(engine, "run", broken)
    monkeypatch.delenv("BPCALC_DEBUG", raising=False)
    code, out, err = _run(["step", "examples/example1.yaml"], capsys)
    assert code == 70
    assert "Traceback" not in out + err
    assert err.startswith("bpcalc: internal error (ZeroDivisionError: division by zero)"), err
    assert "please report" in err
    monkeypatch.setenv("BPCALC_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run(["step", "examples/example1.yaml"])


def test_numpy_warnings_do_not_reach_the_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1e200 · 1e200 overflows inside numpy: the user sees bpcalc's message, not numpy's.
    path = tmp_path / "net.yaml"
    path.write_text(
        sub(DENSE, "input: [1, 2]", "input: [1.0e200, 1]").replace("0.1, 0.2", "1.0e200, 1")
    )
    code, out, err = _run(["step", str(path)], capsys)
    assert code == 2
    assert "RuntimeWarning" not in err
    assert err.count("\n") == 1, err


def test_debug_mode_still_reports_input_errors_by_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpcalc.errors import SpecError

    path = tmp_path / "net.yaml"
    path.write_text("")
    monkeypatch.setenv("BPCALC_DEBUG", "1")
    with pytest.raises(SpecError):
        run(["step", str(path)])


def test_the_loader_can_keep_each_scalar_as_written() -> None:
    doc = load.load_yaml_text("a: [[0.120, 1e-3], [2, x]]\nb: 0.50\n", "s.yaml", keep_text=True)
    assert doc.data == {"a": [[0.12, 0.001], [2, "x"]], "b": 0.5}
    assert doc.scalar_text is not None
    assert doc.scalar_text[("a", 0, 0)] == "0.120"
    assert doc.scalar_text[("a", 1, 1)] == "x"
    assert doc.scalar_text[("b",)] == "0.50"
    assert str(doc.locations[("a", 1, 1)]) == "s.yaml:1:24"


@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_a_reader_that_leaves_early_is_not_an_error(fmt: list[str]) -> None:
    # `bpcalc step net.yaml --steps 300 | head -c 10`: exit 0, nothing on stderr
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-c", "from bpcalc.cli import main; main()", "step"]
        + ["examples/example2.yaml", "--steps", "300", *fmt],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(10)) == 10
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 0
    assert err == b""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_a_full_disk_is_an_error_message_not_an_internal_error(fmt: list[str]) -> None:
    import subprocess

    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-c", "from bpcalc.cli import main; main()", "step"]
            + ["examples/example2.yaml", *fmt],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert proc.returncode == 2
    assert proc.stderr == "bpcalc: error: No space left on device\n"


def test_running_out_of_memory_is_an_error_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpcalc import engine

    def huge(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(engine, "run", huge)
    code, out, err = _run(["step", "examples/example1.yaml"], capsys)
    assert code == 2
    assert err == "bpcalc: error: out of memory: the network or its data is too large\n"


def test_messages_are_one_line_of_printable_text() -> None:
    from bpcalc.cli import one_line

    assert one_line("plain: é, ∂L/∂z, 漢字") == "plain: é, ∂L/∂z, 漢字"
    assert one_line("a\nb\tc\x1b[31md\u202e") == "a\\nb\\tc\\x1b[31md\\u202e"
