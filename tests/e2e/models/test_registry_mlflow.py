"""A local model directory written by real MLflow (pinned, in a side venv) is registered by `proj models register`
(its MLmodel passes proj's schema) and the version's stored copy loads with mlflow.pyfunc after the original is gone."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers.servers import build_mlflow_venv

pytestmark = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("mlflow")]

SAVE = """
import sys, mlflow.pyfunc

class Triple(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [3 * x for x in model_input]

mlflow.pyfunc.save_model(sys.argv[1], python_model=Triple())
"""
LOAD = "import sys, mlflow.pyfunc; print(mlflow.pyfunc.load_model(sys.argv[1]).predict([1, 2]))"


def _side(venv: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PROJ_"))}
    return subprocess.run([str(venv / "bin" / "python"), "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_an_mlflow_saved_model_registers_and_its_stored_copy_loads(proj, shared_cache: Path, tmp_path: Path) -> None:
    venv = build_mlflow_venv(shared_cache)
    saved = _side(venv, SAVE, str(tmp_path / "triple"))
    assert saved.returncode == 0, saved.stderr
    out = proj("models", "register", str(tmp_path / "triple"), "triple")
    assert out.code == 0 and out.stdout.strip() == "1", out
    shutil.rmtree(tmp_path / "triple")
    location = proj("models", "show", "models:/triple/1", "--json").json()["storage_location"]
    loaded = _side(venv, LOAD, location)
    assert loaded.returncode == 0 and loaded.stdout.strip().splitlines()[-1] == "[3, 6]", loaded.stderr
