"""`proj server --artifacts-destination s3://bucket/prefix` against moto's standalone S3 server (an S3 emulator
over HTTP; no real AWS here), driven by the pinned MLflow client and by raw HTTP: round trips byte-exact, the
objects really in the bucket under the prefix, registering from the bucket, previews, a cut-off upload, path
attacks, start-up refusals in one line, and the endpoint dying mid-run."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers.cli import wait_for
from helpers.moto import SECRET, Moto, moto_server
from helpers.servers import Server, client_json, free_port, proj_server

pytestmark = [pytest.mark.slow, pytest.mark.mlflow, pytest.mark.xdist_group("s3-artifacts")]

BUCKET, PREFIX = "proj-arts", "team/a"
DEST = f"s3://{BUCKET}/{PREFIX}"
ART = "/api/2.0/mlflow-artifacts/artifacts"


def _isolated(env: dict[str, str], spool: Path) -> dict[str, str]:
    """The env plus no ambient AWS config, and TMPDIR where the test can see the server's upload spool."""
    spool.mkdir(parents=True, exist_ok=True)
    return {**env, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "TMPDIR": str(spool)}


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    with moto_server(tmp_path_factory.mktemp("moto")) as m:
        m.make_bucket(BUCKET)
        yield m


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("s3-server")


@pytest.fixture(scope="module")
def server(moto: Moto, work: Path) -> Iterator[Server]:
    with proj_server(work / "store", work, "--artifacts-destination", DEST,
                     env=_isolated(moto.env(), work / "spool")) as srv:
        yield srv


