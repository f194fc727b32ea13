"""Ingesting what an entry point reports through its metrics file (JSON lines), live and at the end.

The offset is read, the lines ingested and the new offset written in one transaction, so each line
lands exactly once: between the live tailer and the runner's final ingest, and between any number of
concurrent reapers after the runner died.
"""
from __future__ import annotations

import json
import math
import os
import stat
import threading
import time
from pathlib import Path

from proj.tracking.records import MetricPoint, ParamRecord
from proj.tracking.store import RunStore

METRICS_FILE = "metrics.jsonl"
MIN_STEP, MAX_STEP = -(2**63), 2**63 - 1
POLL_SECONDS = 0.5
MAX_READ = 16 << 20  # bytes read per pass: a huge file is ingested over several passes, never held whole


def metrics_path(store: RunStore, run_id: str) -> Path:
    return store.run_dir(run_id) / METRICS_FILE


def ingest_metrics_file(store: RunStore, run_id: str) -> int:
    """Ingest complete lines past the stored offset; returns how many lines were bad (skipped)."""
    path = metrics_path(store, run_id)
    try:
        size = path.lstat().st_size
    except FileNotFoundError:
        return 0
    if size <= store.ingest_offset(run_id):
        return 0  # nothing new: no write lock taken (the tailer looks every 0.5 s)
    with store.transaction():  # the offset read again under the lock: another ingester may have been first
        offset = store.ingest_offset(run_id)
        chunk = _read_from(path, offset)
        end = chunk.rfind(b"\n")
        if end < 0 and len(chunk) >= MAX_READ:  # one line longer than a pass: skipped as bad, not waited for
            store.log_batch(run_id, [], [], {}, offset=offset + len(chunk))
            return 1
        if end < 0:
            return 0  # only a partial line so far
        metrics, params, tags, bad = parse_lines(chunk[: end + 1].decode("utf-8", errors="replace").splitlines())
        store.log_batch(run_id, metrics, params, tags, offset=offset + end + 1)
    return bad


def _read_from(path: Path, offset: int, limit: int = MAX_READ) -> bytes:
    """At most ``limit`` bytes of ``path`` from ``offset``, in chunks. The child writes this file (into a
    mounted run folder for a container): a symlink it put there (to a host file) is not followed, and
    anything but a regular file (a FIFO, a device) is not read. What is past ``limit`` waits for the next pass."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:  # ELOOP: a symlink; gone; unreadable
        return b""
    with os.fdopen(fd, "rb", buffering=0) as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        fh.seek(offset)
        parts, left = [], limit
        while left > 0 and (part := fh.read(min(left, 1 << 20))):
            parts.append(part)
            left -= len(part)
    return b"".join(parts)


def parse_lines(lines: list[str]) -> tuple[list[MetricPoint], list[ParamRecord], dict[str, str], int]:
    metrics, params, tags, bad = [], [], {}, 0
    now = time.time()
    for line in lines:
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            kind = item.get("kind", "metric")
            key = str(item["key"])
            if kind == "metric":
                value = float(item["value"])
                step = int(item.get("step") or 0)
                ts = float(item.get("timestamp") or now)
                if not (MIN_STEP <= step <= MAX_STEP) or not math.isfinite(ts):
                    raise ValueError("step or timestamp out of range")  # SQLite integers are 64-bit
                metrics.append(MetricPoint(key, value, step, ts))
            elif kind == "param":
                params.append(ParamRecord(key, str(item["value"]), item["value"], "string", "logged"))
            elif kind == "tag":
                tags[key] = str(item["value"])
            else:
                bad += 1
        except (ValueError, KeyError, TypeError, AttributeError):
            bad += 1
    return metrics, params, tags, bad


class MetricsTailer:
    """A background thread that ingests the metrics file while the entry point runs."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="proj-metrics", daemon=True)
        self.bad_lines = 0

    def __enter__(self) -> "MetricsTailer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._ingest_once()  # whatever came last, in this thread: it must land even if the poller failed

    def _ingest_once(self) -> None:
        store = self._store.reopen()  # its own connection: a transaction belongs to one thread
        try:
            self.bad_lines += ingest_metrics_file(store, self._run_id)
        finally:
            store.close()

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self._ingest_once()
            except Exception:  # noqa: BLE001 - a failed poll is retried; the final ingest reports
                continue
