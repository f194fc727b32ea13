"""Small inputs that used to cost gigabytes, tracebacks or pages of text: each is now one short line (issue 11 §2, §5)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from helpers.cli import Outcome
from proj.errors import MESSAGE_LIMIT, ProjError, one_line

MLPROJECT = "name: p\nentry_points:\n  main:\n    command: echo hi\n"
# Which file of a project a hostile document goes in, and the MLproject that makes proj read it.
SPEC_FILES = {
    "MLproject": {},
    "python_env.yaml": {"MLproject": "name: p\npython_env: python_env.yaml\nentry_points: {main: {command: echo}}\n"},
    "conda.yaml": {"MLproject": "name: p\nconda_env: conda.yaml\nentry_points: {main: {command: echo}}\n"},
}


def billion_laughs() -> str:
    """The classic: nine levels of nine aliases each, about 300 bytes expanding to 10^8 strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


def assert_one_short_line(out: Outcome) -> str:
    assert "Traceback" not in out.stderr, out
    lines = out.stderr.splitlines()
    errors = [line for line in lines if line.startswith("proj: error:")]
    assert len(errors) == 1, out
    assert len(errors[0]) <= MESSAGE_LIMIT + len("proj: error: "), out
    assert len(out.stderr) < 2000, out
    return errors[0]


def validate_file(proj, make_project, name: str, text: str | bytes) -> Outcome:
    files = {**{"MLproject": MLPROJECT}, **SPEC_FILES[name], name: text}
    root = make_project(files)
    return proj("validate", str(root), timeout=60)


@pytest.mark.parametrize("name", list(SPEC_FILES))
def test_billion_laughs_is_refused_in_one_short_line(proj, make_project, name: str) -> None:
    text = billion_laughs()
    assert len(text) < 400
    out = validate_file(proj, make_project, name, text)
    assert out.code == 2, out
    line = assert_one_short_line(out)
    assert f"{name}:2: YAML aliases (*a) are not supported" in line, out


@pytest.mark.parametrize("name", list(SPEC_FILES))
def test_deep_nesting_is_a_clear_error_not_a_recursion_error(proj, make_project, name: str) -> None:
    out = validate_file(proj, make_project, name, "dependencies: " + "[" * 490 + "]" * 490 + "\n")
    assert out.code == 2, out
    line = assert_one_short_line(out)
    assert f"{name}:1: YAML is nested more than 64 levels deep" in line, out
    assert "RecursionError" not in out.stderr


def test_nesting_within_the_bound_is_read(proj, make_project) -> None:
    out = validate_file(proj, make_project, "python_env.yaml", "dependencies: " + "[" * 40 + "]" * 40 + "\n")
    assert "nested" not in out.stderr and "Traceback" not in out.stderr, out


def test_unknown_keys_of_mixed_types_do_not_crash_the_formatter(proj, make_project) -> None:
    out = validate_file(proj, make_project, "python_env.yaml", 'python: "3.11"\ntrue: 1\nx: 2\n')
    assert out.code == 2, out
    line = assert_one_short_line(out)
    assert "python_env.yaml:2: unknown key True, 'x'" in line, out


def test_unknown_mixed_type_keys_in_mlproject_do_not_crash(proj, make_project) -> None:
    root = make_project({"MLproject": MLPROJECT + "true: 1\nx: 2\n"})
    out = proj("validate", str(root), timeout=60)
    assert "Traceback" not in out.stderr and "TypeError" not in out.stderr, out


def test_a_warning_quoting_a_huge_key_is_one_capped_line(proj, make_project) -> None:
    root = make_project({"MLproject": MLPROJECT + f"? {'k' * 100_000}\n: 1\n"})
    out = proj("validate", str(root), timeout=60)
    assert "Traceback" not in out.stderr and len(out.stderr) < 2000, out
    assert all(len(line) < MESSAGE_LIMIT + 50 for line in out.stderr.splitlines()), out


@pytest.mark.parametrize("name", list(SPEC_FILES))
def test_a_control_character_in_yaml_is_one_line(proj, make_project, name: str) -> None:
    out = validate_file(proj, make_project, name, "dependencies:\n  - a\x07b\n")
    assert out.code == 2, out
    line = assert_one_short_line(out)
    assert f"{name}:2: invalid YAML: character '\\x07' is not allowed" in line, out


def test_a_newline_inside_a_git_url_is_one_line(proj, tmp_path) -> None:
    from helpers.cli import require

    require(shutil.which("git") is not None, "git is not installed")
    out = proj("run", f"file://{tmp_path}/missing\nrepo.git", timeout=60)
    assert out.code != 0, out
    line = assert_one_short_line(out)
    assert "missing\\nrepo.git" in line, out
    assert proj.runs() == []


