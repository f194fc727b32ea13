"""Reading runs out of a store proj opens (its embedded SQLite store, or a tracking server, proj's or MLflow's)."""
from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from proj.errors import UsageError
from proj.report import Reporter
from proj.tracking import mlflow_tags as tags_of
from proj.tracking.records import RUNNING, RunRecord
from proj.tracking.store import RunStore
from proj.transfer.bundle import (
    IMPORTED_FROM,
    INCOMPLETE,
    Bundle,
    FileEntry,
    TransferError,
    files_under,
    number_out,
    sha256_of,
)

# What a run record keeps of RunRecord besides what is filled below (ids are remapped by the writer).
RECORD_FIELDS = ("name", "status", "start_time", "end_time", "user", "host", "source", "project_name", "entry_point",
                 "command", "exit_code", "failure_phase", "failure_reason", "env", "inputs", "reproduces",
                 "mlflow_run_id", "parent_run_id")


def select_runs(store: RunStore, refs: tuple[str, ...], experiment: str | None, filter_string: str | None,
                everything: bool) -> list[RunRecord]:
    """The runs named (with their child runs), or those of an experiment / a filter, or all of them."""
    if not (refs or experiment or filter_string or everything):
        raise UsageError("name the runs to move: RUN ids, --experiment NAME, --filter F or --all")
    if refs:
        picked = [store.get_run(ref) for ref in refs]
    elif filter_string:
        picked, token = [], None
        while True:
            page, token = store.search_runs(filter_string, (), 1000, token, experiment=_experiment_name(store, experiment))
            picked += page
            if not token:
                break
    else:
        picked = store.list_runs(experiment=_experiment_name(store, experiment), limit=None)
    found = {r.id: r for r in picked}
    for child in store.descendants(list(found)):
        found.setdefault(child.id, child)
    return sorted(found.values(), key=lambda r: r.start_time)


def _experiment_name(store: RunStore, experiment: str | None) -> str | None:
    """--experiment takes a name or an id; an id is looked up to its name."""
    if experiment is None or not experiment.isdigit():
        return experiment
    try:
        return store.get_experiment(experiment).name
    except Exception:  # noqa: BLE001 - no experiment by that id (or a store without ids): it may be a name
        return experiment


def store_bundles(store: RunStore, runs: list[RunRecord], label: str, reporter: Reporter) -> Iterator[Bundle]:
    """One bundle per run, read when it is wanted (a run still RUNNING is skipped: it is not whole yet)."""
    for run in runs:
        if run.status == RUNNING:
            reporter.warn(f"run {run.id} is still RUNNING: not moved (move it once it has ended)")
            continue
        bundle = store_bundle(store, run, label)
        if bundle is None:
            reporter.warn(f"run {run.id} was left incomplete by an interrupted import: not moved")
            continue
        yield bundle


def store_bundle(store: RunStore, listed: RunRecord, label: str) -> Bundle | None:
    run = store.get_run(listed.id)  # a listing leaves out params, tags and inputs
    record: dict[str, Any] = {key: getattr(run, key) for key in RECORD_FIELDS}
    record["id"] = run.id
    raw = _raw_run(store, run)
    raw_tags = {t["key"]: t.get("value", "") for t in raw.get("data", {}).get("tags", [])} if raw else run.tags
    if INCOMPLETE in raw_tags:
        return None
    record["origin"] = raw_tags.get(IMPORTED_FROM) or f"{label}#{run.id}"  # a copy of a copy keeps the first origin
    record["experiment"] = run.experiment
    record["experiment_tags"] = _experiment_tags(store, run)
    record["params"] = [asdict(p) for p in run.params]
    # a client's nested run has only MLflow's tag for its parent: one field for both, remapped on import
    record["parent_run_id"] = run.parent_run_id or run.tags.get(tags_of.PARENT_RUN_ID)
    record["tags"] = {k: v for k, v in run.tags.items() if k not in (IMPORTED_FROM, tags_of.PARENT_RUN_ID)}
    record["metrics"] = [[p.key, number_out(p.value), p.step, p.timestamp] for p in store.metric_history(run.id)]
    record["datasets"] = [{**asdict(i.dataset), "tags": i.tags} for i in run.datasets] or _remote_inputs(raw)
    lock = store.get_lock(run.id)
    record["lock"] = {"format": lock[0], "text": lock[1]} if lock else None
    record["request"] = store.get_request(run.id)
    try:
        models = store.list_models(run_id=run.id)
    except NotImplementedError:
        models = []
    record["models"] = [{k: v for k, v in m.to_dict().items() if k not in ("experiment", "ref")} for m in models]
    files = _remote_files(store, run) if hasattr(store, "download_artifact") else _local_files(Path(run.run_dir))
    record["files"] = [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files]
    return Bundle(record, files)


def _experiment_tags(store: RunStore, run: RunRecord) -> dict[str, str]:
    try:
        return dict(store.get_experiment(run.experiment_id).tags) if run.experiment_id else {}
    except Exception:  # noqa: BLE001 - a store without experiments (or one that hides them): no tags to carry
        return {}


def _raw_run(store: RunStore, run: RunRecord) -> dict[str, Any] | None:
    """A server's own answer for the run (runs/get): its ``proj.*`` tags and inputs, which RunRecord leaves out."""
    call = getattr(store, "call", None)  # only tracking.rest's store speaks the protocol
    if call is None:
        return None
    found: dict[str, Any] = call("GET", "runs/get", {"run_id": run.id})["run"]
    return found


def _remote_inputs(raw: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The datasets of a run on a server (runs/get's ``inputs``)."""
    out = []
    for item in (raw or {}).get("inputs", {}).get("dataset_inputs", []):
        d = item.get("dataset", {})
        out.append({"name": d.get("name", ""), "digest": d.get("digest", ""), "source_type": d.get("source_type", ""),
                    "source": d.get("source", ""), "schema": d.get("schema"), "profile": d.get("profile"),
                    "tags": {t["key"]: t.get("value", "") for t in item.get("tags", [])}})
    return out


def _local_files(run_dir: Path) -> list[FileEntry]:
    """``artifacts/`` and ``logs/`` of a run folder; symlinks are never followed (a run wrote these folders)."""
    out: list[FileEntry] = []
    for sub in ("artifacts", "logs"):
        top = run_dir / sub
        if not top.is_symlink() and top.is_dir():
            out += files_under(top, sub)
    return out


def _remote_files(store: Any, run: RunRecord) -> list[FileEntry]:
    """A server run's artifacts; proj's own logs (``proj/logs/``) become ``logs/``, the rest of ``proj/`` (the
    lock, models.json, request.json) is carried in the record instead."""
    out: list[FileEntry] = []
    for rel in store._walk(run.id, ""):
        head = rel.split("/", 1)[0]
        if head == tags_of.PROJ_ARTIFACTS:
            if not rel.startswith(f"{tags_of.PROJ_ARTIFACTS}/logs/"):
                continue
            path = "logs/" + rel[len(f"{tags_of.PROJ_ARTIFACTS}/logs/"):]
        else:
            path = f"artifacts/{rel}"
        data = store.download_artifact(run.id, rel)
        if data is None:
            raise TransferError(f"run {run.id}: artifact {rel!r} is listed by the server but cannot be downloaded")
        opener = _bytes_opener(data)
        sha, size = sha256_of(opener)
        out.append(FileEntry(path, size, sha, opener))
    return out


def _bytes_opener(data: bytes) -> Callable[[], IO[bytes]]:
    return lambda: io.BytesIO(data)
