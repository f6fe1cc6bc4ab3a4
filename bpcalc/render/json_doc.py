"""The machine format: exactly one strict JSON document (no NaN tokens), full float64.

Written by orjson, which writes a float64 NumPy array straight from its memory (no nested
Python lists) as the shortest text that reads back to the same float64. Layout: the document's
objects, and lists of objects, one member a line, indented by two spaces; every other value
(a number, a string, a whole array) on the line of its key, without spaces. So a person can
read which values a step has, and the document is written value by value: no copy of the whole
text in memory, and about half the bytes of one number a line.
"""

from __future__ import annotations

import io
import math
import sys
from typing import Any, TextIO

import numpy as np
import orjson

from bpcalc import __version__
from bpcalc.trace import Trace

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def document(
    trace: Trace, names: set[str] | None = None, work: dict[int, list[Any]] | None = None
) -> dict[str, Any]:
    """work: the explanations (step -> bpcalc.explain.Explained list), shown under "work",
    keyed by element name (conv.z[0,0]): symbolic, substituted, result, value, note.
    The values stay NumPy arrays (float64, the trace's); write() turns them into numbers."""
    steps = []
    for st in trace.steps:
        values = {r.name: r.value for r in st if names is None or r.name in names}
        entry: dict[str, Any] = {"step": st.step, "values": values}
        if work is not None:
            entry["work"] = {w.name: w.as_dict() for e in work.get(st.step, []) for w in e.works}
            skipped = [e.record.name for e in work.get(st.step, []) if e.skipped]
            if skipped:
                entry["work_skipped"] = skipped
        if st.samples is not None:
            entry["samples"] = st.samples
        steps.append(entry)
    doc = {
        "bpcalc": __version__,
        "network": trace.network,
        "conventions": trace.conventions,
        "steps": steps,
    }
    if trace.round_each is not None:
        doc["round_each"] = trace.round_each
    return doc


def write(doc: Any, out: TextIO | None = None) -> None:
    """Write doc and a newline to out (default: standard output), one value at a time.

    Raises ValueError for a NaN or an infinity anywhere (strict JSON has no token for them;
    orjson alone would write null), and TypeError for what JSON cannot hold."""
    out = sys.stdout if out is None else out
    for chunk in _chunks(doc, 0):
        out.write(chunk)
    out.write("\n")


def dump(doc: Any, fp: TextIO) -> None:
    """write(doc, fp): the document and a newline, encoded as it is written."""
    write(doc, fp)


def dumps(doc: Any) -> str:
    """The text write() writes, without its final newline."""
    buf = io.StringIO()
    write(doc, buf)
    return buf.getvalue()[:-1]


def _is_structure(v: Any) -> bool:
    """Laid out a member a line: an object, or a list holding an object."""
    return isinstance(v, dict) or (
        isinstance(v, (list, tuple)) and any(isinstance(x, dict) for x in v)
    )


def _chunks(v: Any, depth: int) -> Any:
    if not _is_structure(v):
        yield _leaf(v)
        return
    if not v:
        yield "{}" if isinstance(v, dict) else "[]"
        return
    inner = "\n" + "  " * (depth + 1)
    if isinstance(v, dict):
        yield "{"
        for i, (key, value) in enumerate(v.items()):
            if not isinstance(key, str):
                raise TypeError(f"a JSON key is text, not {type(key).__name__}: {key!r}")
            yield ("," if i else "") + inner + orjson.dumps(key).decode() + ": "
            yield from _chunks(value, depth + 1)
        yield "\n" + "  " * depth + "}"
    else:
        yield "["
        for i, value in enumerate(v):
            yield ("," if i else "") + inner
            yield from _chunks(value, depth + 1)
        yield "\n" + "  " * depth + "]"


def _leaf(v: Any) -> str:
    """One value as compact JSON text: an array of any shape, a number, text, a plain list."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "f":
            if not np.isfinite(v).all():
                raise ValueError("a value that is NaN or infinite has no strict JSON form")
            # float32 would be written as its own shortest text, which reads back as another
            # float64; the document promises float64
            v = v.astype(np.float64, copy=False)
        if v.ndim == 0:
            return orjson.dumps(v.item()).decode()
        if not v.flags.c_contiguous:
            v = np.ascontiguousarray(v)
        return orjson.dumps(v, option=_NUMPY, default=_default).decode()
    _check_finite(v)
    # without OPT_SERIALIZE_NUMPY, so NumPy scalars in plain lists reach _default
    return orjson.dumps(v, default=_default).decode()


def _check_finite(v: Any) -> None:
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v} has no strict JSON form")
    elif isinstance(v, np.floating):
        if not np.isfinite(v):
            raise ValueError(f"{v} has no strict JSON form")
    elif isinstance(v, (list, tuple)):
        for x in v:
            _check_finite(x)
    elif isinstance(v, dict):
        for x in v.values():
            _check_finite(x)
    elif isinstance(v, np.ndarray):
        _leaf(v)


def _default(v: Any) -> Any:
    """What orjson does not write itself: arrays inside plain lists, NumPy scalars (a float32
    as the float64 of the same value)."""
    if isinstance(v, np.ndarray):
        return orjson.Fragment(_leaf(v))
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"{type(v).__name__} is not JSON serializable")
