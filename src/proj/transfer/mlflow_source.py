"""Reading runs out of an MLflow store without MLflow: its SQL store (``sqlite:///mlflow.db``, read with sqlite3)
or its file store (an ``mlruns/`` directory: meta.yaml, params/, metrics/, tags/, inputs/, artifacts/)."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import unquote, urlsplit

from proj.collect.mlflow import NOT_RUN_DIRS, read_run
from proj.report import Reporter
from proj.safe_yaml import load_untrusted
from proj.tracking import mlflow_tags as tags_of
from proj.tracking.records import FAILED, FINISHED, KILLED, RUNNING, SCHEDULED
from proj.transfer.bundle import IMPORTED_FROM, Bundle, FileEntry, TransferError, files_under, number_out

FILE_STATUSES = {1: RUNNING, 2: SCHEDULED, 3: FINISHED, 4: FAILED, 5: KILLED}
Selector = Callable[[dict[str, Any]], bool]


def _plain_record(run_id: str, label: str, experiment: str, experiment_tags: dict[str, str]) -> dict[str, Any]:
    """The record of a run no proj runner made: no command, no environment, no lock."""
    return {"id": run_id, "origin": f"{label}#{run_id}", "experiment": experiment, "experiment_tags": experiment_tags,
            "user": "", "host": "", "source": {}, "project_name": None, "entry_point": "", "command": "",
            "exit_code": None, "failure_phase": None, "failure_reason": None, "env": {}, "inputs": {},
            "reproduces": None, "mlflow_run_id": run_id, "lock": None, "request": None, "models": [],
            "datasets": []}


def _finish(record: dict[str, Any], tags: dict[str, str], artifacts: Path | None, reporter: Reporter,
            artifact_uri: str = "") -> Bundle:
    record["parent_run_id"] = tags.get(tags_of.PARENT_RUN_ID)
    record["origin"] = tags.get(IMPORTED_FROM) or record["origin"]
    record["tags"] = {k: v for k, v in tags.items() if k not in (IMPORTED_FROM, tags_of.PARENT_RUN_ID)}
    record["name"] = record.get("name") or tags.get(tags_of.RUN_NAME)
    if artifacts is None and artifact_uri:
        reporter.warn(f"MLflow run {record['id']}: its artifacts are at {artifact_uri!r}, not on this machine: not "
                      f"moved (import from the tracking server that serves them instead: --from http://...)")
    files = _artifact_files(artifacts, record["id"], reporter) if artifacts is not None else []
    record["files"] = [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files]
    return Bundle(record, files)


def _artifact_files(root: Path, run_id: str, reporter: Reporter) -> list[FileEntry]:
    if root.is_symlink():
        reporter.warn(f"MLflow run {run_id}: its artifact folder {root} is a symlink; its artifacts are not moved")
        return []
    if not root.is_dir():
        return []
    return files_under(root, "artifacts")


def local_artifacts(uri: str | None, base: Path) -> Path | None:
    """The folder an artifact URI names when it is on this machine (a path or file://), else None."""
    if not uri:
        return None
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and uri[1:2] == ":"):
        path = Path(uri)
        return path if path.is_absolute() else base / path
    return None


# ---- the SQL store ----

def sql_bundles(db_path: Path, label: str, select: Selector, reporter: Reporter) -> Iterator[Bundle]:
    """Every run of an MLflow SQL store (active, ended) that ``select`` takes, read with plain SQL."""
    if not db_path.is_file():
        raise TransferError(f"MLflow store {db_path} does not exist")
    try:
        db = sqlite3.connect(db_path.resolve().as_uri() + "?mode=ro", uri=True)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise TransferError(f"MLflow store {db_path} is not a readable SQLite database: {exc}") from None
    if not {"experiments", "runs", "params", "metrics", "tags"} <= tables:
        raise TransferError(f"{db_path} is not an MLflow tracking database (no experiments/runs/params/metrics/tags "
                            f"tables)")
    experiments: dict[str, tuple[str, dict[str, str]]] = {
        str(r[0]): (r[1], {}) for r in db.execute("SELECT experiment_id, name FROM experiments")}
    if "experiment_tags" in tables:
        for key, value, exp in db.execute("SELECT key, value, experiment_id FROM experiment_tags"):
            experiments.get(str(exp), ("", {}))[1][key] = value
    rows = db.execute("SELECT run_uuid, name, user_id, status, start_time, end_time, artifact_uri, experiment_id"
                      " FROM runs WHERE lifecycle_stage = 'active' ORDER BY start_time").fetchall()
    for run_id, name, user, status, start, end, artifact_uri, exp_id in rows:
        exp_name, exp_tags = experiments.get(str(exp_id), (str(exp_id), {}))
        record = _plain_record(run_id, label, exp_name, exp_tags)
        record.update(name=name, user=user or "", status=status, start_time=(start or 0) / 1000,
                      end_time=None if end is None else end / 1000)
        tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)).fetchall())
        if not select({**record, "tags": tags}):
            continue
        if status in (RUNNING, SCHEDULED):
            reporter.warn(f"MLflow run {run_id} is still {status}: not moved (move it once it has ended)")
            continue
        record["params"] = [{"key": k, "value": v, "typed": v, "type": "string", "source": "logged"}
                            for k, v in db.execute("SELECT key, value FROM params WHERE run_uuid = ? ORDER BY key",
                                                   (run_id,))]
        record["metrics"] = [[k, "NaN" if is_nan else number_out(float(v)), int(step), ts / 1000]
                             for k, v, ts, step, is_nan in db.execute(
                                 "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ?"
                                 " ORDER BY key, timestamp, step, rowid", (run_id,))]
        record["datasets"] = _sql_inputs(db, run_id, tables)
        yield _finish(record, tags, local_artifacts(artifact_uri, db_path.parent), reporter, artifact_uri or "")


