"""The env lifecycle of envs/base.py, driven by a tiny backend that builds a real directory."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from proj.envs.base import BuildLog, BuiltBackend, Env, EnvChoice, Invocation, Lock, Resolved
from proj.envs.cache import MARKER, EnvCache
from proj.errors import EnvError
from proj.execution.process import OutputSink
from proj.locks import in_use
from proj.project.spec import Project
from proj.report import WARN, Collector


class DirEnv(Env):
    backend = "dirs"

    def __init__(self, key: str, path: Path, lock: Lock, hit: bool, seconds: float, origin: str) -> None:
        self.key, self.path, self.lock, self.cache_hit, self.build_seconds = key, path, lock, hit, seconds
        self.details = {"lock_origin": origin}

    def home(self) -> Path:
        return self.path

    def execute(self, invocation: Invocation, sink: OutputSink) -> int:
        return 0


class DirBackend(BuiltBackend[str]):
    """Spec = the spec file's text; the lock = its sorted lines; the build writes them to ``packages.txt``."""

    name = "dirs"
    lock_format = "lines"

    def __init__(self, cache: EnvCache) -> None:
        super().__init__(cache)
        self.resolves = 0
        self.builds = 0
        self.gate: threading.Event | None = None  # a build waits on it (to hold the build lock)

    def load_spec(self, choice: EnvChoice) -> str:
        assert choice.spec_file is not None
        return choice.spec_file.read_text()

    def fingerprint(self, spec: str) -> str:
        return hashlib.sha256(spec.encode()).hexdigest()[:16]

    def warn(self, spec: str, log: BuildLog, *, cold: bool) -> None:
        if cold and "old" in spec:
            log.warn("'old' is deprecated")

    def resolve(self, spec: str, log: BuildLog) -> Resolved:
        self.resolves += 1
        return Resolved(Lock(self.lock_format, "\n".join(sorted(spec.split())) + "\n"), "resolved")

    def key(self, spec: str, resolved: Resolved) -> str:
        return "dirs-" + resolved.lock.sha256[:12]

    def build(self, spec: str, resolved: Resolved, dest: Path, log: BuildLog) -> dict[str, Any]:
        assert dest.is_dir() and not any(dest.iterdir()), "the base hands over an empty directory"
        if self.gate is not None:
            assert self.gate.wait(60)
        self.builds += 1
        (dest / "packages.txt").write_text(resolved.lock.text)
        return {"backend": self.name}

    def health(self, path: Path) -> str | None:
        return None if (path / "packages.txt").is_file() else "packages.txt is missing"

    def make_env(self, choice: EnvChoice, spec: str, resolved: Resolved, key: str, path: Path, *, hit: bool,
                 seconds: float) -> DirEnv:
        return DirEnv(key, path, resolved.lock, hit, seconds, resolved.origin)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[DirBackend, EnvChoice]:
    monkeypatch.setenv("PROJ_CACHE_DIR", str(tmp_path / "cache"))  # the resolution cache lives there
    spec = tmp_path / "deps.txt"
    spec.write_text("numpy pandas\n")
    return DirBackend(EnvCache(tmp_path / "cache" / "envs")), EnvChoice("dirs", "test", spec, Project(tmp_path, "t", None, {}))


def home(env: Env) -> Path:
    path = env.home()
    assert path is not None
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def test_second_ensure_is_a_cache_hit_without_resolving(setup: tuple[DirBackend, EnvChoice]) -> None:
    backend, choice = setup
    first = backend.ensure(choice, BuildLog(None))
    again = DirBackend(backend.cache).ensure(choice, BuildLog(None))  # a new process: only the caches on disk
    assert (first.cache_hit, again.cache_hit) == (False, True)
    assert first.key == again.key and home(first) == home(again)
    assert (home(first) / MARKER).is_file() and lines(home(first) / "packages.txt") == ["numpy", "pandas"]
    assert backend.resolves == 1 and backend.builds == 1


