"""The ledger's write side over a direct connection (the server's and the CLI's way): named
``Store`` methods inside ``transaction()``. Fast: a real SQLite file, no kernel."""

from __future__ import annotations

import sqlite3

import pytest

from nbexp.capture.secrets import scrub_text
from nbexp.errors import LedgerBusy
from nbexp.ledger import Rollback, connect, transaction
from nbexp.ledger.queries import Reader
from nbexp.ledger.schema import FINISHED
from nbexp.ledger.store import Store

SECRET = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # a GitHub token's shape


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("NBEXP_BUSY_TIMEOUT_MS", "200")
    path = tmp_path / "ledger.sqlite"
    conn = connect(path)
    store = Store(conn, scrub=scrub_text)
    with transaction(conn):
        store.open_session(
            {
                "id": "s1",
                "sprint": "2024-05-01",
                "host": "h",
                "pid": 1,
                "started": 1.0,
                "heartbeat": 1.0,
                "notebook": f"/home/me/{SECRET}.ipynb",
            }
        )
        store.open_run("abc123", "s1", "2024-05-01", f"try {SECRET}", "track", 1.0)
    yield path, conn, store
    conn.close()


def test_a_run_edited_through_the_store_is_read_back_scrubbed(db):
    path, conn, store = db
    with transaction(conn):
        store.edit_run("abc123", note=f"token {SECRET}", starred=True, add_tags=["best", f"k-{SECRET}"])
        store.end_run("abc123", FINISHED, 2.0, None)
    with Reader(path) as r:
        run = r.run("abc123")
        tags = r.tags(["abc123"])["abc123"]
    assert run["status"] == FINISHED and run["starred"] == 1
    texts = [run["name"], run["note"], run["session"]["notebook"], *tags]
    assert all(SECRET not in t for t in texts), texts
    assert "best" in tags and run["note"].startswith("token ")


def test_a_failed_block_writes_nothing(db):
    path, conn, store = db
    with pytest.raises(ZeroDivisionError):
        with transaction(conn):
            store.set_note("abc123", "half written")
            raise ZeroDivisionError("a failure inside the block")
    with transaction(conn):
        store.add_tags("abc123", ["dry"])
        raise Rollback()  # a dry run ends quietly, undone
    assert not conn.in_transaction
    with Reader(path) as r:
        assert r.run("abc123")["note"] is None
        assert r.tags(["abc123"]).get("abc123", []) == []


def test_a_locked_ledger_raises_ledger_busy_and_keeps_the_other_writer(db):
    path, conn, store = db
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LedgerBusy, match="busy"):
            with transaction(conn):
                store.set_note("abc123", "never")
        assert not conn.in_transaction  # nothing began, nothing to roll back
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Reader(path) as r:
        assert r.run("abc123")["note"] is None
