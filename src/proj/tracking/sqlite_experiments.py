"""MLflow's experiments in the SQLite store: create, read, search, rename, delete, restore, tags."""
from __future__ import annotations

import sqlite3
import time
from typing import Any

from proj.errors import AlreadyExists, InvalidState, NotFound, UsageError
from proj.tracking.dbfile import guarded
from proj.tracking.records import ACTIVE, ACTIVE_ONLY, DEFAULT_EXPERIMENT_ID, DELETED, ExperimentRecord
from proj.tracking.search import (
    ATTRIBUTE,
    EXPERIMENT_TARGET,
    EXPERIMENTS,
    OrderBy,
    check_max_results,
    compile_filter,
    compile_order_by,
    page_offset,
    parse_filter,
    parse_order_by_list,
)
from proj.tracking.search import page_token as next_page_token
from proj.tracking.sqlite_base import SqliteBase, experiment_int, experiment_location, stages

MAX_EXPERIMENT_NAME = 500  # MLflow's MAX_EXPERIMENT_NAME_LENGTH
# MLflow's order when a search names none: newest first, then ascending ids.
_DEFAULT_ORDER = [OrderBy(ATTRIBUTE, "creation_time", False), OrderBy(ATTRIBUTE, "experiment_id", True)]
_COLUMNS = "e.id, e.name, e.artifact_location, e.lifecycle_stage, e.created, e.last_update_time"


def check_experiment_name(name: str) -> None:
    if not name:
        raise UsageError(f"Invalid experiment name: '{name}'")
    if len(name) > MAX_EXPERIMENT_NAME:
        raise UsageError(f"'name' exceeds the maximum length of {MAX_EXPERIMENT_NAME} characters")


@guarded
class SqliteExperiments(SqliteBase):
    """Experiments as MLflow's SQL store keeps them; "0" is the Default experiment and cannot be deleted."""

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        check_experiment_name(name)
        now = time.time()
        with self._tx() as db:
            taken = db.execute("SELECT lifecycle_stage FROM experiments WHERE name = ?", (name,)).fetchone()
            if taken is not None:
                deleted = " (it is deleted: restore it, or pick another name)" if taken[0] == DELETED else ""
                raise AlreadyExists(f"Experiment(name={name}) already exists.{deleted}")
            cursor = db.execute("INSERT INTO experiments (name, created, last_update_time, artifact_location)"
                                " VALUES (?, ?, ?, ?)", (name, now, now, artifact_location or None))
            experiment_id = int(cursor.lastrowid or 0)
            db.executemany("INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)",
                           [(experiment_id, k, v) for k, v in (tags or {}).items()])
        return str(experiment_id)

    def _experiment_row(self, db: sqlite3.Connection, experiment_id: str,
                        allowed: tuple[str, ...] = (ACTIVE, DELETED)) -> tuple[Any, ...]:
        row = db.execute(f"SELECT {_COLUMNS} FROM experiments e WHERE e.id = ?",
                         (experiment_int(experiment_id),)).fetchone()
        if row is None or row[3] not in allowed:
            raise NotFound(f"No Experiment with id={experiment_id} exists")
        found: tuple[Any, ...] = row
        return found

    def _experiments(self, rows: list[tuple[Any, ...]]) -> list[ExperimentRecord]:
        """Records of experiment rows, their tags read in one query."""
        ids = [row[0] for row in rows]
        tags: dict[int, dict[str, str]] = {}
        if ids:
            for eid, key, value in self._db.execute(
                    f"SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN"
                    f" ({','.join('?' * len(ids))}) ORDER BY key", ids):
                tags.setdefault(eid, {})[key] = value
        return [ExperimentRecord(id=str(eid), name=name, artifact_location=experiment_location(eid, location),
                                 lifecycle_stage=stage, creation_time=created,
                                 last_update_time=updated if updated is not None else created,
                                 tags=tags.get(eid, {}))
                for eid, name, location, stage, created, updated in rows]

    def get_experiment(self, experiment_id: str) -> ExperimentRecord:
        return self._experiments([self._experiment_row(self._db, experiment_id)])[0]

    def get_experiment_by_name(self, name: str) -> ExperimentRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM experiments e WHERE e.name = ?", (name,)).fetchone()
        return self._experiments([row])[0] if row else None

    def search_experiments(self, view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None, order_by: list[str] | tuple[str, ...] = (),
                           page_token: str | None = None) -> tuple[list[ExperimentRecord], str | None]:
        check_max_results(max_results)
        shown = stages(view_type)
        orders = parse_order_by_list(order_by, EXPERIMENTS)
        for o in orders:
            if o.type != ATTRIBUTE:
                raise UsageError(f"Invalid order_by entity: {o.type}")
        where, args = compile_filter(parse_filter(filter_string, EXPERIMENTS), target=EXPERIMENT_TARGET)
        terms, order_args = compile_order_by(orders or _DEFAULT_ORDER, target=EXPERIMENT_TARGET)
        offset = page_offset(page_token)
        where.append(f"e.lifecycle_stage IN ({','.join('?' * len(shown))})")
        args += list(shown)
        sql = (f"SELECT {_COLUMNS} FROM experiments e WHERE {' AND '.join(where)} ORDER BY {', '.join(terms)}"
               " LIMIT ? OFFSET ?")
        rows = self._db.execute(sql, [*args, *order_args, max_results + 1, offset]).fetchall()
        found = self._experiments(rows[:max_results])
        return found, (next_page_token(offset + max_results) if len(rows) > max_results else None)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        check_experiment_name(new_name)
        with self._tx() as db:
            row = self._experiment_row(db, experiment_id)
            if row[3] != ACTIVE:
                raise InvalidState("Cannot rename a non-active experiment.")
            other = db.execute("SELECT id FROM experiments WHERE name = ?", (new_name,)).fetchone()
            if other is not None and other[0] != row[0]:
                raise AlreadyExists(f"Experiment(name={new_name}) already exists.")
            db.execute("UPDATE experiments SET name = ?, last_update_time = ? WHERE id = ?",
                       (new_name, time.time(), row[0]))

    def delete_experiment(self, experiment_id: str) -> None:
        """Lifecycle ``deleted`` for the experiment and its runs; the Default experiment stays."""
        if str(experiment_id).strip() == DEFAULT_EXPERIMENT_ID:
            raise InvalidState(f"Cannot delete the default experiment '{DEFAULT_EXPERIMENT_ID}'. "
                               "This is an internally reserved experiment.")
        self._set_stage(experiment_id, DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_stage(experiment_id, ACTIVE)

    def _set_stage(self, experiment_id: str, stage: str) -> None:
        now = time.time()
        with self._tx() as db:
            row = self._experiment_row(db, experiment_id, (ACTIVE,) if stage == DELETED else (DELETED,))
            db.execute("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE id = ?",
                       (stage, now, row[0]))
            db.execute("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ?",
                       (stage, now if stage == DELETED else None, row[0]))

    def _active_experiment(self, db: sqlite3.Connection, experiment_id: str) -> int:
        row = self._experiment_row(db, experiment_id)
        if row[3] != ACTIVE:
            raise InvalidState(f"The experiment {row[0]} must be in the 'active' state. Current state is {row[3]}.")
        found: int = row[0]
        return found

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        with self._tx() as db:
            eid = self._active_experiment(db, experiment_id)
            db.execute("INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)", (eid, key, value))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self._tx() as db:
            eid = self._active_experiment(db, experiment_id)
            if db.execute("DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?", (eid, key)).rowcount == 0:
                raise NotFound(f"No tag with name: {key} in experiment with id {experiment_id}")

