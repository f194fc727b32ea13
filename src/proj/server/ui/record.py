"""The run page's and the compare page's endpoints: what only proj records (command, typed params, source,
environment, logs, models, reproductions), a log read from an offset, the source patch, runs side by side,
experiment counts and the registry's history and lineage."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from proj.errors import UsageError
from proj.registry.trace import lineage
from proj.reproduce.packages import lock_packages
from proj.server import artifact_paths as ap
from proj.server.artifact_paths import Place
from proj.server.artifacts import exact_run
from proj.server.protocol import validate as v
from proj.server.ui.call import JsonDict, UiCall, ms, wire
from proj.sources.provenance import PATCH
from proj.tracking import mlflow_tags
from proj.tracking.logs import STREAMS
from proj.tracking.records import RUNNING, RunRecord
from proj.tracking.search import ATTRIBUTE
from proj.tracking.store import RunStore
from proj.tracking.ui_records import Column, RunsQuery

LOG_LIMIT = 65536
MAX_LOG_LIMIT = 4 << 20
PATCH_LIMIT = 1 << 20
MAX_COMPARE = 50
MAX_CHILDREN = 1000
ENV_FILES = ("conda.yaml", "python_env.yaml", "requirements.txt")  # a model's environment files (MLflow's names)


def _run(call: UiCall, key: str = "run_id") -> RunRecord:
    run_id = call.string(key, need=True)
    assert run_id is not None
    return exact_run(call.store, v.check_run_id(run_id, key))


def _file(run_dir: Path, folder: str, name: str) -> tuple[Any, int] | None:
    """A file of the run folder opened as the artifact endpoints open theirs (never through a link out)."""
    return ap.open_file(Place(run_dir, folder), name)


def _size(run_dir: Path, folder: str, name: str) -> int | None:
    found = _file(run_dir, folder, name)
    if found is None:
        return None
    found[0].close()
    return found[1]


def _packages(lock: tuple[str, str] | None) -> dict[str, str]:
    return lock_packages(*lock) if lock else {}


def _env(store: RunStore, run: RunRecord) -> JsonDict:
    env, lock = run.env or {}, store.get_lock(run.id)
    return {"backend": env.get("backend"), "reason": env.get("reason") or env.get("choice"), "key": env.get("key"),
            "cache_hit": env.get("cache_hit"), "build_seconds": env.get("build_seconds"),
            "lock_format": env.get("lock_format") or (lock[0] if lock else None),
            "lock_digest": env.get("lock_sha256"), "python": env.get("python_version"),
            "packages": [{"name": name.removeprefix("conda:"), "version": version,
                          "source": "conda" if name.startswith("conda:") else (lock[0] if lock else None)}
                         for name, version in sorted(_packages(lock).items())]}


def _models(store: RunStore, run: RunRecord) -> list[JsonDict]:
    try:
        models = store.list_models(run_id=run.id)
    except NotImplementedError:
        return []
    return [{"path": m.path, "flavors": m.flavors, "size": m.size, "valid": m.valid, "reason": m.reason,
             "signature": m.mlmodel.get("signature"),
             "files": [f.get("path") for f in m.files if str(f.get("path", "")).rsplit("/", 1)[-1] in ENV_FILES]}
            for m in models]


def is_proj_run(run: RunRecord) -> bool:
    return mlflow_tags.system_tags(run).get(mlflow_tags.PROJ_RUN) == "1"


def record(call: UiCall) -> JsonDict:
    store = call.store
    run = _run(call)
    run_dir = store.run_dir(run.id)
    source = run.source or {}
    logs = {stream: size for stream, name in STREAMS.items()
            if (size := _size(run_dir, "logs", name)) is not None}
    return {
        "run_id": run.id, "proj": is_proj_run(run), "command": run.command or None,
        "entry_point": run.entry_point or None, "project_uri": source.get("uri") or source.get("dir"),
        "params": [{"key": p.key, "value": p.value, "typed": p.typed, "type": p.type, "source": p.source}
                   for p in run.params],
        "source": {"commit": source.get("commit"), "branch": source.get("branch"), "remote": source.get("remote"),
                   "dirty": source.get("dirty"), "patch_size": _size(run_dir, "artifacts/source", PATCH)},
        "env": _env(store, run) if is_proj_run(run) else {},
        "exit_code": run.exit_code, "failure_phase": run.failure_phase, "failure_reason": run.failure_reason,
        "logs": logs, "models": _models(store, run),
        "reproductions": [{**r, "start_time": ms(r["start_time"])} for r in store.ui_reproductions(run.id)],
        "reproduces": run.reproduces,
        "children": [{"run_id": c.id, "run_name": c.name, "status": c.status} for c in _children(store, run.id)],
    }


def _children(store: RunStore, run_id: str) -> list[RunRecord]:
    """proj's child runs and an MLflow client's nested ones (the runs table's children), oldest first."""
    _, children, _ = store.ui_runs_table(RunsQuery(parent_run_id=run_id), [],
                                         [(Column(ATTRIBUTE, "start_time"), True)], 0, MAX_CHILDREN, count=False)
    return children


def _decoded(data: bytes, at_end: bool) -> tuple[str, int]:
    """``data`` as text, and how many of its bytes that is: a UTF-8 character cut by the limit is left for the
    next read (unless the file ends there), so a tail that polls never shows it broken."""
    used = len(data)
    if not at_end:
        for back in range(1, min(4, used) + 1):
            byte = data[used - back]
            if byte < 0x80:
                break
            if byte >= 0xC0:  # a lead byte: is its character complete?
                need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
                if back < need:
                    used -= back
                break
    return data[:used].decode("utf-8", errors="replace"), used


def log(call: UiCall) -> JsonDict:
    stream = call.choice("stream", tuple(STREAMS), "stdout")
    offset = call.integer("offset", 0)
    limit = call.integer("limit", LOG_LIMIT, low=1, high=MAX_LOG_LIMIT)
    assert offset is not None and limit is not None
    run = _run(call)
    found = _file(call.store.run_dir(run.id), "logs", STREAMS[stream])
    if found is None:
        return {"text": "", "offset": 0, "next_offset": 0, "size": 0, "running": run.status == RUNNING}
    fh, size = found
    with fh:
        start = max(0, size + offset) if offset < 0 else min(offset, size)
        fh.seek(start)
        data = fh.read(limit)
    text, used = _decoded(data, start + len(data) >= size)
    return {"text": text, "offset": start, "next_offset": start + used, "size": size,
            "running": run.status == RUNNING}


def patch(call: UiCall) -> JsonDict:
    limit = call.integer("limit", PATCH_LIMIT, low=1, high=64 << 20)
    assert limit is not None
    run = _run(call)
    found = _file(call.store.run_dir(run.id), "artifacts/source", PATCH)
    if found is None:
        return {"text": "", "size": 0, "truncated": False}
    fh, size = found
    with fh:
        data = fh.read(limit)
    text, _ = _decoded(data, len(data) >= size)
    return {"text": text, "size": size, "truncated": size > len(data)}


def _rows(keys: list[str], per_run: list[dict[str, Any]]) -> list[JsonDict]:
    rows = []
    for key in keys:
        values = [wire(m.get(key)) for m in per_run]
        rows.append({"key": key, "values": values, "differs": len({json.dumps(x) for x in values}) > 1})
    return rows


def compare(call: UiCall) -> JsonDict:
    ids = call.strings("run_ids")
    if not 2 <= len(ids) <= MAX_COMPARE:
        raise UsageError(v.invalid_value("run_ids", ids, f"compare 2 to {MAX_COMPARE} runs."))
    store = call.store
    runs = [exact_run(store, v.check_run_id(i, "run_ids")) for i in ids]
    params = [{p.key: p.value for p in r.params} for r in runs]
    metrics = [{k: p.value for k, p in r.metrics.items()} for r in runs]
    tags = [r.tags for r in runs]
    envs = [_env(store, r) if is_proj_run(r) else {} for r in runs]
    packages = [{p["name"]: p["version"] for p in e.get("packages", [])} for e in envs]
    env_rows: list[JsonDict] = [{"name": name, "values": [e.get(name) for e in envs]}
                                for name in ("backend", "lock_digest", "python")]
    env_rows += [{"name": name, "values": [p.get(name) for p in packages]}
                 for name in sorted(set().union(*packages))]
    for row in env_rows:
        row["differs"] = len({json.dumps(x) for x in row["values"]}) > 1
    return {"runs": [{"run_id": r.id, "run_name": r.name, "experiment_id": r.experiment_id, "status": r.status,
                      "start_time": ms(r.start_time), "end_time": ms(r.end_time)} for r in runs],
            "params": _rows(sorted(set().union(*params)), params),
            "metrics": _rows(sorted(set().union(*metrics)), metrics),
            "tags": _rows(sorted(set().union(*tags)), tags), "env": env_rows}


def experiments_summary(call: UiCall) -> JsonDict:
    found = call.store.ui_experiment_summary(call.strings("experiment_ids"))
    return {"experiments": [{**e, "last_run_time": ms(e["last_run_time"])} for e in found]}


def _model(call: UiCall) -> tuple[str, int | None]:
    name = call.string("name", need=True)
    assert name is not None
    return name, call.integer("version", None, low=1)


def registry_history(call: UiCall) -> JsonDict:
    name, version = _model(call)
    store = call.store
    events = store.registry_events(name, version=version)
    if not events:
        store.get_registered_model(name)  # NotFound for a model that never existed
    return {"events": [{"time": ms(e.time), "user": e.user, "action": e.kind, "version": e.version, "field": e.key,
                        "old": e.old, "new": e.new, "reason": e.reason} for e in events]}


def registry_lineage(call: UiCall) -> JsonDict:
    name, version = _model(call)
    if version is None:
        raise v.missing("version")
    found = lineage(call.store, f"models:/{name}/{version}")
    safe: JsonDict = json.loads(json.dumps(found, default=str))
    return safe
