"""The trace: every value a run produced, in computation order. The one data model every
output (tables, JSON, Markdown, LaTeX, explanations, the answer checker) reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STAGES = ("forward", "loss", "backward", "update", "after")
STAGE_TITLES = {
    "forward": "Forward",
    "loss": "Loss",
    "backward": "Backward",
    "update": "Update",
    "after": "After update",
}


@dataclass(frozen=True)
class Record:
    """One named value as the user sees it.

    value: float64 array in the shape the user wrote (a 2-D kernel stays 2-D, a (H, W)
    image has no channel axis), with a leading batch axis when `per_sample` is true.
    """

    name: str
    value: np.ndarray
    stage: str
    layer: str | None
    formula: str
    per_sample: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)


@dataclass
class StepTrace:
    step: int
    records: dict[str, Record] = field(default_factory=dict)
    samples: list[int] | None = None  # indices of the samples in this step's batch
    # values of the forward passes after the update ("after:fc.z"), when asked for (checker)
    hidden: dict[str, Record] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.records[name].value

    def __contains__(self, name: str) -> bool:
        return name in self.records

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records.values())

    def stage(self, stage: str) -> list[Record]:
        return [r for r in self.records.values() if r.stage == stage]


@dataclass
class Trace:
    network: str
    file: str
    conventions: dict[str, str]
    steps: list[StepTrace] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    batched: bool = False
    dtype: str = "float64"
    round_each: int | None = None
    spec: Any = None  # the NetworkSpec the run came from (layer configuration for explanations)


_REF = re.compile(r"^(?P<name>[A-Za-z_][\w.]*?)(?:\[(?P<idx>[\d\s,]*)\])?$")


def parse_ref(ref: str) -> tuple[str, tuple[int, ...] | None]:
    """'grad.conv.kernel[0,1]' -> ('grad.conv.kernel', (0, 1)); 'loss' -> ('loss', None)."""
    m = _REF.match(ref.strip())
    if not m:
        raise ValueError(f"{ref!r} is not a value name such as conv1.z or grad.conv1.kernel[0,1]")
    idx = m.group("idx")
    if idx is None:
        return m.group("name"), None
    parts = [p.strip() for p in idx.split(",")] if idx.strip() else []
    return m.group("name"), tuple(int(p) for p in parts)


def element_name(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{','.join(str(i) for i in index)}]" if index else name
