"""The frame of ``nbexp.runs()`` stored in the ledger (schema 15, issue 17): a new process reads the stored columns
and re-reads only the runs written since; the frame it gives is, after every kind of write, the frame a full read
gives (same columns, dtypes, values and order)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest

import nbexp
from nbexp import api
from nbexp.capture.secrets import scrub_text
from nbexp.ledger import connect, queries, transaction
from nbexp.ledger.queries import Reader
from nbexp.ledger.store import Store

_RUN_COLUMNS = Reader.run_columns  # the full read, before a test counts its calls
FEW = 2  # FEW_RUNS in these tests: ledgers of a few runs take the path of 100,000 (columns read key by key, stored)


def full(path) -> object:
    """The frame of every run read in full from the rows (what ``nbexp.runs()`` gives with nothing stored)."""
    with Reader(path) as r:
        runs, _ = r.query_runs(sprint="all", details=False)
        ids = [run["id"] for run in runs]
        return api._frame(runs, ids, _RUN_COLUMNS(r, ids), r.path)


def settle() -> None:
    """Wait until this process's tracked session has written what its cells gave (its writer is a thread)."""
    from nbexp import tracker

    session = tracker.active_session()
    if session is not None:
        session.flush()


def stored_seq(path) -> int | None:
    with closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT seq FROM frame_cache").fetchone()
    return None if row is None else row[0]


@pytest.fixture
def fresh(ledger_path, monkeypatch):
    """``nbexp.runs()`` as the first call of a new process (no frame kept in this one), the frame storing thread
    waited for; ``fresh.reads``: how many full reads (``Reader.run_columns``) were made."""
    monkeypatch.setattr(queries, "FEW_RUNS", FEW)
    reads: list[int] = []
    run_columns = Reader.run_columns
    monkeypatch.setattr(Reader, "run_columns", lambda self, ids: reads.append(len(ids)) or run_columns(self, ids))

    def call(ledger=None):
        settle()
        api._LAST.clear()
        frame = nbexp.runs(ledger=str(ledger or ledger_path))
        for thread in list(api._WRITERS):
            thread.join()
        return frame

    call.reads = reads  # type: ignore[attr-defined]
    return call


def same(frame, path) -> None:
    import pandas as pd

    pd.testing.assert_frame_equal(frame, full(path))


