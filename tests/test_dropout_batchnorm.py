"""Dropout (inverted, given mask or seeded) and batch normalization (training mode)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcalc import engine
from bpcalc.cli import run
from bpcalc.network.parse import parse_network
from bpcalc.network.yaml_source import load_yaml_text
from bpcalc.ops.batchnorm import BatchNorm
from bpcalc.ops.dropout import Dropout
from tests.helpers import numeric_grad


def near(v, **kw):
    return pytest.approx(np.array(v, dtype=float), **kw)


def spec_of(text: str):
    return parse_network(load_yaml_text(text, "net.yaml"))


def total_loss(spec, params, samples=None) -> float:
    layers = [engine.build_layer(s) for s in spec.layers]
    idx = np.arange(spec.inputs.shape[0]) if samples is None else np.asarray(samples)
    engine.begin_step(layers, idx)
    fwd = engine.forward(layers, params, spec.inputs[idx])
    loss, _ = engine.loss_value(spec, fwd.out, fwd.z_out, spec.targets[idx])
    return loss


def fd_check(spec, step) -> int:
    """Every parameter's gradient against central differences (float64); returns how many."""
    params = engine.initial_params(spec)
    h, checked = 1e-6, 0
    for layer, ps in params.items():
        for pname, theta in ps.items():
            if f"grad.{layer}.{pname}" not in step:
                continue
            got = np.asarray(step[f"grad.{layer}.{pname}"]).reshape(theta.shape)
            num = np.zeros_like(theta)
            for i in np.ndindex(theta.shape):
                old = theta[i]
                theta[i] = old + h
                up = total_loss(spec, params)
                theta[i] = old - h
                down = total_loss(spec, params)
                theta[i] = old
                num[i] = (up - down) / (2 * h)
            err = np.abs(got - num).max() / max(np.abs(num).max(), 1e-8)
            assert err < 1e-6, (layer, pname, got, num)
            checked += 1
    return checked


def op_fd(forward, x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """∂(Σ r ⊙ forward(x))/∂x by central differences (five-point stencil, tests.helpers)."""
    return numeric_grad(lambda: float((r * forward(x)).sum()), x)


def rel_err(got: np.ndarray, num: np.ndarray) -> float:
    return float(np.abs(got - num).max() / max(np.abs(num).max(), 1e-8))


# --- dropout ------------------------------------------------------------------------------

DROP = """input: [1.0, 2.0, 3.0, 4.0]
target: [0.0]
layers:
  - name: drop
    type: dropout
    p: 0.5
    mask: [1, 0, 1, 0]
  - name: fc
    type: dense
    weights: [[0.1, 0.2, 0.3, 0.4]]
    bias: [0.0]
loss: half_sse
learning_rate: 0.1
"""


def test_dropout_with_a_given_mask_scales_the_kept_units_by_one_over_one_minus_p():
    step = engine.run(spec_of(DROP)).steps[0]
    # a = x ⊙ m / (1 − 0.5) = [1, 0, 3, 0]·2 = [2, 0, 6, 0]
    assert step["drop.mask"] == near([1, 0, 1, 0])
    assert step["drop.a"] == near([2, 0, 6, 0])
    # z = 0.1·2 + 0.3·6 = 2, L = ½·2² = 2, ∂L/∂z = 2
    assert float(step["loss"]) == pytest.approx(2.0)
    # ∂L/∂a_drop = Wᵀ·2 = [0.2, 0.4, 0.6, 0.8]; ∂L/∂x = that ⊙ m / 0.5 = [0.4, 0, 1.2, 0]
    assert step["grad.drop.a"] == near([0.2, 0.4, 0.6, 0.8])
    assert step["grad.drop.input"] == near([0.4, 0, 1.2, 0])
    # ∂L/∂W = 2·a = [4, 0, 12, 0]: dropped units get no weight gradient
    assert step["grad.fc.weights"] == near([[4, 0, 12, 0]])


def test_dropout_backward_matches_finite_differences_with_a_fixed_mask():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5))
    mask = (rng.random((3, 5)) > 0.4).astype(float)
    op = Dropout(0.4, (5,), mask)
    op.begin_step(np.arange(3))
    r = rng.normal(size=(3, 5))
    _, cache = op.forward(x, {})
    dx, grads = op.backward(r, cache, {})
    assert grads == {}
    assert rel_err(dx, op_fd(lambda v: op.forward(v, {})[0], x, r)) < 1e-6


MLP_DROP = """inputs: [[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8]]
targets: [[1.0], [0.0], [1.0]]
layers:
  - name: hidden
    type: dense
    weights: [[0.4, -0.6], [0.7, 0.2], [-0.3, 0.5]]
    bias: [0.1, -0.2, 0.3]
    activation: tanh
  - name: drop
    type: dropout
    p: 0.25
    mask: [[1, 0, 1], [1, 1, 0], [0, 1, 1]]
  - name: out
    type: dense
    weights: [[0.6, -0.4, 0.9]]
    bias: [0.05]
    activation: sigmoid
loss: binary_cross_entropy
learning_rate: 0.1
"""