def test_the_error_nearest_the_top_is_reported_whatever_the_hash_seed(proj, make_project) -> None:
    # jsonschema walks the schema's properties (build_dependencies first); the file has dependencies first.
    root = make_project({**SPEC_FILES["python_env.yaml"],
                         "python_env.yaml": 'dependencies: 5\nbuild_dependencies: 7\npython: [1]\n'})
    messages = {assert_one_short_line(proj("validate", str(root), env={"PYTHONHASHSEED": str(seed)}))
                for seed in (0, 1, 2, 3)}
    assert len(messages) == 1, messages
    (message,) = messages
    assert "python_env.yaml:1: dependencies: 5 is not of type 'array', 'null' (and 2 more)" in message, message


def test_a_huge_value_is_shortened_in_the_message(proj, make_project) -> None:
    out = validate_file(proj, make_project, "python_env.yaml", f'python: "3.11"\ndependencies: "{"x" * 100_000}"\n')
    assert out.code == 2, out
    line = assert_one_short_line(out)
    assert "python_env.yaml:2: dependencies: 'xxxx" in line and "..." in line, out


@pytest.mark.parametrize("name", list(SPEC_FILES))
def test_a_file_over_the_size_cap_is_refused_before_parsing(proj, make_project, name: str) -> None:
    out = validate_file(proj, make_project, name, "# padding\n" * 30_000)
    assert out.code == 2, out
    line = assert_one_short_line(out)
    assert f"{name}: file is larger than 256 KiB" in line, out


def test_debug_still_shows_the_traceback(proj, make_project) -> None:
    root = make_project({"MLproject": billion_laughs()})
    out = proj("--debug", "validate", str(root), timeout=60)
    assert out.code != 0 and "Traceback" in out.stderr and "ProjectError" in out.stderr, out


@pytest.mark.parametrize("option", [["-P", b"a=\xff"], ["-T", b"t=\xfe"], ["--experiment-name", b"e\xff"],
                                    ["--run-name", b"r\xff"]])
def test_non_utf8_arguments_are_one_line_and_record_nothing(proj, make_project, option) -> None:
    root = make_project({"MLproject": "name: p\nentry_points:\n  main:\n    parameters: {a: {default: x}}\n"
                                      "    command: echo {a}\n"})
    cmd = [sys.executable, "-m", "proj.cli.main", "run", str(root), "--env-manager", "local", *option]
    proc = subprocess.run(cmd, cwd=proj.cwd, env=proj.env, capture_output=True, timeout=120)
    out = Outcome([str(c) for c in cmd], proc.returncode, proc.stdout.decode(errors="replace"),
                  proc.stderr.decode(errors="replace"))
    assert out.code == 2, out
    line = assert_one_short_line(out)
    assert f"error: {option[0]} " in line and "not valid UTF-8" in line and "UnicodeEncodeError" not in out.stderr, out
    assert proj.runs() == []


def test_every_proj_error_renders_as_one_capped_line() -> None:
    message = str(ProjError("file:1: bad \nvalue\r\x1b[31m\u2028\udcff " + "v" * 5000 + " valid: a, b"))
    assert "\n" not in message and "\r" not in message and "\x1b" not in message and "\u2028" not in message
    assert message.startswith("file:1: bad \\nvalue\\r\\x1b[31m\\u2028\\xff ") and message.endswith("valid: a, b")
    assert len(message) == MESSAGE_LIMIT and "..." in message
    assert one_line("short") == "short"


def test_alias_bombs_in_files_a_run_wrote_do_not_hang_the_collection(proj, make_project) -> None:
    """An entry point writes a billion-laughs MLmodel and MLflow meta.yaml: the run is collected, not hung."""
    bomb = billion_laughs()
    script = f'''
import os, pathlib
model = pathlib.Path(os.environ["PROJ_MODEL_DIR"]); model.mkdir(parents=True, exist_ok=True)
(model / "MLmodel").write_text({bomb!r} + "flavors: {{}}\\n")
(model / "model.pkl").write_bytes(b"x")
mlruns = pathlib.Path(os.environ["MLFLOW_TRACKING_URI"].removeprefix("file://"))
run = mlruns / "0" / "abc123"; (run / "params").mkdir(parents=True)
(run / "meta.yaml").write_text({bomb!r})
(run / "params" / "alpha").write_text("0.1")
'''
    root = make_project({"MLproject": "name: p\nentry_points:\n  main:\n    command: python bomb.py\n",
                         "bomb.py": script})
    out = proj("run", str(root), "--env-manager", "local", timeout=120)
    assert "Traceback" not in out.stderr, out
    assert "expands to more than" in out.stderr, out
    assert len(out.stderr) < 10_000, out
    (run,) = proj.runs()
    assert run["status"] in ("FINISHED", "FAILED"), run
