"""Content-addressed environment cache: one directory per key, published only when complete.

Environments embed their own absolute path (shebangs, pyvenv.cfg, conda prefixes), so they are built
in place and *published by a completion marker* written last. A directory without the marker is a
half-built leftover (crash, kill -9, Ctrl-C): it is never used and is removed before a rebuild.
Builders of the same key serialise on a file lock, so two concurrent runs build it once.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

from proj.paths import atomic_write, cache_dir

MARKER = ".proj-env.json"
USES = ".proj-uses"
Health = Callable[[Path], "str | None"]  # returns a reason when a published env is broken


@dataclass
class Slot:
    """A cache entry being looked up or built; ``hit`` says it was already complete."""

    path: Path
    hit: bool
    rebuild_reason: str | None = None


class EnvCache:
    """The on-disk store of built environments under ``<cache>/envs``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir() / "envs"

    def path(self, key: str) -> Path:
        return self.root / key

    def ready(self, key: str, health: Health | None = None) -> bool:
        """Fast, lock-free check used on the warm path: the marker exists and the env looks healthy."""
        path = self.path(key)
        if not (path / MARKER).is_file():
            return False
        return health is None or health(path) is None

    @contextmanager
    def slot(self, key: str, health: Health | None = None) -> Iterator[Slot]:
        """Hold the key's build lock. Yields a hit, or an empty directory to build into.

        If the body raises, the partial directory is removed; if it returns, the caller must have
        called :meth:`publish`.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with _flock(self.root / f"{key}.lock"):
            path = self.path(key)
            reason = self._stale_reason(path, health)
            if path.exists() and reason is None:
                yield Slot(path, hit=True)
                return
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            try:
                yield Slot(path, hit=False, rebuild_reason=reason if reason != "missing" else None)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
            if not (path / MARKER).is_file():
                shutil.rmtree(path, ignore_errors=True)
                raise RuntimeError(f"environment {key} was built but never published")

    def _stale_reason(self, path: Path, health: Health | None) -> str | None:
        if not path.exists():
            return "missing"
        if not (path / MARKER).is_file():
            return "a previous build did not finish"
        return health(path) if health else None

    def publish(self, key: str, metadata: dict[str, Any]) -> None:
        """Mark a built env complete. Written last and atomically: its presence means 'usable'."""
        meta = {"key": key, "created": time.time(), **metadata}
        atomic_write(self.path(key) / MARKER, json.dumps(meta, indent=2, sort_keys=True))

    def metadata(self, key: str) -> dict[str, Any]:
        try:
            return json.loads((self.path(key) / MARKER).read_text())
        except (OSError, ValueError):
            return {}

    def touch(self, key: str) -> None:
        """Record a use (the marker's mtime is the 'last used' time shown by ``proj env list``).

        Each use also appends one byte to a counter file: a single O_APPEND write, so concurrent
        runs never lose a count and the warm path stays one syscall cheap.
        """
        try:
            os.utime(self.path(key) / MARKER)
            fd = os.open(self.path(key) / USES, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)
        except OSError:
            pass

    def uses(self, key: str) -> int:
        """How many times the entry was used (``touch`` calls since it was built)."""
        try:
            return (self.path(key) / USES).stat().st_size
        except OSError:
            return 0

    def entries(self) -> list[tuple[str, Path, dict[str, Any], float]]:
        """Every complete entry: (key, path, metadata, last used)."""
        result: list[tuple[str, Path, dict[str, Any], float]] = []
        if not self.root.is_dir():
            return result
        for child in sorted(self.root.iterdir()):
            marker = child / MARKER
            if child.is_dir() and marker.is_file():
                result.append((child.name, child, self.metadata(child.name), marker.stat().st_mtime))
        return result

    def remove(self, key: str) -> bool:
        """Delete an entry unless a running run uses it; returns whether it was removed."""
        if busy(self.path(key)):
            return False
        with _flock(self.root / f"{key}.lock"):
            shutil.rmtree(self.path(key), ignore_errors=True)
        for suffix in (".lock", ".inuse"):
            try:
                (self.root / f"{key}{suffix}").unlink()
            except OSError:
                pass
        return True


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held for the block (released by the kernel if we die)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextmanager
def in_use(path: Path) -> Iterator[None]:
    """Mark a cached directory as used by a running run (a shared lock on ``<path>.inuse``): prune skips it."""
    lock = path.with_name(f"{path.name}.inuse")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield  # a read-only cache cannot be pruned by us either
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def busy(path: Path) -> bool:
    """True while some run holds :func:`in_use` on ``path``."""
    lock = path.with_name(f"{path.name}.inuse")
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def file_lock(path: Path) -> ContextManager[None]:
    """Public alias of the cache's file lock for other caches (git clones, resolutions)."""
    return _flock(path)


def resolution_path(backend: str, fingerprint: str) -> Path:
    """Where a backend keeps the lock it resolved for a spec fingerprint (so warm runs never resolve)."""
    return cache_dir() / "resolutions" / backend / f"{fingerprint}.json"


def read_resolution(backend: str, fingerprint: str) -> dict[str, Any] | None:
    try:
        data = json.loads(resolution_path(backend, fingerprint).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_resolution(backend: str, fingerprint: str, data: dict[str, Any]) -> None:
    try:
        atomic_write(resolution_path(backend, fingerprint), json.dumps(data, indent=2))
    except OSError:
        pass  # without the cache the next run just resolves again
