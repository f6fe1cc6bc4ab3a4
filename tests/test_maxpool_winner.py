"""Max pooling records each window's winner in the forward pass and its backward pass writes
∂L/∂a straight to it. Checked against the loop reference (tests/reference.py) and, bit for
bit, against the rule it replaced: compare every element with the maximum, first match wins
(ties, signed zeros, NaN, infinities, gaps and overlapping windows included)."""

from __future__ import annotations

import numpy as np
import pytest

from bpcalc.layers.pool import NO_WINNER, MaxPool2d, _taps
from tests import reference as ref


def compare_with_the_maximum(
    x: np.ndarray, out: np.ndarray, dout: np.ndarray, size: tuple[int, int], stride: tuple[int, int]
) -> np.ndarray:
    """The backward pass before the winner was recorded: each position of the window, in
    row-major order, wins where it equals the maximum and no earlier one did."""
    ho, wo = out.shape[2:]
    dx = np.zeros(x.shape, dtype=dout.dtype)
    open_ = np.ones(out.shape, dtype=bool)
    for rows, cols in _taps(size, stride, ho, wo):
        won = (x[:, :, rows, cols] == out) & open_
        open_ &= ~won
        dx[:, :, rows, cols] += dout * won
    return dx


GEOMETRIES = [
    ((2, 2), (2, 2)),  # tiled: every element in one window
    ((2, 2), (3, 3)),  # gaps between the windows
    ((3, 2), (1, 2)),  # rows overlap
    ((3, 3), (2, 2)),  # both overlap
    ((1, 1), (1, 1)),
]


@pytest.mark.parametrize(("size", "stride"), GEOMETRIES)
@pytest.mark.parametrize("values", ["normal", "ties", "signed zeros"])
def test_the_max_pool_gradient_is_the_loop_reference_bit_for_bit(
    size: tuple[int, int], stride: tuple[int, int], values: str
) -> None:
    rng = np.random.default_rng(7)
    for h, w in ((7, 8), (size[0], size[1]), (9, 5)):
        shape = (2, 3, max(h, size[0]), max(w, size[1]))
        if values == "normal":
            x = rng.normal(size=shape)
        elif values == "ties":
            x = rng.integers(-1, 2, size=shape).astype(float)
        else:
            x = rng.choice([-0.0, 0.0], size=shape)
        op = MaxPool2d(size, stride)
        a, cache = op.forward(x, {})
        np.testing.assert_array_equal(a, ref.maxpool_forward(x, size, stride))
        dout = rng.normal(size=a.shape)
        dout[0, 0] = -0.0  # a lost element gets +0.0, as 0 + ∂L/∂a·0 always gave
        dx, _ = op.backward(dout, cache, {})
        assert dx.tobytes() == compare_with_the_maximum(x, a, dout, size, stride).tobytes()
        expected = ref.maxpool_backward(x, dout, size, stride)
        if stride[0] >= size[0] and stride[1] >= size[1]:  # one term per element
            assert dx.tobytes() == expected.tobytes(), (shape, values)
        else:  # the loop adds overlapping windows' shares in another order
            np.testing.assert_allclose(dx, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize(("size", "stride"), GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_infinities_pool_and_flow_back_as_they_did(
    size: tuple[int, int], stride: tuple[int, int], dtype: type
) -> None:
    rng = np.random.default_rng(11)
    x = rng.choice([-0.0, 0.0, 1.0, np.nan, np.inf, -np.inf], size=(2, 2, 7, 7)).astype(dtype)
    op = MaxPool2d(size, stride)
    a, cache = op.forward(x, {})
    dout = rng.normal(size=a.shape).astype(dtype)
    dout[rng.random(a.shape) < 0.2] = np.nan
    dx, _ = op.backward(dout, cache, {})
    assert dx.tobytes() == compare_with_the_maximum(x, a, dout, size, stride).tobytes()


def test_float32_pooling_gives_float32_gradients_equal_to_the_float64_reference() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 2, 10, 10)).astype(np.float32)
    op = MaxPool2d((2, 2), (2, 2))
    a, cache = op.forward(x, {})
    dout = rng.normal(size=a.shape).astype(np.float32)
    dx, _ = op.backward(dout, cache, {})
    assert a.dtype == dx.dtype == np.float32
    expected = ref.maxpool_backward(x.astype(np.float64), dout.astype(np.float64), (2, 2), (2, 2))
    np.testing.assert_array_equal(dx, expected)  # one term per element: no rounding


def test_the_cache_holds_one_byte_per_window_not_the_input() -> None:
    x = np.arange(64.0).reshape(1, 1, 8, 8)
    a, cache = MaxPool2d((2, 2), (2, 2)).forward(x, {})
    assert cache.x_shape == x.shape
    assert cache.winner.dtype == np.uint8 and cache.winner.shape == a.shape
    # increasing values: the bottom-right element, number 1·2 + 1 = 3, wins every window
    assert (cache.winner == 3).all()


def test_a_window_whose_maximum_is_nan_sends_no_gradient_anywhere() -> None:
    # NaN equals nothing, so no element of that window was ever "the maximum"
    x = np.array([[[[1.0, np.nan, 5.0, 2.0], [0.0, 3.0, 1.0, 4.0]]]])
    op = MaxPool2d((2, 2), (2, 2))
    a, cache = op.forward(x, {})
    assert np.isnan(a[0, 0, 0, 0]) and a[0, 0, 0, 1] == 5.0
    assert cache.winner[0, 0, 0].tolist() == [NO_WINNER, 0]
    dx, _ = op.backward(np.array([[[[2.0, 3.0]]]]), cache, {})
    assert dx.tolist() == [[[[0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]]


def test_a_window_of_more_than_254_positions_records_its_winner_in_a_wider_integer():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 20, 20))
    pool = MaxPool2d((20, 20), (20, 20))
    out, cache = pool.forward(x, {})
    np.testing.assert_array_equal(out[..., 0, 0], x.max(axis=(2, 3)))
    dx, _ = pool.backward(np.ones_like(out), cache, {})
    flat = x.reshape(2, 3, -1)
    expected = np.zeros_like(flat)
    np.put_along_axis(expected, flat.argmax(axis=2)[..., None], 1.0, axis=2)
    np.testing.assert_array_equal(dx, expected.reshape(x.shape))
