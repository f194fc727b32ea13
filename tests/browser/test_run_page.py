"""The run page in a real browser over a real store: a real `proj run` of a small git project with an uncommitted
change (typed params, metrics over steps, text/JSON/CSV/PNG/binary artifacts, a 30 MB file, a model with a
signature), its `proj reproduce`, a client-only run with a dataset, nested child runs, and a `proj run` whose log
grows while the page is open."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser.conftest import serve
from helpers.browser import new_page, readme_screenshot, screenshot, wait_until
from helpers.cli import Proj, require
from helpers.git_repos import git
from helpers.servers import Server
from proj.tracking.open import open_store
from proj.tracking.records import ChildRun, DatasetRecord, MetricPoint, RunInput

# one worker builds the store (two proj runs, a reproduction, about 100 MB of artifacts) and serves it for every test here
pytestmark = [pytest.mark.git, pytest.mark.slow, pytest.mark.xdist_group("run-page")]

BIG_MB = 30
STEPS = 40
MLPROJECT = """\
name: runpage
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      epochs: {type: int, default: 40}
      data: {type: path, default: data.csv}
    command: "python train.py --alpha {alpha} --epochs {epochs} --data {data}"
  tick:
    parameters:
      gate: string
    command: "python tick.py {gate}"
  fail:
    command: "python fail.py"
"""
FAIL = "import sys\nprint('about to fail', file=sys.stderr)\nsys.exit(3)\n"
PREDICTOR = """\
class Scaler:
    def __init__(self, alpha):
        self.alpha = alpha

    def predict(self, rows):
        return [self.alpha * r for r in rows]
"""
TRAIN = """\
import argparse, json, os, struct, sys, zlib
import proj_client
from predictor import Scaler

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float)
parser.add_argument("--epochs", type=int)
parser.add_argument("--data")
args = parser.parse_args()
print("FIRST LINE OF THE LOG")
for i in range(1500):  # about 90 KB: more than the page's first 64 KiB
    print(f"line {i:05d} " + "x" * 50)
for step in range(args.epochs):
    proj_client.log_metric("loss", args.alpha / (step + 1), step=step)
    proj_client.log_metric("accuracy", step / args.epochs, step=step)
proj_client.set_tag("team", "vision")
print("a warning on stderr", file=sys.stderr)
out = os.environ["PROJ_ARTIFACT_DIR"]
with open(os.path.join(out, "notes.txt"), "w") as fh:
    fh.write("hello from the notes file\\nsecond line\\n")
with open(os.path.join(out, "summary.json"), "w") as fh:
    json.dump({"alpha": args.alpha, "nested": {"epochs": args.epochs, "ok": True}}, fh, separators=(",", ":"))
with open(os.path.join(out, "table.csv"), "w") as fh:
    fh.write("epoch,loss\\n" + "".join(f"{s},{args.alpha / (s + 1):.4f}\\n" for s in range(5)))
os.makedirs(os.path.join(out, "notes dir"))
os.makedirs(os.path.join(out, "many"))
for n in range(620):  # more than the tree draws at once
    with open(os.path.join(out, "many", f"part-{n:04d}.txt"), "w") as fh:
        fh.write(f"part {n}\\n")
with open(os.path.join(out, "notes dir", "\u00fcn\u00efcode name's (1).txt"), "w", encoding="utf-8") as fh:
    fh.write("caf\u00e9 \u2014 an odd name\\n")
with open(os.path.join(out, "weights.bin"), "wb") as fh:
    fh.write(bytes(range(256)) * 16)

def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

