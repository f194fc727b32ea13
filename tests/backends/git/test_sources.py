"""Git URL sources end to end: the real CLI against real repositories in tmp dirs (file:// and paths)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers.cli import require
from helpers.git_repos import commit, file_url, git, make_repo

pytestmark = pytest.mark.git


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    require(shutil.which("git") is not None, "git executable not found")
    path = tmp_path / "upstream"
    return path, make_repo(path)


def run(proj, uri: str, *args: str, **kwargs):
    return proj("run", uri, "--env-manager", "local", *args, **kwargs)


def last_source(proj) -> dict:
    return proj.show(proj.runs()[0]["id"])["source"]


def test_subdir_of_file_url_runs_and_records_provenance(proj, repo) -> None:
    path, shas = repo
    out = run(proj, file_url(path) + "#sub")
    assert out.code == 0 and "version: two" in out.stdout, out
    source = last_source(proj)
    assert source["commit"] == shas["v2"] and source["branch"] == "main" and source["subdir"] == "sub"
    assert source["kind"] == "git" and source["remote"] == file_url(path) and source["fetch"] == "cloned"
    assert source["uri"] == file_url(path) + "#sub"
    listed = proj("runs", "list", "--commit", shas["v2"][:10], "--json").json()
    assert [r["source"]["commit"] for r in listed] == [shas["v2"]]
    assert proj("runs", "list", "--commit", shas["v1"][:10], "--json").json() == []
    shown = proj("runs", "show", proj.runs()[0]["id"])
    assert shas["v2"] in shown.stdout and "main" in shown.stdout, shown


def test_second_run_fetches_and_picks_up_a_new_commit(proj, repo) -> None:
    path, _ = repo
    assert run(proj, file_url(path) + "#sub").code == 0
    again = run(proj, file_url(path) + "#sub")
    assert again.code == 0 and last_source(proj)["fetch"] == "fetched", again
    new = commit(path, {"sub/version.txt": "three\n"}, "three")
    third = run(proj, file_url(path) + "#sub")
    assert "version: three" in third.stdout, third
    assert last_source(proj)["commit"] == new


@pytest.mark.parametrize("pick,expected", [("v1.0", "one"), ("dev", "dev"), ("short-v1", "one"), ("full-dev", "dev")])
def test_tag_branch_and_commits_resolve(proj, repo, pick, expected) -> None:
    path, shas = repo
    version = {"short-v1": shas["v1"][:8], "full-dev": shas["dev"]}.get(pick, pick)
    out = run(proj, file_url(path) + "#sub", "-v", version)
    assert out.code == 0 and f"version: {expected}" in out.stdout, out
    source = last_source(proj)
    assert source["version"] == version and source["commit"] == shas["v1" if expected == "one" else "dev"]
    assert source.get("branch") == ("dev" if pick == "dev" else None)


def test_known_full_commit_needs_no_fetch(proj, repo) -> None:
    path, shas = repo
    assert run(proj, file_url(path) + "#sub").code == 0
    shutil.rmtree(path)  # the remote is gone: a cached commit must still run
    out = run(proj, file_url(path) + "#sub", "-v", shas["v1"])
    assert out.code == 0 and "version: one" in out.stdout, out
    assert last_source(proj)["fetch"] == "cached"


def test_version_on_a_local_repo_never_touches_the_working_copy(proj, repo) -> None:
    path, shas = repo
    (path / "sub" / "version.txt").write_text("local edit\n")
    before = git(path, "status", "--porcelain"), git(path, "rev-parse", "HEAD"), git(path, "branch", "--show-current")
    out = run(proj, str(path / "sub"), "-v", "v1.0")
    assert out.code == 0 and "version: one" in out.stdout, out
    after = git(path, "status", "--porcelain"), git(path, "rev-parse", "HEAD"), git(path, "branch", "--show-current")
    assert after == before and (path / "sub" / "version.txt").read_text() == "local edit\n"
    source = last_source(proj)
    assert source["commit"] == shas["v1"] and source["subdir"] == "sub" and source["kind"] == "git"
    assert source["uri"] == str(path / "sub")
    detached = run(proj, str(path / "sub"), "-v", "v1.0", "--detach")  # a worker re-plans from request.json
    assert detached.code == 0, detached
    logs = proj("runs", "logs", detached.stdout.strip(), "-f", "--stream", "stdout", timeout=60)
    assert "version: one" in logs.stdout, logs
    assert proj.show(detached.stdout.strip())["status"] == "FINISHED"


def test_concurrent_runs_of_two_versions_do_not_interfere(proj, repo) -> None:
    path, _ = repo
    procs = [proj.popen("run", file_url(path) + "#sub", "--env-manager", "local", "-v", v)
             for v in ("v1.0", "dev", "main", "v1.0")]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    assert [o[0].strip() for o in outputs] == ["version: one", "version: dev", "version: two", "version: one"]
    leftovers = list(Path(proj.env["PROJ_CACHE_DIR"], "git").rglob(".tmp-*"))
    assert leftovers == []


def test_checkout_is_read_only_and_shared(proj, repo) -> None:
    path, shas = repo
    assert run(proj, file_url(path) + "#sub").code == 0
    assert run(proj, file_url(path) + "#sub").code == 0
    dirs = {r["source"]["dir"] for r in proj.runs()}
    assert len(dirs) == 1
    code = Path(dirs.pop()) / "show.py"
    assert code.stat().st_mode & 0o222 == 0


def test_a_run_that_writes_into_its_code_does_not_change_the_next_run(proj, repo, make_project) -> None:
    path, _ = repo
    commit(path, {"sub/MLproject": "name: writer\nentry_points:\n  main:\n    command: "
                  "\"cat version.txt; echo polluted >> version.txt; touch leftover.bin\"\n"}, "writes")
    first, second = run(proj, file_url(path) + "#sub"), run(proj, file_url(path) + "#sub")
    assert first.code == 0 and second.code == 0, (first, second)
    assert second.stdout == first.stdout and "polluted" not in second.stdout, second
    checkout = Path(last_source(proj)["dir"])
    assert not (checkout / "leftover.bin").exists() and "polluted" not in (checkout / "version.txt").read_text()
    assert list((Path(proj.env["PROJ_CACHE_DIR"]) / "git" / "work").iterdir()) == []  # private copies removed


def test_submodules_are_initialised(proj, tmp_path, repo) -> None:
    path, _ = repo
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    commit(lib, {"data.txt": "from submodule\n"}, "lib")
    git(path, "submodule", "add", "-q", file_url(lib), "sub/lib")
    commit(path, {"sub/show.py": "print(open('lib/data.txt').read().strip())\n"}, "use submodule")
    out = run(proj, file_url(path) + "#sub")
    assert out.code == 0 and "from submodule" in out.stdout, out


def test_cache_prune_removes_clones_and_checkouts(proj, repo, tmp_path) -> None:
    path, _ = repo
    own_cache = {"PROJ_CACHE_DIR": str(tmp_path / "own-cache")}  # the session cache is shared with other tests
    assert run(proj, file_url(path) + "#sub", env=own_cache).code == 0
    listed = proj("cache", "list", "--json", env=own_cache).json()
    assert sorted(e["kind"] for e in listed) == ["checkout", "repo"]
    kept = proj("cache", "prune", "--older-than", "1", env=own_cache)
    assert kept.code == 0 and "removed 0 checkout(s)" in kept.stderr, kept
    gone = proj("cache", "prune", "--all", env=own_cache)
    assert gone.code == 0 and "removed 1 checkout(s) and 1 repositor" in gone.stderr, gone
    assert proj("cache", "list", "--json", env=own_cache).json() == []
    assert run(proj, file_url(path) + "#sub", env=own_cache).code == 0  # and it comes back


# (case, how to build the URI from the repo path, -v, expected text in the one error line)
BAD = [
    ("unreachable", lambda p: "https://127.0.0.1:9/org/repo.git", None, "cannot fetch"),
    ("no-such-host", lambda p: "https://no-such-host.invalid/org/repo.git", None, "cannot fetch"),
    ("not-found", lambda p: file_url(p.parent / "nothere"), None, "cannot fetch"),
    ("bad-version", lambda p: file_url(p) + "#sub", "v1.1", "no branch, tag or commit 'v1.1'; did you mean v1.0?"),
    ("bad-version-far", lambda p: file_url(p) + "#sub", "zzzzzz", "branches: dev, main; tags: v1.0"),
    ("missing-subdir", lambda p: file_url(p) + "#subb", None, "no directory #subb; directories at the top level: sub"),
    ("parent-subdir", lambda p: file_url(p) + "#../x", None, "must be a relative path inside the project"),
    ("no-mlproject", lambda p: file_url(p), None, "no MLproject in file://"),
    ("local-bad-version", lambda p: str(p / "sub"), "nope", "no branch, tag or commit 'nope'"),
]


@pytest.mark.parametrize("case,make_uri,version,expected", BAD, ids=[c[0] for c in BAD])
def test_bad_git_input_is_one_line_and_leaves_no_run(proj, repo, case, make_uri, version, expected) -> None:
    path, _ = repo
    out = run(proj, make_uri(path), *(["-v", version] if version else []), timeout=60)
    assert out.code != 0 and expected in out.stderr, out
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out
    assert not (Path(proj.env["PROJ_TRACKING_URI"]) / "proj.db").exists() or proj.runs() == [], out
    assert list(Path(proj.env["PROJ_CACHE_DIR"], "git").rglob(".tmp-*")) == []


def test_unreachable_url_fails_fast_without_prompting(proj) -> None:
    require(shutil.which("git") is not None, "git executable not found")
    out = run(proj, "https://127.0.0.1:9/org/private.git", timeout=30)
    assert out.code != 0 and "cannot fetch" in out.stderr, out
    assert "Username" not in out.stderr



def test_the_git_subdir_example_runs_from_a_repository(proj, tmp_path) -> None:
    require(shutil.which("git") is not None, "git executable not found")
    from helpers.paths import EXAMPLES

    repo = tmp_path / "examples-repo"
    shutil.copytree(EXAMPLES / "git-subdir", repo / "git-subdir")
    git(repo, "init", "-q", "-b", "main")
    sha = commit(repo, {}, "examples")
    out = run(proj, file_url(repo) + "#git-subdir/projects/greeter", "-v", sha[:7], "-P", "name=Ada", "-P", "times=2")
    assert out.code == 0 and out.stdout.count("hello, Ada") == 2 and sha in out.stdout, out
