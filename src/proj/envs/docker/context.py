"""Project images: the build context (honouring .dockerignore), its content hash, and the build itself.

The project image is ``FROM <declared image>`` plus the project copied to :data:`WORKDIR`, tagged
by a hash of (base image ID, Dockerfile text, context content). An image with that tag *is* the
cache entry: docker tags only a complete build, so a failed or interrupted build leaves nothing a
later run could reuse. The context is an uncompressed tar made here (gzip would double the time).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable

from proj import settings
from proj.envs.base import BuildLog
from proj.errors import EnvError
from proj.paths import atomic_write, cache
from proj.project.schema import read_text

WORKDIR = "/mlflow/projects/code"  # MLflow's own path: code that hard-codes it keeps working
GENERATED_DOCKERFILE = "Dockerfile.proj-generated"
ALWAYS_EXCLUDED = (".git", ".proj")  # VCS data and proj's own store never go into an image
LABEL = "dev.proj"  # prefix of the labels on everything proj builds or starts


@dataclass(frozen=True)
class Context:
    """The files of a build context (relative paths, sorted) and a hash of their content."""

    root: Path
    files: tuple[str, ...]
    digest: str


def load_context(root: Path) -> Context:
    """List the context (``.dockerignore`` applied) and hash it; re-reads files only when stats change."""
    files = context_files(root)
    return Context(root, files, _cached_digest(root, files))


def context_files(root: Path) -> tuple[str, ...]:
    from docker.utils.build import PatternMatcher

    patterns = _dockerignore(root)
    paths = (p for p in PatternMatcher(patterns).walk(str(root)) if not _always_excluded(p))
    return tuple(sorted(paths))


def _dockerignore(root: Path) -> list[str]:
    path = root / ".dockerignore"
    if not path.is_file():
        return []
    text = read_text(path)  # a non-UTF-8 file is one clear error naming it, not a traceback
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _always_excluded(rel: str) -> bool:
    return rel.split(os.sep, 1)[0] in ALWAYS_EXCLUDED


def _cached_digest(root: Path, files: tuple[str, ...]) -> str:
    """Content hash of the context, remembered per root under its stat signature (the warm path
    then costs one ``lstat`` per file instead of reading every byte)."""
    signature = _stat_signature(root, files)
    entry = cache().docker_context(hashlib.sha256(str(root).encode()).hexdigest()[:32])
    try:
        cached = json.loads(entry.read_text())
        if cached.get("signature") == signature:
            return str(cached["digest"])
    except (OSError, ValueError, KeyError):
        pass
    digest = content_digest(root, files)
    try:
        atomic_write(entry, json.dumps({"root": str(root), "signature": signature, "digest": digest}))
    except OSError:
        pass  # the cache is an optimisation only
    return digest


def _stat_signature(root: Path, files: Iterable[str]) -> str:
    h = hashlib.sha256()
    for rel in files:
        st = os.lstat(root / rel)
        h.update(f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n".encode())
    return h.hexdigest()


def content_digest(root: Path, files: Iterable[str]) -> str:
    """sha256 over each entry's path, type, permission bits and content (or link target)."""
    h = hashlib.sha256()
    for rel in files:
        path = root / rel
        st = os.lstat(path)
        h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
        if stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(path).encode())
        elif stat.S_ISREG(st.st_mode):
            h.update(_file_sha(path).encode())
        h.update(b"\n")
    return h.hexdigest()


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def project_dockerfile(base_ref: str, owner: str | None) -> str:
    """The generated Dockerfile; ``owner`` ("uid:gid") makes the copied code writable by a non-root user.

    Just FROM + COPY: every metadata step (WORKDIR, LABEL) costs the classic builder a throwaway
    container (~0.25 s each). The working dir is set when the container is created instead, and
    the tag ``proj/<project>:<hash>`` already says what the image is."""
    chown = f"--chown={owner} " if owner else ""
    return f"FROM {base_ref}\nCOPY {chown}. {WORKDIR}/\n"


