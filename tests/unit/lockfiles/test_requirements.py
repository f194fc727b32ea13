"""lockfiles.requirements: ``pip freeze`` output and hashed requirements files read as locks."""
from __future__ import annotations

import subprocess
import sys

from proj.lockfiles import requirements
from proj.lockfiles.registry import by_name


def test_real_pip_freeze_output_reads_as_pinned_pip_packages() -> None:
    text = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                          check=True).stdout
    contents = by_name("pip-freeze").parse(text, None)
    by = {p.name: p for p in contents.packages}
    assert by["pyyaml"].pin.startswith("PyYAML==") and by["pyyaml"].version == by["pyyaml"].pin.split("==")[1]
    assert all(p.manager == "pip" and p.name == p.name.lower() for p in contents.packages)
    assert by_name("requirements.txt").parse(text, None) == contents


def test_hashes_comments_continuations_and_index_options_are_left_out() -> None:
    text = ("--index-url https://example.org/simple\n# a comment\n"
            "Foo_Bar==1.0 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\n"
            "baz @ https://example.org/baz-2.0.tar.gz ; python_version >= '3.10'  # pinned by URL\n"
            "extra[fast]==3.1 ; sys_platform == 'linux'\n")
    assert requirements.requirement_lines(text) == [
        "Foo_Bar==1.0", "baz @ https://example.org/baz-2.0.tar.gz ; python_version >= '3.10'",
        "extra[fast]==3.1 ; sys_platform == 'linux'"]
    foo, baz, extra = requirements.parse(text).packages
    assert (foo.name, foo.version, foo.pin) == ("foo-bar", "1.0", "Foo_Bar==1.0")
    assert (baz.name, baz.version, baz.source) == ("baz", "", "https://example.org/baz-2.0.tar.gz")
    assert (extra.name, extra.version) == ("extra", "3.1")
