"""proj.registry's operations over a real SQLite store: registering local MLflow model dirs (schema-checked, no
escaping links, nothing written when refused), MLflow's alias and name rules, protection needing a reason, the
reproduction verdict an alias can require, history replayed at a past time, and lineage without a run."""
from __future__ import annotations

import multiprocessing
import re
import time
from pathlib import Path

import pytest

from proj.errors import InvalidState, NotFound, UnsafePath, UsageError
from proj.registry import files, service, timeline, trace
from proj.reproduce.rebuild import REPRODUCES_TAG, VERDICT_TAG
from proj.tracking.sqlite import SqliteStore

MLMODEL = "flavors:\n  python_function:\n    loader_module: mymodel\n"


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store")


def model_dir(tmp_path: Path, name: str = "m", mlmodel: str = MLMODEL, weights: bytes = b"w") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "MLmodel").write_text(mlmodel)
    (folder / "weights.bin").write_bytes(weights)
    return folder


def test_a_local_model_dir_is_copied_in_and_the_version_outlives_it(store: SqliteStore, tmp_path: Path) -> None:
    folder = model_dir(tmp_path)
    first = service.register(store, str(folder), "fraud", description="d", tags={"k": "v"}, user="ana")
    assert (first.version, first.source, first.run_id, first.user_id) == (1, str(folder), None, "ana")
    assert (first.description, first.tags, first.status) == ("d", {"k": "v"}, "READY")
    tree = Path(first.storage_location or "")
    assert tree == files.tree(store.root, first.files_sha256 or "") and tree.is_relative_to(store.root)
    (folder / "weights.bin").write_bytes(b"changed later")
    assert (tree / "weights.bin").read_bytes() == b"w"
    again = service.register(store, f"file://{folder}", "fraud")
    assert again.version == 2 and again.files_sha256 != first.files_sha256
    copy = service.register(store, "models:/fraud/1", "other")
    assert (copy.source, copy.files_sha256) == ("models:/fraud/1", first.files_sha256)  # MLflow's normal form


