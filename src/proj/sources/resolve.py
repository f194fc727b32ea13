"""Turn the URI a user typed into a :class:`Source`: a git URL or a local directory."""
from __future__ import annotations

import re
from pathlib import Path

from proj.errors import SourceError, UnsafePath, UsageError
from proj.paths import contained, shorten, unsafe_reason
from proj.sources.base import Source

_GIT_URL = re.compile(r"^(https?://|ssh://|git://|file://|git\+[a-z]+://)|^[\w.-]+@[\w.-]+:")


def is_git_uri(uri: str) -> bool:
    """URLs that name a repository (``git@host:path`` included); plain paths are local."""
    return bool(_GIT_URL.match(uri))


def resolve_source(uri: str, version: str | None = None, *, cwd: Path | None = None,
                   options: dict | None = None) -> Source:
    """Resolve ``uri`` (optionally ``#subdir``) at ``version`` into a runnable directory."""
    cwd = cwd or Path.cwd()
    options = options or {}
    if is_git_uri(uri):
        from proj.sources.git import resolve_git

        return resolve_git(uri, version, options=options)
    from proj.paths import expand_user
    from proj.sources.local import resolve_local

    path, _, subdir = uri.partition("#")
    return resolve_local(cwd / expand_user(path, "project path"), subdir or None, version, options=options)


def check_subdir(subdir: str | None) -> str | None:
    """A ``#subdir`` must stay inside the project: no absolute paths, no ``..`` (checked on the text)."""
    if not subdir:
        return None
    reason = unsafe_reason(subdir)
    if reason is not None:
        raise UsageError(f"#{shorten(subdir)}: the subdirectory {reason}; it must be a relative path inside "
                         f"the project (no '..')")
    return subdir.strip("/")


def subdir_path(root: Path, subdir: str | None, what: str) -> Path:
    """``root/subdir`` once the subdirectory resolves inside ``root`` with symlinks followed (a committed
    ``sub -> /elsewhere`` would otherwise run code from outside the checkout); SourceError if not.

    The path returned is not resolved: callers count its parts back to ``root``."""
    if not subdir:
        return root
    try:
        contained(root, subdir, what=f"{what}: #subdir")
    except UnsafePath as exc:
        raise SourceError(str(exc)) from None
    return root / subdir
