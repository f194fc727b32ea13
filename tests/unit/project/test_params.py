"""Parameter typing, coercion and shell-safe templating (pure functions, no processes)."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from proj.errors import ParameterError, UsageError
from proj.project.params import Parameter, bind_params, coerce, parse_cli_params, placeholders, render_command


def bind(decl: dict[str, Parameter], given: dict[str, str], tmp_path: Path):
    return bind_params(decl, given, cwd=tmp_path, project_root=tmp_path)


@pytest.mark.parametrize("kind,raw,expected", [
    ("float", "0.1", 0.1), ("float", "1e-3", 0.001), ("float", "3", 3.0), ("float", "-inf", float("-inf")),
    ("int", "3", 3), ("int", " -7 ", -7),
    ("bool", "true", True), ("bool", "False", False), ("bool", "1", True), ("bool", "no", False),
    ("string", "x; rm -rf /", "x; rm -rf /"), ("uri", "s3://bucket/key", "s3://bucket/key"),
])
def test_coerce_accepts_valid_values(kind: str, raw: str, expected: object, tmp_path: Path) -> None:
    assert coerce(Parameter("p", kind), raw, tmp_path) == expected


@pytest.mark.parametrize("kind,raw", [
    ("float", "abc"), ("float", ""), ("float", "1e999"), ("int", "3.5"), ("int", "three"), ("bool", "maybe"),
    ("uri", "no-scheme/path"), ("path", "does/not/exist"),
])
def test_coerce_rejects_with_the_name_and_value(kind: str, raw: str, tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as err:
        coerce(Parameter("p", kind), raw, tmp_path)
    assert "'p'" in str(err.value) and repr(raw) in str(err.value)


def test_path_resolves_against_the_given_base(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("x")
    assert coerce(Parameter("d", "path"), "data.csv", tmp_path) == str(tmp_path / "data.csv")
    assert coerce(Parameter("d", "path"), f"file://{tmp_path}/data.csv", Path("/")) == str(tmp_path / "data.csv")
    assert coerce(Parameter("d", "path"), "s3://bucket/data.csv", tmp_path) == "s3://bucket/data.csv"


def test_user_paths_resolve_against_cwd_and_defaults_against_the_project(tmp_path: Path) -> None:
    project, cwd = tmp_path / "project", tmp_path / "elsewhere"
    (project / "data").mkdir(parents=True)
    (cwd / "data").mkdir(parents=True)
    decl = {"d": Parameter("d", "path", default="data"), "e": Parameter("e", "path", default="data")}
    bound = {p.name: p for p in bind_params(decl, {"e": "data"}, cwd=cwd, project_root=project)}
    assert bound["d"].value == str(project / "data") and bound["d"].source == "default"
    assert bound["e"].value == str(cwd / "data") and bound["e"].source == "user"


def test_missing_required_parameters_are_all_listed(tmp_path: Path) -> None:
    decl = {"a": Parameter("a", "float"), "b": Parameter("b", "int"), "c": Parameter("c", "int", default="1")}
    with pytest.raises(ParameterError, match=r"a, b; pass -P a=\.\.\. -P b=\.\.\."):
        bind(decl, {}, tmp_path)


def test_render_quotes_every_value_and_appends_extras(tmp_path: Path) -> None:
    decl = {"msg": Parameter("msg", "string"), "n": Parameter("n", "int", default="2")}
    params = bind(decl, {"msg": "x; touch /tmp/pwned", "extra-key": "$(id)"}, tmp_path)
    command = render_command("echo {msg} {n} {{literal}}", params)
    assert shlex.split(command) == ["echo", "x; touch /tmp/pwned", "2", "{literal}", "--extra-key", "$(id)"]


def test_raw_values_are_substituted_not_normalised(tmp_path: Path) -> None:
    params = bind({"a": Parameter("a", "float"), "f": Parameter("f", "bool")}, {"a": "1e-3", "f": "True"}, tmp_path)
    assert render_command("t {a} {f}", params) == "t 1e-3 True"
    assert [p.value for p in params] == [0.001, True]


def test_placeholders_and_bad_braces() -> None:
    assert placeholders("python t.py {a} --b {b} {{x}}") == ["a", "b"]
    for bad in ("{a", "a}", "{a:.2f}", "{a!r}", "{}", "{0}"):
        with pytest.raises(ValueError):
            placeholders(bad)


def test_cli_pairs_split_on_first_equals_and_reject_repeats() -> None:
    assert parse_cli_params(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        parse_cli_params(["novalue"])
    with pytest.raises(UsageError, match="more than once"):
        parse_cli_params(["a=1", "a=2"])


@pytest.mark.parametrize("raw,message", [
    ("", "the value is empty"), ("   ", "the value is empty"),
    ("file://host/data", "is not a local file URL"), ("file://", "is not a local file URL"),
    ("~nosuchuser/data", "cannot expand '~nosuchuser'"),
])
def test_path_values_that_would_mislead_are_refused(raw: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        coerce(Parameter("d", "path"), raw, tmp_path)
    assert "'d'" in str(err.value) and message in str(err.value)


def test_local_file_urls_name_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("x")
    for url in (f"file://{tmp_path}/data.csv", f"file://localhost{tmp_path}/data.csv"):
        assert coerce(Parameter("d", "path"), url, Path("/elsewhere")) == str(tmp_path / "data.csv")
