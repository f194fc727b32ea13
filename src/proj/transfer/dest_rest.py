"""Writing runs into a tracking server (proj's or MLflow's) over MLflow's REST API and its mlflow-artifacts upload
path. A server gives every run its own id, and a run cannot be written in one request: it is created FAILED with
the ``proj.import.incomplete`` tag, filled, and only then given its real status with the tag removed. A failure
deletes it; a run left behind by a killed server keeps the tag, and the next import deletes and redoes it."""
from __future__ import annotations

import hashlib
import json
import tarfile
from typing import Any
from urllib.parse import quote

from proj.tracking import mlflow_tags as tags_of
from proj.tracking.records import FAILED, MetricPoint, ParamRecord, RunRecord, millis
from proj.tracking.rest import ARTIFACTS_API, MAX_TAGS, RestStore
from proj.transfer.bundle import IMPORTED_FROM, INCOMPLETE, Bundle, TransferError, number_in


class RestDestination:
    def __init__(self, store: RestStore) -> None:
        self.store = store
        self.label = store.shown
        self.leftovers: list[str] = []  # runs a failed import left marked incomplete: deleted before importing

    def imported(self) -> dict[str, str]:
        """origin -> run id of the runs imported before; the incomplete ones are noted in ``leftovers``."""
        found: dict[str, str] = {}
        exp_ids = self.store._all_experiment_ids()
        token = None
        while True:
            page, token = self.store._search(exp_ids, f"tags.`{IMPORTED_FROM}` LIKE '%'", [], 1000, token)
            for data in page:
                tags = {t["key"]: t.get("value", "") for t in data.get("data", {}).get("tags", [])}
                run_id = str(data["info"]["run_id"])
                if INCOMPLETE in tags:
                    self.leftovers.append(run_id)
                else:
                    found[tags[IMPORTED_FROM]] = run_id
            if not token:
                return found

    def clean_leftovers(self) -> int:
        for run_id in self.leftovers:
            self.store.call("POST", "runs/delete", {"run_id": run_id})
        count, self.leftovers = len(self.leftovers), []
        return count

    def has_run(self, run_id: str) -> bool:
        return False  # a server's ids are its own: a source id is never kept

    def new_id(self, wanted: str) -> str | None:
        return None

    def write(self, bundle: Bundle, run_id: str | None, parent: str | None) -> str:
        """Create and fill the run; its id on the server. Nothing of it stays behind when this raises."""
        created = self._create(bundle, parent)
        new_id = str(created["info"]["run_id"])
        try:
            self._fill(bundle, new_id, str(created["info"].get("artifact_uri", "")))
        except BaseException:
            try:
                self.store.call("POST", "runs/delete", {"run_id": new_id})
            except Exception:  # noqa: BLE001 - the server is gone: the incomplete tag marks it for the next import
                pass
            raise
        return new_id

    def _create(self, bundle: Bundle, parent: str | None) -> dict[str, Any]:
        rec = bundle.record
        exp_id = self.store.experiment_id(str(rec.get("experiment") or "Default"), create=True)
        draft = _draft(rec, parent)
        tags = {**tags_of.system_tags(draft), **rec.get("tags", {}), IMPORTED_FROM: bundle.origin,
                INCOMPLETE: "1"}
        self._tags = tags
        first = dict(list(tags.items())[:MAX_TAGS])
        first.setdefault(INCOMPLETE, "1")
        created: dict[str, Any] = self.store.call("POST", "runs/create", {
            "experiment_id": exp_id, "user_id": draft.user or "unknown", "start_time": millis(draft.start_time),
            "run_name": draft.name, "tags": [{"key": k, "value": v} for k, v in first.items()]})["run"]
        # not RUNNING while it is written: a reader (or a crash) never sees an orphan that seems to go on
        self.store.call("POST", "runs/update", {"run_id": created["info"]["run_id"], "status": FAILED})
        return created

    def _fill(self, bundle: Bundle, run_id: str, artifact_uri: str) -> None:
        rec = bundle.record
        rest = {k: v for k, v in list(self._tags.items())[MAX_TAGS:] if k != INCOMPLETE}
        points = [MetricPoint(str(k), number_in(v), int(s), float(t)) for k, v, s, t in rec.get("metrics", [])]
        params = [(p["key"], p["value"]) for p in rec.get("params", [])]
        self.store._post_batch(run_id, points, params, rest)
        if rec.get("datasets"):
            self.store.call("POST", "runs/log-inputs", {"run_id": run_id, "datasets": [
                {"tags": [{"key": k, "value": v} for k, v in (d.get("tags") or {}).items()],
                 "dataset": {k: d.get(k) for k in ("name", "digest", "source_type", "source", "schema", "profile")
                             if d.get(k) is not None}} for d in rec["datasets"]]})
        root = self.store._proxied(artifact_uri)
        if root is None and (bundle.files or rec.get("lock") or rec.get("models")):
            raise TransferError(f"tracking server {self.label} keeps artifacts at {artifact_uri!r}, not behind its "
                                f"mlflow-artifacts proxy: start it with --serve-artifacts/--artifacts-destination")
        for path, data in self._files(bundle, run_id):
            self.store.request("PUT", f"{ARTIFACTS_API}/{quote(str(root))}/{quote(path)}", body=data,
                               content_type="application/octet-stream")
        self.store.call("POST", "runs/delete-tag", {"run_id": run_id, "key": INCOMPLETE})
        end = rec.get("end_time")
        self.store.call("POST", "runs/update", {"run_id": run_id, "status": rec["status"],
                                                "end_time": None if end is None else millis(float(end))})

    def _files(self, bundle: Bundle, run_id: str) -> list[tuple[str, bytes]]:
        """(artifact path, bytes): the run's files, then proj's own record files under ``proj/`` as a run
        recorded to a server has them (the lock, models.json, request.json), so `proj runs show` reads them back."""
        out = []
        for entry in bundle.files:
            try:
                with entry.open() as fh:
                    data = fh.read()
            except (tarfile.TarError, EOFError) as exc:
                raise TransferError(f"run {bundle.source_id}: file {entry.path!r} cannot be read: {exc}") from None
            if hashlib.sha256(data).hexdigest() != entry.sha256:
                raise TransferError(f"run {bundle.source_id}: file {entry.path!r} does not match its sha256 "
                                    f"(damaged in transit); the run was not imported")
            sub, _, rel = entry.path.partition("/")
            out.append((rel if sub == "artifacts" else f"{tags_of.PROJ_ARTIFACTS}/logs/{rel}", data))
        rec = bundle.record
        if rec.get("lock"):
            name = tags_of.lock_artifact_name(rec["lock"]["format"])
            out.append((f"{tags_of.PROJ_ARTIFACTS}/{name}", rec["lock"]["text"].encode()))
        if rec.get("models"):
            models = [{**m, "run_id": run_id} for m in rec["models"]]
            out.append((f"{tags_of.PROJ_ARTIFACTS}/models.json", json.dumps(models, default=str).encode()))
        if rec.get("request"):
            out.append((f"{tags_of.PROJ_ARTIFACTS}/request.json", rec["request"].encode()))
        return out

    def close(self) -> None:
        return None


def _draft(rec: dict[str, Any], parent: str | None) -> RunRecord:
    """The record as RunRecord, for the ``mlflow.*``/``proj.*`` tags a run recorded to a server carries."""
    params = [ParamRecord(p["key"], p["value"], p.get("typed", p["value"]), p.get("type") or "string",
                          p.get("source") or "logged") for p in rec.get("params", [])]
    return RunRecord(id="", experiment=str(rec.get("experiment") or ""), name=rec.get("name"), status=rec["status"],
                     start_time=float(rec.get("start_time") or 0), end_time=rec.get("end_time"),
                     user=rec.get("user") or "", host=rec.get("host") or "", pid=None, source=rec.get("source") or {},
                     project_name=rec.get("project_name"), entry_point=rec.get("entry_point") or "",
                     command=rec.get("command") or "", exit_code=rec.get("exit_code"),
                     failure_phase=rec.get("failure_phase"), failure_reason=rec.get("failure_reason"),
                     env=rec.get("env") or {}, parent_run_id=parent, inputs=rec.get("inputs") or {},
                     reproduces=rec.get("reproduces"), params=params)

