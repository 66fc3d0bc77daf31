"""A pruning curve over several training runs (the seeds of one configuration): every point (method, MACs
reduction) is measured once per run; here each point gets the mean and the spread over the runs, and the
warnings a reader must see before its numbers (a point that pruned nothing, or missed its MACs target).

The spread is the sample standard deviation (n - 1 in the denominator); with one run it is None.
"""

from __future__ import annotations

import math
import statistics

MEASURES = ("test_accuracy", "test_accuracy_before_finetune", "accuracy_change", "accuracy_change_before_finetune",
            "test_loss", "macs", "macs_ratio", "tp_macs", "tp_macs_ratio", "parameters", "parameters_ratio",
            "latency_ms", "latency_iqr_ms", "latency_change")
NOTHING_PRUNED = 1 - 1e-9  # a MACs ratio at or above this: the network was left whole


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the numbers among `values` (None, NaN and blanks left out)."""
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)]
    if not numbers:
        return None, None
    return statistics.fmean(numbers), (statistics.stdev(numbers) if len(numbers) > 1 else None)


def pruned_nothing(row: dict) -> bool:
    """The point asked for a reduction but kept every MAC (by Torch-Pruning's count where the row has it)."""
    ratio = row.get("tp_macs_ratio", row.get("macs_ratio"))
    return row.get("macs_reduction", 0) > 0 and isinstance(ratio, (int, float)) and ratio >= NOTHING_PRUNED


def missed_target(row: dict) -> bool:
    return row.get("reached_target") is False and not pruned_nothing(row)


def is_pruned_point(row: dict) -> bool:
    """Rows of a criterion or the random baseline; scratch rows train the first criterion's architecture, whose
    own row already carries any warning."""
    return not str(row.get("method", "")).startswith("scratch")


def summarise(rows: list[dict], by: tuple[str, ...] = ("method", "macs_reduction"),
              measures: tuple[str, ...] = MEASURES) -> list[dict]:
    """One row per distinct `by` value, in first-seen order: `n_runs`, `<measure>_mean` and `<measure>_sd` of
    every measure some row has, and the rows' `widths` (one value, or each run's joined by ' | ')."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(key) for key in by), []).append(row)
    summary = []
    for key, members in groups.items():
        out = dict(zip(by, key))
        out["n_runs"] = len(members)
        for measure in measures:
            if any(measure in row for row in members):
                out[f"{measure}_mean"], out[f"{measure}_sd"] = mean_sd([row.get(measure) for row in members])
        widths = list(dict.fromkeys(str(row["widths"]) for row in members if row.get("widths") is not None))
        if widths:
            out["widths"] = " | ".join(widths)
        summary.append(out)
    return summary


def curve_summary(points: list[dict]) -> list[dict]:
    """`summarise` of a curve's per-run points, with each point's warnings and latency flag."""
    summary = summarise(points)
    for out in summary:
        members = [row for row in points if row.get("method") == out["method"] and row.get("macs_reduction") == out["macs_reduction"]]
        out["reached_target"] = all(row.get("reached_target", True) for row in members)
        out["pruned_nothing"] = any(pruned_nothing(row) for row in members)
        out["warnings"] = point_warnings(out["method"], out["macs_reduction"], members)
        flags = [row.get("latency_within_noise") for row in members]
        change, spread = out.get("latency_change_mean"), out.get("latency_change_sd")
        out["latency_within_noise"] = any(flag is True for flag in flags) or (
            change is not None and spread is not None and spread >= abs(change))
    return summary


def point_warnings(method: str, reduction: float, members: list[dict]) -> list[str]:
    """What a reader must know before one point's numbers: in how many runs it pruned nothing or missed its
    MACs target."""
    if not members or not is_pruned_point(members[0]):
        return []
    where = f"{method} at {100 * reduction:g}% MACs removed"
    warnings = []
    nothing = [row for row in members if pruned_nothing(row)]
    if nothing:
        warnings.append(f"{where}: pruned nothing (MACs kept 100%) in {len(nothing)} of {len(members)} run(s); "
                        "the criterion scored no channel it could remove")
    missed = [row for row in members if missed_target(row)]
    if missed:
        kept = max(row.get("macs_ratio", math.nan) for row in missed)
        warnings.append(f"{where}: missed its target in {len(missed)} of {len(members)} run(s): kept up to "
                        f"{100 * kept:.1f}% of the MACs, asked for at most {100 * (1 - reduction):g}%")
    return warnings
