"""Portable bundles: export from one ledger, import into another, idempotent, safe on bad files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys

import pytest

import nbexp
from nbexp.capture.code import prepare
from nbexp.export.bundle import checksum
from nbexp.ledger import connect
from nbexp.ledger.queries import Reader

pytestmark = pytest.mark.slow  # bundles of up to 260,003 runs, many ledgers

NBEXP = [sys.executable, "-m", "nbexp.cli"]


def cli(*args, timeout=None):
    return subprocess.run(NBEXP + list(args), capture_output=True, text=True, check=False, timeout=timeout)


@pytest.fixture
def source(cell, ledger_path):
    cell("%nbexp track --sample-hz 0 first")
    cell("import numpy as np\nLR = 0.1\nX = np.arange(20.0).reshape(10, 2)")
    cell("import nbexp\nfor i in range(50):\n    nbexp.log(loss=1 / (i + 1))\nscore = float(X.sum()) * LR")
    cell("LR = 0.3")
    cell("import nbexp\nfor i in range(50):\n    nbexp.log(loss=1 / (i + 1))\nscore = float(X.sum()) * LR")
    cell("%nbexp tag keep")
    cell("from nbexp import tracker\nrun = tracker.active_run()")
    cell("run.log_table('cv', ['C', 'score'], [[0.1, 0.9]], source='sklearn')")
    cell("%nbexp stop")
    return ledger_path


def snapshot(path):
    with Reader(path) as r:
        runs = r.list_runs(sprint="all")
        return {
            x["id"]: (
                x["name"],
                x["status"],
                x["params"],
                {k: (v["last"], v["source"]) for k, v in x["metrics"].items()},
                x["tags"],
                x["data"],
                r.run_tables(x["id"]),
            )
            for x in runs
        }


def test_export_import_into_a_ledger_another_kernel_wrote(source, tmp_path):
    bundle = tmp_path / "sprint.nbexp"
    res = cli("--ledger", str(source), "export", "bundle", str(bundle), "--sprint", "today")
    assert res.returncode == 0 and "2 runs, 102 points" in res.stdout, res.stderr
    other = tmp_path / "other" / "ledger.sqlite"
    other.parent.mkdir()
    code = (
        f"%load_ext nbexp\n%nbexp track --ledger {other} --sample-hz 0 theirs\n"
        "import nbexp\nnbexp.log(acc=0.5)\n%nbexp stop"
    )
    env = dict(os.environ, IPYTHONDIR=str(tmp_path / "ipy"))
    subprocess.run([sys.executable, "-m", "IPython", "--quick", "-c", code], check=True, env=env, capture_output=True)
    before = snapshot(other)
    assert len(before) == 1
    res = cli("--ledger", str(other), "import", str(bundle))
    assert res.returncode == 0 and "added 2 runs (102 points)" in res.stdout, res.stderr
    after = snapshot(other)
    mine = snapshot(source)
    assert {k: v for k, v in after.items() if k in mine} == mine  # the same runs, as they were
    assert set(after) == set(mine) | set(before)
    a = nbexp.runs(sprint="all", ledger=str(source)).set_index("run_id")
    b = nbexp.runs(sprint="all", ledger=str(other)).set_index("run_id").loc[a.index]
    cols = [c for c in a.columns if c.startswith(("params.", "metrics.", "data."))]
    assert a[cols].equals(b[cols])
    with Reader(other) as r:  # code and data came along
        run = r.run(next(iter(mine)))
        assert run["lineage"] and run["data"][0]["summary"]["shape"] == [10, 2]
        assert run["metrics"]["score"]["source"] == "namespace" and run["metrics"]["loss"]["source"] == "log"
        table = {"name": "cv", "source": "sklearn", "columns": ["C", "score"], "rows": [[0.1, 0.9]]}
        assert [i for i in mine if r.run_tables(i) == [table]]
        assert r.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = cli("--ledger", str(other), "import", str(bundle))
    assert "added 0 runs" in again.stdout and "skipped 2" in again.stdout
    assert snapshot(other) == after
    with sqlite3.connect(other) as c:
        assert c.execute("SELECT count(*) FROM metrics").fetchone()[0] == 103


def test_id_collisions_get_fresh_ids(source, tmp_path):
    bundle = tmp_path / "b.nbexp"
    assert cli("--ledger", str(source), "export", "bundle", str(bundle), "--all").returncode == 0
    target = tmp_path / "t.sqlite"
    shutil.copy(source, target)
    with sqlite3.connect(target) as c:  # same ids, but other runs: another session
        c.execute("UPDATE runs SET start_time = start_time - 1000")
        c.execute("UPDATE sessions SET started = started - 1000")
    res = cli("--ledger", str(target), "import", str(bundle))
    assert res.returncode == 0 and "gave 2 a fresh id" in res.stdout, res.stdout
    with Reader(target) as r:
        assert len(r.list_runs(sprint="all")) == 4
        assert r.conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == 204


def _corrupt(path):
    with sqlite3.connect(path) as c:
        c.execute("UPDATE params SET value = '0.9' WHERE key = 'LR'")


def _newer(path):
    with sqlite3.connect(path) as c:
        c.execute("UPDATE bundle_manifest SET value = '99' WHERE key = 'schema_version'")


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _plain_ledger(path):
    path.unlink()
    sqlite3.connect(path).execute("CREATE TABLE runs (id TEXT)").connection.close()


def _text(path):
    path.write_text("hello, I am not a bundle")


def _version_not_a_number(path):
    with sqlite3.connect(path) as c:
        c.execute("UPDATE bundle_manifest SET value = 'abc' WHERE key = 'schema_version'")


@pytest.mark.parametrize(
    "spoil, words",
    [
        (_corrupt, "corrupted"),
        (_newer, "newer nbexp"),
        (_truncate, "not a readable nbexp bundle"),
        (_plain_ledger, "not an nbexp bundle"),
        (_text, "not a readable nbexp bundle"),
        (_version_not_a_number, "no valid schema_version ('abc'"),
    ],
)
def test_bad_bundles_change_nothing(source, tmp_path, spoil, words):
    bundle = tmp_path / "b.nbexp"
    assert cli("--ledger", str(source), "export", "bundle", str(bundle), "--all").returncode == 0
    spoil(bundle)
    target = tmp_path / "t.sqlite"
    from nbexp.ledger import connect

    connect(target).close()
    before = snapshot(target)
    res = cli("--ledger", str(target), "import", str(bundle))
    assert res.returncode == 1 and words in res.stderr and str(bundle) in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert snapshot(target) == before


def test_export_needs_a_choice_and_refuses_to_overwrite(source, tmp_path):
    bundle = tmp_path / "b.nbexp"
    assert cli("--ledger", str(source), "export", "bundle", str(bundle)).returncode == 2
    assert cli("--ledger", str(source), "export", "bundle", str(bundle), "latest").returncode == 0
    again = cli("--ledger", str(source), "export", "bundle", str(bundle), "latest")
    assert again.returncode == 2 and "--force" in again.stderr
    assert cli("--ledger", str(source), "export", "bundle", str(bundle), "latest", "--force").returncode == 0
    dry = cli("--ledger", str(tmp_path / "new.sqlite"), "import", "--dry-run", str(bundle))
    assert dry.returncode == 0 and "would add 1 run (" in dry.stdout


def test_export_and_import_magics(cell, tmp_path, capsys):
    cell("%nbexp track --sample-hz 0")
    cell("import nbexp\nnbexp.log(acc=0.75)")
    bundle = tmp_path / "m.nbexp"
    cell(f"%nbexp export bundle {bundle} --all")
    assert "wrote" in capsys.readouterr().out and bundle.exists()
    cell(f"%nbexp import {bundle}")
    assert "skipped 1 already there" in capsys.readouterr().out
    cell(f"%nbexp export bundle {bundle} --all")
    assert "--force" in capsys.readouterr().err


# -- hostile bundles: an attacker edits a bundle with plain SQL and seals it again ----------------------


def _export(source, tmp_path, name="b.nbexp"):
    bundle = tmp_path / name
    res = cli("--ledger", str(source), "export", "bundle", str(bundle), "--all")
    assert res.returncode == 0, res.stderr
    return bundle


def _reseal(bundle):
    """What anyone can do: a manifest and checksum that match the edited content."""
    with sqlite3.connect(bundle) as c:
        runs = sorted(r for (r,) in c.execute("SELECT id FROM runs"))
        c.execute("UPDATE bundle_manifest SET value = ? WHERE key = 'runs'", (json.dumps(runs),))
        c.execute("UPDATE bundle_manifest SET value = ? WHERE key = 'checksum'", (checksum(c),))
    c.close()


def _copy_ledger(source, target):
    """A consistent copy of a live (WAL) ledger."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return target


