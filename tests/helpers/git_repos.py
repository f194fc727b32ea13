"""Helpers (no tests): real git repositories in tmp dirs for the git and provenance tests."""
from __future__ import annotations

import subprocess
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1"}
PRINT_VERSION = """\
name: subproj
entry_points:
  main:
    command: "python show.py"
"""
SHOW = "print('version:', open('version.txt').read().strip())\n"


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; return stdout (raises on failure)."""
    import os

    proc = subprocess.run(["git", "-c", "protocol.file.allow=always", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **GIT_ENV}, check=False)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)


def commit(repo: Path, files: dict[str, str | bytes], message: str) -> str:
    """Write ``files``, commit them all, return the new commit's full sha."""
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path) -> dict[str, str]:
    """A repo with a subdir project: v1 (tagged), a ``dev`` branch, then v2 on main. Returns the shas."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    shas = {"v1": commit(path, {"sub/MLproject": PRINT_VERSION, "sub/show.py": SHOW, "sub/version.txt": "one\n",
                                "README": "top\n"}, "one")}
    git(path, "tag", "v1.0")
    git(path, "checkout", "-q", "-b", "dev")
    shas["dev"] = commit(path, {"sub/version.txt": "dev\n"}, "dev")
    git(path, "checkout", "-q", "main")
    shas["v2"] = commit(path, {"sub/version.txt": "two\n"}, "two")
    return shas


def file_url(path: Path) -> str:
    return f"file://{path}"
