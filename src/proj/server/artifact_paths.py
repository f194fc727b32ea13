"""Artifact paths a client names, made safe: decoded once and checked, mapped to a run's or logged model's folder,
and read, listed, written and deleted only through descriptors proven to lie inside that folder."""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote

from proj.errors import UnsafePath, UsageError
from proj.execution.liveness import writer_gone, writer_tag
from proj.paths import contained, shorten, unsafe_reason

# Upload temp files sit beside their target under this prefix; listings hide them (MLflow hides its own too).
UPLOAD_PREFIX = ".proj-upload-"
# "file:", "s3:", "C:" as a whole part (a drive letter is one too), where a path would turn into a URI
_SCHEME = re.compile(r"(^|/)[A-Za-z][A-Za-z0-9+.-]*:(/|$)|^[A-Za-z][A-Za-z0-9+.-]*://")
_MAX_DECODE = 10
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def clean(raw: str, *, what: str = "artifact path") -> str:
    """The path a client sent (already URL-decoded once, as every HTTP server does), as a relative name with
    no empty or ``.`` parts; UnsafePath when it is absolute, climbs with ``..``, or hides one behind a second
    percent-encoding (``%252e%252e``), a backslash, NUL, ``#``, ``?``, a drive letter or a URI scheme."""
    once = raw
    full = once
    for _ in range(_MAX_DECODE):
        decoded = unquote(full)
        if decoded == full:
            break
        full = decoded
    else:
        raise _refused(what, raw, "is percent-encoded more than ten times")
    for form in (once, full):
        reason = _reason(form)
        if reason:
            raise _refused(what, raw, reason)
    if full != once:  # MLflow's clients never encode twice: a path that still decodes is an attack or a mistake
        raise _refused(what, raw, f"is percent-encoded twice (decodes again to {full!r})")
    return "/".join(part for part in once.split("/") if part not in ("", "."))


def _reason(name: str) -> str | None:
    if name.strip("/") in ("", "."):
        return None  # the root of whatever the name is below: allowed, callers decide
    reason = unsafe_reason(name)
    if reason:
        return reason
    if "#" in name or "?" in name:
        return "contains '#' or '?'"
    if _SCHEME.search(name):
        return "holds a URI scheme or drive letter"
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in name):
        return "contains a control character"
    return None


def _refused(what: str, raw: str, reason: str) -> UnsafePath:
    return UnsafePath(f"{what} {shorten(repr(raw))} {reason}; give a relative path inside the artifact root")


def join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


@dataclass(frozen=True)
class ProxiedPath:
    """An ``mlflow-artifacts`` path split into whose artifacts it names and where below their root."""

    kind: str  # "run", "model" or "registry" (a registered version's own copy of its files, read-only)
    experiment_id: str
    owner_id: str  # the run id, the logged model id, or the version's files_sha256
    rest: str  # below the owner's artifact root; "" for the root itself


REGISTRY_ROOT = "registry"  # mlflow-artifacts:/registry/<files_sha256>: what get-download-uri gives a version
_FILES_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def split_proxied(path: str) -> ProxiedPath:
    """``<exp>/<run_id>/artifacts/<rest>`` or ``<exp>/models/<model_id>/artifacts/<rest>`` (``path`` cleaned),
    or ``registry/<files_sha256>/<rest>`` for a registered version's files; anything else is UsageError: this
    server keeps artifacts only for its own runs, logged models and registered versions."""
    parts = path.split("/") if path else []
    if len(parts) >= 2 and parts[0] == REGISTRY_ROOT and _FILES_DIGEST.match(parts[1]):
        return ProxiedPath("registry", "", parts[1], "/".join(parts[2:]))
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        return ProxiedPath("model", parts[0], parts[2], "/".join(parts[4:]))
    if len(parts) >= 3 and parts[2] == "artifacts" and parts[1] != "models":
        return ProxiedPath("run", parts[0], parts[1], "/".join(parts[3:]))
    raise UsageError(f"artifact path {shorten(repr(path))} names no run or logged model: this server keeps "
                     "artifacts at '<experiment_id>/<run_id>/artifacts/...' and "
                     "'<experiment_id>/models/<model_id>/artifacts/...'")


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool
    size: int | None  # None for a folder