def test_a_planted_code_row_is_rejected_and_local_code_kept(source, tmp_path):
    bundle = _export(source, tmp_path)
    victim_hash = prepare("LR = 0.3")[0]  # a cell the victim runs (and would replay)
    evil = "import os\nos.system('echo pwned')"
    with sqlite3.connect(bundle) as c:
        assert c.execute("UPDATE code SET source = ? WHERE hash = ?", (evil, victim_hash)).rowcount == 1
    c.close()
    _reseal(bundle)
    for target in (tmp_path / "fresh.sqlite", _copy_ledger(source, tmp_path / "mine.sqlite")):
        before = target.read_bytes() if target.exists() else None
        res = cli("--ledger", str(target), "import", str(bundle))
        assert res.returncode == 1 and "not the hash of its code text" in res.stderr, res.stderr
        assert str(bundle) in res.stderr and "Traceback" not in res.stderr
        assert (target.read_bytes() if target.exists() else None) == before
    with sqlite3.connect(tmp_path / "mine.sqlite") as c:
        assert c.execute("SELECT source FROM code WHERE hash = ?", (victim_hash,)).fetchone() == ("LR = 0.3",)
    c.close()


def test_only_rows_the_runs_reference_come_along(source, tmp_path):
    bundle = _export(source, tmp_path)
    common = "import numpy as np"
    packages = '{"numpy":"0.0.1"}'
    env_id = hashlib.sha1(packages.encode()).hexdigest()[:16]
    with sqlite3.connect(bundle) as c:  # rows no run of the bundle refers to
        c.execute("INSERT INTO code (hash, source) VALUES (?, ?)", (prepare(common)[0], common))
        c.execute("INSERT INTO sprints (id, name, hypothesis) VALUES ('2001-01-01', 'planted', 'planted')")
        c.execute("INSERT INTO environments (id, packages) VALUES (?, ?)", (env_id, packages))
        c.execute("INSERT INTO datasets (fingerprint, kind, summary, created) VALUES ('planted', 'ndarray', '{}', 1)")
    c.close()
    _reseal(bundle)
    target = tmp_path / "t.sqlite"
    res = cli("--ledger", str(target), "import", str(bundle))
    assert res.returncode == 0 and "added 2 runs" in res.stdout, res.stderr
    with sqlite3.connect(target) as c:
        assert c.execute("SELECT count(*) FROM code WHERE hash = ?", (prepare(common)[0],)).fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM sprints WHERE id = '2001-01-01'").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM environments WHERE id = ?", (env_id,)).fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM datasets WHERE fingerprint = 'planted'").fetchone()[0] == 0
        # what the runs do reference did come: their cells' code, their data
        assert c.execute("SELECT count(*) FROM code WHERE hash = ?", (prepare("LR = 0.3")[0],)).fetchone()[0] == 1
        assert c.execute("SELECT count(*) FROM datasets").fetchone()[0] >= 1
    c.close()


