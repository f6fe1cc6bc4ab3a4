"""Training loops for `bpcalc train`: the engine's forward, loss, backward and the
optimizer's update, with the silent emitter, so nothing is recorded.

Nothing is recorded: a step keeps only the current batch's caches, so memory does not grow with
the number of steps or epochs. The maths are exactly `bpcalc step`'s (same ops, same losses,
same optimizers, the same bits: tests/test_training_bits.py), in the dtype asked for (float32 by
default for training). Plain SGD updates the parameter arrays in place.

    trainer = Trainer(spec, np.float32)
    loss = trainer.train_step(xb, yb)          # one update on a batch, returns its loss
    loss, accuracy = trainer.evaluate(x, y)    # no update; accuracy is None for regression

Loss conventions: `train_step` returns the data loss as the network's `loss.reduction` defines
it (mean over the batch by default; a regularization penalty is in the gradients, not in this
number). The per-epoch figures (`fit`, `evaluate`) are always the
mean per-sample loss, so epochs with a smaller last batch compare fairly.
Accuracy: arg-max of the output against the class (cross_entropy, or one-hot targets with
any loss); for binary_cross_entropy every output rounded at 0.5 must equal its target;
otherwise there is none. A sequence output is graded at every position: the accuracy is the
fraction of positions right.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc import engine
from bpcalc import optim as optim_mod
from bpcalc.errors import NumericError
from bpcalc.network.types import NetworkSpec

Array = np.ndarray


def accuracy_kind(spec: NetworkSpec, targets: Array | None = None) -> str | None:
    """ "argmax", "threshold" or None (no accuracy for this loss and these targets)."""
    if spec.loss.kind == "cross_entropy":
        return "argmax"
    if spec.loss.kind == "binary_cross_entropy":
        return "threshold"
    y = spec.targets if targets is None else targets
    flat = y.reshape(y.shape[0], -1)
    if flat.shape[1] > 1 and np.isin(flat, (0.0, 1.0)).all() and (flat.sum(axis=1) == 1).all():
        return "argmax"
    return None


def graded_units(spec: NetworkSpec) -> int:
    """What accuracy counts per sample: 1, or T for a sequence output (each position)."""
    return spec.output_shape[0] if spec.loss.positions else 1


def _rows(v: Array, per_position: bool) -> Array:
    """One row per graded unit: a sample, or a position of a sequence (N, T, K)."""
    return v.reshape(-1, v.shape[-1]) if per_position else v.reshape(v.shape[0], -1)


def count_correct(kind: str | None, out: Array, y: Array, per_position: bool = False) -> int:
    """How many samples (positions, for a sequence output) of the batch the network gets
    right (see the module docstring)."""
    if kind is None:
        return 0
    o, t = _rows(out, per_position), _rows(y, per_position)
    if kind == "argmax":
        return int((o.argmax(axis=1) == t.argmax(axis=1)).sum())
    return int(((o >= 0.5) == (t >= 0.5)).all(axis=1).sum())


class Trainer:
    """Parameters, optimizer state and the step counter of one training run.

    Interface used by the benchmark (issue 7): Trainer(spec, dtype).train_step(xb, yb) -> loss,
    xb: (B, *input_shape), yb: (B, *output_shape), both already of `dtype`.
    """

    def __init__(
        self,
        spec: NetworkSpec,
        dtype: Any = np.float32,
        *,
        lr: float | None = None,
        optimizer: optim_mod.Optimizer | None = None,
    ) -> None:
        self.spec = spec
        self.dtype = np.dtype(dtype)
        self.layers = [engine.build_layer(s) for s in spec.layers]
        self.params: engine.Params = engine.initial_params(spec, self.dtype)
        opt_spec = spec.optimizer if lr is None else dataclasses.replace(spec.optimizer, lr=lr)
        self.optimizer = optimizer if optimizer is not None else optim_mod.build(opt_spec)
        self.opt_state: dict[str, dict[str, dict[str, Array]]] = {}
        self.t = 0
        every = engine.leaves(self.layers)  # the layers inside blocks too
        self.frozen = {layer.name: layer.spec.freeze for layer in every}
        self.accuracy = accuracy_kind(spec)
        self.units = graded_units(spec)  # per sample: 1, or T positions of a sequence
        # layers with a training/evaluation mode (dropout, batchnorm), whose running
        # statistics carry from step to step (batchnorm)
        self._modal = any(layer.op.modal for layer in every)
        self._shared_log = engine.shares_log_softmax(spec)
        self._clip = spec.optimizer.clip_norm
        # the parameters the optimizer updates: (layer, parameter), frozen ones left out
        self._trained = [
            (layer.name, p)
            for layer in every
            if layer.parametric
            for p in layer.param_names
            if p not in self.frozen[layer.name]
        ]

    def train_step(self, xb: Array, yb: Array) -> float:
        """Forward, loss, backward, update on one batch; returns the loss before the update."""
        return self.step_with_output(xb, yb)[0]

    def step_with_output(self, xb: Array, yb: Array) -> tuple[float, Array]:
        """train_step that also hands back the batch's output (for the running accuracy)."""
        params, spec, layers = self.params, self.spec, self.layers
        fwd = engine.forward(layers, params, xb, log_softmax_out=self._shared_log)
        loss, _ = engine.loss_value(spec, fwd.out, fwd.z_out, yb, log_out=fwd.log_out)
        grads = engine.backward(spec, layers, params, fwd, yb, input_grad=False)
        if self._clip is not None:  # gradient clipping by norm, before the update
            optim_mod.clip_in_place([grads[n][p] for n, p in self._trained], self._clip)
        if self._modal:
            engine.carry_buffers(layers, fwd, params)
        self.t += 1
        t, opt, state = self.t, self.optimizer, self.opt_state
        for name, pname in self._trained:
            lstate = state.setdefault(name, {})
            theta = params[name][pname]
            prev = lstate.get(pname)
            if prev is None:
                prev = opt.init_state(theta)
            # in place where the rule allows: nothing outside keeps the old θ in training
            new, lstate[pname] = opt.update(theta, grads[name][pname], prev, t, in_place=True)
            if new is not theta:
                params[name][pname] = new.astype(self.dtype, copy=False)
        return loss, fwd.out

    def predict(self, x: Array, batch_size: int = 1024) -> Array:
        """The network's output for every sample, in batches, in evaluation mode (no update)."""
        x = x.astype(self.dtype, copy=False)
        with self._evaluation():
            outs = [
                engine.forward(self.layers, self.params, x[i : i + batch_size]).out
                for i in range(0, x.shape[0], batch_size)
            ]
        return np.concatenate(outs)

    @contextlib.contextmanager
    def _evaluation(self) -> Iterator[None]:
        """Dropout off and batchnorm on its running statistics, for predictions and tests."""
        if not self._modal:
            yield
            return
        engine.set_training(self.layers, False)
        try:
            yield
        finally:
            engine.set_training(self.layers, True)

    def evaluate(self, x: Array, y: Array, batch_size: int = 1024) -> tuple[float, float | None]:
        """(mean per-sample loss, accuracy or None) over all of x, y; no update; evaluation
        mode (no dropout, batchnorm on its running statistics)."""
        x = x.astype(self.dtype, copy=False)
        y = y.astype(self.dtype, copy=False)
        n = x.shape[0]
        total, correct = 0.0, 0
        with self._evaluation():
            for i in range(0, n, batch_size):
                xb, yb = x[i : i + batch_size], y[i : i + batch_size]
                fwd = engine.forward(self.layers, self.params, xb)
                _, per = engine.loss_value(self.spec, fwd.out, fwd.z_out, yb)
                total += float(per.sum())
                correct += count_correct(self.accuracy, fwd.out, yb, self.units > 1)
        units = n * self.units
        return total / n, (correct / units if self.accuracy is not None else None)


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    train_loss: float  # mean per-sample loss over the epoch's batches (before each update)
    train_accuracy: float | None  # over the same batches, as they came
    test_loss: float | None
    test_accuracy: float | None
    seconds: float  # wall time of the epoch, test evaluation included
    cpu_seconds: float = 0.0  # CPU time of the process over the same span (all its threads)


