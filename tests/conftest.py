"""Fixtures shared by the whole suite: where the real LLP annotation files are."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
LLP_DIR = SHARED / "llp"


@pytest.fixture(scope="session")
def llp_dir() -> Path:
    """The folder with the real LLP annotation files (../shared/llp beside the checkout)."""
    if not (LLP_DIR / "AVVP_test_pd.csv").is_file():
        pytest.skip(f"real LLP annotations not found at {LLP_DIR}")
    return LLP_DIR
