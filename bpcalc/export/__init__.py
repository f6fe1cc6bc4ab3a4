"""`bpcalc export`: the network as a program of another framework (today: a PyTorch script).

The spec types (and the network package's helpers this package reads: where a data file is,
how an initializer draws) are imported here and nowhere else in this package.
"""

from __future__ import annotations

from bpcalc.network.datafiles import detect_format as data_format
from bpcalc.network.datafiles import resolve as data_path
from bpcalc.network.initializers import InitSpec, parse_init
from bpcalc.network.parse import load_network
from bpcalc.network.types import (
    ActivationLayerSpec,
    ActivationSpec,
    BatchNormSpec,
    Conv2dSpec,
    DenseSpec,
    DropoutSpec,
    FlattenSpec,
    LayerSpec,
    NetworkSpec,
    PoolSpec,
)
from bpcalc.network.yaml_source import Src

TARGETS = ("pytorch",)

__all__ = [
    "TARGETS",
    "InitSpec",
    "Src",
    "data_format",
    "data_path",
    "parse_init",
    "ActivationLayerSpec",
    "ActivationSpec",
    "BatchNormSpec",
    "Conv2dSpec",
    "DenseSpec",
    "DropoutSpec",
    "FlattenSpec",
    "LayerSpec",
    "NetworkSpec",
    "PoolSpec",
    "load_network",
]