def test_stored_frame_brought_up_to_date_equals_a_full_read_after_each_kind_of_write(cell, ledger_path, fresh):
    """Each write a user makes (a new run, a param added to an old run that changes its column's type, a rename, a
    tag, a param dropped, a run stopped, an imported bundle, a run deleted) shows in the next process's frame, which
    re-reads only the runs written since the stored columns; the frame is the full read's, dtype for dtype."""
    cell("%nbexp track --sample-hz 0 sweep")
    for i, (lr, opt) in enumerate([(0.1, "sgd"), (0.3, "adam"), (1, "sgd"), (0.03, "adam")]):
        cell(f"%%nbexp run r{i}\nlr = {lr}\nepochs = {i + 1}\nopt = {opt!r}\nlayers = [{i}, 2]\nacc = {0.5 + i / 10}")
    first = fresh()
    assert fresh.reads == [len(first)] and len(first) > FEW  # nothing stored yet: read in full, then stored
    seq = stored_seq(ledger_path)
    assert seq is not None
    same(first, ledger_path)
    assert (
        first["params.lr"].dtype == "float64" and first["params.epochs"].dtype == "float64"
    )  # the track run lacks them

    again = fresh()
    assert len(fresh.reads) == 1  # from the stored columns
    same(again, ledger_path)

    ids = dict(zip(first["name"], first["run_id"]))
    conn = connect(ledger_path)
    store = Store(conn, scrub=scrub_text)
    writes = [
        ("a new run with a new param", lambda: cell("%%nbexp run r9\nlr = 0.05\nwarmup = True\nacc = 0.99")),
        (
            "a text param on an old run (lr turns to objects)",
            lambda: store.set_params(ids["r1"], [("lr", json.dumps("high"), "str", "user")]),
        ),
        ("a param added to an old run", lambda: store.set_params(ids["r0"], [("seed", "7", "int", "user")])),
        ("a rename and a tag", lambda: store.edit_run(ids["r2"], name="renamed", add_tags=["best"])),
        ("a param dropped", lambda: store.drop_params(ids["r3"], ["opt"])),
        ("the tracked run stopped", lambda: cell("%nbexp stop")),
    ]
    for what, write in writes:
        if what.startswith(("a new run", "the tracked run")):
            write()  # a cell: the session's own writer
        else:
            with transaction(conn):
                write()
        frame = fresh()
        assert len(fresh.reads) == 1, what  # the stored columns, and the runs written since
        same(frame, ledger_path)
    frame = fresh()
    assert frame.loc[frame["run_id"] == ids["r1"], "params.lr"].item() == "high"
    assert frame["params.lr"].dtype == object and frame["params.warmup"].dtype == object
    assert frame.loc[frame["run_id"] == ids["r2"], "name"].item() == "renamed"

    bundle = ledger_path.parent / "b.nbexp"
    cell(f"%nbexp export bundle {bundle} --all")
    # a run deleted (nbexp deletes none: another tool's SQL) takes its text value along: lr is numbers again
    with transaction(conn):
        conn.execute("DELETE FROM params WHERE run_id = ?", (ids["r1"],))
        conn.execute("DELETE FROM runs WHERE id = ?", (ids["r1"],))
    conn.close()
    frame = fresh()
    assert len(fresh.reads) == 1 and ids["r1"] not in set(frame["run_id"])
    assert frame["params.lr"].dtype == "float64"
    same(frame, ledger_path)
    # ... and imported back from the bundle
    cell(f"%nbexp import {bundle}")
    frame = fresh()
    assert len(fresh.reads) == 1 and frame.loc[frame["run_id"] == ids["r1"], "params.lr"].item() == "high"
    same(frame, ledger_path)
    assert stored_seq(ledger_path) == seq  # fewer than STORE_AFTER runs changed: not stored again

    api.STORE_AFTER, keep = 1, api.STORE_AFTER
    try:
        cell("%%nbexp run r10\nlr = 0.2\nacc = 0.3")
        same(fresh(), ledger_path)
        assert stored_seq(ledger_path) > seq  # stored again by the thread
        same(fresh(), ledger_path)
        assert len(fresh.reads) == 1
    finally:
        api.STORE_AFTER = keep


def test_a_run_whose_kernel_dies_shows_crashed_with_the_stored_frame(cell, ledger_path, fresh, tmp_path):
    """A run stored as running is resolved at each read: running while its kernel lives, crashed once it is gone,
    though nothing was written and the frame came from the stored columns."""
    cell("%nbexp track --sample-hz 0 here")
    for i in range(3):
        cell(f"%%nbexp run r{i}\nlr = {i}\nacc = 0.5")
    fresh()
    kernel = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "sh = InteractiveShell.instance()\n"
            "for code in ('%load_ext nbexp', '%nbexp track --sample-hz 0 doomed', 'lr = 0.7\\nacc = 0.1'):\n"
            "    sh.run_cell(code, store_history=True)\n"
            "print('ready', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert kernel.stdout is not None
        assert "ready" in iter(lambda: kernel.stdout.readline().strip(), "")  # after nbexp's own lines
        frame = fresh()
        assert frame.loc[frame["name"] == "doomed", "status"].item() == "running"
        same(frame, ledger_path)
        kernel.kill()
        kernel.wait()
        frame = fresh()
        assert frame.loc[frame["name"] == "doomed", "status"].item() == "crashed"
        same(frame, ledger_path)
        assert len(fresh.reads) == 1  # the first call only: every later one from the stored columns
    finally:
        kernel.kill()
        kernel.wait()


