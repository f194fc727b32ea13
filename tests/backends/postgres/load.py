"""Plain-HTTP load on a tracking server for the fault tests: writers (runs, log-batch of distinct (key, step)
points, params, tags), readers (search, get-run, metric history), a tally of what was acknowledged and answered."""
from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

API = "/api/2.0/mlflow"
KEYS = ("loss", "acc")
STEPS = 25  # points per key in one batch: 50 metrics, one param and one tag per log-batch
BATCHES = 4  # log-batch requests per run


@dataclass
class Tally:
    """What every client saw; a point is acknowledged when its log-batch was answered 200."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    unavailable: int = 0  # 503 answers (each with its Retry-After)
    no_retry_after: int = 0
    errors: list[str] = field(default_factory=list)  # any other failure answer: there must be none
    points: Counter[str] = field(default_factory=Counter)  # run id -> acknowledged points
    finished: set[str] = field(default_factory=set)
    reads: int = 0

    def answered(self, status: int, retry_after: str | None, what: str, body: bytes) -> None:
        with self.lock:
            self.requests += 1
            if status == 503:
                self.unavailable += 1
                self.no_retry_after += retry_after is None
            elif status != 200:
                self.errors.append(f"{what}: {status} {body[:300]!r}")


class Client:
    """One keep-alive HTTP connection (one per thread, as a user's process has its own)."""

    def __init__(self, url: str, tally: Tally) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.tally = tally
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, deadline: float = 0) -> Any:
        """The answer's JSON; a 503 is retried after its Retry-After, as MLflow's client does, until ``deadline``
        (then None); any other failure is recorded and None returned."""
        while True:
            status, retry_after, raw = self._send(method, path, body)
            self.tally.answered(status, retry_after, f"{method} {path}", raw)
            if status == 200:
                return orjson.loads(raw)
            if status != 503 or time.monotonic() > deadline:
                return None
            time.sleep(float(retry_after or 1))

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, str | None, bytes]:
        if method == "GET":
            url, payload, headers = f"{API}{path}?{urlencode(body or {}, doseq=True)}", None, {}
        else:
            url, payload, headers = API + path, orjson.dumps(body or {}), {"Content-Type": "application/json"}
        try:
            self.conn.request(method, url, body=payload, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.getheader("Retry-After"), response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # the server side of a keep-alive closed between requests: once more on a new one
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self.conn.request(method, url, body=payload, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.getheader("Retry-After"), response.read()


def batch(number: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    metrics = [{"key": key, "value": float(number * STEPS + i), "timestamp": now, "step": number * STEPS + i}
               for key in KEYS for i in range(STEPS)]
    return {"metrics": metrics, "params": [{"key": f"p{number}", "value": str(number)}],
            "tags": [{"key": f"t{number}", "value": "x" * 20}]}


def writer(url: str, experiment_id: str, until: float, tally: Tally, grace: float) -> None:
    """Runs until ``until``, each with BATCHES log-batches, then FINISHED; a run begun finishes (retrying 503s
    up to ``grace`` seconds after the end)."""
    client = Client(url, tally)
    while time.monotonic() < until:
        deadline = until + grace
        made = client.call("POST", "/runs/create", {"experiment_id": experiment_id,
                                                     "start_time": int(time.time() * 1000)}, deadline)
        if made is None:
            continue
        run_id = made["run"]["info"]["run_id"]
        for number in range(BATCHES):
            body = {"run_id": run_id, **batch(number)}
            if client.call("POST", "/runs/log-batch", body, deadline) is not None:
                with tally.lock:
                    tally.points[run_id] += len(body["metrics"])
        if client.call("POST", "/runs/update", {"run_id": run_id, "status": "FINISHED",
                                                "end_time": int(time.time() * 1000)}, deadline) is not None:
            with tally.lock:
                tally.finished.add(run_id)


def reader(url: str, experiment_id: str, until: float, tally: Tally) -> None:
    client = Client(url, tally)
    rng = random.Random()
    while time.monotonic() < until:
        found = client.call("POST", "/runs/search", {"experiment_ids": [experiment_id], "max_results": 50,
                                                     "order_by": ["attributes.start_time DESC"]}, until)
        runs = (found or {}).get("runs", [])
        if runs:
            run_id = rng.choice(runs)["info"]["run_id"]
            client.call("GET", "/runs/get", {"run_id": run_id}, until)
            client.call("GET", "/metrics/get-history", {"run_id": run_id, "metric_key": rng.choice(KEYS)}, until)
        with tally.lock:
            tally.reads += 1


def load(url: str, experiment_id: str, seconds: float, writers: int = 32, readers: int = 8,
         grace: float = 60) -> tuple[Tally, list[threading.Thread]]:
    """Start the clients; the caller joins the threads (and may break things meanwhile)."""
    tally = Tally()
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=writer, args=(url, experiment_id, until, tally, grace), daemon=True)
               for _ in range(writers)]
    threads += [threading.Thread(target=reader, args=(url, experiment_id, until, tally), daemon=True)
                for _ in range(readers)]
    for thread in threads:
        thread.start()
    return tally, threads
