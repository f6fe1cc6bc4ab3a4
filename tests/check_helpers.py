"""Networks, hand-derived in comments, and helpers shared by the `bpcalc check` tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bpcalc.cli import run

EX1 = "examples/example1.yaml"  # O = 4.5, y = 10, half_sse, η = 0.01


EX2 = "examples/example2.yaml"  # conv + relu + dense + softmax + cross-entropy, η = 0.1


# three samples x = 1, 2, 3 through z = 1·x, y = 1: errors a − y = [0, 1, 2];
# mean: L = (½·0 + ½·1 + ½·4)/3 = 2.5/3, ∂L/∂z_n = (a − y)/3 = [0, 1/3, 2/3],
#       ∂L/∂W = 0·1 + (1/3)·2 + (2/3)·3 = 8/3
# sum:  L = 2.5, ∂L/∂z_n = [0, 1, 2], ∂L/∂W = 0 + 2 + 6 = 8
BATCH = """
inputs: [[1], [2], [3]]
targets: [[1], [1], [1]]
layers:
  - name: fc
    type: dense
    weights: [[1]]
    bias: [0]
loss: {{type: half_sse, reduction: {reduction}}}
learning_rate: 0.1
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def check(capsys, *args: str) -> tuple[int, dict, str]:
    """Run `bpcalc check ... --json`; returns (exit code, the JSON report, stderr)."""
    code = run(["check", *args, "--json"])
    out = capsys.readouterr()
    doc = json.loads(out.out) if out.out.strip() else {}
    return code, doc, out.err


def entry(doc: dict, ref: str) -> dict:
    return next(a for a in doc["answers"] if a["ref"] == ref)


def slips_of(doc: dict, ref: str) -> set[str]:
    return {d["slip"] for d in entry(doc, ref)["diagnoses"]}


def example2_probabilities() -> tuple[float, float]:
    # example 2: fc.z = [0.6·0.12, −0.3·0.12 + 0.63] = [0.072, 0.594]; p = softmax(fc.z)
    e0, e1 = math.exp(0.072), math.exp(0.594)
    return e0 / (e0 + e1), e1 / (e0 + e1)
