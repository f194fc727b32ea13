"""``-A/--docker-args KEY[=VALUE]`` -> keyword arguments of the docker SDK's ``containers.create``.

Keys are ``docker run`` option names without dashes (``-A memory=2g -A gpus=all -A shm-size=1g``),
as with ``mlflow run -A``. Only options with a known meaning are accepted: an unknown key is a
usage error that lists the supported ones, never silently dropped.
"""
from __future__ import annotations

from typing import Any, Callable

from proj.errors import UsageError

Convert = Callable[[str], Any]


def _text(value: str) -> str:
    return value


def _int(value: str) -> int:
    return int(value)


def _nano_cpus(value: str) -> int:
    return int(float(value) * 1e9)


def _flag(value: str) -> bool:
    return value.lower() not in ("false", "0", "no")


def _gpus(value: str) -> list[Any]:
    """``all``, a count, or ``device=0,1`` (as ``docker run --gpus``)."""
    from docker.types import DeviceRequest

    value = value.strip().strip('"')
    if value.startswith("device="):
        ids = [d for d in value[len("device="):].split(",") if d]
        return [DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]
    count = -1 if value == "all" else int(value)
    return [DeviceRequest(count=count, capabilities=[["gpu"]])]


def _ulimit(value: str) -> Any:
    from docker.types import Ulimit

    name, _, limits = value.partition("=")
    soft, _, hard = limits.partition(":")
    return Ulimit(name=name, soft=int(soft), hard=int(hard or soft))


# option -> (SDK keyword, converter, repeatable). Repeatable options accumulate into a list.
SCALAR: dict[str, tuple[str, Convert]] = {
    "memory": ("mem_limit", _text),
    "memory-swap": ("memswap_limit", _text),
    "memory-reservation": ("mem_reservation", _text),
    "cpus": ("nano_cpus", _nano_cpus),
    "cpu-shares": ("cpu_shares", _int),
    "cpuset-cpus": ("cpuset_cpus", _text),
    "gpus": ("device_requests", _gpus),
    "shm-size": ("shm_size", _text),
    "user": ("user", _text),
    "network": ("network_mode", _text),
    "hostname": ("hostname", _text),
    "ipc": ("ipc_mode", _text),
    "pid": ("pid_mode", _text),
    "pids-limit": ("pids_limit", _int),
    "workdir": ("working_dir", _text),
    "name": ("name", _text),
    "runtime": ("runtime", _text),
    "platform": ("platform", _text),
    "privileged": ("privileged", _flag),
    "read-only": ("read_only", _flag),
    "tty": ("tty", _flag),
}
LISTS: dict[str, tuple[str, Convert]] = {
    "env": ("environment", _text),
    "volume": ("volumes", _text),
    "add-host": ("extra_hosts", _text),
    "cap-add": ("cap_add", _text),
    "cap-drop": ("cap_drop", _text),
    "device": ("devices", _text),
    "security-opt": ("security_opt", _text),
    "ulimit": ("ulimits", _ulimit),
    "label": ("labels", _text),
    "tmpfs": ("tmpfs", _text),
}
FLAGS = {"privileged", "read-only", "tty"}  # may be given without a value
ALIASES = {"m": "memory", "u": "user", "net": "network", "h": "hostname", "w": "workdir", "e": "env",
           "v": "volume", "l": "label", "t": "tty"}
SUPPORTED = sorted(set(SCALAR) | set(LISTS))


def parse_docker_args(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The SDK keyword arguments for ``-A`` items; raises UsageError naming the bad item."""
    kwargs: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = ALIASES.get(key.lstrip("-").replace("_", "-"), key.lstrip("-").replace("_", "-"))
        if not sep and key not in FLAGS:
            if key in SCALAR or key in LISTS:
                raise UsageError(f"-A {item!r}: {key} needs a value (-A {key}=VALUE)")
            raise _unknown(item, key)
        _apply(kwargs, item, key, value if sep else "true")
    return _finish(kwargs)


def _apply(kwargs: dict[str, Any], item: str, key: str, value: str) -> None:
    if key in SCALAR:
        name, convert = SCALAR[key]
        kwargs[name] = _convert(item, key, convert, value)
    elif key in LISTS:
        name, convert = LISTS[key]
        kwargs.setdefault(name, []).append(_convert(item, key, convert, value))
    else:
        raise _unknown(item, key)


def _convert(item: str, key: str, convert: Convert, value: str) -> Any:
    try:
        return convert(value)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"-A {item!r}: bad value for {key} ({exc})") from None


def _unknown(item: str, key: str) -> UsageError:
    return UsageError(f"-A {item!r}: unsupported docker option {key!r}; supported: {', '.join(SUPPORTED)}")


def _finish(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Shape list options the way the SDK wants them (dicts for labels, tmpfs and extra hosts)."""
    if "labels" in kwargs:
        kwargs["labels"] = dict(_pair(v, "=") for v in kwargs["labels"])
    if "tmpfs" in kwargs:
        kwargs["tmpfs"] = dict(_pair(v, ":") for v in kwargs["tmpfs"])
    if "extra_hosts" in kwargs:
        kwargs["extra_hosts"] = dict(_pair(v, ":") for v in kwargs["extra_hosts"])
    if "devices" in kwargs:
        kwargs["devices"] = [d if ":" in d else f"{d}:{d}:rwm" for d in kwargs["devices"]]
    return kwargs


def _pair(value: str, sep: str) -> tuple[str, str]:
    key, _, rest = value.partition(sep)
    return key, rest
