"""The one subprocess wrapper: own process group, output teed to terminal and logs, signal escalation.

The child runs in a new session so a Ctrl-C at the terminal reaches only proj; proj then stops the
whole child group (SIGINT, then SIGTERM, then SIGKILL, with short waits) and re-raises, so the caller
can mark the run KILLED. Nothing is left running behind a finished or interrupted run.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Callable

GRACE_SECONDS = (3.0, 3.0)  # after SIGINT, then after SIGTERM, before SIGKILL


class Terminated(BaseException):
    """Raised in the main thread when proj receives SIGTERM; handled like Ctrl-C."""


def install_sigterm_handler() -> None:
    """Turn SIGTERM into an exception so every exit path can record a final run status."""

    def _raise(signum: int, frame: object) -> None:
        raise Terminated(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)


@lru_cache(maxsize=1)
def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"


def shell_argv(command: str) -> list[str]:
    """How an entry point's command runs: through bash (as MLflow does), else sh."""
    return [_shell(), "-c", command]


class OutputSink:
    """Receives a child's output: copies it to the terminal and appends it to the run's log files."""

    def __init__(self, stdout_log: Path | None = None, stderr_log: Path | None = None, *, echo: bool = True,
                 stdout_to_stderr: bool = False) -> None:
        self._files: dict[str, BinaryIO | None] = {
            "stdout": open(stdout_log, "ab") if stdout_log else None,
            "stderr": open(stderr_log, "ab") if stderr_log else None,
        }
        self._echo = echo
        self._stdout_to_stderr = stdout_to_stderr  # keeps our stdout clean for --json output
        self._lock = threading.Lock()

    def write(self, stream: str, data: bytes) -> None:
        with self._lock:
            fh = self._files[stream]
            if fh is not None:
                fh.write(data)
                fh.flush()
            if self._echo:
                out = sys.stdout if stream == "stdout" and not self._stdout_to_stderr else sys.stderr
                try:
                    out.buffer.write(data)
                    out.flush()
                except (AttributeError, ValueError, OSError):
                    pass  # a closed or non-binary terminal must not break the run

    def close(self) -> None:
        for fh in self._files.values():
            if fh is not None:
                fh.close()

    def __enter__(self) -> "OutputSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pump(fd: int, stream: str, sink: OutputSink) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        sink.write(stream, data)
    os.close(fd)


def run_process(argv: list[str], *, cwd: Path, env: dict[str, str], sink: OutputSink,
                on_start: Callable[[int], None] | None = None) -> int:
    """Run ``argv`` in its own process group, teeing output; return a shell-style exit code.

    On KeyboardInterrupt or :class:`Terminated` the child group is stopped before re-raising.
    """
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=_pump, args=(os.dup(proc.stdout.fileno()), "stdout", sink), daemon=True),
        threading.Thread(target=_pump, args=(os.dup(proc.stderr.fileno()), "stderr", sink), daemon=True),
    ]
    proc.stdout.close()
    proc.stderr.close()
    for reader in readers:
        reader.start()
    if on_start is not None:
        on_start(proc.pid)
    try:
        code = proc.wait()
    except BaseException:
        stop_group(proc)
        _join(readers)
        raise
    _reap_leftovers(proc.pid)
    _join(readers)
    return code if code >= 0 else 128 - code


def stop_group(proc: subprocess.Popen) -> None:
    """Stop the child's whole process group: SIGINT, then SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGINT, GRACE_SECONDS[0]), (signal.SIGTERM, GRACE_SECONDS[1]), (signal.SIGKILL, 5.0)):
        _signal_group(proc.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                if proc.wait(timeout=0.05) is not None and not _group_alive(proc.pid):
                    return
            except subprocess.TimeoutExpired:
                continue
            except BaseException:  # a second Ctrl-C: escalate at once
                break


def _reap_leftovers(pgid: int) -> None:
    """Background processes the entry point left in its group are stopped with it."""
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS[1]
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _join(readers: list[threading.Thread]) -> None:
    for reader in readers:
        reader.join(timeout=5.0)
