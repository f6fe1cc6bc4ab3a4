"""The shipped training examples: the digits MLP and CNN reach 95 % test accuracy, and
the MNIST example reads the IDX files a user downloads."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bpcalc.cli import run
from bpcalc.network.datafiles import write_idx
from bpcalc.network.parse import load_network
from tests.helpers import strict_json

ROOT = Path(__file__).resolve().parent.parent


EXAMPLES = ROOT / "examples"


# --- the shipped examples -------------------------------------------------------------------------


def test_digits_mlp_reaches_95_percent_test_accuracy(capsys):
    code = run(["train", str(EXAMPLES / "digits" / "mlp.yaml"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    last = strict_json(out.splitlines()[-1])
    assert last["epoch"] == 20 and last["samples"] == 1497
    assert last["test_accuracy"] >= 0.95


def test_digits_cnn_reaches_95_percent_test_accuracy_too(capsys):
    code = run(["train", str(EXAMPLES / "digits" / "cnn.yaml"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert strict_json(out.splitlines()[-1])["test_accuracy"] >= 0.95


def test_the_mnist_example_reads_idx_files_the_user_downloads(tmp_path, capsys):
    shutil.copy(EXAMPLES / "mnist_784_128_10.yaml", tmp_path)
    (tmp_path / "mnist").mkdir()
    rng = np.random.default_rng(0)
    for prefix, n, gz in (("train", 8, True), ("t10k", 4, False)):
        images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 255, 0
        labels = (np.arange(n) % 10).astype(np.uint8)
        # the YAML names the .gz files; unzipped ones are found too
        suffix = ".gz" if gz else ""
        write_idx(tmp_path / "mnist" / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=gz)
        write_idx(tmp_path / "mnist" / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=gz)
    spec = load_network(str(tmp_path / "mnist_784_128_10.yaml"))
    assert spec.inputs.shape == (8, 784)
    # x/255 then (x − 0.5)/0.5: 255 -> 1, 0 -> -1
    assert spec.inputs[0, 0] == 1.0 and spec.inputs[0, 1] == -1.0
    assert spec.target_classes.tolist() == list(range(8))
    hidden, output = spec.layers
    assert hidden.weights.shape == (128, 784) and output.weights.shape == (10, 128)
    assert hidden.weights.std() == pytest.approx(0.01, rel=0.02)
    assert not hidden.bias.any() and not output.bias.any()
    assert spec.optimizer.lr == 0.1 and spec.train.batch_size == 64 and spec.train.epochs == 20
    assert spec.train.test.inputs.shape == (4, 784)
    code = run(["train", str(tmp_path / "mnist_784_128_10.yaml"), "-e", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert strict_json(out)["test_accuracy"] is not None
