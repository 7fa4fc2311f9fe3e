"""The runs table's query language, compiled to SQL with every value bound as a parameter.

A query compares the fields the table shows, joined with ``and``, ``or``, ``not`` and parentheses::

    metrics.test_auc > 0.9 and params.C < 1 and status = finished and tag = baseline
    name ~ "resnet" or (params.optimizer = "sgd" and min(metrics.loss) <= 0.2)

Fields:

- ``name``, ``id``, ``note``, ``sprint``, ``kind``: the run's own text columns;
- ``status``: as readers see it (a ``running`` run whose kernel is gone is ``crashed``);
- ``start_time``, ``end_time`` (epoch seconds, or a date ``YYYY-MM-DD``, or an age ``2d``), ``duration``
  (seconds), ``starred`` (0 or 1);
- ``tag``: ``tag = baseline`` keeps runs with that tag, ``tag != baseline`` runs without it;
- ``params.KEY``: the param's typed value (0.1 and "0.1" differ, as in the ledger);
- ``metrics.KEY``: the metric's last value; ``min(metrics.KEY)`` and ``max(metrics.KEY)`` its extremes;
- ``system.FIELD``: GPU/CPU aggregates (``system.gpu_util_mean``, see ``SYSTEM_FIELDS``);
- ``data.NAME``: the fingerprint of the data a variable held.

Operators: ``= != < <= > >=`` and ``~`` / ``!~`` (contains / does not contain, case-insensitive). Values are
numbers, words (``finished``, ``baseline``) or quoted strings (``"a b"``, ``'it''s'`` with ``\\"`` escapes);
a key with other characters than letters, digits, ``_ . - : /`` is written in backticks: ``params.`my key```.
A bare word or quoted string (no operator) searches names, notes, statuses, tags, params and code, as the
sidebar's search box does. A run lacking a param or metric never matches a comparison on it.

The same field syntax names the table's columns (:func:`parse_field`), and the table sorts and groups by
their SQL expression (:func:`field_expr`). Errors raise :class:`QueryError` with the character position.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from ..errors import InvalidArgument
from .queries import SYSTEM_FIELDS, parse_since, search_where
from .schema import RUN_STATUSES

MAX_QUERY = 2000  # characters
MAX_DEPTH = 50  # nested parentheses / nots
RUN_TEXT = ("name", "id", "note", "sprint", "kind")
RUN_NUMBERS = ("start_time", "end_time", "duration", "starred")
PREFIXES = ("params", "metrics", "system", "data")
AGGREGATES = ("last", "min", "max")
OPS = ("=", "!=", "<", "<=", ">", ">=", "~", "!~")
KEYWORDS = ("and", "or", "not")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_WORD_CHAR = re.compile(r"[\w.\-:/+]")
# the value of a param as the ledger types it (stored as JSON text with its type)
PARAM_VALUE = (
    "CASE p.type WHEN 'str' THEN json_extract(p.value, '$') WHEN 'int' THEN CAST(p.value AS INTEGER) "
    "WHEN 'float' THEN (CASE WHEN p.value IN ('NaN', 'Infinity', '-Infinity') THEN NULL "
    "ELSE CAST(p.value AS REAL) END) ELSE p.value END"
)


NUMERIC_PARAM = "p.type IN ('int', 'float') AND p.value NOT IN ('NaN', 'Infinity', '-Infinity')"


class QueryError(InvalidArgument):
    """A query (or column name) that does not parse or names no field; ``position`` is the 0-based index
    of the character where the problem is, for the UI to point at."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position + 1})")
        self.reason = message
        self.position = position
        self.argument = "query"  # or the table's sort, group or columns (see :func:`table`)


def _in(argument: str, parse: Any, text: Any) -> Any:
    """``parse(text)``, a :class:`QueryError` naming ``argument`` (the table's sort, group or columns)."""
    try:
        return parse(text)
    except QueryError as e:
        e.argument = argument
        e.reason = f"{argument}: {e.reason}"
        e.args = (f"{argument}: {e.args[0]}",)
        raise


@dataclass(frozen=True)
class Token:
    kind: str  # word string op lparen rparen comma end
    text: str  # the decoded text: a string without its quotes, a word without its backticks
    pos: int
    raw: str = ""  # the word as written, for keywords (a backticked `and` is a word)


@dataclass(frozen=True)
class Field:
    """A field of the table: ``kind`` is run (``key`` a column), status, tag, params, metrics (``agg`` last,
    min or max), system or data."""

    kind: str
    key: str
    agg: str = "last"
    pos: int = field(default=0, compare=False)

    @property
    def id(self) -> str:
        """The field as written in a query and as the table's column id."""
        if self.kind in ("run", "status", "tag"):
            return self.key if self.kind == "run" else self.kind
        key = self.key if _plain(self.key) else "`" + self.key.replace("`", "``") + "`"
        text = f"{self.kind}.{key}"
        return f"{self.agg}({text})" if self.kind == "metrics" and self.agg != "last" else text


@dataclass
class Context:
    """What compiling needs from the ledger: the sessions whose ``running`` runs readers show as crashed."""

    dead_sessions: list[str] = field(default_factory=list)
    fts: bool = True  # the ledger has the full-text index (a bundle read as a ledger has none)
    # conditions on a run's rows as EXISTS, looked up per run (a page: runs scanned newest first until it is
    # full), rather than IN over every matching row, gathered once (a count, which visits every run)
    correlated: bool = False


