"""The registry's content-addressed copies: each file once by content, a manifest per file set, a loadable tree of
hard links; a file that changed since its run recorded it is refused; damage is found; exports are checked."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from proj.errors import ModelExportError, StoreError
from proj.registry import files
from proj.registry.files import SourceFile


def _model(tmp_path: Path, name: str, weights: bytes) -> list[SourceFile]:
    folder = tmp_path / name
    (folder / "data").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "data" / "w.bin").write_bytes(weights)
    return [SourceFile("MLmodel", folder / "MLmodel"), SourceFile("data/w.bin", folder / "data" / "w.bin")]


def test_same_content_is_stored_once_and_the_tree_loads_as_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "store"
    one = files.store_files(root, _model(tmp_path, "a", b"w1"), "a")
    two = files.store_files(root, _model(tmp_path, "b", b"w1"), "b")
    three = files.store_files(root, _model(tmp_path, "c", b"w2"), "c")
    assert one.digest == two.digest != three.digest and one.tree == two.tree
    assert (one.tree / "data" / "w.bin").read_bytes() == b"w1" and (three.tree / "data" / "w.bin").read_bytes() == b"w2"
    blobs = sorted(p for p in (root / "registry" / "blobs").rglob("*") if p.is_file())
    assert len(blobs) == 3  # one MLmodel (same bytes everywhere), two weights
    assert all(p.stat().st_mode & 0o222 == 0 for p in blobs)  # read-only: trees hard-link them
    assert files.manifest(root, one.digest) == one.files and one.size == len(b"flavors: {}\n") + 2
    assert files.files_digest(list(reversed(one.files))) == one.digest
    assert files.check(root, one.digest) == []


def test_the_copy_outlives_the_source_folder(tmp_path: Path) -> None:
    root = tmp_path / "store"
    stored = files.store_files(root, _model(tmp_path, "a", b"weights"), "a")
    for path in sorted((tmp_path / "a").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    out = files.export_files(root, stored.digest, tmp_path / "out", "models:/a/1")
    assert (out / "data" / "w.bin").read_bytes() == b"weights" and (out / "MLmodel").is_file()


def test_a_file_changed_since_its_run_recorded_it_is_refused(tmp_path: Path) -> None:
    sources = _model(tmp_path, "a", b"new")
    recorded = [SourceFile(s.path, s.read, "0" * 64 if s.path == "data/w.bin" else None) for s in sources]
    with pytest.raises(ModelExportError, match=r"file data/w\.bin changed since the run recorded it"):
        files.store_files(tmp_path / "store", recorded, "runs:/r/model")
    assert not (tmp_path / "store" / "registry" / "manifests").exists()  # no manifest names a half copy
    with pytest.raises(StoreError, match="has no files to register"):
        files.store_files(tmp_path / "store", [], "empty")


def test_damage_is_found_and_an_export_refuses_a_taken_destination(tmp_path: Path) -> None:
    root = tmp_path / "store"
    stored = files.store_files(root, _model(tmp_path, "a", b"weights"), "a")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("mine")
    with pytest.raises(ModelExportError, match="exists and is not an empty directory"):
        files.export_files(root, stored.digest, taken, "models:/a/1")
    weights = next(f for f in stored.files if f["path"] == "data/w.bin")
    blob = files.blob(root, weights["sha256"])
    os.chmod(blob, 0o644)
    blob.write_bytes(b"tampered")
    assert files.check(root, stored.digest) == [f"data/w.bin: its blob {weights['sha256'][:16]} changed"]
    with pytest.raises(ModelExportError, match="stored file data/w.bin changed"):
        files.export_files(root, stored.digest, tmp_path / "out", "models:/a/1")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()
    blob.unlink()
    assert files.check(root, stored.digest) == [f"data/w.bin: its blob {weights['sha256'][:16]} is missing"]
