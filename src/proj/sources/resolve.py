"""Turn the URI a user typed into a :class:`Source`: a git URL or a local directory."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from proj.settings import expand_user
from proj.sources.base import Source
from proj.sources.git import resolve_git
from proj.sources.local import resolve_local

_GIT_URL = re.compile(r"^(https?://|ssh://|git://|file://|git\+[a-z]+://)|^[\w.-]+@[\w.-]+:")


def is_git_uri(uri: str) -> bool:
    """URLs that name a repository (``git@host:path`` included); plain paths are local."""
    return bool(_GIT_URL.match(uri))


def resolve_source(uri: str, version: str | None = None, *, cwd: Path | None = None,
                   options: dict[str, Any] | None = None) -> Source:
    """Resolve ``uri`` (optionally ``#subdir``) at ``version`` into a runnable directory."""
    cwd = cwd or Path.cwd()
    options = options or {}
    if is_git_uri(uri):
        return resolve_git(uri, version, options=options)
    path, _, subdir = uri.partition("#")
    return resolve_local(cwd / expand_user(path, "project path"), subdir or None, version, options=options)
