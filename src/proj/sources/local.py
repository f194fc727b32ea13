"""Local directories, used in place."""
from __future__ import annotations

from pathlib import Path

from proj.errors import UsageError
from proj.sources.base import Source
from proj.sources.resolve import check_subdir


def resolve_local(path: Path, subdir: str | None, version: str | None, *, options: dict) -> Source:
    """A directory on disk (``path#subdir``); ``-v`` needs a git work tree."""
    path = path.resolve()
    if not path.exists():
        raise UsageError(f"project path {path} does not exist")
    if not path.is_dir():
        raise UsageError(f"project path {path} is not a directory")
    subdir = check_subdir(subdir)
    project_dir = (path / subdir) if subdir else path
    if not project_dir.is_dir():
        raise UsageError(f"#{subdir}: no such directory in {path}")
    if version:
        raise UsageError(f"-v/--version {version!r} needs a git repository; {path} is a plain directory")
    return Source(uri=str(path) + (f"#{subdir}" if subdir else ""), project_dir=project_dir, kind="local",
                  subdir=subdir)
