"""The documents of an exercise: the handouts and worked solutions compile with pdflatex (with
TikZ, and with LaTeX's own picture where TikZ is missing), the SVG diagrams are valid SVG with
every weight's label, and a handout names nothing of the program that made it."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from bpcalc.network.parse import load_network
from bpcalc.network.types import Conv2dSpec, DenseSpec
from bpcalc.render.numbers import fmt
from bpcalc.teach import generate
from tests.helpers import cli
from tests.test_teach_exercise import CNN, MLP

HAVE_PDFLATEX = shutil.which("pdflatex") is not None
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module", params=[MLP, CNN], ids=["mlp", "cnn"])
def made(request, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("doc") / "ex"
    generate.generate(request.param, variants=1, seed=5, out_dir=str(out), pdf=False)
    return out / "variant-01"


def _pdflatex(tex: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tmp,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(not HAVE_PDFLATEX, reason="pdflatex is not installed")
@pytest.mark.parametrize("doc", ["handout.tex", "solution.tex"])
@pytest.mark.parametrize("tikz", [True, False], ids=["tikz-if-installed", "picture"])
def test_the_latex_handout_and_solution_compile_without_errors(made, tmp_path, doc, tikz):
    text = (made / doc).read_text()
    if not tikz:  # as on a LaTeX installation without TikZ
        text = text.replace(r"\IfFileExists{tikz.sty}", r"\IfFileExists{no-such-file.sty}")
    (tmp_path / doc).write_text(text)
    proc = _pdflatex(tmp_path / doc, tmp_path)
    errors = [ln for ln in proc.stdout.splitlines() if ln.startswith("!")]
    assert proc.returncode == 0 and not errors, errors or proc.stdout[-2000:]
    assert (tmp_path / doc).with_suffix(".pdf").stat().st_size > 5000


@pytest.mark.skipif(not HAVE_PDFLATEX, reason="pdflatex is not installed")
def test_bpcalc_exercise_writes_the_pdfs_where_pdflatex_is_installed(tmp_path, capsys):
    code, out, err = cli(capsys, "exercise", CNN, "-o", str(tmp_path / "o"))
    assert code == 0, err
    for name in ("handout.pdf", "solution.pdf"):
        assert (tmp_path / "o" / "variant-01" / name).read_bytes()[:5] == b"%PDF-"


def _svg_texts(path: Path) -> list[str]:
    root = ET.fromstring(path.read_text())  # raises on anything that is not XML
    assert root.tag == f"{SVG}svg"
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_the_svg_diagrams_are_valid_svg_with_every_weights_label(made):
    spec = load_network(str(made / "network.yaml"))
    texts = _svg_texts(made / "diagram.svg")
    for layer in spec.layers:
        if isinstance(layer, DenseSpec):
            params = np.concatenate([layer.weights.reshape(-1), layer.bias])
        elif isinstance(layer, Conv2dSpec):
            params = np.concatenate([layer.kernel.reshape(-1)])
        else:
            continue
        for v in params.reshape(-1):
            label = fmt(float(v), 4)
            assert any(label == t or t.endswith(f"= {label}") for t in texts), (layer.name, label)
    for stage in ("forward", "backward"):
        assert _svg_texts(made / f"solution-{stage}.svg")


def test_a_handout_names_nothing_of_the_program_that_made_it(made):
    for name in ("handout.md", "handout.tex"):
        text = (made / name).read_text().lower()
        for word in ("bpcalc", "float64", "dtype", "the parameter this step starts from", "yaml"):
            assert word not in text, (name, word)
    md = (made / "handout.md").read_text()
    assert "## Worksheet" in md and "![The network" in md and "## Given values" in md


def test_the_handout_worksheet_has_one_line_per_number_asked(made):
    md = (made / "handout.md").read_text()
    key = (made / "key.yaml").read_text()
    numbers = sum(line.split(":", 1)[1].count(".") for line in key.splitlines()[3:] if ":" in line)
    rows = [ln for ln in md.split("## Worksheet", 1)[1].splitlines() if ln.startswith("| ")]
    assert len(rows) - 2 == numbers  # the header and its rule aside


def test_step_draws_the_network_as_svg_with_the_steps_values(capsys, tmp_path):
    net = str(Path(__file__).parent.parent / "examples" / "mlp_2_3_1.yaml")
    code, out, err = cli(capsys, "step", net, "--format", "svg")
    assert code == 0, err
    (tmp_path / "f.svg").write_text(out)
    texts = _svg_texts(tmp_path / "f.svg")
    assert "a = 0.25" in texts and "a = 0.5162" in texts and "-0.5" in texts
    code, out, err = cli(capsys, "step", net, "--format", "svg", "--stage", "backward")
    (tmp_path / "b.svg").write_text(out)
    texts = _svg_texts(tmp_path / "b.svg")
    assert "∂L/∂z = -0.4838" in texts and "-0.1209" in texts  # ∂L/∂w of the output layer


def test_step_latex_has_the_diagram_and_compiles(capsys, tmp_path):
    net = str(Path(__file__).parent.parent / "examples" / "example2.yaml")
    code, out, _ = cli(capsys, "step", net, "--format", "latex")
    assert code == 0
    assert r"\ifbptikz" in out and r"\begin{tikzpicture}" in out and r"\begin{picture}" in out
    if HAVE_PDFLATEX:
        (tmp_path / "s.tex").write_text(out)
        assert _pdflatex(tmp_path / "s.tex", tmp_path).returncode == 0
