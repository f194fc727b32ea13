"""Where proj keeps its caches and run stores (``CacheLayout``, ``StoreLayout``), and safe path handling."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from proj import settings
from proj.errors import UnsafePath, UsageError
from proj.settings import expand_user

DEFAULT_STORE_DIRNAME = ".proj"


@dataclass(frozen=True)
class CacheLayout:
    """Where each cache lives under the cache root: the one spelling of the layout (``cache()`` for the user's)."""

    root: Path

    @property
    def envs(self) -> Path:
        """Built environments, one folder per backend and key (``envs/cache.py``)."""
        return self.root / "envs"

    @property
    def resolutions(self) -> Path:
        """Resolved locks by spec fingerprint: ``resolutions/<backend>/<fingerprint>.json``."""
        return self.root / "resolutions"

    def resolution(self, backend: str, fingerprint: str) -> Path:
        return self.resolutions / backend / f"{fingerprint}.json"

    @property
    def git(self) -> Path:
        """Bare clones of remote repositories (``sources/gitcache.py``)."""
        return self.root / "git"

    @property
    def git_work(self) -> Path:
        """Checkouts of a commit, shared by runs of it (``sources/workspace.py``)."""
        return self.git / "work"

    @property
    def docker(self) -> Path:
        return self.root / "docker"

    def docker_lock(self, name: str) -> Path:
        """The file lock serialising builds of one image (``name`` has no ``/``)."""
        return self.docker / "locks" / f"{name}.lock"

    @property
    def docker_used(self) -> Path:
        """One marker per image id a run used (for ``proj env list`` and cleanup)."""
        return self.docker / "used"

    def docker_context(self, key: str) -> Path:
        return self.docker / "contexts" / f"{key}.json"

    def docker_project(self, key: str) -> Path:
        return self.docker / "projects" / f"{key}.json"

    @property
    def conda_repodata(self) -> Path:
        return self.root / "conda-repodata"

    @property
    def conda_pkgs(self) -> Path:
        return self.root / "conda-pkgs"

    @property
    def conda_scratch(self) -> Path:
        """Throw-away prefixes the ``pip:`` part of a conda env is resolved in."""
        return self.root / "conda-scratch"

    def local_freeze(self, key: str) -> Path:
        """What the ``local`` backend froze for one interpreter and project."""
        return self.root / "local-freeze" / f"{key}.json"

    def validation_marker(self, fingerprint: str) -> Path:
        """Set when a spec file with this content passed validation (``project/schema.py``)."""
        return self.root / "validated" / fingerprint[:2] / fingerprint

    def snapshot_index(self, key: str) -> Path:
        return self.root / "snapshot-index" / f"{key}.json"

    def remote(self, address: str) -> Path:
        """The local run folders (logs, metrics file, artifacts) of runs recorded to the tracking server at
        ``address`` (``host_port``, made safe by the caller): the pipeline works on local files."""
        return self.root / "remote" / address

    @property
    def reproduce(self) -> Path:
        """Sources fetched again by ``proj reproduce``."""
        return self.root / "reproduce"

    @property
    def input_hashes(self) -> Path:
        """Hashes of path parameters by (path, size, mtime), so a warm run does not read them again."""
        return self.root / "input-hashes.json"


def cache() -> CacheLayout:
    """The user's cache (``PROJ_CACHE_DIR`` or the platform default), read when called."""
    return CacheLayout(settings.cache_dir())


@dataclass(frozen=True)
class StoreLayout:
    """Where a run store keeps its parts under its root: the one spelling of the store's layout."""

    root: Path

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, run_id: str) -> Path:
        """One run's folder (logs, artifacts, models, metrics file)."""
        return self.runs / run_id

    @property
    def snapshots(self) -> Path:
        """Source snapshots, stored once per content."""
        return self.root / "snapshots"

    @property
    def registry(self) -> Path:
        """Registered versions' own copies of their files: ``blobs/<sha256>`` and one manifest per file set
        (``proj.registry.files``), so a version outlives its run."""
        return self.root / "registry"


STORE_FILE = "proj.db"  # the store's SQLite file in its directory (tracking.dbfile.DB_NAME)


def store_root(tracking_uri: str | None = None, cwd: Path | None = None) -> Path:
    """Resolve a tracking URI (a path, a ``file://`` URL or ``sqlite:///<dir>/proj.db``; ``PROJ_TRACKING_URI``
    when None) to the store's directory."""
    uri = tracking_uri or settings.tracking_uri()
    base = cwd or Path.cwd()
    if not uri:
        return (base / DEFAULT_STORE_DIRNAME).resolve()
    if uri.startswith("sqlite:"):
        uri = str(sqlite_store_dir(uri))
    elif uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        uri = unquote(urlparse(uri).path)
    elif "://" in uri:
        raise UsageError(f"tracking URI {uri!r} is not supported: use a directory path or a file:// URL")
    return (base / expand_user(uri, "tracking URI" if tracking_uri else "PROJ_TRACKING_URI")).resolve()


