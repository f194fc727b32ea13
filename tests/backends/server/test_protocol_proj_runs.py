"""Runs recorded by `proj run` read through `proj server` in MLflow's conventions: the mlflow.* system tags
(source, commit, entry point, env), proj's own tags, typed params as strings, and the protocol's run fields."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import Proj
from helpers.git_repos import git
from helpers.servers import proj_server

pytestmark = [pytest.mark.slow, pytest.mark.git, pytest.mark.xdist_group("proj-server")]

SCRIPT = """\
import sys
print("alpha is", sys.argv[1])
"""


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def test_proj_run_shows_mlflow_system_tags(proj: Proj, make_project: Any, tmp_path: Path) -> None:
    project = make_project({
        "MLproject": """
            name: tagged
            entry_points:
              main:
                parameters:
                  alpha: {type: float, default: 0.5}
                command: "python train.py {alpha}"
        """,
        "train.py": SCRIPT,
    })
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "first")
    commit = git(project, "rev-parse", "HEAD").strip()
    ran = proj("run", str(project), "-P", "alpha=0.25", "--env-manager", "local", "--run-name", "tagged-run")
    assert ran.code == 0, ran
    run_id = proj.runs()[0]["id"]
    with proj_server(Path(proj.env["PROJ_TRACKING_URI"]), tmp_path) as server:
        api = server.url + "/api/2.0/mlflow"
        run = _get(f"{api}/runs/get?run_id={run_id}")["run"]
        found = _post(f"{api}/runs/search", {"experiment_ids": [run["info"]["experiment_id"]],
                                             "filter": "params.alpha = '0.25'"})
    info = run["info"]
    assert info["run_id"] == run_id and info["status"] == "FINISHED" and info["run_name"] == "tagged-run"
    assert info["end_time"] >= info["start_time"] > 10**12  # milliseconds
    assert info["artifact_uri"] == f"mlflow-artifacts:/{info['experiment_id']}/{run_id}/artifacts"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.env"] == "local"
    assert tags["mlflow.runName"] == "tagged-run"
    assert tags["proj.run"] == "1" and tags["proj.exit_code"] == "0"
    assert json.loads(tags["proj.param_types"])["alpha"][0] == "float"
    assert {"key": "alpha", "value": "0.25"} in run["data"]["params"]
    assert [r["info"]["run_id"] for r in found["runs"]] == [run_id]
