"""MLflow's run filter and order_by grammar, parsed and compiled to SQL fragments with bound parameters."""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from proj.errors import UsageError

METRIC, PARAM, TAG, ATTRIBUTE, DATASET = "metric", "parameter", "tag", "attribute", "dataset"
DATASET_KEYS = ("name", "digest", "context")  # a run's input datasets, as MLflow's runs/search filters them
NULL_COMPARATORS = ("IS NULL", "IS NOT NULL")  # tags and params only, as MLflow
_ENTITY_NAMES = [METRIC, PARAM, TAG, ATTRIBUTE, "dataset"]  # as MLflow lists them in its error
_ENTITY_ALIASES = {"metric": METRIC, "metrics": METRIC, "parameter": PARAM, "parameters": PARAM, "param": PARAM,
                   "params": PARAM, "tag": TAG, "tags": TAG, "attribute": ATTRIBUTE, "attributes": ATTRIBUTE,
                   "attr": ATTRIBUTE, "run": ATTRIBUTE}
_ATTR_ALIASES = {"created": "start_time", "Created": "start_time",
                 "run name": "run_name", "Run name": "run_name", "Run Name": "run_name"}
NUMERIC_ATTRIBUTES = ("start_time", "end_time")
STRING_ATTRIBUTES = ("artifact_uri", "run_id", "run_name", "status", "user_id")
SEARCH_ATTRIBUTES = tuple(sorted(NUMERIC_ATTRIBUTES + STRING_ATTRIBUTES + tuple(_ATTR_ALIASES)))
NUMERIC_COMPARATORS = ("=", "!=", "<", "<=", ">", ">=")
STRING_COMPARATORS = ("=", "!=", "LIKE", "ILIKE")
STRING_ATTRIBUTE_COMPARATORS = STRING_COMPARATORS + ("IN", "NOT IN")
DATASET_COMPARATORS = STRING_ATTRIBUTE_COMPARATORS
MAX_RESULTS = 50000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD

_TOKEN = re.compile(r"""\s*(?:
    (?P<bq>`[^`]*`) | (?P<sq>'[^']*') | (?P<dq>"[^"]*") |
    (?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])) |
    (?P<op><=|>=|!=|<>|==|=|<|>) | (?P<punct>[(),.]) | (?P<word>[A-Za-z_][\w]*) | (?P<bad>\S))""", re.X)


@dataclass(frozen=True)
class Token:
    kind: str  # bq, sq, dq, num, op, punct, word, bad
    text: str


@dataclass(frozen=True)
class Clause:
    """One comparison: ``type`` is METRIC/PARAM/TAG/ATTRIBUTE; ``value`` a float, str or list of str."""

    type: str
    key: str
    comparator: str
    value: Any


@dataclass(frozen=True)
class OrderBy:
    type: str
    key: str
    ascending: bool


@dataclass(frozen=True)
class Dialect:
    """Where SQL dialects differ. SQLite: ``?`` placeholders, case-sensitive LIKE through GLOB (SQLite's
    LIKE ignores ASCII case). PostgreSQL would use ``%s``, ``x LIKE %s`` and ``x ILIKE %s``."""

    mark: str = "?"

    def like(self, expr: str, pattern: str) -> tuple[str, list[Any]]:
        return f"{expr} GLOB {self.mark}", [_like_to_glob(pattern)]

    def ilike(self, expr: str, pattern: str) -> tuple[str, list[Any]]:
        return f"LOWER({expr}) LIKE LOWER({self.mark}) ESCAPE '\\'", [pattern]


SQLITE = Dialect()


def _bad(message: str) -> UsageError:
    return UsageError(message)


def tokenize(text: str) -> list[Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind is None:
            continue
        tokens.append(Token(kind, match.group(kind)))
    return tokens


class Reader:
    """A cursor over a filter's tokens (the run, experiment, model and registry grammars all read with it)."""

    def __init__(self, text: str, what: str) -> None:
        self.text, self.what = text, what
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, ahead: int = 0) -> Token | None:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> Token | None:
        token = self.peek()
        self.pos += token is not None
        return token

    def fail(self, detail: str) -> UsageError:
        return _bad(f"invalid {self.what} {self.text!r}: {detail}")

    def word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.upper() in words


