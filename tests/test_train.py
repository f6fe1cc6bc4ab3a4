"""bpcalc train: the Trainer's maths, the epoch loop, --save, --force, --json, the examples."""

from __future__ import annotations

import json
import shutil
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from bpcalc import engine, training
from bpcalc.cli import run
from bpcalc.data import write_idx
from bpcalc.spec.schema import load_network
from bpcalc.spec.write import network_yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Four points, two classes: class 1 when x0 + x1 > 0.
TINY = """name: tiny
inputs: [[1.0, 0.5], [-1.0, -0.5], [0.5, 1.0], [-0.5, -1.0]]
targets: [1, 0, 1, 0]
layers:
  - {name: hidden, type: dense, units: 3, init: {type: normal, std: 0.5, seed: 0}, activation: tanh}
  - {name: out, type: dense, units: 2, init: {type: normal, std: 0.5, seed: 1}, activation: softmax}
loss: cross_entropy
learning_rate: 0.5
"""


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def strict_json(line: str) -> dict:
    def no_constant(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(line, parse_constant=no_constant)


# --- the Trainer --------------------------------------------------------------------------------


def test_a_train_step_makes_the_same_update_as_bpcalc_step(tmp_path):
    spec = load_network(str(write(tmp_path, TINY)))
    trainer = training.Trainer(spec, np.float64)
    loss = trainer.train_step(spec.inputs, spec.targets)
    trace = engine.run(spec, steps=1)
    st = trace.steps[0]
    # the same ops in the same order: equal to the last bit, not just close
    assert loss == float(st["loss"])
    for layer in ("hidden", "out"):
        for p in ("weights", "bias"):
            np.testing.assert_array_equal(
                trainer.params[layer][p],
                st[f"new.{layer}.{p}"].reshape(trainer.params[layer][p].shape),
            )


def test_fit_without_shuffling_in_one_batch_equals_several_bpcalc_steps(tmp_path):
    spec = load_network(str(write(tmp_path, TINY)))
    trainer = training.Trainer(spec, np.float64)
    results = training.fit(
        trainer, spec.inputs, spec.targets, epochs=3, batch_size=4, shuffle=False
    )
    trace = engine.run(spec, steps=3)
    # epoch k's training loss is the loss before its update, as step k's `loss`
    assert [r.train_loss for r in results] == pytest.approx(
        [float(s["loss"]) for s in trace.steps], rel=1e-12
    )
    np.testing.assert_allclose(
        trainer.params["out"]["weights"], trace.steps[-1]["new.out.weights"], rtol=1e-12
    )


def test_training_decreases_the_loss_and_learns_the_tiny_problem(tmp_path):
    spec = load_network(str(write(tmp_path, TINY)))
    trainer = training.Trainer(spec, np.float32)
    before, _ = trainer.evaluate(spec.inputs, spec.targets)
    training.fit(trainer, spec.inputs, spec.targets, epochs=100, batch_size=2, seed=3)
    after, acc = trainer.evaluate(spec.inputs, spec.targets)
    assert after < before / 10
    assert acc == 1.0
    assert trainer.params["out"]["weights"].dtype == np.float32


def test_frozen_parameters_stay_as_they_were(tmp_path):
    spec = load_network(
        str(write(tmp_path, TINY.replace("activation: tanh}", "activation: tanh, freeze: all}")))
    )
    trainer = training.Trainer(spec, np.float64)
    start = trainer.params["hidden"]["weights"].copy()
    training.fit(trainer, spec.inputs, spec.targets, epochs=3, batch_size=2)
    np.testing.assert_array_equal(trainer.params["hidden"]["weights"], start)


def test_accuracy_counts_argmax_for_classes_and_threshold_for_sigmoid():
    out = np.array([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]])
    y = np.array([[0, 1], [0, 1], [0, 1]])
    assert training.count_correct("argmax", out, y) == 2  # rows 0 and 2
    p = np.array([[0.7], [0.2], [0.5]])
    t = np.array([[1], [1], [0]])
    assert (
        training.count_correct("threshold", p, t) == 1
    )  # 0.7 -> 1 right; 0.2 -> 0 wrong; 0.5 -> 1 wrong


