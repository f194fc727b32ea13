"""The inventory of cached environments: list every backend's entries (env cache and Docker images), prune them."""
from __future__ import annotations

import fcntl
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proj.envs.cache import MARKER, EnvCache, slot_key
from proj.envs.docker.images import inventory, prune_images
from proj.envs.entry import EnvEntry
from proj.locks import busy

DAY = 86400.0


@dataclass(frozen=True)
class PruneResult:
    removed: list[EnvEntry]
    leftovers: list[str]  # half-built directories (no completion marker, no builder holding the lock)
    kept: int
    busy: list[str] = field(default_factory=list)  # expired, but a running run uses them
    failed: list[dict[str, str]] = field(default_factory=list)  # {key, reason}: the removal was refused
    notes: list[str] = field(default_factory=list)  # e.g. the Docker daemon could not be reached
    retired: list[str] = field(default_factory=list)  # slots a --refresh-env replaced, no longer leased

    def to_dict(self) -> dict[str, Any]:
        return {"removed": [e.to_dict() for e in self.removed], "leftovers": self.leftovers, "kept": self.kept,
                "busy": self.busy, "failed": self.failed, "notes": self.notes, "retired": self.retired}


@dataclass(frozen=True)
class Listing:
    entries: list[EnvEntry]
    notes: list[str]  # why a backend's entries could not be listed (never an error: the rest still are)


def list_envs(cache: EnvCache | None = None) -> list[EnvEntry]:
    """Every complete cache entry and recorded Docker image, most recently used first."""
    return listing(cache).entries


def listing(cache: EnvCache | None = None) -> Listing:
    """:func:`list_envs` plus the notes of backends that could not be asked (no Docker daemon)."""
    docker = inventory()
    entries = _cached(cache or EnvCache()) + [image.entry for image in docker.images]
    return Listing(sorted(entries, key=lambda e: e.last_used, reverse=True), [docker.note] if docker.note else [])


def _cached(cache: EnvCache) -> list[EnvEntry]:
    return [_entry(cache, key, path, meta, used) for key, path, meta, used in cache.entries()]


def _entry(cache: EnvCache, key: str, path: Path, meta: dict[str, Any], used: float) -> EnvEntry:
    python = str(meta.get("python_version") or meta.get("python") or "")
    return EnvEntry(key=key, backend=str(meta.get("backend") or key.split("-")[0]), python=python,
                    size_bytes=dir_size(path), created=float(meta.get("created") or used), last_used=used,
                    runs=cache.uses(key), path=str(path))


def dir_size(path: Path) -> int:
    """Bytes used by a directory tree (symlinks counted as links, not followed)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def prune_envs(*, older_than_days: float | None = None, everything: bool = False, dry_run: bool = False,
               cache: EnvCache | None = None, now: float | None = None) -> PruneResult:
    """Remove entries unused for ``older_than_days`` (or all), and always half-built leftovers."""
    cache = cache or EnvCache()
    cutoff = (now or time.time()) - older_than_days * DAY if older_than_days is not None else None

    def expired(entry: EnvEntry) -> bool:
        return everything or (cutoff is not None and entry.last_used < cutoff)

    entries = _cached(cache)
    doomed = [e for e in entries if expired(e)]
    held = [e.key for e in doomed if busy(cache.path(e.key))]  # a running run's env stays
    doomed = [e for e in doomed if e.key not in held]
    if not dry_run:
        doomed = [e for e in doomed if cache.remove(e.key)]
    leftovers = _leftovers(cache.root, remove=not dry_run)
    retired, still_used = _retired(cache, remove=not dry_run)
    images = prune_images(expired, dry_run=dry_run)
    return PruneResult(doomed + images.removed, leftovers, len(entries) - len(doomed) + images.kept,
                       busy=held + still_used + images.busy, failed=images.failed,
                       notes=[images.note] if images.note else [], retired=retired)


def _retired(cache: EnvCache, *, remove: bool) -> tuple[list[str], list[str]]:
    """Slots a refresh replaced: always collected once no run leases them (whatever their age)."""
    gone: list[str] = []
    held: list[str] = []
    for path in cache.retired():
        if busy(path) or (remove and not cache.remove_retired(path)):
            held.append(path.name)
        else:
            gone.append(path.name)
    return gone, held


def _leftovers(root: Path, *, remove: bool) -> list[str]:
    """Directories without a completion marker whose build lock nobody holds: a crashed build's debris."""
    found: list[str] = []
    if not root.is_dir():
        return found
    for child in sorted(root.iterdir()):  # a slot built beside a leased one is locked by its key's lock
        if child.is_dir() and not (child / MARKER).exists() and _unlocked(root / f"{slot_key(child.name)}.lock"):
            found.append(child.name)
            if remove:
                shutil.rmtree(child, ignore_errors=True)
    return found


def _unlocked(lock: Path) -> bool:
    """True when no builder holds the key's lock right now (a try-lock that is released at once)."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
