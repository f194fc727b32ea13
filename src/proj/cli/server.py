"""``proj server``: MLflow's tracking protocol over the run store (starlette and uvicorn load only here), and
``proj server user|token|audit`` managing its users, API tokens and audit log (``--auth``)."""
from __future__ import annotations

import re
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from proj.auth.permissions import DEFAULTS as DEFAULT_PERMISSIONS
from proj.auth.ratelimit import MAX_FAILURES
from proj.errors import UsageError
from proj.settings import expand_user

if TYPE_CHECKING:
    from proj.auth.store import AuthStore

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
_STORE_HELP = ("The run store: a directory, file:// or sqlite:///path/proj.db (default: ./.proj, or "
               "PROJ_TRACKING_URI), or postgresql://user:pass@host:port/db (its run folders in "
               "--artifacts-destination); with --auth its users are in auth.db beside it (for a PostgreSQL "
               "store in the database itself, schema proj_auth).")
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_SIZE = re.compile(r"^(\d+)\s*([KMGT])?(?:I?B)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@click.group("server", invoke_without_command=True)
@click.option("--backend-store-uri", metavar="URI", help=_STORE_HELP)
@click.option("--artifacts-destination", metavar="DIR|s3://BUCKET[/PREFIX]",
              help="Where uploaded artifacts go (default: the store's own run folders): a local or network "
                   "directory, or an S3 bucket (credentials and region from the AWS_* variables, endpoint from "
                   "MLFLOW_S3_ENDPOINT_URL or AWS_ENDPOINT_URL). With a postgresql:// store and a bucket, the run "
                   "folders (logs, locks) are in PROJ_STORE_FILES or ./.proj.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each serves requests from a thread pool).")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="info logs one line per request.")
@click.option("--auth", is_flag=True,
              help="Require a user for every request (MLflow's basic-auth protocol; users from `proj server user "
                   "add`, API tokens from `proj server token create`).")
@click.option("--auth-default-permission", default="READ", show_default=True,
              type=click.Choice(DEFAULT_PERMISSIONS, case_sensitive=False),
              help="With --auth: what a user may do on an experiment or registered model nobody granted them.")
@click.option("--auth-failed-logins", default=MAX_FAILURES, show_default=True, type=click.IntRange(1, 1_000_000),
              metavar="N", help="With --auth: failed logins a client address may make per minute before its "
                                "requests are answered 429 (Retry-After) for the rest of that minute.")
@click.option("--max-artifact-size", default="20G", show_default=True, metavar="SIZE",
              help="The largest artifact file an upload may be (K, M, G, T: binary units; 0: no limit); a bigger "
                   "one is refused with 413 RESOURCE_LIMIT_EXCEEDED and nothing is stored.")
@click.option("--ssl-keyfile", metavar="FILE", help="Serve HTTPS with this private key (with --ssl-certfile).")
@click.option("--ssl-certfile", metavar="FILE", help="Serve HTTPS with this certificate (chain) in PEM.")
@click.pass_context
def server(ctx: click.Context, backend_store_uri: str | None, artifacts_destination: str | None, host: str,
           port: int, workers: int, log_level: str, auth: bool, auth_default_permission: str,
           auth_failed_logins: int, max_artifact_size: str, ssl_keyfile: str | None, ssl_certfile: str | None) -> None:
    """Serve MLflow's tracking REST API (and mlflow-artifacts) over proj's run store, so MLflow clients log to it."""
    ctx.obj = {"store": backend_store_uri}
    if ctx.invoked_subcommand is not None:
        return
    from proj.server.object_store import destination as parse_destination
    from proj.server.serve import serve

    destination = parse_destination(artifacts_destination) if artifacts_destination else None
    key = expand_user(ssl_keyfile, "--ssl-keyfile").resolve() if ssl_keyfile else None
    cert = expand_user(ssl_certfile, "--ssl-certfile").resolve() if ssl_certfile else None
    serve(backend_store_uri, destination, host, port, workers, log_level.lower(),
          auth_default=auth_default_permission.upper() if auth else None, auth_failed_logins=auth_failed_logins,
          ssl_keyfile=key, ssl_certfile=cert, max_artifact_bytes=_size(max_artifact_size, "--max-artifact-size"))


def _size(text: str, flag: str) -> int:
    found = _SIZE.match(text.strip().upper())
    if not found:
        raise UsageError(f"{flag} {text!r}: a size such as 500M, 20G or 1T (K, M, G, T in binary units), or 0 for none")
    return int(found.group(1)) << (10 * "BKMGT".index(found.group(2) or "B"))


def _store_option(f: Any) -> Any:
    return click.option("--backend-store-uri", "store_uri", metavar="URI", help=_STORE_HELP)(f)


def _auth_store(ctx: click.Context, store_uri: str | None, *, create: bool = False) -> "AuthStore":
    """The auth store of the run store the server would serve (``create``: with it, when neither exists yet;
    else a mistyped store is refused in one line, not made empty)."""
    from proj.auth.open import open_auth_store
    from proj.tracking.open import open_store

    uri = store_uri or (ctx.obj or {}).get("store")
    tracking = open_store(uri, create=create)
    root = tracking.root
    tracking.close()
    return open_auth_store(uri, root)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(text: str, flag: str) -> float:
    found = _DURATION.match(text.strip().lower())
    if not found or int(found.group(1)) == 0:
        raise UsageError(f"{flag} {text!r}: a duration such as 90m, 12h, 30d or 4w")
    return int(found.group(1)) * _UNITS[found.group(2)]


