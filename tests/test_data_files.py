"""Data from files: IDX (gzipped or not), .npy, .npz and .csv, with their mistakes
reported at the key that names the file."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from bpcalc.errors import SpecError
from bpcalc.network.datafiles import read_idx, write_idx
from bpcalc.network.parse import load_network
from tests.data_helpers import MLP_TAIL
from tests.helpers import write_net


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
    p = write_net(
        tmp_path,
        "inputs: {file: x.idx}\ntargets: [0]\n" + MLP_TAIL,
    )
    with pytest.raises(SpecError) as exc:
        load_network(str(p))
    assert exc.value.where.line == 1 and exc.value.where.column == 16
    assert "two zero bytes" in exc.value.message


def test_idx_whose_data_does_not_match_its_header_says_both_sizes(tmp_path):
    (tmp_path / "x.idx").write_bytes(idx_bytes(0x08, (2, 2), b"\x01\x02\x03"))
    p = write_net(tmp_path, "inputs: {file: x.idx}\ntargets: [0, 1]\n" + MLP_TAIL)
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
    p = write_net(
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
    p = write_net(
        tmp_path, "inputs: {file: x.npy}\ntargets: {file: lab-idx1-ubyte.gz}\n" + MLP_TAIL
    )
    assert load_network(str(p)).target_classes.tolist() == [0, 2]


# --- npy, npz, csv ------------------------------------------------------------------------------


def test_npz_key_selects_the_array_and_paths_are_relative_to_the_yaml_file(tmp_path, monkeypatch):
    sub = tmp_path / "nets"
    sub.mkdir()
    np.savez(sub / "data.npz", x=np.array([[1.0, 2.0], [3.0, 4.0]]), y=np.array([0, 2]))
    p = write_net(
        sub, "inputs: {file: data.npz, key: x}\ntargets: {file: data.npz, key: y}\n" + MLP_TAIL
    )
    monkeypatch.chdir(tmp_path)
    spec = load_network(str(p.relative_to(tmp_path)))
    assert spec.inputs.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert spec.target_classes.tolist() == [0, 2]


def test_npz_with_an_unknown_key_suggests_the_close_one(tmp_path):
    np.savez(tmp_path / "data.npz", train_x=np.ones((2, 2)), train_y=np.zeros(2))
    p = write_net(tmp_path, "inputs: {file: data.npz, key: train_X}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match="did you mean 'train_x'"):
        load_network(str(p))


def test_npz_with_several_arrays_needs_a_key(tmp_path):
    np.savez(tmp_path / "data.npz", a=np.ones((2, 2)), b=np.ones((2, 2)))
    p = write_net(tmp_path, "inputs: {file: data.npz}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match="holds 2 arrays .a, b.; add key:"):
        load_network(str(p))


def test_a_missing_data_file_is_reported_at_its_line(tmp_path):
    p = write_net(tmp_path, "name: n\ninputs:\n  file: nowhere.npy\ntargets: [0]\n" + MLP_TAIL)
    with pytest.raises(SpecError) as exc:
        load_network(str(p))
    assert exc.value.where.line == 3
    assert "no such data file" in exc.value.message


def test_csv_skips_a_header_and_columns_split_features_from_labels(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n0.5,1.5,2\n-1,2,0\n", encoding="utf-8")
    p = write_net(
        tmp_path,
        'inputs: {file: d.csv, columns: "0:2"}\ntargets: {file: d.csv, columns: 2}\n' + MLP_TAIL,
    )
    spec = load_network(str(p))
    assert spec.inputs.tolist() == [[0.5, 1.5], [-1.0, 2.0]]
    assert spec.target_classes.tolist() == [2, 0]


def test_csv_with_a_bad_number_names_the_line(tmp_path):
    (tmp_path / "d.csv").write_text("1,2\n3,x\n", encoding="utf-8")
    p = write_net(tmp_path, "inputs: {file: d.csv}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match=r"line 2: 'x' is not a number"):
        load_network(str(p))


def test_one_hot_turns_labels_into_rows_and_rejects_a_label_out_of_range(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    np.save(tmp_path / "y.npy", np.array([2, 0]))
    p = write_net(
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
    p = write_net(
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
    p = write_net(tmp_path, "inputs: {file: x.npy}\ntargets: {file: y.npy}\n" + MLP_TAIL)
    with pytest.raises(SpecError, match="there are 3 inputs but 2 targets"):
        load_network(str(p))


def test_images_for_a_dense_network_suggest_flatten_true(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2, 2)))
    p = write_net(tmp_path, "inputs: {file: x.npy}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match="flatten: true"):
        load_network(str(p))


def test_an_unknown_option_in_a_data_reference_suggests_the_right_one(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    p = write_net(tmp_path, "inputs: {file: x.npy, scal: 2}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError, match="did you mean 'scale'"):
        load_network(str(p))
