"""Build small, real conda channels from hand-made packages, for tests and benchmarks (no network).

A package is a ``.tar.bz2`` holding ``info/index.json``, ``info/paths.json``, ``info/files`` and its
payload; the channel directory is indexed with ``rattler.index.index_fs``. One package, ``python``,
links the host interpreter and ships a ``pyvenv.cfg``, so an env built from this channel can run
Python entry points and take a ``pip:`` sub-list.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import tarfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

PY_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
HOST_PYTHON = os.path.realpath(sys.executable)


@dataclass
class Pkg:
    """One hand-made package: files maps a prefix-relative path to text (or ("->", target) for a link)."""

    name: str
    version: str
    depends: list[str] = field(default_factory=list)
    files: dict[str, str | tuple[str, str]] = field(default_factory=dict)
    build: str = "0"
    subdir: str = "noarch"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"


def script(body: str) -> str:
    return "#!/bin/sh\n" + textwrap.dedent(body).lstrip()


def python_pkg() -> Pkg:
    """A 'python' whose bin/python3.X links to the host interpreter, made a venv by pyvenv.cfg."""
    home = os.path.dirname(HOST_PYTHON)
    cfg = f"home = {home}\ninclude-system-site-packages = false\nversion = {sys.version.split()[0]}\n"
    return Pkg("python", sys.version.split()[0], files={
        f"bin/python{PY_VERSION}": ("->", HOST_PYTHON),
        "bin/python3": ("->", f"python{PY_VERSION}"),
        "bin/python": ("->", f"python{PY_VERSION}"),
        "pyvenv.cfg": cfg,
        f"lib/python{PY_VERSION}/site-packages/.keep": "",
    }, subdir="noarch")


def standard_packages() -> list[Pkg]:
    """The shared test channel: data + tool packages with dependencies, an activate.d script,
    two versions of ``greet``, a pair that cannot be installed together, and python."""
    return [
        python_pkg(),
        Pkg("pip", "24.0", ["python"], files={"share/pip-is-provided-by-uv.txt": "proj installs pip: parts with uv\n"}),
        Pkg("greet-data", "1.0", files={"share/greet/message.txt": "hello from greet-data 1.0\n"}),
        Pkg("greet-data", "2.0", files={"share/greet/message.txt": "hello from greet-data 2.0\n"}),
        Pkg("greet", "1.0", ["greet-data 1.0.*"], files={
            "bin/greet": script('cat "$CONDA_PREFIX/share/greet/message.txt"; echo "greet 1.0 activated=$GREET_ACTIVATED"'),
            "etc/conda/activate.d/greet.sh": 'export GREET_ACTIVATED="yes:$CONDA_PREFIX"\n'}),
        Pkg("greet", "2.0", ["greet-data >=2"], files={
            "bin/greet": script('cat "$CONDA_PREFIX/share/greet/message.txt"; echo "greet 2.0 activated=$GREET_ACTIVATED"'),
            "etc/conda/activate.d/greet.sh": 'export GREET_ACTIVATED="yes:$CONDA_PREFIX"\n'}),
        Pkg("shout", "0.1", ["greet"], files={"bin/shout": script('greet | tr a-z A-Z')}),
        Pkg("wants-old-greet", "1.0", ["greet <2"], files={"share/old.txt": "old\n"}),
        Pkg("wants-new-greet", "1.0", ["greet >=2"], files={"share/new.txt": "new\n"}),
        *[Pkg(f"filler{i}", "1.0", files={f"share/filler{i}.txt": f"filler {i}\n"}) for i in range(1, 6)],
    ]


def build_package(pkg: Pkg, channel: Path) -> Path:
    """Write ``pkg`` as a .tar.bz2 into ``channel/<subdir>/`` and return its path."""
    out = channel / pkg.subdir / pkg.filename
    out.parent.mkdir(parents=True, exist_ok=True)
    index = {"name": pkg.name, "version": pkg.version, "build": pkg.build, "build_number": 0,
             "depends": pkg.depends, "license": "MIT", "subdir": pkg.subdir, "timestamp": 1700000000000}
    if pkg.subdir == "noarch":
        index["noarch"] = "generic"
    paths = []
    with tarfile.open(out, "w:bz2") as tar:
        for rel, content in sorted(pkg.files.items()):
            if isinstance(content, tuple):
                _add_link(tar, rel, content[1])
                paths.append({"_path": rel, "path_type": "softlink", "size_in_bytes": 0})
                continue
            data = content.encode()
            mode = 0o755 if rel.startswith("bin/") else 0o644
            _add_bytes(tar, rel, data, mode)
            paths.append({"_path": rel, "path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(),
                          "size_in_bytes": len(data)})
        _add_bytes(tar, "info/index.json", json.dumps(index, indent=2).encode())
        _add_bytes(tar, "info/paths.json", json.dumps({"paths": paths, "paths_version": 1}, indent=2).encode())
        _add_bytes(tar, "info/files", "".join(p["_path"] + "\n" for p in paths).encode())
    return out


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1700000000
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, 1700000000
    tar.addfile(info)


def index(channel: Path) -> None:
    """(Re)index a channel directory; noarch must exist even when empty."""
    import rattler.index

    (channel / "noarch").mkdir(parents=True, exist_ok=True)
    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False, force=True))
    time.sleep(0.01)  # let rattler's thread finish before a short-lived process exits (see conda_solve.run_async)


def build_channel(channel: Path, packages: list[Pkg]) -> Path:
    for pkg in packages:
        build_package(pkg, channel)
    index(channel)
    return channel


def build_wheel(name: str, version: str, dest: Path, body: str = "") -> Path:
    """A tiny pure-Python wheel written by hand (a zip with dist-info): no build backend, no index."""
    import base64
    import zipfile

    mod = name.replace("-", "_")
    dist = f"{mod}-{version}.dist-info"
    files = {
        f"{mod}/__init__.py": f"__version__ = {version!r}\n{body}",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: proj-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for rel, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{mod}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for rel, text in files.items():
            zf.writestr(zipfile.ZipInfo(rel, (2023, 11, 14, 0, 0, 0)), text)
    return out
