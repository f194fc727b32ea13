"""lockfiles.registry and base: every recorded format by name, and the one PEP 503 name rule."""
from __future__ import annotations

import pytest

from proj.lockfiles.base import normalise_name
from proj.lockfiles.registry import FORMATS, by_name


def test_every_format_a_backend_records_is_registered() -> None:
    assert sorted(FORMATS) == ["conda-lock.yml", "docker-image", "pip-freeze", "pylock.toml", "requirements.txt"]
    assert all(by_name(name).name == name for name in FORMATS)
    assert by_name("poetry.lock") is None


@pytest.mark.parametrize("written, normal", [("Foo_Bar", "foo-bar"), ("zope.interface", "zope-interface"),
                                             ("A-_.b", "a-b"), ("numpy", "numpy")])
def test_pep_503_normalisation(written: str, normal: str) -> None:
    assert normalise_name(written) == normal
