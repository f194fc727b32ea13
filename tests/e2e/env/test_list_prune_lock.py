"""`proj env list|prune|lock` on a private env cache (pruning must not touch other tests' envs)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

PY = "%d.%d" % sys.version_info[:2]


@pytest.fixture
def private(offline, tmp_path: Path):  # noqa: ANN001, ANN201
    offline.env["PROJ_CACHE_DIR"] = str(tmp_path / "private-cache")
    return offline


def built(private, make_project) -> dict:  # noqa: ANN001
    root = make_project({"python_env.yaml": f'python: "{PY}"\ndependencies: [tinya]\n', "m.py": "print('ok')\n"})
    out = private("run", str(root), "-e", "m.py")
    assert out.code == 0, out
    return private.runs()[0]["env"]


def test_env_list_shows_built_envs_of_any_backend(private, make_project) -> None:  # noqa: ANN001
    env = built(private, make_project)
    from proj.envs.cache import EnvCache

    other = EnvCache(Path(private.env["PROJ_CACHE_DIR"]) / "envs")
    other.path("conda-0123").mkdir(parents=True)
    other.publish("conda-0123", {"backend": "conda", "python_version": "3.12.0"})
    listed = private("env", "list", "--json")
    assert listed.code == 0, listed
    rows = {row["key"]: row for row in listed.json()}
    assert rows[env["key"]]["backend"] == "virtualenv" and rows[env["key"]]["runs"] == 1
    assert rows[env["key"]]["size_bytes"] > 0 and rows[env["key"]]["python"].startswith(PY)
    assert rows["conda-0123"]["backend"] == "conda"
    table = private("env", "list")
    assert env["key"] in table.stdout and "virtualenv" in table.stdout and "LAST USED" in table.stdout


def test_env_prune_older_than_and_all(private, make_project) -> None:  # noqa: ANN001
    env = built(private, make_project)
    kept = private("env", "prune", "--older-than", "30")
    assert kept.code == 0 and "removed 0 environment(s)" in kept.stdout, kept
    dry = private("env", "prune", "--all", "--dry-run")
    assert f"would remove {env['key']}" in dry.stdout, dry
    gone = private("env", "prune", "--all", "--json")
    assert [e["key"] for e in gone.json()["removed"]] == [env["key"]], gone
    assert private("env", "list", "--json").json() == []


def test_env_prune_removes_interrupted_builds(private) -> None:  # noqa: ANN001
    debris = Path(private.env["PROJ_CACHE_DIR"]) / "envs" / "venv-deadbeef"
    (debris / "bin").mkdir(parents=True)
    out = private("env", "prune")
    assert out.code == 0 and "venv-deadbeef (an interrupted build)" in out.stdout, out
    assert not debris.exists()


def test_env_lock_needs_a_project(private, tmp_path: Path) -> None:  # noqa: ANN001
    out = private("env", "lock", str(tmp_path / "nowhere"))
    assert out.code != 0 and "proj: error:" in out.stderr and "Traceback" not in out.stderr, out


def test_env_lock_refuses_a_git_source(private, make_project) -> None:  # noqa: ANN001
    import shutil
    import subprocess

    from helpers.cli import require

    require(shutil.which("git") is not None, "git is not installed")
    root = make_project({"python_env.yaml": f'python: "{PY}"\ndependencies: [tinya]\n', "m.py": "print('ok')\n"})
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    out = private("env", "lock", f"file://{root}")
    assert out.code == 2 and "is a git source" in out.stderr, out
    assert not list(Path(private.env["PROJ_CACHE_DIR"]).rglob("pylock.toml"))  # nothing written into the cache
