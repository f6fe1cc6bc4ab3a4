"""Layer normalization (`type: layernorm`): the worked example's hand-derived numbers,
torch.nn.LayerNorm's values, every worked explanation adding up, the checker's slip (the
unbiased variance), and located errors for a normalized_shape or γ that does not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bpcalc import engine, explain
from bpcalc.errors import SpecError
from bpcalc.explain import FALLBACK_NOTE
from tests.check_helpers import check, slips_of, write
from tests.explain_helpers import evaluate
from tests.helpers import check_gradients, cli, spec_from, write_net

# Printed by tests/torch_scripts/layernorm.py (torch 2.13.0+cpu, float64): torch.nn.LayerNorm
# over the last axis (vector) and over the last two axes of images (image), with the network
# around it, and the gradients by autograd.
TORCH_VALUES = {
    "vector": {
        "z": [[-1.0690415314502977, -0.03363019143128726, 2.5726038286257435],
              [0.7070997102248, -0.6070997102248, 1.3141994204496]],
        "loss": 1.763485001178552,
        "x": [[0.02186156882953444, -0.03279531633868671, 0.010933747509152325],
              [-0.07165223523459185, 8.736751602594905e-07, 0.07165136155943162]],
        "gamma": [0.1637919741975481, -0.23797360973622605, 0.4057626979039996],
        "beta": [-0.17918686038457432, 0.19204158209921834, 0.3238218208636982],
        "w": [[-0.3312760801467597, 0.1845742187395439, -0.1372136058088151],
              [0.57511797556725, -0.054809422927675835, -1.0346539591401476],
              [-0.24384189542049023, -0.12976479581186812, 1.171867564948963]],
    },
    "image": {
        "z": [[[[0.21577438301898882, -0.8560548371076036, 1.4664755182405256],
                [1.102702388931656, 0.24081071667949683, -1.2376762704665973]],
               [[0.5800727205225198, 0.21606302445285053, -1.7282617938810712],
                [1.2729473802589737, 0.9985512586868412, 0.11123199702990871]]],
              [[[-0.4109390748573636, -0.2425782562381136, 0.1703130249524546],
                [-1.1987546195816003, -1.1240659646862001, 1.2114102921339003]],
               [[1.4113905684158083, 0.30998522105059195, -2.0399408842023683],
                [0.3, 0.0, 0.060281069473043264]]]],
        "loss": 1.0527045197471567,
        "x": [[[[-0.10474176779265715, 0.07343158811776467, 0.02918198858035883],
                [0.02355555814223092, 0.019285765246122924, -0.04071313229382017]],
               [[-0.1542075374884977, 0.028463335902738963, 0.09407902878242354],
                [0.14402306787041114, -0.033686464388140644, -0.07867143067893526]]],
              [[[0.09580486981904372, -0.05181550526209981, -0.20475096411526353],
                [0.0581670818181061, -0.19931079475560895, 0.3019053124958225]],
               [[0.04536992419175425, -0.090385242851615, -0.013778852734083663],
                [-0.04412344631439637, -0.06989421155020667, 0.17281182925854746]]]],
        "gamma": [[-0.006042600340235467, -0.08941837030614927, 0.1955267612531458],
                  [0.25165543063518514, 0.047995476179441304, 0.21680339166341714]],
        "beta": [[-0.12350543109035991, -0.13454985842599815, -0.021889766433237146],
                 [0.11089567586841209, 0.14172414519825488, 0.04225208902720423]],
    },
}  # fmt: skip

LN_VECTOR = """
inputs: [[1.0, 2.0, 4.0], [0.5, -1.0, 0.5]]
targets: [1, 0]
layers:
  - name: ln
    type: layernorm
    gamma: [1.0, 0.5, 2.0]
    beta: [0.0, 0.1, -0.1]
  - name: out
    type: dense
    weights: [[0.2, -0.3, 0.1], [0.4, 0.1, -0.2], [0.0, 0.3, 0.5]]
    bias: none
    activation: softmax
loss: cross_entropy
learning_rate: 0.1
"""

_W2 = (np.sin(np.arange(24.0)).reshape(2, 12) * 0.5).tolist()
LN_IMAGE = f"""
inputs:
  - [[[0.5, -1.0, 2.0], [1.5, 0.2, -0.7]], [[0.4, 0.8, -1.2], [1.1, -0.5, 0.3]]]
  - [[[0.1, 0.2, 0.3], [-0.5, 0.6, 0.7]], [[0.9, 1.0, -1.1], [0.3, 0.3, 0.4]]]
