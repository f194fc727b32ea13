"""Printing (and following) a run's log files."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from proj.tracking.records import RUNNING, RunRecord
from proj.tracking.store import RunStore

STREAMS = {"env-build": "env-build.log", "stdout": "stdout.log", "stderr": "stderr.log"}


def print_logs(store: RunStore, run: RunRecord, stream: str, follow: bool, out: Callable[..., None]) -> None:
    names = list(STREAMS) if stream == "all" else [stream]
    paths = [Path(run.run_dir) / "logs" / STREAMS[n] for n in names]
    offsets = {p: 0 for p in paths}
    while True:
        for path in paths:
            offsets[path] = _dump(path, offsets[path], out, prefix=f"[{path.stem}] " if stream == "all" and follow else "")
        # A runner killed while we follow reads as FAILED (tracking.view.presented), so this ends then too.
        if not follow or store.get_run(run.id).status != RUNNING:
            if follow:  # one last read after the end
                for path in paths:
                    offsets[path] = _dump(path, offsets[path], out, prefix="")
            return
        time.sleep(0.25)


def _dump(path: Path, offset: int, out: Callable[..., None], prefix: str) -> int:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return offset
    if data:
        text = data.decode(errors="replace")
        out("".join(prefix + line for line in text.splitlines(keepends=True)) if prefix else text, nl=False)
    return offset + len(data)
