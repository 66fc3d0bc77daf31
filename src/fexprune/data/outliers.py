"""Rows of a feature table that look malformed rather than unusual: a value far outside its column, or
most of the row missing (and so made up by imputation).

The test is robust: each column is centred on its median and scaled by its median absolute deviation
(MAD), so the outliers themselves do not widen the yardstick as they widen a mean and sd. A robust
z of 3.5 is the usual "look at it" level (Iglewicz and Hoaglin); the default flag level is 10, far
past what a bell-shaped column produces (a normal variable passes 10 sd about once in 1e23 draws),
so only values that cannot be ordinary tails are flagged. A column with MAD 0 (mostly one value) is
scaled by its mean absolute deviation instead, and skipped if that is 0 too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the command line reads ROBUST_Z: no pandas for that
    from fexprune.data.tables import FeatureTable

ROBUST_Z = 10.0  # flag a value this many robust sds from its column's median
MISSING_SHARE = 0.5  # flag a row with at least this share of its features missing (imputed)
MAD_TO_SD = 1.4826  # MAD * 1.4826 estimates the sd of a normal column


@dataclass(frozen=True)
class Outlier:
    """One flagged row: its position in the table, its name, its file row and why it was flagged."""

    index: int
    name: str
    file_row: int | None
    reasons: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"name": self.name, "file_row": self.file_row, "reasons": list(self.reasons)}


def robust_z(values: np.ndarray) -> np.ndarray:
    """(value - column median) / (1.4826 * column MAD), column by column; 0 where a column has no spread."""
    centre = np.median(values, axis=0)
    deviation = np.abs(values - centre)
    scale = MAD_TO_SD * np.median(deviation, axis=0)
    fallback = 1.2533 * deviation.mean(axis=0)  # the mean absolute deviation scaled to a normal's sd
    scale = np.where(scale > 0, scale, fallback)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, (values - centre) / scale, 0.0)
    return z


def find_outliers(table: FeatureTable, z_limit: float = ROBUST_Z, missing_share: float = MISSING_SHARE) -> list[Outlier]:
    """Rows with any feature beyond `z_limit` robust sds, or with at least `missing_share` of their features
    missing in the file (those were imputed with the column mean: a row made up more than measured); the
    furthest out first."""
    z = robust_z(table.features)
    file_rows = list(table.file_rows) if table.file_rows else [None] * len(table.names)
    missing_by_row: dict[int, list[str]] = {}
    for row, column in table.missing:
        missing_by_row.setdefault(row, []).append(column)
    n_features = table.features.shape[1]
    found = []
    for index, name in enumerate(table.names):
        reasons = []
        for column in np.flatnonzero(np.abs(z[index]) > z_limit):
            reasons.append(f"{table.feature_names[column]} = {table.features[index, column]:.4g} "
                           f"(robust z {z[index, column]:+.0f})")
        missing = missing_by_row.get(file_rows[index], []) if file_rows[index] is not None else []
        if missing and len(missing) >= missing_share * n_features:
            reasons.append(f"{len(missing)} of {n_features} features missing (imputed)")
        if reasons:
            found.append((float(np.abs(z[index]).max()), Outlier(index, name, file_rows[index], tuple(reasons))))
    return [outlier for _, outlier in sorted(found, key=lambda pair: -pair[0])]


def rule_text(z_limit: float = ROBUST_Z, missing_share: float = MISSING_SHARE) -> str:
    return (f"a row is flagged when a feature is more than {z_limit:g} robust sds (median, 1.4826 * MAD) from its "
            f"column's median, or when {missing_share:.0%} or more of its features are missing")


def describe(outliers: list[dict]) -> list[str]:
    """One line per flagged row (as `Outlier.as_dict` gives them): name, file row and reasons."""
    return [o["name"] + (f" (row {o['file_row']})" if o.get("file_row") is not None else "") + ": " + "; ".join(o["reasons"])
            for o in outliers]
