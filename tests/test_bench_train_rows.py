"""The benchmark's process rows and roofline (bench/): the FLOPs counted from the shapes, the
NumPy CNN loop is bpcalc's maths, the loops' processes time both clocks, and the networks
train from a data file as `bpcalc train` reads them (no timing here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import loops  # noqa: E402
import nets  # noqa: E402
import roofline  # noqa: E402

from bpcalc.cli import run  # noqa: E402

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_an_mlp_step_needs_the_flops_of_its_five_matrix_products() -> None:
    prods = roofline.products(nets.mlp().spec, 64)
    # forward x·W1ᵀ, x·W2ᵀ; ∂L/∂W2, ∂L/∂W1; ∂L/∂a1 (none for the input)
    assert sorted(prods) == sorted(
        [(64, 784, 128), (128, 64, 784), (64, 128, 10), (10, 64, 128), (64, 10, 128)]
    )
    # 2·64·(784·128 + 128·10) twice, and 2·64·10·128 once: 26.2 MFLOP, as issue 18 counts
    assert roofline.flops(prods) == 2 * 64 * (784 * 128 + 128 * 10) * 2 + 2 * 64 * 10 * 128
    assert round(roofline.flops(prods) / 1e6, 1) == 26.2


def test_a_cnn_step_counts_the_conv_over_its_patches_and_no_input_gradient() -> None:
    prods = roofline.products(nets.cnn().spec, 64)
    rows = 64 * 26 * 26  # one row per output position of every sample
    assert (rows, 9, 8) in prods and (8, rows, 9) in prods
    assert (rows, 8, 9) not in prods  # the first layer: nobody needs ∂L/∂x
    assert (64, 10, 1352) in prods  # the dense layer's ∂L/∂x: the pool needs it
    assert len(prods) == 5


def test_the_numpy_cnn_loop_trains_exactly_like_bpcalc() -> None:
    net = nets.cnn(filters=3, side=8)
    data = nets.batches((1, 8, 8), batch=5, count=3)
    ours, ref = loops.bpcalc_step(net), loops.numpy_cnn_step(net)
    for x, y, cls in data * 2:
        np.testing.assert_allclose(ours(x, y, cls), ref(x, y, cls), rtol=1e-5)
    theirs = ref.params()
    for name, value in ours.params().items():
        np.testing.assert_allclose(value, theirs[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_the_epochs_process_times_each_epoch_by_both_clocks(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "data.npz",
        x=rng.random((70, 1, 8, 8), dtype=np.float32),
        y=rng.integers(0, 10, 70),
    )
    out = subprocess.run(
        [sys.executable, str(BENCH / "epochs.py"), "numpy", str(tmp_path), "3"]
        + ["--net", "digits-cnn", "--batch", "32", "--clocks"],
        capture_output=True,
        text=True,
        check=True,
    )
    rates = json.loads(out.stdout)
    assert set(rates) == {"wall", "cpu"}
    assert all(len(v) == 3 and all(r > 0 for r in v) for v in rates.values()), rates


@pytest.mark.parametrize("make", [lambda: nets.mlp((6, 4, 3)), lambda: nets.cnn(2, 6, 3)])
def test_a_bench_network_trains_from_a_data_file_with_bpcalc_train(
    make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    net = make()
    shape = tuple(net.spec.inputs.shape[1:])
    rng = np.random.default_rng(1)
    np.savez(
        tmp_path / "data.npz",
        x=rng.random((10, *shape), dtype=np.float32),
        y=rng.integers(0, 3, 10),
    )
    (tmp_path / "net.yaml").write_text(net.train_yaml("data.npz"))
    monkeypatch.chdir(tmp_path)
    assert run(["train", "net.yaml", "--epochs", "2", "--batch-size", "4", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["samples"] for e in lines] == [10, 10]
    assert all(e["cpu_seconds"] >= 0 for e in lines)
