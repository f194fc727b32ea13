"""Two MLflow model directories compared by behaviour: both loaded with their own flavor (pyfunc) inside a
run's environment, predictions on the model's saved input example compared within a relative tolerance."""
from __future__ import annotations

import json
import math
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from proj.envs.base import Env, Invocation
from proj.envs.cache import MARKER, EnvCache
from proj.execution.process import OutputSink
from proj.tracking.records import RunRecord

# Runs ``python SCRIPT ARGS...`` in some environment with ``workdir`` writable; returns (exit code, stderr).
PythonRunner = Callable[[Path, list[str], Path, list[Path]], "tuple[int, str]"]

# Stdlib-only launcher: every third-party import happens inside the target environment, guarded, so a missing
# mlflow is a one-line reason, never a traceback in proj.
LAUNCHER = r'''
import json, sys

def rows(pred):
    if hasattr(pred, "to_numpy"):
        pred = pred.to_numpy()
    if hasattr(pred, "tolist"):
        pred = pred.tolist()
    if isinstance(pred, dict):
        cols = [rows(v) for v in pred.values()]
        return [list(r) for r in zip(*cols)]
    return list(pred) if isinstance(pred, (list, tuple)) else [pred]

def main(a, b, out):
    result = {}
    try:
        import mlflow.pyfunc
        from mlflow.models import Model
    except Exception as exc:
        result["error"] = "mlflow cannot be imported in the run's environment (%s)" % exc
    else:
        example, source = None, None
        for path in (a, b):
            try:
                example = Model.load(path).load_input_example(path)
            except Exception as exc:
                result["example_error"] = "%s: %s" % (type(exc).__name__, exc)
            if example is not None:
                source = path
                break
        if example is None:
            result["error"] = "neither model has a saved input example (%s)" % result.get("example_error", "none saved")
        else:
            result["example_from"] = source
            preds = []
            for path in (a, b):
                try:
                    preds.append(rows(mlflow.pyfunc.load_model(path).predict(example)))
                except Exception as exc:
                    result["error"] = "loading or predicting with %s failed: %s: %s" % (path, type(exc).__name__, exc)
                    break
            else:
                result["a"], result["b"] = preds
    with open(out, "w") as fh:
        json.dump(result, fh, default=str)

main(*sys.argv[1:4])
'''


@dataclass(frozen=True)
class Behaviour:
    """Predictions of two models on the same example rows."""

    rows: int = 0
    differing: int = 0  # rows with a difference over the tolerance
    exact: bool = False  # every prediction equal
    error: str | None = None  # why behaviour could not be compared

    @property
    def same(self) -> bool:
        return self.error is None and self.rows > 0 and self.differing == 0


def compare_behaviour(model_a: Path, model_b: Path, runner: PythonRunner, tolerance: float) -> Behaviour:
    """Load both models with pyfunc in the runner's environment and compare their predictions."""
    with tempfile.TemporaryDirectory(prefix="proj-behaviour-") as tmp:
        work = Path(tmp)
        script, out = work / "compare_models.py", work / "result.json"
        script.write_text(LAUNCHER)
        code, stderr = runner(script, [str(model_a), str(model_b), str(out)], work, [model_a, model_b])
        try:
            result = json.loads(out.read_text())
        except (OSError, ValueError):
            tail = stderr.strip().splitlines()[-1:] or [f"exit code {code}"]
            return Behaviour(error=f"the model comparison did not run in the environment: {tail[0][:200]}")
    if result.get("error"):
        return Behaviour(error=str(result["error"]))
    return compare_predictions(result.get("a") or [], result.get("b") or [], tolerance)


def compare_predictions(a: list[Any], b: list[Any], tolerance: float) -> Behaviour:
    """Row by row: a row differs when any value differs by more than ``tolerance`` (relative)."""
    if len(a) != len(b):
        return Behaviour(rows=max(len(a), len(b)), differing=max(len(a), len(b)), error=None)
    differing = sum(1 for ra, rb in zip(a, b, strict=True) if not _close(ra, rb, tolerance))
    return Behaviour(rows=len(a), differing=differing, exact=a == b)


def _close(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tolerance) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if a == b or (math.isnan(a) and math.isnan(b)):
            return True
        scale = max(abs(a), abs(b))
        return scale > 0 and abs(a - b) / scale <= tolerance
    return bool(a == b)


def env_runner(env: Env) -> PythonRunner:
    """Run the launcher with the ``python`` of a built environment, exactly as proj runs an entry point."""

    def run(script: Path, args: list[str], workdir: Path, readable: list[Path]) -> tuple[int, str]:
        command = " ".join(shlex.quote(x) for x in ["python", str(script), *args])
        mounts = {workdir: "rw", **{p: "ro" for p in readable}}
        invocation = Invocation(command=command, cwd=workdir, env=_quiet_env(), mounts=mounts)
        stderr = workdir / "stderr.log"
        with OutputSink(workdir / "stdout.log", stderr, echo=False) as sink:
            code = env.execute(invocation, sink)
        return code, stderr.read_text(errors="replace") if stderr.exists() else ""

    return run


def python_runner(python: Path) -> PythonRunner:
    """Run the launcher with a given interpreter (a cached environment's ``bin/python``)."""
    import subprocess

    def run(script: Path, args: list[str], workdir: Path, readable: list[Path]) -> tuple[int, str]:
        env = {**os.environ, **_quiet_env()}
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
        proc = subprocess.run([str(python), str(script), *args], cwd=workdir, env=env, capture_output=True,
                              text=True, check=False)
        return proc.returncode, proc.stderr

    return run


def _quiet_env() -> dict[str, str]:
    # No telemetry, no tracking server, no progress bars: the comparison only loads and predicts.
    return {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "TQDM_DISABLE": "1"}


def cached_env_runner(run: RunRecord) -> tuple[PythonRunner | None, str]:
    """A runner for a finished run's environment while it is still in the cache (``proj runs diff``):
    its virtualenv or conda prefix's ``python``; a ``local`` run uses the ``python`` on PATH."""
    import shutil

    backend, key = run.env.get("backend"), run.env.get("key")
    if backend == "local":
        found = shutil.which("python")
        return (python_runner(Path(found)), "") if found else (None, "no python on PATH for a local run")
    if backend in ("virtualenv", "conda") and key:
        slot = EnvCache().path(str(key))
        python = slot / "bin" / "python"
        if (slot / MARKER).is_file() and python.exists():
            return python_runner(python), ""
        return None, f"run {run.id[:12]}'s environment is no longer cached (proj reproduce rebuilds it)"
    if not backend:
        return None, f"run {run.id[:12]} has no recorded environment"
    return None, f"the {backend} environment of run {run.id[:12]} is not kept after the run"
