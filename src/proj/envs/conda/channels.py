"""Where each channel named in a conda.yaml is fetched from: mirrors, aliases and ``defaults``.

Air-gapped users (and the tests) redirect channels without editing conda.yaml:

* ``[conda.channels]`` in the user config maps one channel (a name or URL) to a URL, a local
  directory, or a list of them: ``conda-forge = "file:///mirror/cf"``;
* ``PROJ_CONDA_CHANNEL_ALIAS`` (or ``[conda] channel_alias``) is a base URL or directory that every
  other *named* channel lives under, as ``<alias>/<name>``.

``defaults`` is not a channel on anaconda.org but conda's shorthand for Anaconda's own repositories,
so it is expanded here (a plain name lookup would silently hit the wrong server).
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from proj.errors import EnvError
from proj.settings import conda_channel_alias, section

ANACONDA_ORG = "https://conda.anaconda.org"
DEFAULTS = ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r")


def channel_urls(channels: list[str], base: Path) -> list[tuple[str, str]]:
    """Each channel as (name as written, URL), in priority order; relative paths resolve from ``base``."""

    mapping = section("conda", "channels")
    alias = _alias()
    result: list[tuple[str, str]] = []
    for name in channels:
        if name == "nodefaults":
            continue  # conda-lock's marker for "do not add defaults"; never a real channel
        for url in _expand(name, mapping, alias, base):
            if (name, url) not in result:
                result.append((name, url))
    return result


def _expand(name: str, mapping: dict[str, object], alias: str | None, base: Path) -> list[str]:
    if name in mapping:
        target = mapping[name]
        targets = target if isinstance(target, list) else [target]
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise EnvError(f"[conda.channels] {name!r} must map to a URL, a directory or a list of them")
        return [_as_url(str(t), base) for t in targets]
    if "://" in name or _looks_like_path(name):
        return [_as_url(name, base)]
    if alias is not None:
        return [f"{alias}/{quote(name)}"]
    if name == "defaults":
        return list(DEFAULTS)
    return [f"{ANACONDA_ORG}/{quote(name)}"]


def _alias() -> str | None:
    value = conda_channel_alias()
    if not value:
        return None
    if not isinstance(value, str):
        raise EnvError(f"[conda] channel_alias must be a string, not {value!r}")
    return _as_url(value, Path.cwd()).rstrip("/")


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~"))


def _as_url(value: str, base: Path) -> str:
    """A URL stays a URL; a directory becomes an absolute ``file://`` URL."""
    if "://" in value:
        return value.rstrip("/")
    path = (base / Path(value).expanduser()).resolve()
    return path.as_uri()


def describe(urls: list[tuple[str, str]]) -> str:
    """A short human list, e.g. ``conda-forge -> file:///mirror/cf``."""
    return ", ".join(name if name == url else f"{name} -> {url}" for name, url in urls)
