"""`proj reproduce` trusts only what the child could not write (issue 11, section 1): the run folder is mounted
into a docker_env container and proj runs as root on the host, so request.json and artifacts/source/ there are
checked against the store's record, and the store's shared snapshot is never reachable through a run folder."""
from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import pytest

from helpers.cli import require
from proj.errors import UnsafePath
from proj.paths import link_or_copy

# The entry point: `python tamper.py MODE MARK`. It first writes /host/MARK when /host exists (what a mount the
# tampering smuggled in would allow), then tampers with its own run folder the way MODE says.
TAMPER = '''\
import io, json, os, sys, tarfile
mode, mark = sys.argv[1], sys.argv[2]
if os.path.isdir("/host"):
    open(os.path.join("/host", mark), "w").write("escaped")
run = os.path.dirname(os.environ["PROJ_ARTIFACT_DIR"])
src = os.path.join(os.environ["PROJ_ARTIFACT_DIR"], "source")
if mode == "request":
    path = os.path.join(run, "request.json")
    req = json.load(open(path))
    req["options"]["docker_args"] = ["volume=/tmp:/host"]
    open(path, "w").write(json.dumps(req))
elif mode == "snapshot":  # rewritten in place, as open(..., "r+b") on a hard link would reach the shared blob
    path = os.path.join(src, "snapshot.tar.gz")
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as out:
        for m, data in members:
            if m.name == "MLproject":
                data = data.replace(b"docker_env:\\n", b"docker_env:\\n  volumes: ['/tmp:/host']\\n")
            if m.name == "tamper.py":
                data = b"open('/tmp/' + __import__('sys').argv[2], 'w').write('escaped')\\n"
            if data is not None:
                m.size = len(data)
            out.addfile(m, io.BytesIO(data) if data is not None else None)
    with open(path, "r+b") as fh:
        fh.write(buf.getvalue())
        fh.truncate()
elif mode == "plant":  # a clean run gets a patch and untracked files it never had
    os.makedirs(src, exist_ok=True)
    patch = ("diff --git a/tamper.py b/tamper.py\\n--- a/tamper.py\\n+++ b/tamper.py\\n@@ -1 +1 @@\\n"
             "-import io, json, os, sys, tarfile\\n"
             "+import sys; open('/tmp/' + sys.argv[2], 'w').write('escaped'); raise SystemExit(0)\\n")
    open(os.path.join(src, "uncommitted.patch"), "w").write(patch)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as out:
        data = b"escaped\\n"
        info = tarfile.TarInfo("planted.txt")
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    open(os.path.join(src, "untracked.tar.gz"), "wb").write(buf.getvalue())
elif mode == "patch":  # the recorded diff of a dirty run, rewritten in place
    with open(os.path.join(src, "uncommitted.patch"), "r+b") as fh:
        text = fh.read().replace(b"+# local edit", b"+import os; os.system('touch /tmp/' + sys.argv[2])")
        fh.seek(0)
        fh.write(text)
        fh.truncate()
elif mode == "leak":
    os.symlink("/etc/hostname", os.path.join(src, "leak"))
print("tampered", mode)
'''


def _project(make_project, *, docker: str | None = None, mode: str, mark: str, name: str) -> Path:
    env = f"docker_env:\n  image: {docker}\n" if docker else ""
    mlproject = f"name: {name}\n{env}entry_points:\n  main:\n    command: 'python tamper.py {mode} {mark}'\n"
    return make_project({"MLproject": mlproject, "tamper.py": TAMPER}, name=name)


def _one_line(out) -> str:
    assert out.code == 2 and "Traceback" not in out.stderr, out
    [line] = [text for text in out.stderr.splitlines() if text.strip()]
    return line


def _blobs_intact(proj) -> None:
    """Every shared snapshot in the store still has the content its name says."""
    blobs = list((Path(proj.env["PROJ_TRACKING_URI"]) / "snapshots").glob("*.tar.gz"))
    assert blobs
    for blob in blobs:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() + ".tar.gz" == blob.name, blob


@pytest.fixture
def mark() -> str:
    """A unique file name under /tmp that no test may create."""
    name = f"proj-escape-{uuid.uuid4().hex[:12]}"
    yield name
    Path("/tmp", name).unlink(missing_ok=True)


@pytest.fixture
def docker_image() -> str:
    from backends.docker.test_runs import BASE

    try:
        import docker

        docker.from_env().images.get(BASE)
    except Exception as exc:  # noqa: BLE001 - no daemon or no image
        require(False, f"docker or image {BASE} unavailable ({exc})")
    return BASE


