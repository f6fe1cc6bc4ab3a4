"""L1/L2 regularization: the penalty in the loss table, its share of the gradients."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcalc import engine
from bpcalc import regularization as reg_mod
from bpcalc.cli import run
from bpcalc.network.parse import parse_network
from bpcalc.network.yaml_source import load_yaml_text


def near(v, **kw):
    return pytest.approx(np.array(v, dtype=float), **kw)


def spec_of(text: str):
    return parse_network(load_yaml_text(text, "net.yaml"))


ONE = """input: [1.0, 2.0]
target: [0.0]
layers:
  - name: fc
    type: dense
    weights: [[0.5, -1.0]]
    bias: [0.25]
loss: half_sse
learning_rate: 0.1
"""


def test_l2_and_l1_add_their_penalty_to_the_loss_and_their_gradient_to_the_weights():
    st_ = engine.run(spec_of(ONE + "regularization: {l2: 0.2, l1: 0.1}\n")).steps[0]
    # z = 0.5·1 − 1·2 + 0.25 = −1.25, L_data = ½·1.5625 = 0.78125
    assert float(st_["loss.data"]) == pytest.approx(0.78125)
    # penalty = (0.2/2)·(0.25 + 1) + 0.1·(0.5 + 1) = 0.125 + 0.15 = 0.275 (bias excluded)
    assert float(st_["loss.penalty"]) == pytest.approx(0.275)
    assert float(st_["loss"]) == pytest.approx(0.78125 + 0.275)
    # ∂L_data/∂W = (z − y)·xᵀ = −1.25·[1, 2] = [−1.25, −2.5]
    # ∂penalty/∂W = 0.2·W + 0.1·sign(W) = [0.1 + 0.1, −0.2 − 0.1] = [0.2, −0.3]
    assert st_["grad.fc.weights.data"] == near([[-1.25, -2.5]])
    assert st_["grad.fc.weights.penalty"] == near([[0.2, -0.3]])
    assert st_["grad.fc.weights"] == near([[-1.05, -2.8]])
    # the bias is not penalised: its gradient is the data gradient alone, −1.25
    assert "grad.fc.bias.penalty" not in st_
    assert st_["grad.fc.bias"] == near([-1.25])
    # W′ = W − 0.1·[−1.05, −2.8] = [0.605, −0.72]
    assert st_["new.fc.weights"] == near([[0.605, -0.72]])


def test_include_bias_penalises_the_bias_too():
    st_ = engine.run(spec_of(ONE + "regularization: {l2: 0.2, include_bias: true}\n")).steps[0]
    # penalty = 0.1·(0.25 + 1 + 0.0625) = 0.13125; ∂penalty/∂b = 0.2·0.25 = 0.05
    assert float(st_["loss.penalty"]) == pytest.approx(0.13125)
    assert st_["grad.fc.bias.penalty"] == near([0.05])
    assert st_["grad.fc.bias"] == near([-1.25 + 0.05])


def test_the_loss_after_the_update_includes_the_penalty_of_the_new_weights():
    st_ = engine.run(spec_of(ONE + "regularization: {l2: 0.2}\n")).steps[0]
    w = np.array([0.5, -1.0]) - 0.1 * (np.array([-1.25, -2.5]) + 0.2 * np.array([0.5, -1.0]))
    b = 0.25 - 0.1 * (-1.25)
    z = w @ [1.0, 2.0] + b
    assert float(st_["loss_after"]) == pytest.approx(0.5 * z**2 + 0.1 * (w @ w))


TWO = """inputs: [[1.0, -2.0], [0.5, 1.5], [-1.0, 0.3]]
targets: [[1.0], [0.0], [1.0]]
regularization: {l2: 0.3, l1: 0.05}
layers:
  - name: hidden
    type: dense
    weights: [[0.4, -0.6], [0.7, 0.2], [-0.3, 0.5]]
    bias: [0.1, -0.2, 0.3]
    activation: tanh
  - name: out
    type: dense
    weights: [[0.6, -0.4, 0.9]]
    bias: [0.05]
    activation: sigmoid
    regularization: {l2: 0.1, l1: 0.02, include_bias: true}
