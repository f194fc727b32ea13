"""Fuzzing the spec files (MLproject, python_env.yaml, conda.yaml) through the real CLI (issue 11 §6).

Most examples call ``proj.cli.main.main`` in-process (the same code path as the ``proj`` script, minus the
interpreter start-up) so that a few hundred documents fit in seconds; a handful of ``proj run``s go through
a real subprocess. Every example must end as a result or as one short error line: an exception escaping
``main`` is the traceback a user would see. Derandomized, so CI and a laptop try the same documents.
"""
from __future__ import annotations

import contextlib
import io
import json
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proj.cli.main import main

OUTPUT_LIMIT = 10_000
HANG_GUARD = 30  # seconds; a bound on a hang, not a timing assertion (the machine may be busy)
FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
MLPROJECT_FOR = {
    "MLproject": None,
    "python_env.yaml": "name: p\npython_env: python_env.yaml\nentry_points: {main: {command: echo ok}}\n",
    "conda.yaml": "name: p\nconda_env: conda.yaml\nentry_points: {main: {command: echo ok}}\n",
}

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
any_data = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.one_of(names, scalars), inner, max_size=4)),
                        max_leaves=20)


def _param() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.builds(lambda d: {"type": "string", "default": d}, names),
                     st.builds(lambda d: {"type": "int", "default": d}, st.integers(-100, 100)),
                     st.builds(lambda d: {"type": "float", "default": d}, st.floats(-1e6, 1e6)),
                     st.just({"type": "string"}))


valid_docs = {
    "MLproject": st.builds(lambda n, eps: {"name": n, "entry_points": eps}, names,
                           st.dictionaries(names, st.builds(lambda ps: {"command": "echo ok", "parameters": ps},
                                                            st.dictionaries(names, _param(), max_size=3)),
                                           min_size=1, max_size=3)),
    "python_env.yaml": st.builds(lambda py, deps: {"python": py, "dependencies": deps},
                                 st.sampled_from(["3", "3.11", "3.11.7"]),
                                 st.lists(st.sampled_from(["numpy", "requests>=2", "six==1.16.0"]), max_size=3)),
    "conda.yaml": st.builds(lambda n, deps: {"name": n, "channels": ["conda-forge"], "dependencies": deps}, names,
                            st.lists(st.sampled_from(["python=3.11", "numpy", "pip", {"pip": ["requests"]}]),
                                     max_size=4)),
}


# A key each file must have of one kind, given a value of another.
TYPED_KEY = {"MLproject": "entry_points", "python_env.yaml": "python", "conda.yaml": "dependencies"}


def _wrong_type(kind: str, doc: dict[str, Any], value: Any) -> dict[str, Any]:
    return {**doc, TYPED_KEY[kind]: value}


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # shared values are written out: aliases are tested on purpose
        return True


def documents(kind: str) -> st.SearchStrategy[tuple[str, str]]:
    """(expectation, text): "valid" must pass, "invalid" must fail, "unknown" may do either."""
    valid = valid_docs[kind]
    dump = lambda data: yaml.dump(data, Dumper=_NoAliasDumper, allow_unicode=True)  # noqa: E731
    return st.one_of(
        valid.map(lambda d: ("valid", dump(d))),
        any_data.map(lambda d: ("unknown", dump(d))),
        st.text(max_size=200).map(lambda t: ("unknown", t)),
        st.builds(lambda d, n: ("invalid", dump(d) + f"zz_anchor: &a {n}\nzz_alias: *a\n"), valid, st.integers()),
        st.integers(65, 600).map(lambda n: ("invalid", "dependencies: " + "[" * n + "]" * n + "\n")),
        st.builds(lambda t, c, i: ("invalid", _insert(t, c, i)), valid.map(dump),
                  st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\ufffe"]), st.integers(0, 10**6)),
        st.builds(lambda d, n: ("unknown", dump(d) + f"zz_huge: \"{'x' * n}\"\n"), valid,
                  st.sampled_from([10_000, 200_000, 300_000])),
        st.builds(lambda d, n: ("unknown", dump(d) + f"? {'k' * n}\n: 1\n"), valid,  # a huge (unknown) key
                  st.sampled_from([5_000, 100_000])),
        st.builds(lambda d, v: ("invalid", dump(_wrong_type(kind, d, v))), valid,
                  st.one_of(st.integers(), st.lists(st.integers(), min_size=1, max_size=3))),
    )


def _insert(text: str, char: str, at: int) -> str:
    at %= len(text) + 1  # anywhere: YAML refuses these characters even inside a quoted scalar
    return text[:at] + char + text[at:]


def _may_pass(text: str) -> bool:
    """What a passing file must at least be: plain YAML, no alias, a mapping (checked by a second reader)."""
    try:
        events = list(yaml.parse(text, Loader=yaml.SafeLoader))
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return False
    return isinstance(data, dict) and not any(isinstance(e, yaml.AliasEvent) for e in events)


def run_in_process(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()

    def hung(signum: int, frame: Any) -> None:
        raise AssertionError(f"proj {' '.join(args)} still running after {HANG_GUARD}s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_GUARD)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue() + err.getvalue()


def write_project(base: Path, kind: str, text: str) -> Path:
    root = Path(tempfile.mkdtemp(dir=base))
    (root / kind).write_text(text, encoding="utf-8", errors="surrogatepass")
    if MLPROJECT_FOR[kind]:
        (root / "MLproject").write_text(MLPROJECT_FOR[kind])
    return root


@pytest.mark.parametrize("kind", list(MLPROJECT_FOR))
def test_validate_survives_fuzzed_spec_files(proj, tmp_path: Path, kind: str) -> None:
    @FUZZ
    @given(documents(kind))
    def check(case: tuple[str, str]) -> None:
        expect, text = case
        code, output = run_in_process("validate", str(write_project(tmp_path, kind, text)))
        assert "Traceback" not in output
        assert len(output) < OUTPUT_LIMIT, output[:500]
        errors = [line for line in output.splitlines() if line.startswith("proj: error:")]
        if code == 0:
            assert expect != "invalid" and _may_pass(text), output
            assert not errors
        else:
            assert expect != "valid", output
            assert code == 2 and len(errors) == 1 and len(errors[0]) < 500, output

    check()
    assert proj.runs() == []  # validating records nothing


@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(documents("MLproject"))
def test_run_of_fuzzed_mlproject_leaves_no_run_running(proj, tmp_path: Path, case: tuple[str, str]) -> None:
    expect, text = case
    root = write_project(tmp_path, "MLproject", text)
    args = ["-e", "main"]
    if expect == "valid":  # the first entry point, with a value for each required parameter
        name, body = next(iter(yaml.safe_load(text)["entry_points"].items()))
        args = ["-e", name] + [f"-P{p}=x" for p, decl in body["parameters"].items() if "default" not in decl]
    out = proj("run", str(root), *args, "--env-manager", "local", timeout=120)
    assert "Traceback" not in out.stderr, out
    assert len(out.stdout) + len(out.stderr) < OUTPUT_LIMIT, out
    if expect == "valid":
        assert out.code == 0 and "ok" in out.stdout, out
    elif expect == "invalid":
        assert out.code != 0, out
    runs = json.loads(proj("runs", "list", "--json", "-n", "0").stdout)["data"]
    assert all(run["status"] != "RUNNING" for run in runs), runs
