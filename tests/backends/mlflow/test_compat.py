"""Compatibility with real MLflow, installed from the package index into a side virtualenv once per session:
models proj writes load with MLflow's loaders, and a project that logs with mlflow lands in the proj run."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers.cli import require
from helpers.paths import EXAMPLES

pytestmark = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("mlflow")]


def _side(venv: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PROJ_"))}
    return subprocess.run([str(venv / "bin" / "python"), "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=300)


def _run_with(proj, venv: Path, *args: str):
    """`proj run --env-manager local` with the side venv's python first on PATH."""
    return proj("run", *args, "--env-manager", "local", env={"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"})


LOAD = """
import json, sys
import mlflow.pyfunc, mlflow.sklearn
from sklearn.datasets import load_diabetes
X, _ = load_diabetes(return_X_y=True)
sk = mlflow.sklearn.load_model(sys.argv[1])
py = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps({"type": type(sk).__name__, "sk": [round(float(v), 6) for v in sk.predict(X[:3])],
                  "pyfunc": [round(float(v), 6) for v in py.predict(X[:3])]}))
"""


def test_sklearn_example_model_loads_with_mlflow_loaders(proj, mlflow_venv: Path) -> None:
    out = _run_with(proj, mlflow_venv, str(EXAMPLES / "sklearn-model"), "-P", "alpha=0.3")
    assert out.code == 0, out
    run = proj.show(proj.runs()[0]["id"])
    model_dir = Path(run["run_dir"]) / "artifacts" / "model"
    loaded = _side(mlflow_venv, LOAD, str(model_dir))
    assert loaded.returncode == 0, loaded.stderr
    result = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert result["type"] == "Ridge" and result["sk"] == result["pyfunc"] and len(result["sk"]) == 3
    version = _side(mlflow_venv, "import sklearn; print(sklearn.__version__)").stdout.strip()
    assert f"scikit-learn=={version}" in (model_dir / "requirements.txt").read_text().splitlines()
    [model] = proj("models", "list", "--json").json()
    assert model["valid"] and set(model["flavors"]) == {"python_function", "sklearn"}
    assert model["mlmodel"]["flavors"]["sklearn"]["sklearn_version"] == version


def test_pickle_flavor_loads_with_pyfunc(mlflow_venv: Path, tmp_path: Path) -> None:
    from proj.pipeline.run import CHILD_PATH

    code = f"""
import sys
sys.path.insert(0, {str(CHILD_PATH)!r})
import proj_client, mlflow.pyfunc
from sklearn.linear_model import LinearRegression
model = LinearRegression().fit([[1.0], [2.0], [3.0]], [2.0, 4.0, 6.0])
proj_client.save_model(model, sys.argv[1], flavor="pickle")
print(round(float(mlflow.pyfunc.load_model(sys.argv[1]).predict([[5.0]])[0]), 6))
"""
    out = _side(mlflow_venv, code, str(tmp_path / "m"))
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "10.0", out.stderr


def test_mlflow_logging_project_lands_in_the_proj_run(proj, mlflow_venv: Path) -> None:
    out = _run_with(proj, mlflow_venv, str(EXAMPLES / "mlflow-logging"), "-P", "alpha=0.1")
    assert out.code == 0, out
    assert "mlflow: ingested 1 run(s) and 1 model(s)" in out.stderr, out
    run = proj.show(proj.runs()[0]["id"])
    params = {p["key"]: p for p in run["params"]}
    assert params["alpha"]["typed"] == 0.1 and params["l1_ratio"]["value"] == "0.1"
    assert {"rmse", "r2", "mae", "train_r2"} <= set(run["metrics"])
    assert run["metrics"]["train_r2"]["step"] == 2
    assert run["tags"]["model_family"] == "elasticnet" and "mlflow.run_id" in run["tags"]
    shown = proj("runs", "show", run["id"])
    assert "train_r2" in shown.stdout and "rmse" in shown.stdout
    [model] = proj("models", "list", "--json").json()
    assert model["origin"] == "mlflow" and model["valid"] and "sklearn" in model["flavors"]
    model_dir = Path(run["run_dir"]) / "artifacts" / model["path"]
    assert "mlflow-skinny==" in (model_dir / "requirements.txt").read_text()  # from the lock, exact
    loaded = _side(mlflow_venv, LOAD, str(model_dir))
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout.strip().splitlines()[-1])["type"] == "ElasticNet"


def test_virtualenv_run_pins_model_env_files_to_its_pylock(proj, mlflow_venv: Path) -> None:
    """The example's own python_env.yaml (virtualenv backend, resolved from the index): the model's env
    files are exactly the run's pylock.toml, and the model still loads with MLflow's loaders."""
    from proj.envs.registry import ENV_MANAGERS
    from proj.models.envfiles import parse_pylock

    require("virtualenv" in ENV_MANAGERS, "the virtualenv backend is not available")
    out = proj("run", str(EXAMPLES / "sklearn-model"), "--env-manager", "virtualenv", timeout=600)
    assert out.code == 0, out
    run = proj.show(proj.runs()[0]["id"])
    assert run["lock"]["format"] == "pylock.toml"
    spec = parse_pylock(run["lock"]["text"])
    model_dir = Path(run["run_dir"]) / "artifacts" / "model"
    assert (model_dir / "requirements.txt").read_text().splitlines() == spec.pip
    assert any(line.startswith("scikit-learn==") for line in spec.pip)
    loaded = _side(mlflow_venv, LOAD, str(model_dir))
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout.strip().splitlines()[-1])["type"] == "Ridge"
