"""The `train:` section of a network YAML: what `bpcalc train` uses when its options are not given.

  train:
    epochs: 20
    batch_size: 64
    shuffle: true        # reshuffle the samples every epoch
    seed: 0              # numpy.random.default_rng(seed) for the shuffling
    test:                # data to measure test loss and accuracy after every epoch
      inputs: {file: digits.npz, key: test_images, scale: 16, flatten: true}
      targets: {file: digits.npz, key: test_labels}

`bpcalc step` ignores the section (but it is checked like the rest of the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc.errors import Location
from bpcalc.spec import values as V
from bpcalc.spec.load import Src

TRAIN_KEYS = ("epochs", "batch_size", "shuffle", "seed", "test")


@dataclass(frozen=True)
class DataSet:
    """Samples batch-first, shaped as the network's input and output."""

    inputs: np.ndarray  # (N, *input_shape)
    targets: np.ndarray  # (N, *output_shape)
    classes: np.ndarray | None  # (N,) when the targets were class indices
    where: Location


@dataclass(frozen=True)
class TrainSpec:
    epochs: int | None = None
    batch_size: int | None = None
    shuffle: bool | None = None
    seed: int | None = None
    test: DataSet | None = None


def parse_train(src: Src, layers: list, loss: object, data_dtype: Any = np.float64) -> TrainSpec:
    V.check_keys(src, TRAIN_KEYS, (), "the train section")
    v = src.value
    epochs = V.positive_int(src.child("epochs"), "epochs") if "epochs" in v else None
    batch = V.positive_int(src.child("batch_size"), "batch_size") if "batch_size" in v else None
    shuffle = V.boolean(src.child("shuffle"), "shuffle") if "shuffle" in v else None
    seed = None
    if "seed" in v:
        seed = int(V.number(src.child("seed"), "seed", integer=True))
        if seed < 0:
            raise src.child("seed").error(f"seed should be 0 or more, found {seed}")
    test = (
        parse_dataset(src.child("test"), layers, loss, "the test data", data_dtype)
        if "test" in v
        else None
    )
    return TrainSpec(epochs, batch, shuffle, seed, test)


def parse_dataset(
    src: Src, layers: list, loss: object, what: str, data_dtype: Any = np.float64
) -> DataSet:
    """`{inputs: ..., targets: ...}` (inline lists or file references) checked against the network;
    data from files becomes data_dtype (see schema.parse_network)."""
    from bpcalc.spec import schema

    V.check_keys(src, ("inputs", "targets"), ("inputs", "targets"), what)
    x, _, in_src = schema._parse_inputs(src, data_dtype)
    first = layers[0]
    x, shape, _ = schema._shape_input(x, first.type, in_src, True)
    if tuple(shape) != tuple(first.in_shape):
        raise in_src.error(
            f"each sample of {what} has shape {V._fmt(tuple(shape))} but the network's input has "
            f"shape {V._fmt(tuple(first.in_shape))}"
        )
    y, classes = schema._parse_targets(src, loss, layers[-1], x.shape[0], True, data_dtype)  # type: ignore[arg-type]
    return DataSet(x, y, classes, src.loc)


def load_dataset_file(
    path: str, layers: list, loss: object, data_dtype: Any = np.float64
) -> DataSet:
    """`bpcalc train --test FILE`: a YAML file with `inputs:` and `targets:` (paths relative to
    it), or an .npz with arrays `inputs` and `targets` (or `x` and `y`) used as they are."""
    from bpcalc.errors import SpecError
    from bpcalc.spec.load import load_yaml_file, load_yaml_text

    if path.lower().endswith(".npz"):
        from pathlib import Path

        p = Path(path)
        where = Location(path, 1, 1)
        if not p.exists():
            raise SpecError("no such file", where)
        from bpcalc import data

        try:  # a regular file only (a named pipe would block), its members' names
            names = set(data.npz_keys(p))
        except (data.DataFileError, OSError) as exc:
            raise SpecError(f"not a readable .npz file ({exc})", where) from None
        pair = next(
            ((a, b) for a, b in (("inputs", "targets"), ("x", "y")) if a in names and b in names),
            None,
        )
        if pair is None:
            raise SpecError(
                f"the .npz should hold arrays 'inputs' and 'targets' (or 'x' and 'y'); it holds "
                f"{', '.join(sorted(names)) or 'none'}",
                where,
            )
        # the same checks as in a YAML file: a reference written for it, read from the npz's folder
        ref = f"{{inputs: {{file: {p.name}, key: {pair[0]}}}, targets: {{file: {p.name}, key: {pair[1]}}}}}"
        doc = load_yaml_text(ref, str(p.parent / "(--test)"))
        try:
            return parse_dataset(doc.root(), layers, loss, f"the test data in {path}", data_dtype)
        except SpecError as exc:
            raise SpecError(exc.message, where) from None
    doc = load_yaml_file(path)
    return parse_dataset(doc.root(), layers, loss, f"the test data in {path}", data_dtype)
