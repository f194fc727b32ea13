"""Measure the virtualenv backend on a pyyaml-only project: cold build and warm-run overhead. Prints, never asserts.

    python benchmarks/bench_virtualenv.py [-n 5] [--mlflow PATH_TO_MLFLOW]

cold   = `proj run` with an empty env cache (uv's download cache warm, as on any machine after the first
         build): resolve + create + install + run.
warm   = `proj run` again; overhead = warm minus the bare entry point run directly with the env's python.
mlflow = the same project under `mlflow run --env-manager virtualenv`, when an mlflow executable is given
         (--mlflow, $MLFLOW_BIN, or `mlflow` on PATH); skipped with a message otherwise.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRY = "python -c 'import yaml; print(yaml.__version__)'"
MLPROJECT = f'name: bench-pyyaml\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: "{ENTRY}"\n'
PYTHON_ENV = 'python: "{py}"\nbuild_dependencies:\n  - pip\ndependencies:\n  - pyyaml\n'


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(argv)}\n{out.stdout}\n{out.stderr}")
    return elapsed


def make_project(root: Path) -> Path:
    project = root / "project"
    project.mkdir()
    (project / "MLproject").write_text(MLPROJECT)
    (project / "python_env.yaml").write_text(PYTHON_ENV.format(py="%d.%d.%d" % sys.version_info[:3]))
    return project


def proj_env(root: Path, cache: Path) -> dict[str, str]:
    # As on a user's machine: proj's own modules load from cached bytecode. (CI VMs export
    # PYTHONDONTWRITEBYTECODE=1, which recompiles proj's source on every start: ~0.1 s more.)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROJ_") and k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PROJ_CACHE_DIR": str(cache), "PROJ_TRACKING_URI": str(root / "store")}


def bench_proj(root: Path, project: Path, n: int) -> dict[str, float]:
    proj = [sys.executable, "-m", "proj.cli.main", "-q", "run", str(project)]
    cold = [timed(proj, proj_env(root, root / f"cold-cache-{i}"), root) for i in range(n)]
    env = proj_env(root, root / "cold-cache-0")
    warm = [timed(proj, env, root) for _ in range(n)]
    venv_python = next((root / "cold-cache-0" / "envs").glob("venv-*/bin/python"))
    bare_env = {**os.environ, "PATH": f"{venv_python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    bare = [timed(["bash", "-c", ENTRY], bare_env, project) for _ in range(n)]
    return {"cold": statistics.median(cold), "warm": statistics.median(warm), "bare": statistics.median(bare),
            "overhead": statistics.median(warm) - statistics.median(bare)}


def bench_ensure(root: Path, project: Path, n: int) -> float:
    """The backend's own share of a warm run: check() + ensure() in-process, in milliseconds."""
    os.environ["PROJ_CACHE_DIR"] = str(root / "cold-cache-0")
    from proj.envs.base import BuildLog, EnvChoice
    from proj.envs.virtualenv.backend import VirtualenvBackend

    samples = []
    for _ in range(max(n, 20)):
        backend = VirtualenvBackend()
        choice = EnvChoice("virtualenv", "bench", project / "python_env.yaml", None)
        start = time.perf_counter()
        backend.check(choice)
        env = backend.ensure(choice, BuildLog(None))
        samples.append((time.perf_counter() - start) * 1000)
        assert env.cache_hit
    return statistics.median(samples)


def mlflow_bin(given: str | None) -> str | None:
    from _util import find_mlflow

    return given or find_mlflow()


def bench_mlflow(mlflow: str, root: Path, project: Path, n: int) -> dict[str, float]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"file://{root / 'mlruns'}", "MLFLOW_ALLOW_FILE_STORE": "true",
           "MLFLOW_ENV_ROOT": str(root / "mlflow-envs")}
    argv = [mlflow, "run", str(project), "--env-manager", "virtualenv"]
    cold = []
    for _ in range(n):
        shutil.rmtree(root / "mlflow-envs", ignore_errors=True)
        cold.append(timed(argv, env, root))
    warm = [timed(argv, env, root) for _ in range(n)]
    return {"cold": statistics.median(cold), "warm": statistics.median(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="repetitions (medians are printed)")
    parser.add_argument("--mlflow", help="path to an mlflow executable (in a side virtualenv)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-venv-") as tmp:
        root = Path(tmp)
        project = make_project(root)
        timed([sys.executable, "-m", "proj.cli.main", "-q", "run", str(project)],
              proj_env(root, root / "prime-cache"), root)  # fills uv's download cache once
        result = bench_proj(root, project, args.n)
        print(f"pyyaml-only project, python {sys.version.split()[0]}, median of {args.n}")
        print(f"  proj   cold build+run   {result['cold']:6.2f} s   (target < 3 s)")
        print(f"  proj   warm run         {result['warm']:6.2f} s")
        print(f"  bare   entry point      {result['bare']:6.2f} s")
        print(f"  proj   warm overhead    {result['overhead']:6.2f} s   (target < 0.2 s)")
        print(f"  backend check+ensure    {bench_ensure(root, project, args.n):6.1f} ms (warm, in-process)")
        mlflow = mlflow_bin(args.mlflow)
        if mlflow is None:
            print("  mlflow skipped: no mlflow executable (pass --mlflow PATH, set MLFLOW_BIN, or put it on PATH)")
            return
        ml = bench_mlflow(mlflow, root, project, args.n)
        print(f"  mlflow cold build+run   {ml['cold']:6.2f} s")
        print(f"  mlflow warm run         {ml['warm']:6.2f} s")


if __name__ == "__main__":
    main()
