"""Content-addressed environment cache: one directory per key, published only when complete.

Environments embed their own absolute path (shebangs, pyvenv.cfg, conda prefixes), so they are built
in place and *published by a completion marker* written last. A directory without the marker is a
half-built leftover (crash, kill -9, Ctrl-C): it is never used and is removed before a rebuild.
Builders of the same key serialise on a file lock, so two concurrent runs build it once.

A key's env normally lives in ``<key>``. A rebuild (``--refresh-env``, a broken env) never deletes a
directory a running run has leased: it builds a *slot* beside it (``<key>.<n>``) and publishes it by
writing its name to ``<key>.current``. The replaced slot is *retired*: ``proj env prune`` collects it
once its lease ends.
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
from typing import Any, Callable, Iterator

from proj.locks import LEASE, file_lock, holders
from proj.paths import atomic_write, cache

MARKER = ".proj-env.json"
USES = ".proj-uses"
CURRENT = ".current"  # ``<key>.current`` names the published slot when it is not ``<key>`` itself
Health = Callable[[Path], "str | None"]  # returns a reason when a published env is broken


@dataclass
class Slot:
    """A cache entry being looked up or built; ``hit`` says it was already complete."""

    path: Path
    hit: bool
    rebuild_reason: str | None = None
    beside: list[str] | None = None  # built beside a slot these runs still use (None: built in place)


class EnvCache:
    """The on-disk store of built environments under ``<cache>/envs``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache().envs
        self._building: tuple[str, Path] | None = None  # (key, slot) while :meth:`slot` builds

    def path(self, key: str) -> Path:
        """The key's published slot (one read of a tiny pointer file; ENOENT in the common case)."""
        try:
            name = (self.root / f"{key}{CURRENT}").read_text(encoding="utf-8").strip()
        except OSError:
            return self.root / key
        return self.root / name if slot_key(name) == key and "/" not in name else self.root / key

    def ready(self, key: str, health: Health | None = None) -> bool:
        return self.lookup(key, health) is not None

    def lookup(self, key: str, health: Health | None = None) -> Path | None:
        """Fast, lock-free check used on the warm path: the published slot, if complete and healthy."""
        path = self.path(key)
        if not (path / MARKER).is_file():
            return None
        return path if health is None or health(path) is None else None

    @contextmanager
    def slot(self, key: str, health: Health | None = None, *, refresh: bool = False) -> Iterator[Slot]:
        """Hold the key's build lock. Yields a hit, or an empty directory to build into.

        ``refresh`` rebuilds even a healthy env. A published slot that a running run has leased is
        never removed: the new one is built beside it and :meth:`publish` switches later runs to it.
        If the body raises, the partial directory is removed; if it returns, the caller must have
        called :meth:`publish`.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / f"{key}.lock"):
            current = self.path(key)
            reason = "--refresh-env asked for a rebuild" if refresh and current.exists() \
                else self._stale_reason(current, health)
            if current.exists() and reason is None:
                yield Slot(current, hit=True)
                return
            path, users = current, None
            if current.exists():
                users = _discard(current)
                if users is not None:  # leased: leave it to its run, build beside it
                    path = self._free_slot(key)
            path.mkdir(parents=True)
            self._building = (key, path)
            try:
                yield Slot(path, hit=False, rebuild_reason=reason if reason != "missing" else None, beside=users)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
            finally:
                self._building = None
            if not (path / MARKER).is_file():
                shutil.rmtree(path, ignore_errors=True)
                raise RuntimeError(f"environment {key} was built but never published")

    def _free_slot(self, key: str) -> Path:
        """A fresh ``<key>.<n>`` directory name (called under the key's build lock)."""
        n = 2
        while (self.root / f"{key}.{n}").exists():
            n += 1
        return self.root / f"{key}.{n}"

    def _stale_reason(self, path: Path, health: Health | None) -> str | None:
        if not path.exists():
            return "missing"
        if not (path / MARKER).is_file():
            return "a previous build did not finish"
        return health(path) if health else None

    def publish(self, key: str, metadata: dict[str, Any]) -> None:
        """Mark a built env complete. Written last and atomically: its presence means 'usable'."""
        meta = {"key": key, "created": time.time(), **metadata}
        building = self._building
        path = building[1] if building is not None and building[0] == key else self.path(key)
        atomic_write(path / MARKER, json.dumps(meta, indent=2, sort_keys=True))
        pointer = self.root / f"{key}{CURRENT}"
        if path.name != key:
            atomic_write(pointer, path.name)  # later runs use the new slot; the old one is retired
        elif pointer.exists():
            pointer.unlink()

    def metadata(self, key: str, path: Path | None = None) -> dict[str, Any]:
        try:
            meta: dict[str, Any] = json.loads(((path or self.path(key)) / MARKER).read_text())
            return meta
        except (OSError, ValueError):
            return {}

    def touch(self, key: str, path: Path | None = None) -> None:
        """Record a use (the marker's mtime is the 'last used' time shown by ``proj env list``).

        Each use also appends one byte to a counter file: a single O_APPEND write, so concurrent
        runs never lose a count and the warm path stays one syscall cheap.
        """
        path = path or self.path(key)
        try:
            os.utime(path / MARKER)
            fd = os.open(path / USES, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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
        """Every complete, published entry: (key, path, metadata, last used)."""
        result: list[tuple[str, Path, dict[str, Any], float]] = []
        if not self.root.is_dir():
            return result
        for child in sorted(self.root.iterdir()):
            marker, key = child / MARKER, slot_key(child.name)
            if child.is_dir() and marker.is_file() and self.path(key) == child:
                result.append((key, child, self.metadata(key), marker.stat().st_mtime))
        return result

    def retired(self) -> list[Path]:
        """Slots a rebuild replaced (no longer published): ``prune`` removes them once unleased."""
        if not self.root.is_dir():
            return []
        return [child for child in sorted(self.root.iterdir())
                if child.is_dir() and (child / MARKER).is_file() and self.path(slot_key(child.name)) != child]

    def remove_retired(self, path: Path) -> bool:
        """Delete a retired slot unless a run still uses it; returns whether it was removed."""
        key = slot_key(path.name)
        with file_lock(self.root / f"{key}.lock"):
            if self.path(key) == path or _discard(path) is not None:
                return False
        return True

    def remove(self, key: str) -> bool:
        """Delete an entry unless a running run uses it; returns whether it was removed."""
        path = self.path(key)
        with file_lock(self.root / f"{key}.lock"):
            if _discard(path) is not None:
                return False
            # Without the pointer a retired ``<key>`` slot would count as published again.
            doomed = [".lock"] + ([CURRENT] if not (self.root / key).exists() else [])
            for suffix in doomed:
                try:
                    (self.root / f"{key}{suffix}").unlink()
                except OSError:
                    pass
        return True


def slot_key(name: str) -> str:
    """The cache key a slot directory belongs to (``venv-ab12.3`` -> ``venv-ab12``; keys have no dot)."""
    return name.split(".", 1)[0]


def _discard(path: Path) -> list[str] | None:
    """Remove a slot unless leased; returns None when removed, else the ids of the runs using it.

    The slot's ``.inuse`` lock is held exclusively while deleting, so a run cannot lease it
    half-way; :func:`in_use` then sees the marker gone and refuses instead of running in a hole.
    """
    lock = path.with_name(f"{path.name}.inuse")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        fd = -1
    try:
        if fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return holders(path) or ["another run"]
        shutil.rmtree(path, ignore_errors=True)
        for leftover in [lock, *path.parent.glob(f"{path.name}{LEASE}*")]:
            try:
                leftover.unlink()
            except OSError:
                pass
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def resolution_path(backend: str, fingerprint: str) -> Path:
    """Where a backend keeps the lock it resolved for a spec fingerprint (so warm runs never resolve)."""
    return cache().resolution(backend, fingerprint)


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
