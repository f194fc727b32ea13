"""`proj runs export` and `proj runs import`: pick the source (a proj store or server, an MLflow SQL or file store,
an archive), read its runs as bundles, and write them run by run into the destination, parents first."""
from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urlsplit

from proj import settings
from proj.errors import ProjError, UsageError
from proj.redact import mask_url
from proj.report import Reporter
from proj.tracking.dbfile import DB_NAME
from proj.tracking.open import is_postgres, open_store, server_uri
from proj.tracking.rest import RestStore
from proj.tracking.sqlite import SqliteStore
from proj.tracking.store import RunStore
from proj.transfer.archive import Archive, write_archive
from proj.transfer.bundle import IMPORTED_FROM, INCOMPLETE, Bundle, TransferError, parents_first
from proj.transfer.dest_local import LocalDestination
from proj.transfer.dest_rest import RestDestination
from proj.transfer.dest_rest_registry import RestRegistry
from proj.transfer.mlflow_source import file_bundles, is_mlflow_db, sql_bundles
from proj.transfer.proj_source import select_runs, store_bundles
from proj.transfer.registry import ModelBundle, existing_names, imported_models, store_models, write_model


@dataclass
class Selection:
    refs: tuple[str, ...] = ()
    experiment: str | None = None
    filter_string: str | None = None
    everything: bool = False


