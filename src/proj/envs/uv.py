"""The one way proj runs uv (virtualenv locks and installs, a conda env's ``pip:`` part).

Every call gets the same environment: short network limits (an unreachable index fails in seconds with
uv's message), no Python downloads, pip's index settings mapped to uv's, the caller's offline and index
settings passed through (``UV_OFFLINE``, ``UV_INDEX_URL``, ...). uv runs in its own process group, its
output streamed line by line into the build log, and is killed with proj (even by kill -9, through the
parent-death signal) so nothing keeps writing into a dead build. A failure is one EnvError with uv's words.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from proj.envs.base import BuildLog
from proj.errors import EnvError
from proj.execution.process import kill_group

# Short network limits: an unreachable index fails in seconds with uv's message, not after a minute.
UV_DEFAULTS = {"UV_PYTHON_DOWNLOADS": "never", "UV_HTTP_TIMEOUT": "15", "UV_HTTP_RETRIES": "1", "NO_COLOR": "1"}
# pip's index settings, honoured for users who configured pip (uv reads only its own UV_* names).
PIP_TO_UV = (("PIP_INDEX_URL", "UV_DEFAULT_INDEX", "--index-url"), ("PIP_EXTRA_INDEX_URL", "UV_INDEX", "--extra-index-url"),
             ("PIP_FIND_LINKS", "UV_FIND_LINKS", "--find-links"))


@lru_cache(maxsize=1)
def uv_bin() -> str:
    """The uv binary shipped by the ``uv`` package, else one on PATH."""
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise EnvError("uv is not available: install the `uv` package (pip install uv)") from None
        return found


def uv_available() -> bool:
    try:
        return bool(uv_bin())
    except EnvError:
        return False


def uv_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment uv runs in: the caller's, plus proj's defaults where the caller set nothing."""
    env = dict(os.environ if base is None else base)
    for key, value in UV_DEFAULTS.items():
        env.setdefault(key, value)
    env.pop("VIRTUAL_ENV", None)  # uv must target the --python we give it, not proj's own venv
    return env


def index_args(env: dict[str, str] | None = None) -> list[str]:
    """pip's index settings as uv options, unless the uv equivalent is set."""
    env = dict(os.environ if env is None else env)
    args: list[str] = []
    for pip_var, uv_var, flag in PIP_TO_UV:
        if env.get(pip_var) and not env.get(uv_var) and not (uv_var == "UV_DEFAULT_INDEX" and env.get("UV_INDEX_URL")):
            for value in env[pip_var].split():
                args += [flag, value]
    if _truthy(env.get("PIP_NO_INDEX")) and not env.get("UV_NO_INDEX"):
        args.append("--no-index")
    return args


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def run_uv(command: list[str], args: list[str], log: BuildLog, doing: str, *, cwd: Path,
           quiet_stdout: bool = False) -> None:
    """``uv <command> <index options> <args>`` (``command`` e.g. ``["pip", "compile"]``), as :func:`run_tool`."""
    run_tool([uv_bin(), *command, *index_args(), *args], log, doing, cwd=cwd, quiet_stdout=quiet_stdout)


def run_tool(argv: list[str], log: BuildLog, doing: str, *, cwd: Path, quiet_stdout: bool = False) -> None:
    """Run one build tool, streaming its merged output into ``log``; raise EnvError with its message."""
    log.write(f"$ {' '.join(argv)}")
    out, err = (subprocess.DEVNULL, subprocess.PIPE) if quiet_stdout else (subprocess.PIPE, subprocess.STDOUT)
    # Its own process group, so an interrupted build stops everything it started (uv's build backends too).
    proc = subprocess.Popen(argv, cwd=cwd, env=uv_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                            text=True, errors="replace", preexec_fn=_die_with_parent, start_new_session=True)
    lines: list[str] = []
    try:
        stream = proc.stderr if quiet_stdout else proc.stdout
        assert stream is not None
        for line in stream:
            lines.append(line.rstrip("\n"))
            log.write("  " + line)  # indented: the tool's words, not proj's (its "error:" is not ours)
        code = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    if code != 0:
        raise EnvError(f"{doing} failed: {tool_message(lines)}")


def _kill_group(proc: subprocess.Popen[str]) -> None:
    if not kill_group(proc.pid):
        proc.kill()
    proc.wait()


def tool_message(lines: list[str]) -> str:
    """The part of a tool's output a person needs: uv's ``error:``/``cause:``/``hint:`` block, else the tail."""
    meaningful = [line.strip() for line in lines if line.strip() and not line.startswith("$ ")]
    start = next((i for i, line in enumerate(meaningful) if line.startswith(("error:", "ERROR:"))), None)
    chosen = meaningful[start:] if start is not None else meaningful[-3:]
    chosen = [line for line in chosen if not line.startswith("warning: The `--pylock` option")]
    text = " ".join(chosen) or "no output"
    return text if len(text) <= 600 else text[:597] + "..."


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when proj dies, so a killed build stops writing into its directory."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
