"""Models through real `proj run`s in the local env (standard library only): collection, env files from
the lock, bad model directories, `proj models`, and ingest of a hand-written MLflow file store."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import yaml

from helpers.projects import PREDICTOR
from proj.models.envfiles import parse_lock

MLPROJECT = "entry_points:\n  main:\n    parameters:\n      k: {type: int, default: 3}\n    command: 'python train.py {k}'\n"
SAVE = '''\
import sys
import proj_client
from predictor import Doubler
proj_client.save_model(Doubler(int(sys.argv[1])), flavor="pickle", metadata={"note": "stdlib"})
'''


def _run(proj, make_project, train: str, files: dict[str, str] | None = None) -> tuple[dict, object]:
    root = make_project({"MLproject": MLPROJECT, "predictor.py": PREDICTOR, "train.py": train, **(files or {})})
    out = proj("run", str(root), "--env-manager", "local")
    assert out.code == 0, out
    return proj.show(proj.runs()[0]["id"]), out


def _models(proj) -> list[dict]:
    out = proj("models", "list", "--json")
    assert out.code == 0, out
    return out.json()


def test_saved_model_gets_env_files_from_the_lock_and_file_hashes(proj, make_project) -> None:
    run, out = _run(proj, make_project, SAVE)
    model_dir = Path(run["run_dir"]) / "artifacts" / "model"
    assert run["lock"]["format"] == "pip-freeze"
    spec = parse_lock("pip-freeze", run["lock"]["text"])
    assert (model_dir / "requirements.txt").read_text().splitlines() == spec.pip  # exactly the lock
    python_env = yaml.safe_load((model_dir / "python_env.yaml").read_text())
    assert python_env["python"] == run["env"]["python_version"]
    assert python_env["build_dependencies"] == (spec.build or ["pip", "setuptools", "wheel"])
    conda = yaml.safe_load((model_dir / "conda.yaml").read_text())
    assert conda["dependencies"][0] == f"python={run['env']['python_version']}"
    assert conda["dependencies"][-1] == {"pip": spec.pip}
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    assert mlmodel["run_id"] == run["id"] and mlmodel["metadata"] == {"note": "stdlib"}
    assert mlmodel["flavors"]["pickle"]["pickled_model"] == "model.pkl"
    [model] = _models(proj)
    assert model["valid"] and model["path"] == "model" and model["env_source"] == "pip-freeze"
    assert set(model["flavors"]) == {"python_function", "pickle"}
    for entry in model["files"]:
        data = (model_dir / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    assert {f["path"] for f in model["files"]} == {"MLmodel", "model.pkl", "requirements.txt", "python_env.yaml",
                                                   "conda.yaml"}
    assert model["size"] == sum(f["size"] for f in model["files"])
    assert run["models"] == [{"path": "model", "flavors": model["flavors"], "size": model["size"], "valid": True,
                              "reason": None}]
    shown = proj("runs", "show", run["id"])
    assert "models" in shown.stdout and "python_function" in shown.stdout, shown


def test_models_show_and_export(proj, make_project, tmp_path: Path) -> None:
    run, _ = _run(proj, make_project, SAVE)
    shown = proj("models", "show", run["id"][:8])
    for text in ("lineage", "param      k = 3", "pickle", "requirements.txt", "model.pkl"):
        assert text in shown.stdout, shown
    detail = proj("models", "show", f"{run['id']}/model", "--json").json()
    assert detail["lineage"]["run_id"] == run["id"] and detail["lineage"]["params"] == {"k": 3}
    assert set(detail["env_files"]) == {"requirements.txt", "python_env.yaml", "conda.yaml"}
    dest = tmp_path / "exported"
    out = proj("models", "export", run["id"], str(dest))
    assert out.code == 0, out
    assert sorted(p.name for p in dest.iterdir()) == sorted(f["path"] for f in detail["files"])
    check = subprocess.run([sys.executable, "-c", "import pickle,sys; sys.path.insert(0, sys.argv[1]);"
                            "print(pickle.load(open(sys.argv[2], 'rb')).predict([1, 2]))",
                            str(make_project({}, name="project")), str(dest / "model.pkl")],
                           capture_output=True, text=True)
    assert check.stdout.strip() == "[3, 6]", check
    (Path(detail["dir"]) / "model.pkl").write_bytes(b"tampered")
    again = proj("models", "export", run["id"], str(tmp_path / "second"))
    assert again.code == 1 and "changed since the run recorded it" in again.stderr, again
    assert not (tmp_path / "second").exists()
    assert proj("models", "show", f"{run['id']}/nope").code == 2


def test_invalid_mlmodel_marks_the_model_invalid_but_the_run_finishes(proj, make_project, tmp_path: Path) -> None:
    train = ("import os\nd = os.environ['PROJ_MODEL_DIR']\nos.makedirs(d)\n"
             "open(os.path.join(d, 'MLmodel'), 'w').write('flavors: [unclosed\\n')\n")
    run, out = _run(proj, make_project, train)
    assert run["status"] == "FINISHED" and "is invalid" in out.stderr, out
    [model] = _models(proj)
    assert not model["valid"] and "not valid YAML" in model["reason"]
    listing = proj("models", "list")
    assert "INVALID" in listing.stdout
    refused = proj("models", "export", run["id"], str(tmp_path / "x"))
    assert refused.code == 1 and "invalid" in refused.stderr


def test_schema_failure_is_reported_with_the_key(proj, make_project) -> None:
    train = ("import os\nd = os.environ['PROJ_MODEL_DIR']\nos.makedirs(d)\n"
             "open(os.path.join(d, 'MLmodel'), 'w').write('flavors:\\n  sklearn: {serialization_format: pickle}\\n')\n")
    run, _ = _run(proj, make_project, train)
    [model] = _models(proj)
    assert not model["valid"] and "flavors.sklearn" in model["reason"] and "pickled_model" in model["reason"]


def test_symlink_out_of_the_run_folder_is_rejected(proj, make_project, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not copy me")
    train = (f"import os\nd = os.environ['PROJ_MODEL_DIR']\nos.makedirs(d)\n"
             f"open(os.path.join(d, 'MLmodel'), 'w').write('flavors: {{x: {{}}}}\\n')\n"
             f"os.symlink({str(secret)!r}, os.path.join(d, 'data.txt'))\n")
    run, out = _run(proj, make_project, train)
    assert run["status"] == "FINISHED"
    [model] = _models(proj)
    assert not model["valid"] and "outside the run folder" in model["reason"] and model["files"] == []
    refused = proj("models", "export", run["id"], str(tmp_path / "x"))
    assert refused.code == 1 and not (tmp_path / "x").exists()
    assert not (Path(run["run_dir"]) / "artifacts" / "model" / "requirements.txt").exists()  # left untouched


def test_plain_folder_is_kept_with_a_hint_and_nested_mlmodel_dirs_are_models(proj, make_project) -> None:
    train = ("import os\nd = os.environ['PROJ_MODEL_DIR']\nos.makedirs(d)\nopen(os.path.join(d, 'w.bin'), 'wb').write(b'1')\n"
             "n = os.path.join(os.environ['PROJ_ARTIFACT_DIR'], 'nested', 'clf')\nos.makedirs(n)\n"
             "open(os.path.join(n, 'MLmodel'), 'w').write('flavors: {custom: {}}\\n')\n")
    run, out = _run(proj, make_project, train)
    assert "no MLmodel file" in out.stderr and "save_model" in out.stderr, out
    [model] = _models(proj)
    assert model["path"] == "nested/clf" and model["valid"] and model["flavors"] == ["custom"]
    assert (Path(run["run_dir"]) / "artifacts" / "model" / "w.bin").is_file()


MLFLOW_WRITER = '''\
import os, sys
from urllib.parse import urlparse
assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"
root = urlparse(os.environ["MLFLOW_TRACKING_URI"]).path
print("experiment", os.environ["MLFLOW_EXPERIMENT_NAME"])

def write(rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)

run = "1/aaaa1111"  # MLflow 2 layout: a finished run with a model under its artifacts
write(run + "/meta.yaml", "run_id: aaaa1111\\nrun_name: main-run\\nstart_time: 1700000000000\\nstatus: 3\\n")
write(run + "/params/lr", "0.01")
write(run + "/params/k", "999")  # declared by the MLproject: the declared value wins
write(run + "/metrics/loss", "1700000001000 0.9 0\\n1700000002000 0.5 1\\n1700000003000 0.25 2\\n")
write(run + "/metrics/acc", "garbage line\\n1700000004000 0.8 0\\n")
write(run + "/tags/team", "vision")
write(run + "/tags/mlflow.user", "someone")
write(run + "/artifacts/model/MLmodel",
      "artifact_path: model\\nflavors:\\n"
      "  python_function: {loader_module: mlflow.sklearn, model_path: model.pkl}\\nrun_id: aaaa1111\\n")
write(run + "/artifacts/model/model.pkl", "not really a pickle")
write(run + "/artifacts/plot.txt", "a plot")
write("1/models/m-bbbb/meta.yaml", "model_id: m-bbbb\\nname: logged\\nsource_run_id: aaaa1111\\n")  # MLflow 3
write("1/models/m-bbbb/artifacts/MLmodel",
      "flavors: {python_function: {loader_module: mlflow.pyfunc.model}}\\nmodel_id: m-bbbb\\n")
write("1/models/m-cccc/meta.yaml", "model_id: m-cccc\\nname: half\\n")  # half-written: no artifacts
write("1/cccc2222/params/other", "x")  # a second run, half-written: no meta.yaml
write("1/cccc2222/metrics/loss", "1700000005000 7.0 0\\n")
'''


def test_mlflow_file_store_is_ingested(proj, make_project, proj_env) -> None:
    run, out = _run(proj, make_project, MLFLOW_WRITER)
    assert "experiment Default" in out.stdout
    assert "mlflow: ingested 2 run(s) (1 as child runs)" in out.stderr and "half-written" in out.stderr, out
    assert "unreadable line" in out.stderr
    params = {p["key"]: p for p in run["params"]}
    assert params["lr"]["value"] == "0.01" and params["lr"]["source"] == "logged"
    assert params["k"]["typed"] == 3 and params["k"]["source"] == "default"
    assert "other" not in params  # the second run is a child run, with its own keys
    [child] = [proj.show(c) for c in run["children"]]
    assert child["mlflow_run_id"] == "cccc2222" and child["params"][0]["key"] == "other"
    assert child["status"] == "FAILED" and "half-written" in child["failure_reason"]
    assert child["metrics"]["loss"]["value"] == 7.0 and child["start_time"] == 1700000005.0
    assert run["tags"]["team"] == "vision" and run["tags"]["mlflow.run_id"] == "aaaa1111"
    assert "mlflow.user" not in run["tags"]
    assert run["metrics"]["acc"]["value"] == 0.8 and "cccc2222/loss" not in run["metrics"]
    from proj.tracking.open import open_store

    history = open_store(proj_env["PROJ_TRACKING_URI"]).metric_history(run["id"], "loss")
    assert [(p.step, p.value, p.timestamp) for p in history] == [
        (0, 0.9, 1700000001.0), (1, 0.5, 1700000002.0), (2, 0.25, 1700000003.0)]
    artifacts = Path(run["run_dir"]) / "artifacts"
    assert (artifacts / "plot.txt").read_text() == "a plot"
    models = {m["path"]: m for m in _models(proj)}
    assert set(models) == {"model", "logged"}
    assert all(m["origin"] == "mlflow" and m["valid"] for m in models.values())
    assert models["model"]["mlmodel"]["run_id"] == "aaaa1111"  # what MLflow wrote is kept
    assert (artifacts / "logged" / "requirements.txt").is_file()


def test_after_run_costs_nothing_without_mlflow_or_models(tmp_path: Path) -> None:
    """No MLflow store, no model: after_run imports neither PyYAML, jsonschema nor the ingest code."""
    (tmp_path / "artifacts" / "data").mkdir(parents=True)
    (tmp_path / "artifacts" / "data" / "x.csv").write_text("1\n")
    code = f"""
