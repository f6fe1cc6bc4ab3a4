"""Sequences: samples of T positions with d features. Dense layers, activations and dropout act
at every position; softmax takes a named axis; losses are taken at every position and averaged
(or summed) over the positions, as the conventions block says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcalc import engine
from tests.errors_helpers import Case, assert_one_located_error
from tests.helpers import check_gradients, cli, spec_from, values, write_net

# tests/torch_scripts/sequences.py: nn.Linear on every position of x (N=2, T=3, d=2), then
# softmax over the positions (dim=1) with MSELoss, or the sigmoid with BCEWithLogitsLoss;
# both mean-reduced over every element of (N, T, K)
TORCH_VALUES = {
    "mse_softmax_positions": {
        "a": [[[0.49920348845241164, 0.2223808500004012], [0.3346261053605723, 0.2827014666107618],
               [0.16617040618701603, 0.49491768338883707]],
              [[0.27592914203734903, 0.40587540193378996], [0.3205839257856282, 0.21188553947071495],
               [0.4034869321770227, 0.3822390585954952]]],
        "loss": 0.3015601537094124,
        "grad_W": [[0.10909954383588556, -0.0288062443160614],
                   [-0.038718325385127074, -0.007404399581953482]],
        "grad_b": [-1.214306433183765e-17, 3.469446951953614e-18],
        "grad_x": [[[0.013644956753349051, -0.016614253210979407],
                    [-0.006310555701164726, 0.01796449001737948],
                    [-0.007334401052184327, -0.0013502368064000712]],
                   [[0.006440199156423802, 0.009355862424075398],
                    [-0.010387322068917553, 0.01085350539736607],
                    [0.00394712291249375, -0.02020936782144147]]],
    },
    "bce": {
        "a": [[[0.610639233949222, 0.45016600268752216], [0.5124973964842103, 0.5099986668799655],
               [0.3429895373265012, 0.6456563062257954]],
              [[0.5249791874789399, 0.5374298453437496], [0.5621765008857981, 0.3775406687981454],
               [0.617747874769249, 0.5224848247918001]]],
        "loss": 0.7339118535126978,
        "grad_W": [[0.19660504848440885, -0.08362528692047905],
                   [-0.04508736752522543, -0.036445671039605936]],
        "grad_b": [0.014252477574493383, 0.003606359560581522],
        "grad_x": [[[0.010684030871126569, -0.028505120476236295],
                    [-0.00793757619722836, 0.025124998954595346],
                    [-0.019378125681622508, -0.0008612820812485076]],
                   [[0.017603061731504742, 0.009164675053475988],
                    [-0.007799415237870503, 0.019881747278508215],
                    [0.011464403742496226, -0.02621297041976081]]],
    },
}  # fmt: skip

TORCH_NET = """
sequence: true
inputs: [[[1.0, -0.5], [0.2, 0.3], [-1.0, 2.0]], [[0.5, 0.5], [0.0, -1.0], [1.5, 0.1]]]
targets: [[[0, 1], [1, 0], [1, 1]], [[0, 0], [1, 0], [0, 1]]]
layers:
  - {name: fc, type: dense, weights: [[0.3, -0.2], [0.1, 0.4]], bias: [0.05, -0.1], ACT}