def write_tar(ctx: Context, fh: IO[bytes], generated: str | None = None) -> None:
    """Write the context as an uncompressed tar. With a ``generated`` Dockerfile, a generated
    .dockerignore makes the daemon drop both from what COPY sees (the user's own .dockerignore
    was already applied here)."""
    with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if generated is not None:
            _add_bytes(tar, GENERATED_DOCKERFILE, generated.encode())
            _add_bytes(tar, ".dockerignore", f"{GENERATED_DOCKERFILE}\n.dockerignore\n".encode())
        for rel in ctx.files:
            if generated is not None and rel == ".dockerignore":
                continue
            tar.add(ctx.root / rel, arcname=rel, recursive=False, filter=_anonymous)
    fh.seek(0)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Host user and group names mean nothing inside the image (and would leak into it)."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build(client: Any, ctx: Context, *, tag: str, labels: dict[str, str] | None, log: BuildLog,
          generated: str | None = None, dockerfile: str | None = None,
          buildargs: dict[str, str] | None = None) -> str:
    """Build ``tag`` from the context with ``client.api.build``; stream its output; return the image ID."""
    import docker.errors

    with tempfile.TemporaryFile() as fh:
        write_tar(ctx, fh, generated)
        try:
            stream = client.api.build(fileobj=fh, custom_context=True, tag=tag, rm=True, forcerm=True,
                                      decode=True, pull=False, labels=labels, buildargs=buildargs or None,
                                      dockerfile=GENERATED_DOCKERFILE if generated is not None else dockerfile)
            for chunk in stream:
                _log_chunk(chunk, tag, log)
        except docker.errors.APIError as exc:
            raise EnvError(f"docker build of {tag} failed: {_one_line(exc.explanation or str(exc))}") from None
    return str(client.api.inspect_image(tag)["Id"])


def _log_chunk(chunk: dict[str, Any], tag: str, log: BuildLog) -> None:
    if "error" in chunk:
        detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
        raise EnvError(f"docker build of {tag} failed: {_one_line(detail)}")
    text = chunk.get("stream") or chunk.get("status")
    if text and text.strip():
        log.write(text.rstrip("\n"))


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def find_image(client: Any, name: str) -> dict[str, Any] | None:
    """``docker image inspect`` of a local image, or None when there is none by that name."""
    import docker.errors

    try:
        info: dict[str, Any] = client.api.inspect_image(name)  # docker-py is untyped
        return info
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        if exc.status_code in (400, 404):  # e.g. an invalid reference: not found either
            return None
        raise


def base_image(client: Any, name: str, log: BuildLog) -> dict[str, Any]:
    """The declared image, local first; pulling is only a fallback and gives up quickly offline."""
    found = find_image(client, name)
    if found is not None:
        return found
    log.write(f"image {name} is not available locally; trying to pull it (timeout {_pull_timeout():.0f}s)")
    _pull(name, log)
    found = find_image(client, name)
    if found is None:
        raise EnvError(f"docker image {name!r} is not available locally and the pull did not produce it")
    return found


def _pull(name: str, log: BuildLog) -> None:
    import docker
    import requests.exceptions
    from docker.utils import parse_repository_tag

    repo, tag = parse_repository_tag(name)
    try:
        puller = docker.from_env(timeout=max(1, int(_pull_timeout())))  # its own short socket timeout
        for chunk in puller.api.pull(repo, tag or "latest", stream=True, decode=True):
            if "error" in chunk:
                raise docker.errors.APIError(chunk["error"])
            if chunk.get("status") and not chunk.get("progressDetail"):
                log.write(f"pull: {chunk['status']}")
    except (docker.errors.APIError, docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        message = getattr(exc, "explanation", None) or str(exc)
        raise EnvError(f"docker image {name!r} is not available locally and could not be pulled: "
                       f"{_one_line(message)}") from None


def rebuild_reason(root: Path, inputs: dict[str, str], refresh: bool) -> str:
    """Why a project image is being built, in words, from the inputs of the last one built for ``root``."""
    if refresh:
        return "--refresh-env asked for a rebuild"
    try:
        previous = json.loads(_inputs_file(root).read_text())
    except (OSError, ValueError):
        return "no image was built for this project yet"
    words = {"base_id": "the base image changed", "context_hash": "project files changed",
             "dockerfile": "the generated Dockerfile changed"}
    changed = [text for key, text in words.items() if previous.get(key) != inputs.get(key)]
    return ", ".join(changed) or f"the previous image {previous.get('tag')} is gone"


def remember_inputs(root: Path, inputs: dict[str, str]) -> None:
    try:
        atomic_write(_inputs_file(root), json.dumps(inputs, indent=2, sort_keys=True))
    except OSError:
        pass  # only used to explain the next rebuild


def _inputs_file(root: Path) -> Path:
    return cache().docker_project(hashlib.sha256(str(root).encode()).hexdigest()[:32])


def _pull_timeout() -> float:
    return settings.number("PROJ_DOCKER_PULL_TIMEOUT")
