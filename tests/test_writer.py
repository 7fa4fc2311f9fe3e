"""The writer never dies and never loses other rows (docs/design.md "Failure policy").

Each test feeds the writer an input that used to kill its thread (an int SQLite cannot hold,
text that is not UTF-8, a constraint violation), then checks that every other row of the same
batch landed, that one event says what was left out, that the ledger's write lock is free for
other processes, and that later points still land.
"""

from __future__ import annotations

import sqlite3

import pytest

import nbexp
from nbexp.errors import InvalidArgument
from nbexp.ledger import connect
from nbexp.ledger.writer import Writer

pytestmark = pytest.mark.slow  # the writer thread against a locked ledger, over time


@pytest.fixture
def writer(tmp_path):
    path = tmp_path / "ledger.sqlite"
    warnings = []
    w = Writer(connect(path), "s1", on_error=lambda cause, msg: warnings.append((cause, msg)), flush_interval=0.05)
    w.warnings = warnings
    yield w, path
    w.close()


def lock_is_free(path) -> bool:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


BAD_ROWS = {
    "step beyond 64 bits": (
        "INSERT INTO metrics (run_id, key, step, value, wall) VALUES (?,?,?,?,?)",
        ("r1", "x", 10**30, 1.0, 0.0),
    ),
    "lone surrogate in a name": (
        "INSERT INTO runs (id, session_id, sprint, name, kind, status, start_time) VALUES (?,?,?,?,?,?,?)",
        ("r2", "s1", "2026-01-01", "run-caf\udce9.csv", "new", "running", 0.0),
    ),
    "duplicate primary key": ("INSERT INTO sprints (id) VALUES (?)", ("2026-01-01",)),
    "a param value of a type SQLite cannot bind": (
        "INSERT INTO params (run_id, key, value, type) VALUES (?,?,?,?)",
        ("r1", "obj", object(), "str"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_is_left_out_and_everything_else_lands(writer, case):
    w, path = writer
    w.execute("INSERT INTO sprints (id) VALUES (?)", ("2026-01-01",))
    w.execute(
        "INSERT INTO runs (id, session_id, sprint, kind, status, start_time) VALUES (?,?,?,?,?,?)",
        ("r1", "s1", "2026-01-01", "new", "running", 0.0),
    )
    sql, row = BAD_ROWS[case]
    loss = [("r1", "loss", i, 1.0 / (i + 1), 0.0) for i in range(200)]
    if sql.startswith("INSERT INTO metrics"):  # the bad row in the middle of a batch of good ones
        w.executemany(sql, loss[:100] + [row] + loss[100:])
    else:
        w.executemany("INSERT INTO metrics (run_id, key, step, value, wall) VALUES (?,?,?,?,?)", loss)
        w.execute(sql, row)
    for i in range(500):
        w.points.append(("r1", "acc", i, 0.5, 0.0))
    assert w.flush(timeout=30)
    assert w._thread.is_alive()
    assert lock_is_free(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM metrics WHERE key = 'loss'").fetchone()[0] == 200
    assert conn.execute("SELECT count FROM metric_summaries WHERE key = 'acc'").fetchone()[0] == 500
    assert conn.execute("SELECT count(*) FROM runs WHERE id = 'r1'").fetchone()[0] == 1
    if case == "lone surrogate in a name":  # kept, its odd character escaped
        assert conn.execute("SELECT name FROM runs WHERE id = 'r2'").fetchone()[0] == "run-caf\\udce9.csv"
    else:
        events = conn.execute("SELECT cause, message FROM events").fetchall()
        assert len(events) == 1 and events[0][0] == "ledger-row" and "1 row(s)" in events[0][1]
        assert [c for c, _ in w.warnings] == ["ledger-row"]
    # the thread keeps running: later points land
    w.points.append(("r1", "later", 0, 1.0, 0.0))
    assert w.flush(timeout=30)
    assert conn.execute("SELECT count(*) FROM metrics WHERE key = 'later'").fetchone()[0] == 1
    conn.close()


def test_locked_ledger_keeps_the_batch_for_the_next_try(tmp_path, monkeypatch):
    path = tmp_path / "ledger.sqlite"
    conn = connect(path)
    conn.execute("PRAGMA busy_timeout = 50")
    w = Writer(conn, "s1", flush_interval=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        w.points.append(("r1", "loss", 0, 1.0, 0.0))
        assert not w.flush(timeout=0.5)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert w.flush(timeout=30)
    w.close()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM metrics").fetchone()[0] == 1


@pytest.fixture
def run(cell):
    cell("%nbexp track")
    from nbexp import tracker

    return tracker.active_run()


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"step": 10**30, "x": 1.0}, "step"),
        ({"step": 2**63, "x": 1.0}, "step"),
        ({"x": 10**400}, "'x'"),
    ],
)
def test_log_rejects_what_sqlite_cannot_hold_and_later_points_land(run, reader, kwargs, named):
    with pytest.raises(InvalidArgument, match=named):
        nbexp.log(**kwargs)
    nbexp.log(step=2**63 - 1, x=2.0)
    with pytest.raises(InvalidArgument, match="step"):
        nbexp.log(x=3.0)  # the step after the largest one
    nbexp.log(step=5, y=1.0)
    from nbexp import tracker

    tracker.active_session().flush()
    s = reader().metric_summaries([run.id])[run.id]
    assert s["x"]["last"] == 2.0 and s["x"]["steps"] == 1 and s["y"]["steps"] == 1


def test_run_name_from_os_listdir_keeps_the_run_and_its_points(run, reader):
    with nbexp.run("run-caf\udce9.csv", lr=0.1) as r:
        for i in range(500):
            nbexp.log(loss=1.0 / (i + 1))
    from nbexp import tracker

    tracker.active_session().flush()
    got = reader().run(r.id)
    assert got["name"] == "run-caf\\udce9.csv"
    assert got["metrics"]["loss"]["steps"] == 500 and got["params"]["lr"] == 0.1


def test_run_with_bad_name_or_param_writes_nothing(run, reader):
    from nbexp import tracker

    tracker.active_session().flush()
    before = len(reader().list_runs())
    with pytest.raises(InvalidArgument, match="name"):
        nbexp.run(123)
    with pytest.raises(InvalidArgument, match="'model'"):
        nbexp.run("ok", model=object())
    tracker.active_session().flush()
    assert len(reader().list_runs()) == before


def test_secret_in_a_run_name_is_scrubbed(run, reader):
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    with nbexp.run(f"deploy {token}") as r:
        nbexp.log(acc=1.0)
    from nbexp import tracker

    tracker.active_session().flush()
    assert token not in reader().run(r.id)["name"]


def test_ledger_files_are_private(tmp_path, monkeypatch, cell):
    home = tmp_path / "home" / ".nbexp"
    monkeypatch.setenv("NBEXP_HOME", str(home))
    cell("%nbexp track")
    cell("acc = 0.5")
    from nbexp import tracker

    tracker.active_session().flush()
    assert home.stat().st_mode & 0o777 == 0o700
    for name in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"):
        assert (home / name).stat().st_mode & 0o777 == 0o600, name
    cell("%nbexp stop")


def test_ledger_in_a_shared_folder_keeps_the_folders_choice(tmp_path, cell):
    shared = tmp_path / "team"
    shared.mkdir()
    shared.chmod(0o2775)  # setgid, group-writable: the team reads each other's runs
    cell(f"%nbexp track --ledger {shared / 'ledger.sqlite'}")
    cell("%nbexp stop")
    assert (shared / "ledger.sqlite").stat().st_mode & 0o077 != 0
