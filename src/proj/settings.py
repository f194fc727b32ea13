"""Every ``PROJ_*`` setting and the user's configuration file, read here and nowhere else.

Each value is read when a command needs it, never at import, so a typo is one clear UsageError line
from the command that uses it (and a test can set a variable after importing proj).

==============================  ====================================================  =====================
Setting                         Meaning                                               Default
==============================  ====================================================  =====================
``PROJ_CONFIG``                 the configuration file (TOML) to read                 see below
``PROJ_CACHE_DIR``              the cache root (envs, resolutions, git, docker, ...)  the platform's user
                                                                                      cache dir ``proj``
``PROJ_TRACKING_URI``           the run store (a directory or ``file://`` URL);       ``./.proj``
                                ``--tracking-uri`` wins
``PROJ_EXPERIMENT_NAME``        experiment of a new run; ``--experiment-name`` wins   ``Default``
``PROJ_DEBUG``                  any non-empty value: full tracebacks (``--debug``)    off
``PROJ_KEEP_MLFLOW_TRACKING_URI`` non-empty: leave the caller's MLFLOW_TRACKING_URI   off
                                to the child instead of pointing it at the proj run
``PROJ_CONDA_CHANNEL_ALIAS``    base URL or folder for named conda channels           ``[conda]
                                (a mirror); wins over ``[conda] channel_alias``       channel_alias``, none
``PROJ_GIT_TIMEOUT``            seconds for a whole clone or fetch                    900
``PROJ_GIT_CONNECT_TIMEOUT``    seconds a git transfer may make no progress           20
``PROJ_SNAPSHOT_MAX_MB``        largest source snapshot kept with a run (MB)          50
``PROJ_DOCKER_PULL_TIMEOUT``    seconds to wait for the Docker daemon on a pull       30
``PROJ_DOCKER_LIST_TIMEOUT``    seconds ``proj env list`` waits for Docker            3
``PROJ_HTTP_RETRY_SECONDS``     seconds a tracking server that is down or answers     120
                                5xx/429 is retried (with backoff) before giving up
==============================  ====================================================  =====================

Numbers are non-negative and finite (``number``). The configuration file is looked up in order:
``$PROJ_CONFIG``, ``$XDG_CONFIG_HOME/proj/config.toml`` (default ``~/.config/proj/config.toml``), then
``proj.toml`` in the same directory. A missing file is an empty configuration; a malformed one is a clear
error naming the file.
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from proj._compat import toml_loads
from proj.errors import UsageError

# name -> default, for the numeric settings (the table above says what each one means)
NUMBERS: dict[str, float] = {
    "PROJ_GIT_TIMEOUT": 900.0,
    "PROJ_GIT_CONNECT_TIMEOUT": 20.0,
    "PROJ_SNAPSHOT_MAX_MB": 50.0,
    "PROJ_DOCKER_PULL_TIMEOUT": 30.0,
    "PROJ_DOCKER_LIST_TIMEOUT": 3.0,
    "PROJ_HTTP_RETRY_SECONDS": 120.0,
}
# every setting a user may set (the numeric ones included); proj reads no other PROJ_* variable
NAMES = ("PROJ_CONFIG", "PROJ_CACHE_DIR", "PROJ_TRACKING_URI", "PROJ_EXPERIMENT_NAME", "PROJ_DEBUG",
         "PROJ_KEEP_MLFLOW_TRACKING_URI", "PROJ_CONDA_CHANNEL_ALIAS", *NUMBERS)


def raw(name: str) -> str | None:
    """The setting's text, or None when unset or empty (empty means "use the default" everywhere)."""
    if name not in NAMES:
        raise KeyError(f"{name} is not a proj setting (add it to proj.settings)")
    return os.environ.get(name) or None


def flag(name: str) -> bool:
    """An on/off setting: any non-empty value turns it on."""
    return raw(name) is not None


def number(name: str, default: float | None = None) -> float:
    """A non-negative, finite number from the setting ``name`` (its documented default when unset or empty)."""
    text = (raw(name) or "").strip()
    if not text:
        return NUMBERS[name] if default is None else default
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{name}={text!r} must be a finite number >= 0")
    return value


def seconds(name: str) -> int:
    """A timeout in whole seconds, at least 1 (git and ssh take whole seconds; 0 would mean "at once")."""
    return max(1, round(number(name)))


def expand_user(text: str, what: str) -> Path:
    """``text`` as a path with ``~``/``~user`` expanded; an unknown user is a clear error, not a traceback."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "Could not determine home directory": no such user, or no HOME at all
        raise UsageError(f"{what} {text!r}: cannot expand {text.split('/')[0]!r} "
                         f"(no such user or no home directory)") from None


def cache_dir() -> Path:
    """The user cache root (``PROJ_CACHE_DIR`` overrides the platform default)."""
    override = raw("PROJ_CACHE_DIR")
    if override:
        return expand_user(override, "PROJ_CACHE_DIR").resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("proj", appauthor=False))


def tracking_uri() -> str | None:
    """``PROJ_TRACKING_URI``, the store used when no ``--tracking-uri`` is given (None: ``./.proj``)."""
    return raw("PROJ_TRACKING_URI")


def experiment_name() -> str:
    """The experiment of a new run when none is given."""
    return raw("PROJ_EXPERIMENT_NAME") or "Default"


def debug() -> bool:
    return flag("PROJ_DEBUG")


def keep_mlflow_tracking_uri() -> bool:
    return flag("PROJ_KEEP_MLFLOW_TRACKING_URI")


def conda_channel_alias() -> object:
    """The conda channel alias as given: ``PROJ_CONDA_CHANNEL_ALIAS``, else ``[conda] channel_alias`` (may be None)."""
    return raw("PROJ_CONDA_CHANNEL_ALIAS") or section("conda").get("channel_alias")


def config_path() -> Path | None:
    """The configuration file in effect, or None when there is none."""
    explicit = raw("PROJ_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "proj"
    for name in ("config.toml", "proj.toml"):
        if (base / name).is_file():
            return base / name
    return None


def load_config() -> dict[str, Any]:
    """The whole configuration as a dict (empty when no file exists)."""
    path = config_path()
    return _load(str(path)) if path is not None else {}


def section(*keys: str) -> dict[str, Any]:
    """A nested table, e.g. ``section("conda", "channels")`` for ``[conda.channels]``; {} if absent."""
    node: Any = load_config()
    dotted = ""
    for key in keys:
        dotted = f"{dotted}.{key}" if dotted else key
        node = node.get(key, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise UsageError(f"{config_path()}: [{dotted}] must be a table")
    table: dict[str, Any] = node
    return table


@lru_cache(maxsize=8)
def _load(path: str) -> dict[str, Any]:
    # Cached per path: the file is read at most once per process, and only when a caller needs it.
    try:
        with open(path, "rb") as fh:
            return toml_loads(fh.read().decode())
    except FileNotFoundError:
        if raw("PROJ_CONFIG"):
            raise UsageError(f"PROJ_CONFIG={path}: file not found") from None
        return {}
    except (OSError, ValueError) as exc:  # ValueError: bad TOML (TOMLDecodeError) or bad UTF-8
        raise UsageError(f"{path}: invalid configuration file: {exc}") from None
