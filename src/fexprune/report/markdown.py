"""Render a `Report` as Markdown (GitHub tables); figures are links relative to the report's folder."""

from __future__ import annotations

import os
from pathlib import Path

from fexprune import runs
from fexprune.report.tables import Figure, KeyValues, Report, Table, Text


def render_markdown(report: Report, base: Path | None = None) -> str:
    """`base` is the folder the .md file lives in; figure paths are written relative to it."""
    lines = [f"# {report.title}", ""]
    if report.subtitle:
        lines += [f"_{report.subtitle}_", ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _block(block, base) + [""]
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(path: Path, report: Report) -> Path:
    path = Path(path)
    runs.atomic_write_bytes(path, runs.printable(render_markdown(report, path.parent)).encode("utf-8"))  # non-UTF-8 file names escaped
    return path


def _block(block, base: Path | None) -> list[str]:
    if isinstance(block, Table):
        header = [_cell(c.label) for c in block.columns]
        align = ["---" if c.kind == "key" else "---:" for c in block.columns]
        lines = [f"**{block.title}**", "", _row(header), _row(align)]
        lines += [_row([_cell(cell) for cell in row]) for row in block.cells()]
        if block.note:
            lines += ["", f"_{block.note}_"]
        return lines
    if isinstance(block, Figure):
        target = Path(block.path)
        if base is not None:
            target = Path(os.path.relpath(target.resolve(), Path(base).resolve()))
        caption = f"{block.title}" + (f" — {block.caption}" if block.caption else "")
        return [f"![{block.title}]({target.as_posix()})", "", f"_{caption}_"]
    if isinstance(block, KeyValues):
        return [f"**{block.title}**", ""] + [f"- **{k}**: {_cell(v)}" for k, v in block.items]
    if isinstance(block, Text):
        return [block.body]
    raise TypeError(f"cannot render {type(block).__name__}")


def render_table(table: Table) -> str:
    """One table as Markdown, e.g. for a command to print."""
    return "\n".join(_block(table, None)) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(value: str) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
