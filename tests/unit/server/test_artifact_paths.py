"""server.artifact_paths against the path attacks MLflow had CVEs for, with real files and symlinks in tmp_path."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from proj.errors import UnsafePath, UsageError
from proj.server import artifact_paths as ap
from proj.server.artifact_paths import Place


@pytest.mark.parametrize("raw, cleaned", [
    ("model/MLmodel", "model/MLmodel"),
    ("with space/a b.txt", "with space/a b.txt"),
    ("ünïcødé/日本語.txt", "ünïcødé/日本語.txt"),
    ("deep/er/and/deeper/x.bin", "deep/er/and/deeper/x.bin"),
    ("./a//b/", "a/b"),
    ("100%.txt", "100%.txt"),  # a lone % is a character, not an escape
    ("", ""),
    ("..a/b..", "..a/b.."),  # dots inside a name are not a climb
    ("ab:c/x:y.txt", "ab:c/x:y.txt"),  # a colon inside a name is not a scheme
])
def test_clean_keeps_plain_relative_paths(raw: str, cleaned: str) -> None:
    assert ap.clean(raw) == cleaned


@pytest.mark.parametrize("raw, why", [
    ("../etc/passwd", "'..'"),
    ("a/../../x", "'..'"),
    ("a/..", "'..'"),
    ("/etc/passwd", "absolute"),
    ("//etc/passwd", "absolute"),
    ("%2e%2e/%2e%2e/etc/passwd", "'..'"),  # arrived as %252e%252e: decoded once by the server
    ("%252e%252e/x", "'..'"),  # three times encoded
    ("a%2f..%2f..%2fb", "'..'"),
    ("a%41b", "encoded twice"),  # harmless, but no client encodes twice
    ("..\\..\\windows", "backslash"),
    ("a\\b", "backslash"),
    ("a%5cb", "backslash"),
    ("a\x00b", "NUL"),
    ("a%00b", "NUL"),
    ("C:/Windows/win.ini", "drive letter"),
    ("c:x", "drive letter"),
    ("file:///etc/passwd", "scheme"),
    ("s3:/bucket/key", "scheme"),
    ("a/file:/etc/passwd", "scheme"),
    ("a/C:", "drive letter"),
    ("a#b", "'#'"),
    ("a?b", "'?'"),
    ("a%23/b", "'#'"),
    ("a\x1b[31m", "control character"),
    ("x" * 256, "longer than 255"),
])
def test_clean_refuses_attacks(raw: str, why: str) -> None:
    with pytest.raises(UnsafePath) as err:
        ap.clean(raw)
    assert why in str(err.value)
    assert "\n" not in str(err.value) and err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_clean_refuses_endless_encoding() -> None:
    raw = "."
    for _ in range(12):
        raw = raw.replace("%", "%25").replace(".", "%2e")
    with pytest.raises(UnsafePath, match="more than ten times"):
        ap.clean(raw + "/x")


@pytest.mark.parametrize("path, kind, exp, owner, rest", [
    ("1/abc/artifacts", "run", "1", "abc", ""),
    ("1/abc/artifacts/model/MLmodel", "run", "1", "abc", "model/MLmodel"),
    ("7/models/m-123/artifacts", "model", "7", "m-123", ""),
    ("7/models/m-123/artifacts/a/b", "model", "7", "m-123", "a/b"),
])
def test_split_proxied(path: str, kind: str, exp: str, owner: str, rest: str) -> None:
    assert ap.split_proxied(path) == ap.ProxiedPath(kind, exp, owner, rest)


@pytest.mark.parametrize("path", ["", "1", "1/abc", "1/abc/other/x", "1/models/m-1/x", "1/models/artifacts/x"])
def test_split_proxied_refuses_other_places(path: str) -> None:
    with pytest.raises(UsageError, match="names no run or logged model"):
        ap.split_proxied(path)


@pytest.fixture
def run(tmp_path: Path) -> Place:
    """A run folder with artifacts, a secret beside it, and links planted inside pointing in and out."""
    run_dir = tmp_path / "store" / "runs" / "r1"
    (run_dir / "artifacts" / "sub").mkdir(parents=True)
    (run_dir / "artifacts" / "a.txt").write_text("hello")
    (run_dir / "artifacts" / "sub" / "b.bin").write_bytes(b"\x00" * 10)
    (run_dir / "logs").mkdir()
    (run_dir / "logs" / "stdout.log").write_text("out")
    (tmp_path / "secret.txt").write_text("top secret")
    (run_dir / "artifacts" / "to_etc").symlink_to("/etc")
    (run_dir / "artifacts" / "to_secret").symlink_to(tmp_path / "secret.txt")
    (run_dir / "artifacts" / "to_a").symlink_to("a.txt")  # inside: fine
    (run_dir / "artifacts" / "to_log").symlink_to("../logs/stdout.log")  # inside the run folder: fine
    return Place(run_dir, "artifacts")


def _read(place: Place, rest: str) -> bytes | None:
    found = ap.open_file(place, rest)
    if found is None:
        return None
    with found[0] as fh:
        return fh.read()


def test_reads_and_lists_real_files(run: Place) -> None:
    assert _read(run, "a.txt") == b"hello"
    assert _read(run, "sub/b.bin") == b"\x00" * 10
    assert _read(run, "missing.txt") is None
    assert _read(run, "to_a") == b"hello" and _read(run, "to_log") == b"out"
    names = {e.name: (e.is_dir, e.size) for e in ap.list_dir(run, "") or []}
    assert names == {"a.txt": (False, 5), "sub": (True, None), "to_a": (False, 5), "to_log": (False, 3)}
    assert ap.list_dir(run, "sub") == [ap.Entry("b.bin", False, 10)]
    assert ap.list_dir(run, "nope") is None and ap.list_dir(run, "a.txt") is None


@pytest.mark.parametrize("rest", ["to_etc/passwd", "to_secret", "to_etc"])
def test_links_out_are_refused(run: Place, rest: str) -> None:
    with pytest.raises(UnsafePath, match="outside"):
        ap.open_file(run, rest)


def test_a_directory_is_not_a_file(run: Place) -> None:
    with pytest.raises(UsageError, match="refers to a directory"):
        ap.open_file(run, "sub")


def test_swapped_artifacts_folder_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r2"
    run_dir.mkdir(parents=True)
    (run_dir / "artifacts").symlink_to("/etc")
    place = Place(run_dir, "artifacts")
    with pytest.raises(UnsafePath):
        ap.open_file(place, "passwd")
    with pytest.raises(UnsafePath):
        ap.list_dir(place, "")
    with pytest.raises(UnsafePath):
        ap.Upload(place, "x.txt")
    assert not Path("/etc/x.txt").exists()


def test_descriptor_check_catches_what_a_name_check_missed(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    with pytest.raises(UnsafePath, match="leads outside"):
        ap._inside(fd, tmp_path / "elsewhere", "folder")


def test_upload_is_published_whole_by_rename(run: Place) -> None:
    upload = ap.Upload(run, "new/deep/c.txt")
    upload.write(b"part one, ")
    target = run.anchor / "artifacts" / "new" / "deep" / "c.txt"
    assert not target.exists()  # nothing under the real name until the end
    assert [e.name for e in ap.list_dir(run, "new/deep") or []] == []  # the temp file is hidden
    upload.write(b"part two")
    upload.commit()
    assert target.read_bytes() == b"part one, part two"
    assert os.listdir(target.parent) == ["c.txt"]


def test_a_killed_uploads_temp_file_is_swept_when_its_folder_is_listed(run: Place) -> None:
    """A server killed mid-upload leaves its temp file (never listed); the next listing of that folder removes
    it once its writer is gone, and leaves a live writer's (another worker's) and an unnamed older one."""
    dead = subprocess.run([sys.executable, "-c", "import os; from proj.execution.liveness import writer_tag;"
                           " print(writer_tag())"], capture_output=True, text=True, check=True).stdout.strip()
    live = ap.Upload(run, "sub/live.bin")  # this process: alive
    live.write(b"in flight")
    folder = run.anchor / "artifacts" / "sub"
    (folder / f"{ap.UPLOAD_PREFIX}{dead}-0123456789abcdef.tmp").write_bytes(b"x" * 1000)
    (folder / f"{ap.UPLOAD_PREFIX}0123456789abcdef.tmp").write_bytes(b"older proj")
    assert [e.name for e in ap.list_dir(run, "sub") or []] == ["b.bin"]
    left = sorted(n for n in os.listdir(folder) if n.startswith(ap.UPLOAD_PREFIX))
    assert left == sorted([live.tmp, f"{ap.UPLOAD_PREFIX}0123456789abcdef.tmp"])
    live.commit()
    assert (folder / "live.bin").read_bytes() == b"in flight"


def test_aborted_upload_leaves_nothing_and_keeps_the_old_file(run: Place) -> None:
    upload = ap.Upload(run, "a.txt")
    upload.write(b"half of a new vers")
    upload.abort()
    assert (run.anchor / "artifacts" / "a.txt").read_text() == "hello"
    assert not [n for n in os.listdir(run.anchor / "artifacts") if n.startswith(ap.UPLOAD_PREFIX)]


def test_upload_through_a_link_out_writes_nothing_outside(run: Place, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (run.anchor / "artifacts" / "to_outside").symlink_to(outside)
    with pytest.raises(UnsafePath):
        ap.Upload(run, "to_outside/evil.txt")
    with pytest.raises(UnsafePath):
        ap.Upload(run, "to_outside/new/evil.txt")
    assert list(outside.iterdir()) == []


def test_upload_over_a_link_replaces_the_link_not_its_target(run: Place, tmp_path: Path) -> None:
    upload = ap.Upload(run, "to_secret")
    upload.write(b"mine")
    upload.commit()
    assert (tmp_path / "secret.txt").read_text() == "top secret"
    assert not (run.anchor / "artifacts" / "to_secret").is_symlink()


def test_upload_refuses_folders_in_the_way(run: Place) -> None:
    with pytest.raises(UsageError, match="is a folder"):
        ap.Upload(run, "sub")
    with pytest.raises(UsageError, match="through a file"):
        ap.Upload(run, "a.txt/inner.txt")
    with pytest.raises(UsageError, match="file name"):
        ap.Upload(run, "")


def test_delete_removes_links_not_their_targets(run: Place, tmp_path: Path) -> None:
    ap.delete(run, "to_secret")
    ap.delete(run, "to_etc")
    assert (tmp_path / "secret.txt").read_text() == "top secret" and Path("/etc/passwd").exists()
    ap.delete(run, "sub")
    ap.delete(run, "missing/x.txt")  # nothing there: nothing to do, as MLflow
    assert sorted(os.listdir(run.anchor / "artifacts")) == ["a.txt", "to_a", "to_log"]


def test_delete_inside_a_tree_with_links_out_stays_inside(run: Place, tmp_path: Path) -> None:
    (run.anchor / "artifacts" / "sub" / "to_tmp").symlink_to(tmp_path)
    ap.delete(run, "sub")
    assert (tmp_path / "secret.txt").exists() and not (run.anchor / "artifacts" / "sub").exists()
    with pytest.raises(UnsafePath):
        ap.delete(run, "to_etc/passwd")


def test_delete_of_the_root_empties_it(run: Place, tmp_path: Path) -> None:
    ap.delete(run, "")
    assert (run.anchor / "artifacts").is_dir() and os.listdir(run.anchor / "artifacts") == []
    assert (tmp_path / "secret.txt").exists() and (run.anchor / "logs" / "stdout.log").exists()
