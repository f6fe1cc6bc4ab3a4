"""`bpcalc export`: the network as a program of another framework (today: a PyTorch script).

The spec types (and the spec package's helpers this package reads: where a data file is,
how an initializer draws) are imported here and nowhere else in this package, so that a move
of the spec package (issue 12: bpcalc/spec and bpcalc/data.py -> bpcalc/network) is a change
of these lines only.
"""

from __future__ import annotations

from bpcalc.data import detect_format as data_format
from bpcalc.data import resolve as data_path
from bpcalc.spec.initializers import InitSpec, parse_init
from bpcalc.spec.load import Src
from bpcalc.spec.schema import (
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
    load_network,
)

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
