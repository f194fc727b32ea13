"""Is this pid still the process that started then? Read from /proc with ``os`` only.

Apart from process.py (subprocess, threads, signals) because the store and every reading command ask
this, and none of them may pay for starting processes.
"""
from __future__ import annotations

import hashlib
import os

__all__ = ["is_alive", "proc_stat", "process_start_time", "writer_gone", "writer_tag"]


class _Stat:
    """The fields of /proc/PID/stat proj needs."""

    __slots__ = ("state", "ppid", "pgid", "start")

    def __init__(self, state: str, ppid: int, pgid: int, start: str) -> None:
        self.state, self.ppid, self.pgid, self.start = state, ppid, pgid, start


def proc_stat(pid: int) -> _Stat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rfind(")") + 2:].split()
    if len(fields) < 20:
        return None
    return _Stat(fields[0], int(fields[1]), int(fields[2]), fields[19])


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), to tell pid reuse apart."""
    stat = proc_stat(pid)
    return stat.start if stat is not None else None


def is_alive(pid: int | None, start: str | None) -> bool:
    """Whether ``pid`` still runs and is the process that started at ``start`` (not a reused pid)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    current = process_start_time(pid)
    if current is None or start is None:
        return True  # no /proc to compare with: trust the pid
    return current == start


def _host() -> str:
    return hashlib.sha256(os.uname().nodename.encode()).hexdigest()[:8]


def writer_tag() -> str:
    """This process as a name part, ``host-pid-start`` (a reused pid is another process), for what it writes
    aside (an import's folder, an upload's temp file) so that a later process can tell a killed writer's."""
    return f"{_host()}-{os.getpid()}-{process_start_time(os.getpid()) or 0}"


def writer_gone(tag: str) -> bool | None:
    """Whether the process a ``writer_tag`` names is gone: None for a tag that is not one, False for another
    host's (nothing here can tell)."""
    parts = tag.split("-")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    host, pid, start = parts
    if host != _host():
        return False
    return not is_alive(int(pid), None if start == "0" else start)
