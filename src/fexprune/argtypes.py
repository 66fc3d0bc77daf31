"""Types for command-line values: each turns text into a checked value or says in one line what is wrong."""

from __future__ import annotations

import argparse
import math


def _parsed(text: str, cast, message: str):
    """`cast(text)`, or the one line argparse prints when it is not a number."""
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None


def positive_int(text: str) -> int:
    value = _parsed(text, int, f"not a whole number: {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def non_negative_int(text: str) -> int:
    """A count where 0 means "none", e.g. fine-tuning epochs."""
    value = _parsed(text, int, f"not a whole number: {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text}")
    return value


def channels_pair(text: str) -> tuple[int, int]:
    """'16,32' -> (16, 32)."""
    parts = text.replace("x", ",").split(",")
    try:
        c1, c2 = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two channel counts like 16,32, got {text!r}") from None
    if c1 < 1 or c2 < 1:
        raise argparse.ArgumentTypeError(f"channel counts must be positive: {text}")
    return c1, c2


def fraction(text: str) -> float:
    """A number strictly between 0 and 1, e.g. a test fraction."""
    value = _parsed(text, float, f"not a number: {text!r}")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1: {text}")
    return value


def margin(text: str) -> float:
    value = _parsed(text, float, f"expected a number like 0.2, got {text!r}")
    if not 0 <= value <= 2:
        raise argparse.ArgumentTypeError(f"a margin is a fraction of the box's side between 0 and 2, got {text}")
    return value


def weight(text: str) -> float:
    """A number from 0 to 1 inclusive, e.g. the weight of one term of a loss."""
    value = _parsed(text, float, f"not a number: {text!r}")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1: {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number of 0 or more, e.g. a loss increase allowed."""
    value = _parsed(text, float, f"not a number: {text!r}")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of 0 or more: {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0, e.g. a learning rate: nan, inf or -1 would train to NaN or not at all."""
    value = _parsed(text, float, f"not a number: {text!r}")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0: {text}")
    return value


def seed_number(text: str) -> int:
    """A seed NumPy and PyTorch both take: a whole number 0 .. 2**32 - 1."""
    value = _parsed(text, int, f"not a whole number: {text!r}")
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 4294967295: {text}")
    return value
