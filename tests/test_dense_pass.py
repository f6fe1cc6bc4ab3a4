"""The buffered dense pass (bpcalc.dense_pass) gives TrainPass's numbers to the last bit, step
after step, on dense networks ending in softmax with cross-entropy; other networks and
other batches go through TrainPass."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcalc import training
from bpcalc.dense_pass import DensePass
from bpcalc.spec.load import load_yaml_text
from bpcalc.spec.schema import NetworkSpec, parse_network
from bpcalc.trainpass import TrainPass

HIDDEN = ["identity", "relu", "leaky_relu", "sigmoid", "tanh"]


def _flow(a: np.ndarray) -> str:
    return "[" + ", ".join(_flow(v) if v.ndim else repr(float(v)) for v in a) + "]"


def _network(draw: st.DrawFn) -> tuple[str, int]:
    n_in = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    layers, prev = [], n_in
    sizes = [draw(st.integers(1, 6)) for _ in range(draw(st.integers(0, 3)))]
    sizes.append(draw(st.integers(2, 4)))
    for i, units in enumerate(sizes):
        last = i == len(sizes) - 1
        out_in = draw(st.booleans())
        w = rng.normal(0.0, 0.8, (units, prev) if out_in else (prev, units))
        shared = draw(st.booleans())
        bias = repr(float(rng.normal())) if shared else _flow(rng.normal(0.0, 0.5, units))
        act = "softmax" if last else draw(st.sampled_from([*HIDDEN, None]))
        fields = [
            f"name: l{i}",
            "type: dense",
            f"weights: {_flow(w)}",
            f"bias: {bias}",
            f"layout: {'out_in' if out_in else 'in_out'}",
        ]
        if shared:
            fields.append("bias_shared: true")
        if act is not None:
            fields.append(f"activation: {act}")
            if act == "leaky_relu":
                fields.append("slope: 0.2")
        layers.append("  - {" + ", ".join(fields) + "}")
        prev = units
    reduction = draw(st.sampled_from(["mean", "sum"]))
    text = (
        f"inputs: [{_flow(np.zeros(n_in))}]\ntargets: [0]\nlayers:\n"
        + "\n".join(layers)
        + f"\nloss: {{type: cross_entropy, reduction: {reduction}}}\nlearning_rate: 0.3\n"
    )
    return text, prev


def _spec(text: str) -> NetworkSpec:
    return parse_network(load_yaml_text(text, "net.yaml"))


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from([np.float32, np.float64]))
def test_the_buffered_pass_trains_bit_for_bit_like_trainpass(data: st.DataObject, dtype) -> None:
    text, k = _network(data.draw)
    spec = _spec(text)
    fast, plain = training.Trainer(spec, dtype), training.Trainer(spec, dtype, dense_pass=False)
    assert isinstance(fast._pass, DensePass) and type(plain._pass) is TrainPass
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    n_in = spec.layers[0].in_shape[0]
    for step in range(6):
        n = (5, 5, 3, 5, 1, 3)[step]  # a smaller last batch, and back: buffers per batch size
        x = rng.normal(0.0, 1.0, (n, n_in)).astype(dtype)
        y = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
        if step == 3:
            y[0] = 0.5 / k * np.arange(k)  # a target that is not one-hot: p·Σy − y
        one_hot = step != 3 and step % 2 == 0  # as fit says when every target is one-hot
        with np.errstate(all="ignore"):  # as in `bpcalc train`: big steps may overflow
            loss_a, out_a = fast.step_with_output(x, y, one_hot)
            loss_b, out_b = plain.step_with_output(x, y, one_hot)
        assert loss_a == loss_b or (np.isnan(loss_a) and np.isnan(loss_b)), step
        assert out_a.tobytes() == out_b.tobytes(), step
        for layer, ps in plain.params.items():
            for name, value in ps.items():
                assert fast.params[layer][name].tobytes() == value.tobytes(), (step, layer, name)


BASE = """inputs: [[0.5, -1.0]]
targets: [[0, 1]]
layers:
  - {name: h, type: dense, units: 3, init: {type: normal, std: 0.5, seed: 0}, activation: relu}
  - {name: out, type: dense, units: 2, init: {type: normal, std: 0.5, seed: 1}, activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""


def test_its_gradients_live_in_buffers_kept_from_step_to_step() -> None:
    spec = _spec(BASE)
    trainer = training.Trainer(spec, np.float32)
    dp = trainer._pass
    assert isinstance(dp, DensePass)
    x = np.array([[0.5, -1.0], [1.0, 2.0]], np.float32)
    y = np.eye(2, dtype=np.float32)[[1, 0]]
    _, _, g1 = dp.run(trainer.params, x, y)
    w = g1["h"]["weights"]
    _, _, g2 = dp.run(trainer.params, x, y)
    assert g2["h"]["weights"] is w  # the same array, written again: no new one a step
    assert (
        TrainPass(spec, trainer.layers).run(trainer.params, x, y)[0]
        == dp.run(trainer.params, x, y)[0]
    )


@pytest.mark.parametrize(
    "change",
    [
        ("softmax}\nloss: cross_entropy", "sigmoid}\nloss: binary_cross_entropy"),  # no log-softmax
        ("learning_rate: 0.1", "optimizer: {type: adam, lr: 0.1}"),  # keeps gradient state
        ("learning_rate: 0.1", "learning_rate: 0.1\nregularization: {l2: 0.01}"),
        ("activation: relu}", "activation: relu}\n  - {name: d, type: dropout, p: 0.5}"),
    ],
)
def test_other_networks_train_through_trainpass(change: tuple[str, str]) -> None:
    spec = _spec(BASE.replace(*change))
    assert type(training.Trainer(spec, np.float32)._pass) is TrainPass


def test_a_batch_of_another_dtype_goes_through_trainpass_with_its_numbers() -> None:
    spec = _spec(BASE)
    trainer = training.Trainer(spec, np.float32)
    assert isinstance(trainer._pass, DensePass)
    x = np.array([[0.5, -1.0], [1.0, 2.0]])  # float64 into a float32 network
    y = np.eye(2)[[1, 0]]
    expected = TrainPass(spec, trainer.layers).run(trainer.params, x, y)[0]
    assert trainer._pass.run(trainer.params, x, y)[0] == expected


def test_a_frozen_parameter_stays_and_the_rest_train_as_through_trainpass() -> None:
    spec = _spec(BASE.replace("activation: relu}", "activation: relu, freeze: bias}"))
    fast = training.Trainer(spec, np.float32)
    plain = training.Trainer(spec, np.float32, dense_pass=False)
    assert isinstance(fast._pass, DensePass)
    frozen = fast.params["h"]["bias"].copy()
    x = np.array([[0.5, -1.0], [1.0, 2.0], [-1.5, 0.25]], np.float32)
    y = np.eye(2, dtype=np.float32)[[1, 0, 1]]
    for _ in range(3):
        assert fast.step_with_output(x, y, True)[0] == plain.step_with_output(x, y, True)[0]
    assert fast.params["h"]["bias"].tobytes() == frozen.tobytes()
    for layer, ps in plain.params.items():
        for name, value in ps.items():
            assert fast.params[layer][name].tobytes() == value.tobytes(), (layer, name)


def test_with_every_parameter_trained_they_share_one_array_updated_at_once() -> None:
    spec = _spec(BASE)
    trainer = training.Trainer(spec, np.float32)
    flat = trainer._pass._params
    assert flat is not None and flat.size == 3 * 2 + 3 + 2 * 3 + 2
    for ps in trainer.params.values():
        for value in ps.values():
            assert value.base is flat
    before = flat.copy()
    trainer.train_step(np.array([[0.5, -1.0]], np.float32), np.array([[0.0, 1.0]], np.float32))
    assert not np.array_equal(flat, before)  # the views moved with it
