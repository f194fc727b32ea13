"""``proj cache list|prune``: the git clone cache (bare repositories and per-commit checkouts)."""
from __future__ import annotations

from typing import Any

import click

from proj.cli.main import App
from proj.cli.render import json_option, print_json, table, when


@click.group()
def cache() -> None:
    """Inspect and prune the git clone cache."""


@cache.command("list")
@json_option
def list_cache(as_json: bool) -> None:
    """Cached repositories and checkouts, with their last use."""
    from proj.sources.gitcache import GitCache

    entries = GitCache().entries()
    rows: list[dict[str, Any]] = [{"kind": e.kind, "key": e.key, "commit": e.commit, "last_used": e.last_used,
                                   "path": str(e.path)} for e in entries]
    if as_json:
        print_json("cache-list", rows)
        return
    click.echo(table(("KIND", "REPOSITORY", "COMMIT", "LAST USED"),
                     [(r["kind"], r["key"], (r["commit"] or "")[:12], when(r["last_used"])) for r in rows])
               if rows else "the git cache is empty")


@cache.command("prune")
@click.option("--older-than", "days", type=click.FloatRange(min=0), default=30.0, show_default=True,
              metavar="DAYS", help="Remove entries not used for this many days.")
@click.option("--all", "everything", is_flag=True, help="Remove every cached repository and checkout.")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.pass_obj
def prune(app: App, days: float, everything: bool, dry_run: bool) -> None:
    """Remove unused clones and checkouts (and leftovers of interrupted ones)."""
    from proj.sources.gitcache import GitCache

    removed = GitCache().prune(days, everything=everything, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for entry in removed:
        click.echo(f"{verb} {entry.kind} {entry.key}" + (f" @ {entry.commit[:12]}" if entry.commit else ""))
    checkouts = sum(1 for e in removed if e.kind == "checkout")
    app.info(f"{verb} {checkouts} checkout(s) and {len(removed) - checkouts} repositor(ies)")
