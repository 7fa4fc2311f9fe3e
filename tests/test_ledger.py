"""The ledger: locations, bad paths, schema versions, ids (docs/design.md "Failure policy")."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess

import pytest

from nbexp.errors import LedgerError, RunNotFound, SchemaTooNewError
from nbexp.ledger import connect, default_path
from nbexp.ledger.queries import Reader
from nbexp.ledger.schema import SCHEMA_VERSION


def test_default_location_and_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("NBEXP_LEDGER", raising=False)
    monkeypatch.delenv("NBEXP_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_path() == tmp_path / ".nbexp" / "ledger.sqlite"
    monkeypatch.setenv("NBEXP_HOME", str(tmp_path / "h"))
    assert default_path() == tmp_path / "h" / "ledger.sqlite"
    monkeypatch.setenv("NBEXP_LEDGER", str(tmp_path / "x.db"))
    assert default_path() == tmp_path / "x.db"


def test_new_ledger_is_migrated_wal(tmp_path):
    conn = connect(tmp_path / "l.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    # opening again migrates nothing and keeps data
    conn = connect(tmp_path / "l.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _bad_ledgers(tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    newer = tmp_path / "newer.sqlite"
    c = sqlite3.connect(newer)
    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    c.close()
    return {
        "missing-folder": (tmp_path / "nonexistent" / "dir" / "x.sqlite", "does not exist"),
        "directory": (d, "is a directory"),
        "not-sqlite": (junk, "not an nbexp ledger"),
        "newer-schema": (newer, "upgrade nbexp"),
    }


@pytest.mark.parametrize("case", ["missing-folder", "directory", "not-sqlite", "newer-schema"])
def test_bad_ledger_gives_one_clear_message_and_kernel_keeps_working(cell, tmp_path, case, capsys):
    path, words = _bad_ledgers(tmp_path)[case]
    res = cell(f"%nbexp track --ledger {path}")
    assert res.success
    err = capsys.readouterr().err
    assert words in err and str(path) in err
    assert err.strip().count("\n") == 0  # one line
    res = cell("x = 21 * 2")
    assert res.success and cell("x").result == 42
    cell("%nbexp status")
    assert "not tracking" in capsys.readouterr().out


def test_newer_schema_error_type(tmp_path):
    _, _ = _bad_ledgers(tmp_path)["newer-schema"]
    with pytest.raises(SchemaTooNewError):
        connect(tmp_path / "newer.sqlite")
    with pytest.raises(SchemaTooNewError):
        Reader(tmp_path / "newer.sqlite")


@pytest.fixture
def read_only_ledger(tmp_path):
    """A ledger file nobody may write: chmod for users, the immutable flag for root."""
    p = tmp_path / "ro.sqlite"
    connect(p).close()
    for extra in tmp_path.glob("ro.sqlite-*"):
        extra.unlink()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(p)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a file read-only for root here (chattr)")
        yield p
        subprocess.run(["chattr", "-i", str(p)])
    else:
        p.chmod(0o444)
        yield p


def test_read_only_ledger(read_only_ledger, cell, capsys):
    with pytest.raises(LedgerError, match="cannot write"):
        connect(read_only_ledger)
    res = cell(f"%nbexp track --ledger {read_only_ledger}")
    assert res.success
    err = capsys.readouterr().err
    assert "cannot write" in err and str(read_only_ledger) in err and err.strip().count("\n") == 0
    assert cell("y = 1 + 1").success


def test_run_ids_short_prefix_and_latest(cell, reader):
    cell("%nbexp track first")
    cell("%nbexp new second")
    cell("%nbexp new third")
    r = reader()
    runs = r.list_runs()
    assert all(len(x["id"]) == 6 for x in runs)
    assert r.resolve(runs[0]["id"][:4]) == runs[0]["id"]
    assert r.resolve("latest") == runs[0]["id"]
    assert r.resolve("latest~2") == runs[2]["id"]
    assert r.resolve("second") == runs[1]["id"]
    with pytest.raises(RunNotFound, match="no run tagged"):
        r.resolve("tag:best")
    with pytest.raises(RunNotFound, match="no run matches"):
        r.resolve("zzzzzz")
    with pytest.raises(RunNotFound, match="fewer runs"):
        r.resolve("latest~9")


def test_ambiguous_prefix(cell, reader, db):
    cell("%nbexp track")
    cell("%nbexp stop")
    conn = db()
    conn.execute("UPDATE runs SET id = 'abc111'")
    conn.execute(
        "INSERT INTO runs (id, session_id, sprint, status, start_time) "
        "SELECT 'abc222', session_id, sprint, status, start_time FROM runs"
    )
    conn.commit()
    with pytest.raises(RunNotFound, match="ambiguous"):
        reader().resolve("abc")


def test_older_ledger_is_migrated_and_keeps_its_data(tmp_path):
    from nbexp.ledger.schema import MIGRATIONS, split_statements

    p = tmp_path / "v1.sqlite"
    c = sqlite3.connect(p)
    for statement in split_statements(MIGRATIONS[0]):
        c.execute(statement)
    c.execute("PRAGMA user_version = 1")
    c.execute(
        "INSERT INTO runs (id, session_id, sprint, status, start_time, end_time) "
        "VALUES ('aaa111', 's', '2026-01-01', 'finished', 1, 2)"
    )
    c.executemany(
        "INSERT INTO metrics (run_id, key, step, value, wall) VALUES ('aaa111', 'loss', ?, ?, 0)",
        [(0, 3.0), (2, 1.0), (1, 2.0), (3, None)],
    )
    c.commit()
    c.close()
    with Reader(p) as r:  # a reader migrates an older ledger once
        assert r.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        run = r.run("aaa111")
        assert run["status"] == "finished" and run["gpu_util_mean"] is None
        loss = run["metrics"]["loss"]  # summaries backfilled by migration 5
        assert (loss["steps"], loss["nan"], loss["min"], loss["max"]) == (4, 1, 1.0, 3.0)
        assert math.isnan(loss["last"])


@pytest.mark.parametrize("runs", [3, 5001])
def test_upgrading_a_big_old_ledger_says_so_on_stderr_first(tmp_path, capsys, runs):
    """Migration 10 rebuilds every table (42 s at 100,000 runs): the first command that opens such a ledger says
    what it is doing before it starts, and when it is done; a small ledger upgrades silently."""
    from nbexp.ledger.schema import MIGRATIONS, split_statements

    p = tmp_path / "v9.sqlite"
    c = sqlite3.connect(p)
    for number in range(9):
        for statement in split_statements(MIGRATIONS[number]):
            c.execute(statement)
    c.execute("PRAGMA user_version = 9")
    c.execute("INSERT INTO sessions (id, host, started) VALUES ('s', 'box', 1)")
    c.executemany(
        "INSERT INTO runs (id, session_id, sprint, status, start_time, end_time) "
        "VALUES (?, 's', '2026-01-01', 'finished', ?, ?)",
        [(f"r{i:05d}", i, i + 1) for i in range(runs)],
    )
    c.commit()
    c.close()
    with Reader(p) as r:
        assert r.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == runs
    err = capsys.readouterr().err
    if runs > 5000:
        assert f"nbexp: upgrading the ledger {p} (5,001 runs)" in err.splitlines()[0]
        assert err.splitlines()[1].startswith("nbexp: ledger upgraded in ")
    else:
        assert err == ""
    with Reader(p):  # once
        assert capsys.readouterr().err == ""
