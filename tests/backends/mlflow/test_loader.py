"""What MLflow's MLproject loader accepts, proj runs: strictness is a warning, an error only under
``proj validate --strict``; quoted placeholders are rendered safely; an oversized command is refused early."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backends.mlflow.test_compat import _side
from helpers.paths import DATA

EXAMPLES = DATA / "mlflow_examples"
# A stand-in for an example's training script: prints the arguments it got, as JSON.
ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))\n"

# MLflow's published examples (tests/data/mlflow_examples) -> what `proj validate --strict` says about them.
STRICT = {
    "sklearn_elasticnet_wine": None,
    "sklearn_logistic_regression": None,
    "docker": None,
    "hyperparam": None,
    "pytorch": None,  # {batch-size} placeholders are standard MLflow
    "statsmodels": "type 'str' is read as 'string'",
    "pytorch_MNIST": "has a key 'type str': a missing ':' after 'type'?",
}


def _example(tmp_path: Path, name: str, scripts: tuple[str, ...] = ()) -> Path:
    root = tmp_path / name
    shutil.copytree(EXAMPLES / name, root)
    for script in scripts:
        (root / script).write_text(ARGV)
    return root


def _argv(out) -> list[str]:
    return json.loads(out.stdout.strip().splitlines()[-1])


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("proj: warning:")]


@pytest.mark.parametrize("name", sorted(STRICT))
def test_mlflow_examples_validate_and_strict_flags_the_nonstandard(proj, tmp_path, name) -> None:
    root = _example(tmp_path, name)
    out = proj("validate", str(root))
    assert out.code == 0 and ": OK" in out.stdout and "Traceback" not in out.stderr, out
    strict = proj("validate", "--strict", str(root))
    if STRICT[name] is None:
        assert strict.code == 0, strict
    else:
        assert strict.code == 2 and STRICT[name] in strict.stderr and "[--strict]" in strict.stderr, strict
        assert len(strict.stderr.strip().splitlines()) == 1 and "Traceback" not in strict.stderr, strict


def test_pytorch_example_dash_placeholders_are_substituted(proj, tmp_path) -> None:
    root = _example(tmp_path, "pytorch", ("mnist_tensorboard_artifact.py",))
    out = proj("run", str(root), "--env-manager", "local", "-P", "batch-size=32", "-P", "log-interval=7")
    assert out.code == 0, out
    argv = _argv(out)
    assert argv[argv.index("--batch-size") + 1] == "32" and argv[argv.index("--log-interval") + 1] == "7", out
    assert argv[argv.index("--test-batch-size") + 1] == "1000" and argv[argv.index("--enable-cuda") + 1] == "True"
    bad = proj("run", str(root), "--env-manager", "local", "-P", "batch-size=lots")
    assert bad.code == 2 and "parameter 'batch-size' (int): 'lots'" in bad.stderr, bad  # still typed


@pytest.mark.parametrize("quiet", [["-q"], []])
def test_mnist_example_typo_runs_as_mlflow_with_a_warning_even_quiet(proj, tmp_path, quiet) -> None:
    root = _example(tmp_path, "pytorch_MNIST", ("mnist_autolog_example.py",))
    out = proj(*quiet, "run", str(root), "--env-manager", "local")
    assert out.code == 0, out
    assert "--trainer.strategy=auto" in _argv(out) and "--trainer.devices=auto" in _argv(out), out
    warnings = _warnings(out.stderr)
    assert len(warnings) == 2, out  # strategy and accelerator; `devices: {type: str}` is silent
    assert f"{root / 'MLproject'}:10: parameter 'strategy' has a key 'type str'" in warnings[0], out
    assert proj.runs()[0]["status"] == "FINISHED"


UNKNOWN_TYPES = """\
name: t
entry_points:
  main:
    parameters:
      n: {type: integer, default: 3}
      x: number
      flag: {type: boolean, default: "yes"}
      alpha: {type: flaot, default: 0.5}
      s: {type: str, default: hello}
    command: "python show.py {n} {x} {flag} {alpha} {s}"
