"""Parameters given by shape and initializer (normal, He, Xavier), and their mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from bpcalc import engine
from bpcalc.errors import SpecError
from bpcalc.network.parse import load_network
from tests.data_helpers import MLP_TAIL
from tests.helpers import write_net

# --- parameters by shape and initializer --------------------------------------------------------

INIT_NET = """inputs: [[1, 2, 3, 4]]
targets: [1]
layers:
  - {name: h, type: dense, units: 5, init: %s, activation: relu}
  - {name: o, type: dense, units: 2, activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""


def test_normal_init_draws_from_default_rng_of_its_seed_with_zero_bias(tmp_path):
    spec = load_network(str(write_net(tmp_path, INIT_NET % "{type: normal, std: 0.01, seed: 7}")))
    h, o = spec.layers
    assert h.weights.shape == (5, 4)  # out x in
    expected = np.random.default_rng(7).normal(0.0, 0.01, size=(5, 4))
    np.testing.assert_array_equal(h.weights, expected)
    assert h.bias.tolist() == [0.0] * 5
    # o has no init: PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with seed = its position 1
    limit = 1 / np.sqrt(5)
    np.testing.assert_array_equal(
        o.weights, np.random.default_rng(1).uniform(-limit, limit, size=(2, 5))
    )


def test_in_out_layout_draws_weights_as_in_by_out(tmp_path):
    text = (INIT_NET % "he").replace("units: 5,", "units: 5, layout: in_out,")
    assert load_network(str(write_net(tmp_path, text))).layers[0].weights.shape == (4, 5)


def test_he_and_xavier_scales_follow_fan_in_and_fan_out(tmp_path):
    text = """inputs: [[0.0]]
targets: [[0.0]]
layers:
  - {name: a, type: dense, units: 400, init: he}
  - {name: b, type: dense, units: 600, init: xavier}
  - {name: c, type: dense, units: 1}
loss: half_sse
learning_rate: 0.1
""".replace("[[0.0]]\ntargets", "[" + ",".join(["[" + ",".join(["0"] * 200) + "]"]) + "]\ntargets")
    a, b, _ = load_network(str(write_net(tmp_path, text))).layers
    # he: std = sqrt(2/200) = 0.1;  xavier: limit = sqrt(6/(400+600)) = 0.0775
    assert a.weights.std() == pytest.approx(0.1, rel=0.02)
    assert np.abs(b.weights).max() <= np.sqrt(6 / 1000)
    assert b.weights.std() == pytest.approx(np.sqrt(6 / 1000) / np.sqrt(3), rel=0.02)


def test_conv_by_out_channels_and_kernel_size_has_he_fan_in_of_c_kh_kw(tmp_path):
    text = """inputs: [[[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1, 2], [3, 4, 5], [6, 7, 8]]]]
targets: [0]
layers:
  - {name: conv, type: conv2d, out_channels: 3, kernel_size: [2, 1], init: {type: he, seed: 4}}
  - {type: flatten}
  - {type: dense, units: 2, activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""
    conv = load_network(str(write_net(tmp_path, text))).layers[0]
    assert conv.kernel.shape == (3, 2, 2, 1)  # (O, C, kh, kw)
    assert conv.out_shape == (3, 2, 3)
    # fan_in = C·kh·kw = 2·2·1 = 4, so std = sqrt(2/4)
    expected = np.random.default_rng(4).normal(0, np.sqrt(2 / 4), size=(3, 2, 2, 1))
    np.testing.assert_array_equal(conv.kernel, expected)
    assert conv.bias.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("{type: dense, units: 2, weights: [[1, 2], [3, 4]]}", "both weights: .values. and units:"),
        ("{type: dense, weights: [[1, 2], [3, 4]], init: he}", "init: draws the weights"),
        ("{type: dense, units: 2, init: {type: he, std: 0.1}}", "std: applies to type: normal"),
        ("{type: dense, units: 2, init: {type: gauss}}", "init type should be one of"),
        ("{type: dense}", "needs weights: .values. or units:"),
        ("{type: dense, units: 0}", "at least 1"),
    ],
)
def test_init_mistakes_are_spec_errors_that_say_what_to_do(tmp_path, layer, message):
    text = f"inputs: [[1, 2]]\ntargets: [[0, 1]]\nlayers:\n  - {layer}\nloss: half_sse\nlearning_rate: 0.1\n"
    with pytest.raises(SpecError, match=message) as exc:
        load_network(str(write_net(tmp_path, text)))
    assert exc.value.where.line == 4


def test_conv_without_kernel_needs_both_out_channels_and_kernel_size(tmp_path):
    text = "input: [[1, 2], [3, 4]]\ntarget: [[[0]]]\nlayers:\n  - {type: conv2d, out_channels: 1}\nloss: half_sse\nlearning_rate: 0.1\n"
    with pytest.raises(SpecError, match="kernel_size is missing"):
        load_network(str(write_net(tmp_path, text)))


def test_an_unquoted_range_of_columns_gets_a_hint_about_yaml_numbers(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,3\n4,5,6\n", encoding="utf-8")
    # YAML 1.1 reads 1:2 as the base-60 number 62
    p = write_net(tmp_path, "inputs: {file: d.csv, columns: 1:2}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match='column 62 does not exist.*must be quoted, "1:10"'):
        load_network(str(p))


def test_input_from_a_file_is_one_sample_shown_without_a_batch_axis(tmp_path):
    np.save(tmp_path / "img.npy", np.array([[1.0, 2.0], [3.0, 4.0]]))
    text = """input: {file: img.npy}
target: [[[0.5]]]
layers:
  - {type: conv2d, kernel: [[1, 0], [0, 1]]}
loss: half_sse
learning_rate: 0.1
"""
    spec = load_network(str(write_net(tmp_path, text)))
    assert not spec.batched and spec.inputs.shape == (1, 1, 2, 2)
    # z = 1·1 + 0·2 + 0·3 + 1·4 = 5
    assert engine.run(spec).steps[0]["conv2d1.z"].tolist() == [[5.0]]
    with pytest.raises(SpecError, match="limit: applies to a list of samples"):
        load_network(str(write_net(tmp_path, text.replace("img.npy}", "img.npy, limit: 1}"))))
