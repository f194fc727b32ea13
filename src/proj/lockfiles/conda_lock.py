"""conda-lock's unified ``conda-lock.yml``: written through conda-lock's library, read through rattler.

conda-lock costs ~0.5 s to import, so it is imported only when a new lock is written (a cold
resolve or ``proj env lock``); reading a lock (warm installs, ``proj reproduce``, a model's env files,
a project that ships its own ``conda-lock.yml``) goes through rattler and PyYAML only.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proj.errors import EnvError, LockParseError
from proj.lockfiles.base import LockContents, LockFormat, Package, normalise_name
from proj.platforms import current_platform
from proj.safe_yaml import load_untrusted

LOCK_FORMAT = "conda-lock.yml"
LOCK_NAME = "conda-lock.yml"
SPEC_DIGEST_KEY = "proj_spec_digest"  # in the lock's custom_metadata: which conda.yaml it was solved for


@dataclass(frozen=True)
class PipPin:
    """One locked pip package: exactly one file, with its hash."""

    name: str
    version: str
    url: str
    sha256: str


@dataclass
class Resolved:
    """A lock's content: conda records (rattler RepoDataRecords) and pip pins, for one platform."""

    records: list[Any]
    pins: list[PipPin]


def render(resolved: Resolved, spec_path: Path, channels: list[str], platform: str, fallback_hash: str,
           spec_digest: str) -> str:
    """The conda-lock.yml text for a resolution (deterministic: same resolution, same text)."""
    from conda_lock.lockfile import write_conda_lock_file
    from conda_lock.lockfile.v2prelim.models import LockedDependency, Lockfile, LockMeta
    from conda_lock.models.channel import Channel

    packages = [_conda_entry(r, platform, LockedDependency) for r in resolved.records]
    packages += [_pip_entry(p, platform, LockedDependency) for p in resolved.pins]
    meta = LockMeta(content_hash={platform: _content_hash(spec_path, platform) or fallback_hash},
                    channels=[Channel.from_string(c) for c in channels], platforms=[platform],
                    sources=[spec_path.name], custom_metadata={SPEC_DIGEST_KEY: spec_digest})
    with tempfile.TemporaryDirectory(prefix="proj-lock-") as tmp:
        out = Path(tmp) / LOCK_NAME
        write_conda_lock_file(Lockfile(package=packages, metadata=meta), out, metadata_choices=None)
        return out.read_text()


def _conda_entry(record: Any, platform: str, model: Any) -> Any:
    deps = {}
    for dep in record.depends:
        name, _, constraint = dep.partition(" ")
        deps[name] = constraint.strip()
    return model(name=record.name.normalized, version=str(record.version), manager="conda", platform=platform,
                 dependencies=deps, url=record.url, hash=_hashes(record), categories={"main"},
                 build=str(record.build))


def _hashes(record: Any) -> Any:
    from conda_lock.lockfile.v1.models import HashModel

    if record.sha256 is None:
        raise EnvError(f"package {record.file_name} has no sha256 in its channel's repodata; it cannot be locked")
    return HashModel(md5=record.md5.hex() if record.md5 else None, sha256=record.sha256.hex())


def _pip_entry(pin: PipPin, platform: str, model: Any) -> Any:
    from conda_lock.lockfile.v1.models import HashModel

    return model(name=pin.name, version=pin.version, manager="pip", platform=platform, dependencies={},
                 url=pin.url, hash=HashModel(sha256=pin.sha256), categories={"main"})


def _content_hash(spec_path: Path, platform: str) -> str | None:
    """conda-lock's own input hash, so its CLI sees the lock as up to date; None if it cannot parse the spec."""
    try:
        from conda_lock.content_hash import compute_content_hashes
        from conda_lock.src_parser import make_lock_spec

        with tempfile.TemporaryDirectory(prefix="proj-lock-") as tmp:
            mapping = Path(tmp) / "mapping.json"
            mapping.write_text("{}")  # a local, empty PyPI<->conda mapping: conda-lock must not download one
            spec = make_lock_spec(src_files=[spec_path], platform_overrides=[platform], mapping_url=str(mapping))
            digest: str | None = compute_content_hashes(spec, None).get(platform)  # conda-lock is untyped
            return digest
    except Exception:  # noqa: BLE001 - the hash is informative only; our own fingerprint replaces it
        return None


