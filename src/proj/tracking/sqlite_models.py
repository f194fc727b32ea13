"""MLflow 3's logged models in the SQLite store: create, read, finalize, delete, tags, params, metrics, search."""
from __future__ import annotations

import os
import time
from typing import Any

from proj.errors import NotFound, UsageError
from proj.tracking.dbfile import guarded
from proj.tracking.records import (
    ACTIVE,
    DELETED,
    MODEL_PENDING,
    MODEL_STATUSES,
    LoggedModelRecord,
    ModelMetric,
)
from proj.tracking.search import (
    MODEL_TARGET,
    MODELS,
    compile_filter,
    compile_order_by,
    page_offset,
    parse_filter,
    parse_model_order_by,
)
from proj.tracking.search import page_token as next_page_token
from proj.tracking.sqlite_base import BOUND_CHUNK, SqliteBase, experiment_int, experiment_location, value_of
from proj.tracking.sqlite_runs import generated_name

_BAD_NAME_CHARS = ("/", ":", ".", "%", '"', "'")  # MLflow's: a model name becomes part of URIs and paths
_COLUMNS = ("g.model_id, g.experiment_id, g.name, g.artifact_location, g.creation_time, g.last_updated_time,"
            " g.status, g.status_message, g.model_type, g.source_run_id, g.lifecycle_stage")
MAX_MODEL_RESULTS = 100  # MLflow's SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT


