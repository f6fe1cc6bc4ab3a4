"""Fitting text to the terminal: tables whose columns are measured before they are drawn,
and prose that wraps at word boundaries with a hanging indent.

A table is drawn only when every number column gets its widest line and the one prose
column (a formula, a rule) gets at least FLEX_MIN characters; otherwise the caller switches
to a layout that fits (rich would squeeze the columns: ellipsized numbers, a zero-width
column, a formula one word a line). Every string reaches rich as a Text, never as console
markup, so a formula's [y · ln(p) + …] is printed, not eaten.

In a pipe (not a terminal, no COLUMNS given) prose is not wrapped at all: the reader's pager
or editor wraps it, and a grep finds a whole line.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

FLEX_MIN = 24  # a prose column narrower than this reads one word a line
BORDER = 3  # each column adds one border and two spaces of padding (plus one at the edge)

Cell = str | Text
Justify = Literal["left", "right", "center"]


@dataclass(frozen=True)
class Column:
    header: str
    justify: Justify = "left"
    style: str | None = None
    prose: bool = False  # wraps at word boundaries; every other column keeps its lines whole


def text(cell: Cell, style: str | None = None) -> Text:
    """A cell as rich Text, never parsed as markup."""
    if isinstance(cell, Text):
        return cell
    return Text(cell, style=style or "")


def widest(cell: Cell) -> int:
    plain = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in plain.split("\n")), default=0)


def longest_word(cell: Cell) -> int:
    plain = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(w) for w in plain.split()), default=0)


def table_width(widths: Sequence[int]) -> int:
    return sum(widths) + BORDER * len(widths) + 1


def column_widths(
    columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int
) -> list[int] | None:
    """Each column's width, or None when the table cannot fit in `width` without cutting a
    line of a fixed column or squeezing a prose column below FLEX_MIN (or its longest word)."""
    natural = []
    least = []
    for j, col in enumerate(columns):
        cells = [r[j] for r in rows]
        nat = max([widest(col.header), *(widest(c) for c in cells)])
        natural.append(max(nat, 1))
        if col.prose:
            word = max([longest_word(col.header), *(longest_word(c) for c in cells)])
            least.append(min(nat, max(FLEX_MIN, word)))
        else:
            least.append(nat)
    if table_width(least) > width:
        return None
    spare = width - table_width(least)
    widths = list(least)
    for j, col in enumerate(columns):  # the prose columns take what is left, in order
        if col.prose and spare > 0:
            grow = min(natural[j] - widths[j], spare)
            widths[j] += grow
            spare -= grow
    return widths


def fitted_table(
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    show_lines: bool = True,
    row_styles: Sequence[str | None] | None = None,
) -> Table | None:
    """A rich Table with every column at a measured width, or None when it cannot fit."""
    widths = column_widths(columns, rows, width)
    if widths is None:
        return None
    t = Table(title=Text(title) if title else None, title_justify="left", show_lines=show_lines)
    for col, w in zip(columns, widths, strict=True):
        t.add_column(
            Text(col.header),
            justify=col.justify,
            style=col.style,
            width=w,
            no_wrap=not col.prose,
            overflow="fold",
        )
    for i, row in enumerate(rows):
        style = row_styles[i] if row_styles else None
        t.add_row(*(text(c) for c in row), style=style)
    return t


def wrap(line: str, width: int | None, indent: int = 0, hanging: int = 2) -> list[str]:
    """One line of prose at `indent` spaces, continued `hanging` spaces further in, broken
    at spaces only (a word longer than the line is left whole); width None: not wrapped."""
    first = " " * indent
    if width is None or cell_len(first + line) <= width:
        return [first + line]
    w = textwrap.TextWrapper(
        width=max(width, indent + hanging + 10),
        initial_indent=first,
        subsequent_indent=" " * (indent + hanging),
        break_long_words=False,
        break_on_hyphens=False,
    )
    return w.wrap(line) or [first]


class Out:
    """Where the renderers print: a rich Console, and whether prose wraps at its width
    (a terminal) or not at all (a pipe)."""

    def __init__(self, console: Console, wrap_prose: bool | None = None) -> None:
        self.console = console
        self.wrap_prose = console.is_terminal if wrap_prose is None else wrap_prose

    @property
    def width(self) -> int:
        return self.console.width

    def prose(self, line: str, *, indent: int = 0, hanging: int = 2, style: str = "") -> None:
        """A line of words: wrapped at word boundaries with a hanging indent, in a terminal."""
        for part in wrap(line, self.width if self.wrap_prose else None, indent, hanging):
            self.line(part, style=style)

    def line(self, line: str | Text, *, style: str = "") -> None:
        """A line printed as it is: never wrapped, never cut, never read as markup."""
        self.console.print(text(line, style), soft_wrap=True)

    def block(self, lines: str, *, indent: int = 0, style: str = "") -> None:
        """Lines of a number grid, indented."""
        for part in lines.split("\n"):
            self.line(" " * indent + part, style=style)

    def print(self, renderable: Any) -> None:
        self.console.print(renderable)
