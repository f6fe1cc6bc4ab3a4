"""`bias: none` (or false, or null) on dense and conv2d: the layer has no bias parameter at all.
None is shown, explained, asked for by `check --template`, saved or updated; leaving `bias`
out keeps the old default of zero biases that are trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from bpcalc import engine, explain
from bpcalc.errors import SpecError
from tests.explain_helpers import evaluate
from tests.helpers import cli, spec_from, write_net

# h.z = W·x = [0.5·1 − 0.25·2, 0.3·1 + 0.1·2] = [0, 0.5]; ReLU: h.a = [0, 0.5]
# out.z = 1·0 + 2·0.5 = 1; L = ½(1 − 0.5)² = 0.125; ∂L/∂z = 0.5
# grad.out.weights = 0.5·[0, 0.5] = [0, 0.25]; grad.h.a = [1, 2]·0.5 = [0.5, 1]
# grad.h.z = [0 (ReLU′(0) = 0), 1]; grad.h.weights = [[0, 0], [1, 2]]
NO_BIAS = """
input: [1.0, 2.0]
target: [0.5]
layers:
  - name: h
    type: dense
    weights: [[0.5, -0.25], [0.3, 0.1]]
    bias: none
    activation: relu
  - name: out
    type: dense
    weights: [[1.0, 2.0]]
    bias: false