def _has(ctx: Context, table: str, run_col: str, cond: str, args: list, negate: bool = False) -> tuple[str, list]:
    """The condition "the run has a row of ``table`` meeting ``cond``" (or has none, ``negate``)."""
    no = "NOT " if negate else ""
    if ctx.correlated:
        return f"{no}EXISTS (SELECT 1 FROM {table} WHERE {run_col} = runs.id AND {cond})", args
    return f"runs.id {no}IN (SELECT {run_col} FROM {table} WHERE {cond})", args


def _plain(key: str) -> bool:
    return bool(key) and all(_WORD_CHAR.match(c) for c in key)


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token."""
    if len(text) > MAX_QUERY:
        raise QueryError(f"the query is longer than {MAX_QUERY} characters", MAX_QUERY)
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            out.append(Token({"(": "lparen", ")": "rparen", ",": "comma"}[c], c, i))
            i += 1
        elif c in "<>=!~":
            two = text[i : i + 2]
            op = two if two in OPS else c
            if op not in OPS:
                raise QueryError(f"unknown operator {op!r}: use one of {' '.join(OPS)}", i)
            out.append(Token("op", op, i))
            i += len(op)
        elif c in "\"'":
            start, i, chars = i, i + 1, []
            while True:
                if i >= n:
                    raise QueryError(f"unclosed string: add the closing {c}", start)
                if text[i] == "\\" and i + 1 < n:
                    chars.append(text[i + 1])
                    i += 2
                elif text[i] == c and text[i + 1 : i + 2] == c:  # 'it''s'
                    chars.append(c)
                    i += 2
                elif text[i] == c:
                    i += 1
                    break
                else:
                    chars.append(text[i])
                    i += 1
            out.append(Token("string", "".join(chars), start))
        elif _WORD_CHAR.match(c) or c == "`":
            start, chars = i, []
            while i < n and (_WORD_CHAR.match(text[i]) or text[i] == "`"):
                if text[i] == "`":
                    end = i + 1
                    while True:
                        end = text.find("`", end)
                        if end < 0:
                            raise QueryError("unclosed `: add the closing backtick", i)
                        if text[end + 1 : end + 2] == "`":  # `` inside backticks is one `
                            end += 2
                            continue
                        break
                    chars.append(text[i + 1 : end].replace("``", "`"))
                    i = end + 1
                else:
                    chars.append(text[i])
                    i += 1
            out.append(Token("word", "".join(chars), start, text[start:i]))
        else:
            raise QueryError(f"unexpected character {c!r}", i)
    out.append(Token("end", "", n))
    return out


class _Parser:
    def __init__(self, text: str, ctx: Context) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.ctx = ctx
        self.depth = 0
        self.fields: list[Field] = []  # the fields compared, in order (see :func:`unknown_key`)

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def keyword(self, word: str) -> bool:
        t = self.tok
        return t.kind == "word" and t.raw.lower() == word

    def expect(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            raise QueryError(f"expected {what}, found {_describe(self.tok)}", self.tok.pos)
        return self.next()

    # expr := and ("or" and)*
    def expr(self) -> tuple[str, list]:
        parts = [self.conj()]
        while self.keyword("or"):
            self.next()
            parts.append(self.conj())
        return _join(parts, "OR")

    def conj(self) -> tuple[str, list]:
        parts = [self.unary()]
        while self.keyword("and"):
            self.next()
            parts.append(self.unary())
        return _join(parts, "AND")

    def unary(self) -> tuple[str, list]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"more than {MAX_DEPTH} nested parentheses or nots", self.tok.pos)
        try:
            if self.keyword("not"):
                self.next()
                sql, args = self.unary()
                return f"NOT ({sql})", args
            if self.tok.kind == "lparen":
                self.next()
                out = self.expr()
                self.expect("rparen", "')'")
                return out
            return self.comparison()
        finally:
            self.depth -= 1

    def comparison(self) -> tuple[str, list]:
        t = self.tok
        if t.kind == "string" or (
            t.kind == "word" and self.tokens[self.i + 1].kind != "op" and not _fieldish(t, self.tokens[self.i + 1])
        ):
            if t.kind == "word" and t.raw.lower() in KEYWORDS:
                raise QueryError(f"expected a field or a search text, found {_describe(t)}", t.pos)
            self.next()  # a bare text: the sidebar's search
            clause, args = search_where(t.text, fts=self.ctx.fts)
            return clause, list(args)
        f = self.field()
        self.fields.append(f)
        op = self.expect("op", f"an operator ({' '.join(OPS)}) after {f.id}")
        value = self.value(op)
        return compare(f, op.text, value, self.ctx, op.pos)

    def field(self) -> Field:
        t = self.tok
        if t.kind == "word" and t.raw.lower() in AGGREGATES and self.tokens[self.i + 1].kind == "lparen":
            self.next()
            self.next()
            inner = self.field()
            self.expect("rparen", "')'")
            if inner.kind != "metrics":
                raise QueryError(f"{t.raw}(...) takes a metric: {t.raw}(metrics.NAME)", t.pos)
            return Field("metrics", inner.key, t.raw.lower(), t.pos)
        if t.kind != "word" or t.raw.lower() in KEYWORDS:
            raise QueryError(f"expected a field (name, status, params.X, metrics.X ...), found {_describe(t)}", t.pos)
        self.next()
        return field_of(t.text, t.pos)

    def value(self, op: Token) -> tuple[Any, Token]:
        t = self.tok
        if t.kind == "string":
            self.next()
            return t.text, t
        if t.kind == "word" and t.raw.lower() not in KEYWORDS:
            self.next()
            return (_number(t.text) if _NUMBER.fullmatch(t.text) else t.text), t
        raise QueryError(f"expected a value after {op.text}, found {_describe(t)}", t.pos)


def _fieldish(t: Token, after: Token | None = None) -> bool:
    """Whether a word reads as a field (so a missing operator is an error, not a search for the word)."""
    word = t.text.lower()
    if word in AGGREGATES and after is not None and after.kind == "lparen":
        return True
    return word in RUN_TEXT + RUN_NUMBERS + ("status", "tag", "tags") or word.partition(".")[0] in PREFIXES


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _describe(t: Token) -> str:
    return "the end of the query" if t.kind == "end" else repr(t.raw or t.text)


def _join(parts: list[tuple[str, list]], op: str) -> tuple[str, list]:
    if len(parts) == 1:
        return parts[0]
    return f" {op} ".join(f"({sql})" for sql, _ in parts), [a for _, args in parts for a in args]


def field_of(text: str, pos: int = 0) -> Field:
    """A :class:`Field` from its name as written (backticks already removed)."""
    low = text.lower()
    if low in RUN_TEXT + RUN_NUMBERS:
        return Field("run", low, pos=pos)
    if low in ("status", "tag", "tags"):
        return Field("tag" if low.startswith("tag") else "status", low.rstrip("s") if low != "status" else low, pos=pos)
    prefix, dot, key = text.partition(".")
    prefix = prefix.lower()
    if dot and key and prefix in PREFIXES:
        if prefix == "system" and key not in SYSTEM_FIELDS:
            raise QueryError(f"unknown system field {key!r}: one of {', '.join(SYSTEM_FIELDS)}", pos)
        return Field(prefix, key, pos=pos)
    if dot and prefix in PREFIXES:
        raise QueryError(f"{prefix}. needs a name after the dot: {prefix}.NAME", pos)
    raise QueryError(
        f"unknown field {text!r}: use name, status, tag, start_time, duration, params.NAME, metrics.NAME, "
        "min(metrics.NAME), max(metrics.NAME), system.NAME or data.NAME",
        pos,
    )


def parse_field(text: str) -> Field:
    """A column id (``metrics.auc``, ``max(metrics.loss)``, ``params.`my key```) as a :class:`Field`."""
    p = _Parser(text, Context())
    f = p.field()
    if p.tok.kind != "end":
        raise QueryError(f"unexpected {_describe(p.tok)} after the column {f.id}", p.tok.pos)
    return f


def parse_fields(text: str) -> list[Field]:
    """Comma-separated column ids."""
    p = _Parser(text, Context())
    out: list[Field] = []
    while p.tok.kind != "end":
        out.append(p.field())
        if p.tok.kind == "comma":
            p.next()
        elif p.tok.kind != "end":
            raise QueryError(f"expected ',' between columns, found {_describe(p.tok)}", p.tok.pos)
    return out


def compile_query(text: str | None, ctx: Context | None = None) -> tuple[str, list]:
    """The SQL condition over the ``runs`` table (unaliased) for a query, and its arguments;
    ``("1", [])`` for an empty query."""
    if text is None or not text.strip():
        return "1", []
    if not isinstance(text, str):
        raise InvalidArgument(f"query must be text; got {text!r}")
    p = _Parser(text, ctx or Context())
    sql, args = p.expr()
    if p.tok.kind != "end":
        raise QueryError(f"expected 'and', 'or' or the end of the query, found {_describe(p.tok)}", p.tok.pos)
    return sql, args


def unknown_key(reader: Any, sprint_id: str | None, query: str | None) -> None:
    """Raise a :class:`QueryError` at the first ``params.KEY`` or ``metrics.KEY`` of ``query`` that no run of the
    sprint (None: of the ledger) has, naming the keys it may have meant: a misspelt key (``metrics.acuracy``)
    otherwise matches no run, and the table says 0 runs as if none scored. One lookup per key in the query, through
    the runs' sprint index and the key's primary key; the sprint's keys are read only to name the near ones."""
    if query is None or not query.strip():
        return
    p = _Parser(query, Context())
    p.expr()
    tables = {"params": "params", "metrics": "metric_summaries"}
    for f in p.fields:
        if f.kind not in tables:
            continue
        if sprint_id:
            sql = (
                f"SELECT 1 FROM runs WHERE sprint = ? AND EXISTS "
                f"(SELECT 1 FROM {tables[f.kind]} t WHERE t.run_id = runs.id AND t.key = ?) LIMIT 1"
            )
            found = reader.conn.execute(sql, (sprint_id, f.key)).fetchone()
        else:
            found = reader.conn.execute(f"SELECT 1 FROM {tables[f.kind]} WHERE key = ? LIMIT 1", (f.key,)).fetchone()
        if found:
            continue
        noun = "metric" if f.kind == "metrics" else "param"
        available = available_columns(reader, sprint_id)
        keys, other = available[f.kind], "params" if f.kind == "metrics" else "metrics"
        message = f"no {noun} {f.key!r} in {'this sprint' if sprint_id else 'any run'}"
        folded = {k.lower(): k for k in keys}  # params.c for params.C is near too
        close = [folded[k] for k in difflib.get_close_matches(f.key.lower(), list(folded), n=3, cutoff=0.6)]
        if f.key in available[other]:
            message += f"; {f.key!r} is a {other[:-1]}: {replace(f, kind=other, agg='last').id}"
        elif close:
            message += f"; did you mean {' or '.join(repr(k) for k in close)}?"
        elif keys:
            message += f"; its {noun}s: {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
        raise QueryError(message, f.pos)


