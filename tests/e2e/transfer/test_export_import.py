"""`proj runs export` / `proj runs import` with real parts: runs made by the real `proj run`, moved between real local
stores, into a real `proj server` and a real `mlflow server` (checked with MLflow's own client), MLflow stores made
by the real MLflow client imported into proj, bad archives refused, and a destination killed mid-import."""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import Proj, wait_for
from helpers.servers import free_port, mlflow_server, proj_server, run_client

MLPROJECT = """
entry_points:
  main:
    parameters: {alpha: float, fail: {type: int, default: 0}}
    command: python train.py {alpha} {fail}
"""
TRAIN = """
import os, sys
import proj_client
alpha, fail = float(sys.argv[1]), int(sys.argv[2])
for step in range(6):
    proj_client.log_metric("loss", alpha / (step + 1), step=step)
proj_client.log_metric("acc", 1 - alpha, step=0)
proj_client.log_param("seed", 42)
proj_client.set_tag("stage", "dev")
print("training with", alpha)
print("a warning", file=sys.stderr)
art = os.environ["PROJ_ARTIFACT_DIR"]
os.makedirs(os.path.join(art, "plots"), exist_ok=True)
with open(os.path.join(art, "plots", "curve.bin"), "wb") as fh:
    fh.write(os.urandom(2048))
proj_client.save_model({"alpha": alpha}, flavor="pickle")
sys.exit(fail)
"""
MLFLOW_START_SECONDS = 600
# A run the real MLflow client makes: params, a metric over steps, an artifact, a nested run, a dataset input.
MLFLOW_CLIENT = """
import json, os
import mlflow
import pandas as pd
mlflow.set_experiment("mlexp")
with mlflow.start_run(run_name="parent") as parent:
    mlflow.log_param("alpha", "0.1")
    for step in range(4):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    with open("notes.txt", "w") as fh:
        fh.write("hello from mlflow")
    mlflow.log_artifact("notes.txt", artifact_path="docs")
    data = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2, 3]}), source=os.path.abspath("data.csv"), name="train")
    mlflow.log_input(data, context="training")
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_param("beta", "2")
        mlflow.log_metric("acc", 0.5, step=1)
print(json.dumps({"parent": parent.info.run_id, "child": child.info.run_id}))
"""
# What MLflow's client sees of every run on a server: params, full metric histories, artifact files' sha256.
MLFLOW_READ = """
import hashlib, json, os, tempfile
from mlflow import MlflowClient
c = MlflowClient()
def files(run_id, path=""):
    out = {}
    for item in c.list_artifacts(run_id, path or None):
        if item.is_dir:
            out.update(files(run_id, item.path))
        else:
            local = c.download_artifacts(run_id, item.path, tempfile.mkdtemp())
            out[item.path] = hashlib.sha256(open(local, "rb").read()).hexdigest()
    return out
runs = []
for exp in c.search_experiments():
    for r in c.search_runs([exp.experiment_id]):
        runs.append({"id": r.info.run_id, "experiment": exp.name, "status": r.info.status, "params": r.data.params,
                     "tags": r.data.tags, "files": files(r.info.run_id),
                     "history": {k: [[m.step, m.value] for m in c.get_metric_history(r.info.run_id, k)]
                                 for k in r.data.metrics}})
print(json.dumps(runs))
"""


def one_error_line(out: Any, code: int | None = None) -> str:
    assert out.code != 0 and (code is None or out.code == code), out
    assert "Traceback" not in out.stderr, out
    errors = [line for line in out.stderr.splitlines() if line.startswith("proj: error: ")]
    assert len(errors) == 1, out
    return errors[0]


def make_runs(proj: Proj, make_project: Any) -> list[str]:
    root = make_project({"MLproject": MLPROJECT, "train.py": TRAIN})
    ids = []
    for alpha, fail in (("0.5", "0"), ("0.25", "3")):
        out = proj("run", str(root), "--env-manager", "local", "-P", f"alpha={alpha}", "-P", f"fail={fail}",
                   "--experiment-name", "moving")
        assert out.code == int(fail), out
        ids.append(proj.show("last")["id"])
    return ids


def comparable(shown: dict[str, Any]) -> dict[str, Any]:
    """What must survive a move: everything but where the run folder is and the runner's pid."""
    data = {k: v for k, v in shown.items() if k not in ("run_dir", "pid", "pid_start", "collected", "children")}
    data["tags"] = {k: v for k, v in shown["tags"].items() if k != "proj.imported.from"}
    return data


