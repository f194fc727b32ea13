"""The artifact endpoints MLflow's clients and UI call (``mlflow-artifacts`` upload, download, list, delete;
ListArtifacts; get-artifact; logged-model artifacts), over the run store's folders."""
from __future__ import annotations

import io
import logging
import mimetypes
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, BinaryIO, Callable, Iterator
from urllib.parse import quote, urlparse

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from proj.errors import NotFound, TooLarge, UsageError
from proj.paths import shorten
from proj.registry import files
from proj.server import artifact_paths as ap
from proj.server.artifact_paths import ArtifactPlace, Entry, Place, ProxiedPath, Receiving
from proj.server.protocol.errors import error_response, failure_response
from proj.server.protocol.validate import drain
from proj.server.state import ServerState
from proj.tracking import mlflow_tags
from proj.tracking.records import RunRecord
from proj.tracking.store import RunStore

log = logging.getLogger("proj.server")

SCHEME = "mlflow-artifacts"
CHUNK = 1 << 20  # bytes per read or write: big enough to keep a 50 MB upload cheap, small enough to stream
# MLflow's mime_type_utils: these are sent as text/plain so the UI previews them (MLmodel, MLproject too)
_TEXT = {"txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon", "toml", "yaml",
         "yml", "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst", "ipynb", "MLmodel", "MLproject",
         "patch", "pip-freeze", "docker-image"}
_TOKEN = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
FileSource = tuple[Place, str] | bytes  # a file of the virtual proj/ folder: a place's file, or its text


@dataclass
class Owner:
    """Whose artifacts a request names: where they are (reads try each place in turn, writes go to the
    first), the URI clients know them by, and for a proj run the read-only ``proj/`` folder of its record."""

    label: str
    root_uri: str
    places: list[ArtifactPlace]
    virtual: Callable[[], dict[str, FileSource]] | None = None
    read_only: bool = False  # a registered version's files: content-addressed, never changed in place
    _files: dict[str, FileSource] | None = field(default=None, repr=False)

    def under_proj(self, rest: str) -> bool:
        return self.virtual is not None and (rest == mlflow_tags.PROJ_ARTIFACTS
                                             or rest.startswith(mlflow_tags.PROJ_ARTIFACTS + "/"))

    def proj_files(self) -> dict[str, FileSource]:
        if self._files is None:
            self._files = self.virtual() if self.virtual else {}
        return self._files

    def refuse_write(self, rest: str) -> None:
        if self.read_only:
            raise UsageError(f"the artifacts of {self.label} are read-only (a registered version's files are "
                             "kept by content); register a new version instead")
        if self.under_proj(rest):
            raise UsageError(f"artifact {shorten(repr(rest))} of {self.label} is part of proj's own record of "
                             "the run (its logs, lock and source patch) and is read-only")


# ---- finding the owner of a path ----

def _proxied_root(uri: str, label: str) -> str:
    """The path below ``mlflow-artifacts:`` of an artifact root; UsageError for a root elsewhere (an
    experiment created with its own artifact_location): this server never reads or writes a place a client
    chose, only its own folders."""
    parsed = urlparse(uri)
    if parsed.scheme != SCHEME:
        raise UsageError(f"the artifacts of {label} are at {shorten(repr(uri))}, which this server does not serve "
                         f"(only {SCHEME}:/ roots); read them from there")
    return parsed.path.strip("/")


def exact_run(store: RunStore, run_id: str) -> RunRecord:
    """The run with exactly this id (the store also resolves prefixes and ``last``, which a client never means)."""
    try:  # the store's own message names its folder, which is none of a client's business
        run = store.get_run(run_id) if run_id else None
    except NotFound:
        run = None
    if run is None or run.id != run_id:
        raise NotFound(f"Run with id={shorten(run_id)} not found")
    return run


def _is_proj_run(run: RunRecord) -> bool:
    return mlflow_tags.system_tags(run).get(mlflow_tags.PROJ_RUN) == "1"


def run_owner(state: ServerState, run_id: str) -> Owner:
    store = state.store()
    run = exact_run(store, run_id)
    label = f"run {run.id}"
    uri = run.artifact_uri or f"{SCHEME}:/{run.experiment_id}/{run.id}/artifacts"
    root = _proxied_root(uri, label)
    run_dir = store.run_dir(run.id)
    places: list[ArtifactPlace] = [Place(run_dir, "artifacts")]
    uploaded = state.destination_place(root)
    if uploaded is not None:
        places.insert(0, uploaded)
    owner = Owner(label, uri, places)
    if _is_proj_run(run) and not any(p.exists(mlflow_tags.PROJ_ARTIFACTS) for p in places):
        owner.virtual = lambda: _proj_files(store, run.id, run_dir)
    return owner


