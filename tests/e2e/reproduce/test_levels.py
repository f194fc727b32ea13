"""Reproduce sees through incidental bytes: artifacts compared in levels (bytes, archive contents, volatile
lines, MLflow model behaviour in the run's own environment), and the verdict says what it rests on."""
from __future__ import annotations

import io
import json
import os
import socket
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from helpers.cli import Proj, require
from proj.reproduce.artifacts import ARCHIVE, BYTES, DIFFERS, VOLATILE, archive_contents, compare_files, file_hash, mask_volatile
from proj.reproduce.behaviour import compare_behaviour, compare_predictions, python_runner

MLFLOW_TEST = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("mlflow"),
               pytest.mark.timeout(1500)]


# ---- unit: archives ------------------------------------------------------------------------------------

def _skops_like(path: Path, ids: tuple[int, int], arrays: tuple[bytes, bytes], *, reverse: bool = False,
                when: tuple[int, ...] = (2024, 1, 1, 0, 0, 0)) -> Path:
    """A zip shaped like a skops file: arrays named after id(obj), schema.json naming them and other ids."""
    schema = json.dumps({"coef_": {"file": f"{ids[0]}.npy", "__id__": ids[0] + 7},
                         "intercept_": {"file": f"{ids[1]}.npy", "__id__": ids[1] + 7},
                         "shared_true": [{"__id__": ids[0] + 99}, {"__id__": ids[0] + 99}]}, indent=2)
    members = [("schema.json", schema.encode()), (f"{ids[0]}.npy", arrays[0]), (f"{ids[1]}.npy", arrays[1])]
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in (reversed(members) if reverse else members):
            zf.writestr(zipfile.ZipInfo(name, date_time=when), data)
    return path


def _compare(a: Path, b: Path, strict: bool = False):
    return compare_files(a, b, hash_a=file_hash(a), hash_b=file_hash(b), strict=strict)


def test_zip_members_compared_by_content_ignoring_id_names_timestamps_and_order(tmp_path: Path) -> None:
    arrays = (b"\x93NUMPY coef", b"\x93NUMPY intercept")
    a = _skops_like(tmp_path / "a.skops", (140683565038736, 140683723573040), arrays)
    b = _skops_like(tmp_path / "b.skops", (140683675453456, 140683727581488), arrays, reverse=True,
                    when=(2025, 6, 7, 8, 9, 10))
    assert a.read_bytes() != b.read_bytes()
    level = _compare(a, b)
    assert level.level == ARCHIVE and level.same and "3 member" in level.detail
    assert _compare(a, a).level == BYTES


def test_zip_with_a_changed_or_swapped_array_differs(tmp_path: Path) -> None:
    a = _skops_like(tmp_path / "a.skops", (140683565038736, 140683723573040), (b"coef", b"intercept"))
    changed = _skops_like(tmp_path / "c.skops", (140683675453456, 140683727581488), (b"coef2", b"intercept"))
    level = _compare(a, changed)
    assert level.level == DIFFERS and "archive members differ in content" in level.detail
    # Same multiset of arrays, but schema.json now names them the other way round: a different model.
    swapped = _skops_like(tmp_path / "s.skops", (140683675453456, 140683727581488), (b"intercept", b"coef"))
    assert _compare(a, swapped).level == DIFFERS


def test_a_digest_inside_a_member_still_counts(tmp_path: Path) -> None:
    """Only object ids and uuids are renumbered inside members: a data fingerprint that changed is a change."""
    def zipped(path: Path, digest: str) -> Path:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("meta.json", json.dumps({"data_sha256": digest, "obj": 140683565038736}))
        return path

    a, b = zipped(tmp_path / "a.zip", "ab" * 32), zipped(tmp_path / "b.zip", "cd" * 32)
    assert _compare(a, b).level == DIFFERS


def test_tar_members_compared_by_content_not_mtime_or_order(tmp_path: Path) -> None:
    def tar(path: Path, order: list[str], mtime: int) -> Path:
        data = {"weights.bin": b"\x00\x01\x02", "config.json": b'{"depth": 3}'}
        with tarfile.open(path, "w:gz") as tf:
            for name in order:
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data[name]), mtime
                tf.addfile(info, io.BytesIO(data[name]))
        return path

    a = tar(tmp_path / "a.tar.gz", ["weights.bin", "config.json"], 1_700_000_000)
    b = tar(tmp_path / "b.tar.gz", ["config.json", "weights.bin"], 1_800_000_000)
    assert _compare(a, b).level == ARCHIVE
    assert archive_contents(tmp_path / "a.tar.gz") == archive_contents(b)
    (tmp_path / "plain.txt").write_text("not an archive\n")
    assert archive_contents(tmp_path / "plain.txt") is None


# ---- unit: volatile lines ------------------------------------------------------------------------------

