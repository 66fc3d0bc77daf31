"""Shared test fixtures: a private cache folder, and the real SFEW frames where they are on this machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def sfew_images_folder() -> Path:
    """The real SFEW Images folder (<Class>/<Movie>_<clip>_<frame>.png): $FEXPRUNE_SFEW, else ~/sfew/Images."""
    return Path(os.environ.get("FEXPRUNE_SFEW") or Path.home() / "sfew" / "Images").expanduser()


def pytest_configure(config):
    """The weights `fexprune weights fetch` put in the user's cache, named before any fixture (module-scoped
    ones too) points FEXPRUNE_CACHE at a private folder: tests only read them."""
    from fexprune.weights import weights_root

    os.environ.setdefault("FEXPRUNE_WEIGHTS", str(weights_root()))


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own FEXPRUNE_CACHE so tests never touch the user's cache; the weights
    `fexprune weights fetch` put there stay visible (FEXPRUNE_WEIGHTS), since tests only read them."""
    from fexprune.weights import weights_root

    monkeypatch.setenv("FEXPRUNE_WEIGHTS", str(weights_root()))
    root = tmp_path_factory.getbasetemp() / "fexprune-cache"
    monkeypatch.setenv("FEXPRUNE_CACHE", str(root))
    return root


@pytest.fixture
def sfew_images() -> Path:
    """The real SFEW frames; the test is skipped, saying where it looked, where they are absent."""
    folder = sfew_images_folder()
    if not folder.is_dir():
        where = "FEXPRUNE_SFEW" if os.environ.get("FEXPRUNE_SFEW") else "FEXPRUNE_SFEW unset, default"
        pytest.skip(f"real SFEW frames not found at {folder} ({where}); set FEXPRUNE_SFEW to the SFEW Images folder")
    return folder