def _proj_files(store: RunStore, run_id: str, run_dir: Path) -> dict[str, FileSource]:
    """proj's own record of a run as files below ``proj/``: its logs, its lock, its source's uncommitted patch."""
    logs = Place(run_dir, "logs")
    files: dict[str, FileSource] = {
        f"logs/{e.name}": (logs, e.name) for e in ap.list_dir(logs, "") or [] if not e.is_dir}
    lock = store.get_lock(run_id)
    if lock:
        files[mlflow_tags.lock_artifact_name(lock[0])] = lock[1].encode("utf-8")
    source = Place(run_dir, "artifacts/source")
    if _size((source, "uncommitted.patch")) is not None:
        files["source.patch"] = (source, "uncommitted.patch")
    return files


def model_owner(state: ServerState, model_id: str) -> Owner:
    model = state.store().get_logged_model(model_id)
    if model.model_id != model_id:
        raise NotFound(f"Logged model with ID '{shorten(model_id)}' not found.")
    label = f"logged model {model.model_id}"
    _proxied_root(model.artifact_location, label)
    return Owner(label, model.artifact_location, [state.model_place(model.model_id)])


def registry_owner(state: ServerState, digest: str) -> Owner:
    """A registered version's own copy of its files (proj.registry.files), by their digest: read-only."""
    root = state.store_root
    tree = files.tree(root, digest)
    if not tree.is_dir():
        raise NotFound(f"no registered model version has the files {digest[:12]}")
    return Owner(f"registered files {digest[:12]}", f"{SCHEME}:/{ap.REGISTRY_ROOT}/{digest}",
                 [Place(root, tree.relative_to(root).as_posix())], read_only=True)


def proxied_owner(state: ServerState, target: ProxiedPath) -> Owner:
    """The owner of an ``mlflow-artifacts`` path, which must be exactly that owner's root (experiment included)."""
    if target.kind == "registry":
        return registry_owner(state, target.owner_id)
    owner = run_owner(state, target.owner_id) if target.kind == "run" else model_owner(state, target.owner_id)
    expected = _proxied_root(owner.root_uri, owner.label)
    prefix = (f"{target.experiment_id}/{target.owner_id}/artifacts" if target.kind == "run"
              else f"{target.experiment_id}/models/{target.owner_id}/artifacts")
    if prefix != expected:
        raise NotFound(f"{owner.label} keeps its artifacts at '{expected}', not at '{shorten(prefix)}'")
    return owner


# ---- reading, listing, writing and deleting through an owner ----

def open_artifact(owner: Owner, rest: str, shown: str | None = None) -> tuple[BinaryIO, int]:
    """``rest`` opened (its size too); NotFound names it as ``shown`` (MLflow names the proxied path)."""
    if owner.under_proj(rest):
        source = owner.proj_files().get(rest[len(mlflow_tags.PROJ_ARTIFACTS) + 1:])
        if isinstance(source, bytes):
            return io.BytesIO(source), len(source)
        found = ap.open_file(*source) if source else None
    else:
        found = next((f for f in (p.open_file(rest) for p in owner.places) if f is not None), None)
    if found is None:
        raise NotFound(f"No such artifact: '{shorten(shown or rest)}'")
    return found


def list_artifacts(owner: Owner, rest: str) -> list[Entry]:
    """The entries of folder ``rest``: every place's, the first place's winning a name; at the root of a proj
    run also its ``proj/`` folder, whose content is the run's record."""
    if owner.under_proj(rest):
        return _virtual_entries(owner, rest[len(mlflow_tags.PROJ_ARTIFACTS) + 1:])
    seen: dict[str, Entry] = {}
    for place in owner.places:
        for entry in place.list_dir(rest) or []:
            seen.setdefault(entry.name, entry)
    if not rest and owner.virtual is not None:
        seen.setdefault(mlflow_tags.PROJ_ARTIFACTS, Entry(mlflow_tags.PROJ_ARTIFACTS, True, None))
    return sorted(seen.values(), key=lambda e: e.name)


def _virtual_entries(owner: Owner, folder: str) -> list[Entry]:
    entries: dict[str, Entry] = {}
    prefix = folder + "/" if folder else ""
    for name, source in owner.proj_files().items():
        if not name.startswith(prefix):
            continue
        head, _, tail = name[len(prefix):].partition("/")
        if tail:
            entries.setdefault(head, Entry(head, True, None))
        else:
            entries[head] = Entry(head, False, len(source) if isinstance(source, bytes) else _size(source))
    return sorted(entries.values(), key=lambda e: e.name)


def _size(source: tuple[Place, str]) -> int | None:
    found = ap.open_file(*source)
    if found is None:
        return None
    found[0].close()
    return found[1]


def delete_artifacts(owner: Owner, rest: str) -> None:
    owner.refuse_write(rest)
    for place in owner.places:
        place.delete(rest)