loss: binary_cross_entropy
learning_rate: 0.1
"""


def total_loss(spec, params) -> float:
    layers = [engine.build_layer(s) for s in spec.layers]
    fwd = engine.forward(layers, params, spec.inputs)
    loss, _ = engine.loss_value(spec, fwd.out, fwd.z_out, spec.targets)
    return loss + reg_mod.penalty(spec.regularization, params)


def fd_check(spec, step) -> None:
    """Every parameter's gradient against central differences of the total loss."""
    params = engine.initial_params(spec)
    h = 1e-6
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


def test_penalised_gradients_match_finite_differences_of_the_total_loss():
    spec = spec_of(TWO)
    fd_check(spec, engine.run(spec).steps[0])


@settings(max_examples=25, deadline=None)
@given(
    l2=st.floats(0.0, 2.0),
    l1=st.floats(0.0, 1.0),
    include_bias=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_any_penalty_gradient_matches_finite_differences(l2, l1, include_bias, seed):
    rng = np.random.default_rng(seed)
    # weights away from 0, where |θ| has no derivative
    w = rng.choice([-1, 1], size=(2, 3)) * rng.uniform(0.1, 1.0, size=(2, 3))
    b = rng.choice([-1, 1], size=2) * rng.uniform(0.1, 1.0, size=2)
    text = f"""inputs: {rng.normal(size=(4, 3)).round(3).tolist()}
targets: {rng.normal(size=(4, 2)).round(3).tolist()}
regularization: {{l2: {l2:.6f}, l1: {l1:.6f}, include_bias: {str(include_bias).lower()}}}
layers:
  - {{name: fc, type: dense, weights: {w.tolist()}, bias: {b.tolist()}}}
loss: mse
learning_rate: 0.1
"""
    spec = spec_of(text)
    fd_check(spec, engine.run(spec).steps[0])


def test_a_layers_own_regularization_replaces_the_global_one():
    spec = spec_of(TWO.replace("{l2: 0.1, l1: 0.02, include_bias: true}", "{}"))
    assert set(spec.regularization) == {"hidden"}
    st_ = engine.run(spec).steps[0]
    assert "grad.out.weights.penalty" not in st_
    assert "grad.hidden.weights.penalty" in st_
    # hidden only: (0.3/2)·ΣW² + 0.05·Σ|W| over its 6 weights
    w = np.array([[0.4, -0.6], [0.7, 0.2], [-0.3, 0.5]])
    assert float(st_["loss.penalty"]) == pytest.approx(0.15 * (w**2).sum() + 0.05 * abs(w).sum())


def test_the_convention_is_stated_and_the_formulas_show_the_penalty(capsys, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(TWO)
    code = run(["step", str(path), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert "(λ₂/2)·Σθ²" in doc["conventions"]["regularization"]
    step = engine.run(spec_of(TWO)).steps[0]
    formula = step.records["grad.out.weights"].formula
    assert formula == "∂L/∂W = ∂L_data/∂W + 0.1·W + 0.02·sign(W)"
    assert step.records["loss"].formula == "L = L_data + penalty"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (ONE + "regularization: {l2: -0.1}\n", "10:22", "l2 (λ) cannot be negative"),
        (ONE + "regularization: {L2: 0.1}\n", "10:18", "did you mean 'l2'"),
        (ONE + "regularization: {l2: 0.1, include_bias: 1}\n", "10:41", "true or false"),
        (
            ONE.replace(
                "  - name: fc", "  - type: flatten\n    regularization: {l2: 1}\n  - name: fc"
            ),
            "5:5",
            "unknown key 'regularization' in layer 0 (flatten)",
        ),
    ],
)
def test_regularization_mistakes_are_spec_errors_with_locations(
    capsys, tmp_path, text, where, message
):
    path = tmp_path / "net.yaml"
    path.write_text(text)
    code = run(["step", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"net.yaml:{where}: " in err
    assert message in err
