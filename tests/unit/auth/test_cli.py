"""``proj server user|token|audit`` on a store that is not there: one line, exit non-zero, nothing created."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _proj(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proj", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PROJ_TRACKING_URI": ""})


@pytest.mark.parametrize("command", [["user", "list"], ["token", "list"], ["token", "revoke", "abc"], ["audit"],
                                     ["token", "create", "--user", "ann"]])
def test_a_mistyped_store_is_refused_not_created(tmp_path: Path, command: list[str]) -> None:
    out = _proj("server", *command, "--backend-store-uri", str(tmp_path / "typo"))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and str(tmp_path / "typo") in out.stderr
    assert not (tmp_path / "typo").exists()


def test_a_refused_password_leaves_no_store(tmp_path: Path) -> None:
    out = _proj("server", "user", "add", "eve", "--backend-store-uri", str(tmp_path / "s"), stdin="\n")
    assert out.returncode != 0 and "empty password is refused" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "s").exists()
    made = _proj("server", "user", "add", "eve", "--backend-store-uri", str(tmp_path / "s"),
                 stdin="eve-password-12\n")
    assert made.returncode == 0, made.stderr
    assert _proj("server", "user", "list", "--backend-store-uri", str(tmp_path / "s")).stdout.startswith("eve\t")