loss: half_sse
learning_rate: 0.1
"""


def _records(text: str, **kwargs: object) -> dict[str, np.ndarray]:
    trace = engine.run(spec_from(text), **kwargs)
    return {r.name: r.value for r in trace.steps[0]}


def test_a_dense_layer_without_bias_computes_w_x_and_has_no_bias_value_anywhere():
    v = _records(NO_BIAS)
    assert v["h.z"].tolist() == [0.0, 0.5]
    assert v["out.z"].tolist() == [1.0]
    assert float(v["loss"]) == 0.125
    assert v["grad.out.weights"].tolist() == [[0.0, 0.25]]
    assert v["grad.h.weights"].tolist() == [[0.0, 0.0], [1.0, 2.0]]
    np.testing.assert_allclose(v["new.h.weights"], [[0.5, -0.25], [0.2, -0.1]])  # W − 0.1·∂L/∂W
    assert not [name for name in v if "bias" in name]


@pytest.mark.parametrize("written", ["none", "None", "false", "null", "~"])
def test_every_spelling_of_no_bias_means_the_same(written: str):
    v = _records(NO_BIAS.replace("bias: none", f"bias: {written}"))
    assert "h.bias" not in v and "grad.h.bias" not in v


def test_leaving_bias_out_trains_zero_biases_and_bias_true_does_the_same():
    left_out = NO_BIAS.replace("    bias: none\n", "")
    v = _records(left_out)
    assert v["h.bias"].tolist() == [0.0, 0.0]
    assert v["grad.h.bias"].tolist() == [0.0, 1.0]  # ∂L/∂b = ∂L/∂z
    assert v["new.h.bias"].tolist() == [0.0, -0.1]
    assert _records(NO_BIAS.replace("bias: none", "bias: true"))["new.h.bias"].tolist() == [
        0.0,
        -0.1,
    ]


def test_the_formula_and_the_conventions_say_there_is_no_bias():
    trace = engine.run(spec_from(NO_BIAS))
    assert trace.steps[0].records["h.z"].formula == "z = W·x (no bias)"
    assert trace.conventions["h"].endswith("no bias (bias: none)")
    assert " + b" not in trace.conventions["h"]


def test_the_blank_answer_sheet_asks_for_no_bias(tmp_path: Path, capsys):
    net = write_net(tmp_path, NO_BIAS)
    code, out, err = cli(capsys, "check", str(net), "--template")
    assert code == 0, err
    names = [line.split(":")[0] for line in out.splitlines() if not line.startswith("#")]
    assert "h.weights" in names and "grad.out.weights" in names
    assert not [name for name in names if name.endswith(".bias")]


def test_the_explanation_of_z_has_no_bias_term_and_adds_up():
    trace = engine.run(spec_from(NO_BIAS))
    works = explain.explain_value(trace, "h.z", decimals=6)
    assert works[1].symbolic == "w21·x1 + w22·x2"
    assert works[1].note == "no bias (bias: none)"
    assert evaluate(works[1].substituted) == pytest.approx(0.5)


# conv: one 2x2 kernel over a 3x3 image, no bias:
# z11 = 1·1 + 0·2 + 0·4 + (−1)·5 = −4 and so on; half_sse on the flattened 2x2 output
CONV = """
input: [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
target: [0, 0, 0, 0]
layers:
  - name: conv
    type: conv2d
    kernel: [[1, 0], [0, -1]]
    bias: none
  - type: flatten
loss: half_sse
learning_rate: 0.01
"""


def test_a_conv_layer_without_bias_slides_the_kernel_alone():
    v = _records(CONV)
    assert v["conv.z"].tolist() == [[-4.0, -4.0], [-4.0, -4.0]]
    # ∂L/∂K[i,j] = Σ ∂L/∂z · x: ∂L/∂z = −4 everywhere; K11 sees 1+2+4+5 = 12 → −48
    assert v["grad.conv.kernel"].tolist() == [[-48.0, -64.0], [-96.0, -112.0]]
    assert not [name for name in v if "bias" in name]
    works = explain.explain_value(engine.run(spec_from(CONV)), "conv.z[0,0]")
    assert works[0].symbolic == "x11·k11 + x12·k12 + x21·k21 + x22·k22"
    assert evaluate(works[0].substituted) == -4.0


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        spec_from(text)
    return info.value


def test_a_shared_bias_on_a_layer_without_bias_is_an_error_at_bias_shared():
    err = _error(NO_BIAS.replace("bias: none", "bias: none\n    bias_shared: true"))
    assert (err.where.line, err.where.column) == (9, 5)
    assert "has no bias (bias: none), so there is no bias to share" in err.message


def test_freezing_the_bias_of_a_layer_without_one_is_an_error_at_the_name():
    err = _error(NO_BIAS.replace("bias: none", "bias: none\n    freeze: [weights, bias]"))
    assert (err.where.line, err.where.column) == (9, 23)
    assert err.message == "there is no bias to freeze: layer 'h' has no bias"


def test_penalising_the_bias_of_a_layer_without_one_is_an_error_at_include_bias():
    text = NO_BIAS.replace(
        "bias: none", "bias: none\n    regularization: {l2: 0.1, include_bias: true}"
    )
    err = _error(text)
    assert (err.where.line, err.where.column) == (9, 31)
    assert "no bias to penalise" in err.message
    # the global include_bias applies to the layers that have a bias and leaves the others
    glob = (
        NO_BIAS.replace("bias: false", "bias: [0.1]")
        + "regularization: {l2: 0.1, include_bias: true}\n"
    )
    v = _records(glob)
    assert "grad.out.bias.penalty" in v and "grad.h.bias" not in v


def test_a_word_other_than_none_for_the_bias_is_an_error_at_the_bias(tmp_path: Path, capsys):
    net = write_net(tmp_path, NO_BIAS.replace("bias: none", "bias: nothing"))
    code, out, err = cli(capsys, "step", str(net))
    assert code == 2 and out == ""
    assert f"{net}:8:11: bias should be numbers, none (no bias) or true (zero biases)" in err
    assert len(err.strip().splitlines()) == 1


def test_training_and_saving_keep_a_layer_without_bias(tmp_path: Path, capsys):
    batched = NO_BIAS.replace("input: [1.0, 2.0]", "inputs: [[1.0, 2.0], [0.5, -1.0]]")
    net = write_net(tmp_path, batched.replace("target: [0.5]", "targets: [[0.5], [0.1]]"))
    saved = tmp_path / "saved.yaml"
    code, _, err = cli(capsys, "train", str(net), "--epochs", "3", "--save", str(saved))
    assert code == 0, err
    layers = yaml.safe_load(saved.read_text())["layers"]
    assert layers[0]["bias"] == "none" and layers[1]["bias"] is False
    again = spec_from(saved.read_text())
    assert again.layers[0].bias is None and again.layers[1].bias is None


# Printed by tests/torch_scripts/layernorm.py (torch 2.13.0+cpu, float64): nn.Conv2d(1, 2, 2,
# bias=False), ReLU, flatten, nn.Linear(8, 1, bias=False), ½ Σ (a − y)², gradients by autograd.
TORCH_NO_BIAS = {
    "out": [[-0.32250000000000006]],
    "loss": 0.5227531249999999,
    "x": [[[[-0.061349999999999995, 0.173825, -0.025562500000000002],
            [0.10224999999999995, -0.020450000000000006, 0.11247500000000002],
            [-0.08180000000000001, 0.06135, 0.0]]]],
    "kernel": [[[[0.20450000000000002, 0.255625], [-0.51125, 0.051125000000000004]]],
               [[[0.10224999999999995, 1.0225], [-0.10225000000000001, -0.46012499999999995]]]],
    "w": [[0.0, -1.2525625, -0.6134999999999999, 0.0, -0.6135, 0.0, -0.818, -1.1247500000000001]],
}  # fmt: skip

TORCH_NET = """
input: [[1.0, 2.0, 0.5], [0.0, -1.0, 1.5], [2.0, 0.5, -0.5]]
target: 0.7
layers:
  - name: conv
    type: conv2d
    kernel: [[[[0.5, -0.25], [0.1, 0.3]]], [[[-0.2, 0.4], [0.6, 0.0]]]]
    bias: none
    activation: relu
  - type: flatten
  - name: out
    type: dense
    weights: [[0.3, -0.1, 0.2, 0.4, -0.3, 0.5, 0.1, -0.2]]
    bias: none
loss: half_sse
learning_rate: 0.1
"""


def test_bias_free_conv_and_dense_layers_agree_with_pytorch():
    v = _records(TORCH_NET)
    t = TORCH_NO_BIAS
    assert float(v["out.a"][0]) == pytest.approx(t["out"][0][0], rel=1e-12)
    assert float(v["loss"]) == pytest.approx(t["loss"], rel=1e-12)
    np.testing.assert_allclose(v["grad.conv.input"], np.array(t["x"])[0, 0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(v["grad.conv.kernel"], t["kernel"], rtol=1e-12)
    np.testing.assert_allclose(v["grad.out.weights"], t["w"], rtol=1e-12)
