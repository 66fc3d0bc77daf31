"""Feature tables (SFEW.xlsx as users have it, or CSV) read into a checked numeric matrix.

SFEW.xlsx has a file-name column, a label column (1..7) and ten values (5 LPQ + 5 PHOG PCA
components) under one or two header rows with merged or empty cells. Rather than trust a fixed
layout we treat leading rows that are not mostly numeric as headers and join their texts into
column names ("LPQ features 1"). Missing or non-numeric cells are reported (file row, column) and
imputed with the column mean; rows without a label are dropped and listed, never silently.
"""

from __future__ import annotations

import csv
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from fexprune.errors import InputError

ColumnRef = int | str  # a 0-based position or a column name
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
CSV_DELIMITERS = ",;\t|"


@dataclass
class FeatureTable:
    """Rows of one table: names, 1-based labels and float features (after imputation)."""

    names: list[str]
    labels: np.ndarray  # (N,) int, 1..n_classes
    features: np.ndarray  # (N, F) float64, no NaN
    feature_names: list[str]
    label_name: str = "label"
    source: str = ""
    missing: list[tuple[int, str]] = field(default_factory=list)  # (file row, 1-based; column) imputed
    dropped_rows: list[int] = field(default_factory=list)  # file rows (1-based) without a label
    left_out: list[str] = field(default_factory=list)  # columns neither name, label nor feature (why, in words)
    file_rows: list[int] = field(default_factory=list)  # each row's row in the file (1-based); empty if not from a file

    def inputs(self, include_label: bool = True) -> np.ndarray:
        """The autoencoder's inputs: label first (as the paper's 11 columns), then the features."""
        if not include_label:
            return self.features.copy()
        return np.column_stack([self.labels.astype(np.float64), self.features])

    def input_names(self, include_label: bool = True) -> list[str]:
        return ([self.label_name] if include_label else []) + list(self.feature_names)

    def without(self, indices: Sequence[int]) -> FeatureTable:
        """The table less the rows at `indices` (positions), their imputed cells forgotten with them."""
        keep = np.setdiff1d(np.arange(len(self.names)), np.asarray(list(indices), dtype=np.int64))
        file_rows = [self.file_rows[k] for k in keep] if self.file_rows else []
        gone = {self.file_rows[k] for k in indices} if self.file_rows else set()
        return replace(self, names=[self.names[k] for k in keep], labels=self.labels[keep], features=self.features[keep],
                       file_rows=file_rows, missing=[(r, c) for r, c in self.missing if r not in gone])

    def missing_summary(self) -> str:
        if not self.missing and not self.dropped_rows and not self.left_out:
            return "no missing values"
        parts = []
        if self.missing:
            cells = ", ".join(f"row {r} {c!r}" for r, c in self.missing[:20])
            more = f" and {len(self.missing) - 20} more" if len(self.missing) > 20 else ""
            parts.append(f"{len(self.missing)} missing value(s) imputed with the column mean: {cells}{more}")
        if self.dropped_rows:
            parts.append(f"{len(self.dropped_rows)} row(s) without a label dropped: {self.dropped_rows[:20]}")
        if self.left_out:
            parts.append(f"column(s) left out: {'; '.join(self.left_out)}")
        return "; ".join(parts)