"""


def test_unknown_types_pass_through_as_strings_with_one_warning_each(proj, make_project) -> None:
    root = make_project({"MLproject": UNKNOWN_TYPES, "show.py": ARGV})
    out = proj("-q", "run", str(root), "--env-manager", "local", "-P", "x=not-a-number", "-P", "n=3.5")
    assert out.code == 0, out
    assert _argv(out) == ["3.5", "not-a-number", "yes", "0.5", "hello"], out  # unchecked, as MLflow passes them
    warnings = _warnings(out.stderr)
    assert len(warnings) == 4, out  # n, x, flag, alpha; `str` is silently `string`
    file = root / "MLproject"
    assert f"{file}:5: parameter 'n' has unknown type 'integer'" in warnings[0], out
    assert "(known types: string, float, int, bool, path, uri); did you mean int?" in warnings[0], out
    assert f"{file}:6: parameter 'x' has unknown type 'number'" in warnings[1] and "did you mean float?" in warnings[1]
    assert "did you mean bool?" in warnings[2] and "'flaot'" in warnings[3], out
    validate = proj("validate", str(root))
    assert validate.code == 0 and len(_warnings(validate.stderr)) == 4 and "OK with 4 warnings" in validate.stdout
    assert proj("validate", "--strict", str(root)).code == 2


def test_unknown_keys_are_warnings_and_the_parameter_is_read_as_mlflow_reads_it(proj, make_project) -> None:
    mlproject = """\
        name: k
        bogus: 1
        databricks_spark_job: {python_file: x.py}
        entry_points:
          main:
            help: nobody reads this
            parameters:
              level: {type: int, default: 3, help: "the level"}
              mode: {type str, default: auto}
            command: "python show.py {level} {mode}"
        """
    root = make_project({"MLproject": mlproject, "show.py": ARGV})
    out = proj("-q", "run", str(root), "--env-manager", "local", "-P", "mode=$(id)")
    assert out.code == 0 and _argv(out) == ["3", "$(id)"], out
    text = "\n".join(_warnings(out.stderr))
    assert "MLproject:2: unknown keys 'bogus', 'databricks_spark_job' in top level ignored" in text, out
    assert "databricks_spark_job is MLflow's Databricks backend" in text, out
    assert "MLproject:6: unknown key 'help' in entry point 'main' ignored" in text, out
    assert "MLproject:8: unknown key 'help' in parameter 'level'" in text, out
    assert "MLproject:9: parameter 'mode' has a key 'type str'" in text and "write `type: str`" in text, out
    strict = proj("validate", "--strict", str(root))
    assert strict.code == 2 and "MLproject:2: unknown keys" in strict.stderr and "(and 3 more findings)" in strict.stderr


def test_dotted_names_and_mlflow_uris_and_numeric_defaults(proj, make_project) -> None:
    mlproject = """\
        entry_points:
          main:
            parameters:
              learning.rate: {type: float, default: 1e-3}
              model: {type: uri, default: "runs:/0123abcd/model"}
              epochs: {type: int, default: 10}
              ratio: {type: float, default: .5}
              flag: {type: bool, default: true}
            command: "python show.py {learning.rate} {model} {epochs} {ratio} {flag}"
        """
    root = make_project({"MLproject": mlproject, "show.py": ARGV})
    out = proj("-q", "run", str(root), "--env-manager", "local", "-P", "learning.rate=0.5")
    assert out.code == 0, out
    assert _argv(out) == ["0.5", "runs:/0123abcd/model", "10", "0.5", "True"], out
    assert _warnings(out.stderr) == [], out
    other = proj("-q", "run", str(root), "--env-manager", "local", "-P", "model=models:/iris/1")
    assert other.code == 0 and _argv(other)[1] == "models:/iris/1", other
    strict = proj("validate", "--strict", str(root))  # works in proj; `mlflow run` raises KeyError on it
    assert strict.code == 2 and "placeholder {learning.rate} works in proj, but `mlflow run` fails" in strict.stderr


def test_empty_environment_keys_are_ignored_as_mlflow_does(proj, make_project) -> None:
    root = make_project({"MLproject": "python_env:\nentry_points:\n  main:\n    command: python show.py\n",
                         "show.py": ARGV})
    out = proj("validate", str(root))
    assert out.code == 0 and "python_env is empty; ignored" in out.stderr, out
    both = make_project({"MLproject": "python_env:\nconda_env: c.yaml\nentry_points: {}\n"}, name="both")
    out = proj("validate", str(both))  # MLflow counts the keys, not their values: still two env keys
    assert out.code == 2 and "python_env and conda_env are both set" in out.stderr, out


QUOTED = """\
entry_points:
  main:
    parameters: {v: string, w: {type: string, default: plain}}
    command: |
      python show.py "{v}" '{v}' x"{v}"y "$(printf %s "{v}")" {v} "{w}" # it's "{w}"
