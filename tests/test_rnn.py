"""The Elman RNN: forward over the steps, back-propagation through time with ∂L/∂h_t's two
contributions, the weights' gradients as sums over time. Checked against the hand-derived
example, PyTorch's nn.RNN, finite differences, the checker's slips and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bpcalc import engine
from bpcalc.network.parse import load_network
from tests.errors_helpers import Case, assert_one_located_error
from tests.helpers import check_gradients, cli, spec_from, values, write_net


def approx(expected: Any, rel: float = 1e-6) -> Any:
    return pytest.approx(np.array(expected, dtype=float), rel=rel, abs=1e-6)


def test_the_example_reproduces_the_hand_derived_bptt():
    v = {r.name: r.value for r in engine.run(load_network("examples/rnn.yaml")).steps[0]}
    assert v["rnn.z"] == approx([[0.5], [0.619694], [-0.059268]])
    assert v["rnn.h"] == approx([[0.462117], [0.550915], [-0.059199]])
    assert v["loss"] == pytest.approx(0.853222, abs=1e-6)
    # ∂L/∂h_t: from the output at t, and from step t+1 (w·∂L/∂z_{t+1}, 0 at the last step)
    assert v["grad.rnn.h.from_output"] == approx([[-0.537883], [1.050915], [-0.559199]])
    assert v["grad.rnn.h.from_next"] == approx([[0.337171], [-0.445791], [0]])
    assert v["grad.rnn.h"] == approx([[-0.200712], [0.605123], [-0.559199]])
    assert v["grad.rnn.z"] == approx([[-0.157849], [0.421464], [-0.557239]])
    assert v["grad.rnn.weights_ih"] == approx([[0.610122]])
    assert v["grad.rnn.weights_hh"] == approx([[-0.112225]])
    assert v["grad.rnn.bias"] == approx([-0.293624])
    assert v["grad.rnn.input"] == approx([[-0.078925], [0.210732], [-0.278620]])
    assert v["new.rnn.weights_ih"] == approx([[0.438988]])
    assert v["new.rnn.weights_hh"] == approx([[0.811223]])
    assert v["new.rnn.bias"] == approx([0.0293624])


TORCH_VALUES = {'tanh_all': {'h': [[[0.7305938960959437, -0.17808086811733026, -0.564899552846225],
                     [-0.04514741693025612, 0.9272274352128386, -0.5503805865507236],
                     [-0.8212092383740164, 0.5434457545689967, 0.7838250907119655],
                     [0.31460517941196836, -0.4285097901418102, 0.3397760574907576]],
                    [[-0.2449186624037092, 0.6750698748386079, 0.3452140341355209],
                     [0.4211131794149486, -0.5573881424711249, 0.1017578500452529],
                     [0.2407724436525088, 0.5597181580077257, -0.36092790772466],
                     [0.6868202494092095, 0.060872939882820554, -0.7195420578430635]]],
              'loss': 0.28013475929100057,
              'grad_W_ih': [[0.15931941551673218, -0.11873425481682363],
                            [-0.08024889952266767, 0.060640997473726935],
                            [-0.14364120397198307, 0.11006322890473663]],
              'grad_W_hh': [[-0.0334700170626379, 0.0066697381784291375, 0.049409473129235895],
                            [0.054038264984680076, -0.07448813163901677, -0.018241463449307063],
                            [-0.017997275963620354, 0.023522149294032735, -0.018844204588759933]],
              'grad_b': [0.019114587279057696, -0.0564064766452614, -0.018114286124600885],
              'grad_x': [[[0.04240403547217722, 0.014144451510854104],
                          [0.0007012690770845653, 0.015702840290154823],
                          [-0.046602291787702775, 0.014836812731184201],
                          [-0.0005289236283507548, -0.04795825629507784]],
                         [[-0.042229351457373526, 0.02550489409062345],
                          [0.029244182781803327, -0.02499145392525854],
                          [0.014695996071405296, -0.004148552119618289],
                          [0.011459653456193738, -0.04576172239524842]]]},
 'clip': {'grad_norm': 0.322078382310096,
          'new_W_ih': [[0.49010682308355025, -0.2926270192171129],
                       [0.204983175200293, 0.7962344067453941],
                       [-0.5910803850316823, 0.09316545951402946]],
          'new_W_hh': [[0.1020783706689063, -0.4004141673478502, 0.2969318450144278],
                       [0.6966444132749452, 0.20462545171968197, -0.4988672690987873],
                       [-0.19888243228520028, 0.5985393570289832, 0.40117015901195546]],
          'new_b_ih': [0.09881305117130074, -0.19649735563694334, 0.05112483363540238],
          'new_b_hh': [-0.0011869488286992739, 0.30350264436305663, -0.09887516636459763]},
 'relu_last': {'h': [[[0.9299999999999999, 0.0, 0.0],
                      [0.07299999999999998, 1.531, 0.0],
                      [0.0, 0.5373000000000001, 1.6139999999999999],
                      [0.6592799999999999, 0.0, 0.5179800000000001]],
                     [[0.0, 0.8200000000000001, 0.36],
                      [0.41999999999999993, 0.0, 0.14600000000000002],
                      [0.03580000000000001, 0.7209999999999999, 0.0],
                      [0.8651800000000003, 0.0, 0.0]]],
               'loss': 0.30143563853333344,
               'grad_W_ih': [[0.47359020000000007, -0.19555403333333338],
                             [-0.08656822400000004, 0.09522427600000005],
                             [0.05006761600000003, 0.006953986000000006]],
               'grad_W_hh': [[0.05805573866666669, 0.16843247866666664, 0.07857486533333324],
                             [0.021875302666666673, 0.08837664266666671, 0.011535733333333336],
                             [0.005865548000000001, 0.23864338666666673, 0.25002113866666675]],
               'grad_b': [0.36353792000000007, 0.0734130266666667, 0.2804881266666667],
               'grad_x': [[[0.020879393333333336, -0.012527636000000002],
                           [0.025753053333333345, 0.035577746666666674],
                           [-0.030523466666666665, 0.05705280000000003],
                           [-0.057049333333333375, -0.0019953333333333125]],
                          [[0.012285556000000001, 0.057073040666666686],
                           [-0.07873138000000002, 0.029992906666666673],
                           [-0.008651800000000005, -0.1009376666666667],
                           [0.1441966666666667, -0.08651800000000001]]]}}  # fmt: skip

X = TORCH_X = [
    [[1.0, -0.5], [0.3, 0.9], [-1.2, 0.4], [0.7, 0.2]],
    [[-0.4, 1.1], [0.6, -0.8], [0.0, 0.5], [1.5, -1.0]],
]
Y_ALL = [
    [[0.5, -0.5, 0.1], [0.0, 0.2, -0.3], [0.4, 0.4, 0.0], [-0.1, 0.3, 0.2]],
    [[0.2, 0.0, -0.2], [0.1, -0.4, 0.5], [-0.3, 0.2, 0.1], [0.0, 0.6, -0.5]],
]
Y_LAST = [[0.5, -0.5, 0.1], [0.0, 0.6, -0.5]]
W_IH = [[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1]]
W_HH = [[0.1, -0.4, 0.3], [0.7, 0.2, -0.5], [-0.2, 0.6, 0.4]]
B_IH, B_HH = [0.1, -0.2, 0.05], [0.0, 0.3, -0.1]


def _torch_net(activation: str, returns: str, biases: dict[str, Any]) -> dict[str, Any]:
    return {
        "inputs": X,
        "targets": Y_LAST if returns == "last" else Y_ALL,
        "layers": [
            {
                "name": "rnn",
                "type": "rnn",
                "weights_ih": W_IH,
                "weights_hh": W_HH,
                "h0": [0.2, -0.1, 0.4],
                "activation": activation,
                "return": returns,
                **biases,
            }
        ],
        "loss": "mse",
        "learning_rate": 0.1,
    }


PYTORCH_BIASES = {"bias_ih": B_IH, "bias_hh": B_HH}
ONE_BIAS = {"bias": [i + h for i, h in zip(B_IH, B_HH, strict=True)]}  # b = b_ih + b_hh


@pytest.mark.parametrize(
    ("case", "activation", "returns"), [("tanh_all", "tanh", "all"), ("relu_last", "relu", "last")]
)
@pytest.mark.parametrize("biases", [PYTORCH_BIASES, ONE_BIAS], ids=["pytorch_biases", "one_bias"])
def test_rnn_agrees_with_pytorch_in_both_bias_forms(case, activation, returns, biases):
    ref = TORCH_VALUES[case]
    v = values(_torch_net(activation, returns, biases))
    np.testing.assert_allclose(v["rnn.h"], ref["h"], rtol=1e-12, atol=1e-15)
    assert v["loss"] == pytest.approx(ref["loss"], rel=1e-12)
    np.testing.assert_allclose(v["grad.rnn.weights_ih"], ref["grad_W_ih"], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(v["grad.rnn.weights_hh"], ref["grad_W_hh"], rtol=1e-10, atol=1e-15)
    for name in biases:
        np.testing.assert_allclose(v[f"grad.rnn.{name}"], ref["grad_b"], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(v["grad.rnn.input"], ref["grad_x"], rtol=1e-10, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    t=st.integers(1, 4),
    d=st.integers(1, 3),
    hidden=st.integers(1, 3),
    n=st.integers(1, 2),
    activation=st.sampled_from(["tanh", "relu"]),
    returns=st.sampled_from(["all", "last"]),
    bias_form=st.sampled_from(["pytorch", "one", "none"]),
    with_h0=st.booleans(),
    head=st.sampled_from(["none", "dense", "dense_softmax"]),
)
def test_rnn_gradients_match_finite_differences(
    seed, t, d, hidden, n, activation, returns, bias_form, with_h0, head
):
    rng = np.random.default_rng(seed)
    layer: dict[str, Any] = {
        "name": "rnn",
        "type": "rnn",
        "weights_ih": rng.normal(size=(hidden, d)).tolist(),
        "weights_hh": (0.8 * rng.normal(size=(hidden, hidden))).tolist(),
        "activation": activation,
        "return": returns,
    }
    if bias_form == "pytorch":
        layer["bias_ih"] = rng.normal(size=hidden).tolist()
        layer["bias_hh"] = rng.normal(size=hidden).tolist()
    elif bias_form == "one":
        layer["bias"] = rng.normal(size=hidden).tolist()
    if with_h0:
        layer["h0"] = rng.normal(size=hidden).tolist()
    out_shape: tuple[int, ...] = (t, hidden) if returns == "all" else (hidden,)
    layers = [layer]
    loss = "half_sse"
    if head != "none":
        k = 2
        dense = {"type": "dense", "weights": rng.normal(size=(k, hidden)).tolist()}
        if head == "dense_softmax":
            dense["activation"] = "softmax"
            loss = "cross_entropy"
        layers.append(dense)
        out_shape = (*out_shape[:-1], k)
    if loss == "cross_entropy":
        targets = rng.integers(0, 2, size=(n, *out_shape[:-1])).tolist()
        if returns == "last":
            targets = [int(c) for c in rng.integers(0, 2, size=n)]
    else:
        targets = rng.normal(size=(n, *out_shape)).tolist()
    spec = spec_from(
        {
            "inputs": rng.normal(size=(n, t, d)).tolist(),
            "targets": targets,
            "layers": layers,
            "loss": loss,
            "learning_rate": 0.1,
        }
    )
    if activation == "relu":  # off the kink of ReLU, where differences and derivative differ
        trace = engine.run(spec)
        assume(np.abs(trace.steps[0]["rnn.z"]).min() > 1e-3)
    check_gradients(spec)


def test_explain_writes_the_sum_over_time_term_by_term(capsys):
    code, out, err = cli(
        capsys,
        "step",
        "examples/rnn.yaml",
        "--explain",
        "grad.rnn.weights_hh",
        "--explain",
        "grad.rnn.h",
        "--explain",
        "grad.rnn.h.from_next",
    )
    assert code == 0, err
    assert "grad.rnn.weights_hh[0,0] = ∂L/∂z11·h0 + ∂L/∂z21·h11 + ∂L/∂z31·h21" in out
    assert "= (−0.1578)×0 + 0.4215×0.4621 + (−0.5572)×0.5509 = −0.1122" in out
    assert "grad.rnn.h[1,0] = (from the output at t) + (from step t+1)" in out
    assert "= 1.0509 + (−0.44579) = 0.6051" in out  # the digits that make it add up
    assert "grad.rnn.h.from_next[1,0] = w11 · ∂L/∂z31 = 0.8 × (−0.5572) = −0.4458" in out
    assert "grad.rnn.h.from_next[2,0] = 0" in out


def test_the_conventions_say_which_bias_form_and_what_is_returned(capsys):
    code, out, err = cli(capsys, "step", "examples/rnn.yaml", "--json")
    assert code == 0, err
    text = json.loads(out)["conventions"]["rnn"]
    assert "one bias b (the textbook form)" in text
    assert "every h_t (return: all)" in text
    v = values(_torch_net("tanh", "last", PYTORCH_BIASES))
    assert "grad.rnn.bias" not in v and "grad.rnn.bias_hh" in v


@pytest.mark.parametrize(
    ("answer", "slip"),
    [
        # ∂L/∂h_t without the part from step t+1: only ∂L/∂a_t = h_t − y_t
        ("grad.rnn.h: [[-0.5379], [1.0509], [-0.5592]]", "rnn_no_from_next"),
        # only the last step's term of ∂L/∂W_hh: ∂L/∂z3·h2 = −0.557239·0.550915 = −0.306992
        ("grad.rnn.weights_hh: [[-0.3070]]", "rnn_last_term_only"),
        # tanh′ left out at the last step: ∂L/∂z3 = ∂L/∂h3 = −0.559199 (right: −0.557239)
        ("grad.rnn.z[2,0]: -0.5592", "rnn_no_derivative"),
    ],
)
def test_the_usual_bptt_slips_are_named(tmp_path, capsys, answer, slip):
    sheet = write_net(tmp_path, answer + "\n", "a.yaml")
    code, out, err = cli(capsys, "check", "examples/rnn.yaml", str(sheet), "--json")
    assert code == 1, err
    doc = json.loads(out)
    found = {d["slip"] for a in doc["answers"] for d in a.get("diagnoses", [])}
    assert slip in found, out


# line 4 the rnn layer; its weights_ih at 6:17
RNN = """\
input: [[1, 2], [3, 4]]
target: [[0], [1]]
layers:
  - name: rnn
    type: rnn
    weights_ih: [[0.1, 0.2]]
    weights_hh: [[0.5]]