def read_feature_table(
    path: str | Path,
    *,
    name_column: ColumnRef | None = 0,
    label_column: ColumnRef = 1,
    feature_columns: Sequence[ColumnRef] | None = None,
    n_classes: int = 7,
    sheet: int | str = 0,
    delimiter: str | None = None,
) -> FeatureTable:
    """Read an .xlsx or CSV feature table; `feature_columns` defaults to every other numeric column."""
    path = Path(path)
    raw = _read_raw(path, sheet, delimiter)
    names, body = _split_header(raw, path)
    columns = list(range(body.shape[1]))

    def resolve(ref: ColumnRef) -> int:
        if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
            if not 0 <= ref < len(columns):
                raise InputError(f"column position {ref} out of range (the table has {len(columns)} columns)", path)
            return int(ref)
        text = str(ref).strip().lower()
        matches = [k for k, n in enumerate(names) if n.lower() == text]
        if not matches and text.isdigit():
            return resolve(int(text))
        if len(matches) != 1:
            raise InputError(f"no single column named {ref!r} (columns: {', '.join(names)})", path)
        return matches[0]

    numeric = body.apply(lambda col: pd.to_numeric(col.astype(str).str.strip(), errors="coerce"))
    label_index = resolve(label_column)
    name_index = resolve(name_column) if name_column is not None else None
    if feature_columns is None:
        share = numeric.notna().mean(axis=0)
        chosen = [k for k in columns if k not in (label_index, name_index) and share[k] >= 0.5]
    else:
        chosen = [resolve(ref) for ref in feature_columns]
        for k in chosen:
            if numeric[k].notna().mean() < 0.5:
                raise InputError(f"column {names[k]!r} is not numeric", path)
    if not chosen:
        raise InputError("no numeric feature columns found", path)
    left_out = []  # a column dropped without a word once read as "no missing values"
    for k in columns if feature_columns is None else []:  # columns asked for by name are the user's choice
        if k not in (label_index, name_index) and k not in chosen:
            filled = body[k].map(lambda v: not _blank(v)).sum()
            left_out.append(f"{names[k]!r} (no values)" if filled == 0 else
                            f"{names[k]!r} ({int(numeric[k].notna().sum())} of {int(filled)} values numeric)")

    file_rows = body.index.to_numpy() + 1  # 1-based, as a spreadsheet or editor shows them
    labels = numeric[label_index].to_numpy()
    no_label = np.isnan(labels)
    if no_label.all():
        raise InputError(f"label column {names[label_index]!r} has no numeric values", path)
    keep = ~no_label
    labels = labels[keep]
    bad = (labels != np.round(labels)) | (labels < 1) | (labels > n_classes)
    if bad.mean() > 0.5:  # not a few typos: this column holds no labels at all
        raise InputError(
            f"column {names[label_index]!r} should hold the labels 1..{n_classes} but holds "
            f"{labels[bad][:3].tolist()}...: is the label column missing?", path
        )
    if bad.any():
        rows = file_rows[keep][bad][:10].tolist()
        raise InputError(
            f"labels must be whole numbers 1..{n_classes}; rows {rows} have {labels[bad][:10].tolist()}", path
        )
    values = numeric[chosen].to_numpy(dtype=np.float64)[keep]
    kept_rows = file_rows[keep]
    holes = np.argwhere(np.isnan(values))
    missing = [(int(kept_rows[r]), names[chosen[c]]) for r, c in holes]
    empty = [names[chosen[c]] for c in np.flatnonzero(np.isnan(values).all(axis=0))]
    if empty:
        raise InputError(f"column(s) {empty} have no numeric values", path)
    infinite = np.argwhere(np.isinf(values))
    if infinite.size:  # the network would train to NaN losses on it
        cells = ", ".join(f"row {int(kept_rows[r])} {names[chosen[c]]!r}" for r, c in infinite[:10])
        raise InputError(f"infinite value(s) in the table: {cells}; every value must be a finite number", path)
    if holes.size:
        values[holes[:, 0], holes[:, 1]] = np.nanmean(values, axis=0)[holes[:, 1]]
    if name_index is not None:
        row_names = [str(v) for v in body[name_index].to_numpy()[keep]]
    else:
        row_names = [str(r) for r in kept_rows]
    return FeatureTable(
        names=row_names,
        labels=labels.astype(np.int64),
        features=values,
        feature_names=sfew_feature_names([names[k] for k in chosen]),
        label_name=names[label_index],
        source=str(path),
        missing=missing,
        dropped_rows=[int(r) for r in file_rows[no_label]],
        left_out=left_out,
        file_rows=[int(r) for r in kept_rows],
    )


def sfew_feature_names(names: list[str]) -> list[str]:
    """SFEW.xlsx's layout (five LPQ columns, then five PHOG, under group titles spanning them) gets the
    names LPQ 1..5, PHOG 1..5 as features computed from images have; other tables keep their header."""
    if len(names) == 10 and "LPQ" in " ".join(names[:5]) and "PHOG" in " ".join(names[5:]) \
            and "PHOG" not in " ".join(names[:5]) and "LPQ" not in " ".join(names[5:]):
        return [f"LPQ {i}" for i in range(1, 6)] + [f"PHOG {i}" for i in range(1, 6)]
    return names


