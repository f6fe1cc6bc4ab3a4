"""Numeric faults: stable softmax / sigmoid / log-sum-exp / cross-entropy at ±1000, ln(0)
clamped at EPS with a warning naming the value, and a run that overflows stops with a
message naming the first bad value, the operation and the step.

pytest turns numpy's RuntimeWarnings into errors here (pyproject), so any overflow inside
these functions would fail the test rather than pass silently.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bpcalc import activations as act
from bpcalc import engine, losses
from bpcalc.cli import run
from bpcalc.errors import NumericError
from bpcalc.network.parse import parse_network
from bpcalc.network.yaml_source import load_yaml_text
from bpcalc.trace import StepTrace


def _strict(text: str) -> dict:
    def reject(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sigmoid_softmax_and_their_logs_are_finite_at_plus_minus_1000() -> None:
    z = np.array([[1000.0, -1000.0]])
    # σ(1000) = 1/(1 + e^−1000) = 1 to float64; σ(−1000) = e^−1000/(1 + e^−1000) underflows to 0
    assert act.sigmoid(z).tolist() == [[1.0, 0.0]]
    # softmax: shifted by the max, e^0 / (e^0 + e^−2000) = 1 and e^−2000 / 1 = 0
    assert act.softmax(z).tolist() == [[1.0, 0.0]]
    # log softmax = z − max − ln Σ e^(z − max) = [0 − ln 1, −2000 − ln 1] = [0, −2000]
    assert act.log_softmax(z).tolist() == [[0.0, -2000.0]]
    # ln σ(z) = −ln(1 + e^−z): ln σ(1000) = −e^−1000 → −0.0, ln σ(−1000) = −1000 − ln(1 + e^−1000)
    assert act.log_sigmoid(z).tolist() == [[-0.0, -1000.0]]


def test_cross_entropy_from_logits_is_exact_where_the_probability_underflows() -> None:
    z = np.array([[1000.0, -1000.0]])
    p = act.softmax(z)
    y = np.array([[0.0, 1.0]])  # the class whose probability is e^−2000 = 0.0 in float64
    # ℓ = −ln p₁ = −(−2000) = 2000, from the logits; from p it would be −ln 0 = ∞
    assert losses.get("cross_entropy").per_sample(p, y, z).tolist() == [2000.0]
    # binary: z = [−1000, 1000], y = [1, 0]: ℓ = −½[ln σ(−1000) + ln(1 − σ(1000))]
    #       = −½[−1000 + ln σ(−1000)] = −½(−1000 − 1000) = 1000
    zb = np.array([[-1000.0, 1000.0]])
    yb = np.array([[1.0, 0.0]])
    assert losses.get("binary_cross_entropy").per_sample(act.sigmoid(zb), yb, zb).tolist() == [
        1000.0
    ]


CE_1000 = """\
input: [1]
target: 1
layers:
  - name: fc
    type: dense
    weights: [[1000], [-1000]]
    activation: softmax
loss: cross_entropy
learning_rate: 0.1
"""


def test_a_network_with_logits_of_plus_minus_1000_has_finite_loss_and_gradients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(CE_1000)
    code, out, err = _cli(["step", str(path), "--json"], capsys)
    assert code == 0, err
    v = _strict(out)["steps"][0]["values"]
    # z = W·x = [1000, −1000]; p = [1, 0]; y = one-hot(1) = [0, 1]; L = −ln p₁ = 2000
    assert v["fc.z"] == [1000.0, -1000.0]
    assert v["loss"] == 2000.0
    # softmax + cross-entropy: ∂L/∂z = p − y = [1, −1]; ∂L/∂W = ∂L/∂z · xᵀ = [[1], [−1]]
    assert v["grad.fc.z"] == [1.0, -1.0]
    assert v["grad.fc.weights"] == [[1.0], [-1.0]]
    assert v["grad.fc.bias"] == [1.0, -1.0]
    # W − 0.1·∂L/∂W = [[999.9], [−999.9]], b = [−0.1, 0.1]: z = [999.8, −999.8], L = 1999.6
    assert v["loss_after"] == pytest.approx(1999.6, rel=1e-12)
    # ∂L/∂p = −y/p divides by p₁ = 0: clamped at EPS, and the user is told which value
    assert v["grad.fc.a"] == [-0.0, -1.0 / losses.EPS]
    assert err == (
        f"bpcalc: warning: fc.a[1] is 0: division by it clamped at {losses.EPS:g} in ∂L/∂a\n"
    )


def test_the_gradients_at_plus_minus_1000_match_central_differences() -> None:
    spec = parse_network(load_yaml_text(CE_1000, "net.yaml"))
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec)
    x, y = spec.inputs, spec.targets

    def loss(p: engine.Params) -> float:
        fwd = engine.forward(layers, p, x)
        return engine.loss_value(spec, fwd.out, fwd.z_out, y)[0]

    grads = engine.backward(spec, layers, params, engine.forward(layers, params, x), y)
    h = 1e-4  # L is ≈ linear here (L ≈ z₀ − z₁), so the truncation error is ≈ 0
    for pname, theta in params["fc"].items():
        for idx in np.ndindex(theta.shape):
            plus = {"fc": {k: v.copy() for k, v in params["fc"].items()}}
            minus = {"fc": {k: v.copy() for k, v in params["fc"].items()}}
            plus["fc"][pname][idx] += h
            minus["fc"][pname][idx] -= h
            numeric = (loss(plus) - loss(minus)) / (2 * h)
            analytic = grads["fc"][pname][idx]
            assert math.isfinite(analytic)
            assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (pname, idx)


def test_ln_0_in_the_loss_is_clamped_at_eps_with_a_warning_naming_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rounded values (--round-each) are used as written, so the loss is computed from p, not
    # from the logits: p = [1, 0] and y = [0, 1] give −ln 0, clamped to −ln(1e−12) = 27.631…
    path = tmp_path / "net.yaml"
    path.write_text(CE_1000)
    code, out, err = _cli(["step", str(path), "--json", "--round-each", "4"], capsys)
    assert code == 0, err
    v = _strict(out)["steps"][0]["values"]
    assert losses.EPS == 1e-12
    # −ln(1e−12) = 12·ln 10 = 27.6310…, shown rounded to 4 decimals like every value
    assert v["loss"] == round(12 * math.log(10), 4) == 27.631
    assert "bpcalc: warning: fc.a[1] is 0: ln(0) clamped at ln(1e-12)\n" in err


def test_ln_0_warnings_name_the_element_of_a_batch_by_sample_and_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "net.yaml"
    text = CE_1000.replace("input: [1]", "inputs: [[1], [-1]]").replace(
        "target: 1", "targets: [0, 0]"
    )
    path.write_text(text)
    code, out, err = _cli(["step", str(path), "--json", "--round-each", "4"], capsys)
    assert code == 0, err
    # sample 1: z = [−1000, 1000], p = [0, 1], y = [1, 0]: p[1, 0] = 0 is the clamped one
    assert "bpcalc: warning: fc.a[1,0] is 0: ln(0) clamped at ln(1e-12)\n" in err


OVERFLOW = """\
input: [1]
target: [0]
layers:
  - name: fc
    type: dense
    weights: [[1]]
