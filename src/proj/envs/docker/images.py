"""The Docker images proj built, as entries of ``proj env list|prune``.

Images live in the daemon, not in the env cache, so the cache keeps a *record* of each one: a small
file ``<cache>/docker/used/<image id>``, created when a run builds or uses the image and appended
to (one byte) on every run. Its mtime is "last used" and its size the run count, so the warm
``proj run`` path pays one ``open``/``write`` and no daemon round trip.

The records also scope what ``proj env`` touches. A daemon is shared by every proj cache (other
users, CI jobs, parallel tests), so only images *this* cache recorded are listed and pruned, and of
those only images proj itself built (a ``proj/`` tag, or the ``dev.proj.built-by=proj`` label of a
base built from a project's Dockerfile): a base like ``python:3.11-slim`` is never removed.

The docker SDK is imported only when there are records *and* a daemon looks reachable (its socket
exists, or DOCKER_HOST names a remote one), and every daemon call has a short timeout.
"""
from __future__ import annotations

import os
import re
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from proj import settings
from proj.envs.entry import EnvEntry
from proj.locks import busy, in_use
from proj.paths import cache

BACKEND = "docker"
LABEL = "dev.proj"  # = proj.envs.docker.context.LABEL; not imported, to keep `proj env list` off the build code
BUILT_BY = f"{LABEL}.built-by"
RUN_ID = f"{LABEL}.run-id"
DEFAULT_SOCKET = "/var/run/docker.sock"


def record(image_id: str) -> Path:
    """The record file of an image (named by the hex digest of its ID)."""
    return cache().docker_used / image_id.split(":")[-1]


def remember(image_id: str | None) -> None:
    """Create the record of an image that was just built, without counting a run."""
    _append(image_id, b"")


