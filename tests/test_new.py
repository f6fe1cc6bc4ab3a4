"""bpcalc new: commented starter networks that load, step and train as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpcalc.cli import run
from bpcalc.network.parse import load_network, parse_network
from bpcalc.network.yaml_source import load_yaml_text


def new_text(capsys, *args: str):
    code = run(["new", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_new_mlp_2_3_1_is_a_commented_network_with_a_sigmoid_output(capsys):
    text = new_text(capsys, "mlp", "--sizes", "2,3,1")
    assert text.startswith("# A starter network made by `bpcalc new mlp --sizes 2,3,1`")
    spec = parse_network(load_yaml_text(text, "new.yaml"))
    hidden, out = spec.layers
    assert hidden.weights.shape == (3, 2) and out.weights.shape == (1, 3)
    assert hidden.activation.kind == "relu" and out.activation.kind == "sigmoid"
    assert spec.loss.kind == "binary_cross_entropy"
    assert spec.inputs.shape == (4, 2) and spec.train.epochs == 100


def test_new_mlp_with_several_outputs_uses_softmax_cross_entropy_and_class_indices(capsys):
    spec = parse_network(load_yaml_text(new_text(capsys, "mlp", "--sizes", "64,32,16,10")))
    assert [layer.weights.shape for layer in spec.layers] == [(32, 64), (16, 32), (10, 16)]
    assert spec.loss.kind == "cross_entropy"
    assert spec.target_classes.tolist() == [0, 1, 2, 3]


def test_new_mlp_with_mse_has_an_identity_output(capsys):
    spec = parse_network(load_yaml_text(new_text(capsys, "mlp", "--sizes", "3,2", "--loss", "mse")))
    assert spec.output_activation == "identity" and spec.targets.shape == (4, 2)


@pytest.mark.parametrize(
    ("args", "kernel", "inputs"),
    [
        ([], (4, 1, 3, 3), (2, 1, 8, 8)),
        (
            [
                "--input",
                "3,6,6",
                "--channels",
                "2",
                "--kernel",
                "3",
                "--pool",
                "2",
                "--classes",
                "3",
            ],
            (2, 3, 3, 3),
            (2, 3, 6, 6),
        ),
        (["--input", "1,5,5", "--pool", "1"], (4, 1, 3, 3), (2, 1, 5, 5)),
    ],
)
def test_new_cnn_loads_with_the_asked_shapes(capsys, args, kernel, inputs):
    spec = parse_network(load_yaml_text(new_text(capsys, "cnn", *args)))
    assert spec.layers[0].kernel.shape == kernel
    assert spec.inputs.shape == inputs


def test_new_output_file_then_step_and_train_run_on_it(tmp_path, capsys):
    out = tmp_path / "net.yaml"
    assert run(["new", "cnn", "-o", str(out)]) == 0
    load_network(str(out))
    assert run(["step", str(out), "--json"]) == 0
    assert run(["train", str(out), "--epochs", "2", "--json"]) == 0
    capsys.readouterr()


def test_new_does_not_replace_a_file_without_force(tmp_path, capsys):
    out = tmp_path / "net.yaml"
    out.write_text("mine\n", encoding="utf-8")
    code = run(["new", "mlp", "--sizes", "2,1", "-o", str(out)])
    _, err = capsys.readouterr()
    assert code == 2 and "--force" in err
    assert out.read_text(encoding="utf-8") == "mine\n"
    assert run(["new", "mlp", "--sizes", "2,1", "-o", str(out), "--force"]) == 0
    assert load_network(str(out)).layers[0].weights.shape == (1, 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mlp"], "needs --sizes"),
        (["mlp", "--sizes", "3"], "at least two positive sizes"),
        (["mlp", "--sizes", "3,x"], "whole numbers separated by commas"),
        (["mlp", "--sizes", ""], "at least two positive sizes"),
        (["mlp", "--sizes", "2,,3"], "with a number missing"),
        (["mlp", "--sizes", "2,3,"], "with a number missing"),
        (["cnn", "--input", "1,,8"], "with a number missing"),
        (["cnn", "--input", ""], "should be 3 numbers"),
        (["mlp", "--sizes", "3,1", "--loss", "cross_entropy"], "at least 2 outputs"),
        (["cnn", "--input", "1,8,8", "--kernel", "4", "--pool", "2"], "does not tile"),
        (["cnn", "--input", "8,8"], "should be 3 numbers"),
    ],
)
def test_new_usage_mistakes_exit_2_with_a_message(capsys, args, message):
    code = run(["new", *args])
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err


def test_new_help_has_examples(capsys):
    assert run(["new", "--help"]) == 0
    assert "bpcalc new mlp --sizes 2,3,1" in capsys.readouterr().out


def test_new_does_not_write_into_a_missing_folder(tmp_path, capsys):
    code = run(["new", "mlp", "--sizes", "2,1", "-o", str(Path(tmp_path, "no", "net.yaml"))])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
