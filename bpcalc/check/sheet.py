"""The answer sheet: a YAML mapping from value names to the numbers a student computed.

    conv.z: [[0.12]]                  # a whole value, nested lists in the value's shape
    grad.conv.kernel[0,1]: 0.268      # one element, 0-based indices
    fc.a: [0.372, ~]                  # ~ (null) = no answer for that element

Keys are the value names of `bpcalc step` (see `bpcalc check NET --template`), in any order,
any subset. Each number keeps how many decimals the student wrote (0.120 has 3), which sets
the default tolerance (bpcalc/check/grade.py). Everything wrong with the sheet is a SpecError
at its file:line:column.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpcalc.errors import Location
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src, load_yaml_text, read_source
from bpcalc.trace import StepTrace, element_name, parse_ref

# Labels for grading a class (bpcalc/check/klass.py), not values: who wrote the sheet and
# which variant of an exercise it answers.
META_KEYS = ("student", "variant")

_NUMBER = re.compile(r"^[+-]?(?:\d[\d_]*)?(?:\.(?P<frac>[\d_]*))?(?:[eE](?P<exp>[+-]?\d+))?$")


@dataclass(frozen=True)
class Answer:
    """One entry of the sheet.

    value: float64 in the shape of the value (a whole answer) or () (one element); NaN where
    the student left a blank. decimals: same shape, the decimals written for each number
    (negative for 1e3-style numbers; 0 where blank). transposed: the student wrote a matrix
    in the transposed shape; `value` is already transposed back.
    """

    ref: str
    name: str
    index: tuple[int, ...] | None
    value: np.ndarray
    decimals: np.ndarray
    where: Location
    transposed: bool = False
    text: Any = None  # the answer as written (numbers, lists, None), for the report

    @property
    def given(self) -> np.ndarray:
        return ~np.isnan(self.value)


@dataclass
class Sheet:
    file: str
    answers: list[Answer] = field(default_factory=list)


def decimals_of(raw: str, value: float) -> int:
    """How many decimals a number was written with: '0.120' -> 3, '12' -> 0, '1.5e-3' -> 4."""
    m = _NUMBER.match(raw.strip())
    if m is None:  # an unusual spelling YAML still read as a number: count its repr
        text = repr(float(value))
        return len(text.split(".", 1)[1]) if "." in text and "e" not in text else 0
    frac = (m.group("frac") or "").replace("_", "")
    return len(frac) - int(m.group("exp") or 0)


def load_sheet(path: str, step: StepTrace) -> Sheet:
    """Read an answer sheet and check every key and shape against the values of `step`."""
    name, text = read_source(path)
    return parse_sheet(text, name, step)


def parse_sheet(text: str, file: str, step: StepTrace) -> Sheet:
    doc = load_yaml_text(text, file, keep_text=True)
    raw = doc.scalar_text or {}
    root = doc.root()
    if not isinstance(root.value, dict):
        raise root.error(
            f"an answer sheet should be a mapping of value names to numbers (name: answer), "
            f"found {V.type_name(root.value)}; see bpcalc check NETWORK --template"
        )
    sheet = Sheet(file)
    names = list(step.records)
    covered: dict[str, list[tuple[np.ndarray, Location]]] = {}
    for key in root.value:
        if key in META_KEYS:
            continue
        src = root.child(key)
        answer = _read_answer(src, str(key), step, names, raw)
        if answer is None:
            continue
        _claim(answer, covered, src, step.records[answer.name].shape)
        sheet.answers.append(answer)
    return sheet


def _read_answer(
    src: Src,
    key: str,
    step: StepTrace,
    names: list[str],
    raw: dict[tuple[Any, ...], str],
) -> Answer | None:
    ref = re.sub(r"\]\s*\[", ",", key.strip())  # grad.k[0][1] -> grad.k[0,1]
    try:
        name, index = parse_ref(ref)
    except ValueError:
        raise src.error(
            f"{key!r} is not a value name: write names such as conv.z, grad.fc.weights or "
            "grad.conv.kernel[0,1]",
            at_key=True,
        ) from None
    if name not in step.records:
        raise src.error(_unknown(name, names), at_key=True)
    shape = step.records[name].shape
    if src.value is None:
        return None
    if index is not None:
        if len(index) != len(shape) or any(i >= n for i, n in zip(index, shape, strict=True)):
            raise src.error(_bad_index(name, index, shape), at_key=True)
        if isinstance(src.value, list):
            raise src.error(
                f"{ref} is one element, so its answer is one number; found a list "
                f"(to answer all of {name}, write the key {name})"
            )
        value, decimals = _numbers(src, ref, raw)
        return Answer(ref, name, index, value, decimals, src.key_loc, text=src.value)
    value, decimals = _numbers(src, name, raw)
    if np.isnan(value).all():
        return None
    transposed = False
    if value.shape != shape:
        if value.ndim == 2 and len(shape) == 2 and value.shape == shape[::-1]:
            value, decimals, transposed = value.T, decimals.T, True
        elif value.size == int(np.prod(shape)) and _squeezed(value.shape) == _squeezed(shape):
            value, decimals = value.reshape(shape), decimals.reshape(shape)
        else:
            raise src.error(
                f"{name} is {_fmt(shape)} but this answer is {_fmt(value.shape)}; "
                f"write it as nested lists of shape {_fmt(shape)}, or answer single elements "
                f"such as {element_name(name, tuple(0 for _ in shape))}"
            )
    return Answer(ref, name, None, value, decimals, src.key_loc, transposed, src.value)


def _claim(
    answer: Answer,
    covered: dict[str, list[tuple[np.ndarray, Location]]],
    src: Src,
    shape: tuple[int, ...],
) -> None:
    """Each element may be answered once: not in both `conv.z` and `conv.z[0,0]`."""
    mask = np.zeros(shape, dtype=bool)
    if answer.index is not None:
        mask[answer.index] = True
    else:
        mask |= answer.given
    for other, where in covered.setdefault(answer.name, []):
        both = mask & other
        if both.any():
            ix = tuple(int(i) for i in np.argwhere(both)[0])
            raise src.error(
                f"{element_name(answer.name, ix)} is answered twice (also at line {where.line}); "
                "keep one of them",
                at_key=True,
            )
    covered[answer.name].append((mask, answer.where))


def _numbers(src: Src, what: str, raw: dict[Any, str]) -> tuple[np.ndarray, np.ndarray]:
    """A number or nested lists of numbers and blanks (null) -> (values with NaN, decimals).

    One pass over the plain data (sheets can be large); a Src is only made for an error."""
    values: list[float] = []
    decimals: list[int] = []

    def walk(v: Any, path: tuple[Any, ...]) -> tuple[int, ...]:
        if isinstance(v, list):
            if not v:
                raise Src(src.doc, path).error(
                    f"the answer for {what} is an empty list; expected numbers"
                )
            shapes = [walk(x, (*path, i)) for i, x in enumerate(v)]
            for i, s in enumerate(shapes[1:], start=1):
                if s != shapes[0]:
                    raise Src(src.doc, (*path, i)).error(
                        f"the answer for {what} is ragged: item {i} has shape {_fmt(s)} but "
                        f"item 0 has {_fmt(shapes[0])}; every row needs the same length "
                        "(~ marks a blank)"
                    )
            return (len(v), *shapes[0])
        if v is None:
            values.append(np.nan)
            decimals.append(0)
            return ()
        if isinstance(v, str):
            raise Src(src.doc, path).error(
                f"the answer for {what} should be a number, found the text {v!r}; write "
                "decimals (0.3333, not 1/3), and ~ for a blank"
            )
        if isinstance(v, dict):
            raise Src(src.doc, path).error(
                f"the answer for {what} should be a number or nested lists, found a mapping"
            )
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not V.is_finite(v):
            V.number(Src(src.doc, path), f"the answer for {what}")  # raises, located
        values.append(float(v))
        text = raw.get(path)
        decimals.append(decimals_of(text, v) if text is not None else 0)
        return ()

    shape = walk(src.value, src.path)
    return (
        np.array(values, dtype=np.float64).reshape(shape),
        np.array(decimals, dtype=int).reshape(shape),
    )


def _unknown(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if not close:  # the same ending (kernel, a, z) is often what was meant
        tail = name.rsplit(".", 1)[-1]
        close = [n for n in names if n.endswith("." + tail)][:3]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"there is no value named {name!r} in this network{hint} "
        "(bpcalc check NETWORK --template lists every name)"
    )


def _bad_index(name: str, index: tuple[int, ...], shape: tuple[int, ...]) -> str:
    if not shape:
        return f"{name} is a single number: write {name}: without an index"
    if len(index) != len(shape):
        return (
            f"{name} has {len(shape)} ind{'ex' if len(shape) == 1 else 'ices'} (shape "
            f"{_fmt(shape)}) but {element_name(name, index)} gives {len(index)}"
        )
    return (
        f"{element_name(name, index)} is outside {name}, whose shape is {_fmt(shape)} "
        "(indices count from 0)"
    )


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1)


def _fmt(shape: tuple[int, ...]) -> str:
    return "a single number" if not shape else " x ".join(str(s) for s in shape)
