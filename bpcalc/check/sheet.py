"""The answer sheet: a YAML mapping from value names to the numbers a student computed.

    conv.z: [[0.12]]                  # a whole value, nested lists in the value's shape
    grad.conv.kernel[0,1]: 0.268      # one element, 0-based indices
    fc.a: [0.372, ~]                  # ~ (null) = no answer for that element
    conventions: {delta: t_minus_o}   # how the author writes (bpcalc/check/conventions.py)
    step 2:                           # answers for the second step (the top level is step 1)
      new.fc.bias: [0.041]

Keys are the value names of `bpcalc step` (see `bpcalc check NET --template`), in any order,
any subset. Each number keeps how many decimals the student wrote (0.120 has 3), which sets
the default tolerance (bpcalc/check/tolerance.py). A number written with a decimal comma
(0,298) is read as 0.298, with a note. Everything wrong with the sheet is a SpecError at its
file:line:column.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpcalc.errors import Location
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src, load_yaml_text
from bpcalc.trace import StepTrace, element_name, parse_ref

# Labels for grading a class (bpcalc/check/klass.py), not values: who wrote the sheet and
# which variant of an exercise it answers.
META_KEYS = ("student", "variant")

_NUMBER = re.compile(r"^[+-]?(?:\d[\d_]*)?(?:\.(?P<frac>[\d_]*))?(?:[eE](?P<exp>[+-]?\d+))?$")
_COMMA = re.compile(r"^\s*([+-]?\d*),(\d+)\s*$")  # 0,298: a decimal comma
_STEP = re.compile(r"^step\s*(\d+)$", re.IGNORECASE)


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
    step: int = 1  # the training step it answers (1-based)

    @property
    def given(self) -> np.ndarray:
        return ~np.isnan(self.value)

    @property
    def label(self) -> str:
        """How the report names it: conv.z, or conv.z (step 2) for a later step."""
        return self.ref if self.step == 1 else f"{self.ref} (step {self.step})"


@dataclass
class Sheet:
    file: str
    answers: list[Answer] = field(default_factory=list)
    conventions: Src | None = None  # the sheet's conventions: block, if any
    notes: list[str] = field(default_factory=list)  # what the reading assumed (decimal commas)
    lines: list[str] = field(default_factory=list, repr=False)  # the sheet's text

    @property
    def steps(self) -> int:
        """The last step the sheet answers (1 when it answers none)."""
        return max((a.step for a in self.answers), default=1)


def decimals_of(raw: str, value: float) -> int:
    """How many decimals a number was written with: '0.120' -> 3, '12' -> 0, '1.5e-3' -> 4."""
    m = _NUMBER.match(raw.strip())
    if m is None:  # an unusual spelling YAML still read as a number: count its repr
        text = repr(float(value))
        return len(text.split(".", 1)[1]) if "." in text and "e" not in text else 0
    frac = (m.group("frac") or "").replace("_", "")
    return len(frac) - int(m.group("exp") or 0)


def steps_asked(text: str, file: str) -> int:
    """The last step a sheet has a `step N:` section for (1 when none), before it is read."""
    doc = load_yaml_text(text, file)
    root = doc.root().value
    if not isinstance(root, dict):
        return 1
    found = [int(m.group(1)) for k in root if (m := _STEP.match(str(k).strip()))]
    return max([1, *found])


def parse_sheet(text: str, file: str, step: StepTrace | list[StepTrace]) -> Sheet:
    steps = step if isinstance(step, list) else [step]
    doc = load_yaml_text(text, file, keep_text=True)
    raw = doc.scalar_text or {}
    root = doc.root()
    if not isinstance(root.value, dict):
        raise root.error(
            f"an answer sheet should be a mapping of value names to numbers (name: answer), "
            f"found {V.type_name(root.value)}; see bpcalc check NETWORK --template"
        )
    sheet = Sheet(file, lines=text.splitlines())
    names = list(steps[0].records)
    covered: dict[tuple[int, str], list[tuple[np.ndarray, Location]]] = {}

    def section(src: Src, k: int) -> None:
        for key in src.value:
            child = src.child(key)
            answer = _read_answer(child, str(key), steps[k - 1], names, raw, sheet, k)
            if answer is None:
                continue
            _claim(answer, covered, child, steps[k - 1].records[answer.name].shape)
            sheet.answers.append(answer)

    for key in root.value:
        if key in META_KEYS:
            continue
        text_key = str(key).strip()
        src = root.child(key)
        if text_key == "conventions":
            sheet.conventions = src
            continue
        m = _STEP.match(text_key)
        if m is None:
            continue
        k = int(m.group(1))
        if not 1 <= k <= len(steps):
            raise src.error(
                f"this run has {len(steps)} step{'s' if len(steps) != 1 else ''}: answers for "
                f"step {k} need --steps {k} or more"
                if k > 0
                else "steps count from 1",
                at_key=True,
            )
        if src.value is None:
            continue
        if not isinstance(src.value, dict):
            raise src.error(
                f"{text_key}: should hold that step's answers as name: number lines, found "
                f"{V.type_name(src.value)}"
            )
        section(src, k)
    top = [
        k
        for k in root.value
        if k not in META_KEYS
        and str(k).strip() != "conventions"
        and not _STEP.match(str(k).strip())
    ]
    for key in top:
        child = root.child(key)
        answer = _read_answer(child, str(key), steps[0], names, raw, sheet, 1)
        if answer is None:
            continue
        _claim(answer, covered, child, steps[0].records[answer.name].shape)
        sheet.answers.append(answer)
    return sheet


def _read_answer(
    src: Src,
    key: str,
    step: StepTrace,
    names: list[str],
    raw: dict[tuple[Any, ...], str],
    sheet: Sheet,
    k: int,
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
        value, decimals = _numbers(src, ref, raw, sheet.notes)
        return Answer(ref, name, index, value, decimals, src.key_loc, text=src.value, step=k)
    value, decimals = _numbers(src, name, raw, sheet.notes)
    if np.isnan(value).all():
        return None
    transposed = False
    if value.shape != shape:
        if value.ndim == 2 and len(shape) == 2 and value.shape == shape[::-1]:
            value, decimals, transposed = value.T, decimals.T, True
        elif value.size == int(np.prod(shape)) and _squeezed(value.shape) == _squeezed(shape):
            value, decimals = value.reshape(shape), decimals.reshape(shape)
        else:
            raise src.error(_shape_message(name, shape, value.shape, src, sheet.lines))
    return Answer(ref, name, None, value, decimals, src.key_loc, transposed, src.value, k)


def _shape_message(
    name: str, shape: tuple[int, ...], got: tuple[int, ...], src: Src, lines: list[str]
) -> str:
    """A wrong shape, in words: "a single number", "a list of 3 numbers", "a 2 x 3 matrix"."""
    if not shape:
        how = f"write it as one number ({name}: 0.25)"
    else:
        how = (
            f"write it as {_words(shape)}, or answer single elements such as "
            f"{element_name(name, tuple(0 for _ in shape))}"
        )
    text = f"{name} is {_words(shape)} but this answer is {_words(got)}; {how}"
    line = src.loc.line
    flow = lines[line - 1] if 0 < line <= len(lines) else ""
    if any(isinstance(x, int) for x in _leaves(src.value)) and re.search(r"\d,\d", flow):
        text += (
            " (a decimal comma inside a list splits the number in two: write 0.298, "
            "with a point, in lists)"
        )
    return text


def _leaves(v: Any) -> list[Any]:
    if isinstance(v, list):
        return [x for item in v for x in _leaves(item)]
    return [v]


def _words(shape: tuple[int, ...]) -> str:
    if not shape:
        return "a single number"
    if len(shape) == 1:
        return f"a list of {shape[0]} number{'s' if shape[0] != 1 else ''}"
    if len(shape) == 2:
        rows = f"{shape[0]} row{'s' if shape[0] != 1 else ''}"
        return f"a {shape[0]} x {shape[1]} matrix ({rows} of {shape[1]})"
    return "nested lists of shape " + " x ".join(str(s) for s in shape)


def _claim(
    answer: Answer,
    covered: dict[tuple[int, str], list[tuple[np.ndarray, Location]]],
    src: Src,
    shape: tuple[int, ...],
) -> None:
    """Each element may be answered once: not in both `conv.z` and `conv.z[0,0]`."""
    mask = np.zeros(shape, dtype=bool)
    if answer.index is not None:
        mask[answer.index] = True
    else:
        mask |= answer.given
    for other, where in covered.setdefault((answer.step, answer.name), []):
        both = mask & other
        if both.any():
            ix = tuple(int(i) for i in np.argwhere(both)[0])
            raise src.error(
                f"{element_name(answer.name, ix)} is answered twice (also at line {where.line}); "
                "keep one of them",
                at_key=True,
            )
    covered[(answer.step, answer.name)].append((mask, answer.where))


def _numbers(
    src: Src, what: str, raw: dict[Any, str], notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
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
        if isinstance(v, str) and (m := _COMMA.match(v)):
            whole, frac = m.group(1), m.group(2)
            number = float(f"{whole or '0'}.{frac}")
            values.append(number)
            decimals.append(len(frac))
            notes.append(
                f"{Src(src.doc, path).loc}: read {v.strip()} as {whole or '0'}.{frac} "
                "(a decimal comma)"
            )
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