def history(store_dir: Path, run_id: str) -> list[tuple[str, float, int, float]]:
    from proj.tracking.open import open_store

    return [(p.key, p.value, p.step, p.timestamp) for p in open_store(str(store_dir), create=False).metric_history(run_id)]


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def store_runs(proj: Proj, store: Path | str) -> list[dict[str, Any]]:
    out = proj("runs", "list", "--json", "-n", "0", "--tracking-uri", str(store))
    assert out.code == 0, out
    return out.json()


def test_runs_move_between_local_stores_whole_and_once(proj: Proj, make_project: Any, tmp_path: Path) -> None:
    ids = make_runs(proj, make_project)
    source = Path(proj.env["PROJ_TRACKING_URI"])
    archive = tmp_path / "runs.tar"
    out = proj("runs", "export", "--experiment", "moving", "-o", str(archive))
    assert out.code == 0, out
    assert "exported 2 run(s)" in out.stdout and "exported run" in out.stderr, out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".runs.tar")]  # written aside, renamed

    dest = tmp_path / "dest"
    out = proj("runs", "import", str(archive), "--tracking-uri", str(dest), "--json")
    assert out.code == 0, out
    summary = out.json()
    assert (summary["runs"], summary["skipped"], summary["metric_points"]) == (2, 0, 2 * 7), summary
    assert summary["artifact_bytes"] > 4096 and summary["run_ids"] == {i: i for i in ids}  # ids kept
    for run_id in ids:
        before = proj("runs", "show", run_id, "--json")
        after = proj("runs", "show", run_id, "--json", "--tracking-uri", str(dest))
        assert before.code == after.code == 0, (before, after)
        assert comparable(after.json()) == comparable(before.json())
        assert after.json()["lock"]["text"] and after.json()["models"][0]["flavors"] == ["pickle"]
        assert after.json()["tags"]["proj.imported.from"] == f"{source}#{run_id}"
        assert history(dest, run_id) == history(source, run_id) and len(history(dest, run_id)) == 7
        assert file_hashes(dest / "runs" / run_id / "artifacts") == file_hashes(source / "runs" / run_id / "artifacts")
        logs = [proj("runs", "logs", run_id, *(["--tracking-uri", str(s)] if s else [])).stdout for s in (None, dest)]
        assert logs[0] == logs[1] and "training with" in logs[1]
    assert proj.show(ids[1])["status"] == "FAILED"
    picked = proj("runs", "export", "--filter", "params.alpha = '0.25'", "-o", str(tmp_path / "one.tar"), "--json")
    assert picked.code == 0 and picked.json()["run_ids"] == {ids[1]: ids[1]}, picked

    # again: nothing duplicated, one line per run; and a direct copy (--from) into a third store is the same
    again = proj("runs", "import", str(archive), "--tracking-uri", str(dest))
    assert again.code == 0 and "imported 0 run(s) (2 already there, skipped)" in again.stdout, again
    assert again.stderr.count("skipped run") == 2, again
    assert len(store_runs(proj, dest)) == 2
    third = tmp_path / "third"
    out = proj("runs", "import", "--from", str(source), "--tracking-uri", f"sqlite:///{third}/proj.db")
    assert out.code == 0 and "imported 2 run(s)" in out.stdout, out
    assert comparable(proj("runs", "show", ids[0], "--json", "--tracking-uri", str(third)).json()) == \
        comparable(proj.show(ids[0]))
    out = proj("runs", "import", "--from", str(dest), "--tracking-uri", str(third))  # a copy of a copy: same origin
    assert out.code == 0 and "2 already there" in out.stdout, out


