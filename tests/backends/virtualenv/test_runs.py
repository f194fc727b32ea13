"""The virtualenv backend end to end: real `proj run`, real virtualenv and uv, local wheels only."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import require

SHOW = """\
import json, os, sys
try:
    import tinya
    tinya_version = tinya.VERSION
except ImportError:
    tinya_version = None
print("SHOW" + json.dumps({"version": "%d.%d.%d" % sys.version_info[:3], "prefix": sys.prefix,
                           "tinya": tinya_version, "virtual_env": os.environ.get("VIRTUAL_ENV")}))
"""
MLPROJECT = """\
name: venv-test
entry_points:
  main:
    command: "python show.py"
"""


def project(make_project, env_yaml: str, name: str = "project", **extra: str) -> Path:  # noqa: ANN001
    return make_project({"MLproject": MLPROJECT, "python_env.yaml": env_yaml, "show.py": SHOW, **extra}, name=name)


def shown(out) -> dict:  # noqa: ANN001 - conftest Outcome
    line = next(line for line in out.stdout.splitlines() if line.startswith("SHOW"))
    return json.loads(line[4:])


def last_env(proj) -> dict:  # noqa: ANN001
    return proj.runs()[0]["env"]


def build_logs(proj) -> list[str]:  # noqa: ANN001
    store = Path(proj.env["PROJ_TRACKING_URI"])
    return [p.read_text() for p in sorted(store.rglob("env-build.log"))]


def half_built(cache: Path) -> list[str]:
    envs = cache / "envs"
    return [p.name for p in envs.iterdir() if p.is_dir() and not (p / ".proj-env.json").exists()] if envs.is_dir() else []


SPEC_A = 'python: "{py}"\ndependencies:\n  - tinya==1.0\n'


def current() -> str:
    return "%d.%d" % sys.version_info[:2]


def test_cache_hit_on_second_run(offline, make_project) -> None:  # noqa: ANN001
    root = project(make_project, SPEC_A.format(py=current()))
    first = offline("run", str(root))
    assert first.code == 0, first
    assert shown(first)["tinya"] == "1.0"
    env1 = last_env(offline)
    second = offline("run", str(root))
    assert second.code == 0, second
    env2 = last_env(offline)
    assert (env1["cache_hit"], env2["cache_hit"]) == (False, True)
    assert env1["key"] == env2["key"] and env2["backend"] == "virtualenv"
    assert env2["origin"] == "python_env.yaml" and env2["python_version"].startswith(current())
    assert shown(second)["virtual_env"] == shown(second)["prefix"] == env2["env_path"]


def test_spec_change_rebuilds(offline, make_project) -> None:  # noqa: ANN001
    root = project(make_project, SPEC_A.format(py=current()))
    assert offline("run", str(root)).code == 0
    key1 = last_env(offline)["key"]
    (root / "python_env.yaml").write_text(SPEC_A.format(py=current()).replace("tinya==1.0", "tinya==2.0"))
    out = offline("run", str(root))
    assert out.code == 0, out
    assert shown(out)["tinya"] == "2.0"
    assert last_env(offline)["key"] != key1 and last_env(offline)["cache_hit"] is False


def test_comment_and_whitespace_changes_do_not_rebuild_or_resolve(offline, make_project) -> None:  # noqa: ANN001
    root = project(make_project, SPEC_A.format(py=current()), **{"requirements.txt": "tinyb\n"})
    (root / "python_env.yaml").write_text(SPEC_A.format(py=current()) + "  - -r requirements.txt\n")
    assert offline("run", str(root)).code == 0
    key1 = last_env(offline)["key"]
    (root / "python_env.yaml").write_text(f'# the env\npython:   "{current()}"\n\ndependencies:\n'
                                          "    - tinya==1.0   # pinned\n    - -r requirements.txt\n")
    (root / "requirements.txt").write_text("# extra\n\n   tinyb    \n")
    out = offline("run", str(root))
    assert out.code == 0, out
    env = last_env(offline)
    assert env["key"] == key1 and env["cache_hit"] is True
    assert "resolving" not in build_logs(offline)[-1] if len(build_logs(offline)) > 1 else True
    assert "resolving" not in out.stderr


def test_requirements_file_content_is_part_of_the_spec(offline, make_project) -> None:  # noqa: ANN001
    spec = f'python: "{current()}"\ndependencies:\n  - -r requirements.txt\n'
    root = project(make_project, spec, **{"requirements.txt": "tinya==1.0\n"})
    assert offline("run", str(root)).code == 0
    (root / "requirements.txt").write_text("tinya==2.0\n")
    out = offline("run", str(root))
    assert out.code == 0, out
    assert shown(out)["tinya"] == "2.0"


@pytest.mark.slow
def test_two_interpreters(offline, make_project) -> None:  # noqa: ANN001
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    have = {p.name.rsplit(".", 1)[0] for p in pyenv.glob("3.*")} if pyenv.is_dir() else set()
    require({"3.10", "3.12"} <= have, "needs Python 3.10 and 3.12 (pyenv)")
    versions = []
    for py in ("3.10", "3.12"):
        root = project(make_project, SPEC_A.format(py=py), name=f"p{py}")
        out = offline("run", str(root))
        assert out.code == 0, out
        versions.append(shown(out)["version"])
        assert last_env(offline)["python_request"] == py
    assert versions[0].startswith("3.10.") and versions[1].startswith("3.12.")


def test_default_env_uses_current_python(offline, make_project) -> None:  # noqa: ANN001
    root = make_project({"show.py": SHOW})
    out = offline("run", str(root), "-e", "show.py")
    assert out.code == 0, out
    env = last_env(offline)
    assert env["backend"] == "virtualenv" and env["origin"].startswith("default")
    assert shown(out)["version"] == "%d.%d.%d" % sys.version_info[:3]
    assert shown(out)["tinya"] is None


def test_conda_yaml_with_env_manager_virtualenv(offline, make_project) -> None:  # noqa: ANN001
    conda = f"name: c\nchannels: [conda-forge]\ndependencies:\n  - python={current()}\n  - numpy=1.26\n" \
            "  - pip\n  - pip:\n    - tinya==2.0\n"
    root = make_project({"MLproject": MLPROJECT, "conda.yaml": conda, "show.py": SHOW})
    out = offline("run", str(root), "--env-manager", "virtualenv")
    assert out.code == 0, out
    assert shown(out)["tinya"] == "2.0" and shown(out)["version"].startswith(current())
    assert "numpy=1.26" in out.stderr and "dropped" in out.stderr
    assert last_env(offline)["spec_file"].endswith("conda.yaml")


def test_run_lock_reinstalls_to_the_same_packages(offline, make_project, tmp_path: Path) -> None:  # noqa: ANN001
    root = project(make_project, f'python: "{current()}"\ndependencies:\n  - tinyb\n')
    assert offline("run", str(root)).code == 0
    run = offline.show(offline.runs()[0]["id"])
    assert run["lock"]["format"] == "pylock.toml" and "sha256" in run["lock"]["text"]
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "virtualenv", "--no-seed", "-q", str(fresh)], check=True)
    (tmp_path / "pylock.toml").write_text(run["lock"]["text"])
    uv = _uv()
    subprocess.run([uv, "pip", "install", "--python", str(fresh / "bin" / "python"), "--preview-features", "pylock",
                    "-r", str(tmp_path / "pylock.toml")], check=True, env={**os.environ, **offline.env})
    assert _freeze(uv, fresh) == _freeze(uv, Path(run["env"]["env_path"])) == {"tinya==1.0", "tinyb==1.0"}


def test_shipped_lock_is_used_without_resolving(offline, make_project) -> None:  # noqa: ANN001
    spec = f'python: "{current()}"\ndependencies:\n  - tinya\n'
    root = project(make_project, spec)
    locked = offline("env", "lock", str(root))
    assert locked.code == 0, locked
    lock = root / "pylock.toml"
    assert lock.is_file() and 'name = "tinya"' in lock.read_text()
    out = offline("run", str(root))
    assert out.code == 0, out
    env = last_env(offline)
    assert env["lock_origin"].startswith("pylock.toml shipped") and shown(out)["tinya"] == "2.0"


def test_lock_written_for_another_spec_is_not_used(offline, make_project) -> None:  # noqa: ANN001
    root = project(make_project, f'python: "{current()}"\ndependencies:\n  - tinya==1.0\n')
    assert offline("env", "lock", str(root)).code == 0
    lock = root / "pylock.toml"
    assert '[tool.proj]\nspec-sha256 = "' in lock.read_text()
    (root / "python_env.yaml").write_text(f'python: "{current()}"\ndependencies:\n  - tinyb\n')
    warning = "pylock.toml was written for a different python_env.yaml; resolving again"
    for _ in range(2):  # cold, then warm: the stale lock is called out every time, never installed
        out = offline("run", str(root))
        assert out.code == 0, out
        assert shown(out)["tinya"] == "1.0" and [ln for ln in out.stderr.splitlines() if warning in ln], out
        assert last_env(offline)["lock_origin"] == "resolved with uv" and "tinyb" in offline.show(
            offline.runs()[0]["id"])["lock"]["text"]
    assert offline("env", "lock", str(root)).code == 0  # re-locking makes the lock current again
    out = offline("run", str(root))
    assert out.code == 0 and warning not in out.stderr, out
    assert last_env(offline)["lock_origin"].startswith("pylock.toml shipped")


def test_warm_run_with_a_stamped_lock_spawns_nothing_and_parses_no_toml(offline, make_project) -> None:  # noqa: ANN001
    root = project(make_project, f'python: "{current()}"\ndependencies: [tinya==1.0]\n')
    assert offline("env", "lock", str(root)).code == 0
    assert offline("run", str(root)).code == 0
    probe = f"""
