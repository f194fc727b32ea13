"""The folders an import writes a run's files into before its commit, named for the process that writes them, so a
later import can tell one whose writer was killed (SIGKILL, a power cut) from one still being written, and sweep it."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from proj.execution.liveness import writer_gone, writer_tag

PREFIX = ".import-"  # runs/.import-<run id>-<host>-<pid>-<start>-<random>: a run's files before its commit
MARKER = ".import-owner"  # inside that folder, and so inside the run folder it is renamed to until the commit is seen
LEGACY_SECONDS = 3600.0  # a folder named before owners were recorded: stale once this old (its writer is long gone)


def aside_folder(runs: Path, run_id: str) -> Path:
    """A new folder beside the run folders for ``run_id``'s files, holding the owner marker from its first moment
    (the name says it too, for a writer killed before the marker was written)."""
    mine = writer_tag()
    folder = runs / f"{PREFIX}{run_id}-{mine}-{os.urandom(4).hex()}"
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(json.dumps({"owner": mine}))
    return folder


def release(run_dir: Path) -> None:
    """The run's rows are committed: its folder is the run's own now."""
    (run_dir / MARKER).unlink(missing_ok=True)


def _stale(owned_by: str | None, made: float) -> bool:
    """Whether the process ``owned_by`` names ("host-pid-start") is gone; another host's folders are left alone."""
    gone = writer_gone(owned_by) if owned_by is not None else None
    return time.time() - made > LEGACY_SECONDS if gone is None else gone


def _named_owner(name: str) -> str | None:
    """The owner in ``.import-<run id>-<host>-<pid>-<start>-<random>``; None for an older name."""
    parts = name[len(PREFIX):].split("-")
    return "-".join(parts[1:4]) if len(parts) == 5 else None


def _marked_owner(folder: Path) -> str | None:
    try:
        found = json.loads((folder / MARKER).read_text()).get("owner")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def sweep(runs: Path, has_run: Callable[[str], bool]) -> int:
    """Remove what killed imports left under ``runs``: folders aside whose writer is gone, and run folders renamed
    into place whose commit never came (no row: removed; a row: only the marker goes). How many were removed."""
    if not runs.is_dir():
        return 0
    removed = 0
    for child in sorted(runs.iterdir()):
        try:
            if child.is_symlink() or not child.is_dir():
                continue
            if child.name.startswith(PREFIX):
                if _stale(_marked_owner(child) or _named_owner(child.name), child.stat().st_mtime):
                    shutil.rmtree(child, ignore_errors=True)
                    removed += 1
            elif (child / MARKER).is_file() and _stale(_marked_owner(child), (child / MARKER).stat().st_mtime):
                if has_run(child.name):
                    release(child)
                else:
                    shutil.rmtree(child, ignore_errors=True)
                    removed += 1
        except FileNotFoundError:
            continue  # another import finished with it between the listing and the look
    return removed
