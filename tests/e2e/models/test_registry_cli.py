"""The model registry through the real `proj` CLI over real `proj run`s (local env, standard library only):
register a run's model, aliases, stages, protection, history at a past time, a version that outlives its run
folder, lineage of a dirty git run and of a git URL run, --require-verdict after a real `proj reproduce`, and
errors in one line."""
from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import pytest

from helpers.git_repos import commit, git
from helpers.projects import MODEL_PROJECT, PREDICTOR


def _run(proj, where: str, *args: str) -> dict:
    out = proj("run", where, "--env-manager", "local", *args)
    assert out.code == 0, out
    return proj.show(proj.runs()[0]["id"])


def _ok(proj, *args: str) -> str:
    out = proj("models", *args)
    assert out.code == 0, out
    return out.stdout


def _json(proj, *args: str) -> object:
    out = proj("models", *args, "--json")
    assert out.code == 0, out
    return out.json()


def _fails(proj, *args: str, code: int = 2) -> str:
    out = proj("models", *args)
    assert out.code == code and "Traceback" not in out.stderr, out
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("proj: error: "), out
    return line


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_register_promote_and_the_version_outlives_its_run_folder(proj, make_project, tmp_path: Path) -> None:
    run = _run(proj, str(make_project(MODEL_PROJECT)))
    assert _ok(proj, "register", f"runs:/{run['id']}/model", "fraud", "--description", "first").strip() == "1"
    assert _ok(proj, "register", run["id"][:10], "fraud").strip() == "2"  # proj's RUN[/PATH] works too
    listed = _json(proj, "versions", "fraud")
    assert [(v["version"], v["source"], v["run_id"]) for v in listed] == [
        (1, f"runs:/{run['id']}/model", run["id"]), (2, f"runs:/{run['id']}/model", run["id"])]
    assert listed[0]["files_sha256"] == listed[1]["files_sha256"]  # the same files, stored once
    _ok(proj, "alias", "fraud", "champion", "1")
    _ok(proj, "stage", "fraud", "1", "production")
    shown = _json(proj, "show", "models:/fraud@champion")
    assert (shown["version"], shown["current_stage"], shown["aliases"], shown["intact"]) == (1, "Production", ["champion"], True)
    [recorded] = [m for m in proj("models", "list", "--json").json() if m["run_id"] == run["id"]]
    assert sorted((f["path"], f["sha256"]) for f in shown["files"]) == sorted((f["path"], f["sha256"]) for f in recorded["files"])
    text = _ok(proj, "show", "models:/fraud/Production")
    assert "models:/fraud/1 (Production; aliases champion)" in text and "model.pkl" in text

    shutil.rmtree(run["run_dir"])  # the run's folder is gone (garbage-collected, lost disk)
    dest = tmp_path / "exported"
    out = proj("models", "export", "models:/fraud@champion", str(dest))
    assert out.code == 0, out
    assert {f["path"]: f["sha256"] for f in shown["files"]} == {
        p.relative_to(dest).as_posix(): _sha(p) for p in dest.rglob("*") if p.is_file()}
    assert _json(proj, "show", "models:/fraud/latest")["intact"] is True
    assert _json(proj, "lineage", "models:/fraud@champion")["version"]["intact"] is True
    registered = _json(proj, "registered")
    assert [(m["name"], m["aliases"]) for m in registered] == [("fraud", {"champion": 1})]


def test_protection_and_history_at_a_past_time(proj, make_project) -> None:
    run = _run(proj, str(make_project(MODEL_PROJECT)))
    for _ in range(2):
        _ok(proj, "register", f"runs:/{run['id']}/model", "fraud")
    _ok(proj, "stage", "fraud", "1", "Production")
    _ok(proj, "alias", "fraud", "champion", "1")
    _ok(proj, "protect", "fraud", "--stage", "Production")
    _ok(proj, "protect", "fraud", "--alias", "champion")
    before = dt.datetime.now().isoformat()  # local time, as proj prints and reads it
    line = _fails(proj, "stage", "fraud", "2", "Production", "--archive-existing")
    assert "stage 'Production' of registered model 'fraud' is protected" in line and "--reason" in line
    _fails(proj, "alias", "fraud", "champion", "2")
    _ok(proj, "stage", "fraud", "2", "Production", "--archive-existing", "--reason", "recall +4% on the holdout")
    _ok(proj, "alias", "fraud", "champion", "2", "--reason", "follows Production")
    _ok(proj, "tag", "fraud/2", "validated=yes")
    _ok(proj, "describe", "fraud", "the fraud model")

    then = _json(proj, "history", "fraud", "--at", before)
    assert (then["stages"], then["aliases"]) == ({"1": "Production", "2": "None"}, {"champion": 1})
    assert "Production  v1" in _ok(proj, "history", "fraud", "--at", before)
    now = _json(proj, "history", "fraud", "--at", dt.datetime.now().isoformat())
    assert (now["stages"], now["aliases"]) == ({"1": "Archived", "2": "Production"}, {"champion": 2})
    events = _json(proj, "history", "fraud")
    moves = [(e["kind"], e["version"], e["old"], e["new"], e["reason"]) for e in events if e["kind"] in ("stage", "alias_set")]
    assert moves == [("stage", 1, "None", "Production", None), ("alias_set", 1, None, "1", None),
                     ("stage", 1, "Production", "Archived", "recall +4% on the holdout"),
                     ("stage", 2, "None", "Production", "recall +4% on the holdout"),
                     ("alias_set", 2, "1", "2", "follows Production")]
    assert all(e["user"] for e in events)
    table = _ok(proj, "history", "fraud")
    assert "alias set v2 champion 1 -> 2" in table and "follows Production" in table
    _fails(proj, "delete", "fraud/2")
    _ok(proj, "rename", "fraud", "fraud-v2")
    _ok(proj, "delete", "fraud-v2/2", "--reason", "retired")
    assert [v["version"] for v in _json(proj, "versions", "fraud-v2")] == [1]
    assert _json(proj, "history", "fraud-v2")[-1]["kind"] == "version_deleted"


