"""Dropout: inverted, with a given mask or seeded; its gradients, masks per sample and
per step, and its mistakes."""

import numpy as np
import pytest

from bpcalc import engine
from bpcalc.cli import run
from bpcalc.layers.dropout import Dropout
from tests.dropout_batchnorm_helpers import fd_check, near, op_fd, rel_err, spec_of

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


def test_without_begin_step_every_forward_pass_draws_a_new_mask():
    op = Dropout(0.5, (8,), seed=2)
    x = np.ones((4, 8))
    first, second = op.forward(x, {})[0], op.forward(x, {})[0]
    rng = np.random.default_rng(2)
    assert first == near((rng.random((4, 8)) >= 0.5) * 2.0)
    assert second == near((rng.random((4, 8)) >= 0.5) * 2.0)
