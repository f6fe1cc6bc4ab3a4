"""The blank answer sheet of `bpcalc check NET --template`: every value name of the first
step in computation order, its shape and formula in a comment, and a blank (~) per element
to fill in. Valid YAML as it stands (an all-blank sheet grades as "nothing answered")."""

from __future__ import annotations

import numpy as np

from bpcalc import notation
from bpcalc.render.numbers import SUMMARY_THRESHOLD
from bpcalc.trace import STAGE_TITLES, Record, Trace

GIVEN = "given in the network"


def template(trace: Trace, network_file: str) -> str:
    st = trace.steps[0]
    shaped = [r for r in st if r.stage == "backward" and r.shape] or [r for r in st if r.shape]
    example = max(shaped, key=lambda r: len(r.shape)) if shaped else None  # first of most axes
    element = (
        f"e.g. {r_name(example)}: 0.25 (indices count from 0)" if example else "name[i,j]: 0.25"
    )
    lines = [
        f"# bpcalc answer sheet for {network_file} ({trace.network})",
        "# Replace each ~ with the number you computed by hand; leave ~ where you have no answer.",
        "# Whole values are nested lists; a single element can be answered on its own line,",
        f"# {element}. Keep the decimals you wrote:",
        "# an answer is right when it agrees with the correct value to those decimals.",
    ]
    if trace.batched:
        lines.append("# Per-sample values have the sample index first: fc.a[1,0] is sample 1.")
    lines.append(f"# Check it with: bpcalc check {network_file} answers.yaml")
    stage = None
    records = list(st)
    width = max(len(r.name) for r in records) + 1
    blank_width = max(len(_blank(r)) for r in records)
    given = _given(trace)
    for r in records:
        if r.stage != stage:
            stage = r.stage
            lines += ["", f"# --- {STAGE_TITLES[stage]} ---"]
        key = f"{r.name}:".ljust(width)
        lines.append(f"{key} {_blank(r).ljust(blank_width)}  # {_comment(r, given)}")
    return "\n".join(lines) + "\n"


def template_json(trace: Trace) -> dict[str, object]:
    """The blank sheet as JSON (`--template --json`): value name -> nulls in its shape (one
    null for a value of more than SUMMARY_THRESHOLD elements: answer single elements).
    `bpcalc check` reads it as it reads YAML (null is YAML's ~)."""
    return {r.name: _nulls(r) for r in trace.steps[0]}


def _nulls(r: Record) -> object:
    if not r.shape or r.value.size > SUMMARY_THRESHOLD:
        return None
    return np.full(r.shape, None, dtype=object).tolist()


def r_name(r: Record) -> str:
    """The first element's reference: grad.fc.weights[0,0]."""
    return f"{r.name}[{','.join('0' for _ in r.shape)}]"


def _blank(r: Record) -> str:
    if not r.shape:
        return "~"
    if r.value.size > SUMMARY_THRESHOLD:
        return "~"
    return _nested(r.shape)


def _nested(shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return "[" + ", ".join("~" for _ in range(shape[0])) + "]"
    inner = _nested(shape[1:])
    return "[" + ", ".join(inner for _ in range(shape[0])) + "]"


def _comment(r: Record, given: set[str] | None = None) -> str:
    shape = "scalar" if not r.shape else " x ".join(str(s) for s in r.shape)
    if r.per_sample:
        shape += " (sample first)"
    if r.value.size > SUMMARY_THRESHOLD:
        shape += f"; {r.value.size} numbers: answer elements such as {r.name}[{','.join('0' for _ in r.shape)}]"
    is_given = r.name in given if given is not None else _is_given(r)
    return f"{shape}, {GIVEN}" if is_given else f"{shape}  {r.formula}"


def _given(trace: Trace) -> set[str] | None:
    """The names of what the network file gives: the input, the target, every layer's
    parameters (batchnorm's running statistics too) and a dropout mask written in it. Not
    what the step computes from them (bn.mean, bn.var, bn.xhat, a drawn drop.mask)."""
    spec = trace.spec
    if spec is None:
        return None
    names = {"input", "target"}
    for layer in spec.all_layers:  # those inside blocks too
        names.update(f"{layer.name}.{p}" for p in layer.params)
        if getattr(layer, "mask", None) is not None:
            names.add(f"{layer.name}.mask")
    return names


def _is_given(r: Record) -> bool:
    """Without the spec: the input, the target and the parameters the step starts from
    (<layer>.<param>, and <block>.<inner>.<param> inside a block), by their formula."""
    if r.name in ("input", "target"):
        return True
    return r.stage == "forward" and r.formula in (notation.GIVEN_PARAM, notation.GIVEN_BUFFER)


def filled(trace: Trace) -> dict[str, object]:
    """The correct answers as a sheet would hold them (for tests and examples)."""
    return {r.name: np.asarray(r.value).tolist() for r in trace.steps[0]}
