"""Tiny packages built on the spot, so virtualenv tests install from a local directory, never the network.

Wheels are zip files written directly (no build backend, no index needed). The "gated" sdist has an
in-tree build backend whose ``build_wheel`` announces itself and then waits for a release file: a
test can kill proj at a known moment in the middle of an install.
"""
from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import textwrap
import zipfile
from pathlib import Path


def make_wheel(where: Path, name: str, version: str, requires: tuple[str, ...] = (), body: str = "") -> Path:
    """Write ``name-version-py3-none-any.whl`` whose module exposes ``VERSION``."""
    where.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    files = {f"{module}/__init__.py": f"VERSION = {version!r}\n{body}", **_dist_info(name, version, requires)}
    path = where / f"{module}-{version}-py3-none-any.whl"
    _write_wheel(path, files, f"{module}-{version}.dist-info")
    return path


def _dist_info(name: str, version: str, requires: tuple[str, ...]) -> dict[str, str]:
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    metadata = "\n".join(["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
                          *(f"Requires-Dist: {r}" for r in requires)]) + "\n"
    wheel = "Wheel-Version: 1.0\nGenerator: proj-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    return {f"{dist}/METADATA": metadata, f"{dist}/WHEEL": wheel}


def _write_wheel(path: Path, files: dict[str, str], dist_info: str) -> None:
    record = []
    with zipfile.ZipFile(path, "w") as zf:
        for arc, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            zf.writestr(arc, data)
            record.append(f"{arc},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")


GATED_BACKEND = '''
"""A build backend that waits at build_wheel until the test releases it (or 120 s pass)."""
import os, time, zipfile, base64, hashlib

GATE = {gate!r}
NAME, VERSION = {name!r}, {version!r}

def _meta():
    return "Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n" % (NAME, VERSION)

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist = "%s-%s.dist-info" % (NAME, VERSION)
    os.makedirs(os.path.join(metadata_directory, dist))
    with open(os.path.join(metadata_directory, dist, "METADATA"), "w") as fh:
        fh.write(_meta())
    return dist

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.path.join(GATE, "building.tmp"), "w") as fh:
        fh.write(str(os.getpid()))
    os.replace(os.path.join(GATE, "building.tmp"), os.path.join(GATE, "building"))  # seen only whole, with the pid
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(GATE, "release")) and time.time() < deadline:
        time.sleep(0.05)
    dist = "%s-%s.dist-info" % (NAME, VERSION)
    files = {{NAME + ".py": "VERSION = %r\\n" % VERSION, dist + "/METADATA": _meta(),
             dist + "/WHEEL": "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}}
    name = "%s-%s-py3-none-any.whl" % (NAME, VERSION)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        record = []
        for arc, text in files.items():
            zf.writestr(arc, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append("%s,sha256=%s,%d" % (arc, digest, len(text)))
        zf.writestr(dist + "/RECORD", "\\n".join(record + [dist + "/RECORD,,"]) + "\\n")
    return name
'''


def make_gated_sdist(where: Path, name: str, version: str, gate: Path) -> Path:
    """An sdist whose wheel build blocks until ``gate/release`` exists; it creates ``gate/building`` first."""
    where.mkdir(parents=True, exist_ok=True)
    gate.mkdir(parents=True, exist_ok=True)
    base = f"{name}-{version}"
    files = {
        "pyproject.toml": textwrap.dedent(f"""\
            [project]
            name = "{name}"
            version = "{version}"
            [build-system]
            requires = []
            build-backend = "gated_backend"
            backend-path = ["."]
            """),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "gated_backend.py": GATED_BACKEND.format(gate=str(gate), name=name, version=version),
    }
    path = where / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --- fixtures (imported by the virtualenv test modules) ---------------------------------------------
import pytest  # noqa: E402


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    """A per-test find-links directory: tinya 1.0 and 2.0, tinyb 1.0 (needs tinya<2).

    Per test on purpose: its path is part of the resolved lock, so each test gets its own env key
    even though the env cache is shared by every test of an xdist worker.
    """
    where = tmp_path / "wheelhouse"
    make_wheel(where, "tinya", "1.0")
    make_wheel(where, "tinya", "2.0")
    make_wheel(where, "tinyb", "1.0", requires=("tinya<2",))
    return where


@pytest.fixture
def offline(proj, wheelhouse: Path):  # noqa: ANN001, ANN201 - conftest's Proj
    """The ``proj`` runner resolving and installing only from the wheelhouse (no index at all)."""
    for key in [k for k in proj.env if k.startswith(("PIP_", "UV_"))]:
        del proj.env[key]
    proj.env.update({"UV_NO_INDEX": "1", "UV_FIND_LINKS": str(wheelhouse)})
    return proj
