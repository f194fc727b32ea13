"""The side virtualenv with real MLflow that the tests of this package share (built once per session)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import require

SIDE_PACKAGES = ("mlflow-skinny", "scikit-learn", "pandas")  # skinny + pandas: enough to log and load models


@pytest.fixture(scope="session")
def mlflow_venv(shared_cache: Path) -> Path:
    """A virtualenv with mlflow and scikit-learn (uv from the package index), built once per session."""
    from uv import find_uv_bin

    venv = shared_cache / "mlflow-venv"
    done = venv / ".complete"
    if not done.exists():
        shutil.rmtree(venv, ignore_errors=True)
        uv = find_uv_bin()
        steps = ([uv, "venv", "-q", "--python", sys.executable, str(venv)],
                 [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *SIDE_PACKAGES])
        for argv in steps:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
            require(out.returncode == 0, f"cannot install {' '.join(SIDE_PACKAGES)} from the package index: "
                                         f"{out.stderr.strip()[-400:]}")
        done.touch()
    return venv
