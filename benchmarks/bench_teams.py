"""`proj server` against `mlflow server`, both on PostgreSQL: a sorted and a filtered search over many runs, and
log-batch throughput with 32 concurrent clients.

    python benchmarks/bench_teams.py [--runs 100000] [--repeat 5] [--clients 32] [--seconds 15] [--rounds 2]
                                     [--workers 4]   (about 5 minutes on a busy 2-core VM)

A private PostgreSQL cluster (Debian's binaries, initdb/pg_ctl as the postgres user in a temporary directory on a
free port, as tests/helpers/postgres.py starts one) holds one database per server and is removed at the end.
MLflow 3.17.2 runs from benchmarks/.mlflow-venv (benchmarks/setup_mlflow.sh, with psycopg2). Each server creates
its own schema on start; the runs are then written into both databases by COPY into the tables each store reads
(the same run ids, names, params, metrics and tags), since filling MLflow over HTTP would take hours and proj's
store API over PostgreSQL about 25 ms a run. Both databases are then VACUUM ANALYZEd, as autovacuum would do.
Every measure alternates the two servers (proj, MLflow, proj, MLflow, ...), so both see the same machine load,
and records the 1-minute load average beside it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import urllib3

sys.path.insert(0, str(Path(__file__).parent))
from _util import MLFLOW_VENV, median  # noqa: E402
from bench_server import API, FILTER, METRICS, PARAMS, Client, fmt, free_port, metric_value, param_value, serving  # noqa: E402

PG_BIN = Path(os.environ.get("PROJ_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
TEAMS = ("red", "green", "blue", "gold")
BATCH = 100  # metric points per log-batch request


# -- the PostgreSQL cluster ----------------------------------------------------------------------------------------

@dataclass
class Cluster:
    directory: Path
    port: int
    user: str

    def uri(self, database: str, scheme: str = "postgresql") -> str:
        return f"{scheme}://{self.user}@127.0.0.1:{self.port}/{database}"

    def run(self, tool: str, *args: str) -> str:
        argv = [str(PG_BIN / tool), "-h", "127.0.0.1", "-p", str(self.port), *args]
        return subprocess.run(_as_user(self.user, argv), capture_output=True, text=True, check=True).stdout


def _as_user(user: str, argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, its tools run as the postgres user."""
    return ["runuser", "-u", user, "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def pg_cluster() -> Iterator[Cluster]:
    """initdb + pg_ctl start in a temporary directory on a free port (fsync off, as the tests run it); stopped and
    removed at the end."""
    if not (PG_BIN / "initdb").is_file():
        raise SystemExit(f"PostgreSQL is not installed ({PG_BIN / 'initdb'} missing: apt-get install postgresql)")
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    directory = Path(tempfile.mkdtemp(prefix="proj-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user)
        directory.chmod(0o700)
    data = directory / "data"
    try:
        subprocess.run(_as_user(user, [str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", user]),
                       capture_output=True, check=True)
        port = free_port()
        # max_connections: MLflow's 4 workers keep SQLAlchemy pools (5 + 10 overflow each) beside proj's.
        subprocess.run(_as_user(user, [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(directory / "server.log"),
                                       "-o", f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
                                       " -c max_connections=300", "-w", "start"]), capture_output=True, check=True)
        yield Cluster(directory, port, user)
    finally:
        subprocess.run(_as_user(user, [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


# -- the same runs in both stores ----------------------------------------------------------------------------------

def run_id(i: int) -> str:
    """The same 32-hex id in both stores, so ties in a sort are broken the same way."""
    return hashlib.md5(f"bench-run-{i}".encode()).hexdigest()


def tags_of(i: int) -> dict[str, str]:
    return {"mlflow.runName": f"run-{i}", "team": TEAMS[i % len(TEAMS)], "stage": "nightly" if i % 3 else "release"}


def fill_proj(uri: str, experiment_id: str, runs: int, now_ms: int) -> None:
    """proj's tables as its store API writes them for a client run (tracking.sqlite_runs, sqlite_base)."""
    import psycopg

    with psycopg.connect(uri) as conn, conn.cursor() as cur:
        with cur.copy("COPY runs (id, experiment_id, name, status, start_time, end_time, \"user\", host, source_json,"
                      " entry_point, command) FROM STDIN") as copy:
            for i in range(runs):
                start = (now_ms - i) / 1000
                copy.write_row((run_id(i), int(experiment_id), f"run-{i}", "FINISHED", start, start + 1, "bench", "",
                                "{}", "", ""))
        with cur.copy("COPY tags (run_id, key, value) FROM STDIN") as copy:
            for i in range(runs):
                for key, value in tags_of(i).items():
                    copy.write_row((run_id(i), key, value))
        with cur.copy("COPY params (run_id, key, value, typed_json, type, source) FROM STDIN") as copy:
            for i in range(runs):
                for j in range(PARAMS):
                    value = param_value(i, j)
                    copy.write_row((run_id(i), f"p{j}", value, json.dumps(value), "string", "logged"))
        # One point per metric: the latest is that point, its min and max its value, its one block holds it alone.
        shapes: tuple[tuple[str, str, Callable[[str, str, float, float], tuple[Any, ...]]], ...] = (
            ("metrics", "run_id, key, value, step, timestamp", lambda r, k, v, ts: (r, k, v, 0, ts)),
            ("latest_metrics", "run_id, key, value, step, timestamp, min_value, max_value",
             lambda r, k, v, ts: (r, k, v, 0, ts, v, v)),
            ("metric_blocks", "run_id, key, block, n, min_value, min_step, min_ts, max_value, max_step, max_ts,"
                              " first_step, first_ts, last_step, last_ts",
             lambda r, k, v, ts: (r, k, 0, 1, v, 0, ts, v, 0, ts, 0, ts, 0, ts)))
        for table, columns, shape in shapes:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for i in range(runs):
                    rid, ts = run_id(i), (now_ms - i) / 1000
                    for j in range(METRICS):
                        copy.write_row(shape(rid, f"m{j}", metric_value(i, j), ts))


def fill_mlflow(uri: str, experiment_id: str, runs: int, now_ms: int) -> None:
    """MLflow's tables as its SqlAlchemyStore writes them (runs, tags, params, metrics, latest_metrics)."""
    import psycopg

    with psycopg.connect(uri) as conn, conn.cursor() as cur:
        with cur.copy("COPY runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status,"
                      " start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id)"
                      " FROM STDIN") as copy:
            for i in range(runs):
                rid = run_id(i)
                copy.write_row((rid, f"run-{i}", "UNKNOWN", "", "", "bench", "FINISHED", now_ms - i, now_ms - i + 1000,
                                "", "active", f"mlflow-artifacts:/{experiment_id}/{rid}/artifacts",
                                int(experiment_id)))
        with cur.copy("COPY tags (run_uuid, key, value) FROM STDIN") as copy:
            for i in range(runs):
                for key, value in {**tags_of(i), "mlflow.user": "bench"}.items():
                    copy.write_row((run_id(i), key, value))
        with cur.copy("COPY params (run_uuid, key, value) FROM STDIN") as copy:
            for i in range(runs):
                for j in range(PARAMS):
                    copy.write_row((run_id(i), f"p{j}", param_value(i, j)))
        for table in ("metrics", "latest_metrics"):
            with cur.copy(f"COPY {table} (run_uuid, key, value, timestamp, step, is_nan) FROM STDIN") as copy:
                for i in range(runs):
                    for j in range(METRICS):
                        copy.write_row((run_id(i), f"m{j}", metric_value(i, j), now_ms - i, 0, False))


def vacuum_analyze(uri: str) -> None:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# -- measures -------------------------------------------------------------------------------------------------------

def load1() -> float:
    return os.getloadavg()[0]


@dataclass
class Server:
    label: str
    client: Client
    experiment: str = ""
    load_experiment: str = ""
    times: dict[str, list[float]] = field(default_factory=dict)
    loads: dict[str, list[float]] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    rates: list[dict[str, float]] = field(default_factory=list)

    def record(self, key: str, seconds: float, answer: Any = None) -> None:
        self.times.setdefault(key, []).append(seconds)
        self.loads.setdefault(key, []).append(load1())
        if answer is not None:
            self.answers[key] = answer


def searches(server: Server) -> dict[str, Callable[[], Any]]:
    def page() -> list[str]:
        return [r["info"]["run_name"] for r in server.client.call("POST", "/runs/search", {
            "experiment_ids": [server.experiment], "order_by": ["metrics.m0 DESC"], "max_results": 100})["runs"]]

    def filtered() -> list[str]:
        return [r["info"]["run_name"] for r in server.client.call("POST", "/runs/search", {
            "experiment_ids": [server.experiment], "filter": FILTER, "max_results": 100,
            "order_by": ["attributes.run_name ASC"]}).get("runs", [])]

    return {"page": page, "search": filtered}


def measure_searches(servers: list[Server], repeat: int) -> None:
    """One warm-up call each, then ``repeat`` rounds of proj, MLflow, proj, MLflow, ... per search."""
    for server in servers:
        for key, fn in searches(server).items():
            start = time.perf_counter()
            fn()
            print(f"  warm-up: {server.label} {key} {fmt(time.perf_counter() - start)}", flush=True)
    for n in range(repeat):
        for key in ("page", "search"):
            for server in servers:
                start = time.perf_counter()
                answer = searches(server)[key]()
                server.record(key, time.perf_counter() - start, answer)
                print(f"  round {n + 1}: {server.label} {key} {fmt(server.times[key][-1])}"
                      f" (load {load1():.1f})", flush=True)


def _client_thread(url: str, run: str, until: float, out: list[Any]) -> None:
    """One client: its own keep-alive connection, log-batch of BATCH points to its own run until ``until``."""
    pool = urllib3.HTTPConnectionPool("127.0.0.1", int(url.rsplit(":", 1)[1]), maxsize=1)
    latencies: list[float] = []
    errors: Counter[str] = Counter()  # what each failure was: the HTTP status or the exception
    points, step = 0, 0
    while time.time() < until:
        now = int(time.time() * 1000)
        body = json.dumps({"run_id": run, "metrics": [
            {"key": f"m{k % 10}", "value": k * 0.5, "timestamp": now, "step": step + k} for k in range(BATCH)]}).encode()
        start = time.perf_counter()
        try:
            resp = pool.request("POST", API + "/runs/log-batch", body=body,
                                headers={"Content-Type": "application/json"}, retries=False, timeout=60)
            failure = "" if resp.status == 200 else f"HTTP {resp.status} {_reason(resp.data)}"
        except urllib3.exceptions.HTTPError as exc:
            failure = type(exc).__name__
        latencies.append(time.perf_counter() - start)
        if not failure:
            points += BATCH
            step += BATCH
        else:
            errors[failure] += 1
    out.append((latencies, errors, points))


def _reason(body: bytes) -> str:
    """An MLflow error answer's code and the start of its message."""
    try:
        answer = json.loads(body)
        return f"{answer.get('error_code')}: {str(answer.get('message'))[:120]}"
    except ValueError:
        return body[:120].decode(errors="replace")


def _client_process(url: str, runs: list[str], until: float) -> tuple[list[float], Counter[str], int]:
    """Several client threads in one process (the GIL of one process would be the bottleneck of 32)."""
    out: list[Any] = []
    threads = [threading.Thread(target=_client_thread, args=(url, run, until, out)) for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ([x for lat, _, _ in out for x in lat], sum((e for _, e, _ in out), Counter()), sum(p for _, _, p in out))


def log_batch_load(server: Server, clients: int, seconds: float, processes: int, round_no: int) -> None:
    """``clients`` concurrent writers, each to a run of its own, for ``seconds``."""
    runs = [server.client.call("POST", "/runs/create", {
        "experiment_id": server.load_experiment, "run_name": f"load-{round_no}-{c}",
        "start_time": int(time.time() * 1000)})["run"]["info"]["run_id"] for c in range(clients)]
    groups = [runs[p::processes] for p in range(processes)]
    until = time.time() + 1 + seconds  # 1 s for the processes to start
    with ProcessPoolExecutor(processes) as pool:
        results = list(pool.map(_client_process, [server.client.url] * processes, groups, [until] * processes))
    # Requests sent before the deadline are waited for: rates are over the time until the last one answered.
    elapsed = time.time() - (until - seconds)
    latencies = sorted(x for lat, _, _ in results for x in lat)
    kinds: Counter[str] = sum((r[1] for r in results), Counter())
    errors, points = sum(kinds.values()), sum(r[2] for r in results)
    quantile = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    rate = {"requests": len(latencies) / elapsed, "points": points / elapsed, "p50": quantile[49],
            "p99": quantile[98], "errors": float(errors), "acked": float(points), "load": load1()}
    server.rates.append(rate)
    print(f"  round {round_no}: {server.label} log-batch over {elapsed:.1f} s: {rate['requests']:.0f} req/s,"
          f" {rate['points']:.0f} points/s,"
          f" p50 {fmt(rate['p50'])}, p99 {fmt(rate['p99'])}, {errors} errors {dict(kinds) or ''}"
          f" (load {rate['load']:.1f})", flush=True)


def stored_points(cluster: Cluster, database: str, sql: str) -> int:
    return int(cluster.run("psql", "-At", "-c", sql, database).strip())


# -- the run --------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the searched experiment")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each search (medians)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent log-batch clients")
    parser.add_argument("--seconds", type=float, default=15, help="length of one log-batch round")
    parser.add_argument("--rounds", type=int, default=2, help="log-batch rounds per server (alternating)")
    parser.add_argument("--processes", type=int, default=4, help="client processes the clients' threads share")
    parser.add_argument("--workers", default="4", help="worker processes of both servers (MLflow's default: 4)")
    parser.add_argument("--mlflow-healthcheck", type=int, default=120,
                        help="seconds uvicorn lets an MLflow worker miss its health check (uvicorn's default: 5)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the servers and the cluster are stopped on the way out
    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    if not mlflow.exists():
        raise SystemExit(f"no MLflow in {MLFLOW_VENV}: run bash benchmarks/setup_mlflow.sh first")
    began = time.monotonic()
    with pg_cluster() as cluster, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for db in ("proj_bench", "mlflow_bench"):
            cluster.run("createdb", db)
        proj_port, mlflow_port = free_port(), free_port()
        proj_argv = [sys.executable, "-m", "proj", "server", "--backend-store-uri", cluster.uri("proj_bench"),
                     "--artifacts-destination", str(tmp / "proj-artifacts"), "--port", str(proj_port),
                     "--workers", args.workers, "--log-level", "warning"]
        # psycopg2 named: MLflow's plain postgresql:// picks SQLAlchemy's psycopg (3) dialect, not in its venv.
        mlflow_argv = [str(mlflow), "server", "--backend-store-uri", cluster.uri("mlflow_bench", "postgresql+psycopg2"),
                       "--artifacts-destination", str(tmp / "mlflow-artifacts"), "--host", "127.0.0.1",
                       "--port", str(mlflow_port), "--workers", args.workers,
                       # uvicorn (MLflow's default server) kills a worker that misses its 5 s health check: on a
                       # busy 2-core machine that is MLflow's workers while they import, and mid-request later.
                       "--uvicorn-opts", f"--timeout-worker-healthcheck {args.mlflow_healthcheck}"]
        try:
            servers, counted = measure_all(cluster, args, proj_argv, proj_port, mlflow_argv, mlflow_port, tmp)
        except BaseException:
            for log in ("proj.log", "mlflow.log"):
                if (tmp / log).exists():
                    print(f"--- {log} (end)\n{(tmp / log).read_text(errors='replace')[-3000:]}", file=sys.stderr)
            raise
    report(servers, counted, args, time.monotonic() - began)


def measure_all(cluster: Cluster, args: argparse.Namespace, proj_argv: list[str], proj_port: int,
                mlflow_argv: list[str], mlflow_port: int, tmp: Path) -> tuple[list[Server], dict[str, int]]:
    """Both servers up, both stores filled, every measure alternating the two; the points stored afterwards."""
    started = time.monotonic()
    with serving(proj_argv, proj_port, tmp / "proj.log") as proj_url, \
            serving(mlflow_argv, mlflow_port, tmp / "mlflow.log", timeout=900) as mlflow_url:
        print(f"both servers answer /health after {time.monotonic() - started:.0f} s; load {load1():.1f}", flush=True)
        servers = [Server("proj", Client(proj_url)), Server("mlflow", Client(mlflow_url))]
        for server in servers:
            server.experiment = server.client.call("POST", "/experiments/create", {"name": "bench-search"})[
                "experiment_id"]
            server.load_experiment = server.client.call("POST", "/experiments/create", {"name": "bench-load"})[
                "experiment_id"]
        now_ms = int(time.time() * 1000)
        fills = []
        for label, fill, uri, experiment in (
                ("proj", fill_proj, cluster.uri("proj_bench"), servers[0].experiment),
                ("mlflow", fill_mlflow, cluster.uri("mlflow_bench"), servers[1].experiment)):
            start = time.perf_counter()
            fill(uri, experiment, args.runs, now_ms)
            vacuum_analyze(uri)
            fills.append(f"{label} {time.perf_counter() - start:.0f} s")
        print(f"both databases filled by COPY with {args.runs:,} runs ({PARAMS} params, {METRICS} metrics, "
              f"3-4 tags each) and analyzed ({', '.join(fills)}); load {load1():.1f}", flush=True)
        measure_searches(servers, args.repeat)
        for n in range(args.rounds):
            for server in servers:
                log_batch_load(server, args.clients, args.seconds, args.processes, n + 1)
        counted = {
            "proj": stored_points(cluster, "proj_bench", "SELECT count(*) FROM metrics m JOIN runs r ON r.id = "
                                  f"m.run_id WHERE r.experiment_id = {servers[0].load_experiment}"),
            "mlflow": stored_points(cluster, "mlflow_bench", "SELECT count(*) FROM metrics m JOIN runs r ON "
                                    f"r.run_uuid = m.run_uuid WHERE r.experiment_id = {servers[1].load_experiment}"),
        }
    return servers, counted


def report(servers: list[Server], counted: dict[str, int], args: argparse.Namespace, elapsed: float) -> None:
    proj, ml = servers
    print(f"\n{os.cpu_count()} cores; both servers --workers {args.workers}; {elapsed:.0f} s in all")
    for key in ("page", "search"):
        same = "same answer" if proj.answers[key] == ml.answers[key] else "DIFFERENT ANSWERS"
        print(f"  check {key}: {same} ({len(proj.answers[key])} runs)")
    for server in servers:
        acked = int(sum(r["acked"] for r in server.rates))
        print(f"  check {server.label} log-batch: {acked:,} points acknowledged, {counted[server.label]:,} stored")

    def loads(values: list[float]) -> str:
        return f"{min(values):.1f}-{max(values):.1f}" if min(values) != max(values) else f"{values[0]:.1f}"

    table = [("measure", "proj server", "mlflow server", "proj speed-up", "load avg (1 min)")]
    for key, label in (("page", f"search: 100 runs by metrics.m0 DESC of {args.runs:,}"),
                       ("search", f"search {args.runs:,} runs: {FILTER}")):
        p, m = median(proj.times[key]), median(ml.times[key])
        table.append((label, fmt(p), fmt(m), f"{m / p:.1f}x", loads(proj.loads[key] + ml.loads[key])))
    every_load = [r["load"] for s in servers for r in s.rates]
    for key, label, unit in (("requests", "log-batch requests/s", ""), ("points", "log-batch points/s", ""),
                             ("p50", "log-batch latency p50", "s"), ("p99", "log-batch latency p99", "s"),
                             ("errors", "log-batch errors (all rounds)", "n")):
        values = [[r[key] for r in s.rates] for s in servers]
        if unit == "n":
            p, m = sum(values[0]), sum(values[1])
            cells = (f"{p:.0f}", f"{m:.0f}", "")
        else:
            p, m = median(values[0]), median(values[1])
            ratio = (m / p) if unit == "s" else (p / m if m else float("inf"))
            cells = ((fmt(p), fmt(m)) if unit == "s" else (f"{p:,.0f}", f"{m:,.0f}")) + (f"{ratio:.1f}x",)
        table.append((f"{label}, {args.clients} clients x {args.seconds:.0f} s x {args.rounds}", *cells,
                      loads(every_load)))
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print("(proj speed-up: MLflow's time or latency over proj's; proj's rate over MLflow's)")


if __name__ == "__main__":
    main()