def recorded_spec_digest(text: str) -> str | None:
    """The spec digest a lock was written for (a text search: no YAML parse on the warm path)."""
    match = re.search(rf"^\s+{SPEC_DIGEST_KEY}:\s*'?([0-9a-f]+)'?\s*$", text, re.MULTILINE)
    return match.group(1) if match else None


def parse(text: str, platform: str, origin: str) -> Resolved:
    """Read a conda-lock.yml (ours or a project's own) for installing on ``platform``; errors name ``origin``."""
    import rattler

    with tempfile.TemporaryDirectory(prefix="proj-lock-") as tmp:
        path = Path(tmp) / LOCK_NAME
        path.write_text(text)
        try:
            env = rattler.LockFile.from_path(path).default_environment()
        except Exception as exc:  # noqa: BLE001 - rattler's parse errors are typed per cause; all mean "bad file"
            raise EnvError(f"{origin}: not a valid conda-lock file: {_first_line(exc)}") from None
    platforms = [p.name for p in env.platforms()] if env is not None else []
    if env is None or platform not in platforms:
        raise EnvError(f"{origin}: no packages for platform {platform} (the lock has: {', '.join(platforms) or 'none'})")
    records = env.conda_repodata_records().get(platform) or []
    try:
        contents = read(text, platform)
    except LockParseError as exc:
        raise EnvError(f"{origin}: not a valid conda-lock file: {_first_line(exc)}") from None
    return Resolved(list(records), [_pin_of(p, origin) for p in contents.packages if p.manager == "pip"])


def read(text: str, platform: str | None = None) -> LockContents:
    """The packages a conda-lock.yml (v1) pins for one platform: conda's and the ``pip`` ones, in file order.

    ``platform`` None means this machine's; a platform the lock does not list falls back to its first one.
    """
    import yaml

    try:
        data = load_untrusted(text)
    except yaml.YAMLError as exc:
        raise LockParseError(f"conda-lock.yml is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("package"), list):
        raise LockParseError("conda-lock.yml has no 'package' list")
    meta = data.get("metadata") or {}
    entries = [p for p in data["package"] if isinstance(p, dict) and p.get("name")]
    wanted = _pick_platform(platform or current_platform(), meta.get("platforms") or [], entries)
    channels = [c.get("url") if isinstance(c, dict) else str(c) for c in meta.get("channels") or []]
    contents = LockContents(channels=[c for c in channels if c])
    for entry in entries:
        if entry.get("platform", wanted) != wanted or entry.get("optional"):
            continue
        package = _package(entry)
        contents.packages.append(package)
        if package.manager == "conda" and package.name == "python":
            contents.python = package.version
    return contents


FORMAT = LockFormat(LOCK_FORMAT, read)


def _package(entry: dict[str, Any]) -> Package:
    name, version = str(entry["name"]), str(entry.get("version", ""))
    url, sha = str(entry.get("url") or ""), str((entry.get("hash") or {}).get("sha256") or "")
    if entry.get("manager", "conda") == "pip":
        return Package(normalise_name(name), version, "pip", f"{name}=={version}" if version else name, url, sha)
    build = str(entry.get("build") or _conda_build(url, name, version))
    return Package(name, version, "conda", "=".join(x for x in (name, version, build) if x), url, sha, build)


def _pick_platform(current: str, listed: list[str], entries: list[dict[str, Any]]) -> str:
    present = list(dict.fromkeys([*listed, *(str(p.get("platform")) for p in entries if p.get("platform"))]))
    return current if current in present or not present else present[0]


def _conda_build(url: str, name: str, version: str) -> str:
    """The build string from a package file name (``name-version-build.conda``), for locks that omit it."""
    base = url.rsplit("/", 1)[-1]
    for ext in (".conda", ".tar.bz2"):
        base = base.removesuffix(ext)
    prefix = f"{name}-{version}-"
    return base[len(prefix):] if base.startswith(prefix) else ""


def _pin_of(package: Package, origin: str) -> PipPin:
    if not package.hash:
        raise EnvError(f"{origin}: pip package {package.name} has no sha256 hash")
    if not package.source:
        raise EnvError(f"{origin}: pip package {package.name} has no url")
    return PipPin(package.name, package.version, package.source, package.hash)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
