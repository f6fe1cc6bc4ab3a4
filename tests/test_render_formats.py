"""The write-up formats (Markdown, LaTeX) are well-formed, every format starts with the
conventions and states the hand-calculation mode, and --explain / --stage / --only work
through the command line in every format."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from bpcalc.cli import run

UNDERSCORE_NET = """\
name: under_scored names (conv_1, dense_out) & 100% specials for $5
input: [[0.2, 0.8, 0.1], [0.6, 0.1, 0.3], [0.5, 0.5, 0.9]]
target: 1
layers:
  - name: conv_1
    type: conv2d
    kernel: [[0.5, -0.3], [0.2, 0.4]]
    bias: 0.1
    padding: 1
    stride: 2
    activation: tanh
  - name: pool_1
    type: maxpool2d
    size: 2
  - type: flatten
  - name: dense_out
    type: dense
    weights: [[0.6], [-0.3]]
    bias: [0.0, 0.63]
    activation: softmax
loss: cross_entropy
learning_rate: 0.1
"""


EVERYTHING_NET = """\
name: adam, L2/L1, dropout, batchnorm, mini-batches
inputs: [[0.3, -0.8, 0.5], [1.2, 0.4, -0.1], [0.2, 0.2, 0.9], [-0.6, 0.1, 0.3]]
targets: [[1.0], [0.0], [0.5], [0.2]]
batch_size: 2
optimizer: {type: adam, lr: 0.05}
regularization: {l2: 0.1, l1: 0.01}
layers:
  - {name: h_1, type: dense, weights: [[0.4, -0.3, 0.1], [0.25, 0.6, -0.2]], bias: [0.1, -0.1]}
  - {name: bn_1, type: batchnorm, gamma: [1.2, 0.8], beta: [0.1, -0.1], activation: relu}
  - {name: drop_1, type: dropout, p: 0.5, mask: [1, 0]}
  - {name: out, type: dense, weights: [[0.5, -0.7]], bias: [0.2], activation: sigmoid}
