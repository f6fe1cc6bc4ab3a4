"""bpcalc new mlp --blocks N: pre-norm residual blocks (layernorm, dense, dense without bias)
after the hidden layers, in a starter network that steps and trains as it is."""

from __future__ import annotations

from pathlib import Path

from bpcalc import engine
from bpcalc.cli import run
from bpcalc.network.parse import parse_network
from bpcalc.network.yaml_source import load_yaml_text
from bpcalc.training import Trainer


def test_new_mlp_with_blocks_has_residual_blocks_that_step_and_train(capsys, tmp_path: Path):
    out = tmp_path / "net.yaml"
    assert run(["new", "mlp", "--sizes", "4,8,3", "--blocks", "2", "-o", str(out)]) == 0
    capsys.readouterr()
    text = out.read_text()
    assert text.startswith("# A starter network made by `bpcalc new mlp --sizes 4,8,3 --blocks 2`")
    spec = parse_network(load_yaml_text(text, "net.yaml"))
    assert [layer.type for layer in spec.layers] == ["dense", "residual", "residual", "dense"]
    assert [layer.name for layer in spec.layers[1].inner] == [
        "block1.norm",
        "block1.fc1",
        "block1.fc2",
    ]
    assert spec.layers[1].inner[2].bias is None
    names = engine.run(spec).steps[0].records
    assert "block2.norm.mean" in names and "grad.block1.input.f" in names
    trainer = Trainer(spec)
    x, y = spec.inputs.astype("float32"), spec.targets.astype("float32")
    first = trainer.train_step(x, y)
    for _ in range(30):
        last = trainer.train_step(x, y)
    assert last < first / 2


def test_blocks_without_a_hidden_layer_is_a_usage_error(capsys):
    assert run(["new", "mlp", "--sizes", "4,3", "--blocks", "1"]) == 2
    assert "--blocks needs a hidden layer" in capsys.readouterr().err
