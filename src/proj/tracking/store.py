"""The store interface, so another backend (a server, Postgres) can sit behind the same calls."""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Iterable

from proj.paths import StoreLayout
from proj.tracking.records import ChildRun, MetricPoint, ModelRecord, NewRun, ParamRecord, RunRecord


class RunStore(ABC):
    """Everything the runner and the CLI need from a run store."""

    root: Path

    @abstractmethod
    def create_run(self, new: NewRun, pid: int) -> RunRecord: ...

    @abstractmethod
    def finish_run(self, run_id: str, status: str, *, exit_code: int | None = None,
                   phase: str | None = None, reason: str | None = None) -> None: ...

    @abstractmethod
    def set_owner(self, run_id: str, pid: int) -> None: ...

    @abstractmethod
    def set_env(self, run_id: str, env: dict[str, Any], lock_format: str, lock_text: str) -> None: ...

    @abstractmethod
    def get_lock(self, run_id: str) -> tuple[str, str] | None: ...

    def get_request(self, run_id: str) -> str | None:
        """The run request recorded with the run (JSON); None for runs recorded before it was kept."""
        return None

    @abstractmethod
    def log_batch(self, run_id: str, metrics: Iterable[MetricPoint] = (), params: Iterable[ParamRecord] = (),
                  tags: dict[str, str] | None = None, offset: int | None = None) -> None: ...

    @abstractmethod
    def ingest_offset(self, run_id: str) -> int: ...

    @abstractmethod
    def get_run(self, run_ref: str) -> RunRecord: ...

    @abstractmethod
    def list_runs(self, *, experiment: str | None = None, status: str | None = None,
                  commit: str | None = None, limit: int | None = 50, top_level: bool = False) -> list[RunRecord]:
        """Newest first; ``top_level`` leaves out child runs."""

    def search_runs(self, filter_string: str | None = None, order_by: list[str] | tuple[str, ...] = (),
                    max_results: int = 1000, page_token: str | None = None, *,
                    experiment: str | None = None) -> tuple[list[RunRecord], str | None]:
        """Runs matching MLflow's filter grammar (tracking.search), in ``order_by`` order, one page of them,
        and the token of the next page (None on the last)."""
        raise NotImplementedError(f"{type(self).__name__} does not search runs")

    @abstractmethod
    def metric_history(self, run_id: str, key: str | None = None) -> list[MetricPoint]: ...

    @abstractmethod
    def set_child(self, run_id: str, pid: int) -> None: ...

    @abstractmethod
    def running_runs(self) -> list[tuple[str, str, int | None, str | None, int | None, str | None]]:
        """(id, host, owner pid, owner start time, child pid, child start time) of every RUNNING run."""

    @abstractmethod
    def record_child_run(self, child: ChildRun) -> RunRecord:
        """Create (or update, when ingested again) the child run for one of the program's other MLflow runs."""

    @abstractmethod
    def set_mlflow_run_id(self, run_id: str, mlflow_run_id: str) -> None: ...

    @abstractmethod
    def list_children(self, run_id: str) -> list[RunRecord]:
        """Direct child runs, oldest first."""

    @abstractmethod
    def descendants(self, run_ids: list[str]) -> list[RunRecord]:
        """Every child run below ``run_ids``, at any depth, oldest first."""

    def save_model(self, model: ModelRecord) -> None:
        """Record (or replace) a run's model, keyed by run id and path."""
        raise NotImplementedError(f"{type(self).__name__} does not store models")

    def list_models(self, *, experiment: str | None = None, run_id: str | None = None) -> list[ModelRecord]:
        """Recorded models, newest first."""
        raise NotImplementedError(f"{type(self).__name__} does not store models")

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction; store calls made inside it join it (reading, deciding and writing at once)."""

    @abstractmethod
    def reopen(self) -> "RunStore":
        """Another handle on the same store, with its own connection (for another thread)."""

    def verify(self) -> None:
        """Refuse (StoreDamaged) a store that fails its integrity check; a backend without one has nothing to do."""
        return None  # an optional hook, not abstract: a store with no integrity check has nothing to verify

    def close(self) -> None:
        """Release this handle (its connection)."""
        return None  # an optional hook, not abstract: a store that holds no connection has nothing to release

    def run_dir(self, run_id: str) -> Path:
        return StoreLayout(self.root).run(run_id)