def _api(url: str, endpoint: str, payload: dict[str, Any] | None = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(f"{url}/api/2.0/mlflow/{endpoint}", data=data,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read() or b"{}")


def _new_run(url: str) -> str:
    run_id: str = _api(url, "runs/create", {"experiment_id": "0", "start_time": 1})["run"]["info"]["run_id"]
    return run_id


def _raw(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """A request whose path is sent exactly as given (urllib would not normalise it, but http.client is plainer)."""
    parsed = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _put(url: str, run_id: str, rel: str, data: bytes) -> None:
    status, body = _raw(url, "PUT", f"{ART}/0/{run_id}/artifacts/{rel}", data)
    assert status == 200, body


def _key(run_id: str, rel: str) -> str:
    return f"{PREFIX}/0/{run_id}/artifacts/{rel}"


ROUND_TRIP = """
import hashlib, os, random
def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()
os.makedirs("src/deep/er", exist_ok=True)
open("src/top.txt", "w").write("top")
open("src/deep/er/leaf.json", "w").write('{"a": 1}')
random.seed(7)
with open("big.bin", "wb") as fh:
    fh.write(random.randbytes(30 << 20))
with mlflow.start_run() as run:
    mlflow.log_artifact("big.bin")
    mlflow.log_artifacts("src", "tree")
rid = run.info.run_id
out["run_id"] = rid
out["root"] = sorted((f.path, f.is_dir, f.file_size) for f in client.list_artifacts(rid))
out["deep"] = sorted((f.path, f.is_dir, f.file_size) for f in client.list_artifacts(rid, "tree/deep/er"))
got = mlflow.artifacts.download_artifacts(run_id=rid, dst_path="got")
out["same"] = {rel: sha(os.path.join(got, rel)) == sha(src)
               for rel, src in [("big.bin", "big.bin"), ("tree/top.txt", "src/top.txt"),
                                ("tree/deep/er/leaf.json", "src/deep/er/leaf.json")]}
out["big_sha"] = sha("big.bin")
"""


def test_round_trip_byte_exact_and_objects_are_in_the_bucket(server: Server, moto: Moto, work: Path,
                                                              mlflow_full_venv: Path, tmp_path: Path) -> None:
    out = client_json(mlflow_full_venv, ROUND_TRIP, server.url, tmp_path)
    rid = out["run_id"]
    assert out["root"] == [["big.bin", False, 30 << 20], ["tree", True, None]]
    assert out["deep"] == [["tree/deep/er/leaf.json", False, 8]]
    assert out["same"] == {"big.bin": True, "tree/top.txt": True, "tree/deep/er/leaf.json": True}
    objects = moto.keys(BUCKET)
    mine = {k: v for k, v in objects.items() if f"/{rid}/" in k}
    assert sorted(mine) == [_key(rid, "big.bin"), _key(rid, "tree/deep/er/leaf.json"), _key(rid, "tree/top.txt")]
    assert hashlib.sha256(mine[_key(rid, "big.bin")]).hexdigest() == out["big_sha"]
    assert all(k.startswith(PREFIX + "/") for k in objects)
    # nothing of it went to the server's disk: the run folder holds no artifacts, the upload spool is empty
    assert not [p for p in (work / "store").rglob("big.bin")]
    assert list((work / "spool").iterdir()) == []


def test_delete_removes_the_folder_and_nothing_beside_it(server: Server, moto: Moto) -> None:
    rid = _new_run(server.url)
    for rel in ("d/one.txt", "d/sub/two.txt", "d2/keep.txt", "dz.txt"):
        _put(server.url, rid, rel, rel.encode())
    status, body = _raw(server.url, "DELETE", f"{ART}/0/{rid}/artifacts/d")
    assert status == 200, body
    assert sorted(k for k in moto.keys(BUCKET) if f"/{rid}/" in k) == [_key(rid, "d2/keep.txt"), _key(rid, "dz.txt")]
    status, _ = _raw(server.url, "DELETE", f"{ART}/0/{rid}/artifacts/dz.txt")
    assert status == 200
    listed = _api(server.url, f"artifacts/list?run_id={rid}")
    assert [f["path"] for f in listed["files"]] == ["d2"]


REGISTER = """
import os
import mlflow.pyfunc
import pandas as pd

class Add(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input["x"] + 1

with mlflow.start_run() as run:
    mlflow.pyfunc.log_model(name="model", python_model=Add())
    mlflow.pyfunc.save_model("saved", python_model=Add())
    mlflow.log_artifacts("saved", "manual")
rid = run.info.run_id
frame = pd.DataFrame({"x": [1, 2]})
for name, path in (("s3-logged", "model"), ("s3-manual", "manual")):
    version = mlflow.register_model(f"runs:/{rid}/{path}", name)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
    out[name] = [version.version, list(loaded.predict(frame))]
out["run_id"] = rid
"""


def test_register_a_model_whose_files_are_in_the_bucket(server: Server, moto: Moto, mlflow_full_venv: Path,
                                                        tmp_path: Path) -> None:
    out = client_json(mlflow_full_venv, REGISTER, server.url, tmp_path)
    assert out["s3-logged"] == ["1", [2, 3]]
    assert out["s3-manual"] == ["1", [2, 3]]
    keys = moto.keys(BUCKET)
    assert _key(out["run_id"], "manual/MLmodel") in keys
    assert any(k.startswith(f"{PREFIX}/logged_models/") and k.endswith("/artifacts/MLmodel") for k in keys)


def test_ui_preview_reads_an_artifact_from_the_bucket(server: Server) -> None:
    rid = _new_run(server.url)
    _put(server.url, rid, "notes/readme.md", b"# hello from s3\n")
    query = urllib.parse.urlencode({"run_id": rid, "path": "notes/readme.md"})
    with urllib.request.urlopen(f"{server.url}/ajax-api/2.0/proj/artifacts/preview?{query}", timeout=60) as resp:
        shown = json.loads(resp.read())
    assert shown["kind"] == "text" and shown["text"] == "# hello from s3\n" and shown["size"] == 16
    query = urllib.parse.urlencode({"run_id": rid, "path": "notes"})
    with urllib.request.urlopen(f"{server.url}/ajax-api/2.0/proj/artifacts/preview?{query}", timeout=60) as resp:
        folder = json.loads(resp.read())
    assert folder["kind"] == "dir" and [e["path"] for e in folder["entries"]] == ["notes/readme.md"]


def test_a_cut_off_upload_leaves_no_object(server: Server, moto: Moto, work: Path) -> None:
    rid = _new_run(server.url)
    parsed = urllib.parse.urlparse(server.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    conn.putrequest("PUT", f"{ART}/0/{rid}/artifacts/cut.bin")
    conn.putheader("Content-Length", str(10 << 20))
    conn.endheaders()
    conn.send(b"x" * (1 << 20))  # a tenth of what was announced, then the client goes away
    wait_for(lambda: list((work / "spool").iterdir()), 60, "the server to begin spooling the upload")
    conn.close()
    wait_for(lambda: list((work / "spool").iterdir()) == [], 60, "the server to drop the spooled part")
    _put(server.url, rid, "after.txt", b"the server still serves")
    keys = [k for k in moto.keys(BUCKET) if f"/{rid}/" in k]
    assert keys == [_key(rid, "after.txt")]


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_path_attacks_are_refused(server: Server, moto: Moto, method: str) -> None:
    victim, attacker = _new_run(server.url), _new_run(server.url)
    _put(server.url, victim, "secret.txt", b"victim's secret")
    body = b"overwritten" if method == "PUT" else None
    attacks = [f"{ART}/0/{attacker}/artifacts/../../{victim}/artifacts/secret.txt",
               f"{ART}/0/{attacker}/artifacts/%2e%2e/%2e%2e/{victim}/artifacts/secret.txt",
               f"{ART}/0/{attacker}/artifacts/%252e%252e/%252e%252e/{victim}/artifacts/secret.txt",
               f"{ART}//0/{victim}/artifacts/secret.txt/../../../../x",
               f"{ART}/9/{victim}/artifacts/secret.txt"]  # the victim's id under another experiment
    for path in attacks:
        status, answer = _raw(server.url, method, path, body)
        assert status in (400, 403, 404), (path, status, answer)
        assert b"victim's secret" not in answer and b"Traceback" not in answer
        assert "error_code" in json.loads(answer), (path, answer)
    query = urllib.parse.urlencode({"run_id": attacker, "path": f"../../{victim}/artifacts/secret.txt"})
    status, answer = _raw(server.url, "GET", f"/get-artifact?{query}")
    assert status == 400 and b"victim's secret" not in answer
    status, answer = _raw(server.url, "GET", f"{ART}?" + urllib.parse.urlencode({"path": f"/{PREFIX}/0/{victim}"}))
    assert status == 400 and victim.encode() not in answer.replace(f"/{PREFIX}/0/{victim}".encode(), b"")
    objects = moto.keys(BUCKET)
    assert objects[_key(victim, "secret.txt")] == b"victim's secret"
    assert all(k.startswith(PREFIX + "/") for k in objects)
    assert not [k for k in objects if ".." in k.split("/") or "%2e" in k.lower()]


def _start(store: Path, destination: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "proj", "server", "--backend-store-uri", str(store), "--artifacts-destination",
            destination, "--port", str(free_port())]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def _one_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert out.returncode != 0 and len(lines) == 1 and "Traceback" not in out.stderr, out
    return lines[0]


def test_unusable_destinations_fail_at_start_in_one_line(moto: Moto, tmp_path: Path) -> None:
    env = _isolated(moto.env(), tmp_path / "spool")
    said = _one_line(_start(tmp_path / "s1", "gs://bucket/x", env))
    assert "'gs' is not supported" in said and "s3://bucket" in said
    said = _one_line(_start(tmp_path / "s2", "s3://no-such-bucket-here/x", env))
    assert "'no-such-bucket-here' does not exist" in said
    down = f"http://127.0.0.1:{free_port()}"
    said = _one_line(_start(tmp_path / "s3", DEST, {**env, "MLFLOW_S3_ENDPOINT_URL": down}))
    assert "cannot reach" in said and down in said
    said = _one_line(_start(tmp_path / "s4", "s3://bucket/../x", env))
    assert "'..'" in said
    assert not (tmp_path / "s1").exists()  # refused before the store was made


def test_wrong_credentials_fail_at_start_in_one_line(tmp_path: Path) -> None:
    """moto checks signatures only when told to (after INITIAL_NO_AUTH_ACTION_COUNT unchecked calls): the
    first three make a user, its key and its policy; from then on a wrong secret is refused, as by AWS."""
    with moto_server(tmp_path / "moto", {"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as m:
        import boto3

        iam = boto3.client("iam", endpoint_url=m.url, region_name="us-east-1", aws_access_key_id="setup",
                           aws_secret_access_key="setup")
        iam.create_user(UserName="proj")
        key = iam.create_access_key(UserName="proj")["AccessKey"]
        iam.put_user_policy(UserName="proj", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        m.client(key["AccessKeyId"], key["SecretAccessKey"]).create_bucket(Bucket=BUCKET)
        wrong = "wrong-secret-must-not-be-printed"
        out = _start(tmp_path / "s", DEST, _isolated(m.env(key["AccessKeyId"], wrong), tmp_path / "spool"))
        said = _one_line(out)
        assert "refused the credentials" in said and "AWS_SECRET_ACCESS_KEY" in said
        assert wrong not in out.stdout + out.stderr and SECRET not in out.stdout + out.stderr
        with proj_server(tmp_path / "ok", tmp_path, "--artifacts-destination", DEST,
                         env=_isolated(m.env(key["AccessKeyId"], key["SecretAccessKey"]), tmp_path / "spool2")) as srv:
            assert _new_run(srv.url)  # the right key passes the same check (moto's IAM emulation refuses some
            # later listings even to an s3:* policy, so uploads under it are tested with moto's open mode above)


def _error(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    status, answer = _raw(url, method, path, body)
    return status, json.loads(answer)


def test_endpoint_down_mid_run_is_a_json_503_and_the_server_recovers(tmp_path: Path) -> None:
    with moto_server(tmp_path / "moto") as m:
        m.make_bucket(BUCKET)
        with proj_server(tmp_path / "store", tmp_path, "--artifacts-destination", DEST,
                         env=_isolated(m.env(), tmp_path / "spool")) as srv:
            rid = _new_run(srv.url)
            _put(srv.url, rid, "before.txt", b"before")
            m.stop()
            for method, path, body in (("GET", f"{ART}/0/{rid}/artifacts/before.txt", None),
                                       ("PUT", f"{ART}/0/{rid}/artifacts/during.txt", b"during"),
                                       ("GET", f"{ART}?path=0/{rid}/artifacts", None),
                                       ("DELETE", f"{ART}/0/{rid}/artifacts/before.txt", None)):
                status, answer = _error(srv.url, method, path, body)
                assert status == 503 and answer["error_code"] == "TEMPORARILY_UNAVAILABLE", (method, answer)
                assert "\n" not in answer["message"] and "Traceback" not in answer["message"]
                assert SECRET not in answer["message"]
            assert list((tmp_path / "spool").iterdir()) == []  # the failed upload's spool file is gone too
            m.start()  # back, but empty (moto keeps its objects in memory): the bucket is gone
            status, answer = _error(srv.url, "GET", f"{ART}/0/{rid}/artifacts/before.txt")
            assert status == 500 and "bucket 'proj-arts' does not exist" in answer["message"], answer
            m.make_bucket(BUCKET)
            _put(srv.url, rid, "after.txt", b"after")
            listed = _api(srv.url, f"artifacts/list?run_id={rid}")
            assert [f["path"] for f in listed["files"]] == ["after.txt"]
            assert "Traceback" not in srv.output()


RUN_PROJECT = {
    "MLproject": """
        name: s3run
        entry_points:
          main:
            command: "python train.py"
        """,
    "train.py": """
        import os
        art = os.environ["PROJ_ARTIFACT_DIR"]
        os.makedirs(os.path.join(art, "out"), exist_ok=True)
        with open(os.path.join(art, "out", "result.txt"), "w") as fh:
            fh.write("made by proj run")
        print("trained", flush=True)
        """,
}


def test_proj_run_against_the_server_lands_its_artifacts_in_the_bucket(server: Server, moto: Moto, proj: Any,
                                                                       make_project: Any) -> None:
    project = make_project(RUN_PROJECT)
    out = proj("run", str(project), "--env-manager", "local", "--experiment-name", "s3-runs", "--tracking-uri",
               server.url, env={"PROJ_HTTP_RETRY_SECONDS": "20"})
    assert out.code == 0, out
    found = [k for k in moto.keys(BUCKET) if k.endswith("/artifacts/out/result.txt")]
    assert len(found) == 1 and moto.keys(BUCKET)[found[0]] == b"made by proj run"
    run_root = found[0][: -len("out/result.txt")]
    assert run_root.startswith(PREFIX + "/")
    logs = moto.keys(BUCKET, run_root + "proj/logs/")
    assert b"trained" in logs[run_root + "proj/logs/stdout.log"]


def test_postgresql_store_with_a_bucket_and_two_workers(pg_store_uri: str, tmp_path: Path) -> None:
    """Run folders (logs, locks) go to PROJ_STORE_FILES, artifacts to the bucket; each worker process builds its
    own connection to the bucket from the environment the server hands it."""
    with moto_server(tmp_path / "moto") as m:
        m.make_bucket(BUCKET)
        files = tmp_path / "files"
        env = {**_isolated(m.env(), tmp_path / "spool"), "PROJ_STORE_FILES": str(files)}
        with proj_server(pg_store_uri, tmp_path, "--artifacts-destination", DEST, "--workers", "2",
                         env=env) as srv:  # type: ignore[arg-type]
            runs = [_new_run(srv.url) for _ in range(4)]
            for rid in runs:
                _put(srv.url, rid, "w.txt", rid.encode())
            for rid in runs:
                status, body = _raw(srv.url, "GET", f"{ART}/0/{rid}/artifacts/w.txt")
                assert status == 200 and body == rid.encode()
        assert m.keys(BUCKET) == {_key(rid, "w.txt"): rid.encode() for rid in runs}
        assert files.is_dir() and not list(files.rglob("w.txt"))
