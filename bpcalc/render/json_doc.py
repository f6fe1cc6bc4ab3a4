"""The machine format: exactly one strict JSON document (no NaN tokens), full float64."""

from __future__ import annotations

import json
from typing import Any

from bpcalc import __version__
from bpcalc.trace import Trace


def document(trace: Trace, names: set[str] | None = None) -> dict[str, Any]:
    steps = []
    for st in trace.steps:
        values = {r.name: r.value.tolist() for r in st if names is None or r.name in names}
        entry: dict[str, Any] = {"step": st.step, "values": values}
        if st.samples is not None:
            entry["samples"] = st.samples
        steps.append(entry)
    return {
        "bpcalc": __version__,
        "network": trace.network,
        "conventions": trace.conventions,
        "steps": steps,
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, allow_nan=False, ensure_ascii=False, indent=1)
