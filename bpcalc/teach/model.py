"""What an exercise is made of: the template (the network file with its exercise section and
the values asked), each variant drawn from it, and what `bpcalc exercise` wrote."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bpcalc.network.types import NetworkSpec
from bpcalc.teach.section import Exercise

MANIFEST = "exercise.yaml"  # bpcalc/check/klass.py reads it under the same name


@dataclass(frozen=True)
class Template:
    """The network file an exercise is made from, with its exercise section."""

    file: str
    data: dict[str, Any]
    spec: NetworkSpec
    exercise: Exercise
    asked: list[str]  # value names and elements, in computation order

    @property
    def title(self) -> str:
        return self.exercise.title or self.spec.name


@dataclass
class Variant:
    number: int
    folder: str  # relative to the output folder
    text: str  # the network file
    spec: NetworkSpec
    draws: int
    rejected: Counter[str] = field(default_factory=Counter)


@dataclass
class Result:
    out_dir: str
    variants: list[Variant]
    files: list[str]
    warnings: list[str]
