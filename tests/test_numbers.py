"""Numbers a person can compare: 4 significant digits by default, rounded half up on the
shortest decimal form, exact short decimals as they are; grids that fit a width without
cutting a number."""

from __future__ import annotations

import decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpcalc.render.numbers import Precision, decimals_shown, fmt, grid


@pytest.mark.parametrize(
    "value, shown",
    [
        (0.000438568, "0.0004386"),  # Mazur's ∂E/∂w1: four decimals would say 0.0004
        (15.125, "15.13"),  # half up, as on paper (half-even on the binary value: 15.12)
        (-5.5, "-5.5"),
        (1.555, "1.555"),
        (0.155, "0.155"),
        (0.15500000000000003, "0.155"),  # float noise is not a digit
        (0.0670, "0.067"),
        (12345.678, "12346"),  # the integer part is never rounded away
        (4.386e-06, "4.386e-06"),
        (-0.0, "0"),
        (0.0, "0"),
        (0.99996, "1"),
        (1e20, "1e+20"),
    ],
)
def test_four_significant_digits_by_default(value: float, shown: str) -> None:
    assert fmt(value) == shown


def test_decimals_and_digits_can_be_asked_for() -> None:
    assert fmt(0.3723847, Precision(decimals=2)) == "0.37"
    assert fmt(0.3723847, Precision(digits=6)) == "0.372385"
    assert fmt(0.5, Precision(decimals=4)) == "0.5"
    assert fmt(0.12, Precision(digits=4, min_decimals=4, pad=True)) == "0.1200"
    assert fmt(2.0, 3) == "2"  # an int is fixed decimals, as callers wrote it before


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False).filter(lambda v: v != 0))
def test_a_shown_number_is_within_half_a_unit_of_its_last_digit(v: float) -> None:
    s = fmt(v)
    assert abs(float(s) - v) <= 0.5 * 10.0 ** -decimals_shown(s) * (1 + 1e-12)
    # and as close as 4 significant digits get (trailing zeros are dropped: 7.030 -> 7.03)
    lead = decimal.Decimal(repr(v)).adjusted()
    assert abs(float(s) - v) <= 0.5 * 10.0 ** (lead - 3) * (1 + 1e-9) + 10.0 ** (lead - 15)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.integers(0, 10))
def test_fixed_decimals_round_half_up_on_the_shortest_form(v: float, d: int) -> None:
    want = decimal.Decimal(repr(v)).quantize(
        decimal.Decimal(1).scaleb(-d), rounding=decimal.ROUND_HALF_UP
    )
    assert decimal.Decimal(fmt(v, Precision(decimals=d))) == want


def test_matrix_columns_align_on_the_decimal_point() -> None:
    g = grid(np.array([[-0.145126716, -0.0725633], [0.0967511, 0.04837], [0, 0]]))
    assert g.split("\n") == [
        "⎡-0.1451   -0.07256⎤",
        "⎢ 0.09675   0.04837⎥",
        "⎣ 0         0      ⎦",
    ]


def test_a_grid_fits_a_width_by_wrapping_and_column_blocks_never_by_cutting() -> None:
    v = np.arange(20.0) / 7
    lines = grid(v, max_width=40).split("\n")
    assert max(len(line) for line in lines) <= 40
    assert len(lines) == 4  # 5 numbers a line
    m = np.arange(24.0).reshape(2, 12) / 7
    text = grid(m, max_width=40)
    assert max(len(line) for line in text.split("\n")) <= 40
    assert "columns 0-4:" in text and "columns 10-11:" in text
    numbers = [x for line in text.split("\n") if not line.startswith("col") for x in line.split()]
    shown = [x.strip("⎡⎤⎣⎦⎢⎥[]") for x in numbers]
    shown = [x for x in shown if x]
    assert sorted(float(x) for x in shown) == pytest.approx(sorted(m.ravel()), abs=5e-4)
