"""reproduce.packages: package-level environment diffs read through the lockfiles formats."""
from __future__ import annotations

from proj.reproduce.packages import describe_changes, lock_packages

CONDA_LOCK = ("version: 1\nmetadata: {platforms: [linux-64], channels: [{url: conda-forge}]}\npackage:\n"
              "- {name: python, version: 3.11.7, manager: conda, platform: linux-64, build: h1_0}\n"
              "- {name: _libgcc_mutex, version: '0.1', manager: conda, platform: linux-64,\n"
              "   url: 'https://c/linux-64/_libgcc_mutex-0.1-main.tar.bz2'}\n"
              "- {name: Tiny_Wheel, version: '1.0', manager: pip, platform: linux-64, url: u, hash: {sha256: ab}}\n")


def test_conda_packages_are_prefixed_and_keep_their_build() -> None:
    assert lock_packages("conda-lock.yml", CONDA_LOCK) == {"conda:python": "3.11.7 h1_0",
                                                          "conda:_libgcc_mutex": "0.1 main", "tiny-wheel": "1.0"}


def test_pins_without_a_version_stand_for_themselves() -> None:
    text = "numpy==2.0.1\n-e /src/mine\nbaz @ https://example.org/baz-1.0.tar.gz\n"
    packages = lock_packages("pip-freeze", text)
    assert packages["numpy"] == "2.0.1" and packages["-e /src/mine"] == "-e /src/mine"
    assert sorted(packages.values()) == ["-e /src/mine", "2.0.1", "baz @ https://example.org/baz-1.0.tar.gz"]


def test_a_docker_lock_is_diffed_by_its_fields_and_unreadable_locks_by_nothing() -> None:
    old = lock_packages("docker-image", '{"image_id": "sha256:1", "context_hash": "c1"}')
    new = lock_packages("docker-image", '{"image_id": "sha256:2", "context_hash": "c1"}')
    assert describe_changes(old, new) == ["image_id sha256:1 -> sha256:2"]
    assert lock_packages("pylock.toml", "[[packages") == {} and lock_packages("poetry.lock", "x") == {}
