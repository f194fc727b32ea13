"""MLflow's model-registry search grammars (registered models, model versions) compiled to SQL, with its messages."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proj.errors import UsageError
from proj.tracking.search import ATTRIBUTE, SQLITE, TAG, Clause, Dialect, Reader, Token, tokenize

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow keeps prompts in the registry too; searches leave them out
NUMERIC_COMPARATORS = ("=", "!=", "<", "<=", ">", ">=")
STRING_COMPARATORS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
TAG_COMPARATORS = ("=", "!=", "LIKE", "ILIKE")
_ENTITY_TYPES = ("attribute", "tag", "tags")
_STRING_TOKENS = ("sq", "dq", "bq")  # sqlparse reads "x" and `x` as identifiers, which MLflow takes as values


@dataclass(frozen=True)
class RegistryGrammar:
    """One registry search: its filterable attributes (SQL per attribute), order keys, tag subquery and row."""

    attributes: dict[str, str]  # filter key -> SQL expression
    numeric: tuple[str, ...]  # MLflow's NUMERIC_ATTRIBUTES of that search (shown in its message)
    list_keys: tuple[str, ...]
    order_keys: dict[str, str]  # order_by key -> SQL column
    valid_order_keys: tuple[str, ...]  # as MLflow's message lists them
    order_error: str  # MLflow's message for a key outside them
    tiebreak: tuple[tuple[str, str, bool], ...]  # (key, SQL column, ascending) appended unless ordered by key
    tag_sql: str  # the tag's value for the row, "?" the key
    prompt_sql: str  # true for a row that belongs to a prompt (uncorrelated: SQLite computes the set once)


REGISTERED_MODELS = RegistryGrammar(
    attributes={"name": "m.name"}, numeric=("creation_timestamp", "last_updated_timestamp"), list_keys=("name",),
    # MLflow's SQL store orders "timestamp" by the last update; creation_timestamp is proj's addition
    order_keys={"name": "m.name", "timestamp": "m.last_updated_time", "last_updated_timestamp": "m.last_updated_time",
                "creation_timestamp": "m.creation_time"},
    valid_order_keys=("name", "timestamp"), order_error="Invalid order by key '{key}' specified. Valid keys are '{valid}'",
    tiebreak=(("name", "m.name", True),),
    tag_sql="(SELECT x.value FROM registered_model_tags x WHERE x.model_id = m.id AND x.key = ?)",
    prompt_sql=f"m.id IN (SELECT x.model_id FROM registered_model_tags x WHERE x.key = '{IS_PROMPT_TAG}'"
               " AND x.value = 'true')")
MODEL_VERSIONS = RegistryGrammar(
    attributes={"name": "m.name", "version_number": "v.version", "run_id": "v.run_id", "source_path": "v.source"},
    numeric=("creation_timestamp", "last_updated_timestamp", "version_number"), list_keys=("name", "run_id"),
    order_keys={"name": "m.name", "version_number": "v.version", "creation_timestamp": "v.creation_time",
                "last_updated_timestamp": "v.last_updated_time"},
    valid_order_keys=("creation_timestamp", "last_updated_timestamp", "name", "version_number"),
    order_error="Invalid attribute key '{key}' specified. Valid keys are '{valid}'",
    tiebreak=(("name", "m.name", True), ("version_number", "v.version", False)),
    tag_sql="(SELECT x.value FROM model_version_tags x WHERE x.model_id = v.model_id AND x.version = v.version"
            " AND x.key = ?)",
    # as MLflow: any version of the model tagged as a prompt makes every version of it a prompt's
    prompt_sql=f"v.model_id IN (SELECT x.model_id FROM model_version_tags x WHERE x.key = '{IS_PROMPT_TAG}'"
               " AND x.value = 'true')")
MODEL_VERSIONS_DEFAULT_ORDER = ("last_updated_timestamp DESC", "name ASC", "version_number DESC")


def _set(items: tuple[str, ...]) -> str:
    """A key list as MLflow prints its sets ({'a', 'b'}), sorted so the message is stable."""
    return "{" + ", ".join(repr(i) for i in sorted(items)) + "}"


def _bad(message: str) -> UsageError:
    return UsageError(message)


def _text(token: Token) -> str:
    return token.text[1:-1] if token.kind in _STRING_TOKENS else token.text


def _identifier(r: Reader, grammar: RegistryGrammar, valid: tuple[str, ...]) -> tuple[str, str]:
    """``name``, ``attribute.name``, ``tags.k``, ``tags.`a key``` -> (ATTRIBUTE or TAG, key)."""
    first = r.take()
    if first is None or first.kind not in ("word", "bq", "dq"):
        raise _bad(f"Invalid clause(s) in filter string: {first.text if first else 'the end'!r}: expected "
                   "an identifier such as name or tags.<key>")
    dot = r.peek()
    if dot is None or dot.text != ".":
        entity, key = ATTRIBUTE, _text(first)
    else:
        r.take()
        entity_type = _text(first)
        if entity_type not in _ENTITY_TYPES:
            raise _bad(f"Invalid entity type '{entity_type}'. Valid entity types are {_ENTITY_TYPES}")
        entity = ATTRIBUTE if entity_type == "attribute" else TAG
        part = r.take()
        if part is None or part.kind not in ("word", "bq", "dq", "sq", "num"):
            raise _bad(f"Invalid clause(s) in filter string: expected a key after '{entity_type}.'")
        key = _text(part)
        if part.kind in ("word", "num"):  # an unquoted key may hold dots: tags.a.b is key "a.b"
            while (d := r.peek()) is not None and d.text == "." and (more := r.peek(1)) is not None \
                    and more.kind in ("word", "num"):
                r.pos += 2
                key += "." + more.text
    if entity == ATTRIBUTE and key not in valid:
        raise _bad(f"Invalid attribute key '{key}' specified. Valid keys are '{_set(valid)}'")
    return entity, key


def _comparator(r: Reader) -> str:
    token = r.take()
    if token is not None and token.kind == "op":
        return token.text  # "<>" and "==" too: MLflow refuses them as comparators, and so does _checked
    if token is not None and token.kind == "word":
        word = token.text.upper()
        if word == "NOT" and (nxt := r.peek()) is not None and nxt.text.upper() == "IN":
            r.take()
            return "NOT IN"
        if word in ("LIKE", "ILIKE", "IN"):
            return word
    raise _bad(f"Invalid comparison clause: expected a comparator (one of {list(NUMERIC_COMPARATORS)} or "
               f"{list(STRING_COMPARATORS[2:])}), found {token.text if token else 'the end'!r}")


def _list(r: Reader) -> list[str]:
    items: list[str] = []
    while True:
        item = r.take()
        if item is None or item.kind not in _STRING_TOKENS:
            raise _bad("While parsing a list in the query, expected a non-empty list of string values, but got "
                       "ill-formed list.")
        items.append(_text(item))
        closing = r.take()
        if closing is not None and closing.text == ")":
            return items
        if closing is None or closing.text != ",":
            raise _bad("While parsing a list in the query, expected a non-empty list of string values, but got "
                       "ill-formed list.")


def _shown(r: Reader, token: Token | None) -> str:
    """The value as MLflow quotes it in a message: a parenthesised list whole, else the token."""
    if token is None:
        return ""
    if token.text != "(":
        return token.text
    inner = []
    for ahead in r.tokens[r.pos:]:
        inner.append(ahead.text)
        if ahead.text == ")":
            break
    return "(" + "".join(", " if t == "," else t for t in inner)


def _value(r: Reader, entity: str, key: str, grammar: RegistryGrammar) -> Any:
    token = r.take()
    shown = _shown(r, token)
    if token is not None and token.kind == "word":
        raise _bad(f"Parameter value is either not quoted or unidentified quote types used for string value "
                   f"{token.text}. Use either single or double quotes.")
    if entity == TAG:
        if token is None or token.kind not in _STRING_TOKENS:
            raise _bad(f"Expected a quoted string value for tag (e.g. 'my-value'). Got value {shown}")
        return _text(token)
    if token is not None and token.kind in _STRING_TOKENS:
        return _text(token)
    if token is not None and token.text == "(":
        if key not in grammar.list_keys:
            raise _bad(f"Only {sorted(grammar.list_keys)} attributes support comparison with a list of quoted "
                       "string values.")
        return _list(r)
    if token is not None and token.kind == "num" and "version_number" in grammar.attributes:
        if key not in grammar.numeric:
            raise _bad(f"Only the '{_set(grammar.numeric)}' attributes support comparison with numeric values.")
        return float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
    raise _bad("Expected a quoted string value or a list of quoted string values for attributes. "
               f"Got value {shown}")


def _checked(clause: Clause, grammar: RegistryGrammar) -> Clause:
    """MLflow's store-side checks of one clause: the comparator for its kind, numbers for numeric keys."""
    key, comparator, value = clause.key, clause.comparator, clause.value
    if clause.type == TAG:
        if comparator not in TAG_COMPARATORS:
            raise _bad(f"Invalid comparator for tag: {comparator}")
        return clause
    if key in grammar.numeric:
        if comparator not in NUMERIC_COMPARATORS:
            raise _bad(f"Invalid comparator for attribute {key}: {comparator}")
        if isinstance(value, float):
            raise _bad(f"Invalid value for numeric attribute '{key}': {value!r}")
        try:
            return Clause(clause.type, key, comparator, int(value))
        except (TypeError, ValueError):
            raise _bad(f"Invalid value for numeric attribute '{key}': {value!r}") from None
    if comparator not in STRING_COMPARATORS or (comparator in ("IN", "NOT IN") and key not in grammar.list_keys):
        raise _bad(f"Invalid comparator for attribute: {comparator}")
    if isinstance(value, list) != (comparator in ("IN", "NOT IN")):
        raise _bad(f"Invalid comparison clause: '{comparator}' needs " + (
            "a parenthesised list of quoted strings" if comparator in ("IN", "NOT IN") else "a single value"))
    return clause