def _read_raw(path: Path, sheet: int | str, delimiter: str | None) -> pd.DataFrame:
    """Every cell as read, no header interpretation; empty rows and columns removed."""
    if path.is_dir():
        raise InputError("is a folder, not a feature table (give SFEW.xlsx or a CSV file; --data takes an image folder)", path)
    if not path.is_file():
        raise InputError("file not found", path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if path.suffix.lower() in EXCEL_SUFFIXES or head.startswith(b"PK\x03\x04"):
        try:
            with warnings.catch_warnings():  # SFEW.xlsx holds an extension openpyxl skips; its cells read all the same
                warnings.filterwarnings("ignore", message="Unknown extension is not supported")
                _check_sheet_size(path, sheet)
                raw = pd.read_excel(path, sheet_name=sheet, header=None)
        except InputError:
            raise
        except Exception as error:  # openpyxl/zipfile raise many kinds
            raise InputError(f"not a readable spreadsheet ({type(error).__name__}: {error})", path) from None
    else:
        raw = _read_csv(path, delimiter)
    raw = raw.dropna(how="all").dropna(axis=1, how="all")
    if raw.empty:
        raise InputError("the table is empty", path)
    raw.columns = range(raw.shape[1])
    return raw  # index: 0-based row in the file


MAX_SHEET_COLUMNS = 1000
MAX_SHEET_CELLS = 20_000_000


def _check_sheet_size(path: Path, sheet: int | str) -> None:
    """Refuse a sheet whose used range is larger than any feature table before pandas builds a frame of it:
    one stray cell at column XFD makes a 15 KB workbook a frame of gigabytes. The range is the sheet's own
    record of it, or (where it has none) found by reading the cells, never holding them."""
    import openpyxl

    if not zipfile.is_zipfile(path):
        return  # an .xls (xlrd's): no used range to read first
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheets = book.worksheets
        ws = book[sheet] if isinstance(sheet, str) else sheets[sheet] if 0 <= sheet < len(sheets) else None
        if ws is None:
            return  # pandas names the missing sheet
        if ws.max_row is None or ws.max_column is None:
            ws.reset_dimensions()
            ws.calculate_dimension(force=True)
        rows, columns = ws.max_row or 0, ws.max_column or 0
        if columns > MAX_SHEET_COLUMNS or rows * columns > MAX_SHEET_CELLS:
            raise InputError(f"sheet {ws.title!r} spans {rows:,} rows x {columns:,} columns, "
                             f"more than a feature table (at most {MAX_SHEET_COLUMNS} columns, {MAX_SHEET_CELLS:,} cells); "
                             "delete the stray cells far from the table", path)
    finally:
        book.close()


def _read_csv(path: Path, delimiter: str | None) -> pd.DataFrame:
    try:
        sample = path.read_bytes()[:65536].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not a table: neither a spreadsheet nor UTF-8 text", path) from None
    if "\x00" in sample:
        raise InputError("not a table: binary file", path)
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
        except csv.Error:
            delimiter = ","
    try:
        raw = pd.read_csv(path, sep=delimiter, header=None, dtype=str, skipinitialspace=True,
                          encoding="utf-8-sig", engine="python", skip_blank_lines=False)
    except (pd.errors.ParserError, ValueError) as error:
        raise InputError(f"not a readable CSV with delimiter {delimiter!r} ({error})", path) from None
    if raw.shape[1] == 1:
        others = [d for d in CSV_DELIMITERS if d != delimiter and d in sample]
        tried = " ".join(repr(d) for d in CSV_DELIMITERS)
        hint = f"; it looks {others[0]!r}-separated" if others else f"; separate the columns with one of {tried}"
        raise InputError(f"only one column with delimiter {delimiter!r}{hint}", path)
    return raw


_MISSING_TOKENS = {"nan", "na", "n/a", "null", "none", "-", "?", "#n/a"}


def _numeric_cells(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.apply(lambda col: pd.to_numeric(col.astype(str).str.strip(), errors="coerce")).notna()


def _split_header(raw: pd.DataFrame, path: Path) -> tuple[list[str], pd.DataFrame]:
    """Column names joined from the leading header rows, and the body (index: 0-based file row).

    A leading row is a header when, in a column that is mostly numeric, it holds text that is not
    a missing-value marker (the "label" in "Name, label, 1..5"), or when it is blank in all such
    columns (a title row). So a second header row of numbers 1..5 is still a header.
    """
    numeric = _numeric_cells(raw)
    blank = raw.map(_blank)
    text = ~numeric & ~blank & ~raw.map(lambda v: str(v).strip().lower() in _MISSING_TOKENS)
    numeric_columns = numeric.sum(axis=0) >= 0.5 * (~blank).sum(axis=0).clip(lower=1)
    numeric_columns &= numeric.sum(axis=0) > 0
    if not numeric_columns.any():
        raise InputError("no numeric columns: not a feature table", path)
    first = 0
    while first < min(len(raw), 10):
        in_numeric = numeric_columns.to_numpy()
        row_text = text.iloc[first].to_numpy()[in_numeric]
        row_blank = blank.iloc[first].to_numpy()[in_numeric]
        if not (row_text.any() or row_blank.all()):
            break
        first += 1
    if first == len(raw):
        raise InputError("no numeric rows: not a feature table", path)
    names = []
    for k in range(raw.shape[1]):
        parts = []
        for r in range(first):
            row = raw.iloc[r].tolist()
            cell = row[k]
            if _blank(cell) and r < first - 1:  # a merged group title spans the blanks to its right
                left = [v for v in row[k::-1] if not _blank(v)]
                cell = left[0] if left else None
            if not _blank(cell):
                parts.append(_cell_text(cell))
        names.append(" ".join(parts) if parts else f"column {k}")
    seen: dict[str, int] = {}
    for k, name in enumerate(names):  # make names unique so they can be picked
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[k] = f"{name} ({seen[name]})"
    return names, raw.iloc[first:]


def _blank(value: object) -> bool:
    try:
        if pd.isna(value):
            return True
    except (TypeError, ValueError):
        pass
    return str(value).strip() == ""


def _cell_text(value: object) -> str:
    """Header text; a whole number read as float (2.0, from a column with blanks) prints as 2."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()
