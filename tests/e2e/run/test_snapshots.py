"""Snapshots of directories outside git (taken only when a run is created, stored once per content,
reused from a stat index) and the input fingerprints' walk and cache."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from proj.sources import snapshot

MLPROJECT = """\
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 1}
      data: {type: path, default: .}
    command: "python train.py {alpha}"
"""
FILES = {"MLproject": MLPROJECT, "train.py": "import sys; print('alpha', sys.argv[1])\n", "lib/util.py": "X = 1\n"}
OLD = 1_600_000_000  # an mtime well in the past: the state is not "racy", so the index may remember it


def settle(root: Path) -> Path:
    """Give every file an old mtime, as an untouched project has."""
    for path in root.rglob("*"):
        os.utime(path, (OLD, OLD), follow_symlinks=False)
    return root


def last(proj) -> dict:
    return proj.show(proj.runs()[0]["id"])


def blobs(proj) -> list[Path]:
    return sorted((Path(proj.env["PROJ_TRACKING_URI"]) / "snapshots").glob("*.tar.gz"))


def test_nothing_is_archived_until_a_run_is_created(proj, make_project) -> None:
    root = settle(make_project({**FILES, "big.bin": os.urandom(300_000)}))
    bad = proj("run", str(root), "--env-manager", "local", "-P", "alpha=notafloat")
    assert bad.code == 2 and "'notafloat' is not a number" in bad.stderr, bad
    assert proj("validate", str(root)).code == 0
    assert blobs(proj) == [] and not snapshot._index_file(root.resolve()).exists()


def test_identical_content_is_stored_once_and_copied_into_each_run(proj, make_project) -> None:
    first = settle(make_project(FILES, name="a"))
    second = make_project(FILES, name="b")  # same bytes, other directory, other mtimes
    for root in (first, first, second):
        out = proj("run", str(root), "--env-manager", "local")
        assert out.code == 0, out
    [blob] = blobs(proj)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    assert blob.name == f"{digest}.tar.gz"
    for run in proj.runs():
        record = proj.show(run["id"])
        assert record["source"]["snapshot_sha256"] == digest and record["source"]["snapshot"]["sha256"] == digest
        stored = Path(record["run_dir"]) / "artifacts" / "source" / "snapshot.tar.gz"
        # A copy, not a hard link: the run folder is the child's to write, the blob is shared by every run.
        assert stored.read_bytes() == blob.read_bytes() and stored.stat().st_ino != blob.stat().st_ino
    (first / "train.py").write_text("print('changed')\n")
    assert proj("run", str(first), "--env-manager", "local").code == 0
    assert len(blobs(proj)) == 2 and last(proj)["source"]["snapshot_sha256"] != digest


def test_reproduction_keeps_the_same_snapshot(proj, make_project) -> None:
    root = settle(make_project(FILES))
    assert proj("run", str(root), "--env-manager", "local", "-P", "alpha=2").code == 0
    original = last(proj)
    (root / "train.py").write_text("raise SystemExit(3)\n")
    out = proj("reproduce", original["id"])
    assert out.code == 0 and "verdict: identical" in out.stdout, out
    new = last(proj)
    assert new["source"]["snapshot_sha256"] == original["source"]["snapshot_sha256"]
    [blob] = blobs(proj)
    assert (Path(new["run_dir"]) / "artifacts" / "source" / "snapshot.tar.gz").read_bytes() == blob.read_bytes()


def test_unchanged_directory_is_not_archived_again(proj_env, make_project, tmp_path, monkeypatch) -> None:
    root = settle(make_project(FILES)).resolve()
    store = tmp_path / "blobs"
    blob, info = snapshot.store_snapshot(root, store)
    assert blob is not None and blob.name == f"{info['sha256']}.tar.gz"

    def no_archiving(*args: object) -> None:
        raise AssertionError("archived again although nothing changed")

    monkeypatch.setattr(snapshot, "_write_tar", no_archiving)
    assert snapshot.store_snapshot(root, store) == (blob, info)
    (root / "lib" / "util.py").write_text("X = 2\n")  # same size: the stat signature still sees it
    with pytest.raises(AssertionError, match="archived again"):
        snapshot.store_snapshot(root, store)


def test_a_just_edited_directory_is_not_remembered(proj_env, make_project, tmp_path) -> None:
    root = make_project(FILES).resolve()  # mtimes of "now": a same-size edit may not move them yet
    snapshot.store_snapshot(root, tmp_path / "blobs")
    assert not snapshot._index_file(root).exists()


def test_archives_are_deterministic(make_project) -> None:
    root = make_project({**FILES, "run.sh": "echo hi\n"})
    (root / "run.sh").chmod(0o755)
    first = snapshot.snapshot_dir(root).data
    settle(root)
    os.chmod(root / "train.py", 0o600)  # another umask: not part of the content
    assert snapshot.snapshot_dir(root).data == first


def test_fingerprint_stops_walking_at_the_file_cap(proj_env, tmp_path, monkeypatch) -> None:
    from proj.pipeline import inputs as fingerprint

    for i in range(20):
        (tmp_path / "data" / f"d{i:02}").mkdir(parents=True)
        (tmp_path / "data" / f"d{i:02}" / "f.txt").write_text(str(i))
    visited = []
    real_walk = os.walk

    def counting_walk(*args: object, **kwargs: object):
        for entry in real_walk(*args, **kwargs):
            visited.append(entry[0])
            yield entry

    monkeypatch.setattr(fingerprint, "MAX_FILES", 3)
    monkeypatch.setattr(os, "walk", counting_walk)
    result = fingerprint.fingerprint_inputs({"data": str(tmp_path / "data")})["data"]
    assert result["files"] == 3 and result["capped"] is True
    assert len(visited) <= 5, visited  # the root and the first few directories, not all 21


def test_fingerprint_cache_is_bounded_and_keeps_one_entry_per_file(proj_env, tmp_path, monkeypatch) -> None:
    from proj.pipeline import inputs as fingerprint

    monkeypatch.setattr(fingerprint, "CACHE_ENTRIES", 5)
    monkeypatch.setenv("PROJ_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    for i in range(8):
        (data / f"{i}.txt").write_text(str(i))
    fingerprint.fingerprint_inputs({"data": str(data)})
    cache = tmp_path / "cache" / "input-hashes.json"
    files = json.loads(cache.read_text())["files"]
    assert len(files) == 5 and str(data / "7.txt") in files
    (data / "7.txt").write_text("seven")
    fingerprint.fingerprint_inputs({"one": str(data / "7.txt")})
    assert len(json.loads(cache.read_text())["files"]) == 5


def test_fingerprint_cache_is_not_rewritten_when_nothing_changed(proj, make_project, tmp_path) -> None:
    data = tmp_path / "inputs"
    data.mkdir()
    (data / "a.csv").write_text("1,2\n")
    root = make_project(FILES)
    assert proj("run", str(root), "--env-manager", "local", "-P", f"data={data}").code == 0
    cache = Path(proj.env["PROJ_CACHE_DIR"]) / "input-hashes.json"
    before = cache.stat()
    assert proj("run", str(root), "--env-manager", "local", "-P", f"data={data}").code == 0
    after = cache.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert last(proj)["inputs"]["data"]["files"] == 1
