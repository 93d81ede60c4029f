"""Fixtures shared by the test modules: the Letter's Table II fit and fixed seeds."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# Test helpers that are modules, not fixtures (``letter_files``: the Letter's files written into
# tmp_path): importable from the test modules, which pytest imports in importlib mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def table2_fit():
    """The least-action fit of the Letter's Table II (Claude-4; Eq. 22)."""
    from dbnb.datasets import claude4_table2
    from dbnb.potential import fit_potential

    return fit_potential(claude4_table2())


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(20251210)