loss: half_sse
learning_rate: 1.0e100
"""


def test_a_run_that_overflows_stops_naming_the_first_bad_value_its_operation_and_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # With x = 1, y = 0, η = 1e100, w = 1, b = 0:
    # step 1: z = 1, L = ½, ∂L/∂w = ∂L/∂b = 1, w = 1 − 1e100, b = −1e100,
    #         z' = 1 − 2e100, L_after = ½(2e100)² = 2e200 (finite);
    # step 2: z = −2e100, ∂L/∂w = ∂L/∂b = −2e100, w ≈ b ≈ 2e200 (finite),
    #         z' ≈ 4e200, L_after = ½(4e200)² = 8e400: the first value beyond float64.
    path = tmp_path / "net.yaml"
    path.write_text(OVERFLOW)
    code, out, err = _cli(["step", str(path), "--steps", "5"], capsys)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err and "RuntimeWarning" not in err
    assert err == (
        f"bpcalc: error: {path}:7:1: in step 2: loss_after became inf while computing "
        "L = ½ Σ (a − y)² with the updated parameters; the numbers overflowed: "
        "try a smaller learning rate or smaller inputs\n"
    )


def test_the_first_nan_is_named_by_element_and_operation() -> None:
    rec = engine.Recorder(StepTrace(step=1), n=1, batched=False)
    with pytest.raises(NumericError) as info:
        rec("fc.a", np.array([[0.5, np.nan, np.inf]]), "forward", "fc", "a = σ(z)", (3,))
    assert info.value.message.startswith("fc.a[1] became nan while computing a = σ(z)")
    assert info.value.value == "fc.a"


def test_rounding_each_value_never_turns_a_large_number_into_inf() -> None:
    # np.round(1e300, 15) computes 1e300·1e15 = inf first; numbers ≥ 2^52 have no decimals
    x = np.array([1e300, -1.5e295, 2.0**52 + 1, 0.123456789, -2.5, np.inf])
    out = engine.round_decimals(x, 15)
    assert out.tolist() == [1e300, -1.5e295, 2.0**52 + 1, 0.123456789, -2.5, np.inf]
    assert engine.round_decimals(np.array([0.125, -2.5, 1e300]), 2).tolist() == [
        0.13,  # half away from zero, as a person rounds (np.round gives 0.12)
        -2.5,
        1e300,
    ]
    # the decimal a person sees: 0.3925 is 0.39249999999999996 in float64, still 0.393
    assert engine.round_decimals(np.array([0.3925, 0.0005, -0.0005, 2.5]), 3).tolist() == [
        0.393,
        0.001,
        -0.001,
        2.5,
    ]
    assert engine.round_decimals(np.array([[0.5, 1.5]], dtype=np.float32), 0).dtype == np.float32


def test_training_that_overflows_stops_with_a_located_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # train computes in float32: η = 1e100 is inf there. Step 1: z = 1, L = ½ (finite), then
    # w = 1 − inf·1 = −inf; step 2 (epoch 2: one batch per epoch): z = −inf, L = inf.
    path = tmp_path / "net.yaml"
    path.write_text(OVERFLOW)
    code, out, err = _cli(["train", str(path), "--epochs", "5"], capsys)
    assert code == 2
    assert "Traceback" not in out + err and "RuntimeWarning" not in err
    assert err.startswith(
        f"bpcalc: error: {path}:7:1: the loss became inf at epoch 2, batch 1 (step 2); "
    ), err
