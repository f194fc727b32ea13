"""`proj reproduce` and `proj runs diff` with real runs, real git repositories and real virtualenvs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers.cli import require

pytestmark = pytest.mark.git

DETERMINISTIC = {
    "MLproject": """\
        name: det
        entry_points:
          main:
            parameters:
              alpha: float
              data: {type: path, default: data.txt}
            command: "python train.py {alpha} {data}"
        """,
    "data.txt": "1\n2\n3\n",
    "train.py": """\
        import os, sys
        import proj_client
        alpha, data = float(sys.argv[1]), sys.argv[2]
        values = [float(x) for x in open(data).read().split()]
        score = sum(v * alpha for v in values) + len(open(__file__).read()) / 1e6
        proj_client.log_metric("score", score)
        with open(os.path.join(os.environ["PROJ_ARTIFACT_DIR"], "result.txt"), "w") as fh:
            fh.write(f"{score:.12f}\\n")
        """,
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}).stdout.strip()


@pytest.fixture
def repo(make_project) -> Path:
    require(shutil.which("git") is not None, "git is not installed")
    root = make_project(DETERMINISTIC, name="repo")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first")
    return root


def last_run(proj) -> dict:
    return proj.show(proj.runs()[0]["id"])


def test_git_source_reproduces_identical_and_so_does_its_reproduction(proj, repo) -> None:
    out = proj("run", f"file://{repo}", "--env-manager", "local", "-P", "alpha=0.5")
    assert out.code == 0, out
    original = last_run(proj)
    (repo / "train.py").write_text("print('changed later')\n")  # later commits don't matter
    git(repo, "commit", "-qam", "second")
    again = proj("reproduce", original["id"][:8])
    assert again.code == 0 and "verdict: identical" in again.stdout, again
    new = last_run(proj)
    assert new["reproduces"] == original["id"] and new["parent_run_id"] is None
    assert new["tags"]["proj.reproduces"] == original["id"]
    assert new["source"]["commit"] == original["source"]["commit"]
    twice = proj("reproduce", new["id"], "--json")
    assert twice.code == 0 and twice.json()["verdict"] == "identical", twice


def test_dirty_local_tree_is_reproduced_with_its_uncommitted_changes(proj, repo) -> None:
    (repo / "train.py").write_text((repo / "train.py").read_text() + "# an uncommitted edit\n")
    (repo / "notes.txt").write_text("untracked\n")
    assert proj("run", str(repo), "--env-manager", "local", "-P", "alpha=2").code == 0
    original = last_run(proj)
    assert original["source"]["dirty"] is True
    assert original["source"]["commit"][:8] + "+" in proj("runs", "list").stdout  # + marks uncommitted changes
    git(repo, "checkout", "--", "train.py")  # the user throws the edit away
    out = proj("reproduce", original["id"])
    assert out.code == 0 and "verdict: identical" in out.stdout, out


def test_directory_outside_git_is_reproduced_from_its_snapshot(proj, make_project) -> None:
    root = make_project(DETERMINISTIC, name="plain")
    assert proj("run", str(root), "--env-manager", "local", "-P", "alpha=1").code == 0
    original = last_run(proj)
    (root / "train.py").write_text("raise SystemExit(3)\n")
    out = proj("reproduce", original["id"])
    assert out.code == 0 and "verdict: identical" in out.stdout, out


def test_random_metric_differs_unless_the_tolerance_covers_it(proj, make_project) -> None:
    root = make_project({
        "MLproject": "entry_points:\n  main:\n    command: python noisy.py\n",
        "noisy.py": "import random, proj_client\nproj_client.log_metric('acc', 0.9 + random.random() / 100)\n",
    })
    assert proj("run", str(root), "--env-manager", "local").code == 0
    original = last_run(proj)
    strict = proj("reproduce", original["id"])
    assert strict.code == 1 and "verdict: differs" in strict.stdout, strict
    assert "acc: " in strict.stdout and "over tolerance" in strict.stdout
    loose = proj("reproduce", original["id"], "--tolerance", "0.05")
    assert loose.code == 0 and "verdict: within tolerance" in loose.stdout, loose


def test_changed_input_data_is_reported_as_a_data_change(proj, repo, tmp_path) -> None:
    data = tmp_path / "input.txt"
    data.write_text("5\n")
    assert proj("run", str(repo), "--env-manager", "local", "-P", "alpha=1", "-P", f"data={data}").code == 0
    original = last_run(proj)
    assert original["inputs"]["data"]["sha256"]
    data.write_text("6\n")
    out = proj("reproduce", original["id"])
    assert out.code == 1, out
    assert "your data changed: input 'data'" in out.stderr
    assert "inputs       DIFFERS" in out.stdout and f"data ({data}): sha256" in out.stdout, out
    data.unlink()
    gone = proj("reproduce", original["id"])
    assert gone.code == 2 and "no longer exists" in gone.stderr, gone


def test_runs_diff_names_what_changed(proj, repo) -> None:
    for alpha in ("1", "2"):
        assert proj("run", str(repo), "--env-manager", "local", "-P", f"alpha={alpha}").code == 0
    b, a = (r["id"] for r in proj.runs())
    out = proj("runs", "diff", a, b)
    assert out.code == 1 and "alpha: 1.0 -> 2.0" in out.stdout and "changed: result.txt" in out.stdout, out
    same = proj("runs", "diff", a, a, "--json")
    assert same.code == 0 and same.json()["verdict"] == "identical"


@pytest.mark.slow
def test_virtualenv_run_is_rebuilt_from_its_lock_or_fails_clearly(offline, make_project, wheelhouse, tmp_path) -> None:
    proj = offline
    proj.env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")  # private, so "no longer available" can be made true
    root = make_project({
        "MLproject": "python_env: python_env.yaml\nentry_points:\n  main:\n"
                     "    command: python -c 'import tinya, proj_client; proj_client.log_metric(\"v\", float(tinya.VERSION))'\n",
        "python_env.yaml": "dependencies:\n  - tinya\n",
    })
    out = proj("run", str(root))
    assert out.code == 0, out
    original = last_run(proj)
    assert original["env"]["backend"] == "virtualenv" and original["metrics"]["v"]["value"] == 2.0
    pruned = proj("env", "prune", "--all")
    assert pruned.code == 0, pruned
    rebuilt = proj("reproduce", original["id"])
    assert rebuilt.code == 0 and "verdict: identical" in rebuilt.stdout, rebuilt
    assert proj("env", "prune", "--all").code == 0
    for wheel in wheelhouse.glob("tinya-2.0*"):
        wheel.unlink()  # the locked package is no longer available anywhere
    shutil.rmtree(tmp_path / "uv-cache")
    gone = proj("reproduce", original["id"])
    assert gone.code == 2 and "could not be reproduced" in gone.stderr, gone
    assert "Traceback" not in gone.stderr


def test_environment_differences_are_named_per_package() -> None:
    from proj.reproduce.packages import describe_changes, lock_packages

    old = lock_packages("pylock.toml", 'lock-version = "1.0"\n[[packages]]\nname = "NumPy"\nversion = "1.26.4"\n'
                                       '[[packages]]\nname = "six"\nversion = "1.16.0"\n')
    new = lock_packages("pip-freeze", "numpy==2.0.1\nscipy==1.13.0\n")
    assert describe_changes(old, new) == ["numpy 1.26.4 -> 2.0.1", "added: scipy 1.13.0", "removed: six 1.16.0"]


def test_a_damaged_source_snapshot_is_a_clear_cannot_reproduce(proj, make_project) -> None:
    root = make_project(DETERMINISTIC, name="plain-damaged")
    assert proj("run", str(root), "--env-manager", "local", "-P", "alpha=1").code == 0
    original = last_run(proj)
    snapshot = Path(original["run_dir"]) / "artifacts" / "source" / "snapshot.tar.gz"
    snapshot.unlink()  # the run's read-only copy
    snapshot.write_bytes(b"not a tar archive")
    out = proj("reproduce", original["id"])
    assert out.code == 2 and "source snapshot was modified (sha256 mismatch)" in out.stderr, out
    assert "Traceback" not in out.stderr, out
