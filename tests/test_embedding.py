"""The embedding layer: token ids in, rows of E out; ∂L/∂E is a scatter-add. Checked against
the hand-derived example, PyTorch's nn.Embedding, finite differences, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcalc import engine
from bpcalc.network.parse import load_network
from tests.errors_helpers import Case, assert_one_located_error
from tests.helpers import cli, loss_of, numeric_grad, rel_error, spec_from, values, write_net


def approx(expected: Any) -> Any:
    return pytest.approx(np.array(expected, dtype=float))


def test_the_example_reproduces_the_hand_derived_scatter_add():
    v = {r.name: r.value for r in engine.run(load_network("examples/embedding.yaml")).steps[0]}
    # a = [E[2], E[0], E[2]]; z = W·a_t: [−0.7, −0.3, −0.7]; L = ½(0.49 + 0.09 + 2.89)
    assert v["emb.a"] == approx([[0.5, -0.6], [0.1, -0.2], [0.5, -0.6]])
    assert v["fc.z"] == approx([[-0.7], [-0.3], [-0.7]])
    assert v["loss"] == pytest.approx(1.735)
    # ∂L/∂W = Σ_t ∂L/∂z_t·a_tᵀ = [−1.23, 1.5]; ∂L/∂b = −0.7 − 0.3 − 1.7
    assert v["grad.fc.weights"] == approx([[-1.23, 1.5]])
    assert v["grad.fc.bias"] == approx([-2.7])
    assert v["grad.emb.a"] == approx([[-0.7, -1.4], [-0.3, -0.6], [-1.7, -3.4]])
    # token 2 at positions 1 and 3: its row gets both; token 1 is unused
    assert v["grad.emb.weights"] == approx([[-0.3, -0.6], [0, 0], [-2.4, -4.8]])
    assert v["new.emb.weights"] == approx([[0.13, -0.14], [0.3, 0.4], [0.74, -0.12]])
    assert "grad.emb.input" not in v  # token ids have no gradient


# tests/torch_scripts/embedding.py: nn.Embedding(4, 2) -> nn.Linear(2, 2) on every position ->
# nn.CrossEntropyLoss over the (N, T) = (2, 3) positions (its default: the mean over N·T)
TORCH_VALUES = {
    "loss": 0.6198784967742309,
    "grad_E": [[-0.18327799910415932, -0.13745849932811946],
               [-0.08324663146829411, -0.062434973601220564],
               [0.16666666666666674, 0.12499999999999997],
               [0.14185249439611364, 0.10638937079708526]],
    "grad_W": [[-0.02963260104742519, 0.008419471375202575],
               [0.02963260104742517, -0.008419471375202547]],
    "grad_b": [0.020997265245163467, -0.020997265245163467],
    "softmax": [[[0.5, 0.49999999999999994], [0.4501660026875221, 0.549833997312478],
                 [0.5, 0.49999999999999994]],
                [[0.7502601055951177, 0.24973989440488242], [0.5, 0.49999999999999994],
                 [0.4255574831883411, 0.574442516811659]]],
}  # fmt: skip

TORCH_NET = """
inputs: [[2, 0, 2], [1, 2, 3]]
targets: [[1, 0, 1], [0, 0, 1]]
layers:
  - {name: emb, type: embedding, weights: [[0.1, -0.2], [0.3, 0.4], [0.5, -0.6], [-0.7, 0.8]]}
  - {name: out, type: dense, weights: [[1, 2], [-1, 0.5]], bias: [0, 0.1], activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""


def test_embedding_and_per_position_cross_entropy_agree_with_pytorch():
    v = values(TORCH_NET)
    assert v["loss"] == pytest.approx(TORCH_VALUES["loss"], rel=1e-12)
    np.testing.assert_allclose(v["out.a"], TORCH_VALUES["softmax"], rtol=1e-12)
    np.testing.assert_allclose(v["grad.emb.weights"], TORCH_VALUES["grad_E"], rtol=1e-12)
    np.testing.assert_allclose(v["grad.out.weights"], TORCH_VALUES["grad_W"], rtol=1e-12)
    np.testing.assert_allclose(v["grad.out.bias"], TORCH_VALUES["grad_b"], rtol=1e-12)


def _param_grads_against_finite_differences(spec: Any, tol: float = 1e-6) -> None:
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec)
    fwd = engine.forward(layers, params, spec.inputs)
    grads = engine.backward(spec, layers, params, fwd, spec.targets)
    x = spec.inputs.copy()
    for layer, pg in grads.items():
        for pname, g in pg.items():
            num = numeric_grad(lambda: loss_of(spec, params, x), params[layer][pname])
            err = rel_error(g, num)
            assert err < tol, f"∂L/∂{layer}.{pname}: relative error {err:.2e}\n{g}\n{num}"


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    vocab=st.integers(1, 5),
    dim=st.integers(1, 3),
    t=st.integers(1, 4),
    n=st.integers(1, 3),
    loss=st.sampled_from(["half_sse", "mse", "cross_entropy"]),
    positions=st.sampled_from(["mean", "sum"]),
)
def test_embedding_gradients_match_finite_differences(seed, vocab, dim, t, n, loss, positions):
    rng = np.random.default_rng(seed)
    k = 2 if loss == "cross_entropy" else rng.integers(1, 3)
    ids = rng.integers(0, vocab, size=(n, t)).tolist()  # repeats are likely: the scatter-add
    dense: dict[str, Any] = {
        "type": "dense",
        "weights": rng.normal(size=(k, dim)).tolist(),
        "bias": rng.normal(size=k).tolist(),
    }
    if loss == "cross_entropy":
        dense["activation"] = "softmax"
        targets = rng.integers(0, k, size=(n, t)).tolist()
    else:
        dense["activation"] = "tanh"
        targets = rng.normal(size=(n, t, k)).tolist()
    spec = spec_from(
        {
            "inputs": ids,
            "targets": targets,
            "layers": [
                {"type": "embedding", "weights": rng.normal(size=(vocab, dim)).tolist()},
                dense,
            ],
            "loss": {"type": loss, "positions": positions},
            "learning_rate": 0.1,
        }
    )
    _param_grads_against_finite_differences(spec)


