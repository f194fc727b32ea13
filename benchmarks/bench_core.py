"""Core overheads: start-up, `proj run` over the bare entry point (local env), listing and ingestion.

    python benchmarks/bench_core.py [--repeat N]

Targets (issue 2): --help and runs list < 0.15 s; run overhead < 0.15 s; runs list over 10,000
runs < 0.3 s; ingesting 100,000 metric points < 2 s. With an MLflow side venv
(benchmarks/setup_mlflow.sh) it also times `mlflow run --env-manager local` on the same project.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import bench_env, median, mlflow_cmd, proj_cmd, report, time_cmd  # noqa: E402

ENTRY = "import sys; sys.exit(0)\n"


def make_project(root: Path) -> Path:
    project = root / "trivial"
    project.mkdir()
    (project / "MLproject").write_text("name: trivial\nentry_points:\n  main:\n    parameters: {alpha: float}\n"
                                       "    command: python main.py --alpha {alpha}\n")
    (project / "main.py").write_text(ENTRY)
    return project


def fill_store(env: dict[str, str], runs: int) -> None:
    """Insert ``runs`` finished runs straight through the store API (fast, same schema)."""
    os.environ.update({k: env[k] for k in ("PROJ_TRACKING_URI", "PROJ_CACHE_DIR")})
    from proj.tracking.open import open_store
    from proj.tracking.records import NewRun, ParamRecord

    store = open_store()
    for i in range(runs):
        run = store.create_run(NewRun("bench", None, {"uri": "/x", "kind": "local"}, "p", "main", "python main.py",
                                      [ParamRecord("alpha", str(i), float(i), "float", "user")], {}, "local"), 1)
        store.finish_run(run.id, "FINISHED", exit_code=0)


def ingest_points(env: dict[str, str], points: int) -> float:
    from proj.collect.metrics import ingest_metrics_file, metrics_path
    from proj.tracking.open import open_store
    from proj.tracking.records import NewRun

    store = open_store()
    run = store.create_run(NewRun("ingest", None, {}, "p", "main", "x", [], {}, "local"), os.getpid())
    with open(metrics_path(store, run.id), "w") as fh:
        for i in range(points):
            fh.write(json.dumps({"key": f"m{i % 10}", "value": i * 0.5, "step": i // 10, "timestamp": 1.0}) + "\n")
    start = time.perf_counter()
    ingest_metrics_file(store, run.id)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = bench_env(tmp)
        project = make_project(tmp)
        rows = []
        help_time = median(time_cmd(proj_cmd("--help"), cwd=tmp, env=env, repeat=args.repeat))
        rows.append(("proj --help", f"{help_time:.3f} s", "< 0.15 s"))
        bare = median(time_cmd([sys.executable, "main.py", "--alpha", "0.1"], cwd=project, env=env, repeat=args.repeat))
        run = median(time_cmd(proj_cmd("-q", "run", str(project), "--env-manager", "local", "-P", "alpha=0.1"),
                              cwd=tmp, env=env, repeat=args.repeat))
        rows.append(("bare entry point (python main.py)", f"{bare:.3f} s", ""))
        rows.append(("proj run --env-manager local", f"{run:.3f} s", ""))
        rows.append(("  overhead over the bare entry point", f"{run - bare:.3f} s", "< 0.15 s"))
        mlflow = mlflow_cmd("run", str(project), "--env-manager", "local", "-P", "alpha=0.1")
        if mlflow:
            menv = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}"}
            t = median(time_cmd(mlflow, cwd=tmp, env=menv, repeat=max(3, args.repeat // 3)))
            rows.append(("mlflow run --env-manager local", f"{t:.3f} s", ""))
            rows.append(("  overhead over the bare entry point", f"{t - bare:.3f} s", "(about 4.6 s)"))
        else:
            rows.append(("mlflow run (side by side)", "skipped", "run benchmarks/setup_mlflow.sh"))
        fill_store(env, 10_000)
        listed = median(time_cmd(proj_cmd("runs", "list"), cwd=tmp, env=env, repeat=args.repeat))
        rows.append(("proj runs list (store of 10,000 runs)", f"{listed:.3f} s", "< 0.3 s"))
        listed_all = median(time_cmd(proj_cmd("runs", "list", "--json", "-n", "0"), cwd=tmp, env=env, repeat=3))
        rows.append(("proj runs list --json -n 0 (all 10,000)", f"{listed_all:.3f} s", ""))
        rows.append(("ingest 100,000 metric points", f"{ingest_points(env, 100_000):.3f} s", "< 2 s"))
        report(rows)


if __name__ == "__main__":
    main()
