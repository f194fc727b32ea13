"""``proj models register|versions|registered|alias|stage|protect|tag|describe|rename|delete|history|lineage``:
the model registry's commands (attached to the ``models`` group), each a thin call into proj.registry."""
from __future__ import annotations

from typing import Any

import click

from proj.cli.main import App
from proj.cli.render import human_size, json_option, print_json, table, tracking_option, when
from proj.errors import UsageError

reason_option = click.option("--reason", help="Why (kept in the history; required to move a protected alias or stage).")
STAGE_CHOICES = ("None", "Staging", "Production", "Archived")


def _write_store(tracking_uri: str | None, create: bool = False) -> Any:
    from proj.registry import local_store

    return local_store(tracking_uri, write=True, create=create)


def _read_store(tracking_uri: str | None) -> Any:
    from proj.registry import local_store

    return local_store(tracking_uri, write=False)


def split_target(target: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME/VERSION`` (a registered model's name has no ``/``)."""
    name, sep, version = target.rpartition("/")
    if not sep:
        return target, None
    if not version.isdigit():
        raise UsageError(f"{target!r}: expected NAME or NAME/VERSION with a version number, got {version!r}")
    return name, int(version)


@click.command("register")
@click.argument("source")
@click.argument("name")
@click.option("--description", help="The new version's description.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag on the new version (repeatable).")
@reason_option
@tracking_option
@click.pass_obj
def register(app: App, source: str, name: str, description: str | None, tags: tuple[str, ...], reason: str | None,
             tracking_uri: str | None) -> None:
    """Register SOURCE as the next version of NAME (created if new); prints the version number.

    SOURCE: runs:/RUN/path, RUN[/PATH], models:/m-<id>, models:/NAME/VERSION (or /STAGE, /latest, @ALIAS),
    or a local MLflow model directory. Its files are copied into the store, so the version outlives the run.
    """
    from proj.registry.service import register as do_register

    version = do_register(_write_store(tracking_uri, create=True), source, name, description=description,
                          tags=dict(_pair(t) for t in tags), reason=reason)
    app.info(f"registered {version.source} as models:/{version.name}/{version.version} "
             f"(files sha256 {str(version.files_sha256)[:16]})")
    click.echo(version.version)


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"{text!r}: expected KEY=VALUE")
    return key, value


@click.command("registered")
@click.option("--filter", "filter_string", help="MLflow's filter, e.g. \"name LIKE 'fraud%'\".")
@tracking_option
@json_option
def registered(filter_string: str | None, tracking_uri: str | None, as_json: bool) -> None:
    """Registered models, by name."""
    from proj.tracking.open import existing_store

    store = existing_store(tracking_uri)
    found: list[Any] = []
    token = None
    while store is not None:
        page, token = store.search_registered_models(filter_string, page_token=token)
        found += page
        if not token:
            break
    if as_json:
        print_json("registered-model-list", [_asdict(m) for m in found])
        return
    rows = [(m.name, ", ".join(f"v{v.version} {v.current_stage}" for v in m.latest_versions) or "-",
             ", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items())) or "-", when(m.last_updated_time))
            for m in found]
    click.echo(table(("NAME", "LATEST", "ALIASES", "UPDATED"), rows) if rows else "no registered models")


def _asdict(record: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(record)


@click.command("versions")
@click.argument("name")
@tracking_option
@json_option
def versions(name: str, tracking_uri: str | None, as_json: bool) -> None:
    """Every version of NAME: stage, aliases, run, source."""
    from proj.registry.service import versions as list_versions

    found = list_versions(_read_store(tracking_uri), name)
    if as_json:
        print_json("model-version-list", [_asdict(v) for v in found])
        return
    rows = [(v.version, v.current_stage, ", ".join(v.aliases) or "-", (v.run_id or "-")[:12], v.source,
             when(v.creation_time)) for v in found]
    click.echo(table(("VERSION", "STAGE", "ALIASES", "RUN", "SOURCE", "CREATED"), rows) if rows
               else f"registered model {name} has no versions")


@click.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int, required=False)
@click.option("--delete", "remove", is_flag=True, help="Delete the alias instead of setting it.")
@click.option("--require-verdict", type=click.Choice(("identical", "within-tolerance")),
              help="Refuse a version whose run has not been reproduced (`proj reproduce`) with this verdict.")
@reason_option
@tracking_option
@click.pass_obj
def alias(app: App, name: str, alias: str, version: int | None, remove: bool, require_verdict: str | None,
          reason: str | None, tracking_uri: str | None) -> None:
    """Point ALIAS of NAME at VERSION (moving it if set), or --delete it."""
    from proj.registry import service

    store = _write_store(tracking_uri)
    if remove:
        if version is not None:
            raise UsageError("--delete takes NAME ALIAS only, no VERSION")
        if service.delete_alias(store, name, alias, reason=reason):
            app.info(f"deleted alias {alias} of {name}")
        else:
            app.warn(f"registered model {name} has no alias {alias}; nothing deleted")
        return
    if version is None:
        raise UsageError(f"give the VERSION for alias {alias} (proj models alias NAME ALIAS VERSION), or --delete")
    service.set_alias(store, name, alias, version, reason=reason, require_verdict=require_verdict)
    app.info(f"models:/{name}@{alias} -> version {version}")


@click.command("stage")
@click.argument("name")
@click.argument("version", type=int)
@click.argument("stage")
@click.option("--archive-existing", is_flag=True, help="Move the other versions in STAGE to Archived.")
@reason_option
@tracking_option
@click.pass_obj
def stage(app: App, name: str, version: int, stage: str, archive_existing: bool, reason: str | None,
          tracking_uri: str | None) -> None:
    """Move VERSION of NAME to STAGE (None, Staging, Production, Archived; MLflow's deprecated stages)."""
    from proj.registry.service import transition

    moved = transition(_write_store(tracking_uri), name, version, stage, archive_existing=archive_existing,
                       reason=reason)
    app.info(f"version {version} of {name} is now in stage {moved.current_stage}")


@click.command("protect")
@click.argument("name")
@click.option("--alias", "alias_name", help="The alias to protect.")
@click.option("--stage", "stage_name", help="The stage to protect (e.g. Production).")
@click.option("--off", is_flag=True, help="Lift the protection (needs --reason).")
@reason_option
@tracking_option
@click.pass_obj
def protect(app: App, name: str, alias_name: str | None, stage_name: str | None, off: bool, reason: str | None,
            tracking_uri: str | None) -> None:
    """Protect an alias or a stage of NAME: moving it then needs --reason."""
    from proj.registry.service import protect as do_protect

    key = do_protect(_write_store(tracking_uri), name, alias=alias_name, stage=stage_name, protected=not off,
                     reason=reason)
    kind = "alias" if alias_name is not None else "stage"
    app.info(f"{kind} {key} of {name} is {'no longer ' if off else ''}protected")


@click.command("tag")
@click.argument("target", metavar="NAME[/VERSION]")
@click.argument("pair", metavar="KEY=VALUE")
@click.option("--delete", "remove", is_flag=True, help="Delete tag KEY (give KEY only).")
@reason_option
@tracking_option
def tag(target: str, pair: str, remove: bool, reason: str | None, tracking_uri: str | None) -> None:
    """Set (or --delete) a tag on a registered model or one of its versions."""
    from proj.registry import service

    name, version = split_target(target)
    if remove:
        service.delete_tag(_write_store(tracking_uri), name, version, pair, reason=reason)
        return
    key, value = _pair(pair)
    service.set_tag(_write_store(tracking_uri), name, version, key, value, reason=reason)


@click.command("describe")
@click.argument("target", metavar="NAME[/VERSION]")
@click.argument("text")
@reason_option
@tracking_option
def describe(target: str, text: str, reason: str | None, tracking_uri: str | None) -> None:
    """Set the description of a registered model or one of its versions."""
    from proj.registry.service import describe as do_describe

    name, version = split_target(target)
    do_describe(_write_store(tracking_uri), name, version, text, reason=reason)


@click.command("rename")
@click.argument("old")
@click.argument("new")
@reason_option
@tracking_option
@click.pass_obj
def rename(app: App, old: str, new: str, reason: str | None, tracking_uri: str | None) -> None:
    """Rename a registered model (its history follows it)."""
    from proj.registry.service import rename as do_rename

    do_rename(_write_store(tracking_uri), old, new, reason=reason)
    app.info(f"renamed registered model {old} to {new}")


@click.command("delete")
@click.argument("target", metavar="NAME[/VERSION]")
@reason_option
@tracking_option
@click.pass_obj
def delete(app: App, target: str, reason: str | None, tracking_uri: str | None) -> None:
    """Delete a registered model (all its versions) or one version; the history keeps them."""
    from proj.registry.service import delete as do_delete

    name, version = split_target(target)
    do_delete(_write_store(tracking_uri), name, version, reason=reason)
    app.info(f"deleted {'version ' + str(version) + ' of ' if version is not None else 'registered model '}{name}")


@click.command("history")
@click.argument("name")
@click.option("--at", "at", metavar="TIME", help="The model's state at TIME (ISO 8601, local time unless a zone is given).")
@tracking_option
@json_option
def history(name: str, at: str | None, tracking_uri: str | None, as_json: bool) -> None:
    """Every change to NAME (who, when, from -> to, why), or with --at its stages and aliases at that time."""
    from proj.registry import timeline as hist

    store = _read_store(tracking_uri)
    if at is not None:
        state = hist.state_at(store, name, hist.parse_time(at))
        if as_json:
            print_json("model-state", state.to_dict())
            return
        click.echo(render_state(state))
        return
    found = hist.events(store, name)
    if as_json:
        print_json("model-history", [_asdict(e) for e in found])
        return
    rows = [(when(e.time), e.user or "-", e.model, hist.describe_event(e), e.reason or "") for e in found]
    click.echo(table(("TIME", "USER", "MODEL", "CHANGE", "REASON"), rows))


def render_state(state: Any) -> str:
    head = f"registered model {state.name} at {when(state.time)} ({state.events} events)"
    if not state.exists:
        return head + ": it did not exist then"
    lines = [head]
    for name in STAGE_CHOICES:
        held = state.in_stage(name)
        if held:
            lines.append(f"  {name:<11} " + ", ".join(f"v{v}" for v in held))
    lines += [f"  alias {a} -> v{v}" for a, v in sorted(state.aliases.items())]
    return "\n".join(lines)


@click.command("lineage")
@click.argument("model_uri")
@tracking_option
@json_option
def lineage(model_uri: str, tracking_uri: str | None, as_json: bool) -> None:
    """MODEL_URI's version -> run -> source commit and patch -> environment lock -> inputs -> metrics, and
    whether the run was reproduced."""
    from proj.registry.trace import lineage as trace

    info = trace(_read_store(tracking_uri), model_uri)
    if as_json:
        print_json("model-lineage", info)
        return
    click.echo(render_lineage(info))


def render_lineage(info: dict[str, Any]) -> str:
    lines = [info["uri"]]
    v = info["version"]
    if v:
        aliases = f"; aliases {', '.join(v['aliases'])}" if v["aliases"] else ""
        state = "intact" if v["intact"] else "DAMAGED: " + "; ".join(v["problems"])
        lines.append(f"version     {v['name']} v{v['version']} ({v['stage']}{aliases}), {v['files']} files, "
                     f"{human_size(v['size'])}, sha256 {str(v['files_sha256'])[:16]}, {state}")
    run = info.get("run")
    if not run:
        missing = info.get("run_missing")
        lines.append(f"run         {missing} (not in this store)" if missing else "run         none")
        return "\n".join(lines)
    lines.append(f"run         {run['id']} {run['status']}, experiment {run['experiment']}, "
                 f"{run['entry_point']}: {run['command']}")
    src = info["source"]
    where = f" @ {src['commit']}" if src["commit"] else ""
    lines.append(f"source      {src['uri']}{where}" + (f" (remote {src['remote']})" if src["remote"] else ""))
    patch = src["patch"]
    if src["dirty"] and patch:
        lines.append(f"  dirty     uncommitted patch sha256 {str(patch['sha256'])[:16]}, {patch['files']} files, "
                     f"{patch['bytes']} bytes" + ("" if patch["intact"] else " (the run folder's copy is missing or changed)"))
    env = info["environment"]
    lines.append(f"env         {env['backend']}, {env['lock_format'] or 'no'} lock"
                 + (f" sha256 {str(env['lock_sha256'])[:16]}, {env['packages']} packages" if env["lock_format"] else "")
                 + (f", python {env['python']}" if env["python"] else ""))
    for name, inp in info["inputs"].items():
        lines.append(f"input       {name}: {inp['kind']} {inp['path']} sha256 {str(inp['sha256'])[:16]}")
    for key, value in info["metrics"].items():
        lines.append(f"metric      {key} = {value:.6g}")
    again = info["reproduced"]
    lines.append(f"reproduced  {again['verdict']} (run {str(again['run_id'])[:12]}, {when(again['time'])})"
                 if again["verdict"] else f"reproduced  never (`proj reproduce {run['id'][:12]}`)")
    return "\n".join(lines)


COMMANDS = (register, registered, versions, alias, stage, protect, tag, describe, rename, delete, history, lineage)
