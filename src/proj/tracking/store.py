"""The store interface, so another backend (a server, Postgres) can sit behind the same calls."""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from proj.paths import StoreLayout

if TYPE_CHECKING:  # only the registry's callers need these records; the run path does not import them
    from proj.tracking.registry_records import ModelVersionRecord, RegisteredModelRecord, RegistryEvent
    from proj.tracking.ui_records import Column, RunsQuery, SampledSeries
from proj.tracking.records import (
    ACTIVE_ONLY,
    ChildRun,
    ExperimentRecord,
    LoggedModelRecord,
    MetricPoint,
    ModelMetric,
    ModelOutput,
    ModelRecord,
    NewRun,
    ParamRecord,
    RunInput,
    RunRecord,
    json_number,
    millis,
)


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

    # ---- MLflow's tracking entities: what the tracking server's protocol handlers call ----
    # Semantics are MLflow's (the server answers exactly as `mlflow server` does); errors are
    # errors.NotFound (RESOURCE_DOES_NOT_EXIST), AlreadyExists, InvalidState and UsageError
    # (INVALID_PARAMETER_VALUE), each with the message MLflow gives. Times are seconds (floats) here; the
    # protocol layer converts to MLflow's milliseconds. A store without these raises NotImplementedError.

    def _unsupported(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"{type(self).__name__} does not support {what}")

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        """A new experiment's id. ``artifact_location`` None: the store's default for it (the server passes
        ``mlflow-artifacts:/<id>``-style roots through ``default_artifact_root``). AlreadyExists if the name is
        taken, by an active or a deleted experiment (MLflow's message says which)."""
        raise self._unsupported("experiments")

    def get_experiment(self, experiment_id: str) -> ExperimentRecord:
        """NotFound: "No Experiment with id=<id> exists"."""
        raise self._unsupported("experiments")

    def get_experiment_by_name(self, name: str) -> ExperimentRecord | None:
        raise self._unsupported("experiments")

    def search_experiments(self, view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None, order_by: list[str] | tuple[str, ...] = (),
                           page_token: str | None = None) -> tuple[list[ExperimentRecord], str | None]:
        """MLflow's experiment search: filter on ``name``, ``creation_time``, ``last_update_time`` (attributes)
        and ``tags.<key>``; default order ``creation_time DESC``, then id; pages as search_runs."""
        raise self._unsupported("experiments")

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        raise self._unsupported("experiments")

    def delete_experiment(self, experiment_id: str) -> None:
        """Lifecycle ``deleted`` (its runs too, as MLflow); the Default experiment ("0") cannot be deleted."""
        raise self._unsupported("experiments")

    def restore_experiment(self, experiment_id: str) -> None:
        raise self._unsupported("experiments")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        raise self._unsupported("experiments")

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        raise self._unsupported("experiments")

    def create_client_run(self, experiment_id: str, user: str | None, start_time: float | None,
                          tags: dict[str, str], run_name: str | None) -> RunRecord:
        """A run an MLflow client opened (no proj runner: no pid, no host, no command). Its name is
        ``run_name``, else the ``mlflow.runName`` tag, else a generated "adjective-noun-NNN" one as MLflow's;
        ``mlflow.runName`` is then set to it. The experiment must exist and be active."""
        raise self._unsupported("client runs")

    def update_run(self, run_id: str, status: str | None = None, end_time: float | None = None,
                   run_name: str | None = None) -> RunRecord:
        """MLflow's runs/update: any of status (one of MLFLOW_STATUSES), end time and name (which also
        sets the ``mlflow.runName`` tag)."""
        raise self._unsupported("client runs")

    def delete_run(self, run_id: str) -> None:
        """Lifecycle ``deleted`` (and a deleted time); the run folder stays until garbage collection."""
        raise self._unsupported("client runs")

    def restore_run(self, run_id: str) -> None:
        raise self._unsupported("client runs")

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        """``mlflow.runName`` renames the run too. InvalidState if the run is deleted."""
        raise self._unsupported("client runs")

    def delete_tag(self, run_id: str, key: str) -> None:
        """NotFound if the run has no such tag ("No tag with name: <key> in run with id <id>")."""
        raise self._unsupported("client runs")

    def log_client_batch(self, run_id: str, metrics: list[MetricPoint] = [],  # noqa: B006 - never mutated
                         params: list[tuple[str, str]] = [],  # noqa: B006
                         tags: dict[str, str] | None = None) -> None:
        """MLflow's log-batch, in one transaction: params are immutable (the same value again is fine, a
        different one is InvalidState with MLflow's "Changing param values is not allowed" message, and
        nothing of the batch is written); the run must be active. Metrics may repeat (key, step)."""
        raise self._unsupported("client runs")

    def metric_history_page(self, run_id: str, key: str, max_results: int = 25000,
                            page_token: str | None = None) -> tuple[list[MetricPoint], str | None]:
        """One key's points in MLflow's order (timestamp, step, then insertion), a page at a time."""
        raise self._unsupported("metric history pages")

    def metric_history_wire(self, run_id: str, key: str, max_results: int = 25000,
                            page_token: str | None = None) -> tuple[list[tuple[float | str, int, int, int]], str | None]:
        """``metric_history_page`` as rows ready for MLflow's JSON: (value, or "NaN"/"Infinity"/"-Infinity";
        step; timestamp in ms; a position to ignore). The server's long-history path; a store without a faster
        way gets it from metric_history_page."""
        points, token = self.metric_history_page(run_id, key, max_results, page_token)
        wire = [(json_number(p.value), p.step, millis(p.timestamp), n) for n, p in enumerate(points)]
        return wire, token

    def metric_history_bulk_interval(self, run_ids: list[str], key: str, max_results: int,
                                     start_step: int | None = None,
                                     end_step: int | None = None) -> list[tuple[str, MetricPoint]]:
        """(run id, point) for MLflow's UI charts: at most ``max_results`` points per run between the steps,
        picked across the step range; the first and last steps and each bucket's min and max are kept."""
        raise self._unsupported("metric history pages")

    def log_inputs(self, run_id: str, inputs: list[RunInput], models: list[ModelOutput] = []) -> None:  # noqa: B006
        """Datasets (deduplicated per experiment by name and digest) linked to the run, with input tags."""
        raise self._unsupported("run inputs")

    def log_outputs(self, run_id: str, models: list[ModelOutput]) -> None:
        raise self._unsupported("run outputs")

    def search_client_runs(self, experiment_ids: list[str], filter_string: str | None = None,
                           view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                           order_by: list[str] | tuple[str, ...] = (),
                           page_token: str | None = None) -> tuple[list[RunRecord], str | None]:
        """MLflow's runs/search over the given experiments (ids), compiled to SQL, tags and params filled."""
        raise self._unsupported("run search by experiment id")

    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: dict[str, str] | None = None, params: dict[str, str] | None = None,
                            model_type: str | None = None) -> LoggedModelRecord:
        """A new MLflow 3 logged model (PENDING), id "m-<32 hex>", name generated when None."""
        raise self._unsupported("logged models")

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModelRecord:
        raise self._unsupported("logged models")

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModelRecord:
        raise self._unsupported("logged models")

    def delete_logged_model(self, model_id: str) -> None:
        raise self._unsupported("logged models")

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        raise self._unsupported("logged models")

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        raise self._unsupported("logged models")

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        raise self._unsupported("logged models")

    def log_model_metrics(self, model_id: str, metrics: list[ModelMetric]) -> None:
        """Metrics logged with a model_id (log-metric/log-batch carry one in MLflow 3)."""
        raise self._unsupported("logged models")

    def search_logged_models(self, experiment_ids: list[str], filter_string: str | None = None,
                             max_results: int = 100, order_by: list[dict[str, object]] | None = None,
                             page_token: str | None = None) -> tuple[list[LoggedModelRecord], str | None]:
        """MLflow 3's logged-model search: filter on ``name``, ``model_id``, ``source_run_id``, ``status``,
        ``creation_timestamp``, ``last_updated_timestamp``, ``tags.<k>``, ``params.<k>``, ``metrics.<k>``;
        order_by items are {"field_name", "ascending"} as the client sends them."""
        raise self._unsupported("logged models")

    # ---- The model registry (MLflow's semantics and messages; every change also appends a RegistryEvent
    # in the same transaction, with ``user`` and ``reason``). Records: tracking.registry_records. ----

    def create_registered_model(self, name: str, description: str | None = None,
                                tags: dict[str, str] | None = None, *, user: str | None = None,
                                reason: str | None = None) -> "RegisteredModelRecord":
        """AlreadyExists: "Registered Model (name=NAME) already exists."."""
        raise self._unsupported("the model registry")

    def get_registered_model(self, name: str) -> "RegisteredModelRecord":
        """NotFound: "Registered Model with name=NAME not found"."""
        raise self._unsupported("the model registry")

    def search_registered_models(self, filter_string: str | None = None, max_results: int = 100,
                                 order_by: list[str] | tuple[str, ...] = (), page_token: str | None = None,
                                 ) -> tuple[list["RegisteredModelRecord"], str | None]:
        """MLflow's grammar: ``name`` (=, !=, LIKE, ILIKE), ``tags.k``; order by name, creation/last_updated
        timestamp; pages as search_runs."""
        raise self._unsupported("the model registry")

    def update_registered_model(self, name: str, description: str, *, user: str | None = None,
                                reason: str | None = None) -> "RegisteredModelRecord":
        raise self._unsupported("the model registry")

    def rename_registered_model(self, name: str, new_name: str, *, user: str | None = None,
                                reason: str | None = None) -> "RegisteredModelRecord":
        raise self._unsupported("the model registry")

    def delete_registered_model(self, name: str, *, user: str | None = None, reason: str | None = None) -> None:
        """Its versions, tags and aliases go too; its events stay (the history outlives the model)."""
        raise self._unsupported("the model registry")

    def set_registered_model_tag(self, name: str, key: str, value: str, *, user: str | None = None,
                                 reason: str | None = None) -> None:
        raise self._unsupported("the model registry")

    def delete_registered_model_tag(self, name: str, key: str, *, user: str | None = None,
                                    reason: str | None = None) -> None:
        raise self._unsupported("the model registry")

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, str] | None = None, description: str | None = None,
                             model_id: str | None = None, *, storage_location: str | None = None,
                             files_sha256: str | None = None, run_link: str | None = None,
                             user: str | None = None, reason: str | None = None) -> "ModelVersionRecord":
        """The next version number of ``name`` (max + 1 in the same IMMEDIATE transaction, so concurrent
        registrations get 1..N with no gap and no duplicate). The registered model must exist."""
        raise self._unsupported("the model registry")

    def get_model_version(self, name: str, version: int) -> "ModelVersionRecord":
        """NotFound: "Model Version (name=NAME, version=V) not found"."""
        raise self._unsupported("the model registry")

    def update_model_version(self, name: str, version: int, description: str, *, user: str | None = None,
                             reason: str | None = None) -> "ModelVersionRecord":
        raise self._unsupported("the model registry")

    def delete_model_version(self, name: str, version: int, *, user: str | None = None,
                             reason: str | None = None) -> None:
        """Its aliases go too; its number is never reused."""
        raise self._unsupported("the model registry")

    def transition_model_version_stage(self, name: str, version: int, stage: str, archive_existing: bool = False,
                                       *, user: str | None = None, reason: str | None = None,
                                       ) -> "ModelVersionRecord":
        """``stage`` one of registry_records.STAGES (case-insensitive as MLflow); ``archive_existing`` moves
        the other versions in that stage (Staging or Production only) to Archived, each with its own event."""
        raise self._unsupported("the model registry")

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list["ModelVersionRecord"]:
        """The newest version in each stage (every stage when ``stages`` is empty), as MLflow."""
        raise self._unsupported("the model registry")

    def search_model_versions(self, filter_string: str | None = None, max_results: int = 10000,
                              order_by: list[str] | tuple[str, ...] = (), page_token: str | None = None,
                              ) -> tuple[list["ModelVersionRecord"], str | None]:
        """MLflow's grammar: ``name``, ``version_number``, ``run_id`` (=, !=, IN), ``source_path``,
        ``tags.k``; default order newest first."""
        raise self._unsupported("the model registry")

    def set_model_version_tag(self, name: str, version: int, key: str, value: str, *, user: str | None = None,
                              reason: str | None = None) -> None:
        raise self._unsupported("the model registry")

    def delete_model_version_tag(self, name: str, version: int, key: str, *, user: str | None = None,
                                 reason: str | None = None) -> None:
        raise self._unsupported("the model registry")

    def set_registered_model_alias(self, name: str, alias: str, version: int, *, user: str | None = None,
                                   reason: str | None = None) -> None:
        """Moves the alias if it points elsewhere (the event records from -> to). Name rules (``^[\\w-]+$``,
        ``latest`` and ``v<digits>`` reserved) are checked by the caller (proj.registry), not here."""
        raise self._unsupported("the model registry")

    def delete_registered_model_alias(self, name: str, alias: str, *, user: str | None = None,
                                      reason: str | None = None) -> None:
        raise self._unsupported("the model registry")

    def get_model_version_by_alias(self, name: str, alias: str) -> "ModelVersionRecord":
        raise self._unsupported("the model registry")

    def set_protected(self, name: str, key: str, protected: bool, *, user: str | None = None,
                      reason: str | None = None) -> None:
        """Mark an alias or a stage of ``name`` protected (moving it then needs a reason: proj.registry checks)."""
        raise self._unsupported("the model registry")

    def registry_events(self, name: str | None = None, *, until: float | None = None,
                        version: int | None = None) -> list["RegistryEvent"]:
        """The events of one model (by the name it had at each event, renames followed) or of all, oldest
        first, up to ``until`` (seconds) when given: what `proj models history --at` replays."""
        raise self._unsupported("the model registry")

    # ---- The web UI's reads (proj.server.ui): pages of the runs table and what its pages show. Records:
    # tracking.ui_records. Times are seconds here, as above; the UI's handlers give milliseconds. ----

    def ui_runs_table(self, query: "RunsQuery", columns: list["Column"], orders: list[tuple["Column", bool]],
                      offset: int, limit: int, *, count: bool = True) -> tuple[int, list[RunRecord], list[list[Any]]]:
        """(how many runs match (-1 when not ``count``), one page of them in ``orders`` order (each (column,
        ascending); runs lacking a value last; then newest first), each page run's values of ``columns``: metrics
        as floats or "NaN"/"Infinity"/"-Infinity", a metric's ``aggregate`` over its whole history)."""
        raise self._unsupported("the web UI's runs table")

    def ui_child_counts(self, run_ids: list[str]) -> dict[str, int]:
        """How many active child runs each of ``run_ids`` has (absent: none)."""
        raise self._unsupported("the web UI's runs table")

    def ui_run_keys(self, experiment_ids: list[str]) -> dict[str, list[str]]:
        """{"params", "metrics", "tags"}: the sorted distinct keys of the runs of these experiments (all: [])."""
        raise self._unsupported("the web UI's runs table")

    def ui_run_groups(self, query: "RunsQuery", group_by: "Column", columns: list["Column"],
                      max_ids: int = 100) -> list[dict[str, Any]]:
        """[{"value", "count", "run_ids", "aggregates": {column name: {"min", "mean", "max", "std", "count"}}}],
        one per value of the param or tag ``group_by`` (None, last: runs without it); std is the population's."""
        raise self._unsupported("the web UI's groups")

    def ui_sampled(self, run_id: str, key: str, x: str, points: int, x_min: float | None = None,
                   x_max: float | None = None) -> "SampledSeries":
        """One run's history of ``key`` against ``x`` (ui_records.SAMPLE_X) within [x_min, x_max], at most about
        ``points`` points: all when they fit, else the first, the last, and the min and max of each of
        (points - 2) // 2 equal-width buckets of x, in x order (so a spike survives). A range spanning at least a
        block of points per bucket may be read from summaries of blocks of consecutive points: a bucket then
        keeps the min and max among the blocks' extremes that fall in it (real points, the global ones always)."""
        raise self._unsupported("sampled metric histories")

    def ui_experiment_summary(self, experiment_ids: list[str]) -> list[dict[str, Any]]:
        """[{"experiment_id", "runs" (active), "running", "last_run_time" (seconds or None)}] for these (all: [])."""
        raise self._unsupported("experiment summaries")

    def ui_reproductions(self, run_id: str) -> list[dict[str, Any]]:
        """[{"run_id", "start_time", "verdict"}]: the runs that reproduce ``run_id``, oldest first."""
        raise self._unsupported("reproductions")