loss: {type: half_sse, positions: sum}
learning_rate: 0.1
"""

CASES = [
    Case(
        "weights_ih written input x hidden",
        RNN.replace("weights_ih: [[0.1, 0.2]]", "weights_ih: [[0.1], [0.2]]"),
        "6:17",
        ("hidden x input = 1 x 2", "found 2 x 1", "transpose"),
    ),
    Case(
        "weights_hh not square",
        RNN.replace("weights_hh: [[0.5]]", "weights_hh: [[0.5, 0.1]]"),
        "7:17",
        ("hidden x hidden", "found 1 x 2"),
    ),
    Case(
        "both bias forms",
        RNN.replace("weights_hh: [[0.5]]", "weights_hh: [[0.5]]\n    bias: [0]\n    bias_ih: [0]"),
        "9:5",
        ("one bias:", "bias_ih: and bias_hh:", "not both"),
    ),
    Case(
        "an h0 of the wrong size",
        RNN.replace("weights_hh: [[0.5]]", "weights_hh: [[0.5]]\n    h0: [0, 0]"),
        "8:9",
        ("1 hidden units but h0 has 2",),
    ),
    Case(
        "an activation an RNN does not take",
        RNN.replace("weights_hh: [[0.5]]", "weights_hh: [[0.5]]\n    activation: sigmoid"),
        "8:17",
        ("rnn activation should be one of tanh, relu",),
    ),
    Case(
        "a vector where the RNN expects a sequence",
        RNN.replace("input: [[1, 2], [3, 4]]", "input: [1, 2]"),
        "1:8",
        ("starts with rnn", "should be a sequence", "found shape (2,)"),
    ),
    Case(
        "an RNN after a layer that gives a vector",
        "input: [1, 2]\ntarget: [0]\nlayers:\n  - {type: dense, weights: [[1, 0]]}\n"
        "  - {type: rnn, weights_ih: [[1]], weights_hh: [[1]]}\n"
        "loss: half_sse\nlearning_rate: 0.1\n",
        "5:5",
        ("rnn layer 'rnn1' needs a sequence", "gives shape (1,)"),
    ),
    Case(
        "an RNN's hidden states read as an image",
        RNN.replace(
            "weights_hh: [[0.5]]\n", "weights_hh: [[0.5]]\n  - {name: p, type: avgpool2d}\n"
        ),
        "8:5",
        ("avgpool2d layer 'p' needs an image input", "a sequence of 2 positions"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_rnn_input_is_one_located_message_with_exit_code_2(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_one_located_error(case, tmp_path, capsys, monkeypatch)


def test_clip_norm_scales_every_gradient_as_pytorchs_clip_grad_norm(capsys):
    net = _torch_net("tanh", "all", PYTORCH_BIASES)
    del net["learning_rate"]
    net["optimizer"] = {"type": "sgd", "lr": 0.1, "clip_norm": 0.2}
    v = values(net)
    ref = TORCH_VALUES["clip"]
    assert float(v["grad_norm"]) == pytest.approx(ref["grad_norm"], rel=1e-12)
    np.testing.assert_allclose(v["new.rnn.weights_ih"], ref["new_W_ih"], rtol=1e-12)
    np.testing.assert_allclose(v["new.rnn.weights_hh"], ref["new_W_hh"], rtol=1e-12)
    np.testing.assert_allclose(v["new.rnn.bias_ih"], ref["new_b_ih"], rtol=1e-12)
    np.testing.assert_allclose(v["new.rnn.bias_hh"], ref["new_b_hh"], rtol=1e-12)
    c = 0.2 / (ref["grad_norm"] + 1e-6)
    np.testing.assert_allclose(v["clipped.rnn.weights_hh"], c * v["grad.rnn.weights_hh"])


def test_clipping_is_shown_only_when_it_fires_and_training_clips_the_same():
    # the example's ‖g‖ = √(0.610122² + 0.112225² + 0.293624²) = 0.686337
    base = (
        Path("examples/rnn.yaml")
        .read_text()
        .replace("learning_rate: 0.1", "optimizer: {type: sgd, lr: 0.1, clip_norm: CLIP}")
    )
    fired = values(base.replace("CLIP", "0.5"))
    assert float(fired["grad_norm"]) == pytest.approx(0.686337, abs=1e-6)
    assert fired["clipped.rnn.weights_ih"] == approx([[0.610122 * 0.5 / 0.686338]], rel=1e-5)
    calm = values(base.replace("CLIP", "1.0"))
    assert float(calm["grad_norm"]) == pytest.approx(0.686337, abs=1e-6)
    assert not any(k.startswith("clipped.") for k in calm)
    assert calm["new.rnn.weights_ih"] == approx([[0.438988]])  # not clipped: as without
    from bpcalc.training import Trainer

    spec = spec_from(base.replace("CLIP", "0.5"))
    trainer = Trainer(spec, np.float64)
    trainer.train_step(spec.inputs, spec.targets)
    np.testing.assert_allclose(
        trainer.params["rnn"]["weights_ih"], fired["new.rnn.weights_ih"], rtol=1e-14
    )


def test_the_next_character_example_learns_nine_positions_in_ten_within_ten_epochs(capsys):
    code, out, err = cli(capsys, "train", "examples/sequences/next_char.yaml", "--json")
    assert code == 0, err
    epochs = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert epochs[9]["train_accuracy"] >= 0.9  # epoch 10, as the file says
    assert epochs[-1]["epoch"] == 30 and epochs[-1]["train_accuracy"] >= 0.92


@pytest.mark.parametrize(
    "args", [("rnn",), ("rnn", "--hidden", "4", "--length", "3"), ("attention", "--heads", "2")]
)
def test_new_writes_a_sequence_network_that_steps_and_trains(tmp_path, capsys, args):
    out = tmp_path / "net.yaml"
    code, _, err = cli(capsys, "new", *args, "-o", str(out))
    assert code == 0, err
    code, _, err = cli(capsys, "step", str(out))
    assert code == 0, err
    code, text, err = cli(capsys, "train", str(out), "--json")
    assert code == 0, err
    assert json.loads(text.splitlines()[-1])["train_accuracy"] == 1.0  # counting is learnable
    code, text, err = cli(capsys, "check", str(out), "--template")
    assert code == 0, err
    assert "grad.rnn.h.from_next" in text if args[0] == "rnn" else "grad.attn.scores" in text


def test_a_trained_rnn_saves_its_weights_in_place_of_its_sizes(tmp_path, capsys):
    net, saved = tmp_path / "net.yaml", tmp_path / "saved.yaml"
    assert cli(capsys, "new", "rnn", "-o", str(net))[0] == 0
    code, _, err = cli(capsys, "train", str(net), "--epochs", "3", "--save", str(saved))
    assert code == 0, err
    text = saved.read_text()
    assert "weights_ih:" in text and "weights_hh:" in text and "units:" not in text
    assert "vocab:" not in text and "dim:" not in text
    code, _, err = cli(capsys, "step", str(saved))
    assert code == 0, err


def test_later_steps_computed_from_a_wrong_hidden_state_are_carried_forward(tmp_path, capsys):
    # h1 written 0.4 (right: 0.462117); from it z2 = 0.25 + 0.8·0.4 = 0.57, h2 = tanh(0.57)
    # = 0.515359, z3 = −0.5 + 0.8·0.515359 = −0.087713, h3 = tanh(−0.087713) = −0.087488
    sheet = write_net(
        tmp_path,
        "rnn.z: [[0.5000], [0.5700], [-0.0877]]\nrnn.h: [[0.4000], [0.5154], [-0.0875]]\n",
        "a.yaml",
    )
    code, out, err = cli(capsys, "check", "examples/rnn.yaml", str(sheet), "--json")
    assert code == 1, err
    verdicts = {a["ref"]: a for a in json.loads(out)["answers"]}
    assert verdicts["rnn.h"]["verdict"] == "wrong"  # its first step is the slip
    assert verdicts["rnn.z"]["verdict"] == "carried_forward"
    assert verdicts["rnn.z"]["rests_on"] == ["rnn.h"]


def test_round_each_rounds_every_step_and_the_next_step_goes_on_from_it():
    # h1 = tanh(0.5) = 0.462117 -> 0.46; z2 = 0.25 + 0.8·0.46 = 0.618 -> 0.62 (from the
    # unrounded h1 it would be 0.619694 -> 0.62 too, so look at h2: tanh(0.62) = 0.5511 -> 0.55)
    # z3 = −0.5 + 0.8·0.55 = −0.06 (unrounded h2 0.550915 would give −0.059268 -> −0.06)
    # and back through time: ∂L/∂h3 = h3 − y3 = tanh(−0.06) − 0.5 = −0.06 − 0.5 = −0.56
    v = {
        r.name: r.value
        for r in engine.run(load_network("examples/rnn.yaml"), round_each=2).steps[0]
    }
    assert v["rnn.h"].ravel().tolist() == [0.46, 0.55, -0.06]
    assert v["rnn.z"].ravel().tolist() == [0.5, 0.62, -0.06]
    assert v["grad.rnn.h"][2, 0] == pytest.approx(-0.56)
