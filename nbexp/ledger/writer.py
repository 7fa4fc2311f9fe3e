"""The one write connection of a kernel, owned by a background thread.

Callers never touch SQLite on the user's critical path: they append rows to
in-memory queues (:meth:`Writer.execute`, the :attr:`Writer.points` deque) and the thread
writes them in short batched transactions, at every flush interval, when asked
(:meth:`Writer.flush`) and at :meth:`Writer.close`. It also keeps the session's
heartbeat fresh so readers can tell a live kernel from a dead one.

The thread never dies. A batch that fails for a reason a retry cannot cure (a value
SQLite cannot bind, a constraint) is written again row by row in savepoints, halving
the failing part until the bad rows are found: those are left out and recorded as one
``events`` row, every other row lands, and the write lock is released. A batch that
fails because the ledger is busy or the disk is full is kept, in order, for the next try.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from typing import Any, Callable

from ..textfmt import storable_text

INSERT_POINT = "INSERT INTO metrics (run_id, key, step, value, wall) VALUES (?, ?, ?, ?, ?)"
UPSERT_SUMMARY = """
INSERT INTO metric_summaries (run_id, key, count, nan_count, min, max, last, last_step)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key) DO UPDATE SET
    count = count + excluded.count,
    nan_count = nan_count + excluded.nan_count,
    min = CASE WHEN min IS NULL THEN excluded.min WHEN excluded.min IS NULL THEN min
               ELSE min(min, excluded.min) END,
    max = CASE WHEN max IS NULL THEN excluded.max WHEN excluded.max IS NULL THEN max
               ELSE max(max, excluded.max) END,
    last = CASE WHEN excluded.last_step >= last_step THEN excluded.last ELSE last END,
    last_step = max(last_step, excluded.last_step)