def _recursive_view(c):
    cols = [r[1] for r in c.execute("PRAGMA table_info(cells)")]
    c.execute("DROP TABLE cells")
    values = ["i", "(SELECT session_id FROM runs LIMIT 1)"] + ["i"] * (len(cols) - 2)
    c.execute(
        f"CREATE VIEW cells ({', '.join(cols)}) AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
        f"SELECT i + 1 FROM n) SELECT {', '.join(values)} FROM n"
    )  # never ends


def _trigger(c):
    c.execute("CREATE TRIGGER planted AFTER INSERT ON runs BEGIN DELETE FROM runs; END")


@pytest.mark.parametrize("plant, words", [(_recursive_view, "has view 'cells'"), (_trigger, "has trigger 'planted'")])
def test_views_and_triggers_are_rejected_before_reading(source, tmp_path, plant, words):
    bundle = _export(source, tmp_path)
    with sqlite3.connect(bundle) as c:
        plant(c)
    c.close()
    _reseal(bundle)
    target = _copy_ledger(source, tmp_path / "t.sqlite")
    before = target.read_bytes()
    res = cli("--ledger", str(target), "import", str(bundle), timeout=120)  # the old import never ended
    assert res.returncode == 1 and words in res.stderr and str(bundle) in res.stderr, res.stderr
    assert target.read_bytes() == before


