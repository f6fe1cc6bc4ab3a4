"""Residual blocks (`type: residual` with its own `layers:`): a = x + f(x). The worked
example's hand-derived numbers, PyTorch's values for a pre-norm and a convolutional block,
the two paths of ∂L/∂x in the table and in --explain, the inner layers' names, the checker
(the skip path dropped, slips and errors carried forward inside a block), training and
--save, and one located error for a block that changes the shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from bpcalc import engine, explain
from bpcalc.errors import SpecError
from bpcalc.explain import FALLBACK_NOTE
from tests.check_helpers import check, entry, slips_of, write
from tests.explain_helpers import evaluate
from tests.helpers import check_gradients, cli, spec_from, write_net

EXAMPLE = "examples/residual.yaml"

# Printed by tests/torch_scripts/residual.py (torch 2.13.0+cpu, float64): x + block(x) for a
# pre-norm block (LayerNorm, Linear, ReLU, Linear without bias) and a convolutional block
# (Conv2d 3x3 padding 1, ReLU, Conv2d without bias), gradients by autograd.
TORCH_VALUES = {
    "prenorm": {
        "f": [[0.39005931675791644, -0.25086779890388616, 0.11802595108158839],
              [0.08871452505154181, 0.28531758864307005, 0.2592119119132459]],
        "a": [[0.6900593167579164, -1.450867798903886, 0.9180259510815885],
              [1.5887145250515418, 0.68531758864307, -0.3407880880867541]],
        "loss": 0.4125500730923798,
        "x": [[-0.0672250990466276, 0.06892387547749793, 0.014759355364256235],
              [0.22249530947265375, -0.4266167717384808, 0.1279507417441024]],
        "gamma": [0.051659599938920914, -0.012861503221919127, -0.1521957106012674],
        "beta": [0.017611697315004567, -0.10214598454313477, 0.1333853160784452],
        "fc1_w": [[0.31333589736941875, 0.04397868378764992, -0.31887319001631936],
                  [-0.28707176686354724, 0.005605097840418175, 0.23522461183967916],
                  [0.009705327096342422, -0.01867752478086291, 0.014975687792654997],
                  [0.0, 0.0, 0.0]],
        "fc1_b": [0.16719524843447459, -0.18027070523474834, 0.017006736188297466, 0.0],
        "fc2_w": [[0.08881761096233659, 0.17491875000272922, -0.0006966913749188038, 0.0],
                  [-0.1628322867642837, -0.32068437500500346, 0.0012772675206844733, 0.0],
                  [0.029605870320778858, 0.05830625000090973, -0.00023223045830626798, 0.0]],
        "out_w": [[0.3655214763161624, 0.2535990265493964, -0.13689022103012083],
                  [-0.36552147631616233, -0.2535990265493963, 0.13689022103012077]],
    },
    "conv": {
        "a": [[[[0.35997452019030785, -1.0154620454141194, 2.0],
                [1.4499002760290878, 0.0477875855641664, -0.28731759745033747],
                [0.43896373411021383, 0.5371350447316391, -1.6257996720393977]],
               [[0.14510519547732947, 0.3416765304383827, 0.3],
                [-0.43598682499967545, 0.9538996499772793, 0.8145805943080758],
                [0.6603918473209607, 0.6179841666402486, -0.8827110221840551]]],
              [[[1.1667387719637068, -0.1781707585265092, 0.3479666674063415],
                [-0.06173080725127372, 0.21505150760010922, 0.41483529447097145],
                [0.013258924012452822, 0.6357057305509327, -0.036072726689678196]],
               [[0.9952912918246468, -0.021741619560636416, -0.2789881043740284],
                [0.6653279093382696, -0.6010254186980357, 0.5818918056139123],
                [0.5002343503463923, -0.01682690411857518, 0.07268908969122717]]]],
        "loss": 1.2128202305500666,
        "x": [[[[-0.09227490435436986, 0.037659511492852155, 0.4828387336104448],
                [0.7075514803352353, 0.5544279814701379, -0.06116507648090262],
                [0.06581128050985953, -0.2872850567849235, 0.11633072573207527]],
               [[-0.6503468482073135, -0.5094195034742752, -0.4048412880062411],
                [0.13507074098588456, 0.1545706980599921, 0.31748903499930103],
                [0.5202319200171337, 0.4806715217428181, 0.11636172935282107]]],
              [[[-0.07181917588091971, -0.02885339594090035, 0.20453047106383526],
                [0.06743806213750995, 0.30275285056093315, 0.17247528205268953],
                [0.03796251030581099, -0.13398112942383764, -0.02413560480839579]],
               [[-0.3083456817978566, -0.027532672895452304, 0.0009291047192100024],
                [0.00037946475279110325, 0.08190422227670034, 0.18639072677211596],
                [0.22993091000727015, -0.04994902604066535, 0.1692599306746988]]]],
        "b1": [-1.095929134262044, -0.6215661634330891],
        "k1_first": [[-0.44368171005518053, -0.3065900887241283, 0.7710986369212054],
                     [-0.2552496079774625, -0.8165286442462458, 0.06733370499124598],
                     [0.013038195591658813, -0.14009905369480602, -0.5067113564091464]],
        "k2_first": [[0.12006608816816773, 0.2695413162897177, 0.06805904372621255],
                     [0.27595250802282856, 0.13404462234172904, -0.10206498051985768],
                     [0.07092704761856833, 0.26664707923622066, 0.6643546550229942]],
    },
}  # fmt: skip

PRENORM = """
inputs: [[0.3, -1.2, 0.8], [1.5, 0.4, -0.6]]
targets: [0, 1]
layers:
  - name: res
    type: residual
    layers:
      - {name: ln, type: layernorm, gamma: [1.2, 0.8, 1.0], beta: [0.1, 0.0, -0.1]}
      - name: fc1
        type: dense
        weights: [[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [-0.7, 0.2, 0.5], [0.1, 0.9, 0.3]]
        bias: [0.05, -0.1, 0.2, 0.0]
        activation: relu
      - name: fc2
        type: dense
        weights: [[0.6, -0.3, 0.2, 0.1], [-0.4, 0.5, 0.3, -0.2], [0.2, 0.1, -0.5, 0.7]]
        bias: none
  - name: out
    type: dense
    weights: [[0.4, -0.5, 0.3], [-0.2, 0.6, 0.1]]
    bias: [0.0, 0.1]
    activation: softmax
loss: cross_entropy
learning_rate: 0.1
"""

_K1 = (np.cos(np.arange(36.0).reshape(2, 2, 3, 3) * 0.7) * 0.3).tolist()
_K2 = (np.sin(np.arange(36.0).reshape(2, 2, 3, 3) * 1.3) * 0.3).tolist()
_W = (np.sin(np.arange(18.0).reshape(1, 18) * 0.5) * 0.4).tolist()
CONV = f"""
inputs:
  - [[[0.5, -1.0, 2.0], [1.5, 0.2, -0.7], [0.4, 0.8, -1.2]],
     [[0.1, 0.2, 0.3], [-0.5, 0.6, 0.7], [0.9, 1.0, -1.1]]]
  - [[[1.1, -0.5, 0.3], [0.2, 0.4, 0.4], [-0.3, 0.6, 0.0]],
     [[0.7, 0.1, -0.2], [0.8, -0.9, 0.5], [0.6, 0.3, 0.2]]]
targets: [[0.5], [-0.3]]
layers:
  - name: res
    type: residual
    layers:
      - {{name: conv1, type: conv2d, kernel: {_K1}, bias: [0.1, -0.1], padding: 1, activation: relu}}
      - {{name: conv2, type: conv2d, kernel: {_K2}, bias: none, padding: 1}}
  - {{type: relu}}
  - {{type: flatten}}
  - {{name: out, type: dense, weights: {_W}, bias: [0.2]}}
loss: mse
learning_rate: 0.1
"""


def _values(text: str, **kwargs: object) -> dict[str, np.ndarray]:
    trace = engine.run(spec_from(text), **kwargs)
    return {r.name: r.value for r in trace.steps[0]}


def close(expected: object, rel: float = 1e-10) -> object:
    return pytest.approx(np.asarray(expected, dtype=float), rel=rel, abs=1e-13)


def test_the_worked_example_gives_the_numbers_derived_by_hand():
    v = _values(Path(EXAMPLE).read_text())
    assert v["res.fc1.a"].tolist() == [1.0, 0.5]
    assert v["res.fc2.a"].tolist() == [0.5, -1.0]
    assert v["res.a"].tolist() == [1.5, 1.0]
    assert float(v["loss"]) == 0.125
    assert v["grad.res.a"].tolist() == [0.5, 0.5]
    assert v["grad.res.input.skip"].tolist() == [0.5, 0.5]
    assert v["grad.res.fc2.weights"].tolist() == [[0.5, 0.25], [0.5, 0.25]]
    assert v["grad.res.fc1.a"].tolist() == [0.25, -1.0]
    assert v["grad.res.fc1.weights"].tolist() == [[0.25, 0.5], [-1.0, -2.0]]
    assert v["grad.res.input.f"].tolist() == [1.25, -1.0]
    assert v["grad.res.input"].tolist() == [1.75, -0.5]
    assert v["new.res.fc1.weights"] == close([[0.975, -0.05], [-0.9, 1.2]])
    assert v["new.res.fc1.bias"] == close([-0.025, -0.4])
    assert v["new.res.fc2.weights"] == close([[0.45, -0.025], [-0.05, -2.025]])
    assert v["new.out.weights"] == close([[0.925, 0.95]])


def test_the_backward_table_shows_the_skip_path_then_f_then_their_sum():
    trace = engine.run(spec_from(Path(EXAMPLE).read_text()))
    st = trace.steps[0]
    names = [r.name for r in st.stage("backward")]
    order = [
        "grad.res.a",
        "grad.res.input.skip",
        "grad.res.fc2.a",
        "grad.res.fc1.input",
        "grad.res.input.f",
        "grad.res.input",
    ]
    assert [names.index(n) for n in order] == sorted(names.index(n) for n in order)
    assert st.records["grad.res.input"].formula == (
        "∂L/∂x = ∂L/∂a + ∂L/∂x through f (the skip path and the path through f)"
    )
    assert st.records["grad.res.fc2.a"].formula.startswith("∂L/∂a = ∂L/∂a of res")
    assert st.records["res.a"].formula == "a = x + f(x), f(x) = res.fc2.a"
    assert "∂L/∂x = ∂L/∂a + ∂L/∂x through f" in trace.conventions["res"]
    assert "res.fc1" in trace.conventions  # the inner layers state their conventions too


def test_the_table_names_inner_values_block_inner_value(capsys, tmp_path: Path):
    code, out, err = cli(capsys, "step", EXAMPLE, "--only", "*res.fc1*")
    assert code == 0, err
    for name in ("res.fc1.weights", "res.fc1.z", "grad.res.fc1.z", "grad.res.fc1.bias"):
        assert name in out


def test_a_pre_norm_block_agrees_with_pytorch():
    t = TORCH_VALUES["prenorm"]
    v = _values(PRENORM)
    assert v["res.fc2.a"] == close(t["f"])
    assert v["res.a"] == close(t["a"])
    assert float(v["loss"]) == pytest.approx(t["loss"], rel=1e-12)
    assert v["grad.res.input"] == close(t["x"], rel=1e-9)
    assert v["grad.res.ln.gamma"] == close(t["gamma"], rel=1e-9)
    assert v["grad.res.ln.beta"] == close(t["beta"], rel=1e-9)
    assert v["grad.res.fc1.weights"] == close(t["fc1_w"], rel=1e-9)
    assert v["grad.res.fc1.bias"] == close(t["fc1_b"], rel=1e-9)
    assert v["grad.res.fc2.weights"] == close(t["fc2_w"], rel=1e-9)
    assert v["grad.out.weights"] == close(t["out_w"], rel=1e-9)
    assert v["grad.res.input"] == close(v["grad.res.input.skip"] + v["grad.res.input.f"])


def test_a_convolutional_block_agrees_with_pytorch():
    t = TORCH_VALUES["conv"]
    v = _values(CONV)
    assert v["res.a"] == close(t["a"])
    assert float(v["loss"]) == pytest.approx(t["loss"], rel=1e-12)
    assert v["grad.res.input"] == close(t["x"], rel=1e-9)
    assert v["grad.res.conv1.bias"] == close(t["b1"], rel=1e-9)
    assert v["grad.res.conv1.kernel"][0, 0] == close(t["k1_first"], rel=1e-9)
    assert v["grad.res.conv2.kernel"][0, 0] == close(t["k2_first"], rel=1e-9)


@pytest.mark.parametrize("text", [Path(EXAMPLE).read_text(), PRENORM, CONV])
def test_blocks_match_finite_differences(text: str):
    check_gradients(spec_from(text))


@pytest.mark.parametrize("text", [Path(EXAMPLE).read_text(), PRENORM])
def test_every_explanation_in_and_around_a_block_evaluates_to_its_value(text: str):
    trace = engine.run(spec_from(text))
    request = explain.parse_requests(["all"], trace)
    works = [
        (e.record, w)
        for exps in explain.explain_trace(trace, request, 14, True, min_sig=12).values()
        for e in exps
        for w in e.works
    ]
    assert {rec.name for rec, _ in works} >= {"res.a", "grad.res.input", "grad.res.input.f"}
    for rec, w in works:
        assert not w.note.startswith(FALLBACK_NOTE), (w.name, w.note)
        if rec.name == "loss_after" or not w.substituted:
            continue
        assert evaluate(w.substituted) == pytest.approx(w.value, rel=1e-7, abs=1e-9), w.name


def test_explain_writes_the_two_paths_and_their_sum():
    trace = engine.run(spec_from(Path(EXAMPLE).read_text()))
    (a,) = explain.explain_value(trace, "res.a[0]")
    assert (a.symbolic, a.substituted, a.result) == ("x1 + f1", "1 + 0.5", "1.5")
    (skip,) = explain.explain_value(trace, "grad.res.input.skip[0]")
    assert (skip.symbolic, skip.substituted) == ("∂L/∂a1", "0.5")
    (f,) = explain.explain_value(trace, "grad.res.input.f[0]")
    assert (f.symbolic, f.substituted) == ("∂L/∂x1 of res.fc1", "1.25")
    (total,) = explain.explain_value(trace, "grad.res.input[0]")
    assert total.symbolic == "∂L/∂a1 + ∂L/∂x1 through f"
    assert (total.substituted, total.result) == ("0.5 + 1.25", "1.75")
    assert "two paths" in total.note
    (inner,) = explain.explain_value(trace, "grad.res.fc1.z[1]")
    assert inner.substituted == "(−1) × 1"  # the inner layers explain themselves
    (handover,) = explain.explain_value(trace, "grad.res.fc2.a[1]")
    assert handover.substituted == "0.5" and "∂a/∂f = 1" in handover.note


def test_the_checker_names_the_dropped_skip_path(tmp_path: Path, capsys):
    sheet = write(tmp_path, "sheet.yaml", "grad.res.input: [1.25, -1.0]\n")
    code, doc, err = check(capsys, EXAMPLE, sheet)
    assert code == 1, err
    assert "residual_no_skip" in slips_of(doc, "grad.res.input")


def test_slips_and_carried_errors_reach_the_layers_inside_a_block(tmp_path: Path, capsys):
    # res.fc1's W = [[1, 0], [−1, 1]] used transposed: z = [1·1 − 1·2, 0·1 + 1·2 − 0.5] = [−1, 1.5]
    sheet = write(tmp_path, "sheet.yaml", "res.fc1.z: [-1.0, 1.5]\nres.fc1.a: [0.0, 1.5]\n")
    code, doc, err = check(capsys, EXAMPLE, sheet)
    assert code == 1, err
    assert "dense_transposed" in slips_of(doc, "res.fc1.z")
    assert entry(doc, "res.fc1.a")["verdict"] == "carried_forward"


def test_training_a_block_lowers_the_loss_and_save_writes_its_layers_back(tmp_path: Path, capsys):
    text = PRENORM.replace("learning_rate: 0.1", "learning_rate: 0.5")
    net = write_net(tmp_path, text)
    saved = tmp_path / "saved.yaml"
    code, out, err = cli(capsys, "train", str(net), "--epochs", "20", "--save", str(saved))
    assert code == 0, err
    doc = yaml.safe_load(saved.read_text())
    inner = doc["layers"][0]["layers"]
    assert [layer["name"] for layer in inner] == ["ln", "fc1", "fc2"]
    assert inner[2]["bias"] == "none"
    before = _values(text)
    after = _values(saved.read_text())
    assert float(after["loss"]) < float(before["loss"])
    assert not np.array_equal(after["res.fc1.weights"], before["res.fc1.weights"])


def test_batchnorm_dropout_and_penalties_work_inside_a_block():
    text = """
inputs: [[1.0, 2.0], [0.5, -1.0], [0.0, 1.5]]
targets: [[0.1, 0.2], [0.3, -0.1], [0.0, 0.5]]
regularization: {l2: 0.1}
layers:
  - name: res
    type: residual
    layers:
      - {name: fc, type: dense, weights: [[0.5, -0.2], [0.3, 0.8]], bias: [0.1, 0.0]}
      - {name: bn, type: batchnorm, activation: tanh}
      - {name: drop, type: dropout, p: 0.5, mask: [1, 0]}
loss: mse
learning_rate: 0.1
"""
    v = _values(text)
    assert "grad.res.fc.weights.penalty" in v
    assert v["res.drop.mask"].tolist() == [[1.0, 0.0]] * 3
    assert "new.res.bn.running_mean" in v
    # the finite differences see the data loss only: check them without the penalty
    check_gradients(spec_from(text.replace("regularization: {l2: 0.1}\n", "")))


def test_a_block_inside_a_block_names_its_values_with_both_names():
    text = """
input: [1.0, -1.0]
target: [0.0, 0.0]
layers:
  - name: outer
    type: residual
    layers:
      - name: inner
        type: residual
        layers:
          - {name: fc, type: dense, weights: [[0.5, 0.1], [0.2, -0.3]], activation: tanh}
      - {name: fc, type: dense, weights: [[1.0, 0.5], [-0.5, 1.0]]}
loss: half_sse
learning_rate: 0.1
"""
    v = _values(text)
    assert "outer.inner.fc.z" in v and "grad.outer.inner.input.skip" in v
    assert "new.outer.inner.fc.weights" in v and "outer.fc.z" in v
    check_gradients(spec_from(text))


def test_a_block_that_changes_the_shape_is_one_error_at_the_block(tmp_path: Path, capsys):
    text = Path(EXAMPLE).read_text().replace("weights: [[0.5, 0], [0, -2]]", "weights: [[0.5, 0]]")
    net = write_net(tmp_path, text)
    code, out, err = cli(capsys, "step", str(net))
    assert code == 2 and out == ""
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "- name: res" in s)
    assert err.strip() == (
        f"bpcalc: error: {net}:{line}:5: residual block 'res': a = x + f(x) needs f(x) in the "
        "shape of x, (2,), but its layers end in shape (1,) (layer 'res.fc2'); change them so "
        "that they give (2,)"
    )


def test_a_mistake_inside_a_block_is_located_at_the_inner_layer():
    text = Path(EXAMPLE).read_text().replace("bias: [0, -0.5]", "bias: [0, -0.5, 1]")
    with pytest.raises(SpecError) as info:
        spec_from(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "bias: [0, -0.5, 1]" in s)
    assert info.value.where.line == line
    assert info.value.message == "dense layer 'res.fc1' has 2 neurons but 3 biases"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{name: res, type: residual}", "residual block 'res' needs layers:"),
        ("{name: res, type: residual, layers: []}", "layers should be a non-empty list"),
        (
            "{name: res, type: residual, layers: [{type: relu}], activation: relu}",
            "unknown key 'activation'",
        ),
    ],
)
def test_a_block_without_layers_or_with_other_keys_is_an_error(block: str, message: str):
    text = (
        f"input: [1.0]\ntarget: [0.0]\nlayers:\n  - {block}\nloss: half_sse\nlearning_rate: 0.1\n"
    )
    with pytest.raises(SpecError) as info:
        spec_from(text)
    assert message in info.value.message
    assert info.value.where.line == 4
