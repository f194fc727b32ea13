"""A real `proj runs import` killed with SIGKILL while a run's files are being written aside: the folder it leaves
(no row points to it) is swept by the next import, which then imports every run whole."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.transfer.test_export_import import file_hashes, store_runs
from helpers.cli import Proj

MLPROJECT = """
entry_points:
  main:
    command: python big.py
"""
# Big files, so the import spends long enough writing each run aside to be caught there.
BIG = """
import os
art = os.environ["PROJ_ARTIFACT_DIR"]
for n in range(3):
    with open(os.path.join(art, f"blob{n}.bin"), "wb") as fh:
        fh.write(os.urandom(24 << 20))
"""


def leftovers(runs: Path) -> list[Path]:
    return [p for p in runs.iterdir() if p.name.startswith(".import-")] if runs.is_dir() else []


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_an_import_killed_mid_run_leaves_a_folder_the_next_import_sweeps(proj: Proj, make_project: Any,
                                                                        tmp_path: Path) -> None:
    root = make_project({"MLproject": MLPROJECT, "big.py": BIG})
    ids = []
    for _ in range(3):
        assert proj("run", str(root), "--env-manager", "local", "-q").code == 0
        ids.append(proj.show("last")["id"])
    archive = tmp_path / "runs.tar"
    assert proj("runs", "export", "--all", "-o", str(archive)).code == 0
    dest = tmp_path / "dest"
    runs = dest / "runs"
    killed = None
    for _ in range(5):  # each try kills the import as soon as a run's folder aside has a file in it
        importing = proj.popen("runs", "import", str(archive), "--tracking-uri", str(dest))  # a few lines: no pipe fills
        while importing.poll() is None:
            if any(any(p.rglob("blob*.bin")) for p in leftovers(runs)):
                os.kill(importing.pid, signal.SIGKILL)
                importing.wait()
                killed = importing.pid
                break
            time.sleep(0.002)
        if killed is not None:
            break
    assert killed is not None, "the import was never caught writing a run aside"
    left = leftovers(runs)
    assert len(left) == 1 and f"-{killed}-" in left[0].name, left  # named for the process that made it
    half = left[0].name[len(".import-"):].split("-")[0]
    assert half in ids and half not in {r["id"] for r in store_runs(proj, dest)}  # no row points to it

    out = proj("runs", "import", str(archive), "--tracking-uri", str(dest), "--json")
    assert out.code == 0, out
    assert out.json()["removed_leftovers"] == 1 and "interrupted import" in out.stderr, out
    assert leftovers(runs) == []
    assert sorted(r["id"] for r in store_runs(proj, dest)) == sorted(ids)
    source = Path(proj.env["PROJ_TRACKING_URI"])
    for run_id in ids:
        assert file_hashes(runs / run_id / "artifacts") == file_hashes(source / "runs" / run_id / "artifacts")
        assert sorted(p.name for p in (runs / run_id).iterdir()) == ["artifacts", "logs"]

