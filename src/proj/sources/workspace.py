"""A run's private working copy of a git source.

The cache keeps one pristine checkout per commit, shared by every run of it; runs never work in it,
because a program that writes next to its code (outputs, edited data files) would change what the
next run of that commit sees. Each run gets its own copy instead, removed when the run ends. Copies
left by a runner that died are removed by the next run (their owner pid is in the name).
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from proj.execution.liveness import is_alive
from proj.paths import cache, contained
from proj.sources.base import Source


def work_root() -> Path:
    return cache().git_work


def checkout_root(source: Source) -> Path:
    """The top of the checkout a git source's project directory lives in."""
    root = source.project_dir
    for _ in Path(source.subdir or "").parts:
        root = root.parent
    return root


def private_copy(source: Source) -> Path:
    """Copy the pristine checkout into a new private directory; return the project dir inside it."""
    base = work_root()
    base.mkdir(parents=True, exist_ok=True)
    _remove_orphans(base)
    work = Path(_mkdtemp(base))
    shutil.copytree(checkout_root(source), work, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".git"))
    _make_writable(work)
    if source.subdir:  # checked on the pristine checkout; an absolute link inside it points back there
        try:
            contained(work, source.subdir, what="#subdir in the run's copy of the checkout")
        except Exception:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return work / (source.subdir or "")


def remove(project_dir: Path) -> None:
    """Delete a private copy (given its project dir); anything outside the work root is left alone."""
    base = work_root()
    try:
        top = base / project_dir.relative_to(base).parts[0]
    except (ValueError, IndexError):
        return
    shutil.rmtree(top, ignore_errors=True)


def _mkdtemp(base: Path) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base)


def _make_writable(tree: Path) -> None:
    """The cache marks tracked files read-only; a run's own copy is its to change."""
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            path = Path(dirpath, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _remove_orphans(base: Path) -> None:
    for child in base.iterdir():
        pid = child.name.split("-", 1)[0]
        if pid.isdigit() and not is_alive(int(pid), None):
            shutil.rmtree(child, ignore_errors=True)
