"""The LaTeX write-up typesets cleanly: every shipped example compiles with pdflatex without
errors and without overfull boxes (wide matrices are scaled to the line, long formulas
broken at + − and commas, huge batch sums shortened), subscripts and arrows are math."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bpcalc.cli import run
from tests.test_render_formats import EVERYTHING_NET, check_latex

# every example that runs as it is (MNIST's needs the files a user downloads)
EXAMPLES = sorted(
    str(p)
    for p in [*Path("examples").glob("*.yaml"), *Path("examples").glob("*/*.yaml")]
    if p.name != "mnist_784_128_10.yaml"
)
ARROW_NET = """\
name: conv -> relu -> dense, Σ_{h,w} and --flags in a title
input: [[0.2, 0.8], [0.6, 0.1]]
target: 1
layers:
  - {name: conv, type: conv2d, kernel: [[0.5, -0.3], [0.2, 0.4]], bias: 0.1, activation: relu}
  - {type: flatten}
  - {name: fc, type: dense, weights: [[0.6], [-0.3]], bias: [0.0, 0.63], activation: softmax}
loss: cross_entropy
learning_rate: 0.1
"""


def latex(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = run(["step", *args, "--format", "latex"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def compile_log(tmp_path: Path, tex: str) -> str:
    (tmp_path / "step.tex").write_text(tex, encoding="utf-8")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "step.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    log = (tmp_path / "step.log").read_text(encoding="utf-8", errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert (tmp_path / "step.pdf").stat().st_size > 1000
    return log


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("example", [*EXAMPLES, "EVERYTHING", "ARROWS"])
def test_every_example_compiles_without_errors_or_overfull_boxes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, example: str
) -> None:
    if example in ("EVERYTHING", "ARROWS"):
        path = tmp_path / "net.yaml"
        path.write_text(EVERYTHING_NET if example == "EVERYTHING" else ARROW_NET)
        example = str(path)
    # two steps (a second step's work reads the optimizer's state), except for the digits'
    # 1497-sample batches, whose explanations take seconds a step
    steps = "1" if "digits" in example else "2"
    tex = latex(capsys, example, "--steps", steps)
    check_latex(tex)
    log = compile_log(tmp_path, tex)
    overfull = re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)
    assert overfull == [], f"overfull boxes of {overfull} pt"


def test_subscripts_arrows_and_double_hyphens_are_typeset_not_spelled(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(ARROW_NET)
    tex = latex(capsys, str(path))
    title = next(line for line in tex.splitlines() if line.startswith("\\section*"))
    assert title.count("\\ensuremath{\\to}") == 2, title
    assert "\\ensuremath{\\sum}\\ensuremath{_{h,w}}" in title
    assert "-{}-flags" in title  # two hyphens, not an en dash
    # the conv gradient formula's Σ_{h,w} is a subscript, not the text "_{h,w}"
    assert "\\_\\{h,w\\}" not in tex
    assert "\\ensuremath{_{h,w}}" in tex
    # a name's underscore stays text: cross_entropy is the loss's name, not cross with a subscript
    assert "cross\\_entropy" in tex


def test_words_in_formulas_keep_their_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    tex = latex(capsys, "examples/gd_variants.yaml", "--steps", "2")
    assert "\\text{mean}\\ \\text{over}\\ \\text{the}\\ \\text{batch}" in tex
    assert "\\text{mean} \\text{over}" not in tex


def test_a_large_batch_shows_its_first_samples_and_shortens_long_sums(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tex = latex(capsys, "examples/digits/mlp.yaml")
    assert "1494 more samples (-{}-full shows them all)" in tex
    assert "sample 3:" not in tex
    assert "a sum of 1497 terms, shown by its first and last" in tex
    assert max(len(line) for line in tex.splitlines()) < 5000
    code = run(["step", "examples/digits/mlp.yaml", "--format", "markdown"])
    md = capsys.readouterr().out
    assert code == 0
    assert "1494 more samples" in md and "sample 3:" not in md