def fit(
    trainer: Trainer,
    x: Array,
    y: Array,
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    test: tuple[Array, Array] | None = None,
    on_batch: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> list[EpochResult]:
    """Train for `epochs` passes over x, y in batches; returns one EpochResult per epoch.

    shuffle: a new order every epoch from numpy.random.default_rng(seed); the last batch of an
    epoch may be smaller. on_batch(epoch, batch index, loss), on_epoch(result): progress hooks.
    """
    dtype = trainer.dtype
    x = x.astype(dtype, copy=False)
    y = y.astype(dtype, copy=False)
    if test is not None:
        test = (test[0].astype(dtype, copy=False), test[1].astype(dtype, copy=False))
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    mean = trainer.spec.loss.reduction == "mean"
    kind = trainer.accuracy
    # each sample's class (each position's, for a sequence), once for all epochs, rather than
    # an arg-max of its target per batch
    units = trainer.units
    if kind != "argmax":
        classes = None
    elif units > 1:
        classes = y.argmax(axis=-1)
    else:
        classes = y.reshape(n, -1).argmax(axis=1)
    # Per-step costs of the loop itself, kept small for small networks (issue 18): each
    # shuffled batch is gathered into the same two arrays (x.take(out=) rather than x[idx],
    # a new array a step), and the arg-max of each batch's output goes into `predicted`,
    # compared with the classes once an epoch rather than once a batch.
    predicted = np.empty(classes.shape, dtype=np.intp) if classes is not None else None
    x_batch = np.empty((min(batch_size, n), *x.shape[1:]), dtype=x.dtype) if shuffle else x
    y_batch = np.empty((min(batch_size, n), *y.shape[1:]), dtype=y.dtype) if shuffle else y
    results: list[EpochResult] = []
    for epoch in range(1, epochs + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        order = rng.permutation(n) if shuffle else None
        total, correct = 0.0, 0
        for b, i in enumerate(range(0, n, batch_size)):
            if order is None:
                xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            else:
                idx = order[i : i + batch_size]
                m = idx.shape[0]
                # mode="clip": the indices are a permutation's, always in range, and numpy
                # writes straight into `out` only when it need not check them
                xb = x.take(idx, axis=0, out=x_batch[:m], mode="clip")
                yb = y.take(idx, axis=0, out=y_batch[:m], mode="clip")
            loss, out = trainer.step_with_output(xb, yb)
            if not math.isfinite(loss):
                raise NumericError(
                    f"the loss became {loss} at epoch {epoch}, batch {b + 1} (step {trainer.t}); "
                    "the numbers overflowed: try a smaller learning rate (--lr) or scaled inputs",
                    engine.value_location(trainer.spec, "loss"),
                    value="loss",
                )
            total += loss * xb.shape[0] if mean else loss
            if predicted is not None:  # count_correct's arg-max rule, counted below
                if units > 1:  # a sequence: each position's arg-max
                    out.argmax(axis=-1, out=predicted[i : i + batch_size])
                else:
                    out.reshape(out.shape[0], -1).argmax(axis=1, out=predicted[i : i + batch_size])
            else:
                correct += count_correct(kind, out, yb, units > 1)
            if on_batch is not None:
                on_batch(epoch, b, loss)
        if predicted is not None:
            assert classes is not None
            seen = classes if order is None else classes[order]
            correct = int(np.count_nonzero(predicted == seen))
        test_loss = test_acc = None
        if test is not None:
            test_loss, test_acc = trainer.evaluate(*test)
        result = EpochResult(
            epoch,
            total / n,
            correct / (n * units) if trainer.accuracy is not None else None,
            test_loss,
            test_acc,
            time.perf_counter() - start,
            time.process_time() - cpu_start,
        )
        results.append(result)
        if on_epoch is not None:
            on_epoch(result)
    return results
