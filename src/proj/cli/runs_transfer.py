"""``proj runs export`` / ``proj runs import``: move runs, with their files, between any two stores."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from proj.cli.main import App
from proj.cli.render import json_option, print_json, tracking_option

if TYPE_CHECKING:
    from proj.transfer.service import Summary


@click.command("export")
@click.argument("run_refs", nargs=-1)
@click.option("--experiment", help="Every run of this experiment (a name or an id).")
@click.option("--filter", "filter_string", help="The runs MLflow's search filter matches, e.g. \"params.alpha = '0.1'\".")
@click.option("--all", "everything", is_flag=True, help="Every run of the store.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="The archive to write (FILE.tar).")
@click.option("--registry", is_flag=True, help="Every registered model of the store too, with its versions and their "
              "files (a proj store: a directory or postgresql://).")
@tracking_option
@json_option
@click.pass_obj
def export_command(app: App, run_refs: tuple[str, ...], experiment: str | None, filter_string: str | None,
                   everything: bool, output: Path, registry: bool, tracking_uri: str | None, as_json: bool) -> None:
    """Write runs (RUN ids or prefixes, with their child runs) and their files into one archive."""
    from proj.transfer.service import Selection, export_runs, store_refusals

    with store_refusals(tracking_uri):
        summary = export_runs(tracking_uri, Selection(run_refs, experiment, filter_string, everything), output,
                              app.reporter, registry=registry)
    _report(app, summary, as_json)


@click.command("import")
@click.argument("archive", required=False, type=click.Path(path_type=Path))
@click.option("--from", "source", help="Copy straight from another store: a proj store (directory or URL), an "
              "MLflow SQL store (sqlite:///mlflow.db) or file store (mlruns/ or file:./mlruns).")
@click.option("--run", "run_refs", multiple=True, help="Only this run (id or prefix; repeatable), with its children.")
@click.option("--experiment", help="Only the runs of this experiment (a name).")
@click.option("--filter", "filter_string", help="Only the runs this filter matches (proj stores and servers).")
@click.option("--registry", is_flag=True, help="The registered models too (an archive exported with --registry, or "
              "a proj store), into a proj store: a directory or postgresql://.")
@click.option("--skip-existing-models", is_flag=True, help="With --registry: a model whose name the destination "
              "already has (another model) is kept there and not imported, instead of refusing the import.")
@tracking_option
@json_option
@click.pass_obj
def import_command(app: App, archive: Path | None, source: str | None, run_refs: tuple[str, ...],
                   experiment: str | None, filter_string: str | None, registry: bool, skip_existing_models: bool,
                   tracking_uri: str | None, as_json: bool) -> None:
    """Read runs from ARCHIVE (made by `proj runs export`) or --from a store into --tracking-uri. Runs imported
    before are skipped, so importing again is safe."""
    from proj.errors import UsageError
    from proj.transfer.service import Selection, import_runs, read_source, store_refusals

    if (archive is None) == (source is None):
        raise UsageError("give either an ARCHIVE file or --from URI (one source)")
    if archive is not None and filter_string:
        raise UsageError("--filter selects runs in a store: use --run or --experiment with an archive")
    if skip_existing_models and not registry:
        raise UsageError("--skip-existing-models goes with --registry")
    selection = Selection(run_refs, experiment, filter_string, False)
    with store_refusals(tracking_uri, source or ""):
        _, bundles, close, models = read_source(str(archive) if archive is not None else str(source), selection,
                                                app.reporter, registry)
        try:
            summary = import_runs(bundles, tracking_uri, app.reporter, models() if registry else None,
                                  skip_existing_models)
        finally:
            close()
    _report(app, summary, as_json)


def _report(app: App, summary: Summary, as_json: bool) -> None:
    if as_json:
        print_json("transfer-summary", summary.to_dict())
    else:
        click.echo(summary.line())


__all__ = ["export_command", "import_command"]