import sys
from types import SimpleNamespace
from proj.collect import models as collect
from proj.report import Collector
run = SimpleNamespace(id="r", run_dir={str(tmp_path)!r}, experiment="e")
env = collect.child_env(None, run, Collector())
assert env["MLFLOW_TRACKING_URI"].startswith("file://"), env
collect.after_run(None, run, 0, Collector())
heavy = ("yaml", "jsonschema", "proj.collect.mlflow", "proj.models.mlmodel")
print(sorted(m for m in heavy if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out


def test_symlink_loop_in_a_model_dir_is_rejected_not_followed(proj, make_project) -> None:
    train = ("import os\nd = os.environ['PROJ_MODEL_DIR']\nos.makedirs(os.path.join(d, 'sub'))\n"
             "open(os.path.join(d, 'MLmodel'), 'w').write('flavors: {x: {}}\\n')\n"
             "os.symlink(d, os.path.join(d, 'sub', 'loop'))\n")
    run, _ = _run(proj, make_project, train)
    assert run["status"] == "FINISHED"
    [model] = _models(proj)
    assert not model["valid"] and "symlink loop" in model["reason"]


def test_a_users_mlflow_tracking_uri_is_redirected_with_a_note_or_kept_on_request(proj, make_project) -> None:
    root = make_project({"MLproject": "entry_points:\n  main:\n    command: 'echo uri=$MLFLOW_TRACKING_URI'\n"})
    proj.env["MLFLOW_TRACKING_URI"] = "http://mlflow.example:5000"
    out = proj("run", str(root), "--env-manager", "local")
    assert out.code == 0 and "uri=file://" in out.stdout and "is redirected" in out.stderr, out
    proj.env["PROJ_KEEP_MLFLOW_TRACKING_URI"] = "1"
    out = proj("run", str(root), "--env-manager", "local")
    assert out.code == 0 and "uri=http://mlflow.example:5000" in out.stdout and "redirected" not in out.stderr, out
