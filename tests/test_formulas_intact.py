"""Formulas intact everywhere: no formula or message is read as console markup. Every
formula of every layer, loss, optimizer and regularizer (the records of every test network),
every loss and activation formula of the catalogues and every slip's message go through the
terminal renderer (a table cell and a prose line, at 60 and 160 columns) and come out whole.
The batch formulas carry their 1/N and their sum over the batch in the table."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from bpcalc import activations, layers, losses
from bpcalc.check.diagnose import slips
from bpcalc.cli import run
from bpcalc.network.types import LAYER_TYPES
from bpcalc.render.layout import Column, Out, fitted_table
from tests.test_output_widths import TRACES, trace_of


def _texts() -> list[str]:
    out: set[str] = set()
    for net in TRACES:
        if "digits" in net:
            continue
        trace = trace_of(net)
        for st in trace.steps:
            out |= {r.formula for r in st}
        out |= set(trace.conventions.values())
        n = len(trace.steps[0].samples or []) or int(trace.spec.inputs.shape[0])
        out |= {s.message for s in slips(trace.spec, n)}
    for kind in losses.kinds():  # every loss unit's formulas
        unit = losses.get(kind)
        out |= {unit.formula, unit.grad_formula, unit.fused_formula}
        out |= {slip.message for slip in unit.slips(3)}
    for kind in activations.kinds():  # every activation unit's formulas and slips
        unit = activations.get(kind)
        out |= {unit.formula(), unit.grad_formula(), unit.derivative_text}
        out |= {message for _, _, message in unit.slips("h")}
    for layer_type in LAYER_TYPES:  # every layer unit's formulas
        cls = layers.unit_class(layer_type)
        out |= {f for f in vars(cls).values() if isinstance(f, str) and "∂" in f}
    return sorted(t for t in out if t)


TEXTS = _texts()


def norm(text: str) -> str:
    return " ".join(text.split())


def test_the_catalogue_has_the_formulas_that_were_eaten() -> None:
    # rich read "[y · ln(p) + …]" and "[h,w]" as markup tags and dropped them
    assert any("[y · ln(p) + (1 − y) · ln(1 − p)]" in t for t in TEXTS)
    assert any("∂L/∂z[h,w]" in t for t in TEXTS)
    assert len(TEXTS) > 100


@pytest.mark.parametrize("width", [60, 160])
def test_every_formula_and_slip_message_comes_out_whole(width: int) -> None:
    buf = io.StringIO()
    out = Out(Console(file=buf, width=width, color_system=None, emoji=False), wrap_prose=True)
    for t in TEXTS:
        table = fitted_table(
            "t", [Column("name"), Column("formula", prose=True)], [["x", t]], width
        )
        assert table is not None
        out.print(table)
        out.prose(t, indent=4)
    text = buf.getvalue()
    prose = norm(text)
    for t in TEXTS:
        assert norm(t) in prose, t
    # the table cells: every formula whole once its column's lines are joined
    cells = [
        norm(" ".join(line.split("│")[2] for line in block.splitlines() if line.startswith("│")))
        for block in text.split("┏")[1:]
    ]
    for t, cell in zip(TEXTS, cells, strict=True):
        assert cell == norm(t), (t, cell)


def test_the_binary_cross_entropy_formula_is_whole_in_the_table_and_the_diagnosis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    formula = "L = −(1/K) Σ [y · ln(p) + (1 − y) · ln(1 − p)]"
    assert run(["step", "examples/mlp_2_3_1.yaml", "--stage", "loss"]) == 0
    assert formula in capsys.readouterr().out
    answers = tmp_path / "answers.yaml"
    answers.write_text("loss: 0.1234\n")
    assert run(["check", "examples/mlp_2_3_1.yaml", str(answers)]) == 1
    out = norm(capsys.readouterr().out)
    assert f"recompute it step by step from {formula}" in out


def test_batch_formulas_carry_the_one_over_n_and_the_sum_over_the_batch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(["step", "examples/gd_variants.yaml", "--json", "--explain", "grad.fc.a"]) == 0
    capsys.readouterr()
    from bpcalc import engine
    from bpcalc.network.parse import load_network

    st = engine.run(load_network("examples/gd_variants.yaml")).steps[0]
    # mse, a batch of N = 2 with the mean: ∂L/∂a = 2(a − y)/(K·N), what the value is
    assert st.records["grad.fc.a"].formula == "∂L/∂a = 2(a − y)/(K·N)"
    a, y = st["fc.a"], st["target"]
    assert st["grad.fc.a"].tolist() == (2 * (a - y) / (1 * 2)).tolist()
    assert st.records["grad.fc.weights"].formula == (
        "∂L/∂W = Σ_n ∂L/∂z · xᵀ (summed over the batch)"
    )
    assert st.records["grad.fc.bias"].formula == "∂L/∂b = Σ_n ∂L/∂z (summed over the batch)"
    # a batch whose loss is the sum has no 1/N; softmax + cross-entropy gets (p − y)/N
    net = (
        Path("examples/gd_variants.yaml")
        .read_text()
        .replace("loss: mse ", "loss: {type: mse, reduction: sum} ")
    )
    path = tmp_path / "sum.yaml"
    path.write_text(net)
    st = engine.run(load_network(str(path))).steps[0]
    assert st.records["grad.fc.a"].formula == "∂L/∂a = 2(a − y)/K"
    fused = trace_of("conv").steps[0]
    assert fused.records["grad.out.z"].formula.startswith("∂L/∂z = (p − y)/(K·N)")
    # one sample: no batch in the formulas
    st = engine.run(load_network("examples/example2.yaml")).steps[0]
    assert st.records["grad.fc.z"].formula.startswith("∂L/∂z = p − y (")
    assert st.records["grad.fc.weights"].formula == "∂L/∂W = ∂L/∂z · xᵀ"
