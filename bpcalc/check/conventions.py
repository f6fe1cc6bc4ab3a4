"""The conventions a sheet's author used: how they write what bpcalc computes.

    conventions:
      delta: t_minus_o        # δ = t − o: every grad.* written as −∂L/∂(·); w ← w + η·δ·x
      velocity: textbook      # momentum: v ← μ·v − η·g, θ ← θ + v   (lr_inside: v ← μ·v + η·g,
                              # θ ← θ − v; pytorch, the default: v ← μ·v + g, θ ← θ − η·v)
      log: log10              # the cross-entropy's logarithm (ln, the default; log10; log2)

These change the numbers a student writes, not the network (a loss, a layout or a flipped
kernel is the network's own, in its file). Under a declared convention the checker runs the
step in it (a log base is a factor on the loss and every gradient, a velocity written with η
is a rule of its own) and reads the student's δ's as −∂L/∂(·), so answers written that way
are graded as written. The command line (--delta, --velocity, --log) wins over the sheet.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from bpcalc import losses, notation
from bpcalc import optim as optim_mod
from bpcalc.engine import Substitution
from bpcalc.errors import UsageError
from bpcalc.network.types import NetworkSpec
from bpcalc.network.yaml_source import Src

CHOICES: dict[str, tuple[str, ...]] = {
    "delta": ("o_minus_t", "t_minus_o"),
    "velocity": ("pytorch", "lr_inside", "textbook"),
    "log": ("ln", "log10", "log2"),
}
BASES = {"ln": math.e, "log10": 10.0, "log2": 2.0}
WORDS = notation.CHECK_CONVENTIONS


@dataclass(frozen=True)
class Conventions:
    delta: str = "o_minus_t"
    velocity: str = "pytorch"
    log: str = "ln"

    def factor(self, name: str) -> float:
        """The student's number for a value is factor × bpcalc's."""
        return -1.0 if self.delta == "t_minus_o" and name.startswith("grad.") else 1.0

    def substitution(self, spec: NetworkSpec) -> Substitution | None:
        """The units that compute the step as the student writes it (None: the network's)."""
        sub = None
        if self.log != "ln":
            sub = Substitution(loss_factor=1.0 / math.log(BASES[self.log]))
        if self.velocity != "pytorch":
            opt = optim_mod.build(spec.optimizer)
            scale = spec.optimizer.lr * (1.0 if self.velocity == "lr_inside" else -1.0)
            scaled = opt.velocity_scaled(scale)
            if scaled is not None:
                sub = (sub or Substitution()) + Substitution(optimizer=scaled)
        return sub

    def declared(self) -> dict[str, str]:
        """The conventions that differ from bpcalc's."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != CHOICES[f.name][0]
        }

    def describe(self) -> list[str]:
        return [WORDS[(k, v)] for k, v in self.declared().items()]

    def alternatives(self, spec: NetworkSpec) -> list[tuple[str, str, Conventions]]:
        """(key, value, conventions) for each other choice of one convention that changes
        something on this network."""
        out = []
        for key, values in CHOICES.items():
            if not applies(key, spec):
                continue
            for value in values:
                if value != getattr(self, key):
                    out.append((key, value, dataclasses.replace(self, **{key: value})))
        return out


def applies(key: str, spec: NetworkSpec) -> bool:
    """Does this convention change anything a student writes for this network?"""
    if key == "velocity":
        return optim_mod.build(spec.optimizer).velocity_scaled(1.0) is not None
    if key == "log":
        return losses.get(spec.loss.kind).log_based
    return True


def yaml_of(key: str, value: str) -> str:
    return f"conventions: {{{key}: {value}}}"


def option_of(key: str, value: str) -> str:
    return f"--{key} {value}"


def parse(src: Src | None, cli: dict[str, str | None]) -> Conventions:
    """The sheet's conventions: block (src, None: none), with the command line's on top."""
    values: dict[str, str] = {}
    if src is not None:
        if not isinstance(src.value, dict):
            raise src.error(
                "conventions: should be a mapping such as {delta: t_minus_o}; keys: "
                + ", ".join(CHOICES)
            )
        for key in src.value:
            child = src.child(key)
            if key not in CHOICES:
                raise child.error(
                    f"unknown convention {key!r}; the conventions a sheet can declare are "
                    + ", ".join(CHOICES),
                    at_key=True,
                )
            values[key] = _choice(key, child.value, child)
    for key, value in cli.items():
        if value is not None:
            values[key] = _choice(key, value, None)
    return Conventions(**values)


def _choice(key: str, value: Any, src: Src | None) -> str:
    text = str(value).strip().lower() if value is not None else ""
    aliases = {"e": "ln", "10": "log10", "2": "log2", "10.0": "log10", "2.0": "log2"}
    if key == "log":
        text = aliases.get(text, text)
    if text in CHOICES[key]:
        return text
    message = f"{key}: {value!r} is not one of " + ", ".join(CHOICES[key])
    if src is None:
        raise UsageError(f"--{key}: {message}")
    raise src.error(message)
