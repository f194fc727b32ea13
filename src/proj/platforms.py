"""The machine's platform names as package indexes spell them (conda subdirs)."""
from __future__ import annotations

import platform as _platform
import sys


def current_platform() -> str:
    """conda's subdir name for this machine, without importing rattler."""
    machine = _platform.machine().lower()
    arch = {"x86_64": "64", "amd64": "64", "aarch64": "aarch64", "arm64": "arm64", "ppc64le": "ppc64le"}.get(machine, machine)
    system = {"linux": "linux", "darwin": "osx", "win32": "win"}.get(sys.platform, sys.platform)
    return f"{system}-{arch}"
