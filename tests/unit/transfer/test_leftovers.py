"""transfer.leftovers.sweep with real processes: a dead writer's folder goes, a live one's stays, another host's and
a fresh unnamed one stay, a run folder renamed into place without its commit goes (with a row: only its marker)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from proj.execution.liveness import process_start_time, writer_tag
from proj.transfer import leftovers


def _owner_of(process: subprocess.Popen[bytes]) -> str:
    host = writer_tag().split("-")[0]
    return f"{host}-{process.pid}-{process_start_time(process.pid)}"


def test_sweep_takes_only_what_a_dead_writer_left(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        dead_owner, live_owner = _owner_of(dead), _owner_of(live)
        dead.kill()
        dead.wait()
        folders = {
            "dead": runs / f".import-{'a' * 32}-{dead_owner}-0001",
            "live": runs / f".import-{'b' * 32}-{live_owner}-0002",
            "other_host": runs / f".import-{'c' * 32}-00000000-{dead.pid}-1-0003",
            "legacy_old": runs / f".import-{'d' * 32}-0004abcd",
            "legacy_new": runs / f".import-{'e' * 32}-0005abcd",
            "placed_no_row": runs / ("f" * 32),
            "placed_with_row": runs / ("9" * 32),
            "plain_run": runs / ("8" * 32),
        }
        for folder in folders.values():
            (folder / "artifacts").mkdir(parents=True)
        for name in ("placed_no_row", "placed_with_row"):
            (folders[name] / leftovers.MARKER).write_text(json.dumps({"owner": dead_owner}))
        old = time.time() - 2 * leftovers.LEGACY_SECONDS
        os.utime(folders["legacy_old"], (old, old))

        removed = leftovers.sweep(runs, lambda run_id: run_id in ("9" * 32, "8" * 32))
        assert removed == 3
        kept = {name for name, folder in folders.items() if folder.is_dir()}
        assert kept == {"live", "other_host", "legacy_new", "placed_with_row", "plain_run"}
        assert not (folders["placed_with_row"] / leftovers.MARKER).exists()
    finally:
        live.kill()
        live.wait()


def test_a_folder_aside_carries_its_writer_from_the_first_moment(tmp_path: Path) -> None:
    folder = leftovers.aside_folder(tmp_path / "runs", "a" * 32)
    assert json.loads((folder / leftovers.MARKER).read_text())["owner"] == writer_tag()
    assert f"-{os.getpid()}-" in folder.name
    assert leftovers.sweep(tmp_path / "runs", lambda _: False) == 0 and folder.is_dir()  # this process is alive
