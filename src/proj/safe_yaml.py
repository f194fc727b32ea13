"""The one YAML reader: spec files (MLproject, python_env.yaml, conda.yaml) and files a run wrote, bounded.

PyYAML's SafeLoader still expands aliases without limit (a 300-byte "billion laughs" file becomes
gigabytes) and recurses once per nesting level (a RecursionError near 500 levels). These files are
small and hand-written, and MLflow users do not use aliases, so aliases are refused outright, nesting
is bounded and the file size is capped, each with one line naming the file and line. PyYAML is
imported only when a document is actually parsed, so a warm run (served from the validation cache)
never pays for it.

Files a run or a tool wrote (MLmodel, MLflow's meta.yaml, conda-lock.yml) go through
``load_untrusted``: PyYAML's own dumper emits anchors for shared objects, so aliases are allowed
there, but the document's size after expanding them is bounded (walking a "billion laughs" result,
as json.dumps or jsonschema would, never ends).
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
# For files a run wrote: generous for real MLmodel files (signatures of wide tables), far below a bomb.
UNTRUSTED_MAX_BYTES = 16 * 1024 * 1024
UNTRUSTED_MAX_NODES = 1_000_000


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


def load_untrusted(text: str) -> Any:
    """Parse a YAML document a run or a tool wrote: aliases allowed, expanded size and depth bounded.

    Failures are ``yaml.YAMLError`` (callers already treat those as "unreadable file").
    """
    import yaml

    if len(text) > UNTRUSTED_MAX_BYTES:
        raise yaml.YAMLError(f"document is larger than {UNTRUSTED_MAX_BYTES // (1024 * 1024)} MiB")
    loader = _untrusted_loader_class()(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise yaml.YAMLError(f"document is nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()


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
        # Supplied by the parser each loader below mixes in (yaml.parser.Parser or libyaml's CParser).
        peek_event: Callable[[], Any]
        check_event: Callable[..., bool]

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

    from yaml._yaml import CParser  # the class found above (yaml.cyaml re-exports it), typed in the stubs

    class CLoader(BoundedComposer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    return CLoader


@lru_cache(maxsize=1)
def _untrusted_loader_class() -> type:
    """SafeLoader whose composer counts every node an alias stands for and bounds nesting."""
    import yaml
    from yaml.composer import Composer
    from yaml.nodes import MappingNode, SequenceNode

    class ExpansionBoundedComposer(Composer):
        _depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self._depth >= MAX_DEPTH:
                raise yaml.YAMLError(f"document is nested more than {MAX_DEPTH} levels deep")
            self._depth += 1
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            sizes: dict[int, int] = self.__dict__.setdefault("_sizes", {})
            if id(node) not in sizes:  # an alias returns an already-sized node: counted again by its parent
                sizes[id(node)] = 1 + sum(sizes.get(id(child), 1) for child in _children(node))
            if sizes[id(node)] > UNTRUSTED_MAX_NODES:
                raise yaml.YAMLError(f"document expands to more than {UNTRUSTED_MAX_NODES:,} values "
                                     f"(aliases of aliases?)")
            return node

    def _children(node: Any) -> list[Any]:
        if isinstance(node, SequenceNode):
            return list(node.value)
        if isinstance(node, MappingNode):
            return [part for pair in node.value for part in pair]
        return []

    class UntrustedLoader(ExpansionBoundedComposer, yaml.SafeLoader):
        pass

    return UntrustedLoader
