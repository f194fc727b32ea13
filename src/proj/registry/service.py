"""The registry's operations over a run store: register (files copied in by content), aliases, stages, tags,
descriptions, renames and deletes, with MLflow's rules and proj's protection and verdict checks on top."""
from __future__ import annotations

import getpass

from proj.errors import InvalidState, NotFound, UsageError
from proj.registry import files
from proj.registry.rules import (
    VERDICTS,
    alias_key,
    check_alias,
    need_reason,
    satisfies,
    stage_key,
)
from proj.registry.sources import ArtifactsRoot, Source, resolve_source
from proj.reproduce.rebuild import VERDICT_TAG
from proj.tracking.records import RunRecord
from proj.tracking.registry_records import STAGES, ModelVersionRecord, RegisteredModelRecord
from proj.tracking.registry_rules import canonical_stage, check_model_name
from proj.tracking.store import RunStore


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


def register(store: RunStore, source: str, name: str, *, description: str | None = None,
             tags: dict[str, str] | None = None, run_id: str | None = None, model_id: str | None = None,
             run_link: str | None = None, create_model: bool = True, artifacts_root: ArtifactsRoot | None = None,
             user: str | None = None, reason: str | None = None) -> ModelVersionRecord:
    """A new version of ``name`` from ``source``, its files copied into the store first (by content, so a
    failed registration leaves no version, only blobs a later one may share). ``create_model``: create the
    registered model when missing (the CLI); the server passes False, as MLflow's client creates it itself."""
    check_model_name(name)
    found = resolve_source(store, source, artifacts_root=artifacts_root)
    _check_ids(source, found, run_id, model_id)
    if found.files_sha256:
        digest = found.files_sha256
        if files.check(store.root, digest):
            raise InvalidState(f"model source {source}: its stored files are damaged ({files.check(store.root, digest)[0]})")
    else:
        digest = files.store_files(store.root, found.files, f"model source {source}").digest
    who = user or current_user()
    with store.transaction():
        if create_model:
            try:
                store.get_registered_model(name)
            except NotFound:
                store.create_registered_model(name, user=who, reason=reason)
        return store.create_model_version(
            name, found.source, run_id=found.run_id or run_id, tags=tags, description=description,
            model_id=found.model_id or model_id, storage_location=str(files.tree(store.root, digest)),
            files_sha256=digest, run_link=run_link, user=who, reason=reason)


def _check_ids(source: str, found: Source, run_id: str | None, model_id: str | None) -> None:
    """MLflow's rule: a run_id or model_id given with the source must be the one that holds it."""
    for given, actual, label in ((run_id, found.run_id, "run_id"), (model_id, found.model_id, "model_id")):
        if given and actual and given != actual:
            raise UsageError(f"Invalid model version source: '{source}'. The {label} request parameter must "
                             "identify the resource that contains the source.")


def versions(store: RunStore, name: str) -> list[ModelVersionRecord]:
    """Every version of ``name``, oldest first (NotFound when there is no such model)."""
    store.get_registered_model(name)
    quoted = f'"{name}"' if "'" in name else f"'{name}'"
    found: list[ModelVersionRecord] = []
    token: str | None = None
    while True:
        page, token = store.search_model_versions(f"name = {quoted}", page_token=token)
        found += page
        if not token:
            return sorted(found, key=lambda v: v.version)


def set_alias(store: RunStore, name: str, alias: str, version: int, *, reason: str | None = None,
              require_verdict: str | None = None, user: str | None = None) -> ModelVersionRecord:
    """Point ``alias`` at ``version`` (moving it); a protected alias needs a reason to move, and
    ``require_verdict`` refuses a version whose run was not reproduced with that verdict."""
    check_alias(alias)
    with store.transaction():
        model = store.get_registered_model(name)
        target = store.get_model_version(name, version)
        if model.aliases.get(alias) != version:
            need_reason(model, alias_key(alias), reason, f"pointing it at version {version}")
        if require_verdict:
            check_verdict(store, target, require_verdict)
        store.set_registered_model_alias(name, alias, version, user=user or current_user(), reason=reason)
    return store.get_model_version(name, version)


def delete_alias(store: RunStore, name: str, alias: str, *, reason: str | None = None, user: str | None = None) -> bool:
    """Delete ``alias``; False when it was not set (not an error, as MLflow)."""
    with store.transaction():
        model = store.get_registered_model(name)
        if alias not in model.aliases:
            return False
        need_reason(model, alias_key(alias), reason, "deleting it")
        store.delete_registered_model_alias(name, alias, user=user or current_user(), reason=reason)
    return True


def transition(store: RunStore, name: str, version: int, stage: str, *, archive_existing: bool = False,
               reason: str | None = None, user: str | None = None) -> ModelVersionRecord:
    """Move ``version`` to ``stage`` (MLflow's stages, case-insensitive); into or out of a protected stage
    needs a reason."""
    stage = canonical_stage(stage)
    with store.transaction():
        model = store.get_registered_model(name)
        current = store.get_model_version(name, version).current_stage
        if current != stage:
            need_reason(model, stage_key(stage), reason, f"moving version {version} into it")
            need_reason(model, stage_key(current), reason, f"moving version {version} out of it")
        return store.transition_model_version_stage(name, version, stage, archive_existing,
                                                    user=user or current_user(), reason=reason)