import subprocess, sys
from pathlib import Path
def refuse(*args, **kwargs):
    raise AssertionError("a subprocess on the warm path: %r" % (args,))
subprocess.Popen = refuse
from proj.envs.base import BuildLog, EnvChoice
from proj.envs.virtualenv.backend import VirtualenvBackend
from proj.project.spec import load_project
backend = VirtualenvBackend()
choice = EnvChoice("virtualenv", "t", Path({str(root / 'python_env.yaml')!r}), load_project(Path({str(root)!r})))
backend.check(choice)
env = backend.ensure(choice, BuildLog(None))
assert env.cache_hit and env.details["lock_origin"].startswith("pylock.toml shipped"), env.details
print(sorted(m for m in sys.modules if m in ("tomllib", "tomli", "jsonschema", "yaml")))
"""
    out = subprocess.run([sys.executable, "-c", probe], env=offline.env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_lock_for_an_empty_env_then_a_new_spec(offline, make_project) -> None:  # noqa: ANN001
    root = make_project({"MLproject": MLPROJECT, "show.py": SHOW})
    out = offline("env", "lock", str(root))
    assert out.code != 0 and "nothing to lock: no python_env.yaml" in out.stderr, out
    assert len([ln for ln in out.stderr.splitlines() if ln.startswith("proj: error:")]) == 1, out
    assert not (root / "pylock.toml").exists()
    (root / "python_env.yaml").write_text(f'python: "{current()}"\ndependencies: [tinya==1.0]\n')
    out = offline("run", str(root))
    assert out.code == 0 and shown(out)["tinya"] == "1.0", out


def test_stale_lock_from_an_older_spec_is_resolved_again(offline, make_project) -> None:  # noqa: ANN001
    """The reviewer's repro: a lock proj wrote for an empty spec, then dependencies were added."""
    root = project(make_project, f'python: "{current()}"\n')
    assert offline("env", "lock", str(root)).code == 0
    assert 'name = "tinya"' not in (root / "pylock.toml").read_text()
    (root / "python_env.yaml").write_text(f'python: "{current()}"\ndependencies: [tinya]\n')
    out = offline("run", str(root))
    assert out.code == 0 and shown(out)["tinya"] == "2.0", out
    assert "run `proj env lock` to update it" in out.stderr


