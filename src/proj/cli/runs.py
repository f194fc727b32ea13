"""``proj runs list|show|logs|cancel``: read the run store."""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

from proj.cli.main import App
from proj.cli.render import artifact_options, json_option, number, print_json, seconds, table, tracking_option, when

if TYPE_CHECKING:
    from proj.tracking.records import RunRecord
    from proj.tracking.store import RunStore

STATUS_CHOICES = ("RUNNING", "FINISHED", "FAILED", "KILLED")


@click.group()
def runs() -> None:
    """List, inspect, follow and cancel recorded runs."""


@runs.command("list")
@click.option("--experiment", help="Only runs of this experiment.")
@click.option("--status", type=click.Choice(STATUS_CHOICES, case_sensitive=False), help="Only runs with this status.")
@click.option("--commit", help="Only runs of this source commit (prefix).")
@click.option("-n", "--limit", default=50, show_default=True, help="How many runs (0 = all).")
@click.option("--children/--no-children", default=True, show_default=True,
              help="Show child runs (a program's other MLflow runs) indented under their parent.")
@click.option("--filter", "filter_string", help="MLflow's search filter, e.g. \"metrics.loss < 0.5 and "
              "params.alpha = '0.1'\" (child runs included, listed flat).")
@click.option("--order-by", multiple=True, help="e.g. 'metrics.loss ASC' (repeatable; missing keys sort last).")
@click.option("--columns", help="Params and metrics to show as columns, e.g. alpha,loss (or params.x, metrics.y).")
@click.option("--page-token", help="The token a previous --filter/--order-by page printed.")
@tracking_option
@json_option
def list_runs(experiment: str | None, status: str | None, commit: str | None, limit: int, children: bool,
              filter_string: str | None, order_by: tuple[str, ...], columns: str | None, page_token: str | None,
              tracking_uri: str | None, as_json: bool) -> None:
    """Recent runs, newest first; the filters and the limit apply to top-level runs."""
    from proj.tracking.open import existing_store

    store = existing_store(tracking_uri)
    if filter_string is not None or order_by or columns or page_token:
        _search(store, experiment, status, commit, limit, filter_string, order_by, columns, page_token, as_json)
        return
    tops = store.list_runs(experiment=experiment, status=status, commit=commit, limit=limit or None,
                           top_level=True) if store else []
    tree = _with_children(store, tops) if store and children else [(r, 0) for r in tops]
    if as_json:
        print_json("run-list", [{**r.to_dict(), "depth": depth} for r, depth in tree])
        return
    rows = [("  " * depth + ("└ " if depth else "") + r.id[:12], status_text(r), r.experiment, r.entry_point,
             when(r.start_time), seconds(r.duration), r.env.get("backend", ""),
             (r.source.get("commit") or "")[:8] + ("+" if r.source.get("dirty") else ""),  # + = uncommitted changes
             r.name or "") for r, depth in tree]
    filtered = experiment or status or commit
    click.echo(table(("RUN", "STATUS", "EXPERIMENT", "ENTRY", "STARTED", "TIME", "ENV", "COMMIT", "NAME"), rows)
               if rows else ("no runs match" if filtered and store else "no runs recorded yet"))