def test_memory_does_not_grow_with_the_number_of_epochs(tmp_path):
    spec = load_network(str(write(tmp_path, TINY)))
    trainer = training.Trainer(spec, np.float32)
    x, y = spec.inputs.astype(np.float32), spec.targets.astype(np.float32)
    training.fit(trainer, x, y, epochs=5, batch_size=1)
    tracemalloc.start()
    training.fit(trainer, x, y, epochs=5, batch_size=1)
    five = tracemalloc.get_traced_memory()[0]
    training.fit(trainer, x, y, epochs=200, batch_size=1)
    two_hundred = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # 195 more epochs (780 more steps) leave nothing behind but their results' list, freed on return
    assert two_hundred - five < 16_384


# --- the command --------------------------------------------------------------------------------


def test_train_prints_a_table_with_loss_accuracy_and_the_dtype(tmp_path, capsys):
    code = run(["train", str(write(tmp_path, TINY)), "--epochs", "4", "--batch-size", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "float32" in out
    assert "train loss" in out and "train acc." in out
    assert "batch 2 (2 updates per epoch), 4 epochs" in out
    assert "→" in out  # the loss curve's first → last
    assert err == ""  # no progress bar when stderr is not a terminal


def test_the_same_seed_gives_the_same_run_and_another_seed_another_order(tmp_path, capsys):
    net = str(write(tmp_path, TINY))

    def losses(*args: str) -> list[float]:
        assert run(["train", net, "-e", "3", "-b", "1", "--json", *args]) == 0
        return [strict_json(line)["train_loss"] for line in capsys.readouterr().out.splitlines()]

    assert losses("--seed", "4") == losses("--seed", "4")
    assert losses("--seed", "4") != losses("--seed", "5")
    # without shuffling the seed does not matter
    assert losses("--no-shuffle", "--seed", "4") == losses("--no-shuffle", "--seed", "5")


def test_train_json_writes_one_strict_json_line_per_epoch(tmp_path, capsys):
    code = run(
        ["train", str(write(tmp_path, TINY)), "-e", "3", "-b", "4", "--json", "--dtype", "float64"]
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
    code = run(["train", str(write(tmp_path, TINY))])
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
    code = run(["train", str(write(tmp_path, text)), "--json"])
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
            str(write(tmp_path, TINY)),
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
    write(tmp_path, "inputs: [[1.0, 1.0, 1.0]]\ntargets: [1]\n", "test.yaml")
    code = run(
        ["train", str(write(tmp_path, TINY)), "-e", "1", "--test", str(tmp_path / "test.yaml")]
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
    code = run(["train", str(write(tmp_path, text)), "-e", "50"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "bpcalc: error:" in err and "smaller learning rate" in err
    assert "Traceback" not in err


# --- --save and --force -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_saved_network_reloads_to_the_same_parameters_and_predictions(tmp_path, dtype):
    spec = load_network(str(write(tmp_path, TINY)))
    trainer = training.Trainer(spec, dtype)
    training.fit(trainer, spec.inputs, spec.targets, epochs=5, batch_size=2)
    out = tmp_path / "sub" / "trained.yaml"
    out.parent.mkdir()
    out.write_text(network_yaml(spec, trainer.params, str(out), ["trained"]), encoding="utf-8")
    again = training.Trainer(load_network(str(out)), dtype)
    for layer, params in trainer.params.items():
        for name, value in params.items():
            np.testing.assert_array_equal(again.params[layer][name], value)
    np.testing.assert_array_equal(again.predict(spec.inputs), trainer.predict(spec.inputs))


def test_saving_a_conv_network_keeps_its_kernels_and_rebases_data_paths(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((4, 3, 3)))
    text = """inputs: {file: x.npy}
targets: [0, 1, 0, 1]
layers:
  - {name: c1, type: conv2d, kernel: [[0.1, -0.2], [0.3, 0.4]], activation: relu}
  - {name: c2, type: conv2d, out_channels: 2, kernel_size: 1, init: he}
  - {type: flatten}
  - {name: fc, type: dense, units: 2, activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""
    spec = load_network(str(write(tmp_path, text)))
    trainer = training.Trainer(spec, np.float64)
    training.fit(trainer, spec.inputs, spec.targets, epochs=2, batch_size=2)
    out = tmp_path / "deeper" / "saved.yaml"
    out.parent.mkdir()
    out.write_text(network_yaml(spec, trainer.params, str(out)), encoding="utf-8")
    saved = out.read_text(encoding="utf-8")
    assert "file: ../x.npy" in saved and "out_channels" not in saved and "init" not in saved
    again = load_network(str(out))
    assert again.layers[0].kernel_2d  # written as the 2-D kernel it was
    np.testing.assert_array_equal(again.layers[1].kernel, trainer.params["c2"]["kernel"])
    np.testing.assert_array_equal(again.inputs, spec.inputs)


def test_train_save_writes_a_network_that_train_and_step_read_again(tmp_path, capsys):
    net = write(tmp_path, TINY)
    out = tmp_path / "trained.yaml"
    code = run(["train", str(net), "-e", "3", "--save", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert out.read_text(encoding="utf-8").startswith("# Trained by bpcalc train")
    assert run(["train", str(out), "-e", "1", "--json"]) == 0
    assert run(["step", str(out), "--json"]) == 0
    assert [
        p.name for p in tmp_path.iterdir() if p.name.startswith(".")
    ] == []  # no temp files left


def test_save_does_not_replace_an_existing_file_without_force(tmp_path, capsys):
    net = write(tmp_path, TINY)
    out = write(tmp_path, "keep me\n", "out.yaml")
    code = run(["train", str(net), "-e", "1", "--save", str(out)])
    _, err = capsys.readouterr()
    assert code == 2
    assert "exists" in err and "--force" in err
    assert out.read_text(encoding="utf-8") == "keep me\n"
    assert run(["train", str(net), "-e", "1", "--save", str(out), "--force"]) == 0
    assert load_network(str(out)).name == "tiny"


def test_save_never_overwrites_the_input_file_even_with_force(tmp_path, capsys):
    net = write(tmp_path, TINY)
    for extra in ([], ["--force"]):
        code = run(["train", str(net), "-e", "1", "--save", str(net), *extra])
        _, err = capsys.readouterr()
        assert code == 2
        assert "would overwrite the input file" in err
        assert net.read_text(encoding="utf-8") == TINY


def test_train_help_has_examples(capsys):
    assert run(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples:" in out and "--save" in out


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


# --- with the other training features: optimizers, regularization, dropout, batchnorm -----------


@pytest.mark.parametrize(
    "extra",
    [
        "optimizer: {type: adam, lr: 0.05}",
        "optimizer: {type: momentum, lr: 0.1, momentum: 0.9}",
        "learning_rate: 0.5\nregularization: {l2: 0.1, l1: 0.01}",
    ],
)
def test_training_with_other_optimizers_and_penalties_equals_bpcalc_step(tmp_path, extra):
    text = TINY.replace("learning_rate: 0.5\n", extra + "\n")
    spec = load_network(str(write(tmp_path, text)))
    trainer = training.Trainer(spec, np.float64)
    training.fit(trainer, spec.inputs, spec.targets, epochs=3, batch_size=4, shuffle=False)
    last = engine.run(spec, steps=3).steps[-1]
    for layer, params in trainer.params.items():
        for name, value in params.items():
            np.testing.assert_array_equal(value, last[f"new.{layer}.{name}"].reshape(value.shape))


BN_NET = """inputs: [[1.0, 0.5], [-1.0, -0.5], [0.5, 1.0], [-0.5, -1.0]]
targets: [1, 0, 1, 0]
layers:
  - {name: hidden, type: dense, units: 3, init: {type: normal, std: 0.5, seed: 0}}
  - {name: bn, type: batchnorm, activation: relu}
  - {name: drop, type: dropout, p: 0.5, seed: 1}
  - {name: out, type: dense, units: 2, init: {type: normal, std: 0.5, seed: 1}, activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""


def test_batchnorm_running_statistics_follow_each_training_step(tmp_path):
    spec = load_network(str(write(tmp_path, BN_NET.replace("p: 0.5", "p: 0.0"))))
    trainer = training.Trainer(spec, np.float64)
    trainer.train_step(spec.inputs, spec.targets)
    st = engine.run(spec, steps=1).steps[0]
    for stat in ("running_mean", "running_var", "gamma", "beta"):
        np.testing.assert_array_equal(trainer.params["bn"][stat], st[f"new.bn.{stat}"])
    # the inputs are symmetric about 0 so the batch mean is 0, but the variance moved from 1
    assert not np.array_equal(trainer.params["bn"]["running_var"], np.ones(3))


def test_evaluation_turns_dropout_off_and_training_mode_back_on(tmp_path):
    spec = load_network(str(write(tmp_path, BN_NET)))
    trainer = training.Trainer(spec, np.float64)
    training.fit(trainer, spec.inputs, spec.targets, epochs=2, batch_size=2)
    np.testing.assert_array_equal(trainer.predict(spec.inputs), trainer.predict(spec.inputs))
    drop = next(layer for layer in trainer.layers if layer.name == "drop")
    assert drop.op.training  # back in training mode for the next step
    out = tmp_path / "saved.yaml"
    out.write_text(network_yaml(spec, trainer.params, str(out)), encoding="utf-8")
    again = training.Trainer(load_network(str(out)), np.float64)
    np.testing.assert_array_equal(
        again.params["bn"]["running_var"], trainer.params["bn"]["running_var"]
    )
    np.testing.assert_array_equal(again.predict(spec.inputs), trainer.predict(spec.inputs))


def test_a_last_batch_of_one_sample_through_batchnorm_is_refused(tmp_path, capsys):
    code = run(["train", str(write(tmp_path, BN_NET)), "-e", "1", "-b", "3"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "batchnorm layer 'bn'" in err and "one sample" in err


def test_train_uses_the_top_level_batch_size_of_bpcalc_step(tmp_path, capsys):
    text = TINY + "mode: minibatch\nbatch_size: 2\n"
    assert run(["train", str(write(tmp_path, text)), "-e", "1", "--json"]) == 0
    assert strict_json(capsys.readouterr().out)["batch_size"] == 2


def test_ctrl_c_shows_the_finished_epochs_and_exits_130(tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    real = training.Trainer.step_with_output

    def interrupted_on_the_fifth_step(self, xb, yb, *rest):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(self, xb, yb, *rest)

    monkeypatch.setattr(training.Trainer, "step_with_output", interrupted_on_the_fifth_step)
    code = run(["train", str(write(tmp_path, TINY)), "-e", "10", "-b", "2"])
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
    net = write(tmp_path, text)
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
    code = run(["train", str(write(tmp_path, TINY)), "-e", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [strict_json(line)["epoch"] for line in out.splitlines()] == [1, 2]
    assert "epoch 2/2: loss" in err  # the bar's line per epoch, on stderr


def test_json_on_a_terminal_shows_no_bar_between_its_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code = run(["train", str(write(tmp_path, TINY)), "-e", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [strict_json(line)["epoch"] for line in out.splitlines()] == [1, 2]
    assert err == ""
