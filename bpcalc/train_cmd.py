"""`bpcalc train`: resolve the options against the YAML's train: section, run the training loop,
render the result, save the trained network. The CLI only parses options and calls run_train."""

from __future__ import annotations

import sys
import time
from typing import Any

from bpcalc.errors import UsageError

DEFAULT_BATCH = 32


def run_train(
    network: str,
    *,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    seed: int | None,
    shuffle: bool | None,
    dtype: str,
    test: str | None,
    save: str | None,
    force: bool,
    json_out: bool,
) -> None:
    import numpy as np

    from bpcalc import training
    from bpcalc.network.parse import load_network
    from bpcalc.network.sections import load_dataset_file
    from bpcalc.network.types import TrainSpec

    if save is not None:  # refuse before training, not after minutes of it
        from bpcalc.fileio import check_target

        check_target(save, force=force, protect=[network], option="--save")
    # file data straight into the training dtype: one array per data set, no float64 copy
    spec = load_network(network, data_dtype=np.dtype(dtype))
    section: TrainSpec = spec.train or TrainSpec()
    epochs = epochs or section.epochs
    if epochs is None:
        raise UsageError("how many epochs? give --epochs N (or train: {epochs: N} in the YAML)")
    batch = batch_size or section.batch_size or _step_batch(spec) or DEFAULT_BATCH
    n = spec.inputs.shape[0]
    batch = min(batch, n)
    if shuffle is None:
        shuffle = section.shuffle if section.shuffle is not None else True
    if seed is None:
        step_seed = getattr(getattr(spec, "batching", None), "seed", None)  # top-level seed:
        seed = section.seed if section.seed is not None else (step_seed or 0)
    _check_batchnorm(spec, batch, n)
    if lr == 0:
        raise UsageError("--lr should be greater than 0")
    test_set = section.test
    if test is not None:
        test_set = load_dataset_file(test, list(spec.layers), spec.loss, np.dtype(dtype))

    from bpcalc import budget

    extra = 0 if test_set is None else test_set.inputs.nbytes + test_set.targets.nbytes
    budget.check_training(spec, batch, np.dtype(dtype).itemsize, epochs, json_out, extra)
    trainer = training.Trainer(spec, np.dtype(dtype), lr=lr)
    rate = lr if lr is not None else spec.optimizer.lr
    steps = -(-n // batch)
    extra = {"dtype": dtype, "batch_size": batch, "lr": rate, "samples": n}
    about = (
        f"{spec.name}: {n} samples, batch {batch} ({steps} update{'s' if steps != 1 else ''} per epoch), "
        f"{epochs} epoch{'s' if epochs != 1 else ''}, {spec.optimizer.type} η = {rate:g}, {dtype}, "
        + (f"shuffled (seed {seed})" if shuffle else "not shuffled")
        + (f"; test: {test_set.inputs.shape[0]} samples" if test_set is not None else "")
    )

    # the bar goes to stderr; with --json on the same terminal the epoch lines are the progress
    bar = sys.stderr.isatty() and not (json_out and sys.stdout.isatty())
    progress, on_batch, on_epoch_bar = _progress(epochs, steps) if bar else _no_progress()

    from bpcalc.render.training import epoch_json

    done: list[training.EpochResult] = []

    def on_epoch(r: training.EpochResult) -> None:
        done.append(r)
        on_epoch_bar(r)
        if json_out:
            print(epoch_json(r, epochs, extra), flush=True)

    # the C heap kept from step to step: no page faults on each step's arrays (glibc only)
    from bpcalc.malloc_tuning import keep_freed_memory

    keep_freed_memory()
    start = time.perf_counter()
    try:
        # overflow shows up as a non-finite loss, which fit reports with its epoch and step
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            results = training.fit(
                trainer,
                spec.inputs,
                spec.targets,
                epochs=epochs,
                batch_size=batch,
                shuffle=shuffle,
                seed=seed,
                test=(test_set.inputs, test_set.targets) if test_set is not None else None,
                on_batch=on_batch,
                on_epoch=on_epoch,
            )
    except KeyboardInterrupt:
        # Ctrl-C: show the epochs that finished, then let the CLI report the interruption
        if progress is not None:
            progress.stop()
            progress = None
        if done and not json_out:
            title = f"interrupted after {len(done)} of {epochs} epochs"
            _render(done, about, title)
        raise
    finally:
        if progress is not None:
            progress.stop()
    total = time.perf_counter() - start

    if not json_out:
        _render(results, about, f"{epochs} epochs in {total:.2f} s")
    if save is not None:
        from bpcalc.fileio import write_text_atomic
        from bpcalc.network.write import network_yaml

        last = results[-1]
        header = [
            f"Trained by bpcalc train from {network}: {epochs} epochs, batch {batch}, "
            f"η = {rate:g}, {dtype}, "
            + (f"shuffle seed {seed}" if shuffle else "no shuffle")
            + ".",
            f"Final training loss {last.train_loss:.6g}"
            + (
                f", test accuracy {100 * last.test_accuracy:.2f} %"
                if last.test_accuracy is not None
                else ""
            )
            + ".",
        ]
        text = network_yaml(spec, trainer.params, save, header)
        write_text_atomic(save, text, force=force, protect=[network], option="--save")
        print(f"bpcalc: saved the trained network to {save}", file=sys.stderr)


def _step_batch(spec: Any) -> int | None:
    """The batch size the YAML gives `bpcalc step` (top-level mode:/batch_size:), if any:
    minibatch -> its batch_size, sgd -> 1; full batch (step's default) leaves train's default."""
    b = getattr(spec, "batching", None)
    if b is None:
        return None
    if b.mode == "minibatch":
        return b.batch_size
    return 1 if b.mode == "sgd" else None


def _render(results: list[Any], about: str, title: str) -> None:
    from bpcalc.render.training import render_to_stdout

    notes = [f"Training {about}.", "Loss: the mean over samples of the per-sample loss."]
    render_to_stdout(results, title=title, notes=notes)


def _check_batchnorm(spec: Any, batch: int, n: int) -> None:
    """Batchnorm after a dense layer needs 2 samples or more in every batch, the last one too."""
    from bpcalc.network.sections import check_batchnorm_batches
    from bpcalc.network.types import BatchingSpec

    check_batchnorm_batches(list(spec.layers), BatchingSpec("minibatch", batch), n)


def _no_progress() -> tuple[Any, Any, Any]:
    return None, None, lambda r: None


def _progress(epochs: int, steps: int) -> tuple[Any, Any, Any]:
    """A progress bar on stderr (run_train asks for it when stderr is a terminal)."""
    from bpcalc.render.training import progress_bar

    return progress_bar(epochs, steps)
