"""The frame of every run stored in the ledger (schema 15): written here, read by
:meth:`nbexp.ledger.queries.Reader.stored_frame`, encoded and decoded by :mod:`nbexp.api`."""

from __future__ import annotations

import os
import sqlite3

from ..errors import NbexpError
from . import Rollback, connect, transaction


def store_frame(
    path: str | os.PathLike, mark: tuple[bytes, int], header: str, parts: list[bytes], replace: bool
) -> bool:
    """Store a frame's ``header`` and ``parts``, read at ``mark`` (stamp, change sequence), in the ledger ``path``,
    replacing the one stored; whether it was stored. Nothing is stored when the ledger cannot be written (read-only
    file or media, busy past the timeout) or holds a frame of a later change sequence already, or of the same one
    unless ``replace`` (it could not be used): a frame not stored is read from the rows next time."""
    if not os.path.isfile(path):  # moved or deleted since it was read: connect() would make a new ledger there
        return False
    try:
        conn = connect(path)
    except (NbexpError, sqlite3.Error, OSError):
        return False
    try:
        with transaction(conn, str(path)):
            row = conn.execute("SELECT seq FROM frame_cache WHERE id = 1").fetchone()
            if row is not None and (row[0] > mark[1] or row[0] == mark[1] and not replace):
                raise Rollback
            conn.execute("DELETE FROM frame_cache_parts")
            conn.executemany("INSERT INTO frame_cache_parts (pos, data) VALUES (?, ?)", enumerate(parts))
            conn.execute(
                "INSERT OR REPLACE INTO frame_cache (id, seq, stamp, header) VALUES (1, ?, ?, ?)",
                (mark[1], mark[0], header),
            )
            return True
    except (NbexpError, sqlite3.Error, OSError):
        pass
    finally:
        conn.close()
    return False
