"""Shared fixtures: where the real test assets live, tiny networks."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
REALDATA = (REPO / ".." / "shared" / "realdata").resolve()


def pytest_configure(config):
    """Caches (weights, decoded labels) of commands the tests run go to a scratch home, not the user's."""
    config._unitscope_home = tempfile.mkdtemp(prefix="unitscope-test-home-")
    os.environ["UNITSCOPE_HOME"] = config._unitscope_home


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "_unitscope_home", ""), ignore_errors=True)


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