@dataclass
class Summary:
    action: str  # "export" or "import"
    destination: str
    runs: int = 0
    skipped: int = 0
    metric_points: int = 0
    artifact_bytes: int = 0
    run_ids: dict[str, str] = field(default_factory=dict)  # source id -> id in the destination
    removed_leftovers: int = 0
    models: list[str] = field(default_factory=list)  # registered models moved (--registry)
    models_skipped: list[str] = field(default_factory=list)
    model_versions: int = 0

    def add(self, bundle: Bundle, new_id: str) -> None:
        self.runs += 1
        self.metric_points += bundle.metric_points()
        self.artifact_bytes += bundle.file_bytes()
        self.run_ids[bundle.source_id] = new_id

    def line(self) -> str:
        verb = "exported" if self.action == "export" else "imported"
        skipped = f" ({self.skipped} already there, skipped)" if self.skipped else ""
        models = ""
        if self.models or self.models_skipped:
            models = f", {len(self.models)} registered model(s) with {self.model_versions} version(s)" + \
                (f" ({len(self.models_skipped)} skipped)" if self.models_skipped else "")
        return (f"{verb} {self.runs} run(s){skipped}, {self.metric_points} metric points, {self.artifact_bytes} "
                f"artifact bytes{models} {'to' if self.action == 'export' else 'into'} {self.destination}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_refusals(*uris: str | None) -> AbstractContextManager[None]:
    """Around an export or import: a PostgreSQL store among ``uris`` (None: the default tracking URI) whose
    connection fails mid-way is one line (postgres.refusals); psycopg is imported only for such a store."""
    found = [u for u in (uri or settings.tracking_uri() for uri in uris) if is_postgres(u)]
    if not found:
        return nullcontext()
    from proj.tracking.postgres import refusals

    return refusals(found[0])


def store_label(store: RunStore) -> str:
    """What names a store in an origin tag: a server's URL, a PostgreSQL store's database (password masked; not its
    files root, which another database may share), a store directory."""
    if isinstance(store, RestStore):
        return store.shown
    uri = getattr(store, "uri", None)
    return mask_url(uri) if isinstance(uri, str) else str(store.root)


def export_runs(tracking_uri: str | None, selection: Selection, out: Path, reporter: Reporter,
                registry: bool = False) -> Summary:
    """Write the selected runs of a proj store (local or a server) into the archive ``out``; ``registry``: every
    registered model of the store too (a proj store on this machine or PostgreSQL)."""
    if out.is_dir():
        raise UsageError(f"-o {out} is a directory: name the archive file to write (e.g. runs.tar)")
    if not out.parent.is_dir():
        raise UsageError(f"-o {out}: folder {out.parent} does not exist")
    store = open_store(tracking_uri, create=False)
    runs = select_runs(store, selection.refs, selection.experiment, selection.filter_string, selection.everything)
    summary = Summary("export", str(out))
    label = store_label(store)

    def progress(bundle: Bundle) -> None:
        summary.add(bundle, bundle.source_id)
        reporter.info(f"exported run {bundle.source_id} ({summary.runs}/{len(runs)}: {bundle.metric_points()} "
                      f"metric points, {len(bundle.files)} files)")

    models = _models_of(store, label, tracking_uri or "the store") if registry else None

    def registry_records() -> list[ModelBundle]:
        found = models() if models is not None else []
        summary.models = [m.name for m in found]
        summary.model_versions = sum(len(m.record.get("versions", [])) for m in found)
        return found

    write_archive(out, store_bundles(store, runs, label, reporter), label, progress,
                  registry_records if registry else None)
    return summary


def _models_of(store: RunStore, label: str, named: str) -> Callable[[], list[ModelBundle]]:
    """What reads the registered models of ``store`` (refused, before anything is written, where it cannot)."""
    if not isinstance(store, SqliteStore):
        raise TransferError(f"--registry reads the registry of a proj store (a directory or postgresql://...), not of "
                            f"{named}: export from the server's own store")
    return lambda: store_models(store, label)


Source = tuple[str, Iterable[Bundle], Callable[[], None], Callable[[], list[ModelBundle]]]


def read_source(source: str, selection: Selection, reporter: Reporter, registry: bool = False) -> Source:
    """(label, bundles, close, models) of an archive file or a store URI given to `proj runs import`; ``models``
    reads its registered models (``registry``: refused here, before anything is written, where there are none)."""
    path = _local_path(source)
    if path is not None and path.is_file() and not path.name.endswith(".db"):
        archive = Archive(path)
        if registry and "registry" not in archive.manifest:
            archive.close()
            raise TransferError(f"archive {path} holds no registered models: it was exported without --registry")
        return archive.source, _selected(archive.bundles(), selection), archive.close, archive.models
    if server_uri(source) is not None or is_postgres(source):
        return _proj_store(open_store(source, create=False), selection, reporter, registry, source)
    if path is None:
        raise TransferError(f"source {source!r} is not an archive file, a store directory, sqlite:///FILE, "
                            f"file:DIR, postgresql://... or http(s)://HOST")
    db = path if path.suffix == ".db" else path / DB_NAME
    if path.suffix == ".db" and not path.is_file():
        raise TransferError(f"source {source!r}: {path} does not exist")
    if db.is_file() and is_mlflow_db(db):
        _no_filter(selection, source)
        _no_registry(registry, source)
        label = str(db.resolve())
        return label, sql_bundles(db, label, _matcher(selection), reporter), _nothing, list
    if db.is_file():
        return _proj_store(open_store(str(db.parent), create=False), selection, reporter, registry, source)
    if path.is_dir():
        _no_filter(selection, source)
        _no_registry(registry, source)
        label = str(path.resolve())
        return label, file_bundles(path, label, _matcher(selection), reporter), _nothing, list
    raise TransferError(f"source {source!r}: {path} does not exist (an archive, a proj store, an MLflow "
                        f"mlflow.db or mlruns/ directory)")


def _proj_store(store: RunStore, selection: Selection, reporter: Reporter, registry: bool, named: str) -> Source:
    label = store_label(store)
    models = _models_of(store, label, named) if registry else list
    everything = selection.everything or not (selection.refs or selection.experiment or selection.filter_string)
    runs = select_runs(store, selection.refs, selection.experiment, selection.filter_string, everything)
    return label, store_bundles(store, runs, label, reporter), store.close, models


def _no_registry(registry: bool, source: str) -> None:
    if registry:
        raise TransferError(f"--registry moves proj's registry: the MLflow store {source} is read without its "
                            "registered models (import them from a tracking server over it: not supported yet)")


def _local_path(source: str) -> Path | None:
    """The file or folder a source names on this machine (a path, file:..., sqlite:///FILE), else None."""
    if source.startswith("sqlite:"):  # sqlite:///rel.db or sqlite:////abs.db, as SQLAlchemy reads the slashes
        if not source.startswith("sqlite:///"):
            raise TransferError(f"source {source!r}: a sqlite URI is sqlite:///relative/file.db or "
                                f"sqlite:////absolute/file.db")
        return Path(unquote(source[len("sqlite:///"):].split("?", 1)[0]))
    if source.startswith("file:"):
        parts = urlsplit(source)
        return Path(unquote(parts.path)) if parts.netloc in ("", "localhost") else None
    if "://" in source:
        return None
    return Path(source)


def _selected(bundles: Iterable[Bundle], selection: Selection) -> Iterable[Bundle]:
    match = _matcher(selection)
    wanted_ids: set[str] = set()
    for bundle in bundles:
        if match(bundle.record) or bundle.parent in wanted_ids:  # children follow their parent in an archive
            wanted_ids.add(bundle.source_id)
            yield bundle


def _matcher(selection: Selection) -> Callable[[dict[str, Any]], bool]:
    def match(record: dict[str, Any]) -> bool:
        if selection.refs and not any(str(record["id"]).startswith(ref) for ref in selection.refs):
            return False
        return not selection.experiment or selection.experiment == record.get("experiment")
    return match


def _no_filter(selection: Selection, source: str) -> None:
    if selection.filter_string:
        raise UsageError(f"--filter works on proj stores and tracking servers; for the MLflow store {source} "
                         f"select with RUN ids or --experiment")


def _nothing() -> None:
    return None


def open_destination(uri: str | None) -> LocalDestination | RestDestination:
    store = open_store(uri, create=True)
    if isinstance(store, RestStore):
        return RestDestination(store)
    if not isinstance(store, SqliteStore):  # the PostgreSQL store is SQLite's parts over its own connection
        raise TransferError(f"importing straight into a {type(store).__name__} is not supported: import into the "
                            f"embedded store (a directory), a postgresql:// store or a tracking server (http://...)")
    return LocalDestination(store)


def import_runs(bundles: Iterable[Bundle], dest_uri: str | None, reporter: Reporter,
                models: list[ModelBundle] | None = None, skip_existing_models: bool = False) -> Summary:
    """Write every bundle into the store ``dest_uri`` names, one run at a time, each whole or not at all; a run
    imported before (its origin tag) is skipped. The first failure stops the import with one line. ``models``
    (--registry) follow the runs, each whole or not at all; a name taken at the destination by another model is
    refused before anything is written, unless ``skip_existing_models``."""
    dest = open_destination(dest_uri)
    try:
        summary = Summary("import", dest.label)
        to_write = _models_to_write(dest, models or [], skip_existing_models, summary, reporter)
        done = dest.imported()
        if isinstance(dest, LocalDestination) and dest.removed_leftovers:
            summary.removed_leftovers = dest.removed_leftovers
            reporter.note(f"removed {dest.removed_leftovers} folder(s) an interrupted import left under "
                          f"{dest.root / 'runs'}")
        if isinstance(dest, RestDestination) and dest.leftovers:
            summary.removed_leftovers = dest.clean_leftovers()
            reporter.note(f"deleted {summary.removed_leftovers} run(s) an interrupted import left incomplete on "
                          f"{dest.label}; importing them again")
        ordered = parents_first(list(bundles))
        for number, bundle in enumerate(ordered, 1):
            _import_one(dest, bundle, done, summary, reporter, f"{number}/{len(ordered)}")
        run_here = _run_here(dest, done, summary)
        if isinstance(dest, RestDestination) and to_write:
            by_id = {b.source_id: b for b in ordered}
            for model in to_write:  # every model checked before the first is created
                RestRegistry(dest.store, dest.label).check(model, run_here, by_id)
        for model in to_write:
            _import_model(dest, model, run_here, summary, reporter)
        return summary
    finally:
        dest.close()


def _models_to_write(dest: LocalDestination | RestDestination, models: list[ModelBundle], skip_existing: bool,
                     summary: Summary, reporter: Reporter) -> list[ModelBundle]:
    """The models to import; those imported before are skipped; a name another model holds there is refused (or,
    with ``skip_existing``, skipped): all decided before the first run is written."""
    if not models:
        return []
    before, taken = _models_there(dest, models, reporter)
    out = []
    for model in models:
        if model.origin in before:
            summary.models_skipped.append(model.name)
            reporter.info(f"skipped registered model {model.name!r}: already imported as {before[model.origin]!r}")
        elif model.name in taken:
            if not skip_existing:
                raise TransferError(f"registered model {model.name!r} already exists in {dest.label} (not imported "
                                    "from this source): rename or delete it there, or import with "
                                    "--skip-existing-models to keep it and skip this one; nothing was imported")
            summary.models_skipped.append(model.name)
            reporter.warn(f"registered model {model.name!r} already exists in {dest.label}: kept, not imported "
                          "(--skip-existing-models)")
        else:
            out.append(model)
    return out


def _models_there(dest: LocalDestination | RestDestination, models: list[ModelBundle],
                  reporter: Reporter) -> tuple[dict[str, str], set[str]]:
    """(origin -> name of the models imported before, names other models hold) at the destination. On a server, a
    model an interrupted import left marked incomplete is deleted first (it is imported again)."""
    if isinstance(dest, LocalDestination):
        return imported_models(dest.store), existing_names(dest.store, [m.name for m in models])
    registry = RestRegistry(dest.store, dest.label)
    before: dict[str, str] = {}
    taken: set[str] = set()
    for model in models:
        exists, tags = registry.state(model.name)
        if exists and INCOMPLETE in tags and tags.get(IMPORTED_FROM) == model.origin:
            registry.delete(model.name)
            reporter.note(f"deleted registered model {model.name!r} an interrupted import left incomplete on "
                          f"{dest.label}; importing it again")
        elif exists and tags.get(IMPORTED_FROM) == model.origin:
            before[model.origin] = model.name
        elif exists:
            taken.add(model.name)
    return before, taken


def _run_here(dest: LocalDestination | RestDestination, done: dict[str, str],
              summary: Summary) -> Callable[[str | None, str | None], str | None]:
    """(a run's id in the source, its origin) -> its id at the destination, or None when it is not there."""
    def run_here(run_id: str | None, origin: str | None) -> str | None:
        if not run_id:
            return None
        return summary.run_ids.get(run_id) or done.get(origin or "") or (run_id if dest.has_run(run_id) else None)
    return run_here


def _import_model(dest: LocalDestination | RestDestination, model: ModelBundle,
                  run_here: Callable[[str | None, str | None], str | None], summary: Summary,
                  reporter: Reporter) -> None:
    try:
        try:
            if isinstance(dest, RestDestination):
                versions = RestRegistry(dest.store, dest.label).write(model, run_here)
            else:
                versions = write_model(dest.store, model, run_here)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a hand-edited or damaged models.json
            raise TransferError(f"its record is damaged ({type(exc).__name__}: {exc})") from None
        except sqlite3.IntegrityError as exc:
            raise TransferError(f"its record is damaged or its name was taken meanwhile ({exc})") from None
        except OSError as exc:  # a full disk, a read-only registry folder: as a run's files, one line
            raise TransferError(f"its files cannot be written: {exc.strerror or exc}") from None
    except ProjError as exc:
        raise type(exc)(f"registered model {model.name!r} not imported (nothing of it was written; importing again "
                        f"goes on from there): {exc.message}") from None
    summary.models.append(model.name)
    summary.model_versions += versions
    reporter.info(f"imported registered model {model.name!r} ({versions} version(s))")


def _import_one(dest: LocalDestination | RestDestination, bundle: Bundle, done: dict[str, str], summary: Summary,
                reporter: Reporter, position: str) -> None:
    there = done.get(bundle.origin) or (bundle.source_id if dest.has_run(bundle.source_id) else None)
    if there is not None:
        summary.skipped += 1
        summary.run_ids[bundle.source_id] = there
        reporter.info(f"skipped run {bundle.source_id} ({position}): already imported as {there}")
        return
    parent = _parent_here(dest, bundle, done, summary)
    wanted = dest.new_id(bundle.source_id)
    try:
        try:
            written = dest.write(bundle, wanted, parent)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a hand-edited or damaged run.json
            raise TransferError(f"its record is damaged ({type(exc).__name__}: {exc})") from None
    except ProjError as exc:
        raise type(exc)(f"run {bundle.source_id} not imported (nothing of it was written; {summary.runs} run(s) "
                        f"imported before it, importing again goes on from there): {exc.message}") from None
    new_id = written or wanted
    assert new_id is not None
    done[bundle.origin] = new_id
    summary.add(bundle, new_id)
    reporter.info(f"imported run {bundle.source_id}" + (f" as {new_id}" if new_id != bundle.source_id else "")
                  + f" ({position}: {bundle.metric_points()} metric points, {len(bundle.files)} files)")


def _parent_here(dest: LocalDestination | RestDestination, bundle: Bundle, done: dict[str, str],
                 summary: Summary) -> str | None:
    """The id the run's parent has in the destination: imported now or before; the link is dropped otherwise."""
    parent = bundle.parent
    if not parent:
        return None
    if parent in summary.run_ids:
        return summary.run_ids[parent]
    origin = bundle.origin.rpartition("#")[0]
    return done.get(f"{origin}#{parent}") or (parent if dest.has_run(parent) else None)