# ---- HTTP ----

Handler = Callable[[Request], Awaitable[Response]]


def _answers_errors(handler: Handler) -> Handler:
    """MLflow's error JSON for a refused request; an internal failure logged here, never sent with its trace."""

    async def serve(request: Request) -> Response:
        try:
            return await handler(request)
        except OSError as exc:  # a full disk, a permission: the reason, never the server's paths
            log.exception("artifact storage failed in %s %s", request.method, request.url.path)
            return error_response("INTERNAL_ERROR", f"artifact storage failed: {exc.strerror or type(exc).__name__}")
        except Exception as exc:  # noqa: BLE001 - MLflow's error JSON; an internal failure logged, never sent
            return failure_response(exc, request.method, request.url.path)

    return serve


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.tracking
    return state


def _json(payload: dict[str, Any]) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


def _files(entries: list[Entry], folder: str | None) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        row: dict[str, Any] = {"path": ap.join(folder or "", e.name), "is_dir": e.is_dir}
        if e.size is not None:
            row["file_size"] = e.size
        rows.append(row)
    return rows


def _listing(root_uri: str | None, entries: list[Entry], folder: str | None) -> Response:
    payload: dict[str, Any] = {"root_uri": root_uri} if root_uri else {}
    if entries:
        payload["files"] = _files(entries, folder)
    return _json(payload)


def mime_type(name: str) -> str:
    """The Content-Type MLflow's server gives an artifact of this name (text it previews as text/plain)."""
    base = name.rsplit("/", 1)[-1]
    ext = base.rsplit(".", 1)[-1] if "." in base else base
    if ext in _TEXT:
        return "text/plain"
    return mimetypes.guess_type(base)[0] or "application/octet-stream"


def content_disposition(name: str) -> str:
    """An RFC 6266 attachment header (always an attachment: a browser must not render an artifact as a page)."""
    base = name.rsplit("/", 1)[-1] or "download"
    if base.isascii():
        if set(base) <= _TOKEN:
            return f"attachment; filename={base}"
        escaped = base.replace("\\", "\\\\").replace('"', '\\"')
        return f'attachment; filename="{escaped}"'
    fallback = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii") or "download"
    fallback = fallback.replace("\\", "\\\\").replace('"', '\\"')
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(base, safe='!#$&+-.^_`|~')}"


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    with fh:
        while data := fh.read(CHUNK):
            yield data


def _send(opened: tuple[BinaryIO, int], name: str) -> Response:
    fh, size = opened
    kind = mime_type(name)
    headers = {"content-length": str(size), "content-type": kind, "content-disposition": content_disposition(name),
               "x-content-type-options": "nosniff", "cache-control": "no-cache"}
    return StreamingResponse(_chunks(fh), headers=headers)


def _query(request: Request, key: str, *, required: bool = False, alias: str | None = None) -> str | None:
    value = request.query_params.get(key) or (request.query_params.get(alias) if alias else None)
    if required and not value:
        raise UsageError(f"Missing value for required parameter '{key}'. See the API docs for more information "
                         "about request parameters.")
    return value


def _proxied(request: Request) -> tuple[ServerState, ProxiedPath, str]:
    path = ap.clean(request.path_params.get("path", ""))
    return _state(request), ap.split_proxied(path), path


async def download_proxied(request: Request) -> Response:
    state, target, path = _proxied(request)

    def find() -> tuple[BinaryIO, int]:
        return open_artifact(proxied_owner(state, target), target.rest, path)

    return _send(await run_in_threadpool(find), path)


async def list_proxied(request: Request) -> Response:
    state = _state(request)
    target = ap.split_proxied(ap.clean(_query(request, "path") or ""))

    def find() -> list[Entry]:
        return list_artifacts(proxied_owner(state, target), target.rest)

    return _listing(None, await run_in_threadpool(find), None)


async def delete_proxied(request: Request) -> Response:
    state, target, _ = _proxied(request)
    await run_in_threadpool(lambda: delete_artifacts(proxied_owner(state, target), target.rest))
    return _json({})


async def upload_proxied(request: Request) -> Response:
    """The body streamed to a temp file (beside the target, or spooled locally for a bucket), made visible under
    its name only once all of it arrived (a rename, or one put of the whole object)."""
    state, target, _ = _proxied(request)

    def begin() -> Receiving:
        owner = proxied_owner(state, target)
        owner.refuse_write(target.rest)
        return owner.places[0].upload(target.rest)

    upload = await run_in_threadpool(begin)
    try:
        await _receive(request, upload, state.max_artifact_bytes)
        await run_in_threadpool(upload.commit)
    except ClientDisconnect:
        upload.abort()
        return error_response("BAD_REQUEST", "the upload was cut off before its end; nothing was stored")
    except BaseException:
        upload.abort()
        raise
    return _json({})


