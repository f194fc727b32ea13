"""The real `proj server` on PostgreSQL under load and faults: 32 writers and 8 readers with no error and every
point stored once; PostgreSQL restarted and stopped under that load (503 with Retry-After, clients retry, nothing
acknowledged lost, MLflow's own client rides it out); the server killed with SIGKILL during writes and uploads
(SQLite and PostgreSQL) and started again on the same store (no partial batch, no partial artifact)."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from backends.postgres.load import BATCHES, KEYS, STEPS, Client, Tally, batch, load
from helpers.postgres import Cluster, start_cluster
from helpers.servers import build_mlflow_venv, client_json, proj_server
from proj.errors import StoreError, StoreUnavailable
from proj.tracking.open import open_store
from proj.tracking.pg_connection import WRITE_LOCK
from proj.tracking.postgres import connect, upgrade

SECONDS = 12  # each load's length: two cores shared with other work, so the whole module stays near a minute
WORKERS = "2"


@pytest.fixture(scope="module")
def private_pg() -> Iterator[Cluster]:
    """A cluster of this module's own, which its tests stop and restart: never the session's shared one."""
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def private_uri(private_pg: Cluster) -> Iterator[str]:
    name = private_pg.create_database("f")
    uri = private_pg.uri(name)
    db = connect(uri)
    upgrade(db)
    db.close()
    yield uri
    private_pg.drop_database(name)


@pytest.fixture(scope="module")
def mlflow_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mlflow_venv(tmp_path_factory.mktemp("mlflow-cache"))


def _sql(uri: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(uri, autocommit=True) as conn:
        cursor = conn.execute(query)
        return cursor.fetchall() if cursor.description else []


def _backend(uri: str, database: str, condition: str, what: str) -> int:
    """The pid of the server process of ``database`` that meets ``condition`` (pg_stat_activity), within 10 s."""
    for _ in range(200):
        found = _sql(uri, f"SELECT pid FROM pg_stat_activity WHERE {condition} AND datname = '{database}'")
        if found:
            return int(found[0][0])
        time.sleep(0.05)
    raise AssertionError(what)


def _experiment(url: str, name: str) -> str:
    made = Client(url, Tally()).call("POST", "/experiments/create", {"name": name})
    assert made is not None
    return str(made["experiment_id"])


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(timeout=180)
        assert not thread.is_alive(), "a load client did not stop"


def _stored_once(uri: str, tally: Tally) -> tuple[int, int]:
    """Every acknowledged point is in the database; (points stored for acknowledged runs, duplicated points)."""
    counts = dict(_sql(uri, "SELECT run_id, count(*) FROM metrics GROUP BY run_id"))
    duplicated = _sql(uri, "SELECT count(*) FROM (SELECT run_id, key, step FROM metrics GROUP BY run_id, key, step"
                           " HAVING count(*) > 1) d")[0][0]
    missing = {run: (acked, counts.get(run, 0)) for run, acked in tally.points.items() if counts.get(run, 0) < acked}
    assert not missing, f"acknowledged points lost (run: acknowledged, stored): {missing}"
    return sum(counts.get(run, 0) for run in tally.points), duplicated


def _say(what: str, tally: Tally, **more: Any) -> None:
    extra = "".join(f", {k}={v}" for k, v in more.items())
    print(f"\n{what}: requests={tally.requests}, 503={tally.unavailable}, reads={tally.reads}, "
          f"runs={len(tally.points)}, finished={len(tally.finished)}, points={sum(tally.points.values())}{extra}")


def test_32_writers_8_readers_no_error_every_point_once(pg_store_uri: str, tmp_path: Path) -> None:
    with proj_server(tmp_path, tmp_path, "--backend-store-uri", pg_store_uri, "--artifacts-destination",
                     str(tmp_path / "artifacts"), "--workers", WORKERS, "--log-level", "warning") as server:
        experiment = _experiment(server.url, "load")
        tally, threads = load(server.url, experiment, SECONDS)
        _join(threads)
        assert "Traceback" not in server.output(), server.output()[-3000:]
    assert not tally.errors, tally.errors[:5]
    assert tally.unavailable == 0
    stored, duplicated = _stored_once(pg_store_uri, tally)
    assert duplicated == 0
    assert stored == sum(tally.points.values())  # exactly once
    assert len(tally.points) >= 32 and tally.finished == set(tally.points)  # each writer finishes what it began
    statuses = dict(_sql(pg_store_uri, "SELECT status, count(*) FROM runs GROUP BY status"))
    assert statuses == {"FINISHED": len(tally.points)}, statuses
    params = _sql(pg_store_uri, "SELECT count(*) FROM params")[0][0]
    assert params == len(tally.points) * BATCHES
    _say("load", tally, stored=stored, duplicated=duplicated)


# The pinned MLflow client logging through the restart with its own retries (urllib3's Retry, honouring
# Retry-After): started before the server (importing mlflow takes long on a busy machine), it reads the server's
# URL from a file, and writes a marker once its run exists, so the faults come while it logs.
_MLFLOW_SCRIPT = '''
import logging, os, pathlib, time
from mlflow.entities import Metric

url = pathlib.Path(os.environ["URL_FILE"])
while not url.exists():
    time.sleep(0.05)
client = MlflowClient(url.read_text())

retries = []
class Count(logging.Handler):
    def emit(self, record):
        retries.append(record.getMessage())
retry_log = logging.getLogger("urllib3.util.retry")
retry_log.setLevel(logging.DEBUG)
retry_log.addHandler(Count())

experiment = client.create_experiment("mlflow-client")
run = client.create_run(experiment)
pathlib.Path(os.environ["MARKER"]).touch()
for i in range(int(os.environ["POINTS"])):
    client.log_batch(run.info.run_id, metrics=[Metric("through", float(i), int(time.time() * 1000), i)])
    time.sleep(0.1)
client.set_terminated(run.info.run_id)
out["run_id"] = run.info.run_id
out["retries"] = len(retries)
out["history"] = len(client.get_metric_history(run.info.run_id, "through"))
'''
MLFLOW_POINTS = 40


def test_postgres_restarted_under_load_503_then_nothing_lost(private_pg: Cluster, private_uri: str,
                                                             mlflow_venv: Path, tmp_path: Path) -> None:
    marker, url_file = tmp_path / "mlflow-client-started", tmp_path / "url"
    answer: dict[str, Any] = {}
    mlflow_client = threading.Thread(target=lambda: answer.update(client_json(
        mlflow_venv, _MLFLOW_SCRIPT, "http://127.0.0.1:9", tmp_path,  # the real URL comes through URL_FILE
        env={"MARKER": str(marker), "POINTS": str(MLFLOW_POINTS), "URL_FILE": str(url_file)}, timeout=300)),
        daemon=True)
    mlflow_client.start()
    with proj_server(tmp_path, tmp_path, "--backend-store-uri", private_uri, "--artifacts-destination",
                     str(tmp_path / "artifacts"), "--workers", WORKERS, "--log-level", "warning") as server:
        experiment = _experiment(server.url, "restart")
        url_file.write_text(server.url)
        deadline = time.monotonic() + 120
        while not marker.exists() and mlflow_client.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "MLflow's client never started logging: the restart would not test it"
        tally, threads = load(server.url, experiment, SECONDS)
        time.sleep(3)
        private_pg.restart()  # every connection ended (a fast shutdown), the server back after a moment
        time.sleep(3)
        private_pg.halt()  # down for a while: connections refused
        time.sleep(2)
        private_pg.start()
        _join(threads)
        mlflow_client.join(timeout=300)
        log = server.output()
    assert "Traceback" not in log, log[-3000:]
    assert not tally.errors, tally.errors[:5]
    assert tally.unavailable > 0 and tally.no_retry_after == 0
    stored, duplicated = _stored_once(private_uri, tally)
    assert tally.finished == set(tally.points)
    statuses = dict(_sql(private_uri, "SELECT status, count(*) FROM runs WHERE experiment_id = "
                                      f"'{experiment}' GROUP BY status"))
    # A run whose create was acknowledged is FINISHED; a create that was cut off and retried may have committed
    # (then answered 503 when the connection broke after COMMIT was sent): that run is RUNNING and has no points.
    assert statuses.get("FINISHED") == len(tally.points), statuses
    assert answer.get("history") == MLFLOW_POINTS, answer
    through = _sql(private_uri, f"SELECT count(*), count(DISTINCT step) FROM metrics WHERE run_id = "
                                f"'{answer['run_id']}'")[0]
    assert through[1] == MLFLOW_POINTS
    assert _sql(private_uri, f"SELECT status FROM runs WHERE id = '{answer['run_id']}'") == [("FINISHED",)]
    _say("restart", tally, stored=stored, duplicated=duplicated, mlflow_points=through[0],
         mlflow_retries=answer.get("retries"), unfinished_runs=statuses.get("RUNNING", 0))


def test_a_connection_lost_mid_request_is_503_rolled_back_and_the_server_recovers(
        private_pg: Cluster, private_uri: str, tmp_path: Path) -> None:
    database = urlsplit(private_uri).path.lstrip("/")
    with proj_server(tmp_path, tmp_path, "--backend-store-uri", private_uri, "--artifacts-destination",
                     str(tmp_path / "artifacts"), "--log-level", "warning") as server:
        client = Client(server.url, Tally())
        experiment = _experiment(server.url, "cut")
        run_id = client.call("POST", "/runs/create", {"experiment_id": experiment})["run"]["info"]["run_id"]
        assert client.call("POST", "/runs/log-batch", {"run_id": run_id, **batch(0)}) == {}
        # Another session holds the row of tag t0: the next batch writes its metrics and params, then waits on
        # that row inside its transaction; the administrator ends the server's connection there.
        holder = psycopg.connect(private_uri, autocommit=True)
        holder.execute("BEGIN")
        holder.execute("UPDATE tags SET value = 'held' WHERE run_id = %s AND key = 't0'", (run_id,))
        second = {"run_id": run_id, **batch(1)}
        second["tags"] = [{"key": "t0", "value": "changed"}]
        answers: list[tuple[int, str | None, bytes]] = []
        sending = threading.Thread(target=lambda: answers.append(client._send("POST", "/runs/log-batch", second)))
        sending.start()
        waiting = _backend(private_uri, database, "wait_event_type = 'Lock'", "the batch never waited on the held row")
        _sql(private_uri, f"SELECT pg_terminate_backend({waiting})")
        sending.join(timeout=60)
        holder.execute("ROLLBACK")
        holder.close()
        status, retry_after, body = answers[0]
        assert status == 503 and retry_after == "2", answers
        error = json.loads(body)
        assert error["error_code"] == "TEMPORARILY_UNAVAILABLE" and "\n" not in error["message"], error
        # nothing of the cut-off batch: its metrics and params were written before the wait, and rolled back
        assert _sql(private_uri, f"SELECT count(*) FROM metrics WHERE run_id = '{run_id}'") == [(len(KEYS) * STEPS,)]
        assert _sql(private_uri, f"SELECT count(*) FROM params WHERE run_id = '{run_id}'") == [(1,)]
        # PostgreSQL down: refused (503); back: the same server answers, no restart of it
        private_pg.halt()
        try:
            status, retry_after, body = client._send("GET", "/runs/get", {"run_id": run_id})
            assert status == 503 and retry_after == "2", body
            status, retry_after, body = client._send("POST", "/runs/log-batch", second)
            assert status == 503 and json.loads(body)["error_code"] == "TEMPORARILY_UNAVAILABLE", body
        finally:
            private_pg.start()
        assert client.call("POST", "/runs/log-batch", second) == {}
        got = client.call("GET", "/runs/get", {"run_id": run_id})
        assert {t["key"]: t["value"] for t in got["run"]["data"]["tags"]}["t0"] == "changed"
        log = server.output()
    assert "Traceback" not in log, log[-3000:]
    assert sum("PostgreSQL store" in line for line in log.splitlines()) >= 3  # one line each, for the operator


def test_unavailable_is_told_apart_from_other_refusals(private_pg: Cluster, private_uri: str,
                                                       tmp_path: Path) -> None:
    missing = private_pg.uri("no_such_database")
    with pytest.raises(StoreError) as refused:
        open_store(missing, files_root=tmp_path, upgrade=False)
    assert not isinstance(refused.value, StoreUnavailable), refused.value  # a missing database keeps its code
    store = open_store(private_uri, files_root=tmp_path, upgrade=False)
    try:
        timeout = psycopg.connect(private_uri, autocommit=True)  # the lock held: a statement timeout is no outage
        timeout.execute(f"SELECT pg_advisory_lock({WRITE_LOCK})")
        store._db._conn.execute("SET statement_timeout = 200")  # type: ignore[attr-defined]
        with pytest.raises(StoreError) as slow:
            with store.transaction():
                store.create_experiment("slow")
        assert not isinstance(slow.value, StoreUnavailable) and "statement timeout" in str(slow.value)
        timeout.close()
        store._db._conn.execute("SET statement_timeout = 0")  # type: ignore[attr-defined]
        private_pg.halt()
        try:
            with pytest.raises(StoreUnavailable, match="Connection refused"):
                store.get_experiment("0")
            with pytest.raises(StoreUnavailable):
                open_store(private_uri, files_root=tmp_path, upgrade=False)
        finally:
            private_pg.start()
        assert store.get_experiment("0").name == "Default"  # the same handle, once it is back
    finally:
        store.close()  # type: ignore[attr-defined]


def test_a_commit_cut_off_is_unavailable_and_none_of_it_stays(private_pg: Cluster, private_uri: str,
                                                              tmp_path: Path) -> None:
    """The connection ended while COMMIT runs (a deferred trigger makes it take a while): the transaction's id is
    looked up on a new connection, found not committed, and the call is StoreUnavailable; nothing of it stays."""
    database = urlsplit(private_uri).path.lstrip("/")
    _sql(private_uri, "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS"
                      " $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$")
    _sql(private_uri, "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON experiments DEFERRABLE INITIALLY DEFERRED"
                      " FOR EACH ROW EXECUTE FUNCTION slow_commit()")
    store = open_store(private_uri, files_root=tmp_path, upgrade=False)
    failed: list[BaseException] = []

    def write() -> None:
        try:
            with store.transaction():
                store.create_experiment("cut at commit")
        except BaseException as exc:  # noqa: BLE001 - looked at below
            failed.append(exc)

    try:
        writing = threading.Thread(target=write)
        writing.start()
        sleeping = _backend(private_uri, database, "wait_event = 'PgSleep'", "the COMMIT never ran the deferred trigger")
        _sql(private_uri, f"SELECT pg_terminate_backend({sleeping})")
        writing.join(timeout=60)
        assert failed and isinstance(failed[0], StoreUnavailable), failed
        assert "\n" not in str(failed[0])
        _sql(private_uri, "DROP TRIGGER slow ON experiments")
        assert store.get_experiment_by_name("cut at commit") is None
        with store.transaction():  # the same handle, on a new connection
            store.create_experiment("after the cut")
        assert store.get_experiment_by_name("after the cut") is not None
    finally:
        store.close()  # type: ignore[attr-defined]


# ---- the server killed with SIGKILL during writes and uploads, started again on the same store ----

UPLOAD_BYTES = 4 * 1024 * 1024


def _content(name: str) -> bytes:
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (UPLOAD_BYTES // len(seed) + 1))[:UPLOAD_BYTES]


def _slow_upload(url: str, path: str, data: bytes, sent: threading.Event) -> int | None:
    """A PUT streamed in 64 KiB pieces with pauses (chunked): in flight for about a second; its status, or None
    when the server went away mid-body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(data), 65536):
            if start >= len(data) // 2:
                sent.set()
            yield data[start:start + 65536]
            time.sleep(0.015)

    try:
        conn.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{path}", body=pieces(),
                     headers={"Content-Type": "application/octet-stream"}, encode_chunked=True)
        return conn.getresponse().status
    except (http.client.HTTPException, OSError):
        return None
    finally:
        conn.close()


