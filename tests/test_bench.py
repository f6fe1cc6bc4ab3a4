"""The benchmark's own parts (bench/): its networks parse as bpcalc YAML, and its hand-written
NumPy loop is the same maths as bpcalc's training step (no timing here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import loops  # noqa: E402
import nets  # noqa: E402


def test_the_numpy_reference_loop_trains_exactly_like_bpcalc() -> None:
    net = nets.mlp((6, 4, 3))
    data = nets.batches((6,), batch=5, count=4, n_out=3)
    ours, ref = loops.bpcalc_step(net), loops.numpy_mlp_step(net)
    for x, y, cls in data * 2:
        np.testing.assert_allclose(ours(x, y, cls), ref(x, y, cls), rtol=1e-5)
    theirs = ref.params()
    for name, value in ours.params().items():  # after 8 updates: every gradient was the same
        np.testing.assert_allclose(value, theirs[name], rtol=1e-4, atol=1e-7, err_msg=name)


def test_the_benchmark_cnn_is_conv_pool_flatten_dense_from_its_yaml_parameters() -> None:
    net = nets.cnn()
    shapes = [(layer.type, layer.out_shape) for layer in net.spec.layers]
    assert shapes == [
        ("conv2d", (8, 26, 26)),  # 28 − 3 + 1 = 26
        ("maxpool2d", (8, 13, 13)),
        ("flatten", (8 * 13 * 13,)),
        ("dense", (10,)),
    ]
    assert net.params["conv.kernel"].shape == (8, 1, 3, 3)
    np.testing.assert_array_equal(net.params["fc.weights"], net.spec.layers[3].weights)


def test_the_epochs_process_prints_one_rate_per_epoch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "data.npz",
        x=rng.random((200, 784), dtype=np.float32),
        y=rng.integers(0, 10, 200),
    )
    script = Path(__file__).resolve().parent.parent / "bench" / "epochs.py"
    out = subprocess.run(
        [sys.executable, str(script), "numpy", str(tmp_path), "3"],
        capture_output=True,
        text=True,
        check=True,
    )
    rates = json.loads(out.stdout)
    assert len(rates) == 3 and all(r > 0 for r in rates), out.stdout


def test_the_epochs_loop_visits_every_sample_once_an_epoch_in_batches_of_64() -> None:
    import epochs

    seen: list[np.ndarray] = []

    def step(x: np.ndarray, y: np.ndarray, cls: np.ndarray) -> float:
        assert x.shape[0] <= 64 and (y.argmax(axis=1) == cls).all()
        seen.append(x[:, 0].copy())
        return 0.0

    x = np.arange(150, dtype=np.float32)[:, None] * np.ones((1, 784), np.float32)
    assert len(epochs.epochs(step, x, np.arange(150) % 10, 2)) == 2
    assert len(seen) == 6  # ⌈150 / 64⌉ = 3 batches an epoch
    for first in (0, 3):
        assert sorted(np.concatenate(seen[first : first + 3])) == list(range(150))


def test_the_rich_alone_reference_prints_exactly_what_bpcalc_step_prints(tmp_path: Path) -> None:
    import rich_tables

    root = Path(__file__).resolve().parent.parent
    example = root / "examples" / "example1.yaml"
    rich_tables.write_example1(tmp_path / "tables.json", example)
    env = {**os.environ, "COLUMNS": "80"}
    reference = subprocess.run(
        [sys.executable, str(root / "bench" / "rich_tables.py"), str(tmp_path / "tables.json")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    ours = subprocess.run(
        [sys.executable, "-c", "from bpcalc.cli import main; main()", "step", str(example)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert reference == ours
