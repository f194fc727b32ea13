"""No name a run chose (MLflow run and model names, artifact entries, archive members, #subdir, recorded
model paths) makes proj write or run anything outside the folder it belongs in (issue 11, section 1)."""
from __future__ import annotations

import os
import shutil
import tarfile
import uuid
from pathlib import Path

import pytest

from helpers.cli import require
from proj.errors import UnsafePath
from proj.paths import contained, safe_name, unsafe_reason

MLPROJECT = "name: hostile\nentry_points:\n  main:\n    command: python train.py\n"

# Writes MLflow's file-store layout by hand, the way mlflow does, with names chosen to escape the run folder.
HOSTILE_WRITER = '''\
import os, sys
from urllib.parse import urlparse
root = urlparse(os.environ["MLFLOW_TRACKING_URI"]).path
OUT = sys.argv[1]  # a unique directory outside the run folder that must stay untouched

def write(rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)

write("1/aaaa1111/meta.yaml", "run_id: aaaa1111\\nrun_name: main\\nstart_time: 1700000000000\\nstatus: 3\\n")
write("1/aaaa1111/params/lr", "0.1")
mlmodel = "flavors: {python_function: {loader_module: mlflow.pyfunc.model}}\\n"
for model_id, name in (("m-abs", OUT + "/x"), ("m-up", "../../escape")):
    write(f"1/models/{model_id}/meta.yaml", f"model_id: {model_id}\\nname: {name}\\n")
    write(f"1/models/{model_id}/artifacts/MLmodel", mlmodel)
    write(f"1/models/{model_id}/artifacts/data.txt", "escaped")
for run_id, name, start in (("bbbb2222", "../../../x", 2), ("cccc3333", OUT + "/abs-run", 3)):
    write(f"1/{run_id}/meta.yaml", f"run_id: {run_id}\\nrun_name: {name}\\nstart_time: 170000000{start}000\\n")
    write(f"1/{run_id}/params/p", "v")
    write(f"1/{run_id}/artifacts/file.txt", "escaped")
print("hostile store written")
'''


# --- the helper ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, reason", [
    ("/tmp/x", "is absolute"), ("../x", "contains '..'"), ("a/../../x", "contains '..'"),
    ("a\\..\\x", "contains a backslash"), ("C:x", "starts with a drive letter"), ("a\0b", "contains a NUL byte"),
    ("", "is empty"), ("./", "is empty"), (".", "is empty"),
])
def test_contained_refuses_names_that_are_not_plain_relative_paths(tmp_path: Path, name: str, reason: str) -> None:
    with pytest.raises(UnsafePath) as err:
        contained(tmp_path, name, what="model name")
    message = str(err.value)
    assert reason in message and repr(name) in message and str(tmp_path.resolve()) in message
    assert "\n" not in message and unsafe_reason(name) == reason


def test_contained_follows_existing_symlinks_before_deciding(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "inner").mkdir(parents=True)
    outside.mkdir()
    (root / "out").symlink_to(outside)
    (root / "dangling").symlink_to(outside / "nothing-yet")
    (root / "self").symlink_to(root)
    (root / "ok").symlink_to(root / "inner")
    assert contained(root, "a/b/c", what="x") == root.resolve() / "a/b/c"
    assert contained(root, "ok/f", what="x") == root.resolve() / "inner/f"
    for name in ("out", "out/f", "dangling", "dangling/f"):
        with pytest.raises(UnsafePath, match="leads outside through a symlink"):
            contained(root, name, what="x")
    with pytest.raises(UnsafePath, match="resolves to the folder itself"):
        contained(root, "self", what="x")


def test_contained_messages_are_one_short_line(tmp_path: Path) -> None:
    with pytest.raises(UnsafePath) as err:
        contained(tmp_path, "/" + "x\n" * 5000, what="model name")
    assert len(str(err.value)) < 400 and "\n" not in str(err.value)


def test_safe_name_is_stable_and_plain() -> None:
    assert safe_name("../x") == safe_name("../x") != safe_name("../y")
    assert unsafe_reason(safe_name("/abs")) is None and safe_name("/abs").startswith("unsafe-")


