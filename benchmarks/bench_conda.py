"""Conda backend timings: warm `proj run` overhead and a cold 5-package build from a local channel.

Prints numbers, asserts nothing. Targets: warm run overhead < 0.3 s; cold build < 2 s (conda-lock's
own import, ~0.5 s, is paid once per cold process and measured separately).

    python benchmarks/bench_conda.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import conda_channel as cc  # noqa: E402

DEPS = ["greet=1.0", "shout", "filler1", "filler2"]  # 5 packages with greet-data


def make_project(root: Path, case: str) -> Path:
    root.mkdir(parents=True)
    deps = "\n".join(f"  - {d}" for d in DEPS)
    (root / "conda.yaml").write_text(f"channels: [conda-forge]\ndependencies:\n{deps}\n"
                                     f"variables:\n  CASE: {case}\n")
    (root / "MLproject").write_text("name: bench\nconda_env: conda.yaml\nentry_points:\n  main:\n"
                                    "    command: 'true'\n")
    return root


def cold_build(project: Path, cache: Path) -> tuple[float, int]:
    """In-process ensure() on an empty cache; conda-lock is imported beforehand (timed apart)."""
    from proj.envs.base import BuildLog, EnvChoice
    from proj.envs.conda.backend import CondaBackend

    os.environ["PROJ_CACHE_DIR"] = str(cache)
    start = time.perf_counter()
    env = CondaBackend().ensure(EnvChoice("conda", "bench", project / "conda.yaml"), BuildLog(None))
    return time.perf_counter() - start, len(env.details["packages"])


def cli_seconds(args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "proj.cli.main", *args], cwd=cwd, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.decode())
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory(prefix="proj-bench-conda-") as tmp:
        base = Path(tmp)
        cc.build_channel(base / "mirror" / "conda-forge", cc.standard_packages())
        os.environ["PROJ_CONDA_CHANNEL_ALIAS"] = str(base / "mirror")
        start = time.perf_counter()
        import conda_lock.lockfile  # noqa: F401 - the one-off import cost, reported on its own

        print(f"conda-lock import (once per cold process):  {time.perf_counter() - start:.3f} s")
        colds = [cold_build(make_project(base / f"cold{i}", f"cold{i}"), base / f"cache{i}") for i in range(repeat)]
        print(f"cold build, {colds[0][1]} packages, in-process:     median {statistics.median(c[0] for c in colds):.3f} s"
              f"  (min {min(c[0] for c in colds):.3f}, max {max(c[0] for c in colds):.3f})")
        env = {**os.environ, "PROJ_CACHE_DIR": str(base / "cli-cache"), "PROJ_TRACKING_URI": str(base / "store")}
        project = make_project(base / "warm", "warm")
        cold_cli = cli_seconds(["run", str(project)], env, base)
        print(f"cold `proj run` (CLI, incl. conda-lock import): {cold_cli:.3f} s")
        warm = [cli_seconds(["run", str(project)], env, base) for _ in range(repeat)]
        local = [cli_seconds(["run", str(project), "--env-manager", "local"], env, base) for _ in range(repeat)]
        bare = [_bare_python(env) for _ in range(repeat)]
        print(f"warm `proj run` wall time:                  median {statistics.median(warm):.3f} s")
        print(f"  same project with --env-manager local:    median {statistics.median(local):.3f} s")
        print(f"  python interpreter start alone:           median {statistics.median(bare):.3f} s")
        print(f"  overhead beyond interpreter start:        median {statistics.median(warm) - statistics.median(bare):.3f} s")
        print(f"  conda's share (vs local backend):         median {statistics.median(warm) - statistics.median(local):+.3f} s")
        print(f"warm ensure() in-process:                   {_warm_ensure(project, base / 'cli-cache'):.4f} s")


def _bare_python(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - start


def _warm_ensure(project: Path, cache: Path) -> float:
    from proj.envs.base import BuildLog, EnvChoice
    from proj.envs.conda.backend import CondaBackend

    os.environ["PROJ_CACHE_DIR"] = str(cache)
    start = time.perf_counter()
    env = CondaBackend().ensure(EnvChoice("conda", "bench", project / "conda.yaml"), BuildLog(None))
    assert env.cache_hit
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
