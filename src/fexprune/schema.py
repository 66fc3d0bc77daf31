"""The schema of results.json: which kind of run wrote it and in which version of the format, so readers
(reports, compare, prune) know what they read without guessing from which keys exist."""

from __future__ import annotations

from typing import Any

VERSION = 1
KINDS = ("train", "cv", "baseline", "sweep", "prune", "pic", "reproduce", "prune-curve")


def stamp(results: dict[str, Any], kind: str) -> dict[str, Any]:
    """`results` with its schema entry: {"kind": ..., "version": ...}."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of run {kind!r}")
    return {**results, "schema": {"kind": kind, "version": VERSION}}


def run_kind(results: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    """The kind of run a results.json records; runs written before the schema existed are told apart by
    the keys only they have."""
    schema = results.get("schema")
    if isinstance(schema, dict) and schema.get("kind") in KINDS:
        return schema["kind"]
    if "timings" in results:
        return "reproduce"
    if "combinations" in results:
        return "sweep"
    if "unpruned" in results:
        return "prune"
    if "loss_definition" in results:
        return "pic"
    if results.get("method") == "hog-svm":
        return "baseline"
    if "folds" in results:
        return "cv"
    return "train"