def _marks(items: Iterable) -> str:
    return ",".join("?" * len(list(items)))


def field_expr(f: Field, ctx: Context) -> tuple[str, list]:
    """A scalar SQL expression for a field of one run (``runs``), to sort and group by."""
    if f.kind == "run":
        if f.key == "duration":
            return "(runs.end_time - runs.start_time)", []
        return f"runs.{f.key}", []
    if f.kind == "status":
        dead = ctx.dead_sessions
        if not dead:
            return "runs.status", []
        return (
            f"(CASE WHEN runs.status = 'running' AND runs.session_id IN ({_marks(dead)}) THEN 'crashed' "
            "ELSE runs.status END)",
            list(dead),
        )
    if f.kind == "tag":
        return (
            "(SELECT group_concat(tag, ', ') FROM (SELECT tag FROM run_tags WHERE run_id = runs.id ORDER BY tag))",
            [],
        )
    if f.kind == "params":
        return f"(SELECT {PARAM_VALUE} FROM params p WHERE p.run_id = runs.id AND p.key = ?)", [f.key]
    if f.kind == "metrics":
        return f"(SELECT s.{f.agg} FROM metric_summaries s WHERE s.run_id = runs.id AND s.key = ?)", [f.key]
    if f.kind == "system":
        return f"runs.{f.key}", []  # checked against SYSTEM_FIELDS by field_of
    if f.kind == "data":
        return "(SELECT fingerprint FROM run_data WHERE run_id = runs.id AND name = ?)", [f.key]
    raise AssertionError(f.kind)