def _git_project(tmp_path: Path, mode: str, mark: str, docker: str | None = None) -> Path:
    require(shutil.which("git") is not None, "git is not installed")
    from helpers.git_repos import commit, git

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    env = f"docker_env:\n  image: {docker}\n" if docker else ""
    name = f"ptest-{uuid.uuid4().hex[:10]}"
    commit(repo, {"MLproject": f"name: {name}\n{env}entry_points:\n  main:\n"
                                f"    command: 'python tamper.py {mode} {mark}'\n", "tamper.py": TAMPER}, "trust")
    return repo


# --- request.json ----------------------------------------------------------------------------------------

@pytest.mark.docker
def test_container_rewriting_request_json_cannot_add_a_mount_to_the_reproduction(proj, make_project, mark,
                                                                                 docker_image) -> None:
    root = _project(make_project, docker=docker_image, mode="request", mark=mark, name=f"ptest-{uuid.uuid4().hex[:10]}")
    run = proj("run", str(root), "--no-build-image")
    assert run.code == 0 and "tampered request" in run.stdout, run
    original = proj.runs()[0]["id"]
    out = proj("reproduce", original)
    assert "recorded request was modified after the run (sha256 mismatch)" in _one_line(out), out
    assert not Path("/tmp", mark).exists() and len(proj.runs()) == 1


def test_request_is_replayed_from_the_store_and_the_file_only_checked(proj, make_project, mark) -> None:
    root = _project(make_project, mode="request", mark=mark, name="local-request")
    assert proj("run", str(root), "--env-manager", "local").code == 0
    run = proj.show(proj.runs()[0]["id"])
    request_file = Path(run["run_dir"]) / "request.json"
    assert json.loads(request_file.read_text())["options"]["docker_args"] == ["volume=/tmp:/host"]  # the child's edit
    out = proj("reproduce", run["id"])
    assert f"run {run['id'][:12]}'s recorded request was modified after the run (sha256 mismatch)" in _one_line(out)
    assert len(proj.runs()) == 1
    request_file.unlink()  # no file at all: the store's copy is all reproduce needs
    again = proj("reproduce", run["id"])
    assert again.code == 0 and "verdict: identical" in again.stdout, again


def test_a_run_recorded_without_the_request_in_the_store_drops_the_files_options(proj, make_project, mark) -> None:
    import sqlite3

    root = _project(make_project, mode="request", mark=mark, name="legacy-request")
    assert proj("run", str(root), "--env-manager", "local").code == 0
    run_id = proj.runs()[0]["id"]
    with sqlite3.connect(Path(proj.env["PROJ_TRACKING_URI"]) / "proj.db") as db:  # as an older proj left it
        db.execute("UPDATE runs SET request_json = NULL WHERE id = ?", (run_id,))
    out = proj("reproduce", run_id)
    assert out.code == 0 and "request.json cannot be verified, so its backend options (" in out.stderr, out
    assert "docker_args" in out.stderr and "are not used" in out.stderr, out


# --- the source snapshot ---------------------------------------------------------------------------------

@pytest.mark.docker
def test_container_rewriting_its_snapshot_in_place_changes_neither_the_store_nor_the_reproduction(
        proj, make_project, mark, docker_image) -> None:
    root = _project(make_project, docker=docker_image, mode="snapshot", mark=mark, name=f"ptest-{uuid.uuid4().hex[:10]}")
    run = proj("run", str(root), "--no-build-image")
    assert run.code == 0 and "tampered snapshot" in run.stdout, run
    _blobs_intact(proj)
    out = proj("reproduce", proj.runs()[0]["id"])
    assert "cannot reproduce: the recorded source snapshot was modified (sha256 mismatch)" in _one_line(out), out
    assert not Path("/tmp", mark).exists() and len(proj.runs()) == 1


def test_a_child_rewriting_its_snapshot_in_place_leaves_the_shared_copy_intact(proj, make_project, mark) -> None:
    root = _project(make_project, mode="snapshot", mark=mark, name="local-snapshot")
    assert proj("run", str(root), "--env-manager", "local").code == 0
    _blobs_intact(proj)
    out = proj("reproduce", proj.runs()[0]["id"])
    assert "cannot reproduce: the recorded source snapshot was modified (sha256 mismatch)" in _one_line(out), out
    assert not Path("/tmp", mark).exists()
    # A later run of the same directory records the pristine snapshot again, and reproduces fine.
    assert proj("run", str(root), "--env-manager", "local").code == 0
    _blobs_intact(proj)
    assert len(list((Path(proj.env["PROJ_TRACKING_URI"]) / "snapshots").glob("*.tar.gz"))) == 1


def test_a_snapshot_already_damaged_in_the_store_is_rewritten_before_a_run_uses_it(proj, make_project, mark) -> None:
    root = _project(make_project, mode="none", mark=mark, name="damaged-blob")
    assert proj("run", str(root), "--env-manager", "local").code == 0
    [blob] = (Path(proj.env["PROJ_TRACKING_URI"]) / "snapshots").glob("*.tar.gz")
    blob.chmod(0o644)
    blob.write_bytes(b"damaged through an older proj's hard link")
    assert proj("run", str(root), "--env-manager", "local").code == 0
    _blobs_intact(proj)
    out = proj("reproduce", proj.runs()[0]["id"])
    assert out.code == 0 and "verdict: identical" in out.stdout, out


