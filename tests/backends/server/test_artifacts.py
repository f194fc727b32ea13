"""Artifacts through the real `proj server` (mlflow-artifacts): the pinned MLflow client's uploads, listings,
downloads, deletes and logged models; raw HTTP path attacks (MLflow's artifact CVEs) refused with nothing
written outside; an upload cut off mid-body; and the read-only proj/ folder of a run made by `proj run`."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers.cli import Proj, require, wait_for
from helpers.git_repos import commit, git
from helpers.servers import Server, proj_server, run_client
from proj.tracking.mlflow_tags import lock_artifact_name
from proj.tracking.open import open_store

pytestmark = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("artifacts-server")]

UPLOAD_PREFIX = ".proj-upload-"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts-server")


@pytest.fixture(scope="module")
def served(work: Path) -> Iterator[Server]:
    with proj_server(work / "store", work) as server:
        yield server


def client(venv: Path, server: Server, cwd: Path, script: str) -> Any:
    return run_client(venv, textwrap.dedent(script), server.url, cwd)


def call(server: Server, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One raw request, the path sent exactly as given (no client-side normalising or quoting)."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def new_run(venv: Path, server: Server, cwd: Path) -> dict[str, str]:
    """A run with one small artifact; its id, experiment id and artifact URI."""
    return client(venv, server, cwd, """
        import json, mlflow
        with mlflow.start_run() as run:
            mlflow.log_text("first", "first.txt")
        print(json.dumps({"run_id": run.info.run_id, "exp": run.info.experiment_id, "uri": run.info.artifact_uri}))
    """)


def test_client_logs_lists_and_downloads_a_tree(mlflow_full_venv: Path, served: Server, work: Path,
                                                tmp_path: Path) -> None:
    out = client(mlflow_full_venv, served, tmp_path, """
        import json, os, tempfile, mlflow
        import numpy as np
        tree = tempfile.mkdtemp()
        for rel, text in {"a.txt": "A", "with space/b c.txt": "B C", "ünï/日本.txt": "uni", "x/y/z/deep.csv": "1,2"}.items():
            os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
            open(os.path.join(tree, rel), "w", encoding="utf-8").write(text)
        one = os.path.join(tempfile.mkdtemp(), "one.bin")
        open(one, "wb").write(b"\\x00\\x01" * 100)
        with mlflow.start_run() as run:
            mlflow.log_artifact(one)
            mlflow.log_artifact(one, artifact_path="bins")
            mlflow.log_artifacts(tree, artifact_path="tree")
            mlflow.log_text("some text", "notes/t.txt")
            mlflow.log_dict({"k": [1, 2]}, "conf/d.json")
            mlflow.log_image(np.zeros((4, 4, 3), dtype=np.uint8), "img/black.png")
        c = mlflow.MlflowClient()
        rid = run.info.run_id
        listing = lambda p=None: [[f.path, f.is_dir, f.file_size] for f in c.list_artifacts(rid, p)]
        dst = mlflow.artifacts.download_artifacts(run_id=rid, dst_path=tempfile.mkdtemp())
        got = {}
        for root, _, files in os.walk(dst):
            for f in files:
                got[os.path.relpath(os.path.join(root, f), dst)] = open(os.path.join(root, f), "rb").read().hex()
        print(json.dumps({"run_id": rid, "exp": run.info.experiment_id, "uri": run.info.artifact_uri,
                          "root": listing(), "tree": listing("tree"), "deep": listing("tree/x/y/z"),
                          "file": listing("a-file-not-a-dir.txt"), "got": got,
                          "text": mlflow.artifacts.load_text(f"runs:/{rid}/notes/t.txt"),
                          "dict": mlflow.artifacts.load_dict(f"runs:/{rid}/conf/d.json")}))
    """)
    rid, exp = out["run_id"], out["exp"]
    assert out["uri"] == f"mlflow-artifacts:/{exp}/{rid}/artifacts"
    assert out["root"] == [["bins", True, None], ["conf", True, None], ["img", True, None], ["notes", True, None],
                           ["one.bin", False, 200], ["tree", True, None]]
    assert out["tree"] == [["tree/a.txt", False, 1], ["tree/with space", True, None], ["tree/x", True, None],
                           ["tree/ünï", True, None]]
    assert out["deep"] == [["tree/x/y/z/deep.csv", False, 3]]
    assert out["file"] == []
    assert out["text"] == "some text" and out["dict"] == {"k": [1, 2]}
    got = {k: bytes.fromhex(v) for k, v in out["got"].items()}
    assert got["tree/with space/b c.txt"] == b"B C" and got["tree/ünï/日本.txt"] == "uni".encode()
    assert got["one.bin"] == got["bins/one.bin"] == b"\x00\x01" * 100
    assert got["img/black.png"].startswith(b"\x89PNG")
    # on disk: the run folder's artifacts, nothing else
    artifacts = work / "store" / "runs" / rid / "artifacts"
    assert (artifacts / "tree" / "ünï" / "日本.txt").read_text() == "uni"
    assert not list(artifacts.rglob(UPLOAD_PREFIX + "*"))
    # content types as MLflow's server gives them, always as an attachment
    base = f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts"
    for rel, kind in [("notes/t.txt", "text/plain"), ("conf/d.json", "text/plain"), ("img/black.png", "image/png"),
                      ("one.bin", "application/octet-stream")]:
        status, headers, body = call(served, "GET", f"{base}/{rel}")
        assert status == 200 and headers["content-type"] == kind, (rel, headers)
        assert headers["content-disposition"].startswith("attachment") and headers["x-content-type-options"] == "nosniff"
        assert int(headers["content-length"]) == len(body)
    for path in (f"/get-artifact?run_id={rid}&path=notes/t.txt",
                 f"/ajax-api/2.0/mlflow/get-artifact?run_id={rid}&path=notes/t.txt"):
        assert call(served, "GET", path)[::2] == (200, b"some text")
    status, _, body = call(served, "GET", f"/api/2.0/mlflow/artifacts/list?run_id={rid}&path=notes")
    assert status == 200 and json.loads(body) == {"root_uri": out["uri"],
                                                  "files": [{"path": "notes/t.txt", "is_dir": False, "file_size": 9}]}
    status, _, body = call(served, "GET", f"/api/2.0/mlflow-artifacts/artifacts?path={exp}/{rid}/artifacts/notes")
    assert status == 200 and json.loads(body) == {"files": [{"path": "t.txt", "is_dir": False, "file_size": 9}]}
    ajax = f"/ajax-api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts"
    assert call(served, "PUT", f"{ajax}/notes/ajax.txt", b"via ajax")[0] == 200
    assert call(served, "GET", f"{ajax}/notes/ajax.txt")[::2] == (200, b"via ajax")
    status, _, body = call(served, "GET", f"/ajax-api/2.0/mlflow-artifacts/artifacts?path={exp}/{rid}/artifacts/notes")
    assert status == 200 and [f["path"] for f in json.loads(body)["files"]] == ["ajax.txt", "t.txt"]
    assert call(served, "DELETE", f"{ajax}/notes/ajax.txt")[0] == 200 and not (artifacts / "notes" / "ajax.txt").exists()
    status, _, body = call(served, "GET", f"{base}/notes/missing.txt")
    assert status == 404 and json.loads(body)["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    status, _, body = call(served, "GET", f"{base}/notes")
    assert status == 400 and "directory" in json.loads(body)["message"]


def test_fifty_megabytes_round_trip(mlflow_full_venv: Path, served: Server, work: Path, tmp_path: Path) -> None:
    out = client(mlflow_full_venv, served, tmp_path, """
        import hashlib, json, os, tempfile, mlflow
        src = os.path.join(tempfile.mkdtemp(), "big.bin")
        with open(src, "wb") as fh:
            for _ in range(50):
                fh.write(os.urandom(1 << 20))
        sent = hashlib.sha256(open(src, "rb").read()).hexdigest()
        with mlflow.start_run() as run:
            mlflow.log_artifact(src, artifact_path="data")
        dst = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="data/big.bin",
                                                  dst_path=tempfile.mkdtemp())
        got = hashlib.sha256(open(dst, "rb").read()).hexdigest()
        print(json.dumps({"run_id": run.info.run_id, "sent": sent, "got": got, "size": os.path.getsize(dst)}))
    """)
    assert out["sent"] == out["got"] and out["size"] == 50 << 20
    stored = work / "store" / "runs" / out["run_id"] / "artifacts" / "data" / "big.bin"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == out["sent"]


def test_delete_artifacts(mlflow_full_venv: Path, served: Server, work: Path, tmp_path: Path) -> None:
    out = client(mlflow_full_venv, served, tmp_path, """
        import json, mlflow
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
        with mlflow.start_run() as run:
            mlflow.log_text("a", "keep.txt")
            mlflow.log_text("b", "gone/one.txt")
            mlflow.log_text("c", "gone/sub/two.txt")
            mlflow.log_text("d", "single.txt")
        repo = get_artifact_repository(run.info.artifact_uri)
        repo.delete_artifacts("gone")
        repo.delete_artifacts("single.txt")
        repo.delete_artifacts("never-there")
        c = mlflow.MlflowClient()
        after = [f.path for f in c.list_artifacts(run.info.run_id)]
        c.delete_run(run.info.run_id)  # a deleted run's artifacts stay readable until garbage collection, as MLflow's
        deleted = [f.path for f in c.list_artifacts(run.info.run_id)]
        text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/keep.txt")
        print(json.dumps({"run_id": run.info.run_id, "after": after, "deleted": deleted, "text": text}))
    """)
    assert out["after"] == out["deleted"] == ["keep.txt"] and out["text"] == "a"
    assert sorted(os.listdir(work / "store" / "runs" / out["run_id"] / "artifacts")) == ["keep.txt"]


def test_logged_model_artifacts(mlflow_full_venv: Path, served: Server, work: Path, tmp_path: Path) -> None:
    out = client(mlflow_full_venv, served, tmp_path, """
        import json, mlflow
        import numpy as np
        from sklearn.linear_model import LinearRegression
        model = LinearRegression().fit(np.array([[1.0], [2.0], [3.0]]), np.array([2.0, 4.0, 6.0]))
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(model, name="model")
        by_id = mlflow.pyfunc.load_model(info.model_uri).predict(np.array([[4.0]])).tolist()
        by_run = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(np.array([[5.0]])).tolist()
        print(json.dumps({"model_id": info.model_id, "exp": run.info.experiment_id, "by_id": by_id, "by_run": by_run}))
    """)
    assert out["by_id"] == pytest.approx([8.0]) and out["by_run"] == pytest.approx([10.0])
    mid, exp = out["model_id"], out["exp"]
    assert (work / "store" / "logged_models" / mid / "artifacts" / "MLmodel").is_file()
    status, _, body = call(served, "GET", f"/api/2.0/mlflow/logged-models/{mid}/artifacts/directories")
    listing = json.loads(body)
    assert status == 200 and listing["root_uri"] == f"mlflow-artifacts:/{exp}/models/{mid}/artifacts"
    assert {"path": "MLmodel", "is_dir": False} in [{k: f[k] for k in ("path", "is_dir")} for f in listing["files"]]
    status, headers, body = call(served, "GET",
                                 f"/ajax-api/2.0/mlflow/logged-models/{mid}/artifacts/files?artifact_file_path=MLmodel")
    assert status == 200 and headers["content-type"] == "text/plain" and b"flavors" in body
    status, _, body = call(served, "GET", f"/ajax-api/2.0/mlflow/logged-models/{mid}/artifacts/files")
    assert status == 400 and json.loads(body)["error_code"] == "BAD_REQUEST"
    status, _, body = call(served, "GET", f"/api/2.0/mlflow-artifacts/artifacts/{exp}/models/m-{'0' * 32}/artifacts/MLmodel")
    assert status == 404 and json.loads(body)["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def _attacks(exp: str, rid: str, mid: str) -> list[tuple[str, str]]:
    proxied = f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts"
    model = f"/ajax-api/2.0/mlflow/logged-models/{mid}/artifacts"
    paths = [f"{proxied}/../../../../../../etc/passwd", f"{proxied}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
             f"{proxied}/%252e%252e/%252e%252e/etc/passwd", f"{proxied}/..%2f..%2f..%2f..%2fetc%2fpasswd",
             f"{proxied}/..%5c..%5c..%5cetc%5cpasswd", f"{proxied}/a\\..\\..\\b", f"{proxied}/%00", f"{proxied}/a%00.txt",
             f"{proxied}/x%23y", f"{proxied}/x%3Fy", f"{proxied}/C:%5CWindows%5Cwin.ini", f"{proxied}/file:%2F%2F%2Fetc%2Fpasswd",
             "/api/2.0/mlflow-artifacts/artifacts//etc/passwd", "/api/2.0/mlflow-artifacts/artifacts/%2Fetc%2Fpasswd",
             f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/../../../etc/passwd",
             f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts/planted/passwd",
             f"/api/2.0/mlflow-artifacts/artifacts/{int(exp) + 100}/{rid}/artifacts/first.txt",  # another experiment
             f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid[:8]}/artifacts/first.txt",  # a prefix is not an id
             f"/api/2.0/mlflow-artifacts/artifacts/{exp}/last/artifacts/first.txt",
             f"/api/2.0/mlflow-artifacts/artifacts/{exp}/other/place/first.txt",
             "/api/2.0/mlflow-artifacts/artifacts/runs/x/artifacts/y"]
    attacks = [(m, p) for p in paths for m in ("GET", "PUT", "DELETE")]
    # reading the link itself is refused too (writing over it, or deleting it, touches only the link: unit-tested)
    attacks.append(("GET", f"{proxied}/planted"))
    for query in ("../../../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", "planted/passwd", "a%5cb",
                  "%252e%252e/etc"):
        attacks += [("GET", f"/api/2.0/mlflow/artifacts/list?run_id={rid}&path={query}"),
                    ("GET", f"/ajax-api/2.0/mlflow/artifacts/list?run_id={rid}&path={query}"),
                    ("GET", f"/get-artifact?run_id={rid}&path={query}"),
                    ("GET", f"/api/2.0/mlflow-artifacts/artifacts?path={query}"),
                    ("GET", f"{model}/files?artifact_file_path={query}"),
                    ("GET", f"/api/2.0/mlflow/logged-models/{mid}/artifacts/directories?artifact_directory_path={query}")]
        if not query.startswith("/"):  # below a root, "//etc" is only the run's own folder "etc"
            attacks.append(("GET", f"/api/2.0/mlflow-artifacts/artifacts?path={exp}/{rid}/artifacts/{query}"))
    return attacks


def test_path_attacks_are_refused_and_write_nothing(mlflow_full_venv: Path, served: Server, work: Path,
                                                    tmp_path: Path) -> None:
    run = new_run(mlflow_full_venv, served, tmp_path)
    model = client(mlflow_full_venv, served, tmp_path, """
        import json, mlflow
        m = mlflow.initialize_logged_model(name="m", experiment_id="0")
        print(json.dumps({"model_id": m.model_id}))
    """)
    rid, exp = run["run_id"], run["exp"]
    outside = work / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET-CONTENT")
    (work / "store" / "runs" / rid / "artifacts" / "planted").symlink_to("/etc")
    (work / "store" / "runs" / rid / "artifacts" / "planted_secret").symlink_to(outside / "secret.txt")
    model_folder = work / "store" / "logged_models" / model["model_id"] / "artifacts"
    model_folder.mkdir(parents=True)
    (model_folder / "planted").symlink_to("/etc")
    before = {p: p.stat().st_mtime_ns for p in work.rglob("*") if not p.is_symlink()}
    refused = []
    for method, path in _attacks(exp, rid, model["model_id"]) + [
            ("GET", f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts/planted_secret"),
            ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts/planted/evil.txt")]:
        status, headers, body = call(served, method, path, b"evil" if method == "PUT" else None)
        assert status in (400, 404), (method, path, status, body[:300])
        error = json.loads(body)
        assert error["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST"), error
        assert "\n" not in error["message"] and "Traceback" not in error["message"]
        assert b"root:" not in body and b"TOP-SECRET" not in body and str(work).encode() not in body
        refused.append(status)
    assert len(refused) > 100
    assert (outside / "secret.txt").read_text() == "TOP-SECRET-CONTENT" and list(outside.iterdir()) == [outside / "secret.txt"]
    assert not Path("/etc/evil.txt").exists() and Path("/etc/passwd").exists()
    after = {p: p.stat().st_mtime_ns for p in work.rglob("*") if not p.is_symlink()}
    changed = {str(p.relative_to(work)) for p in after if before.get(p) != after[p]}
    # the server's own log and database move; no file, no folder anywhere else was made or touched
    assert {c for c in changed if not c.endswith((".log", ".db", "-wal", "-shm")) and "/logs" not in c} == set(), changed
    listing = json.loads(call(served, "GET", f"/api/2.0/mlflow/artifacts/list?run_id={rid}")[2])
    assert [f["path"] for f in listing["files"]] == ["first.txt"]  # links out are not shown


def test_artifact_location_chosen_by_a_client_is_not_served(mlflow_full_venv: Path, served: Server,
                                                             tmp_path: Path) -> None:
    out = client(mlflow_full_venv, served, tmp_path, """
        import json, mlflow
        c = mlflow.MlflowClient()
        exp = c.create_experiment("elsewhere", artifact_location="file:///etc")
        run = c.create_run(exp)
        print(json.dumps({"run_id": run.info.run_id, "uri": run.info.artifact_uri}))
    """)
    rid = out["run_id"]
    assert out["uri"].startswith("file:///etc")
    for path in (f"/get-artifact?run_id={rid}&path=passwd", f"/api/2.0/mlflow/artifacts/list?run_id={rid}",
                 f"/api/2.0/mlflow/artifacts/list?run_id={rid}&path=.."):
        status, _, body = call(served, "GET", path)
        assert status == 400 and json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE", body
        assert b"root:" not in body


def _raw_put(server: Server, path: str, declared: int) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n\r\n".encode())
    return sock


def test_upload_cut_off_mid_body_leaves_no_file(mlflow_full_venv: Path, served: Server, work: Path,
                                                tmp_path: Path) -> None:
    run = new_run(mlflow_full_venv, served, tmp_path)
    folder = work / "store" / "runs" / run["run_id"] / "artifacts"
    base = f"/api/2.0/mlflow-artifacts/artifacts/{run['exp']}/{run['run_id']}/artifacts"
    for name in ("cut.bin", "first.txt"):  # a new name, and one that exists already
        sock = _raw_put(served, f"{base}/{name}", 50 << 20)
        sock.sendall(os.urandom(3 << 20))
        wait_for(lambda: [p for p in folder.iterdir() if p.name.startswith(UPLOAD_PREFIX) and p.stat().st_size],
                 what="part of the body in the temp file")
        assert name == "first.txt" or not (folder / name).exists()  # nothing under the real name meanwhile
        sock.close()  # the sender goes away with 47 MB still to come
        wait_for(lambda: not [p for p in folder.iterdir() if p.name.startswith(UPLOAD_PREFIX)], what="temp removed")
    assert sorted(os.listdir(folder)) == ["first.txt"] and (folder / "first.txt").read_text() == "first"
    status, _, body = call(served, "GET", f"/api/2.0/mlflow/artifacts/list?run_id={run['run_id']}")
    assert [f["path"] for f in json.loads(body)["files"]] == ["first.txt"]
    # the server is still there and a whole upload of the same name then succeeds
    assert call(served, "PUT", f"{base}/cut.bin", b"whole")[0] == 200 and (folder / "cut.bin").read_bytes() == b"whole"


MLPROJECT = """
name: art
entry_points:
  main:
    parameters:
      own: {type: string, default: ""}
    command: "python train.py {own}"
