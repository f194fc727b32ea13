"""Where proj keeps its caches and run stores, with the environment-variable overrides in one place."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STORE_DIRNAME = ".proj"


def cache_dir() -> Path:
    """The user cache root (``PROJ_CACHE_DIR`` overrides the platform default)."""
    override = os.environ.get("PROJ_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
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
        from proj.errors import UsageError

        raise UsageError(f"tracking URI {uri!r} is not supported: use a directory path or a file:// URL")
    return (base / Path(uri).expanduser()).resolve()


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file so readers see either the old or the whole new content, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(tmp, mode) as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
