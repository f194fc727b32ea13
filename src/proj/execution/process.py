"""The one subprocess wrapper: own process group, output teed to terminal and logs, signal escalation.

The child runs in a new session so a Ctrl-C at the terminal reaches only proj; proj then stops the
whole child group (SIGINT, then SIGTERM, then SIGKILL, with short waits) and re-raises, so the caller
can mark the run KILLED. Nothing is left running behind a finished or interrupted run: on Linux proj is a
child subreaper, so descendants that left the group (``setsid``, double fork) are re-parented to it and
stopped too, as is every process whose environment carries the run's marker (``PROJ_RUN_ID=<id>``).
A failed write of the output (a full disk) never stops the draining of the child's pipes: the rest is
discarded, the child is stopped, and the sink's ``failure`` says why.
"""
from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from proj.execution.liveness import proc_stat

GRACE_SECONDS = (3.0, 3.0)  # after SIGINT, then after SIGTERM, before SIGKILL
RUN_MARKER = "PROJ_RUN_ID"  # in every entry point's environment: how a reaper finds its processes
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


class Terminated(BaseException):
    """Raised in the main thread when proj receives SIGTERM; handled like Ctrl-C. Internal, not a user error:
    a BaseException (as KeyboardInterrupt) so that no ``except Exception`` swallows it; the runner marks
    the run KILLED and exits 143."""


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
        self._paths = {"stdout": stdout_log, "stderr": stderr_log}
        self._files: dict[str, BinaryIO | None] = {
            "stdout": open(stdout_log, "ab") if stdout_log else None,
            "stderr": open(stderr_log, "ab") if stderr_log else None,
        }
        self._echo = echo
        self._stdout_to_stderr = stdout_to_stderr  # keeps our stdout clean for --json output
        self._lock = threading.Lock()
        self.failure: str | None = None  # why the output could not be kept (the first write error)
        self.failed = threading.Event()

    def write(self, stream: str, data: bytes) -> None:
        """Never raises: a log that cannot be written is dropped (and ``failure`` set), the rest goes on."""
        with self._lock:
            fh = self._files[stream]
            if fh is not None:
                try:
                    fh.write(data)
                    fh.flush()
                except OSError as exc:
                    self._drop(stream, exc)
            if self._echo:
                out = sys.stdout if stream == "stdout" and not self._stdout_to_stderr else sys.stderr
                try:
                    out.buffer.write(data)
                    out.flush()
                except (AttributeError, ValueError, OSError):
                    pass  # a closed or non-binary terminal must not break the run

    def _drop(self, stream: str, exc: OSError) -> None:
        fh, self._files[stream] = self._files[stream], None
        if fh is not None:
            _close_quietly(fh)
        if self.failure is None:
            self.failure = write_failure(self._paths[stream], exc)
            self.failed.set()

    def close(self) -> None:
        for stream, fh in self._files.items():
            if fh is not None:
                self._files[stream] = None
                _close_quietly(fh)

    def __enter__(self) -> "OutputSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_failure(path: Path | None, exc: OSError) -> str:
    """One line for a failed write: "no space left on device: <path>" for a full disk."""
    where = str(path or exc.filename or "output")
    if exc.errno == errno.ENOSPC:
        return f"no space left on device: {where}"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded: {where}"
    return f"cannot write {where}: {exc.strerror or exc}"