class Receiving(Protocol):
    """A file being uploaded: nothing is visible under its name until ``commit``; ``abort`` leaves nothing."""

    size: int

    def write(self, data: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class Spooled:
    """The receiving half of an upload (Upload here, object_store's RemoteUpload): the body appended to an open
    temp file as it arrives, and counted."""

    file: BinaryIO
    size: int

    def _spool_to(self, fd: int) -> None:
        self.file = os.fdopen(fd, "wb")
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)


class ArtifactPlace(Protocol):
    """Where one artifact root lives: a local Place, or server.object_store's RemotePlace in a bucket. ``rest``
    is always a path artifact_paths.clean has checked, relative to that root."""

    def open_file(self, rest: str) -> tuple[BinaryIO, int] | None: ...

    def list_dir(self, rest: str) -> list[Entry] | None: ...

    def exists(self, rest: str) -> bool: ...

    def delete(self, rest: str) -> None: ...

    def upload(self, rest: str) -> Receiving: ...


@dataclass(frozen=True)
class Place:
    """One folder artifacts live in: ``anchor`` (a folder the server trusts) / ``prefix`` (the artifact root)."""

    anchor: Path
    prefix: str

    def name(self, rest: str) -> str:
        return join(self.prefix, rest)

    # the ArtifactPlace operations, by the module's descriptor-safe functions below
    def open_file(self, rest: str) -> tuple[BinaryIO, int] | None:
        return open_file(self, rest)

    def list_dir(self, rest: str) -> list[Entry] | None:
        return list_dir(self, rest)

    def exists(self, rest: str) -> bool:
        path = self.anchor / self.name(rest)
        return path.is_symlink() or path.exists()

    def delete(self, rest: str) -> None:
        delete(self, rest)

    def upload(self, rest: str) -> Upload:
        return Upload(self, rest)


def _inside(fd: int, base: Path, what: str) -> None:
    """Refuse an opened file or folder that is not below ``base``: what was checked by name is what was
    opened, even if a folder on the way was swapped for a symlink in between (the kernel says where it is)."""
    real = Path(os.readlink(f"/proc/self/fd/{fd}"))
    if real != base and not real.is_relative_to(base):
        os.close(fd)
        raise UnsafePath(f"{what} leads outside its artifact folder; refusing it")


def _resolve(place: Place, rest: str, what: str) -> tuple[Path, Path]:
    """(anchor resolved, ``rest`` resolved under it) or UnsafePath (symlinks that lead out included)."""
    base = place.anchor.resolve()
    try:
        return base, contained(place.anchor, place.name(rest), what=what)
    except UnsafePath:  # said again without the server's own paths, which are none of the client's business
        raise UnsafePath(f"{what} {shorten(repr(rest))} leads outside its artifact folder (through a symbolic "
                         "link); refusing it") from None


def open_file(place: Place, rest: str) -> tuple[BinaryIO, int] | None:
    """The artifact ``rest`` opened for reading with its size; None when it does not exist. UsageError for a
    folder; UnsafePath when it leads outside its place."""
    base, target = _resolve(place, rest, "artifact")
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise UsageError(f"Artifact path refers to a directory, not a file: '{shorten(rest)}'") from None
    except OSError as exc:  # ELOOP: swapped for a symlink since it was resolved
        raise UnsafePath(f"artifact {shorten(repr(rest))} cannot be opened safely ({exc.strerror})") from None
    _inside(fd, base, f"artifact {shorten(repr(rest))}")
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        os.close(fd)
        raise UsageError(f"Artifact path refers to a directory, not a file: '{shorten(rest)}'")
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnsafePath(f"artifact {shorten(repr(rest))} is not a regular file")
    return os.fdopen(fd, "rb"), info.st_size


