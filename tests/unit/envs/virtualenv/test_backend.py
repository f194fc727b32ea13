"""The virtualenv backend's pure parts: spec normalisation, version matching, uv messages, index options."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from proj.envs.python_env import load_spec
from proj.envs.uv import index_args, tool_message
from proj.envs.virtualenv.interpreters import Interpreter, discover, find_interpreter, matches
from proj.errors import EnvError, ProjectError


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJ_CACHE_DIR", str(tmp_path / "cache"))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_fingerprint_ignores_comments_and_whitespace(tmp_path: Path) -> None:
    write(tmp_path, "req.txt", "b==1\n")
    a = load_spec(write(tmp_path, "a.yaml", 'python: "3.11"\ndependencies: [x, "-r req.txt"]\n'), tmp_path)
    b = load_spec(write(tmp_path, "b.yaml", '# c\npython:   "3.11"\n\ndependencies:\n  - x   # y\n'
                        '  - -r req.txt\n'), tmp_path)
    assert a.requirements == b.requirements == ("x", "b==1")
    assert a.fingerprint() == b.fingerprint()


def test_fingerprint_follows_python_includes_and_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    req = write(tmp_path, "req.txt", "b==1\n")
    spec = write(tmp_path, "p.yaml", 'python: "3.11"\ndependencies: ["-r req.txt"]\n')
    first = load_spec(spec, tmp_path).fingerprint()
    req.write_text("b==2\n")
    second = load_spec(spec, tmp_path).fingerprint()
    monkeypatch.setenv("UV_INDEX_URL", "https://mirror.example/simple")
    third = load_spec(spec, tmp_path).fingerprint()
    spec.write_text('python: "3.12"\ndependencies: ["-r req.txt"]\n')
    assert len({first, second, third, load_spec(spec, tmp_path).fingerprint()}) == 4


def test_build_dependencies_come_first(tmp_path: Path) -> None:
    spec = write(tmp_path, "p.yaml", 'python: "3.11"\nbuild_dependencies: [pip]\ndependencies: [x]\n')
    assert load_spec(spec, tmp_path).requirements == ("pip", "x")


def test_unquoted_python_says_to_quote_it(tmp_path: Path) -> None:
    spec = write(tmp_path, "python_env.yaml", "# env\npython: 3.10\n")
    with pytest.raises(ProjectError, match=r'python_env.yaml:2: python: 3.10 is a number .*quote it: python: "3.10"'):
        load_spec(spec, tmp_path)


def test_conda_yaml_keeps_python_pin_and_pip_list(tmp_path: Path) -> None:
    conda = write(tmp_path, "conda.yaml", "dependencies:\n  - python=3.10.*\n  - numpy\n  - pip\n"
                  "  - pip:\n    - mlflow>=2\n")
    spec = load_spec(conda, tmp_path, conda=True)
    assert (spec.python, spec.requirements) == ("3.10", ("pip", "mlflow>=2"))
    assert "numpy" in spec.warnings[0]


def test_no_spec_file_means_current_python() -> None:
    spec = load_spec(None, None)
    assert spec.python == "%d.%d.%d" % sys.version_info[:3] and spec.requirements == ()


@pytest.mark.parametrize(("version", "request_", "ok"), [
    ("3.11.7", "3.11", True), ("3.11.7", "3.11.7", True), ("3.11.7", "3.11.6", False),
    ("3.11.7", "3.1", False), ("3.11.7", "3", True), ("3.12.0", "3.11", False)])
def test_version_matching(version: str, request_: str, ok: bool) -> None:
    assert matches(version, request_) is ok


def test_missing_version_lists_what_exists() -> None:
    with pytest.raises(EnvError) as err:
        find_interpreter("2.1", "python_env.yaml")
    message = str(err.value)
    assert "python '2.1' is not installed; found: " in message
    assert "%d.%d.%d" % sys.version_info[:3] in message


def test_discovery_finds_current_python_and_skips_shims() -> None:
    found = discover()
    assert any(i.source == "current" for i in found)
    assert not any("/shims/" in i.path for i in found)
    assert all(isinstance(i, Interpreter) and i.parts for i in found)


def test_tool_message_keeps_uv_error_block() -> None:
    lines = ["Using Python 3.11", "error: No solution found when resolving dependencies",
             "  cause: Because a was not found, we can conclude that your requirements are unsatisfiable."]
    assert tool_message(lines).startswith("error: No solution found") and "unsatisfiable" in tool_message(lines)
    assert tool_message(["a", "b", "c", "d"]) == "b c d"


def test_pip_index_settings_become_uv_options() -> None:
    env = {"PIP_INDEX_URL": "https://m/simple", "PIP_FIND_LINKS": "/w1 /w2", "PIP_NO_INDEX": "true"}
    assert index_args(env) == ["--index-url", "https://m/simple", "--find-links", "/w1", "--find-links", "/w2",
                               "--no-index"]
    assert index_args({**env, "UV_FIND_LINKS": "/u", "UV_INDEX_URL": "https://u"}) == ["--no-index"]


LOCK = 'lock-version = "1.0"\ncreated-by = "uv"\n\n[[packages]]\nname = "x"\nversion = "1"\n'


def test_stamped_lock_is_used_until_the_spec_changes(tmp_path: Path) -> None:
    from proj.lockfiles.pylock import lock_packages, recorded_spec_digest, with_spec_digest

    spec_file = write(tmp_path, "python_env.yaml", 'python: "3.11"\ndependencies: [x]\n')
    stamped = with_spec_digest(LOCK, load_spec(spec_file, tmp_path).digest())
    assert lock_packages(stamped) == {"x": "1"} and recorded_spec_digest(LOCK) is None
    write(tmp_path, "pylock.toml", stamped)
    spec_file.write_text('# same request, other spelling\npython:  "3.11"\ndependencies:\n  - x   # pinned\n')
    same = load_spec(spec_file, tmp_path)
    assert (same.shipped_lock, same.stale_lock) == (stamped, None)
    spec_file.write_text('python: "3.11"\ndependencies: [x, y]\n')
    changed = load_spec(spec_file, tmp_path)
    assert changed.shipped_lock is None and changed.stale_lock is not None
    assert changed.stale_lock.startswith("pylock.toml was written for a different python_env.yaml; resolving again")
    # The ignored lock is not part of the fingerprint: the spec resolves as if no lock were shipped.
    (tmp_path / "pylock.toml").unlink()
    assert load_spec(spec_file, tmp_path).fingerprint() == changed.fingerprint()


def test_digest_survives_moving_the_project_but_not_a_constraint_edit(tmp_path: Path) -> None:
    specs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write(tmp_path / name, "c.txt", "x<2\n")
        specs.append(write(tmp_path / name, "python_env.yaml", 'python: "3.11"\ndependencies: [x, "-c c.txt"]\n'))
    first, second = (load_spec(s, s.parent) for s in specs)
    assert first.requirements != second.requirements and first.digest() == second.digest()
    (tmp_path / "b" / "c.txt").write_text("x<3\n")
    assert load_spec(specs[1], specs[1].parent).digest() != first.digest()


def test_lock_without_digest_is_the_projects_own(tmp_path: Path) -> None:
    spec_file = write(tmp_path, "python_env.yaml", 'python: "3.11"\ndependencies: [y]\n')
    write(tmp_path, "pylock.toml", LOCK)
    spec = load_spec(spec_file, tmp_path)
    assert (spec.shipped_lock, spec.stale_lock) == (LOCK, None)
