"""``proj validate``: check a project's MLproject and show its entry points and parameters."""
from __future__ import annotations

import click

from proj.cli.render import print_json, table


@click.command()
@click.argument("uri", default=".")
@click.option("-v", "--version", "version", help="Git branch, tag or commit.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def validate(uri: str, version: str | None, as_json: bool) -> None:
    """Check the MLproject (schema, placeholders, env files) and list its entry points."""
    from proj.envs.registry import choose_env
    from proj.project.spec import load_project
    from proj.sources.resolve import resolve_source

    project = load_project(resolve_source(uri, version).project_dir)
    choice = choose_env(project)
    entries = {name: {"command": ep.command,
                      "parameters": {p.name: {"type": p.type, "default": p.default, "required": p.required}
                                     for p in ep.parameters.values()}}
               for name, ep in project.entry_points.items()}
    if as_json:
        print_json("project", {"root": str(project.root), "name": project.name, "file": str(project.file or ""),
                               "environment": choice.describe(), "entry_points": entries})
        return
    click.echo(f"{project.file or project.root}: OK" + (f" (project {project.name})" if project.name else ""))
    click.echo(f"environment: {choice.describe()}")
    if not entries:
        click.echo("no entry points: run a script with -e script.py or -e script.sh")
    for name, ep in entries.items():
        click.echo(f"\nentry point {name}: {ep['command']}")
        rows = [(p, d["type"], "required" if d["required"] else repr(d["default"])) for p, d in ep["parameters"].items()]
        if rows:
            click.echo("\n".join("  " + line for line in table(("PARAM", "TYPE", "DEFAULT"), rows).splitlines()))
