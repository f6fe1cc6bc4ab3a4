"""The machine format: exactly one strict JSON document (no NaN tokens), full float64."""

from __future__ import annotations

import json
from typing import Any, TextIO

from bpcalc import __version__
from bpcalc.trace import Trace


def document(
    trace: Trace, names: set[str] | None = None, work: dict[int, list[Any]] | None = None
) -> dict[str, Any]:
    """work: the explanations (step -> bpcalc.explain.Explained list), shown under "work",
    keyed by element name (conv.z[0,0]): symbolic, substituted, result, value, note."""
    steps = []
    for st in trace.steps:
        values = {r.name: r.value.tolist() for r in st if names is None or r.name in names}
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


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, allow_nan=False, ensure_ascii=False, indent=1)


def dump(doc: dict[str, Any], fp: TextIO) -> None:
    """dumps(doc) and a newline, written to `fp` as it is encoded: a large trace is never held
    as one string (and a list of its pieces) besides its numbers (bpcalc.budget counts this)."""
    encoder = json.JSONEncoder(allow_nan=False, ensure_ascii=False, indent=1)
    pieces: list[str] = []
    for piece in encoder.iterencode(doc):
        pieces.append(piece)
        if len(pieces) >= 1 << 16:  # a write per piece would take 3 times as long
            fp.write("".join(pieces))
            pieces.clear()
    pieces.append("\n")
    fp.write("".join(pieces))