"""
TRAIN = """
import os, sys
print("hello from stdout", flush=True)
print("hello from stderr", file=sys.stderr, flush=True)
sub = os.path.join(os.environ["PROJ_ARTIFACT_DIR"], sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else "out")
os.makedirs(sub, exist_ok=True)
open(os.path.join(sub, "mine.txt"), "w").write("mine")
"""


@pytest.fixture
def proj_runs(proj: Proj, make_project: Any, tmp_path: Path) -> dict[str, str]:
    """Two runs made by `proj run` from a dirty git work tree: one plain, one whose own artifacts have proj/."""
    root = make_project({"MLproject": MLPROJECT, "train.py": TRAIN})
    git(root, "init", "-q", "-b", "main")
    commit(root, {"extra.txt": "committed\n"}, "one")
    (root / "extra.txt").write_text("committed\nand changed\n")
    runs = {}
    for key, args in (("plain", ()), ("own", ("-P", "own=proj"))):
        out = proj("run", str(root), "--env-manager", "local", *args)
        assert out.code == 0, out
        runs[key] = proj.runs()[0]["id"]
    return runs


def test_proj_folder_of_a_proj_run(mlflow_full_venv: Path, proj: Proj, proj_runs: dict[str, str],
                                   tmp_path: Path) -> None:
    store = tmp_path / "store"
    lock = open_store(str(store)).get_lock(proj_runs["plain"])
    assert lock is not None
    with proj_server(store, tmp_path) as server:
        out = client(mlflow_full_venv, server, tmp_path, f"""
            import json, os, tempfile, mlflow
            c = mlflow.MlflowClient()
            ls = lambda rid, p=None: [[f.path, f.is_dir] for f in c.list_artifacts(rid, p)]
            plain, own = {proj_runs["plain"]!r}, {proj_runs["own"]!r}
            dst = mlflow.artifacts.download_artifacts(run_id=plain, artifact_path="proj", dst_path=tempfile.mkdtemp())
            files = {{}}
            for root, _, names in os.walk(dst):
                for n in names:
                    files[os.path.relpath(os.path.join(root, n), dst)] = open(os.path.join(root, n), errors="replace").read()
            print(json.dumps({{"root": ls(plain), "proj": ls(plain, "proj"), "logs": ls(plain, "proj/logs"),
                              "files": files, "own_root": ls(own), "own_proj": ls(own, "proj")}}))
        """)
        base = f"/api/2.0/mlflow-artifacts/artifacts/0/{proj_runs['plain']}/artifacts"
        refused = [call(server, m, f"{base}/proj/{name}", b"x" if m == "PUT" else None)
                   for m in ("PUT", "DELETE") for name in ("logs/stdout.log", "new.txt")]
        status, headers, body = call(server, "GET", f"/get-artifact?run_id={proj_runs['plain']}&path=proj/logs/stdout.log")
    assert ["proj", True] in out["root"] and ["out", True] in out["root"] and ["source", True] in out["root"]
    names = {p for p, _ in out["proj"]}
    assert {"proj/logs", "proj/source.patch"} <= names, out["proj"]
    assert names == {"proj/logs", "proj/source.patch", f"proj/{lock_artifact_name(lock[0])}"}, out["proj"]
    assert {"proj/logs/stdout.log", "proj/logs/stderr.log"} <= {p for p, _ in out["logs"]}
    assert "hello from stdout" in out["files"]["logs/stdout.log"]
    assert "hello from stderr" in out["files"]["logs/stderr.log"]
    assert "and changed" in out["files"]["source.patch"]
    assert out["files"][lock_artifact_name(lock[0])] == lock[1]
    assert status == 200 and b"hello from stdout" in body and headers["content-type"] == "text/plain"
    for status, _, body in refused:
        assert status == 400 and b"read-only" in body, body
    assert "hello from stdout" in (store / "runs" / proj_runs["plain"] / "logs" / "stdout.log").read_text()
    # the run's own proj/ folder wins: the virtual one is not shown
    assert out["own_proj"] == [["proj/mine.txt", False]]


def test_artifacts_destination_writes_there_and_still_reads_proj_runs(mlflow_full_venv: Path, proj: Proj,
                                                                      proj_runs: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    with proj_server(tmp_path / "store", tmp_path, "--artifacts-destination", str(dest)) as server:
        out = client(mlflow_full_venv, server, tmp_path, f"""
            import json, mlflow
            with mlflow.start_run() as run:
                mlflow.log_text("via dest", "d/x.txt")
            c = mlflow.MlflowClient()
            print(json.dumps({{"run_id": run.info.run_id, "exp": run.info.experiment_id,
                              "new": [f.path for f in c.list_artifacts(run.info.run_id, "d")],
                              "old": [f.path for f in c.list_artifacts({proj_runs["plain"]!r}, "out")],
                              "text": mlflow.artifacts.load_text(f"runs:/{proj_runs['plain']}/out/mine.txt")}}))
        """)
        # an experiment whose artifact_location climbs out of the destination (CVE-2023-6015's shape)
        climb = client(mlflow_full_venv, server, tmp_path, """
            import json, mlflow
            c = mlflow.MlflowClient()
            try:
                exp = c.create_experiment("climb", artifact_location="mlflow-artifacts:/../../../../etc")
            except mlflow.exceptions.MlflowException as exc:
                print(json.dumps({"refused": exc.error_code}))
            else:
                print(json.dumps({"run_id": c.create_run(exp).info.run_id}))
        """)
        if "run_id" in climb:
            for method, path in (("GET", f"/api/2.0/mlflow/artifacts/list?run_id={climb['run_id']}"),
                                 ("GET", f"/get-artifact?run_id={climb['run_id']}&path=passwd")):
                status, _, body = call(server, method, path)
                assert status == 400 and json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE", body
                assert b"root:" not in body
        else:
            assert climb["refused"] == "INVALID_PARAMETER_VALUE"
    assert (dest / out["exp"] / out["run_id"] / "artifacts" / "d" / "x.txt").read_text() == "via dest"
    assert not (tmp_path / "store" / "runs" / out["run_id"] / "artifacts" / "d").exists()
    assert out["new"] == ["d/x.txt"] and out["old"] == ["out/mine.txt"] and out["text"] == "mine"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (root only): an artifacts destination that fills up mid-upload."""
    import subprocess

    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    where = tmp_path / "tiny"
    where.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True, text=True)
    require(out.returncode == 0, f"cannot mount a tmpfs: {out.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_full_disk_mid_upload_leaves_nothing(mlflow_full_venv: Path, tiny_disk: Path, tmp_path: Path) -> None:
    with proj_server(tmp_path / "store", tmp_path, "--artifacts-destination", str(tiny_disk)) as server:
        run = new_run(mlflow_full_venv, server, tmp_path)
        base = f"/api/2.0/mlflow-artifacts/artifacts/{run['exp']}/{run['run_id']}/artifacts"
        status, _, body = call(server, "PUT", f"{base}/big.bin", os.urandom(5 << 20))
        assert status == 500, body
        error = json.loads(body)
        assert error["error_code"] == "INTERNAL_ERROR" and "No space left" in error["message"]
        assert str(tiny_disk).encode() not in body
        folder = tiny_disk / run["exp"] / run["run_id"] / "artifacts"
        assert sorted(os.listdir(folder)) == ["first.txt"]  # no half file, no temp file
        assert call(server, "GET", f"{base}/first.txt")[::2] == (200, b"first")


def test_oversize_bodies_are_refused_and_store_nothing(tmp_path: Path) -> None:
    """--max-artifact-size: an upload announcing more, or sending more without saying (chunked), is 413
    RESOURCE_LIMIT_EXCEEDED with nothing stored; a JSON body over its limit is refused before it is read whole."""
    with proj_server(tmp_path / "store", tmp_path, "--max-artifact-size", "1M") as server:
        status, _, body = call(server, "POST", "/api/2.0/mlflow/runs/create", b'{"experiment_id": "0"}')
        run = json.loads(body)["run"]["info"]
        base = f"/api/2.0/mlflow-artifacts/artifacts/0/{run['run_id']}/artifacts"
        folder = tmp_path / "store" / "runs" / run["run_id"] / "artifacts"
        assert call(server, "PUT", f"{base}/limit.bin", b"x" * (1 << 20))[0] == 200  # exactly the limit
        for size in ((1 << 20) + 1, 24 << 20):  # just over, and far over (the client still reads the answer)
            status, _, body = call(server, "PUT", f"{base}/big.bin", b"x" * size)
            assert status == 413 and json.loads(body)["error_code"] == "RESOURCE_LIMIT_EXCEEDED", body
            assert "limit of 1,048,576 bytes" in json.loads(body)["message"]
        host, port = server.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        # chunked, over the limit in the middle, and over it in its last chunk (the stream read to its end)
        for chunks in ([b"y" * (256 << 10)] * 40, [b"y" * (1 << 20), b"y"]):
            conn.request("PUT", f"{base}/chunked.bin", body=iter(chunks), encode_chunked=True)
            resp = conn.getresponse()
            assert resp.status == 413 and json.loads(resp.read())["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
        conn.close()
        assert sorted(p.name for p in folder.iterdir()) == ["limit.bin"]  # no big.bin, no chunked.bin, no temp file
        batch = json.dumps({"run_id": run["run_id"], "tags": [{"key": "t", "value": "v" * (40 << 20)}]}).encode()
        status, _, body = call(server, "POST", "/api/2.0/mlflow/runs/log-batch", batch)
        assert status == 413 and json.loads(body)["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
        status, _, body = call(server, "GET", f"/api/2.0/mlflow/runs/get?run_id={run['run_id']}")
        assert status == 200 and "t" not in {t["key"] for t in json.loads(body)["run"]["data"].get("tags", [])}
    bad = subprocess.run([sys.executable, "-m", "proj", "server", "--backend-store-uri", str(tmp_path / "s"),
                          "--max-artifact-size", "lots"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "--max-artifact-size 'lots'" in bad.stderr, bad
