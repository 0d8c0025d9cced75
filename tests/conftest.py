"""Shared test fixtures."""
import random

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global random state."""
    random.seed(0)
    np.random.seed(0)


@pytest.fixture
def rng():
    """An explicit, seeded generator for tests that draw data."""
    return np.random.default_rng(0)
