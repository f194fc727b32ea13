"""`proj server` against `mlflow server` on the same machine: medians of the same REST calls, same data.

    python benchmarks/bench_server.py [--runs 10000] [--big-runs 100000] [--points 100000] [--repeat 7]

Both servers are started here on free loopback ports (MLflow from benchmarks/.mlflow-venv, built by
benchmarks/setup_mlflow.sh) and timed through one keep-alive HTTP connection each. The stores are filled
with identical data without going through either server (HTTP would take MLflow hours): proj's through its
store API, MLflow's by bulk SQL into the tables its own SQLAlchemy store reads (runs, tags, params, metrics,
latest_metrics). Goals (issue 14): first page of 100 runs sorted by a metric over 10,000 runs <= 50 ms,
a 100,000-point history <= 0.2 s, a log_metric round trip <= 5 ms; >= 10x MLflow on reads, 5x on writes.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import urllib3

sys.path.insert(0, str(Path(__file__).parent))
from _util import MLFLOW_VENV, median  # noqa: E402

API = "/api/2.0/mlflow"
PARAMS = METRICS = 5
FILTER = "metrics.m0 < 0.1 and params.p1 = 'v3'"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(argv: list[str], port: int, log: Path, timeout: float = 240) -> Iterator[str]:
    """Start a server, wait for /health, yield its URL, stop its process group."""
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    http = urllib3.PoolManager()
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {' '.join(argv)}\n{log.read_text(errors='replace')[-2000:]}")
            try:
                if http.request("GET", url + "/health", retries=False, timeout=1).status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Client:
    """One keep-alive connection to one server; every call must answer 200."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pool = urllib3.HTTPConnectionPool("127.0.0.1", int(url.rsplit(":", 1)[1]), maxsize=1)

    def call(self, method: str, endpoint: str, body: dict[str, Any] | None = None,
             fields: dict[str, str] | None = None) -> Any:
        if body is not None:
            resp = self.pool.request(method, API + endpoint, body=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, retries=False, timeout=600)
        else:
            resp = self.pool.request(method, API + endpoint, fields=fields, retries=False, timeout=600)
        if resp.status != 200:
            raise SystemExit(f"{method} {endpoint} answered {resp.status}: {resp.data[:500]!r}")
        return json.loads(resp.data)


def metric_value(run: int, j: int) -> float:
    return ((run * 7919 + j * 104729) % 10007) / 10007


def param_value(run: int, j: int) -> str:
    return f"v{(run + j) % 10}"


def fill_proj(store_dir: Path, experiment_id: str, runs: int) -> None:
    """``runs`` finished runs with PARAMS params and METRICS metrics each, through proj's store API."""
    from proj.tracking.open import open_store
    from proj.tracking.records import MetricPoint

    store = open_store(str(store_dir))
    now = time.time()
    for start in range(0, runs, 1000):
        with store.transaction():
            for i in range(start, min(runs, start + 1000)):
                run = store.create_client_run(experiment_id, "bench", now, {}, f"run-{i}")
                store.log_client_batch(run.id, [MetricPoint(f"m{j}", metric_value(i, j), 0, now) for j in range(METRICS)],
                                       [(f"p{j}", param_value(i, j)) for j in range(PARAMS)])
                store.update_run(run.id, status="FINISHED", end_time=now)
    store.close()


def fill_proj_history(store_dir: Path, run_id: str, points: int) -> None:
    from proj.tracking.open import open_store
    from proj.tracking.records import MetricPoint

    store = open_store(str(store_dir))
    now = time.time()
    store.log_client_batch(run_id, [MetricPoint("loss", 1.0 / (1 + i), i, now + i / 1000) for i in range(points)])
    store.close()


