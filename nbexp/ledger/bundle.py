"""Portable bundles: runs in one self-describing SQLite file.

A bundle is an nbexp ledger file (same schema, same migrations) that holds only the chosen
runs and what they refer to (sessions, params, metric points and summaries, cells and their
code, environments, data summaries, tags, events, system samples, cell outputs and artifacts with
the content they reference, the explanations of ``nbexp explain --ablate`` between two of its runs
with the links of their ablation replays), plus a ``bundle_manifest``
table: format, nbexp and schema versions, the run ids, and a SHA-256 of every table's rows. It holds
the ledger's tables only: the views, the full-text index and the triggers that keep it are derived from
the rows, left out of the bundle (:func:`drop_derived`) and rebuilt by the target ledger's own triggers
as the rows are imported.

``nbexp import`` treats a bundle as hostile input, and changes nothing unless all of it is sound:

- its schema must be exactly the ledger's: real tables with the ledger's columns, no views, no
  triggers but the ledger's own, no virtual or unknown tables (a view could make reading it hang);
- its manifest must be readable and of this schema version, and the rows must match its checksum;
- every row it would bring is read by explicit columns and type-checked the way nbexp's own writer
  produces it (numbers where numbers go, times finite, params JSON of their stated type, ...), and
  every code and environment hash is recomputed from its text;
- only the rows the imported runs reference come along, and a row whose key is already in the
  ledger never replaces the local one.

All of that is read and checked before the ledger's write lock is taken; then the merge runs in one
transaction. A run already in the target (same id, session and start time) is skipped, so importing
twice changes nothing; a run, session or explanation whose id is taken by another one is given a fresh
id, so ids never collide. An explanation comes along with any of its runs or replays that comes, when
the bundle holds both its runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument, LedgerBusy, LedgerError, NbexpError
from . import Rollback, connect, transaction
from .schema import CELL_STATUSES, RUN_STATUSES, SCHEMA_VERSION, migrate

FORMAT = "nbexp-bundle/1"
# tables copied per run (by run_id), and what links the rest
RUN_TABLES = (
    "params",
    "metrics",
    "metric_summaries",
    "metric_sources",
    "run_tables",
    "run_tags",
    "run_data",
    "events",
    "cell_outputs",
    "artifacts",
)
# an explanation (``nbexp explain --ablate``) links two runs, and ``ablation_of`` the replays it ran: it travels
# when both its runs do, the links with their replays
EXPLANATIONS_OF_RUNS = "run_a IN {runs} AND run_b IN {runs}"
# the content the runs' outputs and artifacts reference (blobs: one row per SHA-256)
BLOBS_OF_RUNS = (
    "hash IN (SELECT hash FROM main.cell_outputs WHERE run_id IN {runs}) OR "
    "hash IN (SELECT sha256 FROM main.artifacts WHERE stored = 1 AND run_id IN {runs})"
)
CHUNK = 500  # ids per IN (...) list: well under SQLite's variable limit
MANIFEST_SQL = "CREATE TABLE bundle_manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class BundleError(NbexpError):
    """A file that is not a usable nbexp bundle; the message names the file and says why."""


# -- what a sound bundle looks like ---------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _reference() -> tuple[dict[str, list[tuple]], frozenset[str], frozenset[str]]:
    """The ledger schema this nbexp writes: ``({table: table_xinfo rows}, index names, trigger SQL)``."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn)
        drop_derived(conn)
        conn.execute(MANIFEST_SQL)
        tables = {
            name: [tuple(r)[1:] for r in conn.execute(f'PRAGMA table_xinfo("{name}")')]
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        indexes = frozenset(n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'"))
        triggers = frozenset(s for (s,) in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"))
        return tables, indexes, triggers
    finally:
        conn.close()


def drop_derived(conn: sqlite3.Connection) -> None:
    """Drop what a ledger derives from its rows and a bundle leaves out: the views, the virtual tables
    (the full-text index, with their shadow tables) and the triggers that keep them. A bundle holds data
    only; the ledger it is imported into fills its own index from the rows it takes in, by its triggers."""
    objects = conn.execute("SELECT type, name, sql FROM main.sqlite_master").fetchall()
    virtual = [n for t, n, sql in objects if t == "table" and str(sql or "").upper().startswith("CREATE VIRTUAL")]
    uses = re.compile(r"\b(" + "|".join(re.escape(n) for n in virtual) + r")\b") if virtual else None
    for kind, name, sql in objects:
        if kind == "view":
            conn.execute(f'DROP VIEW main."{name}"')
        elif kind == "trigger" and uses is not None and uses.search(sql or ""):
            conn.execute(f'DROP TRIGGER main."{name}"')
    for name in virtual:
        conn.execute(f'DROP TABLE main."{name}"')


def _columns(table: str) -> list[str]:
    """The columns of ``table`` in the ledger schema, in order (read explicitly, never ``*``)."""
    return [c[0] for c in _reference()[0][table]]


ID = re.compile(r"[0-9A-Za-z_.-]{1,64}")
HEX16 = re.compile(r"[0-9a-f]{16}")
SPRINT = re.compile(r"\d{4}-\d{2}-\d{2}")
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_TIME = 1e11  # seconds since 1970: year 5138; fromtimestamp() fails not far above
# REAL columns that hold timestamps, and those that may hold infinities (a logged metric may be inf)
TIMES = {
    "pid_started",
    "started",
    "ended",
    "heartbeat",
    "start_time",
    "end_time",
    "updated",
    "wall",
    "start",
    "time",
    "created",
}
UNBOUNDED = {
    ("metrics", "value"),
    ("metric_summaries", "min"),
    ("metric_summaries", "max"),
    ("metric_summaries", "last"),
}
ID_COLUMNS = {"id", "session_id", "run_id", "replay_of", "run_a", "run_b", "explanation_id"}
ENUMS = {
    ("runs", "status"): set(RUN_STATUSES),
    ("cells", "status"): set(CELL_STATUSES),
    ("params", "type"): {"int", "float", "bool", "str", "none", "list", "dict"},
    ("cell_outputs", "kind"): {"display", "result", "stdout"},
    ("explanations", "status"): {"running", "finished", "failed"},
}
SHA256_COLUMNS = {("blobs", "hash"), ("cell_outputs", "hash"), ("artifacts", "sha256")}
JSON_COLUMNS = {
    ("environments", "packages"): dict,
    ("sessions", "gpus"): list,
    ("datasets", "shape"): (list, type(None)),
    ("datasets", "summary"): dict,
    ("explanations", "result"): dict,
}


class _Bad(Exception):
    """One value that nbexp's writer would never have stored; the message says what is wrong."""


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise _Bad(f"not valid JSON: {_short(text)}") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Rule:
    """What nbexp's writer puts in one column: a SQL test for a bad value (run by SQLite over every
    row, fast) and the same test in Python (for the message, and for what SQL cannot check: JSON)."""

    def __init__(self, table: str, col: str, decl: str, notnull: bool) -> None:
        self.col, self.decl, self.notnull = col, decl.upper(), notnull
        self.enum = ENUMS.get((table, col))
        self.shape: Any = JSON_COLUMNS.get((table, col))  # the JSON types the column's values decode to
        self.finite = (table, col) not in UNBOUNDED or col in TIMES
        self.is_time = col in TIMES
        self.is_id = col in ID_COLUMNS and table not in ("datasets", "environments", "code", "sprints")
        self.is_sprint = (table, col) in {("sprints", "id"), ("runs", "sprint"), ("sessions", "sprint")}
        self.is_hash = (table, col) in {
            ("cells", "code_hash"),
            ("code", "hash"),
            ("environments", "id"),
            ("sessions", "env_id"),
        }
        self.is_sha256 = (table, col) in SHA256_COLUMNS

    def sql(self) -> str:
        """A SQL expression true for a bad value of the column."""
        c = f'"{self.col}"'
        if self.decl == "REAL":
            bad = [f"typeof({c}) NOT IN ('real', 'integer')"]
            if self.finite:
                bad.append(f"abs({c}) > 1.7976931348623157e308")
            if self.is_time:
                bad.append(f"NOT ({c} >= 0 AND {c} < {MAX_TIME})")
        elif self.decl == "INTEGER":
            bad = [f"typeof({c}) != 'integer'"]
        elif self.decl == "BLOB":
            bad = [f"typeof({c}) != 'blob'"]
        else:
            bad = [f"typeof({c}) != 'text'"]
            if self.enum is not None:
                bad.append(f"{c} NOT IN ({', '.join(repr(e) for e in sorted(self.enum))})")
            if self.is_id:
                bad.append(f"length({c}) NOT BETWEEN 1 AND 64 OR {c} GLOB '*[^0-9A-Za-z_.-]*'")
            if self.is_hash:
                bad.append(f"length({c}) != 16 OR {c} GLOB '*[^0-9a-f]*'")
            if self.is_sha256:
                bad.append(f"length({c}) != 64 OR {c} GLOB '*[^0-9a-f]*'")
            if self.is_sprint:
                bad.append(f"{c} NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR date({c}) IS NOT {c}")
        null = "1" if self.notnull else "0"
        return f"CASE WHEN {c} IS NULL THEN {null} ELSE ({' OR '.join(bad)}) END"

    def check(self, v: Any) -> None:
        """Raise :class:`_Bad` for a value the writer would not produce."""
        if v is None:
            if self.notnull:
                raise _Bad("missing (NULL)")
            return
        if self.decl == "REAL":
            if type(v) not in (int, float):
                raise _Bad(f"a number expected, got {type(v).__name__} {_short(v)}")
            if self.finite and not math.isfinite(v):
                raise _Bad(f"a finite number expected, got {v!r}")
            if self.is_time and not 0 <= v < MAX_TIME:
                raise _Bad(f"a time (seconds since 1970) expected, got {v!r}")
        elif self.decl == "INTEGER":
            if type(v) is not int:
                raise _Bad(f"an integer expected, got {type(v).__name__} {_short(v)}")
        elif self.decl == "BLOB":
            if type(v) is not bytes:
                raise _Bad(f"bytes expected, got {type(v).__name__} {_short(v)}")
        else:
            if type(v) is not str:
                raise _Bad(f"text expected, got {type(v).__name__} {_short(v)}")
            if self.enum is not None and v not in self.enum:
                raise _Bad(f"one of {', '.join(sorted(self.enum))} expected, got {_short(v)}")
            if self.is_id and not ID.fullmatch(v):
                raise _Bad(f"not an id: {_short(v)}")
            if self.is_hash and not HEX16.fullmatch(v):
                raise _Bad(f"not a content hash: {_short(v)}")
            if self.is_sha256 and not SHA256.fullmatch(v):
                raise _Bad(f"not a SHA-256: {_short(v)}")
            if self.is_sprint:
                try:
                    ok = bool(SPRINT.fullmatch(v)) and bool(dt.date.fromisoformat(v))
                except ValueError:
                    ok = False
                if not ok:
                    raise _Bad(f"a sprint date (YYYY-MM-DD) expected, got {_short(v)}")
            if self.shape is not None and not isinstance(_json(v), self.shape):
                raise _Bad(f"JSON of another kind than nbexp writes: {_short(v)}")


PARAM_TYPES: dict[str, Callable[[Any], bool]] = {
    "int": lambda x: type(x) is int,
    "float": lambda x: type(x) in (int, float),
    "bool": lambda x: type(x) is bool,
    "str": lambda x: type(x) is str,
    "none": lambda x: x is None,
    "list": lambda x: type(x) is list,
    "dict": lambda x: type(x) is dict,
}


def _check_param(row: dict[str, Any], _code_hash: Callable[[str], str]) -> None:
    """``params.value`` must be the JSON text of a value of ``params.type`` (as ``capture.params.encode``
    writes it), so that every reader can decode it."""
    value, kind = row["value"], row["type"]
    if value is None:
        raise _Bad("value: missing (NULL)")
    decoded = _json(value)
    if not PARAM_TYPES[kind](decoded):
        raise _Bad(f"value {_short(value)} is not of its stated type {kind!r}")
    if kind == "int":
        int(value)  # readers skip the JSON parser for numbers
    elif kind == "float":
        float(value)
    elif kind in ("bool", "none") and value not in ("true", "false", "null"):
        raise _Bad(f"value {_short(value)} is not as nbexp writes a {kind}")


def _check_code(row: dict[str, Any], code_hash: Callable[[str], str]) -> None:
    """A code row's hash must be the one nbexp computes for its text: a bundle cannot plant text
    under the hash of some other cell (which ``nbexp replay --execute`` would then run)."""
    if code_hash(row["source"]) != row["hash"]:
        raise _Bad(f"hash {row['hash']} is not the hash of its code text")


def _check_environment(row: dict[str, Any], _code_hash: Callable[[str], str]) -> None:
    """An environment's id is the hash of its package list (see ``capture.environment.packages``)."""
    if hashlib.sha1(row["packages"].encode("utf-8", "surrogatepass")).hexdigest()[:16] != row["id"]:
        raise _Bad(f"id {row['id']} is not the hash of its package list")


def _check_blob(row: dict[str, Any], _code_hash: Callable[[str], str]) -> None:
    """A blob's hash and size must be those of its bytes: a bundle cannot plant content under the
    hash of some other figure or model file."""
    if hashlib.sha256(row["data"]).hexdigest() != row["hash"]:
        raise _Bad(f"hash {row['hash']} is not the SHA-256 of its data")
    if row["size"] != len(row["data"]):
        raise _Bad(f"size {row['size']} is not the length of its data ({len(row['data'])})")


ROW_CHECKS = {
    "params": _check_param,
    "code": _check_code,
    "environments": _check_environment,
    "blobs": _check_blob,
}


@functools.cache
def _rules(table: str) -> list[_Rule]:
    return [_Rule(table, name, decl, bool(notnull)) for name, decl, notnull, *_ in _reference()[0][table]]


# -- export -----------------------------------------------------------------------------------------


def checksum(conn: sqlite3.Connection) -> str:
    """SHA-256 over every table's rows in a fixed order."""
    h = hashlib.sha256()
    encode = json.JSONEncoder(default=repr).encode  # json.dumps(row, default=repr), made once
    for table in _tables(conn):
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
        h.update(f"\x1e{table}\x1f{','.join(cols)}".encode())
        order = ", ".join(f'"{c}"' for c in cols)
        for row in conn.execute(f'SELECT {order} FROM main."{table}" ORDER BY {order}'):
            h.update(encode(row).encode())
    return h.hexdigest()


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'bundle_manifest' ORDER BY name"
        )
    ]


def export_bundle(
    source: sqlite3.Connection, run_ids: list[str], path: str | Path, overwrite: bool = False, *, version: str
) -> dict:
    """Write the runs ``run_ids`` of ``source`` (a ledger connection) to the bundle ``path``.

    A new bundle file is readable by its owner only (0600), like the ledger; one replaced with
    ``overwrite`` keeps its mode.

    Returns:
        ``{"path", "runs", "points", "bytes"}``.
    """
    path = Path(path)
    if not run_ids:
        raise InvalidArgument("nothing to export: no run matches")
    mode = 0o600
    if path.exists():
        if not overwrite:
            raise InvalidArgument(f"{path} exists: pass --force to replace it")
        mode = path.stat().st_mode & 0o7777
    tmp = path.with_name(path.name + ".partial")
    tmp.unlink(missing_ok=True)
    # created here, empty, so SQLite opens a file no one else could read meanwhile (its journals follow its mode)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    os.chmod(tmp, mode)  # whatever the umask
    out = connect(tmp)
    try:
        drop_derived(out)  # before the copy: its rows are not indexed for nothing
        out.execute("ATTACH DATABASE ? AS src", (str(_db_path(source)),))
        with transaction(out, f"bundle {tmp}"):
            out.execute("CREATE TEMP TABLE chosen (id TEXT PRIMARY KEY)")
            out.executemany("INSERT OR IGNORE INTO chosen VALUES (?)", [(r,) for r in run_ids])

            def copy(table: str, where: str) -> None:
                src_cols = {r[1] for r in out.execute(f'PRAGMA src.table_info("{table}")')}
                cols = ", ".join(f'"{c}"' for c in _columns(table) if c in src_cols)
                out.execute(
                    f'INSERT OR IGNORE INTO main."{table}" ({cols}) SELECT {cols} FROM src."{table}" WHERE {where}'
                )

            copy("runs", "id IN (SELECT id FROM chosen)")
            copy("sessions", "id IN (SELECT session_id FROM main.runs)")
            copy("sprints", "id IN (SELECT sprint FROM main.runs)")
            copy("environments", "id IN (SELECT env_id FROM main.sessions)")
            for table in RUN_TABLES:
                copy(table, "run_id IN (SELECT id FROM chosen)")
            copy("blobs", BLOBS_OF_RUNS.format(runs="(SELECT id FROM chosen)"))
            copy("explanations", EXPLANATIONS_OF_RUNS.format(runs="(SELECT id FROM chosen)"))
            copy(
                "ablation_of",
                "run_id IN (SELECT id FROM chosen) AND explanation_id IN (SELECT id FROM main.explanations)",
            )
            copy("cells", "session_id IN (SELECT session_id FROM main.runs)")
            copy("code", "hash IN (SELECT code_hash FROM main.cells)")
            copy("datasets", "fingerprint IN (SELECT fingerprint FROM main.run_data)")
            for table in ("host_samples", "gpu_samples"):
                copy(
                    table,
                    f"EXISTS (SELECT 1 FROM main.runs r WHERE r.session_id = src.{table}.session_id AND "
                    f"src.{table}.time BETWEEN r.start_time AND coalesce(r.end_time, 1e18))",
                )
        out.execute("DETACH DATABASE src")
        # a bundle is data only: the ledger's change-stamp triggers stay behind
        for (name,) in out.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            out.execute(f'DROP TRIGGER "{name}"')
        points = out.execute("SELECT count(*) FROM metrics").fetchone()[0]
        out.execute(MANIFEST_SQL)
        manifest = {
            "format": FORMAT,
            "nbexp_version": version,
            "schema_version": str(SCHEMA_VERSION),
            "created": str(time.time()),
            "runs": json.dumps(sorted(set(run_ids))),
            "checksum": checksum(out),
        }
        out.executemany("INSERT INTO bundle_manifest VALUES (?, ?)", manifest.items())
        out.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
    finally:
        out.close()
    tmp.replace(path)
    return {"path": str(path), "runs": len(set(run_ids)), "points": points, "bytes": path.stat().st_size}


def _db_path(conn: sqlite3.Connection) -> str:
    return conn.execute("PRAGMA database_list").fetchone()[2]


# -- reading a bundle -------------------------------------------------------------------------------


def open_bundle(path: str | Path) -> tuple[sqlite3.Connection, dict[str, str]]:
    """A read-only connection to a checked bundle and its manifest.

    Checks the schema (real tables only, exactly the ledger's), the manifest and the checksum;
    :func:`import_bundle` then checks the rows it would bring.

    Raises:
        BundleError: missing, truncated, corrupted (checksum), not a bundle, of another schema
            version, or with objects a ledger never has (views, foreign triggers, other tables).
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"no bundle at {path}")
    conn = None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, isolation_level=None)
        conn.execute("PRAGMA trusted_schema = OFF")
        objects = conn.execute("SELECT type, name, sql FROM main.sqlite_master").fetchall()
        _check_objects(path, objects)
        if not any(t == "table" and n == "bundle_manifest" for t, n, _ in objects):
            raise BundleError(f"{path} is an SQLite file but not an nbexp bundle (no manifest)")
        _check_table(path, conn, "bundle_manifest")
        manifest = {}
        for key, value in conn.execute("SELECT key, value FROM main.bundle_manifest"):
            if type(key) is not str or type(value) is not str:
                raise BundleError(f"{path}: its manifest holds a value that is not text ({_short(key)})")
            manifest[key] = value
        if manifest.get("format") != FORMAT:
            raise BundleError(f"{path}: unknown bundle format {manifest.get('format')!r}")
        try:
            version = int(manifest.get("schema_version", ""))
        except ValueError:
            raise BundleError(
                f"{path}: its manifest has no valid schema_version "
                f"({_short(manifest.get('schema_version'))}, a number expected)"
            ) from None
        if version > SCHEMA_VERSION:
            raise BundleError(
                f"{path} was written by a newer nbexp (schema {version}, this one knows "
                f"{SCHEMA_VERSION}): upgrade nbexp to import it"
            )
        if version < SCHEMA_VERSION:
            raise BundleError(f"{path} has schema {version}; re-export it with this nbexp ({SCHEMA_VERSION})")
        for table in _reference()[0]:
            _check_table(path, conn, table)
        if checksum(conn) != manifest.get("checksum"):
            raise BundleError(f"{path} is corrupted: its content does not match its checksum")
        try:
            listed = json.loads(manifest.get("runs", ""))
        except ValueError:
            listed = None
        if not isinstance(listed, list) or not all(type(x) is str for x in listed):
            raise BundleError(f"{path}: its manifest's run list is not a JSON list of run ids")
        held = {r for (r,) in conn.execute("SELECT id FROM main.runs")}
        if set(listed) != held:
            raise BundleError(f"{path}: its manifest lists {len(set(listed))} runs but it holds {len(held)} others")
        return conn, manifest
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, sqlite3.DatabaseError):
            raise BundleError(f"{path} is not a readable nbexp bundle (truncated or not SQLite: {exc})") from None
        raise


def _check_objects(path: Path, objects: list[tuple]) -> None:
    """Every schema object must be one a ledger has: no view (reading one runs its query, which
    may never end), no trigger but the ledger's own, no virtual or unknown table or index."""
    tables, indexes, triggers = _reference()
    for kind, name, sql in objects:
        what = f"{path} is not a plain nbexp bundle: it has {kind} {_short(name)}"
        if kind == "view":
            raise BundleError(f"{what}; bundles hold tables only")
        if kind == "trigger" and sql not in triggers:
            raise BundleError(f"{what}; bundles hold no triggers")
        if kind == "table":
            if str(sql or "").upper().startswith("CREATE VIRTUAL"):
                raise BundleError(f"{what}, a virtual table")
            if name not in tables and not str(name).startswith("sqlite_"):
                raise BundleError(f"{what}, which no nbexp ledger has")
        if kind == "index" and name not in indexes and not str(name).startswith("sqlite_autoindex_"):
            raise BundleError(f"{what}, which no nbexp ledger has")
        if kind not in ("table", "index", "trigger"):
            raise BundleError(what)


def _check_table(path: Path, conn: sqlite3.Connection, table: str) -> None:
    cols = [tuple(r)[1:] for r in conn.execute(f'PRAGMA main.table_xinfo("{table}")')]
    if not cols:
        raise BundleError(f"{path} is not a complete nbexp bundle: it has no table {table}")
    if cols != _reference()[0][table]:
        raise BundleError(f"{path}: its table {table} does not have the columns of an nbexp ledger's")


def _validate(path: Path, src: sqlite3.Connection, table: str, where: str, code_hash: Callable[[str], str]) -> None:
    """Check the rows of bundle table ``table`` that match ``where`` as nbexp's writer would have
    written them: types, ranges, ids and enums by SQLite over all rows at once, then in Python
    what SQL cannot check (JSON, recomputed hashes) for the tables that have such columns.

    Raises:
        BundleError: naming the file, the table, the column, the row and the problem.
    """
    cols, rules = _columns(table), _rules(table)
    quoted = ", ".join(f'"{c}"' for c in cols)
    first_bad = " ".join(f"WHEN {r.sql()} THEN {i}" for i, r in enumerate(rules))
    bad = src.execute(
        f'SELECT {quoted}, CASE {first_bad} ELSE -1 END AS bad FROM main."{table}" WHERE ({where}) AND bad >= 0 LIMIT 1'
    ).fetchone()
    if bad is not None:
        i = bad[-1]
        try:
            rules[i].check(bad[i])
            problem = f"a value nbexp does not write: {_short(bad[i])}"
        except _Bad as exc:
            problem = str(exc)
        raise _bad_row(path, table, f"column {cols[i]}", bad[0], problem)
    row_check = ROW_CHECKS.get(table)
    json_rules = [(i, r) for i, r in enumerate(rules) if r.shape is not None]
    if row_check is None and not json_rules:
        return
    for row in src.execute(f'SELECT {quoted} FROM main."{table}" WHERE {where}'):
        i = None
        try:
            for i, rule in json_rules:
                rule.check(row[i])
            i = None
            if row_check is not None:
                row_check(dict(zip(cols, row)), code_hash)
        except (_Bad, ValueError) as exc:
            raise _bad_row(path, table, f"column {cols[i]}" if i is not None else "row", row[0], str(exc)) from None


def _bad_row(path: Path, table: str, where: str, key: Any, problem: str) -> BundleError:
    return BundleError(f"{path}: bad bundle, table {table}, {where} of row {_short(key)}: {problem}")


def _rows(src: sqlite3.Connection, table: str, where: str) -> Iterator[tuple]:
    """The rows of bundle table ``table`` that match ``where``, by explicit columns (checked before)."""
    quoted = ", ".join(f'"{c}"' for c in _columns(table))
    yield from src.execute(f'SELECT {quoted} FROM main."{table}" WHERE {where}')


# which bundle rows a set of runs brings: WHERE clauses over the temp tables ``pick`` (the runs)
# and ``fresh`` (the sessions whose cells and samples come along)
PICKED = "(SELECT id FROM temp.pick)"
PICKED_SESSIONS = f"(SELECT session_id FROM main.runs WHERE id IN {PICKED})"
# the explanations a set of runs brings: those of two runs of the bundle (both in the ledger after the import,
# added or there already) of which one, or one of its replays, comes
BUNDLED_EXPLANATIONS = EXPLANATIONS_OF_RUNS.format(runs="(SELECT id FROM main.runs)")
PICKED_EXPLANATIONS = (
    f"{BUNDLED_EXPLANATIONS} AND (run_a IN {PICKED} OR run_b IN {PICKED} "
    f"OR id IN (SELECT explanation_id FROM main.ablation_of WHERE run_id IN {PICKED}))"
)
PLAN = [
    ("sprints", f"id IN (SELECT sprint FROM main.runs WHERE id IN {PICKED})"),
    ("environments", f"id IN (SELECT env_id FROM main.sessions WHERE id IN {PICKED_SESSIONS})"),
    ("code", "hash IN (SELECT code_hash FROM main.cells WHERE session_id IN (SELECT id FROM temp.fresh))"),
    ("datasets", f"fingerprint IN (SELECT fingerprint FROM main.run_data WHERE run_id IN {PICKED})"),
    ("sessions", f"id IN {PICKED_SESSIONS}"),
    ("runs", f"id IN {PICKED}"),
    *((t, f"run_id IN {PICKED}") for t in RUN_TABLES),
    ("blobs", BLOBS_OF_RUNS.format(runs=PICKED)),
    *((t, "session_id IN (SELECT id FROM temp.fresh)") for t in ("cells", "host_samples", "gpu_samples")),
    ("explanations", PICKED_EXPLANATIONS),
    (
        "ablation_of",
        f"run_id IN {PICKED} AND explanation_id IN (SELECT id FROM main.explanations WHERE {BUNDLED_EXPLANATIONS})",
    ),
]


def _pick(src: sqlite3.Connection, table: str, ids: Iterable[str]) -> None:
    src.execute(f"DELETE FROM temp.{table}")
    src.executemany(f"INSERT OR IGNORE INTO temp.{table} VALUES (?)", ((i,) for i in ids))


# -- import -----------------------------------------------------------------------------------------


def import_bundle(
    path: str | Path, ledger: str | Path | None = None, dry_run: bool = False, *, code_hash: Callable[[str], str]
) -> dict[str, Any]:
    """Merge the bundle at ``path`` into ``ledger``; all or nothing. ``code_hash`` is capture's rule
    for a cell's hash (the ledger does not import capture): every code row is checked against it.

    The bundle is read and checked in full before the ledger's write lock is taken, so a bad
    bundle leaves the ledger as it was, byte for byte.

    Returns:
        ``{"runs_added", "runs_skipped", "runs_renamed", "points"}``.

    Raises:
        BundleError: the bundle is not sound (see the module docstring); nothing was written.
        LedgerBusy: another process held the ledger's write lock too long; nothing was written.
        LedgerError: the ledger cannot be opened or written.
    """
    path = Path(path)
    src, _manifest = open_bundle(path)
    try:
        src.execute("BEGIN")  # one snapshot of the bundle; the temp tables written in one go
        src.execute("CREATE TEMP TABLE pick (id TEXT PRIMARY KEY)")
        src.execute("CREATE TEMP TABLE fresh (id TEXT PRIMARY KEY)")
        # 1. every row any run of the bundle could bring, checked before the ledger is touched
        src.execute("INSERT INTO temp.pick SELECT id FROM main.runs")
        src.execute("INSERT OR IGNORE INTO temp.fresh SELECT session_id FROM main.runs")
        try:
            for table, where in PLAN:
                _validate(path, src, table, where, code_hash)
        except sqlite3.DatabaseError as exc:
            raise BundleError(f"{path} is not a readable nbexp bundle ({exc})") from None
        # 2. the merge, under the write lock
        dst = connect(ledger)
        try:
            return _merge(src, dst, dry_run)
        finally:
            dst.close()
    finally:
        src.close()


def _merge(src: sqlite3.Connection, dst: sqlite3.Connection, dry_run: bool) -> dict[str, Any]:
    stats = {"runs_added": 0, "runs_skipped": 0, "runs_renamed": 0, "points": 0}
    ledger = _db_path(dst)
    try:
        with transaction(dst, f"ledger {ledger}"):
            # sessions: same id and start -> the same session; same id, other session -> a fresh id
            sessions = src.execute(
                f"SELECT id, host, started FROM main.sessions WHERE id IN {PICKED_SESSIONS}"
            ).fetchall()
            taken = {sid for sid, *_ in sessions}  # a fresh id is none of the bundle's either
            session_map: dict[str, str] = {}
            for sid, host, started in sessions:
                mine = dst.execute("SELECT host, started FROM sessions WHERE id = ?", (sid,)).fetchone()
                if mine is None or (mine[0], mine[1]) == (host, started):
                    session_map[sid] = sid
                else:
                    session_map[sid] = _fresh(dst, "sessions", 4, taken)
            runs = src.execute("SELECT id, session_id, start_time FROM main.runs ORDER BY id").fetchall()
            taken = {rid for rid, *_ in runs}
            run_map: dict[str, str] = {}
            for i in range(0, len(runs), CHUNK):
                chunk = runs[i : i + CHUNK]
                theirs = {
                    rid: (sid, start)
                    for rid, sid, start in dst.execute(
                        f"SELECT id, session_id, start_time FROM runs WHERE id IN ({','.join('?' * len(chunk))})",
                        [rid for rid, *_ in chunk],
                    )
                }
                for rid, sid, start in chunk:
                    mine = theirs.get(rid)
                    if mine == (session_map.get(sid, sid), start):
                        stats["runs_skipped"] += 1
                        continue
                    run_map[rid] = rid if mine is None else _fresh(dst, "runs", 3, taken)
                    stats["runs_renamed"] += mine is not None
            stats["runs_added"] = len(run_map)
            _pick(src, "pick", run_map)
            explanation_map = _explanation_ids(src, dst, run_map)
            # cells and samples come with a session the ledger has no cells of yet
            new_sessions = {
                s for (s,) in src.execute(f"SELECT DISTINCT session_id FROM main.runs WHERE id IN {PICKED}")
            }
            _pick(
                src,
                "fresh",
                (
                    s
                    for s in new_sessions
                    if not dst.execute(
                        "SELECT 1 FROM cells WHERE session_id = ? LIMIT 1", (session_map.get(s, s),)
                    ).fetchone()
                ),
            )
            session_map = {k: v for k, v in session_map.items() if k != v}  # only the ids that change
            run_map = {k: v for k, v in run_map.items() if k != v}
            explanation_map = {k: v for k, v in explanation_map.items() if k != v}
            remap = {
                "session_id": session_map,
                "run_id": run_map,
                "replay_of": run_map,
                "run_a": run_map,
                "run_b": run_map,
                "explanation_id": explanation_map,
            }
            own_ids = {"sessions": session_map, "runs": run_map, "explanations": explanation_map}
            for table, where in PLAN:
                rename = dict(remap, id=own_ids.get(table, {}))
                rows = _rows(src, table, where)
                if table == "explanations" and (run_map or explanation_map):
                    rows = _renamed_results(rows, run_map, explanation_map)
                n = _insert(dst, table, rows, rename, drop=("id",) if table in ("events", "cells") else ())
                if table == "metrics":
                    stats["points"] = n
            _link_cells(src, dst, session_map, run_map)
            if dry_run:
                raise Rollback()  # a dry run: the counts, and the ledger as it was
    except LedgerBusy as exc:
        raise LedgerBusy(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"ledger {ledger}: import failed, nothing was changed ({exc})") from None
    return stats


def _link_cells(
    src: sqlite3.Connection, dst: sqlite3.Connection, session_map: dict[str, str], run_map: dict[str, str]
) -> None:
    """Keep ``cells.run_id`` a sound link (a foreign key to runs): a bundle carries all of a session's cells,
    some of runs it does not carry; those come in without a run (NULL). A later import of such a run gives its
    cells (same session, start and cell key) their run back, the session's cells being there already."""
    dst.executemany(
        "UPDATE cells SET run_id = ? WHERE session_id = ? AND start = ? AND cell_key = ? AND run_id IS NULL",
        [
            (run_map.get(run, run), session_map.get(session, session), start, key)
            for session, start, key, run in src.execute(
                f"SELECT session_id, start, cell_key, run_id FROM main.cells WHERE run_id IN {PICKED}"
            )
        ],
    )
    dst.executemany(
        "UPDATE cells SET run_id = NULL WHERE session_id = ? AND run_id IS NOT NULL "
        "AND run_id NOT IN (SELECT id FROM runs)",
        [(session_map.get(s, s),) for (s,) in src.execute("SELECT id FROM temp.fresh")],
    )


def _explanation_ids(src: sqlite3.Connection, dst: sqlite3.Connection, run_map: dict[str, str]) -> dict[str, str]:
    """The id in the ledger of each explanation the picked runs bring: its own, or a fresh one where the ledger
    holds another explanation under it (other runs, once ``run_map`` renamed them, or another time). Same id, runs
    and time: the same explanation, which stays as the ledger has it."""
    taken = {eid for (eid,) in src.execute("SELECT id FROM main.explanations")}
    out: dict[str, str] = {}
    for eid, run_a, run_b, created in src.execute(
        f"SELECT id, run_a, run_b, created FROM main.explanations WHERE {PICKED_EXPLANATIONS}"
    ).fetchall():
        mine = dst.execute("SELECT run_a, run_b, created FROM explanations WHERE id = ?", (eid,)).fetchone()
        same = mine is None or tuple(mine) == (run_map.get(run_a, run_a), run_map.get(run_b, run_b), created)
        out[eid] = eid if same else _fresh(dst, "explanations", 6, taken)
    return out


def _renamed_results(
    rows: Iterator[tuple], run_map: dict[str, str], explanation_map: dict[str, str]
) -> Iterator[tuple]:
    """The bundle's explanation rows with each result (JSON) naming the runs and explanation by their ids in the
    ledger: ``nbexp explain`` shows a stored result as it is (``run B vs A``, the waterfall's ``A <id>``), so a
    result that kept the source ledger's ids would name runs this ledger does not have, or other runs."""
    cols = _columns("explanations")
    col, col_a, col_b = cols.index("result"), cols.index("run_a"), cols.index("run_b")
    for values in rows:
        text = values[col]
        if text is not None:
            result = json.loads(text)
            renamed = _renamed_result(result, values[col_a], values[col_b], run_map, explanation_map)
            if renamed != result:
                values = (*values[:col], json.dumps(renamed), *values[col + 1 :])
        yield values


def _renamed_result(result: Any, a: str, b: str, run_map: dict[str, str], explanation_map: dict[str, str]) -> Any:
    """A copy of the result of an explanation of run ``b`` against ``a`` (their ids in the bundle) with its ids
    renamed, where ``nbexp explain --ablate`` writes them (:func:`nbexp.analysis.explain.explain`,
    :func:`nbexp.analysis.ablation.ablate`): the runs ``a`` and ``b``, each factor's ``ablation_run``, the
    ablation's ``id`` and ``noise_runs``, the waterfall's first and last labels (``A <a>``, ``B <b>``) and their
    copies on the figure's axis, and the sentences that name ``a`` or ``b`` (the summary when nothing differs, a
    failed ablation's error). Those exact places only: text from the user's runs (a factor's code or values) is
    never searched for ids. A result of another shape (the bundle is untrusted) keeps what does not match."""
    if not isinstance(result, dict):
        return result
    out = dict(result)

    def run(value: Any) -> Any:
        return run_map.get(value, value) if isinstance(value, str) else value

    for key in ("a", "b"):
        if key in out:
            out[key] = run(out[key])
    if isinstance(out.get("factors"), list):
        out["factors"] = [
            dict(f, ablation_run=run(f["ablation_run"])) if isinstance(f, dict) and "ablation_run" in f else f
            for f in out["factors"]
        ]
    labels = {f"A {a}": f"A {run(a)}", f"B {b}": f"B {run(b)}"}
    ablation = out.get("ablation")
    if isinstance(ablation, dict):
        ablation = out["ablation"] = dict(ablation)
        if isinstance(ablation.get("id"), str):
            ablation["id"] = explanation_map.get(ablation["id"], ablation["id"])
        if isinstance(ablation.get("noise_runs"), list):
            ablation["noise_runs"] = [run(r) for r in ablation["noise_runs"]]
        if isinstance(ablation.get("waterfall"), list):
            ablation["waterfall"] = [
                dict(step, label=labels.get(step["label"], step["label"]))
                if isinstance(step, dict) and isinstance(step.get("label"), str)
                else step
                for step in ablation["waterfall"]
            ]
        figure = ablation.get("figure")
        if isinstance(figure, dict) and isinstance(figure.get("data"), list):
            ablation["figure"] = dict(figure, data=[_renamed_axis(trace, labels) for trace in figure["data"]])
    if isinstance(out.get("summary"), str):
        said = f"between runs {a} and {b}"  # explain.summary's sentence when nothing differs
        if out["summary"].endswith(said):
            out["summary"] = out["summary"][: -len(said)] + f"between runs {run(a)} and {run(b)}"
    if isinstance(out.get("error"), str):  # ablate's errors name the run it replays
        out["error"] = re.sub(rf"\brun {re.escape(b)}\b", lambda _: f"run {run(b)}", out["error"])
    return out


def _renamed_axis(trace: Any, labels: dict[str, str]) -> Any:
    """A plotly trace whose ``x`` categories are renamed through ``labels`` (the waterfall's A and B)."""
    if not isinstance(trace, dict) or not isinstance(trace.get("x"), list):
        return trace
    return dict(trace, x=[labels.get(x, x) if isinstance(x, str) else x for x in trace["x"]])


def _fresh(dst: sqlite3.Connection, table: str, nbytes: int, taken: set[str]) -> str:
    """An id free in the ledger's ``table`` and not in ``taken`` (which it joins)."""
    while True:
        candidate = secrets.token_hex(nbytes)
        if candidate not in taken and not dst.execute(f"SELECT 1 FROM {table} WHERE id = ?", (candidate,)).fetchone():
            taken.add(candidate)
            return candidate


def _insert(
    dst: sqlite3.Connection,
    table: str,
    rows: Iterator[tuple],
    remap: dict[str, dict[str, str]],
    drop: tuple[str, ...] = (),
) -> int:
    """Insert ``rows`` (all columns of ``table``, in order) into the ledger, renaming ids through
    ``remap``; ``drop`` leaves out columns the target assigns itself (INTEGER PRIMARY KEY).
    A row whose key is already there stays as it was: an import never replaces a local row.

    Returns:
        The number of rows inserted.
    """
    cols = _columns(table)
    keep = [i for i, c in enumerate(cols) if c not in drop]
    renames = [(i, remap[c]) for i, c in enumerate(cols) if remap.get(c)]

    def out() -> Iterator[list]:
        for values in rows:
            row = list(values)
            for i, mapping in renames:
                row[i] = mapping.get(row[i], row[i])
            yield [row[i] for i in keep]

    quoted = ", ".join(f'"{cols[i]}"' for i in keep)
    sql = f'INSERT OR IGNORE INTO "{table}" ({quoted}) VALUES ({",".join("?" * len(keep))})'
    return dst.executemany(sql, out() if renames or drop else rows).rowcount
