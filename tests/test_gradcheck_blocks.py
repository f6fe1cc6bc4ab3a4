"""Layer normalization, residual blocks and layers without a bias against central finite
differences (relative error below 1e-6 in float64): random shapes, normalized axes, inner
layers, nesting, both weight layouts, with and without bias, one sample or a batch.

Shapes and choices come from hypothesis; the numbers from a seeded generator, so no value sits
exactly on a kink (ReLU at 0)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import check_gradients, spec_from

ACTS = ["identity", "relu", "tanh", "sigmoid", "leaky_relu", "gelu", "elu", "softsign"]


def _dense(draw: Any, rng: np.random.Generator, n_in: int, n_out: int) -> dict[str, Any]:
    layout = draw(st.sampled_from(["out_in", "in_out"]))
    shape = (n_out, n_in) if layout == "out_in" else (n_in, n_out)
    layer: dict[str, Any] = {
        "type": "dense",
        "layout": layout,
        "weights": rng.normal(size=shape).tolist(),
        "bias": rng.normal(size=n_out).tolist() if draw(st.booleans()) else "none",
    }
    act = draw(st.sampled_from(ACTS))
    if act != "identity":
        layer["activation"] = act
    return layer


def _layernorm(draw: Any, rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
    k = draw(st.integers(1, len(shape)))
    norm = shape[len(shape) - k :]
    layer: dict[str, Any] = {
        "type": "layernorm",
        "normalized_shape": list(norm),
        "gamma": rng.normal(size=norm).tolist(),
        "beta": rng.normal(size=norm).tolist(),
        "eps": float(draw(st.sampled_from([1e-5, 0.01, 0.5]))),
    }
    if draw(st.booleans()):
        layer["activation"] = draw(st.sampled_from(ACTS[1:]))
    return layer


def _net(draw: Any, rng: np.random.Generator, layers: list, shape: tuple, k: int) -> dict:
    """The layers, then flatten (for images) and a dense output of k units with a loss."""
    if len(shape) > 1:
        layers.append({"type": "flatten"})
    layers.append(_dense(draw, rng, int(np.prod(shape)), k))
    batched = draw(st.booleans())
    n = draw(st.integers(1, 3)) if batched else 1
    xs = [rng.normal(size=shape).tolist() for _ in range(n)]
    ys = [rng.normal(size=k).tolist() for _ in range(n)]
    loss = {"type": draw(st.sampled_from(["mse", "half_sse"])), "reduction": "mean"}
    net = {"layers": layers, "loss": loss, "learning_rate": 0.1}
    if batched:
        net["inputs"], net["targets"] = xs, ys
    else:
        net["input"], net["target"] = xs[0], ys[0]
    return net


@st.composite
def layernorm_networks(draw: Any) -> dict[str, Any]:
    """A layernorm over the last 1 to 3 axes of a vector, a matrix or an image."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(2, 3)) for _ in range(rank))
    return _net(draw, rng, [_layernorm(draw, rng, shape)], shape, draw(st.integers(1, 3)))


def _block(draw: Any, rng: np.random.Generator, d: int, depth: int) -> dict[str, Any]:
    """A residual block on vectors of size d: dense layers through a hidden width and back,
    maybe a layernorm, an activation layer, or a block inside."""
    inner: list[dict[str, Any]] = []
    if draw(st.booleans()):
        inner.append(_layernorm(draw, rng, (d,)))
    h = draw(st.integers(1, 4))
    inner.append(_dense(draw, rng, d, h))
    if draw(st.booleans()):
        inner.append({"type": draw(st.sampled_from(["tanh", "sigmoid", "softsign"]))})
    inner.append(_dense(draw, rng, h, d))
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        inner.append(_block(draw, rng, d, depth + 1))
    for i, layer in enumerate(inner):
        layer["name"] = f"l{i}"
    return {"name": f"res{depth}", "type": "residual", "layers": inner}


@st.composite
def residual_networks(draw: Any) -> dict[str, Any]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = draw(st.integers(1, 4))
    layers = [_block(draw, rng, d, 0)]
    if draw(st.booleans()):  # two blocks in a row, the first one's output feeds the second
        second = _block(draw, rng, d, 1)
        second["name"] = "second"
        layers.append(second)
    return _net(draw, rng, layers, (d,), draw(st.integers(1, 3)))


@st.composite
def conv_residual_networks(draw: Any) -> dict[str, Any]:
    """A convolutional block that keeps the image's shape: k x k kernels with (k − 1)/2 zero
    padding, maybe flipped, maybe without bias, a ReLU between them."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(2, 4)), draw(st.integers(2, 4))
    inner = []
    for i in range(draw(st.integers(1, 2))):
        k = draw(st.sampled_from([1, 3]))
        conv: dict[str, Any] = {
            "name": f"conv{i}",
            "type": "conv2d",
            "kernel": rng.normal(size=(c, c, k, k)).tolist(),
            "padding": (k - 1) // 2,
            "flip": draw(st.booleans()),
            "bias": rng.normal(size=c).tolist() if draw(st.booleans()) else "none",
        }
        if i == 0:
            conv["activation"] = draw(st.sampled_from(["tanh", "relu", "gelu"]))
        inner.append(conv)
    block = {"name": "res", "type": "residual", "layers": inner}
    return _net(draw, rng, [block], (c, h, w), draw(st.integers(1, 2)))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(layernorm_networks())
def test_layernorm_over_any_last_axes_matches_finite_differences(net: dict[str, Any]) -> None:
    check_gradients(spec_from(net))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(residual_networks())
def test_residual_blocks_of_dense_layers_match_finite_differences(net: dict[str, Any]) -> None:
    check_gradients(spec_from(net))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(conv_residual_networks())
def test_convolutional_residual_blocks_match_finite_differences(net: dict[str, Any]) -> None:
    check_gradients(spec_from(net))