def _append(image_id: str | None, data: bytes) -> None:
    """One O_APPEND write: concurrent runs never lose a count, and the write itself bumps the mtime."""
    if not image_id:
        return
    path = record(image_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if data:
                os.write(fd, data)
        finally:
            os.close(fd)
    except OSError:
        pass  # bookkeeping only: a read-only cache must not fail the run


@contextmanager
def lease(*image_ids: str | None) -> Iterator[None]:
    """Count a run of these images and hold them for its duration, so ``prune`` leaves them alone."""
    with ExitStack() as stack:
        for image_id in dict.fromkeys(i for i in image_ids if i):
            _append(image_id, b".")
            stack.enter_context(in_use(record(image_id)))
        yield


@dataclass
class Image:
    """A proj-built image this cache recorded: its row, and the references removing it deletes."""

    entry: EnvEntry
    refs: list[str]
    parent: str
    is_project: bool


@dataclass
class Inventory:
    """What the daemon holds for this cache; ``note`` says why it could not be asked, if so."""

    images: list[Image] = field(default_factory=list)
    client: Any = None
    note: str | None = None
    listed_at: float = 0.0
    all_ids: set[str] = field(default_factory=set)


def inventory() -> Inventory:
    """The recorded proj-built images (one ``GET /images/json``); empty, with a note, when no daemon answers."""
    records = _records()
    if not records:
        return Inventory()  # this cache never built or ran an image: docker is not in play
    unreachable = _no_daemon()
    if unreachable:
        return Inventory(note=f"docker images not listed: {unreachable}")
    listed_at = time.time()
    try:
        client = _connect()
        raw = client.api.images()
    except Exception as exc:  # noqa: BLE001 - any failure to talk to the daemon means "not listed"
        return Inventory(note=f"docker images not listed: {_one_line(exc)}")
    sizes = {str(i["Id"]): int(i.get("Size") or 0) for i in raw}
    images = [_image(i, records[_hex(i["Id"])], sizes) for i in raw if _hex(i["Id"]) in records and _ours(i)]
    return Inventory(images, client, None, listed_at, set(sizes))


def _records() -> dict[str, os.stat_result]:
    folder = cache().docker_used
    try:
        return {e.name: e.stat() for e in os.scandir(folder) if e.is_file() and "." not in e.name}
    except OSError:
        return {}


def _no_daemon() -> str | None:
    """Why no daemon can be reached, decided without importing the SDK (None: try it)."""
    host = os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
    if host.startswith("unix://") and not os.path.exists(host[len("unix://"):]):
        return f"no Docker daemon socket at {host[len('unix://'):]}"
    return None


def _connect() -> Any:
    import docker  # only here: `proj env` without docker images never pays for the SDK

    return docker.from_env(timeout=max(1, int(settings.number("PROJ_DOCKER_LIST_TIMEOUT"))))  # `env list` never hangs


def _ours(raw: dict[str, Any]) -> bool:
    """Built by proj: a project image (``proj/`` tag) or a base built from a project's Dockerfile."""
    return bool(_proj_tags(raw)) or (raw.get("Labels") or {}).get(BUILT_BY) == "proj"


def _proj_tags(raw: dict[str, Any]) -> list[str]:
    return [t for t in _tags(raw) if t.startswith("proj/")]


def _tags(raw: dict[str, Any]) -> list[str]:
    return sorted(t for t in raw.get("RepoTags") or [] if t != "<none>:<none>")


def _image(raw: dict[str, Any], used: os.stat_result, sizes: dict[str, int]) -> Image:
    """One row. Size counts only the image's own layers: its parent's are shared, and stay after a prune."""
    image_id, parent = str(raw["Id"]), str(raw.get("ParentId") or "")
    project_tags = _proj_tags(raw)
    refs = project_tags or _tags(raw)  # a user's extra tag on a project image is left (so is the image)
    size = int(raw.get("Size") or 0) - sizes.get(parent, 0)
    created = float(raw.get("Created") or used.st_mtime)
    entry = EnvEntry(key=refs[0] if refs else image_id[:19], backend=BACKEND, python="", size_bytes=max(size, 0),
                     created=created, last_used=max(used.st_mtime, created) if used.st_size else created,
                     runs=used.st_size, path=image_id)
    return Image(entry, refs, parent, bool(project_tags))


def _hex(image_id: str) -> str:
    return image_id.split(":")[-1]


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
    text = str(text).replace("Error while fetching server API version: ", "")
    return re.sub(r"\s+", " ", text).strip()[:300]


@dataclass
class ImagePrune:
    removed: list[EnvEntry] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    kept: int = 0
    note: str | None = None


def prune_images(expired: Callable[[EnvEntry], bool], *, dry_run: bool) -> ImagePrune:
    """Remove expired images, project images before the bases they are built FROM; never a running one."""
    inv = inventory()
    if inv.client is None:
        return ImagePrune(note=inv.note)
    running = _running(inv)
    doomed = sorted((i for i in inv.images if expired(i.entry)), key=lambda i: not i.is_project)
    result = ImagePrune(busy=[i.entry.key for i in doomed if i.entry.path in running])
    for image in (i for i in doomed if i.entry.path not in running):
        error = None if dry_run else _remove(inv.client, image)
        if error:
            result.failed.append({"key": image.entry.key, "reason": error})
        else:
            result.removed.append(image.entry)
    result.kept = len(inv.images) - len(result.removed)
    if not dry_run:
        _forget_orphans(inv)
    return result


def _running(inv: Inventory) -> set[str]:
    """Images a running run needs: those of running proj containers or leased ones, and their parents."""
    containers = inv.client.api.containers(filters={"label": RUN_ID, "status": "running"})
    held = {str(c.get("ImageID")) for c in containers} | {i.entry.path for i in inv.images if busy(record(i.entry.path))}
    parents = {i.entry.path: i.parent for i in inv.images}
    for image_id in list(held):
        while parents.get(image_id):  # a base stays while an image built FROM it runs
            image_id = parents[image_id]
            held.add(image_id)
    return held


def _remove(client: Any, image: Image) -> str | None:
    """Untag (the last tag deletes the image); the daemon's refusal, e.g. a stopped container using it, is returned."""
    import docker.errors

    try:
        for ref in image.refs or [image.entry.path]:
            client.api.remove_image(ref)
    except docker.errors.ImageNotFound:
        pass  # removed meanwhile: the goal is reached
    except docker.errors.APIError as exc:
        return _one_line(exc)
    _unlink(record(image.entry.path))
    return None


def _forget_orphans(inv: Inventory) -> None:
    """Drop records of images that no longer exist (removed by hand); a record written after the listing stays."""
    for name, st in _records().items():
        if f"sha256:{name}" not in inv.all_ids and st.st_mtime < inv.listed_at:
            _unlink(record(name))


def _unlink(path: Path) -> None:
    for stale in (path, path.with_name(f"{path.name}.inuse")):
        try:
            stale.unlink()
        except OSError:
            pass