loss: LOSS
learning_rate: 0.1
"""


@pytest.mark.parametrize(
    ("case", "act", "loss"),
    [
        ("mse_softmax_positions", "activation: softmax, axis: positions", "mse"),
        ("bce", "activation: sigmoid", "binary_cross_entropy"),
    ],
)
def test_dense_at_every_position_and_per_position_losses_agree_with_pytorch(case, act, loss):
    ref = TORCH_VALUES[case]
    v = values(TORCH_NET.replace("ACT", act).replace("LOSS", loss))
    np.testing.assert_allclose(v["fc.a"], ref["a"], rtol=1e-12)
    assert v["loss"] == pytest.approx(ref["loss"], rel=1e-12)
    np.testing.assert_allclose(v["grad.fc.weights"], ref["grad_W"], rtol=1e-10)
    np.testing.assert_allclose(v["grad.fc.bias"], ref["grad_b"], atol=1e-15)
    np.testing.assert_allclose(v["grad.fc.input"], ref["grad_x"], rtol=1e-10)


def test_a_dense_layer_on_a_sequence_is_the_same_layer_at_every_position():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3))
    w, b = rng.normal(size=(2, 3)), rng.normal(size=2)
    v = values(
        {
            "sequence": True,
            "input": x.tolist(),
            "target": np.zeros((4, 2)).tolist(),
            "layers": [{"name": "fc", "type": "dense", "weights": w.tolist(), "bias": b.tolist()}],
            "loss": {"type": "half_sse", "positions": "sum"},
            "learning_rate": 0.1,
        }
    )
    np.testing.assert_allclose(v["fc.z"], np.stack([w @ row + b for row in x]))
    # ½ Σ_t |z_t|²: ∂L/∂z = z, ∂L/∂W = Σ_t z_t x_tᵀ, ∂L/∂b = Σ_t z_t
    z = v["fc.z"]
    np.testing.assert_allclose(
        v["grad.fc.weights"], sum(np.outer(zt, xt) for zt, xt in zip(z, x, strict=True))
    )
    np.testing.assert_allclose(v["grad.fc.bias"], z.sum(axis=0))


# softmax over the features of each position: rows sum to 1; over the positions: columns do
SOFTMAX = """
sequence: true
input: [[1, 2], [3, 0], [0, 0]]
target: [[0, 1], [1, 0], [1, 0]]
layers:
  - {name: s, type: softmax, AXIS}
loss: {type: half_sse, positions: sum}
learning_rate: 0.1
"""


def test_softmax_over_a_sequence_takes_the_named_axis():
    rows = values(SOFTMAX.replace(", AXIS", ""))["s.a"]
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)
    # position 1: e^1/(e^1 + e^2)
    assert rows[0, 0] == pytest.approx(np.e / (np.e + np.e**2))
    cols = values(SOFTMAX.replace("AXIS", "axis: positions"))["s.a"]
    np.testing.assert_allclose(cols.sum(axis=0), 1.0)
    # feature 1 over the positions: e^1/(e^1 + e^3 + e^0)
    assert cols[0, 0] == pytest.approx(np.e / (np.e + np.e**3 + 1))


def test_softmax_explain_writes_the_row_of_its_own_position(capsys, tmp_path):
    net = write_net(tmp_path, SOFTMAX.replace("AXIS", "axis: positions"))
    code, out, err = cli(capsys, "step", str(net), "--explain", "s.a[1,0]")
    assert code == 0, err
    assert "s.a[1,0] = e^x21 / (e^x11 + e^x21 + e^x31)" in out


def test_the_conventions_say_what_a_sequence_and_its_loss_mean(capsys, tmp_path):
    net = write_net(tmp_path, SOFTMAX.replace(", AXIS", "").replace("sum}", "mean}"))
    code, out, err = cli(capsys, "step", str(net), "--json")
    assert code == 0, err
    conv = __import__("json").loads(out)["conventions"]
    assert conv["sequence"].startswith("T = 3 positions; dense layers, activations, dropout and")
    assert "averaged over the positions" in conv["sequence"]
    assert conv["loss"].startswith("L = (1/T) Σ_t ℓ_t, ℓ_t = ½ Σ (a − y)² at position t")


@pytest.mark.parametrize(
    ("positions", "loss"),
    # ℓ_t = ½ Σ (a_t − y_t)²: [½(1 + 4)... ] with a = x (identity): (1,2) vs (0,1): ½(1+1) = 1;
    # (3,0) vs (1,0): ½·4 = 2; (0,0) vs (1,0): ½; sum 3.5, mean 3.5/3
    [("sum", 3.5), ("mean", 3.5 / 3)],
)
def test_the_loss_over_positions_is_their_sum_or_their_mean(positions, loss):
    net = SOFTMAX.replace("  - {name: s, type: softmax, AXIS}", "  - {name: r, type: relu}")
    v = values(net.replace("positions: sum", f"positions: {positions}"))
    assert v["loss"] == pytest.approx(loss)
    scale = 1.0 if positions == "sum" else 1 / 3
    np.testing.assert_allclose(
        v["grad.r.a"], scale * (np.array([[1, 2], [3, 0], [0, 0]]) - [[0, 1], [1, 0], [1, 0]])
    )


def test_dropout_masks_every_position_with_its_own_element():
    v = values(
        """
sequence: true
input: [[1, 2], [3, 4]]
target: [[0, 0], [0, 0]]
layers:
  - {name: d, type: dropout, p: 0.5, mask: [[1, 0], [0, 1]]}