def fill_mlflow(db_path: Path, experiment_id: str, runs: int, n_params: int = PARAMS, n_metrics: int = METRICS) -> None:
    """The same runs written straight into MLflow's schema (what its SqlAlchemyStore reads back)."""
    now = int(time.time() * 1000)
    db = sqlite3.connect(db_path)
    with db:
        for start in range(0, runs, 5000):
            rows, tags, params, metrics = [], [], [], []
            for i in range(start, min(runs, start + 5000)):
                rid = uuid.uuid4().hex
                rows.append((rid, f"run-{i}", "UNKNOWN", "", "", "bench", "FINISHED", now, now, "", "active",
                             f"mlflow-artifacts:/{experiment_id}/{rid}/artifacts", int(experiment_id)))
                tags += [("mlflow.runName", f"run-{i}", rid), ("mlflow.user", "bench", rid)]
                params += [(f"p{j}", param_value(i, j), rid) for j in range(n_params)]
                metrics += [(f"m{j}", metric_value(i, j), now, rid, 0, 0) for j in range(n_metrics)]
            db.executemany("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, "
                           "status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, "
                           "experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
            db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
            db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)",
                           metrics)
            db.executemany("INSERT INTO latest_metrics (key, value, timestamp, run_uuid, step, is_nan) "
                           "VALUES (?,?,?,?,?,?)", metrics)
    db.close()


def fill_mlflow_history(db_path: Path, run_id: str, points: int) -> None:
    now = int(time.time() * 1000)
    db = sqlite3.connect(db_path)
    with db:
        db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,0)",
                       [("loss", 1.0 / (1 + i), now + i, run_id, i) for i in range(points)])
        db.execute("INSERT INTO latest_metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,0)",
                   ("loss", 1.0 / points, now + points - 1, run_id, points - 1))
    db.close()


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls after ``warmup``; and the last call's result."""
    times, result = [], None
    for i in range(warmup + repeat):
        start = time.perf_counter()
        result = fn()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return median(times), result


def history(client: Client, run_id: str) -> int:
    """Every point of 'loss', in pages of 25,000 as the MLflow client asks for them."""
    count, token = 0, None
    while True:
        fields = {"run_id": run_id, "metric_key": "loss", "max_results": "25000"}
        if token:
            fields["page_token"] = token
        page = client.call("GET", "/metrics/get-history", fields=fields)
        count += len(page.get("metrics", []))
        token = page.get("next_page_token")
        if not token:
            return count