def test_a_network_with_dropout_has_gradients_that_match_finite_differences():
    spec = spec_of(MLP_DROP)
    assert fd_check(spec, engine.run(spec).steps[0]) == 4


def test_per_sample_masks_follow_the_dataset_index_in_sgd_mode():
    steps = engine.run(spec_of(MLP_DROP + "mode: sgd\nshuffle: true\nseed: 5\n"), steps=3).steps
    masks = np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1]])
    for step in steps:
        (i,) = step.samples
        assert step["drop.mask"] == near([masks[i]])


def test_a_seeded_dropout_draws_a_new_reproducible_mask_every_step():
    text = MLP_DROP.replace("    mask: [[1, 0, 1], [1, 1, 0], [0, 1, 1]]\n", "    seed: 11\n")
    text = text.replace("p: 0.25", "p: 0.5")
    steps = engine.run(spec_of(text), steps=2).steps
    rng = np.random.default_rng(11)
    first = (rng.random((3, 3)) >= 0.5).astype(float)  # kept when u ≥ p
    second = (rng.random((3, 3)) >= 0.5).astype(float)
    assert steps[0]["drop.mask"] == near(first)
    assert steps[1]["drop.mask"] == near(second)
    again = engine.run(spec_of(text), steps=2).steps
    assert again[1]["drop.mask"] == near(second)


def test_the_loss_after_the_update_uses_the_same_dropout_mask_as_the_step():
    text = MLP_DROP.replace("    mask: [[1, 0, 1], [1, 1, 0], [0, 1, 1]]\n", "    seed: 3\n")
    spec = spec_of(text)
    step = engine.run(spec).steps[0]
    layers = [engine.build_layer(s) for s in spec.layers]
    new = {
        name: {p: np.asarray(step[f"new.{name}.{p}"]) for p in ("weights", "bias")}
        for name in ("hidden", "out")
    }
    layers[1].op.current = np.asarray(step["drop.mask"])
    fwd = engine.forward(layers, new, spec.inputs)
    loss, _ = engine.loss_value(spec, fwd.out, fwd.z_out, spec.targets)
    assert float(step["loss_after"]) == pytest.approx(loss, rel=1e-12)


