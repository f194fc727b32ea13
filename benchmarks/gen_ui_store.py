"""A run store for the web UI's benchmarks, generated fast: N runs x 10 params x 10 metrics (a few history
points each) in one experiment, written with direct SQL into the schema the store itself creates, plus one run
with a long history (default 1,000,000 points, one spike). Prints what it made as JSON.

usage: python benchmarks/gen_ui_store.py STORE_DIR [--runs 100000] [--points 5] [--long 1000000]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from proj.tracking.open import open_store  # noqa: E402 - the store of this checkout, not an installed one
from proj.tracking.sqlite_schema import BACKFILL_BLOCKS, BACKFILL_EXTREMES  # noqa: E402

PARAMS = [f"p{i}" for i in range(10)]
METRICS = [f"m{i}" for i in range(10)]


def generate(root: Path, runs: int, points: int, long: int, seed: int = 0) -> dict[str, object]:
    rng = random.Random(seed)
    store = open_store(str(root), create=True)
    experiment_id = store.create_experiment(f"ui-bench-{runs}")
    store.close()
    db = sqlite3.connect(root / "proj.db", isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    start = time.time() - runs
    db.execute("BEGIN")
    ids = [os.urandom(16).hex() for _ in range(runs)]
    db.executemany(
        "INSERT INTO runs (id, experiment_id, name, status, start_time, end_time, user, host, source_json, entry_point,"
        " command, artifact_uri) VALUES (?,?,?,?,?,?,'bench','','{}','','',NULL)",
        ((rid, int(experiment_id), f"run-{n}", "FINISHED", start + n, start + n + rng.random() * 100)
         for n, rid in enumerate(ids)))
    db.executemany("INSERT INTO params VALUES (?,?,?,?,'string','logged')",
                   ((rid, key, value, json.dumps(value)) for rid in ids for key in PARAMS
                    for value in [str(rng.choice((0.001, 0.01, 0.1, 1.0)) if key == "p0" else rng.randint(0, 99))]))
    db.executemany("INSERT INTO tags VALUES (?,?,?)",
                   ((rid, key, value) for n, rid in enumerate(ids)
                    for key, value in (("mlflow.runName", f"run-{n}"), ("team", rng.choice("abc")))))
    history, latest = [], []
    for n, rid in enumerate(ids):
        for key in METRICS:
            base = rng.random()
            for step in range(points):
                history.append((rid, key, base / (step + 1), step, start + n + step))
            latest.append((rid, key, base / points, points - 1, start + n + points - 1))
        if len(history) > 500_000:
            db.executemany("INSERT INTO metrics VALUES (?,?,?,?,?)", history)
            history.clear()
    db.executemany("INSERT INTO metrics VALUES (?,?,?,?,?)", history)
    db.executemany("INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES (?,?,?,?,?)", latest)
    long_id = ids[-1]
    spike_step = long // 3
    db.executemany("INSERT INTO metrics VALUES (?,?,?,?,?)",
                   ((long_id, "long", 1e6 if step == spike_step else math.sin(step / 1000.0), step,
                     start + step * 0.01) for step in range(long)))
    db.execute("INSERT OR REPLACE INTO latest_metrics (run_id, key, value, step, timestamp) VALUES (?,?,?,?,?)",
               (long_id, "long", math.sin((long - 1) / 1000.0), long - 1, start + (long - 1) * 0.01))
    # the summaries the store keeps at write time (schema step 3), made as its migration makes them
    db.execute(BACKFILL_BLOCKS)
    db.execute(BACKFILL_EXTREMES)
    db.execute("COMMIT")
    db.close()
    return {"store": str(root), "experiment_id": experiment_id, "runs": runs, "long_run_id": long_id,
            "long_points": long, "spike_step": spike_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=5, help="history points per metric per run")
    parser.add_argument("--long", type=int, default=1_000_000, help="points of the long history")
    args = parser.parse_args()
    began = time.perf_counter()
    made = generate(args.store, args.runs, args.points, args.long)
    made["seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(made))


if __name__ == "__main__":
    main()
