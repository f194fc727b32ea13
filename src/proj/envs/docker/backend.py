"""The ``docker`` backend: ``docker_env`` projects run in a content-hashed project image.

``ensure`` finds the declared image (local first; a pull is only a quick fallback), optionally
builds it from the project's own Dockerfile, then builds ``FROM`` it a project image holding the
code, tagged by a hash of (base image ID, generated Dockerfile, context content) and reused while
that hash is unchanged. ``--no-build-image`` runs the declared image with the code mounted read-only.
The docker SDK is imported only here, never at ``proj`` start-up.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from proj.envs.base import Backend, BuildLog, Env, EnvChoice, Invocation, Lock
from proj.envs.docker import context, images
from proj.envs.docker.args import parse_docker_args
from proj.envs.docker.base_image import build_declared_base, declared_dockerfile
from proj.envs.docker.mounts import (
    container_environment,
    declared_volumes,
    host_environment,
    image_environment,
    invocation_volumes,
)
from proj.envs.docker.run import ContainerSpec, run_container
from proj.errors import EnvError
from proj.execution.process import OutputSink
from proj.locks import file_lock
from proj.paths import cache
from proj.project.spec import DockerEnv

BACKEND = "docker"
LOCK_FORMAT = "docker-image"


class DockerImageEnv(Env):
    """A ready image; each run is one container of it, removed afterwards."""

    backend = BACKEND

    def __init__(self, client: Any, image: str, inspect: dict[str, Any], *, key: str, lock: Lock,
                 details: dict[str, Any], hit: bool, seconds: float, choice: EnvChoice) -> None:
        self.client = client
        self.image = image
        self.image_env = image_environment(inspect)
        self.key = key
        self.lock = lock
        self.details = details
        self.cache_hit = hit
        self.build_seconds = seconds
        self.choice = choice

    def execute(self, invocation: Invocation, sink: OutputSink) -> int:
        spec = self.container_spec(invocation)
        # Count the run and hold the image (and its base) until it ends: `proj env prune` skips held context.
        with images.lease(self.details.get("image_id"), self.details.get("base_image_id")):
            return run_container(self.client, spec, sink, keep=bool(self.choice.options.get("keep_container")),
                                 on_start=invocation.on_start)

    def container_spec(self, invocation: Invocation) -> ContainerSpec:
        project = self.choice.project
        denv = docker_env(self.choice)
        options = parse_docker_args(self.choice.options.get("docker_args") or [])
        user = options.setdefault("user", f"{os.getuid()}:{os.getgid()}")  # files on mounts stay the user's
        volumes = invocation_volumes(invocation) + declared_volumes(denv, project.root)
        if not self.details.get("build_image", True):
            volumes.append(f"{project.root}:{context.WORKDIR}:ro")
        environment = container_environment(invocation, host_environment(denv, _source(self.choice)),
                                             self.image_env, user)
        run_id = invocation.env.get("PROJ_RUN_ID")
        labels = {f"{context.LABEL}.project": project_slug(self.choice)}
        if run_id:
            labels[f"{context.LABEL}.run-id"] = run_id
        return ContainerSpec(image=self.image, command=invocation.command, workdir=context.WORKDIR,
                             environment=environment, volumes=volumes, labels=labels, options=options,
                             name=f"proj-{run_id}" if run_id else None)


class DockerBackend(Backend):
    """Its own ``ensure``, not :class:`BuiltBackend`'s lifecycle: the env is an image in the daemon, not a
    directory in the env cache. There is no slot to build into or marker to publish; the image tag *is* the
    content key (base image id + generated Dockerfile + context hash), so a found tag is the ready check,
    the build lock is per tag, and a refresh re-tags instead of deleting: a running container keeps its
    image by id, so refresh-while-in-use needs no slot beside it. The key also needs the base image
    resolved (pulled or built) first, which the resolve -> key order of the lifecycle cannot express."""

    name = BACKEND

    def __init__(self) -> None:
        self._client: Any = None

    def client(self) -> Any:
        """A connected SDK client (the daemon is asked for its API version: it must answer now)."""
        if self._client is None:
            self._client = connect()
        return self._client

    def check_spec(self, choice: EnvChoice) -> None:
        """A declared Dockerfile must exist inside the project."""
        dockerfile = docker_env(choice).extra.get("dockerfile")
        if dockerfile:
            declared_dockerfile(choice.project.root, dockerfile, _source(choice))

    def check_host(self, choice: EnvChoice) -> None:
        """Bad -A options, missing host variables or no daemon: before any run."""
        parse_docker_args(choice.options.get("docker_args") or [])
        host_environment(docker_env(choice), _source(choice))
        self.client()

    def ensure(self, choice: EnvChoice, log: BuildLog, *, refresh: bool = False) -> DockerImageEnv:
        start = time.perf_counter()
        client = self.client()
        denv = docker_env(choice)
        base = self._base(choice, denv, log, refresh)
        if not choice.options.get("build_image", True):
            return self._mounted(choice, denv, base, start)
        ctx = context.load_context(choice.project.root)
        owner = None if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}"
        dockerfile = context.project_dockerfile(base["Id"], owner)
        digest = _digest(base["Id"], dockerfile, ctx.digest)
        tag = f"proj/{project_slug(choice)}:{digest[:24]}"
        inputs = {"base_id": base["Id"], "context_hash": ctx.digest, "dockerfile": dockerfile, "tag": tag}
        inspect, hit = self._project_image(client, ctx, inputs, log, refresh)
        lock = _lock(inspect["Id"], denv.image, base["Id"], ctx.digest, dockerfile)
        details = _details(choice, denv, base, inspect, tag, ctx.digest, build_image=True)
        return DockerImageEnv(client, tag, inspect, key=f"docker-{digest[:24]}", lock=lock, details=details,
                              hit=hit, seconds=time.perf_counter() - start, choice=choice)

    def from_lock(self, choice: EnvChoice, lock: Lock, log: BuildLog) -> DockerImageEnv:
        """The recorded image itself while it still exists locally; otherwise rebuilt from the source."""
        recorded = json.loads(lock.text)
        inspect = context.find_image(self.client(), recorded.get("image_id", ""))
        if inspect is None:
            log.write(f"recorded image {recorded.get('image_id')} is gone; rebuilding from the source")
            env = self.ensure(choice, log)
            log.write(_base_change(recorded, json.loads(env.lock.text)))
            return env
        denv = docker_env(choice)
        base = context.find_image(self.client(), recorded.get("base_id", "")) or {"Id": recorded.get("base_id")}
        details = _details(choice, denv, base, inspect, inspect["Id"], recorded.get("context_hash"),
                           build_image=recorded.get("context_hash") is not None)
        digest = _digest(base["Id"], recorded.get("dockerfile") or "", recorded.get("context_hash") or "")
        return DockerImageEnv(self.client(), inspect["Id"], inspect, key=f"docker-{digest[:24]}", lock=lock,
                              details=details, hit=True, seconds=0.0, choice=choice)

    def _base(self, choice: EnvChoice, denv: DockerEnv, log: BuildLog, refresh: bool) -> dict[str, Any]:
        if denv.extra.get("dockerfile"):
            base = build_declared_base(self.client(), choice.project.root, denv, log, refresh=refresh,
                                       labels=_labels(choice))
            images.remember(base["Id"])  # listed by `proj env` even if no run gets to use it
            return base
        return context.base_image(self.client(), denv.image, log)

    def _project_image(self, client: Any, ctx: context.Context, inputs: dict[str, str], log: BuildLog,
                       refresh: bool) -> tuple[dict[str, Any], bool]:
        """The image for this hash: found (a hit), or built under a lock so concurrent runs build it once."""
        tag = inputs["tag"]
        found = None if refresh else context.find_image(client, tag)
        if found is not None:
            return found, True
        with file_lock(cache().docker_lock(tag.replace('/', '_'))):
            found = None if refresh else context.find_image(client, tag)
            if found is not None:
                return found, True
            reason = context.rebuild_reason(ctx.root, inputs, refresh)
            log.write(f"building project image {tag} ({len(ctx.files)} context entries): {reason}")
            image_id = context.build(client, ctx, tag=tag, labels=None, log=log, generated=inputs["dockerfile"])
            context.remember_inputs(ctx.root, inputs)
            images.remember(image_id)  # listed by `proj env` even if no run gets to use it
            return client.api.inspect_image(tag), False

    def _mounted(self, choice: EnvChoice, denv: DockerEnv, base: dict[str, Any], start: float) -> DockerImageEnv:
        """``--no-build-image``: the declared image as-is; the project is mounted, not copied."""
        lock = _lock(base["Id"], denv.image, base["Id"], None, None)
        details = _details(choice, denv, base, base, denv.image, None, build_image=False)
        return DockerImageEnv(self.client(), base["Id"], base, key=f"docker-{_digest(base['Id'], 'mounted')[:24]}",
                              lock=lock, details=details, hit=True, seconds=time.perf_counter() - start,
                              choice=choice)


def connect() -> Any:
    """Connect to the daemon named by the environment (DOCKER_HOST or the default socket)."""
    try:
        import docker
    except ImportError:
        raise EnvError("the docker backend needs the 'docker' Python package (pip install docker)") from None
    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        reason = re.sub(r"\s+", " ", str(exc)).replace("Error while fetching server API version: ", "")
        raise EnvError(f"cannot reach the Docker daemon at {host}: {reason}",
                       hint="is dockerd running? start it or set DOCKER_HOST") from None


def docker_env(choice: EnvChoice) -> DockerEnv:
    denv = choice.project.docker_env
    if denv is None:
        raise EnvError(f"{_source(choice)}: the docker backend needs a docker_env section")
    return denv


def project_slug(choice: EnvChoice) -> str:
    """The repository part of project image tags: the project name (or directory), docker-safe."""
    project = choice.project
    name = (project.name or project.root.name or "project").lower()
    return re.sub(r"[^a-z0-9._-]+", "-", name).strip("-._")[:100] or "project"


def _source(choice: EnvChoice) -> str:
    project = choice.project
    return str(project.file or Path(project.root) / "MLproject") if project is not None else "MLproject"


def _labels(choice: EnvChoice) -> dict[str, str]:
    """Labels on every image proj builds, so ``docker image ls -f label=dev.proj.project=X`` finds them."""
    return {f"{context.LABEL}.project": project_slug(choice), f"{context.LABEL}.built-by": "proj"}


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _lock(image_id: str, base: str, base_id: str, context_hash: str | None, dockerfile: str | None) -> Lock:
    data = {"image_id": image_id, "base_image": base, "base_id": base_id, "context_hash": context_hash,
            "dockerfile": dockerfile}
    return Lock(LOCK_FORMAT, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _details(choice: EnvChoice, denv: DockerEnv, base: dict[str, Any], image: dict[str, Any], tag: str,
             context_hash: str | None, *, build_image: bool) -> dict[str, Any]:
    return {"origin": choice.origin, "base_image": denv.image, "base_image_id": base.get("Id"),
            "image": tag, "image_id": image.get("Id"), "repo_digests": image.get("RepoDigests") or [],
            "context_hash": context_hash, "build_image": build_image, "workdir": context.WORKDIR,
            "dockerfile": denv.extra.get("dockerfile")}


def _base_change(recorded: dict[str, Any], rebuilt: dict[str, Any]) -> str:
    """Say whether a rebuild started from the same base image and context as the recorded run."""
    if recorded.get("base_id") != rebuilt.get("base_id"):
        return (f"the base image changed: {recorded.get('base_image')} was {recorded.get('base_id')}, "
                f"now {rebuilt.get('base_id')}")
    if recorded.get("context_hash") != rebuilt.get("context_hash"):
        return "same base image, but the project files (build context) differ from the recorded run"
    return "same base image and build context as the recorded run"
