"""The one write connection of a kernel, owned by a background thread.

Callers never touch SQLite on the user's critical path: they append rows to
in-memory queues (:meth:`Writer.execute`, :meth:`Writer.point`) and the thread
writes them in short batched transactions, at every flush interval, when asked
(:meth:`Writer.flush`) and at :meth:`Writer.close`. It also keeps the session's
heartbeat fresh so readers can tell a live kernel from a dead one.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from typing import Any, Callable

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
        on_error: called as ``on_error(cause, message)`` when a batch cannot be
            written; the batch is kept and retried at the next flush.
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

    def point(self, run_id: str, key: str, step: int | None, value: float, wall: float) -> None:
        """Queue one metric point (the tight-loop path: an append, nothing else)."""
        self.points.append((run_id, key, step, value, wall))

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

    @property
    def pending(self) -> int:
        """Rows queued and not yet written."""
        return len(self.points) + len(self._ops)

    # -- the thread ------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            waiters = [self._waiters.popleft() for _ in range(len(self._waiters))]
            ok = self._write_batch()
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
                self.conn.execute("BEGIN IMMEDIATE")
                for sql, params, many in ops:
                    (self.conn.executemany if many else self.conn.execute)(sql, params)
                if points:
                    self.conn.executemany(INSERT_POINT, points)
                    self.conn.executemany(UPSERT_SUMMARY, summarize_points(points))
                if beat:
                    self.conn.execute(
                        "UPDATE sessions SET heartbeat = ? WHERE id = ?", (now, self.session_id)
                    )
                self.conn.execute("COMMIT")
                if beat:
                    self._last_heartbeat = now
                return True
            except sqlite3.Error as exc:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                # Keep the rows, in order, for the next try.
                self.points.extendleft(reversed(points))
                self._ops.extendleft(reversed(ops))
                self.on_error("ledger-write", f"could not write to the ledger ({exc}); will retry")
                return False
