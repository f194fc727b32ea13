"""The pinned MLflow (client and peer server) for the transfer tests, built once per session (as the server tests')."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers.servers import build_mlflow_venv


@pytest.fixture(scope="session")
def mlflow_full_venv(shared_cache: Path) -> Path:
    return build_mlflow_venv(shared_cache)
