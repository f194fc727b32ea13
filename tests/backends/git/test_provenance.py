"""Local sources: git work-tree provenance (dirty patch that restores exactly), --require-clean, snapshots."""
from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from helpers.cli import require
from helpers.git_repos import commit, git, make_repo, write

pytestmark = pytest.mark.git
BINARY = bytes(range(256)) * 8


@pytest.fixture
def worktree(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    require(shutil.which("git") is not None, "git executable not found")
    path = tmp_path / "work"
    shas = make_repo(path)
    shas["bin"] = commit(path, {"sub/weights.bin": BINARY}, "binary")
    return path, shas


def run(proj, path: Path, *args: str):
    return proj("run", str(path), "--env-manager", "local", *args)


def last(proj) -> dict:
    return proj.show(proj.runs()[0]["id"])


def artifact(record: dict, name: str) -> Path:
    return Path(record["run_dir"]) / "artifacts" / "source" / name


def test_clean_tree_records_commit_branch_and_no_patch(proj, worktree) -> None:
    path, shas = worktree
    git(path, "remote", "add", "origin", "https://bob:hunter2@example.com/org/work.git")
    out = run(proj, path / "sub")
    assert out.code == 0 and "version: two" in out.stdout, out
    record = last(proj)
    source = record["source"]
    assert source["commit"] == shas["bin"] and source["branch"] == "main" and source["dirty"] is False
    assert source["remote"] == "https://example.com/org/work.git" and "hunter2" not in str(record)
    assert source["repo_path"] == "sub" and source["worktree"] == str(path)
    assert not artifact(record, "uncommitted.patch").exists()
    assert [r["id"] for r in proj("runs", "list", "--commit", shas["bin"][:7], "--json").json()] == [record["id"]]


def test_dirty_tree_patch_restores_exactly(proj, worktree, tmp_path) -> None:
    path, shas = worktree
    write(path, {"sub/version.txt": "edited, unstaged\n", "sub/weights.bin": BINARY[::-1] + b"\0tail",
                 "sub/new_staged.py": "x = 1\n", "notes.txt": "untracked\n"})
    git(path, "add", "sub/weights.bin", "sub/new_staged.py")
    (path / "README").unlink()
    out = run(proj, path / "sub")
    assert out.code == 0 and "version: edited, unstaged" in out.stdout, out
    record = last(proj)
    source = record["source"]
    assert source["dirty"] is True and source["commit"] == shas["bin"]
    assert source["untracked"] == ["notes.txt"]
    restored = tmp_path / "restored"
    git(tmp_path, "clone", "-q", str(path), str(restored))
    git(restored, "checkout", "-q", source["commit"])
    git(restored, "apply", "--binary", str(artifact(record, "uncommitted.patch")))
    for rel in ("sub/version.txt", "sub/weights.bin", "sub/new_staged.py"):
        assert (restored / rel).read_bytes() == (path / rel).read_bytes(), rel
    assert not (restored / "README").exists()
    with tarfile.open(artifact(record, "untracked.tar.gz")) as tar:
        assert tar.getnames() == ["notes.txt"]


def test_require_clean_refuses_a_dirty_tree(proj, worktree) -> None:
    path, _ = worktree
    assert run(proj, path / "sub", "--require-clean").code == 0
    write(path, {"sub/version.txt": "dirty\n", "untracked.txt": "u\n"})
    out = run(proj, path / "sub", "--require-clean")
    assert out.code != 0 and "--require-clean" in out.stderr and "M sub/version.txt" in out.stderr, out
    assert len(out.stderr.strip().splitlines()) == 1 and len(proj.runs()) == 1, out


def test_untracked_files_alone_do_not_make_a_tree_dirty(proj, worktree) -> None:
    path, _ = worktree
    write(path, {"scratch.txt": "s\n"})
    out = run(proj, path / "sub", "--require-clean")
    assert out.code == 0, out
    assert last(proj)["source"]["untracked"] == ["scratch.txt"]


def test_run_store_inside_the_tree_is_not_listed_as_untracked(proj, worktree) -> None:
    path, _ = worktree
    out = proj("run", "sub", "--env-manager", "local", cwd=path, env={"PROJ_TRACKING_URI": ""})
    assert out.code == 0, out
    again = proj("runs", "list", "--json", cwd=path, env={"PROJ_TRACKING_URI": ""})
    assert again.code == 0 and again.json()[0]["source"].get("untracked") is None, again


def test_plain_directory_gets_a_snapshot_honouring_ignore_files(proj, make_project) -> None:
    root = make_project({
        "MLproject": "entry_points:\n  main:\n    command: python -c 'print(1)'\n",
        "train.py": "print('hi')\n", "lib/util.py": "x = 1\n", "lib/keep.log": "kept by !\n",
        ".gitignore": "*.log\n!lib/keep.log\n/data/\n", ".projignore": "secret.txt\n",
        "secret.txt": "s", "run.log": "l", "data/big.csv": "1,2", "sub/data/small.csv": "3,4",
        "env/pyvenv.cfg": "home = x\n", "env/lib/site.py": "", "__pycache__/x.pyc": "",
        ".proj/proj.db": "", "lib/__pycache__/y.pyc": "",
    })
    out = run(proj, root)
    assert out.code == 0, out
    record = last(proj)
    with tarfile.open(artifact(record, "snapshot.tar.gz")) as tar:
        names = sorted(tar.getnames())
    assert names == [".gitignore", ".projignore", "MLproject", "lib/keep.log", "lib/util.py", "sub/data/small.csv",
                     "train.py"]
    assert record["source"]["snapshot"]["files"] == 7 and record["source"]["snapshot"]["cap_mb"] == 50


def test_snapshot_over_the_cap_is_skipped_and_says_so(proj, make_project) -> None:
    root = make_project({"MLproject": "entry_points:\n  main:\n    command: python -c 'print(1)'\n",
                         "blob.bin": b"\0" * 300_000})
    out = proj("run", str(root), "--env-manager", "local", env={"PROJ_SNAPSHOT_MAX_MB": "0.1"})
    assert out.code == 0, out
    record = last(proj)
    assert "over the 0.1 MB cap" in record["source"]["snapshot"]["skipped"]
    assert not artifact(record, "snapshot.tar.gz").exists()


def test_require_clean_outside_git_is_an_error(proj, make_project) -> None:
    root = make_project({"MLproject": "entry_points:\n  main:\n    command: python -c 'print(1)'\n"})
    out = run(proj, root, "--require-clean")
    assert out.code != 0 and "not in a git work tree" in out.stderr, out


def test_version_on_a_plain_directory_is_an_error(proj, make_project) -> None:
    root = make_project({"MLproject": "entry_points:\n  main:\n    command: python -c 'print(1)'\n"})
    out = run(proj, root, "-v", "main")
    assert out.code == 2 and "needs a git repository" in out.stderr, out


def test_snapshot_archive_is_readable_in_memory() -> None:
    from proj.sources.snapshot import make_archive

    archive = make_archive(Path(__file__).parent, ["test_provenance.py"])
    assert archive.data is not None
    with tarfile.open(fileobj=io.BytesIO(archive.data)) as tar:
        assert tar.getnames() == ["test_provenance.py"]
