"""A full disk under the run store: the runner keeps draining its child, stops it, records FAILED, exits."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import require

# Prints far more than the store's filesystem holds, as fast as it can, and never ends by itself.
FLOOD = {
    "MLproject": "entry_points:\n  main:\n    command: python flood.py\n",
    "flood.py": """\
        import signal, sys
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # no traceback of its own when proj stops it
        line = "x" * 1023 + "\\n"
        while True:
            sys.stdout.write(line * 64)
            sys.stderr.write(line)
        """,
}


@pytest.fixture
def tiny_store(tmp_path: Path, proj):
    """A 2 MB tmpfs as the run store (root only); unmounted afterwards."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    require(done.returncode == 0, f"cannot mount a tmpfs (needs root): {done.stderr.decode().strip()}")
    proj.env["PROJ_TRACKING_URI"] = str(mount / "store")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_fails_the_run_instead_of_hanging(proj, make_project, tiny_store) -> None:
    root = make_project(FLOOD)
    cmd = [sys.executable, "-m", "proj.cli.main", "run", str(root), "--env-manager", "local"]
    # A hang is the bug: the timeout turns it into a failure instead of a stuck suite.
    done = subprocess.run(cmd, cwd=proj.cwd, env=proj.env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("proj: error:")]
    assert len(errors) == 1, done.stderr[-2000:]
    assert "no space left on device: " in errors[0] and str(tiny_store) in errors[0], errors
    assert "Traceback" not in done.stderr and done.stderr.rstrip().splitlines()[-1] == errors[0]
    listed = proj("runs", "list", "--json", "-n", "0")  # reading works on the full disk
    assert listed.code == 0, listed
    [run] = listed.json()
    assert run["status"] == "FAILED", run
    assert run["failure_reason"].startswith("no space left on device: " + str(tiny_store)), run
    shown = proj.show(run["id"])
    assert (Path(shown["run_dir"]) / "logs" / "stdout.log").stat().st_size > 0  # what fit is kept
