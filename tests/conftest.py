"""Shared test fixtures."""
import os
import random

os.environ.setdefault("MPLBACKEND", "Agg")  # figures as files, even where a display is present

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global random state."""
    random.seed(0)
    np.random.seed(0)


@pytest.fixture
def rng():
    """An explicit, seeded generator for tests that draw data."""
    return np.random.default_rng(0)