def _like(value: Any) -> str:
    text = str(value)
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _cmp(expr: str, op: str, value: Any) -> tuple[str, list]:
    """``expr op ?`` (``~`` as LIKE, case-insensitive for ASCII)."""
    if op in ("~", "!~"):
        return f"{expr} {'NOT ' if op == '!~' else ''}LIKE ? ESCAPE '\\'", [_like(value)]
    return f"{expr} {'<>' if op == '!=' else op} ?", [value]


def compare(f: Field, op: str, pair: tuple[Any, Token], ctx: Context, op_pos: int) -> tuple[str, list]:
    """The condition ``field op value`` for one run, with the value bound."""
    value, tok = pair
    if f.kind == "status":
        if op not in ("=", "!="):
            raise QueryError("status takes = or !=", op_pos)
        if value not in RUN_STATUSES:
            raise QueryError(f"unknown status {str(value)!r}: one of {', '.join(RUN_STATUSES)}", tok.pos)
        expr, args = field_expr(f, ctx)
        sql, more = _cmp(expr, op, value)
        return sql, args + more
    if f.kind == "tag":
        if op not in ("=", "!=", "~", "!~"):
            raise QueryError("tag takes =, !=, ~ or !~", op_pos)
        cond = "tag LIKE ? ESCAPE '\\'" if "~" in op else "tag = ?"
        arg = _like(value) if "~" in op else str(value)
        return _has(ctx, "run_tags", "run_id", cond, [arg], negate=op.startswith("!"))
    if f.kind == "run":
        if f.key in ("start_time", "end_time"):
            value = _time(value, tok)
        elif f.key in ("duration", "starred") and not isinstance(value, (int, float)):
            raise QueryError(f"{f.key} compares with a number, not {str(value)!r}", tok.pos)
        elif f.key in RUN_TEXT and isinstance(value, (int, float)):
            value = tok.text  # a name like 42 is text
        expr, args = field_expr(f, ctx)
        sql, more = _cmp(expr, op, value)
        return sql, args + more
    if f.kind == "system":
        sql, args = _cmp(f"runs.{f.key}", op, value)
        return sql, args
    if f.kind == "params" and isinstance(value, (int, float)) and op not in ("~", "!~"):
        # a number against the numeric params, through the partial index params_number (schema 10): a range
        # seek, not an expression over every row of the key; the terms must read as the index's own
        sql, args = _cmp("CAST(p.value AS REAL)", op, value)
        return _has(ctx, "params p", "p.run_id", f"p.key = ? AND {NUMERIC_PARAM} AND {sql}", [f.key] + args)
    if f.kind == "params":
        sql, args = _cmp(PARAM_VALUE, op, value)
        return _has(ctx, "params p", "p.run_id", f"p.key = ? AND {sql}", [f.key] + args)
    if f.kind == "metrics":
        if not isinstance(value, (int, float)) and op not in ("~", "!~"):
            raise QueryError(f"metrics compare with a number, not {str(value)!r}", tok.pos)
        sql, args = _cmp(f.agg, op, value)
        return _has(ctx, "metric_summaries", "run_id", f"key = ? AND {sql}", [f.key] + args)
    if f.kind == "data":
        sql, args = _cmp("fingerprint", op, tok.text)
        return _has(ctx, "run_data", "run_id", f"name = ? AND {sql}", [f.key] + args)
    raise AssertionError(f.kind)


def _time(value: Any, tok: Token) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        out = parse_since(str(value))
    except InvalidArgument:
        raise QueryError(
            f"{str(value)!r} is not a time: use a date YYYY-MM-DD, 2d, 12h or epoch seconds", tok.pos
        ) from None
    assert out is not None
    return out


# -- the runs table -------------------------------------------------------------------------------------
DEFAULT_COLUMNS = ("name", "status", "start_time", "duration")
MAX_PAGE = 1000
SMALL_SPRINT = 5000  # up to this many runs, a sprint's columns are read from its runs' rows
KEY_PARAMS = 5  # the params a table shows until the user chooses its columns: those that vary most
KEY_RUNS = 1000  # ... among the sprint's newest runs (30 ms at 50 params a run; its newest 5,000: 250 ms)


