"""The start-up rows' reference: rich alone drawing the tables of `bpcalc step` (bench/run.py).

    python bench/rich_tables.py TABLES.json

Imports what the import floor imports (numpy, rich, typer, yaml), then rich.console and
rich.table, and prints the header and the tables described in TABLES.json (made by
write_example1 from bpcalc's own renderer: titles, columns with their justification, style and
wrapping, and every cell as text) on a Console set up as bpcalc's. No parsing, no maths: what
is left is what any program pays to draw those tables with rich, the least a `bpcalc step`
that draws them with rich can take.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy  # noqa: F401  (the import floor)
import rich  # noqa: F401
import typer  # noqa: F401
import yaml  # noqa: F401
from rich.console import Console
from rich.table import Table
from rich.text import Text


def write_example1(path: Path, example: Path, width: int = 80) -> None:
    """Write example 1's header and tables, as bpcalc's renderer builds them, as plain data for
    main() below (the rich-alone reference)."""
    from bpcalc import engine
    from bpcalc.network.parse import load_network
    from bpcalc.render import tables

    trace = engine.run(load_network(str(example)))
    header = tables.header_lines(trace, width)
    doc = {"header": header, "tables": []}
    for t in tables.step_tables(trace.steps[0], None, False, lambda r: True, width):
        columns = [
            (str(c.header), c.justify, str(c.style), bool(c.no_wrap), c.width) for c in t.columns
        ]
        cells = [[str(cell) for cell in c._cells] for c in t.columns]
        doc["tables"].append(
            {
                "title": str(t.title),
                "show_lines": t.show_lines,
                "columns": columns,
                "rows": [list(row) for row in zip(*cells, strict=True)],
            }
        )
    path.write_text(json.dumps(doc), encoding="utf-8")


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    console = Console(soft_wrap=False, highlight=False, emoji=False, markup=False)
    for line, style in doc["header"]:
        console.print(Text(line, style=style))
    for spec in doc["tables"]:
        table = Table(title=spec["title"], title_justify="left", show_lines=spec["show_lines"])
        for header, justify, style, no_wrap, width in spec["columns"]:
            table.add_column(header, justify=justify, style=style, no_wrap=no_wrap, width=width)
        for row in spec["rows"]:
            table.add_row(*(Text(cell) for cell in row))  # bpcalc's cells are never markup
        console.print(table)


if __name__ == "__main__":
    main()
