"""Every layer type, activation, loss and convention switch against central finite differences.

Shapes, layer choices and switches come from hypothesis; the numbers themselves come from a
seeded generator, so no value sits exactly on a kink (ReLU at 0, a tie in a max-pool window).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcalc import activations
from tests.helpers import check_gradients, spec_from

# every element-wise activation that is registered: a new one is checked without editing this
ACTS = [k for k in activations.kinds() if activations.unit_class(k).elementwise]
REGRESSION = ["mse", "half_mse", "sse", "half_sse"]


def _targets(rng: np.random.Generator, loss: str, k: int, n: int, batched: bool) -> Any:
    if loss == "cross_entropy":
        rows = [int(c) for c in rng.integers(0, k, size=n)]
    elif loss == "binary_cross_entropy":
        rows = [rng.integers(0, 2, size=k).astype(float).tolist() for _ in range(n)]
    else:
        rows = [rng.normal(size=k).tolist() for _ in range(n)]
    return rows if batched else rows[0]


def _options(act: str) -> dict[str, float]:
    """Each option of the activation (LeakyReLU's slope) set away from its default."""
    return {k: v * 10 for k, v in activations.unit_class(act).options.items()}


def _output_activation(loss: str, draw: Any) -> str:
    if loss == "cross_entropy":
        return "softmax"
    if loss == "binary_cross_entropy":
        return "sigmoid"
    return draw(st.sampled_from(ACTS))


@st.composite
def dense_networks(draw: Any) -> dict[str, Any]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    loss = draw(st.sampled_from([*REGRESSION, "cross_entropy", "binary_cross_entropy"]))
    batched = draw(st.booleans())
    n = draw(st.integers(1, 3)) if batched else 1
    sizes = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(2, 4)))]
    if loss == "cross_entropy":
        sizes[-1] = max(sizes[-1], 2)
    layers = []
    for i in range(1, len(sizes)):
        last = i == len(sizes) - 1
        layout = draw(st.sampled_from(["out_in", "in_out"]))
        shape = (sizes[i], sizes[i - 1]) if layout == "out_in" else (sizes[i - 1], sizes[i])
        bias = draw(st.sampled_from(["values", "shared", "none"]))
        layer: dict[str, Any] = {
            "type": "dense",
            "layout": layout,
            "weights": rng.normal(size=shape).tolist(),
            "bias": {
                "values": rng.normal(size=sizes[i]).tolist(),
                "shared": float(rng.normal()),
                "none": "none",
            }[bias],
            "bias_shared": bias == "shared",
        }
        act = _output_activation(loss, draw) if last else draw(st.sampled_from(ACTS))
        if last and act in ("softmax", "sigmoid") and draw(st.booleans()):
            layers.append(layer)  # the output activation as a layer of its own
            layers.append({"type": act})
            continue
        if not last and draw(st.booleans()):  # the activation as a layer of its own
            layers.append(layer)
            layers.append({"type": act, **_options(act)})
            continue
        layer["activation"] = act
        layer.update(_options(act))
        layers.append(layer)
    xs = [rng.normal(size=sizes[0]).tolist() for _ in range(n)]
    reduction = draw(st.sampled_from(["mean", "sum"]))
    net: dict[str, Any] = {
        "layers": layers,
        "loss": {"type": loss, "reduction": reduction},
        "learning_rate": 0.1,
    }
    if batched:
        net["inputs"] = xs
        net["targets"] = _targets(rng, loss, sizes[-1], n, True)
    else:
        net["input"] = xs[0]
        net["target"] = _targets(rng, loss, sizes[-1], n, False)
    return net


@st.composite
def conv_networks(draw: Any) -> dict[str, Any]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    loss = draw(st.sampled_from([*REGRESSION, "cross_entropy"]))
    c = draw(st.integers(1, 2))
    h, w = draw(st.integers(3, 6)), draw(st.integers(3, 6))
    batched = draw(st.booleans())
    n = draw(st.integers(1, 2)) if batched else 1
    two_d = c == 1 and draw(st.booleans())
    o = 1 if two_d else draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    padding = [draw(st.integers(0, 1)), draw(st.integers(0, 1))]
    kernel = rng.normal(size=(kh, kw) if two_d else (o, c, kh, kw)).tolist()
    conv: dict[str, Any] = {
        "type": "conv2d",
        "kernel": kernel,
        "bias": rng.normal(size=o).tolist() if draw(st.booleans()) else "none",
        "stride": stride,
        "padding": padding,
        "flip": draw(st.booleans()),
        "activation": draw(st.sampled_from(ACTS)),
    }
    layers: list[dict[str, Any]] = [conv]
    ho = (h + 2 * padding[0] - kh) // stride[0] + 1
    wo = (w + 2 * padding[1] - kw) // stride[1] + 1
    pool = draw(st.sampled_from([None, "maxpool2d", "avgpool2d"]))
    if pool and ho >= 2 and wo >= 2:
        size = draw(st.integers(1, 2))
        ps = draw(st.integers(1, 2))
        if (ho - size) % ps or (wo - size) % ps:
            ps = 1
        layers.append({"type": pool, "size": size, "stride": ps})
        ho, wo = (ho - size) // ps + 1, (wo - size) // ps + 1
    layers.append({"type": "flatten"})
    k = draw(st.integers(2, 3))
    layers.append(
        {
            "type": "dense",
            "weights": rng.normal(size=(k, o * ho * wo)).tolist(),
            "bias": rng.normal(size=k).tolist(),
            "activation": _output_activation(loss, draw),
        }
    )
    xs = [rng.normal(size=(h, w) if two_d else (c, h, w)).tolist() for _ in range(n)]
    net: dict[str, Any] = {"layers": layers, "loss": loss, "learning_rate": 0.1}
    if batched:
        net["inputs"], net["targets"] = xs, _targets(rng, loss, k, n, True)
    else:
        net["input"], net["target"] = xs[0], _targets(rng, loss, k, n, False)
    return net


@settings(max_examples=80, deadline=None, derandomize=True)
@given(dense_networks())
def test_dense_networks_match_finite_differences(net: dict[str, Any]) -> None:
    check_gradients(spec_from(net))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(conv_networks())
def test_conv_and_pool_networks_match_finite_differences(net: dict[str, Any]) -> None:
    check_gradients(spec_from(net))


def test_gradcheck_notices_a_wrong_gradient(monkeypatch: Any) -> None:
    """The check itself can fail: break ReLU's derivative and it must complain."""
    import pytest

    from bpcalc import activations

    real = activations.Tanh.derivative

    def broken(self: Any, z: Any, a: Any) -> Any:
        return real(self, z, a) * 0.5

    monkeypatch.setattr(activations.Tanh, "derivative", broken)
    net = {
        "input": [0.3, -0.2],
        "target": [0.1],
        "layers": [{"type": "dense", "weights": [[0.5, -0.4]], "activation": "tanh"}],
        "loss": "mse",
        "learning_rate": 0.1,
    }
    with pytest.raises(AssertionError, match="relative error"):
        check_gradients(spec_from(net))
