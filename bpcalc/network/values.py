"""Readers for the value types a spec is made of; each error points at the offending node."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from bpcalc.network.yaml_source import Src

_FLOAT_MAX = int(np.finfo(np.float64).max)


def type_name(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if isinstance(v, (int, float)):
        return f"the number {v}"
    if isinstance(v, str):
        return f"the text {v!r}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(
        word.replace("-", "_").lower(), list(choices), n=3, cutoff=0.6
    )
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def mapping(src: Src, what: str) -> dict[str, Any]:
    v = src.value
    if not isinstance(v, dict):
        raise src.error(f"{src.dotted} should be a mapping ({what}), found {type_name(v)}")
    return v


def check_keys(src: Src, allowed: Iterable[str], required: Iterable[str], what: str) -> None:
    allowed = list(allowed)
    v = mapping(src, what)
    for key in v:
        if not isinstance(key, str) or key not in allowed:
            hint = suggest(str(key), allowed)
            raise src.child(key).error(
                f"unknown key {key!r} in {what}{hint or '; expected one of ' + ', '.join(allowed)}",
                at_key=True,
            )
    for key in required:
        if key not in v:
            raise src.error(f"{what} is missing the required key {key!r}")


def is_finite(v: int | float) -> bool:
    """A number float64 can hold: finite, and a whole number no larger than about 1.8e308
    (np.isfinite fails on Python ints beyond int64)."""
    return math.isfinite(v) if isinstance(v, float) else abs(v) <= _FLOAT_MAX


def number(src: Src, what: str, *, integer: bool = False) -> float:
    v = src.value
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        kind = "a whole number" if integer else "a number"
        raise src.error(f"{what} should be {kind}, found {type_name(v)}")
    if isinstance(v, int) and abs(v) > _FLOAT_MAX:
        raise src.error(
            f"{what} should be a number up to about 1.8e308, found a whole number too large for that"
        )
    if not math.isfinite(v):
        raise src.error(f"{what} should be a finite number, found {v}")
    if integer and (not float(v).is_integer()):
        raise src.error(f"{what} should be a whole number, found {v}")
    return int(v) if integer else float(v)


def positive_number(src: Src, what: str) -> float:
    v = number(src, what)
    if v <= 0:
        raise src.error(f"{what} should be greater than 0, found {v:g}")
    return v


def positive_int(src: Src, what: str, *, minimum: int = 1) -> int:
    v = int(number(src, what, integer=True))
    if v < minimum:
        raise src.error(f"{what} should be a whole number of at least {minimum}, found {v}")
    return v


def pair(src: Src, what: str, *, minimum: int) -> tuple[int, int]:
    """An int or a [h, w] pair."""
    v = src.value
    if isinstance(v, list):
        if len(v) != 2:
            raise src.error(
                f"{what} should be one whole number or a pair [h, w], found {len(v)} numbers"
            )
        return (
            positive_int(src.child(0), what, minimum=minimum),
            positive_int(src.child(1), what, minimum=minimum),
        )
    n = positive_int(src, what, minimum=minimum)
    return (n, n)


def choice(src: Src, what: str, options: Iterable[str]) -> str:
    options = list(options)
    v = src.value
    if not isinstance(v, str) or v not in options:
        hint = suggest(v, options) if isinstance(v, str) else ""
        raise src.error(f"{what} should be one of {', '.join(options)}, found {type_name(v)}{hint}")
    return v


def boolean(src: Src, what: str) -> bool:
    v = src.value
    if not isinstance(v, bool):
        raise src.error(f"{what} should be true or false, found {type_name(v)}")
    return v


def text(src: Src, what: str) -> str:
    v = src.value
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    if not isinstance(v, str):
        raise src.error(f"{what} should be text, found {type_name(v)}")
    return v


def array(src: Src, what: str, *, ndims: Iterable[int] | None = None) -> np.ndarray:
    """A number or a rectangular nested list of finite numbers, as float64."""
    shape = _shape(src, what)
    out = np.array(src.value, dtype=np.float64)
    assert out.shape == shape
    if ndims is not None:
        ndims = tuple(ndims)
        if out.ndim not in ndims:
            dims = " or ".join(f"{d}-D" for d in ndims)
            raise src.error(
                f"{what} should be {dims} (nested lists), found a {out.ndim}-D value of shape {_fmt(shape)}"
            )
    return out


def vector_len(shape: tuple[int, ...]) -> int:
    """How many numbers a value of this shape holds (1 for a scalar). Python ints: np.prod
    would overflow int64 for huge shapes."""
    return math.prod(shape)


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _shape(src: Src, what: str) -> tuple[int, ...]:
    v = src.value
    if isinstance(v, list):
        if not v:
            raise src.error(f"{what} has an empty list; expected numbers")
        shapes = [_shape(src.child(i), what) for i in range(len(v))]
        first = shapes[0]
        for i, s in enumerate(shapes[1:], start=1):
            if s != first:
                if len(s) == len(first) == 1:
                    raise src.child(i).error(
                        f"{what} is ragged: row {i} has {s[0]} numbers but row 0 has {first[0]}; "
                        "every row needs the same length"
                    )
                raise src.child(i).error(
                    f"{what} is ragged: item {i} has shape {_fmt(s)} but item 0 has shape {_fmt(first)}"
                )
        return (len(v), *first)
    number(src, f"every element of {what}")
    return ()
