"""`proj env list|prune` over the Docker images proj built, against a real daemon.

Each test uses a private cache: `env prune --all` then only sees the images this test's runs
recorded, never those of other tests sharing the daemon.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from backends.docker import test_runs as test_docker
from helpers.cli import Proj, wait_for

# The docker tests' fixtures (pytest finds fixtures by module-level name) and base image.
client, dproject, slug, BASE = test_docker.client, test_docker.dproject, test_docker.slug, test_docker.BASE


@pytest.fixture
def private(proj: Proj, tmp_path: Path) -> Proj:
    proj.env["PROJ_CACHE_DIR"] = str(tmp_path / "private-cache")
    return proj


def docker_rows(proj: Proj, **env: str) -> dict[str, dict[str, Any]]:
    out = proj("env", "list", "--json", env=env)
    assert out.code == 0, out
    return {row["key"]: row for row in out.json() if row["backend"] == "docker"}


def project_image(proj: Proj, root: Path, *args: str) -> str:
    out = proj("run", str(root), *args)
    assert out.code == 0, out
    return str(proj.runs()[0]["env"]["image"])


@pytest.mark.docker
def test_list_shows_the_built_image_and_prune_all_removes_it(private: Proj, dproject: Callable[..., Path],
                                                             client: Any, slug: str) -> None:
    root = dproject("echo hi")
    tag = project_image(private, root)
    assert private("run", str(root)).code == 0
    assert private("run", str(root), "--no-build-image").code == 0  # records a use of the base image too
    rows = docker_rows(private)
    assert list(rows) == [tag]  # the base is not proj's: not listed
    row = rows[tag]
    assert row["runs"] == 2 and row["size_bytes"] > 0 and row["path"].startswith("sha256:")
    assert row["last_used"] >= row["created"] > 0
    assert tag in private("env", "list").stdout

    dry = private("env", "prune", "--all", "--dry-run")
    assert f"would remove {tag} (docker" in dry.stdout and client.images.list(name=tag), dry
    gone = private("env", "prune", "--all", "--json")
    assert gone.code == 0 and [e["key"] for e in gone.json()["removed"]] == [tag], gone
    assert client.images.list(name=f"proj/{slug}") == [] and client.images.get(BASE)
    assert docker_rows(private) == {}


@pytest.mark.docker
def test_dockerfile_base_is_listed_and_pruned_after_its_project_image(private: Proj, dproject: Callable[..., Path],
                                                                      client: Any, slug: str) -> None:
    root = dproject("true", "  dockerfile: Dockerfile\n", image=f"{slug}-base",
                    files={"Dockerfile": f"FROM {BASE}\nENV FOO=1\n"})
    tag = project_image(private, root)
    assert set(docker_rows(private)) == {tag, f"{slug}-base:latest"}
    old = private("env", "prune", "--older-than", "1")
    assert old.code == 0 and "removed 0 environment(s)" in old.stdout, old
    gone = private("env", "prune", "--all", "--json").json()
    assert [e["key"] for e in gone["removed"]] == [tag, f"{slug}-base:latest"] and gone["failed"] == [], gone
    assert client.images.list(name=f"{slug}-base") == [] and client.images.get(BASE)


@pytest.mark.docker
def test_prune_keeps_the_image_of_a_running_run(private: Proj, dproject: Callable[..., Path], client: Any,
                                                slug: str) -> None:
    root = dproject("sleep 120")
    runner = private.popen("run", str(root))
    try:
        containers = wait_for(lambda: client.containers.list(filters={"label": f"dev.proj.project={slug}"}),
                              60, "the container")
        tag = containers[0].image.tags[0]
        out = private("env", "prune", "--all", "--json")
        assert out.code == 0 and out.json()["removed"] == [] and out.json()["busy"] == [tag], out
        assert f"kept {tag} (a running run uses it)" in private("env", "prune", "--all").stdout
        assert client.images.list(name=tag)
        assert private("runs", "cancel", containers[0].labels["dev.proj.run-id"]).code == 0
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    gone = private("env", "prune", "--all", "--json")
    assert [e["key"] for e in gone.json()["removed"]] == [tag], gone


@pytest.mark.docker
def test_an_image_a_stopped_container_uses_is_reported_and_the_rest_pruned(
        private: Proj, dproject: Callable[..., Path], make_project: Callable[..., Path], client: Any,
        slug: str) -> None:
    kept = project_image(private, dproject("echo kept"), "--keep-container")
    other = make_project({"MLproject": f"name: {slug}\ndocker_env:\n  image: {BASE}\n"
                                       "entry_points:\n  main:\n    command: 'echo other'\n"}, name=f"{slug}-other")
    freed = project_image(private, other)
    out = private("env", "prune", "--all", "--json")
    assert out.code == 0, out
    result = out.json()
    assert [e["key"] for e in result["removed"]] == [freed] and [f["key"] for f in result["failed"]] == [kept]
    assert "container" in result["failed"][0]["reason"]
    table = private("env", "prune", "--all")
    assert table.code == 0 and f"could not remove {kept}: " in table.stdout, table
    assert client.images.list(name=kept) and client.images.list(name=freed) == []


def _fake_record(proj: Proj) -> None:
    """A record as a docker run leaves it, so `env list` has a reason to ask the daemon."""
    used = Path(proj.env["PROJ_CACHE_DIR"]) / "docker" / "used"
    used.mkdir(parents=True)
    (used / ("ab" * 32)).write_bytes(b".")


@pytest.mark.parametrize("host", ["unix:///nonexistent.sock", "tcp://127.0.0.1:9"])
def test_env_list_without_a_daemon_is_quick_and_works(private: Proj, host: str) -> None:
    _fake_record(private)
    start = time.monotonic()
    out = private("env", "list", "--json", env={"DOCKER_HOST": host})
    assert out.code == 0 and out.json() == [], out
    assert time.monotonic() - start < 8 and "docker images not listed" in out.stderr, out
    pruned = private("env", "prune", "--all", env={"DOCKER_HOST": host})
    assert pruned.code == 0 and "removed 0 environment(s)" in pruned.stdout, pruned


@pytest.mark.parametrize("record", [False, True])
def test_the_docker_sdk_is_not_imported_without_a_reason(private: Proj, record: bool) -> None:
    if record:
        _fake_record(private)  # a record alone is not enough: the daemon socket is missing too
    probe = "import sys; from proj.envs.inventory import list_envs; list_envs(); print('docker' in sys.modules)"
    env = {**private.env, "DOCKER_HOST": "unix:///nonexistent.sock"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "False", out

