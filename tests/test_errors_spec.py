"""Mistakes in the network are one located message with exit 2: unknown, missing and
misspelt keys, values of the wrong type, shapes that do not fit and values out of range."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.errors_helpers import (
    CE,
    CONV,
    DENSE,
    POOL,
    TWO,
    Case,
    assert_one_located_error,
    sub,
)

CASES = [
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
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_located_message_with_exit_code_2(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_one_located_error(case, tmp_path, capsys, monkeypatch)
