"""``proj models list|show|export``: the models runs produced (MLmodel directories) and registered versions;
the registry's own subcommands live in cli/models_registry.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from proj.cli.main import App
from proj.cli.models_registry import COMMANDS as REGISTRY_COMMANDS
from proj.cli.render import human_size, json_option, print_json, table, tracking_option, when


@click.group()
def models() -> None:
    """List, inspect and export the models runs produced; register, version and promote them."""


@models.command("list")
@click.option("--experiment", help="Only models of runs in this experiment.")
@tracking_option
@json_option
def list_models(experiment: str | None, tracking_uri: str | None, as_json: bool) -> None:
    """Recorded models, newest first."""
    from proj.tracking.open import existing_store

    store = existing_store(tracking_uri)
    records = store.list_models(experiment=experiment) if store else []
    if as_json:
        print_json("model-list", [m.to_dict() for m in records])
        return
    rows = [(f"{m.run_id[:12]}/{m.path}", ", ".join(m.flavors) or "-", human_size(m.size), len(m.files),
             "yes" if m.valid else "INVALID", m.origin, m.experiment, when(m.created)) for m in records]
    click.echo(table(("MODEL", "FLAVORS", "SIZE", "FILES", "VALID", "FROM", "EXPERIMENT", "CREATED"), rows)
               if rows else "no models recorded yet")


for _command in REGISTRY_COMMANDS:
    models.add_command(_command)


def run_ref(ref: str) -> str:
    """``runs:/RUN/path`` as proj's ``RUN/path``; anything else as given."""
    return ref[len("runs:"):].lstrip("/") if ref.startswith("runs:") else ref


@models.command("show")
@click.argument("ref", metavar="RUN[/PATH]|MODEL_URI")
@tracking_option
@json_option
def show(ref: str, tracking_uri: str | None, as_json: bool) -> None:
    """Flavors, signature, env files, lineage and files of one model (a run's, or a registered version:
    models:/NAME/VERSION, /STAGE, /latest, @ALIAS)."""
    from proj.models.query import describe, resolve_model
    from proj.tracking.open import open_store

    store = open_store(tracking_uri, create=False)
    if ref.startswith("models:"):
        from proj.registry.query import describe_version, find

        version = describe_version(store, find(store, ref))
        if as_json:
            print_json("model-version", version)
            return
        click.echo(render_version(version))
        return
    info = describe(store, resolve_model(store, run_ref(ref)))
    if as_json:
        print_json("model", info)
        return
    click.echo(render(info))


@models.command("export")
@click.argument("ref", metavar="RUN[/PATH]|MODEL_URI")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--allow-invalid", is_flag=True, help="Export a model whose MLmodel failed validation.")
@tracking_option
@click.pass_obj
def export(app: App, ref: str, dest: Path, allow_invalid: bool, tracking_uri: str | None) -> None:
    """Copy a model directory (a run's, or a registered version's stored copy) to DEST, checking every file
    against its recorded sha256."""
    from proj.models.query import export_model, resolve_model
    from proj.tracking.open import open_store

    store = open_store(tracking_uri, create=False)
    if ref.startswith("models:"):
        from proj.registry.query import export_version, find

        version = find(store, ref)
        out = export_version(store, version, dest.resolve())
        app.info(f"exported models:/{version.name}/{version.version} to {out}")
        return
    model = resolve_model(store, run_ref(ref))
    out = export_model(store, model, dest.resolve(), allow_invalid=allow_invalid)
    app.info(f"exported model {model.run_id[:12]}/{model.path} ({len(model.files)} files) to {out}")


def render(info: dict[str, Any]) -> str:
    lineage = info["lineage"]
    lines = [f"model      {info['run_id']}/{info['path']}",
             f"status     {'valid' if info['valid'] else 'INVALID: ' + str(info['reason'])}",
             f"dir        {info['dir']}",
             f"size       {human_size(info['size'])} in {len(info['files'])} files, from {info['origin']}",
             "env files  " + (f"from the run's {info['env_source']} lock" if info["env_source"] else "as written by the run"),
             "", "flavors"]
    for name, conf in (info["flavor_details"] or {}).items():
        details = ", ".join(f"{k}={v}" for k, v in conf.items() if v is not None and not isinstance(v, dict))
        lines.append(f"  {name:<16} {details}")
    if info["signature"]:
        lines += ["", "signature"] + [f"  {k:<8} {v}" for k, v in info["signature"].items() if v]
    lines += ["", "lineage",
              f"  run        {lineage['run_id']} ({lineage['status']}, experiment {lineage['experiment']})",
              f"  source     {lineage['source']}" + (f" @ {lineage['commit']}" if lineage["commit"] else "")
              + (" (dirty)" if lineage["dirty"] else ""),
              f"  entry      {lineage['entry_point']}: {lineage['command']}",
              f"  env        {lineage['env_backend']}, lock sha256 {str(lineage['lock_sha256'])[:16]}"]
    lines += [f"  param      {k} = {v}" for k, v in lineage["params"].items()]
    for name, text in info["env_files"].items():
        body = text.splitlines()
        lines += ["", f"{name} ({len(body)} lines)"] + [f"  {line}" for line in body[:12]]
        lines += [f"  ... {len(body) - 12} more"] if len(body) > 12 else []
    lines += ["", "files"] + [f"  {f['sha256'][:16]}  {human_size(f['size']):>9}  {f['path']}" for f in info["files"]]
    return "\n".join(lines)


def render_version(info: dict[str, Any]) -> str:
    lines = [f"model      {info['uri']} ({info['current_stage']}"
             + (f"; aliases {', '.join(info['aliases'])}" if info["aliases"] else "") + ")",
             f"source     {info['source']}", f"run        {info['run_id'] or '-'}",
             f"created    {when(info['creation_time'])} by {info['user_id'] or '-'}",
             f"stored     {info['storage_location']}",
             "files      " + ("intact" if info["intact"] else "DAMAGED: " + "; ".join(info["problems"]))]
    if info["description"]:
        lines.append(f"about      {info['description']}")
    lines += [f"tag        {k} = {v}" for k, v in sorted(info["tags"].items())]
    lines += ["", "files"] + [f"  {f['sha256'][:16]}  {human_size(f['size']):>9}  {f['path']}" for f in info["files"]]
    return "\n".join(lines)