"""


@pytest.mark.parametrize("value", ["$(touch {marker})", '"; touch {marker}; "', "`touch {marker}`",
                                   "it's \"q\" \\ $HOME", "", "'; touch {marker}; '"])
def test_quoted_placeholders_are_rendered_as_one_literal_word(proj, make_project, tmp_path, value) -> None:
    marker = tmp_path / "pwned"
    literal = value.format(marker=marker)
    root = make_project({"MLproject": QUOTED, "show.py": ARGV})
    out = proj("run", str(root), "--env-manager", "local", "-P", f"v={literal}")
    assert out.code == 0, out
    assert _argv(out) == [literal, literal, f"x{literal}y", literal, literal, "plain"], out
    assert not marker.exists(), out
    warnings = _warnings(out.stderr)
    assert any('placeholder {v} is inside " quotes' in w and "$(cmd) execute" in w for w in warnings), out
    assert any("placeholder {v} is inside ' quotes" in w for w in warnings), out
    assert any('placeholder {w} is inside " quotes' in w for w in warnings), out


def test_validate_warns_about_quoted_placeholders(proj, make_project) -> None:
    root = make_project({"MLproject": QUOTED, "show.py": ARGV})
    out = proj("-q", "validate", "--json", str(root))
    assert out.code == 0, out
    assert json.loads(out.stdout)["data"]["warnings"] and "inside" in out.stderr, out
    assert proj("validate", "--strict", str(root)).code == 2


def test_oversized_command_is_refused_before_the_run_exists(proj, make_project) -> None:
    # Each -P fits in one argument of proj's own command line; together they do not fit in the shell's.
    root = make_project({"MLproject": "entry_points:\n  main:\n    parameters: {v: string, w: string}\n"
                                      "    command: python show.py {v} {w}\n", "show.py": ARGV})
    out = proj("run", str(root), "--env-manager", "local", "-P", "v=" + "x" * 80_000, "-P", "w=" + "y" * 80_000)
    assert out.code == 2, out
    assert "MAX_ARG_STRLEN" in out.stderr and "Traceback" not in out.stderr, out
    assert len(out.stderr.strip().splitlines()) == 1, out
    assert not (Path(proj.env["PROJ_TRACKING_URI"]) / "proj.db").exists() or proj.runs() == [], out
    fits = proj("run", str(root), "--env-manager", "local", "-P", "v=" + "x" * 60_000, "-P", "w=" + "y" * 60_000)
    assert fits.code == 0 and _argv(fits) == ["x" * 60_000, "y" * 60_000], fits.stderr[-300:]


@pytest.mark.parametrize("template,expected", [
    ('a {x} "{y}" \'{z}\'', [("x", "bare"), ("y", "double"), ("z", "single")]),
    ('echo "$(echo "{v}")"', [("v", "double")]),  # quotes nest inside $( )
    ("echo `echo {v}` \"`echo {w}`\"", [("v", "bare"), ("w", "bare")]),
    ("echo {a} # it's\n {b}", [("a", "bare"), ("b", "bare")]),  # a quote in a comment opens nothing
    ('echo \\"{v}\\" "a\\"{w}"', [("v", "bare"), ("w", "double")]),  # backslash-escaped quotes
    ("echo {a}#{b} $'{c}'", [("a", "bare"), ("b", "bare"), ("c", "single")]),
])
def test_placeholder_quote_contexts(template, expected) -> None:
    from proj.project.params import placeholder_contexts

    assert placeholder_contexts(template) == expected


def test_placeholder_in_a_heredoc_is_warned_about(proj, make_project) -> None:
    root = make_project({"MLproject": "entry_points:\n  main:\n    parameters: {v: string}\n"
                                      "    command: |\n      cat <<EOF\n      {v}\n      EOF\n"})
    out = proj("validate", str(root))
    assert out.code == 0 and "here-document" in out.stderr, out


# MLflow's own loader and renderer, in the side virtualenv: the command `mlflow run` would execute.
MLFLOW_COMMAND = """
import json, sys
from mlflow.projects import _project_spec
entry = _project_spec.load_project(sys.argv[1]).get_entry_point(sys.argv[2])
print(json.dumps(entry.compute_command(json.loads(sys.argv[3]), None)))
"""

SAME_AS_MLFLOW = [  # (example or None for UNKNOWN_TYPES, entry point, scripts to stub, -P values)
    ("pytorch", "main", ("mnist_tensorboard_artifact.py",), {"batch-size": "32"}),
    ("pytorch_MNIST", "main", ("mnist_autolog_example.py",), {}),
    ("statsmodels", "main", ("train.py",), {"inverse_method": "qr"}),
    ("hyperparam", "train", ("train.py",), {"epochs": "3"}),
    ("sklearn_elasticnet_wine", "main", ("train.py",), {"alpha": "0.4", "undeclared": "a b; $(id)"}),
    (None, "main", ("show.py",), {"x": "not-a-number", "n": "3.5"}),
]


@pytest.mark.mlflow
@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("name,entry,scripts,params", SAME_AS_MLFLOW, ids=[c[0] or "unknown-types" for c in SAME_AS_MLFLOW])
def test_proj_runs_the_command_mlflow_would(proj, make_project, tmp_path, mlflow_venv, name, entry, scripts, params) -> None:
    root = _example(tmp_path, name, scripts) if name else make_project({"MLproject": UNKNOWN_TYPES, "show.py": ARGV})
    for script in scripts:
        (root / script).write_text(ARGV)
    side = _side(mlflow_venv, MLFLOW_COMMAND, str(root), entry, json.dumps(params))
    assert side.returncode == 0, side.stderr[-2000:]
    expected = json.loads(side.stdout.strip().splitlines()[-1])
    out = proj("run", str(root), "-e", entry, "--env-manager", "local", *[f"-P{k}={v}" for k, v in params.items()])
    assert out.code == 0, out
    assert proj.runs()[0]["command"] == expected, out
