"""``RestStore``: the run store over MLflow's REST API 2.0, so a proj run records to ``proj server`` or to any
``mlflow server``. The pipeline keeps working on local run folders (logs, metrics file, artifacts) under
``<cache>/remote/<host_port>/``; the record lives on the server, and the folders' files are uploaded as the
run's artifacts when it ends."""
from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote, urlsplit

import urllib3

from proj import settings
from proj.errors import (
    AlreadyExists,
    InvalidState,
    NotFound,
    ProjError,
    RunNotFound,
    StoreError,
    UsageError,
    one_line,
)
from proj.paths import atomic_write, cache, unsafe_reason
from proj.redact import mask_url
from proj.report import Reporter, StderrReporter
from proj.tracking import mlflow_tags as tags_of
from proj.tracking.records import (
    DEFAULT_EXPERIMENT,
    RUNNING,
    ChildRun,
    MetricPoint,
    ModelRecord,
    NewRun,
    ParamRecord,
    RunRecord,
    json_number,
    millis,
)
from proj.tracking.store import RunStore

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
# MLflow's limits (mlflow.utils.validation): per log-batch request, and per value
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
MAX_PARAM_VALUE, MAX_KEY = 6000, 250
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF = 8.0
REQUEST_TIMEOUT = 30.0
# Error codes MLflow answers with -> the ProjError a caller can branch on
ERRORS: dict[str, type[ProjError]] = {
    "RESOURCE_DOES_NOT_EXIST": NotFound,
    "RESOURCE_ALREADY_EXISTS": AlreadyExists,
    "INVALID_PARAMETER_VALUE": UsageError,
    "INVALID_STATE": InvalidState,
    "BAD_REQUEST": UsageError,
}
REQUEST_FILE = "request.json"
MODELS_FILE = "models.json"
OFFSET_FILE = ".ingest-offset"
REMOTE_FILE = "proj-remote.json"  # what create_run learnt: the artifact URI, the experiment id, the env choice
LOCK_FILE = "proj-lock.json"


class ServerError(StoreError):
    """The tracking server refused a request, or stayed unreachable for the whole retry time."""


def is_remote(uri: str | None) -> bool:
    return bool(uri) and str(uri).lower().startswith(("http://", "https://"))