def test_text_differing_only_in_a_time_line_is_volatile_and_strict_turns_it_off(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("model: ridge\nTime: 2024-05-01 10:00:01.123\nrmse: 0.25\n")
    b.write_text("model: ridge\nTime: 2024-05-01 10:03:17.456\nrmse: 0.25\n")
    level = _compare(a, b)
    assert level.level == VOLATILE and level.same
    assert level.detail == "differs only in volatile lines (line 2: Time: 2024-05-01 10:03:17.456)"
    assert _compare(a, b, strict=True).level == DIFFERS
    b.write_text("model: ridge\nTime: 2024-05-01 10:03:17.456\nrmse: 0.26\n")  # a real change as well
    assert _compare(a, b).level == DIFFERS
    b.write_text("model: ridge\nTime: 2024-05-01 10:03:17.456\n")  # a line missing
    assert _compare(a, b).level == DIFFERS


@pytest.mark.parametrize("one, other", [
    ("trained in 1.52s", "trained in 12.9s"),
    ("elapsed: 00:01:02", "elapsed: 00:03:04"),
    ("started Mon Dec  1 10:00:00 2025", "started Tue Dec  2 11:00:00 2025"),
    ("worker pid 4242 done", "worker pid 777 done"),
    ("cache at /tmp/tmpab12cd/x.npy", "cache at /tmp/tmpzz99yy/x.npy"),
    (f"host: {socket.gethostname()}", "host: other-machine"),
    (f"ran on {socket.gethostname()}", f"ran on {socket.gethostname()}"),
    ("date=2025-01-02", "date=2026-03-04"),
])
def test_volatile_tokens_are_masked(one: str, other: str) -> None:
    assert mask_volatile(one) == mask_volatile(other)


@pytest.mark.parametrize("one, other", [("rmse: 0.25", "rmse: 0.26"), ("alpha 0.1", "alpha 0.2"),
                                        ("n_estimators=5", "n_estimators=6")])
def test_values_that_are_not_volatile_stay(one: str, other: str) -> None:
    assert mask_volatile(one) != mask_volatile(other)


# ---- unit: predictions ---------------------------------------------------------------------------------

def test_predictions_compared_row_by_row_within_relative_tolerance() -> None:
    same = compare_predictions([1.0, 2.0, [3.0, 4.0]], [1.0, 2.0, [3.0, 4.0]], 0.0)
    assert same.same and same.exact and same.rows == 3
    close = compare_predictions([1.0, 2.0], [1.0 + 1e-9, 2.0], 1e-6)
    assert close.same and not close.exact
    apart = compare_predictions([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.5, 3.0, 4.0, 5.5], 1e-6)
    assert not apart.same and (apart.differing, apart.rows) == (2, 5)
    assert compare_predictions(["cat", "dog"], ["cat", "cow"], 0.5).differing == 1


def test_behaviour_without_mlflow_in_the_env_is_one_reason(tmp_path: Path) -> None:
    """The launcher runs with an interpreter that has no mlflow: a reason, not a traceback."""
    try:
        import mlflow  # noqa: F401
        pytest.skip("mlflow is importable here; this checks an env without it")
    except ImportError:
        pass
    result = compare_behaviour(tmp_path, tmp_path, python_runner(Path(sys.executable)), 0.0)
    assert not result.same and result.error and result.error.startswith("mlflow cannot be imported")


# ---- real MLflow 3 in the project's own environment -----------------------------------------------------

TRAIN = """
import os, sys, time
from datetime import datetime

import mlflow
import mlflow.sklearn
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

serialization, seed, stamp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
started = time.time()
X, y = load_diabetes(return_X_y=True, as_frame=True)
rows = X.sample(frac=0.8, random_state=seed).index  # the seed picks the training rows, so it changes the model
model = Ridge(alpha=0.5).fit(X.loc[rows], y.loc[rows])
if stamp:  # an attribute that changes the file on every save but not what the model predicts
    model.fit_time_ = time.time()
kwargs = {} if serialization == "default" else {"serialization_format": serialization}
with mlflow.start_run():
    mlflow.log_metric("train_r2", float(model.score(X, y)))
    mlflow.sklearn.log_model(model, name="model", input_example=X.iloc[:5], **kwargs)
with open(os.path.join(os.environ["PROJ_ARTIFACT_DIR"], "summary.txt"), "w") as fh:
    fh.write(f"ridge, seed {seed}\\nTime: {datetime.now().isoformat()}\\n"
             f"Duration: {time.time() - started:.4f}s\\nrows: {len(X)}\\n")
"""
MLPROJECT = """
name: levels
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      serialization: {type: string, default: default}
      seed: {type: int, default: 1}
      stamp: {type: int, default: 0}
    command: "python train.py {serialization} {seed} {stamp}"
"""
PYTHON_ENV = f"""
python: "{sys.version_info.major}.{sys.version_info.minor}"
build_dependencies: [pip]
dependencies: ["mlflow-skinny>=3", scikit-learn, skops, pandas]
"""


@pytest.fixture(scope="module")
def levels(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> tuple[Proj, Path]:
    """One store and one project for the module; the project's env (mlflow 3 from the index) is built once."""
    from proj.envs.registry import ENV_MANAGERS

    require("virtualenv" in ENV_MANAGERS, "the virtualenv backend is not available")
    root = tmp_path_factory.mktemp("levels")
    project = root / "project"
    project.mkdir()
    for name, text in {"MLproject": MLPROJECT, "python_env.yaml": PYTHON_ENV, "train.py": TRAIN}.items():
        (project / name).write_text(textwrap.dedent(text).lstrip())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROJ_", "MLFLOW_"))}
    env.update(PROJ_CACHE_DIR=str(shared_cache), PROJ_TRACKING_URI=str(root / "store"))
    return Proj(root, env), project


def _run(proj: Proj, project: Path, *params: str) -> str:
    args = [x for p in params for x in ("-P", p)]
    out = proj("run", str(project), *args, timeout=1200)
    require(out.code == 0 or "phase environment" not in out.stderr, f"cannot build the mlflow env: {out.stderr[-300:]}")
    assert out.code == 0, out
    return proj.runs()[0]["id"]


def _levels(data: dict) -> dict[str, dict]:
    [section] = [s for s in data["sections"] if s["name"] == "artifacts"]
    return section["artifacts"]


def _model_file(levels: dict[str, dict], suffix: str) -> str:
    [path] = [p for p in levels if p.endswith(suffix)]
    return path


def mlflow_test(fn):  # noqa: ANN001, ANN201 - a test function in, the same function marked out
    for mark in MLFLOW_TEST:
        fn = mark(fn)
    return fn


@pytest.fixture(scope="module")
def skops_run(levels: tuple[Proj, Path]) -> str:
    """A run logging a ridge model with MLflow 3's default sklearn serialization (skops)."""
    proj, project = levels
    return _run(proj, project, "seed=1")


@mlflow_test
def test_default_skops_model_reproduces_identical(levels: tuple[Proj, Path], skops_run: str) -> None:
    proj, _ = levels
    out = proj("reproduce", skops_run, "--json", timeout=900)
    assert out.code == 0, out
    data = out.json()
    assert data["verdict"] == "identical", out
    arts = _levels(data)
    skops = _model_file(arts, "model.skops")
    assert arts[skops]["level"] == ARCHIVE, arts  # member names are new object ids; the arrays are equal
    mlmodel = Path(proj.show(skops_run)["run_dir"]) / "artifacts" / skops.replace("model.skops", "MLmodel")
    assert "serialization_format: skops" in mlmodel.read_text()  # MLflow 3's default: the project sets none
    assert arts["summary.txt"]["level"] == VOLATILE and "line 2: Time:" in arts["summary.txt"]["detail"]
    assert data["verdict_line"].startswith("identical (") and "summary.txt" in data["verdict_line"]
    text = proj("runs", "diff", skops_run, data["reproduction"])
    assert text.code == 0 and "verdict: identical (archive contents: " in text.stdout, text


@mlflow_test
def test_timestamped_summary_is_identical_modulo_volatile_lines_unless_strict(levels: tuple[Proj, Path],
                                                                              skops_run: str) -> None:
    proj, _ = levels
    strict = proj("reproduce", skops_run, "--strict-artifacts", timeout=900)
    assert strict.code == 1, strict
    verdict = strict.stdout.strip().splitlines()[-1]
    assert verdict.startswith("verdict: differs (artifacts: changed: summary.txt"), strict
    again = proj.runs()[0]["id"]
    loose = proj("runs", "diff", skops_run, again)
    assert loose.code == 0, loose
    assert "summary.txt: differs only in volatile lines (line 2: Time: " in loose.stdout, loose
    ignored = proj("runs", "diff", skops_run, again, "--strict-artifacts", "--ignore", "summary.*", "--json")
    assert ignored.code == 0 and "summary.txt" not in _levels(ignored.json()), ignored


@mlflow_test
def test_cloudpickle_model_whose_bytes_change_reproduces_by_behaviour(levels: tuple[Proj, Path]) -> None:
    proj, project = levels
    run = _run(proj, project, "serialization=cloudpickle", "stamp=1")
    out = proj("reproduce", run, timeout=900)
    assert out.code == 0, out
    assert "verdict: identical (model behaviour on 5 example rows" in out.stdout, out
    assert "model.pkl: same predictions on 5 example rows" in out.stdout, out


@mlflow_test
def test_changed_seed_differs_in_predictions(levels: tuple[Proj, Path], skops_run: str) -> None:
    proj, project = levels
    other = _run(proj, project, "seed=2")
    out = proj("runs", "diff", skops_run, other)
    assert out.code == 1, out
    verdict = out.stdout.strip().splitlines()[-1]
    assert verdict.startswith("verdict: differs (params: seed: 1 -> 2"), out
    assert "model.skops predictions differ on " in verdict and " of 5 rows" in verdict, out
