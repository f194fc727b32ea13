"""Registered models moving with the runs (``--registry``): each model with its tags, aliases, protected keys, its
append-only history and every version (numbers kept, deleted ones too, so none is ever reused) with its stage, tags,
description and its stored files by content; written into a proj store (SQLite or PostgreSQL) in one transaction
after its files are in the registry's blob store, each version linked to the run it came from as imported there."""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

from proj.paths import StoreLayout
from proj.registry import files as stored
from proj.tracking.sqlite import SqliteStore
from proj.transfer import leftovers
from proj.transfer.bundle import CHUNK, IMPORTED_FROM, TransferError

_VERSION_FIELDS = ("version", "creation_time", "last_updated_time", "source", "run_id", "logged_model_id", "user_id",
                   "current_stage", "description", "status", "status_message", "run_link", "storage_location",
                   "files_sha256", "deleted")
_EVENT_FIELDS = ("time", "user", "version", "kind", "key", "old", "new", "reason")


@dataclass
class ModelBundle:
    """``record``: the model (name, description, user_id, times, tags, aliases, protected, versions, events, origin);
    ``blobs``: sha256 -> its bytes, each stored file once."""

    record: dict[str, Any]
    blobs: dict[str, Callable[[], IO[bytes]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.record["name"])

    @property
    def origin(self) -> str:
        return str(self.record["origin"])


def store_models(store: SqliteStore, label: str) -> list[ModelBundle]:
    """Every registered model of a proj store (SQLite or PostgreSQL), read by its own tables (deleted versions and
    the event history included, which the registry's API leaves out). Each version carries its run's origin, so
    the link finds the run wherever it was imported."""
    db = store._db

    def run_origins(run_id: str) -> str:
        row = db.execute("SELECT value FROM tags WHERE run_id = ? AND key = ?", (run_id, IMPORTED_FROM)).fetchone()
        return str(row[0]) if row else f"{label}#{run_id}"

    out = []
    for key, name, created, updated, description, user in db.execute(
            "SELECT id, name, creation_time, last_updated_time, description, user_id FROM registered_models"
            " ORDER BY id").fetchall():
        tags = dict(db.execute("SELECT key, value FROM registered_model_tags WHERE model_id = ?", (key,)).fetchall())
        record: dict[str, Any] = {
            "name": name, "creation_time": created, "last_updated_time": updated, "description": description,
            "user_id": user, "origin": tags.pop(IMPORTED_FROM, None) or f"{label}#{name}", "tags": tags,
            "aliases": dict(db.execute("SELECT alias, version FROM registered_model_aliases WHERE model_id = ?",
                                       (key,)).fetchall()),
            "protected": [r[0] for r in db.execute("SELECT key FROM registry_protected WHERE model_id = ? ORDER BY key",
                                                   (key,)).fetchall()],
            "events": [dict(zip(_EVENT_FIELDS, row, strict=True)) for row in db.execute(
                f"SELECT {', '.join(_EVENT_FIELDS)} FROM registry_events WHERE model_key = ? ORDER BY id",
                (key,)).fetchall()],
        }
        version_tags: dict[int, dict[str, str]] = {}
        for number, k, v in db.execute("SELECT version, key, value FROM model_version_tags WHERE model_id = ?",
                                       (key,)).fetchall():
            version_tags.setdefault(int(number), {})[k] = v
        bundle = ModelBundle(record)
        versions = []
        for row in db.execute(f"SELECT {', '.join(_VERSION_FIELDS)} FROM model_versions WHERE model_id = ?"
                              " ORDER BY version", (key,)).fetchall():
            version = dict(zip(_VERSION_FIELDS, row, strict=True))
            version["deleted"] = bool(version["deleted"])
            version["tags"] = version_tags.get(int(version["version"]), {})
            version["run_origin"] = run_origins(version["run_id"]) if version["run_id"] else None
            version["files"] = _version_files(store.root, version, bundle, name)
            versions.append(version)
        record["versions"] = versions
        out.append(bundle)
    return out


def _version_files(root: Path, version: dict[str, Any], bundle: ModelBundle, name: str) -> list[dict[str, Any]]:
    """The version's stored file set (from its manifest), each blob added to ``bundle`` once; none for a version
    registered without proj's copy (it keeps its storage location as it was)."""
    digest = version.get("files_sha256")
    if not digest or version["deleted"]:
        return []
    listed = stored.manifest(root, digest)
    problems = stored.check(root, digest)
    if problems:
        raise TransferError(f"registered model {name!r} version {version['version']}: its stored files are damaged "
                            f"({problems[0]}); not exported")
    for entry in listed:
        path = stored.blob(root, entry["sha256"])
        bundle.blobs.setdefault(entry["sha256"], lambda path=path: open(path, "rb"))  # type: ignore[misc]
    return [{"path": e["path"], "size": int(e["size"]), "sha256": e["sha256"]} for e in listed]


def imported_models(store: SqliteStore) -> dict[str, str]:
    """origin -> name of the registered models imported into ``store`` before."""
    return dict(store._db.execute(
        "SELECT t.value, m.name FROM registered_model_tags t JOIN registered_models m ON m.id = t.model_id"
        " WHERE t.key = ?", (IMPORTED_FROM,)).fetchall())


def existing_names(store: SqliteStore, names: list[str]) -> set[str]:
    if not names:
        return set()
    marks = ",".join("?" * len(names))
    return {r[0] for r in store._db.execute(f"SELECT name FROM registered_models WHERE name IN ({marks})",
                                            names).fetchall()}


def write_model(store: SqliteStore, model: ModelBundle, run_here: Callable[[str | None, str | None], str | None]) -> int:
    """The model, all its versions and its history, or nothing of them (the blobs stored first may stay: content-
    addressed, a later version may share them). ``run_here``: (run id, its origin) -> the run's id in ``store``, or
    None when it is not there (the version then has no run). The number of versions written."""
    rec = model.record
    trees = _store_blobs(store.root, model)
    with store.transaction():
        db = store._db
        cursor = db.execute("INSERT INTO registered_models (name, creation_time, last_updated_time, description,"
                            " user_id) VALUES (?,?,?,?,?)", (model.name, float(rec["creation_time"]),
                                                             float(rec["last_updated_time"]), rec.get("description"),
                                                             rec.get("user_id")))
        key = int(cursor.lastrowid or 0)
        tags = {**rec.get("tags", {}), IMPORTED_FROM: model.origin}
        db.executemany("INSERT INTO registered_model_tags VALUES (?,?,?)", [(key, k, v) for k, v in tags.items()])
        db.executemany("INSERT INTO registered_model_aliases VALUES (?,?,?)",
                       [(key, alias, int(number)) for alias, number in rec.get("aliases", {}).items()])
        db.executemany("INSERT INTO registry_protected VALUES (?,?)", [(key, k) for k in rec.get("protected", [])])
        for version in rec.get("versions", []):
            _insert_version(db, key, version, trees, run_here)
        db.executemany("INSERT INTO registry_events (time, user, model_key, model, version, kind, key, old, new,"
                       " reason) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       [(float(e["time"]), e.get("user"), key, model.name, e.get("version"), e["kind"], e.get("key"),
                         e.get("old"), e.get("new"), e.get("reason")) for e in rec.get("events", [])])
    return len(rec.get("versions", []))


