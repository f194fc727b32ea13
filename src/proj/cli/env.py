"""``proj env list|prune|lock``: the environment cache, and a project's lock file."""
from __future__ import annotations

import click

from proj.cli.main import App
from proj.cli.render import human_size, json_option, print_json, table, when
from proj.envs.registry import ENV_MANAGERS


@click.group()
def env() -> None:
    """List, prune and lock cached environments."""


@env.command("list")
@json_option
@click.pass_obj
def list_cmd(app: App, as_json: bool) -> None:
    """Cached environments of every backend (and the Docker images proj built), most recently used first."""
    from proj.envs.inventory import listing

    found = listing()
    entries = found.entries
    for note in found.notes:
        app.info(note)
    if as_json:
        print_json("env-list", [e.to_dict() for e in entries])
        return
    rows = [(e.key, e.backend, e.python, human_size(e.size_bytes), when(e.last_used), e.runs) for e in entries]
    click.echo(table(("KEY", "BACKEND", "PYTHON", "SIZE", "LAST USED", "RUNS"), rows) if rows
               else "no cached environments")


@env.command("prune")
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), metavar="DAYS",
              help="Remove environments and images not used for DAYS days.")
@click.option("--all", "everything", is_flag=True, help="Remove every cached environment and proj-built image.")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@json_option
@click.pass_obj
def prune(app: App, older_than: float | None, everything: bool, dry_run: bool, as_json: bool) -> None:
    """Remove unused environments (and always the debris of interrupted builds)."""
    from proj.envs.inventory import prune_envs

    result = prune_envs(older_than_days=older_than, everything=everything, dry_run=dry_run)
    if as_json:
        print_json("env-prune", result.to_dict())
        return
    for note in result.notes:
        app.info(note)
    verb = "would remove" if dry_run else "removed"
    for entry in result.removed:
        click.echo(f"{verb} {entry.key} ({entry.backend}, {human_size(entry.size_bytes)}, last used {when(entry.last_used)})")
    for name in result.leftovers:
        click.echo(f"{verb} {name} (an interrupted build)")
    for name in result.retired:
        click.echo(f"{verb} {name} (replaced by --refresh-env, no longer in use)")
    for key in result.busy:
        click.echo(f"kept {key} (a running run uses it)")
    for failure in result.failed:  # e.g. an image a stopped container still uses: the rest was pruned
        click.echo(f"could not remove {failure['key']}: {failure['reason']}")
    freed = sum(e.size_bytes for e in result.removed)
    click.echo(f"{verb} {len(result.removed)} environment(s), {human_size(freed)}; {result.kept} kept")
    if older_than is None and not everything:
        app.info("only interrupted builds are pruned without --older-than DAYS or --all")


@env.command("lock")
@click.argument("uri", default=".")
@click.option("-v", "--version", "version", help="Git branch, tag or commit.")
@click.option("--env-manager", type=click.Choice(ENV_MANAGERS), help="Override the environment backend.")
@click.pass_obj
def lock(app: App, uri: str, version: str | None, env_manager: str | None) -> None:
    """Resolve a project's environment and write its lock next to its env file (commit it)."""
    from proj.pipeline.lock import lock_project

    path = lock_project(uri, version=version, env_manager=env_manager, echo=app.info)
    click.echo(str(path))