def _unquote(token: Token) -> str:
    return token.text[1:-1] if token.kind in ("bq", "sq", "dq") else token.text


@dataclass(frozen=True)
class Grammar:
    """What one of MLflow's searches accepts: the entity prefixes, the attribute keys and their kinds."""

    entities: dict[str, str]  # prefix as written -> METRIC/PARAM/TAG/ATTRIBUTE
    entity_names: tuple[str, ...]  # as MLflow lists them in its error
    attributes: tuple[str, ...]
    numeric: tuple[str, ...]
    aliases: dict[str, str]
    list_keys: tuple[str, ...]


RUNS = Grammar({**_ENTITY_ALIASES, "dataset": DATASET, "datasets": DATASET}, tuple(_ENTITY_NAMES), SEARCH_ATTRIBUTES,
               NUMERIC_ATTRIBUTES, _ATTR_ALIASES, ("run_id",))
EXPERIMENTS = Grammar({"attribute": ATTRIBUTE, "attributes": ATTRIBUTE, "tag": TAG, "tags": TAG},
                      ("attribute", "tag", "tags"), ("name", "experiment_id", "creation_time", "last_update_time"),
                      ("creation_time", "last_update_time"), {}, ("experiment_id",))
MODELS = Grammar(_ENTITY_ALIASES, tuple(_ENTITY_NAMES),
                 ("name", "model_id", "model_type", "status", "source_run_id", "creation_timestamp",
                  "creation_time", "last_updated_timestamp", "last_updated_time"),
                 ("creation_timestamp", "last_updated_timestamp"),
                 {"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"}, ())


def _identifier(r: Reader, grammar: Grammar = RUNS) -> tuple[str, str]:
    """``entity.key`` or a bare attribute name -> (type, key), with MLflow's aliases applied."""
    first = r.take()
    if first is None or first.kind not in ("word", "bq", "dq"):
        raise r.fail(f"expected an identifier such as metrics.<key>, params.<key>, tags.<key> or "
                     f"attributes.<key>, found {first.text if first else 'the end'!r}")
    nxt = r.peek()
    if nxt is None or nxt.text != ".":
        entity, key = ATTRIBUTE, _unquote(first)
    else:
        r.take()
        entity_name = _unquote(first)
        if entity_name not in grammar.entities:
            raise r.fail(f"Invalid entity type '{entity_name}'. Valid values are {list(grammar.entity_names)}")
        entity = grammar.entities[entity_name]
        part = r.take()
        if part is None or part.kind not in ("word", "bq", "dq", "num"):
            raise r.fail(f"expected a key after '{entity_name}.', found {part.text if part else 'the end'!r}")
        key = _unquote(part)
        if part.kind in ("word", "num"):  # an unquoted key may hold dots: metrics.a.b is key "a.b"
            while (dot := r.peek()) is not None and dot.text == "." and (more := r.peek(1)) is not None \
                    and more.kind in ("word", "num"):
                r.pos += 2
                key += "." + more.text
    if entity == DATASET and key not in DATASET_KEYS:
        raise r.fail(f"Invalid dataset key '{key}' specified. Valid keys are {list(DATASET_KEYS)}")
    if entity == ATTRIBUTE:
        if key not in grammar.attributes:
            raise r.fail(f"Invalid attribute key '{key}' specified. Valid keys are {list(grammar.attributes)}")
        key = grammar.aliases.get(key, key)
    return entity, key


def _comparator(r: Reader) -> str:
    token = r.take()
    if token is not None and token.kind == "op":
        return token.text
    if token is not None and token.kind == "word":
        word = token.text.upper()
        if word == "NOT" and r.word("IN"):
            r.take()
            return "NOT IN"
        if word == "IS":
            negated = r.word("NOT") and r.take() is not None
            if r.word("NULL"):
                r.take()
                return "IS NOT NULL" if negated else "IS NULL"
        if word in ("LIKE", "ILIKE", "IN"):
            return word
    raise r.fail(f"expected a comparator (one of {list(dict.fromkeys(NUMERIC_COMPARATORS + STRING_ATTRIBUTE_COMPARATORS))}), "
                 f"found {token.text if token else 'the end'!r}")