@guarded
class SqliteModels(SqliteBase):
    """Logged models (``models:/m-...``) with their own artifacts, tags, params and metrics."""

    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: dict[str, str] | None = None, params: dict[str, str] | None = None,
                            model_type: str | None = None) -> LoggedModelRecord:
        if name is not None and (not name or any(c in name for c in _BAD_NAME_CHARS)):
            raise UsageError(f"Invalid model name ({name!r}) provided. Model name must be a non-empty string and "
                             f"cannot contain the following characters: {_BAD_NAME_CHARS}")
        model_id = "m-" + os.urandom(16).hex()
        now = time.time()
        with self._tx() as db:
            row = self._experiment_to_create_in(db, experiment_id)
            location = f"{experiment_location(row[0], row[2]).rstrip('/')}/models/{model_id}/artifacts"
            db.execute("INSERT INTO logged_models VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (model_id, row[0], name or generated_name(), location, now, now, MODEL_PENDING, None,
                        model_type, source_run_id, ACTIVE))
            db.executemany("INSERT OR REPLACE INTO logged_model_tags VALUES (?,?,?)",
                           [(model_id, k, v) for k, v in (tags or {}).items()])
            db.executemany("INSERT OR REPLACE INTO logged_model_params VALUES (?,?,?)",
                           [(model_id, k, v) for k, v in (params or {}).items()])
        return self.get_logged_model(model_id)

    def _model_id(self, model_id: str, allow_deleted: bool = False) -> str:
        row = self._db.execute("SELECT lifecycle_stage FROM logged_models WHERE model_id = ?", (model_id,)).fetchone()
        if row is None or (row[0] == DELETED and not allow_deleted):
            raise NotFound(f"Logged model with ID '{model_id}' not found.")
        return model_id

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModelRecord:
        self._model_id(model_id, allow_deleted)
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM logged_models g WHERE g.model_id = ?", (model_id,)).fetchall()
        return self._models(rows)[0]

    def _models(self, rows: list[tuple[Any, ...]]) -> list[LoggedModelRecord]:
        """Records of logged-model rows; tags, params and metrics in three queries for all of them."""
        found = [LoggedModelRecord(model_id=mid, experiment_id=str(eid), name=name, artifact_location=location,
                                   creation_time=created, last_updated_time=updated, status=status,
                                   status_message=message, model_type=mtype, source_run_id=run, lifecycle_stage=stage)
                 for mid, eid, name, location, created, updated, status, message, mtype, run, stage in rows]
        by_id = {m.model_id: m for m in found}
        ids = list(by_id)
        for start in range(0, len(ids), BOUND_CHUNK):
            chunk = ids[start:start + BOUND_CHUNK]
            marks = ",".join("?" * len(chunk))
            for mid, k, v in self._db.execute(f"SELECT model_id, key, value FROM logged_model_tags"
                                              f" WHERE model_id IN ({marks}) ORDER BY key", chunk):
                by_id[mid].tags[k] = v
            for mid, k, v in self._db.execute(f"SELECT model_id, key, value FROM logged_model_params"
                                              f" WHERE model_id IN ({marks}) ORDER BY key", chunk):
                by_id[mid].params[k] = v
            for mid, k, v, step, ts, run, dname, ddigest in self._db.execute(
                    "SELECT model_id, key, value, step, timestamp, run_id, dataset_name, dataset_digest"
                    f" FROM logged_model_metrics WHERE model_id IN ({marks}) ORDER BY rowid", chunk):
                by_id[mid].metrics.append(ModelMetric(k, value_of(v), step, ts, run, dname, ddigest))
        return found

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModelRecord:
        if status not in MODEL_STATUSES:
            raise UsageError(f"Invalid logged model status {status!r}: one of {list(MODEL_STATUSES)}")
        with self._tx() as db:
            self._model_id(model_id)
            db.execute("UPDATE logged_models SET status = ?, last_updated_time = ? WHERE model_id = ?",
                       (status, time.time(), model_id))
        return self.get_logged_model(model_id)

    def delete_logged_model(self, model_id: str) -> None:
        with self._tx() as db:
            self._model_id(model_id)
            db.execute("UPDATE logged_models SET lifecycle_stage = ?, last_updated_time = ? WHERE model_id = ?",
                       (DELETED, time.time(), model_id))

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        with self._tx() as db:
            self._model_id(model_id)
            db.executemany("INSERT OR REPLACE INTO logged_model_tags VALUES (?,?,?)",
                           [(model_id, k, v) for k, v in tags.items()])

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        with self._tx() as db:
            self._model_id(model_id)
            if db.execute("DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?", (model_id, key)).rowcount == 0:
                raise NotFound(f"No tag with key {key!r} found for model with ID {model_id!r}.")

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        with self._tx() as db:
            self._model_id(model_id)
            db.executemany("INSERT OR REPLACE INTO logged_model_params VALUES (?,?,?)",
                           [(model_id, k, v) for k, v in params.items()])

    def log_model_metrics(self, model_id: str, metrics: list[ModelMetric]) -> None:
        with self._tx() as db:
            self._model_id(model_id)
            db.executemany("INSERT INTO logged_model_metrics VALUES (?,?,?,?,?,?,?,?)",
                           [(model_id, m.key, m.value, m.step, m.timestamp, m.run_id, m.dataset_name,
                             m.dataset_digest) for m in metrics])

    def search_logged_models(self, experiment_ids: list[str], filter_string: str | None = None,
                             max_results: int = MAX_MODEL_RESULTS, order_by: list[dict[str, object]] | None = None,
                             page_token: str | None = None) -> tuple[list[LoggedModelRecord], str | None]:
        max_results = max_results or MAX_MODEL_RESULTS
        if max_results < 0:
            raise UsageError(f"Invalid value {max_results} for parameter 'max_results' supplied.")
        where, args = compile_filter(parse_filter(filter_string, MODELS), target=MODEL_TARGET)
        terms, order_args = compile_order_by(parse_model_order_by(order_by), target=MODEL_TARGET)
        offset = page_offset(page_token)
        if not experiment_ids:
            return [], None
        ids = [experiment_int(e) for e in experiment_ids]
        where += [f"g.experiment_id IN ({','.join('?' * len(ids))})", "g.lifecycle_stage = 'active'"]
        sql = (f"SELECT {_COLUMNS} FROM logged_models g WHERE {' AND '.join(where)} ORDER BY {', '.join(terms)}"
               " LIMIT ? OFFSET ?")
        rows = self._db.execute(sql, [*args, *ids, *order_args, max_results + 1, offset]).fetchall()
        return self._models(rows[:max_results]), (next_page_token(offset + max_results)
                                                  if len(rows) > max_results else None)
