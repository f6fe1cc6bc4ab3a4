"""The tables of the examples, rendered on a fixed-width console, against stored expectations.

When an intended change alters the tables, regenerate with
    BPCALC_UPDATE_GOLDEN=1 uv run pytest tests/test_tables_golden.py
and read the diff before committing it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from bpcalc import engine
from bpcalc.network.parse import load_network
from bpcalc.render import tables

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", ["example1", "example2", "mlp_2_3_1"])
def test_tables_match_the_stored_rendering(name: str) -> None:
    trace = engine.run(load_network(f"examples/{name}.yaml"))
    buf = io.StringIO()
    tables.render(trace, Console(file=buf, width=100, color_system=None, emoji=False))
    got = buf.getvalue()
    path = GOLDEN / f"{name}_tables.txt"
    if os.environ.get("BPCALC_UPDATE_GOLDEN") == "1":
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")