targets: [[0.2, -0.4], [0.5, 0.1]]
layers:
  - name: ln
    type: layernorm
    normalized_shape: [2, 3]
    eps: 0.001
    gamma: [[1.5, 0.5, 1.0], [0.8, -1.2, 1.1]]
    beta: [[0.1, -0.2, 0.0], [0.3, 0.0, -0.1]]
  - type: flatten
  - name: out
    type: dense
    weights: {_W2}
    bias: [0.05, -0.05]
    activation: tanh
loss: mse
learning_rate: 0.1
"""


def _values(text: str, **kwargs: object) -> dict[str, np.ndarray]:
    trace = engine.run(spec_from(text), **kwargs)
    return {r.name: r.value for r in trace.steps[0]}


def close(expected: object, rel: float = 1e-12) -> object:
    return pytest.approx(np.asarray(expected, dtype=float), rel=rel, abs=1e-15)


def test_the_worked_example_gives_the_numbers_derived_by_hand():
    v = _values(Path("examples/layernorm.yaml").read_text())
    s = 1 / np.sqrt(1 + 1e-5)  # 1/√(σ² + ε): the ε moves the 6th digit only
    assert float(v["ln.mean"]) == 2.0 and float(v["ln.var"]) == 1.0
    assert v["ln.xhat"] == close(np.array([-1, -1, 1, 1]) * s)
    assert v["ln.z"] == close([-1, -1.5, 0.5, 0.5], rel=1e-5)
    assert float(v["loss"]) == pytest.approx(1.125, rel=1e-5)
    assert v["grad.ln.gamma"] == close([1.5, 1.5, -1.5, -1.5], rel=1e-5)
    assert v["grad.ln.beta"] == close([-1.5] * 4, rel=1e-5)
    assert v["grad.ln.input"] == close([0.75, -0.75, 0.375, -0.375], rel=5e-5)
    assert float(v["grad.ln.input"].sum()) == pytest.approx(0, abs=1e-12)
    assert v["new.ln.gamma"] == close([0.85, 1.85, 0.65, 1.15], rel=1e-5)
    assert v["new.ln.beta"] == close([0.15, 0.65, 0.15, -0.35], rel=1e-5)


def test_layernorm_over_the_last_axis_agrees_with_pytorch():
    t = TORCH_VALUES["vector"]
    v = _values(LN_VECTOR)
    assert v["ln.z"] == close(t["z"])
    assert float(v["loss"]) == pytest.approx(t["loss"], rel=1e-12)
    assert v["grad.ln.input"] == close(t["x"], rel=1e-9)
    assert v["grad.ln.gamma"] == close(t["gamma"])
    assert v["grad.ln.beta"] == close(t["beta"])
    assert v["grad.out.weights"] == close(t["w"])


def test_layernorm_over_the_last_two_axes_of_images_agrees_with_pytorch():
    t = TORCH_VALUES["image"]
    v = _values(LN_IMAGE)
    assert v["ln.mean"].shape == (2, 2) and v["ln.var"].shape == (2, 2)  # (sample, channel)
    assert v["ln.z"] == close(t["z"], rel=1e-10)
    assert float(v["loss"]) == pytest.approx(t["loss"], rel=1e-10)
    assert v["grad.ln.input"] == close(t["x"], rel=1e-9)
    assert v["grad.ln.gamma"] == close(t["gamma"], rel=1e-9)
    assert v["grad.ln.beta"] == close(t["beta"], rel=1e-9)


def test_the_records_are_named_like_batchnorms_and_the_convention_states_the_choice():
    trace = engine.run(spec_from(LN_VECTOR))
    names = list(trace.steps[0].records)
    for name in ("ln.mean", "ln.var", "ln.xhat", "ln.z", "ln.a", "grad.ln.a", "grad.ln.z"):
        assert name in names
    for name in ("grad.ln.gamma", "grad.ln.beta", "grad.ln.input", "new.ln.gamma"):
        assert name in names
    assert names.index("ln.mean") < names.index("ln.var") < names.index("ln.xhat")
    assert "biased variance σ² (as torch.nn.LayerNorm)" in trace.conventions["ln"]
    assert "D = 3" in trace.conventions["ln"]


def test_a_single_sample_and_evaluation_mode_need_no_batch():
    # one sample is fine (unlike batchnorm), and the loss over the data in evaluation mode
    # uses the same per-sample statistics as training
    v = _values(LN_VECTOR, steps=1)
    mb = _values(LN_VECTOR.replace("learning_rate: 0.1", "learning_rate: 0.1\nbatch_size: 1"))
    assert float(mb["loss"]) != float(v["loss"])  # one sample's loss
    assert "dataset_loss_after" in mb


@pytest.mark.parametrize("text", [LN_VECTOR, LN_IMAGE, Path("examples/layernorm.yaml").read_text()])
def test_every_explanation_of_a_layernorm_evaluates_to_its_value(text: str):
    trace = engine.run(spec_from(text))
    request = explain.parse_requests(["all"], trace)
    works = [
        (e.record, w)
        for exps in explain.explain_trace(trace, request, 14, True, min_sig=12).values()
        for e in exps
        for w in e.works
    ]
    assert any(rec.name == "grad.ln.input" for rec, _ in works)
    for rec, w in works:
        assert not w.note.startswith(FALLBACK_NOTE), (w.name, w.note)
        if rec.name == "loss_after" or not w.substituted:
            continue
        assert evaluate(w.substituted) == pytest.approx(w.value, rel=1e-7, abs=1e-9), w.name


def test_the_explanation_writes_the_mean_variance_and_input_gradient_out():
    trace = engine.run(spec_from(Path("examples/layernorm.yaml").read_text()))
    (mean,) = explain.explain_value(trace, "ln.mean")
    assert (mean.symbolic, mean.substituted) == ("(x1 + x2 + x3 + x4) / 4", "(1 + 1 + 3 + 3) / 4")
    (var,) = explain.explain_value(trace, "ln.var")
    assert var.symbolic == "((x1 − μ)² + (x2 − μ)² + (x3 − μ)² + (x4 − μ)²) / 4"
    dx = explain.explain_value(trace, "grad.ln.input[0]")[0]
    assert dx.symbolic.startswith("1/(4·√(σ² + ε))·(4·γ1·∂L/∂z1 − (γ1·∂L/∂z1 + γ2·∂L/∂z2")
    assert evaluate(dx.substituted) == pytest.approx(0.75, rel=1e-3)


def test_layernorm_matches_finite_differences_over_one_and_two_axes():
    check_gradients(spec_from(LN_VECTOR))
    check_gradients(spec_from(LN_IMAGE))


def test_the_checker_names_the_unbiased_variance(tmp_path: Path, capsys):
    net = write(tmp_path, "net.yaml", LN_VECTOR)
    x = np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 0.5]])
    unbiased = x.var(axis=1, ddof=1)  # divided by D − 1 = 2
    sheet = write(tmp_path, "sheet.yaml", f"ln.var: {[round(float(u), 6) for u in unbiased]}\n")
    code, doc, err = check(capsys, net, sheet)
    assert code == 1, err
    assert "layernorm_unbiased" in slips_of(doc, "ln.var")


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        spec_from(text)
    return info.value


def test_a_normalized_shape_that_is_not_the_last_axes_is_an_error_that_lists_the_choices():
    err = _error(LN_IMAGE.replace("normalized_shape: [2, 3]", "normalized_shape: [3, 2]"))
    assert (err.where.line, err.where.column) == (9, 23)
    assert err.message == (
        "layernorm layer 'ln': normalized_shape (3, 2) is not the last axes of its input: the "
        "input gives shape (2, 2, 3), so normalized_shape can be (3,) or (2, 3) or (2, 2, 3)"
    )


def test_a_gamma_of_the_wrong_shape_is_an_error_at_gamma(tmp_path: Path, capsys):
    net = write_net(tmp_path, LN_VECTOR.replace("gamma: [1.0, 0.5, 2.0]", "gamma: [1.0, 0.5]"))
    code, out, err = cli(capsys, "step", str(net))
    assert code == 2 and out == ""
    assert err.strip() == (
        f"bpcalc: error: {net}:7:12: layernorm layer 'ln' normalizes shape (3,), so gamma "
        "needs that shape (or one number for all), found shape (2,)"
    )


def test_one_number_for_gamma_and_beta_fills_every_position():
    v = _values(LN_VECTOR.replace("[1.0, 0.5, 2.0]", "2").replace("[0.0, 0.1, -0.1]", "0.5"))
    assert v["ln.gamma"].tolist() == [2.0, 2.0, 2.0]
    assert v["ln.z"] == close(2 * v["ln.xhat"] + 0.5)