def test_drawn_tables_follow_pytorchs_normal_default_and_the_seed():
    net = """
input: [0, 1]
target: [[0.0], [1.0]]
layers:
  - {name: emb, type: embedding, vocab: 50, dim: 40}
  - {type: dense, units: 1}
loss: {type: half_sse, positions: sum}
learning_rate: 0.1
"""
    e = spec_from(net).layers[0].weights
    assert e.shape == (50, 40)
    assert abs(e.mean()) < 0.1 and 0.9 < e.std() < 1.1  # N(0, 1)
    np.testing.assert_array_equal(e, spec_from(net).layers[0].weights)  # seeded


def test_explain_writes_the_scatter_add_term_by_term(capsys):
    code, out, err = cli(capsys, "step", "examples/embedding.yaml", "--explain", "grad.emb.weights")
    assert code == 0, err
    assert "grad.emb.weights[2,0] = ∂L/∂a11 + ∂L/∂a31" in out
    assert "= (−0.7) + (−1.7) = −2.4" in out
    assert "token 2 appears 2 times (x1, x3 = 2)" in out
    assert "token 1 appears nowhere" in out


def test_keeping_one_occurrence_of_a_repeated_token_is_named_as_a_slip(tmp_path, capsys):
    # the last occurrence only (position 3): row 2 = ∂L/∂a_3 = [−1.7, −3.4] instead of [−2.4, −4.8]
    sheet = write_net(
        tmp_path, "grad.emb.weights: [[-0.3, -0.6], [0, 0], [-1.7, -3.4]]\n", "a.yaml"
    )
    code, doc_text, _ = cli(capsys, "check", "examples/embedding.yaml", str(sheet), "--json")
    assert code == 1
    assert "embedding_overwrite" in doc_text
    assert "scatter-add" in doc_text


def test_a_repeated_token_trains_and_the_network_learns(capsys, tmp_path):
    net = write_net(
        tmp_path,
        """
inputs: [[0, 1, 2], [2, 1, 0], [1, 1, 1]]
targets: [[1, 0, 2], [2, 0, 1], [0, 0, 0]]
layers:
  - {name: emb, type: embedding, vocab: 3, dim: 4}
  - {name: out, type: dense, units: 3, activation: softmax}
loss: cross_entropy
learning_rate: 0.5
""",
    )
    code, out, err = cli(capsys, "train", str(net), "--epochs", "200", "--json")
    assert code == 0, err
    last = [line for line in out.splitlines() if line.strip()][-1]
    assert '"train_accuracy": 1.0' in last


# line 1 "input: [2, 0, 5]" (the 5 at column 15); line 4 the embedding layer
EMB = """\
input: [2, 0, 5]
target: [[0], [0], [1]]
layers:
  - {name: emb, type: embedding, weights: [[0.1], [0.2], [0.3]]}
loss: {type: half_sse, positions: sum}
learning_rate: 0.1
"""

CASES = [
    Case(
        "a token id outside the vocabulary",
        EMB,
        "1:15",
        ("token id 5", "position 2", "outside the vocabulary", "3 rows", "ids 0 to 2"),
    ),
    Case(
        "a token id that is not a whole number",
        EMB.replace("[2, 0, 5]", "[2, 0.5, 1]"),
        "1:12",
        ("token id 0.5", "not a whole number"),
    ),
    Case(
        "a negative token id in a batch",
        EMB.replace("input: [2, 0, 5]", "inputs: [[2, 0, 1], [1, -1, 0]]").replace(
            "target: [[0], [0], [1]]", "targets: [[[0], [0], [1]], [[0], [0], [1]]]"
        ),
        "1:25",
        ("token id -1", "sample 1, position 1"),
    ),
    Case(
        "a sequence of vectors where token ids are expected",
        EMB.replace("[2, 0, 5]", "[[2, 0], [1, 1]]"),
        "1:8",
        ("starts with embedding", "token ids", "shape (2, 2)"),
    ),
    Case(
        "an embedding after another layer",
        EMB.replace("layers:\n", "layers:\n  - {type: relu}\n"),
        "5:5",
        ("must be the first layer", "reads token ids"),
    ),
    Case(
        "neither a table nor its size",
        EMB.replace("weights: [[0.1], [0.2], [0.3]]", "vocab: 3"),
        "4:5",
        ("vocab: and dim:", "dim missing"),
    ),
    Case(
        "an embedding output read as an image",
        EMB.replace(
            "layers:\n  - {name: emb, type: embedding, weights: [[0.1], [0.2], [0.3]]}",
            "layers:\n  - {name: emb, type: embedding, weights: [[0.1], [0.2], [0.3]]}\n"
            "  - {name: pool, type: maxpool2d}",
        ),
        "5:5",
        ("needs an image input", "a sequence of 3 positions of 1 features where an image"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_embedding_input_is_one_located_message_with_exit_code_2(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_one_located_error(case, tmp_path, capsys, monkeypatch)
