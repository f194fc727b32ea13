"""lockfiles.conda_lock: a conda-lock.yml written by proj's own writer (conda-lock's library, after a real
rattler solve of a local channel) read back into Package records, for env files and for installing."""
from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from helpers.conda_channel import Pkg, build_channel, python_pkg
from helpers.wheels import make_wheel
from proj.errors import EnvError, LockParseError
from proj.lockfiles import conda_lock
from proj.lockfiles.conda_lock import PipPin, Resolved
from proj.lockfiles.registry import by_name

pytestmark = [pytest.mark.conda]
PLATFORM = "linux-64"


@pytest.fixture(scope="module")
def lock_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    import rattler

    where = tmp_path_factory.mktemp("conda-lock")
    channel = build_channel(where / "channel", [python_pkg(), Pkg("greet-data", "1.0"),
                                                Pkg("greet", "1.0", ["greet-data 1.0.*"])])
    records = asyncio.run(rattler.solve([rattler.Channel(channel.as_uri())], [rattler.MatchSpec("greet"),
                                        rattler.MatchSpec("python")], platforms=[PLATFORM, "noarch"],
                                        gateway=rattler.Gateway(cache_dir=where / "repodata")))
    time.sleep(0.01)  # let rattler's thread finish (see envs/conda/solve.run_async)
    wheel = make_wheel(where / "wheels", "Tiny_Wheel", "1.0")
    pin = PipPin("tiny-wheel", "1.0", wheel.as_uri(), hashlib.sha256(wheel.read_bytes()).hexdigest())
    spec = where / "conda.yaml"
    spec.write_text(f"channels: [{channel.as_uri()}]\ndependencies: [greet, python, {{pip: [tiny-wheel]}}]\n")
    resolved = Resolved(sorted(records, key=lambda r: r.name.normalized), [pin])
    return conda_lock.render(resolved, spec, [channel.as_uri()], PLATFORM, "0" * 64, "ab" * 8)


def test_proj_written_lock_reads_as_conda_and_pip_packages(lock_text: str) -> None:
    contents = conda_lock.read(lock_text, PLATFORM)
    conda = {p.name: p for p in contents.packages if p.manager == "conda"}
    [pip] = [p for p in contents.packages if p.manager == "pip"]
    assert sorted(conda) == ["greet", "greet-data", "python"]
    assert conda["greet"].version == "1.0" and conda["greet"].pin == f"greet=1.0={conda['greet'].build}"
    assert conda["greet"].source.endswith(".tar.bz2") and len(conda["greet"].hash) == 64
    assert contents.python == conda["python"].version
    assert (pip.name, pip.version, pip.pin) == ("tiny-wheel", "1.0", "tiny-wheel==1.0")
    assert len(contents.channels) == 1 and contents.channels[0].startswith("file://")
    assert by_name("conda-lock.yml") is conda_lock.FORMAT
    assert conda_lock.recorded_spec_digest(lock_text) == "ab" * 8


def test_the_install_reader_gives_rattler_records_and_hashed_pip_pins(lock_text: str) -> None:
    resolved = conda_lock.parse(lock_text, PLATFORM, "conda-lock.yml")
    assert sorted(r.name.normalized for r in resolved.records) == ["greet", "greet-data", "python"]
    [pin] = resolved.pins
    assert pin.name == "tiny-wheel" and pin.url.endswith("Tiny_Wheel-1.0-py3-none-any.whl") and len(pin.sha256) == 64


def test_a_platform_the_lock_lacks(lock_text: str) -> None:
    with pytest.raises(EnvError, match=r"^shipped: no packages for platform osx-arm64 \(the lock has: linux-64\)$"):
        conda_lock.parse(lock_text, "osx-arm64", "shipped")
    # The env-file reader falls back to the lock's own platform (a model moved to another machine).
    assert conda_lock.read(lock_text, "osx-arm64") == conda_lock.read(lock_text, PLATFORM)


def test_a_build_string_left_out_is_read_from_the_file_name() -> None:
    text = ("version: 1\nmetadata: {platforms: [linux-64], channels: [{url: conda-forge}]}\npackage:\n"
            "- {name: zlib, version: 1.3.1, manager: conda, platform: linux-64,\n"
            "   url: 'https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3.1-hb9d3cd8_2.conda'}\n"
            "- {name: dev-only, version: '1', manager: conda, platform: linux-64, optional: true}\n")
    [zlib] = conda_lock.read(text, "linux-64").packages
    assert (zlib.build, zlib.pin) == ("hb9d3cd8_2", "zlib=1.3.1=hb9d3cd8_2")
    assert conda_lock.read(text, "linux-64").channels == ["conda-forge"]


@pytest.mark.parametrize("text, message", [("package: [", "conda-lock.yml is not valid YAML: "),
                                           ("version: 1\n", "conda-lock.yml has no 'package' list")])
def test_malformed_locks_are_lock_parse_errors(text: str, message: str) -> None:
    with pytest.raises(LockParseError, match=f"^{message}"):
        conda_lock.read(text, PLATFORM)