def protect(store: RunStore, name: str, *, alias: str | None = None, stage: str | None = None,
            protected: bool = True, reason: str | None = None, user: str | None = None) -> str:
    """Mark an alias or a stage of ``name`` protected (or no longer); lifting protection needs a reason too.
    Returns the key (the alias's name, or the stage's canonical name)."""
    if (alias is None) == (stage is None):
        raise UsageError("name exactly one of an alias or a stage to protect")
    key = alias_key(check_alias(alias)) if alias is not None else stage_key(canonical_stage(stage or ""))
    with store.transaction():
        model = store.get_registered_model(name)
        if not protected:
            need_reason(model, key, reason, "lifting its protection")
        store.set_protected(name, key, protected, user=user or current_user(), reason=reason)
    return key


def set_tag(store: RunStore, name: str, version: int | None, key: str, value: str, *, reason: str | None = None,
            user: str | None = None) -> None:
    if not key:
        raise UsageError("Missing value for required parameter 'key'.")
    if version is None:
        store.set_registered_model_tag(name, key, value, user=user or current_user(), reason=reason)
    else:
        store.set_model_version_tag(name, version, key, value, user=user or current_user(), reason=reason)


def delete_tag(store: RunStore, name: str, version: int | None, key: str, *, reason: str | None = None,
               user: str | None = None) -> None:
    if version is None:
        store.delete_registered_model_tag(name, key, user=user or current_user(), reason=reason)
    else:
        store.delete_model_version_tag(name, version, key, user=user or current_user(), reason=reason)


def describe(store: RunStore, name: str, version: int | None, text: str, *, reason: str | None = None,
             user: str | None = None) -> None:
    if version is None:
        store.update_registered_model(name, text, user=user or current_user(), reason=reason)
    else:
        store.update_model_version(name, version, text, user=user or current_user(), reason=reason)


def rename(store: RunStore, name: str, new_name: str, *, reason: str | None = None,
           user: str | None = None) -> RegisteredModelRecord:
    check_model_name(new_name, "new_name")
    return store.rename_registered_model(name, new_name, user=user or current_user(), reason=reason)


def delete(store: RunStore, name: str, version: int | None = None, *, reason: str | None = None,
           user: str | None = None) -> None:
    """Delete a version (its aliases go) or the whole model; one holding a protected alias or stage needs a
    reason. The files stay in the store's registry (other versions may share them; the history names them)."""
    with store.transaction():
        model = store.get_registered_model(name)
        if version is None:
            held = [k for k in model.protected if _in_use(model, k)]
            for key in held:
                need_reason(model, key, reason, "deleting the model")
            store.delete_registered_model(name, user=user or current_user(), reason=reason)
            return
        mv = store.get_model_version(name, version)
        for key in [alias_key(a) for a in mv.aliases] + [stage_key(mv.current_stage)]:
            need_reason(model, key, reason, f"deleting version {version}")
        store.delete_model_version(name, version, user=user or current_user(), reason=reason)


def _in_use(model: RegisteredModelRecord, key: str) -> bool:
    if key in STAGES:
        return any(v.current_stage == key for v in model.latest_versions)
    return key in model.aliases


def reproduction(store: RunStore, run_id: str) -> tuple[str | None, RunRecord | None]:
    """The verdict of the newest reproduction of ``run_id`` that recorded one, and that run; (None, None)
    when it was never reproduced."""
    runs, _ = store.search_runs(f"tags.`proj.reproduces` = '{run_id}'", order_by=["attributes.start_time DESC"],
                                max_results=100)
    for found in runs:
        run = store.get_run(found.id)  # a search's records carry no tags
        verdict = run.tags.get(VERDICT_TAG)
        if verdict:
            return verdict, run
    return None, None


def check_verdict(store: RunStore, version: ModelVersionRecord, required: str) -> None:
    if required not in VERDICTS:
        raise UsageError(f"required verdict {required!r} is not one of {', '.join(VERDICTS)}")
    label = f"version {version.version} of '{version.name}'"
    if not version.run_id:
        raise InvalidState(f"{label} comes from no run, so it cannot have been reproduced; "
                           f"--require-verdict {required} refuses it")
    verdict, run = reproduction(store, version.run_id)
    if verdict is None or run is None:
        raise InvalidState(f"{label}: its run {version.run_id[:12]} has not been reproduced "
                           f"(`proj reproduce {version.run_id[:12]}`); --require-verdict {required} refuses it")
    if not satisfies(verdict, required):
        raise InvalidState(f"{label}: the latest reproduction of its run {version.run_id[:12]} (run {run.id[:12]}) "
                           f"was {verdict!r}; --require-verdict {required} refuses it")
