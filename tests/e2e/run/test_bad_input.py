"""Every user mistake gets one clear line, a non-zero exit, no traceback, and no run left behind."""
from __future__ import annotations

from pathlib import Path

import pytest

GOOD = """\
name: p
entry_points:
  main:
    parameters:
      alpha: float
      n: {type: int, default: 1}
      flag: {type: bool, default: false}
      data: {type: path, default: .}
      where: {type: uri, default: "file:///tmp"}
    command: "python -c 'print(1)' {alpha} {n} {flag} {data} {where}"
"""

# (case id, MLproject text or None for the GOOD one, proj run arguments, expected text, exit code)
CASES = [
    ("malformed-yaml", "name: p\nentry_points:\n  main: {command: 'x'\n", ["-P", "alpha=1"], "MLproject:4:1: invalid YAML", 2),
    ("missing-command", "entry_points:\n  main:\n    parameters: {a: float}\n", [], "'command' is a required property", 2),
    ("two-env-keys", GOOD + "python_env: python_env.yaml\nconda_env: conda.yaml\n", ["-P", "alpha=1"],
     "python_env and conda_env are both set", 2),
    ("unknown-entry-point", None, ["-e", "trian", "-P", "alpha=1"], "no entry point 'trian'; valid entry points: main", 2),
    ("missing-script", None, ["-e", "nothere.py"], "no script 'nothere.py'", 2),
    ("missing-param", None, [], "missing required parameter alpha", 2),
    ("param-without-equals", None, ["-P", "alpha"], "-P 'alpha': expected KEY=VALUE", 2),
    ("repeated-param", None, ["-P", "alpha=1", "-P", "alpha=2"], "-P alpha: given more than once", 2),
    ("repeated-tag", None, ["-P", "alpha=1", "-T", "a=1", "-T", "a=2"], "-T a: given more than once", 2),
    ("tag-without-equals", None, ["-P", "alpha=1", "-T", "team"], "-T 'team': expected KEY=VALUE", 2),
    ("not-a-float", None, ["-P", "alpha=fast"], "parameter 'alpha' (float): 'fast' is not a number", 2),
    ("not-an-int", None, ["-P", "alpha=1", "-P", "n=2.5"], "parameter 'n' (int): '2.5' is not a whole number", 2),
    ("not-a-bool", None, ["-P", "alpha=1", "-P", "flag=perhaps"], "parameter 'flag' (bool): 'perhaps' is not true or false", 2),
    ("path-missing", None, ["-P", "alpha=1", "-P", "data=no/such/file"],
     "parameter 'data' (path): 'no/such/file' does not exist", 2),
    ("uri-without-scheme", None, ["-P", "alpha=1", "-P", "where=just/a/path"],
     "parameter 'where' (uri): 'just/a/path' has no scheme", 2),
    ("undeclared-placeholder", GOOD.replace("{where}", "{wehre}"), ["-P", "alpha=1"],
     "uses {wehre} but no such parameter is declared", 2),
    ("unbalanced-brace", GOOD.replace("{where}", "{where"), ["-P", "alpha=1"], "bad braces", 2),
    ("bad-env-manager", None, ["-P", "alpha=1", "--env-manager", "pipenv"], "Invalid value for '--env-manager'", 2),
    ("missing-env-file", GOOD + "python_env: nothere.yaml\n", ["-P", "alpha=1"], "python_env: file 'nothere.yaml' not found", 2),
    ("path-unknown-user", None, ["-P", "alpha=1", "-P", "data=~nosuchuser/x"],
     "parameter 'data' (path) '~nosuchuser/x': cannot expand '~nosuchuser'", 2),
    ("path-empty", None, ["-P", "alpha=1", "-P", "data="], "parameter 'data' (path): the value is empty", 2),
    ("path-remote-file-url", None, ["-P", "alpha=1", "-P", "data=file://host/x"], "'file://host/x' is not a local file URL", 2),
]

