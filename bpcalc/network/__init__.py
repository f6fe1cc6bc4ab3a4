"""Reading a network: a YAML file in, a checked, typed NetworkSpec out.

  yaml_source    YAML -> plain data that remembers file:line:column for every node
  values         readers for numbers, lists, choices, arrays: each error points at its node
  types          every spec dataclass (NetworkSpec, the layer specs, loss, optimizer, ...)
  parse          the network's parse order: load_network / parse_network
  layer_fields   what every layer's parser shares (each layer unit in bpcalc/layers/ parses
                 its own keys)
  samples        inputs and targets, inline or from files (network and train data sets)
  sections       loss, optimizer, batches, regularization, the train: section
  datafiles      .npy / .npz / .csv / IDX readers for {file: ...} references
  initializers   parameters drawn by shape and init:
  write          a network written back as YAML with new values (`bpcalc train --save`)

The names below are imported from their module on first use, so that importing one module of
the package (bpcalc.network.types, say) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_WHERE = {
    "load_network": "parse",
    "parse_network": "parse",
    "with_batching": "sections",
    "check_batchnorm_batches": "sections",
    "load_dataset_file": "sections",
    "load_yaml_file": "yaml_source",
    "load_yaml_text": "yaml_source",
    "SourceDoc": "yaml_source",
    "Src": "yaml_source",
    "network_yaml": "write",
    **dict.fromkeys(
        (
            "ActivationSpec",
            "LayerSpec",
            "DenseSpec",
            "Conv2dSpec",
            "PoolSpec",
            "FlattenSpec",
            "ActivationLayerSpec",
            "DropoutSpec",
            "BatchNormSpec",
            "LossSpec",
            "OptimizerSpec",
            "BatchingSpec",
            "RegSpec",
            "DataSet",
            "TrainSpec",
            "NetworkSpec",
        ),
        "types",
    ),
}

__all__ = [
    "ActivationLayerSpec",
    "ActivationSpec",
    "BatchNormSpec",
    "BatchingSpec",
    "Conv2dSpec",
    "DataSet",
    "DenseSpec",
    "DropoutSpec",
    "FlattenSpec",
    "LayerSpec",
    "LossSpec",
    "NetworkSpec",
    "OptimizerSpec",
    "PoolSpec",
    "RegSpec",
    "SourceDoc",
    "Src",
    "TrainSpec",
    "check_batchnorm_batches",
    "load_dataset_file",
    "load_network",
    "load_yaml_file",
    "load_yaml_text",
    "network_yaml",
    "parse_network",
    "with_batching",
]

if TYPE_CHECKING:
    from bpcalc.network.parse import load_network, parse_network
    from bpcalc.network.sections import check_batchnorm_batches, load_dataset_file, with_batching
    from bpcalc.network.types import (
        ActivationLayerSpec,
        ActivationSpec,
        BatchingSpec,
        BatchNormSpec,
        Conv2dSpec,
        DataSet,
        DenseSpec,
        DropoutSpec,
        FlattenSpec,
        LayerSpec,
        LossSpec,
        NetworkSpec,
        OptimizerSpec,
        PoolSpec,
        RegSpec,
        TrainSpec,
    )
    from bpcalc.network.write import network_yaml
    from bpcalc.network.yaml_source import SourceDoc, Src, load_yaml_file, load_yaml_text


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # __import__ rather than importlib.import_module: importlib is not imported at start-up
    value = getattr(__import__(f"{__name__}.{module}", fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
