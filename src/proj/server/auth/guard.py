"""The decisions the middleware asks for, made in a worker thread (the stores are sync): who the caller is,
whether a rule lets it through, how a search is narrowed, what of an answer it may see."""
from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlparse

from proj.auth.permissions import EDIT, EXPERIMENT, MANAGE, READ, REGISTERED_MODEL, Permission
from proj.auth.policy import Identity, Policy, identify
from proj.auth.ratelimit import FailedLogins
from proj.auth.store import AuthStore, User
from proj.errors import NotFound, ProjError, UsageError
from proj.server import artifact_paths as ap
from proj.server.auth import rules as r
from proj.tracking.records import ALL
from proj.tracking.store import RunStore

Fields = dict[str, Any]
_CACHE_MAX = 10_000
_VERSIONS_PAGE = 10_000
_MAX_RUN_IDS = 1000  # every endpoint with a list of runs takes at most 100 (MAX_RUNS_BULK_HISTORY, ui's MAX_RUNS)


class Denied(Exception):
    """The rule refuses the request: 403 PERMISSION_DENIED, audited with what was needed on what."""

    def __init__(self, what: str, resource: tuple[str, str] | None, need: Permission | None) -> None:
        super().__init__(what)
        self.resource = resource
        self.need = need


@dataclass
class Verdict:
    """What the middleware does with an allowed request: pass it on, narrowed (``narrow``: the experiment ids a
    search keeps, None: unchanged), or answer ``answer`` without calling the handler."""

    narrow: list[str] | None = None
    answer: dict[str, Any] | None = None


@dataclass
class _Seen:
    """A credential verified with scrypt once; later requests with it re-read the user (or token) and compare
    the stored hash, so a changed password, a revoked token or a deleted user takes effect at once, in every
    worker, without paying scrypt on every request."""

    user_id: int
    token_id: str | None
    stored_hash: str


def _one(fields: Fields, name: str, alias: str | None = None) -> str | None:
    value = fields.get(name)
    if value is None and alias:
        value = fields.get(alias)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None or value == "" else str(value)


def _many(fields: Fields, name: str) -> list[str]:
    """A repeatable field: a JSON list, repeated query parameters, or comma-joined values (the UI's)."""
    value = fields.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        out += [part for part in str(item).split(",") if part] if isinstance(item, str) else [str(item)]
    return out


