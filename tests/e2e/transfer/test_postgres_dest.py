"""`proj runs import` straight into a PostgreSQL store (a real cluster): runs made by the real `proj run` come out of
`proj runs show/list` on PostgreSQL as they went in, a `proj server` over that database serves them to the pinned
MLflow client byte-exact, importing again skips, and a damaged archive or run leaves no row and no folder."""
from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any, Callable

import pytest

from e2e.transfer.test_export_import import (
    MLFLOW_READ,
    comparable,
    file_hashes,
    history,
    make_runs,
    one_error_line,
)
from helpers.cli import Proj
from helpers.postgres import Cluster
from helpers.servers import _serving, free_port, run_client


def rewrite(archive: Path, out: Path, change: Callable[[str, bytes], bytes]) -> Path:
    """A copy of ``archive`` with each member's bytes passed through ``change`` (same names, same order)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = change(member.name, src.extractfile(member).read())  # type: ignore[union-attr]
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return out


def pg_rows(cluster: Cluster, uri: str, run_id: str) -> dict[str, int]:
    """How many rows of ``run_id`` each table holds, read with psql (not through proj)."""
    db = uri.rsplit("/", 1)[1]
    counts = {}
    for table, column in (("runs", "id"), ("params", "run_id"), ("metrics", "run_id"), ("tags", "run_id"),
                          ("latest_metrics", "run_id"), ("locks", "run_id"), ("models", "run_id")):
        counts[table] = int(cluster.psql(db, f"SELECT count(*) FROM {table} WHERE {column} = '{run_id}'"))
    return counts


@pytest.mark.timeout(900)
def test_runs_import_into_postgresql_whole_once_and_atomic(proj: Proj, make_project: Any, tmp_path: Path,
                                                           pg_store_uri: str, pg_cluster: Cluster) -> None:
    ids = make_runs(proj, make_project)
    source = Path(proj.env["PROJ_TRACKING_URI"])
    archive = tmp_path / "runs.tar"
    assert proj("runs", "export", "--all", "-o", str(archive)).code == 0
    files = tmp_path / "pg-files"
    env = {"PROJ_STORE_FILES": str(files)}

    def pg(*args: str) -> Any:
        return proj(*args, "--tracking-uri", pg_store_uri, env=env)

    # a damaged archive (cut in half): one line, nothing in the database, no folder
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    assert "damaged" in one_error_line(pg("runs", "import", str(cut)), 2)
    assert store_runs_pg(proj, pg_store_uri, env) == []
    assert not (files / "runs").exists() or not any((files / "runs").iterdir())

    # the second run's record lists a model twice: its rows were being written when the key broke; all rolled back
    def twice(name: str, data: bytes) -> bytes:
        if name != f"runs/{ids[1]}/run.json":
            return data
        record = json.loads(data)
        record["models"] = record["models"] * 2
        return json.dumps(record).encode()

    line = one_error_line(pg("runs", "import", str(rewrite(archive, tmp_path / "twice.tar", twice))))
    assert ids[1] in line and "damaged" in line, line
    assert pg_rows(pg_cluster, pg_store_uri, ids[1]) == dict.fromkeys(pg_rows(pg_cluster, pg_store_uri, ids[1]), 0)
    assert [r["id"] for r in store_runs_pg(proj, pg_store_uri, env)] == [ids[0]]
    assert sorted(p.name for p in (files / "runs").iterdir()) == [ids[0]]  # nothing aside either

    # a file that does not match its sha256: that run not at all
    def flipped(name: str, data: bytes) -> bytes:
        return bytes(len(data)) if name == f"runs/{ids[1]}/files/artifacts/plots/curve.bin" else data

    line = one_error_line(pg("runs", "import", str(rewrite(archive, tmp_path / "bad.tar", flipped))))
    assert ids[1] in line and "sha256" in line, line
    assert pg_rows(pg_cluster, pg_store_uri, ids[1])["runs"] == 0
    assert sorted(p.name for p in (files / "runs").iterdir()) == [ids[0]]

    # the good archive completes it; again: skipped, as into a local store
    out = pg("runs", "import", str(archive), "--json")
    assert out.code == 0, out
    assert (out.json()["runs"], out.json()["skipped"]) == (1, 1) and out.json()["run_ids"] == {i: i for i in ids}, out
    assert out.json()["destination"].startswith("postgresql://"), out
    again = pg("runs", "import", str(archive))
    assert again.code == 0 and "imported 0 run(s) (2 already there, skipped)" in again.stdout, again
    assert again.stderr.count("skipped run") == 2, again
    assert len(store_runs_pg(proj, pg_store_uri, env)) == 2
    from proj.tracking.open import open_store

    for run_id in ids:
        before = proj("runs", "show", run_id, "--json")
        after = pg("runs", "show", run_id, "--json")
        assert before.code == after.code == 0, (before, after)
        assert comparable(after.json()) == comparable(before.json())
        assert after.json()["lock"]["text"] and after.json()["models"][0]["flavors"] == ["pickle"]
        assert after.json()["tags"]["proj.imported.from"] == f"{source}#{run_id}"
        pg_history = [(p.key, p.value, p.step, p.timestamp)
                      for p in open_store(pg_store_uri, create=False, files_root=files).metric_history(run_id)]
        assert pg_history == history(source, run_id) and len(pg_history) == 7
        for sub in ("artifacts", "logs"):
            assert file_hashes(files / "runs" / run_id / sub) == file_hashes(source / "runs" / run_id / sub)
        assert sorted(p.name for p in (files / "runs" / run_id).iterdir()) == ["artifacts", "logs"]  # no marker left
        logs = [proj("runs", "logs", run_id, *extra, env=env).stdout for extra in ((), ("--tracking-uri", pg_store_uri))]
        assert logs[0] == logs[1] and "training with" in logs[1]
    # and PostgreSQL as a source: back into a local store, the same runs (their first origin kept)
    back = tmp_path / "back"
    out = proj("runs", "import", "--from", pg_store_uri, "--tracking-uri", str(back), env=env)
    assert out.code == 0 and "imported 2 run(s)" in out.stdout, out
    assert comparable(proj("runs", "show", ids[0], "--json", "--tracking-uri", str(back)).json()) == \
        comparable(proj.show(ids[0]))
    out = proj("runs", "import", str(archive), "--tracking-uri", str(back))
    assert out.code == 0 and "2 already there" in out.stdout, out


def store_runs_pg(proj: Proj, uri: str, env: dict[str, str]) -> list[dict[str, Any]]:
    out = proj("runs", "list", "--json", "-n", "0", "--tracking-uri", uri, env=env)
    assert out.code == 0, out
    result: list[dict[str, Any]] = out.json()
    return result


@pytest.mark.mlflow
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_proj_server_over_the_imported_postgresql_store_serves_mlflow_clients(
        proj: Proj, make_project: Any, tmp_path: Path, pg_store_uri: str, mlflow_full_venv: Path) -> None:
    ids = make_runs(proj, make_project)
    source = Path(proj.env["PROJ_TRACKING_URI"])
    archive = tmp_path / "runs.tar"
    assert proj("runs", "export", "--all", "-o", str(archive)).code == 0
    files = tmp_path / "pg-files"
    out = proj("runs", "import", str(archive), "--tracking-uri", pg_store_uri, env={"PROJ_STORE_FILES": str(files)})
    assert out.code == 0, out
    port = free_port()
    argv = [sys.executable, "-m", "proj", "server", "--backend-store-uri", pg_store_uri, "--artifacts-destination",
            str(files), "--host", "127.0.0.1", "--port", str(port)]
    with _serving(argv, port, tmp_path / "proj-server.log", proj.env, 120) as server:
        seen = {r["id"]: r for r in run_client(mlflow_full_venv, MLFLOW_READ, server.url, tmp_path)}
        assert set(seen) == set(ids)
        for run_id in ids:
            run, local = seen[run_id], proj.show(run_id)
            assert run["experiment"] == "moving" and run["status"] == local["status"]
            assert run["params"] == {p["key"]: p["value"] for p in local["params"]}
            assert run["tags"]["stage"] == "dev" and run["tags"]["proj.imported.from"] == f"{source}#{run_id}"
            assert run["history"]["loss"] == [[s, v] for k, v, s, _ in history(source, run_id) if k == "loss"]
            served = {k: v for k, v in run["files"].items() if not k.startswith("proj/")}
            assert served == file_hashes(source / "runs" / run_id / "artifacts")  # byte-exact
        assert seen[ids[1]]["status"] == "FAILED" and seen[ids[0]]["status"] == "FINISHED"
