"""File locks and leases shared by the caches: an exclusive build lock, and a run's lease on a cached directory.

A lease is a shared flock on ``<path>.inuse`` held while a run uses the directory (prune and refresh skip
it), plus ``<path>.lease-<run id>`` naming the run. The kernel drops both if the run dies.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from proj.errors import EnvError

LEASE = ".lease-"  # ``<slot>.lease-<run id>``: held (flock) by the run using the slot, names who uses it


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
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
def in_use(path: Path, holder: str | None = None, *, marker: str | None = None) -> Iterator[None]:
    """Mark a cached directory as used by a running run (a shared lock on ``<path>.inuse``): prune skips it.

    ``holder`` (a run id) is recorded in a lease file of its own, held for the block, so a refresh can
    say who uses the slot. With ``marker``, the directory must still hold that file once leased: a
    concurrent rebuild may have removed it between the lookup and the lease.
    """
    lock = path.with_name(f"{path.name}.inuse")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield  # a read-only cache cannot be pruned by us either
        return
    named = -1
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        if marker is not None and not (path / marker).is_file():
            raise EnvError(f"environment {path} was removed while this run was starting (a concurrent "
                           f"--refresh-env or prune); run again")
        if holder is not None:
            named = _hold(path.with_name(f"{path.name}{LEASE}{holder}"))
        yield
    finally:
        if named >= 0:
            try:
                os.unlink(path.with_name(f"{path.name}{LEASE}{holder}"))
            except OSError:
                pass
            os.close(named)
        os.close(fd)


def _hold(lease: Path) -> int:
    try:
        named = os.open(lease, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return -1
    fcntl.flock(named, fcntl.LOCK_EX)
    return named


def holders(path: Path) -> list[str]:
    """The run ids holding a lease on ``path`` right now (stale lease files of dead runs are removed)."""
    found: list[str] = []
    for lease in sorted(path.parent.glob(f"{path.name}{LEASE}*")):
        try:
            fd = os.open(lease, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            lease.unlink(missing_ok=True)  # its run died without cleaning up
        except BlockingIOError:
            found.append(lease.name[len(path.name) + len(LEASE):])
        finally:
            os.close(fd)
    return found


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
