"""The same mistake in a project's files exits with the same code (2) from ``proj run`` and ``proj validate``."""
from __future__ import annotations

import pytest

CASES = {
    "missing Dockerfile": ({
        "MLproject": "docker_env:\n  image: projtest-base\n  dockerfile: Dockerfile.missing\n"
                     "entry_points:\n  main:\n    command: echo hi\n",
    }, "docker_env.dockerfile 'Dockerfile.missing' not found"),
    "Dockerfile outside the project": ({
        "MLproject": "docker_env:\n  image: projtest-base\n  dockerfile: ../../etc/passwd\n"
                     "entry_points:\n  main:\n    command: echo hi\n",
    }, "docker_env.dockerfile"),
    "missing requirements file": ({
        "MLproject": "python_env: python_env.yaml\nentry_points:\n  main:\n    command: echo hi\n",
        "python_env.yaml": "python: '3.11'\ndependencies:\n  - -r requirements-missing.txt\n",
    }, "requirements-missing.txt"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_project_file_mistake_exits_2_from_run_and_validate(proj, make_project, case: str) -> None:
    files, message = CASES[case]
    root = make_project(files)
    ran, validated = proj("run", str(root)), proj("validate", str(root))
    assert ran.code == validated.code == 2, (ran, validated)
    for out in (ran, validated):
        assert message in out.stderr and "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1, out
    assert proj.runs() == []  # nothing recorded
