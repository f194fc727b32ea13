"""The transfer package's parts on real files: archives written and read back, hostile archives refused, the local
destination's all-or-nothing write, MLflow file stores read from their layout, parents ordered first."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from helpers.servers import proj_server
from proj.errors import InvalidState
from proj.report import Collector
from proj.tracking.open import open_store
from proj.transfer.archive import Archive, write_archive
from proj.transfer.bundle import Bundle, FileEntry, TransferError, check_file_path, parents_first
from proj.transfer.dest_local import LocalDestination
from proj.transfer.mlflow_source import file_bundles, local_artifacts
from proj.transfer.service import import_runs


def _entry(path: str, data: bytes, sha: str | None = None) -> FileEntry:
    return FileEntry(path, len(data), sha or hashlib.sha256(data).hexdigest(), lambda: io.BytesIO(data))


def _bundle(run_id: str, parent: str | None = None, start: float = 1.0, files: list[FileEntry] | None = None,
            status: str = "FINISHED") -> Bundle:
    files = files if files is not None else [_entry("artifacts/a/b.txt", b"hello"), _entry("logs/stdout.log", b"out\n")]
    record: dict[str, Any] = {
        "id": run_id, "origin": f"/src#{run_id}", "experiment": "exp", "experiment_tags": {"team": "t"},
        "name": f"run-{run_id[:4]}", "status": status, "start_time": start, "end_time": start + 1, "user": "u",
        "host": "h", "source": {"kind": "local"}, "project_name": None, "entry_point": "main", "command": "python t.py",
        "exit_code": 0, "failure_phase": None, "failure_reason": None, "env": {"backend": "local"}, "inputs": {},
        "reproduces": None, "mlflow_run_id": None, "parent_run_id": parent,
        "params": [{"key": "alpha", "value": "0.5", "typed": 0.5, "type": "float", "source": "user"}],
        "tags": {"stage": "dev"}, "metrics": [["loss", 1.0, 0, 10.0], ["loss", "NaN", 1, 11.0], ["loss", 0.5, 2, 12.0]],
        "datasets": [{"name": "d", "digest": "x1", "source_type": "local", "source": "{}", "schema": None,
                      "profile": None, "tags": {"mlflow.data.context": "training"}}],
        "lock": {"format": "pip-freeze", "text": "a==1\n"}, "request": None, "models": [],
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files]}
    return Bundle(record, files)


ID_A, ID_B, ID_C = "a" * 32, "b" * 32, "c" * 32


def test_an_archive_reads_back_what_was_written(tmp_path: Path) -> None:
    out = tmp_path / "runs.tar"
    ids = write_archive(out, [_bundle(ID_A), _bundle(ID_B, parent=ID_A)], "/src", lambda b: None)
    assert ids == [ID_A, ID_B] and [p.name for p in tmp_path.iterdir()] == ["runs.tar"]
    archive = Archive(out)
    bundles = list(archive.bundles())
    assert archive.source == "/src" and [b.source_id for b in bundles] == [ID_A, ID_B]
    assert bundles[1].parent == ID_A and bundles[0].record["metrics"][1][1] == "NaN"
    with bundles[0].files[0].open() as fh:
        assert fh.read() == b"hello"


def test_import_into_a_local_store_keeps_ids_links_and_is_idempotent(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    said = Collector()
    summary = import_runs([_bundle(ID_B, parent=ID_A, start=2.0), _bundle(ID_A)], str(dest), said)
    assert (summary.runs, summary.metric_points, summary.artifact_bytes) == (2, 6, 2 * 9)
    store = open_store(str(dest), create=False)
    child = store.get_run(ID_B)
    assert child.parent_run_id == ID_A and child.experiment == "exp" and child.command == "python t.py"
    assert [(p.key, p.typed, p.type) for p in child.params] == [("alpha", 0.5, "float")]
    assert child.tags == {"stage": "dev", "mlflow.parentRunId": ID_A, "proj.imported.from": f"/src#{ID_B}"}
    points = store.metric_history(ID_B)
    assert [p.step for p in points] == [0, 1, 2] and points[1].value != points[1].value  # NaN kept
    assert child.metrics["loss"].value == 0.5 and store.get_lock(ID_B) == ("pip-freeze", "a==1\n")
    assert [(d.dataset.name, d.tags) for d in child.datasets] == [("d", {"mlflow.data.context": "training"})]
    assert (dest / "runs" / ID_B / "artifacts" / "a" / "b.txt").read_bytes() == b"hello"
    assert store.get_experiment_by_name("exp").tags == {"team": "t"}  # type: ignore[union-attr]
    again = import_runs([_bundle(ID_A), _bundle(ID_B, parent=ID_A)], str(dest), said)
    assert (again.runs, again.skipped) == (0, 2)


def test_a_file_that_does_not_match_its_sha256_leaves_no_trace(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    bad = _bundle(ID_B, start=2.0, files=[_entry("artifacts/x.bin", b"good"), _entry("artifacts/y.bin", b"bad", "0" * 64)])
    with pytest.raises(TransferError, match=f"run {ID_B} not imported .*y.bin.*sha256"):
        import_runs([_bundle(ID_A), bad], str(dest), Collector())
    store = open_store(str(dest), create=False)
    assert [r.id for r in store.list_runs(limit=None)] == [ID_A]
    assert sorted(p.name for p in (dest / "runs").iterdir()) == [ID_A]  # nothing aside, no half folder


def test_a_database_failure_inside_the_transaction_leaves_no_row_and_no_folder(tmp_path: Path) -> None:
    """A model row repeated (primary key): the INSERT fails after the runs row went in; both are rolled back."""
    dest = tmp_path / "dest"
    broken = _bundle(ID_A)
    broken.record["models"] = [{"path": "model", "valid": True, "flavors": [], "files": [], "mlmodel": {}}] * 2
    with pytest.raises(TransferError, match=f"run {ID_A}: its record is damaged .*IntegrityError"):
        LocalDestination(open_store(str(dest))).write(broken, ID_A, None)
    store = open_store(str(dest), create=False)
    assert store.list_runs(limit=None) == [] and list((dest / "runs").iterdir()) == []


def test_a_run_of_a_deleted_experiment_is_refused_in_one_line(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    store = open_store(str(dest))
    store.delete_experiment(store.create_experiment("exp"))
    with pytest.raises(InvalidState, match=f"run {ID_A} not imported .*experiment 'exp' .* is deleted"):
        import_runs([_bundle(ID_A)], str(dest), Collector())
    assert store.list_runs(limit=None) == [] and list((dest / "runs").iterdir()) == []


def test_a_damaged_record_into_a_real_proj_server_is_one_line_and_leaves_no_live_run(tmp_path: Path) -> None:
    broken = _bundle(ID_A)
    broken.record["metrics"] = [["loss", 1.0]]
    with proj_server(tmp_path / "server-store", tmp_path) as server:
        with pytest.raises(TransferError, match=f"run {ID_A} not imported .*its record is damaged"):
            import_runs([broken], server.url, Collector())
        assert open_store(server.url).list_runs(limit=None) == []


@pytest.mark.parametrize("damage", ["no status", "param without key", "short metric", "dataset without digest"])
def test_a_damaged_record_is_one_line_and_leaves_no_row_and_no_folder(tmp_path: Path, damage: str) -> None:
    """A hand-edited run.json (a key missing, a metric cut short) is a TransferError naming the run, no KeyError."""
    dest = tmp_path / "dest"
    broken = _bundle(ID_A)
    if damage == "no status":
        del broken.record["status"]
    elif damage == "param without key":
        broken.record["params"] = [{"value": "1"}]
    elif damage == "short metric":
        broken.record["metrics"] = [["loss", 1.0]]
    else:
        broken.record["datasets"] = [{"name": "d"}]
    with pytest.raises(TransferError, match=f"run {ID_A} not imported .*its record is damaged"):
        import_runs([broken], str(dest), Collector())
    store = open_store(str(dest), create=False)
    assert store.list_runs(limit=None) == [] and list((dest / "runs").iterdir()) == []


@pytest.mark.parametrize(("path", "reason"), [("../x", "'..'"), ("artifacts/../../x", "'..'"), ("/etc/passwd", "absolute"),
                                              ("secrets/x", "not under"), ("artifacts\\x", "backslash"),
                                              ("artifacts//x", "empty")])
def test_file_paths_that_escape_are_refused(path: str, reason: str) -> None:
    with pytest.raises(TransferError, match=reason):
        check_file_path(path, "here")


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_record_naming_a_file_outside_the_run_is_refused(tmp_path: Path) -> None:
    record = json.loads(json.dumps(_bundle(ID_A).record))
    record["files"] = [{"path": "../../../etc/cron.d/x", "size": 1, "sha256": "0" * 64}]
    manifest = {"format": "proj-runs", "version": 1, "source": "/s", "runs": [ID_A]}
    archive = Archive(_tar(tmp_path / "a.tar", {"manifest.json": json.dumps(manifest).encode(),
                                                f"runs/{ID_A}/run.json": json.dumps(record).encode()}))
    with pytest.raises(TransferError, match="'..'|absolute"):
        list(archive.bundles())


def test_a_manifest_with_an_unsafe_run_id_is_refused(tmp_path: Path) -> None:
    manifest = {"format": "proj-runs", "version": 1, "runs": ["../x"]}
    with pytest.raises(TransferError, match="not a plain name"):
        Archive(_tar(tmp_path / "a.tar", {"manifest.json": json.dumps(manifest).encode()}))


def test_not_a_tar_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_bytes(b"this is not a tar file at all" * 40)
    with pytest.raises(TransferError, match="damaged or not a tar"):
        Archive(tmp_path / "x.tar")


def test_parents_come_first_and_a_loop_does_not_hang() -> None:
    order = parents_first([_bundle(ID_C, parent=ID_B, start=1), _bundle(ID_B, parent=ID_A, start=2), _bundle(ID_A, start=3)])
    assert [b.source_id for b in order] == [ID_A, ID_B, ID_C]
    loop = parents_first([_bundle(ID_A, parent=ID_B), _bundle(ID_B, parent=ID_A)])
    assert sorted(b.source_id for b in loop) == [ID_A, ID_B]


def _mlruns(root: Path) -> Path:
    """An MLflow file store as MLflow 3 writes it (meta.yaml, params/, metrics/, tags/, inputs/, datasets/)."""
    exp = root / "mlruns" / "7"
    (exp / "datasets" / "ds1").mkdir(parents=True)
    (exp / "meta.yaml").write_text("experiment_id: '7'\nname: mlexp\nlifecycle_stage: active\n")
    (exp / "datasets" / "ds1" / "meta.yaml").write_text("digest: abc\nname: train\nsource_type: local\nsource: '{}'\n")
    for run_id, parent, status in ((ID_A, None, 3), (ID_B, ID_A, 4), (ID_C, None, 1)):
        run = exp / run_id
        for sub in ("params", "metrics", "tags", "artifacts/sub"):
            (run / sub).mkdir(parents=True)
        (run / "meta.yaml").write_text(f"run_id: {run_id}\nrun_name: r-{run_id[:2]}\nstatus: {status}\n"
                                       f"start_time: 1000\nend_time: 2000\nlifecycle_stage: active\nuser_id: me\n"
                                       f"artifact_uri: file://{run}/artifacts\n")
        (run / "params" / "alpha").write_text("0.1")
        (run / "metrics" / "loss").write_text("1000 1.0 0\n1001 0.5 1\n")
        (run / "artifacts" / "sub" / "f.txt").write_text("x")
        if parent:
            (run / "tags" / "mlflow.parentRunId").write_text(parent)
    (exp / ID_A / "inputs" / "i1").mkdir(parents=True)
    (exp / ID_A / "inputs" / "i1" / "meta.yaml").write_text(
        "source_id: ds1\nsource_type: DATASET\ndestination_type: RUN\ntags:\n  mlflow.data.context: training\n")
    return root / "mlruns"


def test_an_mlflow_file_store_is_read_from_its_layout(tmp_path: Path) -> None:
    said = Collector()
    bundles = {b.source_id: b for b in file_bundles(_mlruns(tmp_path), "/ml", lambda r: True, said)}
    assert set(bundles) == {ID_A, ID_B}  # the RUNNING one (status 1) is not moved, with a warning
    assert any(ID_C in message for _, message in said.said)
    a, b = bundles[ID_A], bundles[ID_B]
    assert (a.record["status"], b.record["status"], b.parent) == ("FINISHED", "FAILED", ID_A)
    assert a.record["metrics"] == [["loss", 1.0, 0, 1.0], ["loss", 0.5, 1, 1.001]]
    assert a.record["datasets"][0]["name"] == "train" and a.record["datasets"][0]["tags"] == {"mlflow.data.context":
                                                                                              "training"}
    assert [f.path for f in a.files] == ["artifacts/sub/f.txt"] and a.record["experiment"] == "mlexp"


def test_a_directory_that_is_no_mlflow_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="not an MLflow file store"):
        list(file_bundles(tmp_path, "/x", lambda r: True, Collector()))


def test_artifact_uris_on_this_machine() -> None:
    assert local_artifacts("file:///a/b", Path("/base")) == Path("/a/b")
    assert local_artifacts("./mlruns/1/x", Path("/base")) == Path("/base/mlruns/1/x")
    assert local_artifacts("mlflow-artifacts:/1/x", Path("/base")) is None
    assert local_artifacts("s3://bucket/x", Path("/base")) is None


def _mlflow_db(path: Path, artifact_uri: str) -> Path:
    """The tables of MLflow's SQL store that a run lives in (the columns MLflow 3.17 has)."""
    import sqlite3

    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE experiments (experiment_id INTEGER, name TEXT, artifact_location TEXT, lifecycle_stage TEXT);
        CREATE TABLE runs (run_uuid TEXT, name TEXT, user_id TEXT, status TEXT, start_time INTEGER, end_time INTEGER,
                           lifecycle_stage TEXT, artifact_uri TEXT, experiment_id INTEGER);
        CREATE TABLE params (key TEXT, value TEXT, run_uuid TEXT);
        CREATE TABLE metrics (key TEXT, value REAL, timestamp INTEGER, run_uuid TEXT, step INTEGER, is_nan INTEGER);
        CREATE TABLE tags (key TEXT, value TEXT, run_uuid TEXT);
    """)
    db.execute("INSERT INTO experiments VALUES (1, 'mlexp', '/x', 'active')")
    db.execute("INSERT INTO runs VALUES (?, 'r', 'me', 'FINISHED', 1000, 2000, 'active', ?, 1)", (ID_A, artifact_uri))
    db.execute("INSERT INTO runs VALUES (?, 'busy', 'me', 'RUNNING', 1000, NULL, 'active', '', 1)", (ID_B,))
    db.execute("INSERT INTO metrics VALUES ('loss', 0, 1500, ?, 3, 1)", (ID_A,))
    db.execute("INSERT INTO params VALUES ('alpha', '0.1', ?)", (ID_A,))
    db.commit()
    db.close()
    return path


def test_an_mlflow_sql_store_is_read_and_remote_artifacts_are_named(tmp_path: Path) -> None:
    from proj.transfer.mlflow_source import is_mlflow_db, sql_bundles

    db = _mlflow_db(tmp_path / "mlflow.db", "mlflow-artifacts:/1/x/artifacts")
    assert is_mlflow_db(db)
    said = Collector()
    bundles = list(sql_bundles(db, "/ml", lambda r: True, said))
    assert [b.source_id for b in bundles] == [ID_A] and bundles[0].record["metrics"] == [["loss", "NaN", 3, 1.5]]
    assert bundles[0].record["params"][0]["value"] == "0.1" and bundles[0].files == []
    messages = " ".join(m for _, m in said.said)
    assert "mlflow-artifacts:/1/x/artifacts" in messages and f"{ID_B} is still RUNNING" in messages


def test_a_sqlite_file_that_is_not_mlflow_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from proj.transfer.mlflow_source import sql_bundles

    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(TransferError, match="not an MLflow tracking database"):
        list(sql_bundles(tmp_path / "other.db", "/o", lambda r: True, Collector()))


def test_a_file_where_a_folder_must_be_is_one_line_and_nothing_written(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    clash = _bundle(ID_A, files=[_entry("artifacts/a", b"file"), _entry("artifacts/a/b", b"under a file")])
    with pytest.raises(TransferError, match="artifacts/a/b.*cannot be written"):
        import_runs([clash], str(dest), Collector())
    assert list((dest / "runs").iterdir()) == []
