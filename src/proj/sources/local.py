"""Local directories, used in place, with their provenance: git state inside a work tree, else a snapshot."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from proj.errors import SourceError, UsageError
from proj.sources import provenance
from proj.sources.base import Source, check_subdir, subdir_path
from proj.sources.provenance import WorkTree


def resolve_local(path: Path, subdir: str | None, version: str | None, *, options: dict[str, Any]) -> Source:
    """A directory on disk (``path#subdir``); ``-v`` needs a git work tree."""
    path = path.resolve()
    if not path.exists():
        raise UsageError(f"project path {path} does not exist")
    if not path.is_dir():
        raise UsageError(f"project path {path} is not a directory")
    subdir = check_subdir(subdir)
    project_dir = subdir_path(path, subdir, f"project path {path}")
    if not project_dir.is_dir():
        raise UsageError(f"#{subdir}: no such directory in {path}")
    tree = provenance.find_worktree(project_dir)
    if version and tree is None:
        raise UsageError(f"-v/--version {version!r} needs a git repository; {path} is a plain directory")
    uri = str(path) + (f"#{subdir}" if subdir else "")
    if version and tree is not None:
        return _at_version(tree.top, project_dir, version, uri)
    source = Source(uri=uri, project_dir=project_dir, kind="local", subdir=subdir)
    if tree is None:
        if options.get("require_clean"):
            raise SourceError(f"--require-clean: {path} is not in a git work tree, so it cannot be checked for "
                              f"uncommitted changes")
        return _with_snapshot(source)
    return _with_worktree(source, provenance.inspect(tree), require_clean=bool(options.get("require_clean")))


def _at_version(top: Path, project_dir: Path, version: str, uri: str) -> Source:
    """``path -v VERSION``: fetched like ``file://`` into the cache; the user's checkout is not touched."""
    from proj.sources.git import resolve_git
    from proj.sources.urls import file_url

    rel = project_dir.relative_to(top).as_posix()
    fragment = "" if rel == "." else f"#{rel}"
    return resolve_git(file_url(str(top)) + fragment, version, display_uri=uri)


def _with_worktree(source: Source, tree: WorkTree, *, require_clean: bool) -> Source:
    """Commit, branch, remote, dirty flag, the uncommitted patch and the untracked files."""
    if require_clean:
        provenance.require_clean(tree)
    source.commit, source.branch, source.remote = tree.commit, tree.branch, tree.remote
    source.dirty, source.untracked = tree.dirty, list(tree.untracked)
    rel = source.project_dir.relative_to(tree.top).as_posix()
    source.extra.update(worktree=str(tree.top), repo_path=None if rel == "." else rel)
    if tree.dirty:
        source.artifacts[provenance.PATCH] = provenance.uncommitted_patch(tree)
    if tree.untracked:
        _attach_untracked(source, tree)
    return source


def _attach_untracked(source: Source, tree: WorkTree) -> None:
    """Untracked (not ignored) files are archived too, capped, so the run can be rebuilt later."""
    from proj.sources.snapshot import make_archive

    archive = make_archive(tree.top, tree.untracked)
    if archive.data is not None:
        source.artifacts[provenance.UNTRACKED] = archive.data
    source.extra["untracked_archive"] = archive.info


def _with_snapshot(source: Source) -> Source:
    """A directory outside git: a content snapshot is all we can keep. It is taken when a run is
    created (Source.collect_artifacts), not here: resolving also serves validate, env lock, re-planning
    workers and rejected runs, none of which keep it."""
    source.snapshot_root = source.project_dir
    return source