# --- MLflow names chosen by the entry point --------------------------------------------------------------

def _hostile_project(make_project, out: Path) -> Path:
    return make_project({"MLproject": MLPROJECT.replace("python train.py", f"python train.py {out}"),
                         "train.py": HOSTILE_WRITER})


def test_hostile_mlflow_names_are_stored_under_generated_names(proj, make_project, tmp_path: Path) -> None:
    out = Path(f"/tmp/proj-escape-{uuid.uuid4().hex[:12]}")  # absolute, outside pytest's tmp_path too
    root = _hostile_project(make_project, out)
    try:
        result = proj("run", str(root), "--env-manager", "local")
        assert result.code == 0, result
        run = proj.show(proj.runs()[0]["id"])
        run_dir = Path(run["run_dir"])
        artifacts = run_dir / "artifacts"
        assert run["status"] == "FINISHED"
        # nothing escaped: not the absolute names, not the '..' names relative to any folder on the way
        assert not out.exists()
        for base in (artifacts, artifacts / "mlflow", artifacts / "mlflow" / "models", run_dir):
            assert not (base / "../../escape").resolve().exists() or (base / "../../escape").resolve() == base
        assert not (artifacts / "../../../x").resolve().exists()
        assert not (artifacts / "mlflow" / "../../../x").resolve().exists()
        assert not (run_dir.parent / "escape").exists() and not (run_dir.parent.parent / "escape").exists()
        # one warning line per refused name, saying where the data went instead
        warnings = [line for line in result.stderr.splitlines() if "warning: mlflow store:" in line]
        assert any("logged model name" in w and str(out) in w and "mlflow/models/m-abs" in w for w in warnings), result
        assert any("'../../escape'" in w and "mlflow/models/m-up" in w for w in warnings), result
        assert not any("../../../x" in w or "abs-run" in w for w in warnings), result  # run names name no path
        # the data is kept, under the generated names
        assert (artifacts / "mlflow/models/m-abs/data.txt").read_text() == "escaped"
        assert (artifacts / "mlflow/models/m-up/data.txt").read_text() == "escaped"
        # the other MLflow runs are child runs: their names are only text, their files in their own run folders
        children = {proj.show(c)["name"]: proj.show(c) for c in run["children"]}
        assert set(children) == {"../../../x", str(out / "abs-run")}
        for child in children.values():
            assert (Path(child["run_dir"]) / "artifacts" / "file.txt").read_text() == "escaped"
            assert Path(child["run_dir"]).parent == run_dir.parent and child["params"][0]["value"] == "v"
        assert [(p["key"], p["value"]) for p in run["params"]] == [("lr", "0.1")]
        models = proj("models", "list", "--json").json()
        assert {m["path"] for m in models} == {"mlflow/models/m-abs", "mlflow/models/m-up"}
    finally:
        shutil.rmtree(out, ignore_errors=True)


SYMLINK_PLANTER = '''\
import os, sys
from urllib.parse import urlparse
root = urlparse(os.environ["MLFLOW_TRACKING_URI"]).path
OUT = sys.argv[1]
artifacts = os.path.join(os.path.dirname(os.path.dirname(root)), "artifacts")
os.makedirs(artifacts, exist_ok=True)
os.symlink(OUT, os.path.join(artifacts, "mlflow"))  # so that artifacts/mlflow/... would land in OUT
os.symlink(OUT + "/plot.txt", os.path.join(artifacts, "plot.txt"))  # a dangling link the copy would follow
os.makedirs(os.path.join(root, "1/aaaa1111/params"))
os.makedirs(os.path.join(root, "1/bbbb2222/artifacts"))
open(os.path.join(root, "1/aaaa1111/meta.yaml"), "w").write("run_id: aaaa1111\\nrun_name: main\\n")
os.makedirs(os.path.join(root, "1/aaaa1111/artifacts"))
open(os.path.join(root, "1/aaaa1111/artifacts/plot.txt"), "w").write("escaped")
open(os.path.join(root, "1/bbbb2222/meta.yaml"), "w").write("run_id: bbbb2222\\nrun_name: two\\nstart_time: 5\\n")
open(os.path.join(root, "1/bbbb2222/artifacts/f.txt"), "w").write("escaped")
os.symlink("/etc/hostname", os.path.join(root, "1/aaaa1111/params/secret"))  # reading the host's files
'''