def _value(r: Reader, entity: str, key: str, grammar: Grammar = RUNS) -> Any:
    token = r.take()
    shown = token.text if token else "the end"
    numeric = entity == METRIC or (entity == ATTRIBUTE and key in grammar.numeric)
    if token is not None and token.text == "(":
        if entity != DATASET and (entity != ATTRIBUTE or key not in grammar.list_keys):
            keys = " or ".join(f"'{k}'" for k in grammar.list_keys) or "no"
            raise r.fail(f"Only the {keys} attribute supports comparison with a list of quoted string values.")
        items: list[str] = []
        while True:
            item = r.take()
            if item is None or item.kind not in ("sq", "dq"):
                raise r.fail(f"expected a quoted run id in the list, found {item.text if item else 'the end'!r}")
            items.append(_unquote(item))
            closing = r.take()
            if closing is not None and closing.text == ")":
                break
            if closing is None or closing.text != ",":
                raise r.fail(f"expected ',' or ')' in the list, found {closing.text if closing else 'the end'!r}")
        return items
    if numeric:
        if token is None or token.kind != "num":
            what = "metric" if entity == METRIC else f"numeric attribute: {key}"
            raise r.fail(f"Expected numeric value type for {what}. Found {shown}")
        return float(token.text)
    if token is None or token.kind not in ("sq", "dq"):
        what = "attributes" if entity == ATTRIBUTE else entity
        raise r.fail(f"Expected a quoted string value for {what} (e.g. 'my-value'). Got value {shown}")
    return _unquote(token)


def _check_comparator(r: Reader, clause: Clause, grammar: Grammar = RUNS) -> None:
    if clause.type == METRIC or (clause.type == ATTRIBUTE and clause.key in grammar.numeric):
        valid: tuple[str, ...] = NUMERIC_COMPARATORS
    elif clause.type == ATTRIBUTE:
        valid = STRING_ATTRIBUTE_COMPARATORS
    elif clause.type == DATASET:
        valid = DATASET_COMPARATORS
    elif clause.comparator in NULL_COMPARATORS and clause.type not in (TAG, PARAM):
        raise r.fail(f"IS NULL / IS NOT NULL is only supported for tags and params, got {clause.type} '{clause.key}'")
    else:
        valid = STRING_COMPARATORS + NULL_COMPARATORS
    if clause.comparator not in valid:
        raise r.fail(f"Invalid comparator '{clause.comparator}' for {clause.type} '{clause.key}' "
                     f"not one of {list(valid)}")
    if clause.comparator not in NULL_COMPARATORS and isinstance(clause.value, list) != (clause.comparator in ("IN", "NOT IN")):
        raise r.fail(f"'{clause.comparator}' needs " + ("a parenthesised list of quoted strings"
                     if clause.comparator in ("IN", "NOT IN") else "a single value, not a list"))


def parse_filter(text: str | None, grammar: Grammar = RUNS) -> list[Clause]:
    """``metrics.loss < 0.5 and params.alpha = '0.1'`` -> clauses (MLflow has AND only, no OR)."""
    if not text or not text.strip():
        return []
    r = Reader(text, "filter")
    clauses: list[Clause] = []
    while True:
        entity, key = _identifier(r, grammar)
        comparator = _comparator(r).upper()
        value = None if comparator in NULL_COMPARATORS else _value(r, entity, key, grammar)
        clause = Clause(entity, key, comparator, value)
        _check_comparator(r, clause, grammar)
        clauses.append(clause)
        token = r.take()
        if token is None:
            return clauses
        if token.kind != "word" or token.text.upper() != "AND":
            extra = " (MLflow's filter has no OR)" if token.text.upper() == "OR" else ""
            raise r.fail(f"Invalid clause(s) in filter string: '{token.text}'; clauses join with AND{extra}")


