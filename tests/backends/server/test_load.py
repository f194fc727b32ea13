"""Load: 32 threads logging batches and 8 searching against a real `proj server` for a bounded time; then
every point is counted back through metrics/get-history (none lost, none duplicated) and no request failed.
p50/p99 latency per operation is printed, never asserted."""
from __future__ import annotations

import json
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import urllib3

from helpers.servers import proj_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("server-load")]

LOGGERS = 32
SEARCHERS = 8
DURATION = 20.0  # seconds of logging; the clients stop by themselves
POINTS_PER_BATCH = 100
API = "/api/2.0/mlflow"


@dataclass
class Tally:
    """What the clients saw, shared by all threads (appends under one lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)

    def call(self, http: urllib3.PoolManager, op: str, method: str, url: str, body: dict[str, Any] | None = None,
             fields: dict[str, str] | None = None) -> Any:
        start = time.perf_counter()
        try:
            resp = http.request(method, url, body=json.dumps(body).encode() if body is not None else None,
                                fields=fields, headers={"Content-Type": "application/json"}, retries=False,
                                timeout=urllib3.Timeout(total=60))
        except urllib3.exceptions.HTTPError as exc:
            with self.lock:
                self.errors.append(f"{op}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - start
        with self.lock:
            self.latency[op].append(elapsed)
            if resp.status != 200:
                self.errors.append(f"{op}: HTTP {resp.status} {resp.data[:300]!r}")
                return None
        return json.loads(resp.data) if resp.data else {}


def create_run(tally: Tally, http: urllib3.PoolManager, base: str, experiment_id: str, name: str) -> str:
    answer = tally.call(http, "runs/create", "POST", f"{base}{API}/runs/create",
                        {"experiment_id": experiment_id, "run_name": name, "start_time": int(time.time() * 1000)})
    assert answer is not None, tally.errors
    run_id: str = answer["run"]["info"]["run_id"]
    return run_id


def logger(tally: Tally, base: str, run_id: str, deadline: float, acked: list[int]) -> None:
    """Log batches of POINTS_PER_BATCH consecutive steps, a new param and an overwritten tag each, until the
    deadline; ``acked`` gets the number of each batch the server answered 200 to."""
    http = urllib3.PoolManager(maxsize=1)
    batch = 0
    while time.monotonic() < deadline:
        now = int(time.time() * 1000)
        metrics = [{"key": "loss", "value": 1.0 / (1 + step), "timestamp": now, "step": step}
                   for step in range(batch * POINTS_PER_BATCH, (batch + 1) * POINTS_PER_BATCH)]
        body = {"run_id": run_id, "metrics": metrics, "params": [{"key": f"p{batch}", "value": str(batch)}],
                "tags": [{"key": "last_batch", "value": str(batch)}]}
        if tally.call(http, "runs/log-batch", "POST", f"{base}{API}/runs/log-batch", body) is not None:
            acked.append(batch)
        batch += 1


def searcher(tally: Tally, base: str, experiment_id: str, run_ids: list[str], deadline: float) -> None:
    http = urllib3.PoolManager(maxsize=1)
    i = 0
    while time.monotonic() < deadline:
        tally.call(http, "runs/search", "POST", f"{base}{API}/runs/search",
                   {"experiment_ids": [experiment_id], "filter": "metrics.loss >= 0 and tags.last_batch != 'x'",
                    "order_by": ["metrics.loss DESC"], "max_results": 50})
        run_id = run_ids[i % len(run_ids)]
        tally.call(http, "runs/get", "GET", f"{base}{API}/runs/get", fields={"run_id": run_id})
        tally.call(http, "metrics/get-history", "GET", f"{base}{API}/metrics/get-history",
                   fields={"run_id": run_id, "metric_key": "loss", "max_results": "1000"})
        i += 1


def history_steps(http: urllib3.PoolManager, base: str, run_id: str) -> list[int]:
    """Every step of the run's 'loss' history, walking the pages."""
    steps: list[int] = []
    token: str | None = None
    while True:
        fields = {"run_id": run_id, "metric_key": "loss", "max_results": "25000"}
        if token:
            fields["page_token"] = token
        resp = http.request("GET", f"{base}{API}/metrics/get-history", fields=fields, retries=False)
        assert resp.status == 200, resp.data[:500]
        page = json.loads(resp.data)
        steps += [int(m.get("step", 0)) for m in page.get("metrics", [])]
        token = page.get("next_page_token")
        if not token:
            return steps


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"n={len(ordered):6d}  p50={statistics.median(ordered) * 1000:7.1f} ms  p99={p99 * 1000:7.1f} ms"


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_logging_and_searching(workers: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with proj_server(tmp_path / "store", tmp_path, "--workers", str(workers)) as server:
        tally = Tally()
        http = urllib3.PoolManager()
        created = tally.call(http, "experiments/create", "POST", f"{server.url}{API}/experiments/create",
                             {"name": "load"})
        assert created is not None, tally.errors
        experiment_id = created["experiment_id"]
        run_ids = [create_run(tally, http, server.url, experiment_id, f"load-{i}") for i in range(LOGGERS)]
        acked: dict[str, list[int]] = {run_id: [] for run_id in run_ids}
        deadline = time.monotonic() + DURATION
        threads = [threading.Thread(target=logger, args=(tally, server.url, run_id, deadline, acked[run_id]))
                   for run_id in run_ids]
        threads += [threading.Thread(target=searcher, args=(tally, server.url, experiment_id, run_ids, deadline))
                    for _ in range(SEARCHERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=DURATION + 120)
        assert not any(t.is_alive() for t in threads), "a client thread did not stop"
        assert not tally.errors, f"{len(tally.errors)} failed requests, first: {tally.errors[:5]}"

        for run_id, batches in acked.items():
            assert batches, f"run {run_id} logged nothing in {DURATION}s"
            steps = history_steps(http, server.url, run_id)
            expected = sorted(s for b in batches for s in range(b * POINTS_PER_BATCH, (b + 1) * POINTS_PER_BATCH))
            assert len(steps) == len(set(steps)), f"run {run_id}: {len(steps) - len(set(steps))} duplicated points"
            assert sorted(steps) == expected, f"run {run_id}: {len(expected)} points acknowledged, {len(steps)} stored"
            run = http.request("GET", f"{server.url}{API}/runs/get", fields={"run_id": run_id}).json()["run"]
            params = {p["key"] for p in run["data"].get("params", [])}
            assert params == {f"p{b}" for b in batches}, f"run {run_id}: params {len(params)} != {len(batches)}"
            tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
            assert tags["last_batch"] == str(max(batches))

        total = sum(len(b) for b in acked.values()) * POINTS_PER_BATCH
        with capsys.disabled():
            print(f"\nproj server --workers {workers}: {LOGGERS} loggers + {SEARCHERS} searchers for {DURATION:.0f} s, "
                  f"{total} points stored and counted back")
            for op, values in sorted(tally.latency.items()):
                print(f"  {op:22s} {percentiles(values)}")
