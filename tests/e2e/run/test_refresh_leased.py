"""`--refresh-env` while another run uses the env: the running env is never deleted, the new one is built beside it."""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from helpers.cli import require
from helpers.wheels import _dist_info, _write_wheel

PY = "%d.%d" % sys.version_info[:2]
MAIN = """\
import os, sys, time
import leasepkg
print("first", leasepkg.VERSION, flush=True)
inode = os.stat(leasepkg.__file__).st_ino  # a deleted-and-rebuilt env has new files at the same path
gate = sys.argv[1]
if os.path.isdir(gate):
    open(os.path.join(gate, "started"), "w").close()
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(gate, "release")) and time.time() < deadline:
        time.sleep(0.05)
import leasepkg.later  # a module imported only after the refresh: its file must still be there
print("later", leasepkg.later.WORD, flush=True)
print("env", "intact" if os.stat(leasepkg.__file__).st_ino == inode else "replaced", flush=True)
"""
MLPROJECT = """\
name: lease
entry_points:
  main:
    parameters:
      gate: {type: string, default: none}
    command: "python main.py {gate}"
"""
BESIDE = "refreshing: built a new env beside the one in use by run"


def two_module_wheel(where: Path) -> None:
    files = {"leasepkg/__init__.py": "VERSION = '1.0'\n", "leasepkg/later.py": "WORD = 'still-here'\n",
             **_dist_info("leasepkg", "1.0", ())}
    _write_wheel(where / "leasepkg-1.0-py3-none-any.whl", files, "leasepkg-1.0.dist-info")


def wait_file(path: Path, proc, timeout: float = 180) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def env_of(proj, run_id: str) -> dict:  # noqa: ANN001
    return proj.show(run_id)["env"]


def exercise(proj, root: Path, tmp_path: Path, home_key: str) -> None:  # noqa: ANN001
    """Run 1 waits inside the env; run 2 refreshes it; run 1 finishes with its late import; run 3 uses the new env."""
    gate = tmp_path / "gate"
    gate.mkdir()
    first = proj.popen("run", str(root), "-P", f"gate={gate}")
    try:
        wait_file(gate / "started", first)
        second = proj("run", str(root), "--refresh-env")
        assert second.code == 0, second
        assert second.stdout.count("later still-here") == 1, second
    finally:
        (gate / "release").touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, (out, err)
    assert "first 1.0" in out and "later still-here" in out and "env intact" in out, (out, err)
    runs = {r["id"]: r for r in proj.runs()}
    assert len(runs) == 2 and all(r["status"] == "FINISHED" for r in runs.values()), runs
    ids = sorted(runs, key=lambda i: runs[i]["start_time"])
    one, two = (env_of(proj, i) for i in ids)
    assert one[home_key] != two[home_key], (one, two)
    assert two["cache_hit"] is False and one["key"] == two["key"], (one, two)
    assert f"{BESIDE} {ids[0]}; later runs use the new one" in second.stderr, second
    assert Path(one[home_key]).is_dir(), "the old env is kept until pruned"
    third = proj("run", str(root))
    assert third.code == 0 and "later still-here" in third.stdout, third
    latest = max(proj.runs(), key=lambda r: r["start_time"])
    assert env_of(proj, latest["id"])[home_key] == two[home_key]
    assert env_of(proj, latest["id"])["cache_hit"] is True
    pruned = proj("env", "prune")
    assert pruned.code == 0 and f"removed {Path(one[home_key]).name} (replaced by --refresh-env" in pruned.stdout, pruned
    assert not Path(one[home_key]).exists() and Path(two[home_key]).is_dir()
    listed = proj("env", "list", "--json")
    assert listed.code == 0, listed


@pytest.fixture
def private_cache(proj, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: ANN001
    cache = tmp_path / "cache"  # prune must see only this test's envs
    proj.env["PROJ_CACHE_DIR"] = str(cache)
    monkeypatch.setenv("PROJ_CACHE_DIR", str(cache))
    return cache


@pytest.mark.slow
def test_refresh_while_a_virtualenv_run_uses_the_env(offline, private_cache: Path, make_project, wheelhouse: Path,
                                                      tmp_path: Path) -> None:  # noqa: ANN001
    two_module_wheel(wheelhouse)
    root = make_project({"MLproject": MLPROJECT, "main.py": MAIN,
                         "python_env.yaml": f'python: "{PY}"\ndependencies: [leasepkg]\n'})
    exercise(offline, root, tmp_path, "env_path")


def test_refresh_of_an_unleased_env_rebuilds_in_place(offline, private_cache: Path, make_project,
                                                      wheelhouse: Path) -> None:  # noqa: ANN001
    two_module_wheel(wheelhouse)
    root = make_project({"MLproject": MLPROJECT, "main.py": MAIN,
                         "python_env.yaml": f'python: "{PY}"\ndependencies: [leasepkg]\n'})
    first = offline("run", str(root))
    again = offline("run", str(root), "--refresh-env")
    assert first.code == 0 and again.code == 0, (first, again)
    assert BESIDE not in again.stderr, again
    paths = {r["env"]["env_path"] for r in (offline.show(r["id"]) for r in offline.runs())}
    assert len(paths) == 1, paths
    assert [p.name for p in (private_cache / "envs").iterdir() if p.is_dir()] == [Path(paths.pop()).name]


@pytest.mark.conda
def test_refresh_while_a_conda_run_uses_the_env(proj, private_cache: Path, make_project, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    require(importlib.util.find_spec("rattler") is not None, "py-rattler is not installed")
    from helpers import conda_channel as cc

    site = f"lib/python{cc.PY_VERSION}/site-packages/leasepkg"
    pkg = cc.Pkg("leasepkg", "1.0", ["python"], files={f"{site}/__init__.py": "VERSION = '1.0'\n",
                                                         f"{site}/later.py": "WORD = 'still-here'\n"})
    mirror = tmp_path / "mirror"
    cc.build_channel(mirror / "conda-forge", [cc.python_pkg(), pkg])
    proj.env["PROJ_CONDA_CHANNEL_ALIAS"] = str(mirror)
    monkeypatch.setenv("PROJ_CONDA_CHANNEL_ALIAS", str(mirror))
    conda_yaml = "name: lease\nchannels:\n  - conda-forge\ndependencies:\n  - python\n  - leasepkg\n"
    root = make_project({"MLproject": MLPROJECT.replace("name: lease\n", "name: lease\nconda_env: conda.yaml\n"),
                         "main.py": MAIN, "conda.yaml": conda_yaml})
    exercise(proj, root, tmp_path, "prefix")


def test_removing_the_published_slot_never_republishes_a_retired_one(tmp_path: Path) -> None:
    from proj.envs.cache import MARKER, EnvCache
    from proj.locks import in_use

    cache = EnvCache(tmp_path / "envs")
    with cache.slot("venv-k") as slot:
        cache.publish("venv-k", {})
    old = slot.path
    with in_use(old, "run1", marker=MARKER):
        with cache.slot("venv-k", refresh=True) as new:
            assert new.beside == ["run1"] and new.path != old
            cache.publish("venv-k", {})
        assert cache.path("venv-k") == new.path and old.is_dir()
        assert cache.remove("venv-k") and not new.path.exists()
        assert cache.lookup("venv-k") is None, "the retired slot must not come back"
    assert [e[0] for e in cache.entries()] == [] and cache.retired() == [old]
    assert cache.remove_retired(old) and not old.exists()
