"""One transaction on a direct connection: :func:`transaction`.

Every write that does not go through a kernel's writer thread (the server's PATCH, a schema
migration, a bundle import) runs inside ``with transaction(conn):``. It takes the write lock at
once (``BEGIN IMMEDIATE``), so a busy ledger is found before anything is written, commits when
the block ends and rolls back when it raises. The writer thread keeps its own batches (with
savepoints that find bad rows); it does not use this.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import LedgerBusy


class Rollback(Exception):
    """Raise inside ``with transaction(conn):`` to undo the block's writes without an error
    (a dry run): the transaction rolls back and the block ends quietly."""


def is_busy(exc: BaseException | None) -> bool:
    """Whether ``exc`` is SQLite giving up on a lock another connection holds."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


@contextmanager
def transaction(conn: sqlite3.Connection, what: str = "the ledger") -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises.

    ``conn`` must be in autocommit mode (``isolation_level=None``, as :func:`nbexp.ledger.connect`
    opens it). A rollback is issued only when a transaction began: a failed ``BEGIN`` leaves
    nothing to undo. Raising :class:`Rollback` in the block undoes it and ends it quietly.

    Args:
        conn: a writable connection.
        what: how a busy error names the ledger (its path, say).

    Raises:
        LedgerBusy: another process held the write lock past the busy timeout (at ``BEGIN``, or
            at ``COMMIT``); nothing was written.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise LedgerBusy(f"{what} is busy: another process holds its write lock; try again") from exc
        raise
    try:
        yield conn
        conn.execute("COMMIT")
    except Rollback:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if is_busy(exc):
            raise LedgerBusy(f"{what} is busy: another process holds its lock; try again") from exc
        raise
