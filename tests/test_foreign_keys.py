"""Foreign keys (#19): every child table points at runs, sessions or code, the links hold after real writes,
a bundle import and a run delete, sqlite-utils sees them, and an old ledger migrates with its data."""

from __future__ import annotations

import sqlite3

import pytest

from nbexp.export.bundle import export_bundle, import_bundle
from nbexp.ledger import connect
from nbexp.ledger.queries import Reader
from nbexp.ledger.schema import MIGRATIONS, SCHEMA_VERSION, split_statements

pytestmark = pytest.mark.slow  # real shell sessions, bundles, several ledgers

# child table -> the (column, parent table) links it must declare
LINKS = {
    "runs": {("session_id", "sessions")},
    "run_tags": {("run_id", "runs")},
    "params": {("run_id", "runs")},
    "metrics": {("run_id", "runs")},
    "cells": {("session_id", "sessions"), ("run_id", "runs"), ("code_hash", "code")},
    "events": {("session_id", "sessions"), ("run_id", "runs")},
    "host_samples": {("session_id", "sessions")},
    "gpu_samples": {("session_id", "sessions")},
    "run_data": {("run_id", "runs")},
    "metric_summaries": {("run_id", "runs")},
    "metric_sources": {("run_id", "runs")},
    "run_tables": {("run_id", "runs")},
    "cell_outputs": {("session_id", "sessions"), ("run_id", "runs")},
    "artifacts": {("run_id", "runs")},
    "explanations": {("run_a", "runs"), ("run_b", "runs")},
    "ablation_of": {("run_id", "runs"), ("explanation_id", "explanations")},
}


def violations(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()


def counts(path, tables) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


@pytest.fixture
def tracked(cell, ledger_path, tmp_path):
    """A ledger a real tracked session wrote: two runs with params, metrics, a table, a tag, data, a printed
    output and an artifact file, and cells outside any run."""
    cell("%nbexp track --sample-hz 20 fk")
    cell("import numpy as np, pandas as pd\nLR = 0.1\nX = pd.DataFrame({'a': np.arange(20.0)})")
    cell(
        f"import nbexp\nfor i in range(30):\n    nbexp.log(loss=1 / (i + 1))\nscore = float(X.a.sum()) * LR\n"
        f"open({str(tmp_path / 'model.txt')!r}, 'w').write('weights')\nprint('trained', score)"
    )
    cell("LR = 0.3")
    cell("import nbexp\nfor i in range(30):\n    nbexp.log(loss=1 / (i + 1))\nscore = float(X.a.sum()) * LR")
    cell("%nbexp tag keep")
    cell("from nbexp import tracker\nrun = tracker.active_run()")
    cell("run.log_table('cv', ['C', 'score'], [[0.1, 0.9]], source='sklearn')")
    cell("%nbexp stop")
    return ledger_path


def test_every_child_table_declares_its_links_and_sqlite_utils_sees_them(tmp_path):
    import sqlite_utils

    path = tmp_path / "new.sqlite"
    connect(path).close()
    db = sqlite_utils.Database(path)
    try:
        for table, links in LINKS.items():
            found = {(fk.column, fk.other_table) for fk in db[table].foreign_keys}
            assert links <= found, table
        assert {fk.other_column for fk in db["params"].foreign_keys} == {"id"}
    finally:
        db.close()


def test_links_hold_after_a_session_a_bundle_import_and_a_run_delete(tracked, tmp_path):
    assert violations(tracked) == []
    with Reader(tracked) as r:
        runs = r.list_runs(sprint="all")
        assert len(runs) == 2
        first, second = sorted(runs, key=lambda x: x["start_time"])
    written = counts(tracked, ["params", "metrics", "cells", "cell_outputs", "artifacts", "run_tags", "run_data"])
    assert all(written.values()), written  # the session wrote every kind of child row

    # a bundle of one run carries its session's cells, some of another run: imported, the links still hold
    bundle = tmp_path / "one.nbexp"
    src = connect(tracked)
    try:
        export_bundle(src, [first["id"]], bundle)
    finally:
        src.close()
    other = tmp_path / "other.sqlite"
    connect(other).close()
    assert import_bundle(bundle, other)["runs_added"] == 1
    assert violations(other) == []
    # the other run, imported later, gets its cells (already there with the session) back
    bundle2 = tmp_path / "two.nbexp"
    src = connect(tracked)
    try:
        export_bundle(src, [second["id"]], bundle2)
    finally:
        src.close()
    assert import_bundle(bundle2, other)["runs_added"] == 1
    assert violations(other) == []
    with Reader(tracked) as mine, Reader(other) as theirs:
        for run in (first, second):
            assert len(theirs.run(run["id"])["lineage"]) == len(mine.run(run["id"])["lineage"]) > 0

    # deleting a run with foreign keys on (sqlite-utils, datasette, a user's sqlite3) takes its rows along
    conn = sqlite3.connect(tracked)
    conn.execute("PRAGMA foreign_keys = ON")
    with conn:
        conn.execute("DELETE FROM runs WHERE id = ?", (first["id"],))
    for table in ("params", "metrics", "metric_summaries", "cell_outputs", "artifacts", "run_tags", "run_data"):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", (first["id"],)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM params WHERE run_id = ?", (second["id"],)).fetchone()[0] > 0
    # its cells stay in the session's history, no longer in a run
    assert conn.execute("SELECT count(*) FROM cells WHERE run_id IS NULL").fetchone()[0] > 0
    conn.close()
    assert violations(tracked) == []
    with Reader(tracked) as r:
        assert [x["id"] for x in r.list_runs(sprint="all")] == [second["id"]]


