"""The web UI's endpoints (/ajax-api/2.0/proj/...) through a real `proj server` over a store built with the store
API: table pages, sorts, filters, counts, children, groups, CSV, keys, downsampling that keeps a spike, previews
that never read a large file whole and refuse paths out of the run, errors as MLflow's JSON; the record, log and
patch of a real `proj run`; and `proj ui`."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

import pytest

from helpers.cli import Proj, wait_for
from helpers.git_repos import commit, git
from helpers.servers import Server, free_port, proj_server
from proj.tracking.open import open_store
from proj.tracking.records import MetricPoint

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui-api-server")]

RUNS = 30
SPIKE_STEP, LONG = 54321, 100_000
T0 = 1_700_000_000.0
BIG = 50 << 20
API = "/ajax-api/2.0/proj"


def loss(i: int, step: int) -> float:
    return 100.0 - i - step


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("ui-api")
    store = open_store(str(work / "store"), create=True)
    e1, e2 = store.create_experiment("ui-a"), store.create_experiment("ui-b")
    ids = []
    for i in range(RUNS):
        run = store.create_client_run(e1, "ann" if i % 2 else "bob", T0 + i, {}, f"r{i:02d}")
        points = [MetricPoint("loss", loss(i, s), s, T0 + i + s) for s in range(10)]
        if i % 2 == 0:
            points.append(MetricPoint("acc", i / 100, 0, T0 + i))
        store.log_client_batch(run.id, points, [("alpha", ["0.1", "0.2", "0.3"][i % 3]), ("n", str(i))],
                               {"team": "red" if i % 2 else "blue"})
        store.update_run(run.id, status="FINISHED", end_time=T0 + i + 10 + i)  # duration 10 + i seconds
        ids.append(run.id)
    parent = store.create_client_run(e1, "ann", T0 + 100, {}, "parent")
    children = [store.create_client_run(e1, "ann", T0 + 101 + k, {"mlflow.parentRunId": parent.id}, f"child{k}").id
                for k in range(2)]
    long_run = store.create_client_run(e2, "ann", T0, {}, "long")
    points = [MetricPoint("long", 1e9 if s == SPIKE_STEP else math.sin(s / 500), s, T0 + s / 1000) for s in range(LONG)]
    points[10] = MetricPoint("long", math.nan, 10, T0 + 10 / 1000)
    store.log_client_batch(long_run.id, points)
    other = store.create_client_run(e2, "ann", T0, {}, "other")
    store.log_client_batch(other.id, [MetricPoint("long", 1.0, s, T0 + s) for s in range(5)])
    # artifacts of run 0, written where the server keeps a client run's artifacts (its run folder)
    art = store.run_dir(ids[0]) / "artifacts"
    (art / "sub").mkdir(parents=True)
    (art / "notes.txt").write_text("hello\nworld\n")
    (art / "metrics.json").write_text(json.dumps({"a": 1, "b": [1, 2]}))
    (art / "table.csv").write_text("x,y\n" + "".join(f"{n},{n * n}\n" for n in range(500)))
    (art / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (art / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (art / "sub" / "deep.txt").write_text("deep")
    with open(art / "big.log", "wb") as fh:  # 50 MB of text: a preview reads its first bytes only
        line = b"0123456789abcdef" * 63 + b"012345678901234\n"  # 1024 bytes
        fh.write(b"first line\n" + line * (BIG // 1024 - 1) + b"x" * (1024 - 11))
    secret = work / "secret.txt"
    secret.write_text("outside the run")
    os.symlink(secret, art / "link-out.txt")
    store.create_registered_model("ui-model", user="ann")
    store.create_model_version("ui-model", f"runs:/{ids[0]}/model", run_id=ids[0], user="ann")
    store.transition_model_version_stage("ui-model", 1, "Staging", user="bob", reason="looks good")
    store.close()
    with proj_server(work / "store", work) as server:
        yield {"server": server, "e1": e1, "e2": e2, "ids": ids, "parent": parent.id, "children": children,
               "long": long_run.id, "other": other.id, "work": work}


def get(server: Server, path: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        prefix: str = API) -> tuple[int, Any]:
    url = f"{server.url}{prefix}{path}" + (f"?{urlencode(params, doseq=True)}" if params else "")
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            body = resp.read()
            kind = resp.headers.get("content-type", "")
            return resp.status, json.loads(body) if "json" in kind else (body, dict(resp.headers))
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def ok(server: Server, path: str, params: Any = None, prefix: str = API) -> Any:
    status, body = get(server, path, params, prefix)
    assert status == 200, body
    return body


def bad(server: Server, path: str, params: Any, param: str, status: int = 400,
        code: str = "INVALID_PARAMETER_VALUE") -> str:
    got, body = get(server, path, params)
    assert (got, body.get("error_code")) == (status, code), body
    assert param in body["message"], body
    assert "\n" not in body["message"]
    return str(body["message"])


# ---- runs/table ----

def test_first_page_counts_and_columns(data: dict[str, Any]) -> None:
    s = data["server"]
    page = ok(s, "/runs/table", {"experiment_ids": data["e1"], "limit": 5, "columns": [
        "params.alpha", "metrics.loss", "metrics.loss:min", "metrics.loss:max", "tags.team", "metrics.acc",
        "attributes.duration"]})
    assert page["total"] == RUNS + 3 and page["offset"] == 0
    assert page["columns"] == ["params.alpha", "metrics.loss", "metrics.loss:min", "metrics.loss:max", "tags.team",
                               "metrics.acc", "attributes.duration"]
    names = [r["run_name"] for r in page["runs"]]
    assert names == ["child1", "child0", "parent", "r29", "r28"]  # newest first
    r29 = page["runs"][3]
    assert r29["values"] == ["0.3", loss(29, 9), loss(29, 9), loss(29, 0), "red", None, (10 + 29) * 1000]
    assert r29["start_time"] == int((T0 + 29) * 1000) and r29["status"] == "FINISHED" and r29["user"] == "ann"
    assert r29["experiment_id"] == data["e1"] and r29["parent_run_id"] is None and r29["children"] == 0
    assert page["runs"][4]["values"][5] == 0.28
    # the same endpoint under the REST prefix, for scripts
    assert ok(s, "/runs/table", {"experiment_ids": data["e1"], "limit": 5}, prefix="/api/2.0/proj")["total"] == RUNS + 3


def test_paging_and_sorts(data: dict[str, Any]) -> None:
    s, e1 = data["server"], data["e1"]

    def names(order: str, offset: int = 0, limit: int = 4, **extra: Any) -> list[str]:
        page = ok(s, "/runs/table", {"experiment_ids": e1, "order_by": order, "offset": offset, "limit": limit,
                                     "top_level": "true", **extra})
        return [r["run_name"] for r in page["runs"]]

    assert names("metrics.loss DESC") == ["r00", "r01", "r02", "r03"]
    assert names("metrics.loss ASC") == ["r29", "r28", "r27", "r26"]
    assert names("metrics.loss:max DESC", offset=2) == ["r02", "r03", "r04", "r05"]
    assert names("metrics.loss:min ASC") == ["r29", "r28", "r27", "r26"]
    # runs lacking the metric come last either way, in the default order (newest first)
    assert names("metrics.acc DESC", offset=14, limit=3) == ["r00", "parent", "r29"]
    assert names("params.n ASC", limit=3) == ["r00", "r01", "r10"]  # params are strings, as in MLflow
    assert names("params.alpha DESC", limit=4) == ["r29", "r26", "r23", "r20"]
    assert names("tags.team ASC", limit=2) == ["r28", "r26"]
    assert names("attributes.duration DESC", limit=2) == ["r29", "r28"]
    assert names("attributes.start_time ASC", limit=2) == ["r00", "r01"]
    assert names("run_name DESC", limit=2) == ["r29", "r28"]
    assert names("params.alpha ASC", limit=3, order_by=["params.alpha ASC", "metrics.loss ASC"]) == ["r27", "r24", "r21"]
    all_names = []
    for offset in range(0, RUNS + 1, 7):  # pages join up without gaps or repeats
        all_names += names("metrics.loss DESC", offset=offset, limit=7)
    assert all_names == [f"r{i:02d}" for i in range(RUNS)] + ["parent"]


def test_filter_view_and_children(data: dict[str, Any]) -> None:
    s, e1 = data["server"], data["e1"]
    page = ok(s, "/runs/table", {"experiment_ids": e1, "filter": "params.alpha = '0.1' and metrics.loss < 80",
                                 "limit": 100})
    expected = sorted(f"r{i:02d}" for i in range(RUNS) if i % 3 == 0 and loss(i, 9) < 80)
    assert page["total"] == len(expected) == 6 and sorted(r["run_name"] for r in page["runs"]) == expected
    top = ok(s, "/runs/table", {"experiment_ids": e1, "top_level": "true", "limit": 1})
    assert top["total"] == RUNS + 1 and top["runs"][0]["run_name"] == "parent" and top["runs"][0]["children"] == 2
    kids = ok(s, "/runs/table", {"experiment_ids": e1, "parent_run_id": data["parent"]})
    assert kids["total"] == 2 and {r["run_id"] for r in kids["runs"]} == set(data["children"])
    assert all(r["parent_run_id"] == data["parent"] for r in kids["runs"])
    both = ok(s, "/runs/table", {"experiment_ids": f"{data['e1']},{data['e2']}", "limit": 1})
    assert both["total"] == RUNS + 3 + 2
    assert ok(s, "/runs/table", {"experiment_ids": e1, "view": "DELETED_ONLY"})["total"] == 0


def test_keys_groups_summary(data: dict[str, Any]) -> None:
    s, e1 = data["server"], data["e1"]
    keys = ok(s, "/runs/keys", {"experiment_ids": e1})
    assert keys["params"] == ["alpha", "n"] and keys["metrics"] == ["acc", "loss"]
    assert "team" in keys["tags"] and "mlflow.parentRunId" in keys["tags"]
    assert ok(s, "/runs/keys", {"experiment_ids": data["e2"]})["metrics"] == ["long"]
    groups = ok(s, "/runs/groups", {"experiment_ids": e1, "group_by": "params.alpha",
                                    "columns": ["metrics.loss", "metrics.loss:max"]})
    assert groups["group_by"] == "params.alpha"
    assert [g["value"] for g in groups["groups"]] == ["0.1", "0.2", "0.3", None]
    for g in groups["groups"][:3]:
        members = [i for i in range(RUNS) if ["0.1", "0.2", "0.3"][i % 3] == g["value"]]
        latest = [loss(i, 9) for i in members]
        assert g["count"] == len(members) == len(g["run_ids"])
        assert set(g["run_ids"]) == {data["ids"][i] for i in members}
        agg = g["aggregates"]["metrics.loss"]
        assert (agg["min"], agg["max"]) == (min(latest), max(latest))
        assert agg["mean"] == pytest.approx(statistics.mean(latest), rel=1e-12)
        assert agg["std"] == pytest.approx(statistics.pstdev(latest), rel=1e-9)
        assert g["aggregates"]["metrics.loss:max"]["max"] == max(loss(i, 0) for i in members)
    assert groups["groups"][3]["count"] == 3  # parent and children: no alpha
    summary = ok(s, "/experiments/summary", {"experiment_ids": [e1, data["e2"]]})["experiments"]
    assert summary[0] == {"experiment_id": e1, "runs": RUNS + 3, "running": 3, "last_run_time": int((T0 + 102) * 1000)}
    assert summary[1]["runs"] == 2


def test_export_csv(data: dict[str, Any]) -> None:
    status, (body, headers) = get(data["server"], "/runs/export.csv", {
        "experiment_ids": data["e1"], "columns": ["params.alpha", "metrics.loss"], "order_by": "metrics.loss DESC"})
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert "attachment" in headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["run_id", "run_name", "experiment_id", "status", "start_time", "end_time", "params.alpha",
                       "metrics.loss"]
    assert len(rows) == 1 + RUNS + 3
    assert rows[1][:2] == [data["ids"][0], "r00"] and rows[1][6:] == ["0.1", "91.0"]
    assert rows[1][4] == "2023-11-14T22:13:20.000Z"


# ---- metrics/sampled ----

def test_sampling_keeps_spike_first_and_last(data: dict[str, Any]) -> None:
    out = ok(data["server"], "/metrics/sampled", {"run_ids": [data["long"], data["other"]], "metric_key": "long",
                                                  "points": 100})
    long, other = out["series"]
    assert out["metric_key"] == "long" and out["x"] == "step"
    assert long["total"] == LONG and long["sampled"] is True and len(long["x"]) <= 100
    assert max(long["y"]) == 1e9 and long["x"][long["y"].index(1e9)] == SPIKE_STEP
    assert long["x"][0] == 0 and long["x"][-1] == LONG - 1 and long["x"] == sorted(long["x"])
    assert min(y for y in long["y"] if isinstance(y, float)) < -0.99  # the troughs too
    assert other == {"run_id": data["other"], "total": 5, "sampled": False, "x": [0, 1, 2, 3, 4], "y": [1.0] * 5}


def test_sampling_zoom_is_finer_and_nan_is_a_string(data: dict[str, Any]) -> None:
    s = data["server"]
    wide = ok(s, "/metrics/sampled", {"run_ids": data["long"], "metric_key": "long", "points": 100})["series"][0]
    zoom = ok(s, "/metrics/sampled", {"run_ids": data["long"], "metric_key": "long", "points": 100,
                                      "x_min": 50000, "x_max": 60000})["series"][0]
    assert zoom["total"] == 10001 and zoom["x"][0] == 50000 and zoom["x"][-1] == 60000
    assert 1e9 in zoom["y"] and len(zoom["x"]) > 50
    in_window = [x for x in wide["x"] if 50000 <= x <= 60000]
    assert len(zoom["x"]) > 3 * len(in_window)  # finer data for the window
    head = ok(s, "/metrics/sampled", {"run_ids": data["long"], "metric_key": "long", "x_max": 20})["series"][0]
    assert head["sampled"] is False and head["y"][10] == "NaN" and head["x"] == list(range(21))
    wall = ok(s, "/metrics/sampled", {"run_ids": data["long"], "metric_key": "long", "x": "wall", "points": 100})
    rel = ok(s, "/metrics/sampled", {"run_ids": data["long"], "metric_key": "long", "x": "relative", "points": 100,
                                     "x_min": 54000, "x_max": 55000})["series"][0]
    assert wall["series"][0]["x"][0] == int(T0 * 1000) and 1e9 in wall["series"][0]["y"]
    assert rel["x"][0] == 54000 and rel["x"][-1] == 55000 and 1e9 in rel["y"]


# ---- artifacts/preview ----

def preview(data: dict[str, Any], path: str, **extra: Any) -> tuple[int, Any]:
    return get(data["server"], "/artifacts/preview", {"run_id": data["ids"][0], "path": path, **extra})


def test_preview_kinds(data: dict[str, Any]) -> None:
    _, root = preview(data, "")
    names = {e["path"]: e for e in root["entries"]}
    assert root["kind"] == "dir" and names["sub"]["is_dir"] and names["notes.txt"]["file_size"] == 12
    assert "link-out.txt" not in names  # a link out of the run is no artifact of it
    assert preview(data, "sub")[1]["entries"] == [{"path": "sub/deep.txt", "is_dir": False, "file_size": 4}]
    text = preview(data, "notes.txt")[1]
    assert (text["kind"], text["text"], text["truncated"], text["size"]) == ("text", "hello\nworld\n", False, 12)
    assert json.loads(preview(data, "metrics.json")[1]["text"]) == {"a": 1, "b": [1, 2]}
    table = preview(data, "table.csv")[1]
    assert table["kind"] == "csv" and table["rows"][:3] == [["x", "y"], ["0", "0"], ["1", "1"]]
    assert len(table["rows"]) == 200
    cut = preview(data, "table.csv", limit=20)[1]
    assert cut["truncated"] and cut["rows"] == [["x", "y"], ["0", "0"], ["1", "1"], ["2", "4"], ["3", "9"]]
    image = preview(data, "plot.png")[1]
    assert image["kind"] == "image" and "text" not in image
    assert image["url"] == f"/get-artifact?run_id={data['ids'][0]}&path=plot.png"
    with urllib.request.urlopen(data["server"].url + image["url"]) as resp:
        assert resp.read().startswith(b"\x89PNG")
    assert preview(data, "blob.bin")[1]["kind"] == "binary"


def test_preview_of_a_large_file_reads_the_limit(data: dict[str, Any]) -> None:
    status, big = preview(data, "big.log", limit=1000)
    assert status == 200 and big["size"] == BIG and big["truncated"] is True
    assert big["text"].startswith("first line\n") and len(big["text"].encode()) == 1000
    _, default = preview(data, "big.log")
    assert len(default["text"].encode()) == 65536


@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/passwd", "sub/../../x", "%2e%2e/x", "link-out.txt",
                                  "C:/x", "file:///etc/passwd"])
def test_preview_refuses_paths_out_of_the_run(data: dict[str, Any], path: str) -> None:
    status, body = preview(data, path)
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert "outside the run" not in json.dumps(body) and str(data["work"]) not in body["message"]


# ---- errors ----

@pytest.mark.parametrize(("path", "params", "param"), [
    ("/runs/table", {"limit": 5000}, "limit"),
    ("/runs/table", {"offset": -1}, "offset"),
    ("/runs/table", {"limit": "many"}, "limit"),
    ("/runs/table", {"filter": "metrics.loss <"}, "filter"),
    ("/runs/table", {"filter": "params.a = 1"}, "filter"),
    ("/runs/table", {"order_by": "metrics.loss SIDEWAYS"}, "order_by"),
    ("/runs/table", {"order_by": "nonsense.loss"}, "order_by"),
    ("/runs/table", {"columns": "params.a:min"}, "columns"),
    ("/runs/table", {"view": "SOME"}, "view"),
    ("/runs/table", {"top_level": "maybe"}, "top_level"),
    ("/runs/table", {"experiment_ids": "x"}, "experiment"),
    ("/runs/groups", {"group_by": "metrics.loss"}, "group_by"),
    ("/runs/groups", {}, "group_by"),
    ("/metrics/sampled", {"metric_key": "loss"}, "run_ids"),
    ("/metrics/sampled", {"run_ids": "abc", "metric_key": "loss", "x": "time"}, "'x'"),
    ("/metrics/sampled", {"run_ids": "abc", "metric_key": "loss", "points": 1}, "points"),
    ("/metrics/sampled", {"run_ids": "abc", "metric_key": "loss", "x_min": "soon"}, "x_min"),
    ("/metrics/sampled", {"run_ids": ",".join(["a"] * 101), "metric_key": "loss"}, "run_ids"),
    ("/runs/record", {}, "run_id"),
    ("/runs/log", {"run_id": "abc", "stream": "stdin"}, "stream"),
    ("/runs/compare", {"run_ids": "abc"}, "run_ids"),
    ("/registry/history", {}, "name"),
    ("/registry/lineage", {"name": "ui-model"}, "version"),
])
def test_bad_input_is_one_json_line(data: dict[str, Any], path: str, params: dict[str, Any], param: str) -> None:
    bad(data["server"], path, params, param)


@pytest.mark.parametrize("path", ["/runs/record", "/runs/log", "/runs/patch", "/artifacts/preview"])
def test_unknown_run_is_404(data: dict[str, Any], path: str) -> None:
    bad(data["server"], path, {"run_id": "0" * 32, "path": "x"}, "0" * 32, 404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_runs_in_sampled_and_compare_are_404(data: dict[str, Any]) -> None:
    bad(data["server"], "/metrics/sampled", {"run_ids": "0" * 32, "metric_key": "x"}, "0" * 32, 404,
        "RESOURCE_DOES_NOT_EXIST")
    bad(data["server"], "/runs/compare", {"run_ids": f"{data['ids'][0]},{'0' * 32}"}, "0" * 32, 404,
        "RESOURCE_DOES_NOT_EXIST")
    bad(data["server"], "/registry/history", {"name": "nope"}, "nope", 404, "RESOURCE_DOES_NOT_EXIST")


# ---- compare, client-only record, registry ----

def test_compare_and_client_record(data: dict[str, Any]) -> None:
    s, ids = data["server"], data["ids"]
    out = ok(s, "/runs/compare", {"run_ids": [ids[0], ids[1], ids[3]]})
    assert [r["run_name"] for r in out["runs"]] == ["r00", "r01", "r03"]
    params = {p["key"]: p for p in out["params"]}
    assert params["alpha"] == {"key": "alpha", "values": ["0.1", "0.2", "0.1"], "differs": True}
    metrics = {m["key"]: m for m in out["metrics"]}
    assert metrics["acc"]["values"] == [0.0, None, None] and metrics["loss"]["differs"]
    assert {t["key"]: t["differs"] for t in out["tags"]}["team"] is True
    assert [(e["name"], e["differs"]) for e in out["env"]] == [("backend", False), ("lock_digest", False),
                                                               ("python", False)]
    record = ok(s, "/runs/record", {"run_id": data["parent"]})
    assert record["proj"] is False and record["command"] is None and record["logs"] == {}
    assert [c["run_name"] for c in record["children"]] == ["child0", "child1"]  # MLflow's nested runs (a tag)
    assert record["params"] == [] and record["reproductions"] == [] and record["reproduces"] is None


def test_registry_history_and_lineage(data: dict[str, Any]) -> None:
    s = data["server"]
    events = ok(s, "/registry/history", {"name": "ui-model"})["events"]
    assert [e["action"] for e in events] == ["model_created", "version_created", "stage"]
    stage = events[-1]
    assert (stage["user"], stage["version"], stage["old"], stage["new"], stage["reason"]) == \
        ("bob", 1, "None", "Staging", "looks good")
    assert ok(s, "/registry/history", {"name": "ui-model", "version": 1})["events"][0]["action"] == "version_created"
    lineage = ok(s, "/registry/lineage", {"name": "ui-model", "version": 1})
    assert lineage["version"]["version"] == 1 and lineage["run"]["id"] == data["ids"][0]


# ---- a real `proj run`: record, log, patch ----

MLPROJECT = """\
name: uiapi
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      lines: {type: int, default: 3000}
    command: "python train.py {alpha} {lines}"