@pytest.mark.parametrize(
    "sql, words",
    [
        ("UPDATE params SET type = 'int', value = 'abc' WHERE key = 'LR'", "table params"),
        ("UPDATE params SET type = 'int', value = '\"abc\"' WHERE key = 'LR'", "not of its stated type 'int'"),
        ("UPDATE runs SET start_time = 'yesterday'", "table runs, column start_time"),
        ("UPDATE metrics SET wall = 'noon' WHERE rowid = 1", "table metrics, column wall"),
        ("UPDATE cells SET duration = 'long'", "table cells, column duration"),
        ("UPDATE runs SET sprint = 'someday'", "a sprint date"),
        ("UPDATE runs SET status = '<script>'", "table runs, column status"),
    ],
)
def test_type_confused_bundles_are_rejected_and_the_ledger_still_reads(source, tmp_path, sql, words):
    bundle = _export(source, tmp_path)
    with sqlite3.connect(bundle) as c:
        assert c.execute(sql).rowcount >= 1
    c.close()
    _reseal(bundle)
    target = _copy_ledger(source, tmp_path / "t.sqlite")
    with sqlite3.connect(target) as c:  # so that nothing would be skipped as already there
        c.execute("UPDATE runs SET start_time = start_time - 1000")
        c.execute("UPDATE sessions SET started = started - 1000")
    c.close()
    before = target.read_bytes()
    res = cli("--ledger", str(target), "import", str(bundle))
    assert res.returncode == 1 and words in res.stderr and str(bundle) in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert target.read_bytes() == before
    ls = cli("--ledger", str(target), "ls", "--sprint", "all")
    assert ls.returncode == 0 and "Traceback" not in ls.stderr, ls.stderr


def test_a_bundle_of_260003_runs_imports(source, tmp_path):
    bundle = _export(source, tmp_path)
    with sqlite3.connect(bundle) as c:  # 260,001 more runs, like the first one
        cols = [r[1] for r in c.execute("PRAGMA table_info(runs)") if r[1] not in ("id", "start_time")]
        c.execute(
            f"INSERT INTO runs (id, start_time, {', '.join(cols)}) "
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 260001) "
            f"SELECT printf('r%07d', i), r.start_time + i * 1e-3, {', '.join('r.' + x for x in cols)} "
            "FROM n, (SELECT * FROM runs ORDER BY id LIMIT 1) r"
        )
    c.close()
    _reseal(bundle)
    target = tmp_path / "t.sqlite"
    res = cli("--ledger", str(target), "import", str(bundle))
    assert res.returncode == 0 and "added 260,003 runs (102 points)" in res.stdout, res.stderr
    with sqlite3.connect(target) as c:
        assert c.execute("SELECT count(*) FROM runs").fetchone()[0] == 260_003
    c.close()