def test_import_into_a_real_proj_server(proj: Proj, make_project: Any, tmp_path: Path) -> None:
    ids = make_runs(proj, make_project)
    archive = tmp_path / "runs.tar"
    assert proj("runs", "export", *ids, "-o", str(archive)).code == 0
    with proj_server(tmp_path / "server-store", tmp_path) as server:
        out = proj("runs", "import", str(archive), "--tracking-uri", server.url, "--json")
        assert out.code == 0, out
        mapping = out.json()["run_ids"]
        for run_id in ids:
            before = comparable(proj.show(run_id))
            after = proj("runs", "show", mapping[run_id], "--json", "--tracking-uri", server.url)
            assert after.code == 0, after
            remote = after.json()
            for key in ("params", "tags", "command", "entry_point", "source", "env", "status", "exit_code", "lock",
                        "experiment"):
                assert remote[key] == before[key], key
            assert [m["path"] for m in remote["models"]] == [m["path"] for m in before["models"]]
            assert {k: (p["value"], p["step"]) for k, p in remote["metrics"].items()} == \
                {k: (p["value"], p["step"]) for k, p in before["metrics"].items()}
            logs = proj("runs", "logs", mapping[run_id], "--tracking-uri", server.url)
            assert logs.code == 0 and "training with" in logs.stdout, logs
        again = proj("runs", "import", str(archive), "--tracking-uri", server.url)
        assert again.code == 0 and "2 already there" in again.stdout, again
        assert len(store_runs(proj, server.url)) == 2
        # the server as a source: its runs come back whole, and keep their first origin (a copy of a copy)
        back = tmp_path / "back"
        out = proj("runs", "import", "--from", server.url, "--tracking-uri", str(back), "--json")
        assert out.code == 0 and out.json()["runs"] == 2, out
        for run_id in ids:
            copied = proj("runs", "show", mapping[run_id], "--json", "--tracking-uri", str(back)).json()
            original = comparable(proj.show(run_id))
            assert {k: copied[k] for k in ("params", "command", "env", "lock", "source", "status")} == \
                {k: original[k] for k in ("params", "command", "env", "lock", "source", "status")}
            assert file_hashes(back / "runs" / mapping[run_id] / "artifacts") == \
                file_hashes(Path(proj.env["PROJ_TRACKING_URI"]) / "runs" / run_id / "artifacts")
        out = proj("runs", "import", str(archive), "--tracking-uri", str(back))
        assert out.code == 0 and "2 already there" in out.stdout, out


@pytest.mark.mlflow
@pytest.mark.slow
@pytest.mark.timeout(1500)  # starting mlflow server alone takes minutes on a busy 2-core machine
def test_import_into_a_real_mlflow_server_read_by_mlflow_client(proj: Proj, make_project: Any, tmp_path: Path,
                                                                mlflow_full_venv: Path) -> None:
    ids = make_runs(proj, make_project)
    source = Path(proj.env["PROJ_TRACKING_URI"])
    archive = tmp_path / "runs.tar"
    assert proj("runs", "export", "--all", "-o", str(archive)).code == 0
    with _mlflow(mlflow_full_venv, tmp_path / "mlflow") as server:
        out = proj("runs", "import", str(archive), "--tracking-uri", server.url, "--json")
        assert out.code == 0, out
        mapping = out.json()["run_ids"]
        seen = {r["id"]: r for r in run_client(mlflow_full_venv, MLFLOW_READ, server.url, tmp_path)}
        assert set(seen) == set(mapping.values())
        for run_id in ids:
            run = seen[mapping[run_id]]
            assert run["experiment"] == "moving" and run["params"] == {"alpha": proj.show(run_id)["params"][0]["value"],
                                                                         "fail": run["params"]["fail"], "seed": "42"}
            assert run["tags"]["stage"] == "dev" and run["tags"]["proj.imported.from"] == f"{source}#{run_id}"
            assert run["history"]["loss"] == [[s, v] for k, v, s, _ in history(source, run_id) if k == "loss"]
            artifacts = source / "runs" / run_id / "artifacts"
            local = file_hashes(artifacts)
            assert {k: v for k, v in run["files"].items() if not k.startswith("proj/")} == local
            assert "proj/logs/stdout.log" in run["files"] and "proj/pip-freeze" in run["files"]
        assert seen[mapping[ids[1]]]["status"] == "FAILED" and seen[mapping[ids[0]]]["status"] == "FINISHED"


def _mlflow(venv: Path, work: Path) -> Any:
    return mlflow_server(venv, work, timeout=MLFLOW_START_SECONDS)  # without its job runner (MLFLOW_SERVER_ENV)


