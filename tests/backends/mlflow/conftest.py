"""The side virtualenv with real MLflow that the tests of this package share: the pinned full MLflow the server
tests use too (helpers.servers.build_mlflow_venv), built once per session for both workers."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers.servers import build_mlflow_venv


@pytest.fixture(scope="session")
def mlflow_venv(shared_cache: Path) -> Path:
    """A virtualenv with mlflow (pinned), scikit-learn and pandas."""
    return build_mlflow_venv(shared_cache)
