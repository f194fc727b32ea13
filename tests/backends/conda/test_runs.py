"""Conda environments built for real from a local channel (no conda binary, no network)."""
from __future__ import annotations

import importlib.util
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from helpers.cli import Proj, require

pytestmark = [pytest.mark.conda]


@pytest.fixture(scope="session")
def conda_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A channel root holding ``conda-forge`` (hand-made packages) and ``wheels`` (for pip: parts)."""
    require(importlib.util.find_spec("rattler") is not None, "py-rattler is not installed")
    from helpers import conda_channel as cc

    root = tmp_path_factory.mktemp("conda-mirror")
    cc.build_channel(root / "conda-forge", cc.standard_packages())
    cc.build_wheel("tinywheel", "1.0", root / "wheels", "X = 'tiny'\n")
    return root


@pytest.fixture
def cproj(proj: Proj, conda_channel: Path, monkeypatch: pytest.MonkeyPatch) -> Proj:
    """The proj CLI with every named channel redirected to the local mirror."""
    proj.env["PROJ_CONDA_CHANNEL_ALIAS"] = str(conda_channel)
    monkeypatch.setenv("PROJ_CONDA_CHANNEL_ALIAS", str(conda_channel))
    return proj


def conda_project(make_project, deps: list[str], command: str, *, pip: list[str] | None = None,
                  name: str = "project", extra: str = "") -> Path:
    """A project whose conda.yaml is unique to the test (a ``variables`` entry), so it builds cold."""
    lines = ["name: demo", "channels:", "  - conda-forge", "dependencies:", *[f"  - {d}" for d in deps]]
    if pip is not None:
        lines += ["  - pip:", *[f"    - {p}" for p in pip]]
    lines += ["variables:", f"  CASE_ID: {uuid.uuid4().hex}", extra]
    mlproject = f"name: demo\nconda_env: conda.yaml\nentry_points:\n  main:\n    command: {command!r}\n"
    return make_project({"conda.yaml": "\n".join(lines) + "\n", "MLproject": mlproject}, name=name)


def last_run(proj: Proj) -> dict:
    return proj.show(proj.runs()[0]["id"])


def test_solve_install_run_with_activation_and_pip(cproj: Proj, make_project, conda_channel: Path) -> None:
    root = conda_project(make_project, ["python", "greet=1.0", "shout"],
                         "greet && shout && python -c 'import tinywheel, sys; print(tinywheel.X, sys.prefix)' "
                         "&& echo var=$CASE_ID prefix=$CONDA_PREFIX default=$CONDA_DEFAULT_ENV",
                         pip=["--no-index", f"--find-links {conda_channel / 'wheels'}", "tinywheel"])
    out = cproj("run", str(root))
    assert out.code == 0, out
    run = last_run(cproj)
    prefix = run["env"]["prefix"]
    assert "hello from greet-data 1.0" in out.stdout
    assert f"greet 1.0 activated=yes:{prefix}" in out.stdout  # the activate.d script ran
    assert "HELLO FROM GREET-DATA 1.0" in out.stdout  # shout found greet on the env's PATH
    assert f"tiny {prefix}" in out.stdout  # the pip: part is installed into the env's own Python
    assert f"prefix={prefix} default={prefix}" in out.stdout and "var=" in out.stdout
    assert run["env"]["backend"] == "conda" and run["env"]["cache_hit"] is False
    assert run["status"] == "FINISHED"
    lock = cproj("runs", "show", run["id"], "--json").json()
    assert run["env"]["lock_format"] == "conda-lock.yml"
    del lock


def test_second_run_hits_the_cache_without_solving(cproj: Proj, make_project) -> None:
    root = conda_project(make_project, ["greet=1.0"], "greet")
    first = cproj("run", str(root))
    second = cproj("run", str(root))
    assert first.code == 0 and second.code == 0, (first, second)
    runs = cproj.runs()
    newest, oldest = cproj.show(runs[0]["id"]), cproj.show(runs[1]["id"])
    assert oldest["env"]["cache_hit"] is False and newest["env"]["cache_hit"] is True
    assert newest["env"]["key"] == oldest["env"]["key"]
    assert "solving" not in second.stderr


def test_new_spec_gives_a_new_env(cproj: Proj, make_project) -> None:
    one = conda_project(make_project, ["greet=1.0"], "greet", name="one")
    cproj("run", str(one))
    key_one = last_run(cproj)["env"]["key"]
    (one / "conda.yaml").write_text((one / "conda.yaml").read_text().replace("greet=1.0", "greet>=2"))
    out = cproj("run", str(one))
    assert out.code == 0, out
    assert "hello from greet-data 2.0" in out.stdout
    assert last_run(cproj)["env"]["key"] != key_one


def test_lock_round_trip_installs_the_same_packages(cproj: Proj, make_project, conda_channel: Path) -> None:
    from conda_lock.lockfile import parse_conda_lock_file

    root = conda_project(make_project, ["python", "shout"], "greet",
                         pip=["--no-index", f"--find-links {conda_channel / 'wheels'}", "tinywheel"])
    lock = _write_lock(root)
    parsed = parse_conda_lock_file(lock)  # conda-lock itself reads what we wrote
    conda = {p.name: p for p in parsed.package if p.manager == "conda"}
    assert set(conda) == {"greet", "greet-data", "python", "shout"}
    assert all(p.url.startswith("file://") and len(p.hash.sha256 or "") == 64 for p in conda.values())
    pips = [p for p in parsed.package if p.manager == "pip"]
    assert [p.name for p in pips] == ["tinywheel"] and pips[0].hash.sha256
    out = cproj("run", str(root))
    assert out.code == 0, out
    run = last_run(cproj)
    assert run["env"]["lock_source"].endswith("conda-lock.yml")
    assert sorted(run["env"]["packages"]) == sorted(
        [f"{p.name}={p.version}={p.build}" for p in conda.values()] + ["pip:tinywheel==1.0"])
    # The shipped lock wins over an edited conda.yaml, and the user is told it is stale.
    spec = root / "conda.yaml"
    spec.write_text(spec.read_text().replace("  - shout", "  - shout\n  - filler1"))
    again = cproj("run", str(root))
    assert again.code == 0 and "was written for a different conda.yaml" in again.stderr, again
    assert last_run(cproj)["env"]["key"] == run["env"]["key"]


def test_from_lock_rebuilds_a_recorded_env_on_an_empty_cache(cproj: Proj, make_project, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from proj.envs.base import BuildLog, EnvChoice, Lock
    from proj.envs.conda.backend import CondaBackend
    from proj.project.spec import load_project

    root = conda_project(make_project, ["greet=1.0", "filler3"], "greet")
    assert cproj("run", str(root)).code == 0
    recorded = last_run(cproj)["env"]
    text = (_write_lock(root)).read_text()
    monkeypatch.setenv("PROJ_CACHE_DIR", str(tmp_path / "fresh-cache"))
    (root / "conda-lock.yml").unlink()
    choice = EnvChoice("conda", "reproduce", root / "conda.yaml", load_project(root))
    env = CondaBackend().from_lock(choice, Lock("conda-lock.yml", text), BuildLog(None))
    assert env.cache_hit is False and sorted(env.details["packages"]) == sorted(recorded["packages"])


def _write_lock(root: Path) -> Path:
    from proj.envs.base import BuildLog, EnvChoice
    from proj.envs.conda.backend import CondaBackend
    from proj.project.spec import load_project

    choice = EnvChoice("conda", "test", root / "conda.yaml", load_project(root))
    return CondaBackend().write_lock(choice, BuildLog(None))


def test_package_rebuilt_under_the_same_name_fails_the_hash_check(proj: Proj, make_project, tmp_path: Path) -> None:
    require(importlib.util.find_spec("rattler") is not None, "py-rattler is not installed")
    from helpers import conda_channel as cc

    channel = cc.build_channel(tmp_path / "own", [cc.Pkg("payload", "1.0", files={"share/p.txt": "good\n"})])
    root = make_project({"conda.yaml": f"channels: [{channel}]\ndependencies: [payload]\n",
                         "MLproject": "name: p\nentry_points:\n  main:\n    command: cat $CONDA_PREFIX/share/p.txt\n"})
    _write_lock(root)
    cc.build_package(cc.Pkg("payload", "1.0", files={"share/p.txt": "evil\n"}), channel)  # same file name
    out = proj("run", str(root))
    assert out.code != 0, out
    assert "does not match the lock" in out.stderr and "payload-1.0-0.tar.bz2" in out.stderr
    run = last_run(proj)
    assert run["status"] == "FAILED" and run["failure_phase"] == "environment"
    assert "evil" not in out.stdout


def test_channel_mapping_in_the_config_file(proj: Proj, make_project, conda_channel: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[conda.channels]\nmy-mirror = "{conda_channel / "conda-forge"}"\n')
    proj.env["PROJ_CONFIG"] = str(config)
    root = make_project({"conda.yaml": f"channels: [my-mirror]\ndependencies: [greet=1.0]\nvariables: "
                                       f"{{CASE: {uuid.uuid4().hex}}}\n",
                         "MLproject": "name: p\nentry_points:\n  main:\n    command: greet\n"})
    out = proj("run", str(root))
    assert out.code == 0, out
    assert "hello from greet-data 1.0" in out.stdout


@pytest.mark.parametrize(("deps", "message"), [
    (["wants-old-greet", "wants-new-greet"], "cannot be installed together"),
    (["no-such-package"], "no package matches 'no-such-package"),
    (["greet>=9"], "no package matches 'greet >=9"),
])
def test_unsolvable_and_missing_packages_fail_in_the_environment_phase(cproj: Proj, make_project, deps: list[str],
                                                                        message: str) -> None:
    root = conda_project(make_project, deps, "true")
    out = cproj("run", str(root))
    assert out.code == 1, out  # a clean failure, not a crash of the process at exit
    assert message in out.stderr and "conda.yaml" in out.stderr
    assert "Traceback" not in out.stderr
    run = last_run(cproj)
    assert run["status"] == "FAILED" and run["failure_phase"] == "environment"
    assert message in run["failure_reason"] and "\n" not in run["failure_reason"]


def test_unreachable_channel_is_one_clear_line(proj: Proj, make_project, tmp_path: Path) -> None:
    root = conda_project(make_project, ["greet"], "true")
    out = proj("run", str(root), env={"PROJ_CONDA_CHANNEL_ALIAS": str(tmp_path / "nowhere")})
    assert out.code == 1, out
    assert "a channel cannot be read" in out.stderr and "conda-forge" in out.stderr
    assert "Traceback" not in out.stderr


def test_invalid_conda_yaml_is_rejected_before_a_run_exists(proj: Proj, make_project) -> None:
    root = make_project({"conda.yaml": "channels: [conda-forge]\ndependencies: [greet]\nchanels: [x]\n",
                         "MLproject": "name: p\nentry_points:\n  main:\n    command: 'true'\n"})
    out = proj("run", str(root))
    assert out.code == 2, out
    assert "conda.yaml" in out.stderr and "chanels" in out.stderr and "valid keys" in out.stderr
    assert proj.runs() == []


@pytest.mark.parametrize("bad", ["python>>>3", "numpy[["])
def test_bad_match_spec_is_rejected_before_a_run_exists(cproj: Proj, make_project, bad: str) -> None:
    root = conda_project(make_project, ["greet=1.0", f'"{bad}"'], "greet")
    out = cproj("run", str(root))
    assert out.code == 2, out
    errors = [line for line in out.stderr.splitlines() if line.startswith("proj: error:")]
    assert len(errors) == 1 and "conda.yaml" in errors[0] and repr(bad) in errors[0], out
    assert "not a valid conda match spec" in errors[0] and "Traceback" not in out.stderr
    assert cproj.runs() == []


def test_missing_frontend_executable_is_a_clear_error(proj: Proj, make_project) -> None:
    root = make_project({"conda.yaml": "channels: [conda-forge]\ndependencies: [greet]\n",
                         "MLproject": "name: p\nentry_points:\n  main:\n    command: 'true'\n"})
    out = proj("run", str(root), "--conda-frontend", "micromamba")
    assert out.code != 0, out
    assert "micromamba" in out.stderr and "executable" in out.stderr
    assert "Traceback" not in out.stderr


def test_warm_path_imports_neither_rattler_nor_conda_lock(cproj: Proj, make_project) -> None:
    root = conda_project(make_project, ["greet=1.0"], "greet")
    assert cproj("run", str(root)).code == 0
    probe = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from proj.envs.base import BuildLog, EnvChoice
        from proj.envs.conda.backend import CondaBackend
        from proj.project.spec import load_project
        choice = EnvChoice("conda", "t", Path({str(root / 'conda.yaml')!r}), load_project(Path({str(root)!r})))
        CondaBackend().check(choice)  # a cached resolution: the match specs are not parsed again
        env = CondaBackend().ensure(choice, BuildLog(None))
        assert env.cache_hit, env.key
        print(sorted(m for m in sys.modules if m.startswith(("rattler", "conda_lock"))))
    """)
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", probe], env=cproj.env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_example_project_runs_against_the_local_channel(cproj: Proj, tmp_path: Path) -> None:
    import shutil

    from helpers.paths import EXAMPLES

    root = tmp_path / "conda-example"
    shutil.copytree(EXAMPLES / "conda", root)
    out = cproj("run", str(root), "-P", "greeting=hi")
    assert out.code == 0, out
    prefix = last_run(cproj)["env"]["prefix"]
    assert f"hi from {prefix} (CONDA_PREFIX={prefix}, EXAMPLE_MODE=demo)" in out.stdout


