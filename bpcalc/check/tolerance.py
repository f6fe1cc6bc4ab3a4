"""When is a hand-computed number right?

Default rule: the answer is right when the correct value, rounded to the decimals the
student wrote, gives the student's number: |answer − correct| ≤ ½·10⁻ᵈ for d decimals
written (0.12 for 0.11997 is right, 0.13 is not; 0.120 asks for three decimals).

Floor, for answers written with very few digits: the allowance is never larger than half a
unit of the correct value's first significant digit, so at least that digit must be right
(0 for 0.3, or 1 for 0.6, is wrong however few decimals were written; 0.003 for 0.0031 is
right).

--rtol / --atol replace the rule by |answer − correct| ≤ atol + rtol·|correct| (numpy's
isclose), for every answer alike.

A tiny slack (relative 1e-9, absolute 1e-12) absorbs binary floating point: 0.1 + 0.2 is
0.30000000000000004.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SLACK_REL = 1e-9
SLACK_ABS = 1e-12


@dataclass(frozen=True)
class Tolerance:
    rtol: float | None = None
    atol: float | None = None

    @property
    def explicit(self) -> bool:
        return self.rtol is not None or self.atol is not None

    def allowed(self, correct: np.ndarray, decimals: np.ndarray) -> np.ndarray:
        """The largest |answer − correct| still counted right, element-wise."""
        correct = np.asarray(correct, dtype=np.float64)
        if self.explicit:
            return (self.atol or 0.0) + (self.rtol or 0.0) * np.abs(correct)
        half_unit = 0.5 * np.power(10.0, -np.asarray(decimals, dtype=np.float64))
        mag = np.abs(correct)
        with np.errstate(divide="ignore"):
            lead = np.floor(np.log10(np.where(mag > 0, mag, 1.0)))
        floor = np.where(mag > 0, 0.5 * np.power(10.0, lead), np.inf)
        return np.minimum(half_unit, floor)

    def agrees(self, answer: np.ndarray, correct: np.ndarray, decimals: np.ndarray) -> np.ndarray:
        """Element-wise: is the answer right? Blanks (NaN) count as agreeing."""
        answer = np.asarray(answer, dtype=np.float64)
        correct = np.asarray(correct, dtype=np.float64)
        allowed = self.allowed(correct, decimals)
        diff = np.abs(np.where(np.isnan(answer), correct, answer) - correct)
        return diff <= allowed * (1 + SLACK_REL) + SLACK_ABS

    def describe(self) -> str:
        if self.explicit:
            return f"|answer − correct| ≤ {self.atol or 0:g} + {self.rtol or 0:g}·|correct|"
        return (
            "to the decimals you wrote (±½ in the last one), at least the first significant digit"
        )
