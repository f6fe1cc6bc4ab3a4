"""Data from files (.npy, .npz, .csv, IDX) and parameters by shape and initializer."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from bpcalc import engine
from bpcalc.errors import SpecError
from bpcalc.network.datafiles import read_idx, write_idx
from bpcalc.network.parse import load_network

MLP_TAIL = """layers:
  - {name: out, type: dense, units: 3, init: {type: normal, std: 0.1, seed: 5}, activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def idx_bytes(type_code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file written by hand from the format's description, independent of write_idx."""
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


# --- IDX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_reader_reads_header_dims_and_uint8_pixels_gzipped_or_not(tmp_path, gz):
    pixels = bytes(range(24))  # 2 images of 3 x 4, values 0..23 in row-major order
    raw = idx_bytes(0x08, (2, 3, 4), pixels)
    p = tmp_path / ("images-idx3-ubyte" + (".gz" if gz else ""))
    p.write_bytes(gzip.compress(raw) if gz else raw)
    arr = read_idx(p)
    assert arr.shape == (2, 3, 4)
    assert arr.dtype == np.uint8
    assert arr[1, 2, 3] == 23 and arr[0, 1, 0] == 4  # row-major: [0,1,0] is the 5th byte


def test_idx_reader_reads_big_endian_int32_values(tmp_path):
    # 0x0C is int32, big-endian: 1000 is bytes 00 00 03 E8; -2 is FF FF FF FE
    p = tmp_path / "labels.idx"
    p.write_bytes(idx_bytes(0x0C, (2,), b"\x00\x00\x03\xe8\xff\xff\xff\xfe"))
    assert read_idx(p).tolist() == [1000, -2]


def test_write_idx_round_trips_through_the_reader(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    write_idx(tmp_path / "a.idx", x, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), x)


def test_idx_with_a_wrong_magic_number_is_a_spec_error_at_the_file_key(tmp_path):
    (tmp_path / "x.idx").write_bytes(b"\x1a\x00\x08\x01\x00\x00\x00\x01\x05")
    p = write(
        tmp_path,
        "inputs: {file: x.idx}\ntargets: [0]\n" + MLP_TAIL,
    )
    with pytest.raises(SpecError) as exc:
        load_network(str(p))
    assert exc.value.where.line == 1 and exc.value.where.column == 16
    assert "two zero bytes" in exc.value.message


def test_idx_whose_data_does_not_match_its_header_says_both_sizes(tmp_path):
    (tmp_path / "x.idx").write_bytes(idx_bytes(0x08, (2, 2), b"\x01\x02\x03"))
    p = write(tmp_path, "inputs: {file: x.idx}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(
        SpecError, match=r"2 x 2 values of uint8 \(4 bytes of data\) but the file has 3"
    ):
        load_network(str(p))


def test_mnist_style_idx_files_give_scaled_flattened_inputs_and_class_targets(tmp_path):
    images = np.zeros((3, 2, 2), dtype=np.uint8)
    images[0, 0, 0] = 255
    images[2, 1, 1] = 51
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(0x08, (3, 2, 2), images.tobytes()))
    )
    (tmp_path / "d" / "train-labels-idx1-ubyte").write_bytes(idx_bytes(0x08, (3,), b"\x02\x00\x01"))
    p = write(
        tmp_path,
        "inputs: {file: d/train-images-idx3-ubyte.gz, scale: 255, normalize: {mean: 0.5, std: 0.5}, flatten: true}\n"
        "targets: {file: d/train-labels-idx1-ubyte}\n" + MLP_TAIL,
    )
    spec = load_network(str(p))
    assert spec.inputs.shape == (3, 4) and spec.batched
    # 255/255 = 1 -> (1 - 0.5)/0.5 = 1;  0 -> -1;  51/255 = 0.2 -> (0.2 - 0.5)/0.5 = -0.6
    assert spec.inputs[0, 0] == 1.0 and spec.inputs[0, 1] == -1.0
    assert spec.inputs[2, 3] == pytest.approx(-0.6)
    assert spec.target_classes.tolist() == [2, 0, 1]
    np.testing.assert_array_equal(spec.targets, np.eye(3)[[2, 0, 1]])


def test_a_gz_name_finds_the_unzipped_file_and_the_other_way_round(tmp_path):
    (tmp_path / "lab-idx1-ubyte").write_bytes(idx_bytes(0x08, (2,), b"\x00\x02"))
    np.save(tmp_path / "x.npy", np.ones((2, 2)))
    p = write(tmp_path, "inputs: {file: x.npy}\ntargets: {file: lab-idx1-ubyte.gz}\n" + MLP_TAIL)
    assert load_network(str(p)).target_classes.tolist() == [0, 2]


# --- npy, npz, csv ------------------------------------------------------------------------------