def _old_ledger(path, version: int) -> sqlite3.Connection:
    c = sqlite3.connect(path)
    for number in range(version):
        for statement in split_statements(MIGRATIONS[number]):
            c.execute(statement)
    c.execute(f"PRAGMA user_version = {version}")
    return c


def test_a_schema_6_ledger_migrates_with_its_data_and_its_orphans_dealt_with(tmp_path):
    path = tmp_path / "v6.sqlite"
    c = _old_ledger(path, 6)
    c.execute("INSERT INTO sessions (id, host, started) VALUES ('s1', 'box', 1)")
    c.execute("INSERT INTO code (hash, source) VALUES ('h1', 'LR = 0.1'), ('h2', 'fit()')")
    c.executemany(
        "INSERT INTO runs (id, session_id, sprint, name, status, start_time, end_time, replay_of) "
        "VALUES (?, ?, '2026-01-01', ?, 'finished', ?, ?, ?)",
        [
            ("aaa111", "s1", "base", 1, 2, None),
            ("bbb222", "s1", "replay", 3, 4, "aaa111"),
            ("ccc333", "gone", "lost session", 5, 6, None),
        ],
    )
    c.executemany(
        "INSERT INTO params (run_id, key, value, type) VALUES (?, ?, ?, ?)",
        [
            ("aaa111", "lr", "0.1", "float"),
            ("bbb222", "lr", "0.3", "float"),
            ("ccc333", "lr", "1", "int"),
            ("zzz999", "lr", "9", "int"),
        ],
    )
    c.executemany(
        "INSERT INTO metrics (run_id, key, step, value, wall) VALUES (?, 'loss', ?, ?, 0)",
        [("aaa111", 0, 2.0), ("aaa111", 1, 1.0), ("bbb222", 0, 0.5), ("zzz999", 0, 7.0)],
    )
    c.execute("INSERT INTO run_tags (run_id, tag) VALUES ('aaa111', 'keep'), ('zzz999', 'lost')")
    c.executemany(
        "INSERT INTO cells (session_id, run_id, cell_key, code_hash, start, status) VALUES (?, ?, ?, ?, ?, 'ok')",
        [("s1", "aaa111", "c1", "h1", 1), ("s1", "zzz999", "c2", "h2", 2), ("s1", None, "c3", "nope", 3)],
    )
    c.execute(
        "INSERT INTO events (session_id, run_id, time, level, cause, message) "
        "VALUES ('s1', 'zzz999', 1, 'warning', 'x', 'kept')"
    )
    c.execute("INSERT INTO host_samples (session_id, time) VALUES ('s1', 1), ('nobody', 2)")
    c.commit()
    c.close()

    with Reader(path) as r:  # a reader migrates an older ledger once
        assert r.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        runs = {x["id"]: x for x in r.list_runs(sprint="all")}
        assert set(runs) == {"aaa111", "bbb222", "ccc333"}  # every run kept, the one of a lost session too
        assert runs["aaa111"]["params"] == {"lr": 0.1} and runs["aaa111"]["tags"] == ["keep"]
        assert runs["ccc333"]["params"] == {"lr": 1} and runs["ccc333"]["name"] == "lost session"
        assert runs["bbb222"]["replay_of"] == "aaa111"
        # the full-text index still finds runs by name and params after the rebuild kept the rowids
        assert [x["id"] for x in r.list_runs(sprint="all", search="replay")] == ["bbb222"]
    conn = sqlite3.connect(path)
    try:
        # orphans: derived rows of a missing run are gone, a cell and event keep their row without the run,
        # a cell whose code is missing is gone, the lost session is a bare row
        assert conn.execute("SELECT count(*) FROM params WHERE run_id = 'zzz999'").fetchone()[0] == 0
        assert conn.execute("SELECT run_id, count(*) FROM metrics GROUP BY run_id").fetchall() == [
            ("aaa111", 2),
            ("bbb222", 1),
        ]
        assert conn.execute("SELECT count(*) FROM run_tags WHERE run_id = 'zzz999'").fetchone()[0] == 0
        assert conn.execute("SELECT cell_key, run_id FROM cells ORDER BY start").fetchall() == [
            ("c1", "aaa111"),
            ("c2", None),
        ]
        assert conn.execute("SELECT run_id, message FROM events").fetchall() == [(None, "kept")]
        assert conn.execute("SELECT session_id FROM host_samples").fetchall() == [("s1",)]
        assert conn.execute("SELECT id, host FROM sessions ORDER BY id").fetchall() == [("gone", None), ("s1", "box")]
        assert conn.execute("SELECT count(*) FROM runs_view").fetchone()[0] == 3
    finally:
        conn.close()
    assert violations(path) == []