def test_the_dropout_convention_is_stated():
    trace = engine.run(spec_of(DROP))
    assert "inverted dropout, p = 0.5" in trace.conventions["drop"]
    assert "1/(1 − p)" in trace.conventions["drop"]


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (("p: 0.5", "p: 1"), "6:8", "at least 0 and less than 1, found 1"),
        (("p: 0.5", "p: -0.1"), "6:8", "at least 0 and less than 1, found -0.1"),
        (("    p: 0.5\n", ""), "4:5", "needs p, the probability of dropping a unit"),
        (("mask: [1, 0, 1, 0]", "mask: [1, 0.5, 1, 0]"), "7:11", "found 0.5"),
        (("mask: [1, 0, 1, 0]", "mask: [1, 0, 1]"), "7:11", "the mask has shape (3,)"),
        (("mask: [1, 0, 1, 0]", "mask: [[1, 0, 1, 0], [1, 1, 1, 1]]"), "7:11", "2 masks"),
        (("p: 0.5", "p: 0.5\n    seed: 1"), "7:5", "nothing to draw with a seed"),
    ],
)
def test_dropout_mistakes_are_spec_errors_with_locations(capsys, tmp_path, change, where, message):
    path = tmp_path / "net.yaml"
    path.write_text(DROP.replace(*change))
    code = run(["step", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"net.yaml:{where}: " in err
    assert message in err


# --- batchnorm ----------------------------------------------------------------------------

BN = """inputs: [[1.0], [3.0]]
targets: [[0.0], [0.0]]
layers:
  - name: bn
    type: batchnorm
    gamma: [2.0]
    beta: [0.5]
loss: half_sse
learning_rate: 0.1
"""


def test_batchnorm_normalizes_with_the_batch_mean_and_biased_variance():
    step = engine.run(spec_of(BN)).steps[0]
    s = 1 / np.sqrt(1 + 1e-5)  # μ = 2, σ² = ((1 − 2)² + (3 − 2)²)/2 = 1, ε = 1e-5
    assert step["bn.mean"] == near([2.0])
    assert step["bn.var"] == near([1.0])
    assert step["bn.xhat"] == near([[-s], [s]])
    assert step["bn.a"] == near([[0.5 - 2 * s], [0.5 + 2 * s]])  # z = γ·x̂ + β
    # half_sse, mean over 2: ∂L/∂z = z/2 = [0.25 − s, 0.25 + s]
    # ∂L/∂β = Σ ∂L/∂z = 0.5; ∂L/∂γ = Σ ∂L/∂z·x̂ = (0.25 − s)(−s) + (0.25 + s)s = 2s²
    assert step["grad.bn.beta"] == near([0.5])
    assert step["grad.bn.gamma"] == near([2 * s * s])
    # ∂L/∂x = γ·s/m·(m·g − Σg − x̂·Σ(g·x̂)), sample 0: 2s/2·(0.5 − 2s − 0.5 + s·2s²)
    #       = −2s²(1 − s²): nearly 0, two samples normalize to ±1 whatever x is
    assert step["grad.bn.input"] == near([[-2 * s * s * (1 - s * s)], [2 * s * s * (1 - s * s)]])


def test_batchnorm_updates_the_running_statistics_as_pytorch_does():
    steps = engine.run(spec_of(BN), steps=2).steps
    # running_mean = 0.9·0 + 0.1·2 = 0.2; running_var = 0.9·1 + 0.1·(1·2/(2 − 1)) = 1.1
    assert steps[0]["new.bn.running_mean"] == near([0.2])
    assert steps[0]["new.bn.running_var"] == near([1.1])
    # carried to the next step; the batch is the same, so 0.9·0.2 + 0.2 = 0.38, 0.99 + 0.2
    assert steps[1]["bn.running_mean"] == near([0.2])
    assert steps[1]["new.bn.running_mean"] == near([0.38])
    assert steps[1]["new.bn.running_var"] == near([1.19])


@settings(max_examples=40, deadline=None)
@given(
    shape=st.one_of(
        st.tuples(st.integers(2, 5), st.integers(1, 4)),
        st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(2, 3)),
    ),
    seed=st.integers(0, 10_000),
)
def test_batchnorm_backward_matches_finite_differences_for_any_shape(shape, seed):
    rng = np.random.default_rng(seed)
    # σ² of the same order as ε: with two values per feature and σ² ≫ ε the output hardly
    # depends on x (x̂ = ±1), and the tiny gradient drowns in the differences' rounding
    x = rng.normal(size=shape) * rng.uniform(0.3, 1.5)
    c = shape[1]
    params = {
        "gamma": rng.choice([-1, 1], size=c) * rng.uniform(0.5, 2.0, size=c),
        "beta": rng.normal(size=c),
        "running_mean": np.zeros(c),
        "running_var": np.ones(c),
    }
    op = BatchNorm(eps=1.0, momentum=0.1)
    r = rng.normal(size=shape)
    _, cache = op.forward(x, params)
    dx, grads = op.backward(r, cache, params)
    assert rel_err(dx, op_fd(lambda v: op.forward(v, params)[0], x, r)) < 1e-6
    for name in ("gamma", "beta"):
        num = numeric_grad(lambda: float((r * op.forward(x, params)[0]).sum()), params[name])
        assert rel_err(grads[name], num) < 1e-6, name


MLP_BN = """inputs: [[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8], [0.9, 0.1]]
targets: [1, 0, 2, 1]
layers:
  - name: hidden
    type: dense
    weights: [[0.4, -0.6], [0.7, 0.2], [-0.3, 0.5]]
    bias: [0.1, -0.2, 0.3]
  - name: bn
    type: batchnorm
    gamma: [1.2, 0.8, 1.0]
    beta: [0.1, -0.1, 0.0]
    activation: relu
  - name: out
    type: dense
    weights: [[0.6, -0.4, 0.9], [0.2, 0.3, -0.5], [-0.7, 0.1, 0.4]]
    bias: [0.05, 0.0, -0.05]
    activation: softmax
loss: cross_entropy
learning_rate: 0.1
"""


def test_a_network_with_batchnorm_after_dense_matches_finite_differences():
    spec = spec_of(MLP_BN)
    step = engine.run(spec).steps[0]
    assert fd_check(spec, step) == 6  # W, b of both dense layers, γ and β
    assert step["bn.mean"].shape == (3,)


CNN_BN = """inputs:
  - [[[0.2, 0.8, 0.1], [0.6, 0.1, 0.5], [0.3, 0.9, 0.4]]]
  - [[[0.5, 0.3, 0.7], [0.2, 0.4, 0.6], [0.8, 0.1, 0.2]]]
targets: [[1.0, 0.0], [0.0, 1.0]]
layers:
  - name: conv
    type: conv2d
    kernel: [[[[0.5, -0.3], [0.2, 0.4]]], [[[-0.1, 0.2], [0.3, -0.2]]]]
    bias: [0.1, 0.0]
  - name: bn
    type: batchnorm
    gamma: [1.5, 0.7]
    beta: [0.2, -0.3]
    activation: tanh
  - type: flatten
  - name: out
    type: dense
    weights: [[0.1, -0.2, 0.3, 0.1, -0.1, 0.2, 0.3, -0.3], [0.2, 0.1, -0.1, 0.3, 0.2, -0.2, 0.1, 0.1]]
    bias: [0.0, 0.1]
loss: mse
learning_rate: 0.1
"""


def test_batchnorm_after_conv_normalizes_each_channel_and_matches_finite_differences():
    spec = spec_of(CNN_BN)
    step = engine.run(spec).steps[0]
    conv_z = np.asarray(step["conv.z"])  # (2 samples, 2 channels, 2, 2)
    assert step["bn.mean"] == near(conv_z.mean(axis=(0, 2, 3)))
    assert step["bn.var"] == near(conv_z.var(axis=(0, 2, 3)))
    assert fd_check(spec, step) == 6


def test_batchnorm_formulas_and_convention_are_stated():
    trace = engine.run(spec_of(MLP_BN))
    assert "biased" in trace.conventions["bn"]
    assert "momentum 0.1" in trace.conventions["bn"]
    records = trace.steps[0].records
    assert records["bn.z"].formula == "z = γ·x̂ + β, x̂ = (x − μ)/√(σ² + ε)"
    assert records["grad.bn.gamma"].formula == "∂L/∂γ = Σ_batch ∂L/∂z · x̂"


@pytest.mark.parametrize(
    ("extra", "change", "where", "message"),
    [
        ("mode: sgd\n", None, "4:5", "every step uses one sample: its variance would be 0"),
        ("batch_size: 1\n", None, "4:5", "its variance would be 0"),
        ("", ("gamma: [2.0]", "gamma: [2.0, 1.0]"), "6:12", "needs 1 values"),
        ("", ("beta: [0.5]", "beta: [0.5]\n    momentum: 2"), "8:15", "between 0 and 1"),
        ("", ("beta: [0.5]", "beta: [0.5]\n    eps: 0"), "8:10", "eps should be greater than 0"),
        ("", ("beta: [0.5]", "beta: [0.5]\n    running_var: [-1]"), "8:18", "cannot be negative"),
    ],
)
def test_batchnorm_mistakes_are_spec_errors_with_locations(
    capsys, tmp_path, extra, change, where, message
):
    path = tmp_path / "net.yaml"
    path.write_text((BN.replace(*change) if change else BN) + extra)
    code = run(["step", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"net.yaml:{where}: " in err
    assert message in err


def test_a_batch_of_one_on_the_command_line_is_refused_for_batchnorm(capsys, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(BN)
    code = run(["step", str(path), "--mode", "sgd"])
    err = capsys.readouterr().err
    assert code == 2
    assert "its variance would be 0" in err


def test_without_begin_step_every_forward_pass_draws_a_new_mask():
    op = Dropout(0.5, (8,), seed=2)
    x = np.ones((4, 8))
    first, second = op.forward(x, {})[0], op.forward(x, {})[0]
    rng = np.random.default_rng(2)
    assert first == near((rng.random((4, 8)) >= 0.5) * 2.0)
    assert second == near((rng.random((4, 8)) >= 0.5) * 2.0)


def test_evaluation_mode_turns_dropout_off_and_uses_the_running_statistics():
    spec = spec_of(MLP_BN)
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec)
    params["bn"]["running_mean"] = np.array([0.5, -0.5, 1.0])
    params["bn"]["running_var"] = np.array([4.0, 1.0, 0.25])
    engine.set_training(layers, False)
    fwd = engine.forward(layers, params, spec.inputs)
    h = spec.inputs @ params["hidden"]["weights"].T + params["hidden"]["bias"]
    bn = (h - [0.5, -0.5, 1.0]) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 1e-5)
    bn = bn * [1.2, 0.8, 1.0] + [0.1, -0.1, 0.0]
    assert fwd.caches[1][2] == near(np.maximum(bn, 0))
    # the running statistics stay as they are in evaluation
    engine.carry_buffers(layers, fwd, params)
    assert params["bn"]["running_mean"] == near([0.5, -0.5, 1.0])
    # and the evaluation backward treats μ, σ² as constants: check by finite differences
    op, cache = layers[1].op, fwd.caches[1][0]
    r = np.random.default_rng(0).normal(size=h.shape)
    dx, _ = op.backward(r, cache, params["bn"])
    assert rel_err(dx, op_fd(lambda v: op.forward(v, params["bn"])[0], h.copy(), r)) < 1e-6


def test_carry_buffers_stores_the_running_statistics_of_a_training_pass():
    spec = spec_of(BN)
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec)
    engine.carry_buffers(layers, engine.forward(layers, params, spec.inputs), params)
    assert params["bn"]["running_mean"] == near([0.2])  # 0.9·0 + 0.1·2
    assert params["bn"]["running_var"] == near([1.1])  # 0.9·1 + 0.1·2
