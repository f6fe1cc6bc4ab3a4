"""Start-up: each command imports only what it uses. No timings here: these tests
check which modules a run leaves in sys.modules, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Modules `bpcalc step` on a conv-only network with inline numbers never needs: the checker,
# the explanations, training, data files, the other ops, the other output formats.
NOT_FOR_STEP = (
    "bpcalc.check",
    "bpcalc.explain",
    "bpcalc.training",
    "bpcalc.train_cmd",
    "bpcalc.network.datafiles",
    "bpcalc.layers.dense",
    "bpcalc.layers.pool",
    "bpcalc.layers.dropout",
    "bpcalc.layers.batchnorm",
    "bpcalc.render.json_doc",
    "bpcalc.render.markdown",
    "bpcalc.render.latex",
    "bpcalc.render.diagram",
    "bpcalc.render.class_report",
    "bpcalc.teach",
    "drawsvg",
)

_PROBE = """
import contextlib, io, json, sys
from bpcalc.cli import run
with contextlib.redirect_stdout(io.StringIO()):
    code = run(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _modules_after(*argv: str) -> set[str]:
    """The modules imported by one in-process run of `bpcalc argv...` in a fresh Python."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["code"] == 0, proc.stderr
    return set(out["modules"])


def _loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


def test_step_on_example1_imports_only_the_modules_it_uses() -> None:
    modules = _modules_after("step", "examples/example1.yaml")
    assert "bpcalc.layers.conv2d" in modules  # the probe sees what the run imported
    assert "rich.table" in modules
    for package in NOT_FOR_STEP:
        assert _loaded(modules, package) == [], package


def test_step_imports_each_op_when_a_layer_of_its_kind_is_built() -> None:
    # example2 is conv -> relu -> flatten -> dense: dense and flatten are imported, pooling,
    # dropout and batchnorm are not
    modules = _modules_after("step", "examples/example2.yaml", "--json")
    assert "bpcalc.layers.dense" in modules
    assert "bpcalc.layers.flatten" in modules
    assert "bpcalc.layers.pool" not in modules
    assert "bpcalc.layers.dropout" not in modules
    assert "bpcalc.layers.batchnorm" not in modules
    assert "rich.table" not in modules  # JSON output does not need rich's tables


def test_an_svg_diagram_imports_the_drawing_library_and_a_table_does_not() -> None:
    modules = _modules_after("step", "examples/mlp_2_3_1.yaml", "--format", "svg")
    assert "drawsvg" in modules and "bpcalc.render.diagram" in modules
    assert "rich.table" not in modules
    assert _loaded(modules, "bpcalc.teach") == []


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_import_neither_numpy_nor_rich_nor_the_engine(option: str) -> None:
    modules = _modules_after(option)
    for package in ("numpy", "rich.console", "yaml", "bpcalc.engine", "bpcalc.network"):
        assert _loaded(modules, package) == [], package
