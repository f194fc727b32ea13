"""Small, fast pieces of the conda backend: channel mapping, spec fingerprints, activation replay."""
from __future__ import annotations

from pathlib import Path

import pytest

from proj.envs.conda import activation
from proj.envs.conda.channels import DEFAULTS, channel_urls
from proj.envs.conda.spec import fingerprint, spec_from_data


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    config = tmp_path / "proj.toml"
    config.write_text("")
    monkeypatch.setenv("PROJ_CONFIG", str(config))
    monkeypatch.delenv("PROJ_CONDA_CHANNEL_ALIAS", raising=False)
    from proj.settings import _load

    _load.cache_clear()
    return config


def test_named_channels_use_anaconda_org_and_defaults_is_expanded(tmp_path: Path) -> None:
    urls = channel_urls(["conda-forge", "defaults", "nodefaults"], tmp_path)
    assert urls == [("conda-forge", "https://conda.anaconda.org/conda-forge"),
                    *[("defaults", u) for u in DEFAULTS]]


def test_alias_redirects_every_named_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJ_CONDA_CHANNEL_ALIAS", str(tmp_path / "mirror"))
    urls = dict(channel_urls(["conda-forge", "defaults", "https://example.org/x"], tmp_path))
    assert urls["conda-forge"] == (tmp_path / "mirror").as_uri() + "/conda-forge"
    assert urls["defaults"] == (tmp_path / "mirror").as_uri() + "/defaults"
    assert urls["https://example.org/x"] == "https://example.org/x"  # explicit URLs are left alone


def test_config_mapping_wins_and_may_list_several_urls(tmp_path: Path, no_user_config: Path) -> None:
    no_user_config.write_text('[conda.channels]\ndefaults = ["file:///m/main", "file:///m/r"]\n'
                              'conda-forge = "./cf"\n')
    urls = channel_urls(["conda-forge", "defaults"], tmp_path)
    assert urls == [("conda-forge", (tmp_path / "cf").as_uri()), ("defaults", "file:///m/main"),
                    ("defaults", "file:///m/r")]


def test_bad_config_mapping_is_a_clear_error(tmp_path: Path, no_user_config: Path) -> None:
    from proj.errors import EnvError

    no_user_config.write_text("[conda.channels]\nconda-forge = 3\n")
    with pytest.raises(EnvError, match="conda-forge"):
        channel_urls(["conda-forge"], tmp_path)


def test_fingerprint_ignores_spelling_and_order_but_not_meaning(tmp_path: Path) -> None:
    def fp(deps: list, channels: list[tuple[str, str]] = [("c", "file:///c")]) -> str:  # noqa: B006
        return fingerprint(spec_from_data(tmp_path / "conda.yaml", {"dependencies": deps}), channels, "linux-64")

    assert fp(["numpy >= 1.2", "python=3.11"]) == fp(["python=3.11", "numpy>=1.2"])
    assert fp(["numpy>=1.2"]) != fp(["numpy>=1.3"])
    assert fp(["numpy"]) != fp(["numpy"], [("c", "file:///other")])  # the mirror mapping counts
    assert fp(["numpy", {"pip": ["a"]}]) != fp(["numpy", {"pip": ["b"]}])


def test_activation_delta_replays_templates_on_a_new_base() -> None:
    delta: activation.Delta = {"PATH": f"/env/bin:{activation.HOLE}", "CONDA_PREFIX": "/env", "GONE": None}
    env = activation.apply(delta, {"PATH": "/usr/bin", "GONE": "x", "CONDA_PREFIX": "/old"})
    assert env["PATH"] == "/env/bin:/usr/bin" and env["CONDA_PREFIX"] == "/env" and "GONE" not in env
    assert activation.apply(delta, {})["PATH"] == "/env/bin"


def test_previously_active_conda_env_is_deactivated() -> None:
    delta: activation.Delta = {"PATH": f"/env/bin:{activation.HOLE}", "CONDA_PREFIX": "/env"}
    env = activation.apply(delta, {"PATH": "/old/bin:/usr/bin", "CONDA_PREFIX": "/old"})
    assert env["PATH"] == "/env/bin:/usr/bin"
