"""proj.settings: every PROJ_* setting read in one place -- its default, an override, a bad value as one line."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import REPO
from proj import settings
from proj.errors import ProjError, UsageError
from proj.paths import store_root

SRC = REPO / "src" / "proj"  # the checkout, not the installed copy (a wheel install has no README beside it)
# Variables proj sets for the child (or for a helper it runs): not settings, never read by proj itself.
CHILD_VARS = {"PROJ_RUN_ID", "PROJ_ARTIFACT_DIR", "PROJ_MODEL_DIR", "PROJ_METRICS_FILE", "PROJ_SOURCE_COMMIT",
              "PROJ_GIT_USERNAME", "PROJ_GIT_PASSWORD"}


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in settings.NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))


def one_line_error(exc: pytest.ExceptionInfo[ProjError], *needles: str) -> str:
    text = str(exc.value)
    assert "\n" not in text and all(n in text for n in needles), text
    return text


@pytest.mark.parametrize("name, default", sorted(settings.NUMBERS.items()))
def test_number_default_override_and_bad_values(name: str, default: float, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.number(name) == default
    monkeypatch.setenv(name, "")
    assert settings.number(name) == default  # empty means unset
    monkeypatch.setenv(name, " 7.5 ")
    assert settings.number(name) == 7.5
    for bad, why in (("abc", "is not a number"), ("-1", "must be a finite number >= 0"),
                     ("inf", "must be a finite number >= 0"), ("nan", "must be a finite number >= 0")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(UsageError) as exc:
            settings.number(name)
        one_line_error(exc, f"{name}={bad!r}", why)


def test_number_takes_a_callers_default_and_seconds_round_to_at_least_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.number("PROJ_GIT_TIMEOUT", 5.0) == 5.0
    monkeypatch.setenv("PROJ_GIT_TIMEOUT", "0")
    assert settings.seconds("PROJ_GIT_TIMEOUT") == 1  # 0 would mean "at once" to git and ssh
    monkeypatch.setenv("PROJ_GIT_TIMEOUT", "2.6")
    assert settings.seconds("PROJ_GIT_TIMEOUT") == 3


def test_an_unknown_name_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match="not a proj setting"):
        settings.raw("PROJ_NO_SUCH_SETTING")


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from platformdirs import user_cache_dir

    assert settings.cache_dir() == Path(user_cache_dir("proj", appauthor=False))
    monkeypatch.setenv("PROJ_CACHE_DIR", str(tmp_path / "c" / ".." / "cache"))
    assert settings.cache_dir() == tmp_path / "cache"
    monkeypatch.setenv("PROJ_CACHE_DIR", "~proj-no-such-user-x/cache")
    with pytest.raises(UsageError) as exc:
        settings.cache_dir()
    one_line_error(exc, "PROJ_CACHE_DIR", "~proj-no-such-user-x", "no such user")


def test_tracking_uri(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert settings.tracking_uri() is None
    assert store_root(cwd=tmp_path) == tmp_path / ".proj"
    monkeypatch.setenv("PROJ_TRACKING_URI", str(tmp_path / "store"))
    assert store_root(cwd=tmp_path) == tmp_path / "store"
    assert store_root(str(tmp_path / "explicit"), cwd=tmp_path) == tmp_path / "explicit"  # --tracking-uri wins
    monkeypatch.setenv("PROJ_TRACKING_URI", f"file://{tmp_path}/other")
    assert store_root(cwd=tmp_path) == tmp_path / "other"
    monkeypatch.setenv("PROJ_TRACKING_URI", "http://example.invalid/")
    with pytest.raises(UsageError) as exc:
        store_root(cwd=tmp_path)
    one_line_error(exc, "http://example.invalid/", "not supported")
    monkeypatch.setenv("PROJ_TRACKING_URI", "~proj-no-such-user-x/store")
    with pytest.raises(UsageError) as exc:
        store_root(cwd=tmp_path)
    one_line_error(exc, "PROJ_TRACKING_URI", "no such user")


def test_experiment_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.experiment_name() == "Default"
    monkeypatch.setenv("PROJ_EXPERIMENT_NAME", "nightly")
    assert settings.experiment_name() == "nightly"


@pytest.mark.parametrize("name, read", [("PROJ_DEBUG", settings.debug),
                                        ("PROJ_KEEP_MLFLOW_TRACKING_URI", settings.keep_mlflow_tracking_uri)])
def test_flags(name: str, read, monkeypatch: pytest.MonkeyPatch) -> None:
    assert read() is False
    monkeypatch.setenv(name, "")
    assert read() is False
    monkeypatch.setenv(name, "1")
    assert read() is True


def test_conda_channel_alias_from_config_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert settings.conda_channel_alias() is None
    config = tmp_path / "config.toml"
    config.write_text('[conda]\nchannel_alias = "https://mirror.example/conda"\n')
    monkeypatch.setenv("PROJ_CONFIG", str(config))
    assert settings.conda_channel_alias() == "https://mirror.example/conda"
    monkeypatch.setenv("PROJ_CONDA_CHANNEL_ALIAS", "/mirrors")
    assert settings.conda_channel_alias() == "/mirrors"  # the environment wins over the file


def test_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert settings.config_path() is None and settings.load_config() == {}
    home = tmp_path / "xdg"
    (home / "proj").mkdir(parents=True)
    (home / "proj" / "config.toml").write_text("[conda.channels]\nx = '/m/x'\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    assert settings.section("conda", "channels") == {"x": "/m/x"}
    monkeypatch.setenv("PROJ_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(UsageError) as exc:
        settings.load_config()
    one_line_error(exc, "PROJ_CONFIG=", "missing.toml", "file not found")
    bad = tmp_path / "bad.toml"
    bad.write_text("[conda\n")
    monkeypatch.setenv("PROJ_CONFIG", str(bad))
    with pytest.raises(UsageError) as exc:
        settings.load_config()
    one_line_error(exc, str(bad), "invalid configuration file")
    scalar = tmp_path / "scalar.toml"
    scalar.write_text("conda = 3\n")
    monkeypatch.setenv("PROJ_CONFIG", str(scalar))
    with pytest.raises(UsageError) as exc:
        settings.section("conda")
    one_line_error(exc, "[conda] must be a table")


def test_nothing_is_read_at_import() -> None:
    env = {name: "not-a-number" for name in settings.NUMBERS} | {"PROJ_CONFIG": "/no/such/config.toml",
                                                                 "PROJ_CACHE_DIR": "~proj-no-such-user-x"}
    code = "import proj.settings, proj.paths, proj.cli.main, proj.sources.gitcmd, proj.sources.snapshot; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_every_setting_is_documented_and_read_only_here() -> None:
    """No module but settings reads a PROJ_* variable; every name settings knows is in its docstring table."""
    doc = settings.__doc__ or ""
    for name in settings.NAMES:
        assert f"``{name}``" in doc, name
    read = re.compile(r"(?:environ(?:\.get)?|getenv)\(\s*['\"](PROJ_[A-Z_]+)|environ\[['\"](PROJ_[A-Z_]+)")
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "settings.py" or "_childpath" in path.parts:  # _childpath runs inside the child
            continue
        for match in read.finditer(path.read_text()):
            name = match.group(1) or match.group(2)
            if name not in CHILD_VARS:
                offenders.append(f"{path.relative_to(SRC)}: {name}")
    assert offenders == []


def test_the_readme_lists_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| Variable | Meaning | Default |"):]
    assert [name for name in settings.NAMES if f"`{name}`" not in table] == []