def test_symlinks_planted_in_the_run_folder_do_not_redirect_writes(proj, make_project) -> None:
    out = Path(f"/tmp/proj-escape-{uuid.uuid4().hex[:12]}")
    out.mkdir()
    root = make_project({"MLproject": MLPROJECT.replace("python train.py", f"python train.py {out}"),
                         "train.py": SYMLINK_PLANTER})
    try:
        result = proj("run", str(root), "--env-manager", "local")
        assert result.code == 0, result
        run = proj.show(proj.runs()[0]["id"])
        assert run["status"] == "FINISHED"
        assert list(out.iterdir()) == [], result
        assert "secret" not in {p["key"] for p in run["params"]}
        assert "symlink" in result.stderr and "not copied" in result.stderr, result
    finally:
        shutil.rmtree(out, ignore_errors=True)


# --- #subdir through a symlink ---------------------------------------------------------------------------

OUTSIDE_PROJECT = {"MLproject": "name: outside\nentry_points:\n  main:\n    command: python -c \"open('RAN', 'w')\"\n"}


def _outside_project(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    for rel, text in OUTSIDE_PROJECT.items():
        (outside / rel).write_text(text)
    return outside


def _assert_refused(proj, out, outside: Path) -> None:
    assert out.code != 0 and "Traceback" not in out.stderr, out
    [line] = [text for text in out.stderr.splitlines() if text.strip()]
    assert "#subdir 'sub' leads outside through a symlink" in line and str(outside) in line, out
    assert proj.runs() == [] and not (outside / "RAN").exists()


def test_git_subdir_symlinked_out_of_the_checkout_is_refused(proj, tmp_path: Path) -> None:
    require(shutil.which("git") is not None, "git is not installed")
    from helpers.git_repos import commit, file_url, git

    outside = _outside_project(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "sub").symlink_to(outside)
    commit(repo, {"README": "x\n"}, "a symlinked subdir")
    assert git(repo, "ls-files", "-s", "sub").startswith("120000")  # committed as a symlink
    out = proj("run", file_url(repo) + "#sub", "--env-manager", "local")
    _assert_refused(proj, out, outside)


def test_local_subdir_symlinked_out_of_the_project_is_refused(proj, tmp_path: Path) -> None:
    outside = _outside_project(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "sub").symlink_to(outside)
    out = proj("run", f"{project}#sub", "--env-manager", "local")
    _assert_refused(proj, out, outside)


def test_subdir_text_is_checked_before_anything_is_resolved(proj, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for bad, reason in (("../x", "contains '..'"), ("/etc", "is absolute"), ("a\\b", "backslash")):
        out = proj("run", f"{project}#{bad}", "--env-manager", "local")
        assert out.code == 2 and reason in out.stderr and "Traceback" not in out.stderr, out
    assert proj.runs() == []


# --- archive members on reproduce ------------------------------------------------------------------------

PLAIN = {"MLproject": "name: plain\nentry_points:\n  main:\n    command: python train.py\n",
         "train.py": "print('ran')\n"}


def _hostile_tar(path: Path, members: list[tuple[str, str | None, str | None]]) -> None:
    """(name, content, symlink target) members, written as a hostile archiver would."""
    import io

    path.unlink()  # the run's read-only copy
    with tarfile.open(path, "w:gz") as tar:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                data = (content or "").encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("members, refused", [
    ([("../../escape-{u}", "x", None)], "contains '..'"),
    ([("/tmp/proj-escape-{u}", "x", None)], "is absolute"),
    ([("link", None, "/tmp/proj-escape-{u}"), ("link/f", "x", None)], "symlink to an absolute path"),
    ([("link", None, "../../../../../../../../../tmp/proj-escape-{u}")], "contains '..'"),
])
def test_hostile_snapshot_members_are_refused_on_reproduce(proj, make_project, members, refused) -> None:
    unique = uuid.uuid4().hex[:12]
    root = make_project(PLAIN, name="plain")
    assert proj("run", str(root), "--env-manager", "local").code == 0
    original = proj.show(proj.runs()[0]["id"])
    snapshot = Path(original["run_dir"]) / "artifacts" / "source" / "snapshot.tar.gz"
    filled = [(name.format(u=unique), content, link and link.format(u=unique)) for name, content, link in members]
    _hostile_tar(snapshot, [(k, v, None) for k, v in PLAIN.items()] + filled)
    _record_hash(proj, original["id"], snapshot)  # as if the store itself was edited: the members are checked too
    out = proj("reproduce", original["id"])
    assert out.code == 2 and "Traceback" not in out.stderr, out
    [line] = [text for text in out.stderr.splitlines() if text.strip()]
    assert "is refused" in line and refused in line, out
    assert not Path(f"/tmp/proj-escape-{unique}").exists()
    cache = Path(proj.env["PROJ_CACHE_DIR"])
    assert not list(cache.rglob(f"escape-{unique}")) and len(proj.runs()) == 1


def test_hostile_untracked_archive_member_is_refused_on_reproduce(proj, tmp_path: Path) -> None:
    require(shutil.which("git") is not None, "git is not installed")
    from helpers.git_repos import commit, git

    unique = uuid.uuid4().hex[:12]
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, PLAIN, "plain")
    (repo / "notes.txt").write_text("untracked\n")
    assert proj("run", str(repo), "--env-manager", "local").code == 0
    original = proj.show(proj.runs()[0]["id"])
    archive = Path(original["run_dir"]) / "artifacts" / "source" / "untracked.tar.gz"
    assert archive.is_file()
    _hostile_tar(archive, [("notes.txt", "untracked\n", None), (f"../escape-{unique}", "x", None)])
    _record_hash(proj, original["id"], archive)
    out = proj("reproduce", original["id"])
    assert out.code == 2 and "untracked.tar.gz is refused" in out.stderr and "contains '..'" in out.stderr, out
    assert not list(Path(proj.env["PROJ_CACHE_DIR"]).rglob(f"escape-{unique}"))


def _record_hash(proj, run_id: str, path: Path) -> None:
    """Record ``path``'s new sha256 in the run's source record, as an edited store would (a child cannot)."""
    import hashlib
    import json
    import sqlite3

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with sqlite3.connect(Path(proj.env["PROJ_TRACKING_URI"]) / "proj.db") as db:
        source = json.loads(db.execute("SELECT source_json FROM runs WHERE id=?", (run_id,)).fetchone()[0])
        source["artifact_sha256"][path.name] = digest
        if path.name == "snapshot.tar.gz":
            source["snapshot_sha256"] = digest
        db.execute("UPDATE runs SET source_json=? WHERE id=?", (json.dumps(source), run_id))


# --- proj models export ----------------------------------------------------------------------------------

MODEL_WRITER = ("import os\nd = os.environ['PROJ_MODEL_DIR']\nos.makedirs(d, exist_ok=True)\n"
                "open(os.path.join(d, 'MLmodel'), 'w').write('flavors: {x: {}}\\n')\n"
                "open(os.path.join(d, 'w.bin'), 'w').write('weights')\n")


def _model_run(proj, make_project) -> dict:
    root = make_project({"MLproject": MLPROJECT, "train.py": MODEL_WRITER})
    out = proj("run", str(root), "--env-manager", "local")
    assert out.code == 0, out
    return proj.show(proj.runs()[0]["id"])


def _tamper(proj, sql: str, *args: str) -> None:
    import sqlite3

    with sqlite3.connect(Path(proj.env["PROJ_TRACKING_URI"]) / "proj.db") as db:
        assert db.execute(sql, args).rowcount == 1


@pytest.mark.parametrize("recorded", ["/tmp/proj-escape-{u}", "../../proj-escape-{u}"])
def test_export_of_a_model_recorded_with_an_unsafe_path_is_refused(proj, make_project, tmp_path, recorded) -> None:
    """A store written before the containment checks may hold a logged model's name such as ``/tmp/x``."""
    run = _model_run(proj, make_project)
    unsafe = recorded.format(u=uuid.uuid4().hex[:12])
    outside = (Path(run["run_dir"]) / "artifacts" / unsafe).resolve()
    outside.mkdir(parents=True)  # what the old ingester would have written there
    try:
        (outside / "MLmodel").write_text("flavors: {x: {}}\n")
        _tamper(proj, "UPDATE models SET path = ? WHERE run_id = ?", unsafe, run["id"])
        for args in (("export", run["id"], str(tmp_path / "out")), ("show", run["id"])):
            out = proj("models", *args)
            assert out.code == 1 and "Traceback" not in out.stderr, out
            [line] = [text for text in out.stderr.splitlines() if text.strip()]
            assert repr(unsafe) in line and "refusing" in line, out
        assert not (tmp_path / "out").exists()
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_export_of_a_recorded_file_name_leading_outside_is_refused(proj, make_project, tmp_path) -> None:
    import json

    run = _model_run(proj, make_project)
    [model] = proj("models", "list", "--json").json()
    files = [dict(f, path="../../../../w.bin" if f["path"] == "w.bin" else f["path"]) for f in model["files"]]
    _tamper(proj, "UPDATE models SET files_json = ? WHERE run_id = ?", json.dumps(files), run["id"])
    out = proj("models", "export", run["id"], str(tmp_path / "out"))
    assert out.code == 1 and "contains '..'" in out.stderr and "refusing to export" in out.stderr, out
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial"))


def test_export_destinations_are_checked(proj, make_project, tmp_path) -> None:
    run = _model_run(proj, make_project)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    for dest, message in (("/", "exists and is not an empty directory"),
                          (str(tmp_path / "full"), "exists and is not an empty directory"),
                          (str(Path(run["run_dir"]) / "artifacts" / "model" / "again"), "inside the model's own folder")):
        out = proj("models", "export", run["id"], dest)
        assert out.code == 1 and message in out.stderr and "Traceback" not in out.stderr, out
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    out = proj("models", "export", run["id"], str(tmp_path / "new" / "deeper"))
    assert out.code == 0 and (tmp_path / "new" / "deeper" / "w.bin").read_text() == "weights", out


# --- the container escape --------------------------------------------------------------------------------

def docker_project(make_project, script: str) -> tuple[Path, Path]:  # noqa: ANN001 - the fixture's factory
    """A docker_env project on the offline base image whose train.py gets a host path it must not reach."""
    from backends.docker.test_runs import BASE

    try:
        import docker

        docker.from_env().images.get(BASE)
    except Exception as exc:  # noqa: BLE001 - no daemon or no image
        require(False, f"docker or image {BASE} unavailable ({exc})")
    out_dir = Path(f"/tmp/proj-escape-{uuid.uuid4().hex[:12]}")
    slug = f"ptest-{uuid.uuid4().hex[:10]}"
    root = make_project({"MLproject": f"name: {slug}\ndocker_env:\n  image: {BASE}\n"
                                      f"entry_points:\n  main:\n    command: 'python train.py {out_dir}'\n",
                         "train.py": script}, name=slug)
    return out_dir, root

@pytest.mark.docker
def test_docker_env_run_cannot_make_proj_write_to_a_host_path(proj, make_project) -> None:
    """The container cannot see the host's /tmp; through a logged model name it must not make proj write there."""
    out_dir, root = docker_project(make_project, HOSTILE_WRITER)
    try:
        result = proj("run", str(root), "--no-build-image")
        assert result.code == 0 and "hostile store written" in result.stdout, result
        assert not out_dir.exists(), result
        assert "warning: mlflow store: logged model name" in result.stderr, result
        run = proj.show(proj.runs()[0]["id"])
        assert run["status"] == "FINISHED"
        assert (Path(run["run_dir"]) / "artifacts/mlflow/models/m-abs/data.txt").read_text() == "escaped"
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


# --- folders of the run folder the child swapped for symlinks (reviewer's docker_env findings) -----------

# Replaces artifacts/ with a link to OUT (a host folder), then writes an MLflow store whose run and logged
# model have artifacts: copying them "into artifacts/" must not land in OUT.
ARTIFACTS_SWAPPER = '''\
import os, shutil, sys
from urllib.parse import urlparse
root = urlparse(os.environ["MLFLOW_TRACKING_URI"]).path
OUT = sys.argv[1]
art = os.environ["PROJ_ARTIFACT_DIR"]
shutil.rmtree(art, ignore_errors=True)
os.symlink(OUT, art)
def write(rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(text)
write("0/aaaa1111/meta.yaml", "run_id: aaaa1111\\nrun_name: main\\nstatus: 3\\n")
write("0/aaaa1111/artifacts/sub/evil.txt", "planted")
write("0/models/m-1/meta.yaml", "model_id: m-1\\nname: m\\n")
write("0/models/m-1/artifacts/MLmodel", "flavors: {python_function: {loader_module: x}}\\n")
print("swapped")
'''


def _swap_project(make_project, writer: str, out: Path) -> Path:
    return make_project({"MLproject": MLPROJECT.replace("python train.py", f"python train.py {out}"),
                         "train.py": writer})


def test_symlinked_artifacts_folder_is_not_followed(proj, make_project) -> None:
    out = Path(f"/tmp/proj-escape-{uuid.uuid4().hex[:12]}")  # absent: the old proj created it
    try:
        result = proj("run", str(_swap_project(make_project, ARTIFACTS_SWAPPER, out)), "--env-manager", "local")
        assert result.code == 0 and "swapped" in result.stdout, result
        assert not out.exists(), result
        run = proj.show(proj.runs()[0]["id"])
        assert run["status"] == "FINISHED"
        artifacts = Path(run["run_dir"]) / "artifacts"
        assert not artifacts.is_symlink()  # the planted link is gone: no later command follows it
        [warning] = [text for text in result.stderr.splitlines() if "replaced" in text]
        assert "artifacts with a symbolic link" in warning, result
        assert proj("models", "list", "--json").json() == []
    finally:
        shutil.rmtree(out, ignore_errors=True)


MODEL_SWAPPER = '''\
import os, shutil, sys
art = os.environ["PROJ_ARTIFACT_DIR"]
shutil.rmtree(art, ignore_errors=True)
os.symlink(sys.argv[1], art)
'''


def test_symlinked_artifacts_holding_a_host_model_is_not_packaged(proj, make_project, tmp_path: Path) -> None:
    out = tmp_path / "host"
    (out / "m").mkdir(parents=True)
    mlmodel = "flavors: {python_function: {loader_module: x}}\n"
    (out / "m" / "MLmodel").write_text(mlmodel)
    (out / "m" / "host-file").write_text("host")
    result = proj("run", str(_swap_project(make_project, MODEL_SWAPPER, out)), "--env-manager", "local")
    assert result.code == 0 and "Traceback" not in result.stderr, result
    assert (out / "m" / "MLmodel").read_text() == mlmodel  # not rewritten
    assert sorted(p.name for p in (out / "m").iterdir()) == ["MLmodel", "host-file"]  # no env files added
    assert proj("models", "list", "--json").json() == []


# Plants a symlink to OUT (a host folder holding a file "secret" and a logged model) in place of one folder
# of the MLflow store proj reads.
FOLDER_SWAPPER = '''\
import os, shutil, sys
from urllib.parse import urlparse
root = urlparse(os.environ["MLFLOW_TRACKING_URI"]).path
OUT, WHICH = sys.argv[1], sys.argv[2]
run = os.path.join(root, "0", "aaaa1111")
os.makedirs(os.path.join(run, "artifacts"))
open(os.path.join(run, "meta.yaml"), "w").write("run_id: aaaa1111\\nrun_name: main\\nstatus: 3\\n")
target = {"params": os.path.join(run, "params"), "tags": os.path.join(run, "tags"),
          "metrics": os.path.join(run, "metrics"), "models": os.path.join(root, "0", "models"),
          "mlruns": root, "mlflow": os.path.dirname(root)}[WHICH]
if os.path.exists(target):
    shutil.rmtree(target)
os.symlink(OUT, target)
'''


@pytest.mark.parametrize("which", ["params", "tags", "metrics", "models", "mlruns", "mlflow"])
def test_symlinked_mlflow_folders_are_not_followed(proj, make_project, tmp_path: Path, which: str) -> None:
    out = tmp_path / "host"
    out.mkdir()
    (out / "secret").write_text("1700000000000 42.0 0\n" if which == "metrics" else "hostsecret")
    model = out / "m-host"  # as a logged model, for the <exp>/models case
    (model / "artifacts").mkdir(parents=True)
    (model / "meta.yaml").write_text("model_id: m-host\nname: stolen\n")
    (model / "artifacts" / "MLmodel").write_text("flavors: {python_function: {loader_module: x}}\n")
    (model / "artifacts" / "data").write_text("hostsecret")
    root = make_project({"MLproject": MLPROJECT.replace("python train.py", f"python train.py {out} {which}"),
                         "train.py": FOLDER_SWAPPER})
    result = proj("run", str(root), "--env-manager", "local")
    assert result.code == 0 and "Traceback" not in result.stderr, result
    run = proj.show(proj.runs()[0]["id"])
    assert run["status"] == "FINISHED"
    assert "secret" not in {p["key"] for p in run["params"]} and "secret" not in run["tags"]
    assert "secret" not in run["metrics"], run["metrics"]
    assert not [p for p in Path(run["run_dir"]).rglob("*") if p.is_file() and p.read_bytes() == b"hostsecret"]
    assert proj("models", "list", "--json").json() == []
    assert "symbolic link" in result.stderr, result
    assert sorted(p.name for p in out.iterdir()) == ["m-host", "secret"]


def test_metrics_file_planted_as_a_symlink_is_not_followed(proj, make_project, tmp_path: Path) -> None:
    host = tmp_path / "host.jsonl"
    host.write_text('{"kind": "tag", "key": "injected", "value": "from-host"}\n')
    writer = f"import os\nos.symlink({str(host)!r}, os.environ['PROJ_METRICS_FILE'])\n"
    root = make_project({"MLproject": MLPROJECT, "train.py": writer})
    result = proj("run", str(root), "--env-manager", "local")
    assert result.code == 0, result
    assert "injected" not in proj.show(proj.runs()[0]["id"])["tags"]


UNPLACEABLE = '''\
import os
from urllib.parse import urlparse
root = urlparse(os.environ["MLFLOW_TRACKING_URI"]).path
def write(rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(text)
write("0/aaaa1111/meta.yaml", "run_id: aaaa1111\\nrun_name: main\\nstatus: 3\\n")
write("0/aaaa1111/artifacts/f.txt", "a file")
for model_id, name in (("m-file", "f.txt/sub"), ("m-long", "y" * 300)):
    write(f"0/models/{model_id}/meta.yaml", f"model_id: {model_id}\\nname: {name}\\nsource_run_id: aaaa1111\\n")
    write(f"0/models/{model_id}/artifacts/MLmodel", "flavors: {python_function: {loader_module: x}}\\n")
'''


def test_logged_model_names_that_cannot_be_placed_fall_back_to_generated_ones(proj, make_project) -> None:
    result = proj("run", str(make_project({"MLproject": MLPROJECT, "train.py": UNPLACEABLE})), "--env-manager", "local")
    assert result.code == 0 and "Traceback" not in result.stderr, result
    assert proj.show(proj.runs()[0]["id"])["status"] == "FINISHED"
    assert {m["path"] for m in proj("models", "list", "--json").json()} == {"mlflow/models/m-file", "mlflow/models/m-long"}
    warnings = [text for text in result.stderr.splitlines() if "warning: mlflow store: logged model name" in text]
    assert any("cannot be placed" in w for w in warnings) and any("longer than 255 bytes" in w for w in warnings), result


def test_unsafe_reason_caps_each_component() -> None:
    assert unsafe_reason("a/" + "y" * 256) == "has a part longer than 255 bytes"
    assert unsafe_reason("é" * 128) == "has a part longer than 255 bytes"  # bytes, not characters
    assert unsafe_reason("y" * 255) is None
    assert len(safe_name("y" * 300, prefix="p" * 300)) <= 255


EVIL = "evil\x1b[2K\rproj: run FINISHED ok\nfake"
CONTROL_WRITER = f'''\
import os
d = os.path.join(os.environ["PROJ_ARTIFACT_DIR"], {EVIL!r})
os.makedirs(d)
open(os.path.join(d, "MLmodel"), "w").write("flavors: {{python_function: {{loader_module: x}}}}\\n")
'''


def test_control_characters_in_child_chosen_names_are_escaped(proj, make_project) -> None:
    result = proj("run", str(make_project({"MLproject": MLPROJECT, "train.py": CONTROL_WRITER})), "--env-manager", "local")
    assert result.code == 0, result
    shown = proj("models", "list").stdout + proj("runs", "show", proj.runs()[0]["id"]).stdout
    for text in (result.stderr, shown):
        assert "\x1b" not in text and "\rproj" not in text and "\nfake" not in text, text
    assert "evil\\x1b[2K\\rproj: run FINISHED ok\\nfake" in result.stderr, result
    assert "evil\\x1b[2K" in shown, shown


def test_symlinked_model_folder_is_not_described(proj, make_project, tmp_path: Path) -> None:
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "weights").write_text("x")
    writer = f"import os\nos.symlink({str(tmp_path / 'host')!r}, os.environ['PROJ_MODEL_DIR'])\n"
    result = proj("run", str(make_project({"MLproject": MLPROJECT, "train.py": writer})), "--env-manager", "local")
    assert result.code == 0, result
    assert "model is a symbolic link; not packaged" in result.stderr and "has files" not in result.stderr, result


