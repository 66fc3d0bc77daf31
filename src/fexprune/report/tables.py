"""A report's content as plain data: sections of tables, figures, key-value lists and text.

Experiments build a `Report`; `report.html` and `report.markdown` render the same one, so the HTML
page and the Markdown file never disagree. A `Column` knows how to format its values (percent,
fixed decimals, signed difference), so every renderer prints 37.87% the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

Formatter = Callable[[Any], str]


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def number(decimals: int = 4) -> Formatter:
    return lambda value: "–" if _missing(value) else f"{float(value):.{decimals}f}"


def percent(decimals: int = 2) -> Formatter:
    return lambda value: "–" if _missing(value) else f"{100 * float(value):.{decimals}f}%"


def signed(decimals: int = 4, scale: float = 1.0, suffix: str = "") -> Formatter:
    """A difference (ours - paper), with its sign: +0.0123, -1.50 pp."""
    return lambda value: "–" if _missing(value) else f"{scale * float(value):+.{decimals}f}{suffix}"


def mean_std(inner: Formatter) -> Formatter:
    """A (mean, standard deviation) pair as `mean ± sd`, both in `inner`'s format."""

    def format(value: Any) -> str:
        if _missing(value):
            return "–"
        mean, std = value
        return f"{inner(mean)} ± {inner(std)}"

    return format


def text(value: Any) -> str:
    return "–" if _missing(value) else str(value)


@dataclass
class Column:
    key: str
    label: str
    format: Formatter = text
    kind: str = "ours"  # ours | paper | difference | key: renderers may style them apart


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[dict]
    note: str = ""

    def cells(self) -> list[list[str]]:
        return [[column.format(row.get(column.key)) for column in self.columns] for row in self.rows]


@dataclass
class Figure:
    title: str
    path: Path  # a PNG file; HTML embeds its bytes, Markdown links to it
    caption: str = ""


@dataclass
class KeyValues:
    title: str
    items: list[tuple[str, str]]


@dataclass
class Text:
    body: str


Block = Table | Figure | KeyValues | Text


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    title: str
    sections: list[Section] = field(default_factory=list)
    subtitle: str = ""

    def tables(self) -> list[Table]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Table)]

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


def difference(ours: Any, theirs: Any) -> float | None:
    """ours - paper, or None when either is missing."""
    if _missing(ours) or _missing(theirs):
        return None
    return float(ours) - float(theirs)


def comparison_columns(key: str, label: str, kind: str = "loss") -> list[Column]:
    """Ours, the paper's and the difference for one metric; `kind` is "loss" (4 decimals),
    "accuracy" (percent, difference in percentage points) or "angle" (degrees)."""
    if kind == "accuracy":
        ours, diff = percent(), signed(2, 100.0, " pp")
    elif kind == "angle":
        ours, diff = number(2), signed(2)
    else:
        ours, diff = number(4), signed(4)
    return [
        Column(key, f"{label}", ours, "ours"),
        Column(f"paper_{key}", f"{label} (paper)", ours, "paper"),
        Column(f"diff_{key}", "Δ", diff, "difference"),
    ]


def with_differences(rows: list[dict], keys: list[str]) -> list[dict]:
    """Adds `diff_<key>` = `<key>` - `paper_<key>` to a copy of each row."""
    return [row | {f"diff_{key}": difference(row.get(key), row.get(f"paper_{key}")) for key in keys} for row in rows]