def _search(store: RunStore | None, experiment: str | None, status: str | None, commit: str | None, limit: int,
            filter_string: str | None, order_by: tuple[str, ...], columns: str | None, page_token: str | None,
            as_json: bool) -> None:
    """``runs list --filter/--order-by/--columns``: MLflow's search over every run, one page of it."""
    from proj.errors import UsageError
    from proj.tracking.search import check_max_results, page_offset, parse_filter, parse_order_by_list

    if status or commit:  # two ways to say one thing would have to agree: keep one
        raise UsageError("--status/--commit do not combine with --filter/--order-by/--columns: write "
                         "\"attributes.status = 'FAILED'\" in --filter instead")
    parse_filter(filter_string)  # a bad filter is refused even before any run is recorded
    parse_order_by_list(order_by)
    check_max_results(limit or 1000)
    page_offset(page_token)
    wanted = [c.strip() for c in (columns or "").split(",") if c.strip()]
    found, next_token = store.search_runs(filter_string, order_by, limit or 1000, page_token,
                                          experiment=experiment) if store else ([], None)
    cells = [{c: _column(r, c) for c in wanted} for r in found]
    if as_json:
        print_json("run-list", [{**r.to_dict(), "depth": 0, "columns": row} for r, row in zip(found, cells,
                                                                                              strict=True)])
    elif found:
        rows = [(r.id[:12], status_text(r), r.experiment, r.entry_point, when(r.start_time), seconds(r.duration),
                 *[row[c] for c in wanted], r.name or "") for r, row in zip(found, cells, strict=True)]
        click.echo(table(("RUN", "STATUS", "EXPERIMENT", "ENTRY", "STARTED", "TIME", *[c.upper() for c in wanted],
                          "NAME"), rows))
    else:
        click.echo("no runs match" if store else "no runs recorded yet")
    if next_token:
        click.echo(f"more runs: --page-token {next_token}", err=True)


def _column(run: RunRecord, name: str) -> str | float | None:
    """A param or metric of ``run`` by bare name (params first), or by ``params.x`` / ``metrics.x``."""
    kind, _, key = name.partition(".") if name.startswith(("params.", "metrics.")) else ("", "", name)
    params = {p.key: p.value for p in run.params}
    if kind != "metrics" and key in params:
        return params[key]
    if kind != "params" and key in run.metrics:
        return run.metrics[key].value
    return None


def _with_children(store: RunStore, tops: list[RunRecord]) -> list[tuple[RunRecord, int]]:
    """Each run followed by its child runs (depth first, oldest child first), with its depth."""
    below: dict[str, list[RunRecord]] = {}
    for child in store.descendants([r.id for r in tops]):
        below.setdefault(child.parent_run_id or "", []).append(child)
    out: list[tuple[RunRecord, int]] = []
    seen: set[str] = set()

    def add(run: RunRecord, depth: int) -> None:
        if run.id in seen:  # a parent link can never loop, but a damaged store must not hang the listing
            return
        seen.add(run.id)
        out.append((run, depth))
        for child in below.get(run.id, ()):
            add(child, depth + 1)

    for run in tops:
        add(run, 0)
    return out


@runs.command("show")
@click.argument("run_ref")
@tracking_option
@json_option
def show(run_ref: str, tracking_uri: str | None, as_json: bool) -> None:
    """Everything recorded about one run (RUN: an id, a unique prefix, or `last`)."""
    from proj.tracking.open import open_store

    store = open_store(tracking_uri, create=False)
    run = store.get_run(run_ref)
    if as_json:
        data = run.to_dict()
        lock = store.get_lock(run.id)
        data["lock"] = {"format": lock[0], "text": lock[1]} if lock else None
        data["children"] = [child.id for child in store.list_children(run.id)]
        data["models"] = [{"path": m.path, "flavors": m.flavors, "size": m.size, "valid": m.valid,
                           "reason": m.reason} for m in store.list_models(run_id=run.id)]
        print_json("run", data)
        return
    from proj.cli.show import render_run

    click.echo(render_run(store, run))


