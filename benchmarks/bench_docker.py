"""Docker backend benchmark: warm run overhead and cold project-image build. Prints numbers, never asserts.

Needs a daemon and the base image (``bash .ci/install-docker.sh && bash .ci/build-base-image.sh``).
Usage: ``python benchmarks/bench_docker.py [--repeat N]``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import bench_env, median, proj_cmd, report, time_cmd  # noqa: E402

BASE = "python:3.11-slim"


def make_project(root: Path, name: str) -> None:
    root.mkdir(parents=True)
    (root / "MLproject").write_text(f"name: {name}\ndocker_env:\n  image: {BASE}\n"
                                    "entry_points:\n  main:\n    command: 'true'\n")
    (root / "train.py").write_text("print('hello')\n" * 50)
    (root / "data.csv").write_text("x,y\n" + "".join(f"{i},{i * 2}\n" for i in range(2000)))


def last_env(env: dict[str, str], cwd: Path) -> dict:
    out = subprocess.run(proj_cmd("runs", "list", "--json", "-n", "1"), cwd=cwd, env=env, capture_output=True,
                         text=True, check=True)
    run_id = json.loads(out.stdout)["data"][0]["id"]
    show = subprocess.run(proj_cmd("runs", "show", run_id, "--json"), cwd=cwd, env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(show.stdout)["data"]["env"]


def cold_builds(root: Path, env: dict[str, str], cwd: Path, repeat: int) -> list[float]:
    """Build seconds of project images that are new each time (one file changes), base image cached."""
    seconds = []
    for _ in range(repeat):
        (root / "version.txt").write_text(f"{uuid.uuid4()}\n")
        time_cmd(proj_cmd("run", str(root)), cwd=cwd, env=env, repeat=1, warmup=0)
        info = last_env(env, cwd)
        if not info["cache_hit"]:
            seconds.append(info["build_seconds"])
    return seconds


def cleanup(name: str) -> None:
    ids = subprocess.run(["docker", "images", "-q", f"proj/{name}"], capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    name = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        env = bench_env(tmp)
        root = tmp / name
        make_project(root, name)
        try:
            builds = cold_builds(root, env, tmp, args.repeat)
            warm = time_cmd(proj_cmd("run", str(root)), cwd=tmp, env=env, repeat=args.repeat)
            local = time_cmd(proj_cmd("run", str(root), "--env-manager", "local"), cwd=tmp, env=env,
                             repeat=args.repeat)
            bare = time_cmd(["docker", "run", "--rm", "--init", BASE, "true"], cwd=tmp, repeat=args.repeat)
        finally:
            cleanup(name)
    report([
        ("cold project image build (base cached, env build_seconds)", f"{median(builds):.2f} s", "< 2 s"),
        ("warm docker `proj run` (image cached, `true`), wall", f"{median(warm):.2f} s", ""),
        ("same project with --env-manager local, wall", f"{median(local):.2f} s", ""),
        ("warm docker overhead over a local run", f"{median(warm) - median(local):.2f} s", "< 1.0 s"),
        ("for reference: `docker run --rm --init IMAGE true`", f"{median(bare):.2f} s", ""),
    ])


if __name__ == "__main__":
    main()