def _kill_writer(url: str, experiment: str, stop: threading.Event, acked: dict[str, set[int]],
                 sent: dict[str, set[int]]) -> None:
    """Batches numbered per run; a batch sent may be whole or absent after the kill, an acknowledged one whole."""
    client = Client(url, Tally())
    try:
        while not stop.is_set():
            made = client.call("POST", "/runs/create", {"experiment_id": experiment})
            if made is None:
                return
            run_id = made["run"]["info"]["run_id"]
            acked[run_id], sent[run_id] = set(), set()
            for number in range(BATCHES):
                sent[run_id].add(number)
                if client.call("POST", "/runs/log-batch", {"run_id": run_id, **batch(number)}) is None:
                    return
                acked[run_id].add(number)
            client.call("POST", "/runs/update", {"run_id": run_id, "status": "FINISHED"})
    except (http.client.HTTPException, OSError):
        return  # the server was killed


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_server_killed_mid_writes_and_uploads_restarts_whole(backend: str, request: pytest.FixtureRequest,
                                                              tmp_path: Path) -> None:
    if backend == "postgresql":
        store_args = ["--backend-store-uri", request.getfixturevalue("pg_store_uri"), "--artifacts-destination",
                      str(tmp_path / "artifacts")]
        root = tmp_path / "artifacts"
    else:
        store_args, root = ["--backend-store-uri", str(tmp_path / "store")], tmp_path / "store"
    acked: dict[str, set[int]] = {}
    sent: dict[str, set[int]] = {}
    uploads: dict[str, int | None] = {}  # path -> status (None: in flight when the server died)
    with proj_server(tmp_path, tmp_path, *store_args, "--log-level", "warning") as server:
        experiment = _experiment(server.url, "killed")
        stop = threading.Event()
        writers = [threading.Thread(target=_kill_writer, args=(server.url, experiment, stop, acked, sent),
                                    daemon=True) for _ in range(8)]
        for thread in writers:
            thread.start()
        client = Client(server.url, Tally())
        target = client.call("POST", "/runs/create", {"experiment_id": experiment})["run"]["info"]
        base = target["artifact_uri"].split("mlflow-artifacts:/", 1)[1].lstrip("/")
        done = f"{base}/done.bin"
        uploads[done] = _slow_upload(server.url, done, _content(done), threading.Event())
        flying: list[threading.Thread] = []
        halfway = []
        for n in range(3):
            path = f"{base}/flying/{n}.bin"
            half = threading.Event()
            halfway.append(half)
            thread = threading.Thread(target=lambda p=path, h=half: uploads.__setitem__(
                p, _slow_upload(server.url, p, _content(p), h)), daemon=True)
            thread.start()
            flying.append(thread)
        assert all(half.wait(timeout=60) for half in halfway), "an upload never got halfway before the kill"
        os.killpg(server.process.pid, signal.SIGKILL)  # mid-body, mid-batch: no shutdown of any kind
        server.process.wait()
        stop.set()
        for thread in writers + flying:
            thread.join(timeout=60)
    assert uploads[done] == 200
    assert any(uploads[f"{base}/flying/{n}.bin"] is None for n in range(3)), uploads  # cut off by the kill
    with proj_server(tmp_path, tmp_path, *store_args, "--log-level", "warning") as again:
        client = Client(again.url, Tally())
        partial = []
        whole_batches: set[tuple[str, int]] = set()
        for run_id, numbers in sent.items():
            got = client.call("GET", "/runs/get", {"run_id": run_id})
            assert got is not None, run_id
            params = {p["key"] for p in got["run"]["data"].get("params", [])}
            for number in numbers:
                steps = {number * STEPS + i for i in range(STEPS)}
                history = [client.call("GET", "/metrics/get-history", {"run_id": run_id, "metric_key": key})
                           .get("metrics", []) for key in KEYS]  # MLflow leaves an empty list out
                found = [{m["step"] for m in points} & steps for points in history]
                whole = all(f == steps for f in found) and f"p{number}" in params
                absent = not any(found) and f"p{number}" not in params
                if whole:
                    whole_batches.add((run_id, number))
                if number in acked[run_id]:
                    assert whole, (run_id, number, found, params)
                elif not (whole or absent):
                    partial.append((run_id, number))
        assert not partial, f"partial batches: {partial}"
        # Committed but never answered (the server died between COMMIT and its answer): a client that retries
        # such a batch (MLflow's retries a broken connection too) finds its points there and they count once.
        committed_unanswered = sum(1 for run_id, numbers in sent.items() for number in numbers - acked[run_id]
                                   if (run_id, number) in whole_batches)
        listing = client.call("GET", "/artifacts/list", {"run_id": target["run_id"], "path": "flying"})
        names = [f["path"] for f in (listing or {}).get("files", [])]
        parts = urlsplit(again.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        conn.request("GET", f"/api/2.0/mlflow-artifacts/artifacts?path={base}/flying")  # the proxied listing too
        proxied = json.loads(conn.getresponse().read())
        conn.close()
        names += [f["path"] for f in proxied.get("files", [])]
        assert not [n for n in names if ".proj-upload-" in n], names
        present = 0
        for path, status in uploads.items():
            conn = http.client.HTTPConnection(urlsplit(again.url).hostname, urlsplit(again.url).port, timeout=60)
            conn.request("GET", f"/api/2.0/mlflow-artifacts/artifacts/{path}")
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                present += 1
                assert hashlib.sha256(body).digest() == hashlib.sha256(_content(path)).digest(), path
            else:
                assert status != 200 and response.status == 404, (path, status, response.status)
        log = again.output()
    assert "Traceback" not in log, log[-3000:]
    leftovers = [p.parent.name for p in root.rglob(".proj-upload-*")]
    assert set(leftovers) <= {"flying"}, leftovers  # beside their targets, hidden from the listings above
    runs = len(sent)
    running = sum(1 for r in sent if acked[r] != set(range(BATCHES)))
    print(f"\nkill {backend}: runs={runs}, batches sent={sum(map(len, sent.values()))}, "
          f"acknowledged={sum(map(len, acked.values()))}, committed unanswered={committed_unanswered}, partial=0, "
          f"uploads in flight={len(flying)}, "
          f"present after={present - 1}, temp files left on disk={len(leftovers)}, runs cut off={running}")
