"""One table printer for every command that prints a table (evaluate, bench, train).

A table is a list of :class:`Column` and rows of values; each cell is the value right-
(or left-) aligned in its column's width with its format, ``-`` for a missing value::

    print_table([Column("model", 24, align="<"), Column("pitch CE", 9, ".3f")],
                [["default", 2.602]])
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """A column: its title, width and how its values are written."""

    title: str
    width: int
    format: str = ""  # a format spec after the width: ".3f", ",", ""
    align: str = ">"
    suffix: str = ""  # written after the value, within the width (e.g. "%")
    scale: float = 1  # the value is multiplied by this first (100 for a percentage)

    def __post_init__(self):
        if self.align not in "<>^" or len(self.align) != 1:
            raise ValueError(f"align must be <, > or ^, got {self.align!r}")
        if self.width < 1:
            raise ValueError(f"width must be at least 1, got {self.width}")

    def head(self) -> str:
        return f"{self.title:{self.align}{self.width}}"

    def cell(self, value) -> str:
        """The value as this column writes it (None: ``-``; a string as it is)."""
        if value is None:
            value = "-"
        if isinstance(value, str):
            return f"{value:{self.align}{self.width}}"
        if self.scale != 1:
            value = value * self.scale
        width = self.width - len(self.suffix)
        return f"{value:{self.align}{width}{self.format}}{self.suffix}"


def format_head(columns: list[Column]) -> str:
    """The header line."""
    return " ".join(c.head() for c in columns)


def format_row(columns: list[Column], row) -> str:
    """One row's line (a table printed as its rows come: a header first, then each row)."""
    return " ".join(c.cell(v) for c, v in zip(columns, row, strict=True))


def format_table(columns: list[Column], rows, rule: bool = True) -> list[str]:
    """Return the table's lines: the header, a rule as wide (if ``rule``), the rows."""
    head = format_head(columns)
    return [head] + (["-" * len(head)] if rule else []) + [format_row(columns, r) for r in rows]


def print_table(columns: list[Column], rows, rule: bool = True, flush: bool = False) -> None:
    """Print :func:`format_table`'s lines."""
    for line in format_table(columns, rows, rule):
        print(line, flush=flush)
