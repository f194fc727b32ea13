"""``proj validate``: check a project's MLproject and env spec, and show its entry points and parameters."""
from __future__ import annotations

from typing import Any

import click

from proj.cli.main import App
from proj.cli.render import print_json, table


@click.command()
@click.argument("uri", default=".")
@click.option("-v", "--version", "version", help="Git branch, tag or commit.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--strict", is_flag=True,
              help="Fail (exit 2) on what MLflow accepts but proj warns about: unknown keys or types, quoted placeholders.")
@click.pass_obj
def validate(app: App, uri: str, version: str | None, as_json: bool, strict: bool) -> None:
    """Check the MLproject (schema, placeholders, env files) and list its entry points."""
    from proj.envs.registry import choose_env
    from proj.errors import ProjectError
    from proj.pipeline.check import check_project_env
    from proj.project.spec import check_defaults, load_project
    from proj.sources.resolve import resolve_source

    project = load_project(resolve_source(uri, version).project_dir)
    findings = [*project.warnings, *project.nonstandard]
    if strict and findings:
        more = len(findings) - 1
        raise ProjectError(findings[0] + (f" (and {more} more finding{'s' * (more > 1)})" if more else "")
                           + " [--strict]")
    for warning in project.warnings:  # on stderr, even with -q: stdout stays the report (or the JSON)
        app.warn(warning)
    check_defaults(project)
    choice = choose_env(project)
    check_project_env(choice)  # the same checks (and exit codes) as `proj run`, without building or a daemon
    entries: dict[str, dict[str, Any]] = {name: {"command": ep.command,
                      "parameters": {p.name: {"type": p.type, "default": p.default, "required": p.required}
                                     for p in ep.parameters.values()}}
               for name, ep in project.entry_points.items()}
    if as_json:
        print_json("project", {"root": str(project.root), "name": project.name, "file": str(project.file or ""),
                               "environment": choice.describe(), "environment_spec": "OK",
                               "entry_points": entries, "warnings": list(project.warnings)})
        return
    warned = f" with {len(project.warnings)} warning{'s' * (len(project.warnings) > 1)}" if project.warnings else ""
    click.echo(f"{project.file or project.root}: OK{warned}" + (f" (project {project.name})" if project.name else ""))
    click.echo(f"environment: {choice.describe()}")
    click.echo("environment spec: OK")
    if not entries:
        click.echo("no entry points: run a script with -e script.py or -e script.sh")
    for name, ep in entries.items():
        click.echo(f"\nentry point {name}: {ep['command']}")
        rows = [(p, d["type"], "required" if d["required"] else repr(d["default"])) for p, d in ep["parameters"].items()]
        if rows:
            click.echo("\n".join("  " + line for line in table(("PARAM", "TYPE", "DEFAULT"), rows).splitlines()))
