"""The model registry in the SQLite store: registered models, versions, stages, aliases, tags, protection and
the append-only history of every change, with MLflow's semantics and messages."""
from __future__ import annotations

import getpass
import sqlite3
import time
from typing import Any

from proj.errors import AlreadyExists, InvalidState, NotFound, UsageError
from proj.tracking.dbfile import guarded
from proj.tracking.registry_records import (
    STAGE_ARCHIVED,
    STAGE_NONE,
    STAGE_PRODUCTION,
    STAGE_STAGING,
    STAGES,
    VERSION_READY,
    ModelVersionRecord,
    RegisteredModelRecord,
    RegistryEvent,
)
from proj.tracking.registry_rules import (
    ALIAS_NAME,
    canonical_stage,
    check_alias,
    check_model_name,
    check_tag,
    check_version,
)
from proj.tracking.search import page_offset
from proj.tracking.search import page_token as next_page_token
from proj.tracking.search_registry import (
    MODEL_VERSIONS,
    MODEL_VERSIONS_DEFAULT_ORDER,
    REGISTERED_MODELS,
    compile_registry_filter,
    compile_registry_order_by,
    parse_registry_filter,
)
from proj.tracking.sqlite_base import BOUND_CHUNK, SqliteBase

MAX_MODELS_RESULTS, MAX_MODELS_THRESHOLD = 100, 1000  # MLflow's registered-model search default and limit
MAX_VERSIONS_RESULTS, MAX_VERSIONS_THRESHOLD = 10_000, 200_000  # and the model-version search's
ACTIVE_STAGES = (STAGE_STAGING, STAGE_PRODUCTION)  # the stages archive_existing_versions applies to
_MODEL_COLUMNS = "m.id, m.name, m.creation_time, m.last_updated_time, m.description, m.user_id"
_VERSION_COLUMNS = ("v.model_id, m.name, v.version, v.creation_time, v.last_updated_time, v.source, v.run_id,"
                    " v.logged_model_id, v.user_id, v.current_stage, v.description, v.status, v.status_message,"
                    " v.run_link, v.storage_location, v.files_sha256, v.deleted")
_VERSIONS_FROM = "model_versions v JOIN registered_models m ON m.id = v.model_id"
_EVENT_COLUMNS = "id, time, user, model, version, kind, key, old, new, reason"


def _who(user: str | None) -> str:
    """The event's author: the caller's (a server request's user), else the account proj runs as."""
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


def _protected_key(key: str) -> str:
    """A stage name in any case is that stage; anything else is an alias name."""
    lowered = {s.lower(): s for s in STAGES}
    return lowered.get(key.lower(), key)


