"""The exported PyTorch script against bpcalc itself: the same step, the same training.

These tests need PyTorch (the torch test group; docs/export.md). Every example and
randomly drawn networks: the script's --json equals `bpcalc step --json` (same names, same
document, numbers to 1e-10 relative); --train on the digits reaches bpcalc train's test
accuracy within a point; torchrun with two CPU processes (gloo) trains it too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings

from bpcalc import activations
from bpcalc.errors import SpecError
from bpcalc.export.pytorch import export_pytorch
from bpcalc.network.parse import load_network
from bpcalc.network.sections import with_batching
from tests.helpers import spec_from
from tests.pytorch.compare import bpcalc_step, differences, load_script, need_torch, run_script
from tests.pytorch.networks import networks
from tests.test_export import EXAMPLES, fake_mnist

torch = need_torch()

ROOT = Path(__file__).resolve().parents[2]
BPCALC = [sys.executable, "-c", "from bpcalc.cli import main; main()"]


def _export(spec: Any, folder: Path, name: str = "net.py") -> Path:
    path = folder / name
    path.write_text(export_pytorch(spec, script=str(path)), encoding="utf-8")
    return path


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_script_prints_the_steps_bpcalc_prints(example: str, tmp_path: Path) -> None:
    spec = load_network(str(ROOT / example))
    script = _export(spec, tmp_path)
    argv, steps = ["--steps", "3"], 3
    if spec.inputs.shape[0] > 100:  # the digits: 3 steps of all 1497 images print 240 MB
        argv += ["--batch-size", "50"]
        spec = with_batching(spec, None, 50)
    got = json.loads(run_script(script, "--json", *argv))
    assert differences(got, bpcalc_step(spec, steps)) == []


@pytest.mark.slow
def test_a_full_batch_step_of_the_digits_mlp_gives_bpcalc_s_numbers(tmp_path: Path) -> None:
    spec = load_network(str(ROOT / "examples/digits/mlp.yaml"))
    script = _export(spec, tmp_path)
    got = json.loads(run_script(script, "--json"))
    assert differences(got, bpcalc_step(spec, 1)) == []


def test_the_mnist_network_reads_idx_files_as_bpcalc_does(tmp_path: Path) -> None:
    spec = load_network(str(fake_mnist(tmp_path)))
    script = _export(spec, tmp_path / "mnist")  # a folder below the data: paths with ..
    got = json.loads(run_script(script, "--json", "--steps", "2"))
    assert differences(got, bpcalc_step(spec, 2)) == []


@pytest.mark.parametrize(
    ("mode", "batch_size"), [("sgd", None), ("batch", None), ("minibatch", 3), (None, 3)]
)
def test_mode_and_batch_size_override_the_file_as_in_bpcalc_step(
    mode: str | None, batch_size: int | None, tmp_path: Path
) -> None:
    spec = load_network(str(ROOT / "examples/gd_variants.yaml"))
    script = _export(spec, tmp_path)
    argv = ["--json", "--steps", "5"]
    argv += ["--mode", mode] if mode else []
    argv += ["--batch-size", str(batch_size)] if batch_size else []
    got = json.loads(run_script(script, *argv))
    want = bpcalc_step(with_batching(spec, mode, batch_size), 5)
    assert differences(got, want) == []


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("BPCALC_EXPORT_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,  # a case is a whole network run twice
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(net=networks())
def test_random_networks_give_bpcalc_s_numbers(net: dict[str, Any], tmp_path_factory: Any) -> None:
    steps = net.pop("_steps")
    try:
        spec = spec_from(net)
    except SpecError:
        assume(False)  # a draw bpcalc refuses (batchnorm on batches of one): not a case
        raise
    try:
        text = export_pytorch(spec, script=None)
    except SpecError:
        assume(False)  # one of the few things the export refuses (tested elsewhere)
        raise
    folder = tmp_path_factory.mktemp("net")
    script = folder / "net.py"
    script.write_text(text, encoding="utf-8")
    got = json.loads(run_script(script, "--json", "--steps", str(steps)))
    problems = differences(got, bpcalc_step(spec, steps))
    assert problems == [], yaml.safe_dump(net, sort_keys=False)


@pytest.mark.slow
def test_export_then_python_json_equals_bpcalc_step_json(tmp_path: Path) -> None:
    """The issue's test: bpcalc export ... -o ex2.py && python ex2.py --json."""
    script = tmp_path / "ex2.py"
    net = ROOT / "examples/example2.yaml"
    export = [*BPCALC, "export", str(net), "--to", "pytorch"]
    done = subprocess.run([*export, "-o", str(script)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    ran = subprocess.run(
        [sys.executable, str(script), "--json"], capture_output=True, text=True, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    step = [*BPCALC, "step", str(net), "--json"]
    want = subprocess.run(step, capture_output=True, text=True, cwd=ROOT)
    assert differences(json.loads(ran.stdout), json.loads(want.stdout)) == []


def _bpcalc_train(net: Path, *argv: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [*BPCALC, "train", str(net), "--json", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.slow
def test_train_reaches_bpcalc_train_s_test_accuracy_within_a_point(tmp_path: Path) -> None:
    net = ROOT / "examples/digits/mlp.yaml"
    script = _export(load_network(str(net)), tmp_path)
    out = run_script(script, "--train", "--json")
    lines = [json.loads(s) for s in out.splitlines()]
    want = _bpcalc_train(net)
    assert len(lines) == len(want) == 20
    assert abs(lines[-1]["test_accuracy"] - want[-1]["test_accuracy"]) <= 0.01
    assert lines[-1]["test_accuracy"] > 0.9
    assert set(lines[-1]) == set(want[-1])


@pytest.mark.slow
def test_train_in_float64_follows_bpcalc_train_epoch_by_epoch(tmp_path: Path) -> None:
    """Same order of samples (numpy's permutations), same maths: the same figures."""
    net = ROOT / "examples/digits/cnn.yaml"
    script = _export(load_network(str(net)), tmp_path)
    argv = ["--dtype", "float64", "--epochs", "2"]
    got = [json.loads(s) for s in run_script(script, "--train", "--json", *argv).splitlines()]
    want = _bpcalc_train(net, *argv)
    for g, w in zip(got, want, strict=True):
        for clock in ("seconds", "cpu_seconds"):  # times differ, the figures must not
            g.pop(clock), w.pop(clock)
        assert differences(g, w) == []


@pytest.mark.slow
def test_torchrun_trains_on_two_cpu_processes_with_gloo(tmp_path: Path) -> None:
    net = ROOT / "examples/digits/mlp.yaml"
    script = _export(load_network(str(net)), tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        + [str(script), "--train", "--json", "--device", "cpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(s) for s in done.stdout.splitlines()]
    assert [line["epoch"] for line in lines] == list(range(1, 21))  # rank 0 prints, once
    want = _bpcalc_train(net)
    # the same global batches of 32 (16 per process), another order of the samples
    assert abs(lines[-1]["test_accuracy"] - want[-1]["test_accuracy"]) <= 0.02


def test_script_usage_errors_exit_2_with_one_line(tmp_path: Path, capsys: Any) -> None:
    script = _export(load_network(str(ROOT / "examples/example2.yaml")), tmp_path)
    module = load_script(script)
    for argv in (["--train"], ["--batch-size", "5"], ["--steps", "0"]):
        with pytest.raises(SystemExit) as info:
            module.main([*argv, "--device", "cpu"])
        assert info.value.code == 2
        assert "error: " in capsys.readouterr().err


@pytest.mark.parametrize("kind", [k for k in activations.kinds() if k != "softmax"])
def test_every_activation_exports_to_its_pytorch_form(kind: str, tmp_path: Path) -> None:
    options = {k: v * 3 for k, v in activations.unit_class(kind).options.items()}
    spec = spec_from(
        {
            "inputs": [[0.5, -1.2], [2.0, 0.3], [-0.7, -0.1]],
            "targets": [[0.3], [-0.2], [0.1]],
            "layers": [
                {
                    "name": "h",
                    "type": "dense",
                    "weights": [[0.4, -0.7], [0.2, 0.9], [-0.5, 0.6]],
                    "bias": [0.1, -0.3, 0.05],
                    "activation": kind,
                    **options,
                },
                {"name": "o", "type": "dense", "weights": [[0.6, -0.5, 0.3]], "bias": [0.05]},
                {"name": "act", "type": kind, **options},
            ],
            "loss": "mse",
            "learning_rate": 0.1,
        }
    )
    got = json.loads(run_script(_export(spec, tmp_path), "--json", "--steps", "2"))
    assert differences(got, bpcalc_step(spec, 2)) == []
