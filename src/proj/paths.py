"""Where proj keeps its caches and run stores, with the environment-variable overrides in one place."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

from proj.errors import UnsafePath, UsageError

DEFAULT_STORE_DIRNAME = ".proj"


def cache_dir() -> Path:
    """The user cache root (``PROJ_CACHE_DIR`` overrides the platform default)."""
    override = os.environ.get("PROJ_CACHE_DIR")
    if override:
        return expand_user(override, "PROJ_CACHE_DIR").resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("proj", appauthor=False))


def store_root(tracking_uri: str | None = None, cwd: Path | None = None) -> Path:
    """Resolve a tracking URI (a path or ``file://`` URL) to the store's directory."""
    uri = tracking_uri or os.environ.get("PROJ_TRACKING_URI")
    base = cwd or Path.cwd()
    if not uri:
        return (base / DEFAULT_STORE_DIRNAME).resolve()
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        uri = unquote(urlparse(uri).path)
    elif "://" in uri:
        raise UsageError(f"tracking URI {uri!r} is not supported: use a directory path or a file:// URL")
    return (base / expand_user(uri, "tracking URI" if tracking_uri else "PROJ_TRACKING_URI")).resolve()


def expand_user(text: str, what: str) -> Path:
    """``text`` as a path with ``~``/``~user`` expanded; an unknown user is a clear error, not a traceback."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "Could not determine home directory": no such user, or no HOME at all
        raise UsageError(f"{what} {text!r}: cannot expand {text.split('/')[0]!r} "
                         f"(no such user or no home directory)") from None


def env_number(name: str, default: float) -> float:
    """A non-negative number from the environment variable ``name`` (``default`` when unset or empty).

    Read when needed, never at import, so a typo is reported as one clear line by the command using it.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{name}={raw!r} must be a finite number >= 0")
    return value


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