def parse_order_by(text: str, grammar: Grammar = RUNS) -> OrderBy:
    """``metrics.loss ASC``, ``attributes.start_time DESC``, ``params.alpha`` (ascending)."""
    r = Reader(text, "order_by clause")
    entity, key = _identifier(r, grammar)
    ascending = True
    token = r.take()
    if token is not None:
        if token.kind != "word" or token.text.lower() not in ("asc", "desc"):
            raise r.fail(f"Invalid ordering key {token.text!r}; valid: ASC, DESC")
        ascending = token.text.lower() == "asc"
        if r.peek() is not None:
            raise r.fail(f"unexpected {r.peek().text!r} after {token.text}")  # type: ignore[union-attr]
    return OrderBy(entity, key, ascending)


def parse_order_by_list(clauses: list[str] | tuple[str, ...], grammar: Grammar = RUNS) -> list[OrderBy]:
    parsed = [parse_order_by(c, grammar) for c in clauses]
    seen: set[tuple[str, str]] = set()
    for o in parsed:
        if (o.type, o.key) in seen:
            raise _bad(f"`order_by` contains duplicate fields: {list(clauses)}")
        seen.add((o.type, o.key))
    return parsed


def _ms(column: str) -> str:
    """A time column (seconds) as MLflow's integer milliseconds, for comparisons with the filter's values."""
    return f"CAST(ROUND({column} * 1000) AS INTEGER)"


@dataclass(frozen=True)
class Target:
    """The table one search reads (its alias in ``alias``): SQL for each attribute (filter and order) and the
    correlated subqueries of metrics/params/tags, ``{mark}`` standing for the key's placeholder."""

    attributes: dict[str, str]
    order_attributes: dict[str, str]
    numeric: tuple[str, ...]
    entities: dict[str, str]
    tiebreak: tuple[str, ...]  # ORDER BY terms appended when the order leaves ties
    default_order: tuple[str, ...]  # ORDER BY terms used when the order has no time term of its own
    time_key: str
    # A filter on a metric, param or tag as a set of matching row ids, where the table has an index for it:
    # entity -> (the row's id, the set's SELECT with {mark} for the key, the value column). SQLite builds the
    # set once from the index instead of running a correlated subquery per row (a filter over 100,000 runs).
    sets: dict[str, tuple[str, str, str]] = field(default_factory=dict)


# proj's runs table (alias r); start/end times are seconds there, milliseconds in MLflow's grammar.
_RUN_ARTIFACT_URI = ("COALESCE(r.artifact_uri, COALESCE((SELECT x.artifact_location FROM experiments x"
                     " WHERE x.id = r.experiment_id), 'mlflow-artifacts:/' || r.experiment_id) || '/' || r.id"
                     " || '/artifacts')")
_RUN_ATTRIBUTES = {"run_id": "r.id", "run_name": "r.name", "status": "r.status", "user_id": "r.user",
                   "artifact_uri": _RUN_ARTIFACT_URI, "start_time": _ms("r.start_time"), "end_time": _ms("r.end_time")}
RUN_TARGET = Target(
    _RUN_ATTRIBUTES, {**_RUN_ATTRIBUTES, "start_time": "r.start_time", "end_time": "r.end_time"},  # same order, index
    NUMERIC_ATTRIBUTES,
    # A metric is its latest point (highest step, then newest timestamp), kept per run and key in latest_metrics.
    {METRIC: "(SELECT lm.value FROM latest_metrics lm WHERE lm.run_id = r.id AND lm.key = {mark})",
     PARAM: "(SELECT x.value FROM params x WHERE x.run_id = r.id AND x.key = {mark})",
     TAG: "(SELECT x.value FROM tags x WHERE x.run_id = r.id AND x.key = {mark})"},
    ("r.id",), ("r.start_time DESC",), "start_time",
    {METRIC: ("r.id", "SELECT lm.run_id FROM latest_metrics lm WHERE lm.key = {mark}", "lm.value"),
     PARAM: ("r.id", "SELECT x.run_id FROM params x WHERE x.key = {mark}", "x.value"),
     TAG: ("r.id", "SELECT x.run_id FROM tags x WHERE x.key = {mark}", "x.value")})