"""
TRAIN = """\
import sys
alpha, lines = float(sys.argv[1]), int(sys.argv[2])
for n in range(lines):
    print(f"line {n:05d} é", flush=False)
print("to stderr", file=sys.stderr)
"""


def test_record_log_and_patch_of_a_proj_run(proj: Proj, make_project: Any, tmp_path: Path) -> None:
    root = make_project({"MLproject": MLPROJECT, "train.py": TRAIN})
    git(root, "init", "-q", "-b", "main")
    commit(root, {"extra.txt": "committed\n"}, "one")
    (root / "extra.txt").write_text("committed\nand changed\n")
    out = proj("run", str(root), "--env-manager", "local", "-P", "alpha=0.25")
    assert out.code == 0, out
    run_id = proj.runs()[0]["id"]
    with proj_server(tmp_path / "store", tmp_path) as server:
        record = ok(server, "/runs/record", {"run_id": run_id})
        assert record["proj"] is True and record["entry_point"] == "main"
        assert record["command"] == "python train.py 0.25 3000"
        params = {p["key"]: p for p in record["params"]}
        assert params["alpha"]["typed"] == 0.25 and params["alpha"]["type"] == "float"
        assert params["alpha"]["source"] == "user" and params["lines"]["typed"] == 3000
        assert params["lines"]["source"] == "default"
        assert record["env"]["backend"] == "local" and record["env"]["lock_digest"]
        assert "--env-manager" in record["env"]["reason"] and record["env"]["python"].count(".") == 2
        assert record["exit_code"] == 0 and record["source"]["dirty"] is True and record["source"]["commit"]
        stdout_size = len("".join(f"line {n:05d} é\n" for n in range(3000)).encode())
        assert record["logs"]["stdout"] == stdout_size and record["logs"]["stderr"] == len(b"to stderr\n")
        assert record["source"]["patch_size"] > 0
        patch = ok(server, "/runs/patch", {"run_id": run_id})
        assert "+and changed" in patch["text"] and patch["truncated"] is False and patch["size"] == record["source"]["patch_size"]
        assert ok(server, "/runs/patch", {"run_id": run_id, "limit": 10})["truncated"] is True
        first = ok(server, "/runs/log", {"run_id": run_id, "stream": "stdout", "limit": 100})
        assert first["offset"] == 0 and first["size"] == stdout_size and first["running"] is False
        assert first["text"].startswith("line 00000 é\n") and first["next_offset"] <= 100
        assert "\ufffd" not in first["text"]  # a character cut by the limit waits for the next read
        again = ok(server, "/runs/log", {"run_id": run_id, "stream": "stdout", "offset": first["next_offset"],
                                         "limit": 100})
        assert (first["text"] + again["text"]).startswith("line 00000 é\nline 00001 é\nline 00002")
        tail = ok(server, "/runs/log", {"run_id": run_id, "stream": "stdout", "offset": -14})
        assert tail["text"] == "line 02999 é\n" or tail["text"].endswith("line 02999 é\n")
        assert tail["next_offset"] == stdout_size
        assert ok(server, "/runs/log", {"run_id": run_id, "stream": "stderr"})["text"] == "to stderr\n"
        assert ok(server, "/runs/log", {"run_id": run_id, "stream": "env-build"})["size"] >= 0


# ---- proj ui ----

def test_proj_ui_serves_page_and_api(proj_env: dict[str, str], tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "uistore"), create=True)
    exp = store.create_experiment("ui")
    store.create_client_run(exp, "ann", T0, {}, "only")
    store.close()
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "proj", "ui", "--tracking-uri", str(tmp_path / "uistore"),
                                "--port", str(port), "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=proj_env, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"proj UI: http://127.0.0.1:{port}/"
        url = line.split(": ", 1)[1].strip()

        def page() -> bytes | None:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return bytes(resp.read())
            except OSError:
                return None

        assert b"<main" in wait_for(page, 60, "the UI page")
        server = Server(url.rstrip("/"), process, tmp_path / "none.log")  # type: ignore[arg-type]
        table = ok(server, "/runs/table", {"experiment_ids": exp})
        assert table["total"] == 1 and table["runs"][0]["run_name"] == "only"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_proj_ui_refuses_a_tracking_server(proj: Proj) -> None:
    out = proj("ui", "--tracking-uri", "http://127.0.0.1:9/", "--no-browser")
    assert out.code != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "tracking server" in lines[0] and "http://127.0.0.1:9/" in lines[0], out
    assert "Traceback" not in out.stderr


def test_proj_ui_prints_no_url_for_a_store_that_does_not_open(proj: Proj, tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "proj.db").write_bytes(b"not a database at all" * 100)
    out = proj("ui", "--tracking-uri", str(tmp_path / "bad"), "--port", str(free_port()), "--no-browser")
    assert out.code != 0 and "proj UI:" not in out.stdout, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("proj: error:") and "proj.db" in lines[0], out


def test_proj_ui_help_loads_no_server_framework() -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "proj", "ui", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--no-browser" in out.stdout, out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in out.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "click" in imported and not imported & {"starlette", "uvicorn", "orjson", "anyio", "webbrowser"}