def _address(uri: str) -> str:
    """``host_port`` of the server, as a folder name (no credentials: they are never part of a path)."""
    parts = urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{parts.hostname or 'server'}_{port}").lstrip(".")


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else millis(seconds)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class RestStore(RunStore):
    """proj's store interface over one MLflow-compatible tracking server."""

    def __init__(self, uri: str, *, root: Path | None = None, retry_seconds: float | None = None,
                 reporter: Reporter | None = None) -> None:
        parts = urlsplit(uri)
        if not parts.hostname:
            raise UsageError(f"tracking URI {mask_url(uri)!r} names no host: use http://host:port")
        # credentials in the URL itself are used as basic auth, never printed (mask_url) and never in paths
        self.uri = uri.rstrip("/")
        self.shown = mask_url(self.uri)
        self.server_uri = self.uri  # what the child's MLflow client is pointed at (collect.models)
        self.root = root or cache().remote(_address(uri))
        self.retry_seconds = settings.number("PROJ_HTTP_RETRY_SECONDS") if retry_seconds is None else retry_seconds
        self._headers = self._auth_headers(parts.username, parts.password)
        insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true", "yes")
        self._http = urllib3.PoolManager(cert_reqs="CERT_NONE" if insecure else "CERT_REQUIRED", retries=False,
                                         timeout=urllib3.Timeout(connect=10.0, read=REQUEST_TIMEOUT))
        if insecure:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._lock = threading.RLock()
        self._gave_up = False  # once the server stayed away for the whole retry time, later calls try once
        self._experiments: dict[str, str] = {}  # id -> name
        self._warned: set[str] = set()
        self.reporter: Reporter = reporter or StderrReporter()  # a store's own warnings (artifacts not uploaded)

    # ---- HTTP ----

    @staticmethod
    def _auth_headers(url_user: str | None, url_password: str | None) -> dict[str, str]:
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME") or url_user
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD") or url_password or ""
        if token:
            return {"Authorization": f"Bearer {token}"}
        if user:
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
        return {}

    def _base(self) -> str:
        parts = urlsplit(self.uri)  # the URL without its userinfo: that went into the Authorization header
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc += f":{parts.port}"
        return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"

    def request(self, method: str, path: str, *, body: bytes | None = None, fields: dict[str, Any] | None = None,
                content_type: str = "application/json", allow: tuple[int, ...] = ()) -> urllib3.BaseHTTPResponse:
        """One request, retried with exponential backoff on connection errors, 429 and 5xx for at most
        PROJ_HTTP_RETRY_SECONDS; an error answer becomes the ProjError its MLflow error_code names."""
        url = self._base() + path
        headers = {**self._headers, **({"Content-Type": content_type} if body is not None else {})}
        budget = 0.0 if self._gave_up else self.retry_seconds
        deadline = time.monotonic() + budget
        delay = 0.25
        while True:
            try:
                resp = self._http.request(method, url, body=body, fields=fields, headers=headers,
                                          preload_content=True, redirect=False)
                problem = None if resp.status not in RETRY_STATUSES else f"HTTP {resp.status}"
            except urllib3.exceptions.HTTPError as exc:
                resp, problem = None, _reason(exc)
            if problem is None and resp is not None:
                self._gave_up = False  # back: the next outage is retried for the whole time again
                if resp.status >= 400 and resp.status not in allow:
                    raise self._error(resp, method, path)
                return resp
            if time.monotonic() + delay > deadline:
                self._gave_up = True
                # the configured time, also for a later call that tried once: the server has been away that long
                raise ServerError(f"tracking server {self.shown} unreachable after {self.retry_seconds:g} s: "
                                  f"{problem}")
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    def _error(self, resp: urllib3.BaseHTTPResponse, method: str, path: str) -> ProjError:
        try:
            data = json.loads(resp.data)
            code, message = str(data.get("error_code", "")), str(data.get("message", ""))
        except (ValueError, AttributeError):
            code, message = "", resp.data[:200].decode(errors="replace")
        if resp.status in (401, 403):
            return ServerError(f"tracking server {self.shown} refused {method} {path} (HTTP {resp.status}): "
                               f"{message or 'unauthorized'}; set MLFLOW_TRACKING_USERNAME/PASSWORD or "
                               f"MLFLOW_TRACKING_TOKEN")
        cls = ERRORS.get(code, ServerError)
        return cls(f"tracking server {self.shown}: {message or f'HTTP {resp.status}'}"
                   + (f" ({code})" if code else ""))

    def call(self, method: str, endpoint: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """An MLflow REST call: JSON body for POST/PATCH, query parameters for GET."""
        path = f"{API}/{endpoint}"
        if method == "GET":
            fields = {k: v for k, v in (payload or {}).items() if v is not None}
            resp = self.request("GET", path, fields=fields)
        else:
            body = json.dumps({k: v for k, v in (payload or {}).items() if v is not None}).encode()
            resp = self.request(method, path, body=body)
        return json.loads(resp.data or b"{}") if resp.data else {}

    # ---- experiments ----

    def experiment_id(self, name: str, *, create: bool) -> str | None:
        """The id of the experiment called ``name`` (created when missing and ``create``)."""
        try:
            exp = self.call("GET", "experiments/get-by-name", {"experiment_name": name})["experiment"]
        except NotFound:
            if not create:
                return None
            try:
                exp_id = str(self.call("POST", "experiments/create", {"name": name})["experiment_id"])
            except AlreadyExists:  # another run created it in between
                exp_id = str(self.call("GET", "experiments/get-by-name", {"experiment_name": name})
                             ["experiment"]["experiment_id"])
            self._experiments[exp_id] = name
            return exp_id
        self._experiments[str(exp["experiment_id"])] = exp["name"]
        return str(exp["experiment_id"])

    def _experiment_name(self, exp_id: str) -> str:
        if exp_id not in self._experiments:
            try:
                self._experiments[exp_id] = self.call("GET", "experiments/get", {"experiment_id": exp_id})[
                    "experiment"]["name"]
            except NotFound:
                self._experiments[exp_id] = exp_id
        return self._experiments[exp_id]

    def _all_experiment_ids(self) -> list[str]:
        ids, token = [], None
        while True:
            page = self.call("POST", "experiments/search", {"max_results": 1000, "page_token": token,
                                                            "view_type": "ACTIVE_ONLY"})
            for exp in page.get("experiments", []):
                self._experiments[str(exp["experiment_id"])] = exp["name"]
                ids.append(str(exp["experiment_id"]))
            token = page.get("next_page_token")
            if not token:
                return ids

    # ---- writing a run ----

    def create_run(self, new: NewRun, pid: int) -> RunRecord:
        _check_limits(new)
        exp_id = self.experiment_id(new.experiment or DEFAULT_EXPERIMENT, create=True)
        assert exp_id is not None
        now = time.time()
        draft = RunRecord(id="", experiment=new.experiment or DEFAULT_EXPERIMENT, name=new.name, status=RUNNING,
                          start_time=now, end_time=None, user=_user(), host=os.uname().nodename, pid=pid,
                          source=new.source, project_name=new.project_name, entry_point=new.entry_point,
                          command=new.command, params=list(new.params), reproduces=new.reproduces,
                          inputs=new.inputs, env={"choice": new.env_choice,
                                                  **({"backend": new.env_backend} if new.env_backend else {})})
        system = tags_of.system_tags(draft)
        if new.request is not None:
            system[tags_of.PROJ_REQUEST_SHA256] = _sha256(new.request)
        all_tags = {**system, **new.tags}
        first, rest = list(all_tags.items())[:MAX_TAGS], list(all_tags.items())[MAX_TAGS:]
        created = self.call("POST", "runs/create", {
            "experiment_id": exp_id, "user_id": draft.user, "start_time": _ms(now), "run_name": new.name,
            "tags": [{"key": k, "value": v} for k, v in first]})["run"]
        run_id = created["info"]["run_id"]
        self._post_batch(run_id, [], [(p.key, p.value) for p in new.params], dict(rest))
        run_dir = self.run_dir(run_id)
        for sub in ("artifacts", "logs"):
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
        _write_json(run_dir / REMOTE_FILE, {"artifact_uri": created["info"].get("artifact_uri", ""),
                                            "experiment_id": exp_id, "env": draft.env})
        if new.request is not None:
            self._upload_bytes(run_id, f"{tags_of.PROJ_ARTIFACTS}/{REQUEST_FILE}", new.request.encode())
        return self.get_run(run_id)

    def _post_batch(self, run_id: str, metrics: list[MetricPoint], params: list[tuple[str, str]],
                    tags: dict[str, str]) -> None:
        """log-batch within MLflow's per-request limits (1000 metrics, 100 params, 100 tags)."""
        tag_items = list(tags.items())
        while metrics or params or tag_items:
            batch = {"run_id": run_id,
                     "metrics": [{"key": m.key, "value": json_number(m.value), "timestamp": _ms(m.timestamp),
                                  "step": m.step} for m in metrics[:MAX_METRICS]],
                     "params": [{"key": k, "value": v} for k, v in params[:MAX_PARAMS]],
                     "tags": [{"key": k, "value": v} for k, v in tag_items[:MAX_TAGS]]}
            self.call("POST", "runs/log-batch", batch)
            metrics, params, tag_items = metrics[MAX_METRICS:], params[MAX_PARAMS:], tag_items[MAX_TAGS:]

    def log_batch(self, run_id: str, metrics: Iterable[MetricPoint] = (), params: Iterable[ParamRecord] = (),
                  tags: dict[str, str] | None = None, offset: int | None = None) -> None:
        self._post_batch(run_id, list(metrics), [(p.key, p.value) for p in params], dict(tags or {}))
        if offset is not None:  # after the points landed: a failed post is read again on the next pass
            _write_text(self.run_dir(run_id) / OFFSET_FILE, str(offset))

    def ingest_offset(self, run_id: str) -> int:
        try:
            return int((self.run_dir(run_id) / OFFSET_FILE).read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def set_env(self, run_id: str, env: dict[str, Any], lock_format: str, lock_text: str) -> None:
        run_dir = self.run_dir(run_id)
        _write_json(run_dir / LOCK_FILE, {"format": lock_format, "text": lock_text})
        env = {**_read_json(run_dir / REMOTE_FILE, {}).get("env", {}), **env}  # the choice made at planning stays
        run_tags = {tags_of.PROJ_ENV: tags_of.json_tag(env)}
        if env.get("backend"):
            run_tags[tags_of.PROJECT_ENV] = str(env["backend"])
        self._post_batch(run_id, [], [], run_tags)
        self._upload_bytes(run_id, f"{tags_of.PROJ_ARTIFACTS}/{tags_of.lock_artifact_name(lock_format)}", lock_text.encode())

    def finish_run(self, run_id: str, status: str, *, exit_code: int | None = None,
                   phase: str | None = None, reason: str | None = None) -> None:
        """Upload the run folder's files, then record the end (tags first, the status last, so a reader that
        sees the final status sees everything). A server that stays away: the local logs are named."""
        end = time.time()
        try:
            try:
                self.upload_run_files(run_id)
            except ServerError:
                raise
            except ProjError as exc:  # a file the server refused: the end of the run is still recorded
                self.reporter.warn(f"the run's files were not all uploaded: {exc}")
            final = {k: v for k, v in ((tags_of.PROJ_EXIT_CODE, None if exit_code is None else str(exit_code)),
                                       (tags_of.PROJ_FAILURE_PHASE, phase),
                                       (tags_of.PROJ_FAILURE_REASON, tags_of.cut(reason) if reason else None))
                     if v is not None}
            self._post_batch(run_id, [], [], final)
            self.call("POST", "runs/update", {"run_id": run_id, "status": status, "end_time": _ms(end)})
        except ServerError as exc:
            raise ServerError(f"{exc.message}; the run's logs are kept in {self.run_dir(run_id) / 'logs'}") from None

    # ---- artifacts ----

    def _artifact_root(self, run_id: str) -> str | None:
        """The server path of the run's artifacts (``<exp>/<run>/artifacts``), or None (with one warning) when
        the server keeps them elsewhere than its mlflow-artifacts proxy (e.g. a local path on the server)."""
        info_file = self.run_dir(run_id) / REMOTE_FILE
        try:
            uri = json.loads(info_file.read_text())["artifact_uri"]
        except (FileNotFoundError, ValueError, KeyError):
            uri = self.call("GET", "runs/get", {"run_id": run_id})["run"]["info"].get("artifact_uri", "")
        return self._proxied(uri)

    def _proxied(self, uri: str) -> str | None:
        if uri.startswith("mlflow-artifacts:"):
            rest = uri[len("mlflow-artifacts:"):]
            if rest.startswith("//"):  # mlflow-artifacts://host:port/path
                rest = "/" + rest[2:].partition("/")[2]
            return rest.strip("/")
        if uri not in self._warned:
            self._warned.add(uri)
            self.reporter.warn(f"tracking server {self.shown} stores artifacts at {mask_url(uri)!r}, not through its "
                  f"mlflow-artifacts proxy: the run's files are not uploaded (start the server with "
                  f"--serve-artifacts / --artifacts-destination)")
        return None

    def _upload_bytes(self, run_id: str, rel: str, data: bytes) -> None:
        root = self._artifact_root(run_id)
        if root is not None:
            self.request("PUT", f"{ARTIFACTS_API}/{quote(root)}/{quote(rel)}", body=data,
                         content_type="application/octet-stream")

    def upload_run_files(self, run_id: str) -> int:
        """The run folder's ``artifacts/`` (the entry point's files, models) as the run's artifacts and its
        ``logs/`` as ``proj/logs/``; symlinks are not followed (the child wrote these folders). Files count."""
        root = self._artifact_root(run_id)
        if root is None:
            return 0
        run_dir = self.run_dir(run_id)
        count = 0
        for local, prefix in ((run_dir / "artifacts", ""), (run_dir / "logs", f"{tags_of.PROJ_ARTIFACTS}/logs/")):
            for path in _files(local):
                rel = prefix + path.relative_to(local).as_posix()
                with open(path, "rb") as fh:
                    self.request("PUT", f"{ARTIFACTS_API}/{quote(root)}/{quote(rel)}", body=fh.read(),
                                 content_type="application/octet-stream")
                count += 1
        return count

    def download_artifact(self, run_id: str, rel: str) -> bytes | None:
        """One artifact of the run, or None when it has none there."""
        try:
            root = self._artifact_root(run_id)
        except NotFound:
            return None
        if root is None:
            return None
        resp = self.request("GET", f"{ARTIFACTS_API}/{quote(root)}/{quote(rel)}", allow=(404,))
        return None if resp.status == 404 else bytes(resp.data)

    def list_artifacts(self, run_id: str, rel: str = "") -> list[dict[str, Any]]:
        root = self._artifact_root(run_id)
        if root is None:
            return []
        path = f"{root}/{rel}".rstrip("/")
        resp = self.request("GET", ARTIFACTS_API, fields={"path": path}, allow=(404,))
        return [] if resp.status == 404 else list(json.loads(resp.data or b"{}").get("files", []))

    def fetch_run_files(self, run: RunRecord, *, logs_only: bool = False) -> None:
        """Download a run's logs (``proj/logs/``) and, unless ``logs_only``, its other artifacts into its local
        folder, when that folder does not have them (the run was recorded from another machine): the reading
        commands then read local files as for any store. Names are checked; nothing outside the folder."""
        run_dir = Path(run.run_dir)
        wanted = [(f"{tags_of.PROJ_ARTIFACTS}/logs", run_dir / "logs")]
        if not logs_only:
            wanted.append(("", run_dir / "artifacts"))
        for remote, local in wanted:
            if local.is_dir() and any(local.iterdir()):
                continue
            for rel in self._walk(run.id, remote):
                inner = rel[len(remote):].lstrip("/") if remote else rel
                if not remote and inner.split("/", 1)[0] == tags_of.PROJ_ARTIFACTS:
                    continue  # proj's own files are not the entry point's artifacts
                if unsafe_reason(inner) is not None:
                    continue
                data = self.download_artifact(run.id, rel)
                if data is not None:
                    (local / inner).parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(local / inner, data)

    def _walk(self, run_id: str, rel: str) -> list[str]:
        out: list[str] = []
        for item in self.list_artifacts(run_id, rel):
            path = f"{rel}/{item['path']}" if rel else item["path"]  # the server names them relative to rel
            out += self._walk(run_id, path) if item.get("is_dir") else [path]
        return out

    # ---- reading ----

    def get_run(self, run_ref: str) -> RunRecord:
        run_id = self._resolve(run_ref)
        try:
            data = self.call("GET", "runs/get", {"run_id": run_id})["run"]
        except NotFound:
            raise RunNotFound(f"no run {run_ref!r} on tracking server {self.shown}") from None
        return self._record(data)

    def _record(self, data: dict[str, Any]) -> RunRecord:
        exp_id = str(data.get("info", {}).get("experiment_id", ""))
        run = tags_of.record_from_mlflow(data, experiment=self._experiment_name(exp_id) if exp_id else "")
        run.run_dir = str(self.run_dir(run.id))
        return run

    def _resolve(self, run_ref: str) -> str:
        """A full run id as given; ``last`` or a prefix looked up among the newest runs."""
        if run_ref != "last" and (len(run_ref) >= 32 or not re.fullmatch(r"[0-9a-f]+", run_ref)):
            return run_ref
        found, _ = self._search(self._all_experiment_ids(), None, ["attributes.start_time DESC"],
                                50 if run_ref == "last" else 1000, None)
        if run_ref == "last":  # the newest top-level run, as for a local store
            tops = [r for r in found if not any(t["key"] == tags_of.PARENT_RUN_ID
                                                for t in r.get("data", {}).get("tags", []))]
            if not tops:
                raise RunNotFound(f"no runs recorded on tracking server {self.shown} yet")
            return str(tops[0]["info"]["run_id"])
        matches = [str(r["info"]["run_id"]) for r in found if r["info"]["run_id"].startswith(run_ref)]
        if len(matches) > 1:
            raise UsageError(f"run prefix {run_ref!r} is ambiguous on {self.shown}: {', '.join(matches[:5])}")
        if not matches:
            raise RunNotFound(f"no run {run_ref!r} on tracking server {self.shown}")
        return matches[0]

    def _search(self, exp_ids: list[str], filter_string: str | None, order_by: list[str] | tuple[str, ...],
                max_results: int, page_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        if not exp_ids:
            return [], None
        page = self.call("POST", "runs/search", {"experiment_ids": exp_ids, "filter": filter_string or None,
                                                 "order_by": list(order_by) or None, "max_results": max_results,
                                                 "page_token": page_token, "run_view_type": "ACTIVE_ONLY"})
        return list(page.get("runs", [])), page.get("next_page_token") or None

    def _exp_ids(self, experiment: str | None) -> list[str]:
        if experiment is None:
            return self._all_experiment_ids()
        exp_id = self.experiment_id(experiment, create=False)
        return [] if exp_id is None else [exp_id]

    def list_runs(self, *, experiment: str | None = None, status: str | None = None,
                  commit: str | None = None, limit: int | None = 50, top_level: bool = False) -> list[RunRecord]:
        clauses = []
        if status:
            clauses.append(f"attributes.status = '{status.upper()}'")
        out: list[RunRecord] = []
        token = None
        while True:
            found, token = self._search(self._exp_ids(experiment), " and ".join(clauses) or None,
                                        ["attributes.start_time DESC"], 1000, token)
            for data in found:
                run = self._record(data)
                if top_level and run.parent_run_id:
                    continue
                if commit and not (run.source.get("commit") or "").startswith(commit):
                    continue
                out.append(run)
                if limit and len(out) >= limit:
                    return out
            if not token:
                return out

    def search_runs(self, filter_string: str | None = None, order_by: list[str] | tuple[str, ...] = (),
                    max_results: int = 1000, page_token: str | None = None, *,
                    experiment: str | None = None) -> tuple[list[RunRecord], str | None]:
        found, token = self._search(self._exp_ids(experiment), filter_string, order_by, max_results, page_token)
        return [self._record(d) for d in found], token

    def metric_history(self, run_id: str, key: str | None = None) -> list[MetricPoint]:
        keys = [key] if key else sorted(self.get_run(run_id).metrics)
        points: list[MetricPoint] = []
        for name in keys:
            token = None
            while True:
                page = self.call("GET", "metrics/get-history", {"run_id": run_id, "metric_key": name,
                                                                "max_results": 25000, "page_token": token})
                points += [MetricPoint(m["key"], float(m["value"]), int(m.get("step", 0)),
                                       int(m.get("timestamp", 0)) / 1000) for m in page.get("metrics", [])]
                token = page.get("next_page_token")
                if not token:
                    break
        return points

    def get_lock(self, run_id: str) -> tuple[str, str] | None:
        try:
            local = json.loads((self.run_dir(run_id) / LOCK_FILE).read_text())
            return local["format"], local["text"]
        except (FileNotFoundError, ValueError, KeyError):
            pass
        fmt = self.get_run(run_id).env.get("lock_format")
        if not fmt:
            return None
        text = self.download_artifact(run_id, f"{tags_of.PROJ_ARTIFACTS}/{tags_of.lock_artifact_name(fmt)}")
        return None if text is None else (fmt, text.decode())

    def get_request(self, run_id: str) -> str | None:
        text = self.download_artifact(run_id, f"{tags_of.PROJ_ARTIFACTS}/{REQUEST_FILE}")
        return None if text is None else text.decode()

    def list_children(self, run_id: str) -> list[RunRecord]:
        run = self.get_run(run_id)
        exp_id = self.experiment_id(run.experiment, create=False) if run.experiment else None
        found, _ = self._search([exp_id] if exp_id else self._all_experiment_ids(),
                                f"tags.`{tags_of.PARENT_RUN_ID}` = '{run_id}'", ["attributes.start_time ASC"],
                                1000, None)
        return [self._record(d) for d in found]

    def descendants(self, run_ids: list[str]) -> list[RunRecord]:
        """One search for every run that has a parent (a page at a time), walked from ``run_ids`` here: not one
        request per run of a listing."""
        below: dict[str, list[RunRecord]] = {}
        token = None
        exp_ids = self._all_experiment_ids()
        while True:
            found, token = self._search(exp_ids, f"tags.`{tags_of.PARENT_RUN_ID}` LIKE '%'",
                                        ["attributes.start_time ASC"], 1000, token)
            for data in found:
                child = self._record(data)
                below.setdefault(child.parent_run_id or "", []).append(child)
            if not token:
                break
        out, todo, seen = [], list(run_ids), set(run_ids)
        while todo:
            for child in below.get(todo.pop(0), []):
                if child.id not in seen:
                    seen.add(child.id)
                    out.append(child)
                    todo.append(child.id)
        return sorted(out, key=lambda r: r.start_time)

    def save_model(self, model: ModelRecord) -> None:
        """Kept beside the run folder (and uploaded with it as ``proj/models.json``): MLflow has no such record."""
        path = self.run_dir(model.run_id) / MODELS_FILE
        models = [m for m in _read_json(path, []) if m.get("path") != model.path] + [model.to_dict()]
        _write_json(path, models)
        self._upload_bytes(model.run_id, f"{tags_of.PROJ_ARTIFACTS}/{MODELS_FILE}",
                           json.dumps(models, default=str).encode())

    def list_models(self, *, experiment: str | None = None, run_id: str | None = None) -> list[ModelRecord]:
        runs = [self.get_run(run_id)] if run_id else self.list_runs(experiment=experiment, limit=200)
        out = []
        for run in runs:
            text = self.download_artifact(run.id, f"{tags_of.PROJ_ARTIFACTS}/{MODELS_FILE}") \
                if run.tags.get(tags_of.PROJ_RUN) or run.command else None
            for item in json.loads(text) if text else []:
                item.pop("ref", None)
                out.append(ModelRecord(**{**item, "experiment": run.experiment}))
        return sorted(out, key=lambda m: m.created, reverse=True)

    # ---- what has no remote meaning ----

    def set_owner(self, run_id: str, pid: int) -> None:
        """The runner pid: only the reaper on this machine would use it, and remote runs are not reaped."""

    def set_child(self, run_id: str, pid: int) -> None:
        """As set_owner: the child pid matters only to a local reaper."""

    def running_runs(self) -> list[tuple[str, str, int | None, str | None, int | None, str | None]]:
        return []  # no local reaping of remote runs: the server shows what the runner last recorded

    def record_child_run(self, child: ChildRun) -> RunRecord:
        raise NotImplementedError("the program's MLflow runs go to the tracking server directly; nothing to ingest")

    def set_mlflow_run_id(self, run_id: str, mlflow_run_id: str) -> None:
        """The proj run IS the MLflow run (MLFLOW_RUN_ID): nothing to link."""

    def transaction(self) -> AbstractContextManager[None]:
        """One lock per handle: the metrics tailer's read-offset / post / write-offset runs as one step."""
        return _Locked(self._lock)

    def reopen(self) -> "RestStore":
        return self  # the pool is thread-safe; the offset file is guarded by the lock above


class _Locked:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def _check_limits(new: NewRun) -> None:
    """What MLflow would refuse, refused before anything is recorded, one line naming the parameter."""
    for p in new.params:
        if len(p.value) > MAX_PARAM_VALUE:
            raise UsageError(f"parameter {p.key}: value of {len(p.value)} characters is longer than the "
                             f"{MAX_PARAM_VALUE} a tracking server accepts")
        if len(p.key) > MAX_KEY:
            raise UsageError(f"parameter {p.key[:40]}...: name longer than {MAX_KEY} characters")
    for key in new.tags:
        if len(key) > MAX_KEY:
            raise UsageError(f"tag {key[:40]}...: name longer than {MAX_KEY} characters")


def _reason(exc: Exception) -> str:
    """The root cause of a connection failure, one line (urllib3 wraps it in MaxRetryError/ProtocolError)."""
    inner = getattr(exc, "reason", None) or exc
    text = str(inner)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return one_line(re.sub(r"<[^>]*>: ", "", text), 200)


def _files(folder: Path) -> list[Path]:
    if folder.is_symlink() or not folder.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):  # os.walk does not follow symlinked folders
        base = Path(dirpath)
        out += [base / f for f in sorted(filenames) if (base / f).is_file() and not (base / f).is_symlink()]
        dirnames.sort()
    return out


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in a container: MLflow says "unknown" too
        return "unknown"


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, default=str))


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return default


__all__ = ["RestStore", "ServerError", "is_remote"]