def varying_params(distinct: dict[str, int], runs: int, n: int) -> list[str]:
    """The ``n`` params that vary most among ``runs`` runs, from ``key -> number of distinct values``: those with
    more than one value (every param of a single run), most values first, then by name. ``nbexp ls`` shows these
    and so does the runs table until the user chooses its columns."""
    return sorted((k for k, v in distinct.items() if v > 1 or runs == 1), key=lambda k: (-distinct[k], k))[:n]


def key_columns(reader: Any, sprint_id: str | None, metric: str | None) -> list[str]:
    """The runs table's columns until the user chooses them: name and status, the sprint's main metric
    (``metric``: the sidebar's pick, or the sprint's best-ranked), the params that vary across the sprint's runs
    (its newest :data:`KEY_RUNS` in a bigger sprint), start time and duration."""
    in_sprint, args = ("WHERE sprint = ?", [sprint_id]) if sprint_id else ("", [])
    runs_sql = f"SELECT id FROM runs {in_sprint} ORDER BY start_time DESC LIMIT {KEY_RUNS}"
    runs = reader.conn.execute(f"SELECT count(*) FROM ({runs_sql})", args).fetchone()[0]
    distinct = dict(
        reader.conn.execute(
            # the value as JSON text: 1, 1.0 and "1" differ, as in the ledger
            f"SELECT key, count(DISTINCT value) FROM params WHERE run_id IN ({runs_sql}) GROUP BY key",
            args,
        )
    )
    params = [Field("params", k).id for k in varying_params(distinct, runs, KEY_PARAMS)]
    return ["name", "status"] + ([Field("metrics", metric).id] if metric else []) + params + ["start_time", "duration"]


def context(reader: Any) -> Context:
    """The :class:`Context` of a ledger: the sessions of its ``running`` runs whose kernel is gone
    (few: read through the partial index on running runs)."""
    rows = reader.conn.execute("SELECT DISTINCT session_id FROM runs WHERE status = 'running'").fetchall()
    dead = [r[0] for r in rows if not reader.session_alive(r[0])]
    return Context(dead_sessions=dead, fts=reader.has_search_index())


def _distinct(reader: Any, table: str, column: str) -> list[str]:
    """The distinct values of an indexed column, one index seek each (a skip scan: a full scan of
    params reads 5,000,000 rows at 100,000 runs)."""
    sql = (
        f"WITH RECURSIVE k(v) AS (SELECT min({column}) FROM {table} UNION ALL "
        f"SELECT (SELECT min({column}) FROM {table} WHERE {column} > k.v) FROM k WHERE k.v IS NOT NULL) "
        "SELECT v FROM k WHERE v IS NOT NULL"
    )
    return [r[0] for r in reader.conn.execute(sql)]


def available_columns(reader: Any, sprint_id: str | None) -> dict[str, list[str]]:
    """The columns a sprint's runs can show (None: every run): ``params``, ``metrics`` and ``data`` names,
    ``tags``, ``system`` fields, ``run`` fields."""
    conn = reader.conn
    out: dict[str, list[str]] = {"run": list(DEFAULT_COLUMNS) + ["end_time", "id", "note", "tag"]}
    n = conn.execute("SELECT count(*) FROM runs WHERE sprint = ?", (sprint_id,)).fetchone()[0] if sprint_id else None
    for name, table, column in (("params", "params", "key"), ("metrics", "metric_summaries", "key")):
        if sprint_id and n is not None and n <= SMALL_SPRINT:
            sql = f"SELECT DISTINCT {column} FROM {table} WHERE run_id IN (SELECT id FROM runs WHERE sprint = ?)"
            keys = sorted(r[0] for r in conn.execute(sql, (sprint_id,)))
        else:
            keys = _distinct(reader, table, column)
            if sprint_id:  # a big sprint: keep the keys one of its runs has (found early when most have it)
                keys = [
                    k
                    for k in keys
                    if conn.execute(
                        f"SELECT 1 FROM {table} t JOIN runs r ON r.id = t.run_id WHERE t.{column} = ? "
                        "AND r.sprint = ? LIMIT 1",
                        (k, sprint_id),
                    ).fetchone()
                ]
        out[name] = keys
    where, args = ("WHERE run_id IN (SELECT id FROM runs WHERE sprint = ?)", [sprint_id]) if sprint_id else ("", [])
    out["data"] = [r[0] for r in conn.execute(f"SELECT DISTINCT name FROM run_data {where} ORDER BY name", args)]
    out["tags"] = [r[0] for r in conn.execute(f"SELECT DISTINCT tag FROM run_tags {where} ORDER BY tag", args)]
    out["system"] = list(SYSTEM_FIELDS)
    return out


_PAGE_COLUMNS = "runs.id, runs.name, runs.status, runs.session_id, runs.start_time, runs.end_time"
# a sorted page walks the sort's index (schema 12) while it expects to look at most this many runs: a query matching
# 1 run in 100 looks at ~100 runs per row of the page; a rarer match sorts the matching runs instead
INDEX_WALK_RUNS = 20_000


