"""Shared test fixtures: a private cache folder, and the real SFEW sample where it exists."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own FEXPRUNE_CACHE so tests never touch the user's cache."""
    root = tmp_path_factory.getbasetemp() / "fexprune-cache"
    monkeypatch.setenv("FEXPRUNE_CACHE", str(root))
    return root


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real SFEW sample not present at {SHARED_DATA}")
    return SHARED_DATA