# --- planted and rewritten patch files -------------------------------------------------------------------

@pytest.mark.docker
def test_patch_files_a_container_plants_beside_a_clean_run_are_ignored(proj, tmp_path, mark, docker_image) -> None:
    repo = _git_project(tmp_path, "plant", mark, docker=docker_image)
    run = proj("run", str(repo), "--no-build-image")
    assert run.code == 0 and "tampered plant" in run.stdout, run
    out = proj("reproduce", proj.runs()[0]["id"])
    assert out.code == 0 and "with its uncommitted changes" not in out.stderr, out
    assert not Path("/tmp", mark).exists()
    new = proj.show(proj.runs()[0]["id"])
    assert "artifacts" not in new["source"] and not new["source"].get("dirty")


def test_the_recorded_clean_state_wins_over_planted_patch_files(proj, tmp_path, mark) -> None:
    repo = _git_project(tmp_path, "plant", mark)
    assert proj("run", str(repo), "--env-manager", "local").code == 0
    original = proj.show(proj.runs()[0]["id"])
    assert (Path(original["run_dir"]) / "artifacts/source/uncommitted.patch").is_file()  # planted by the child
    out = proj("reproduce", original["id"])
    assert out.code == 0 and "verdict: identical" in out.stdout, out
    assert not Path("/tmp", mark).exists()  # the planted patch would have made the reproduction write it
    new = proj.show(proj.runs()[0]["id"])
    assert not (Path(new["run_dir"]) / "artifacts/source/planted.txt").exists()


def test_a_dirty_runs_patch_rewritten_by_the_child_refuses_the_reproduction(proj, tmp_path, mark) -> None:
    repo = _git_project(tmp_path, "patch", mark)
    (repo / "tamper.py").write_text(TAMPER + "# local edit\n")  # uncommitted: recorded as the run's diff
    assert proj("run", str(repo), "--env-manager", "local").code == 0
    original = proj.show(proj.runs()[0]["id"])
    assert original["source"]["dirty"] and "# local edit" not in (Path(original["run_dir"]) /
                                                                  "artifacts/source/uncommitted.patch").read_text()
    out = proj("reproduce", original["id"])
    line = _one_line(out)
    assert "the recorded uncommitted changes (uncommitted.patch) was modified (sha256 mismatch)" in line, out
    assert not Path("/tmp", mark).exists() and len(proj.runs()) == 1


# --- symlinks in artifacts/source ------------------------------------------------------------------------

def test_a_planted_symlink_is_not_carried_into_the_reproduction(proj, make_project, mark) -> None:
    root = _project(make_project, mode="leak", mark=mark, name="leak")
    assert proj("run", str(root), "--env-manager", "local").code == 0
    original = proj.show(proj.runs()[0]["id"])
    assert (Path(original["run_dir"]) / "artifacts/source/leak").is_symlink()
    out = proj("reproduce", original["id"])
    assert out.code == 0, out
    new = proj.show(proj.runs()[0]["id"])
    source = Path(new["run_dir"]) / "artifacts/source"
    # Its own entry point plants a new one; none came from the original run, and the snapshot is a plain file.
    assert (source / "snapshot.tar.gz").is_file() and not (source / "snapshot.tar.gz").is_symlink()
    assert {p.name for p in source.iterdir()} <= {"snapshot.tar.gz", "leak"}


def test_a_snapshot_replaced_by_a_symlink_is_refused(proj, make_project, mark, tmp_path) -> None:
    root = _project(make_project, mode="none", mark=mark, name="symlinked-snapshot")
    assert proj("run", str(root), "--env-manager", "local").code == 0
    original = proj.show(proj.runs()[0]["id"])
    snapshot = Path(original["run_dir"]) / "artifacts/source/snapshot.tar.gz"
    [blob] = (Path(proj.env["PROJ_TRACKING_URI"]) / "snapshots").glob("*.tar.gz")
    snapshot.unlink()
    snapshot.symlink_to(blob)  # even a link to the right bytes: a run folder's symlink is never followed
    out = proj("reproduce", original["id"])
    assert "snapshot.tar.gz is not a plain file" in _one_line(out), out


def test_link_or_copy_refuses_a_symlink(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host file")
    (tmp_path / "leak").symlink_to(secret)
    with pytest.raises(UnsafePath, match="not a regular file"):
        link_or_copy(tmp_path / "leak", tmp_path / "out" / "leak")
    assert not (tmp_path / "out" / "leak").exists()