class Setup:
    """Experiments and runs made on one server through the protocol, before the bulk fill."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.small = client.call("POST", "/experiments/create", {"name": "bench-10k"})["experiment_id"]
        self.big = client.call("POST", "/experiments/create", {"name": "bench-100k"})["experiment_id"]
        work = client.call("POST", "/experiments/create", {"name": "bench-work"})["experiment_id"]
        self.history_run = self._run(work, "history")
        self.write_run = self._run(work, "writes")

    def _run(self, experiment_id: str, name: str) -> str:
        run_id: str = self.client.call("POST", "/runs/create", {"experiment_id": experiment_id, "run_name": name,
                                                                "start_time": int(time.time() * 1000)})["run"]["info"]["run_id"]
        return run_id


def measure(client: Client, setup: Setup, repeat: int, label: str) -> dict[str, tuple[float, Any]]:
    """The five measures on one server (medians in seconds, with what the last call returned), each printed
    as it is done: MLflow's reads take minutes on a busy machine."""
    step = iter(range(10**9))
    calls: dict[str, tuple[Callable[[], Any], int]] = {
        "page": (lambda: [r["info"]["run_name"] for r in client.call("POST", "/runs/search", {
            "experiment_ids": [setup.small], "order_by": ["metrics.m0 DESC"], "max_results": 100})["runs"]], repeat),
        "history": (lambda: history(client, setup.history_run), repeat),
        "log_metric": (lambda: client.call("POST", "/runs/log-metric", {
            "run_id": setup.write_run, "key": "single", "value": 1.0, "timestamp": int(time.time() * 1000),
            "step": next(step)}), repeat * 5),
        "log_batch": (lambda: client.call("POST", "/runs/log-batch", {"run_id": setup.write_run, "metrics": [
            {"key": f"b{k % 10}", "value": 0.5, "timestamp": int(time.time() * 1000), "step": next(step)}
            for k in range(1000)]}), repeat),
        "search": (lambda: [r["info"]["run_name"] for r in client.call("POST", "/runs/search", {
            "experiment_ids": [setup.big], "filter": FILTER, "max_results": 100,
            "order_by": ["attributes.run_name ASC"]}).get("runs", [])], repeat),
    }
    out: dict[str, tuple[float, Any]] = {}
    for key, (fn, times) in calls.items():
        out[key] = timed(fn, times)
        print(f"  {label} {key}: {fmt(out[key][0])} (median of {times})", flush=True)
    return out


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--big-runs", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--mlflow-repeat", type=int, default=3, help="MLflow's reads take seconds each")
    args = parser.parse_args()
    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    if not mlflow.exists():
        raise SystemExit(f"no MLflow in {MLFLOW_VENV}: run bash benchmarks/setup_mlflow.sh first")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        proj_port, mlflow_port = free_port(), free_port()
        proj_argv = [sys.executable, "-m", "proj", "server", "--backend-store-uri", str(tmp / "proj"),
                     "--port", str(proj_port), "--log-level", "warning"]
        mlflow_argv = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                       "--artifacts-destination", str(tmp / "mlflow-artifacts"), "--host", "127.0.0.1",
                       "--port", str(mlflow_port), "--workers", "1"]
        with serving(proj_argv, proj_port, tmp / "proj.log") as proj_url, \
                serving(mlflow_argv, mlflow_port, tmp / "mlflow.log") as mlflow_url:
            proj, ml = Client(proj_url), Client(mlflow_url)
            proj_setup, ml_setup = Setup(proj), Setup(ml)
            fills = []
            for label, fn in [
                ("proj: store API", lambda: (fill_proj(tmp / "proj", proj_setup.small, args.runs),
                                             fill_proj(tmp / "proj", proj_setup.big, args.big_runs),
                                             fill_proj_history(tmp / "proj", proj_setup.history_run, args.points))),
                ("mlflow: bulk SQL", lambda: (fill_mlflow(tmp / "mlflow.db", ml_setup.small, args.runs),
                                              fill_mlflow(tmp / "mlflow.db", ml_setup.big, args.big_runs),
                                              fill_mlflow_history(tmp / "mlflow.db", ml_setup.history_run, args.points))),
            ]:
                start = time.perf_counter()
                fn()
                fills.append(f"{label} {time.perf_counter() - start:.0f} s")
            print(f"stores filled with {args.runs} + {args.big_runs} runs ({PARAMS} params, {METRICS} metrics each) "
                  f"and one {args.points}-point history ({', '.join(fills)})", flush=True)
            got_proj = measure(proj, proj_setup, args.repeat, "proj")
            got_ml = measure(ml, ml_setup, args.mlflow_repeat, "mlflow")
    report(got_proj, got_ml, args)


def report(proj: dict[str, tuple[float, Any]], ml: dict[str, tuple[float, Any]], args: argparse.Namespace) -> None:
    print(f"  {os.cpu_count()} cores; load average while measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for key in ("page", "history", "search"):
        same = "same answer" if proj[key][1] == ml[key][1] else "DIFFERENT ANSWERS"
        print(f"  check {key}: {same} ({len(proj[key][1]) if isinstance(proj[key][1], list) else proj[key][1]})")
    rows = [
        ("page", f"first page of 100 runs by metrics.m0 DESC, {args.runs:,} runs", "<= 50 ms, >= 10x"),
        ("history", f"{args.points:,}-point metric history (pages of 25,000)", "<= 0.2 s, >= 10x"),
        ("log_metric", "one log-metric round trip", "<= 5 ms, >= 5x"),
        ("log_batch", "log-batch of 1,000 metrics", ">= 5x"),
        ("search", f"search {args.big_runs:,} runs: {FILTER}", ">= 10x"),
    ]
    table = [("measure", "proj server", "mlflow server", "speed-up", "goal")]
    for key, label, goal in rows:
        table.append((label, fmt(proj[key][0]), fmt(ml[key][0]), f"{ml[key][0] / proj[key][0]:.0f}x", goal))
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