def test_an_invalid_mlmodel_or_a_link_out_is_refused_and_nothing_is_written(store: SqliteStore, tmp_path: Path) -> None:
    bad = model_dir(tmp_path, "bad", mlmodel="flavors: [not, a, mapping]\n")
    with pytest.raises(UsageError, match=r"^model source .*bad is not an MLflow model directory: .*MLmodel") as err:
        service.register(store, str(bad), "fraud")
    assert "\n" not in str(err.value)
    leaky = model_dir(tmp_path, "leaky")
    (tmp_path / "secret").write_text("host file")
    (leaky / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(UnsafePath, match=r"link is a symlink to .*secret, outside"):
        service.register(store, str(leaky), "fraud")
    with pytest.raises(UsageError, match="is not a directory, a run's model"):
        service.register(store, str(tmp_path / "nowhere"), "fraud")
    with pytest.raises(UsageError, match=re.escape("Invalid model name 'a/b'. Names cannot contain '/' or ':'.")):
        service.register(store, str(model_dir(tmp_path)), "a/b")
    assert store.search_registered_models()[0] == []
    assert not (store.root / "registry" / "manifests").exists()


def test_run_id_given_with_a_source_must_be_its_run(store: SqliteStore, tmp_path: Path) -> None:
    first = service.register(store, str(model_dir(tmp_path)), "fraud")
    store.create_model_version("fraud", f"runs:/{'a' * 32}/model", "a" * 32, files_sha256=first.files_sha256)
    with pytest.raises(UsageError, match=re.escape("Invalid model version source: 'models:/fraud/2'. The run_id "
                                                   "request parameter must identify the resource that contains the source.")):
        service.register(store, "models:/fraud/2", "fraud", run_id="b" * 32)
    assert service.register(store, "models:/fraud/2", "fraud", run_id="a" * 32).run_id == "a" * 32
    # a source without a run takes the one given (what MLflow's client sends along)
    assert service.register(store, "models:/fraud/1", "fraud", run_id="c" * 32).run_id == "c" * 32
    store.create_model_version("fraud", "/elsewhere")  # recorded without a copy of its files
    with pytest.raises(UsageError, match=r"^models:/fraud/5 has no stored copy of its files to register from$"):
        service.register(store, "models:/fraud/5", "fraud")


@pytest.mark.parametrize(("alias", "message"), [
    ("latest", "'latest' alias name (case insensitive) is reserved."),
    ("LATEST", "'latest' alias name (case insensitive) is reserved."),
    ("v3", "Version alias name 'v3' is reserved."),
    ("V12", "Version alias name 'V12' is reserved."),
    ("has space", "Invalid alias name: 'has space'. Names may only contain alphanumerics, underscores (_), and dashes (-)."),
    ("", "Registered model alias name cannot be empty."),
    ("a" * 256, "'Registered model alias name' exceeds the maximum length of 255 characters"),
])
def test_alias_names_follow_mlflows_rules(store: SqliteStore, tmp_path: Path, alias: str, message: str) -> None:
    service.register(store, str(model_dir(tmp_path)), "fraud")
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$") as err:
        service.set_alias(store, "fraud", alias, 1)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert store.get_registered_model("fraud").aliases == {}


def test_protected_alias_and_stage_move_only_with_a_reason(store: SqliteStore, tmp_path: Path) -> None:
    for _ in range(2):
        service.register(store, str(model_dir(tmp_path, f"m{_}")), "fraud")
    service.set_alias(store, "fraud", "champion", 1)
    service.transition(store, "fraud", 1, "production")
    assert service.protect(store, "fraud", alias="champion") == "champion"
    assert service.protect(store, "fraud", stage="PRODUCTION") == "Production"
    with pytest.raises(InvalidState, match=r"^alias 'champion' of registered model 'fraud' is protected: pointing it "
                                           r"at version 2 needs a reason \(--reason TEXT\)$"):
        service.set_alias(store, "fraud", "champion", 2)
    with pytest.raises(InvalidState, match="stage 'Production' .* moving version 2 into it needs a reason"):
        service.transition(store, "fraud", 2, "Production", archive_existing=True)
    with pytest.raises(InvalidState, match="stage 'Production' .* moving version 1 out of it needs a reason"):
        service.transition(store, "fraud", 1, "Archived")
    with pytest.raises(InvalidState, match="deleting version 1 needs a reason"):
        service.delete(store, "fraud", 1)
    with pytest.raises(InvalidState, match="lifting its protection needs a reason"):
        service.protect(store, "fraud", alias="champion", protected=False)
    service.set_alias(store, "fraud", "champion", 2, reason="v2 wins the A/B test", user="ana")
    service.transition(store, "fraud", 2, "Production", archive_existing=True, reason="promote v2")
    model = store.get_registered_model("fraud")
    assert model.aliases == {"champion": 2}
    assert {v.version: v.current_stage for v in model.latest_versions} == {1: "Archived", 2: "Production"}
    moved = [e for e in store.registry_events("fraud") if e.kind == "alias_set" and e.old == "1"]
    assert [(e.new, e.reason, e.user) for e in moved] == [("2", "v2 wins the A/B test", "ana")]
    service.set_alias(store, "fraud", "champion", 2)  # not a move: no reason needed
    with pytest.raises(UsageError, match="name exactly one of an alias or a stage"):
        service.protect(store, "fraud")


def _reproduction(store: SqliteStore, original: str, verdict: str, start: float) -> str:
    run = store.create_client_run("0", "u", start, {REPRODUCES_TAG: original, VERDICT_TAG: verdict}, None)
    return run.id


def test_require_verdict_reads_the_newest_reproduction(store: SqliteStore, tmp_path: Path) -> None:
    original = store.create_client_run("0", "u", 1000.0, {}, "train").id
    store.create_registered_model("fraud")
    store.create_model_version("fraud", f"runs:/{original}/model", original)
    with pytest.raises(InvalidState, match=rf"its run {original[:12]} has not been reproduced \(`proj reproduce "
                                           rf"{original[:12]}`\); --require-verdict identical refuses it"):
        service.set_alias(store, "fraud", "champion", 1, require_verdict="identical")
    _reproduction(store, original, "identical", 2000.0)
    newest = _reproduction(store, original, "within-tolerance", 3000.0)
    with pytest.raises(InvalidState, match=rf"latest reproduction .* \(run {newest[:12]}\) was 'within-tolerance'"):
        service.set_alias(store, "fraud", "champion", 1, require_verdict="identical")
    assert store.get_registered_model("fraud").aliases == {}
    service.set_alias(store, "fraud", "champion", 1, require_verdict="within-tolerance")
    _reproduction(store, original, "differs", 4000.0)
    with pytest.raises(InvalidState, match="was 'differs'"):
        service.set_alias(store, "fraud", "challenger", 1, require_verdict="within-tolerance")
    with pytest.raises(UsageError, match="required verdict 'same' is not one of identical, within-tolerance"):
        service.set_alias(store, "fraud", "challenger", 1, require_verdict="same")
    store.create_model_version("fraud", "/somewhere")
    with pytest.raises(InvalidState, match="comes from no run"):
        service.set_alias(store, "fraud", "challenger", 2, require_verdict="identical")


def test_history_replays_the_state_at_a_past_time(store: SqliteStore, tmp_path: Path) -> None:
    for i in range(3):
        service.register(store, str(model_dir(tmp_path, f"m{i}", weights=bytes([i]))), "fraud")
    service.transition(store, "fraud", 1, "Production")
    service.set_alias(store, "fraud", "champion", 1)
    before = time.time()
    service.transition(store, "fraud", 2, "Production", archive_existing=True, reason="better recall")
    service.set_alias(store, "fraud", "champion", 2)
    service.transition(store, "fraud", 3, "Staging")
    middle = time.time()
    service.delete(store, "fraud", 2)
    service.rename(store, "fraud", "fraud-v2")
    then = timeline.state_at(store, "fraud-v2", before)
    assert (then.in_stage("Production"), then.aliases, then.in_stage("None")) == ([1], {"champion": 1}, [2, 3])
    later = timeline.state_at(store, "fraud-v2", middle)
    assert (later.in_stage("Production"), later.in_stage("Archived"), later.in_stage("Staging")) == ([2], [1], [3])
    assert later.aliases == {"champion": 2}
    now = timeline.state_at(store, "fraud-v2", time.time())
    assert (now.name, now.in_stage("Production"), now.aliases, sorted(now.stages)) == ("fraud-v2", [], {}, [1, 3])
    assert timeline.state_at(store, "fraud-v2", 0.0).exists is False
    events = timeline.events(store, "fraud-v2")
    assert [e.kind for e in events][:4] == ["model_created", "version_created", "version_created", "version_created"]
    assert events[-1].kind == "renamed" and (events[-1].old, events[-1].new) == ("fraud", "fraud-v2")
    archived = next(e for e in events if e.kind == "stage" and e.version == 1 and e.new == "Archived")
    assert archived.reason == "better recall" and timeline.describe_event(archived) == "stage v1 Production -> Archived"
    with pytest.raises(NotFound, match="Registered Model with name=never not found"):
        timeline.events(store, "never")
    assert timeline.parse_time("2026-11-03T14:00:00Z") == 1793714400.0
    with pytest.raises(UsageError, match="--at 'yesterday' is not a time"):
        timeline.parse_time("yesterday")


def test_lineage_of_a_version_without_a_run(store: SqliteStore, tmp_path: Path) -> None:
    service.register(store, str(model_dir(tmp_path)), "fraud")
    info = trace.lineage(store, "models:/fraud/latest")
    assert info["run"] is None and info["version"]["intact"] and info["version"]["files"] == 2


def _register_in_process(root: str, source: str, out: "multiprocessing.Queue[object]") -> None:
    try:
        out.put(service.register(SqliteStore(Path(root)), source, "fraud").version)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test with it
        out.put(repr(exc))


def test_eight_processes_register_one_new_model_at_once(tmp_path: Path) -> None:
    """The model is created by whichever comes first, the files copied in concurrently: versions 1..8."""
    root = tmp_path / "store"
    SqliteStore(root).close()
    sources = [str(model_dir(tmp_path, f"m{i}", weights=bytes([i % 2]))) for i in range(8)]
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[object] = ctx.Queue()
    procs = [ctx.Process(target=_register_in_process, args=(str(root), s, out)) for s in sources]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sorted(results) == list(range(1, 9)), results  # type: ignore[type-var]
    store = SqliteStore(root)
    digests = {v.files_sha256 for v in service.versions(store, "fraud")}
    assert len(digests) == 2 and all(files.check(root, d) == [] for d in digests if d)
    assert [e.kind for e in store.registry_events("fraud")].count("model_created") == 1