def _read_password(username: str) -> str:
    """The new user's password: prompted twice on a terminal, else the first line of stdin; never empty."""
    if sys.stdin.isatty():
        password = click.prompt(f"Password for {username}", hide_input=True, confirmation_prompt=True,
                                default="", show_default=False)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError(f"no password for {username}: give it on stdin (`proj server user add {username} < file`);"
                         " an empty password is refused")
    return str(password)


@server.group("user")
def user() -> None:
    """The users of `proj server --auth`."""


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="The user may do everything, including managing users.")
@_store_option
@click.pass_context
def user_add(ctx: click.Context, name: str, admin: bool, store_uri: str | None) -> None:
    """Add user NAME (the password is read from stdin; there is no default password)."""
    password = _read_password(name)  # before the store: a refused password leaves no store behind
    store = _auth_store(ctx, store_uri, create=True)
    store.create_user(name, password, is_admin=admin)
    store.audit("user-create", actor="cli", target=name, detail="admin" if admin else None)
    click.echo(f"user {name} added{' (admin)' if admin else ''}")


@user.command("list")
@_store_option
@click.pass_context
def user_list(ctx: click.Context, store_uri: str | None) -> None:
    """The users, one a line (name, admin)."""
    for found in _auth_store(ctx, store_uri).list_users():
        click.echo(f"{found.username}\t{'admin' if found.is_admin else '-'}")


@server.group("token")
def token() -> None:
    """API tokens (Bearer, MLFLOW_TRACKING_TOKEN) of `proj server --auth`: with an expiry and a scope."""


@token.command("create")
@click.option("--user", "username", required=True, help="Whose token: it acts as that user (never more).")
@click.option("--expires", default="30d", show_default=True, metavar="DURATION",
              help="How long it is valid: 90m, 12h, 30d, 4w, or 'never'.")
@click.option("--read-only", is_flag=True, help="It may only read, whatever the user may do.")
@click.option("--experiment", "experiment_id", metavar="ID", help="It reaches only this experiment.")
@click.option("--note", help="What the token is for (shown by `token list`).")
@_store_option
@click.pass_context
def token_create(ctx: click.Context, username: str, expires: str, read_only: bool, experiment_id: str | None,
                 note: str | None, store_uri: str | None) -> None:
    """Create an API token and print it once (it is stored only as a hash)."""
    until = None if expires.strip().lower() == "never" else time.time() + _duration(expires, "--expires")
    if experiment_id is not None and not experiment_id.isdigit():
        raise UsageError(f"--experiment {experiment_id!r}: an experiment id (a number)")
    store = _auth_store(ctx, store_uri)
    made, given = store.create_token(username, expires=until, read_only=read_only, experiment_id=experiment_id,
                                     note=note)
    store.audit("token-create", actor="cli", target=username, detail=f"token {made.id}")
    click.echo(given)
    scope = ", ".join(s for s in ("read-only" if read_only else "", f"experiment {experiment_id}"
                                  if experiment_id else "") if s) or "all of the user's permissions"
    click.echo(f"token {made.id} for {username}: {scope}, expires {_when(until)} (shown once: store it now; "
               "clients send it as MLFLOW_TRACKING_TOKEN)", err=True)


def _status(found: Any, now: float) -> str:
    if found.revoked is not None:
        return "revoked"
    if found.expires is not None and found.expires <= now:
        return "expired"
    return "active"


@token.command("list")
@click.option("--user", "username", help="Only this user's tokens.")
@_store_option
@click.pass_context
def token_list(ctx: click.Context, username: str | None, store_uri: str | None) -> None:
    """The tokens (never their secrets): id, user, status, expiry, scope, note."""
    now = time.time()
    for found in _auth_store(ctx, store_uri).list_tokens(username):
        scope = ",".join(s for s in ("read-only" if found.read_only else "",
                                     f"experiment={found.experiment_id}" if found.experiment_id else "") if s)
        click.echo(f"{found.id}\t{found.username}\t{_status(found, now)}\texpires {_when(found.expires)}\t"
                   f"{scope or 'full'}\t{found.note or ''}".rstrip())


@token.command("revoke")
@click.argument("token_id")
@_store_option
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str, store_uri: str | None) -> None:
    """Revoke the token with this id (see `token list`): refused from the next request on."""
    store = _auth_store(ctx, store_uri)
    found = store.revoke_token(token_id)
    store.audit("token-revoke", actor="cli", target=found.username, detail=f"token {found.id}")
    click.echo(f"token {found.id} of {found.username} revoked")


@server.command("audit")
@click.option("--since", metavar="WHEN", help="Only entries newer than this: a duration (90m, 12h, 7d) or a date "
                                              "(2026-12-01 or 2026-12-01T10:00).")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@_store_option
@click.pass_context
def audit(ctx: click.Context, since: str | None, limit: int, store_uri: str | None) -> None:
    """The audit log: every permission change, user and token change, and every refused request."""
    start = None
    if since:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=timezone.utc).timestamp() \
                if any(c in since for c in "-:") else time.time() - _duration(since, "--since")
        except ValueError:
            raise UsageError(f"--since {since!r}: a duration (90m, 12h, 7d) or a date (2026-12-01T10:00)") from None
    for e in _auth_store(ctx, store_uri).audit_entries(start, limit):
        resource = f"{e.resource_type}:{e.resource_id}" if e.resource_type else "-"
        click.echo("\t".join([_when(e.time), e.action, e.actor or "-", e.client or "-", resource, e.target or "-",
                              e.permission or "-", e.detail or ""]).rstrip())