w, h = 64, 32
raw = b"".join(b"\\x00" + b"".join(bytes((x * 4, y * 8, 160)) for x in range(w)) for y in range(h))
with open(os.path.join(out, "plot.png"), "wb") as fh:
    fh.write(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
             + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
with open(os.path.join(out, "huge.png"), "wb") as fh:  # over the 20 MiB an <img> may fetch
    fh.write(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(22 * 1000 * 1000))
line = "".join(f"big line {i:08d} of the thirty megabyte file\\n" for i in range(1000))
with open(os.path.join(out, "big.txt"), "w") as fh:
    while fh.tell() < BIG_MB * 1000 * 1000:
        fh.write(line)
signature = {"inputs": json.dumps([{"type": "double", "name": "x"}, {"type": "long", "name": "n"}]),
             "outputs": json.dumps([{"type": "double", "name": "y"}])}
proj_client.save_model(Scaler(args.alpha), flavor="pickle", signature=signature)
print("training done")
""".replace("BIG_MB", str(BIG_MB))
TICK = """\
import os, sys, time
import proj_client
for n in range(80):  # more than the log view's height: the tail has to scroll to follow
    print(f"warm-up line {n}")
i = 0
while not os.path.exists(sys.argv[1]) and i < 600:  # until the test opens the gate (at most two minutes)
    print(f"tick {i}", flush=True)
    proj_client.log_metric("ticks", i, step=i)
    i += 1
    time.sleep(0.2)
print("ticking done", flush=True)
"""
EDITED = "# an uncommitted edit\n"


@dataclass
class World:
    proj: Proj
    project: Path
    store: Path
    main: dict[str, Any]
    repro: dict[str, Any]
    failed: dict[str, Any]
    client_id: str
    client_child_id: str
    child_id: str


def _env(store: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROJ_", "MLFLOW_"))}
    env.update(PROJ_CACHE_DIR=str(cache), PROJ_TRACKING_URI=str(store))
    return env


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> World:
    require(shutil.which("git") is not None, "git is not installed")
    base = tmp_path_factory.mktemp("run-page")
    store, project = base / "store", base / "project"
    project.mkdir()
    for name, text in {"MLproject": MLPROJECT, "predictor.py": PREDICTOR, "train.py": TRAIN, "tick.py": TICK, "fail.py": FAIL,
                       "data.csv": "a,b\n1,2\n", "queries.sql": "-- old comment\nSELECT 1;\n"}.items():
        (project / name).write_text(text)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "first")
    git(project, "remote", "add", "origin", "https://ci:s3cret-token@git.example.com/team/scaler.git")
    # the uncommitted change recorded as the run's patch: one line removed, one added
    (project / "predictor.py").write_text(PREDICTOR.replace("class Scaler:\n", "class Scaler:  # scales\n") + EDITED)
    # lines that look like a diff's file headers inside a hunk ("--- ", "+++ "): still a removed and an added line
    (project / "queries.sql").write_text("++ new line\nSELECT 1;\n")
    proj = Proj(base, _env(store, shared_cache))
    out = proj("run", str(project), "--env-manager", "local", "-P", "alpha=0.25", "--run-name", "scaler-alpha-0.25",
               "--experiment-name", "scaler")
    assert out.code == 0, out
    main = proj.show(proj.runs()[0]["id"])
    again = proj("reproduce", main["id"])
    assert again.code in (0, 1), again  # 1: the verdict is "differs", still a verdict to show
    repro = proj.show(proj.runs()[0]["id"])
    assert repro["reproduces"] == main["id"], repro
    assert proj("run", str(project), "-e", "fail", "--env-manager", "local").code == 3
    failed = proj.show(proj.runs()[0]["id"])

    s = open_store(str(store))
    try:
        now = time.time()
        client = s.create_client_run("0", "alice", now - 5, {"team": "nlp"}, "client-only-run")
        s.log_client_batch(client.id, metrics=[MetricPoint("rmse", 1.0 / (i + 1), i, now - 5 + i) for i in range(3)],
                           params=[("lr", "0.01"), ("layers", "4")])
        s.log_inputs(client.id, [RunInput(DatasetRecord("train-set", "d1g35t", "local", "/data/train.csv"),
                                          {"mlflow.data.context": "training"})])
        s.update_run(client.id, status="FINISHED", end_time=now)
        kid = s.create_client_run("0", "alice", now - 4, {"mlflow.parentRunId": client.id}, "client-child")
        s.update_run(kid.id, status="FINISHED", end_time=now - 1)
        child = s.record_child_run(ChildRun(main["id"], "f" * 32, "nested-eval", "FINISHED", now - 3, now - 2))
    finally:
        s.close()
    return World(proj, project, store, main, repro, failed, client.id, kid.id, child.id)


@pytest.fixture(scope="module")
def ui_server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(world.store, tmp_path_factory.mktemp("run-page-logs")) as server:
        yield server


def open_run(page: Any, run_id: str, **params: str) -> None:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    page.goto(f"/#/runs/{run_id}" + (f"?{query}" if query else ""))
    page.wait_for_selector(".run-head h1")


def tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=re.compile(f"^{name}")).click()
    page.wait_for_selector(f".run-panel[data-tab='{name.lower()}']")


def rows(page: Any, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(selector, "trs => trs.map(tr => [...tr.cells].map(td => td.innerText.trim()))")


def test_overview_shows_the_command_reproductions_and_children(page: Any, world: World) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_run(page, world.main["id"])
    head = page.inner_text(".run-head")
    assert page.inner_text(".run-head h1 .run-name") == "scaler-alpha-0.25"
    assert "scaler" in page.inner_text(".run-head .crumbs")
    assert world.main["id"] in head and "FINISHED" in head and "recorded by proj run" in head
    assert page.inner_text("pre.command") == world.main["command"]
    params = {r[0]: r[1:] for r in rows(page, "table.params-summary tr")}
    assert params["alpha"] == ["0.25", "float"] and params["epochs"] == ["40", "int"]
    assert [r[0] for r in rows(page, "table.metrics-summary tr")] == ["accuracy", "loss"]
    page.wait_for_selector("table.child-runs")
    readme_screenshot(page, "run-page")  # the README's picture: 1400x900, light theme
    page.get_by_role("button", name="Copy the command to the clipboard").click()
    page.wait_for_function("document.querySelector('button.copy').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == world.main["command"]
    verdict = world.repro["tags"]["proj.reproduce.verdict"]
    [repro] = rows(page, "table.reproductions tbody tr")
    assert repro[0] == world.repro["id"][:12] and repro[1] == verdict
    assert page.get_attribute("table.reproductions a", "href") == f"#/runs/{world.repro['id']}"
    children = rows(page, "table.child-runs tbody tr")
    assert children == [["nested-eval", "FINISHED"]]
    assert page.errors == []


def test_params_raw_and_typed_with_their_source(page: Any, world: World) -> None:
    open_run(page, world.main["id"], tab="params")
    table = {r[0]: r[1:] for r in rows(page, "table.params tbody tr")}
    assert table["alpha"] == ["0.25", "0.25", "float", "user"]
    assert table["epochs"] == ["40", "40", "int", "default"]
    raw, typed, kind, source = table["data"]
    assert (raw, kind, source) == ("data.csv", "path", "default")
    assert typed == str(world.project / "data.csv")
    assert page.errors == []


def test_metrics_table_and_a_metric_chart(page: Any, world: World) -> None:
    open_run(page, world.main["id"], tab="metrics")
    table = {r[0]: r[1:3] for r in rows(page, "table.metrics tbody tr")}
    assert table == {"accuracy": [str(round((STEPS - 1) / STEPS, 6)), str(STEPS - 1)],
                     "loss": [str(round(0.25 / STEPS, 6)), str(STEPS - 1)]}
    page.get_by_role("button", name="Chart loss").click()
    chart = page.wait_for_selector(".metric-chart[data-ready='1']")
    assert chart.get_attribute("data-points") == str(STEPS)
    assert "metric=loss" in page.url
    page.reload()  # the chosen metric is in the URL
    page.wait_for_selector(".metric-chart[data-key='loss'][data-ready='1']")
    assert page.errors == []


def test_tags_with_system_tags_collapsed(page: Any, world: World) -> None:
    open_run(page, world.main["id"], tab="tags")
    assert rows(page, "table.user-tags tbody tr") == [["team", "vision"]]
    details = page.locator("details.system-tags")
    assert details.get_attribute("open") is None and not page.locator("table.system").is_visible()
    details.locator("summary").click()
    system = {r[0]: r[1] for r in rows(page, "table.system tbody tr")}
    assert system["mlflow.source.git.commit"] == world.main["source"]["commit"]
    assert page.errors == []


def test_source_with_the_dirty_patch_as_a_highlighted_diff(page: Any, world: World) -> None:
    open_run(page, world.main["id"], tab="source")
    facts = page.inner_text(".run-panel dl.kv")
    assert world.main["source"]["commit"] in facts and "main" in facts and "yes" in facts
    assert "git.example.com/team/scaler.git" in facts and "s3cret" not in page.content()  # credentials never shown
    page.wait_for_selector("table.patch-diff")
    added = page.eval_on_selector_all("tr.diff-add td.code", "tds => tds.map(td => td.innerText)")
    removed = page.eval_on_selector_all("tr.diff-del td.code", "tds => tds.map(td => td.innerText)")
    assert added == ["+class Scaler:  # scales", "+" + EDITED.strip(), "+++ new line"]
    assert removed == ["-class Scaler:", "--- old comment"]
    headers = page.eval_on_selector_all("tr.diff-file td.code", "tds => tds.map(td => td.innerText)")
    assert headers[0] == "diff --git a/predictor.py b/predictor.py" and "+++ b/queries.sql" in headers
    assert page.inner_text(".diff-summary").startswith("2 files changed, +3 -2")
    colours = page.evaluate("""() => {
        const css = getComputedStyle(document.documentElement);
        const probe = (v) => { const d = document.createElement('div'); d.style.background = css.getPropertyValue(v);
                               document.body.append(d); const c = getComputedStyle(d).backgroundColor; d.remove(); return c; };
        const bg = (sel) => getComputedStyle(document.querySelector(sel)).backgroundColor;
        return {add: bg('tr.diff-add td.code'), del: bg('tr.diff-del td.code'), ctx: bg('tr.diff-ctx td.code'),
                addVar: probe('--add-bg'), delVar: probe('--del-bg')};
    }""")
    assert colours["add"] == colours["addVar"] and colours["del"] == colours["delVar"]
    assert colours["add"] != colours["ctx"] and colours["del"] != colours["ctx"]
    assert colours["ctx"] == "rgba(0, 0, 0, 0)"  # context lines are not highlighted
    assert page.errors == []


def test_environment_with_a_searchable_package_table(page: Any, world: World) -> None:
    open_run(page, world.main["id"], tab="environment")
    facts = page.inner_text(".run-panel dl.kv")
    env = world.main["env"]
    assert "local" in facts and env["choice"] in facts and env["lock_sha256"] in facts and env["key"] in facts
    all_rows = rows(page, "table.packages tbody tr")
    assert len(all_rows) > 5 and ["pytest", pytest.__version__] in [r[:2] for r in all_rows]
    page.fill("input.pkg-search", "pytest")
    wait_until(lambda: len(rows(page, "table.packages tbody tr")) < len(all_rows), what="the package filter")
    narrowed = rows(page, "table.packages tbody tr")
    assert narrowed and all("pytest" in r[0].lower() for r in narrowed)
    assert "pkg=pytest" in page.url
    assert page.errors == []


def test_logs_show_the_end_first_and_load_earlier(page: Any, world: World) -> None:
    open_run(page, world.main["id"], tab="logs")
    log = page.locator(".log-view pre.log")
    wait_until(lambda: "training done" in log.inner_text(), what="the end of stdout")
    assert "FIRST LINE OF THE LOG" not in log.inner_text()
    assert page.get_attribute(".log-view", "data-live") == "false"
    page.get_by_role("button", name="Load earlier").click()
    wait_until(lambda: "FIRST LINE OF THE LOG" in log.inner_text(), what="the earlier part")
    text = log.inner_text()
    assert text.count("line 00000 ") == 1 and text.count("line 01499 ") == 1  # nothing twice, nothing lost
    page.get_by_role("button", name=re.compile("^stderr")).click()
    wait_until(lambda: "a warning on stderr" in log.inner_text(), what="stderr")
    assert "stream=stderr" in page.url
    assert page.errors == []


def preview_of(page: Any, path: str) -> Any:
    page.locator(f"button.art-file[data-path='{path}']").click()
    return page.wait_for_selector(f".art-preview h3:text-is('{path}')")


def test_artifacts_browser_previews_each_kind(page: Any, world: World) -> None:
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "get-artifact" in r.url else None)
    open_run(page, world.main["id"], tab="artifacts")
    page.wait_for_selector("button.art-file")
    preview_of(page, "notes.txt")
    assert page.inner_text(".art-preview pre.art-text").strip() == "hello from the notes file\nsecond line"
    preview_of(page, "summary.json")
    assert page.inner_text(".art-preview pre.art-json") == (
        '{\n  "alpha": 0.25,\n  "nested": {\n    "epochs": 40,\n    "ok": true\n  }\n}')
    preview_of(page, "table.csv")
    assert page.eval_on_selector_all(".art-table thead th", "ths => ths.map(th => th.innerText)") == ["epoch", "loss"]
    assert rows(page, ".art-table tbody tr")[:2] == [["0", "0.2500"], ["1", "0.1250"]]
    preview_of(page, "plot.png")
    page.wait_for_function("() => { const i = document.querySelector('.art-image img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    assert page.evaluate("document.querySelector('.art-image img').naturalWidth") == 64
    preview_of(page, "huge.png")
    assert "too large to show here" in page.inner_text(".art-preview") and page.locator(".art-image img").count() == 0
    assert [u for u in fetched if "huge.png" in u] == [] and [u for u in fetched if "plot.png" in u]
    assert page.locator(".art-preview a.download").first.get_attribute("href").startswith("get-artifact?")
    preview_of(page, "weights.bin")
    assert "Binary file, 4.1 KB" in page.inner_text(".art-preview")
    assert page.locator(".art-preview a.download").first.get_attribute("href").startswith("get-artifact?")
    preview_of(page, "big.txt")
    note = page.inner_text(".art-truncated")
    assert "truncated" in note and "30.0 MB" in note
    shown = page.inner_text(".art-preview pre.art-text")
    assert shown.startswith("big line 00000000") and len(shown.encode()) <= 65536
    assert "path=big.txt" in page.url
    # a folder opens lazily: the model's files
    page.locator("button.art-dir", has_text="model/").click()
    preview_of(page, "model/MLmodel")
    assert "flavors:" in page.inner_text(".art-preview pre.art-text")
    assert page.errors == []


def test_a_large_file_is_never_loaded_whole(page: Any, world: World) -> None:
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body())) if "artifacts/preview" in r.url else None)
    open_run(page, world.main["id"], tab="artifacts", path="big.txt")  # opened from the URL
    page.wait_for_selector(".art-truncated")
    assert sizes and max(sizes) < 200_000  # the preview's JSON: the first 64 KiB, not 30 MB
    assert page.locator("button.art-file[aria-current='true']").inner_text().startswith("big.txt")
    assert page.errors == []


def test_model_flavors_signature_and_env_files(page: Any, world: World) -> None:
    open_run(page, world.main["id"], tab="model")
    model = page.locator("article.model")
    assert model.locator("h2").inner_text().startswith("model")
    flavors = page.eval_on_selector_all("article.model .flavor", "els => els.map(e => e.innerText)")
    assert sorted(flavors) == ["pickle", "python_function"]
    assert rows(page, "table.signature-inputs tbody tr") == [["x", "double", "yes"], ["n", "long", "yes"]]
    assert rows(page, "table.signature-outputs tbody tr") == [["y", "double", "yes"]]
    files = page.inner_text("ul.model-files")
    for name in ("requirements.txt", "python_env.yaml", "conda.yaml"):
        assert name in files
    page.click("ul.model-files a:has-text('requirements.txt')")  # an env file opens in the artifact browser
    page.wait_for_selector(".art-preview h3:text-is('model/requirements.txt')")
    assert "pytest==" in page.inner_text(".art-preview pre.art-text")  # the run's exact lock, as pins
    assert page.errors == []


def test_a_reproduction_says_what_it_reproduces(page: Any, world: World) -> None:
    open_run(page, world.repro["id"])
    note = page.locator(".reproduces-note")
    assert note.inner_text() == f"This run reproduces {world.main['id'][:12]}."
    note.locator("a").click()
    page.wait_for_function(f"document.querySelector('.run-id')?.textContent === '{world.main['id']}'")
    assert page.errors == []


def test_a_client_only_run_shows_what_it_has(page: Any, world: World) -> None:
    open_run(page, world.client_id)
    assert "client-only-run" in page.inner_text(".run-head h1")
    assert "logged by an MLflow client" in page.inner_text(".run-head")
    tabs = page.eval_on_selector_all("[role=tab]", "ts => ts.map(t => t.dataset.tab)")
    assert tabs == ["overview", "params", "metrics", "tags", "artifacts"]
    assert page.locator("pre.command").count() == 0
    datasets = rows(page, "table.datasets tbody tr")
    assert datasets == [["train-set", "d1g35t", "training", "local", "/data/train.csv"]]
    assert rows(page, "table.child-runs tbody tr") == [["client-child", "FINISHED"]]
    tab(page, "Params")
    assert page.eval_on_selector_all("table.params thead th", "ths => ths.map(t => t.innerText)") == ["Param", "Value"]
    assert sorted(rows(page, "table.params tbody tr")) == [["layers", "4"], ["lr", "0.01"]]
    tab(page, "Artifacts")
    page.wait_for_selector(".run-panel :text('This run has no artifacts.')")
    assert page.errors == []


def test_a_child_run_links_to_its_parent(page: Any, world: World) -> None:
    open_run(page, world.child_id)
    assert "nested-eval" in page.inner_text(".run-head h1")
    page.click(".run-head a.parent-link")
    page.wait_for_function(f"document.querySelector('.run-id')?.textContent === '{world.main['id']}'")
    assert page.errors == []


def test_tabs_follow_the_keyboard_and_live_in_the_url(page: Any, world: World) -> None:
    open_run(page, world.main["id"])
    page.get_by_role("tab", name="Overview").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(".run-panel[data-tab='params']")
    assert page.evaluate("document.activeElement.dataset.tab") == "params" and "tab=params" in page.url
    page.keyboard.press("End")
    page.wait_for_selector(".run-panel[data-tab='model']")
    page.keyboard.press("ArrowRight")  # wraps to the first
    page.wait_for_selector(".run-panel[data-tab='overview']")
    selected = page.eval_on_selector_all("[role=tab][aria-selected=true]", "ts => ts.map(t => t.dataset.tab)")
    assert selected == ["overview"] and "tab=" not in page.url
    assert page.errors == []


@pytest.mark.parametrize("run_id", ["0" * 32, "not-a-run-id"])
def test_an_unknown_run_is_one_clear_message(page: Any, world: World, run_id: str) -> None:
    page.goto(f"/#/runs/{run_id}")
    page.wait_for_selector(".run-missing")
    assert page.inner_text("main h1") == "Run not found"
    assert run_id in page.inner_text(".run-missing")
    assert page.is_hidden("#error")
    # the browser itself reports the failed runs/get on the console; nothing else may be there
    assert [e for e in page.errors if not re.fullmatch(r"console\.error: Failed to load resource: the server responded"
                                                        r" with a status of 40[04] \(.*\)", e)] == [], page.errors
    assert len(page.errors) <= 1


def test_a_running_runs_log_grows_in_the_live_tail(page: Any, world: World, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    stderr = tmp_path / "tick.err"
    with open(stderr, "w") as err, open(tmp_path / "tick.out", "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "proj.cli.main", "run", str(world.project), "-e", "tick",
                                 "--env-manager", "local", "-P", f"gate={gate}"], cwd=tmp_path, env=world.proj.env,
                                stdout=out, stderr=err)
    try:
        found = wait_until(lambda: re.search(r"run ([0-9a-f]{32}) started", stderr.read_text()), timeout=60,
                           what="the run to start")
        run_id = found.group(1)
        open_run(page, run_id, tab="logs")
        page.evaluate("window.__same_page = true")
        assert "RUNNING" in page.inner_text(".run-head .run-status")
        log = page.locator(".log-view pre.log")
        wait_until(lambda: "tick 3" in log.inner_text(), timeout=30, what="ticks in the live tail")
        assert page.get_attribute(".log-view", "data-live") == "true"
        assert "ticking done" not in log.inner_text()
        seen = log.inner_text().count("tick ")
        wait_until(lambda: log.inner_text().count("tick ") > seen + 3, timeout=30, what="new lines without reload")
        scroll = "() => { const p = document.querySelector('pre.log'); return [p.scrollTop, p.scrollHeight - p.clientHeight]; }"
        top, bottom = page.evaluate(scroll)
        assert bottom > 0 and top >= bottom - 24  # the view overflows, and the tail follows its end
        page.evaluate("document.querySelector('pre.log').scrollTop = 0")  # a reader scrolls up...
        seen = log.inner_text().count("tick ")
        wait_until(lambda: log.inner_text().count("tick ") > seen + 2, timeout=30, what="more lines")
        assert page.evaluate(scroll)[0] == 0  # ...and is left where they are
        # the metrics follow the run too: the latest value in the table, then the chart's points
        tab(page, "Metrics")
        value = page.locator("table.metrics tr[data-key='ticks'] td.value")
        wait_until(lambda: value.count() == 1, timeout=30, what="the ticks metric")
        first = float(value.inner_text())
        wait_until(lambda: float(value.inner_text()) > first, timeout=30, what="a newer value in the table")
        page.get_by_role("button", name="Chart ticks").click()
        page.wait_for_selector(".metric-chart[data-ready='1']")
        points = int(page.get_attribute(".metric-chart", "data-points") or 0)
        wait_until(lambda: int(page.get_attribute(".metric-chart", "data-points") or 0) > points, timeout=30,
                   what="the chart to draw the new points")
        tab(page, "Logs")
        wait_until(lambda: "tick " in log.inner_text(), what="the tail again")
        gate.write_text("go")
        wait_until(lambda: "ticking done" in log.inner_text(), timeout=30, what="the last line")
        page.wait_for_selector(".run-head .status-finished", timeout=30_000)
        assert page.evaluate("window.__same_page === true")  # no reload happened
        wait_until(lambda: page.get_attribute(".log-view", "data-live") == "false", what="the tail to stop")
        text = log.inner_text()
        ticks = [int(n) for n in re.findall(r"^tick (\d+)$", text, re.M)]
        assert ticks == list(range(len(ticks)))  # every line once, in order
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            gate.write_text("go")
            proc.wait(timeout=60)
    assert page.errors == []



def test_dark_theme_diff_and_logs_use_the_theme(browser: Any, ui_server: Server, world: World) -> None:
    with new_page(browser, ui_server.url, dark=True) as page:
        open_run(page, world.main["id"], tab="source")
        page.wait_for_selector("table.patch-diff")
        add, page_bg = page.evaluate("""() => [getComputedStyle(document.querySelector('tr.diff-add td.code')).backgroundColor,
                                              getComputedStyle(document.body).backgroundColor]""")
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        assert add == "rgb(18, 53, 31)" and page_bg == "rgb(20, 23, 28)"  # app.css's dark --add-bg and --bg
        screenshot(page, "run-page-dark-source")
        assert page.errors == []


def test_a_failed_run_shows_its_exit_code_and_stderr(page: Any, world: World) -> None:
    open_run(page, world.failed["id"])
    assert "FAILED" in page.inner_text(".run-head .run-status")
    facts = page.inner_text(".run-panel dl.kv")
    assert re.search(r"Exit code\s+3", facts), facts
    tab(page, "Logs")
    page.get_by_role("button", name=re.compile("^stderr")).click()
    wait_until(lambda: "about to fail" in page.inner_text(".log-view pre.log"), what="stderr of the failed run")
    assert page.errors == []


def test_artifact_tree_by_keyboard_and_an_odd_file_name(page: Any, world: World) -> None:
    open_run(page, world.main["id"], tab="artifacts")
    page.wait_for_selector("button.art-item[tabindex='0']")
    page.focus("button.art-item[tabindex='0']")  # the tree is one tab stop; arrows move inside it
    names = page.eval_on_selector_all("ul.art-tree > li > button", "bs => bs.map(b => b.dataset.path)")
    assert names[:5] == ["many", "model", "notes dir", "proj", "source"]  # folders first
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.path") == "notes dir"
    page.keyboard.press("ArrowRight")  # opens the folder
    page.wait_for_selector("button.art-file[data-path^='notes dir/']")
    page.keyboard.press("ArrowDown")
    name = "notes dir/\u00fcn\u00efcode name's (1).txt"
    assert page.evaluate("document.activeElement.dataset.path") == name
    page.keyboard.press("Enter")
    page.wait_for_selector(".art-preview pre.art-text")
    assert page.inner_text(".art-preview h3") == name
    assert page.inner_text(".art-preview pre.art-text").strip() == "caf\u00e9 \u2014 an odd name"
    page.keyboard.press("ArrowLeft")  # back to the folder
    assert page.evaluate("document.activeElement.dataset.path") == "notes dir"
    page.reload()  # the open file is in the URL, folders on its way opened again
    page.wait_for_selector(".art-preview pre.art-text")
    assert page.inner_text(".art-preview h3") == name
    assert page.errors == []


def test_a_big_folder_is_drawn_a_page_at_a_time(page: Any, world: World) -> None:
    open_run(page, world.main["id"], tab="artifacts")
    page.locator("button.art-dir[data-path='many']").click()
    page.wait_for_selector("button.art-file[data-path='many/part-0000.txt']")
    assert page.locator("button.art-file[data-path^='many/']").count() == 500
    page.get_by_role("button", name="Show 120 more").click()
    assert page.locator("button.art-file[data-path^='many/']").count() == 620
    preview_of(page, "many/part-0619.txt")
    assert page.inner_text(".art-preview pre.art-text").strip() == "part 619"
    assert page.errors == []