loss: {type: half_sse, positions: sum}
learning_rate: 0.1
"""
    )
    np.testing.assert_allclose(v["d.a"], [[2, 0], [0, 8]])
    np.testing.assert_allclose(v["grad.d.input"], [[4, 0], [0, 16]])


ACTS = ["relu", "tanh", "sigmoid", "gelu", "softsign"]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    t=st.integers(1, 4),
    d=st.integers(1, 3),
    hidden=st.integers(1, 3),
    n=st.integers(1, 3),
    loss=st.sampled_from(["mse", "half_sse", "cross_entropy", "binary_cross_entropy"]),
    positions=st.sampled_from(["mean", "sum"]),
    reduction=st.sampled_from(["mean", "sum"]),
    act=st.sampled_from(ACTS),
    layout=st.sampled_from(["out_in", "in_out"]),
    output_layer=st.booleans(),
)
def test_sequence_networks_match_finite_differences(
    seed, t, d, hidden, n, loss, positions, reduction, act, layout, output_layer
):
    rng = np.random.default_rng(seed)
    k = 2 if loss == "cross_entropy" else int(rng.integers(1, 3))
    w1 = rng.normal(size=(hidden, d) if layout == "out_in" else (d, hidden))
    layers: list[dict[str, Any]] = [
        {
            "type": "dense",
            "layout": layout,
            "weights": w1.tolist(),
            "bias": rng.normal(size=hidden).tolist(),
            "activation": act,
        }
    ]
    out: dict[str, Any] = {
        "type": "dense",
        "weights": rng.normal(size=(k, hidden)).tolist(),
        "bias": rng.normal(size=k).tolist(),
    }
    out_act = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}.get(loss, "tanh")
    if output_layer:  # the output activation as a layer of its own
        layers += [out, {"type": out_act}]
    else:
        layers.append({**out, "activation": out_act})
    if loss == "cross_entropy":
        targets = rng.integers(0, k, size=(n, t)).tolist()
    elif loss == "binary_cross_entropy":
        targets = rng.integers(0, 2, size=(n, t, k)).astype(float).tolist()
    else:
        targets = rng.normal(size=(n, t, k)).tolist()
    spec = spec_from(
        {
            "sequence": True,
            "inputs": rng.normal(size=(n, t, d)).tolist(),
            "targets": targets,
            "layers": layers,
            "loss": {"type": loss, "positions": positions, "reduction": reduction},
            "learning_rate": 0.1,
        }
    )
    check_gradients(spec)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(2, 4), k=st.integers(1, 3))
def test_softmax_over_the_positions_matches_finite_differences(seed, t, k):
    rng = np.random.default_rng(seed)
    spec = spec_from(
        {
            "sequence": True,
            "input": rng.normal(size=(t, 2)).tolist(),
            "target": rng.normal(size=(t, k)).tolist(),
            "layers": [
                {
                    "type": "dense",
                    "weights": rng.normal(size=(k, 2)).tolist(),
                    "bias": rng.normal(size=k).tolist(),
                    "activation": "softmax",
                    "axis": "positions",
                }
            ],
            "loss": "mse",
            "learning_rate": 0.1,
        }
    )
    check_gradients(spec)


def test_training_grades_every_position_and_reports_its_fraction(capsys, tmp_path):
    # identity weights: the arg-max at each position is the larger input, [0, 1] and [1, 1];
    # the targets [0, 1] and [1, 0] make 3 of the 4 positions right
    net = write_net(
        tmp_path,
        """
sequence: true
inputs: [[[1, 0], [0, 1]], [[0, 1], [0, 1]]]
targets: [[0, 1], [1, 0]]
layers:
  - {name: out, type: dense, weights: [[1, 0], [0, 1]], bias: [0, 0], activation: softmax}
loss: cross_entropy
learning_rate: 0.01
""",
    )
    from bpcalc.training import Trainer

    spec = spec_from((tmp_path / "net.yaml").read_text())
    _, acc = Trainer(spec, np.float64).evaluate(spec.inputs, spec.targets)
    assert acc == pytest.approx(3 / 4)
    code, out, err = cli(capsys, "train", str(net), "--epochs", "1", "--json")
    assert code == 0, err
    assert '"train_accuracy": 0.75' in out  # measured on the batch before its update


def test_a_sequence_output_writes_one_class_index_per_position():
    spec = spec_from(
        """
