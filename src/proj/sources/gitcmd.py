"""The one way proj runs the ``git`` executable: argv lists, no prompts, timeouts, credentials masked.

Plain subprocess calls, not GitPython, on the hot paths: a git call costs ~2 ms, ``import git`` ~60 ms.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from proj import settings
from proj.errors import GitFailed
from proj.execution.process import kill_group
from proj.redact import mask_url
from proj.sources.urls import GitUrl, mask_text

LOCAL_TIMEOUT = 120
ASKPASS = """#!/bin/sh
# Answers git's credential prompts from the environment of the one git process proj started.
case "$1" in Username*) printf '%s\\n' "$PROJ_GIT_USERNAME" ;; *) printf '%s\\n' "$PROJ_GIT_PASSWORD" ;; esac
"""


@dataclass
class Remote:
    """How to reach a remote: its URL (for masking and credentials) and where the askpass helper lives."""

    url: GitUrl
    askpass: Path | None = None


def git(args: list[str], cwd: Path | None = None, *, remote: Remote | None = None, check: bool = True,
        stdin: bytes | None = None, timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``git args`` and return its bytes output; a failure raises :class:`GitFailed` (masked)."""
    argv = ["git", *_config_flags(remote), *args]
    env = _environment(remote)
    limit = timeout or (settings.seconds("PROJ_GIT_TIMEOUT") if remote else LOCAL_TIMEOUT)
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=limit)
    except subprocess.TimeoutExpired:
        # git forks helpers (git-remote-https, ssh): stop the whole session, not just the parent.
        kill_group(proc.pid)
        proc.communicate()
        raise GitFailed(f"git {args[0]} timed out after {limit:.0f}s", "timed out") from None
    result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        detail = _last_line(err, remote)
        raise GitFailed(f"git {args[0]} failed: {detail}", detail)
    return result


def text(args: list[str], cwd: Path | None = None, *, remote: Remote | None = None) -> str:
    """``git`` for commands whose output is one short text value."""
    return git(args, cwd, remote=remote).stdout.decode("utf-8", "surrogateescape").strip()


def _config_flags(remote: Remote | None) -> list[str]:
    if remote is None:
        return []
    # Abort a connection that makes no progress (curl has no connect-timeout setting in git).
    stall = settings.seconds("PROJ_GIT_CONNECT_TIMEOUT")
    flags = ["-c", "http.lowSpeedLimit=1", "-c", f"http.lowSpeedTime={stall}",
             # Submodules over file:// are refused since git 2.38; the user already trusts this repo's code.
             "-c", "protocol.file.allow=always"]
    if remote.url.has_credentials:
        flags += ["-c", "credential.helper="]  # a user's helper must not store the token we were given
    return flags


def _environment(remote: Remote | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in ("GIT_SSH", "GIT_SSH_COMMAND")}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")  # never prompt; stable messages to show
    if remote is None:
        return env
    ssh = env.get("GIT_SSH_COMMAND", "ssh")
    connect = settings.seconds("PROJ_GIT_CONNECT_TIMEOUT")
    env["GIT_SSH_COMMAND"] = f"{ssh} -o BatchMode=yes -o ConnectTimeout={connect}"
    if remote.url.has_credentials and remote.askpass is not None:
        env.update(GIT_ASKPASS=str(remote.askpass), PROJ_GIT_USERNAME=remote.url.username or "",
                   PROJ_GIT_PASSWORD=remote.url.password or "")
    return env


def _last_line(err: bytes, remote: Remote | None) -> str:
    """The most telling line of git's stderr: the last ``fatal:``/``error:`` one, else the last line."""
    lines = [line.strip() for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
    telling = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines or ["(no output)"]
    line = telling[-1]
    return mask_text(line, remote.url) if remote else mask_url(line)


def write_askpass(path: Path) -> Path:
    """The askpass helper (it holds no secret: it echoes two variables of its caller's environment)."""
    if path.is_file() and path.read_text() == ASKPASS:
        return path
    from proj.paths import atomic_write

    atomic_write(path, ASKPASS)
    path.chmod(0o755)
    return path
