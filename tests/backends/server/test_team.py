"""README's "A server for a team", for real: a PostgreSQL store made by `proj db upgrade`, the first admin from the
command line, artifacts in an S3 bucket (moto's standalone server), `--auth` and two worker processes; the pinned
MLflow client logs, uploads, registers and loads a model with a user's credentials, another user is refused."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.moto import moto_server
from helpers.postgres import Cluster
from helpers.servers import client_json, proj_server
from proj.tracking.open import open_store

pytestmark = [pytest.mark.slow, pytest.mark.mlflow]

SCRIPT = """
import pandas as pd
import mlflow.pyfunc

class Add(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input["x"] + 1

mlflow.set_experiment("team")
with mlflow.start_run() as run:
    mlflow.log_params({"alpha": "0.1"})
    for step in range(50):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_text("notes", "notes/a.txt")
    mlflow.pyfunc.log_model(name="model", python_model=Add())
version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "team-model")
client.set_registered_model_alias("team-model", "champion", version.version)
loaded = mlflow.pyfunc.load_model("models:/team-model@champion")
out["run_id"] = run.info.run_id
out["experiment_id"] = run.info.experiment_id
out["predicted"] = list(loaded.predict(pd.DataFrame({"x": [1, 2]})))
out["history"] = len(client.get_metric_history(run.info.run_id, "loss"))
out["text"] = mlflow.artifacts.load_text(run.info.artifact_uri + "/notes/a.txt")
"""

GRANT = """
from mlflow.server import get_app_client
out["id"] = client.create_experiment("team")
users = get_app_client("basic-auth", tracking_uri=mlflow.get_tracking_uri())
users.grant_user_permission("ana", "experiment", out["id"], "EDIT")
"""

OTHER = """
try:
    client.get_experiment(EXPERIMENT)
    out["read"] = "allowed"
except MlflowException as exc:
    out["read"] = exc.error_code
try:
    out["search"] = len(client.search_runs([EXPERIMENT]))
except MlflowException as exc:
    out["search"] = exc.error_code
"""


def proj(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proj", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_the_readme_team_server(pg_cluster: Cluster, mlflow_full_venv: Path, tmp_path: Path) -> None:
    db = pg_cluster.uri(pg_cluster.create_database("team"))
    files = tmp_path / "proj-files"
    with moto_server(tmp_path / "moto") as moto:
        moto.make_bucket("team-artifacts")
        env = {**moto.env(), "PROJ_STORE_FILES": str(files), "AWS_CONFIG_FILE": "/nonexistent",
               "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
        upgraded = proj("db", "upgrade", db, env=env)
        assert upgraded.returncode == 0 and "schema version 0 -> " in upgraded.stdout, upgraded
        for user, extra in (("admin", ("--admin",)), ("ana", ()), ("bo", ())):
            made = proj("server", "user", "add", user, *extra, "--backend-store-uri", db, env=env,
                        stdin=f"{user}-password-123\n")
            assert made.returncode == 0, made.stderr
        # nobody reads what nobody was granted: ana is given EDIT on her experiment below, bo nothing
        with proj_server(db, tmp_path, "--artifacts-destination", "s3://team-artifacts/mlflow", "--auth",  # type: ignore[arg-type]
                         "--auth-default-permission", "NO_PERMISSIONS", "--workers", "2", env=env) as server:
            ana = {"MLFLOW_TRACKING_USERNAME": "ana", "MLFLOW_TRACKING_PASSWORD": "ana-password-123"}
            admin = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "admin-password-123"}
            made = client_json(mlflow_full_venv, GRANT, server.url, tmp_path, env={**admin, **env})
            out = client_json(mlflow_full_venv, SCRIPT, server.url, tmp_path, env={**ana, **env})
            assert out["experiment_id"] == made["id"]
            assert out["predicted"] == [2, 3] and out["history"] == 50 and out["text"] == "notes"
            bo = {"MLFLOW_TRACKING_USERNAME": "bo", "MLFLOW_TRACKING_PASSWORD": "bo-password-123",
                  "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
            refused = client_json(mlflow_full_venv, f"EXPERIMENT = {made['id']!r}\n" + OTHER, server.url, tmp_path,
                                  env={**bo, **env})
            assert refused["read"] == "PERMISSION_DENIED" and refused["search"] in (0, "PERMISSION_DENIED"), refused
        keys = moto.keys("team-artifacts")
        run_id = out["run_id"]
        assert keys[f"mlflow/{made['id']}/{run_id}/artifacts/notes/a.txt"] == b"notes"
        assert any(k.startswith("mlflow/logged_models/") and k.endswith("/MLmodel") for k in keys)
    store = open_store(db, create=False, files_root=files)
    try:  # runs, metrics and the registry are in PostgreSQL; no artifact landed in the run folders
        assert len(store.metric_history(run_id, "loss")) == 50
        assert store.get_registered_model("team-model").name == "team-model"
    finally:
        store.close()
    assert not list(files.rglob("a.txt")) and not (files / "auth.db").exists()