"""


def summarize_points(points: list[tuple]) -> list[tuple]:
    """Per (run, key) of a batch: count, NaN count, min, max, and the value at the highest
    step (the later point wins a tie), as rows for :data:`UPSERT_SUMMARY`."""
    acc: dict[tuple[str, str], list] = {}
    for run_id, key, step, value, _wall in points:
        a = acc.get((run_id, key))
        if a is None:
            acc[(run_id, key)] = [1, value is None, value, value, value, step]
            continue
        a[0] += 1
        if value is None:
            a[1] += 1
        else:
            if a[2] is None or value < a[2]:
                a[2] = value
            if a[3] is None or value > a[3]:
                a[3] = value
        if step >= a[5]:
            a[4], a[5] = value, step
    return [(r, k, a[0], int(a[1]), a[2], a[3], a[4], a[5]) for (r, k), a in acc.items()]


class Writer:
    """Background writer for one ledger connection.

    Args:
        conn: a connection from :func:`nbexp.ledger.connect` (writable).
        session_id: session whose heartbeat this thread refreshes.
        on_error: called as ``on_error(cause, message)`` for a one-line warning. Cause
            ``ledger-write``: the ledger could not be written (locked, disk full); the batch is
            kept and retried at the next flush. Cause ``ledger-row``: some rows could not be
            stored at all (a value SQLite cannot hold); they were left out, every other row was
            written, and the writer recorded an ``events`` row saying so.
        flush_interval: seconds between automatic flushes.
        heartbeat_interval: seconds between heartbeat updates.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        session_id: str,
        on_error: Callable[[str, str], None] | None = None,
        flush_interval: float = 1.0,
        heartbeat_interval: float = 5.0,
    ) -> None:
        self.conn = conn
        self.session_id = session_id
        self.on_error = on_error or (lambda cause, msg: None)
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self.points: deque[tuple] = deque()
        self._ops: deque[tuple[str, Any, bool]] = deque()
        self._waiters: deque[threading.Event] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._last_heartbeat = 0.0
        self._lock = threading.Lock()  # one batch at a time
        self._thread = threading.Thread(target=self._loop, name="nbexp-writer", daemon=True)
        self._thread.start()

    # -- producers (any thread) ------------------------------------------------
    def execute(self, sql: str, params: Any = ()) -> None:
        """Queue one statement."""
        self._ops.append((sql, params, False))

    def executemany(self, sql: str, rows: list) -> None:
        """Queue one statement for many rows."""
        if rows:
            self._ops.append((sql, rows, True))

    def flush(self, wait: bool = True, timeout: float = 10.0) -> bool:
        """Write everything queued so far.

        Args:
            wait: block until it is committed.
            timeout: longest wait in seconds.

        Returns:
            True when the queued rows are committed (or ``wait`` is False).
        """
        if not self._thread.is_alive():
            return self._write_batch()
        if not wait:
            self._wake.set()
            return True
        done = threading.Event()
        self._waiters.append(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush, stop the thread and close the connection."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        self._write_batch()
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    # -- the thread ------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            waiters = [self._waiters.popleft() for _ in range(len(self._waiters))]
            try:
                ok = self._write_batch()
            except Exception as exc:  # never die: a dead writer loses every later point
                ok = False
                try:
                    self._rollback()
                    self.on_error("ledger-write", f"writer error ({type(exc).__name__}: {exc}); will retry")
                except Exception:
                    pass
            if ok:
                for w in waiters:
                    w.set()
            else:
                self._waiters.extendleft(waiters)

    def _write_batch(self) -> bool:
        with self._lock:
            n_ops, n_points = len(self._ops), len(self.points)
            ops = [self._ops.popleft() for _ in range(n_ops)]
            points = [self.points.popleft() for _ in range(n_points)]
            now = time.time()
            beat = now - self._last_heartbeat >= self.heartbeat_interval
            if not ops and not points and not beat:
                return True
            try:
                try:
                    self._apply(ops, points, beat, now, None)
                except sqlite3.Error as exc:
                    if is_transient(exc):
                        raise
                    self._rollback()
                    dropped: list[tuple[str, Any, Exception]] = []
                    self._apply(ops, points, beat, now, dropped)
                    self._report(dropped)
                except Exception:
                    # A value SQLite cannot bind (an int beyond 64 bits, text that is not UTF-8):
                    # find the rows it came from, store every other row.
                    self._rollback()
                    dropped = []
                    self._apply(ops, points, beat, now, dropped)
                    self._report(dropped)
                if beat:
                    self._last_heartbeat = now
                return True
            except sqlite3.Error as exc:  # locked, disk full, I/O: keep the rows, in order, for the next try
                self._rollback()
                self.points.extendleft(reversed(points))
                self._ops.extendleft(reversed(ops))
                self.on_error("ledger-write", f"could not write to the ledger ({exc}); will retry")
                return False

    def _apply(
        self, ops: list, points: list, beat: bool, now: float, dropped: list[tuple[str, Any, Exception]] | None
    ) -> None:
        """Write one batch in one transaction. With ``dropped`` a list, every statement runs in
        a savepoint and the rows that fail are left out (and listed there) instead of failing the batch."""
        conn = self.conn
        run: Callable[[str, Any], Any] = conn.execute
        many: Callable[[str, Any], Any] = conn.executemany
        if dropped is not None:
            run = lambda sql, p: self._careful(sql, [p], dropped)  # noqa: E731
            many = lambda sql, rows: self._careful(sql, list(rows), dropped)  # noqa: E731
        conn.execute("BEGIN IMMEDIATE")
        for sql, params, is_many in ops:
            (many if is_many else run)(sql, params)
        if points:
            if dropped is not None:
                points = self._careful(INSERT_POINT, points, dropped)
            else:
                conn.executemany(INSERT_POINT, points)
            many(UPSERT_SUMMARY, summarize_points(points))
        if beat:
            run("UPDATE sessions SET heartbeat = ? WHERE id = ?", (now, self.session_id))
        if dropped:
            run(
                "INSERT INTO events (session_id, run_id, time, level, cause, message) VALUES (?,?,?,?,?,?)",
                (self.session_id, None, now, "warning", "ledger-row", _dropped_message(dropped)),
            )
        conn.execute("COMMIT")

    def _careful(self, sql: str, rows: list, dropped: list) -> list:
        """Run ``sql`` for ``rows`` inside a savepoint; on failure split the rows in halves
        until the bad ones are found. Returns the rows that were stored."""
        conn = self.conn
        conn.execute("SAVEPOINT nbexp_rows")
        try:
            conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK TO nbexp_rows")
            conn.execute("RELEASE nbexp_rows")
            if is_transient(exc):
                raise
            return self._split(sql, rows, dropped, exc)
        except Exception as exc:
            conn.execute("ROLLBACK TO nbexp_rows")
            conn.execute("RELEASE nbexp_rows")
            return self._split(sql, rows, dropped, exc)
        conn.execute("RELEASE nbexp_rows")
        return rows

    def _split(self, sql: str, rows: list, dropped: list, exc: Exception) -> list:
        if len(rows) == 1:
            if isinstance(exc, UnicodeEncodeError):  # keep the row, its odd text escaped
                fixed = _storable_row(rows[0])
                if fixed != rows[0]:
                    return self._careful(sql, [fixed], dropped)
            dropped.append((sql, rows[0], exc))
            return []
        half = len(rows) // 2
        return self._careful(sql, rows[:half], dropped) + self._careful(sql, rows[half:], dropped)

    def _rollback(self) -> None:
        """Roll back the open transaction, if one is open (never one that did not begin)."""
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _report(self, dropped: list[tuple[str, Any, Exception]]) -> None:
        if dropped:
            self.on_error("ledger-row", _dropped_message(dropped))


def _storable_row(row: Any) -> Any:
    if isinstance(row, str):
        return storable_text(row)
    if isinstance(row, (tuple, list)):
        return type(row)(_storable_row(v) for v in row)
    if isinstance(row, dict):
        return {k: _storable_row(v) for k, v in row.items()}
    return row


TRANSIENT = ("locked", "busy", "disk", "full", "i/o", "readonly", "read-only", "unable to open", "interrupt")


def is_transient(exc: BaseException) -> bool:
    """True for an error that a later try may not meet (another writer holds the lock, the disk
    is full): the batch is kept. Every other error belongs to a row and is never retried."""
    return isinstance(exc, sqlite3.OperationalError) and any(w in str(exc).lower() for w in TRANSIENT)


def _dropped_message(dropped: list[tuple[str, Any, Exception]]) -> str:
    """One line naming what was left out, safe to store (the cause may hold the unstorable text)."""
    tables = sorted({_table(sql) for sql, _row, _exc in dropped})
    _sql, _row, exc = dropped[0]
    cause = f"{type(exc).__name__}: {exc}".encode("utf-8", "backslashreplace").decode("utf-8")[:200]
    return (
        f"{len(dropped)} row(s) could not be stored in the ledger and were left out "
        f"({', '.join(tables)}; {cause}); everything else was written"
    )


def _table(sql: str) -> str:
    words = sql.split()
    for i, w in enumerate(words[:-1]):
        if w.upper() in ("INTO", "UPDATE", "FROM"):
            return words[i + 1].strip('"')
    return "?"