@guarded
class SqliteRegistry(SqliteBase):
    """MLflow's model registry over proj.db; each change appends its RegistryEvent in the same transaction."""

    # ---- rows, records, events ----

    def _registered_row(self, db: sqlite3.Connection, name: str) -> tuple[Any, ...]:
        check_model_name(name)
        row = db.execute(f"SELECT {_MODEL_COLUMNS} FROM registered_models m WHERE m.name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"Registered Model with name={name} not found")
        found: tuple[Any, ...] = row
        return found

    def _registered_version_row(self, db: sqlite3.Connection, name: str, version: int | str) -> tuple[Any, ...]:
        """A live version's row (a deleted one is not found, as MLflow's Deleted_Internal)."""
        check_model_name(name)
        number = check_version(version)
        row = db.execute(f"SELECT {_VERSION_COLUMNS} FROM {_VERSIONS_FROM} WHERE m.name = ? AND v.version = ?"
                         " AND v.deleted = 0", (name, number)).fetchone()
        if row is None:
            raise NotFound(f"Model Version (name={name}, version={number}) not found")
        found: tuple[Any, ...] = row
        return found

    @staticmethod
    def _registry_event(db: sqlite3.Connection, model_key: int, model: str, version: int | None, kind: str, *,
               key: str | None = None, old: str | None = None, new: str | None = None, user: str | None = None,
               reason: str | None = None, at: float | None = None) -> None:
        db.execute("INSERT INTO registry_events (time, user, model_key, model, version, kind, key, old, new, reason)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?)",
                   (at if at is not None else time.time(), _who(user), model_key, model, version, kind, key, old,
                    new, reason or None))

    @staticmethod
    def _need_reason(db: sqlite3.Connection, model_key: int, name: str, keys: list[str], reason: str | None,
                     what: str) -> None:
        """Refuse a change touching a protected alias or stage unless it gives a reason (checked in the
        change's own transaction, so a concurrent `protect` cannot slip between the check and the write)."""
        if (reason or "").strip() or not keys:
            return
        marks = ",".join("?" * len(keys))
        hit = db.execute(f"SELECT key FROM registry_protected WHERE model_id = ? AND key IN ({marks}) ORDER BY key",
                         (model_key, *keys)).fetchone()
        if hit is not None:
            raise InvalidState(f"{what}: '{hit[0]}' of registered model '{name}' is protected; give a reason "
                               "(--reason) to change it")

    def _version_records(self, rows: list[tuple[Any, ...]]) -> list[ModelVersionRecord]:
        """Records of version rows, their tags and aliases in two queries for all of them."""
        found = [ModelVersionRecord(name=name, version=version, creation_time=created, last_updated_time=updated,
                                    source=source, run_id=run_id, model_id=logged, user_id=user,
                                    current_stage=stage, description=description, status=status,
                                    status_message=message, run_link=link, storage_location=location,
                                    files_sha256=sha, deleted=bool(deleted))
                 for (_mid, name, version, created, updated, source, run_id, logged, user, stage, description, status,
                      message, link, location, sha, deleted) in rows]
        by_key = {(row[0], row[2]): record for row, record in zip(rows, found, strict=True)}
        per_model: dict[int, list[int]] = {}
        for mid, version in by_key:
            per_model.setdefault(mid, []).append(version)
        for mid, numbers in per_model.items():  # the tags of these versions only, through the primary key
            for begin in range(0, len(numbers), BOUND_CHUNK):
                chunk_numbers = numbers[begin:begin + BOUND_CHUNK]
                for version, key, value in self._db.execute(
                        "SELECT version, key, value FROM model_version_tags WHERE model_id = ? AND version IN"
                        f" ({','.join('?' * len(chunk_numbers))}) ORDER BY key", [mid, *chunk_numbers]):
                    by_key[mid, version].tags[key] = value
        model_ids = sorted({row[0] for row in rows})
        for start in range(0, len(model_ids), BOUND_CHUNK):
            chunk = model_ids[start:start + BOUND_CHUNK]
            marks = ",".join("?" * len(chunk))
            for mid, alias, version in self._db.execute(
                    f"SELECT model_id, alias, version FROM registered_model_aliases WHERE model_id IN ({marks})"
                    " ORDER BY alias", chunk):
                if (mid, version) in by_key:
                    by_key[mid, version].aliases.append(alias)
        return found

    def _registered(self, rows: list[tuple[Any, ...]], *, searched: bool = False) -> list[RegisteredModelRecord]:
        """Records of registered-model rows with tags, aliases, protected keys and latest versions per stage.

        The latest versions come in MLflow's orders: a model read by name lists its stages in the order the
        versions first reached them; a search lists them by stage name (its window query's partitions)."""
        found = [RegisteredModelRecord(name=name, creation_time=created, last_updated_time=updated,
                                       description=description, user_id=user)
                 for _mid, name, created, updated, description, user in rows]
        by_id = {row[0]: record for row, record in zip(rows, found, strict=True)}
        ids = list(by_id)
        for start in range(0, len(ids), BOUND_CHUNK):
            chunk = ids[start:start + BOUND_CHUNK]
            marks = ",".join("?" * len(chunk))
            for mid, key, value in self._db.execute(f"SELECT model_id, key, value FROM registered_model_tags"
                                                    f" WHERE model_id IN ({marks}) ORDER BY key", chunk):
                by_id[mid].tags[key] = value
            for mid, alias, version in self._db.execute(f"SELECT model_id, alias, version FROM registered_model_aliases"
                                                        f" WHERE model_id IN ({marks}) ORDER BY alias", chunk):
                by_id[mid].aliases[alias] = version
            for mid, key in self._db.execute(f"SELECT model_id, key FROM registry_protected"
                                             f" WHERE model_id IN ({marks}) ORDER BY key", chunk):
                by_id[mid].protected.append(key)
            first_reached = ("(SELECT min(w.version) FROM model_versions w WHERE w.model_id = v.model_id"
                             " AND w.current_stage = v.current_stage AND w.deleted = 0)")
            latest = self._db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM {_VERSIONS_FROM} WHERE v.deleted = 0 AND v.model_id IN ({marks})"
                " AND v.version = (SELECT max(w.version) FROM model_versions w WHERE w.model_id = v.model_id"
                " AND w.current_stage = v.current_stage AND w.deleted = 0)"
                f" ORDER BY v.model_id, {'v.current_stage' if searched else first_reached}", chunk).fetchall()
            for row, version in zip(latest, self._version_records(latest), strict=True):
                by_id[row[0]].latest_versions.append(version)
        return found

    # ---- registered models ----

    def create_registered_model(self, name: str, description: str | None = None,
                                tags: dict[str, str] | None = None, *, user: str | None = None,
                                reason: str | None = None) -> RegisteredModelRecord:
        check_model_name(name)
        for key, value in (tags or {}).items():
            check_tag(key, value)
        now = time.time()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM registered_models WHERE name = ?", (name,)).fetchone():
                raise AlreadyExists(f"Registered Model (name={name}) already exists.")
            cursor = db.execute("INSERT INTO registered_models (name, creation_time, last_updated_time, description,"
                                " user_id) VALUES (?,?,?,?,?)", (name, now, now, description, user))
            model_key = int(cursor.lastrowid or 0)
            db.executemany("INSERT INTO registered_model_tags VALUES (?,?,?)",
                           [(model_key, k, v) for k, v in (tags or {}).items()])
            self._registry_event(db, model_key, name, None, "model_created", new=description, user=user, reason=reason, at=now)
            for k, v in (tags or {}).items():
                self._registry_event(db, model_key, name, None, "tag_set", key=k, new=v, user=user, reason=reason, at=now)
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModelRecord:
        return self._registered([self._registered_row(self._db, name)])[0]

    def search_registered_models(self, filter_string: str | None = None, max_results: int = MAX_MODELS_RESULTS,
                                 order_by: list[str] | tuple[str, ...] = (), page_token: str | None = None,
                                 ) -> tuple[list[RegisteredModelRecord], str | None]:
        if max_results > MAX_MODELS_THRESHOLD:
            raise UsageError("Invalid value for request parameter max_results. It must be at most "
                             f"{MAX_MODELS_THRESHOLD}, but got value {max_results}")
        if max_results < 0:  # 0 is an empty page, as MLflow's store answers it
            raise UsageError(f"Invalid value for request parameter max_results. It must be at least 0, "
                             f"but got value {max_results}")
        where, args = compile_registry_filter(parse_registry_filter(filter_string, REGISTERED_MODELS),
                                              REGISTERED_MODELS)
        terms = compile_registry_order_by(order_by or (), REGISTERED_MODELS)
        offset = page_offset(page_token)
        sql = (f"SELECT {_MODEL_COLUMNS} FROM registered_models m WHERE {' AND '.join(where) or '1'}"
               f" ORDER BY {', '.join(terms)} LIMIT ? OFFSET ?")
        rows = self._db.execute(sql, [*args, max_results + 1, offset]).fetchall()
        return self._registered(rows[:max_results], searched=True), (next_page_token(offset + max_results)
                                                  if len(rows) > max_results else None)

    def update_registered_model(self, name: str, description: str, *, user: str | None = None,
                                reason: str | None = None) -> RegisteredModelRecord:
        now = time.time()
        with self._tx() as db:
            row = self._registered_row(db, name)
            db.execute("UPDATE registered_models SET description = ?, last_updated_time = ? WHERE id = ?",
                       (description, now, row[0]))
            if (row[4] or None) != (description or None):
                self._registry_event(db, row[0], name, None, "description", old=row[4], new=description, user=user,
                            reason=reason, at=now)
        return self.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str, *, user: str | None = None,
                                reason: str | None = None) -> RegisteredModelRecord:
        check_model_name(new_name, "new_name")
        now = time.time()
        with self._tx() as db:
            row = self._registered_row(db, name)
            if new_name != name:
                if db.execute("SELECT 1 FROM registered_models WHERE name = ?", (new_name,)).fetchone():
                    raise AlreadyExists(f"Registered Model (name={new_name}) already exists.")
                self._registry_event(db, row[0], name, None, "renamed", old=name, new=new_name, user=user, reason=reason,
                            at=now)
            db.execute("UPDATE registered_models SET name = ?, last_updated_time = ? WHERE id = ?",
                       (new_name, now, row[0]))
            db.execute("UPDATE model_versions SET last_updated_time = ? WHERE model_id = ?", (now, row[0]))
        return self.get_registered_model(new_name)

    def delete_registered_model(self, name: str, *, user: str | None = None, reason: str | None = None) -> None:
        with self._tx() as db:
            row = self._registered_row(db, name)
            model_key = row[0]
            held = [alias for (alias,) in db.execute("SELECT alias FROM registered_model_aliases WHERE model_id = ?",
                                                     (model_key,))]
            held += [stage for (stage,) in db.execute("SELECT DISTINCT current_stage FROM model_versions"
                                                      " WHERE model_id = ? AND deleted = 0", (model_key,))]
            self._need_reason(db, model_key, name, held, reason, "cannot delete the model")
            for table in ("registered_model_tags", "model_version_tags", "registered_model_aliases",
                          "registry_protected", "model_versions"):
                db.execute(f"DELETE FROM {table} WHERE model_id = ?", (model_key,))
            db.execute("DELETE FROM registered_models WHERE id = ?", (model_key,))
            self._registry_event(db, model_key, name, None, "model_deleted", user=user, reason=reason)

    def set_registered_model_tag(self, name: str, key: str, value: str, *, user: str | None = None,
                                 reason: str | None = None) -> None:
        check_tag(key, value)
        with self._tx() as db:
            model_key = self._registered_row(db, name)[0]
            old = db.execute("SELECT value FROM registered_model_tags WHERE model_id = ? AND key = ?",
                             (model_key, key)).fetchone()
            db.execute("INSERT OR REPLACE INTO registered_model_tags VALUES (?,?,?)", (model_key, key, value))
            if old is None or old[0] != value:
                self._registry_event(db, model_key, name, None, "tag_set", key=key, old=old[0] if old else None, new=value,
                            user=user, reason=reason)

    def delete_registered_model_tag(self, name: str, key: str, *, user: str | None = None,
                                    reason: str | None = None) -> None:
        check_tag(key, "")
        with self._tx() as db:
            model_key = self._registered_row(db, name)[0]
            old = db.execute("SELECT value FROM registered_model_tags WHERE model_id = ? AND key = ?",
                             (model_key, key)).fetchone()
            if old is not None:  # MLflow: deleting a tag the model lacks is not an error
                db.execute("DELETE FROM registered_model_tags WHERE model_id = ? AND key = ?", (model_key, key))
                self._registry_event(db, model_key, name, None, "tag_deleted", key=key, old=old[0], user=user, reason=reason)

    # ---- model versions ----

    def _registry_storage_of(self, db: sqlite3.Connection, source: str, run_id: str | None,
                    model_id: str | None) -> tuple[str | None, str | None, str | None]:
        """MLflow's resolution of a ``models:/`` source, when the caller gave no storage location: a logged
        model's artifact location (and its run), another version's location. -> (location, run id, model id)."""
        if not source.startswith("models:/"):
            return None, run_id, model_id
        rest = source[len("models:/"):].strip("/")
        if rest.startswith("m-") and "/" not in rest:
            row = db.execute("SELECT artifact_location, source_run_id FROM logged_models WHERE model_id = ?"
                             " AND lifecycle_stage = 'active'", (rest,)).fetchone()
            if row is None:
                raise NotFound(f"Unable to fetch model from model URI source artifact location '{source}'. "
                               f"Error: Logged model with ID '{rest}' not found.")
            return row[0], run_id or row[1], model_id or rest
        name, _, version = rest.rpartition("/")
        if name and version.isdigit():
            try:
                found = self._registered_version_row(db, name, version)
            except NotFound as exc:
                raise NotFound(f"Unable to fetch model from model URI source artifact location '{source}'. "
                               f"Error: {exc.message}") from None
            return found[14] or found[5], run_id, model_id
        return None, run_id, model_id

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, str] | None = None, description: str | None = None,
                             model_id: str | None = None, *, storage_location: str | None = None,
                             files_sha256: str | None = None, run_link: str | None = None,
                             user: str | None = None, reason: str | None = None) -> ModelVersionRecord:
        check_model_name(name)
        if not source:
            raise UsageError("Missing value for required parameter 'source'.")
        for key, value in (tags or {}).items():
            check_tag(key, value)
        now = time.time()
        with self._tx() as db:  # IMMEDIATE: max + 1 is read and written under the one write lock
            model_key = self._registered_row(db, name)[0]
            if storage_location is None:
                storage_location, run_id, model_id = self._registry_storage_of(db, source, run_id, model_id)
            if not run_id and model_id:  # MLflow: a logged model's version belongs to the model's run
                found = db.execute("SELECT source_run_id FROM logged_models WHERE model_id = ?", (model_id,)).fetchone()
                run_id = found[0] if found else None
            version = db.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model_id = ?",
                                 (model_key,)).fetchone()[0]
            db.execute("INSERT INTO model_versions (model_id, version, creation_time, last_updated_time, source, run_id,"
                       " logged_model_id, user_id, current_stage, description, status, status_message, run_link,"
                       " storage_location, files_sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (model_key, version, now, now, source, run_id, model_id, user, STAGE_NONE, description,
                        VERSION_READY, None, run_link, storage_location or source, files_sha256))
            db.executemany("INSERT INTO model_version_tags VALUES (?,?,?,?)",
                           [(model_key, version, k, v) for k, v in (tags or {}).items()])
            db.execute("UPDATE registered_models SET last_updated_time = ? WHERE id = ?", (now, model_key))
            self._registry_event(db, model_key, name, version, "version_created", new=source, user=user,
                        reason=reason, at=now)
            for k, v in (tags or {}).items():
                self._registry_event(db, model_key, name, version, "tag_set", key=k, new=v, user=user, reason=reason, at=now)
        return self.get_model_version(name, version)

    def get_model_version(self, name: str, version: int) -> ModelVersionRecord:
        return self._version_records([self._registered_version_row(self._db, name, version)])[0]

    def update_model_version(self, name: str, version: int, description: str, *, user: str | None = None,
                             reason: str | None = None) -> ModelVersionRecord:
        now = time.time()
        with self._tx() as db:
            row = self._registered_version_row(db, name, version)
            db.execute("UPDATE model_versions SET description = ?, last_updated_time = ? WHERE model_id = ?"
                       " AND version = ?", (description, now, row[0], row[2]))
            if (row[10] or None) != (description or None):
                self._registry_event(db, row[0], name, row[2], "description", old=row[10], new=description, user=user,
                            reason=reason, at=now)
        return self.get_model_version(name, row[2])

    def delete_model_version(self, name: str, version: int, *, user: str | None = None,
                             reason: str | None = None) -> None:
        """As MLflow: the row stays, redacted, so the number is never reused; its aliases go (each an event)."""
        now = time.time()
        with self._tx() as db:
            row = self._registered_version_row(db, name, version)
            model_key, number, stage = row[0], row[2], row[9]
            aliases = [a for (a,) in db.execute("SELECT alias FROM registered_model_aliases WHERE model_id = ?"
                                                " AND version = ? ORDER BY alias", (model_key, number))]
            self._need_reason(db, model_key, name, [*aliases, stage], reason, f"cannot delete version {number}")
            for alias in aliases:
                db.execute("DELETE FROM registered_model_aliases WHERE model_id = ? AND alias = ?", (model_key, alias))
                self._registry_event(db, model_key, name, number, "alias_deleted", key=alias, old=str(number), user=user,
                            reason=reason, at=now)
            db.execute("UPDATE model_versions SET deleted = 1, last_updated_time = ?, description = NULL,"
                       " user_id = NULL, source = 'REDACTED-SOURCE-PATH', run_id = 'REDACTED-RUN-ID',"
                       " run_link = 'REDACTED-RUN-LINK', status_message = NULL WHERE model_id = ? AND version = ?",
                       (now, model_key, number))
            db.execute("UPDATE registered_models SET last_updated_time = ? WHERE id = ?", (now, model_key))
            self._registry_event(db, model_key, name, number, "version_deleted", old=stage, user=user, reason=reason, at=now)

    def transition_model_version_stage(self, name: str, version: int, stage: str, archive_existing: bool = False,
                                       *, user: str | None = None, reason: str | None = None,
                                       ) -> ModelVersionRecord:
        target = canonical_stage(stage)
        if archive_existing and target not in ACTIVE_STAGES:
            raise UsageError("Model version transition cannot archive existing model versions because "
                             f"'{stage}' is not an Active stage. Valid stages are {list(ACTIVE_STAGES)}")
        now = time.time()
        with self._tx() as db:
            row = self._registered_version_row(db, name, version)
            model_key, number, current = row[0], row[2], row[9]
            others: list[int] = []
            if archive_existing:
                others = [v for (v,) in db.execute("SELECT version FROM model_versions WHERE model_id = ? AND"
                                                   " current_stage = ? AND version != ? AND deleted = 0 ORDER BY version",
                                                   (model_key, target, number))]
            touched = {current, target} if current != target else set()
            if others:  # versions leave the target stage for Archived
                touched |= {target, STAGE_ARCHIVED}
            self._need_reason(db, model_key, name, sorted(touched), reason,
                              f"cannot move version {number} to {target}")
            for other in others:
                db.execute("UPDATE model_versions SET current_stage = ?, last_updated_time = ? WHERE model_id = ?"
                           " AND version = ?", (STAGE_ARCHIVED, now, model_key, other))
                self._registry_event(db, model_key, name, other, "stage", key=STAGE_ARCHIVED, old=target, new=STAGE_ARCHIVED,
                            user=user, reason=reason or f"archive_existing_versions: version {number} moved to {target}",
                            at=now)
            db.execute("UPDATE model_versions SET current_stage = ?, last_updated_time = ? WHERE model_id = ?"
                       " AND version = ?", (target, now, model_key, number))
            db.execute("UPDATE registered_models SET last_updated_time = ? WHERE id = ?", (now, model_key))
            if current != target:
                self._registry_event(db, model_key, name, number, "stage", key=target, old=current, new=target, user=user,
                            reason=reason, at=now)
        return self.get_model_version(name, number)

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersionRecord]:
        wanted = {canonical_stage(s) for s in stages} if stages else set(STAGES)
        model = self.get_registered_model(name)
        return [v for v in model.latest_versions if v.current_stage in wanted]

    def search_model_versions(self, filter_string: str | None = None, max_results: int = MAX_VERSIONS_RESULTS,
                              order_by: list[str] | tuple[str, ...] = (), page_token: str | None = None,
                              ) -> tuple[list[ModelVersionRecord], str | None]:
        if not isinstance(max_results, int) or max_results < 1:
            raise UsageError("Invalid value for max_results. It must be a positive integer, "
                             f"but got {max_results}")
        if max_results > MAX_VERSIONS_THRESHOLD:
            raise UsageError("Invalid value for request parameter max_results. It must be at most "
                             f"{MAX_VERSIONS_THRESHOLD}, but got value {max_results}")
        where, args = compile_registry_filter(parse_registry_filter(filter_string, MODEL_VERSIONS), MODEL_VERSIONS)
        terms = compile_registry_order_by(order_by or MODEL_VERSIONS_DEFAULT_ORDER, MODEL_VERSIONS)
        offset = page_offset(page_token)
        sql = (f"SELECT {_VERSION_COLUMNS} FROM {_VERSIONS_FROM} WHERE v.deleted = 0 AND {' AND '.join(where) or '1'}"
               f" ORDER BY {', '.join(terms)} LIMIT ? OFFSET ?")
        rows = self._db.execute(sql, [*args, max_results + 1, offset]).fetchall()
        return self._version_records(rows[:max_results]), (next_page_token(offset + max_results)
                                                    if len(rows) > max_results else None)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str, *, user: str | None = None,
                              reason: str | None = None) -> None:
        check_tag(key, value)
        with self._tx() as db:
            row = self._registered_version_row(db, name, version)
            old = db.execute("SELECT value FROM model_version_tags WHERE model_id = ? AND version = ? AND key = ?",
                             (row[0], row[2], key)).fetchone()
            db.execute("INSERT OR REPLACE INTO model_version_tags VALUES (?,?,?,?)", (row[0], row[2], key, value))
            if old is None or old[0] != value:
                self._registry_event(db, row[0], name, row[2], "tag_set", key=key, old=old[0] if old else None, new=value,
                            user=user, reason=reason)

    def delete_model_version_tag(self, name: str, version: int, key: str, *, user: str | None = None,
                                 reason: str | None = None) -> None:
        check_tag(key, "")
        with self._tx() as db:
            row = self._registered_version_row(db, name, version)
            old = db.execute("SELECT value FROM model_version_tags WHERE model_id = ? AND version = ? AND key = ?",
                             (row[0], row[2], key)).fetchone()
            if old is not None:  # MLflow: deleting a tag the version lacks is not an error
                db.execute("DELETE FROM model_version_tags WHERE model_id = ? AND version = ? AND key = ?",
                           (row[0], row[2], key))
                self._registry_event(db, row[0], name, row[2], "tag_deleted", key=key, old=old[0], user=user, reason=reason)

    # ---- aliases and protection ----

    def set_registered_model_alias(self, name: str, alias: str, version: int, *, user: str | None = None,
                                   reason: str | None = None) -> None:
        check_model_name(name)
        check_alias(alias, setting=True)
        with self._tx() as db:
            row = self._registered_version_row(db, name, version)
            model_key, number = row[0], row[2]
            old = db.execute("SELECT version FROM registered_model_aliases WHERE model_id = ? AND alias = ?",
                             (model_key, alias)).fetchone()
            if old is not None and old[0] == number:
                return  # already there: nothing moves, nothing to record
            self._need_reason(db, model_key, name, [alias], reason, f"cannot point alias '{alias}' at version {number}")
            db.execute("INSERT OR REPLACE INTO registered_model_aliases VALUES (?,?,?)", (model_key, alias, number))
            self._registry_event(db, model_key, name, number, "alias_set", key=alias, old=str(old[0]) if old else None,
                        new=str(number), user=user, reason=reason)

    def delete_registered_model_alias(self, name: str, alias: str, *, user: str | None = None,
                                      reason: str | None = None) -> None:
        check_model_name(name)
        check_alias(alias)
        with self._tx() as db:
            model_key = self._registered_row(db, name)[0]
            old = db.execute("SELECT version FROM registered_model_aliases WHERE model_id = ? AND alias = ?",
                             (model_key, alias)).fetchone()
            if old is None:
                return  # MLflow: deleting an alias that is not set is not an error
            self._need_reason(db, model_key, name, [alias], reason, f"cannot delete alias '{alias}'")
            db.execute("DELETE FROM registered_model_aliases WHERE model_id = ? AND alias = ?", (model_key, alias))
            self._registry_event(db, model_key, name, old[0], "alias_deleted", key=alias, old=str(old[0]), user=user,
                        reason=reason)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersionRecord:
        check_model_name(name)
        check_alias(alias)
        model_key = self._registered_row(self._db, name)[0]
        if alias.lower() == "latest":  # MLflow's reserved alias: the highest live version
            found = self._db.execute("SELECT max(version) FROM model_versions WHERE model_id = ? AND deleted = 0",
                                     (model_key,)).fetchone()[0]
            if found is None:
                raise NotFound(f"Latest version not found for model {name}.")
            return self.get_model_version(name, found)
        row = self._db.execute("SELECT version FROM registered_model_aliases WHERE model_id = ? AND alias = ?",
                               (model_key, alias)).fetchone()
        if row is None:  # MLflow answers INVALID_PARAMETER_VALUE here, not RESOURCE_DOES_NOT_EXIST
            raise UsageError(f"Registered model alias {alias} not found.")
        return self.get_model_version(name, row[0])

    def set_protected(self, name: str, key: str, protected: bool, *, user: str | None = None,
                      reason: str | None = None) -> None:
        """Protecting needs nothing; unprotecting needs a reason, as moving the key would (else unprotecting
        first would be a way around it)."""
        if not key or not ALIAS_NAME.match(key):
            raise UsageError(f"Invalid alias or stage name to protect: {key!r}. Stages are {', '.join(STAGES)}; "
                             "alias names may only contain alphanumerics, underscores (_), and dashes (-).")
        key = _protected_key(key)
        with self._tx() as db:
            model_key = self._registered_row(db, name)[0]
            present = db.execute("SELECT 1 FROM registry_protected WHERE model_id = ? AND key = ?",
                                 (model_key, key)).fetchone() is not None
            if present == protected:
                return
            if protected:
                db.execute("INSERT INTO registry_protected VALUES (?, ?)", (model_key, key))
            else:
                self._need_reason(db, model_key, name, [key], reason, "cannot unprotect")
                db.execute("DELETE FROM registry_protected WHERE model_id = ? AND key = ?", (model_key, key))
            self._registry_event(db, model_key, name, None, "protected" if protected else "unprotected", key=key, user=user,
                        reason=reason)

    # ---- history ----

    def _registry_model_keys(self, name: str, until: float | None) -> list[int]:
        """The model ``name`` means: at ``until``, the one that had that name then (alive, else the last one
        deleted under it); without ``until``, the live one, else the last one that had it (a deleted model's
        history stays readable)."""
        candidates = [k for (k,) in self._db.execute(
            "SELECT model_key FROM registry_events WHERE model = ? OR (kind = 'renamed' AND new = ?)"
            " GROUP BY model_key ORDER BY max(id) DESC", (name, name))]
        if until is not None:
            named = [(key, alive) for key in candidates for had, alive in [self._registry_name_at(key, until)]
                     if had == name]
            if named:  # the one alive at that time first, then the most recently active
                return [min(named, key=lambda item: not item[1])[0]]
        live = self._db.execute("SELECT id FROM registered_models WHERE name = ?", (name,)).fetchone()
        if live is not None:
            return [live[0]]
        return candidates[:1]

    def _registry_name_at(self, model_key: int, at: float) -> tuple[str | None, bool]:
        """(the name model ``model_key`` had at time ``at``, whether it existed then); (None, False) before it
        was created; a deleted model keeps the name it was deleted under."""
        name: str | None = None
        alive = False
        for kind, model, new in self._db.execute("SELECT kind, model, new FROM registry_events WHERE model_key = ?"
                                                 " AND time <= ? ORDER BY id", (model_key, at)):
            name = new if kind == "renamed" else model
            alive = kind != "model_deleted"
        return name, alive

    def registry_events(self, name: str | None = None, *, until: float | None = None,
                        version: int | None = None) -> list[RegistryEvent]:
        where: list[str] = []
        args: list[Any] = []
        if name is not None:
            keys = self._registry_model_keys(name, until)
            if not keys:
                raise NotFound(f"Registered Model with name={name} not found")
            where.append(f"model_key IN ({','.join('?' * len(keys))})")
            args += keys
        if until is not None:
            where.append("time <= ?")
            args.append(until)
        if version is not None:
            where.append("version = ?")
            args.append(check_version(version))
        sql = f"SELECT {_EVENT_COLUMNS} FROM registry_events WHERE {' AND '.join(where) or '1'} ORDER BY id"
        return [RegistryEvent(id=i, time=t, user=u, model=m, version=v, kind=k, key=key, old=old, new=new, reason=r)
                for i, t, u, m, v, k, key, old, new, r in self._db.execute(sql, args)]