def sqlite_store_dir(uri: str) -> Path:
    """The directory of ``sqlite:///rel/dir/proj.db`` (relative) or ``sqlite:////abs/dir/proj.db``, as
    SQLAlchemy and MLflow read the slashes; the file must be proj's (another database is not a proj store)."""
    from urllib.parse import unquote

    path = unquote(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else ""
    path = path.split("?", 1)[0]
    if not path or Path(path).name != STORE_FILE:
        raise UsageError(f"tracking URI {uri!r} is not supported: a sqlite URI names proj's store file, "
                         f"{STORE_FILE} (sqlite:///path/to/dir/{STORE_FILE}); or use the directory itself")
    return Path(path).parent


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file so readers see either the old or the whole new content, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh random name opened O_EXCL|O_NOFOLLOW: a link planted under a guessable name (a run
    # folder is writable by the child) can never redirect the write. (tempfile costs ~9 ms to import.)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data if isinstance(data, bytes) else data.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def link_or_copy(src: Path, dest: Path) -> None:
    """``dest`` as a hard link to ``src`` (the bytes stored once), or a copy across filesystems; atomic.

    Only for a regular file: a symlink (one a run planted, say) is refused, never followed to what it names.
    A hard link shares the bytes: never use it where the child can write ``dest`` and others read ``src``.
    """
    import shutil
    import stat

    if not stat.S_ISREG(src.lstat().st_mode):
        raise UnsafePath(f"{shorten(str(src))} is not a regular file (a symlink or special file); it is not linked or copied")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a crashed run with our pid
    try:
        os.link(src, tmp, follow_symlinks=False)
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(src, tmp, follow_symlinks=False)
    os.replace(tmp, dest)


_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_COMPONENT = 255  # bytes in one path component (NAME_MAX on Linux and macOS)


def unsafe_reason(name: object) -> str | None:
    """Why ``name`` is not a plain relative path (None when it is): checked on the text, before any join."""
    if not isinstance(name, str):
        return f"is of type {type(name).__name__}, not a text name"
    if not name.strip() or all(part in ("", ".") for part in name.split("/")):
        return "is empty"
    if "\0" in name:
        return "contains a NUL byte"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is absolute"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if ".." in name.split("/"):
        return "contains '..'"
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT for part in name.split("/")):
        return f"has a part longer than {MAX_COMPONENT} bytes"
    return None


def contained(root: Path, name: str, *, what: str) -> Path:
    """``root/name`` resolved (existing symlinks followed), or UnsafePath when it would lead outside ``root``.

    The one containment check for every path built from a name a run produced or a file shipped (MLflow run
    and model names, artifact entries, archive members, ``#subdir``, recorded model paths): proj runs with
    more rights than the child (on the host, for a container), so such a name must never choose where it writes.

    ``root`` is the trusted anchor: a folder proj made and the child cannot replace (the run folder, whose
    parent is not mounted; a staging folder), never one inside it such as ``artifacts``, which a container
    can swap for a symlink that would move the whole check. A root that is a symlink is refused.
    """
    reason = unsafe_reason(name)
    if root.is_symlink():
        raise UnsafePath(f"{what} {shorten(repr(name))}: the folder {shorten(str(root))} is a symbolic link; "
                         "refusing to follow it")
    base = root.resolve()
    if reason is None:
        target = (base / name).resolve()
        if not target.is_relative_to(base):
            reason = f"leads outside through a symlink (to {shorten(str(target))})"
        elif target == base:
            reason = "resolves to the folder itself through a symlink"
        else:
            return target
    raise UnsafePath(f"{what} {shorten(repr(name))} {reason}; it must be a relative path inside {base}")


def safe_name(name: object, prefix: str = "unsafe") -> str:
    """A generated folder name standing for a refused ``name``: the same name always gives the same folder."""
    import hashlib

    return f"{prefix[:200]}-{hashlib.sha256(repr(name).encode('utf-8', 'backslashreplace')).hexdigest()[:12]}"


def linked_part(root: Path, rel: str) -> Path | None:
    """The first path from ``root`` down to ``root/rel`` (itself included) that is a symbolic link, or None.

    For folders the child could have swapped for a link (``artifacts``, ``mlflow/mlruns``, an MLflow run's
    ``params``): a walk or copy through one would read or write whatever host folder it names."""
    path = root
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        path = path / part
        if path.is_symlink():
            return path
    return None


def shorten(text: str, limit: int = 120) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, so a hostile value cannot flood a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