def test_lock_without_a_digest_is_used_as_is(offline, make_project, wheelhouse: Path) -> None:  # noqa: ANN001
    root = project(make_project, f'python: "{current()}"\ndependencies: [tinya]\n')
    (root / "req.in").write_text("tinya==1.0\n")
    subprocess.run([_uv(), "pip", "compile", "--format", "pylock.toml", "--no-header", "-q", str(root / "req.in"),
                    "-o", str(root / "pylock.toml")], check=True, env={**os.environ, **offline.env})
    out = offline("run", str(root))
    assert out.code == 0, out
    assert shown(out)["tinya"] == "1.0" and "written for a different" not in out.stderr  # uv's lock wins
    assert last_env(offline)["lock_origin"].startswith("pylock.toml shipped")


def test_corrupted_env_is_detected_and_rebuilt(offline, make_project, shared_cache: Path) -> None:  # noqa: ANN001
    root = project(make_project, SPEC_A.format(py=current()))
    assert offline("run", str(root)).code == 0
    env_path = Path(last_env(offline)["env_path"])
    (env_path / "bin" / "python").unlink()
    out = offline("run", str(root))
    assert out.code == 0, out
    assert "bin/python is missing" in out.stderr
    assert last_env(offline)["cache_hit"] is False and shown(out)["tinya"] == "1.0"


