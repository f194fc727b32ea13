"""proj.paths: the cache and store layouts, spelled once and followed by every module that uses a cache."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from proj import paths
from proj.envs.cache import EnvCache, resolution_path
from proj.envs.docker.images import record
from proj.paths import CacheLayout, StoreLayout, cache
from proj.sources.gitcache import GitCache
from proj.sources.workspace import work_root

SRC = Path(paths.__file__).parent


def test_every_part_of_the_cache_lives_under_its_root(tmp_path: Path) -> None:
    layout = CacheLayout(tmp_path)
    parts = [layout.envs, layout.resolutions, layout.resolution("virtualenv", "ab12"), layout.git, layout.git_work,
             layout.docker, layout.docker_lock("img"), layout.docker_used, layout.docker_context("k"),
             layout.docker_project("k"), layout.conda_repodata, layout.conda_pkgs, layout.conda_scratch,
             layout.local_freeze("k"), layout.validation_marker("ffee00"), layout.snapshot_index("k"),
             layout.reproduce, layout.input_hashes]
    assert all(p.is_relative_to(tmp_path) and p != tmp_path for p in parts)
    assert len(set(parts)) == len(parts)  # no two caches share a place
    assert layout.resolution("virtualenv", "ab12") == tmp_path / "resolutions" / "virtualenv" / "ab12.json"
    assert layout.validation_marker("ffee00") == tmp_path / "validated" / "ff" / "ffee00"
    assert layout.git_work == tmp_path / "git" / "work"


def test_the_layout_is_a_value(tmp_path: Path) -> None:
    layout = CacheLayout(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        layout.root = tmp_path / "other"  # type: ignore[misc]
    assert layout == CacheLayout(tmp_path)


def test_cache_follows_proj_cache_dir_per_call(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROJ_CACHE_DIR", str(tmp_path / "one"))
    assert cache().root == tmp_path / "one"
    monkeypatch.setenv("PROJ_CACHE_DIR", str(tmp_path / "two"))
    assert cache().envs == tmp_path / "two" / "envs"


def test_the_modules_that_keep_caches_use_the_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROJ_CACHE_DIR", str(tmp_path))
    layout = CacheLayout(tmp_path)
    assert EnvCache().root == layout.envs
    assert resolution_path("conda", "f00") == layout.resolution("conda", "f00")
    assert GitCache().root == layout.git
    assert work_root() == layout.git_work
    assert record("sha256:abc") == layout.docker_used / "abc"


def test_no_module_spells_the_cache_layout_itself() -> None:
    """Only paths.py joins names onto the cache root; the rest goes through CacheLayout."""
    spelled = re.compile(r"cache_dir\(\)\s*/")
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if spelled.search(p.read_text())]
    assert offenders == []


def test_store_layout(tmp_path: Path) -> None:
    store = StoreLayout(tmp_path)
    assert store.run("r1") == tmp_path / "runs" / "r1"
    assert store.snapshots == tmp_path / "snapshots"