@pytest.mark.parametrize("dockerfile", ["/etc/hostname", "link", "../x"])
def test_dockerfile_outside_the_project_is_refused(proj, make_project, dockerfile: str) -> None:
    root = make_project({"MLproject": f"name: d\ndocker_env:\n  image: base-x\n  dockerfile: {dockerfile}\n"
                                      "entry_points:\n  main:\n    command: 'true'\n"})
    (root / "link").symlink_to("/etc/hostname")
    result = proj("run", str(root))
    assert result.code != 0 and "Traceback" not in result.stderr, result
    [line] = [text for text in result.stderr.splitlines() if text.strip()]
    assert "docker_env.dockerfile" in line, result
    assert Path("/etc/hostname").read_text().strip() not in result.stderr
    assert proj.runs() == []


@pytest.mark.docker
def test_docker_env_run_replacing_artifacts_with_a_symlink_cannot_make_proj_write_to_the_host(proj, make_project) -> None:
    """The container swaps the mounted artifacts/ for a link to a host path; proj (root on the host) must not
    create anything there when it copies the MLflow store's artifacts "into artifacts/"."""
    out_dir, root = docker_project(make_project, ARTIFACTS_SWAPPER)
    try:
        result = proj("run", str(root), "--no-build-image")
        assert result.code == 0 and "swapped" in result.stdout, result
        assert not out_dir.exists(), result
        run = proj.show(proj.runs()[0]["id"])
        assert run["status"] == "FINISHED" and not (Path(run["run_dir"]) / "artifacts").is_symlink()
        assert "artifacts with a symbolic link" in result.stderr, result
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def test_atomic_write_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    """The run folder is writable by the child: a link at the destination (or any guessable temp name) is replaced,
    not followed."""
    from proj.paths import atomic_write

    outside = tmp_path / "outside.txt"
    outside.write_text("host data")
    folder = tmp_path / "run"
    folder.mkdir()
    dest = folder / "request.json"
    dest.symlink_to(outside)
    for guess in (f".request.json.{os.getpid()}.tmp", ".request.json.tmp"):
        (folder / guess).symlink_to(outside)
    atomic_write(dest, "{}")
    assert outside.read_text() == "host data"
    assert not dest.is_symlink() and dest.read_text() == "{}"
    assert sorted(p.name for p in folder.iterdir() if not p.is_symlink()) == ["request.json"]