@dataclass(frozen=True)
class Scope:
    """Which runs a sorted or grouped page is read from, and which of them it shows: what
    :func:`_sorted_by_index` and :func:`_grouped_by_number` share (a group's page is a narrower ``Scope``).

    ``page`` is the query's condition looked up per run (SQL on ``runs`` and its arguments), ``gathered`` the same
    with each condition's runs gathered once (counts, rare matches), ``scope_runs`` the number of runs in the
    sprint, ``total`` the number matching, ``offset`` / ``limit`` the page, ``gexpr`` each row's ``g`` (the group's
    value; NULL when the page is not grouped).
    """

    reader: Any
    page: tuple[str, list]
    gathered: tuple[str, list]
    scope_runs: int
    total: int
    offset: int
    limit: int
    gexpr: tuple[str, list] = ("NULL", [])


def _sorted_by_index(scope: Scope, f: Field, descending: bool) -> list[dict] | None:
    """A page sorted by a metric's last value, read in the order of the index ``metric_summaries_key`` (key, last)
    and stopped when it is full, rather than sorting every run by a lookup each (227 ms at 100,000 runs), or by a
    numeric param (see :func:`_grouped_by_number`); None when the sort is another field, the param has other
    values than numbers, or the query matches too few runs for the walk to pay.

    Same order as ``ORDER BY (last) DESC`` / ``ASC NULLS LAST``: the runs with the metric by its value, ties newest
    first, then the runs lacking it (no summary, or a NaN last value, stored as NULL) newest first.
    """
    offset, limit, gexpr, gathered = scope.offset, scope.limit, scope.gexpr, scope.gathered
    # walking an order, the page looks at ~ (offset + limit) * scope_runs / total runs: for a rare match, the
    # matching runs gathered once
    rare = (offset + limit) * scope.scope_runs > INDEX_WALK_RUNS * max(scope.total, 1)
    if f.kind == "params":  # a param's runs value by value (a few values: big ties), newest first in each
        within: tuple[list[str], list] = (["runs.start_time DESC", "runs.rowid DESC"], [])
        found = _grouped_by_number(replace(scope, page=gathered) if rare else scope, f, within, reverse=descending)
        return None if found is None else found[0]
    if f.kind != "metrics" or f.agg != "last" or rare:
        return None
    conn = scope.reader.conn
    where, args = scope.page
    has = "SELECT run_id FROM metric_summaries WHERE key = ? AND last IS NOT NULL"
    sql = (
        f"SELECT {_PAGE_COLUMNS}, {gexpr[0]} AS g FROM metric_summaries s CROSS JOIN runs ON runs.id = s.run_id "
        f"WHERE s.key = ? AND s.last IS NOT NULL AND {where} "
        f"ORDER BY s.last {'DESC' if descending else 'ASC'}, runs.start_time DESC, runs.rowid DESC LIMIT ? OFFSET ?"
    )
    rows = [dict(r) for r in conn.execute(sql, gexpr[1] + [f.key] + args + [limit, offset])]
    if len(rows) == limit:
        return rows
    if rows or not offset:
        with_metric = offset + len(rows)
    else:  # the page lies past the runs with the metric: how many there are
        sql = f"SELECT count(*) FROM runs WHERE ({gathered[0]}) AND runs.id IN ({has})"
        with_metric = conn.execute(sql, gathered[1] + [f.key]).fetchone()[0]
    sql = (
        f"SELECT {_PAGE_COLUMNS}, {gexpr[0]} AS g FROM runs WHERE ({where}) AND runs.id NOT IN ({has}) "
        "ORDER BY runs.start_time DESC, runs.rowid DESC LIMIT ? OFFSET ?"
    )
    more = gexpr[1] + args + [f.key, limit - len(rows), max(0, offset - with_metric)]
    rows += [dict(r) for r in conn.execute(sql, more)]
    return rows


