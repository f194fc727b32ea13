"""Writing runs into a store proj opens on this machine (the embedded SQLite store, or the PostgreSQL store with its
files root): the run's files go to a folder beside the run folders first (checked against their sha256), then one
transaction writes every row and the folder is renamed into place before it commits. A failure anywhere leaves
neither a row nor a run folder; what a killed import left aside is swept by the next one (transfer.leftovers)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import time
from pathlib import Path
from typing import Any

from proj.paths import StoreLayout
from proj.redact import mask_url
from proj.tracking import mlflow_tags as tags_of
from proj.tracking.records import DatasetRecord, MetricPoint, ParamRecord, RunInput
from proj.tracking.sqlite import SqliteStore
from proj.transfer import leftovers
from proj.transfer.bundle import CHUNK, IMPORTED_FROM, Bundle, TransferError, check_file_path, number_in


class LocalDestination:
    """An import target on this machine. ``imported`` maps an origin ("<source>#<id>") to the run id here.

    It writes through the store's own connection and transaction (``store.transaction``), so the PostgreSQL
    store (the SQLite store's parts over a translating connection) is written exactly as the SQLite file."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.root = store.root
        uri = getattr(store, "uri", None)  # a PostgreSQL store: its database, not its files root
        self.label = mask_url(uri) if isinstance(uri, str) else str(store.root)
        store._models_table()  # a store that has no models table yet gets it (its own schema)
        self._db = store._db
        layout = StoreLayout(self.root)
        self.removed_leftovers = leftovers.sweep(layout.runs, self.has_run) + \
            leftovers.sweep(layout.registry, lambda _: True)  # registry/: folders aside only, no run folders

    def imported(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT value, run_id FROM tags WHERE key = ?", (IMPORTED_FROM,)).fetchall())

    def has_run(self, run_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None

    def new_id(self, wanted: str) -> str:
        """The source's id when it is free here (and looks like one), else a fresh one."""
        ok = len(wanted) == 32 and all(c in "0123456789abcdef" for c in wanted)
        if ok and not self.has_run(wanted) and not StoreLayout(self.root).run(wanted).exists():
            return wanted
        return os.urandom(16).hex()

    def write(self, bundle: Bundle, run_id: str, parent: str | None) -> None:
        """The whole run, or nothing of it."""
        runs = StoreLayout(self.root).runs
        runs.mkdir(parents=True, exist_ok=True)
        aside = leftovers.aside_folder(runs, run_id)
        final = runs / run_id
        placed = False
        try:
            self._write_files(bundle, aside)
            try:
                with self.store.transaction():  # rolled back on any error, one line for a failing store
                    self._insert(bundle, run_id, parent)
                    os.rename(aside, final)
                    placed = True
            except BaseException:
                if placed and not self._committed(run_id):
                    os.rename(final, aside)
                raise
        except sqlite3.IntegrityError as exc:  # a damaged run.json (a model listed twice); other damage: the caller
            raise TransferError(f"run {bundle.source_id}: its record is damaged ({type(exc).__name__}: {exc}); "
                                f"the run was not imported") from None
        finally:
            shutil.rmtree(aside, ignore_errors=True)
        leftovers.release(final)
        self._link_snapshot(bundle, final)

    def _committed(self, run_id: str) -> bool:
        """After a failed COMMIT: whether the rows are there all the same (a connection lost as it committed). When
        that cannot be told, the folder stays with its owner marker and the next import decides (leftovers.sweep)."""
        try:
            return self.has_run(run_id)
        except Exception:  # noqa: BLE001 - the store is gone: neither answer is known
            return True

    def _write_files(self, bundle: Bundle, aside: Path) -> None:
        for sub in ("artifacts", "logs"):
            (aside / sub).mkdir(parents=True, exist_ok=True)
        for entry in bundle.files:
            check_file_path(entry.path, f"run {bundle.source_id}")
            target = aside / entry.path
            digest = hashlib.sha256()
            if target.exists():
                raise TransferError(f"run {bundle.source_id}: file {entry.path!r} is listed twice")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)  # FileExistsError: a file where a folder must be
                with entry.open() as src, open(target, "xb") as out:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            except (tarfile.TarError, EOFError) as exc:
                raise TransferError(f"run {bundle.source_id}: file {entry.path!r} cannot be read: {exc}") from None
            except OSError as exc:  # a file where a folder must be (a/b after a), a full disk
                raise TransferError(f"run {bundle.source_id}: file {entry.path!r} cannot be written under "
                                    f"{self.root}: {exc.strerror or exc}") from None
            if digest.hexdigest() != entry.sha256:
                raise TransferError(f"run {bundle.source_id}: file {entry.path!r} does not match its sha256 "
                                    f"(damaged in transit); the run was not imported")

    def _insert(self, bundle: Bundle, run_id: str, parent: str | None) -> None:
        db, rec = self._db, bundle.record
        exp_id = self._experiment(str(rec.get("experiment") or "Default"), rec.get("experiment_tags") or {})
        source = rec.get("source") or {}
        db.execute(
            "INSERT INTO runs (id, experiment_id, name, status, failure_phase, failure_reason, exit_code, start_time,"
            " end_time, user, host, source_json, source_commit, project_name, entry_point, command, env_json,"
            " parent_run_id, inputs_json, reproduces_run_id, mlflow_run_id, request_json)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, exp_id, rec.get("name"), rec["status"], rec.get("failure_phase"), rec.get("failure_reason"),
             rec.get("exit_code"), float(rec.get("start_time") or 0), rec.get("end_time"), rec.get("user") or "",
             rec.get("host") or "", json.dumps(source), source.get("commit"), rec.get("project_name"),
             rec.get("entry_point") or "", rec.get("command") or "", json.dumps(rec.get("env") or {}), parent,
             json.dumps(rec.get("inputs") or {}), rec.get("reproduces"), rec.get("mlflow_run_id"), rec.get("request")))
        SqliteStore._insert_params(db, run_id, [ParamRecord(p["key"], p["value"], p.get("typed", p["value"]),
                                                            p.get("type") or "string", p.get("source") or "logged")
                                                for p in rec.get("params", [])])
        tags = {**rec.get("tags", {}), IMPORTED_FROM: bundle.origin}
        if parent:
            tags[tags_of.PARENT_RUN_ID] = parent  # what MLflow clients read the nesting from (proj server)
        db.executemany("INSERT INTO tags VALUES (?,?,?)", [(run_id, k, v) for k, v in tags.items()])
        self._metrics(run_id, rec.get("metrics", []))
        lock = rec.get("lock")
        if lock:
            db.execute("INSERT INTO locks VALUES (?,?,?,?)", (run_id, lock["format"],
                       hashlib.sha256(lock["text"].encode()).hexdigest(), lock["text"]))
        self._datasets(run_id, exp_id, rec.get("datasets", []))
        for m in rec.get("models", []):
            db.execute("INSERT INTO models VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (run_id, m["path"], m.get("origin", "run"), int(bool(m.get("valid"))), m.get("reason"),
                        json.dumps(m.get("flavors", [])), int(m.get("size", 0)), json.dumps(m.get("files", [])),
                        json.dumps({**m.get("mlmodel", {}), **({"run_id": run_id} if "run_id" in m.get("mlmodel", {})
                                                               else {})}, default=str),
                        m.get("env_source"), float(m.get("created") or time.time())))

    def _metrics(self, run_id: str, points: list[Any]) -> None:
        # The store's one insert path: history, latest (with min/max) and the chart blocks stay in step.
        rows = []
        for key, value, step, ts in points:
            number = number_in(value)
            rows.append(MetricPoint(str(key), None if number != number else number, int(step), float(ts)))  # type: ignore[arg-type]
        SqliteStore._insert_metrics(self._db, run_id, rows)

    def _datasets(self, run_id: str, exp_id: int, datasets: list[dict[str, Any]]) -> None:
        for d in datasets:
            dataset = DatasetRecord(d["name"], d["digest"], d.get("source_type", ""), d.get("source", ""),
                                    d.get("schema"), d.get("profile"))
            SqliteStore._insert_input(self._db, run_id, exp_id, RunInput(dataset, d.get("tags") or {}))

    def _experiment(self, name: str, tags: dict[str, str]) -> int:
        """The experiment called ``name`` here, created (with the source's tags) when missing; a deleted one is
        refused, as for `proj run` (the store's own lookup)."""
        new = self._db.execute("SELECT 1 FROM experiments WHERE name = ?", (name,)).fetchone() is None
        exp_id = self.store._experiment_id(self._db, name)
        if new:
            self._db.executemany("INSERT OR REPLACE INTO experiment_tags VALUES (?,?,?)",
                                 [(exp_id, k, v) for k, v in tags.items()])
        return exp_id

    def _link_snapshot(self, bundle: Bundle, run_dir: Path) -> None:
        """The run's source snapshot also into the store's shared ``snapshots/`` (where `proj reproduce` looks)."""
        sha = (bundle.record.get("source") or {}).get("snapshot_sha256")
        blob = run_dir / "artifacts" / "source" / "snapshot.tar.gz"
        if not isinstance(sha, str) or not sha.isalnum() or not blob.is_file():
            return
        shared = StoreLayout(self.root).snapshots / f"{sha}.tar.gz"
        if shared.exists() or hashlib.sha256(blob.read_bytes()).hexdigest() != sha:
            return  # a blob under another content's name would be handed to every run sharing that name
        shared.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(blob, shared)
        except OSError:
            shutil.copyfile(blob, shared)

    def close(self) -> None:
        self.store.close()