sequence: true
inputs: [[[1, 0], [0, 1], [1, 1]]]
targets: [[1, 0, 1]]
layers:
  - {type: dense, weights: [[1, 0], [0, 1]], bias: [0, 0], activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""
    )
    np.testing.assert_array_equal(spec.target_classes, [[1, 0, 1]])
    np.testing.assert_array_equal(spec.targets[0], [[0, 1], [1, 0], [0, 1]])


def test_training_keeps_the_same_bits_as_step_on_a_sequence():
    spec = spec_from(TORCH_NET.replace("ACT", "activation: sigmoid").replace("LOSS", "mse"))
    from bpcalc.training import Trainer

    trainer = Trainer(spec, np.float64)
    trainer.train_step(spec.inputs, spec.targets)
    trace = engine.run(spec)
    np.testing.assert_array_equal(trainer.params["fc"]["weights"], trace.steps[0]["new.fc.weights"])


# line 1 sequence, 2 input (the first "[" at column 8), 3 target, 5 the layer
SEQ = """\
sequence: true
input: [[1, 2], [3, 0]]
target: [[0, 1], [1, 0]]
layers:
  - {name: fc, type: dense, weights: [[1, 0], [0, 1]], activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""

CASES = [
    Case(
        "a matrix into a dense network without sequence: true",
        SEQ.replace("sequence: true\n", "").replace("target: [[0, 1], [1, 0]]", "target: 1"),
        "1:8",
        ("should be a vector", "write sequence: true"),
    ),
    Case(
        "sequence: true with a vector input",
        SEQ.replace("[[1, 2], [3, 0]]", "[1, 2]"),
        "2:8",
        ("sequence: true", "shape (T, d)", "found shape (2,)"),
    ),
    Case(
        "one class index too few for the positions",
        SEQ.replace("target: [[0, 1], [1, 0]]", "target: [1]"),
        "3:9",
        ("sequence of 2 positions", "2 class indices"),
    ),
    Case(
        "a class index outside the classes at a position",
        SEQ.replace("target: [[0, 1], [1, 0]]", "target: [1, 2]"),
        "3:13",
        ("class index 2", "2 classes"),
    ),
    Case(
        "positions: for an output that is not a sequence",
        "input: [1, 2]\ntarget: [1]\nlayers:\n  - {type: dense, weights: [[1, 0]]}\n"
        "loss: {type: half_sse, positions: sum}\nlearning_rate: 0.1\n",
        "5:24",
        ("positions:", "not a sequence"),
    ),
    Case(
        "softmax axis: for an output that is not a sequence",
        "input: [1, 2]\ntarget: 1\nlayers:\n"
        "  - {type: dense, weights: [[1, 0], [0, 1]], activation: softmax, axis: features}\n"
        "loss: cross_entropy\nlearning_rate: 0.1\n",
        "4:67",
        ("axis:", "not a sequence"),
    ),
    Case(
        "cross-entropy over a softmax across the positions",
        SEQ.replace("activation: softmax}", "activation: softmax, axis: positions}"),
        "6:7",
        ("softmax over the classes of each position", "axis: positions"),
    ),
    Case(
        "an axis that is not one of the names",
        SEQ.replace("activation: softmax}", "activation: softmax, axis: time}"),
        "5:83",
        ("axis should be one of features, positions",),
    ),
    Case(
        "a sequence where an image is expected",
        SEQ.replace(
            "activation: softmax}",
            "activation: softmax}\n  - {name: conv, type: conv2d, kernel: [[1]]}",
        ),
        "6:5",
        ("conv2d layer 'conv' needs an image input", "a sequence of 2 positions of 2 features"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_sequence_input_is_one_located_message_with_exit_code_2(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_one_located_error(case, tmp_path, capsys, monkeypatch)


def test_summing_the_positions_where_the_loss_averages_them_is_named(capsys, tmp_path):
    # ℓ_t = [1, 2, ½] (see the loss-over-positions test): mean 3.5/3 = 1.1667, summed 3.5
    net = SOFTMAX.replace("  - {name: s, type: softmax, AXIS}", "  - {name: r, type: relu}")
    path = write_net(tmp_path, net.replace("positions: sum", "positions: mean"))
    sheet = write_net(tmp_path, "loss: 3.5\n", "a.yaml")
    code, out, err = cli(capsys, "check", str(path), str(sheet), "--json")
    assert code == 1, err
    assert "positions_sum" in out
    assert "divide by T = 3" in out
