"""The bpcalc train command: the table, seeds, --json lines, test data, errors, Ctrl-C,
the progress bar and the help text."""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np

from bpcalc import training
from bpcalc.cli import run
from tests.helpers import strict_json, write_net
from tests.train_helpers import TINY

# --- the command --------------------------------------------------------------------------------


def test_train_prints_a_table_with_loss_accuracy_and_the_dtype(tmp_path, capsys):
    code = run(["train", str(write_net(tmp_path, TINY)), "--epochs", "4", "--batch-size", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "float32" in out
    assert "train loss" in out and "train acc." in out
    assert "batch 2 (2 updates per epoch), 4 epochs" in out
    assert "→" in out  # the loss curve's first → last
    assert err == ""  # no progress bar when stderr is not a terminal


def test_the_same_seed_gives_the_same_run_and_another_seed_another_order(tmp_path, capsys):
    net = str(write_net(tmp_path, TINY))

    def losses(*args: str) -> list[float]:
        assert run(["train", net, "-e", "3", "-b", "1", "--json", *args]) == 0
        return [strict_json(line)["train_loss"] for line in capsys.readouterr().out.splitlines()]

    assert losses("--seed", "4") == losses("--seed", "4")
    assert losses("--seed", "4") != losses("--seed", "5")
    # without shuffling the seed does not matter
    assert losses("--no-shuffle", "--seed", "4") == losses("--no-shuffle", "--seed", "5")


def test_train_json_writes_one_strict_json_line_per_epoch(tmp_path, capsys):
    code = run(
        [
            "train",
            str(write_net(tmp_path, TINY)),
            "-e",
            "3",
            "-b",
            "4",
            "--json",
            "--dtype",
            "float64",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    docs = [strict_json(line) for line in lines]
    assert [d["epoch"] for d in docs] == [1, 2, 3]
    assert docs[0]["dtype"] == "float64" and docs[0]["batch_size"] == 4
    assert docs[0]["test_loss"] is None
    assert 0.0 <= docs[-1]["train_accuracy"] <= 1.0


def test_train_needs_a_number_of_epochs(tmp_path, capsys):
    code = run(["train", str(write_net(tmp_path, TINY))])
    _, err = capsys.readouterr()
    assert code == 2
    assert "--epochs" in err


def test_the_train_section_gives_the_defaults_and_the_test_data(tmp_path, capsys):
    text = (
        TINY
        + """train:
  epochs: 2
  batch_size: 1
  shuffle: false
  test:
    inputs: [[2.0, 2.0], [-2.0, -1.0]]
    targets: [1, 0]
"""
    )
    code = run(["train", str(write_net(tmp_path, text)), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    docs = [strict_json(line) for line in out.splitlines()]
    assert len(docs) == 2 and docs[0]["batch_size"] == 1
    assert docs[-1]["test_accuracy"] in (0.0, 0.5, 1.0)  # two test samples
    assert docs[-1]["test_loss"] > 0


def test_test_data_from_an_npz_file(tmp_path, capsys):
    np.savez(
        tmp_path / "test.npz", inputs=np.array([[1.0, 1.0], [-1.0, -1.0]]), targets=np.array([1, 0])
    )
    code = run(
        [
            "train",
            str(write_net(tmp_path, TINY)),
            "-e",
            "1",
            "--json",
            "--test",
            str(tmp_path / "test.npz"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert strict_json(out.splitlines()[0])["test_accuracy"] is not None


def test_test_data_of_the_wrong_shape_is_a_spec_error(tmp_path, capsys):
    write_net(tmp_path, "inputs: [[1.0, 1.0, 1.0]]\ntargets: [1]\n", "test.yaml")
    code = run(
        ["train", str(write_net(tmp_path, TINY)), "-e", "1", "--test", str(tmp_path / "test.yaml")]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert "test.yaml:1:" in err and "shape (3,)" in err


def test_a_loss_that_overflows_stops_training_with_an_error_not_a_traceback(tmp_path, capsys):
    text = (
        TINY.replace("learning_rate: 0.5", "learning_rate: 1.0e+30")
        .replace("cross_entropy", "half_sse")
        .replace("activation: softmax", "activation: identity")
        .replace("targets: [1, 0, 1, 0]", "targets: [[1, 0], [0, 1], [1, 0], [0, 1]]")
    )
    code = run(["train", str(write_net(tmp_path, text)), "-e", "50"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "bpcalc: error:" in err and "smaller learning rate" in err
    assert "Traceback" not in err


def test_train_help_has_examples(capsys):
    assert run(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples:" in out and "--save" in out


def test_train_uses_the_top_level_batch_size_of_bpcalc_step(tmp_path, capsys):
    text = TINY + "mode: minibatch\nbatch_size: 2\n"
    assert run(["train", str(write_net(tmp_path, text)), "-e", "1", "--json"]) == 0
    assert strict_json(capsys.readouterr().out)["batch_size"] == 2


def test_ctrl_c_shows_the_finished_epochs_and_exits_130(tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    real = training.Trainer.step_with_output

    def interrupted_on_the_fifth_step(self, xb, yb):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(self, xb, yb)

    monkeypatch.setattr(training.Trainer, "step_with_output", interrupted_on_the_fifth_step)
    code = run(["train", str(write_net(tmp_path, TINY)), "-e", "10", "-b", "2"])
    out, err = capsys.readouterr()
    assert code == 130, err
    assert "interrupted after 2 of 10 epochs" in out  # 2 steps per epoch: epochs 1 and 2 finished


def test_train_keeps_one_copy_of_file_data_in_its_dtype_not_a_float64_one(tmp_path, capsys):
    n = 20_000  # 20000 x 100 pixels: 2 MB as uint8, 8 MB as float32, 16 MB as float64
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x=rng.integers(0, 256, (n, 100), dtype=np.uint8),
        y=rng.integers(0, 3, n),
    )
    text = (
        "inputs: {file: d.npz, key: x, scale: 255}\ntargets: {file: d.npz, key: y}\n"
        "layers:\n  - {name: out, type: dense, units: 3, init: {type: normal, std: 0.1, seed: 5},"
        " activation: softmax}\nloss: cross_entropy\nlearning_rate: 0.1\n"
    )
    net = write_net(tmp_path, text)
    tracemalloc.start()
    try:
        code = run(["train", str(net), "-e", "1", "-b", "500", "--json"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0, capsys.readouterr().err
    # the uint8 file and one float32 array (10 MB), never the float64 one (16 MB) on top
    assert peak < 14 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_json_lines_go_to_stdout_while_the_progress_bar_is_on_the_terminal(
    tmp_path, capsys, monkeypatch
):
    # stderr a terminal (the bar shows there), stdout a file: `bpcalc train --json > log`
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code = run(["train", str(write_net(tmp_path, TINY)), "-e", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [strict_json(line)["epoch"] for line in out.splitlines()] == [1, 2]
    assert "epoch 2/2: loss" in err  # the bar's line per epoch, on stderr


def test_json_on_a_terminal_shows_no_bar_between_its_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code = run(["train", str(write_net(tmp_path, TINY)), "-e", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [strict_json(line)["epoch"] for line in out.splitlines()] == [1, 2]
    assert err == ""
