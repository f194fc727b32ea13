"""A program that opens several MLflow runs (hyperopt-style nested runs, sequential runs), run for real with
mlflow in the project's environment: the first top-level run is the proj run, every other one a child run."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from backends.mlflow.test_compat import _run_with, _side

pytestmark = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("mlflow")]

MLPROJECT = "name: search\nentry_points:\n  main:\n    command: python train.py\n"
# A hyperopt-style search: a parent run, three nested trials (one with a nested fold of its own, one that
# fails), a model logged by trial 1 and the parent's own `model` logged last.
HYPEROPT = """\
import mlflow, mlflow.sklearn
from sklearn.linear_model import Ridge

X, y = [[1.0], [2.0], [3.0]], [1.0, 2.0, 3.0]
with mlflow.start_run(run_name="search"):
    mlflow.log_param("space", "alpha")
    mlflow.set_tag("role", "search")
    for i, alpha in enumerate((0.1, 0.5, 1.0)):
        try:
            with mlflow.start_run(run_name=f"trial-{i}", nested=True):
                mlflow.log_param("alpha", alpha)
                mlflow.set_tag("trial", str(i))
                for step in range(3):
                    mlflow.log_metric("loss", alpha / (step + 1), step=step)
                if i == 1:
                    mlflow.sklearn.log_model(Ridge(alpha=alpha).fit(X, y), name="model",
                                             serialization_format="cloudpickle")
                    with mlflow.start_run(run_name="fold-0", nested=True):
                        mlflow.log_metric("fold_loss", 0.42)
                if i == 2:
                    raise ValueError("diverged")
        except ValueError:
            pass
    mlflow.log_metric("best_loss", 0.1 / 3)
    mlflow.sklearn.log_model(Ridge(alpha=0.1).fit(X, y), name="model", serialization_format="cloudpickle")
"""
SEQUENTIAL = """\
import mlflow
with mlflow.start_run(run_name="first"):
    mlflow.log_param("lr", "0.1")
    mlflow.log_metric("acc", 0.8, step=0)
    mlflow.log_metric("acc", 0.9, step=1)
with mlflow.start_run(run_name="second"):
    mlflow.log_param("lr", "0.2")
    mlflow.log_metric("acc", 0.7, step=0)
    mlflow.set_tag("phase", "second")
"""
# Nested runs logged, one left open, then the program waits to be killed with its runner.
KILLED = """\
import time, mlflow
mlflow.start_run(run_name="outer")
mlflow.log_param("outer", "1")
with mlflow.start_run(run_name="done", nested=True):
    mlflow.log_metric("m", 1.0)