def test_a_stored_frame_of_another_format_or_damaged_is_not_used(cell, ledger_path, fresh):
    """Stored columns nbexp cannot read as its own (another format, parts missing or of another length, an array
    type it does not read, a column it builds missing) are ignored: the frame is read in full, never built from
    them, and stored again."""
    cell("%nbexp track --sample-hz 0")
    for i in range(3):
        cell(f"%%nbexp run r{i}\nlr = {i / 10}\nacc = 0.5")
    want = fresh()
    with closing(sqlite3.connect(ledger_path)) as conn:
        header = json.loads(conn.execute("SELECT header FROM frame_cache").fetchone()[0])
    renamed = [["nome", *e[1:]] if e[0] == "name" else e for e in header["columns"]]
    spoilt = [
        ("UPDATE frame_cache SET header = ?", (json.dumps({**header, "format": 99}),)),
        ("UPDATE frame_cache SET header = ?", (json.dumps({**header, "n": header["n"] + 1}),)),
        ("UPDATE frame_cache SET header = ?", (json.dumps({**header, "columns": [["ids", "|O"]]}),)),
        ("DELETE FROM frame_cache_parts WHERE pos = (SELECT max(pos) FROM frame_cache_parts)", ()),
        # another version's columns (a field this nbexp builds is not there): read in full, not a KeyError forever
        ("UPDATE frame_cache SET header = ?", (json.dumps({**header, "columns": renamed}),)),
    ]
    import pandas as pd

    for n, (sql, args) in enumerate(spoilt, start=2):
        with closing(sqlite3.connect(ledger_path)) as conn, conn:
            conn.execute(sql, args)
        frame = fresh()
        assert len(fresh.reads) == n, sql  # read in full, and stored again in their place
        pd.testing.assert_frame_equal(frame, want)
        pd.testing.assert_frame_equal(fresh(), want)
        assert len(fresh.reads) == n, sql  # from the columns stored again


def test_a_bundle_carries_no_stored_frame_and_reads_right(cell, ledger_path, fresh, tmp_path):
    """A bundle holds the ledger's rows, not its stored frame, and has no change log triggers: read as a ledger it
    gives its own runs, read in full, and nothing is stored in it."""
    cell("%nbexp track --sample-hz 0")
    for i in range(3):
        cell(f"%%nbexp run r{i}\nlr = {i / 10}\nacc = 0.5")
    fresh()
    assert stored_seq(ledger_path) is not None
    bundle = tmp_path / "b.nbexp"
    settle()
    cell(f"%nbexp export bundle {bundle} --all")
    assert stored_seq(bundle) is None
    frame = fresh(bundle)
    same(frame, bundle)
    assert stored_seq(bundle) is None


def read_only(folder, *argv) -> subprocess.CompletedProcess:
    """Run ``argv`` with ``folder`` mounted read-only over itself, seen by that process alone (as
    tests/test_readonly_media.py does: root passes every permission check)."""
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(folder), *argv],
        capture_output=True,
        text=True,
    )


def test_runs_on_read_only_media_reads_in_full_and_stores_nothing(cell, ledger_path, fresh, tmp_path):
    """A ledger on read-only media gives its frame (the stored columns when it has them, else a full read) with no
    error, and nothing is written to it or beside it."""
    media = tmp_path / "media"
    media.mkdir()
    if shutil.which("unshare") is None or read_only(media, "true").returncode != 0:
        pytest.skip("needs unshare and mount (root with CAP_SYS_ADMIN) to make a read-only folder")
    cell("%nbexp track --sample-hz 0")
    for i in range(3):
        cell(f"%%nbexp run r{i}\nlr = {i / 10}\nacc = 0.5")
    copy = media / "ledger.sqlite"
    settle()
    with closing(sqlite3.connect(ledger_path)) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)  # no frame stored yet
    fresh()  # stored in the ledger, then a run more: the copy has stored columns and a run written since
    cell("%%nbexp run r9\nlr = 0.9\nacc = 0.5")
    stored = media / "stored.sqlite"
    settle()
    with closing(sqlite3.connect(ledger_path)) as src, closing(sqlite3.connect(stored)) as dst:
        src.backup(dst)
    assert stored_seq(copy) is None and stored_seq(stored) is not None
    files = {p: p.read_bytes() for p in (copy, stored)}
    code = (
        "import json, sys, nbexp\n"
        "from nbexp import api\n"
        "from nbexp.ledger import queries\n"
        f"queries.FEW_RUNS = {FEW}\n"
        "frames = [nbexp.runs(ledger=path) for path in sys.argv[1:]]\n"
        "[t.join() for t in api._WRITERS]\n"
        "print(json.dumps([f.to_json(date_format='iso') for f in frames]))\n"
    )
    res = read_only(media, sys.executable, "-c", code, str(copy), str(stored))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert all(p.read_bytes() == data for p, data in files.items())  # nothing stored, nothing changed
    assert sorted(p.name for p in media.iterdir()) == ["ledger.sqlite", "stored.sqlite"]  # nothing beside them
    got = json.loads(res.stdout)
    assert got == [full(path).to_json(date_format="iso") for path in (copy, stored)]
    assert len(json.loads(got[1])["run_id"]) == len(json.loads(got[0])["run_id"]) + 1
