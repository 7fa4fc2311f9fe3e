"""Read queries over a ledger, on a read-only connection.

Every reader resolves a run still marked ``running`` whose kernel is gone
(its pid is dead on this host, or its heartbeat is stale elsewhere) as
``crashed``, so a killed kernel shows crashed everywhere without anyone
writing it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Iterable, cast

from ..errors import InvalidArgument, RunNotFound
from . import connect, resolve_path, sprint_of
from .records import MetricSummary, RunRecord
from .schema import CRASHED, FRAME_CHANGE_TRIGGERS, FRAME_STAMP_TRIGGERS, RUN_STATUSES, RUNNING

STALE_HEARTBEAT_S = 600.0  # for sessions on another host
SYSTEM_FIELDS = (
    "gpu_util_mean",
    "gpu_util_max",
    "gpu_mem_peak_mb",
    "energy_wh",
    "gpu_count",
    "cpu_mean",
    "rss_peak_mb",
    "idle_hint",
)
RUN_FIELDS = (
    "id",
    "name",
    "status",
    "sprint",
    "kind",
    "start_time",
    "end_time",
    "session_id",
    "error",
    "note",
    "starred",
    "updated",
    "replay_of",
) + SYSTEM_FIELDS
STATUSES = RUN_STATUSES  # the statuses a listing filters by (the ledger's own, crashed included)
SORT_KEYS = {  # the only ORDER BY expressions a caller can pick
    "start_time": "start_time",
    "end_time": "end_time",
    "name": "name",
    "status": "status",
    "duration": "(coalesce(end_time, start_time) - start_time)",
    "relevance": "start_time",  # a search's bm25 rank when it searches words (see Reader.query_runs), else newest
}
SEARCH_TABLES = ("runs_fts", "run_tags_fts", "params_fts", "code_fts")  # the full-text index (schema 8)


_METRIC_COUNTS: dict[tuple[str, str | None], tuple[tuple, dict]] = {}  # see Reader.sprint_metric_counts
_NAN = float("nan")
_SEP = "\x1f"  # the unit separator: joins run ids in one text (see Reader.run_columns)
FEW_RUNS = 2000  # up to this many runs, Reader.run_columns reads their rows by id
MAX_SQL_INT = 2**63 - 1  # SQLite's largest integer: bigger limits and offsets are clamped to it
_DIGITS = re.compile(r"[0-9]+")


# a run matches a search when its id, name, status, note, a tag or a param contains the text
# (LIKE is case-insensitive for ASCII); a text with "=" matches a param as key=value, checked
# as "key ends with the left part, value starts with the right part" (3x faster than matching
# the concatenation over every param row)
SEARCH_RUN = (
    "id LIKE ? ESCAPE '\\' OR coalesce(name, '') LIKE ? ESCAPE '\\' OR status LIKE ? ESCAPE '\\'"
    " OR coalesce(note, '') LIKE ? ESCAPE '\\'"
    " OR id IN (SELECT run_id FROM run_tags WHERE tag LIKE ? ESCAPE '\\')"
)
SEARCH_PARAM_PAIR = (
    "id IN (SELECT run_id FROM params WHERE key LIKE ? ESCAPE '\\'"
    " AND trim(coalesce(value, ''), '\"') LIKE ? ESCAPE '\\' OR value LIKE ? ESCAPE '\\')"
)
SEARCH_PARAM_TEXT = "id IN (SELECT run_id FROM params WHERE key LIKE ? ESCAPE '\\' OR value LIKE ? ESCAPE '\\')"


def search_where(text: str, fts: bool = False) -> tuple[str, list[str]]:
    """The WHERE clause (and its arguments) of :meth:`Reader.query_runs`'s ``search``.

    With ``fts`` (the ledger has the full-text index of schema 8) a text of words is matched through
    :func:`search_hits`, which also sees cell code; ``key=value`` and texts with a term under 3
    characters (too short for the trigram index) are matched by LIKE over the run and param rows.
    """
    hits = search_hits(text) if fts else None
    if hits is not None:
        return f"id IN (SELECT run_id FROM ({hits[0]}))", hits[1]
    anywhere = "%" + _escape_like(text) + "%"
    args = [anywhere] * SEARCH_RUN.count("?")
    if "=" in text:
        key, _, value = text.partition("=")
        return (
            f"({SEARCH_RUN} OR {SEARCH_PARAM_PAIR})",
            args + ["%" + _escape_like(key), _escape_like(value) + "%", anywhere],
        )  # or "=" inside a value
    return f"({SEARCH_RUN} OR {SEARCH_PARAM_TEXT})", args + [anywhere, anywhere]


MIN_TERM = 3  # the trigram index matches substrings of 3 characters or more
_TERMS = re.compile(r'"([^"]+)"|(\S+)')
# where a search term can be found, each source giving (run_id, rank): FTS5's rank is bm25, lower is better.
# A run's code is the code of the cells executed in it (cells.run_id); a set-up cell counts for the run
# it ran in, not for the later runs whose lineage it is part of. A sweep cell is stored under the last
# `with nbexp.run(...)` block it opened, and counts for every block it opened (kind context, started while it ran).
_SEARCH_SOURCES = (
    "SELECT r.id AS run_id, f.rank AS rank FROM runs_fts f JOIN runs r ON r.rowid = f.rowid WHERE runs_fts MATCH ?",
    "SELECT t.run_id, f.rank FROM run_tags_fts f JOIN run_tags t ON t.rowid = f.rowid WHERE run_tags_fts MATCH ?",
    "SELECT p.run_id, f.rank FROM params_fts f JOIN params p ON p.rowid = f.rowid WHERE params_fts MATCH ?",
    "SELECT c.run_id, f.rank FROM code_fts f JOIN code ON code.rowid = f.rowid JOIN cells c ON c.code_hash = code.hash"
    " WHERE code_fts MATCH ? AND c.run_id IS NOT NULL",
    "SELECT r.id AS run_id, f.rank FROM code_fts f JOIN code ON code.rowid = f.rowid"
    " JOIN cells c ON c.code_hash = code.hash JOIN runs r ON r.start_time BETWEEN c.start"
    " AND c.start + coalesce(c.duration, 1e308) AND +r.session_id = c.session_id AND r.kind = 'context'"
    " WHERE code_fts MATCH ?",  # runs by start (runs_start), not all of a session's
    "SELECT id AS run_id, -100.0 AS rank FROM runs WHERE id >= ? AND id < ?",  # an id prefix: the best match there is
)


def search_terms(text: str) -> list[str]:
    """The terms of a search: words split at spaces, a ``"quoted phrase"`` kept whole."""
    return [a or b for a, b in _TERMS.findall(text)]


def search_hits(text: str) -> tuple[str, list[str]] | None:
    """A query giving ``(run_id, rank)`` for each run matching every term of ``text`` somewhere (its name,
    note, status, a tag, a param key or value, the code of its cells, an id prefix), best first by the sum
    over terms of each term's best bm25; None when ``text`` is not words the full-text index can take
    (``key=value``, a term under 3 characters), for :func:`search_where`'s LIKE.

    Each term goes to FTS5 as one quoted string (its quotes doubled), so no text is FTS5 syntax
    (``OR``, ``NEAR(``, ``*``, ``-``, ``"``): a term matches as a substring, case-insensitively.
    """
    terms = search_terms(text)
    if not terms or "=" in text or any(len(t) < MIN_TERM for t in terms):
        return None
    parts, args = [], []
    for i, term in enumerate(terms):
        phrase = '"' + term.replace('"', '""') + '"'
        parts += [f"SELECT {i} AS term, run_id, rank FROM ({source})" for source in _SEARCH_SOURCES]
        args += [phrase] * (len(_SEARCH_SOURCES) - 1) + [term, term + "\U0010ffff"]
    union = " UNION ALL ".join(parts)
    sql = (
        f"SELECT run_id, sum(best) AS rank FROM (SELECT term, run_id, min(rank) AS best FROM ({union}) "
        f"GROUP BY term, run_id) GROUP BY run_id HAVING count(*) = {len(terms)}"
    )
    return sql, args


def _escape_like(text: str) -> str:
    """``text`` for a LIKE pattern, its own % and _ taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _nan(v: float | None) -> float:
    return float("nan") if v is None else v


def parse_since(text: str | float | None) -> float | None:
    """A time from ``30m``, ``12h``, ``2d``, ``1w`` (ago), a date ``YYYY-MM-DD`` or epoch seconds."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        return float(text)
    units = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    t = str(text).strip()
    if t[-1:] in units and t[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(t[:-1]) * units[t[-1]]
    try:
        return dt.datetime.fromisoformat(t).timestamp()
    except ValueError:
        raise InvalidArgument(f"since {text!r}: use 30m, 12h, 2d, 1w or a date YYYY-MM-DD") from None


def parse_sprint(sprint: str | None, conn: sqlite3.Connection | None = None) -> str | None:
    """A sprint id (``YYYY-MM-DD``) from ``today``, ``yesterday``, a date or a
    sprint name; None for ``all`` or None."""
    if sprint in (None, "", "all"):
        return None
    now = time.time()
    if sprint == "today":
        return sprint_of(now)
    if sprint == "yesterday":
        return (dt.date.fromisoformat(sprint_of(now)) - dt.timedelta(days=1)).isoformat()
    assert sprint is not None
    try:
        return dt.date.fromisoformat(sprint).isoformat()
    except ValueError:
        pass
    if conn is not None:
        row = conn.execute("SELECT id FROM sprints WHERE name = ? ORDER BY id DESC LIMIT 1", (sprint,)).fetchone()
        if row:
            return row[0]
    raise InvalidArgument(f"unknown sprint {sprint!r}: use today, yesterday, all, a date YYYY-MM-DD or a sprint name")


class Reader:
    """Read-only view of one ledger. Use as a context manager.

    Example:
        >>> with Reader(path) as r:                      # doctest: +SKIP
        ...     r.list_runs(sprint="today")
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = resolve_path(path)
        self.conn = connect(self.path, readonly=True)
        self.conn.row_factory = sqlite3.Row
        self._alive: dict[str, bool] = {}
        self._runs: dict[str, RunRecord] = {}  # run() results: a Reader lives for one request
        self._flows: dict[str, _Flow] = {}  # code hash -> what its text reads and binds (_flow), parsed once
        self._indexed: bool | None = None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- liveness -----------------------------------------------------------------
    def session_alive(self, session_id: str) -> bool:
        if session_id in self._alive:
            return self._alive[session_id]
        row = self.conn.execute(
            "SELECT host, pid, pid_started, heartbeat, ended FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        alive = row is not None and row["ended"] is None and _process_alive(row)
        self._alive[session_id] = alive
        return alive

    def _effective(self, run: dict) -> dict:
        if run["status"] == RUNNING and not self.session_alive(run["session_id"]):
            run["status"] = CRASHED
        return run

    def has_search_index(self) -> bool:
        """Whether the ledger has the full-text index (a bundle file read as a ledger has none)."""
        if self._indexed is None:
            marks = ",".join("?" * len(SEARCH_TABLES))
            sql = f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ({marks})"
            found = self.conn.execute(sql, SEARCH_TABLES).fetchone()[0]
            self._indexed = found == len(SEARCH_TABLES)
        return self._indexed

    # -- runs ---------------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """A full run id from an id, a unique prefix, ``latest``/``latest~N``, ``tag:NAME``
        (the newest run with that tag) or a unique name.

        Raises:
            RunNotFound: nothing matches, or several runs do.
            InvalidArgument: a malformed ``latest~N`` (N not a whole number, e.g. ``latest~-1``).
        """
        ref = str(ref).strip()
        if ref.startswith("tag:"):
            row = self.conn.execute(
                "SELECT r.id FROM runs r JOIN run_tags t ON t.run_id = r.id WHERE t.tag = ? "
                "ORDER BY r.start_time DESC LIMIT 1",
                (ref[4:],),
            ).fetchone()
            if row is None:
                raise RunNotFound(f"no run tagged {ref[4:]!r} in {self.path}")
            return row[0]
        if ref == "latest" or ref.startswith("latest~"):
            # N: ASCII digits only (int() would take "-1", "+1", "1_0" and other scripts' digits);
            # a bare "latest~" is latest~1, as HEAD~ is HEAD~1 in git
            digits = ref[7:] or ("1" if ref == "latest~" else "0")
            if not _DIGITS.fullmatch(digits):
                raise InvalidArgument(
                    f"bad run reference {ref!r}: use latest or latest~N, N a whole number (0 or more)"
                )
            back = int(digits)
            row = (
                self.conn.execute(  # past SQLite's integers no ledger has that many runs
                    "SELECT id FROM runs ORDER BY start_time DESC, rowid DESC LIMIT 1 OFFSET ?", (back,)
                ).fetchone()
                if back <= MAX_SQL_INT
                else None
            )
            if row is None:
                raise RunNotFound(f"no run {ref!r}: the ledger {self.path} has fewer runs")
            return row[0]
        rows = (
            self.conn.execute(
                "SELECT id FROM runs WHERE id >= ? AND id < ? LIMIT 5", (ref, ref + "\U0010ffff")
            ).fetchall()
            if ref
            else []
        )
        if not rows:
            rows = self.conn.execute("SELECT id FROM runs WHERE name = ? LIMIT 5", (ref,)).fetchall()
        if not rows:
            raise RunNotFound(f"no run matches {ref!r} in {self.path}")
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows)
            raise RunNotFound(f"{ref!r} is ambiguous: it matches runs {ids}; give more of the id")
        return rows[0][0]

    def list_runs(
        self,
        sprint: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
        data: str | None = None,
        **kw: Any,
    ) -> list[dict]:
        """Runs newest first, each a dict with ``params``, ``metrics`` (summaries),
        ``data`` (variable name to fingerprint) and ``tags``. See :meth:`query_runs`."""
        return self.query_runs(sprint=sprint, status=status, limit=limit, params=params, data=data, **kw)[0]

    def query_runs(
        self,
        sprint: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
        data: str | None = None,
        tag: str | None = None,
        offset: int = 0,
        sort: str | None = None,
        descending: bool = True,
        since: float | None = None,
        started_after: float | None = None,
        search: str | None = None,
        query: str | None = None,
        details: bool = True,
    ) -> tuple[list[dict], int]:
        """A page of runs and the number of runs matching in all.

        Args:
            sprint: today, yesterday, all, a date or a sprint name.
            status: one of :data:`STATUSES` (crashed is resolved at read time).
            limit / offset: the page.
            params: keep runs whose params have these values (typed).
            data: keep runs that used data with this fingerprint (or prefix).
            tag: keep runs with this tag.
            sort: one of :data:`SORT_KEYS`; descending by default. None: ``relevance`` with a search, else
                ``start_time``. ``relevance`` puts the best bm25 match first when the search is words
                (ties newest first), and sorts by start time otherwise.
            since: only runs changed after this change stamp (:meth:`change_cursor`): running runs always come,
                and so do runs crashed at read time (stored running; the server's poll keeps each death's news to
                one poll, see ``nbexp.server.handlers``).
            started_after: only runs started at or after this time (seconds since the epoch).
            search: only runs whose name, status, note, tags, params or cell code contain each word of this
                text (a ``"quoted phrase"`` as one), case-insensitively, or whose id starts with it; ``key=value``
                matches a param (key ending with ``key``, value starting with ``value``). A word under 3
                characters makes the whole text match by substring over id, name, status, note, tags and
                params, but not code (see :func:`search_hits`).
            query: only runs matching a query of the runs table's language
                (``metrics.auc > 0.9 and params.C < 1``, see :mod:`nbexp.ledger.query`).
            details: also read each run's ``params``, ``metrics``, ``data`` and ``tags`` (False: the run rows
                only, for :meth:`run_columns`).
        """
        if sort is None:
            sort = "relevance" if search else "start_time"
        if status is not None and status not in STATUSES:
            raise InvalidArgument(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise InvalidArgument(f"{name} must be a non-negative int; got {value!r}")
        if limit is not None:
            limit = min(limit, MAX_SQL_INT)  # more than SQLite can count: no limit at all
        offset = min(offset or 0, MAX_SQL_INT)  # ... past every run: an empty page
        if sort not in SORT_KEYS:
            raise InvalidArgument(f"unknown sort key {sort!r}: one of {', '.join(SORT_KEYS)}")
        where: list[str] = []
        args: list[Any] = []
        sprint_id = parse_sprint(sprint, self.conn)
        if sprint_id:
            where.append("sprint = ?")
            args.append(sprint_id)
        if status in ("running", "crashed"):
            where.append("status IN ('running', 'crashed')")
        elif status:
            where.append("status = ?")
            args.append(status)
        if data:
            where.append("id IN (SELECT run_id FROM run_data WHERE fingerprint >= ? AND fingerprint < ?)")
            args += [data, data + "~"]
        if tag:
            where.append("id IN (SELECT run_id FROM run_tags WHERE tag = ?)")
            args.append(tag)
        if since is not None:
            where.append("(updated > ? OR status = 'running')")
            args.append(float(since))
        if started_after is not None:
            where.append("start_time >= ?")
            args.append(float(started_after))
        if query:
            from .query import compile_query, context

            clause, query_args = compile_query(query, context(self))
            where.append(f"({clause})")
            args += query_args
        hits = None
        if search:
            if not isinstance(search, str):
                raise InvalidArgument(f"search must be text; got {search!r}")
            hits = search_hits(search) if self.has_search_index() else None
            if hits is None:
                clause, clause_args = search_where(search)
                where.append(clause)
                args += clause_args
        # a search is costly to evaluate: count the matches in the same pass (a window function)
        counted = bool(search) and not (params or status in ("running", "crashed"))
        sql = f"SELECT {', '.join(RUN_FIELDS)}{', count(*) OVER () AS _total' if counted else ''} FROM runs"
        if hits is not None:  # the matching runs and their rank, joined: one pass over the index
            sql += f" JOIN ({hits[0]}) AS hits ON hits.run_id = runs.id"
            args = hits[1] + args
        if where:
            sql += " WHERE " + " AND ".join(where)
        # the total counts the matching runs, not the sorted listing (sorting every run to count them cost
        # 100 ms at 100,000 runs)
        count_sql = "SELECT count(*) FROM runs" + sql.partition(" FROM runs")[2]
        direction = "DESC" if descending else "ASC"
        order = f"{SORT_KEYS[sort]} {direction}"
        if sort == "relevance" and hits is not None:
            order = f"hits.rank {'ASC' if descending else 'DESC'}"  # bm25: lower is better
        sql += f" ORDER BY {order}, start_time {direction}, runs.rowid {direction}"
        # Paging in SQL unless a filter must look at every run first.
        post_filter = bool(params) or status in ("running", "crashed")
        total: int | None = None
        count_args = list(args)
        if not post_filter:
            if not counted:
                total = self.conn.execute(count_sql, count_args).fetchone()[0]
            if limit is not None or offset:
                sql += " LIMIT ? OFFSET ?"
                args += [-1 if limit is None else limit, offset]
        cur = self.conn.cursor()
        cur.row_factory = None  # a dict from a plain row: 5x faster than from sqlite3.Row (100,000 runs: 2 s)
        cur.execute(sql, args)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur]
        if counted:
            totals = {r.pop("_total") for r in rows}
            if totals:
                total = totals.pop()
            else:  # no row: nothing matched, or the page lies past the end
                total = self.conn.execute(count_sql, count_args).fetchone()[0] if offset else 0
        runs = [self._effective(r) for r in rows]
        if status:
            runs = [r for r in runs if r["status"] == status]
        if params:
            all_params = self.params([r["id"] for r in runs])
            runs = [
                r
                for r in runs
                if all(_same(all_params.get(r["id"], {}).get(k, _MISSING), v) for k, v in params.items())
            ]
        if post_filter:
            total = len(runs)
            runs = runs[offset : offset + limit] if limit is not None else runs[offset:]
        if not details:
            return runs, total if total is not None else len(runs)
        return self._with_details(runs), total if total is not None else len(runs)

    def _with_details(self, runs: list[dict]) -> list[dict]:
        """``runs`` (rows of the runs table), each given its ``params``, ``metrics`` summaries,
        ``data`` fingerprints and ``tags``, read for all of them at once."""
        ids = [r["id"] for r in runs]
        all_params, summaries = self.params(ids), self.metric_summaries(ids)
        fingerprints, tags = self.data_fingerprints(ids), self.tags(ids)
        for r in runs:
            r["params"] = all_params.get(r["id"], {})
            r["metrics"] = summaries.get(r["id"], {})
            r["data"] = fingerprints.get(r["id"], {})
            r["tags"] = tags.get(r["id"], [])
        return runs

    def runs_by_id(self, run_ids: list[str]) -> list[dict]:
        """The runs ``run_ids`` in that order, each as :meth:`query_runs` gives it (``params``, ``metrics``
        summaries, ``data`` fingerprints, ``tags``); ids the ledger lacks are left out. The sidebar lists a
        page of the runs table (its query and sort, :func:`nbexp.ledger.query.table`) with what its rows show."""
        found = {
            row[0]: dict(zip(RUN_FIELDS, row))
            for row in self._for_runs(f"SELECT {', '.join(RUN_FIELDS)} FROM runs WHERE id IN ({{ids}})", run_ids)
        }
        return self._with_details([self._effective(found[rid]) for rid in run_ids if rid in found])

    def tags(self, run_ids: Iterable[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for run_id, tag in self._for_runs(
            "SELECT run_id, tag FROM run_tags WHERE run_id IN ({ids}) ORDER BY tag", run_ids
        ):
            out.setdefault(run_id, []).append(tag)
        return out

    def change_cursor(self) -> float:
        """The latest change stamp of any run (0 for an empty ledger)."""
        return max(self.conn.execute("SELECT coalesce(max(updated), 0) FROM runs").fetchone()[0], 0.0)

    def dead_sessions(self) -> set[str]:
        """The sessions with runs still stored ``running`` whose kernel is gone (readers show those runs crashed,
        though nothing wrote them). Few: read through the partial index on running runs."""
        rows = self.conn.execute("SELECT DISTINCT session_id FROM runs WHERE status = 'running'").fetchall()
        return {r[0] for r in rows if not self.session_alive(r[0])}

    def sprints(self) -> list[dict]:
        """Sprints with runs, newest first: id, name, hypothesis, conclusion, counts."""
        rows = self.conn.execute(
            """SELECT r.sprint AS id, s.name, s.hypothesis, s.conclusion, count(*) AS runs,
                      sum(r.status = 'running') AS running, min(r.start_time) AS first_start
               FROM runs r LEFT JOIN sprints s ON s.id = r.sprint GROUP BY r.sprint ORDER BY r.sprint DESC"""
        ).fetchall()
        return [dict(r) for r in rows]

    def run(self, ref: str) -> RunRecord:
        """One run with params, metric summaries, tags, session and lineage."""
        rid = self.resolve(ref)
        if rid in self._runs:
            return self._runs[rid]
        row = self.conn.execute(f"SELECT {', '.join(RUN_FIELDS)} FROM runs WHERE id = ?", (rid,)).fetchone()
        run = cast(RunRecord, self._effective(dict(row)))
        run["params"] = self.params([rid]).get(rid, {})
        run["metrics"] = self.metric_summaries([rid]).get(rid, {})
        run["tags"] = self.tags([rid]).get(rid, [])
        sess = self.conn.execute("SELECT * FROM sessions WHERE id = ?", (run["session_id"],)).fetchone()
        run["session"] = dict(sess) if sess else {}
        run["lineage"] = self.lineage(rid)
        run["data"] = self.data(rid)
        run["events"] = [
            dict(e)
            for e in self.conn.execute(
                "SELECT time, level, cause, message FROM events WHERE run_id = ? ORDER BY id", (rid,)
            )
        ]
        self._runs[rid] = run
        return run

    def _for_runs(self, sql: str, run_ids: Iterable[str], more: list | None = None) -> Iterable[tuple]:
        """Plain rows of ``sql`` (with ``{ids}`` for the run-id placeholders, then ``more`` bound), run ids in
        chunks."""
        cur = self.conn.cursor()
        cur.row_factory = None
        for chunk in _chunks(list(run_ids)):
            yield from cur.execute(sql.format(ids=",".join("?" * len(chunk))), chunk + (more or []))

    def params(self, run_ids: Iterable[str], keys: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Each run's params by key, typed; only ``keys`` when given."""
        out: dict[str, dict[str, Any]] = {}
        wanted = None if keys is None else sorted(keys)
        only = "" if wanted is None else f" AND key IN ({','.join('?' * len(wanted))})"
        for run_id, key, value, kind in self._for_runs(
            f"SELECT run_id, key, value, type FROM params WHERE run_id IN ({{ids}}){only} ORDER BY key", run_ids, wanted
        ):
            out.setdefault(run_id, {})[key] = _decode(value, kind)
        return out

    def frame_stamp(self) -> bytes | None:
        """The stamp of what :meth:`query_runs` and :meth:`run_columns` read: a new random value after any write to
        the runs, their params, metric summaries, tags or data fingerprints (schema 14's triggers); None for a
        ledger without it or without one of the triggers that set it (a bundle read as a ledger: a write to it would
        leave the stamp as it was)."""
        marks = ",".join("?" * len(FRAME_STAMP_TRIGGERS))
        sql = f"SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})"
        if self.conn.execute(sql, FRAME_STAMP_TRIGGERS).fetchone()[0] != len(FRAME_STAMP_TRIGGERS):
            return None
        row = self.conn.execute("SELECT stamp FROM frame_stamp WHERE id = 1").fetchone()
        return None if row is None else bytes(row[0])

    def frame_mark(self) -> tuple[bytes, int] | None:
        """The :meth:`frame_stamp` and the change sequence (schema 15: one more at every row written to the runs,
        their params, metric summaries or data fingerprints); None for a ledger without them or lacking one of the
        triggers that keep them (a bundle read as a ledger), whose stored frame cannot be trusted."""
        stamp = self.frame_stamp()
        if stamp is None:
            return None
        marks = ",".join("?" * len(FRAME_CHANGE_TRIGGERS))
        sql = f"SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})"
        if self.conn.execute(sql, FRAME_CHANGE_TRIGGERS).fetchone()[0] != len(FRAME_CHANGE_TRIGGERS):
            return None
        return stamp, self.conn.execute("SELECT seq FROM frame_stamp WHERE id = 1").fetchone()[0]

    def stored_frame(self) -> tuple[int, bytes, str, list[bytes]] | None:
        """The frame stored in the ledger (schema 15, see :mod:`nbexp.api`): its change sequence, its stamp, its
        header (JSON text) and its parts; None when none is stored."""
        row = self.conn.execute("SELECT seq, stamp, header FROM frame_cache WHERE id = 1").fetchone()
        if row is None:
            return None
        parts = [bytes(p) for (p,) in self.conn.execute("SELECT data FROM frame_cache_parts ORDER BY pos")]
        return row[0], bytes(row[1]), row[2], parts

    def changed_since(self, seq: int) -> set[str]:
        """The runs written (inserted, changed, deleted, or a param, metric summary or data fingerprint of theirs)
        after the change sequence ``seq`` (:meth:`frame_mark`)."""
        return {r[0] for r in self.conn.execute("SELECT run_id FROM frame_changes WHERE seq > ?", (seq,))}

    def frame_order(self) -> list[str]:
        """Every run id in the order of :meth:`query_runs` without filters (newest first, ties by rowid), along the
        start-time index."""
        cur = self.conn.cursor()
        cur.row_factory = None
        return [r[0] for r in cur.execute("SELECT id FROM runs ORDER BY start_time DESC, rowid DESC")]

    def stored_runs(self, run_ids: Iterable[str]) -> list[dict]:
        """The rows of the runs ``run_ids`` (those the ledger has) with their status as stored (a run whose kernel
        died stays ``running``: :meth:`session_alive` decides at read time)."""
        return [
            dict(zip(RUN_FIELDS, row))
            for row in self._for_runs(f"SELECT {', '.join(RUN_FIELDS)} FROM runs WHERE id IN ({{ids}})", run_ids)
        ]

    def run_columns_of(self, run_ids: list[str]) -> tuple[dict[str, tuple], dict[str, tuple], dict[str, tuple]]:
        """:meth:`run_columns` of ``run_ids`` read by id, each value as the many-runs read gives it (a param's JSON
        decoded as is: NaN stays a float), for a stored frame brought up to date run by run."""
        params: dict[str, tuple] = {}
        for rid, key, value in self._for_runs("SELECT run_id, key, value FROM params WHERE run_id IN ({ids})", run_ids):
            params.setdefault(key, ([], [], False))
            params[key][0].append(rid)
            params[key][1].append(json.loads(value))
        metrics: dict[str, tuple] = {}
        for rid, key, last in self._for_runs(
            "SELECT run_id, key, last FROM metric_summaries WHERE run_id IN ({ids})", run_ids
        ):
            metrics.setdefault(key, ([], []))
            metrics[key][0].append(rid)
            metrics[key][1].append(last)
        data: dict[str, tuple] = {}
        for rid, name, fp in self._for_runs(
            "SELECT run_id, name, fingerprint FROM run_data WHERE run_id IN ({ids})", run_ids
        ):
            data.setdefault(name, ([], []))
            data[name][0].append(rid)
            data[name][1].append(fp)
        return params, metrics, data

    @contextmanager
    def snapshot(self) -> Iterator[Reader]:
        """One read transaction: every read inside sees the ledger as it was at the first (a frame read in parts
        never mixes two states, and matches the :meth:`frame_stamp` read with it)."""
        self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            self.conn.execute("ROLLBACK")  # read only: nothing to keep

    def running_sessions(self) -> dict[str, str]:
        """The runs stored as running and their sessions (whether each is still running depends on its kernel:
        :meth:`session_alive`)."""
        return dict(self.conn.execute("SELECT id, session_id FROM runs WHERE status = ?", (RUNNING,)).fetchall())

    def run_columns(self, run_ids: list[str]) -> tuple[dict[str, tuple], dict[str, tuple], dict[str, tuple]]:
        """The params, the metrics' last values and the data fingerprints of ``run_ids`` by key, for a
        DataFrame's columns: three ``{key: (run ids, values)}``, values typed as :meth:`params` reads them
        (NaN: None), runs of the ledger outside ``run_ids`` possibly included (the caller aligns them). A param's
        pair has a third item: False when a value may be a bool, a list or a dict (True: if the values make one
        numeric array, they are ints and floats only). Keys held by the same runs share one list of run ids (the
        same object).

        Many runs: SQLite gathers each key's values into one JSON array (``json_group_array`` over the
        key-ordered indexes of schema 10), so Python decodes 50 arrays rather than looping over 5,000,000
        rows (``nbexp.runs()`` at 100,000 runs: 11 s, most of it a dict per run and :func:`_decode` per value).
        """
        if len(run_ids) <= FEW_RUNS:  # few runs: their rows by id
            params: dict[str, tuple] = {}
            for rid, ps in self.params(run_ids).items():
                for k, v in ps.items():
                    params.setdefault(k, ([], [], False))
                    params[k][0].append(rid)
                    params[k][1].append(None if isinstance(v, float) and v != v else v)
            metrics: dict[str, tuple] = {}
            for rid, ms in self.metric_summaries(run_ids).items():
                for k, m in ms.items():
                    metrics.setdefault(k, ([], []))
                    metrics[k][0].append(rid)
                    metrics[k][1].append(m["last"])
            data: dict[str, tuple] = {}
            for rid, fps in self.data_fingerprints(run_ids).items():
                for k, fp in fps.items():
                    data.setdefault(k, ([], []))
                    data[k][0].append(rid)
                    data[k][1].append(fp)
            return params, metrics, data
        cur = self.conn.cursor()
        cur.row_factory = None
        split: dict[str, list[str]] = {}  # most keys are held by the same runs: their ids split once

        def ids_of(text: str) -> list[str]:
            if text not in split:
                split[text] = text.split(_SEP)
            return split[text]

        def grouped(sql: str) -> dict[str, tuple]:
            return {key: (ids_of(ids), json.loads(values)) for key, ids, values in cur.execute(sql)}

        # a param's value is stored as JSON, joined as is into an array (NaN and the infinities, no JSON
        # for SQLite, are for Python's json); the ids joined with a separator no id holds
        params = {
            # a key's values are all numbers when they parse to one numeric array and none was a bool or a list
            # (JSON's true, false or [, which a string may hold too); asking SQLite for the types cost 1 s
            key: (ids_of(ids), json.loads(values), not any(t in values[1:] for t in ("true", "false", "[", "{")))
            for key, ids, values in cur.execute(
                "SELECT key, group_concat(run_id, char(31)), '[' || group_concat(value, ',') || ']' "
                "FROM params INDEXED BY params_key GROUP BY key"
            )
        }
        # a metric's last value is a REAL: SQLite's text for it is not always the same float (json_group_array
        # keeps 15 digits: 1/3 came back as 0.333333333333333; printf('%!.17g') misses some above 1e250), so
        # each key's values come as floats, key by key along the covering index (one seek per key; ~0.3 s more
        # than the JSON at 100,000 runs)
        metrics = {}
        key = cur.execute("SELECT min(key) FROM metric_summaries").fetchone()[0]
        while key is not None:
            rows = cur.execute(
                "SELECT run_id, last FROM metric_summaries INDEXED BY metric_summaries_key WHERE key = ?", (key,)
            ).fetchall()
            metrics[key] = ([r[0] for r in rows], [r[1] for r in rows])
            key = cur.execute("SELECT min(key) FROM metric_summaries WHERE key > ?", (key,)).fetchone()[0]
        data = grouped(
            "SELECT name, group_concat(run_id, char(31)), json_group_array(fingerprint) FROM run_data GROUP BY name"
        )
        return params, metrics, data

    def metric_summaries(
        self, run_ids: Iterable[str], keys: Iterable[str] | None = None
    ) -> dict[str, dict[str, MetricSummary]]:
        """Per run and metric (only ``keys`` when given): ``last`` (the value at the highest step), ``min``,
        ``max``, ``steps`` (points) and ``nan`` count, from the summaries the writer keeps."""
        out: dict[str, dict[str, MetricSummary]] = {}
        wanted = None if keys is None else sorted(keys)
        only = "" if wanted is None else f" AND s.key IN ({','.join('?' * len(wanted))})"
        for run_id, key, count, nans, lo, hi, last, source in self._for_runs(
            "SELECT s.run_id, s.key, s.count, s.nan_count, s.min, s.max, s.last, coalesce(src.source, 'log') "
            "FROM metric_summaries s LEFT JOIN metric_sources src ON src.run_id = s.run_id AND src.key = s.key "
            f"WHERE s.run_id IN ({{ids}}){only} ORDER BY s.run_id, s.key",
            run_ids,
            wanted,
        ):
            out.setdefault(run_id, {})[key] = {
                "last": _nan(last),
                "min": _nan(lo),
                "max": _nan(hi),
                "steps": count,
                "nan": nans,
                "source": source,
            }
        return out

    def sync_states(self, within: float = 86400.0) -> list[dict]:
        """What each session's live sync to MLflow last said (``nbexp/export/sync.py``), for the sessions whose
        sync wrote in the last ``within`` seconds, newest first: ``session``, ``uri``, ``state``, ``behind``,
        ``at``, ``ended`` (the session's end, None while it runs). The column is always there: a Reader's
        :func:`~nbexp.ledger.connect` migrates an older ledger before reading it (or fails to open it)."""
        import time as _time

        out = []
        for sid, raw, ended in self.conn.execute(
            "SELECT id, sync_state, ended FROM sessions WHERE sync_state IS NOT NULL"
        ):
            try:
                state = json.loads(raw)
            except ValueError:
                continue
            if isinstance(state, dict) and float(state.get("at") or 0) >= _time.time() - within:
                out.append(
                    {"session": sid, **{k: state.get(k) for k in ("uri", "state", "behind", "at")}, "ended": ended}
                )
        return sorted(out, key=lambda x: -float(x["at"] or 0))

    def best_by_metric(self, sprint: str, metric: str, lower: bool) -> tuple[str, str | None, float] | None:
        """``(id, name, last)`` of the sprint's run with the best last value of ``metric`` (lowest when
        ``lower``; the earliest run on a tie), or None when no run of the sprint has it."""
        order = "ASC" if lower else "DESC"
        return self.conn.execute(
            "SELECT r.id, r.name, s.last FROM metric_summaries s JOIN runs r ON r.id = s.run_id "
            f"WHERE r.sprint = ? AND s.key = ? AND s.last IS NOT NULL ORDER BY s.last {order}, r.start_time LIMIT 1",
            (sprint, metric),
        ).fetchone()

    def param_sources(self, run_id: str) -> dict[str, str]:
        """Where each of a run's params came from, as recorded (``assign``, ``default``, ``config``,
        ``estimator``, ``torch``, ``explicit``, ``built``: a value a model was built with and set again before the
        training, which did not use the new one; '' when unknown)."""
        rows = self.conn.execute("SELECT key, coalesce(source, '') FROM params WHERE run_id = ?", (run_id,))
        return {key: source for key, source in rows}

    def sprint_metric_counts(self, sprint: str | None = None) -> dict[str, tuple[int, bool]]:
        """Every metric key of a sprint's runs (``all`` or None: every run) with how many runs hold it and
        whether every one of them read it from printed output: what ``analysis.metrics`` ranks, in one
        GROUP BY over the summaries (the sprint's main metric must not depend on which page was read)."""
        # two GROUP BYs, not one over a join: the join looked up a source for each of 1,000,000 summaries at
        # 100,000 runs (0.9 s, the sidebar's every first page); the counts read the key index of schema 10,
        # the printed ones start from the (few) sources (CROSS JOIN: SQLite keeps that order)
        sprint_id = parse_sprint(sprint, self.conn)
        # the counts change only when a summary or a source row is added (neither is ever deleted; a summary's
        # update keeps its row): the sidebar's every first page reads them (0.2 s at 100,000 runs) from a cache
        # keyed by the file and the tables' last row and row count (a few ms)
        try:
            st = os.stat(self.path)
            stamp: tuple | None = (st.st_dev, st.st_ino) + tuple(
                self.conn.execute(
                    "SELECT (SELECT max(rowid) FROM metric_summaries), (SELECT count(*) FROM metric_summaries), "
                    "(SELECT max(rowid) FROM metric_sources), (SELECT count(*) FROM metric_sources)"
                ).fetchone()
            )
        except OSError:
            stamp = None
        cache_key = (str(self.path), sprint_id)
        cached = _METRIC_COUNTS.get(cache_key)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return dict(cached[1])
        in_sprint = " AND s.run_id IN (SELECT id FROM runs WHERE sprint = ?)" if sprint_id else ""
        args = [sprint_id] if sprint_id else []
        counts = dict(
            self.conn.execute(f"SELECT s.key, count(*) FROM metric_summaries s WHERE 1{in_sprint} GROUP BY s.key", args)
        )
        printed = dict(
            self.conn.execute(
                "SELECT s.key, count(*) FROM metric_sources src CROSS JOIN metric_summaries s ON s.run_id = src.run_id "
                f"AND s.key = src.key WHERE src.source = 'stdout'{in_sprint} GROUP BY s.key",
                args,
            )
        )
        out = {key: (n, printed.get(key, 0) == n) for key, n in counts.items()}
        if stamp is not None:
            if len(_METRIC_COUNTS) >= 64:  # ledgers x sprints a server has shown: forget the oldest
                _METRIC_COUNTS.pop(next(iter(_METRIC_COUNTS)))
            _METRIC_COUNTS[cache_key] = (stamp, dict(out))
        return out

    def run_tables(self, run_id: str) -> list[dict]:
        """The result tables a run kept, by name: ``name``, ``source``, ``columns``, ``rows``."""
        return [
            {"name": name, "source": source, "columns": json.loads(columns), "rows": json.loads(rows)}
            for name, source, columns, rows in self.conn.execute(
                "SELECT name, source, columns, rows FROM run_tables WHERE run_id = ? ORDER BY name", (run_id,)
            )
        ]

    def outputs(self, run_id: str) -> list[dict]:
        """What a run's cells showed, per cell execution in order: ``cell_key``, ``start``,
        ``execution_count`` and ``outputs`` (each ``seq``, ``kind`` display/result/stdout, ``mime``,
        ``hash``, ``size``); the content itself through :meth:`blob`."""
        cells: dict[tuple, dict] = {}
        for r in self.conn.execute(
            """SELECT o.session_id, o.cell_key, o.start, o.seq, o.kind, o.mime, o.hash, o.size, c.execution_count
               FROM cell_outputs o LEFT JOIN cells c
                 ON c.session_id = o.session_id AND c.start = o.start AND c.cell_key = o.cell_key
               WHERE o.run_id = ? ORDER BY o.start, o.seq""",
            (run_id,),
        ):
            cell = cells.setdefault(
                (r["session_id"], r["start"], r["cell_key"]),
                {
                    "cell_key": r["cell_key"],
                    "start": r["start"],
                    "execution_count": r["execution_count"],
                    "outputs": [],
                },
            )
            cell["outputs"].append({k: r[k] for k in ("seq", "kind", "mime", "hash", "size")})
        return list(cells.values())

    def artifacts(self, run_id: str) -> list[dict]:
        """The files and objects a run logged: ``name, path, size, sha256, stored, time``."""
        return [
            dict(r, stored=bool(r["stored"]))
            for r in self.conn.execute(
                "SELECT name, path, size, sha256, stored, time FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)
            )
        ]

    def blob(self, digest: str) -> dict | None:
        """Stored content by its SHA-256 (hex): ``{"hash", "mime", "size", "data"}``, None if absent."""
        row = self.conn.execute("SELECT hash, mime, size, data FROM blobs WHERE hash = ?", (digest,)).fetchone()
        return dict(row) if row else None

    def metric_series(self, run_id: str, key: str | None = None) -> list[dict]:
        """Every point of a run (or of one metric), in step order; NaN read back as NaN."""
        sql = "SELECT key, step, value, wall FROM metrics WHERE run_id = ?"
        args: list[Any] = [run_id]
        if key:
            sql += " AND key = ?"
            args.append(key)
        return [
            {"key": r[0], "step": r[1], "value": _nan(r[2]), "wall": r[3]}
            for r in self.conn.execute(sql + " ORDER BY key, step, rowid", args)
        ]

    def data(self, run_id: str) -> list[dict]:
        """The data objects a run's cells used: ``name, fingerprint, role, kind, shape, summary``."""
        rows = self.conn.execute(
            """SELECT rd.name, rd.fingerprint, rd.role, d.kind, d.shape, d.sampled, d.exact_fingerprint,
                      d.summary FROM run_data rd LEFT JOIN datasets d ON d.fingerprint = rd.fingerprint
               WHERE rd.run_id = ? ORDER BY rd.name""",
            (run_id,),
        ).fetchall()
        out = []
        for r in rows:
            item = dict(r)
            item["summary"] = json.loads(r["summary"]) if r["summary"] else None
            item["shape"] = json.loads(r["shape"]) if r["shape"] else None
            out.append(item)
        return out

    def data_fingerprints(self, run_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for run_id, name, fp in self._for_runs(
            "SELECT run_id, name, fingerprint FROM run_data WHERE run_id IN ({ids})", run_ids
        ):
            out.setdefault(run_id, {})[name] = fp
        return out

    def system_series(self, run_id: str) -> tuple[list[dict], list[dict]]:
        """``(host_rows, gpu_rows)``: the system samples of a run's session taken
        between the run's start and end (now, while it runs)."""
        run = self.conn.execute("SELECT session_id, start_time, end_time FROM runs WHERE id = ?", (run_id,)).fetchone()
        if run is None:
            return [], []
        args = (run["session_id"], run["start_time"], run["end_time"] or float("inf"))
        host = [
            dict(r)
            for r in self.conn.execute(
                "SELECT time, proc_cpu, proc_rss_mb, proc_threads, sys_cpu, sys_mem FROM host_samples "
                "WHERE session_id = ? AND time BETWEEN ? AND ? ORDER BY time",
                args,
            )
        ]
        gpus = [
            dict(r)
            for r in self.conn.execute(
                "SELECT time, gpu, util, mem_util, mem_used_mb, mem_total_mb, power_w, power_limit_w, temp_c, "
                "sm_clock_mhz, proc_mem_mb FROM gpu_samples WHERE session_id = ? AND time BETWEEN ? AND ? "
                "ORDER BY time, gpu",
                args,
            )
        ]
        return host, gpus

    def metric_points(self, run_id: str, key: str) -> tuple[list, list, list]:
        """``(steps, values, walls)`` of one metric in step order; NaN read back as NaN.
        Lists rather than dicts: a figure may read a million points."""
        cur = self.conn.cursor()
        cur.row_factory = None
        rows = cur.execute(
            "SELECT step, value, wall FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, rowid", (run_id, key)
        ).fetchall()  # the index order: no sort
        if not rows:
            return [], [], []
        steps, values, walls = (list(col) for col in zip(*rows))
        return steps, [_NAN if v is None else v for v in values], walls

    def lineage(self, run_id: str) -> list[dict]:
        """The run's code: the latest version of each cell executed in its session
        up to the run's end, in execution order moved only as far as needed for every
        name to be defined before a cell reads it (see :func:`_define_before_use`).

        A re-run ends where the next one opens, at the start of the cell that opened it (the edited
        hyperparameter, the re-executed training), which is the next run's, so its evaluation cells count: an
        evaluation re-run after the training is taken in its new version, not the first pass's.

        A run that executed cells of its own (``cells.run_id``) ends, for its code, with the last of them: the
        cells that ran after it while it stayed open were other runs' (a sweep's ``with nbexp.run(...)``
        blocks), and none of its own read what they did. Cells of other runs between its own stay: its later
        cells may read them.

        A run that trained leaves out the cells run after its training that bound again what the training read
        (see :func:`_after_training`): without cell ids, the data filter edited and re-run before the training
        ran again.
        """
        run = self.conn.execute("SELECT session_id, end_time FROM runs WHERE id = ?", (run_id,)).fetchone()
        if run is None:
            return []
        end = run["end_time"] if run["end_time"] is not None else float("inf")
        last = self.conn.execute(
            "SELECT max(start) FROM cells WHERE run_id = ? AND start < ?", (run_id, end)
        ).fetchone()[0]  # its last own cell
        rows = self.conn.execute(
            """SELECT c.cell_key, c.execution_count, c.start, c.duration, c.status, c.code_hash, c.cpu_mean,
                      c.gpu_util_mean, c.gpu_mem_peak_mb, c.idle_hint, code.source, c.run_id, c.n_points
               FROM cells c JOIN code ON code.hash = c.code_hash
               WHERE c.session_id = ? AND c.start < ? AND c.start <= ? ORDER BY c.start, c.id""",
            (run["session_id"], end, float("inf") if last is None else last),
        ).fetchall()
        cells = [dict(r) for r in rows]
        after = _after_training(run_id, cells, [self._flow_of(c["code_hash"], c["source"]) for c in cells])
        latest: dict[str, dict] = {}
        for i, c in enumerate(cells):
            if i in after:
                continue
            latest.pop(c["cell_key"], None)  # re-insert: order by latest execution
            latest[c["cell_key"]] = {k: v for k, v in c.items() if k not in ("run_id", "n_points")}
        return _define_before_use(list(latest.values()), self._flows)

    def _flow_of(self, code_hash: str, source: str) -> _Flow:
        """:func:`_flow` of a text, parsed once per reader (a run's code and ``trainings`` read the same texts)."""
        flow = self._flows.get(code_hash)
        if flow is None:
            flow = self._flows[code_hash] = _flow(source)
        return flow

    def trainings(self, session_id: str, after: float, before: float) -> list[tuple[str | None, float]]:
        """``(run id, start)`` of each cell execution of a session that started between ``after`` and ``before``
        and trains by its text (a ``fit``, an optimizer ``step``, ``xgb.train``: see
        :func:`nbexp.capture.training.analyze`), in execution order."""
        out: list[tuple[str | None, float]] = []
        for run_id, start, code_hash, source in self.conn.execute(
            """SELECT c.run_id, c.start, c.code_hash, code.source FROM cells c JOIN code ON code.hash = c.code_hash
               WHERE c.session_id = ? AND c.start > ? AND c.start < ? ORDER BY c.start, c.id""",
            (session_id, after, before),
        ):
            t = self._flow_of(code_hash, source).training
            if t is not None and t.trains:
                out.append((run_id, start))
        return out

    def last_cell(self, run_id: str) -> dict | None:
        """The run's last cell execution (``status`` is ``running`` for the cell a dead kernel was in)."""
        row = self.conn.execute(
            """SELECT c.status, c.start, c.execution_count, code.source FROM cells c
               JOIN code ON code.hash = c.code_hash WHERE c.run_id = ? ORDER BY c.start DESC, c.id DESC LIMIT 1""",
            (run_id,),
        ).fetchone()
        return dict(row) if row else None

    def sprint_id(self, sprint: str | None) -> str | None:
        """:func:`parse_sprint` with this ledger's sprint names: a sprint id, None for ``all``."""
        return parse_sprint(sprint, self.conn)

    def has_run(self, run_id: str) -> bool:
        """Whether a run has exactly this id (no prefix, no name)."""
        return self.conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None

    def taken_run_ids(self, run_ids: Iterable[str]) -> set[str]:
        """Those of ``run_ids`` that runs of this ledger already have (exact ids), in one query."""
        return {row[0] for row in self._for_runs("SELECT id FROM runs WHERE id IN ({ids})", run_ids)}

    def name_count(self, base: str) -> int:
        """The highest counter among this ledger's runs named ``base`` (1) or ``base #N`` (N); 0 when none is."""
        pattern = base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + " #%"
        rows = self.conn.execute(
            "SELECT name FROM runs WHERE name = ? OR name LIKE ? ESCAPE '\\'", (base, pattern)
        ).fetchall()
        counts = [0]
        for (name,) in rows:  # LIKE ignores case: the prefix is checked again
            tail = name[len(base) + 2 :] if name.startswith(base + " #") else ""
            counts.append(1 if name == base else int(tail) if tail.isdigit() else 0)
        return max(counts)

    def has_dataset(self, fingerprint: str) -> bool:
        """Whether a data summary with this fingerprint is stored."""
        return self.conn.execute("SELECT 1 FROM datasets WHERE fingerprint = ?", (fingerprint,)).fetchone() is not None

    def sprints_of(self, run_ids: list[str]) -> list[str]:
        """The distinct sprints the runs belong to."""
        return sorted(
            {row[0] for row in self._for_runs("SELECT DISTINCT sprint FROM runs WHERE id IN ({ids})", run_ids)}
        )

    def latest_replay(self, run_id: str) -> str | None:
        """The id of the newest run replaying ``run_id`` (``nbexp replay --execute``), None if none."""
        row = self.conn.execute(
            "SELECT id FROM runs WHERE replay_of = ? ORDER BY start_time DESC LIMIT 1", (run_id,)
        ).fetchone()
        return row[0] if row else None

    def environment_packages(self, env_id: str) -> str | None:
        """The installed packages of an environment, as stored (JSON ``{name: version}``); None if unknown."""
        row = self.conn.execute("SELECT packages FROM environments WHERE id = ?", (env_id,)).fetchone()
        return row[0] if row else None

    def metric_points_after(self, run_id: str, key: str, skip: int) -> list[tuple]:
        """A metric's points ``(step, value, wall)`` in the order they were logged, the first ``skip`` left out."""
        return [
            tuple(r)
            for r in self.conn.execute(
                "SELECT step, value, wall FROM metrics WHERE run_id = ? AND key = ? ORDER BY rowid LIMIT -1 OFFSET ?",
                (run_id, key, skip),
            )
        ]

    def explanations(self, run_b: str | None = None, run_a: str | None = None, status: str | None = None) -> list[dict]:
        """Stored explanations (``nbexp explain --ablate``), newest first: ``id, run_a, run_b, metric, created,
        status, result`` (the result decoded), only those of these runs and status when given."""
        where, args = [], []
        for column, value in (("run_b", run_b), ("run_a", run_a), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT id, run_a, run_b, metric, created, status, result FROM explanations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        out = []
        for row in self.conn.execute(sql + " ORDER BY created DESC, rowid DESC", args):
            item = dict(row)
            item["result"] = json.loads(row["result"]) if row["result"] else None
            out.append(item)
        return out

    def ablation_runs(self, explanation_id: str) -> dict[str, str]:
        """The replays an explanation ran: run id -> the factor reverted ('' for B unchanged)."""
        return dict(
            self.conn.execute("SELECT run_id, factor FROM ablation_of WHERE explanation_id = ?", (explanation_id,))
        )

    def session_sync_state(self, session_id: str) -> dict[str, tuple]:
        """Per run of a session (oldest first), what a live sync (nbexp/export/sync.py) sends when it changes:
        ``(change stamp, status, params, metric points, system samples in its time)``, counted from indexes."""
        rows = self.conn.execute(
            """SELECT r.id, r.updated, r.status,
                      (SELECT count(*) FROM params p WHERE p.run_id = r.id),
                      (SELECT coalesce(sum(count), 0) FROM metric_summaries m WHERE m.run_id = r.id),
                      (SELECT count(*) FROM host_samples h WHERE h.session_id = r.session_id
                          AND h.time BETWEEN r.start_time AND coalesce(r.end_time, 1e18))
               FROM runs r WHERE r.session_id = ? ORDER BY r.start_time""",
            (session_id,),
        ).fetchall()
        return {r[0]: tuple(r[1:]) for r in rows}

    def session_metric_counts(self, session_id: str) -> list[tuple[str, str, int]]:
        """``(run id, metric key, points)`` of every run of a session, from the metric summaries."""
        return [
            (r[0], r[1], r[2])
            for r in self.conn.execute(
                "SELECT m.run_id, m.key, m.count FROM metric_summaries m JOIN runs r ON r.id = m.run_id "
                "WHERE r.session_id = ?",
                (session_id,),
            )
        ]

    def sprint_info(self, sprint_id: str) -> dict:
        row = self.conn.execute("SELECT * FROM sprints WHERE id = ?", (sprint_id,)).fetchone()
        return dict(row) if row else {"id": sprint_id, "name": None, "hypothesis": None, "conclusion": None}


_MISSING = object()


def _define_before_use(cells: list[dict], known: dict[str, _Flow] | None = None) -> list[dict]:
    """``cells`` (each with its ``source``, ``cell_key`` and ``code_hash``), less the versions a cell without a cell
    id left behind (see :func:`_replaced`) and the cells whose values no later cell read (see :func:`_dead`),
    reordered so that a cell comes after a cell that defines each name it reads, keeping the execution order
    otherwise.

    Re-executing some cells of a notebook leaves, by latest execution, cells that were not
    re-executed before the re-executed cells defining what they read (the evaluation cell of
    the first pass before the edited hyperparameter and model cells): replayed in that order,
    it raises ``NameError``. A stable topological sort: repeatedly the first cell, in execution
    order, whose every read name is defined by a cell already placed (or by none of the cells:
    a builtin, or set outside the notebook); a name a cell reads and binds again (``df = df[df.age > 18]``)
    counts as read, unless no other cell binds it. A cycle keeps the execution order. ``known``: analyses of the
    cells' texts (:func:`_flow`) by code hash, where the caller has them.
    """
    known = known or {}
    flows = [known.get(cell["code_hash"]) or _flow(cell["source"]) for cell in cells]
    replaced = _replaced(cells, flows)
    edits = {cells[j]["code_hash"] for j in replaced.values()}  # they stand where the versions they replaced ran
    cells = [c for i, c in enumerate(cells) if i not in replaced]
    flows = [f for i, f in enumerate(flows) if i not in replaced]
    dead = _dead(cells, flows, {i for i, c in enumerate(cells) if c["code_hash"] in edits})
    cells = [c for i, c in enumerate(cells) if i not in dead]
    flows = [f for i, f in enumerate(flows) if i not in dead]
    defined_by: dict[str, int] = {}
    for flow in flows:
        for name in flow.defines:
            defined_by[name] = defined_by.get(name, 0) + 1
    pending = list(range(len(cells)))
    placed: set[str] = set()
    order: list[int] = []
    while pending:
        pick = next(
            (
                i
                for i in pending
                if all(n in placed or n not in defined_by or n in flows[i].defines for n in flows[i].reads)
                # a name it reads before binding it again (``df = df[df.age > 18]``) comes from another cell
                and all(n in placed or defined_by[n] == 1 for n in flows[i].loads & flows[i].defines)
            ),
            pending[0],
        )
        pending.remove(pick)
        order.append(pick)
        placed |= flows[pick].defines
    return [cells[i] for i in order]


@dataclass(frozen=True)
class _Flow:
    """What one cell's text reads and binds at cell level (empty for text that is not Python)."""

    reads: frozenset[str] = frozenset()
    defines: frozenset[str] = frozenset()
    imports: frozenset[str] = frozenset()  # the names its import statements bind
    mutates: bool = False  # it changes an object it did not bind first (``model.fit(X)``)
    # every name it reads before binding it, statement by statement (``reads`` leaves out a name the cell also
    # binds: ``df = df.dropna()`` reads the old ``df``, ``C = 1.0; m = M(C=C)`` reads no ``C``)
    loads: frozenset[str] = frozenset()
    # ``(name, statements)`` for each name the cell binds only by assignments that read no name (``TEST_SIZE = 0.25``):
    # the statements, as syntax (not where they stand), give the same value wherever they run
    constants: frozenset[tuple[str, tuple[str, ...]]] = frozenset()
    parsed: bool = False  # its text is Python (else nothing is known of what it reads)
    functions: frozenset[str] = frozenset()  # the functions and classes it defines (their bodies read globals)
    # its statements only bind names and show values (``df = df[df.age > 18]``, ``print(len(df))``, ``df.head()``)
    binds_only: bool = False
    training: Any = field(default=None, compare=False, hash=False)  # the text's whole analysis (a Training)


def _flow(source: str) -> _Flow:
    """What one cell's text reads and binds. Text that is Python already is read as it is: IPython's transforms
    change only what is not (magics, ``!cmd``, ``obj?``, prompts, an indented first line), and they were a fifth of
    a long session's lineage; the data a cell feeds to training is not read (a third more)."""
    import ast

    from ..capture.training import analyze, unwrap_magics

    def transform(text: str) -> str:  # IPython's, made only for text that is not Python already
        try:
            from IPython.core.inputtransformer2 import TransformerManager
        except ImportError:  # pragma: no cover - IPython comes with the package
            return text
        return TransformerManager().transform_cell(text)

    try:
        try:
            code, tree = source, ast.parse(source)
        except SyntaxError:
            code = transform(source)
            tree = ast.parse(code)
        if "get_ipython" in code:
            tree = unwrap_magics(tree, transform)
        t = analyze(tree, with_data=False)
    except Exception:  # text that is not Python: it stays where it ran
        return _Flow()
    imports = {
        (alias.asname or alias.name).split(".")[0]
        for stmt in tree.body
        if isinstance(stmt, (ast.Import, ast.ImportFrom))
        for alias in stmt.names
    }
    loads: set[str] = set()
    bound: set[str] = set()
    constant: dict[str, list[str] | None] = {}  # name -> its binding statements; None once one reads a name
    for stmt in tree.body:
        names = [n for n in ast.walk(stmt) if isinstance(n, ast.Name)]
        loads |= {n.id for n in names if isinstance(n.ctx, ast.Load)} - bound
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id not in bound:
            loads.add(stmt.target.id)  # ``features += ["c"]`` reads ``features``
        stored = [n.id for n in names if isinstance(n.ctx, ast.Store)]
        bound.update(stored)
        targets = (
            stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        )
        plain = (
            bool(targets)
            and getattr(stmt, "value", None) is not None
            and all(isinstance(target, ast.Name) for target in targets)
            and not any(isinstance(n.ctx, ast.Load) for n in names)
        )
        for name in stored:
            known = constant.get(name, [])
            constant[name] = known + [ast.dump(stmt)] if plain and known is not None else None
    constants = frozenset((name, tuple(dumps)) for name, dumps in constant.items() if dumps is not None)
    binds_only = not t.trains and all(_binds_or_shows(stmt) for stmt in tree.body)
    functions = frozenset(
        stmt.name for stmt in tree.body if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    )
    return _Flow(
        frozenset(t.reads),
        frozenset(t.defines),
        frozenset(imports),
        bool(t.mutated),
        frozenset(loads),
        constants,
        training=t,
        parsed=True,
        functions=functions,
        binds_only=binds_only,
    )


# methods whose call as a statement only shows a value (``df.head()``)
_SHOWING = frozenset({"head", "tail", "describe", "info", "value_counts", "nunique"})
# functions that compute a value from their arguments and nothing else
_PURE_CALLS = frozenset(
    {
        "print",
        "display",
        "len",
        "int",
        "float",
        "str",
        "bool",
        "list",
        "tuple",
        "dict",
        "set",
        "sorted",
        "min",
        "max",
        "abs",
        "round",
        "sum",
        "range",
        "repr",
        "format",
        "zip",
        "enumerate",
    }
)
# methods that change their object, draw random numbers or train: never a rebuild that leaves nothing behind
_EFFECTS = frozenset(
    {
        "sample",
        "shuffle",
        "permutation",
        "pop",
        "popitem",
        "append",
        "extend",
        "insert",
        "remove",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "fit",
        "fit_transform",
        "partial_fit",
        "train",
        "step",
        "backward",
        "to_csv",
        "to_parquet",
        "save",
        "savefig",
        "write",
        "close",
    }
)


def _calls_pure(node: Any, rebuilt: AbstractSet[str] = frozenset()) -> bool:
    """Every call in ``node`` computes a value and nothing else: a builtin such as ``len`` or ``print``, or a method
    of a name the statement binds again (``df = df.dropna()``) that neither changes it, draws random numbers nor
    trains (:data:`_EFFECTS`)."""
    import ast

    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        f = call.func
        if isinstance(f, ast.Name) and f.id in _PURE_CALLS:
            continue
        if isinstance(f, ast.Attribute) and f.attr not in _EFFECTS:
            root = f.value
            while isinstance(root, (ast.Attribute, ast.Subscript, ast.Call)):
                root = root.func if isinstance(root, ast.Call) else root.value
            if isinstance(root, ast.Name) and root.id in rebuilt:
                continue
        return False
    return True


def _binds_or_shows(stmt: Any) -> bool:
    """A statement that binds names from values it computes without side effects (``df = df[df.age > 18]``,
    ``df = df.dropna()``, ``n = len(df)``: see :func:`_calls_pure`), or shows a value: a name or attribute,
    ``print(len(df))``, ``df.head()``; a docstring. An augmented assignment changes its object in place."""
    import ast

    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if not all(isinstance(t, ast.Name) for t in targets) or stmt.value is None:
            return False
        return _calls_pure(stmt.value, {t.id for t in targets if isinstance(t, ast.Name)})
    if not isinstance(stmt, ast.Expr):
        return False
    value = stmt.value
    if isinstance(value, (ast.Constant, ast.Name, ast.Attribute, ast.Subscript)):
        return _calls_pure(value)
    if isinstance(value, ast.Call):
        f = value.func
        shows = isinstance(f, ast.Name) and f.id in ("print", "display")
        shows = shows or isinstance(f, ast.Attribute) and f.attr in _SHOWING and isinstance(f.value, ast.Name)
        return shows and all(_calls_pure(a) for a in [*value.args, *(k.value for k in value.keywords)])
    return False


def _throwaway(names: AbstractSet[str]) -> bool:
    """Names a cell binds only to throw a value away (``_ = np.random.seed(0)``, ``_ = df.pop("c")``): what the
    cell did is its effect, not the value, so no later cell binding ``_`` stands for it."""
    return all(name.startswith("_") for name in names)


def _dead(cells: list[dict], flows: list[_Flow], edits: AbstractSet[int] = frozenset()) -> set[int]:
    """The cells (indexes, in latest-execution order) whose values reached nothing the run computed: cells that only
    bind names and show values (no import, no training, no object changed in place) and whose every name a later
    cell bound afresh (without reading it) before any cell read it.

    The data filter before the cell that reads the data ran again: re-run from the reading cell down with the filter
    edited, and without cell ids, both versions of the filter stayed in the run's code, the old one after the
    reading cell, so its replay filtered the data twice (a user trial: ``df.age > 18``, then ``df.age < 60``); with
    the filter not run again, the run's code filtered what its training never saw filtered. A cell whose text is
    not Python reads anything. ``edits``: cells that replaced an earlier version of theirs (:func:`_replaced`): they
    stand where that version ran, and the cells run since read them."""
    out: set[int] = set()
    functions = {name for flow in flows for name in flow.functions}  # a call of one reads what its body reads
    for i, flow in enumerate(flows):
        if i in edits:
            continue
        names = set(flow.defines)
        if _throwaway(names):
            continue
        # an object changed in place (``params["lr"] = 0.1``), not rebuilt from itself (``df = df[df.age > 18]``)
        changes = flow.training is not None and bool(flow.training.mutated - flow.defines)
        if not names or flow.imports or changes or not flow.binds_only:
            continue
        for later in flows[i + 1 :]:
            if not later.parsed or later.loads & (names | functions):
                break
            names -= later.defines
            if not names:
                out.add(i)
                break
    return out


def _after_training(run_id: str, cells: list[dict], flows: list[_Flow]) -> set[int]:
    """The executions that the code of run ``run_id`` leaves out (indexes into ``cells``: the session's cell
    executions up to the run's end, in execution order, each with its ``run_id`` and ``code_hash``; ``flows``:
    their texts' analyses): those run after the run's last training cell that bound again a name its training
    read, or a name those names were computed from (the data the split read), import names aside.

    Without cell ids an edited cell upstream of the training (the data filter, edited in place and re-run from the
    reading cell down) cannot be told from a new cell before it runs, so it runs while the trained run is current
    (:meth:`nbexp.runbook.RunBook.edits_upstream`). The split re-run on it opens the next run, which begins at the
    edit (:meth:`nbexp.runbook.RunBook.made_since`), unless a cell after the edit recorded a metric in the trained
    run: then the next run begins at the split (or, with no split re-run, at the training). The
    trained run's code held the edit, its replay computed the next run's results, and a code diff of the two runs
    was empty. Its code now takes each such cell's version from before the training (none for a cell new since):
    the training read that. Not a cell that computed the run's metrics (an evaluation that binds ``df`` to the
    test rows and scores them), and nothing when a cell run after them and kept reads what they bound, or calls a
    function of the notebook (its body may read it), or is not Python: then the execution order stands, as the
    cells ran.

    The training and what it read are found as the session found them (:class:`nbexp.dataflow.Dataflow`,
    :meth:`nbexp.runbook.RunBook.trained`), replayed over the cells' texts; a run that trained in none of its own
    cells (one evaluating another run's model again) leaves out nothing."""
    from ..dataflow import Dataflow

    dataflow = Dataflow()
    names: set[str] = set()
    made: set[str] = set()  # what its training cells bound without reading it: their products, not followed
    trained = -1
    for i, (cell, flow) in enumerate(zip(cells, flows)):
        t = flow.training
        if t is None:
            continue
        if cell["run_id"] == run_id and dataflow.trains(t):
            read = t.reads | t.mutated
            made |= t.writes - read
            names |= dataflow.closure(read | dataflow.globals_read(t.calls), made)
            trained = i
        dataflow.record(t, {}, set(), {})
        dataflow.bound(t, cell["code_hash"])
    out: set[int] = set()
    bound: set[str] = set()  # what the cells left out bound
    functions = {name for flow in flows for name in flow.functions}  # a call of one reads what its body reads
    for i in range(trained + 1, len(cells)) if trained >= 0 else ():
        flow = flows[i]
        if (flow.defines - flow.imports) & names and not cells[i].get("n_points"):
            out.add(i)  # not an evaluation: a cell that computed the run's metrics is the run's (df = df_test)
            bound |= flow.defines - flow.imports
        elif flow.loads & (bound | functions) or not flow.parsed:
            return set()
    return out


def _replaced(cells: list[dict], flows: list[_Flow]) -> dict[int, int]:
    """The cells (indexes, in latest-execution order) that an edit of theirs replaced, each with the edit's index,
    where the front end gave no cell id (papermill, nbclient, nbconvert, a console: the cell is known by its text
    alone).

    Edited and re-run, such a cell comes back under a new text, and both versions would stay in the run's code
    (the first pass's ``C = 0.1`` fit before the edited ``C = 10.0`` one; a code diff shows the old one as added,
    a replay fits both). A version is taken as replaced by a later cell without a cell id that binds the same
    names (import names aside, at least one) and reads none of them (``df = df.dropna()`` builds on the old
    ``df``), when it changes no object bound elsewhere and no cell run between them reads what it bound, unless
    both versions bind what was read by the same assignments of values that read no name: then nothing the
    later cells computed came from it but what the edit computes again (the split two cells below a settings cell
    read its ``TEST_SIZE = 0.25``, which the edit of ``MAX_ITER`` on the next line kept). Not when a cell that read
    them changed an object in place (the edit, moved before it, would then see the change: ``params['metric'] =
    'auc'`` between two versions of ``params = {...}``) or bound a name the edit reads (the edit cannot move
    before it). With cell ids each cell's latest version is already the only one (:meth:`Reader.lineage`)."""
    anonymous = [c.get("cell_key") is not None and c.get("cell_key") == c.get("code_hash") for c in cells]
    gone: dict[int, int] = {}
    # what the cells after the versions an edit replaced read of them, what those cells bound, whether one of them
    # changed an object in place: the edit stands for those versions before those cells
    inherited: dict[int, tuple[set[str], set[str], bool]] = {}
    functions = {name for flow in flows for name in flow.functions}  # a call of one reads what its body reads
    for i, flow in enumerate(flows):
        names = flow.defines - flow.imports
        if not anonymous[i] or not names or flow.mutates or _throwaway(names):
            continue
        before = inherited.get(i, (set(), set(), False))
        read = set(before[0])  # of its names, those the cells run since (its own or an older version) read
        readers = set(before[1])  # what the cells that read them bound
        changed = before[2]  # one of those cells changed an object in place (``params['metric'] = 'auc'``)
        for j in range(i + 1, len(cells)):
            if anonymous[j] and flows[j].defines - flows[j].imports == names and not flows[j].loads & names:
                old, edit = dict(flow.constants), dict(flows[j].constants)
                if not read or (
                    not changed
                    and not flows[j].loads & readers  # the edit placed before them would read what they bind
                    and all(old.get(name) is not None and old[name] == edit.get(name) for name in read)
                ):
                    gone[i] = j
                    inherited[j] = (read, readers, changed)
                break
            if flows[j].defines & names:
                break  # bound by another cell before any edit of it came
            loads = flows[j].loads | (names if flows[j].loads & functions or not flows[j].parsed else frozenset())
            if loads & names:
                read |= loads & names
                readers |= flows[j].defines
                changed = changed or flows[j].mutates
    return gone


def _decode(text: str, kind: str) -> Any:
    """A stored param value; numbers skip the JSON parser (a listing decodes thousands)."""
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)  # JSON's NaN / Infinity / -Infinity read the same
    if kind == "bool":
        return text == "true"
    if kind == "none":
        return None
    return json.loads(text)


def _same(a: Any, b: Any) -> bool:
    return (
        a is not _MISSING
        and type(a) is type(b)
        and a == b
        or (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and not isinstance(a, bool)
            and not isinstance(b, bool)
            and a == b
        )
    )


def _chunks(items: list, size: int = 500) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _process_alive(row: sqlite3.Row) -> bool:
    if row["host"] != socket.gethostname():
        return row["heartbeat"] is not None and time.time() - row["heartbeat"] < STALE_HEARTBEAT_S
    pid = row["pid"]
    try:
        import psutil

        proc = psutil.Process(pid)
        if row["pid_started"] is not None and abs(proc.create_time() - row["pid_started"]) > 1.0:
            return False  # the pid was reused
        return proc.status() != psutil.STATUS_ZOMBIE
    except Exception:
        return False
