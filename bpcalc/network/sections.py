"""The network's sections besides its layers and samples: the loss, the optimizer, the
batches (`mode:`, `batch_size:`, `shuffle:`, `seed:`), the regularization, and the `train:`
section that `bpcalc train` uses when its options are not given:

  train:
    epochs: 20
    batch_size: 64
    shuffle: true        # reshuffle the samples every epoch
    seed: 0              # numpy.random.default_rng(seed) for the shuffling
    test:                # data to measure test loss and accuracy after every epoch
      inputs: {file: digits.npz, key: test_images, scale: 16, flatten: true}
      targets: {file: digits.npz, key: test_labels}

`bpcalc step` ignores the train section (but it is checked like the rest of the file).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from bpcalc import batching
from bpcalc import layers as layer_units
from bpcalc.errors import Location, SpecError
from bpcalc.network import samples
from bpcalc.network import values as V
from bpcalc.network.types import (
    LOSSES,
    OPTIMIZERS,
    PARAMETRIC,
    BatchingSpec,
    DataSet,
    LayerSpec,
    LossSpec,
    NetworkSpec,
    OptimizerSpec,
    RegSpec,
    TrainSpec,
)
from bpcalc.network.yaml_source import Src

TRAIN_KEYS = ("epochs", "batch_size", "shuffle", "seed", "test")


def parse_loss(src: Src, last: LayerSpec) -> LossSpec:
    v = src.value
    positions = "mean" if last.sequence_out else None
    if isinstance(v, dict):
        V.check_keys(src, ("type", "reduction", "positions"), ("type",), "the loss")
        kind = V.choice(src.child("type"), "loss type", LOSSES)
        reduction = (
            V.choice(src.child("reduction"), "loss reduction over the batch", ("mean", "sum"))
            if "reduction" in v
            else "mean"
        )
        if "positions" in v:
            psrc = src.child("positions")
            if positions is None:
                raise psrc.error(
                    f"positions: says how the loss of a sequence output adds up over its "
                    f"positions, but the output of {last.name!r} has shape "
                    f"{V._fmt(last.out_shape)}, which is not a sequence (T x K)",
                    at_key=True,
                )
            positions = V.choice(psrc, "loss reduction over the positions", ("mean", "sum"))
        where = src.child("type")
    else:
        kind = V.choice(src, "loss", LOSSES)
        reduction = "mean"
        where = src
    act = getattr(last, "activation", None)
    act_kind = act.kind if act is not None else "identity"
    if kind == "cross_entropy" and act_kind != "softmax":
        raise where.error(
            f"cross_entropy needs probabilities, but the last layer {last.name!r} outputs {act_kind} "
            "values; give it activation: softmax (or use binary_cross_entropy with sigmoid)"
        )
    if kind == "binary_cross_entropy" and act_kind != "sigmoid":
        raise where.error(
            f"binary_cross_entropy needs probabilities, but the last layer {last.name!r} outputs {act_kind} "
            "values; give it activation: sigmoid"
        )
    if kind == "cross_entropy" and positions and dict(act.options).get("axis") == "positions":
        raise where.error(
            f"cross_entropy on a sequence needs a softmax over the classes of each position, but "
            f"the last layer {last.name!r} has axis: positions; remove it"
        )
    return LossSpec(kind, reduction, positions)


def parse_optimizer(root: Src) -> OptimizerSpec:
    data = root.value
    if "optimizer" in data:
        if "learning_rate" in data:
            raise root.child("learning_rate").error(
                "give either learning_rate: (plain gradient descent) or optimizer: {type, lr, ...}, "
                "not both",
                at_key=True,
            )
        return _parse_optimizer_block(root.child("optimizer"))
    if "learning_rate" not in data:
        raise root.error(
            "the network is missing its learning_rate (for example learning_rate: 0.1)"
        )
    return OptimizerSpec("sgd", V.positive_number(root.child("learning_rate"), "learning_rate"))


_OPT_KEYS = {
    "sgd": (),
    "momentum": ("momentum", "dampening"),
    "nesterov": ("momentum",),
    "rmsprop": ("alpha", "eps"),
    "adam": ("beta1", "beta2", "eps"),
}


def _parse_optimizer_block(src: Src) -> OptimizerSpec:
    """optimizer: {type, lr, ...}: each type takes only its own hyper-parameters."""
    every = sorted({k for keys in _OPT_KEYS.values() for k in keys})
    V.check_keys(src, ("type", "lr", "clip_norm", *every), ("lr",), "the optimizer")
    v = src.value
    kind = V.choice(src.child("type"), "optimizer type", OPTIMIZERS) if "type" in v else "sgd"
    for key in v:
        if key not in ("type", "lr", "clip_norm") and key not in _OPT_KEYS[kind]:
            takes = ", ".join(("lr", *_OPT_KEYS[kind], "clip_norm"))
            raise src.child(key).error(
                f"{key} does not apply to the {kind} optimizer, which takes {takes}",
                at_key=True,
            )
    values: dict[str, Any] = {"type": kind, "lr": V.positive_number(src.child("lr"), "lr")}
    if "clip_norm" in v:
        values["clip_norm"] = V.positive_number(src.child("clip_norm"), "clip_norm")
    for key in _OPT_KEYS[kind]:
        if key not in v:
            continue
        ksrc = src.child(key)
        x = V.number(ksrc, key)
        if key == "eps":
            if x <= 0:
                raise ksrc.error(f"eps should be greater than 0, found {x:g}")
        elif not 0 <= x < 1:
            raise ksrc.error(f"{key} should be at least 0 and less than 1, found {x:g}")
        values[key] = x
    return OptimizerSpec(**values)


def parse_batching(root: Src, n: int) -> BatchingSpec:
    v = root.value
    mode = (
        V.choice(root.child("mode"), "mode (samples per step)", batching.MODES)
        if "mode" in v
        else None
    )
    size = V.positive_int(root.child("batch_size"), "batch_size") if "batch_size" in v else None
    if mode is None:
        mode = "minibatch" if size is not None else "batch"
    found = batching.problem(n, mode, size)
    if found is not None:
        key, message = found
        raise (root.child(key) if key in v else root).error(message)
    shuffle = V.boolean(root.child("shuffle"), "shuffle") if "shuffle" in v else False
    seed = V.positive_int(root.child("seed"), "seed", minimum=0) if "seed" in v else 0
    return BatchingSpec(mode, size if mode == "minibatch" else None, shuffle, int(seed))


def check_batchnorm_batches(layers: list[LayerSpec], spec: BatchingSpec, n: int) -> None:
    """Batchnorm after a dense layer needs at least 2 samples in every batch (as in PyTorch):
    one sample has variance 0 and no unbiased running variance."""
    size = batching.batch_size_for(spec.mode, spec.batch_size, n)
    smallest = n % size or size
    for layer in layers:
        if layer.type != "batchnorm":
            continue
        per_sample = 1 if len(layer.in_shape) == 1 else math.prod(layer.in_shape[1:])
        if smallest * per_sample >= 2:
            continue
        why = (
            "every step uses one sample"
            if size == 1
            else f"the last batch of each epoch has one sample ({n} samples, batch_size {size})"
        )
        if len(layer.in_shape) == 1:
            raise SpecError(
                f"batchnorm layer {layer.name!r} normalizes each feature over the batch, but "
                f"{why}: its variance would be 0. Use batches of at least 2 samples",
                layer.where,
            )
        raise SpecError(  # as PyTorch: "Expected more than 1 value per channel when training"
            f"batchnorm layer {layer.name!r} normalizes each channel over N·H·W values, but its "
            f"input is 1 x 1 per channel and {why}: one value, variance 0. Use batches of at "
            "least 2 samples",
            layer.where,
        )


def _parse_reg_block(src: Src, what: str) -> RegSpec:
    V.check_keys(src, ("l2", "l1", "include_bias"), (), what)
    v = src.value
    out = {}
    for key in ("l2", "l1"):
        if key in v:
            x = V.number(src.child(key), f"{key} (λ)")
            if x < 0:
                raise src.child(key).error(f"{key} (λ) cannot be negative, found {x:g}")
            out[key] = x
    inc = V.boolean(src.child("include_bias"), "include_bias") if "include_bias" in v else False
    return RegSpec(out.get("l2", 0.0), out.get("l1", 0.0), inc, src.loc)


def parse_regularization(root: Src, layers_src: Src, layers: list[LayerSpec]) -> dict[str, RegSpec]:
    """The global `regularization:` applies to every dense and conv2d layer; a layer's own
    `regularization:` replaces it for that layer (`regularization: {}` turns it off)."""
    glob = (
        _parse_reg_block(root.child("regularization"), "regularization")
        if "regularization" in root.value
        else RegSpec()
    )
    out: dict[str, RegSpec] = {}
    _layer_penalties(layers_src, layers, glob, out)
    return out


def _layer_penalties(
    layers_src: Src, layers: list[LayerSpec], glob: RegSpec, out: dict[str, RegSpec]
) -> None:
    """Each dense and conv2d layer's penalty (blocks' inner layers too) into out."""
    for i, layer in enumerate(layers):
        lsrc = layers_src.child(i)
        if layer.inner:
            _layer_penalties(lsrc.child("layers"), list(layer.inner), glob, out)
        if layer.type not in PARAMETRIC:
            continue
        own = "regularization" in lsrc.value
        reg = (
            _parse_reg_block(lsrc.child("regularization"), f"layer {layer.name!r}'s regularization")
            if own
            else glob
        )
        if own and reg.include_bias and "bias" not in layer.params:  # type: ignore[attr-defined]
            raise (
                lsrc.child("regularization")
                .child("include_bias")
                .error(
                    f"layer {layer.name!r} has no bias (bias: none), so there is no bias to penalise",
                    at_key=True,
                )
            )
        if reg.active:
            out[layer.name] = reg


def with_batching(spec: NetworkSpec, mode: str | None, batch_size: int | None) -> NetworkSpec:
    """The spec with the command line's --mode / --batch-size instead of the file's.

    --batch-size alone means mode minibatch; --mode minibatch alone keeps the file's
    batch_size. Raises UsageError when they do not fit the data.
    """
    from bpcalc.errors import UsageError

    old = spec.batching
    n = spec.inputs.shape[0]
    if mode is None:
        mode = "minibatch" if batch_size is not None else old.mode
    if mode == "minibatch" and batch_size is None:
        batch_size = old.batch_size
    found = batching.problem(n, mode, batch_size)
    if found is not None:
        key, message = found
        flag = "--batch-size" if key == "batch_size" else "--mode"
        message = (
            message.replace("batch_size: ", "--batch-size ")
            .replace("batch_size", "--batch-size")
            .replace("mode: ", "--mode ")
        )
        raise UsageError(message if message.startswith(flag) else f"{flag}: {message}")
    new = replace(old, mode=mode, batch_size=batch_size if mode == "minibatch" else None)
    check_batchnorm_batches(list(spec.layers), new, n)
    return replace(spec, batching=new)


def parse_train(
    src: Src, layers: list[LayerSpec], loss: LossSpec, data_dtype: Any = np.float64
) -> TrainSpec:
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
    src: Src, layers: list[LayerSpec], loss: LossSpec, what: str, data_dtype: Any = np.float64
) -> DataSet:
    """`{inputs: ..., targets: ...}` (inline lists or file references) checked against the network;
    data from files becomes data_dtype (see parse.parse_network)."""
    V.check_keys(src, ("inputs", "targets"), ("inputs", "targets"), what)
    x, _, in_src = samples.parse_inputs(src, data_dtype)
    first = layers[0]
    x, shape, _ = samples.shape_input(x, first.type, in_src, True, len(first.in_shape) == 2)
    if tuple(shape) != tuple(first.in_shape):
        raise in_src.error(
            f"each sample of {what} has shape {V._fmt(tuple(shape))} but the network's input has "
            f"shape {V._fmt(tuple(first.in_shape))}"
        )
    layer_units.check_input(first, x, in_src)
    y, classes = samples.parse_targets(src, loss, layers[-1], x.shape[0], True, data_dtype)
    return DataSet(x, y, classes, src.loc)


def load_dataset_file(
    path: str, layers: list[LayerSpec], loss: LossSpec, data_dtype: Any = np.float64
) -> DataSet:
    """`bpcalc train --test FILE`: a YAML file with `inputs:` and `targets:` (paths relative to
    it), or an .npz with arrays `inputs` and `targets` (or `x` and `y`) used as they are."""
    from bpcalc.network.yaml_source import load_yaml_file, load_yaml_text

    if path.lower().endswith(".npz"):
        from pathlib import Path

        p = Path(path)
        where = Location(path, 1, 1)
        if not p.exists():
            raise SpecError("no such file", where)
        from bpcalc.network import datafiles

        try:  # a regular file only (a named pipe would block), its members' names
            names = set(datafiles.npz_keys(p))
        except (datafiles.DataFileError, OSError) as exc:
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
