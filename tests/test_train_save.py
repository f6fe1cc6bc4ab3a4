"""bpcalc train --save and --force: a saved network reloads to the same parameters and
is never written over an existing file without --force, nor over the input."""

from __future__ import annotations

import numpy as np
import pytest

from bpcalc import training
from bpcalc.cli import run
from bpcalc.network.parse import load_network
from bpcalc.network.write import network_yaml
from tests.helpers import write_net
from tests.train_helpers import TINY

# --- --save and --force -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_saved_network_reloads_to_the_same_parameters_and_predictions(tmp_path, dtype):
    spec = load_network(str(write_net(tmp_path, TINY)))
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
    spec = load_network(str(write_net(tmp_path, text)))
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
    net = write_net(tmp_path, TINY)
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
    net = write_net(tmp_path, TINY)
    out = write_net(tmp_path, "keep me\n", "out.yaml")
    code = run(["train", str(net), "-e", "1", "--save", str(out)])
    _, err = capsys.readouterr()
    assert code == 2
    assert "exists" in err and "--force" in err
    assert out.read_text(encoding="utf-8") == "keep me\n"
    assert run(["train", str(net), "-e", "1", "--save", str(out), "--force"]) == 0
    assert load_network(str(out)).name == "tiny"


def test_save_never_overwrites_the_input_file_even_with_force(tmp_path, capsys):
    net = write_net(tmp_path, TINY)
    for extra in ([], ["--force"]):
        code = run(["train", str(net), "-e", "1", "--save", str(net), *extra])
        _, err = capsys.readouterr()
        assert code == 2
        assert "would overwrite the input file" in err
        assert net.read_text(encoding="utf-8") == TINY
