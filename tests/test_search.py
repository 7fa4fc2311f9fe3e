"""Full-text search over runs (names, notes, tags, params and cell code, FTS5 ranked by bm25), the
views sqlite-utils and datasette show, an old ledger migrating into both, and bundles without them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

import nbexp
from nbexp.cli import main
from nbexp.ledger.queries import Reader
from nbexp.ledger.schema import MIGRATIONS, split_statements

pytestmark = pytest.mark.slow  # full-text search on ledgers built in real shells, the CLI as a process per query

HOSTILE = [
    '"',
    '"focal',
    "*",
    "focal*",
    "NEAR(",
    "NEAR(focal loss)",
    "-",
    "-focal",
    "OR",
    "focal OR gamma",
    "a:b",
    "^x",
    "col:focal",
    "'; DROP TABLE runs; --",
    "(((",
    ")",
    "focal AND",
    "\\",
    "%_",
    "   ",
]


def ids(**kw):
    return nbexp.runs(sprint="all", **kw)["run_id"].tolist()


@pytest.fixture
def two_runs(cell, ledger_path):
    """An older run whose code uses a focal loss, noted and tagged; a newer one with cross-entropy."""
    cell("%nbexp track --sample-hz 0 first")
    cell(
        "import math\n\n\ndef focal_loss(p):  # down-weights the easy examples\n"
        "    return -((1 - p) ** 2) * math.log(p)"
    )
    cell("LR = 0.1\nval_loss = focal_loss(LR + 0.6)")  # not a literal argument: focal_loss.p is no param
    cell("%nbexp note augmentation helped on the rare class")
    cell("%nbexp tag sweep-A")
    cell("%nbexp stop")
    cell("%nbexp track --sample-hz 0 second")
    cell("import math\n\n\ndef xent(p):\n    return -math.log(p)")
    cell("LR = 0.3\nval_loss = xent(0.7)")
    cell("%nbexp stop")
    older, newer = ids()[::-1]
    return ledger_path, older, newer


def test_a_word_only_in_its_code_finds_the_run(two_runs):
    path, older, newer = two_runs
    run = nbexp.get_run(older)
    assert "focal" not in repr(run["params"]).lower() and "focal" not in (run["note"] or "")
    assert ids(search="focal") == [older]
    assert ids(search="FOCAL_LOSS") == [older]  # any case; "_" is a character, not a wildcard
    assert ids(search="easy examples") == [older]  # each word, in any order of the run's text
    assert ids(search="xent") == [newer]
    res = CliRunner().invoke(main, ["--ledger", str(path), "ls", "--sprint", "all", "--search", "focal_loss"])
    assert res.exit_code == 0 and res.output.splitlines()[1].split()[:2] == [older, "first"], res.output
    assert len(res.output.splitlines()) == 2


def test_notes_tags_names_params_and_id_prefixes(two_runs):
    _path, older, newer = two_runs
    assert ids(search="augmentation") == [older]  # a note word
    assert ids(search="rare class") == [older]
    assert ids(search="sweep-a") == [older]  # a tag
    assert ids(search="secon") == [newer]  # part of a name
    assert ids(search="lr=0.3") == [newer]  # key=value, as before
    assert ids(search="LR=0.1") == [older]
    assert ids(search=older[:4]) == [older]  # an id prefix
    assert ids(search="focal augmentation") == [older]  # words found in different places of one run
    assert ids(search="focal xent") == []  # every word must match
    assert ids(search='"rare class"') == [older] and ids(search='"class rare"') == []  # a quoted phrase


def test_the_better_match_comes_first(cell):
    cell("%nbexp track --sample-hz 0 plain")
    cell("def mixup(a, b):\n    return mixup_weight * a + (1 - mixup_weight) * b  # mixup, then mixup again")
    cell("mixup_weight = 0.2\nval_loss = 0.5")
    cell("%nbexp stop")
    cell("%nbexp track --sample-hz 0 other")
    cell(
        "def train(data, epochs, batch_size, optimizer, scheduler, callbacks, log_every, seed, workers, device):\n"
        "    # a long training function that names the trick once: mixup\n"
        "    return [data, epochs, batch_size, optimizer, scheduler, callbacks, log_every, seed, workers, device]"
    )
    cell("val_loss = 0.4")
    cell("%nbexp stop")
    best, once = ids()[::-1]  # newest first without a search
    assert ids(search="mixup") == [best, once]  # by bm25: many mentions in short text before one in long
    with Reader() as r:
        newest_first = [x["id"] for x in r.list_runs(sprint="all", search="mixup", sort="start_time")]
        assert newest_first == [once, best]


def test_hostile_search_text_gives_no_error(two_runs, capsys):
    path, _older, _newer = two_runs
    for text in HOSTILE:
        found = ids(search=text)
        assert set(found) <= set(ids()), text
        res = CliRunner().invoke(main, ["--ledger", str(path), "ls", "--sprint", "all", "--search", text])
        assert res.exit_code == 0 and "Traceback" not in res.output, (text, res.output)
    assert ids(search="NEAR(focal") == [] and ids(search='focal"') == []
    assert ids(search="focal*") == []  # "*" is text, not a prefix operator: no code has "focal*"


def test_views_answer(two_runs):
    path, older, newer = two_runs
    with sqlite3.connect(path) as c:
        c.row_factory = sqlite3.Row
        runs = {r["id"]: dict(r) for r in c.execute("SELECT * FROM runs_view")}
        params = {(r["run_id"], r["key"]): r["value"] for r in c.execute("SELECT * FROM run_params")}
        last = {(r["run_id"], r["key"]): dict(r) for r in c.execute("SELECT * FROM run_metrics_last")}
    c.close()
    assert set(runs) == {older, newer}
    row = runs[older]
    assert (row["name"], row["status"], row["sprint"]) == ("first", "finished", nbexp.get_run(older)["sprint"])
    assert row["start"][:4].isdigit() and row["start"][10] == " " and row["end"] >= row["start"]
    assert row["duration_s"] == pytest.approx(row["end_time"] - row["start_time"], abs=1e-3)
    assert params[(older, "LR")] == 0.1 and params[(newer, "LR")] == 0.3  # numbers, not JSON text
    assert last[(older, "val_loss")]["last"] == pytest.approx(-(0.3**2) * __import__("math").log(0.7))
    assert last[(older, "val_loss")]["steps"] == 1 and last[(older, "val_loss")]["source"] == "namespace"


def test_runs_view_shows_a_dead_kernels_run_as_crashed(tmp_path):
    path = tmp_path / "ledger.sqlite"
    from nbexp.ledger import connect

    conn = connect(path)
    conn.execute("INSERT INTO sessions (id, host, pid, started, heartbeat) VALUES ('s1', 'elsewhere', 1, 1e9, 1e9)")
    conn.execute(
        "INSERT INTO runs (id, session_id, sprint, name, status, start_time) "
        "VALUES ('r1', 's1', '2001-09-09', 'lost', 'running', 1e9)"
    )
    assert conn.execute("SELECT status FROM runs_view").fetchall() == [("crashed",)]
    conn.close()
    with Reader(path) as r:
        assert r.run("r1")["status"] == "crashed"  # as readers show it


def _schema7_ledger(path):
    """A ledger as nbexp wrote it at schema 7, before views and full-text search, with one run."""
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:7]:
        for statement in split_statements(migration):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 7")
    conn.executescript("""
        INSERT INTO sessions (id, host, pid, started, ended) VALUES ('s1', 'h', 1, 1700000000, 1700000100);
        INSERT INTO runs (id, session_id, sprint, name, status, start_time, end_time, note)
            VALUES ('0ld1', 's1', '2023-11-14', 'legacy', 'finished', 1700000000, 1700000090, 'kept from 2023');
        INSERT INTO params VALUES ('0ld1', 'optimizer', '"adamw"', 'str', 'assign');
        INSERT INTO run_tags VALUES ('0ld1', 'baseline');
        INSERT INTO code VALUES ('0123456789abcdef', 'loss = LabelSmoothingLoss(0.1)');
        INSERT INTO cells (session_id, run_id, cell_key, code_hash, start, status)
            VALUES ('s1', '0ld1', 'k', '0123456789abcdef', 1700000001, 'ok');
        INSERT INTO metric_summaries VALUES ('0ld1', 'loss', 3, 0, 0.1, 0.9, 0.1, 2);
    """)
    conn.close()


def test_an_old_ledger_migrates_with_its_data_and_becomes_searchable(tmp_path):
    path = tmp_path / "old.sqlite"
    _schema7_ledger(path)
    with Reader(path) as r:  # opening it migrates it
        run = r.run("0ld1")
        assert (run["name"], run["note"], run["params"], run["tags"]) == (
            "legacy",
            "kept from 2023",
            {"optimizer": "adamw"},
            ["baseline"],
        )
        assert run["metrics"]["loss"]["last"] == 0.1 and run["lineage"][0]["source"].startswith("loss =")
        for text in ("labelsmoothing", "2023", "baseline", "adamw", "legacy", "optimizer=adamw", "0ld"):
            assert [x["id"] for x in r.list_runs(sprint="all", search=text)] == ["0ld1"], text
        assert [tuple(x) for x in r.conn.execute("SELECT name, start, duration_s FROM runs_view")] == [
            ("legacy", r.conn.execute("SELECT datetime(1700000000, 'unixepoch', 'localtime')").fetchone()[0], 90.0)
        ]
        assert r.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_the_index_follows_changes(two_runs):
    """Notes rewritten, tags removed, params replaced and dropped: the search sees the ledger as it is now."""
    path, older, newer = two_runs
    from nbexp.ledger import connect
    from nbexp.ledger.store import Store

    conn = connect(path)
    store = Store(conn, scrub=str)
    store.set_note(older, "about distillation")
    store.add_tags(older, ["pruned-net"])
    assert ids(search="distillation") == [older] and ids(search="pruned") == [older]
    store.set_note(older, "about quantization")
    store.remove_tags(older, ["pruned-net"])
    store.set_params(newer, [("LR", "0.05", "float", "assign"), ("scheduler", '"cosine"', "str", "assign")])
    store.set_params(newer, [("scheduler", '"onecycle"', "str", "assign")])  # replaced
    conn.close()
    assert ids(search="distillation") == [] and ids(search="quantization") == [older]
    assert ids(search="pruned") == []
    assert ids(search="onecycle") == [newer] and ids(search="cosine") == []
    assert ids(search="LR=0.05") == [newer]
    with sqlite3.connect(path) as c:  # FTS5 raises "database disk image is malformed" if an index drifted
        for table in ("runs_fts", "run_tags_fts", "code_fts", "params_fts"):
            c.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
    c.close()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "nbexp.cli", *args], capture_output=True, text=True, check=False)


def test_a_bundle_leaves_the_index_behind_and_the_target_indexes_what_it_imports(two_runs, tmp_path):
    path, older, newer = two_runs
    bundle = tmp_path / "runs.nbexp"
    res = cli("--ledger", str(path), "export", "bundle", str(bundle), "--sprint", "all")
    assert res.returncode == 0, res.stderr
    with sqlite3.connect(f"file:{bundle}?mode=ro", uri=True) as b:
        kinds = {(t, n) for t, n in b.execute("SELECT type, name FROM sqlite_master")}
    b.close()
    assert not {n for t, n in kinds if t == "view" or "fts" in n}  # data only
    target = tmp_path / "target.sqlite"
    res = cli("--ledger", str(target), "import", str(bundle))
    assert res.returncode == 0 and "added 2 runs" in res.stdout, res.stderr
    with Reader(target) as r:
        assert [x["id"] for x in r.list_runs(sprint="all", search="focal")] == [older]
        assert [x["id"] for x in r.list_runs(sprint="all", search="augmentation")] == [older]
        assert [x["id"] for x in r.list_runs(sprint="all", search="xent")] == [newer]
        assert r.conn.execute("SELECT count(*) FROM runs_view").fetchone()[0] == 2
    # an index planted in a bundle is refused: the target's own triggers build it
    with sqlite3.connect(bundle) as b:
        b.execute("CREATE VIRTUAL TABLE code_fts USING fts5(source)")
    b.close()
    res = cli("--ledger", str(tmp_path / "third.sqlite"), "import", str(bundle))
    assert res.returncode == 1 and "virtual table" in res.stderr, res.stderr


def test_sqlite_utils_finds_and_searches_the_index(two_runs):
    """The README's `sqlite-utils search` examples: the index is where sqlite-utils (and datasette) look."""
    import sqlite_utils

    path, older, _newer = two_runs
    db = sqlite_utils.Database(path)
    try:
        assert (db["code"].detect_fts(), db["runs"].detect_fts(), db["run_tags"].detect_fts()) == (
            "code_fts",
            "runs_fts",
            "run_tags_fts",
        )
        sources = [row["source"] for row in db["code"].search("FOCAL")]  # the def and the cell calling it
        assert len(sources) == 2 and all("focal_loss(" in s for s in sources)
        assert [row["id"] for row in db["runs"].search("first")] == [older]
        assert {v.name for v in db.views} == {"runs_view", "run_params", "run_metrics_last"}
    finally:
        db.close()