async def _receive(request: Request, upload: Receiving, limit: int) -> None:
    """The body into ``upload``; TooLarge (the caller aborts it: nothing stored) once it says or proves to be over
    ``limit`` bytes (0: no limit), so a runaway client cannot fill the server's disk."""
    declared = request.headers.get("content-length")
    chunks = request.stream()  # one iterator: a second stream() after the last chunk would be "consumed"
    if limit and declared is not None and declared.isdigit() and int(declared) > limit:
        await drain(chunks, declared)
        raise TooLarge(f"an artifact of {int(declared):,} bytes is over this server's limit of {limit:,} bytes "
                       "(proj server --max-artifact-size)")
    pending = bytearray()
    async for chunk in chunks:
        pending += chunk
        if limit and upload.size + len(pending) > limit:
            await drain(chunks)
            raise TooLarge(f"the artifact is over this server's limit of {limit:,} bytes (proj server "
                           "--max-artifact-size)")
        if len(pending) >= CHUNK:
            await run_in_threadpool(upload.write, bytes(pending))
            pending.clear()
    if pending:
        await run_in_threadpool(upload.write, bytes(pending))
    if declared is not None and declared.isdigit() and int(declared) != upload.size:
        raise ClientDisconnect()  # fewer bytes than announced: the sender went away mid-body


async def list_run_artifacts(request: Request) -> Response:
    """ListArtifacts: a run's folder, paths relative to the run's artifact root."""
    state = _state(request)
    run_id = _query(request, "run_id", required=True, alias="run_uuid") or ""
    raw = _query(request, "path")
    folder = ap.clean(raw) if raw else ""

    def find() -> tuple[str, list[Entry]]:
        owner = run_owner(state, run_id)
        return owner.root_uri, list_artifacts(owner, folder)

    root_uri, entries = await run_in_threadpool(find)
    return _listing(root_uri, entries, folder)


async def get_artifact(request: Request) -> Response:
    """The UI's download of one of a run's artifacts (``/get-artifact?run_id=&path=``)."""
    state = _state(request)
    run_id = _query(request, "run_id", required=True, alias="run_uuid") or ""
    path = ap.clean(_query(request, "path", required=True) or "")

    def find() -> tuple[BinaryIO, int]:
        owner = run_owner(state, run_id)
        return open_artifact(owner, path, ap.join(_proxied_root(owner.root_uri, owner.label), path))

    return _send(await run_in_threadpool(find), path)


async def list_model_artifacts(request: Request) -> Response:
    state = _state(request)
    model_id = request.path_params["model_id"]
    raw = _query(request, "artifact_directory_path")
    folder = ap.clean(raw) if raw else ""

    def find() -> tuple[str, list[Entry]]:
        owner = model_owner(state, model_id)
        return owner.root_uri, list_artifacts(owner, folder)

    root_uri, entries = await run_in_threadpool(find)
    return _listing(root_uri, entries, folder)


async def get_model_artifact(request: Request) -> Response:
    state = _state(request)
    model_id = request.path_params["model_id"]
    raw = request.query_params.get("artifact_file_path")
    if not raw:
        return error_response("BAD_REQUEST", 'Request must include the "artifact_file_path" query parameter.')
    path = ap.clean(raw)

    def find() -> tuple[BinaryIO, int]:
        owner = model_owner(state, model_id)
        return open_artifact(owner, path, ap.join(_proxied_root(owner.root_uri, owner.label), path))

    return _send(await run_in_threadpool(find), path)


def _both(path: str) -> list[str]:
    return [f"/api/2.0{path}", f"/ajax-api/2.0{path}"]


def _routes() -> list[Route]:
    table: list[Route] = []
    proxied = "/mlflow-artifacts/artifacts"
    for prefix in _both(proxied):
        table += [Route(prefix, _answers_errors(list_proxied), methods=["GET"]),
                  Route(prefix + "/{path:path}", _answers_errors(download_proxied), methods=["GET"]),
                  Route(prefix + "/{path:path}", _answers_errors(upload_proxied), methods=["PUT"]),
                  Route(prefix + "/{path:path}", _answers_errors(delete_proxied), methods=["DELETE"])]
    table += [Route(p, _answers_errors(list_run_artifacts), methods=["GET"]) for p in _both("/mlflow/artifacts/list")]
    table += [Route(p, _answers_errors(get_artifact), methods=["GET"])
              for p in ("/get-artifact", "/ajax-api/2.0/mlflow/get-artifact")]
    table += [Route(p, _answers_errors(list_model_artifacts), methods=["GET"])
              for p in _both("/mlflow/logged-models/{model_id}/artifacts/directories")]
    table.append(Route("/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
                       _answers_errors(get_model_artifact), methods=["GET"]))
    return table


routes: list[Route] = _routes()
