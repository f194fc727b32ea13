"""What a model version is registered from: a run's model folder (``runs:/RUN/path``, proj's ``RUN[/path]``, the
client's ``mlflow-artifacts:/`` form), an MLflow 3 logged model (``models:/m-<id>``), another registered version,
or a local MLflow model directory (validated against schemas/mlmodel.schema.json) -- and the files to copy in."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Union
from urllib.parse import unquote, urlparse

from proj.errors import ModelNotFound, NotFound, UnsafeModel, UnsafePath, UsageError
from proj.models.mlmodel import MLMODEL, files_of, read_mlmodel
from proj.models.query import model_dir, resolve_model
from proj.paths import contained, linked_part, shorten
from proj.registry.files import SourceFile
from proj.registry.uris import ModelUri, is_model_uri, parse, resolve_version
from proj.tracking.records import ModelRecord, RunRecord
from proj.tracking.store import RunStore


@dataclass
class Source:
    """A resolved source: the text the version records, its run and logged model, and its files (or, for
    another registered version, that version's stored file set)."""

    source: str
    run_id: str | None = None
    model_id: str | None = None
    files: list[SourceFile] = field(default_factory=list)
    files_sha256: str | None = None  # set when the files are in the registry already
    # the temporary folder the files were fetched into from an object store (a TemporaryDirectory): it lives as
    # long as this Source does, so the files are there while the registry copies them, and removed after
    keep: object = field(default=None, repr=False)


class RemoteArtifacts(Protocol):
    """A server's --artifacts-destination in an object store (server.object_store.Bucket)."""

    def fetch(self, rel: str, into: Path) -> bool:
        """Copy the folder ``rel`` into the empty local folder ``into`` when it holds an MLmodel; else False."""


ArtifactsRoot = Union[Path, RemoteArtifacts]


def resolve_source(store: RunStore, source: str, *, artifacts_root: ArtifactsRoot | None = None) -> Source:
    """Resolve ``source``; ``artifacts_root`` is where a server keeps uploaded artifacts (default the store)."""
    root = artifacts_root or store.root
    if source.startswith("file:"):
        return local_dir(Path(unquote(urlparse(source).path)), source)
    if not is_model_uri(source):
        path = Path(source).expanduser()
        if path.exists() or not _run_ref(source):
            return local_dir(path, source)
        return _from_model_record(store, resolve_model(store, source))  # proj's RUN[/path]
    uri = parse(source)
    if uri.registered:
        version = resolve_version(store, uri)
        if not version.files_sha256:
            raise UsageError(f"models:/{version.name}/{version.version} has no stored copy of its files to register from")
        return Source(f"models:/{version.name}/{version.version}", version.run_id, version.model_id,
                      files_sha256=version.files_sha256)
    if uri.kind == "logged":
        return logged_model(store, uri.model_id or "", root, source)
    return run_folder(store, uri, root)


def _run_ref(text: str) -> bool:
    """Whether ``text`` reads as proj's ``RUN[/path]`` (a hexadecimal id or prefix, or ``last``)."""
    head = text.split("/", 1)[0].lower()
    return head in ("last", "latest") or (bool(head) and all(c in "0123456789abcdef" for c in head))


def local_dir(path: Path, source: str) -> Source:
    """A local MLflow model directory: its MLmodel must pass the schema; no link may lead out of it."""
    folder = path.resolve()
    if not folder.is_dir():
        raise ModelNotFound(f"model source {shorten(source)!r} is not a directory, a run's model (RUN[/PATH], "
                            "runs:/RUN/path) or a model URI (models:/NAME/VERSION, models:/m-<id>)")
    data, reason = read_mlmodel(folder / MLMODEL)
    if data is None:
        raise UsageError(f"model source {folder} is not an MLflow model directory: {reason}")
    return Source(str(folder), files=_walk(folder, folder, source))


def _walk(folder: Path, allowed: Path, what: str) -> list[SourceFile]:
    try:
        found = files_of(folder, allowed)
    except UnsafeModel as exc:
        raise UnsafePath(f"model source {shorten(what)}: {exc}; nothing was registered") from None
    return [SourceFile(p.relative_to(folder).as_posix(), p.resolve()) for p in found]


def _from_model_record(store: RunStore, model: ModelRecord) -> Source:
    """A model proj recorded for a run: its recorded files, each checked against the recorded sha256."""
    if not model.valid:
        raise UsageError(f"model {model.run_id[:12]}/{model.path} is invalid ({model.reason}); it cannot be registered")
    folder = model_dir(store, model)
    run_dir = store.run_dir(model.run_id)
    files = []
    for entry in model.files:
        try:
            read = contained(run_dir, (folder / entry["path"]).relative_to(run_dir.resolve()).as_posix(),
                             what=f"model {model.run_id[:12]}/{model.path}: file")
        except ValueError:
            raise UnsafePath(f"model {model.run_id[:12]}/{model.path}: file {entry['path']!r} is not inside the "
                             "run folder; refusing to register it") from None
        files.append(SourceFile(entry["path"], read, entry["sha256"]))
    return Source(f"runs:/{model.run_id}/{model.path}", run_id=model.run_id, files=files)


def run_folder(store: RunStore, uri: ModelUri, artifacts_root: ArtifactsRoot) -> Source:
    """``runs:/RUN/path``: the model proj recorded there, else the folder's files (a client uploaded them),
    else, as MLflow's client, the run's logged model of that name."""
    run = store.get_run(uri.run_id or "")
    models = store.list_models(run_id=run.id)
    if models and not uri.path:
        return _from_model_record(store, resolve_model(store, run.id))
    recorded = [m for m in models if m.path == uri.path]
    if recorded:
        return _from_model_record(store, recorded[0])
    source = uri.text if uri.kind == "run" and uri.text.startswith("mlflow-artifacts:") else f"runs:/{run.id}/{uri.path}"
    if not isinstance(artifacts_root, Path) and run.experiment_id:  # uploaded to the server's bucket
        fetched = _fetch(artifacts_root, f"{run.experiment_id}/{run.id}/artifacts/{uri.path}".rstrip("/"), source)
        if fetched is not None:
            fetched.run_id = run.id
            return fetched
    for anchor, rel in _places(store, run, artifacts_root, uri.path):
        if linked_part(anchor, rel) is not None:
            continue  # a folder the run swapped for a link: never followed
        folder = anchor / rel
        if (folder / MLMODEL).is_file():
            return Source(source, run_id=run.id, files=_walk(folder, anchor, source))
    logged = _logged_of_run(store, run, uri.path)
    if logged is not None:
        found = logged_model(store, logged, artifacts_root, f"models:/{logged}")
        found.run_id = run.id
        return found
    raise ModelNotFound(f"Unable to find a logged_model with artifact_path {uri.path} under run {run.id} "
                        f"(and no MLmodel in its artifacts at {uri.path or '.'})")


def _fetch(remote: RemoteArtifacts, rel: str, source: str) -> Source | None:
    """The model folder ``rel`` of an object store, fetched into a temporary folder (the Source keeps it)."""
    keep = tempfile.TemporaryDirectory(prefix="proj-register-")
    into = Path(keep.name)
    if not remote.fetch(rel, into):
        keep.cleanup()
        return None
    return Source(source, files=_walk(into, into, source), keep=keep)


def _places(store: RunStore, run: RunRecord, artifacts_root: ArtifactsRoot, path: str) -> list[tuple[Path, str]]:
    """(trusted anchor, relative folder) where a run's artifact folder may be: the server's upload place
    first (as the server reads), then the run folder."""
    rel = f"artifacts/{path}".rstrip("/")
    places = [(store.run_dir(run.id), rel)]
    if isinstance(artifacts_root, Path) and artifacts_root != store.root and run.experiment_id:
        places.insert(0, (artifacts_root, f"{run.experiment_id}/{run.id}/{rel}"))
    return places


def _logged_of_run(store: RunStore, run: RunRecord, name: str) -> str | None:
    """The id of the run's logged model named ``name`` (the newest of several), or None."""
    try:
        found, _ = store.search_logged_models([run.experiment_id], filter_string=f"source_run_id = '{run.id}'",
                                              max_results=100)
    except (NotImplementedError, UsageError, NotFound):
        return None
    named = [m for m in found if m.name == name]
    return max(named, key=lambda m: m.creation_time).model_id if named else None


def logged_model(store: RunStore, model_id: str, artifacts_root: ArtifactsRoot, source: str) -> Source:
    """An MLflow 3 logged model: its files under the server's ``logged_models/<id>/artifacts``."""
    model = store.get_logged_model(model_id)
    rel = f"logged_models/{model.model_id}/artifacts"
    if not isinstance(artifacts_root, Path):
        fetched = _fetch(artifacts_root, rel, source)
        if fetched is None:
            raise ModelNotFound(f"logged model {model.model_id} has no MLmodel in its artifacts (in the server's "
                                "bucket); finish logging it before registering it")
        fetched.run_id, fetched.model_id, fetched.source = model.source_run_id, model.model_id, f"models:/{model.model_id}"
        return fetched
    folder = artifacts_root / rel
    if linked_part(artifacts_root, rel) is not None or not (folder / MLMODEL).is_file():
        raise ModelNotFound(f"logged model {model.model_id} has no MLmodel in its artifacts ({folder}); "
                            "finish logging it before registering it")
    return Source(f"models:/{model.model_id}", run_id=model.source_run_id, model_id=model.model_id,
                  files=_walk(folder, folder, source))
