"""The one YAML reader for spec files (MLproject, python_env.yaml, conda.yaml): safe, and bounded in size and shape.

PyYAML's SafeLoader still expands aliases without limit (a 300-byte "billion laughs" file becomes
gigabytes) and recurses once per nesting level (a RecursionError near 500 levels). These files are
small and hand-written, and MLflow users do not use aliases, so aliases are refused outright, nesting
is bounded and the file size is capped, each with one line naming the file and line. PyYAML is
imported only when a document is actually parsed, so a warm run (served from the validation cache)
never pays for it.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from proj.errors import ProjectError

# Real spec files are a few KB; pure-Python construction costs about 4 s per MiB on a busy machine,
# so the cap keeps the worst accepted file to a fraction of a second while leaving room for large
# exported conda environments.
MAX_BYTES = 256 * 1024
MAX_DEPTH = 64


def read_yaml_text(path: Path, limit: int = MAX_BYTES) -> str:
    """The text of a spec file, refused before reading when it is larger than ``limit`` bytes."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(limit + 1)  # never more than the cap, whatever the file turns out to be
    except FileNotFoundError:
        raise ProjectError(f"{path}: file not found") from None
    except OSError as exc:
        raise ProjectError(f"{path}: cannot be read: {exc}") from None
    if len(raw) > limit:
        raise ProjectError(f"{path}: file is larger than {limit // 1024} KiB; "
                           f"a spec file this big is not supported")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProjectError(f"{path}:{line}: not valid UTF-8 (byte {raw[exc.start]:#04x})") from None


def safe_load(text: str, path: Path) -> Any:
    """Parse one YAML document with the limits above; every failure is one ProjectError naming ``path``."""
    return _run(text, path, lambda loader: loader.get_single_data())


def safe_compose(text: str, path: Path) -> Any:
    """The node tree of ``text`` (for line numbers), under the same limits."""
    return _run(text, path, lambda loader: loader.get_single_node())


def _run(text: str, path: Path, step: Callable[[Any], Any]) -> Any:
    import yaml

    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ProjectError(f"{path}: file is larger than {MAX_BYTES // 1024} KiB; a spec file this big is not supported")
    loader = _loader_class()(text)
    loader.spec_path = path
    try:
        return step(loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ProjectError(f"{path}{where}: invalid YAML: {exc.problem or exc.context or 'syntax error'}") from None
    except yaml.reader.ReaderError as exc:  # a control character or similar: not a MarkedYAMLError
        line = text[: max(exc.position, 0)].count("\n") + 1
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise ProjectError(f"{path}:{line}: invalid YAML: character {char!r} is not allowed "
                           f"(control characters must be escaped in a double-quoted string)") from None
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: invalid YAML: {exc}") from None
    except RecursionError:  # the depth bound should make this unreachable; keep the promise anyway
        raise ProjectError(f"{path}: YAML is nested too deeply (more than {MAX_DEPTH} levels)") from None
    finally:
        loader.dispose()


@lru_cache(maxsize=1)
def _loader_class() -> type:
    """SafeLoader's construction and resolution with a composer that refuses aliases and deep nesting.

    libyaml's parser (when PyYAML has it) produces the events about 4x faster; composition stays in
    Python either way, which is where the checks live.
    """
    import yaml
    from yaml.composer import Composer
    from yaml.events import AliasEvent

    class BoundedComposer(Composer):
        spec_path: Path = Path("<yaml>")
        _depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            where = f"{self.spec_path}:{event.start_mark.line + 1}"
            if self.check_event(AliasEvent):
                raise ProjectError(f"{where}: YAML aliases (*{event.anchor}) are not supported in this file; "
                                   f"write the value out")
            if self._depth >= MAX_DEPTH:
                raise ProjectError(f"{where}: YAML is nested more than {MAX_DEPTH} levels deep")
            self._depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    cparser = getattr(getattr(yaml, "cyaml", None), "CParser", None)
    if cparser is None:
        class PyLoader(BoundedComposer, yaml.SafeLoader):
            pass

        return PyLoader

    class CLoader(BoundedComposer, cparser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        def __init__(self, stream: str) -> None:
            cparser.__init__(self, stream)
            Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    return CLoader