def parse_registry_filter(text: str | None, grammar: RegistryGrammar) -> list[Clause]:
    """``name LIKE 'fraud%' AND tags.team = 'risk'`` -> clauses (AND only, as MLflow)."""
    if not text or not text.strip():
        return []
    r = Reader(text, "filter")
    clauses: list[Clause] = []
    while True:
        entity, key = _identifier(r, grammar, tuple(grammar.attributes))
        start = r.pos - 1
        if (nxt := r.peek()) is None or not (nxt.kind == "op" or nxt.text.upper() in ("LIKE", "ILIKE", "IN", "NOT")):
            raise _bad(f"Invalid clause(s) in filter string: {' '.join(t.text for t in r.tokens[start:])}")
        comparator = _comparator(r)
        clauses.append(_checked(Clause(entity, key, comparator, _value(r, entity, key, grammar)), grammar))
        token = r.take()
        if token is None:
            return clauses
        if token.kind != "word" or token.text.upper() != "AND":
            raise _bad(f"Invalid clause(s) in filter string: {token.text}")
        if r.peek() is None:  # "name = 'a' AND": MLflow's parser lets a trailing AND pass
            return clauses


def queries_prompts(clauses: list[Clause]) -> bool:
    """True when the filter asks for prompts (``tags.`mlflow.prompt.is_prompt` = 'true'``), as MLflow decides."""
    for c in clauses:
        if c.type == TAG and c.key == IS_PROMPT_TAG:
            value = str(c.value).lower()
            return (c.comparator == "=" and value == "true") or (c.comparator == "!=" and value == "false")
    return False