def test_lineage_of_a_dirty_git_run_and_require_verdict_after_a_real_reproduce(proj, make_project) -> None:
    repo = make_project({})
    git(repo, "init", "-q")
    sha = commit(repo, MODEL_PROJECT, "first")
    git(repo, "remote", "add", "origin", "https://git.example.com/team/fraud.git")
    (repo / "predictor.py").write_text(PREDICTOR + "# tuned by hand, not committed\n")
    run = _run(proj, str(repo))
    _ok(proj, "register", f"runs:/{run['id']}/model", "fraud")

    info = _json(proj, "lineage", "models:/fraud/1")
    assert info["run"]["id"] == run["id"] and info["run"]["params"]["k"] == "3"
    assert info["inputs"]["data"]["sha256"] == run["inputs"]["data"]["sha256"] == _sha(repo / "data.csv")
    src = info["source"]
    assert (src["commit"], src["dirty"], src["remote"]) == (sha, True, "https://git.example.com/team/fraud.git")
    patch = Path(run["run_dir"]) / "artifacts" / "source" / "uncommitted.patch"
    assert src["patch"] == {"sha256": _sha(patch), "bytes": patch.stat().st_size, "files": 1, "intact": True}
    assert b"tuned by hand" in patch.read_bytes()
    env = info["environment"]
    assert (env["backend"], env["lock_format"]) == ("local", "pip-freeze") and env["packages"] > 0
    assert env["lock_sha256"] == run["env"]["lock_sha256"] == hashlib.sha256(run["lock"]["text"].encode()).hexdigest()
    assert info["metrics"] == {"acc": 0.75} and info["reproduced"]["verdict"] is None
    text = _ok(proj, "lineage", "models:/fraud/1")
    for expected in (f"@ {sha}", "dirty     uncommitted patch", "pip-freeze lock", "metric      acc = 0.75",
                     f"reproduced  never (`proj reproduce {run['id'][:12]}`)", "input       data: file "):
        assert expected in text, text

    line = _fails(proj, "alias", "fraud", "champion", "1", "--require-verdict", "identical")
    assert f"its run {run['id'][:12]} has not been reproduced" in line
    again = proj("reproduce", run["id"])
    assert again.code == 0, again
    _ok(proj, "alias", "fraud", "champion", "1", "--require-verdict", "identical")
    after = _json(proj, "lineage", "models:/fraud@champion")
    assert after["reproduced"]["verdict"] == "identical" and after["reproduced"]["run_id"] != run["id"]
    assert proj.show(after["reproduced"]["run_id"])["tags"]["proj.reproduce.verdict"] == "identical"


def test_lineage_of_a_run_from_a_git_url(proj, make_project) -> None:
    repo = make_project({})
    git(repo, "init", "-q")
    sha = commit(repo, MODEL_PROJECT, "first")
    run = _run(proj, f"file://{repo}", "--version", sha)
    _ok(proj, "register", f"runs:/{run['id']}", "fraud")  # the run's only model
    info = _json(proj, "lineage", f"runs:/{run['id']}/model")
    assert info["version"] is None and info["run"]["id"] == run["id"]
    assert (info["source"]["uri"], info["source"]["commit"], info["source"]["dirty"]) == (f"file://{repo}", sha, False)
    assert _json(proj, "lineage", "models:/fraud/1")["source"]["commit"] == sha


@pytest.mark.parametrize(("args", "expected"), [
    (("versions", "nope"), "Registered Model with name=nope not found"),
    (("show", "models:/nope/1"), "Model Version (name=nope, version=1) not found"),  # as MLflow
    (("show", "models:/fraud/7"), "Model Version (name=fraud, version=7) not found"),
    (("alias", "fraud", "latest", "1"), "'latest' alias name (case insensitive) is reserved."),
    (("alias", "fraud", "v2", "1"), "Version alias name 'v2' is reserved."),
    (("alias", "fraud", "champion", "9"), "Model Version (name=fraud, version=9) not found"),
    (("stage", "fraud", "1", "Prod"),
     "Invalid Model Version stage: Prod. Value must be one of None, Staging, Production, Archived."),
    (("show", "models:/fraud/a/b"), "Not a proper models:/ URI: models:/fraud/a/b."),
    (("lineage", "models:/fraud@nobody"), "Registered model alias nobody not found."),
    (("tag", "fraud/x", "k=v"), "'fraud/x': expected NAME or NAME/VERSION with a version number"),
    (("register", "./no-such-dir", "fraud"), "is not a directory, a run's model"),
    (("register", "runs:/0123456789abcdef0123456789abcdef/model", "fraud"), "not found"),
    (("history", "nope"), "Registered Model with name=nope not found"),
    (("versions", "fraud", "--tracking-uri", "http://127.0.0.1:9"), "the registry commands work on a local store"),
])
def test_errors_are_one_line(proj, make_project, tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    model = tmp_path / "local-model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: m\n")
    _ok(proj, "register", str(model), "fraud")
    line = _fails(proj, *args, code=2)
    assert expected in line, line
