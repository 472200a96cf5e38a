"""Shared test set-up.

Tests that import keras are marked ``backend`` (``pytestmark = pytest.mark.backend``):
make test runs them once per backend, each in its own process with KERAS_BACKEND set.
The other tests run once and must not import keras.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def kclf_cmd():
    """The kclf CLI as a subprocess command list."""
    return [sys.executable, "-m", "kclf"]


@pytest.fixture
def backend_name():
    """The backend this process runs on (backend-marked tests only)."""
    from kclf.backend import select_backend

    return select_backend(os.environ.get("KERAS_BACKEND"))