def _open_dir(place: Place, rest: str, *, create: bool) -> int | None:
    """A descriptor of the folder ``rest`` (created when asked), proven inside its place; None if missing."""
    base, target = _resolve(place, rest, "artifact folder")
    if create:
        try:
            target.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"artifact path {shorten(repr(rest))} runs through a file, not a folder") from None
    try:
        fd = os.open(target, _DIR_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        if create:
            raise UsageError(f"artifact path {shorten(repr(rest))} runs through a file, not a folder") from None
        return None
    _inside(fd, base, f"artifact folder {shorten(repr(rest))}")
    return fd


def list_dir(place: Place, rest: str) -> list[Entry] | None:
    """The entries of the folder ``rest``, sorted; None when it is missing or is a file. A symlink is shown
    only when it stays inside the place (then as what it points to); upload temp files never."""
    fd = _open_dir(place, rest, create=False)
    if fd is None:
        return None
    try:
        with os.scandir(fd) as it:
            names = list(it)
        found = [_entry(place, rest, e) for e in names if not e.name.startswith(UPLOAD_PREFIX)]
        _sweep_uploads(fd, [e.name for e in names if e.name.startswith(UPLOAD_PREFIX)])
    finally:
        os.close(fd)
    return sorted((e for e in found if e is not None), key=lambda e: e.name)


def _upload_name() -> str:
    """A temp name that says which process writes it (``.proj-upload-<host>-<pid>-<start>-<random>.tmp``)."""
    return f"{UPLOAD_PREFIX}{writer_tag()}-{os.urandom(8).hex()}.tmp"


def _sweep_uploads(dir_fd: int, names: list[str]) -> None:
    """Remove the upload temp files in this folder whose server process is gone (killed mid-upload), when the
    folder is listed: never shown, but disk they hold. A live writer's (another worker's) and another host's
    stay; so does an unnamed one of an older proj (only its age could tell, and a slow upload may be old)."""
    for name in names:
        tag = name[len(UPLOAD_PREFIX):].rsplit("-", 1)[0]
        if writer_gone(tag):
            try:
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass  # another worker swept it first


def _entry(place: Place, rest: str, entry: os.DirEntry[str]) -> Entry | None:
    info = entry.stat(follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        try:
            info = contained(place.anchor, place.name(join(rest, entry.name)), what="artifact").stat()
        except (UnsafePath, OSError):
            return None  # a link out of the place (or a dangling one) is not the run's artifact
    if stat.S_ISDIR(info.st_mode):
        return Entry(entry.name, True, None)
    return Entry(entry.name, False, info.st_size) if stat.S_ISREG(info.st_mode) else None


class Upload(Spooled):
    """A file being received: written to a fresh temp name beside its target, fsync'd, then renamed onto it,
    all through the descriptor of its folder; an upload that is aborted (or a server that dies) never leaves a
    half file under the real name."""

    def __init__(self, place: Place, rest: str) -> None:
        parent, _, leaf = rest.rpartition("/")
        if not leaf:
            raise UsageError("an artifact upload needs a file name, not the artifact root")
        self.leaf = leaf
        dir_fd = _open_dir(place, parent, create=True)
        assert dir_fd is not None
        self.dir_fd = dir_fd
        if _is_dir(dir_fd, leaf):
            os.close(dir_fd)
            raise UsageError(f"artifact {shorten(repr(rest))} is a folder; it cannot be overwritten by a file")
        self.tmp = _upload_name()
        self._spool_to(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                               dir_fd=dir_fd))

    def commit(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.leaf, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
            os.fsync(self.dir_fd)  # the rename itself survives a crash
        except BaseException:
            self.abort()
            raise
        os.close(self.dir_fd)
        self.dir_fd = -1

    def abort(self) -> None:
        if self.dir_fd < 0:
            return  # aborted already (a failed commit aborts itself, and its caller aborts again)
        self.file.close()
        try:
            os.unlink(self.tmp, dir_fd=self.dir_fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(self.dir_fd)
            self.dir_fd = -1


def _is_dir(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def delete(place: Place, rest: str) -> None:
    """Remove the file or folder ``rest`` (a symlink: the link, never what it names); the whole artifact root's
    content when ``rest`` is empty. Missing: nothing to do, as MLflow."""
    parent, _, leaf = rest.rpartition("/")
    dir_fd = _open_dir(place, parent if leaf else "", create=False)
    if dir_fd is None:
        return
    try:
        names = [leaf] if leaf else os.listdir(dir_fd)
        for name in names:
            _remove(dir_fd, name)
    finally:
        os.close(dir_fd)


def _remove(dir_fd: int, name: str) -> None:
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    # Down through descriptors opened without following links (shutil.rmtree takes dir_fd only from 3.11): a
    # link inside is removed as a link, and a folder swapped for one meanwhile fails to open instead of leading out.
    sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        for child in os.listdir(sub):
            _remove(sub, child)
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=dir_fd)