def test_concurrent_ensures_build_once(setup: tuple[DirBackend, EnvChoice]) -> None:
    backend, choice = setup
    backend.gate = threading.Event()
    envs: list[Env] = []
    threads = [threading.Thread(target=lambda: envs.append(DirBackend.ensure(backend, choice, BuildLog(None))))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    backend.gate.set()
    for thread in threads:
        thread.join(60)
    assert len(envs) == 4 and backend.builds == 1
    assert sorted(env.cache_hit for env in envs) == [False, True, True, True]
    assert len({home(env) for env in envs}) == 1


def test_a_broken_env_is_rebuilt_and_the_reason_said(setup: tuple[DirBackend, EnvChoice], tmp_path: Path) -> None:
    backend, choice = setup
    env = backend.ensure(choice, BuildLog(None))
    (home(env) / "packages.txt").unlink()
    log = tmp_path / "build.log"
    echoed: list[str] = []
    again = backend.ensure(choice, BuildLog(log, echoed.append))
    assert again.cache_hit is False and backend.builds == 2 and backend.resolves == 1
    said = f"rebuilding environment {env.key} because packages.txt is missing"
    assert said in echoed and said in lines(log)
    assert (home(again) / "packages.txt").is_file()


def test_warnings_go_to_the_reporter_and_the_build_log(setup: tuple[DirBackend, EnvChoice], tmp_path: Path) -> None:
    backend, choice = setup
    assert choice.spec_file is not None
    choice.spec_file.write_text("old numpy\n")
    reporter, echoed, log = Collector(), list[str](), tmp_path / "build.log"
    backend.ensure(choice, BuildLog(log, echoed.append, reporter))
    assert reporter.messages(WARN) == ["'old' is deprecated"]
    assert "warning: 'old' is deprecated" in lines(log) and not any("deprecated" in e for e in echoed)
    assert backend.ensure(choice, BuildLog(None, echoed.append)).cache_hit  # the warm path says nothing
    assert not any("deprecated" in e for e in echoed)


def test_refresh_of_a_leased_env_builds_beside_it(setup: tuple[DirBackend, EnvChoice]) -> None:
    backend, choice = setup
    env = backend.ensure(choice, BuildLog(None))
    echoed: list[str] = []
    with in_use(home(env), "run-one", marker=MARKER):
        fresh = backend.ensure(choice, BuildLog(None, echoed.append), refresh=True)
        assert (home(env) / "packages.txt").is_file(), "the leased env is left to its run"
    assert fresh.key == env.key and home(fresh) != home(env) and fresh.cache_hit is False
    assert backend.resolves == 2, "a refresh resolves again"
    assert f"rebuilding environment {env.key} because --refresh-env asked for a rebuild" in echoed
    assert any("built a new env beside the one in use by run run-one" in e for e in echoed), echoed
    later = backend.ensure(choice, BuildLog(None))
    assert later.cache_hit and home(later) == home(fresh)
    assert backend.cache.retired() == [home(env)]


def test_refresh_of_an_unleased_env_rebuilds_in_place(setup: tuple[DirBackend, EnvChoice]) -> None:
    backend, choice = setup
    env = backend.ensure(choice, BuildLog(None))
    fresh = backend.ensure(choice, BuildLog(None), refresh=True)
    assert home(fresh) == home(env) and fresh.cache_hit is False and backend.builds == 2


def test_from_lock_takes_the_same_path(setup: tuple[DirBackend, EnvChoice], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    backend, choice = setup
    built = backend.ensure(choice, BuildLog(None))
    hit = DirBackend(backend.cache).from_lock(choice, built.lock, BuildLog(None))
    assert hit.cache_hit and hit.key == built.key and home(hit) == home(built)
    empty = DirBackend(EnvCache(tmp_path / "other" / "envs"))  # an empty cache: built from the lock, unresolved
    rebuilt = empty.from_lock(choice, Lock("lines", "scipy\n"), BuildLog(None))
    assert not rebuilt.cache_hit and empty.resolves == 0 and empty.builds == 1
    assert rebuilt.details["lock_origin"] == "recorded lock" and lines(home(rebuilt) / "packages.txt") == ["scipy"]
    assert (home(rebuilt) / MARKER).is_file()


def test_from_lock_refuses_another_format(setup: tuple[DirBackend, EnvChoice]) -> None:
    backend, choice = setup
    with pytest.raises(EnvError, match="cannot rebuild from a 'pylock.toml' lock"):
        backend.from_lock(choice, Lock("pylock.toml", ""), BuildLog(None))
