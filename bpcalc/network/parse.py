"""Reading a network file, in the order its parts depend on each other: the samples, the
input's shape for the first layer, the layers one after another (each parser gets the shape the
previous one gives), then the loss, the optimizer, the targets, the batches, the
regularization and the train section.

Everything a user can get wrong is found here, with a location: unknown keys, wrong types,
ragged matrices, shapes that do not fit from one layer to the next, targets that do not fit
the output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpcalc import budget as _budget
from bpcalc import layers as layer_units
from bpcalc.errors import Location
from bpcalc.network import samples, sections
from bpcalc.network import values as V
from bpcalc.network.layer_fields import check_dropout_masks, with_dropout_seeds
from bpcalc.network.types import LAYER_TYPES, NAME_RE, LayerSpec, NetworkSpec, flat_layers
from bpcalc.network.yaml_source import SourceDoc, Src, load_yaml_file

TOP_KEYS = (
    "name",
    "input",
    "inputs",
    "target",
    "targets",
    "layers",
    "loss",
    "learning_rate",
    "optimizer",
    "batch_size",
    "mode",
    "shuffle",
    "seed",
    "regularization",
    "train",
    "sequence",
    "exercise",  # bpcalc exercise's section (bpcalc/teach/section.py); step ignores it
)


def load_network(path: str, *, data_dtype: Any = np.float64) -> NetworkSpec:
    """Read and validate a network YAML file (or "-" for standard input)."""
    doc = load_yaml_file(path)
    return parse_network(doc, data_dtype=data_dtype)


def parse_network(doc: SourceDoc, *, data_dtype: Any = np.float64) -> NetworkSpec:
    """The network's typed, checked spec. data_dtype: what data read from files becomes
    (bpcalc.network.datafiles.load): float64 for `bpcalc step`, the training dtype for `bpcalc train`;
    numbers written in the YAML are float64 either way."""
    root = doc.root()
    V.check_keys(root, TOP_KEYS, ("layers", "loss"), "the network")
    data = root.value
    name = V.text(root.child("name"), "name") if "name" in data else _default_title(doc.file)

    inputs, batched, in_src = samples.parse_inputs(root, data_dtype)
    layers_src = root.child("layers")
    if not isinstance(layers_src.value, list) or not layers_src.value:
        raise layers_src.error(
            f"layers should be a non-empty list of layers, found {V.type_name(layers_src.value)}"
        )

    first_type = _peek_type(layers_src.child(0))
    sequence = V.boolean(root.child("sequence"), "sequence") if "sequence" in data else False
    inputs, input_shape, squeezed = samples.shape_input(
        inputs, first_type, in_src, batched, sequence
    )
    layers = parse_layers(layers_src, input_shape, squeezed)
    layer_units.check_input(layers[0], inputs, in_src)

    loss = sections.parse_loss(root.child("loss"), layers[-1])
    optimizer = sections.parse_optimizer(root)
    targets, classes = samples.parse_targets(
        root, loss, layers[-1], inputs.shape[0], batched, data_dtype
    )
    batching_spec = sections.parse_batching(root, inputs.shape[0])
    sections.check_batchnorm_batches(flat_layers(layers), batching_spec, inputs.shape[0])
    check_dropout_masks(flat_layers(layers), inputs.shape[0])
    layers = with_dropout_seeds(layers, batching_spec.seed)
    regularization = sections.parse_regularization(root, layers_src, layers)
    train = (
        sections.parse_train(root.child("train"), layers, loss, data_dtype)
        if "train" in data
        else None
    )
    return NetworkSpec(
        name=name,
        file=doc.file,
        inputs=inputs,
        targets=targets,
        target_classes=classes,
        batched=batched,
        input_squeezed=squeezed,
        layers=tuple(layers),
        loss=loss,
        optimizer=optimizer,
        doc=doc,
        batching=batching_spec,
        regularization=regularization,
        train=train,
    )


def _default_title(file: str) -> str:
    return file.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _peek_type(src: Src) -> str:
    """The type of the first layer that reads the input (inside a block: its first layer)."""
    v = src.value
    if isinstance(v, dict) and isinstance(v.get("type"), str):
        inner = v.get("layers")
        if isinstance(inner, list) and inner:  # a block: its first layer reads the input
            return _peek_type(src.child("layers").child(0)) or v["type"]
        return v["type"]
    return ""


def parse_layers(
    src: Src, input_shape: tuple[int, ...], squeezed: bool, prefix: str = ""
) -> list[LayerSpec]:
    """A list of layers, each parsed by its unit with the shape the one before gives.
    prefix: the block's name and a dot for the layers inside a block (res.fc); their names
    are unique within the block."""
    counters: dict[str, int] = {}
    names: dict[str, Location] = {}
    shape, sq = input_shape, squeezed
    out: list[LayerSpec] = []
    for i in range(len(src.value)):
        lsrc = src.child(i)
        V.mapping(lsrc, f"layer {i}")
        if "type" not in lsrc.value:
            raise lsrc.error(
                f"layer {i} has no type; expected type: one of {', '.join(LAYER_TYPES)}"
            )
        ltype = V.choice(lsrc.child("type"), f"layer {i}'s type", LAYER_TYPES)
        counters[ltype] = counters.get(ltype, 0) + 1
        if "name" in lsrc.value:
            name = V.text(lsrc.child("name"), "a layer name")
            if not NAME_RE.match(name):
                raise lsrc.child("name").error(
                    f"layer name {name!r} should be letters, digits and _ (it becomes part of value names such as {name}.z)"
                )
        else:
            name = f"{ltype}{counters[ltype]}"
        if name in names:
            raise lsrc.child("name").error(
                f"two layers are named {name!r} (the other is at line {names[name].line}); layer names must be unique"
            )
        if name in (
            "loss",
            "loss_after",
            "grad",
            "new",
            "state",
            "input",
            "target",
            "grad_norm",
            "clipped",
        ):
            raise lsrc.child("name").error(
                f"{name!r} is reserved for value names; choose another layer name"
            )
        names[name] = lsrc.loc
        before = f"layer {out[-1].name!r}" if out else "the input"
        if prefix and not out:
            before = f"the input of block {prefix[:-1]!r}"
        layer = layer_units.parse(ltype)(lsrc, prefix + name, ltype, shape, sq, before)
        _budget.check_layer(src, i, layer, before)
        out.append(layer)
        shape, sq = layer.out_shape, layer.squeezed_out
    return out
