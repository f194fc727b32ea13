"""Warm git-source overhead: ``proj run URL`` (cached clone, no new commits) vs the same project run locally.

Prints numbers, never asserts. The repository has some history and is served by ``git daemon`` on localhost
(like a remote would be), so the warm run pays a real fetch round trip.
If ``mlflow`` is found (``$MLFLOW`` or on PATH), ``mlflow run`` of the same URL is timed for comparison.

    python benchmarks/bench_git.py [-n 15] [--commits 200]
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MLPROJECT = "name: bench\nentry_points:\n  main:\n    command: \"python -c 'print(1)'\"\n"
GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@example.com"}


def sh(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, cwd=cwd, env={**os.environ, **GIT_ENV, **(env or {})}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_repo(root: Path, commits: int) -> Path:
    """A repository with ``commits`` commits touching a few dozen files, the project in ``proj/``."""
    repo = root / "work"
    repo.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    (repo / "proj").mkdir()
    (repo / "proj" / "MLproject").write_text(MLPROJECT)
    for i in range(commits):
        pkg = repo / "pkg" / f"m{i % 40}"
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "code.py").write_text("".join(f"x{j} = {i * j}\n" for j in range(200)))
        sh("git", "add", "-A", cwd=repo)
        sh("git", "commit", "-q", "-m", f"commit {i}", cwd=repo)
    return repo


def serve(repo: Path, root: Path) -> tuple[str, subprocess.Popen]:
    """A bare copy of ``repo`` behind ``git daemon`` on localhost (smart protocol: MLflow fetches shallow)."""
    served = root / "served"
    served.mkdir()
    sh("git", "clone", "-q", "--bare", str(repo), str(served / "repo.git"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={served}",
                               "--listen=127.0.0.1", f"--port={port}", str(served)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"git://127.0.0.1:{port}/repo.git"
    for _ in range(100):  # wait until it answers
        if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
            return url, daemon
        time.sleep(0.05)
    daemon.kill()
    sys.exit("git daemon did not start")


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{proc.stderr}")
    return elapsed


def interleaved(n: int, cases: dict[str, list[str]], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Median wall time per case; cases alternate so machine noise hits them all alike."""
    for argv in cases.values():
        timed(argv, cwd, env)  # warm-up: clone, env lock, page cache
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(n):
        for name, argv in cases.items():
            times[name].append(timed(argv, cwd, env))
    return {name: statistics.median(values) for name, values in times.items()}


def source_step(n: int, uris: dict[str, tuple[str, str | None]], cache: Path) -> dict[str, float]:
    """Median in-process time of resolve_source alone: the part a git source adds, without process noise."""
    os.environ["PROJ_CACHE_DIR"] = str(cache)
    from proj.sources.resolve import resolve_source

    result = {}
    for name, (uri, version) in uris.items():
        resolve_source(uri, version)
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            resolve_source(uri, version)
            samples.append(time.perf_counter() - start)
        result[name] = statistics.median(samples)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs per case (median reported)")
    parser.add_argument("--commits", type=int, default=200, help="history length of the test repository")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-git-"))
    try:
        run_cases(root, args.n, args.commits)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_cases(root: Path, n: int, commits: int) -> None:
    repo = make_repo(root, commits)
    url, daemon = serve(repo, root)
    try:
        _measure(root, repo, url, n, commits)
    finally:
        daemon.terminate()
        daemon.wait()


def _measure(root: Path, repo: Path, url: str, n: int, commits: int) -> None:
    plain = root / "plain"
    shutil.copytree(repo / "proj", plain)
    env = {**os.environ, "PROJ_CACHE_DIR": str(root / "cache"), "PROJ_TRACKING_URI": str(root / "store")}
    proj = [sys.executable, "-m", "proj.cli.main", "-q", "run"]
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    cases = {
        "local dir (snapshot)": (str(plain), None),
        "local git work tree": (str(repo / "proj"), None),
        "git URL, warm (fetch)": (f"{url}#proj", None),
        "git URL, -v full sha": (f"{url}#proj", sha),
    }
    argvs = {name: proj + [uri, *(["-v", v] if v else []), "--env-manager", "local"] for name, (uri, v) in cases.items()}
    print(f"repository: {commits} commits, served by git daemon on localhost; medians of {n} runs")
    walls = interleaved(n, argvs, root, env)
    steps = source_step(n, cases, root / "cache")
    base_wall, base_step = walls["local git work tree"], steps["local git work tree"]
    print(f"  {'case':<24} {'proj run (wall)':>16} {'source step':>14}")
    for name in cases:
        print(f"  {name:<24} {walls[name]:8.3f} s ({walls[name] - base_wall:+.3f}) "
              f"{steps[name] * 1000:7.1f} ms ({(steps[name] - base_step) * 1000:+.1f})")
    added = steps["git URL, warm (fetch)"] - base_step
    print(f"warm git overhead over a local run: {added * 1000:+.1f} ms in the source step, "
          f"{walls['git URL, warm (fetch)'] - base_wall:+.3f} s wall (target < 0.3 s)")
    compare_mlflow(url, root, env, max(3, n // 5), walls["git URL, warm (fetch)"])


def compare_mlflow(url: str, root: Path, env: dict[str, str], n: int, ours: float) -> None:
    """MLflow clones the repository into a fresh temp dir on every run."""
    from _util import find_mlflow

    mlflow = find_mlflow()
    if not mlflow:
        print("mlflow: not found (set MLFLOW=/path/to/venv/bin/mlflow) - comparison skipped")
        return
    argv = [mlflow, "run", f"{url}#proj", "--env-manager", "local"]
    mlenv = {**env, "MLFLOW_TRACKING_URI": f"file://{root}/mlruns", "MLFLOW_ALLOW_FILE_STORE": "true"}
    value = interleaved(n, {"mlflow": argv}, root, mlenv)["mlflow"]
    print(f"  mlflow run <git URL>: {value:.3f} s (median of {n}); proj warm: {ours:.3f} s, {value / ours:.1f}x faster")


if __name__ == "__main__":
    main()
