"""The Trainer's maths: a train step equals bpcalc step, the loss decreases, frozen
parameters stay, memory does not grow; with optimizers, penalties, dropout and batchnorm."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from bpcalc import engine, training
from bpcalc.cli import run
from bpcalc.network.parse import load_network
from bpcalc.network.write import network_yaml
from tests.helpers import write_net
from tests.train_helpers import TINY

# --- the Trainer --------------------------------------------------------------------------------


def test_a_train_step_makes_the_same_update_as_bpcalc_step(tmp_path):
    spec = load_network(str(write_net(tmp_path, TINY)))
    trainer = training.Trainer(spec, np.float64)
    loss = trainer.train_step(spec.inputs, spec.targets)
    trace = engine.run(spec, steps=1)
    st = trace.steps[0]
    # the same ops in the same order: equal to the last bit, not just close
    assert loss == float(st["loss"])
    for layer in ("hidden", "out"):
        for p in ("weights", "bias"):
            np.testing.assert_array_equal(
                trainer.params[layer][p],
                st[f"new.{layer}.{p}"].reshape(trainer.params[layer][p].shape),
            )


def test_fit_without_shuffling_in_one_batch_equals_several_bpcalc_steps(tmp_path):
    spec = load_network(str(write_net(tmp_path, TINY)))
    trainer = training.Trainer(spec, np.float64)
    results = training.fit(
        trainer, spec.inputs, spec.targets, epochs=3, batch_size=4, shuffle=False
    )
    trace = engine.run(spec, steps=3)
    # epoch k's training loss is the loss before its update, as step k's `loss`
    assert [r.train_loss for r in results] == pytest.approx(
        [float(s["loss"]) for s in trace.steps], rel=1e-12
    )
    np.testing.assert_allclose(
        trainer.params["out"]["weights"], trace.steps[-1]["new.out.weights"], rtol=1e-12
    )


def test_training_decreases_the_loss_and_learns_the_tiny_problem(tmp_path):
    spec = load_network(str(write_net(tmp_path, TINY)))
    trainer = training.Trainer(spec, np.float32)
    before, _ = trainer.evaluate(spec.inputs, spec.targets)
    training.fit(trainer, spec.inputs, spec.targets, epochs=100, batch_size=2, seed=3)
    after, acc = trainer.evaluate(spec.inputs, spec.targets)
    assert after < before / 10
    assert acc == 1.0
    assert trainer.params["out"]["weights"].dtype == np.float32


def test_frozen_parameters_stay_as_they_were(tmp_path):
    spec = load_network(
        str(
            write_net(tmp_path, TINY.replace("activation: tanh}", "activation: tanh, freeze: all}"))
        )
    )
    trainer = training.Trainer(spec, np.float64)
    start = trainer.params["hidden"]["weights"].copy()
    training.fit(trainer, spec.inputs, spec.targets, epochs=3, batch_size=2)
    np.testing.assert_array_equal(trainer.params["hidden"]["weights"], start)


def test_accuracy_counts_argmax_for_classes_and_threshold_for_sigmoid():
    out = np.array([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]])
    y = np.array([[0, 1], [0, 1], [0, 1]])
    assert training.count_correct("argmax", out, y) == 2  # rows 0 and 2
    p = np.array([[0.7], [0.2], [0.5]])
    t = np.array([[1], [1], [0]])
    assert (
        training.count_correct("threshold", p, t) == 1
    )  # 0.7 -> 1 right; 0.2 -> 0 wrong; 0.5 -> 1 wrong


def test_memory_does_not_grow_with_the_number_of_epochs(tmp_path):
    spec = load_network(str(write_net(tmp_path, TINY)))
    trainer = training.Trainer(spec, np.float32)
    x, y = spec.inputs.astype(np.float32), spec.targets.astype(np.float32)
    training.fit(trainer, x, y, epochs=5, batch_size=1)
    tracemalloc.start()
    training.fit(trainer, x, y, epochs=5, batch_size=1)
    five = tracemalloc.get_traced_memory()[0]
    training.fit(trainer, x, y, epochs=200, batch_size=1)
    two_hundred = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # 195 more epochs (780 more steps) leave nothing behind but their results' list, freed on return
    assert two_hundred - five < 16_384


# --- with the other training features: optimizers, regularization, dropout, batchnorm -----------


@pytest.mark.parametrize(
    "extra",
    [
        "optimizer: {type: adam, lr: 0.05}",
        "optimizer: {type: momentum, lr: 0.1, momentum: 0.9}",
        "learning_rate: 0.5\nregularization: {l2: 0.1, l1: 0.01}",
    ],
)
def test_training_with_other_optimizers_and_penalties_equals_bpcalc_step(tmp_path, extra):
    text = TINY.replace("learning_rate: 0.5\n", extra + "\n")
    spec = load_network(str(write_net(tmp_path, text)))
    trainer = training.Trainer(spec, np.float64)
    training.fit(trainer, spec.inputs, spec.targets, epochs=3, batch_size=4, shuffle=False)
    last = engine.run(spec, steps=3).steps[-1]
    for layer, params in trainer.params.items():
        for name, value in params.items():
            np.testing.assert_array_equal(value, last[f"new.{layer}.{name}"].reshape(value.shape))


BN_NET = """inputs: [[1.0, 0.5], [-1.0, -0.5], [0.5, 1.0], [-0.5, -1.0]]
targets: [1, 0, 1, 0]
layers:
  - {name: hidden, type: dense, units: 3, init: {type: normal, std: 0.5, seed: 0}}
  - {name: bn, type: batchnorm, activation: relu}
  - {name: drop, type: dropout, p: 0.5, seed: 1}
  - {name: out, type: dense, units: 2, init: {type: normal, std: 0.5, seed: 1}, activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""


def test_batchnorm_running_statistics_follow_each_training_step(tmp_path):
    spec = load_network(str(write_net(tmp_path, BN_NET.replace("p: 0.5", "p: 0.0"))))
    trainer = training.Trainer(spec, np.float64)
    trainer.train_step(spec.inputs, spec.targets)
    st = engine.run(spec, steps=1).steps[0]
    for stat in ("running_mean", "running_var", "gamma", "beta"):
        np.testing.assert_array_equal(trainer.params["bn"][stat], st[f"new.bn.{stat}"])
    # the inputs are symmetric about 0 so the batch mean is 0, but the variance moved from 1
    assert not np.array_equal(trainer.params["bn"]["running_var"], np.ones(3))


def test_evaluation_turns_dropout_off_and_training_mode_back_on(tmp_path):
    spec = load_network(str(write_net(tmp_path, BN_NET)))
    trainer = training.Trainer(spec, np.float64)
    training.fit(trainer, spec.inputs, spec.targets, epochs=2, batch_size=2)
    np.testing.assert_array_equal(trainer.predict(spec.inputs), trainer.predict(spec.inputs))
    drop = next(layer for layer in trainer.layers if layer.name == "drop")
    assert drop.op.training  # back in training mode for the next step
    out = tmp_path / "saved.yaml"
    out.write_text(network_yaml(spec, trainer.params, str(out)), encoding="utf-8")
    again = training.Trainer(load_network(str(out)), np.float64)
    np.testing.assert_array_equal(
        again.params["bn"]["running_var"], trainer.params["bn"]["running_var"]
    )
    np.testing.assert_array_equal(again.predict(spec.inputs), trainer.predict(spec.inputs))


def test_a_last_batch_of_one_sample_through_batchnorm_is_refused(tmp_path, capsys):
    code = run(["train", str(write_net(tmp_path, BN_NET)), "-e", "1", "-b", "3"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "batchnorm layer 'bn'" in err and "one sample" in err