@dataclass
class ServerAuth:
    """The server's auth: the auth store of the run store (proj.auth.open; one connection per thread), the
    policy, the failed-login limiter and the cache of verified credentials."""

    opened: AuthStore  # the first handle, created and migrated before any request; each thread reopens it
    default: Permission
    tracking: Callable[[], RunStore]  # the calling thread's run store (ServerState.store)
    limiter: FailedLogins = field(default_factory=FailedLogins)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _seen: dict[bytes, _Seen] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.policy = Policy(self.default)
        self._first = self.opened

    def store(self) -> AuthStore:
        found: AuthStore | None = getattr(self._local, "store", None)
        if found is None:
            found = self._local.store = self._first.reopen()
        return found

    # ---- authentication ----

    def authenticate(self, header: str) -> Identity | None:
        """The caller of ``Authorization: Basic ...`` (a user's password) or ``Bearer ...`` (proj's API token)."""
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()
        store = self.store()
        seen = self._seen.get(key)
        if seen is not None:
            ident = self._recheck(store, seen)
            if ident is not None:
                return ident
            self._seen.pop(key, None)
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "basic":
            user = self._password(store, value.strip())
            if user is None:
                return None
            self._remember(key, _Seen(user.id, None, user.password_hash))
            return identify(store, user)
        if scheme.lower() == "bearer":
            token = store.authenticate_token(value.strip(), time.time())
            found = store.user_by_id(token.user_id) if token else None
            if token is None or found is None:
                return None
            self._remember(key, _Seen(found.id, token.id, token.secret_hash))
            return identify(store, found, token)
        return None

    @staticmethod
    def _password(store: AuthStore, value: str) -> User | None:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        return store.authenticate(username, password) if sep else None

    @staticmethod
    def _recheck(store: AuthStore, seen: _Seen) -> Identity | None:
        user = store.user_by_id(seen.user_id)
        if user is None:
            return None
        if seen.token_id is None:
            return identify(store, user) if user.password_hash == seen.stored_hash else None
        token = store.get_token(seen.token_id)  # its row only: a user may hold many tokens
        if token is None or token.user_id != user.id or token.secret_hash != seen.stored_hash or token.revoked is not None or (
                token.expires is not None and token.expires <= time.time()):
            return None
        return identify(store, user, token)

    def _remember(self, key: bytes, seen: _Seen) -> None:
        with self._lock:
            if len(self._seen) >= _CACHE_MAX:
                self._seen.clear()
            self._seen[key] = seen

    # ---- authorization ----

    def check(self, ident: Identity, rule: r.Rule, route: str, method: str, fields: Fields,
              tracking: RunStore) -> Verdict:
        """Raise Denied, NotFound (the named resource does not exist), or answer how to go on."""
        if ident.is_admin and rule.kind not in (r.EXPERIMENT_IDS,):
            return Verdict()
        checks: dict[str, Callable[[], Verdict]] = {
            r.AUTHENTICATED: Verdict,
            r.FILTERED: Verdict,  # the answer is filtered instead
            r.ADMIN: lambda: self._deny("admin rights", None, None),
            r.SELF: lambda: self._self(ident, fields, method),
            r.CREATE: lambda: Verdict() if ident.can_create else self._deny("a token that may create", None, EDIT),
            r.EXPERIMENT: lambda: self._experiment(ident, _one(fields, rule.field or ""), rule.need, tracking),
            r.EXPERIMENT_NAME: lambda: self._experiment_name(ident, fields, rule, tracking),
            r.RUN: lambda: self._run(ident, _one(fields, rule.field or "", "run_uuid"), rule.need, tracking),
            r.RUNS: lambda: self._runs(ident, _many(fields, rule.field or ""), rule.need, tracking),
            r.LOGGED_MODEL: lambda: self._logged_model(ident, _one(fields, rule.field or ""), rule.need, tracking),
            r.MODEL: lambda: self._model(ident, fields, rule, route, tracking),
            r.VERSION: lambda: self._version(ident, fields, rule, tracking),
            r.ARTIFACT: lambda: self._artifact(ident, _one(fields, rule.field or ""), rule.need, tracking),
            r.EXPERIMENT_IDS: lambda: self._narrow(ident, _many(fields, rule.field or ""), route, tracking),
            r.RESOURCE: lambda: self._resource(ident, fields, tracking),
        }
        return checks.get(rule.kind, lambda: self._deny("a rule for this endpoint", None, None))()

    @staticmethod
    def _deny(what: str, resource: tuple[str, str] | None, need: Permission | None) -> Verdict:
        raise Denied(what, resource, need)

    def _self(self, ident: Identity, fields: Fields, method: str) -> Verdict:
        if ident.read_only and method != "GET":
            return self._deny("a token that may write", None, EDIT)
        if _one(fields, "username") in (None, ident.username):
            return Verdict()
        return self._deny("admin rights (or to be that user)", None, None)

    def experiment_of_run(self, tracking: RunStore, run_id: str) -> str:
        try:
            run = tracking.get_run(run_id)
        except NotFound:
            run = None
        if run is None or run.id != run_id:  # the store resolves prefixes, which a client never means
            raise NotFound(f"Run with id={run_id[:64]} not found")
        return str(run.experiment_id)

    def _need_experiment(self, ident: Identity, experiment_id: str, need: Permission) -> None:
        if not self.policy.experiment(ident, experiment_id).allows(need):
            raise Denied(f"{need.name} on experiment {experiment_id}", (EXPERIMENT, experiment_id), need)

    def _experiment(self, ident: Identity, experiment_id: str | None, need: Permission,
                    tracking: RunStore) -> Verdict:
        if experiment_id is None:
            return Verdict()  # the handler refuses the missing field with MLflow's message
        self._need_experiment(ident, experiment_id, need)
        return Verdict()

    def _experiment_name(self, ident: Identity, fields: Fields, rule: r.Rule, tracking: RunStore) -> Verdict:
        name = _one(fields, rule.field or "")
        found = tracking.get_experiment_by_name(name) if name else None
        if found is not None:
            self._need_experiment(ident, str(found.id), rule.need)
        return Verdict()

    def _run(self, ident: Identity, run_id: str | None, need: Permission, tracking: RunStore) -> Verdict:
        if run_id is not None:
            self._need_experiment(ident, self.experiment_of_run(tracking, run_id), need)
        return Verdict()

    def _runs(self, ident: Identity, run_ids: list[str], need: Permission, tracking: RunStore) -> Verdict:
        if len(run_ids) > _MAX_RUN_IDS:  # refused, not checked in part: a run past the cap would go unchecked
            raise UsageError(f"Invalid value {len(run_ids)} for parameter 'run_ids' supplied: at most {_MAX_RUN_IDS} "
                             "runs per request.")
        for run_id in run_ids:
            self._need_experiment(ident, self.experiment_of_run(tracking, run_id), need)
        return Verdict()

    def _logged_model(self, ident: Identity, model_id: str | None, need: Permission, tracking: RunStore) -> Verdict:
        if model_id is not None:
            model = tracking.get_logged_model(model_id, allow_deleted=True)
            self._need_experiment(ident, str(model.experiment_id), need)
        return Verdict()

    # the registry

    def produced_in(self, tracking: RunStore, name: str) -> list[str]:
        """The experiments of the runs a registered model's versions came from."""
        experiments: set[str] = set()
        for version in self._versions(tracking, lambda v: v.name == name, name):
            if version.run_id:
                try:
                    experiments.add(self.experiment_of_run(tracking, version.run_id))
                except NotFound:
                    continue
        return sorted(experiments)

    @staticmethod
    def _versions(tracking: RunStore, keep: Callable[[Any], bool], name: str | None = None) -> list[Any]:
        quoted = None if name is None else (f"'{name}'" if "'" not in name else f'"{name}"' if '"' not in name
                                            else None)
        filter_string = f"name = {quoted}" if quoted else None
        found: list[Any] = []
        token: str | None = None
        while True:
            page, token = tracking.search_model_versions(filter_string, max_results=_VERSIONS_PAGE, page_token=token)
            found += [v for v in page if keep(v)]
            if not token:
                return found

    def model_permission(self, ident: Identity, name: str, tracking: RunStore) -> Permission:
        return self.policy.registered_model(ident, name, self.produced_in(tracking, name))

    def _need_model(self, ident: Identity, name: str, need: Permission, tracking: RunStore) -> None:
        if not self.model_permission(ident, name, tracking).allows(need):
            raise Denied(f"{need.name} on registered model {name}", (REGISTERED_MODEL, name), need)

    def _model(self, ident: Identity, fields: Fields, rule: r.Rule, route: str, tracking: RunStore) -> Verdict:
        name = _one(fields, rule.field or "")
        if name is None:
            return Verdict()
        self._need_model(ident, name, rule.need, tracking)
        if r.route_key(route) == "/mlflow/model-versions/create":
            self._source(ident, fields, tracking)
        return Verdict()

    def _source(self, ident: Identity, fields: Fields, tracking: RunStore) -> None:
        """A new version's files are copied from its source: the user must be able to read them there."""
        run_id = _one(fields, "run_id")
        if run_id:
            self._need_experiment(ident, self.experiment_of_run(tracking, run_id), READ)
        source = _one(fields, "source") or ""
        parsed = urlparse(source)
        if parsed.scheme == "runs":
            self._need_experiment(ident, self.experiment_of_run(tracking, parsed.netloc or
                                                                source[len("runs:/"):].split("/")[0]), READ)
        elif parsed.scheme == "models" and (parsed.netloc or parsed.path.strip("/")).startswith("m-"):
            self._logged_model(ident, (parsed.netloc or parsed.path.strip("/")).split("/")[0], READ, tracking)
        elif parsed.scheme == "mlflow-artifacts":
            self._artifact(ident, parsed.path.lstrip("/"), READ, tracking)
        else:  # a path on the server's own disk: only an admin may have the server copy from there
            raise Denied("admin rights to register from a path on the server", None, READ)

    def _version(self, ident: Identity, fields: Fields, rule: r.Rule, tracking: RunStore) -> Verdict:
        name = _one(fields, rule.field or "")
        if name is None:
            return Verdict()
        self._need_model(ident, name, rule.need, tracking)
        number = _one(fields, "version")
        if number is not None and number.isdigit():
            try:
                version = tracking.get_model_version(name, int(number))
            except NotFound:
                return Verdict()
            if not self.version_visible(ident, version.name, version.run_id, tracking):
                raise Denied(f"READ on the experiment of version {number}'s run", (REGISTERED_MODEL, name), READ)
        return Verdict()

    def version_visible(self, ident: Identity, name: str, run_id: str | None, tracking: RunStore) -> bool:
        experiment = None
        if run_id:
            try:
                experiment = self.experiment_of_run(tracking, run_id)
            except NotFound:
                experiment = None
        return self.policy.version_visible(ident, name, experiment)

    # artifacts

    def _artifact(self, ident: Identity, raw: str | None, need: Permission, tracking: RunStore) -> Verdict:
        if raw is None:
            return Verdict()
        try:
            target = ap.split_proxied(ap.clean(raw))
        except ProjError:
            if ident.is_admin:
                return Verdict()
            raise Denied("a path to a run's or logged model's artifacts", None, need) from None
        if target.kind == "run":
            self._need_experiment(ident, self.experiment_of_run(tracking, target.owner_id), need)
        elif target.kind == "model":
            self._logged_model(ident, target.owner_id, need, tracking)
        elif not any(self.model_permission(ident, v.name, tracking).allows(need)
                     and self.version_visible(ident, v.name, v.run_id, tracking)
                     for v in self._versions(tracking, lambda v: v.files_sha256 == target.owner_id)):
            raise Denied(f"{need.name} on a registered model with these files", None, need)
        return Verdict()

    # searches

    def readable_experiments(self, ident: Identity, tracking: RunStore) -> list[str]:
        found: list[str] = []
        token: str | None = None
        while True:
            page, token = tracking.search_experiments(view_type=ALL, max_results=1000, page_token=token)
            found += [e.id for e in page if self.policy.experiment(ident, e.id).can_read]
            if not token:
                return found

    def _narrow(self, ident: Identity, asked: list[str], route: str, tracking: RunStore) -> Verdict:
        """A search over experiments keeps only those the user can read (MLflow filters the answer instead,
        which leaves short pages)."""
        if ident.is_admin:
            return Verdict()
        keep = [e for e in asked if self.policy.experiment(ident, e).can_read] if asked \
            else self.readable_experiments(ident, tracking)
        if keep:
            return Verdict(narrow=None if keep == asked else keep)
        key = r.route_key(route)
        if key == "/mlflow/runs/search":
            return Verdict(answer={})
        if key == "/mlflow/logged-models/search":
            return Verdict(answer={"models": []})
        raise Denied("READ on any of the experiments asked for", (EXPERIMENT, ",".join(asked)), READ)

    def _resource(self, ident: Identity, fields: Fields, tracking: RunStore) -> Verdict:
        kind = _one(fields, "resource_type")
        resource_id = _one(fields, "resource_id") or ""
        if kind == EXPERIMENT:
            self._need_experiment(ident, resource_id, MANAGE)
        elif kind == REGISTERED_MODEL:
            self._need_model(ident, resource_id, MANAGE, tracking)
        else:
            return self._deny("admin rights for this resource type", None, MANAGE)
        return Verdict()

    # answers

    def filter_answer(self, ident: Identity, key: str, answer: dict[str, Any], tracking: RunStore) -> dict[str, Any]:
        """The parts of a search's answer the user may see (``key``: its list)."""
        if ident.is_admin:
            return answer
        items = answer.get(key)
        if key == "model_version":
            version = items or {}
            if not self.version_visible(ident, str(version.get("name")), version.get("run_id"), tracking):
                raise Denied("READ on the experiment of the version's run", None, READ)
            return answer
        if not isinstance(items, list):
            return answer
        if key == "experiments":
            kept = [e for e in items if self.policy.experiment(ident, str(e.get("experiment_id"))).can_read]
        elif key == "registered_models":
            kept = []
            for model in items:
                if self.model_permission(ident, str(model.get("name")), tracking).can_read:
                    if isinstance(model.get("latest_versions"), list):
                        model["latest_versions"] = [v for v in model["latest_versions"] if self.version_visible(
                            ident, str(v.get("name")), v.get("run_id"), tracking)]
                    kept.append(model)
        else:
            readable: dict[str, bool] = {}
            kept = []
            for version in items:
                name = str(version.get("name"))
                if name not in readable:
                    readable[name] = self.model_permission(ident, name, tracking).can_read
                if readable[name] and self.version_visible(ident, name, version.get("run_id"), tracking):
                    kept.append(version)
        answer = dict(answer)
        if kept:
            answer[key] = kept
        else:
            answer.pop(key, None)
        return answer

    def after(self, ident: Identity, rule: r.Rule, route: str, fields: Fields, answer: dict[str, Any]) -> None:
        """What follows a success: the creator's MANAGE grant, grants following a rename."""
        store = self.store()
        if rule.then == r.GRANT_CREATOR:
            if r.route_key(route) == "/mlflow/experiments/create":
                kind, resource_id = EXPERIMENT, str(answer.get("experiment_id") or "")
            else:
                kind, resource_id = REGISTERED_MODEL, str((answer.get("registered_model") or {}).get("name") or "")
            if resource_id:
                store.set_grant(ident.username, kind, resource_id, MANAGE.name)
                store.audit("grant", actor=ident.username, resource_type=kind, resource_id=resource_id,
                            target=ident.username, permission=MANAGE.name, detail="creator")
        elif rule.then == r.RENAME_MODEL:
            old, new = _one(fields, "name"), _one(fields, "new_name")
            if old and new:
                store.rename_resource(REGISTERED_MODEL, old, new)
