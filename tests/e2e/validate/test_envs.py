"""`proj validate` checks the chosen environment's spec file too, building nothing and needing no daemon."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from helpers.cli import Proj, require

MLPROJECT = "name: v\nentry_points:\n  main:\n    command: 'true'\n"
PY = "%d.%d" % sys.version_info[:2]


def errors(out) -> list[str]:  # noqa: ANN001 - conftest Outcome
    return [line for line in out.stderr.splitlines() if line.startswith("proj: error:")]


def assert_rejected(out, *expected: str) -> None:  # noqa: ANN001 - conftest Outcome
    """Exit 2, exactly one error line holding every expected fragment, and no "OK" claimed."""
    assert out.code == 2, out
    assert len(errors(out)) == 1 and all(e in errors(out)[0] for e in expected), out
    assert "OK" not in out.stdout and "Traceback" not in out.stderr, out


# (id, files besides the MLproject, fragments of the one error line)
BAD = [
    ("python-not-a-string", {"python_env.yaml": "python: [3]\n"}, ["python_env.yaml:1", "python: [3]"]),
    ("python-env-unknown-key", {"python_env.yaml": f'python: "{PY}"\npackages: [six]\n'},
     ["python_env.yaml", "unknown key 'packages'"]),
    ("python-env-missing-r-file", {"python_env.yaml": f'python: "{PY}"\ndependencies: ["-r nope.txt"]\n'},
     ["requirements file 'nope.txt' not found"]),
    ("python-not-installed", {"python_env.yaml": 'python: "3.99"\n'}, ["python '3.99' is not installed"]),
    ("conda-top-level-list", {"conda.yaml": "- numpy\n- python\n"},
     ["conda.yaml: the top level must be a mapping with keys name, channels, dependencies, variables"]),
    ("conda-bad-dependency-item", {"conda.yaml": "dependencies:\n  - numpy\n  - {pipp: [x]}\n"},
     ["conda.yaml:3: dependencies.1", "a conda match spec string", "{pip: [requirement, ...]}"]),
    ("conda-unknown-key", {"conda.yaml": "channels: [conda-forge]\nchanels: [x]\n"}, ["unknown key 'chanels'"]),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_env_spec_fails_validate(proj: Proj, make_project, case) -> None:  # noqa: ANN001
    _, files, expected = case
    out = proj("validate", str(make_project({"MLproject": MLPROJECT, **files})))
    assert_rejected(out, *expected)
    assert "MLproject reference" not in out.stderr


def test_bad_conda_match_spec_fails_validate(proj: Proj, make_project) -> None:  # noqa: ANN001
    require(importlib.util.find_spec("rattler") is not None, "py-rattler is not installed")
    conda = 'channels: [conda-forge]\ndependencies: ["python>>>3"]\n'
    root = make_project({"MLproject": MLPROJECT, "conda.yaml": conda})
    out = proj("validate", str(root))
    assert_rejected(out, "conda.yaml: dependencies: 'python>>>3' is not a valid conda match spec")


def test_conda_yaml_read_by_the_virtualenv_backend_says_what_the_top_level_must_be(proj: Proj,  # noqa: ANN001
                                                                                   make_project) -> None:
    root = make_project({"MLproject": MLPROJECT, "conda.yaml": "- numpy\n"})
    out = proj("run", str(root), "--env-manager", "virtualenv")
    assert_rejected(out, "conda.yaml: the top level must be a mapping with keys")
    assert "dependencies must be a list" not in out.stderr and proj.runs() == []


@pytest.mark.parametrize("files", [
    {"python_env.yaml": f'python: "{PY}"\ndependencies: [six, "-r req.txt"]\n', "req.txt": "tinya\n"},
    {"conda.yaml": "name: c\nchannels: [conda-forge]\ndependencies: [python=3.11, numpy>=1.26, {pip: [six]}]\n"},
    {},
], ids=["python_env", "conda", "no-env-file"])
def test_good_env_spec_is_ok_without_building(proj: Proj, make_project, shared_cache: Path, files) -> None:  # noqa: ANN001
    if "conda.yaml" in files:
        require(importlib.util.find_spec("rattler") is not None, "py-rattler is not installed")
    envs_before = sorted((shared_cache / "envs").iterdir()) if (shared_cache / "envs").is_dir() else []
    out = proj("validate", str(make_project({"MLproject": MLPROJECT, **files})))
    assert out.code == 0, out
    assert "environment spec: OK" in out.stdout.splitlines(), out
    assert (sorted((shared_cache / "envs").iterdir()) if (shared_cache / "envs").is_dir() else []) == envs_before
    as_json = proj("validate", str(make_project({"MLproject": MLPROJECT, **files}, name="again")), "--json")
    assert as_json.code == 0 and json.loads(as_json.stdout)["data"]["environment_spec"] == "OK", as_json


DOCKER = "name: d\ndocker_env:\n  image: python:3.11-slim\n  dockerfile: Dockerfile.train\n" \
         "entry_points:\n  main:\n    command: 'true'\n"


def test_docker_project_validates_without_a_daemon(proj: Proj, make_project) -> None:  # noqa: ANN001
    no_daemon = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    root = make_project({"MLproject": DOCKER})
    out = proj("validate", str(root), env=no_daemon)
    assert_rejected(out, "docker_env.dockerfile 'Dockerfile.train' not found")
    (root / "Dockerfile.train").write_text("FROM python:3.11-slim\n")
    out = proj("validate", str(root), env=no_daemon)
    assert out.code == 0 and "environment spec: OK" in out.stdout, out


def test_generic_schema_error_names_the_file_kind() -> None:
    import jsonschema

    from proj.project.schema import _describe

    error = next(jsonschema.Draft202012Validator({"oneOf": [{"type": "string"}, {"type": "integer"}]}).iter_errors([1]))
    for schema, kind in (("conda_env", "conda.yaml"), ("python_env", "python_env.yaml"), ("mlproject", "MLproject")):
        assert _describe(error, Path(kind), "", schema).endswith(f"(see the {kind} reference)")