mlflow.start_run(run_name="open", nested=True)
mlflow.log_metric("m", 2.0)
print("ready", flush=True)
time.sleep(600)
"""


def _project(make_project, program: str, name: str) -> Path:
    return make_project({"MLproject": MLPROJECT, "train.py": program}, name=name)


def _by_name(proj, parent: dict) -> dict[str, dict]:
    return {proj.show(c)["name"]: proj.show(c) for c in parent["children"]}


def test_nested_runs_become_child_runs_with_their_own_data_and_models(proj, make_project, mlflow_venv) -> None:
    out = _run_with(proj, mlflow_venv, str(_project(make_project, HYPEROPT, "hyperopt")))
    assert out.code == 0, out
    assert "mlflow: ingested 5 run(s) (4 as child runs) and 2 model(s)" in out.stderr, out
    listed = proj.runs()
    parent = proj.show(listed[0]["id"])
    assert parent["parent_run_id"] is None and parent["name"] is None and parent["mlflow_run_id"]
    # the parent has its own data only: nothing prefixed with a trial's name
    assert {p["key"]: p["value"] for p in parent["params"]} == {"space": "alpha"}
    assert set(parent["metrics"]) == {"best_loss"} and parent["tags"]["role"] == "search"
    assert not any("/" in key for key in [*parent["metrics"], *parent["tags"]])
    trials = _by_name(proj, parent)
    assert list(trials) == ["trial-0", "trial-1", "trial-2"]  # oldest first: the order the program opened them
    for i, trial in enumerate(trials.values()):
        assert trial["parent_run_id"] == parent["id"] and trial["experiment"] == parent["experiment"]
        assert trial["params"] == [{"key": "alpha", "value": str((0.1, 0.5, 1.0)[i]), "typed": str((0.1, 0.5, 1.0)[i]),
                                    "type": "string", "source": "logged"}]
        assert trial["tags"]["trial"] == str(i) and trial["tags"]["mlflow.run_id"] == trial["mlflow_run_id"]
        assert trial["metrics"]["loss"]["step"] == 2 and trial["end_time"] >= trial["start_time"] > 0
        assert trial["source"] == parent["source"] and trial["entry_point"] == "main"
    assert trials["trial-0"]["status"] == "FINISHED" and trials["trial-2"]["status"] == "FAILED"
    from proj.tracking.open import open_store

    history = open_store(proj.env["PROJ_TRACKING_URI"]).metric_history(trials["trial-0"]["id"], "loss")
    assert [(p.step, round(p.value, 6)) for p in history] == [(0, 0.1), (1, 0.05), (2, 0.033333)]
    # the tree is kept: fold-0 is a child of trial-1, not of the proj run
    [fold_id] = trials["trial-1"]["children"]
    fold = proj.show(fold_id)
    assert fold["name"] == "fold-0" and fold["parent_run_id"] == trials["trial-1"]["id"]
    assert set(fold["metrics"]) == {"fold_loss"} and fold["children"] == []
    # each model belongs to the run that logged it; the parent's plain `model` is the parent's
    [own] = parent["models"]
    assert own["path"] == "model" and own["valid"]
    mlmodel = (Path(parent["run_dir"]) / "artifacts" / "model" / "MLmodel").read_text()
    assert f"run_id: {parent['mlflow_run_id']}" in mlmodel
    [trial_model] = trials["trial-1"]["models"]
    assert trial_model["path"] == "model" and trial_model["valid"] and "sklearn" in trial_model["flavors"]
    trial_dir = Path(trials["trial-1"]["run_dir"]) / "artifacts" / "model"
    assert f"run_id: {trials['trial-1']['mlflow_run_id']}" in (trial_dir / "MLmodel").read_text()
    assert trials["trial-0"]["models"] == [] and trials["trial-2"]["models"] == []
    loaded = _side(mlflow_venv, "import sys, mlflow.pyfunc; print(mlflow.pyfunc.load_model(sys.argv[1]).predict([[4.0]])[0])",
                   str(trial_dir))
    assert loaded.returncode == 0, loaded.stderr
    # `runs list`: the parent first (it is the newest top-level run), its children indented under it
    assert [(r["id"], r["depth"], r["parent_run_id"]) for r in listed] == [
        (parent["id"], 0, None), (trials["trial-0"]["id"], 1, parent["id"]),
        (trials["trial-1"]["id"], 1, parent["id"]), (fold_id, 2, trials["trial-1"]["id"]),
        (trials["trial-2"]["id"], 1, parent["id"])]
    lines = proj("runs", "list").stdout.splitlines()
    assert lines[1].startswith(parent["id"][:12]) and lines[2].startswith(f"  └ {trials['trial-0']['id'][:12]}")
    assert lines[4].startswith(f"    └ {fold_id[:12]}") and "fold-0" in lines[4]
    top = proj("runs", "list", "--no-children", "--json").json()
    assert [r["id"] for r in top] == [parent["id"]]
    assert proj("runs", "show", "last", "--json").json()["id"] == parent["id"]  # never one of its children
    # `runs show`: the parent lists its children; a child says whose child it is and which MLflow run it was
    shown = proj("runs", "show", parent["id"]).stdout
    assert "child runs (3;" in shown and all(t["id"][:12] in shown for t in trials.values()), shown
    assert "loss=0.0333333" in shown  # trial-0's last loss, so the best trial is visible from the parent
    shown = proj("runs", "show", trials["trial-1"]["id"]).stdout
    assert f"child of   {parent['id']}: MLflow run {trials['trial-1']['mlflow_run_id']}" in shown, shown
    assert "child runs (1;" in shown and fold_id[:12] in shown
    # `runs diff` between two children: only what differs between the trials
    diff = proj("runs", "diff", trials["trial-0"]["id"], trials["trial-1"]["id"], "--json")
    assert diff.code == 1, diff
    sections = {s["name"]: s for s in diff.json()["sections"]}
    assert sections["params"]["lines"] == ["alpha: '0.1' -> '0.5'"], sections["params"]
    assert sections["source"]["same"] and not sections["metrics"]["same"]
    same = proj("runs", "diff", trials["trial-0"]["id"], trials["trial-0"]["id"])
    assert same.code == 0 and "verdict: identical" in same.stdout, same
    # a child has no command of its own: reproducing it names the run whose program made it
    refused = proj("reproduce", fold_id)
    assert refused.code == 2 and "Traceback" not in refused.stderr, refused
    assert f"child run (MLflow run {fold['mlflow_run_id']}" in refused.stderr, refused
    assert f"reproduce run {parent['id'][:12]}" in refused.stderr, refused


def test_sequential_runs_the_first_is_the_proj_run_the_second_a_child(proj, make_project, mlflow_venv) -> None:
    out = _run_with(proj, mlflow_venv, str(_project(make_project, SEQUENTIAL, "sequential")))
    assert out.code == 0, out
    assert "mlflow: ingested 2 run(s) (1 as child runs) and 0 model(s)" in out.stderr, out
    first, second = proj.runs()
    parent, child = proj.show(first["id"]), proj.show(second["id"])
    assert [(p["key"], p["value"]) for p in parent["params"]] == [("lr", "0.1")]
    assert parent["metrics"]["acc"]["value"] == 0.9 and parent["metrics"]["acc"]["step"] == 1
    assert "phase" not in parent["tags"] and parent["children"] == [child["id"]]
    assert child["name"] == "second" and child["parent_run_id"] == parent["id"] and child["status"] == "FINISHED"
    assert [(p["key"], p["value"]) for p in child["params"]] == [("lr", "0.2")]
    assert child["metrics"]["acc"]["value"] == 0.7 and child["tags"]["phase"] == "second"
    assert child["mlflow_run_id"] != parent["mlflow_run_id"] and parent["tags"]["mlflow.run_id"] == parent["mlflow_run_id"]


def test_a_reaped_run_still_gets_its_children(proj, make_project, mlflow_venv) -> None:
    import signal

    root = _project(make_project, KILLED, "killed")
    proj.env["PATH"] = f"{mlflow_venv / 'bin'}{os.pathsep}{os.environ['PATH']}"
    runner = proj.popen("run", str(root), "--env-manager", "local")
    store = Path(proj.env["PROJ_TRACKING_URI"])
    deadline = time.monotonic() + 120
    while not any("ready" in p.read_text() for p in store.glob("runs/*/logs/stdout.log")):
        assert time.monotonic() < deadline and runner.poll() is None, runner.communicate()
        time.sleep(0.2)
    runner.send_signal(signal.SIGKILL)  # kill -9: nothing recorded by the runner
    runner.wait(timeout=10)
    assert len(proj.runs()) == 1  # a reading command only shows it; collecting ingests what it left
    collected = proj("runs", "collect")
    assert collected.code == 0 and "collected 1 run(s)" in collected.stderr, collected
    listed = proj.runs()
    parent = proj.show(listed[0]["id"])
    assert parent["status"] == "FAILED" and parent["failure_phase"] == "runner", parent
    assert [(p["key"], p["value"]) for p in parent["params"]] == [("outer", "1")]
    children = _by_name(proj, parent)
    assert set(children) == {"done", "open"} and all(c["parent_run_id"] == parent["id"] for c in children.values())
    assert children["done"]["status"] == "FINISHED" and children["done"]["metrics"]["m"]["value"] == 1.0
    assert children["open"]["status"] == "FAILED" and "never ended" in children["open"]["failure_reason"]
    assert children["open"]["metrics"]["m"]["value"] == 2.0
    assert [r["depth"] for r in listed] == [0, 1, 1]
    assert json.loads(json.dumps(listed))[1]["parent_run_id"] == parent["id"]
