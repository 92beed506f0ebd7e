"""Shared pytest fixtures: where the repository and the real shared data live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
RESOURCES_DATA = REPO_ROOT / "resources" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real data staged beside the repository (``../shared/data``); CI provides it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def resources_data() -> Path:
    """The real data the default configuration ships in ``resources/data``."""
    return RESOURCES_DATA
