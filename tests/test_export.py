"""bpcalc export --to pytorch without PyTorch: the script is written, compiles, is standalone,
and example 2's equals the stored one. (tests/pytorch/ runs the scripts against bpcalc.)

When an intended change alters the script, regenerate the stored one with
    BPCALC_UPDATE_GOLDEN=1 uv run pytest tests/test_export.py
and read the diff before committing it.
"""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bpcalc.export.pytorch import export_pytorch
from bpcalc.network.datafiles import write_idx
from bpcalc.network.parse import load_network
from tests.helpers import cli, spec_from

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = [
    "examples/example1.yaml",
    "examples/example2.yaml",
    "examples/gd_variants.yaml",
    "examples/mlp_2_3_1.yaml",
    "examples/scalar_linear.yaml",
    "examples/scalar_quadratic.yaml",
    "examples/digits/mlp.yaml",
    "examples/digits/cnn.yaml",
]
# what a script may import: the standard library it needs, numpy and torch, never bpcalc
ALLOWED = {
    "__future__",
    "argparse",
    "dataclasses",
    "gzip",
    "io",
    "json",
    "math",
    "numpy",
    "os",
    "pathlib",
    "sys",
    "time",
    "torch",
}


def fake_mnist(folder: Path) -> Path:
    """examples/mnist_784_128_10.yaml beside small made-up IDX files of MNIST's names
    (gzipped, as downloaded): 12 training and 5 test images."""
    rng = np.random.default_rng(0)
    (folder / "mnist").mkdir(parents=True, exist_ok=True)
    for name, n in (("train", 12), ("t10k", 5)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        write_idx(folder / "mnist" / f"{name}-images-idx3-ubyte.gz", images, compress=True)
        write_idx(folder / "mnist" / f"{name}-labels-idx1-ubyte.gz", labels, compress=True)
    net = folder / "mnist_784_128_10.yaml"
    shutil.copy(ROOT / "examples/mnist_784_128_10.yaml", net)
    return net


def _imports(text: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_exports_to_a_standalone_script_that_compiles(
    example: str, tmp_path: Path
) -> None:
    script = tmp_path / "net.py"
    text = export_pytorch(load_network(str(ROOT / example)), script=str(script))
    compile(text, str(script), "exec")
    assert _imports(text) <= ALLOWED
    assert "{{" not in text  # every template marker replaced


def test_the_mnist_network_exports_with_its_idx_files_relative_to_the_script(
    tmp_path: Path,
) -> None:
    net = fake_mnist(tmp_path / "data")
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "mnist.py"
    text = export_pytorch(load_network(str(net)), script=str(script))
    compile(text, str(script), "exec")
    assert '"file": "../data/mnist/train-images-idx3-ubyte.gz", "format": "idx"' in text
    assert '"normalize": {"mean": 0.5, "std": 0.5}, "flatten": True' in text
    assert "class_indices(load_reference(" in text  # labels 0..9 read as class indices
    # the 784 x 128 weights are drawn as bpcalc draws them, not written out
    assert "np.random.default_rng(0).normal(0.0, 0.01, size=(128, 784))" in text


def test_example2_s_script_equals_the_stored_one(tmp_path: Path) -> None:
    got = export_pytorch(
        load_network("examples/example2.yaml"),
        script=str(tmp_path / "ex2.py"),
        source="examples/example2.yaml",
    )
    path = GOLDEN / "example2_pytorch.py.txt"
    if os.environ.get("BPCALC_UPDATE_GOLDEN") == "1":
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")


def test_export_writes_the_file_and_never_replaces_one_without_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "ex2.py"
    code, stdout, err = cli(
        capsys, "export", "examples/example2.yaml", "--to", "pytorch", "-o", str(out)
    )
    assert code == 0, err
    assert stdout == "" and "wrote" in err
    first = out.read_text(encoding="utf-8")
    out.write_text("# mine\n", encoding="utf-8")
    code, _, err = cli(
        capsys, "export", "examples/example2.yaml", "--to", "pytorch", "-o", str(out)
    )
    assert code == 2 and "--force" in err
    assert out.read_text(encoding="utf-8") == "# mine\n"
    code, _, err = cli(
        capsys, "export", "examples/example2.yaml", "--to", "pytorch", "-o", str(out), "--force"
    )
    assert code == 0, err
    assert out.read_text(encoding="utf-8") == first


def test_export_never_writes_over_its_input_network(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    net = tmp_path / "net.yaml"
    shutil.copy(ROOT / "examples/example1.yaml", net)
    before = net.read_text(encoding="utf-8")
    code, _, err = cli(capsys, "export", str(net), "--to", "pytorch", "-o", str(net), "--force")
    assert code == 2 and "input" in err
    assert net.read_text(encoding="utf-8") == before


def test_export_without_o_prints_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "export", "examples/example1.yaml", "--to", "pytorch")
    assert code == 0, err
    assert out.startswith("#!/usr/bin/env python3\n") and "class Net(Recorded):" in out
    compile(out, "net.py", "exec")


def test_export_asks_for_a_target_and_knows_only_pytorch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = cli(capsys, "export", "examples/example1.yaml")
    assert code == 2 and "--to" in err
    code, _, err = cli(capsys, "export", "examples/example1.yaml", "--to", "jax")
    assert code == 2 and "pytorch" in err


def test_a_broken_network_is_the_usual_located_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    net = tmp_path / "bad.yaml"
    net.write_text(
        "input: 1\ntarget: 1\nlayers: [{type: dense, weights: 1}]\nloss: mse\nlearning_rate: 0\n"
    )
    code, out, err = cli(capsys, "export", str(net), "--to", "pytorch")
    assert code == 2 and out == ""
    assert f"{net}:5:" in err and "Traceback" not in err


def test_momentum_zero_is_refused_at_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    net = tmp_path / "m.yaml"
    net.write_text(
        "input: [1.0]\ntarget: [1.0]\nlayers: [{type: dense, weights: [[0.5]]}]\nloss: mse\n"
        "optimizer:\n  type: momentum\n  lr: 0.1\n  momentum: 0\n"
    )
    code, _, err = cli(capsys, "export", str(net), "--to", "pytorch")
    assert code == 2
    assert f"{net}:8:3:" in err and "torch.optim" in err
    assert len(err.strip().splitlines()) == 1


def test_batchnorm_over_one_value_per_channel_is_refused_before_the_export(tmp_path: Path) -> None:
    # PyTorch's BatchNorm2d refuses one value per channel in training; so does reading the
    # network, at the layer, so the export never sees such a network
    from bpcalc.errors import SpecError

    with pytest.raises(SpecError, match="1 x 1 per channel") as info:
        spec_from(
            {
                "inputs": [[[1.0, 2.0], [3.0, 4.0]], [[0.5, 1.0], [2.0, 1.0]]],
                "targets": [[1.0], [0.0]],
                "mode": "sgd",
                "layers": [
                    {"name": "conv", "type": "conv2d", "kernel": [[1.0, 0.5], [0.2, 0.1]]},
                    {"name": "bn", "type": "batchnorm"},
                    {"type": "flatten"},
                ],
                "loss": "mse",
                "learning_rate": 0.1,
            }
        )
    assert "batchnorm layer 'bn'" in info.value.message


def test_a_layer_named_like_an_nn_module_method_gets_another_attribute() -> None:
    spec = spec_from(
        {
            "input": [1.0, 2.0],
            "target": [0.5],
            "layers": [
                {"name": "train", "type": "dense", "weights": [[0.1, 0.2]], "activation": "relu"},
                {"name": "class", "type": "relu"},
            ],
            "loss": "mse",
            "learning_rate": 0.1,
        }
    )
    text = export_pytorch(spec)
    compile(text, "net.py", "exec")
    assert "self.train_layer = nn.Linear(2, 1" in text
    assert "self.class_layer = nn.ReLU()" in text
    assert '"train.weights": (self.train_layer.weight' in text


def test_frozen_flipped_in_out_and_shared_parameters_say_how_they_are_converted() -> None:
    spec = spec_from(
        {
            "input": [[1.0, 2.0, 0.5], [3.0, 4.0, 1.0], [0.0, 1.0, 2.0]],
            "target": [1.0, 0.0],
            "layers": [
                {
                    "name": "conv",
                    "type": "conv2d",
                    "kernel": [[1.0, 0.5], [0.2, 0.1]],
                    "flip": True,
                },
                {"type": "flatten"},
                {
                    "name": "fc",
                    "type": "dense",
                    "layout": "in_out",
                    "weights": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]],
                    "bias": 0.35,
                    "bias_shared": True,
                    "freeze": ["bias"],
                },
            ],
            "loss": "half_sse",
            "optimizer": {"type": "adam", "lr": 0.01},
            "regularization": {"l2": 0.1},
        }
    )
    text = export_pytorch(spec)
    compile(text, "net.py", "exec")
    assert ".flip((2, 3)))  # flip: true" in text
    assert ".reshape(4, 2).T)  # layout: in_out" in text
    assert "self.fc.bias = nn.Parameter(torch.zeros(1, dtype=torch.float64))" in text
    assert "self.fc.bias.requires_grad_(False)  # fc: freeze: bias" in text
    assert '{"params": [model.fc.weight], "weight_decay": 0.1},' in text
    assert "torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-08)" in text
    assert (
        "model.fc.bias" not in text.split("def make_optimizer")[1].split("def optimizer_state")[0]
    )