def _insert_version(db: Any, key: int, version: dict[str, Any], trees: dict[str, str],
                    run_here: Callable[[str | None, str | None], str | None]) -> None:
    number = int(version["version"])
    old_run = version.get("run_id")
    # a deleted version's fields are redacted (MLflow's rule): kept as they are
    new_run = old_run if version.get("deleted") else run_here(old_run, version.get("run_origin"))
    source = str(version["source"])
    if old_run and new_run and source.startswith(f"runs:/{old_run}/"):
        source = f"runs:/{new_run}/" + source[len(f"runs:/{old_run}/"):]
    digest = version.get("files_sha256") if version.get("files") else None
    location = trees[digest] if digest else version.get("storage_location")
    db.execute("INSERT INTO model_versions (model_id, version, creation_time, last_updated_time, source, run_id,"
               " logged_model_id, user_id, current_stage, description, status, status_message, run_link,"
               " storage_location, files_sha256, deleted) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
               (key, number, float(version["creation_time"]), float(version["last_updated_time"]), source, new_run,
                _logged_model_here(db, version.get("logged_model_id")), version.get("user_id"),
                version["current_stage"], version.get("description"), version["status"],
                version.get("status_message"), version.get("run_link"), location,
                digest or version.get("files_sha256"), int(bool(version.get("deleted")))))
    db.executemany("INSERT INTO model_version_tags VALUES (?,?,?,?)",
                   [(key, number, k, v) for k, v in (version.get("tags") or {}).items()])


def _logged_model_here(db: Any, model_id: str | None) -> str | None:
    """The MLflow 3 logged model's id when the destination has it (logged models do not move yet), else None."""
    if not model_id:
        return None
    return model_id if db.execute("SELECT 1 FROM logged_models WHERE model_id = ?", (model_id,)).fetchone() else None


def _store_blobs(root: Path, model: ModelBundle) -> dict[str, str]:
    """Every version's files into the registry's blob store, each checked against its sha256: digest -> the loadable
    tree (the version's storage location). The bytes are written aside first (an import killed here leaves a folder
    the next import sweeps), then copied in by the registry's own code."""
    wanted = [v for v in model.record.get("versions", []) if v.get("files") and v.get("files_sha256")]
    if not wanted:
        return {}
    base = StoreLayout(root).registry
    aside = leftovers.aside_folder(base, "registry")
    try:
        for sha, opener in model.blobs.items():
            _copy_checked(opener, aside / sha, sha, model.name)
        trees: dict[str, str] = {}
        for version in wanted:
            sources = []
            for entry in version["files"]:
                if entry["sha256"] not in model.blobs:
                    raise TransferError(f"registered model {model.name!r} version {version['version']}: file "
                                        f"{entry['path']!r} is missing from the archive")
                sources.append(stored.SourceFile(str(entry["path"]), aside / entry["sha256"], entry["sha256"]))
            done = stored.store_files(root, sources, f"registered model {model.name!r} version {version['version']}")
            if done.digest != version["files_sha256"]:
                raise TransferError(f"registered model {model.name!r} version {version['version']}: its file set does "
                                    "not match its recorded digest (damaged in transit); the model was not imported")
            trees[done.digest] = str(done.tree)
        return trees
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _copy_checked(opener: Callable[[], IO[bytes]], target: Path, sha: str, name: str) -> None:
    digest = hashlib.sha256()
    with opener() as src, open(target, "xb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha:
        raise TransferError(f"registered model {name!r}: a stored file does not match its sha256 {sha[:16]} "
                            "(damaged in transit); the model was not imported")
