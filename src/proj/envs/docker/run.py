"""Running one entry point in a container: create, stream its logs, wait, and always clean up.

Output is streamed by two log-follow threads (stdout and stderr apart) into the run's OutputSink.
Ctrl-C, or SIGTERM from ``proj runs cancel`` (raised here as Terminated), stops the container
(SIGTERM, then SIGKILL after a short grace) and removes it before the exception propagates, so the
runner can mark the run KILLED with nothing left running.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from proj.execution.process import OutputSink

STOP_GRACE = 3  # seconds between SIGTERM and SIGKILL, as for local process groups
# The entry point's command runs through bash when the image has it (as it does locally), else sh.
SHELL_WRAPPER = 'if command -v bash >/dev/null 2>&1; then exec bash -c "$1"; fi; exec sh -c "$1"'


@dataclass(frozen=True)
class ContainerSpec:
    """Everything ``containers.create`` needs for one run."""

    image: str
    command: str
    workdir: str
    environment: dict[str, str]
    volumes: list[str]  # "host:container:mode"
    labels: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)  # from -A, already SDK keywords
    name: str | None = None


def shell_entrypoint(command: str) -> list[str]:
    """The container's argv; the image's own ENTRYPOINT is replaced, since we run the MLproject command."""
    return ["/bin/sh", "-c", SHELL_WRAPPER, "proj", command]


def create_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """Keyword arguments for ``containers.create``: ours first, then -A options merged over them."""
    options = dict(spec.options)
    environment = dict(spec.environment)
    for item in options.pop("environment", []):
        key, _, value = item.partition("=")
        environment[key] = value
    kwargs: dict[str, Any] = {
        "image": spec.image, "entrypoint": shell_entrypoint(spec.command), "working_dir": spec.workdir,
        "environment": environment, "volumes": spec.volumes + options.pop("volumes", []),
        "labels": {**spec.labels, **options.pop("labels", {})}, "init": True, "detach": True,
        "stdin_open": False, "name": spec.name,
    }
    kwargs.update(options)
    return kwargs


def run_container(client: Any, spec: ContainerSpec, sink: OutputSink, *, keep: bool = False,
                  on_start: Callable[[int], None] | None = None) -> int:
    """Run the container to completion and return its exit code; remove it unless ``keep``."""
    container = client.containers.create(**create_kwargs(spec))
    try:
        container.start()
        if on_start is not None:
            _report_init_pid(client, container, on_start)
        readers = [_follow(client, container.id, stream, sink) for stream in ("stdout", "stderr")]
        code = _wait(container)
        for reader in readers:
            reader.join(timeout=5.0)
        return code
    except BaseException:
        stop(container)
        raise
    finally:
        if keep:
            print(f"proj: container {container.name} ({container.short_id}) kept", file=sys.stderr)
        else:
            remove(container)


def _report_init_pid(client: Any, container: Any, on_start: Callable[[int], None]) -> None:
    """Hand the container's init (a process group leader on this host) to the runner, so the reaper
    of a runner killed with -9 can stop the container like a local process group. Only for a local
    daemon: a remote daemon's pids mean nothing here."""
    if not str(client.api.base_url).startswith("http+docker://localhost"):
        return
    pid = int(client.api.inspect_container(container.id)["State"].get("Pid") or 0)
    if pid > 0:
        on_start(pid)


def _follow(client: Any, container_id: str, stream: str, sink: OutputSink) -> threading.Thread:
    """A daemon thread copying one of the container's streams to the sink until the container ends."""

    def pump() -> None:
        try:
            for data in client.api.logs(container_id, stdout=stream == "stdout", stderr=stream == "stderr",
                                        stream=True, follow=True):
                sink.write(stream, data)
        except Exception:  # the container was removed under us (cancel): the stream just ends
            pass

    thread = threading.Thread(target=pump, name=f"proj-docker-{stream}", daemon=True)
    thread.start()
    return thread


def _wait(container: Any) -> int:
    """Block until the container exits. Signals interrupt the wait (and raise) in the main thread."""
    result = container.wait()
    return int(result.get("StatusCode", 1))


def stop(container: Any) -> None:
    """SIGTERM (forwarded by the container's init), then SIGKILL after the grace; a 2nd Ctrl-C kills now."""
    try:
        container.stop(timeout=STOP_GRACE)
    except BaseException:  # noqa: BLE001 - an error or a second Ctrl-C: fall through to a forced removal
        try:
            container.kill()
        except Exception:
            pass


def remove(container: Any) -> None:
    try:
        container.remove(force=True)
    except Exception:  # already gone (e.g. removed by the user): nothing to clean up
        pass
