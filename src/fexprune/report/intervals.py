"""How far a test accuracy measured on n images could be from the network's true accuracy: the Wilson
score interval for a binomial proportion, drawn around accuracies in the figures so that a difference of
an image or two does not look like a gap."""

from __future__ import annotations

import math

Z95 = 1.959964  # two-sided 95%


def wilson(accuracy: float, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) of the 95% Wilson interval of `accuracy` (a fraction) measured on `n` images."""
    if n <= 0 or not math.isfinite(accuracy):
        return float("nan"), float("nan")
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    # at 0 or 1 rounding could put a bound a hair past the accuracy itself: the interval always holds it
    return max(0.0, min(accuracy, centre - half)), min(1.0, max(accuracy, centre + half))


def wilson_errors(accuracies: list[float], n: int, scale: float = 1.0) -> list[list[float]]:
    """matplotlib's `yerr` for `accuracies` (fractions) shown times `scale`: [below], [above]."""
    bounds = [wilson(a, n) for a in accuracies]
    return [[scale * (a - low) for a, (low, _) in zip(accuracies, bounds)],
            [scale * (high - a) for a, (_, high) in zip(accuracies, bounds)]]
