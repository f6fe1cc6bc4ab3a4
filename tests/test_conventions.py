"""The convention switches change exactly the values they should, and every output says which."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.helpers import cli, strict_json, values

W = [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]  # 2 neurons x 3 inputs


def net(**dense: Any) -> dict[str, Any]:
    layer = {"type": "dense", "weights": W, "bias": [0.1, -0.1], "activation": "sigmoid", **dense}
    return {
        "input": [1.0, 2.0, -1.0],
        "target": [0.0, 1.0],
        "layers": [layer],
        "loss": "half_sse",
        "learning_rate": 0.5,
    }


def test_in_out_with_the_transposed_matrix_gives_the_same_numbers():
    a = values(net())
    b = values(net(weights=np.array(W).T.tolist(), layout="in_out"))
    for name in (
        "dense1.z",
        "dense1.a",
        "loss",
        "grad.dense1.z",
        "grad.dense1.input",
        "loss_after",
    ):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-14)
    # gradients and updated weights are reported in the layout the user wrote
    np.testing.assert_allclose(a["grad.dense1.weights"], b["grad.dense1.weights"].T, rtol=1e-14)
    np.testing.assert_allclose(a["new.dense1.weights"], b["new.dense1.weights"].T, rtol=1e-14)
    assert b["new.dense1.weights"].shape == (3, 2)


def test_a_shared_bias_gets_the_sum_of_the_per_neuron_gradients():
    separate = values(net(bias=[0.35, 0.35]))
    shared = values(net(bias=0.35, bias_shared=True))
    np.testing.assert_allclose(shared["dense1.z"], separate["dense1.z"], rtol=1e-14)
    assert shared["grad.dense1.bias"] == pytest.approx(separate["grad.dense1.bias"].sum())
    assert shared["new.dense1.bias"] == pytest.approx(
        0.35 - 0.5 * separate["grad.dense1.bias"].sum()
    )
    assert shared["grad.dense1.bias"].shape == ()


def test_half_mse_is_half_of_mse_with_half_its_gradient():
    base = {
        "input": [1.0, 2.0],
        "target": [0.5, -0.5, 2.0],
        "layers": [{"type": "dense", "weights": [[0.2, 0.1], [-0.3, 0.4], [0.5, 0.5]]}],
        "learning_rate": 0.1,
    }
    mse = values({**base, "loss": "mse"})
    half = values({**base, "loss": "half_mse"})
    sse = values({**base, "loss": "sse"})
    half_sse = values({**base, "loss": "half_sse"})
    assert half["loss"] == pytest.approx(mse["loss"] / 2)
    np.testing.assert_allclose(half["grad.dense1.weights"], mse["grad.dense1.weights"] / 2)
    # sum over K = 3 outputs versus the mean: a factor K
    assert sse["loss"] == pytest.approx(3 * mse["loss"])
    assert half_sse["loss"] == pytest.approx(sse["loss"] / 2)
    # half_sse's gradient is a − y itself
    np.testing.assert_allclose(
        half_sse["grad.dense1.a"], half_sse["dense1.a"] - np.array([0.5, -0.5, 2.0])
    )


def test_flip_gives_the_textbook_convolution():
    x = [[1.0, 2.0, 0.0], [0.5, -1.0, 3.0], [2.0, 1.0, -2.0]]
    k = [[1.0, 2.0], [3.0, 4.0]]
    base = {
        "input": x,
        "target": [[0.0, 0.0], [0.0, 0.0]],
        "loss": "half_sse",
        "learning_rate": 0.1,
    }
    corr = values({**base, "layers": [{"type": "conv2d", "kernel": k}]})
    conv = values({**base, "layers": [{"type": "conv2d", "kernel": k, "flip": True}]})
    # cross-correlation at (0,0): 1·1 + 2·2 + 0.5·3 + (−1)·4 = 2.5
    assert corr["conv2d1.z"][0, 0] == pytest.approx(2.5)
    # convolution flips the kernel: 1·4 + 2·3 + 0.5·2 + (−1)·1 = 10
    assert conv["conv2d1.z"][0, 0] == pytest.approx(10.0)
    # flipping the written kernel by hand and not flipping gives the same numbers
    flipped = values({**base, "layers": [{"type": "conv2d", "kernel": [[4.0, 3.0], [2.0, 1.0]]}]})
    np.testing.assert_allclose(conv["conv2d1.z"], flipped["conv2d1.z"])
    np.testing.assert_allclose(
        conv["grad.conv2d1.kernel"], flipped["grad.conv2d1.kernel"][::-1, ::-1]
    )


def test_frozen_parameters_keep_their_value_and_still_show_a_gradient():
    v = values(net(freeze=["bias"]))
    np.testing.assert_array_equal(v["new.dense1.bias"], [0.1, -0.1])
    assert np.any(v["grad.dense1.bias"] != 0)
    assert np.any(v["new.dense1.weights"] != np.array(W))
    v = values(net(freeze="all"))
    np.testing.assert_array_equal(v["new.dense1.weights"], W)
    assert v["loss_after"] == pytest.approx(v["loss"])


def test_the_conventions_block_names_loss_layout_kernel_freeze_and_update(capsys, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(
        "input: [[1, 2, 0], [0, 1, 2], [1, 1, 1]]\n"
        "target: [1, 0]\nlayers:\n"
        "  - {name: c, type: conv2d, kernel: [[1, 0], [0, 1]], flip: true, freeze: [bias]}\n"
        "  - {type: flatten}\n"
        "  - {name: d, type: dense, layout: in_out, weights: [[1, 0], [0, 1], [1, 1], [0, 0]], "
        "bias: 0.5, bias_shared: true, activation: softmax}\n"
        "loss: cross_entropy\nlearning_rate: 0.05\n"
    )
    code, out, err = cli(capsys, "step", str(path), "--json")
    assert code == 0, err
    conv = strict_json(out)["conventions"]
    assert "ln" in conv["loss"] and "p − y" in conv["output"]
    assert "flipped" in conv["c"] and "frozen" in conv["c"] and "bias" in conv["c"]
    assert "x·W" in conv["d"] and "shared" in conv["d"]
    assert "η = 0.05" in conv["update"]
    code, out, err = cli(capsys, "step", str(path))
    assert code == 0, err
    assert "Conventions" in out and "x·W" in out and "flipped" in out
