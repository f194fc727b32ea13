"""A base image built from the project's own Dockerfile (``docker_env: {image: NAME, dockerfile: PATH}``).

As in docker compose (``image`` + ``build``), the Dockerfile is built with the project directory as
context and tagged ``NAME``; the project image is then built FROM it as usual. The built image
carries a label with the hash of (Dockerfile text, context content, build args), so it is rebuilt
only when one of those changes; docker's own layer cache keeps even that rebuild cheap.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from proj.envs.base import BuildLog
from proj.envs.docker.context import LABEL, Context, build, find_image, load_context
from proj.errors import EnvError, UnsafePath
from proj.locks import file_lock
from proj.paths import cache, contained
from proj.project.spec import DockerEnv

HASH_LABEL = f"{LABEL}.base-hash"


def declared_dockerfile(root: Path, rel: object, source: str) -> Path:
    """The project's ``docker_env.dockerfile``, which must be a file inside the project (symlinks followed):
    the daemon is sent it and proj prints from it, so ``/etc/secret`` or a link to it is refused in one line."""
    try:
        path = contained(root.resolve(), str(rel), what=f"{source}: docker_env.dockerfile")
    except UnsafePath as exc:
        raise EnvError(str(exc)) from None
    if not path.is_file():
        raise EnvError(f"{source}: docker_env.dockerfile {rel!r} not found in {root}")
    return path


def build_declared_base(client: Any, root: Path, denv: DockerEnv, log: BuildLog, *, refresh: bool,
                        labels: dict[str, str]) -> dict[str, Any]:
    """``docker image inspect`` of NAME, (re)built from the Dockerfile when its inputs changed."""
    rel = str(denv.extra["dockerfile"])
    text = declared_dockerfile(root, rel, "MLproject").read_text(encoding="utf-8")
    ctx = load_context(root)
    if rel not in ctx.files:  # docker always sends the Dockerfile, even when .dockerignore lists it
        ctx = Context(root, ctx.files + (rel,), ctx.digest)
    build_args = {str(k): str(v) for k, v in (denv.extra.get("build_args") or {}).items()}
    digest = hashlib.sha256("\0".join([text, ctx.digest, json.dumps(build_args, sort_keys=True)]).encode()).hexdigest()
    found = None if refresh else _matching(client, denv.image, digest)
    if found is not None:
        return found
    with file_lock(cache().docker_lock(f"base-{digest[:24]}")):
        found = None if refresh else _matching(client, denv.image, digest)
        if found is None:
            log.write(f"building base image {denv.image} from {rel}")
            build(client, ctx, tag=denv.image, labels={**labels, HASH_LABEL: digest}, log=log, dockerfile=rel,
                  buildargs=build_args)
            found = client.api.inspect_image(denv.image)
    return found


def _matching(client: Any, name: str, digest: str) -> dict[str, Any] | None:
    """The local image NAME if it was built by proj from exactly these inputs."""
    found = find_image(client, name)
    labels = ((found or {}).get("Config") or {}).get("Labels") or {}
    return found if labels.get(HASH_LABEL) == digest else None