def test_env_lock_and_list_cover_conda_envs(cproj: Proj, make_project) -> None:
    root = conda_project(make_project, ["greet=1.0", "filler4"], "greet")
    out = cproj("env", "lock", str(root))
    assert out.code == 0, out
    assert (root / "conda-lock.yml").is_file() and "manager: conda" in (root / "conda-lock.yml").read_text()
    assert cproj("run", str(root)).code == 0
    key = last_run(cproj)["env"]["key"]
    listed = cproj("env", "list", "--json")
    assert listed.code == 0, listed
    assert any(e["key"] == key and e["backend"] == "conda" for e in listed.json())


def test_python_env_yaml_with_env_manager_conda(cproj: Proj, make_project) -> None:
    root = make_project({"python_env.yaml": f'python: "{sys.version_info.major}.{sys.version_info.minor}"\n',
                         "MLproject": "name: p\nentry_points:\n  main:\n"
                                      "    command: python -c 'import sys; print(sys.prefix)'\n"})
    out = cproj("run", str(root), "--env-manager", "conda")
    assert out.code == 0, out
    run = last_run(cproj)
    assert run["env"]["backend"] == "conda" and run["env"]["prefix"] in out.stdout


def test_python_env_yaml_under_conda_is_checked_like_python_env(cproj: Proj, make_project) -> None:
    root = make_project({"python_env.yaml": "python: [3]\n",
                         "MLproject": "name: p\nentry_points:\n  main:\n    command: 'true'\n"})
    out = cproj("run", str(root), "--env-manager", "conda")
    assert out.code == 2, out
    assert "python_env.yaml:1: python: [3] is not of type 'string'" in out.stderr and cproj.runs() == []


