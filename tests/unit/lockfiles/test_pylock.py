"""lockfiles.pylock: a pylock.toml written by uv (against local wheels) read into Package records."""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from helpers.wheels import make_wheel
from proj.errors import EnvError, LockParseError
from proj.lockfiles import pylock
from proj.lockfiles.registry import by_name


@pytest.fixture(scope="module")
def uv_lock(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What ``uv pip compile --format pylock.toml`` writes for Tiny_Dep (a dependency of tinyapp), offline."""
    import uv

    where = tmp_path_factory.mktemp("pylock")
    make_wheel(where / "wheels", "Tiny_Dep", "1.2")
    make_wheel(where / "wheels", "tinyapp", "0.3", requires=("tiny-dep>=1",))
    (where / "requirements.in").write_text("tinyapp\n")
    out = where / "pylock.toml"
    subprocess.run([uv.find_uv_bin(), "pip", "compile", "-q", "--format", "pylock.toml", "--no-index", "--find-links",
                    str(where / "wheels"), "--python-version", "3.11", "--no-header", "-o", str(out),
                    str(where / "requirements.in")], check=True, capture_output=True, cwd=where,
                   env={"PATH": "/usr/bin:/bin", "UV_CACHE_DIR": str(where / "uv-cache")})
    return out.read_text()


def test_a_uv_lock_reads_as_pip_packages_with_normalised_names_and_hashes(uv_lock: str) -> None:
    contents = pylock.parse(uv_lock)
    by = {p.name: p for p in contents.packages}
    assert sorted(by) == ["tiny-dep", "tinyapp"]
    dep = by["tiny-dep"]
    assert (dep.version, dep.manager) == ("1.2", "pip")
    assert dep.pin == "tiny-dep==1.2"
    wheel = Path(dep.source.removeprefix("file://"))
    assert wheel.name == "Tiny_Dep-1.2-py3-none-any.whl" and dep.hash == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert contents.python is None  # uv writes ">=3.11", not an exact version
    assert pylock.lock_packages(uv_lock) == {"tiny-dep": "1.2", "tinyapp": "0.3"}


def test_the_registry_serves_the_same_reader(uv_lock: str) -> None:
    fmt = by_name("pylock.toml")
    assert fmt is pylock.FORMAT and fmt.lists_packages
    assert fmt.parse(uv_lock, None) == pylock.parse(uv_lock)


def test_requirements_export_keeps_every_hash(uv_lock: str) -> None:
    lines = pylock.lock_to_requirements(uv_lock).splitlines()
    assert len(lines) == 2 and all(" --hash=sha256:" in line for line in lines)


def test_source_pins_and_markers_and_an_exact_python() -> None:
    text = ('lock-version = "1.0"\nrequires-python = "==3.12.1"\n'
            '[[packages]]\nname = "Foo.Bar"\nmarker = "sys_platform == \'linux\'"\n'
            '[packages.vcs]\ntype = "git"\nurl = "https://example.org/foo.git"\ncommit-id = "abc123"\n'
            '[[packages]]\nname = "local"\n[packages.directory]\npath = "/src/local"\n')
    contents = pylock.parse(text)
    assert contents.python == "3.12.1"
    foo, local = contents.packages
    assert (foo.name, foo.version, foo.source) == ("foo-bar", "", "https://example.org/foo.git")
    assert foo.pin == "Foo.Bar @ git+https://example.org/foo.git@abc123 ; sys_platform == 'linux'"
    assert local.pin == "local @ file:///src/local"
    assert pylock.parse('lock-version = "1.0"\nrequires-python = ">=3.10"\n').python is None


def test_malformed_toml_is_one_lock_parse_error_that_is_an_env_error() -> None:
    with pytest.raises(LockParseError, match="^pylock.toml is not valid TOML: ") as caught:
        pylock.parse("[[packages]\nname = ")
    assert isinstance(caught.value, EnvError) and "\n" not in str(caught.value)


def test_the_spec_stamp_round_trips_without_a_toml_parse(uv_lock: str) -> None:
    stamped = pylock.with_spec_digest(uv_lock, "0123456789abcdef")
    assert pylock.recorded_spec_digest(stamped) == "0123456789abcdef"
    assert pylock.recorded_spec_digest(uv_lock) is None
    assert pylock.parse(stamped).packages == pylock.parse(uv_lock).packages


def test_uv_records_the_python_it_resolved_for(uv_lock: str) -> None:
    assert pylock.requires_python(uv_lock) == "3.11"
