"""Shared fixtures (a project factory, the real `proj` runner, an isolated store and cache); helpers live in helpers/."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from helpers.cli import Proj
from helpers.postgres import Cluster, copy_database, drop, start_cluster
from helpers.wheels import offline, wheelhouse  # noqa: F401 - fixtures shared by the virtualenv-based tests


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One env/git cache for the whole session (per xdist worker): built envs are reused across tests."""
    return tmp_path_factory.mktemp("proj-cache")


@pytest.fixture
def proj_env(shared_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROJ_", "MLFLOW_"))}
    env["PROJ_CACHE_DIR"] = str(shared_cache)
    env["PROJ_TRACKING_URI"] = str(tmp_path / "store")
    for key in [k for k in os.environ if k.startswith("PROJ_") and k != "PROJ_TEST_REQUIRE_ALL"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PROJ_CACHE_DIR", env["PROJ_CACHE_DIR"])
    monkeypatch.setenv("PROJ_TRACKING_URI", env["PROJ_TRACKING_URI"])
    return env


@pytest.fixture
def proj(tmp_path: Path, proj_env: dict[str, str]) -> Proj:
    return Proj(tmp_path, proj_env)


@pytest.fixture
def make_project(tmp_path: Path):
    """Write a project: ``make_project({"MLproject": "...", "train.py": "..."}, name="p")`` -> its dir."""

    def make(files: dict[str, str | bytes], name: str = "project") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content))
        return root

    return make


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A real PostgreSQL server for the session (per xdist worker); skips with the reason when it cannot start."""
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def pg_template(pg_cluster: Cluster) -> Iterator[str]:
    """A database per test module holding a migrated, empty store: each test gets a copy of it."""
    name = pg_cluster.create_database("m")
    _migrated(pg_cluster, name)
    yield name
    drop(pg_cluster, name)


def _migrated(cluster: Cluster, name: str) -> None:
    from proj.tracking.postgres import connect, upgrade

    db = connect(cluster.uri(name))
    upgrade(db)
    db.close()


@pytest.fixture
def pg_store_uri(pg_cluster: Cluster, pg_template: str) -> Iterator[str]:
    """The URI of a fresh database holding an empty store, dropped after the test."""
    name = copy_database(pg_cluster, pg_template)
    yield pg_cluster.uri(name)
    drop(pg_cluster, name)
