"""The dtype data is read into: file data straight into float32 or float64, with the same
numbers, and values too large for it reported at the file key."""

from __future__ import annotations

import numpy as np
import pytest

from bpcalc.errors import SpecError
from bpcalc.network.parse import load_network
from tests.data_helpers import MLP_TAIL
from tests.helpers import write_net

# --- the dtype data is read into --------------------------------------------------------------


def test_train_reads_file_data_straight_into_its_dtype_with_the_same_numbers(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 4), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=pixels, y=np.array([0, 1, 2, 1, 0], dtype=np.uint8))
    p = write_net(
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
    p = write_net(tmp_path, "inputs: {file: x.npy}\ntargets: [0, 1]\n" + MLP_TAIL)
    assert load_network(str(p)).inputs[1, 1] == 1e300  # float64, as bpcalc step reads it
    with pytest.raises(SpecError) as e:
        load_network(str(p), data_dtype=np.float32)
    assert e.value.where is not None and e.value.where.line == 1
    assert "element [1, 1] is 1e+300, which does not fit float32" in e.value.message
    assert "train with --dtype float64" in e.value.message


def test_float_data_is_scaled_and_normalized_in_float64_before_it_becomes_float32(tmp_path):
    x = np.array([[1e39, 2e39], [1000.001234, 999.9987]])
    np.save(tmp_path / "x.npy", x)
    p = write_net(tmp_path, "inputs: {file: x.npy, scale: 1e39}\ntargets: [0, 1]\n" + MLP_TAIL)
    # 1e39 does not fit float32, 1e39 / 1e39 does
    np.testing.assert_array_equal(
        load_network(str(p), data_dtype=np.float32).inputs[0], np.float32([1.0, 2.0])
    )
    p = write_net(
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
    p = write_net(tmp_path, "inputs: [[1.0], [2.0]]\ntargets: {file: y.npy}\n" + MLP_TAIL)
    for dtype in (np.float64, np.float32):  # float32 would round 1.00000001 to 1
        with pytest.raises(SpecError, match=message):
            load_network(str(p), data_dtype=dtype)


def test_a_value_beyond_float64_does_not_suggest_float64(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1.0], [np.longdouble("1e400")]], dtype=np.longdouble))
    p = write_net(tmp_path, "inputs: {file: x.npy}\ntargets: [0, 1]\n" + MLP_TAIL)
    with pytest.raises(SpecError) as e:
        load_network(str(p))
    assert "does not fit float64" in e.value.message
    assert "--dtype" not in e.value.message
