"""``proj reproduce RUN``: rebuild a recorded run from its record, rerun it, and compare."""
from __future__ import annotations

import click

from proj.cli.main import App
from proj.cli.render import artifact_options, tracking_option
from proj.envs.registry import ENV_MANAGERS


@click.command()
@click.argument("run_ref")
@click.option("--tolerance", type=float, default=0.0, show_default=True, help="Relative tolerance for metrics.")
@click.option("--env-manager", type=click.Choice(ENV_MANAGERS), help="Rebuild with another backend (from the spec).")
@artifact_options
@tracking_option
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON on stdout.")
@click.pass_obj
def reproduce(app: App, run_ref: str, tolerance: float, env_manager: str | None, strict_artifacts: bool,
              ignore: tuple[str, ...], tracking_uri: str | None, as_json: bool) -> int:
    """Rerun RUN from its record (same commit and changes, same lock, same params) and compare.

    Artifacts are compared in levels: the same bytes, else the same archive contents (zip/tar members by
    content), else text differing only in volatile lines (timestamps, durations, hosts, pids, temp paths),
    else for MLflow models the same predictions on the model's input example, loaded in the reproduced env.

    Exit code: 0 identical or within tolerance, 1 differs, 2 could not be reproduced.
    """
    from proj.cli.render import print_json
    from proj.execution.process import install_sigterm_handler
    from proj.pipeline.reaper import open_to_act
    from proj.reproduce.compare import ArtifactOptions
    from proj.reproduce.rebuild import reproduce as run_reproduce

    install_sigterm_handler()
    result = run_reproduce(open_to_act(tracking_uri, create=False), run_ref, tolerance=tolerance, env_manager=env_manager,
                           reporter=app.reporter, options=ArtifactOptions(strict=strict_artifacts, ignore=ignore))
    for note in result.notes:
        app.warn(note)
    if as_json:
        print_json("reproduction", {"original": result.original.id, "reproduction": result.new.id,
                                    "notes": result.notes, **result.comparison.to_dict()})
    else:
        click.echo(f"reproduction run {result.new.id}")
        click.echo(result.comparison.render())
    return result.exit_code