def _close_quietly(fh: BinaryIO) -> None:
    try:
        fh.close()  # flushes what is buffered, which fails again on a full disk
    except OSError:
        pass


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

    On KeyboardInterrupt or :class:`Terminated` the child group is stopped before re-raising. When the
    sink cannot write (``sink.failed``), the child is stopped too; the caller reads ``sink.failure``.
    Either way, and after a normal exit, every process the child left behind is stopped.
    """
    with as_subreaper():
        return _run(argv, cwd=cwd, env=env, sink=sink, on_start=on_start)


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], sink: OutputSink,
         on_start: Callable[[int], None] | None) -> int:
    known = set(children_of(os.getpid()))  # ours before the child: never taken for its orphans
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    leftovers = _Leftovers(proc.pid, env.get(RUN_MARKER), known)
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=_pump, args=(os.dup(proc.stdout.fileno()), "stdout", sink), daemon=True),
        threading.Thread(target=_pump, args=(os.dup(proc.stderr.fileno()), "stderr", sink), daemon=True),
    ]
    proc.stdout.close()
    proc.stderr.close()
    for reader in readers:
        reader.start()
    try:
        if on_start is not None:  # it records the group (a write that can fail): the child is stopped then
            on_start(proc.pid)
        code = _wait(proc, sink)
    except BaseException:
        stop_group(proc)
        leftovers.stop()
        _join(readers)
        raise
    leftovers.stop()
    _join(readers)
    return code if code >= 0 else 128 - code


def _wait(proc: subprocess.Popen[bytes], sink: OutputSink) -> int:
    """Wait for the child; if its output can no longer be kept, stop it rather than let it run unrecorded."""
    while True:
        try:
            return proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            if sink.failed.is_set():
                stop_group(proc)
                return proc.wait()


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the child's whole process group: SIGINT, then SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGINT, GRACE_SECONDS[0]), (signal.SIGTERM, GRACE_SECONDS[1]), (signal.SIGKILL, 5.0)):
        kill_group(proc.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                if proc.wait(timeout=0.05) is not None and not _group_alive(proc.pid):
                    return
            except subprocess.TimeoutExpired:
                continue
            except BaseException:  # a second Ctrl-C: escalate at once
                break


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal the whole process group ``pgid`` -- its leader may be gone, the group lives while any member
    does (and its id cannot be reused meanwhile). False when no such group exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    return True


def _group_alive(pgid: int) -> bool:
    return kill_group(pgid, 0)


PR_GET_CHILD_SUBREAPER = 37
_subreaper_lock = threading.Lock()
_subreaper_users: list[int] = [0, 0]  # [runs in progress, the setting before the first of them]


@lru_cache(maxsize=1)
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only here: start-up stays light

    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@contextmanager
def as_subreaper() -> Iterator[None]:
    """While a child runs, make this process a child subreaper (Linux): descendants whose parent dies (a
    double fork, a ``setsid`` daemon) are re-parented to proj instead of init, so proj can still find and
    stop them. A program that embeds proj (the Python API) gets its own setting back afterwards."""
    libc = _libc()
    if libc is None:
        yield
        return
    import ctypes

    with _subreaper_lock:
        if _subreaper_users[0] == 0:
            before = ctypes.c_int(0)
            libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(before), 0, 0, 0)
            _subreaper_users[1] = before.value
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        _subreaper_users[0] += 1
    try:
        yield
    finally:
        with _subreaper_lock:
            _subreaper_users[0] -= 1
            if _subreaper_users[0] == 0:
                libc.prctl(PR_SET_CHILD_SUBREAPER, _subreaper_users[1], 0, 0, 0)


def _all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _live(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat.state not in ("Z", "X")  # a zombie has stopped already


def children_of(pid: int) -> list[int]:
    return [p for p in _all_pids() if (stat := proc_stat(p)) is not None and stat.ppid == pid]


def descendants_of(roots: Iterable[int]) -> set[int]:
    """Every live process below ``roots`` (not the roots themselves), by walking /proc once."""
    below: dict[int, list[int]] = {}
    for pid in _all_pids():
        stat = proc_stat(pid)
        if stat is not None:
            below.setdefault(stat.ppid, []).append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in below.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {pid for pid in found if _live(pid)}


def processes_of_run(run_id: str) -> set[int]:
    """Live processes whose environment holds ``PROJ_RUN_ID=<run_id>``: the run's descendants, wherever
    they moved (another session, re-parented to init). Reading other users' environ needs root."""
    needle = f"{RUN_MARKER}={run_id}".encode()
    me = os.getpid()
    found = set()
    for pid in _all_pids():
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if needle in environ.split(b"\0") and _live(pid):
            found.add(pid)
    return found


def group_members(pgid: int) -> set[int]:
    return {pid for pid in _all_pids() if (stat := proc_stat(pid)) is not None and stat.pgid == pgid
            and stat.state not in ("Z", "X")}


def stop_run_processes(run_id: str, pgid: int | None = None, pgid_start: str | None = None) -> None:
    """What a reaper does for a run whose runner died: SIGKILL its process group (whether or not the
    leader lives) and every process carrying its marker. The group is signalled only while it is
    provably the run's -- the leader is the recorded one, or a member carries the marker -- so a group
    id the kernel handed to someone else after the run's group died is never hit."""
    for _ in range(20):  # a process that forks while we kill: look again until nothing is left
        marked = processes_of_run(run_id)
        group = pgid if pgid and _is_runs_group(pgid, pgid_start, marked) else None
        if not marked and (group is None or not _group_alive(group)):
            return
        if group is not None:
            kill_group(group, signal.SIGKILL)
        _signal_each(marked, signal.SIGKILL)
        time.sleep(0.05)


def _is_runs_group(pgid: int, pgid_start: str | None, marked: set[int]) -> bool:
    leader = proc_stat(pgid)
    if leader is not None and pgid_start is not None and leader.start == pgid_start:
        return True
    return bool(group_members(pgid) & marked)


def _signal_each(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class _Leftovers:
    """What a child may leave behind: its process group, processes carrying the run's marker, and (with
    proj a subreaper) orphans re-parented to proj. ``stop`` ends them all: SIGTERM, a grace, SIGKILL."""

    def __init__(self, pgid: int, run_id: str | None, known: set[int]) -> None:
        self.pgid, self.run_id, self.known = pgid, run_id, known | {pgid}

    def others(self) -> set[int]:
        me = os.getpid()
        adopted = [pid for pid in children_of(me) if pid not in self.known]
        found = {pid for pid in adopted if _live(pid)} | descendants_of(adopted)
        if self.run_id:
            found |= processes_of_run(self.run_id)
        return found - {me}

    def alive(self) -> bool:
        self._reap_adopted()
        return _group_alive(self.pgid) or bool(self.others())

    def signal(self, sig: int) -> None:
        kill_group(self.pgid, sig)
        _signal_each(self.others(), sig)

    def stop(self) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS[1]
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(20):
            if not self.alive():
                break
            self.signal(signal.SIGKILL)
            time.sleep(0.05)
        self._reap_adopted()

    def _reap_adopted(self) -> None:
        """Orphans re-parented to proj become its zombies when they end: collect them (only those)."""
        for pid in children_of(os.getpid()):
            if pid not in self.known:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass


def _join(readers: list[threading.Thread]) -> None:
    for reader in readers:
        reader.join(timeout=5.0)