def test_a_busy_ledger_gives_one_clear_message(source, tmp_path):
    bundle = _export(source, tmp_path)
    target = tmp_path / "t.sqlite"
    connect(target).close()
    holder = sqlite3.connect(target, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the busy timeout
    try:
        res = cli("--ledger", str(target), "import", str(bundle))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert res.returncode == 1 and "busy" in res.stderr and "try again" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and "rollback" not in res.stderr
    assert snapshot(target) == {}
    assert "added 2 runs" in cli("--ledger", str(target), "import", str(bundle)).stdout


def test_bundle_files_are_private(source, tmp_path):
    bundle = _export(source, tmp_path)
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    shared = tmp_path / "shared.nbexp"
    shared.write_text("old")
    shared.chmod(0o644)  # a file the user made readable keeps its mode
    assert cli("--ledger", str(source), "export", "bundle", str(shared), "--all", "--force").returncode == 0
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644
    assert "added 2 runs" in cli("--ledger", str(tmp_path / "t.sqlite"), "import", str(shared)).stdout


# -- explanations (nbexp explain --ablate) travel with their runs -------------------------------------------------

EXPLANATION = "e0e1e2e3e4e5"


@pytest.fixture
def explained(source, cell):
    """``source`` and a third run standing for an ablation replay of its second, with the explanation of the second
    run against the first that ran it, stored as ``nbexp explain --ablate`` stores them. Returns the ledger and
    the ids of A, B and the replay."""
    from nbexp.analysis.ablation import waterfall_figure
    from nbexp.analysis.explain import explain, summary
    from nbexp.ledger import transaction
    from nbexp.ledger.store import Store

    cell("%nbexp track --sample-hz 0 replay")
    cell("LR = 0.1\nscore = 1.0")
    cell("%nbexp stop")
    with Reader(source) as r:
        a, b, replay = (x["id"] for x in sorted(r.list_runs(sprint="all"), key=lambda x: x["start_time"]))
        result = explain(r, a, b, "score")
    # what ablate adds, its replay measuring the LR factor (a kernel per replay is test_explain_replay's)
    [factor] = [f for f in result["factors"] if f["kind"] == "param"]  # LR 0.1 -> 0.3
    factor.update(effect=result["delta"], noise=0.0, value_without=result["value_a"], ablation_run=replay)
    steps = [
        {"label": f"A {a}", "measure": "absolute", "value": result["value_a"]},
        {"label": f"{factor['kind']}: {factor['title']}", "measure": "relative", "value": result["delta"]},
        {"label": "rest (interactions, not isolated, noise)", "measure": "relative", "value": 0.0},
        {"label": f"B {b}", "measure": "total", "value": result["value_b"]},
    ]
    result["ablation"] = {
        "id": EXPLANATION,
        "replays": 1,
        "noise_runs": [replay],
        "noise_values": [result["value_b"]],
        "noise": 0.0,
        "reference": result["value_b"],
        "factors_skipped": [],
        "not_isolable": [],
        "rest": 0.0,
        "waterfall": steps,
        "figure": waterfall_figure("score", steps),
    }
    result["summary"] = summary(result)
    conn = connect(source)
    try:
        with transaction(conn):
            store = Store(conn, scrub=lambda text: text)
            store.open_explanation(EXPLANATION, a, b, "score", 1_800_000_000.0)
            store.link_ablation(replay, EXPLANATION, factor["key"])
            store.end_explanation(EXPLANATION, "finished", json.dumps(result))
    finally:
        conn.close()
    return source, a, b, replay


def explanations(path):
    """Each stored explanation with the replays it ran (``{run id: factor}``)."""
    with Reader(path) as r:
        return [(e, r.ablation_runs(e["id"])) for e in r.explanations()]


def test_explanations_travel_with_their_runs(explained, tmp_path):
    source, a, b, replay = explained
    mine = explanations(source)
    assert [(e["id"], e["status"], links) for e, links in mine] == [(EXPLANATION, "finished", {replay: "param:LR"})]
    bundle = _export(source, tmp_path)
    target = tmp_path / "t.sqlite"
    res = cli("--ledger", str(target), "import", str(bundle))
    assert res.returncode == 0 and "added 3 runs" in res.stdout, res.stderr
    assert explanations(target) == mine  # the explanation, its result and its replay's link, as they were
    assert "added 0 runs" in cli("--ledger", str(target), "import", str(bundle)).stdout
    assert explanations(target) == mine  # once

    # a ledger whose run ids are other runs': the runs get fresh ids, the explanation follows them under its own
    other = _copy_ledger(source, tmp_path / "other.sqlite")
    with sqlite3.connect(other) as c:
        c.execute("UPDATE runs SET start_time = start_time - 1000")
        c.execute("UPDATE sessions SET started = started - 1000")
    c.close()
    res = cli("--ledger", str(other), "import", str(bundle))
    assert res.returncode == 0 and "gave 3 a fresh id" in res.stdout, res.stdout
    with sqlite3.connect(source) as s, sqlite3.connect(other) as o:
        start = dict(s.execute("SELECT id, start_time FROM runs"))
        arrived = {t: rid for rid, t in o.execute("SELECT id, start_time FROM runs") if rid not in start}
    s.close()
    o.close()
    fresh = {rid: arrived[t] for rid, t in start.items()}
    got = explanations(other)
    assert [x for x in got if x[0]["id"] == EXPLANATION] == mine  # the local one, untouched
    [(imported, links)] = [x for x in got if x[0]["id"] != EXPLANATION]
    assert (imported["run_a"], imported["run_b"]) == (fresh[a], fresh[b])
    assert links == {fresh[replay]: "param:LR"}
    # its result names the imported runs, as `nbexp explain` shows it: never the source ledger's ids, which here
    # are other runs of this ledger
    res = cli("--ledger", str(other), "explain", fresh[b], "--vs", fresh[a], "--metric", "score")
    assert res.returncode == 0, res.stderr
    assert f"run {fresh[b]} vs {fresh[a]}" in res.stdout and f"(ablation {imported['id']}," in res.stdout
    assert f"A {fresh[a]}" in res.stdout and f"B {fresh[b]}" in res.stdout, res.stdout
    assert not {a, b, replay, EXPLANATION} & set(re.findall(r"[0-9a-f]{6,}", res.stdout)), res.stdout
    ex, theirs = imported["result"], mine[0][0]["result"]
    assert (ex["a"], ex["b"], ex["ablation"]["id"]) == (fresh[a], fresh[b], imported["id"])
    assert ex["ablation"]["noise_runs"] == [fresh[replay]]
    assert [f.get("ablation_run") for f in ex["factors"]] == [
        fresh[replay] if f.get("ablation_run") else None for f in theirs["factors"]
    ]
    axis = ex["ablation"]["figure"]["data"][0]["x"]  # the waterfall's figure, as the review page draws it
    assert (axis[0], axis[-1]) == (f"A {fresh[a]}", f"B {fresh[b]}")
    assert axis[1:-1] == theirs["ablation"]["figure"]["data"][0]["x"][1:-1]
    # the rest as it was: the factors' own text, the values, the summary
    assert ex["summary"] == theirs["summary"] and ex["value_b"] == theirs["value_b"]
    assert [f["sentence"] for f in ex["factors"]] == [f["sentence"] for f in theirs["factors"]]
    assert explanations(source) == mine  # the source ledger is only read
    for ledger in (target, other):  # every link lands on a row of the ledger
        with sqlite3.connect(ledger) as c:
            assert c.execute("PRAGMA foreign_key_check").fetchall() == []
        c.close()

    # without run A the explanation stays behind (it would point at a run the ledger may not have)
    partial = tmp_path / "partial.nbexp"
    assert cli("--ledger", str(source), "export", "bundle", str(partial), b, replay).returncode == 0
    alone = tmp_path / "alone.sqlite"
    assert "added 2 runs" in cli("--ledger", str(alone), "import", str(partial)).stdout
    assert explanations(alone) == []

    # an explanation's rows are checked like any other: a result nbexp never writes is refused
    with sqlite3.connect(bundle) as c:
        c.execute("UPDATE explanations SET result = '[1]'")
    c.close()
    _reseal(bundle)
    res = cli("--ledger", str(tmp_path / "checked.sqlite"), "import", str(bundle))
    assert res.returncode == 1 and "table explanations, column result" in res.stderr, res.stderr