# Experiments (alias e): MLflow orders by creation_time DESC, then experiment_id.
_EXPERIMENT_ATTRIBUTES = {"name": "e.name", "experiment_id": "CAST(e.id AS TEXT)", "creation_time": _ms("e.created"),
                          "last_update_time": _ms("COALESCE(e.last_update_time, e.created)")}
EXPERIMENT_TARGET = Target(
    _EXPERIMENT_ATTRIBUTES, {**_EXPERIMENT_ATTRIBUTES, "experiment_id": "e.id", "creation_time": "e.created"},
    ("creation_time", "last_update_time"),
    {TAG: "(SELECT x.value FROM experiment_tags x WHERE x.experiment_id = e.id AND x.key = {mark})"},
    ("e.id DESC",), (), "creation_time")  # MLflow's tie-breaker once an order is given: descending ids
# Logged models (alias g): a metric is the model's latest point of that key.
_MODEL_ATTRIBUTES = {"name": "g.name", "model_id": "g.model_id", "model_type": "g.model_type", "status": "g.status",
                     "source_run_id": "g.source_run_id", "creation_timestamp": _ms("g.creation_time"),
                     "last_updated_timestamp": _ms("g.last_updated_time")}
MODEL_TARGET = Target(
    _MODEL_ATTRIBUTES, {**_MODEL_ATTRIBUTES, "creation_timestamp": "g.creation_time",
                        "last_updated_timestamp": "g.last_updated_time"},
    ("creation_timestamp", "last_updated_timestamp"),
    {METRIC: "(SELECT x.value FROM logged_model_metrics x WHERE x.model_id = g.model_id AND x.key = {mark}"
             " ORDER BY x.step DESC, x.timestamp DESC, x.rowid DESC LIMIT 1)",
     PARAM: "(SELECT x.value FROM logged_model_params x WHERE x.model_id = g.model_id AND x.key = {mark})",
     TAG: "(SELECT x.value FROM logged_model_tags x WHERE x.model_id = g.model_id AND x.key = {mark})"},
    ("g.model_id",), ("g.creation_time DESC",), "creation_timestamp")
_MODEL_STATUS_PREFIX = "LOGGED_MODEL_"  # clients may write status = 'READY' as well as the proto's full name


def _entity_sql(entity: str, key: str, d: Dialect, target: Target, order: bool = False) -> tuple[str, list[Any]]:
    """The SQL expression for one key of a row (NULL when the row lacks it) and its arguments."""
    if entity == ATTRIBUTE:
        return (target.order_attributes if order else target.attributes)[key], []
    if entity not in target.entities:
        raise _bad(f"{entity} keys are not searchable here: use {', '.join(sorted(target.entities))} or attributes")
    return target.entities[entity].format(mark=d.mark), [key]


def compile_filter(clauses: list[Clause], d: Dialect = SQLITE,
                   target: Target = RUN_TARGET) -> tuple[list[str], list[Any]]:
    """WHERE fragments (to be AND-ed) and their arguments, in order."""
    where: list[str] = []
    args: list[Any] = []
    for c in clauses:
        if c.type == DATASET:
            if target is not RUN_TARGET:
                raise _bad("dataset keys are only searchable in runs")
            inner, inner_args = _comparison(_DATASET_SQL[c.key], c.comparator, c.value, d)
            where.append("EXISTS (SELECT 1 FROM run_inputs i JOIN datasets d ON d.id = i.dataset_id"
                         f" WHERE i.run_id = r.id AND {inner})")
            args += inner_args
            continue
        if c.type in target.sets and c.comparator not in NULL_COMPARATORS:
            row_id, select, column = target.sets[c.type]
            inner, inner_args = _comparison(column, c.comparator, c.value, d)
            where.append(f"{row_id} IN ({select.format(mark=d.mark)} AND {inner})")
            args += [c.key, *inner_args]
            continue
        expr, expr_args = _entity_sql(c.type, c.key, d, target)
        value: Any = c.value
        if c.type == ATTRIBUTE and c.key in target.numeric:
            value = int(value)
        if target is MODEL_TARGET and c.type == ATTRIBUTE and c.key == "status" and isinstance(value, str) \
                and c.comparator in ("=", "!=") and not value.startswith(_MODEL_STATUS_PREFIX):
            value = _MODEL_STATUS_PREFIX + value
        sql, vargs = _comparison(expr, c.comparator, value, d)
        where.append(sql)
        args += expr_args + vargs
    return where, args


