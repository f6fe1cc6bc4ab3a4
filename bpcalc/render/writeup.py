"""What the Markdown and LaTeX write-ups share: the order of the sections, the rows of the
update table, the loss change, and the work grouped by stage. Reads only the trace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpcalc.trace import STAGE_TITLES, Record, StepTrace

Keep = Callable[[Record], bool]


@dataclass(frozen=True)
class UpdateRow:
    param: str  # conv.kernel
    old: np.ndarray | None
    grad: np.ndarray | None
    new: np.ndarray
    rule: str


def stage_records(st: StepTrace, stage: str, keep: Keep) -> list[Record]:
    return [r for r in st.stage(stage) if keep(r)]


def update_rows(st: StepTrace, keep: Keep) -> list[UpdateRow]:
    rows = []
    for r in st.stage("update"):
        if not r.name.startswith("new.") or not keep(r):
            continue
        pname = r.name[len("new.") :]
        old = st[pname] if pname in st else None
        g = st[f"grad.{pname}"] if f"grad.{pname}" in st else None
        rows.append(UpdateRow(pname, old, g, r.value, r.formula))
    return rows


def state_records(st: StepTrace, keep: Keep) -> list[Record]:
    return [r for r in st.stage("update") if not r.name.startswith("new.") and keep(r)]


def loss_change(st: StepTrace) -> tuple[float, float, float, str]:
    before, after = float(st["loss"]), float(st["loss_after"])
    change = after - before
    verdict = (
        "the step helped" if change < 0 else "the step did not help" if change > 0 else "no change"
    )
    return before, after, change, verdict


def shape_text(r: Record) -> str:
    return "scalar" if not r.shape else " x ".join(str(s) for s in r.shape)


TITLES = STAGE_TITLES