def test_npz_key_selects_the_array_and_paths_are_relative_to_the_yaml_file(tmp_path, monkeypatch):
    sub = tmp_path / "nets"
    sub.mkdir()
    np.savez(sub / "data.npz", x=np.array([[1.0, 2.0], [3.0, 4.0]]), y=np.array([0, 2]))
    p = write(
        sub, "inputs: {file: data.npz, key: x}\ntargets: {file: data.npz, key: y}\n" + MLP_TAIL
    )
    monkeypatch.chdir(tmp_path)
    spec = load_network(str(p.relative_to(tmp_path)))
    assert spec.inputs.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert spec.target_classes.tolist() == [0, 2]


def test_npz_with_an_unknown_key_suggests_the_close_one(tmp_path):
    np.savez(tmp_path / "data.npz", train_x=np.ones((2, 2)), train_y=np.zeros(2))
    p = write(tmp_path, "inputs: {file: data.npz, key: train_X}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match="did you mean 'train_x'"):
        load_network(str(p))


def test_npz_with_several_arrays_needs_a_key(tmp_path):
    np.savez(tmp_path / "data.npz", a=np.ones((2, 2)), b=np.ones((2, 2)))
    p = write(tmp_path, "inputs: {file: data.npz}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match="holds 2 arrays .a, b.; add key:"):
        load_network(str(p))


def test_a_missing_data_file_is_reported_at_its_line(tmp_path):
    p = write(tmp_path, "name: n\ninputs:\n  file: nowhere.npy\ntargets: [0]\n" + MLP_TAIL)
    with pytest.raises(SpecError) as exc:
        load_network(str(p))
    assert exc.value.where.line == 3
    assert "no such data file" in exc.value.message


def test_csv_skips_a_header_and_columns_split_features_from_labels(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n0.5,1.5,2\n-1,2,0\n", encoding="utf-8")
    p = write(
        tmp_path,
        'inputs: {file: d.csv, columns: "0:2"}\ntargets: {file: d.csv, columns: 2}\n' + MLP_TAIL,
    )
    spec = load_network(str(p))
    assert spec.inputs.tolist() == [[0.5, 1.5], [-1.0, 2.0]]
    assert spec.target_classes.tolist() == [2, 0]


def test_csv_with_a_bad_number_names_the_line(tmp_path):
    (tmp_path / "d.csv").write_text("1,2\n3,x\n", encoding="utf-8")
    p = write(tmp_path, "inputs: {file: d.csv}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match=r"line 2: 'x' is not a number"):
        load_network(str(p))


def test_one_hot_turns_labels_into_rows_and_rejects_a_label_out_of_range(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    np.save(tmp_path / "y.npy", np.array([2, 0]))
    p = write(
        tmp_path,
        "inputs: {file: x.npy}\ntargets: {file: y.npy, one_hot: 3}\n"
        + MLP_TAIL.replace("cross_entropy", "half_mse").replace("softmax", "sigmoid"),
    )
    spec = load_network(str(p))
    assert spec.targets.tolist() == [[0, 0, 1], [1, 0, 0]]
    np.save(tmp_path / "y.npy", np.array([3, 0]))
    with pytest.raises(SpecError, match="label 3 of sample 0 is not a class index 0 to 2"):
        load_network(str(p))


def test_limit_takes_the_first_samples_and_shape_reshapes_each(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(20.0).reshape(5, 4))
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 0, 1]))
    conv = """layers:
  - {type: conv2d, out_channels: 2, kernel_size: 2, activation: relu}
  - {type: flatten}
  - {type: dense, units: 3, activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""
    p = write(
        tmp_path,
        "inputs: {file: x.npy, limit: 3, shape: [1, 2, 2]}\ntargets: {file: y.npy, limit: 3}\n"
        + conv,
    )
    spec = load_network(str(p))
    assert spec.inputs.shape == (3, 1, 2, 2)
    assert spec.inputs[2, 0, 1, 0] == 10.0  # sample 2 is 8..11; [1, 0] is its third value


def test_targets_in_a_file_must_match_the_number_of_inputs(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    p = write(tmp_path, "inputs: {file: x.npy}\ntargets: {file: y.npy}\n" + MLP_TAIL)
    with pytest.raises(SpecError, match="there are 3 inputs but 2 targets"):
        load_network(str(p))


def test_images_for_a_dense_network_suggest_flatten_true(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2, 2)))
    p = write(tmp_path, "inputs: {file: x.npy}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match="flatten: true"):
        load_network(str(p))


def test_an_unknown_option_in_a_data_reference_suggests_the_right_one(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    p = write(tmp_path, "inputs: {file: x.npy, scal: 2}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match="did you mean 'scale'"):
        load_network(str(p))


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
    spec = load_network(str(write(tmp_path, INIT_NET % "{type: normal, std: 0.01, seed: 7}")))
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
    assert load_network(str(write(tmp_path, text))).layers[0].weights.shape == (4, 5)


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
    a, b, _ = load_network(str(write(tmp_path, text))).layers
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
    conv = load_network(str(write(tmp_path, text))).layers[0]
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
        load_network(str(write(tmp_path, text)))
    assert exc.value.where.line == 4


def test_conv_without_kernel_needs_both_out_channels_and_kernel_size(tmp_path):
    text = "input: [[1, 2], [3, 4]]\ntarget: [[[0]]]\nlayers:\n  - {type: conv2d, out_channels: 1}\nloss: half_sse\nlearning_rate: 0.1\n"
    with pytest.raises(SpecError, match="kernel_size is missing"):
        load_network(str(write(tmp_path, text)))


def test_an_unquoted_range_of_columns_gets_a_hint_about_yaml_numbers(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,3\n4,5,6\n", encoding="utf-8")
    # YAML 1.1 reads 1:2 as the base-60 number 62
    p = write(tmp_path, "inputs: {file: d.csv, columns: 1:2}\ntargets: [0, 1]\n" + MLP_TAIL)
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
    spec = load_network(str(write(tmp_path, text)))
    assert not spec.batched and spec.inputs.shape == (1, 1, 2, 2)
    # z = 1·1 + 0·2 + 0·3 + 1·4 = 5
    assert engine.run(spec).steps[0]["conv2d1.z"].tolist() == [[5.0]]
    with pytest.raises(SpecError, match="limit: applies to a list of samples"):
        load_network(str(write(tmp_path, text.replace("img.npy}", "img.npy, limit: 1}"))))


# --- the dtype data is read into --------------------------------------------------------------


def test_train_reads_file_data_straight_into_its_dtype_with_the_same_numbers(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 4), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=pixels, y=np.array([0, 1, 2, 1, 0], dtype=np.uint8))
    p = write(
        tmp_path,
        "inputs: {file: d.npz, key: x, scale: 255, normalize: {mean: 0.5, std: 0.25}}\n"
        "targets: {file: d.npz, key: y}\n" + MLP_TAIL,
    )
    exact = load_network(str(p))
    single = load_network(str(p), data_dtype=np.float32)
    assert exact.inputs.dtype == np.float64 and exact.targets.dtype == np.float64
    assert single.inputs.dtype == np.float32 and single.targets.dtype == np.float32
    # float64 arithmetic either way, rounded once to float32
    np.testing.assert_array_equal(single.inputs, exact.inputs.astype(np.float32))
    np.testing.assert_array_equal(single.targets, exact.targets)
    assert single.target_classes.tolist() == [0, 1, 2, 1, 0]


def test_a_file_value_too_large_for_float32_is_an_error_at_the_file_key(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1.0, 2.0], [3.0, 1e300]]))
    p = write(tmp_path, "inputs: {file: x.npy}\ntargets: [0, 1]\n" + MLP_TAIL)
    assert load_network(str(p)).inputs[1, 1] == 1e300  # float64, as bpcalc step reads it
    with pytest.raises(SpecError) as e:
        load_network(str(p), data_dtype=np.float32)
    assert e.value.where is not None and e.value.where.line == 1
    assert "element [1, 1] is 1e+300, which does not fit float32" in e.value.message
    assert "train with --dtype float64" in e.value.message


def test_float_data_is_scaled_and_normalized_in_float64_before_it_becomes_float32(tmp_path):
    x = np.array([[1e39, 2e39], [1000.001234, 999.9987]])
    np.save(tmp_path / "x.npy", x)
    p = write(tmp_path, "inputs: {file: x.npy, scale: 1e39}\ntargets: [0, 1]\n" + MLP_TAIL)
    # 1e39 does not fit float32, 1e39 / 1e39 does
    np.testing.assert_array_equal(
        load_network(str(p), data_dtype=np.float32).inputs[0], np.float32([1.0, 2.0])
    )
    p = write(
        tmp_path,
        "inputs: {file: x.npy, limit: 2, normalize: {mean: 1000, std: 0.001}}\ntargets: [0, 1]\n"
        + MLP_TAIL,
    )
    np.save(tmp_path / "x.npy", x[1:].repeat(2, axis=0))
    exact = load_network(str(p)).inputs
    single = load_network(str(p), data_dtype=np.float32).inputs
    np.testing.assert_array_equal(single, exact.astype(np.float32))  # 1.234, not 1.2207


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([1.00000001, 2.0], "has 1 value"),  # not whole numbers: not class labels
        ([[1.00000001, 0.0, 0.0], [0.0, 1.0, 0.0]], "between 0 and 1"),
    ],
)
def test_step_and_train_judge_target_files_alike(tmp_path, targets, message):
    np.save(tmp_path / "y.npy", np.array(targets))
    p = write(tmp_path, "inputs: [[1.0], [2.0]]\ntargets: {file: y.npy}\n" + MLP_TAIL)
    for dtype in (np.float64, np.float32):  # float32 would round 1.00000001 to 1
        with pytest.raises(SpecError, match=message):
            load_network(str(p), data_dtype=dtype)


def test_a_value_beyond_float64_does_not_suggest_float64(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1.0], [np.longdouble("1e400")]], dtype=np.longdouble))
    p = write(tmp_path, "inputs: {file: x.npy}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError) as e:
        load_network(str(p))
    assert "does not fit float64" in e.value.message
    assert "--dtype" not in e.value.message
