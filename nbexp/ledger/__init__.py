"""The SQLite ledger: where it lives, how it is opened, migrated, written and read.

Kernels write through one :class:`~nbexp.ledger.writer.Writer` thread each; the
CLI, the Python API and the server read through :mod:`nbexp.ledger.queries` on
read-only connections. Every write is a named method of :class:`~nbexp.ledger.store.Store`,
over a writer or a direct connection: no module outside this package writes SQL.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import stat
import time
from pathlib import Path

from ..errors import LedgerBusy, LedgerError, SchemaTooNewError
from .schema import RUN_STATUSES, SCHEMA_VERSION, check_version, migrate
from .transactions import Rollback, transaction

BUSY_TIMEOUT_MS = 10_000  # how long a connection waits for another's lock; $NBEXP_BUSY_TIMEOUT_MS overrides


def busy_timeout_ms() -> int:
    """The busy timeout: ``$NBEXP_BUSY_TIMEOUT_MS`` when set to a whole number, else :data:`BUSY_TIMEOUT_MS`."""
    raw = os.environ.get("NBEXP_BUSY_TIMEOUT_MS", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else BUSY_TIMEOUT_MS


__all__ = [
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "Rollback",
    "connect",
    "default_path",
    "private_file",
    "resolve_path",
    "transaction",
]


def default_path() -> Path:
    """The ledger used when none is named: ``$NBEXP_LEDGER``, else
    ``$NBEXP_HOME/ledger.sqlite``, else ``~/.nbexp/ledger.sqlite``."""
    if os.environ.get("NBEXP_LEDGER"):
        return Path(os.environ["NBEXP_LEDGER"]).expanduser()
    home = os.environ.get("NBEXP_HOME") or Path.home() / ".nbexp"
    return Path(home).expanduser() / "ledger.sqlite"


def resolve_path(path: str | os.PathLike | None) -> Path:
    """``path`` made absolute, or the default ledger when it is None."""
    return (Path(path).expanduser() if path else default_path()).absolute()


def connect(path: str | os.PathLike | None = None, *, readonly: bool = False) -> sqlite3.Connection:
    """Open (and for writers create and migrate) the ledger at ``path``.

    Args:
        path: ledger file; None for :func:`default_path`.
        readonly: open with ``mode=ro``; the file must exist.

    Raises:
        LedgerError: the path is a directory, its folder does not exist, the file
            is not SQLite or cannot be written. The message names the path.
        SchemaTooNewError: the ledger was written by a newer nbexp.
    """
    p = resolve_path(path)
    if p.is_dir():
        raise LedgerError(f"ledger path {p} is a directory; give a file path such as {p / 'ledger.sqlite'}")
    if readonly:
        if not p.exists():
            raise LedgerError(f"no ledger at {p}: nothing has been tracked there yet (%nbexp track)")
        if not p.is_file():  # /dev/full, a pipe: SQLite would try to write a journal beside it
            raise LedgerError(f"{p} is not an nbexp ledger (not a regular file)")
        uri = f"file:{p}?mode=ro"
        if _read_only_folder(p):
            # WAL readers need the -shm file, which an unwritable folder (read-only media, an
            # archive) cannot get: with no -wal left nothing can be pending, so read the file as is
            uri += "&immutable=1"
    else:
        if not p.parent.exists():
            if p == default_path().absolute():
                p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # recorded code is private
            else:
                raise LedgerError(f"cannot create ledger {p}: folder {p.parent} does not exist")
        # SQLite silently opens an unwritable file read-only: find out now, not at the first flush.
        if p.exists() and not os.access(p, os.W_OK) or not os.access(p.parent, os.W_OK | os.X_OK):
            raise LedgerError(f"cannot write ledger {p}: permission denied (read-only file or folder)")
        uri = f"file:{p}"
        if not p.exists():
            private_file(p)
        elif not p.is_file():  # /dev/full, a pipe: SQLite would write a journal beside it
            raise LedgerError(f"{p} is not an nbexp ledger (not a regular file)")
    timeout_ms = busy_timeout_ms()
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout_ms / 1000, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        if readonly:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            check_version(version)
            if version < SCHEMA_VERSION:  # an older ledger: migrate it once, then read
                conn.close()
                connect(p).close()
                return connect(p, readonly=True)
            return conn
        _retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
        conn.execute("PRAGMA synchronous = NORMAL")
        _retry(lambda: migrate(conn))
        return conn
    except SchemaTooNewError as exc:
        conn.close()
        raise SchemaTooNewError(f"ledger {p}: {exc}") from None
    except LedgerBusy as exc:  # the migration could not take the write lock
        conn.close()
        raise LedgerError(f"ledger {p}: {exc.__cause__}") from exc.__cause__
    except sqlite3.DatabaseError as exc:
        msg = str(exc)
        if "not a database" in msg or "file is encrypted" in msg:
            raise LedgerError(f"{p} is not an nbexp ledger (not an SQLite file)") from None
        if "readonly" in msg or "read-only" in msg or "unable to open" in msg:
            raise LedgerError(f"cannot write ledger {p}: {msg}") from None
        raise LedgerError(f"ledger {p}: {msg}") from None


def private_file(path: Path) -> None:
    """Create ``path`` empty, readable by its owner only (0600), unless it exists or its folder
    is shared (group- or other-writable, or setgid): there the folder's owner chose who reads,
    so the file gets the usual mode. SQLite gives a ledger's -wal and -shm files its mode."""
    try:
        st = path.parent.stat()
        shared = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH | stat.S_ISGID)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 if shared else 0o600)
        os.close(fd)
    except FileExistsError:
        pass


def _read_only_folder(p: Path) -> bool:
    """Whether ``p``'s folder cannot take new files (so no -shm) and ``p`` has no -wal file pending."""
    return not os.access(p.parent, os.W_OK) and not Path(f"{p}-wal").exists()


def _retry(fn, attempts: int = 5):
    """Call ``fn``, retrying a few times when another process holds the lock."""
    for i in range(attempts):
        try:
            return fn()
        except (sqlite3.OperationalError, LedgerBusy) as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(0.05 * (2**i))
    return None


SPRINT_DAY_TURN_HOUR = 4


def sprint_of(ts: float) -> str:
    """Sprint id of a timestamp: its local date, the day turning at 04:00, so
    overnight runs belong to the evening that started them."""
    return _sprint_of_minute(int(ts // 60))  # local offsets are whole minutes: the minute decides


@functools.lru_cache(maxsize=64)  # a run opens on a cell's path: the date is worked out once a minute
def _sprint_of_minute(minute: int) -> str:
    import datetime as dt

    return (dt.datetime.fromtimestamp(minute * 60) - dt.timedelta(hours=SPRINT_DAY_TURN_HOUR)).date().isoformat()
