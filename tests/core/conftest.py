"""Fixtures that core test modules opt into (``pytestmark = pytest.mark.usefixtures(...)``)."""

from __future__ import annotations

from collections.abc import Iterator

import numba
import pytest


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Numba kernels on one thread for the test, the previous count restored after it: the test
    machine is shared (see test_deform_validation.py)."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)
