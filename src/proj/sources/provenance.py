"""What a local git work tree looked like when a run started: commit, branch, remote, uncommitted changes.

Four cheap git calls at most (rev-parse, status, config, diff when dirty); the user's repository is
only read, never written (no index refresh is forced, no objects are added).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from proj.errors import SourceError
from proj.sources.gitcmd import git
from proj.sources.urls import parse_git_url

PATCH = "uncommitted.patch"
UNTRACKED = "untracked.tar.gz"
STORE_DIRS = (".proj/",)  # the default run store lives in the invoking directory: not project code


@dataclass
class WorkTree:
    """The state of a git work tree; ``changed`` holds ``git status`` lines of tracked changes."""

    top: Path
    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    changed: list[str] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)

    @property
    def dirty(self) -> bool:
        return bool(self.changed)


def find_worktree(path: Path) -> WorkTree | None:
    """The work tree containing ``path`` with its HEAD commit and branch; None outside git."""
    try:
        proc = git(["rev-parse", "--show-toplevel", "HEAD", "--symbolic-full-name", "HEAD"], path, check=False)
    except OSError:  # no git executable: treat like a plain directory
        return None
    lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
    if not lines or (proc.returncode != 0 and b"not a git repository" in proc.stderr):
        return None
    tree = WorkTree(top=Path(lines[0]))
    if proc.returncode == 0 and len(lines) >= 3:  # an unborn HEAD (no commit yet) prints the top only
        tree.commit = lines[1]
        tree.branch = lines[2].removeprefix("refs/heads/") if lines[2].startswith("refs/heads/") else None
    return tree


def inspect(tree: WorkTree) -> WorkTree:
    """Fill in the remote and the tracked changes / untracked files of the whole repository."""
    tree.remote = _remote(tree.top)
    out = git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], tree.top).stdout
    entries = out.decode("utf-8", "surrogateescape").split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        code, rel = entry[:2], entry[3:]
        if code[0] in "RC":
            i += 1  # renames and copies are followed by their old path
        if code == "??":
            if not rel.startswith(STORE_DIRS):
                tree.untracked.append(rel)
        elif code != "!!":
            tree.changed.append(f"{code.strip()} {rel}")
    return tree


def _remote(top: Path) -> str | None:
    """The ``origin`` URL (else the first remote), credentials removed."""
    proc = git(["config", "--get-regexp", r"^remote\..*\.url$"], top, check=False)
    urls = dict(line.split(" ", 1) for line in proc.stdout.decode().splitlines() if " " in line)
    url = urls.get("remote.origin.url") or next(iter(urls.values()), None)
    return parse_git_url(url).url if url else None


def uncommitted_patch(tree: WorkTree) -> bytes:
    """Staged and unstaged changes against HEAD, binary-safe: ``git apply`` on HEAD restores them."""
    if tree.commit is None:
        return b""
    return git(["diff", "--binary", "--no-color", "--no-ext-diff", "HEAD"], tree.top).stdout


def require_clean(tree: WorkTree) -> None:
    """``--require-clean``: refuse uncommitted changes to tracked files, naming a few of them."""
    if not tree.dirty:
        return
    shown = ", ".join(tree.changed[:5]) + (f" and {len(tree.changed) - 5} more" if len(tree.changed) > 5 else "")
    raise SourceError(f"--require-clean: {tree.top} has uncommitted changes ({shown}); commit or stash them, "
                      f"or run without --require-clean")