loss: binary_cross_entropy
"""


@pytest.fixture
def everything_net(tmp_path):
    path = tmp_path / "everything.yaml"
    path.write_text(EVERYTHING_NET)
    return str(path)


@pytest.fixture
def underscore_net(tmp_path):
    path = tmp_path / "under_score.yaml"
    path.write_text(UNDERSCORE_NET)
    return str(path)


def step(capsys, *args: str) -> str:
    code = run(["step", *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


# --- well-formedness helpers ----------------------------------------------------------------


def unescaped(text: str, ch: str) -> int:
    return len(re.findall(r"(?<!\\)" + re.escape(ch), text))


def check_environments(text: str) -> None:
    stack: list[str] = []
    for kind, env in re.findall(r"\\(begin|end)\{([^}]*)\}", text):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack[-1] == env, f"\\end{{{env}}} closes {stack[-1:]}"
            stack.pop()
    assert not stack, f"unclosed environments: {stack}"


def check_braces(text: str) -> None:
    depth = 0
    for m in re.finditer(r"(?<!\\)[{}]", text.replace("\\\\", "")):
        depth += 1 if m.group() == "{" else -1
        assert depth >= 0, f"unbalanced }} near {text[max(0, m.start() - 40) : m.start()]!r}"
    assert depth == 0


def check_markdown(md: str) -> None:
    lines = md.splitlines()
    assert lines[0].startswith("# bpcalc")
    for line in lines:
        assert unescaped(line, "$") % 2 == 0, line
        for math in re.findall(r"(?<!\\)\$(.*?)(?<!\\)\$", line):
            check_environments(math)
            check_braces(math)
            assert math == math.strip(), f"GitHub needs no space inside $...$: {math!r}"
            # a Markdown processor may unescape \\ to \ before the math is typeset
            assert "\\\\" not in math, f"use \\cr for matrix rows: {math!r}"
    # tables: header, separator and rows with the same number of cells
    i = 0
    while i < len(lines):
        if lines[i].startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("| ---"):
            width = unescaped(lines[i], "|")
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                assert unescaped(lines[j], "|") == width, lines[j]
                j += 1
            i = j
        else:
            i += 1


def check_latex(tex: str) -> None:
    assert tex.startswith("\\documentclass")
    assert tex.rstrip().endswith("\\end{document}")
    check_environments(tex)
    check_braces(tex)
    assert unescaped(tex, "$") % 2 == 0
    body = tex.split("\\begin{document}", 1)[1]
    for line in body.splitlines():
        assert all(ord(ch) < 128 for ch in line), f"non-ASCII left for pdflatex: {line!r}"
        # an underscore outside math must be escaped: check the typewriter names
        for name in re.findall(r"\\texttt\{([^}]*)\}", line):
            assert "_" not in name.replace("\\_", ""), name


# --- Markdown ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "net", ["examples/example1.yaml", "examples/example2.yaml", "UNDERSCORE", "EVERYTHING"]
)
def test_markdown_is_well_formed_with_balanced_math(capsys, net, underscore_net, everything_net):
    path = {"UNDERSCORE": underscore_net, "EVERYTHING": everything_net}.get(net, net)
    md = step(capsys, path, "--format", "markdown", "--steps", "2")
    check_markdown(md)
    assert "### Work: forward" in md or "## Work: forward" in md


def test_markdown_shows_the_conv_line_as_math(capsys):
    md = step(capsys, "examples/example2.yaml", "--format", "markdown")
    assert (
        "- `conv.z[0,0]`: $z_{11} = x_{11}\\cdot k_{11} + x_{12}\\cdot k_{12} + x_{21}\\cdot k_{21}"
        " + x_{22}\\cdot k_{22} + b = 0.2\\times 0.5 + 0.8\\times (-0.3) + 0.6\\times 0.2"
        " + 0.1\\times 0.4 + 0.1 = 0.12$"
    ) in md
    assert "\\frac{\\partial L}{\\partial k_{11}}" in md


def test_markdown_explain_none_leaves_the_work_out(capsys):
    md = step(capsys, "examples/example2.yaml", "--format", "markdown", "--explain", "none")
    assert "Work:" not in md
    check_markdown(md)


# --- LaTeX ---------------------------------------------------------------------------------


@pytest.mark.parametrize("net", ["examples/example1.yaml", "examples/example2.yaml", "UNDERSCORE"])
def test_latex_is_a_well_formed_standalone_document(capsys, net, underscore_net):
    path = underscore_net if net == "UNDERSCORE" else net
    tex = step(capsys, path, "--format", "latex")
    check_latex(tex)
    assert "\\begin{align*}" in tex
    assert "\\frac{\\partial L}{\\partial" in tex


def test_latex_escapes_underscores_and_specials_in_names(capsys, underscore_net):
    tex = step(capsys, underscore_net, "--format", "latex")
    assert "\\texttt{conv\\_1.z}" in tex
    assert "under\\_scored" in tex and "\\& 100\\% specials for \\$5" in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize(
    "net", ["examples/example1.yaml", "examples/example2.yaml", "UNDERSCORE", "EVERYTHING"]
)
def test_latex_compiles_with_pdflatex(capsys, tmp_path, net, underscore_net, everything_net):
    path = {"UNDERSCORE": underscore_net, "EVERYTHING": everything_net}.get(net, net)
    tex = step(capsys, path, "--format", "latex", "--round-each", "4", "--steps", "2")
    check_latex(tex)
    (tmp_path / "step.tex").write_text(tex)
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "step.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "step.pdf").stat().st_size > 1000


# --- every format: conventions first, round-each stated ------------------------------------


def test_every_format_starts_with_the_conventions_block(capsys):
    table = step(capsys, "examples/example1.yaml").splitlines()
    assert table[1] == "Conventions" and table[2].startswith("  loss:")
    md = step(capsys, "examples/example1.yaml", "--format", "markdown").splitlines()
    assert md[2] == "## Conventions" and md[4].startswith("- **loss**:")
    tex = step(capsys, "examples/example1.yaml", "--format", "latex")
    assert tex.index("\\subsection*{Conventions}") < tex.index("\\subsection*{Forward}")
    doc = json.loads(step(capsys, "examples/example1.yaml", "--json"))
    assert list(doc)[:3] == ["bpcalc", "network", "conventions"]


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "latex"])
def test_round_each_is_stated_in_every_format(capsys, fmt):
    out = step(capsys, "examples/example2.yaml", "--format", fmt, "--round-each", "3")
    assert "rounded to 3 decimals" in out
    if fmt == "json":
        doc = json.loads(out)
        assert doc["round_each"] == 3
        assert doc["steps"][0]["values"]["loss"] == 0.465  # −ln(0.628) = 0.46522 → 0.465
    else:
        assert "hand-calculation mode" in out


# --- the command line --------------------------------------------------------------------------


def test_explain_alone_explains_every_small_value_in_the_table_output(capsys):
    out = step(capsys, "examples/example2.yaml", "--explain")
    assert (
        "conv.z[0,0] = x11·k11 + x12·k12 + x21·k21 + x22·k22 + b\n"
        "            = 0.2×0.5 + 0.8×(−0.3) + 0.6×0.2 + 0.1×0.4 + 0.1 = 0.12\n"
    ) in out
    # 4 significant digits: ∂L/∂k11 = 0.0670292 shows as 0.06703
    assert "new.conv.kernel[0,0] = k11 − η·∂L/∂k11 = 0.5 − 0.1 × 0.06703 = 0.4933" in out


def test_explain_alone_before_the_network_file_means_all(capsys):
    out = step(capsys, "--explain", "examples/example1.yaml")
    assert "new.conv.kernel[0,0] = k11 − η·∂L/∂k11 = 0.1 − 0.01 × (−5.5) = 0.155" in out


def test_explain_one_element_shows_only_that_work(capsys):
    out = step(capsys, "examples/example2.yaml", "--explain", "grad.conv.kernel[0,1]")
    assert "grad.conv.kernel[0,1] = ∂L/∂z11 · x12 = 0.3351 × 0.8 = 0.2681" in out
    assert "conv.z[0,0] =" not in out and "grad.conv.kernel[0,0] =" not in out


def test_explain_an_unknown_value_is_a_usage_error(capsys):
    code = run(["step", "examples/example2.yaml", "--explain", "fc.zz"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(
        "bpcalc: error: --explain fc.zz: no value of that name; did you mean fc.z"
    )
    assert "Traceback" not in err


def test_json_gains_the_work_under_each_element_name(capsys):
    doc = json.loads(step(capsys, "examples/example2.yaml", "--json", "--explain", "conv.z"))
    work = doc["steps"][0]["work"]
    assert list(work) == ["conv.z[0,0]"]
    assert work["conv.z[0,0]"]["symbolic"] == "x11·k11 + x12·k12 + x21·k21 + x22·k22 + b"
    assert work["conv.z[0,0]"]["substituted"] == "0.2×0.5 + 0.8×(−0.3) + 0.6×0.2 + 0.1×0.4 + 0.1"
    assert work["conv.z[0,0]"]["result"] == "0.12"
    assert work["conv.z[0,0]"]["value"] == pytest.approx(0.12)
    plain = json.loads(step(capsys, "examples/example2.yaml", "--json"))
    assert "work" not in plain["steps"][0]


def test_decimals_apply_to_the_substituted_numbers(capsys):
    # p1 = e^0.072 / (e^0.072 + e^0.594) = 1 / (1 + e^0.522) = 1 / 2.6853951 = 0.3723847
    out = step(capsys, "examples/example2.yaml", "--explain", "grad.fc.z[0]", "--decimals", "6")
    assert "grad.fc.z[0] = p1 − y1 = 0.372385 − 0 = 0.372385" in out


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "latex"])
def test_stage_and_only_filter_every_format(capsys, fmt):
    out = step(
        capsys,
        "examples/example2.yaml",
        "--format",
        fmt,
        "--stage",
        "backward",
        "--only",
        "grad.conv.*",
        "--explain",
        "all",
    )
    assert "grad.conv.kernel" in out
    assert "fc.z" not in out and "grad.fc" not in out and "new.conv" not in out
    if fmt == "json":
        doc = json.loads(out)
        assert set(doc["steps"][0]["work"]) >= {"grad.conv.kernel[0,1]", "grad.conv.bias"}
        assert all(k.startswith("grad.conv.") for k in doc["steps"][0]["work"])


def test_explaining_a_filtered_out_value_warns(capsys):
    code = run(["step", "examples/example2.yaml", "--stage", "forward", "--explain", "loss"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "loss hidden by --stage/--only" in out.err


def test_step_help_shows_the_explain_examples(capsys):
    assert run(["step", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--explain" in out and "--format markdown" in out and "--round-each" in out