def test_two_concurrent_runs_build_the_env_once(cproj: Proj, make_project) -> None:
    root = conda_project(make_project, ["greet=1.0", "filler5"], "greet")
    procs = [cproj.popen("run", str(root)) for _ in range(2)]
    results = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    envs = [cproj.show(r["id"])["env"] for r in cproj.runs()]
    assert len({e["key"] for e in envs}) == 1
    assert sorted(e["cache_hit"] for e in envs) == [False, True]


def test_reproduce_rebuilds_the_env_from_the_recorded_lock(cproj: Proj, make_project) -> None:
    root = conda_project(make_project, ["greet=1.0"], "greet")
    assert cproj("run", str(root)).code == 0
    original = last_run(cproj)
    assert cproj("env", "prune", "--all").code == 0  # the cached env is gone: it must be rebuilt
    (root / "conda.yaml").write_text((root / "conda.yaml").read_text().replace("greet=1.0", "greet"))
    out = cproj("reproduce", original["id"])
    assert out.code == 0 and "verdict: identical" in out.stdout, out
    new = last_run(cproj)
    assert new["env"]["cache_hit"] is False and new["env"]["lock_sha256"] == original["env"]["lock_sha256"]


def test_declared_variables_are_data_not_shell(cproj: Proj, make_project, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    root = conda_project(make_project, ["greet=1.0"], "echo \"value=[$TRICKY]\"",
                         extra=f"  TRICKY: $(touch {marker}) and $HOME")
    out = cproj("run", str(root))
    assert out.code == 0, out
    assert f"value=[$(touch {marker}) and $HOME]" in out.stdout, out
    assert not marker.exists()
