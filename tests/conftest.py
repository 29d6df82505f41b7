"""Shared fixtures: where the real test assets live, tiny networks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
REALDATA = (REPO / ".." / "shared" / "realdata").resolve()


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real assets folder (``../shared/realdata``); skips when absent (a user's fresh clone)."""
    if not REALDATA.is_dir():
        pytest.skip(f"real test assets not found at {REALDATA}")
    return REALDATA


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
