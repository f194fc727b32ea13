"""``proj run``: parse options into a RunRequest, hand it to the runner, exit with the entry point's code."""
from __future__ import annotations

import os
from typing import Any

import click

from proj.cli.main import App
from proj.cli.render import tracking_option
from proj.envs.registry import ENV_MANAGERS
from proj.errors import UsageError


def _utf8(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Refuse text that is not UTF-8 (argv bytes Python kept as surrogates) before anything is recorded.

    The store, the run folder and the entry point's environment all need real text; caught here it is one
    line naming the option, instead of a UnicodeEncodeError after the run record exists.
    """
    for text in value if isinstance(value, tuple) else (value,):
        if isinstance(text, str) and not _encodable(text):
            shown = repr(os.fsencode(text))[2:-1]
            raise UsageError(f"{param.opts[0]} {shown}: not valid UTF-8 text; pass names and values in UTF-8")
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@click.command(context_settings={"show_default": True})
@click.argument("uri", default=".")
@click.option("-e", "--entry-point", default="main", help="Entry point name, or a .py/.sh script in the project.")
@click.option("-v", "--version", "version", help="Git branch, tag or commit to run.")
@click.option("-P", "--param-list", "params", multiple=True, metavar="KEY=VALUE", callback=_utf8,
              help="A parameter (repeatable).")
@click.option("--env-manager", type=click.Choice(ENV_MANAGERS), help="Override the environment backend.")
@click.option("--experiment-name", envvar="PROJ_EXPERIMENT_NAME", callback=_utf8,
              help="Experiment to record the run under.")
@click.option("--run-name", callback=_utf8, help="A name for the run.")
@click.option("-T", "--tag", "tags", multiple=True, metavar="KEY=VALUE", callback=_utf8,
              help="A tag on the run (repeatable).")
@tracking_option
@click.option("--detach", is_flag=True, help="Start the run in the background and print its id.")
@click.option("--refresh-env", is_flag=True, help="Re-resolve and rebuild the environment.")
@click.option("--require-clean", is_flag=True, help="Refuse to run a git work tree with uncommitted changes.")
@click.option("-A", "--docker-args", multiple=True, metavar="KEY[=VALUE]", help="Extra docker run options.")
@click.option("--build-image/--no-build-image", default=True, help="Docker: build a project image (or mount the project).")
@click.option("--keep-container", is_flag=True, help="Docker: keep the container after the run.")
@click.option("--conda-frontend", type=click.Choice(["conda", "mamba", "micromamba"]),
              help="Conda: install with this executable instead of the built-in installer.")
@click.option("-q", "--quiet", is_flag=True, help="Only the entry point's own output (same as `proj -q run`).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the finished run as JSON on stdout (the entry point's stdout goes to stderr).")
@click.pass_obj
def run(app: App, uri: str, entry_point: str, version: str | None, params: tuple[str, ...], env_manager: str | None,
        experiment_name: str | None, run_name: str | None, tags: tuple[str, ...], tracking_uri: str | None,
        detach: bool, refresh_env: bool, require_clean: bool, docker_args: tuple[str, ...], build_image: bool,
        keep_container: bool, conda_frontend: str | None, quiet: bool, as_json: bool) -> int:
    """Run a project (a directory or a git URL, optionally URL#subdir)."""
    if quiet:
        app.reporter.quiet = True
    from proj.cli.render import print_json
    from proj.execution.process import install_sigterm_handler
    from proj.pipeline.reaper import open_to_act
    from proj.pipeline.request import RunOptions, RunRequest
    from proj.pipeline.run import submit
    from proj.project.params import parse_cli_params

    options = RunOptions(require_clean=require_clean, docker_args=tuple(docker_args), build_image=build_image,
                         keep_container=keep_container, conda_frontend=conda_frontend)
    req = RunRequest(uri=uri, entry_point=entry_point, params=parse_cli_params(params), version=version,
                     env_manager=env_manager, experiment=experiment_name, run_name=run_name,
                     tags=parse_cli_params(tags, "-T"), cwd=os.getcwd(), refresh_env=refresh_env, options=options)
    from proj.tracking.open import server_uri

    if detach and server_uri(tracking_uri):  # the detached worker re-opens the store by its local folder
        raise UsageError("--detach does not work with a tracking server (http(s) tracking URI) yet: run in the "
                         "foreground, or under nohup")
    install_sigterm_handler()
    # The store is checked only once the request is valid (runs whose runner died are collected then).
    done = submit(req, lambda: open_to_act(tracking_uri), app.reporter, detach=detach, stdout_to_stderr=as_json)
    if done.outcome is None:
        click.echo(done.run.id)
        return 0
    outcome = done.outcome
    where = "" if outcome.status == "FINISHED" else f"; logs in {outcome.run.run_dir}/logs"
    phase = f" in phase {outcome.run.failure_phase}" if outcome.run.failure_phase else ""
    app.info(f"run {outcome.run.id} {outcome.status}{phase} (exit code {outcome.exit_code}){where}")
    if as_json:
        print_json("run", outcome.run.to_dict())
    return outcome.exit_code