@pytest.mark.mlflow
@pytest.mark.timeout(900)  # MLflow client processes are slow to start on a busy 2-core machine
@pytest.mark.parametrize("kind", ["sql", "file"])
def test_mlflow_stores_made_by_the_mlflow_client_import_into_proj(proj: Proj, tmp_path: Path, mlflow_full_venv: Path,
                                                                  kind: str) -> None:
    work = tmp_path / "mlwork"
    work.mkdir()
    uri = f"sqlite:///{work}/mlflow.db" if kind == "sql" else "file:./mlruns"
    made = run_client(mlflow_full_venv, MLFLOW_CLIENT, uri, work, env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    source = f"sqlite:///{work}/mlflow.db" if kind == "sql" else f"file:{work}/mlruns"
    dest = tmp_path / "dest"
    out = proj("runs", "import", "--from", source, "--tracking-uri", str(dest), "--json")
    assert out.code == 0, out
    assert out.json()["runs"] == 2 and out.json()["metric_points"] == 5, out
    listed = store_runs(proj, dest)
    assert [(r["id"], r["depth"], r["experiment"]) for r in listed] == [(made["parent"], 0, "mlexp"),
                                                                          (made["child"], 1, "mlexp")]
    parent = proj("runs", "show", made["parent"], "--json", "--tracking-uri", str(dest)).json()
    child = proj("runs", "show", made["child"], "--json", "--tracking-uri", str(dest)).json()
    assert parent["status"] == "FINISHED" and parent["name"] == "parent" and parent["children"] == [made["child"]]
    assert child["parent_run_id"] == made["parent"] and child["params"][0]["value"] == "2"
    assert [(p["key"], p["value"]) for p in parent["params"]] == [("alpha", "0.1")]
    assert [(k, v, s) for k, v, s, _ in history(dest, made["parent"])] == [("loss", 1.0 / (s + 1), s) for s in range(4)]
    assert (dest / "runs" / made["parent"] / "artifacts" / "docs" / "notes.txt").read_text() == "hello from mlflow"
    assert [(d["dataset"]["name"], d["tags"]) for d in parent["datasets"]] == [("train", {"mlflow.data.context":
                                                                                          "training"})]
    again = proj("runs", "import", "--from", source, "--tracking-uri", str(dest))
    assert again.code == 0 and "2 already there" in again.stdout, again


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


MANIFEST = json.dumps({"format": "proj-runs", "version": 1, "source": "/x", "runs": ["a" * 32]}).encode()


@pytest.mark.parametrize(("name", "members", "named"), [
    ("newer", [(_file("manifest.json"), json.dumps({"format": "proj-runs", "version": 99, "runs": []}).encode())],
     "format version 99"),
    ("not-ours", [(_file("manifest.json"), b'{"format": "other"}')], "not a proj-runs manifest"),
    ("dotdot", [(_file("manifest.json"), MANIFEST), (_file("runs/../../escaped.txt"), b"x")], "'..'"),
    ("absolute", [(_file("manifest.json"), MANIFEST), (_file("/tmp/escaped.txt"), b"x")], "is absolute"),
    ("symlink", [(_file("manifest.json"), MANIFEST), (_link(f"runs/{'a' * 32}/files/artifacts/x", "/etc/passwd"), None)],
     "is a symlink"),
    ("hardlink", [(_file("manifest.json"), MANIFEST),
                  (_link(f"runs/{'a' * 32}/files/artifacts/x", "/etc/passwd", tarfile.LNKTYPE), None)], "hard link"),
])
def test_bad_archives_are_refused_with_one_line_and_nothing_written(proj: Proj, tmp_path: Path, name: str,
                                                                   members: list[Any], named: str) -> None:
    archive = _tar(tmp_path / f"{name}.tar", members)
    dest = tmp_path / "dest"
    line = one_error_line(proj("runs", "import", str(archive), "--tracking-uri", str(dest)), 2)
    assert named in line and str(archive) in line, line
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/escaped.txt").exists()
    assert not (dest / "runs").exists() or not any((dest / "runs").iterdir())


def test_missing_damaged_and_unreachable_sources_are_one_line(proj: Proj, make_project: Any, tmp_path: Path) -> None:
    make_runs(proj, make_project)
    assert "does not exist" in one_error_line(proj("runs", "import", str(tmp_path / "nope.tar")), 2)
    archive = tmp_path / "runs.tar"
    assert proj("runs", "export", "--all", "-o", str(archive)).code == 0
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    dest = tmp_path / "dest"
    line = one_error_line(proj("runs", "import", str(damaged), "--tracking-uri", str(dest)), 2)
    assert "damaged" in line, line
    assert not (dest / "proj.db").exists() or store_runs(proj, dest) == []
    line = one_error_line(proj("runs", "import", str(archive), "--tracking-uri", f"http://127.0.0.1:{free_port()}",
                               env={"PROJ_HTTP_RETRY_SECONDS": "0"}))
    assert "unreachable" in line, line
    assert "name the runs" in one_error_line(proj("runs", "export", "-o", str(tmp_path / "x.tar")), 2)
    assert "either an ARCHIVE" in one_error_line(proj("runs", "import"), 2)


def test_a_run_damaged_in_the_middle_leaves_nothing_of_itself(proj: Proj, make_project: Any, tmp_path: Path) -> None:
    """The second run's file does not match its sha256: the first run is imported, the second not at all (no row,
    no run folder, nothing aside), and importing a good archive afterwards completes it."""
    ids = make_runs(proj, make_project)
    archive = tmp_path / "runs.tar"
    assert proj("runs", "export", "--all", "-o", str(archive)).code == 0
    bad = tmp_path / "bad.tar"
    with tarfile.open(archive) as src, tarfile.open(bad, "w") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == f"runs/{ids[1]}/files/artifacts/plots/curve.bin":
                data = bytes(len(data))  # same size, other bytes
            out.addfile(member, io.BytesIO(data))
    dest = tmp_path / "dest"
    line = one_error_line(proj("runs", "import", str(bad), "--tracking-uri", str(dest)))
    assert ids[1] in line and "sha256" in line, line
    assert [r["id"] for r in store_runs(proj, dest)] == [ids[0]]
    assert sorted(p.name for p in (dest / "runs").iterdir()) == [ids[0]]
    out = proj("runs", "import", str(archive), "--tracking-uri", str(dest))
    assert out.code == 0 and "imported 1 run(s) (1 already there, skipped)" in out.stdout, out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_destination_server_killed_mid_import_leaves_no_half_run(proj: Proj, make_project: Any, tmp_path: Path) -> None:
    """A proj server killed (SIGKILL) while runs are imported: the import fails with one line, no run on the server
    is RUNNING, the one caught half way is marked incomplete, and importing again deletes it and completes."""
    root = make_project({"MLproject": MLPROJECT, "train.py": TRAIN})
    for n in range(12):
        assert proj("run", str(root), "--env-manager", "local", "-P", f"alpha=0.{n + 1}", "-q").code == 0
    archive = tmp_path / "runs.tar"
    assert proj("runs", "export", "--all", "-o", str(archive)).code == 0
    store = tmp_path / "server-store"
    with proj_server(store, tmp_path) as server:
        env = {**proj.env, "PROJ_HTTP_RETRY_SECONDS": "1"}
        importing = subprocess.Popen([sys.executable, "-m", "proj.cli.main", "runs", "import", str(archive),
                                      "--tracking-uri", server.url], cwd=proj.cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert importing.stderr is not None
        first = importing.stderr.readline()
        assert "imported run" in first, first
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
        _, err = importing.communicate(timeout=120)
        assert importing.returncode != 0 and "Traceback" not in err, err
        assert len([line for line in err.splitlines() if line.startswith("proj: error: ")]) == 1, err
    from proj.tracking.open import open_store

    left = open_store(str(store), create=False).list_runs(limit=None)  # the server's own store, read directly
    assert 1 <= len(left) < 12 and not [r for r in left if r.status == "RUNNING"], left
    half = [r for r in left if "proj.import.incomplete" in r.tags]
    assert len(half) <= 1 and all(r.status == "FAILED" for r in half), half
    for run in left:
        if run not in half:  # every run not marked is whole
            assert run.status == "FINISHED" and len(open_store(str(store), create=False).metric_history(run.id)) == 7
    with proj_server(store, tmp_path) as server:
        out = proj("runs", "import", str(archive), "--tracking-uri", server.url, "--json")
        assert out.code == 0, out
        assert out.json()["removed_leftovers"] == len(half) and out.json()["skipped"] == len(left) - len(half), out
        listed = wait_for(lambda: store_runs(proj, server.url), what="runs listed")
        assert len(listed) == 12 and {r["status"] for r in listed} == {"FINISHED"}, listed
        for run in listed:
            shown = proj("runs", "show", run["id"], "--json", "--tracking-uri", server.url).json()
            assert len(shown["metrics"]) == 2 and shown["lock"] is not None, shown