def _sql_inputs(db: sqlite3.Connection, run_id: str, tables: set[str]) -> list[dict[str, Any]]:
    if not {"inputs", "datasets"} <= tables:
        return []
    out = []
    for input_id, name, digest, stype, source, schema, profile in db.execute(
            "SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema,"
            " d.dataset_profile FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id"
            " WHERE i.destination_type = 'RUN' AND i.destination_id = ? AND i.source_type = 'DATASET'", (run_id,)):
        tags = dict(db.execute("SELECT name, value FROM input_tags WHERE input_uuid = ?", (input_id,)).fetchall()) \
            if "input_tags" in tables else {}
        out.append({"name": name, "digest": digest, "source_type": stype, "source": source, "schema": schema,
                    "profile": profile, "tags": tags})
    return out


# ---- the file store ----

def file_bundles(mlruns: Path, label: str, select: Selector, reporter: Reporter) -> Iterator[Bundle]:
    """Every run of an MLflow file store (active, ended) that ``select`` takes."""
    if not mlruns.is_dir():
        raise TransferError(f"MLflow file store {mlruns} is not a directory")
    found = False
    for exp_dir in sorted(p for p in mlruns.iterdir() if p.is_dir() and not p.is_symlink()):
        meta = _yaml(exp_dir / "meta.yaml")
        if exp_dir.name in NOT_RUN_DIRS or not isinstance(meta, dict) or meta.get("lifecycle_stage") == "deleted":
            continue
        found = True
        exp_name = str(meta.get("name") or exp_dir.name)
        exp_tags = _key_files(exp_dir / "tags")
        for run_dir in sorted(p for p in exp_dir.iterdir() if p.is_dir() and not p.is_symlink()):
            if run_dir.name in NOT_RUN_DIRS or not (run_dir / "meta.yaml").is_file():
                continue
            bundle = _file_run(run_dir, exp_dir, label, exp_name, exp_tags, select, reporter)
            if bundle is not None:
                yield bundle
    if not found:
        raise TransferError(f"{mlruns} holds no MLflow experiment (no <id>/meta.yaml): not an MLflow file store")


def _file_run(run_dir: Path, exp_dir: Path, label: str, exp_name: str, exp_tags: dict[str, str], select: Selector,
              reporter: Reporter) -> Bundle | None:
    run = read_run(run_dir)
    meta = _yaml(run_dir / "meta.yaml")
    meta = meta if isinstance(meta, dict) else {}
    if meta.get("lifecycle_stage") == "deleted":
        return None
    number = meta.get("status")
    status = FILE_STATUSES.get(number, str(number or FAILED)) if isinstance(number, int) else str(number or FAILED)
    record = _plain_record(run.run_id, label, exp_name, exp_tags)
    record.update(name=run.name, user=str(meta.get("user_id") or ""), status=status, start_time=run.start_time,
                  end_time=run.end_time)
    if not select({**record, "tags": run.tags}):
        return None
    if status in (RUNNING, SCHEDULED):
        reporter.warn(f"MLflow run {run.run_id} is still {status}: not moved (move it once it has ended)")
        return None
    for problem in run.problems:
        reporter.warn(f"MLflow store: {problem}")
    record["params"] = [{"key": k, "value": v, "typed": v, "type": "string", "source": "logged"}
                        for k, v in sorted(run.params.items())]
    record["metrics"] = [[p.key, number_out(p.value), p.step, p.timestamp] for p in run.metrics]
    record["datasets"] = _file_inputs(run_dir, exp_dir)
    artifacts = local_artifacts(str(meta.get("artifact_uri") or ""), exp_dir.parent) or run_dir / "artifacts"
    return _finish(record, run.tags, artifacts, reporter)


def _file_inputs(run_dir: Path, exp_dir: Path) -> list[dict[str, Any]]:
    out = []
    inputs = run_dir / "inputs"
    for item in sorted(inputs.iterdir()) if inputs.is_dir() and not inputs.is_symlink() else []:
        meta = _yaml(item / "meta.yaml")
        if not isinstance(meta, dict) or meta.get("source_type") != "DATASET":
            continue
        dataset = _yaml(exp_dir / "datasets" / str(meta.get("source_id")) / "meta.yaml")
        if not isinstance(dataset, dict):
            continue
        tags = meta["tags"] if isinstance(meta.get("tags"), dict) else {}
        out.append({"name": str(dataset.get("name", "")), "digest": str(dataset.get("digest", "")),
                    "source_type": str(dataset.get("source_type", "")), "source": str(dataset.get("source", "")),
                    "schema": dataset.get("schema"), "profile": dataset.get("profile"),
                    "tags": {str(k): str(v) for k, v in tags.items()}})
    return out


def _yaml(path: Path) -> Any:
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return load_untrusted(path.read_text())
    except Exception:  # noqa: BLE001 - an unreadable meta.yaml: that run or experiment is left out
        return None


def _key_files(folder: Path) -> dict[str, str]:
    """Experiment tags, one file per key (MLflow's file store)."""
    if folder.is_symlink() or not folder.is_dir():
        return {}
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()}


def is_mlflow_db(path: Path) -> bool:
    """Whether a SQLite file is MLflow's (it has alembic_version and runs.run_uuid), not proj's own proj.db."""
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        columns = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
        db.close()
    except sqlite3.DatabaseError:
        return False
    return "run_uuid" in columns


__all__ = ["file_bundles", "is_mlflow_db", "local_artifacts", "sql_bundles"]
