"""The fast ops (strided slices, one matrix product per sample) against the loop versions in
tests/reference.py, on random shapes, strides, paddings, flips and overlapping pool windows;
and float32 kept end to end, since training runs in float32."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcalc import engine
from bpcalc.layers.conv2d import Conv2d
from bpcalc.layers.dense import Dense
from bpcalc.layers.pool import AvgPool2d, MaxPool2d
from tests import reference as ref
from tests.helpers import spec_from

pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


@st.composite
def conv_cases(draw: Any) -> dict[str, Any]:
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.tuples(st.integers(0, 2), st.integers(0, 2)))
    stride = draw(pairs)
    kh, kw = draw(pairs)
    h = draw(st.integers(max(1, kh - 2 * padding[0]), 7))
    w = draw(st.integers(max(1, kw - 2 * padding[1]), 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return {
        "x": rng.normal(size=(n, c, h, w)),
        "kernel": rng.normal(size=(o, c, kh, kw)),
        "bias": rng.normal(size=o),
        "stride": stride,
        "padding": padding,
        "flip": draw(st.booleans()),
        "rng": rng,
    }


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_conv2d_forward_and_backward_match_the_loop_version(case: dict[str, Any]) -> None:
    x, k, b = case["x"], case["kernel"], case["bias"]
    stride, padding, flip = case["stride"], case["padding"], case["flip"]
    op = Conv2d(stride, padding, flip)
    params = {"kernel": k, "bias": b}
    z, cache = op.forward(x, params)
    np.testing.assert_allclose(
        z, ref.conv2d_forward(x, k, b, stride, padding, flip), rtol=1e-10, atol=1e-12
    )
    dz = case["rng"].normal(size=z.shape)
    dx, grads = op.backward(dz, cache, params)
    ref_dx, ref_dk, ref_db = ref.conv2d_backward(x, k, dz, stride, padding, flip)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["kernel"], ref_dk, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["bias"], ref_db, rtol=1e-10, atol=1e-12)
    only = op.param_grads(dz, cache, params)  # the first layer's shortcut: same numbers
    np.testing.assert_array_equal(only["kernel"], grads["kernel"])
    np.testing.assert_array_equal(only["bias"], grads["bias"])


@st.composite
def pool_cases(draw: Any) -> dict[str, Any]:
    size, stride = draw(pairs), draw(pairs)  # stride < size: overlapping windows
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(size[0], 7)), draw(st.integers(size[1], 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):  # few distinct values: ties in most windows
        x = rng.integers(-1, 2, size=(n, c, h, w)).astype(float)
    else:
        x = rng.normal(size=(n, c, h, w))
    return {"x": x, "size": size, "stride": stride, "rng": rng}


@settings(max_examples=80, deadline=None)
@given(pool_cases())
def test_max_pooling_matches_the_loop_version_with_ties_and_overlaps(case: dict[str, Any]) -> None:
    x, size, stride = case["x"], case["size"], case["stride"]
    op = MaxPool2d(size, stride)
    a, cache = op.forward(x, {})
    np.testing.assert_array_equal(a, ref.maxpool_forward(x, size, stride))
    dout = case["rng"].normal(size=a.shape)
    dx, _ = op.backward(dout, cache, {})
    np.testing.assert_allclose(dx, ref.maxpool_backward(x, dout, size, stride), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(pool_cases())
def test_average_pooling_matches_the_loop_version(case: dict[str, Any]) -> None:
    x, size, stride = case["x"], case["size"], case["stride"]
    op = AvgPool2d(size, stride)
    a, cache = op.forward(x, {})
    np.testing.assert_allclose(a, ref.avgpool_forward(x, size, stride), rtol=1e-12, atol=1e-12)
    dout = case["rng"].normal(size=a.shape)
    dx, _ = op.backward(dout, cache, {})
    np.testing.assert_allclose(dx, ref.avgpool_backward(x, dout, size, stride), atol=1e-12)


def test_max_pooling_sends_a_tied_window_gradient_to_its_first_element() -> None:
    # one 2x2 window [[1, 3], [3, 2]]: the max 3 stands at (0, 1) and (1, 0); row-major order
    # makes (0, 1) the winner, so ∂L/∂x = [[0, 5], [0, 0]] for ∂L/∂a = 5.
    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    op = MaxPool2d((2, 2), (2, 2))
    a, cache = op.forward(x, {})
    dx, _ = op.backward(np.array([[[[5.0]]]]), cache, {})
    assert a.tolist() == [[[[3.0]]]]
    assert dx.tolist() == [[[[0.0, 5.0], [0.0, 0.0]]]]


def test_overlapping_max_pool_windows_add_their_gradients_where_they_share_the_winner() -> None:
    # 1x3 input [1, 9, 2], windows of 1x2 with stride 1: [1, 9] and [9, 2] both pick the 9,
    # so ∂L/∂x[1] = 2 + 3 = 5 for ∂L/∂a = [2, 3].
    x = np.array([[[[1.0, 9.0, 2.0]]]])
    op = MaxPool2d((1, 2), (1, 1))
    a, cache = op.forward(x, {})
    dx, _ = op.backward(np.array([[[[2.0, 3.0]]]]), cache, {})
    assert a.tolist() == [[[[9.0, 9.0]]]]
    assert dx.tolist() == [[[[0.0, 5.0, 0.0]]]]


def test_dense_param_grads_are_the_backward_pass_parameter_gradients() -> None:
    rng = np.random.default_rng(3)
    for layout, shape in (("out_in", (4, 3)), ("in_out", (3, 4))):
        op = Dense(layout)
        params = {"weights": rng.normal(size=shape), "bias": rng.normal(size=4)}
        x = rng.normal(size=(5, 3))
        z, cache = op.forward(x, params)
        dz = rng.normal(size=z.shape)
        _, grads = op.backward(dz, cache, params)
        only = op.param_grads(dz, cache, params)
        np.testing.assert_array_equal(only["weights"], grads["weights"])
        np.testing.assert_array_equal(only["bias"], grads["bias"])


CNN = {
    "inputs": [np.linspace(-1, 1, 2 * 6 * 6).reshape(2, 6, 6).tolist()],
    "targets": [1],
    "layers": [
        {
            "name": "conv",
            "type": "conv2d",
            "kernel": np.linspace(-0.5, 0.5, 3 * 2 * 3 * 3).reshape(3, 2, 3, 3).tolist(),
            "bias": [0.1, -0.1, 0.0],
            "padding": 1,
            "activation": "relu",
        },
        {"name": "pool", "type": "maxpool2d", "size": 2},
        {"name": "avg", "type": "avgpool2d", "size": 2, "stride": 1},
        {"type": "flatten"},
        {
            "name": "fc",
            "type": "dense",
            "weights": np.linspace(-0.3, 0.3, 3 * 12).reshape(3, 12).tolist(),
            "bias": [0.0, 0.1, 0.2],
            "activation": "softmax",
        },
    ],
    "loss": "cross_entropy",
    "learning_rate": 0.1,
}


def test_the_engine_keeps_float32_in_every_value_of_forward_and_backward() -> None:
    spec = spec_from(CNN)
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec, np.float32)
    seen: dict[str, np.dtype] = {}

    def emit(name: str, arr: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        seen[name] = arr.dtype
        return arr

    x, y = spec.inputs.astype(np.float32), spec.targets.astype(np.float32)
    fwd = engine.forward(layers, params, x, emit)
    grads = engine.backward(spec, layers, params, fwd, y, emit)
    assert "grad.conv.kernel" in seen and "pool.a" in seen and "grad.conv.input" in seen
    assert {name: dt for name, dt in seen.items() if dt != np.float32} == {}
    assert all(g.dtype == np.float32 for pg in grads.values() for g in pg.values())


def test_training_backward_without_the_input_gradient_gives_the_same_parameter_gradients() -> None:
    spec = spec_from(CNN)
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec)
    fwd = engine.forward(layers, params, spec.inputs)
    full = engine.backward(spec, layers, params, fwd, spec.targets)
    fast = engine.backward(spec, layers, params, fwd, spec.targets, input_grad=False)
    for layer, pg in full.items():
        for pname, g in pg.items():
            np.testing.assert_array_equal(fast[layer][pname], g)


def test_the_silent_training_pass_gives_the_recorded_pass_gradients() -> None:
    # training (the silent emitter) skips ∂L/∂a of a softmax + cross-entropy output, whose
    # ∂L/∂z comes from the fused formula p − y; the gradients must not change
    spec = spec_from(CNN)
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec)
    recorded: dict[str, np.ndarray] = {}

    def emit(name: str, arr: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        recorded[name] = arr
        return arr

    fwd = engine.forward(layers, params, spec.inputs)
    silent = engine.backward(spec, layers, params, fwd, spec.targets)
    loud = engine.backward(spec, layers, params, fwd, spec.targets, emit)
    assert "grad.fc.a" in recorded
    for layer, pg in loud.items():
        for pname, g in pg.items():
            np.testing.assert_array_equal(silent[layer][pname], g)
