"""Git URL sources: ``URL[#subdir]`` at ``-v VERSION``, checked out from the clone cache."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from proj.errors import SourceError, UsageError
from proj.sources.base import Source, check_subdir, subdir_path
from proj.sources.gitcache import GitCache
from proj.sources.urls import split_git_uri


def resolve_git(uri: str, version: str | None, *, options: dict[str, Any] | None = None,
                display_uri: str | None = None) -> Source:
    """Fetch ``uri`` into the cache and return the checkout of ``version`` (default branch if None).

    ``display_uri`` replaces the recorded URI (a local repository path given with ``-v``).
    """
    url, subdir = split_git_uri(uri)  # credentials off the raw string before any other parsing
    try:
        subdir = check_subdir(subdir)
    except UsageError as exc:
        raise UsageError(f"git source {url.url}: {exc}") from None
    cache = GitCache()
    found = cache.resolve(url, version)
    root = cache.checkout(url, found)
    project_dir = subdir_path(root, subdir, f"git source {url.url} at {found.commit[:12]}")
    if not project_dir.is_dir():
        _missing_subdir(url.url, version or found.branch, found.commit, root, subdir or "")
    recorded = display_uri or url.url + (f"#{subdir}" if subdir else "")
    return Source(uri=recorded, project_dir=project_dir,
                  kind="git", version=version, commit=found.commit, branch=found.branch, remote=url.url,
                  subdir=subdir, dirty=False, extra={"fetch": found.action})


def _missing_subdir(url: str, version: str | None, commit: str, root: Path, subdir: str) -> None:
    """One line naming the subdir, where it was looked for, and what is there instead."""
    parent = root / subdir
    while parent != root and not parent.is_dir():
        parent = parent.parent
    dirs = sorted(p.name for p in parent.iterdir() if p.is_dir() and p.name != ".git")
    where = f"{parent.relative_to(root)}/" if parent != root else "the top level"
    at = f"{version} ({commit[:12]})" if version else commit[:12]
    raise SourceError(f"git source {url} at {at}: no directory #{subdir}; directories at {where}: "
                      f"{', '.join(dirs[:12]) or 'none'}")