# (case id, environment, proj arguments after "run PROJECT" or None for "runs list", expected text)
ENV_CASES = [
    ("tracking-uri-unknown-user", {"PROJ_TRACKING_URI": "~nosuchuser/store"}, None,
     "'~nosuchuser/store': cannot expand '~nosuchuser'"),
    ("cache-dir-unknown-user", {"PROJ_CACHE_DIR": "~nosuchuser/cache"}, ["-P", "alpha=1"],
     "PROJ_CACHE_DIR '~nosuchuser/cache': cannot expand"),
    ("snapshot-cap-not-a-number", {"PROJ_SNAPSHOT_MAX_MB": "lots"}, ["-P", "alpha=1"],
     "PROJ_SNAPSHOT_MAX_MB='lots' is not a number"),
    ("git-timeout-not-a-number", {"PROJ_GIT_TIMEOUT": "abc"}, ["file:///no/such/repo"], "PROJ_GIT_TIMEOUT='abc' is not a number"),
    ("git-connect-timeout-not-a-number", {"PROJ_GIT_CONNECT_TIMEOUT": "1s"}, ["file:///no/such/repo"],
     "PROJ_GIT_CONNECT_TIMEOUT='1s' is not a number"),
]


@pytest.mark.parametrize("case,mlproject,args,expected,code", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(proj, make_project, case, mlproject, args, expected, code) -> None:
    root = make_project({"MLproject": mlproject or GOOD})
    out = proj("run", str(root), "--env-manager", "local", *args) if "--env-manager" not in args \
        else proj("run", str(root), *args)
    assert out.code == code, out
    assert expected in out.stderr, out
    assert "Traceback" not in out.stderr, out
    error_lines = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert len(error_lines) == 1, out
    assert not (Path(proj.env["PROJ_TRACKING_URI"]) / "proj.db").exists() or proj.runs() == [], out


@pytest.mark.parametrize("case,env,args,expected", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_bad_environment_variable_is_one_clear_line(proj, make_project, case, env, args, expected) -> None:
    root = make_project({"MLproject": GOOD})
    if args is None:
        out = proj("runs", "list", env=env)
    elif args[0].startswith("file://"):
        out = proj("run", args[0], "--env-manager", "local", env=env)
    else:
        out = proj("run", str(root), "--env-manager", "local", *args, env=env)
    assert out.code == 2 and expected in out.stderr and "Traceback" not in out.stderr, out
    assert not (Path(proj.env["PROJ_TRACKING_URI"]) / "proj.db").exists() or proj.runs() == [], out


def test_project_uri_with_an_unknown_user(proj) -> None:
    out = proj("run", "~nosuchuser/project", "--env-manager", "local")
    assert out.code == 2 and "project path '~nosuchuser/project': cannot expand" in out.stderr, out
    assert "Traceback" not in out.stderr, out


def test_project_path_that_does_not_exist(proj) -> None:
    out = proj("run", "no/such/dir", "--env-manager", "local")
    assert out.code == 2 and "project path" in out.stderr and "does not exist" in out.stderr, out


def test_reading_commands_never_create_a_store(proj, tmp_path) -> None:
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    env = {"PROJ_TRACKING_URI": str(empty / ".proj")}
    assert proj("runs", "list", cwd=empty, env=env).stdout.strip() == "no runs recorded yet"
    assert proj("models", "list", "--json", cwd=empty, env=env).json() == []
    for args in (["runs", "show", "abc"], ["runs", "logs", "abc"], ["reproduce", "abc"], ["runs", "diff", "a", "b"]):
        out = proj(*args, cwd=empty, env=env)
        assert out.code == 2 and "no runs recorded in" in out.stderr and "Traceback" not in out.stderr, out
    assert list(empty.iterdir()) == []


def test_unknown_run_id(proj, make_project) -> None:
    root = make_project({"MLproject": "entry_points:\n  main:\n    command: 'true'\n"})
    assert proj("run", str(root), "--env-manager", "local").code == 0  # a store with one run in it
    for args in (["runs", "show", "abc123"], ["runs", "show", "not-hex"], ["runs", "logs", "ffff"], ["runs", "cancel", "ab"]):
        out = proj(*args)
        assert out.code == 2 and "not found" in out.stderr and "Traceback" not in out.stderr, out


def test_debug_shows_the_traceback(proj, make_project) -> None:
    root = make_project({"MLproject": GOOD})
    out = proj("--debug", "run", str(root), "--env-manager", "local")
    assert out.code != 0 and "Traceback" in out.stderr and "missing required parameter" in out.stderr, out


def test_bad_defaults_are_the_mlprojects_mistake(proj, make_project) -> None:
    root = make_project({"MLproject": GOOD.replace("n: {type: int, default: 1}", "n: {type: int, default: oops}")})
    out = proj("validate", str(root))
    assert out.code == 2 and "entry_points.main: parameter 'n' (int): 'oops' is not a whole number" in out.stderr, out
    out = proj("run", str(root), "--env-manager", "local", "-P", "alpha=1")
    assert out.code == 2 and "this is the default declared in the MLproject" in out.stderr, out


def test_validate_reports_the_same_errors(proj, make_project) -> None:
    root = make_project({"MLproject": GOOD.replace("alpha: float", "alpha: double")})
    out = proj("validate", "--strict", str(root))  # an unknown type is a warning (as MLflow accepts it) but for --strict
    assert out.code == 2 and "unknown type 'double'" in out.stderr, out
    ok = proj("validate", str(make_project({"MLproject": GOOD}, name="ok")))
    assert ok.code == 0 and "entry point main" in ok.stdout and "alpha" in ok.stdout and "required" in ok.stdout, ok


@pytest.mark.parametrize("value", ["x; touch {marker}", "$(touch {marker})", "`touch {marker}`", "a' ; touch {marker}; '"])
def test_values_reach_the_program_as_one_literal_argument(proj, make_project, tmp_path, value) -> None:
    marker = tmp_path / "pwned"
    root = make_project({
        "MLproject": """\
            entry_points:
              main:
                parameters: {msg: string}
                command: "python show.py {msg}"
            """,
        "show.py": "import json, sys; print(json.dumps(sys.argv[1:]))\n",
    })
    literal = value.format(marker=marker)
    out = proj("run", str(root), "--env-manager", "local", "-P", f"msg={literal}", "-P", f"extra={literal}")
    assert out.code == 0, out
    import json

    assert json.loads(out.stdout.strip().splitlines()[-1]) == [literal, "--extra", literal]
    assert not marker.exists()


def test_include_files_that_are_not_utf8_are_one_clear_line(proj, make_project) -> None:
    root = make_project({"MLproject": "python_env: python_env.yaml\nentry_points:\n  main:\n    command: python -c 'print(1)'\n",
                         "python_env.yaml": "dependencies:\n  - -r requirements.txt\n",
                         "requirements.txt": b"tinya\xff\n"})
    out = proj("run", str(root), "--env-manager", "virtualenv")
    assert out.code == 2 and "requirements.txt: cannot be read" in out.stderr, out
    assert "Traceback" not in out.stderr, out


def test_dockerignore_that_is_not_utf8_is_a_clear_error(make_project) -> None:
    from helpers.cli import require

    try:
        import docker  # noqa: F401 - the SDK's pattern matcher applies .dockerignore
    except ImportError:
        require(False, "the docker SDK is not installed")
    from proj.envs.docker.context import context_files
    from proj.errors import ProjectError

    root = make_project({"MLproject": "name: p\n", ".dockerignore": b"data/\n\xff\xfe\n"})
    with pytest.raises(ProjectError, match=r"\.dockerignore: cannot be read"):
        context_files(root)
