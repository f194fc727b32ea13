"""Shared helpers for the benchmark scripts: timing commands and printing a table. Never asserts."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MLFLOW_VENV = Path(os.environ.get("PROJ_BENCH_MLFLOW_VENV", REPO / "benchmarks" / ".mlflow-venv"))


def proj_cmd(*args: str) -> list[str]:
    """How to invoke proj: the console script next to this interpreter, as a user would."""
    script = Path(sys.executable).with_name("proj")
    return [str(script) if script.exists() else "proj", *args]


def find_mlflow() -> str | None:
    """The mlflow executable to compare with: $MLFLOW_BIN / $MLFLOW, the setup_mlflow.sh venv, or PATH."""
    import shutil

    given = os.environ.get("MLFLOW_BIN") or os.environ.get("MLFLOW")
    if given:
        return given
    exe = MLFLOW_VENV / "bin" / "mlflow"
    return str(exe) if exe.exists() else shutil.which("mlflow")


def mlflow_cmd(*args: str) -> list[str] | None:
    exe = find_mlflow()
    return [exe, *args] if exe else None


def time_cmd(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, repeat: int = 7,
             warmup: int = 1, check: bool = True) -> list[float]:
    """Wall-clock seconds of ``repeat`` runs of ``cmd`` after ``warmup`` discarded runs."""
    times = []
    for i in range(warmup + repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if check and proc.returncode != 0:
            raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode()}")
        if i >= warmup:
            times.append(elapsed)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(rows: list[tuple[str, str, str]]) -> None:
    """Print (measure, value, target) rows as an aligned table."""
    widths = [max(len(r[i]) for r in rows + [("measure", "value", "target")]) for i in range(3)]
    for row in [("measure", "value", "target"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def bench_env(tmp: Path) -> dict[str, str]:
    """An environment with a private cache and store, so benchmarks don't touch the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROJ_")}
    env["PROJ_CACHE_DIR"] = str(tmp / "cache")
    env["PROJ_TRACKING_URI"] = str(tmp / "store")
    return env