@runs.command("logs")
@click.argument("run_ref")
@click.option("--stream", type=click.Choice(["stdout", "stderr", "env-build", "all"]), default="all", show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the run ends.")
@tracking_option
@click.pass_obj
def logs(app: App, run_ref: str, stream: str, follow: bool, tracking_uri: str | None) -> int:
    """Print a run's logs (RUN: an id, a unique prefix, or `last`).

    With --follow, ends when the run does, with its status, and exits with the run's exit code
    (so `proj run --detach` + `proj runs logs -f` works in CI scripts).
    """
    from proj.tracking.logs import print_logs
    from proj.tracking.open import open_store

    store = open_store(tracking_uri, create=False)
    run = store.get_run(run_ref)
    _fetch(store, run, logs_only=True)
    print_logs(store, run, stream, follow, click.echo)
    if not follow:
        return 0
    final = store.get_run(run.id)
    app.info(f"run {final.id} {final.status}" + ("" if final.collected else " (runner, not yet collected)")
             + (f" (exit code {final.exit_code})" if final.exit_code is not None else ""))
    return final.exit_code if final.exit_code is not None else (0 if final.status == "FINISHED" else 1)


@runs.command("cancel")
@click.argument("run_ref")
@tracking_option
@click.pass_obj
def cancel(app: App, run_ref: str, tracking_uri: str | None) -> None:
    """Stop a running run (its process group or container) and mark it KILLED."""
    from proj.api import cancel_run
    from proj.pipeline.reaper import open_to_act

    run = cancel_run(open_to_act(tracking_uri, create=False), run_ref)
    app.info(f"run {run.id} is {run.status}")


@runs.command("collect")
@tracking_option
@click.pass_obj
def collect(app: App, tracking_uri: str | None) -> None:
    """Collect runs whose runner died: stop what they left running, ingest their metrics and models, mark
    them FAILED. Reading commands only show such runs; `proj run`, `runs cancel` and `reproduce` collect too."""
    from proj.pipeline.reaper import reap_dead_runs
    from proj.tracking.open import open_store

    reaped = reap_dead_runs(open_store(tracking_uri, create=False, write=True))
    app.info(f"collected {len(reaped)} run(s) whose runner died" + (f": {', '.join(r[:12] for r in reaped)}" if reaped else ""))


@runs.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--tolerance", type=float, default=0.0, show_default=True, help="Relative tolerance for metrics.")
@artifact_options
@tracking_option
@json_option
def diff(run_a: str, run_b: str, tolerance: float, strict_artifacts: bool, ignore: tuple[str, ...],
         tracking_uri: str | None, as_json: bool) -> int:
    """Compare two runs: params, source, inputs, environment, metrics, artifacts. Exit 1 if they differ.

    Artifacts are compared in levels as by ``proj reproduce``; MLflow models that differ in bytes are
    loaded in RUN_B's environment while it is still cached, and compared by their predictions."""
    from proj.reproduce.compare import ArtifactOptions, compare_runs
    from proj.tracking.open import open_store

    store = open_store(tracking_uri, create=False)
    first, second = store.get_run(run_a), store.get_run(run_b)
    for run in (first, second):
        _fetch(store, run)
    result = compare_runs(store, first, second, tolerance,
                          ArtifactOptions(strict=strict_artifacts, ignore=ignore))
    if as_json:
        print_json("comparison", result.to_dict())
    else:
        click.echo(result.render())
    return 1 if result.verdict == "differs" else 0


def _fetch(store: RunStore, run: RunRecord, *, logs_only: bool = False) -> None:
    """A run on a tracking server recorded from another machine: its files downloaded into its local folder."""
    fetch = getattr(store, "fetch_run_files", None)  # only tracking.rest's store has files elsewhere
    if fetch is not None:
        fetch(run, logs_only=logs_only)


def status_text(run: RunRecord) -> str:
    """FAILED (runner, not yet collected): a reader sees a dead runner's run without writing anything."""
    detail = ", ".join(([run.failure_phase] if run.failure_phase else []) + ([] if run.collected else ["not yet collected"]))
    return run.status + (f" ({detail})" if detail else "")


# export/import live in their own module (cli.runs_transfer); their heavy parts load only when they run
from proj.cli.runs_transfer import export_command, import_command  # noqa: E402

runs.add_command(export_command)
runs.add_command(import_command)

__all__ = ["runs", "number", "status_text"]
