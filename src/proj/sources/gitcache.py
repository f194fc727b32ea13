"""The clone cache: one bare repository per normalised URL, and one read-only checkout per commit.

Layout under ``<cache>/git``::

    repos/<key>/                 bare repository; origin = the credential-free URL; fetched under a lock
    repos/<key>.lock             flock held while cloning, fetching, resolving and copying out
    repos/<key>.used             touched on every use
    checkouts/<key>/<commit>/    a checkout of exactly that commit (+ submodules), published by rename
    checkouts/<key>/<commit>.used  touched on every use: ``proj cache prune`` goes by its mtime

A checkout is built aside (``.tmp-…-<pid>``) and renamed into place, so a run sees a complete tree or
none; once published it is shared by every run of that commit and never modified by proj again.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from proj.errors import GitFailed, SourceError
from proj.execution.liveness import is_alive
from proj.locks import busy, file_lock
from proj.paths import cache
from proj.sources.gitcmd import Remote, git, text, write_askpass
from proj.sources.urls import GitUrl, cache_key

FULL_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
BRANCHES = "refs/remotes/origin/"
TAGS = "refs/tags/"


@dataclass
class Resolved:
    """A version pinned to a commit in the cache; ``action`` says what reaching it cost."""

    key: str
    commit: str
    branch: str | None
    action: str  # "cloned", "fetched" or "cached" (a known full commit needs no network)


class GitCache:
    """Clones, fetches and checks out repositories under ``<cache>/git``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache().git
        self.repos = self.root / "repos"
        self.checkouts = self.root / "checkouts"

    def remote(self, url: GitUrl) -> Remote:
        askpass = write_askpass(self.root / "askpass.sh") if url.has_credentials else None
        return Remote(url, askpass)

    def resolve(self, url: GitUrl, version: str | None) -> Resolved:
        """Bring the cached clone up to date (as little as needed) and pin ``version`` to a commit."""
        key = cache_key(url.url)
        repo = self.repos / key
        remote = self.remote(url)
        self.repos.mkdir(parents=True, exist_ok=True)
        _remove_stale(self.repos)
        with file_lock(self.repos / f"{key}.lock"):
            if not (repo / "HEAD").is_file():
                self._clone(repo, remote)
                action = "cloned"
            elif version and FULL_SHA.match(version) and _has_commit(repo, version):
                action = "cached"
            else:
                _fetch(repo, remote)
                action = "fetched"
            commit, branch = _pin(repo, url, version)
        _touch(self.repos / f"{key}.used")
        return Resolved(key, commit, branch, action)

    def checkout(self, url: GitUrl, found: Resolved) -> Path:
        """The shared checkout of ``found.commit``, built (with submodules) on first use."""
        dest = self.checkouts / found.key / found.commit
        if not dest.is_dir():
            self._build_checkout(url, found, dest)
        _touch(dest.with_name(f"{found.commit}.used"))
        return dest

    def _clone(self, repo: Path, remote: Remote) -> None:
        """First use: an empty bare repository set up aside, fetched, then renamed into place."""
        import git as gitpython  # only on the cold path: importing GitPython costs ~60 ms

        tmp = repo.with_name(f".tmp-{repo.name}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            bare = gitpython.Repo.init(tmp, bare=True)
            bare.create_remote("origin", remote.url.url)  # credential-free: this lands in .git/config
            with bare.config_writer() as config:
                config.add_value('remote "origin"', "fetch", f"+{TAGS}*:{TAGS}*")
                config.set_value("gc", "auto", "0")  # checkouts are copied out while others fetch
            _fetch(tmp, remote)
            _set_default_branch(tmp, remote)
            os.rename(tmp, repo)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _build_checkout(self, url: GitUrl, found: Resolved, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(dest.parent)
        tmp = dest.with_name(f".tmp-{found.commit[:12]}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with file_lock(self.repos / f"{found.key}.lock"):  # a fetch must not repack under the copy
                git(["clone", "-q", "--no-checkout", str(self.repos / found.key), str(tmp)])
            git(["checkout", "-q", "--detach", found.commit], tmp)
            git(["remote", "set-url", "origin", url.url], tmp)  # relative submodule URLs resolve against it
            if (tmp / ".gitmodules").is_file():
                _submodules(tmp, self.remote(url))
            _make_read_only(tmp)
            _publish(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


    def entries(self) -> list[Entry]:
        """Every published repository and checkout, with its last use."""
        found = [Entry("repo", p, p.name, None, _used(self.repos / f"{p.name}.used", p))
                 for p in _children(self.repos)]
        for key_dir in _children(self.checkouts):
            found += [Entry("checkout", p, key_dir.name, p.name, _used(p.with_name(f"{p.name}.used"), p))
                      for p in _children(key_dir)]
        return found

    def prune(self, older_than_days: float, *, everything: bool = False, dry_run: bool = False) -> list[Entry]:
        """Remove entries unused for ``older_than_days`` (all with ``everything``) and dead builds' leftovers."""
        cutoff = time.time() - older_than_days * 86400
        doomed = [e for e in self.entries() if everything or e.last_used < cutoff]
        kept_keys = {e.key for e in self.entries() if e.kind == "checkout" and e not in doomed}
        # A repository stays while a checkout of it stays: the checkout's origin points at the same URL.
        doomed = [e for e in doomed if e.kind == "checkout" or e.key not in kept_keys]
        doomed = [e for e in doomed if not busy(e.path)]  # a checkout a running run uses stays
        in_use = {e.key for e in self.entries() if e.kind == "checkout" and busy(e.path)}
        doomed = [e for e in doomed if e.kind == "checkout" or e.key not in in_use]
        if dry_run:
            return doomed
        for entry in doomed:
            self._remove(entry)
        for folder in [self.repos, *_children(self.checkouts)]:
            _remove_stale(folder)
        return doomed

    def _remove(self, entry: Entry) -> None:
        lock = self.repos / f"{entry.key}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(lock):  # never pull a repository from under a fetch
            shutil.rmtree(entry.path, ignore_errors=True)
            entry.path.with_name(f"{entry.path.name}.used").unlink(missing_ok=True)
            if entry.kind == "checkout" and not any(_children(entry.path.parent)):
                shutil.rmtree(entry.path.parent, ignore_errors=True)


@dataclass(frozen=True)
class Entry:
    """One published cache entry: a bare repository or a per-commit checkout."""

    kind: str  # "repo" or "checkout"
    path: Path
    key: str
    commit: str | None
    last_used: float

    def size(self) -> int:
        return sum(p.lstat().st_size for p in self.path.rglob("*") if not p.is_dir())


def _children(folder: Path) -> list[Path]:
    """Published entries only: directories not being built (``.tmp-…``)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _used(stamp: Path, fallback: Path) -> float:
    try:
        return stamp.stat().st_mtime
    except OSError:
        return fallback.stat().st_mtime


def _fetch(repo: Path, remote: Remote) -> None:
    try:
        git(["fetch", "-q", "--prune", "origin"], repo, remote=remote)
    except GitFailed as exc:
        raise SourceError(f"git source {remote.url.url}: cannot fetch: {exc.detail}") from None


def _set_default_branch(repo: Path, remote: Remote) -> None:
    """Remember the remote's default branch (``refs/remotes/origin/HEAD``); empty repos have none."""
    try:
        git(["remote", "set-head", "origin", "--auto"], repo, remote=remote)
    except GitFailed:
        pass


def _has_commit(repo: Path, sha: str) -> bool:
    return git(["cat-file", "-e", f"{sha}^{{commit}}"], repo, check=False).returncode == 0


def _pin(repo: Path, url: GitUrl, version: str | None) -> tuple[str, str | None]:
    """(commit, branch) for a branch, tag, full or short commit; the default branch when None."""
    if version is None:
        return _default_branch(repo, url)
    if version.startswith("-") or not version.strip() or any(c.isspace() for c in version):
        raise _no_such_version(repo, url, version)
    candidates = [f"{BRANCHES}{version}", f"{TAGS}{version}", version]
    query = "".join(f"{c}^{{commit}}\n" for c in candidates).encode()
    lines = git(["cat-file", "--batch-check=%(objectname)"], repo, stdin=query).stdout.decode().splitlines()
    for candidate, line in zip(candidates, lines, strict=True):  # batch-check answers one line per query line
        sha = line.split()[0] if line else ""
        if FULL_SHA.match(sha):
            return sha, version if candidate.startswith(BRANCHES) else None
    raise _no_such_version(repo, url, version)


def _default_branch(repo: Path, url: GitUrl) -> tuple[str, str | None]:
    out = text(["for-each-ref", "--format=%(objectname) %(symref)", f"{BRANCHES}HEAD"], repo)
    if not out:
        branches = _names(repo, BRANCHES)
        if not branches:
            raise SourceError(f"git source {url.url}: the repository has no branches (nothing committed yet?)")
        raise SourceError(f"git source {url.url}: no default branch; pick one with -v: {', '.join(branches[:10])}")
    sha, _, symref = out.partition(" ")
    return sha, symref.removeprefix(BRANCHES) or None


def _no_such_version(repo: Path, url: GitUrl, version: str) -> SourceError:
    """One line naming the version and the closest branch/tag names (or some of them)."""
    import difflib

    branches, tags = _names(repo, BRANCHES), _names(repo, TAGS)
    close = difflib.get_close_matches(version, branches + tags, n=5, cutoff=0.5)
    if close:
        hint = f"did you mean {', '.join(close)}?"
    else:
        hint = f"branches: {', '.join(branches[:8]) or 'none'}; tags: {', '.join(tags[-8:]) or 'none'}"
    return SourceError(f"git source {url.url}: no branch, tag or commit {version!r}; {hint}")


def _names(repo: Path, prefix: str) -> list[str]:
    out = text(["for-each-ref", "--format=%(refname)", prefix], repo)
    names = [line.removeprefix(prefix) for line in out.splitlines()]
    return [n for n in names if n != "HEAD"]


def _submodules(checkout: Path, remote: Remote) -> None:
    try:
        git(["submodule", "update", "--init", "--recursive", "-q"], checkout, remote=remote)
    except GitFailed as exc:
        raise SourceError(f"git source {remote.url.url}: cannot fetch submodules: {exc.detail}") from None


def _make_read_only(tree: Path) -> None:
    """Tracked files become read-only so a run cannot edit code another run of this commit uses.

    Directories stay writable: projects that write outputs next to their code still work.
    """
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = Path(dirpath, name)
            if name != ".git" and not path.is_symlink():
                path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _publish(tmp: Path, dest: Path) -> None:
    """Rename into place; if a concurrent run published the same commit first, keep theirs."""
    try:
        os.rename(tmp, dest)
    except OSError:
        if not dest.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(folder: Path) -> None:
    """Leftovers of builds whose process died (kill -9, power loss) are removed, never reused."""
    for child in folder.glob(".tmp-*"):
        pid = child.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not is_alive(int(pid), None):
            shutil.rmtree(child, ignore_errors=True)




def _touch(path: Path) -> None:
    try:
        path.touch()
    except OSError:
        pass