def test_refresh_env_resolves_again(offline, make_project) -> None:  # noqa: ANN001
    root = project(make_project, SPEC_A.format(py=current()))
    assert offline("run", str(root)).code == 0
    out = offline("run", str(root), "--refresh-env")
    assert out.code == 0, out
    assert "resolving" in out.stderr and "--refresh-env" in out.stderr


def test_process_env_activates_the_venv(offline, make_project) -> None:  # noqa: ANN001
    root = make_project({"MLproject": "entry_points:\n  main:\n    command: 'command -v python; echo $VIRTUAL_ENV'\n",
                         "python_env.yaml": SPEC_A.format(py=current())})
    out = offline("run", str(root))
    assert out.code == 0, out
    env_path = last_env(offline)["env_path"]
    assert out.stdout.split() == [f"{env_path}/bin/python", env_path]


def _uv() -> str:
    import uv

    return uv.find_uv_bin()


def _freeze(uv: str, venv: Path) -> set[str]:
    out = subprocess.run([uv, "pip", "freeze", "--python", str(venv / "bin" / "python")], capture_output=True,
                         text=True, check=True)
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def test_from_lock_rebuilds_the_recorded_env(offline, make_project, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    root = project(make_project, f'python: "{current()}"\ndependencies:\n  - tinyb\n')
    assert offline("run", str(root)).code == 0
    run = offline.show(offline.runs()[0]["id"])
    for key, value in offline.env.items():
        monkeypatch.setenv(key, value)
    from proj.envs.base import BuildLog, EnvChoice, Lock
    from proj.envs.virtualenv.backend import VirtualenvBackend
    from proj.project.spec import load_project

    choice = EnvChoice("virtualenv", "reproduce", root / "python_env.yaml", load_project(root))
    env = VirtualenvBackend().from_lock(choice, Lock("pylock.toml", run["lock"]["text"]), BuildLog(None))
    assert env.key == run["env"]["key"] and env.lock.text == run["lock"]["text"]


@pytest.mark.network
@pytest.mark.slow
def test_sklearn_example_from_the_package_index(proj) -> None:  # noqa: ANN001
    from helpers.paths import EXAMPLES

    out = proj("run", str(EXAMPLES / "sklearn"), "-P", "alpha=0.05", timeout=600)
    assert out.code == 0, out
    run = proj.show(proj.runs()[0]["id"])
    assert run["status"] == "FINISHED" and "scikit-learn" in run["lock"]["text"]
    assert {"rmse", "mae", "r2"} <= set(run["metrics"]), run["metrics"]
    artifacts = Path(run["run_dir"]) / "artifacts"
    assert (artifacts / "metrics.yaml").is_file() and (artifacts / "coefficients.json").is_file()