# A run's dataset inputs (run_inputs i JOIN datasets d): the column each dataset key compares.
_DATASET_SQL = {"name": "d.name", "digest": "d.digest",
                "context": "json_extract(i.tags_json, '$.\"mlflow.data.context\"')"}


def _comparison(expr: str, comparator: str, value: Any, d: Dialect) -> tuple[str, list[Any]]:
    """One comparison of an SQL expression with a filter's value, and its arguments."""
    if comparator in NULL_COMPARATORS:
        return f"{expr} {comparator}", []
    if comparator in ("IN", "NOT IN"):
        return f"{expr} {comparator} ({', '.join(d.mark for _ in value)})", list(value)
    if comparator == "LIKE":
        return d.like(expr, value)
    if comparator == "ILIKE":
        return d.ilike(expr, value)
    return f"{expr} {comparator} {d.mark}", [value]


def compile_order_by(orders: list[OrderBy], d: Dialect = SQLITE,
                     target: Target = RUN_TARGET) -> tuple[list[str], list[Any]]:
    """ORDER BY terms: rows lacking a key sort last either way; then newest first, then id (MLflow's)."""
    terms: list[str] = []
    args: list[Any] = []
    for o in orders:
        expr, expr_args = _entity_sql(o.type, o.key, d, target, order=True)
        terms += [f"{expr} IS NULL", f"{expr} {'ASC' if o.ascending else 'DESC'}"]
        args += expr_args * 2
    if not any(o.type == ATTRIBUTE and o.key == target.time_key for o in orders):
        terms += target.default_order
    terms += target.tiebreak
    return terms, args


def parse_model_order_by(items: list[dict[str, object]] | None) -> list[OrderBy]:
    """MLflow 3's logged-model order_by: [{"field_name": "metrics.acc" | attribute, "ascending": bool}]."""
    orders: list[OrderBy] = []
    for item in items or []:
        if not isinstance(item, dict):
            raise _bad("`order_by` must be a list of dictionaries.")
        field_name = item.get("field_name")
        if not isinstance(field_name, str) or not field_name:
            raise _bad("`field_name` in the `order_by` clause must be specified.")
        ascending = item.get("ascending", True)
        if ascending not in (True, False):
            raise _bad(f"Value of `ascending` in the `order_by` clause must be a boolean, got "
                       f"{type(ascending)} for field {field_name}.")
        if "." in field_name:
            entity, key = field_name.split(".", 1)
            if entity != "metrics":
                raise _bad(f"Invalid order by field name: {entity}, only `metrics.<name>` is allowed.")
            orders.append(OrderBy(METRIC, key, bool(ascending)))
        else:
            name = field_name.strip()
            if name not in MODELS.attributes:
                raise _bad(f"Invalid order by field name: {name}.")
            orders.append(OrderBy(ATTRIBUTE, MODELS.aliases.get(name, name), bool(ascending)))
    return orders


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, ``\\`` escapes) as a GLOB pattern, which is case-sensitive in SQLite."""
    out = []
    escaped = False
    for ch in pattern:
        if escaped:
            out.append(f"[{ch}]" if ch in "*?[" else ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def page_token(offset: int) -> str:
    """Opaque to clients, as MLflow's: base64 of {"offset": n}."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True))["offset"]
    except (ValueError, KeyError, TypeError):
        raise _bad(f"Invalid page token {token!r}: use the token a previous page printed") from None
    if not isinstance(offset, int) or offset < 0:
        raise _bad(f"Invalid page token {token!r}: use the token a previous page printed")
    return offset


def check_max_results(max_results: int) -> None:
    if not 0 < max_results <= MAX_RESULTS:
        raise _bad(f"Invalid value {max_results} for max_results: it must be at most {MAX_RESULTS} and above 0")
