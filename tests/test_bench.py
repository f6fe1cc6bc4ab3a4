"""The benchmark's own parts (bench/): its networks parse as bpcalc YAML, and its hand-written
NumPy loop is the same maths as bpcalc's training step (no timing here)."""

from __future__ import annotations

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


def test_the_benchmark_cnn_has_the_issue_7_shape_and_starts_from_its_yaml_parameters() -> None:
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
