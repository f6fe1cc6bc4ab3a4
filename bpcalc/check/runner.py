"""The engine as the checker runs it: the sheet's steps, hand rounding, the sheet's
conventions, and the student's numbers substituted.

Values go in and come out as the student writes them (bpcalc/check/conventions.py): a δ
written as t − o is −∂L/∂z to the engine, and the engine's ∂L/∂z is −δ to the sheet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bpcalc import engine
from bpcalc.check.conventions import Conventions
from bpcalc.engine import Substitution
from bpcalc.errors import BpcalcError
from bpcalc.network.types import NetworkSpec
from bpcalc.trace import Record, StepTrace

# step (1-based) -> value name -> the student's numbers in the value's shape (NaN: not given)
Given = Mapping[int, Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class Runner:
    spec: NetworkSpec
    steps: int = 1
    round_each: int | None = None
    conventions: Conventions = Conventions()

    @property
    def substitution(self) -> Substitution | None:
        return self.conventions.substitution(self.spec)

    def run(
        self,
        given: Given | None = None,
        substitute: Substitution | None = None,
        passes: bool = False,
        steps: int | None = None,
    ) -> list[StepTrace] | None:
        """The steps with the student's numbers substituted (None: none), as the student
        writes them; None when they make the step overflow."""
        sub = self.substitution
        if substitute is not None:
            sub = substitute if sub is None else sub + substitute
        overrides = {
            k: {name: self.to_engine(name, v) for name, v in values.items()}
            for k, values in (given or {}).items()
        }
        try:
            with np.errstate(all="ignore"):
                trace = engine.run(
                    self.spec,
                    steps=steps or self.steps,
                    round_each=self.round_each,
                    step_overrides=overrides,
                    substitute=sub,
                    passes=passes,
                )
        except (BpcalcError, ArithmeticError, ValueError):
            return None
        return [self.view(st) for st in trace.steps]

    def to_engine(self, name: str, value: np.ndarray) -> np.ndarray:
        f = self.conventions.factor(name)
        return value if f == 1 else np.asarray(value) / f

    def view(self, st: StepTrace) -> StepTrace:
        """A step's values as the student writes them."""
        if not self.conventions.declared().get("delta"):
            return st
        out = StepTrace(st.step, samples=st.samples, hidden=st.hidden)
        for name, r in st.records.items():
            f = self.conventions.factor(name)
            out.records[name] = (
                r
                if f == 1
                else Record(r.name, r.value * f, r.stage, r.layer, r.formula, r.per_sample)
            )
        return out