def _grouped_by_number(
    scope: Scope,
    gf: Field,
    order: tuple[list[str], list],
    reverse: bool = False,
    sort: tuple[Field, bool] | None = None,
) -> tuple[list[dict], list[dict]] | None:
    """``(rows, groups)`` of a page grouped by a param whose values in the matching runs are all numbers (not NaN
    or infinite): the groups counted in the order of the index ``params_number`` (no sort of 100,000 lookups),
    the page's rows read group by group; None for another field or param (the caller sorts every run).

    Same result as grouping by the param's typed value (``GROUP BY g ORDER BY g NULLS LAST``): groups by value,
    the runs lacking the param last (value None); a group of ints says an int. ``order`` is the order within a
    group (ORDER BY terms and their arguments), ``scope.gexpr`` the row's own value of the param; ``reverse``: the
    values from the largest (a sort by the param, descending; the runs lacking it still last); ``sort``: the field and
    direction ``order`` sorts by, when a group's page can walk its index (see :func:`_sorted_by_index`).
    """
    if gf.kind != "params":
        return None
    conn = scope.reader.conn
    offset, limit, gexpr, total = scope.offset, scope.limit, scope.gexpr, scope.total
    where, args = scope.gathered
    # every param row belongs to a run (the foreign keys of schema 10; nbexp deletes no run): over every run, the
    # key's rows are counted as they are (gathering 100,000 run ids to check them cost 0.1 s)
    mine = "" if where == "1" else f" AND p.run_id IN (SELECT runs.id FROM runs WHERE {where})"
    rows = conn.execute(
        f"SELECT CAST(p.value AS REAL) AS v, count(*), min(p.type), max(p.type) FROM params p "
        f"WHERE p.key = ? AND {NUMERIC_PARAM}{mine} GROUP BY v ORDER BY v",
        [gf.key] + args,
    ).fetchall()
    held = conn.execute(f"SELECT count(*) FROM params p WHERE p.key = ?{mine}", [gf.key] + args).fetchone()[0]
    if held != sum(r[1] for r in rows) or any(abs(r[0]) >= 2**53 for r in rows):
        return None  # a value that is not a number (or NaN), or ints a double cannot tell apart: sort them all
    if reverse:
        rows.reverse()
    groups = [{"value": int(v) if lo == hi == "int" else v, "count": n} for v, n, lo, hi in rows]
    # a group's condition: looked up per run when its runs are walked in order, else its runs gathered once
    number = f"p.key = ? AND {NUMERIC_PARAM} AND CAST(p.value AS REAL) = ?"
    members = [(number, [gf.key, v], "") for v, *_ in rows]
    if total > held:
        groups.append({"value": None, "count": total - held})
        members.append(("p.key = ?", [gf.key], "NOT "))
    out: list[dict] = []
    start = 0
    pw, pargs = scope.page
    gw, gargs = scope.gathered
    for g, (cond, margs, no) in zip(groups, members):
        end = start + g["count"]
        if end > offset and len(out) < limit and sort is not None:  # the group's page in its sort's index order
            looked_up = f"({pw}) AND {no}EXISTS (SELECT 1 FROM params p WHERE p.run_id = runs.id AND {cond})"
            group_scope = replace(
                scope,
                page=(looked_up, pargs + margs),
                gathered=(f"({gw}) AND runs.id {no}IN (SELECT p.run_id FROM params p WHERE {cond})", gargs + margs),
                total=g["count"],
                offset=max(0, offset - start),
                limit=limit - len(out),
            )
            found = _sorted_by_index(group_scope, sort[0], sort[1])
            if found is not None:
                out += found
                start = end
                continue
        if end > offset and len(out) < limit:  # the group overlaps the page
            # a big group, in start time order: the runs in order, each looked up in it, until the page is full
            if g["count"] * 20 >= scope.scope_runs and order[0][0].startswith("runs.start_time"):
                member = f"{no}EXISTS (SELECT 1 FROM params p WHERE p.run_id = runs.id AND {cond})"
            else:  # a small group, or one sorted by a field: its runs, then sorted
                member = f"runs.id {no}IN (SELECT p.run_id FROM params p WHERE {cond})"
            sql = (
                f"SELECT {_PAGE_COLUMNS}, {gexpr[0]} AS g FROM runs WHERE ({pw}) AND {member} "
                f"ORDER BY {', '.join(order[0])} LIMIT ? OFFSET ?"
            )
            more = gexpr[1] + pargs + margs + order[1] + [limit - len(out), max(0, offset - start)]
            out += [dict(r) for r in conn.execute(sql, more)]
        start = end
    return out, groups