def compile_registry_filter(clauses: list[Clause], grammar: RegistryGrammar,
                            d: Dialect = SQLITE) -> tuple[list[str], list[Any]]:
    """WHERE fragments (AND-ed) and their arguments; prompts are left out unless the filter asks for them."""
    where: list[str] = []
    args: list[Any] = []
    prompts = queries_prompts(clauses)
    if not prompts:  # MLflow drops the prompt tag's clauses and excludes prompts instead
        clauses = [c for c in clauses if not (c.type == TAG and c.key == IS_PROMPT_TAG)]
        where.append(f"NOT {grammar.prompt_sql}")
    for c in clauses:
        expr = grammar.tag_sql if c.type == TAG else grammar.attributes[c.key]
        expr_args: list[Any] = [c.key] if c.type == TAG else []
        if c.comparator in ("IN", "NOT IN"):
            where.append(f"{expr} {c.comparator} ({', '.join(d.mark for _ in c.value)})")
            args += expr_args + list(c.value)
            continue
        if c.comparator == "LIKE":
            sql, vargs = d.like(expr, c.value)
        elif c.comparator == "ILIKE":
            sql, vargs = d.ilike(expr, c.value)
        else:
            sql, vargs = f"{expr} {c.comparator} {d.mark}", [c.value]
        where.append(sql)
        args += expr_args + vargs
    return where, args


def _order_item(text: str, grammar: RegistryGrammar) -> tuple[str, bool]:
    """``name ASC`` / ``attribute.version_number DESC`` / ``timestamp`` -> (key, ascending)."""
    tokens = tokenize(text)
    ascending = True
    if len(tokens) > 1 and tokens[-1].kind == "word" and tokens[-2].text != ".":
        if tokens[-1].text.lower() not in ("asc", "desc"):
            raise _bad(f"Invalid ordering key in order_by clause '{text}'.")
        ascending = tokens.pop().text.lower() == "asc"
    shape = [t.kind for t in tokens]
    if shape in (["word"], ["bq"], ["dq"]):
        entity, key = "attribute", _text(tokens[0])
    elif len(tokens) == 3 and tokens[1].text == "." and tokens[0].kind == "word" \
            and tokens[2].kind in ("word", "bq", "dq"):
        entity, key = tokens[0].text, _text(tokens[2])
    else:
        raise _bad(f"Invalid order_by clause '{text}'. Could not be parsed.")
    if entity not in ("attribute", "attributes") or key not in grammar.order_keys:
        shown = key if entity in ("attribute", "attributes") else f"{entity}.{key}"
        raise _bad(grammar.order_error.format(key=shown, valid=_set(grammar.valid_order_keys)))
    return key, ascending


def compile_registry_order_by(order_by: list[str] | tuple[str, ...], grammar: RegistryGrammar) -> list[str]:
    """ORDER BY terms: the given ones, then MLflow's tie-breakers (name ascending; version descending)."""
    terms: list[str] = []
    seen: set[str] = set()
    for item in order_by:
        key, ascending = _order_item(item, grammar)
        column = grammar.order_keys[key]
        if column in seen:
            raise _bad(f"`order_by` contains duplicate fields: {list(order_by)}")
        seen.add(column)
        terms.append(f"{column} {'ASC' if ascending else 'DESC'}")
    for _key, column, ascending in grammar.tiebreak:
        if column not in seen:
            terms.append(f"{column} {'ASC' if ascending else 'DESC'}")
    return terms
