"""When is a hand-computed number right?

The rounding-aware rule (the default). A value v recomputed from the student's own answers
carries the uncertainty of those answers and of the rounding a person does inside v's
formula. The answer is accepted when

  |answer − value| ≤ ½·10^(−d(v))                                   its own last decimal
                   + Σ_u |∂v/∂u| · ½·10^(−max(d(u), D))              the answers it rests on
                   + Σ_s |∂v/∂s| · ½·10^(−d(v))                      the sub-steps inside it

where d(·) counts the decimals written, D is the sheet's usual number of decimals (a 0.5 on a
sheet of 3 decimals was 0.500 with the zeros dropped), u runs over the student's answers the
value rests on and s over the sub-steps of v's formula (each product of a sum, σ′, e^z, η·g;
for loss_after, every value of the forward pass after the update and its sub-steps). The
partial derivatives ∂v/∂u come from the engine (bpcalc/check/allowance.py), the ∂v/∂s from
each unit's formula (bpcalc/substeps.py), and each sub-step's rounding is taken as it is:
s minus s rounded to d(v) decimals, at most ½·10^(−d(v)), and 0 for a product such as 0.1·4
that is exact there (a person who keeps more decimals moves it less). On a sheet written to S
significant figures rather than fixed decimals the terms scale with the magnitudes: u is off
by ½ unit in its S-th significant digit, and a sub-step s is rounded to S figures.

The floor, for answers written with fewer decimals than the sheet's usual: the allowance is
never larger than half a unit of the correct value's first significant digit, so at least
that digit must be right (0 for 0.3, or 1 for 0.6, is wrong however few decimals were written).

--rtol / --atol replace the rule by |answer − value| ≤ atol + rtol·|value| (numpy's isclose),
for every answer alike.

A tiny slack (relative 1e-9, absolute 1e-12) absorbs binary floating point: 0.1 + 0.2 is
0.30000000000000004.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from bpcalc.engine import round_decimals
from bpcalc.substeps import Radius

SLACK_REL = 1e-9
SLACK_ABS = 1e-12


def half_unit(decimals: np.ndarray | int) -> np.ndarray:
    return 0.5 * np.power(10.0, -np.asarray(decimals, dtype=np.float64))


def first_digit(value: np.ndarray) -> np.ndarray:
    """Half a unit of the first significant digit of |value| (inf for 0)."""
    mag = np.abs(np.asarray(value, dtype=np.float64))
    with np.errstate(divide="ignore"):
        lead = np.floor(np.log10(np.where(mag > 0, mag, 1.0)))
    return np.where(mag > 0, 0.5 * np.power(10.0, lead), np.inf)


def round_figures(value: np.ndarray, figures: int) -> np.ndarray:
    """Each number rounded to `figures` significant figures (half away from zero)."""
    e = exponent(value)
    scale = np.power(10.0, figures - 1 - e)
    return round_decimals(value * scale, 0) / scale


def exponent(value: np.ndarray) -> np.ndarray:
    """floor(log10 |value|), 0 for 0."""
    mag = np.abs(np.asarray(value, dtype=np.float64))
    with np.errstate(divide="ignore"):
        return np.where(mag > 0, np.floor(np.log10(np.where(mag > 0, mag, 1.0))), 0.0)


@dataclass(frozen=True)
class Precision:
    """How the sheet was written: D decimals usually, or S significant figures."""

    decimals: int = 4
    sigfigs: int | None = None

    @staticmethod
    def of(numbers: list[tuple[float, int]]) -> Precision:
        """From the (value, decimals written) of the student's own numbers: the most common
        number of decimals, or of significant figures when those agree more often."""
        d_count = Counter(d for _, d in numbers)
        s_count = Counter(
            d + int(math.floor(math.log10(abs(v)))) + 1 for v, d in numbers if v != 0 and d > 0
        )
        if not d_count:
            return Precision()
        d, n_d = max(d_count.items(), key=lambda kv: (kv[1], kv[0]))
        if s_count:
            s, n_s = max(s_count.items(), key=lambda kv: (kv[1], kv[0]))
            if n_s > n_d and n_s >= 0.6 * len(numbers) and s >= 1:
                return Precision(d, s)
        return Precision(d)

    def given(self, value: np.ndarray, decimals: np.ndarray) -> np.ndarray:
        """How far a written answer u may be from the number the student computed on with:
        ½ unit of the last decimal written, or of the sheet's usual last digit when fewer
        were written (the student dropped zeros, or kept a digit they did not write)."""
        if self.sigfigs is None:
            usual = np.full(np.shape(decimals), self.decimals)
        else:
            usual = self.sigfigs - 1 - exponent(value)
        return half_unit(np.maximum(decimals, usual))

    def radius(self, decimals: int) -> Radius:
        """How far a person's rounding moves a number s they work out on the way to an answer
        written with `decimals` decimals: s minus s rounded there (0 for a number that is
        exact there; rounded to more decimals, never more), or to S significant figures."""
        if self.sigfigs is None:
            return lambda s: np.abs(s - round_decimals(np.asarray(s, np.float64), decimals))
        figures = self.sigfigs
        return lambda s: np.abs(s - round_figures(np.asarray(s, np.float64), figures))

    def describe(self) -> str:
        if self.sigfigs is not None:
            return f"{self.sigfigs} significant figures"
        return f"{self.decimals} decimal{'s' if self.decimals != 1 else ''}"


@dataclass(frozen=True)
class Tolerance:
    """--rtol / --atol: an explicit tolerance for every answer alike (None: the rule)."""

    rtol: float | None = None
    atol: float | None = None

    @property
    def explicit(self) -> bool:
        return self.rtol is not None or self.atol is not None

    def explicit_allowance(self, correct: np.ndarray) -> np.ndarray:
        return (self.atol or 0.0) + (self.rtol or 0.0) * np.abs(np.asarray(correct, np.float64))

    def allowed(self, correct: np.ndarray, decimals: np.ndarray) -> np.ndarray:
        """The allowance of a number compared on its own (nothing it rests on, no sub-steps):
        ½ in the last decimal written, at least the first significant digit."""
        correct = np.asarray(correct, dtype=np.float64)
        if self.explicit:
            return self.explicit_allowance(correct)
        return np.minimum(half_unit(decimals), first_digit(correct))

    def agrees(self, answer: np.ndarray, correct: np.ndarray, decimals: np.ndarray) -> np.ndarray:
        """Element-wise, a number on its own: is the answer right? Blanks (NaN) agree."""
        return within(answer, correct, self.allowed(correct, decimals))

    def describe(self) -> str:
        if self.explicit:
            return f"|answer − correct| ≤ {self.atol or 0:g} + {self.rtol or 0:g}·|correct|"
        return (
            "to the decimals you wrote (±½ in the last one), plus the rounding of the answers "
            "each value rests on and of the steps inside its formula"
        )


def within(answer: np.ndarray, value: np.ndarray, allowance: np.ndarray) -> np.ndarray:
    """|answer − value| ≤ allowance element-wise (with the floating-point slack); blanks (NaN)
    agree."""
    answer = np.asarray(answer, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    diff = np.abs(np.where(np.isnan(answer), value, answer) - value)
    return diff <= np.asarray(allowance) * (1 + SLACK_REL) + SLACK_ABS + SLACK_REL * np.abs(value)