def table(
    reader: Any,
    sprint: str | None = None,
    query: str | None = None,
    sort: str | None = None,
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
    columns: list[str] | str | None = None,
    group: str | None = None,
    with_columns: bool = True,
    metric: str | None = None,
) -> dict:
    """A page of the runs table.

    Args:
        reader: an open :class:`~nbexp.ledger.queries.Reader`.
        sprint: today, yesterday, all, a date or a sprint name.
        query: a query in this module's language (None or blank: every run).
        sort: a field (``metrics.auc``, ``params.C``, ``duration`` ...); None: start time. Runs lacking the
            value come last either way; ties newest first.
        descending: the sort's direction.
        offset / limit: the page (``limit`` at most :data:`MAX_PAGE`).
        columns: the fields each row carries in ``cells`` (column ids, a list or comma-separated);
            None: the sprint's key columns (:func:`key_columns`: name, status, ``metric``, the params that vary).
        group: a field (a param, ``tag``, ``status`` ...) to group rows by: rows come sorted by group,
            then by ``sort``, and ``groups`` lists each group's value and run count.
        with_columns: also list the columns available (the column chooser's choices).
        metric: the sprint's main metric, a column of the key columns (``columns`` None).

    Returns:
        ``{"total", "offset", "limit", "columns" (the ids shown), "available", "groups", "rows"}``; each row
        has ``id, name, status, start_time, end_time, duration, tags, cells`` (and ``group``).

    Raises:
        QueryError: a query, sort, group or column that does not parse (with its position), or a query naming a
            param or metric no run of the sprint has (:func:`unknown_key`).
        InvalidArgument: a bad page or sprint.
    """
    for name, value in (("limit", limit), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidArgument(f"{name} must be a non-negative int; got {value!r}")
    limit = min(limit, MAX_PAGE)
    sprint_id = reader.sprint_id(sprint)
    if isinstance(columns, str):
        fields = _in("columns", parse_fields, columns)
    else:
        fields = [_in("columns", parse_field, c) for c in columns or key_columns(reader, sprint_id, metric)]
    unknown_key(reader, sprint_id, query)
    ctx = context(reader)
    # the count gathers each condition's runs once; the page looks them up run by run, newest first
    count_where, count_args = compile_query(query, ctx)
    where, args = compile_query(query, replace(ctx, correlated=True))
    if sprint_id:
        count_where, count_args = f"runs.sprint = ? AND ({count_where})", [sprint_id] + count_args
        where, args = f"runs.sprint = ? AND ({where})", [sprint_id] + args
    total = reader.conn.execute(f"SELECT count(*) FROM runs WHERE {count_where}", count_args).fetchone()[0]
    direction = "DESC" if descending else "ASC"
    order, order_args = [], []
    group_field = _in("group", parse_field, group) if group else None
    sort_field = _in("sort", parse_field, sort) if sort else None
    gexpr, gargs = field_expr(group_field, ctx) if group_field else ("NULL", [])
    rows = None
    scope_runs = total
    if query and (sort_field or group_field):  # how rare a match is: the runs of the sprint
        in_sprint = ("runs.sprint = ?", [sprint_id]) if sprint_id else ("1", [])
        scope_runs = reader.conn.execute(f"SELECT count(*) FROM runs WHERE {in_sprint[0]}", in_sprint[1]).fetchone()[0]
    rare = (offset + limit) * scope_runs > INDEX_WALK_RUNS * max(total, 1)  # see _sorted_by_index
    scope = Scope(reader, (where, args), (count_where, count_args), scope_runs, total, offset, limit, (gexpr, gargs))
    if sort_field is not None and group_field is None:
        rows = _sorted_by_index(scope, sort_field, descending)
    groups = None
    if rows is None and group_field is not None:
        within, within_args = [], []
        if sort_field:
            sexpr, sargs = field_expr(sort_field, ctx)
            within.append(f"({sexpr}) {direction}{' NULLS LAST' if direction == 'ASC' else ''}")
            within_args += sargs
        tie = "DESC" if sort else direction
        within.append(f"runs.start_time {tie}, runs.rowid {tie}")
        # sorted within a group, every run of the group is read: each condition's runs gathered once
        grouped = _grouped_by_number(
            replace(scope, page=scope.gathered) if sort_field or rare else scope,
            group_field,
            (within, within_args),
            sort=(sort_field, descending) if sort_field else None,
        )
        if grouped is not None:
            rows, groups = grouped
    if rows is None:
        if group_field:
            order.append("g NULLS LAST")
        if sort_field:
            sexpr, sargs = field_expr(sort_field, ctx)
            order.append(f"({sexpr}) {direction}{' NULLS LAST' if direction == 'ASC' else ''}")  # NULL: smallest
            order_args += sargs
        tie = "DESC" if sort else direction  # ties newest first; no sort: by start time, as asked
        order.append(f"runs.start_time {tie}, runs.rowid {tie}")
        # by start time, the page looks the conditions up run by run, newest first, until it is full; sorted or
        # grouped, every matching run is read: each condition's runs gathered once is then the cheaper
        page_where, page_args = (count_where, count_args) if (sort_field or group_field) else (where, args)
        sql = (
            f"SELECT {_PAGE_COLUMNS}, {gexpr} AS g FROM runs WHERE {page_where} "
            f"ORDER BY {', '.join(order)} LIMIT ? OFFSET ?"
        )
        rows = [dict(r) for r in reader.conn.execute(sql, gargs + page_args + order_args + [limit, offset])]
    if group_field and groups is None:
        groups = [
            {"value": g, "count": n}
            for g, n in reader.conn.execute(
                f"SELECT {gexpr} AS g, count(*) FROM runs WHERE {count_where} GROUP BY g ORDER BY g NULLS LAST",
                gargs + count_args,
            )
        ]
    ids = [r["id"] for r in rows]
    kinds = {f.kind for f in fields}
    # the shown keys only: a run has 50 params where the table shows a few
    params = reader.params(ids, keys={f.key for f in fields if f.kind == "params"}) if "params" in kinds else {}
    metrics = (
        reader.metric_summaries(ids, keys={f.key for f in fields if f.kind == "metrics"}) if "metrics" in kinds else {}
    )
    data = reader.data_fingerprints(ids) if "data" in kinds else {}
    system = (
        {
            r[0]: dict(zip(SYSTEM_FIELDS, r[1:]))
            for r in reader._for_runs(f"SELECT id, {', '.join(SYSTEM_FIELDS)} FROM runs WHERE id IN ({{ids}})", ids)
        }
        if "system" in kinds or "run" in kinds
        else {}
    )
    extra = (
        {
            r[0]: r[1:]
            for r in reader._for_runs("SELECT id, note, sprint, kind, starred FROM runs WHERE id IN ({ids})", ids)
        }
        if "run" in kinds
        else {}
    )
    tags = reader.tags(ids)
    out_rows = []
    for r in rows:
        r = reader._effective(r)
        rid = r["id"]
        r["duration"] = None if r["end_time"] is None else r["end_time"] - r["start_time"]
        r["tags"] = tags.get(rid, [])
        run_extra = dict(zip(("note", "sprint", "kind", "starred"), extra.get(rid, (None,) * 4)))
        cells = {}
        for f in fields:
            if f.kind == "run":
                cells[f.id] = r.get(f.key, run_extra.get(f.key)) if f.key != "id" else rid
            elif f.kind == "status":
                cells[f.id] = r["status"]
            elif f.kind == "tag":
                cells[f.id] = ", ".join(r["tags"])
            elif f.kind == "params":
                cells[f.id] = params.get(rid, {}).get(f.key)
            elif f.kind == "metrics":
                summary = metrics.get(rid, {}).get(f.key)
                cells[f.id] = None if summary is None else summary[f.agg]
            elif f.kind == "system":
                cells[f.id] = system.get(rid, {}).get(f.key)
            elif f.kind == "data":
                cells[f.id] = data.get(rid, {}).get(f.key)
        row = {k: r[k] for k in ("id", "name", "status", "start_time", "end_time", "duration", "tags")}
        row["cells"] = cells
        if group_field:
            row["group"] = r["g"]
        out_rows.append(row)
    out = {
        "total": total,
        "offset": offset,
        "limit": limit,
        "columns": [f.id for f in fields],
        "groups": groups,
        "rows": out_rows,
    }
    if with_columns:
        out["available"] = available_columns(reader, sprint_id)
    return out
