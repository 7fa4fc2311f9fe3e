"""Portable bundles: export from one ledger, import into another, idempotent, safe on bad files."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

import nbexp
from nbexp.ledger.queries import Reader

NBEXP = [sys.executable, "-m", "nbexp.cli"]


def cli(*args):
    return subprocess.run(NBEXP + list(args), capture_output=True, text=True)


@pytest.fixture
def source(cell, ledger_path):
    cell("%nbexp track --sample-hz 0 first")
    cell("import numpy as np\nLR = 0.1\nX = np.arange(20.0).reshape(10, 2)")
    cell("import nbexp\nfor i in range(50):\n    nbexp.log(loss=1 / (i + 1))\nscore = float(X.sum()) * LR")
    cell("LR = 0.3")
    cell("import nbexp\nfor i in range(50):\n    nbexp.log(loss=1 / (i + 1))\nscore = float(X.sum()) * LR")
    cell("%nbexp tag keep")
    cell("%nbexp stop")
    return ledger_path


def snapshot(path):
    with Reader(path) as r:
        runs = r.list_runs(sprint="all")
        return {x["id"]: (x["name"], x["status"], x["params"], {k: v["last"] for k, v in x["metrics"].items()},
                          x["tags"], x["data"]) for x in runs}


def test_export_import_into_a_ledger_another_kernel_wrote(source, tmp_path):
    bundle = tmp_path / "sprint.nbexp"
    res = cli("--ledger", str(source), "export", "bundle", str(bundle), "--sprint", "today")
    assert res.returncode == 0 and "2 runs, 102 points" in res.stdout, res.stderr
    other = tmp_path / "other" / "ledger.sqlite"
    other.parent.mkdir()
    code = (f"%load_ext nbexp\n%nbexp track --ledger {other} --sample-hz 0 theirs\n"
            "import nbexp\nnbexp.log(acc=0.5)\n%nbexp stop")
    env = dict(os.environ, IPYTHONDIR=str(tmp_path / "ipy"))
    subprocess.run([sys.executable, "-m", "IPython", "--quick", "-c", code], check=True, env=env,
                   capture_output=True)
    before = snapshot(other)
    assert len(before) == 1
    res = cli("--ledger", str(other), "import", str(bundle))
    assert res.returncode == 0 and "added 2 runs (102 points)" in res.stdout, res.stderr
    after = snapshot(other)
    mine = snapshot(source)
    assert {k: v for k, v in after.items() if k in mine} == mine          # the same runs, as they were
    assert set(after) == set(mine) | set(before)
    a = nbexp.runs(sprint="all", ledger=str(source)).set_index("run_id")
    b = nbexp.runs(sprint="all", ledger=str(other)).set_index("run_id").loc[a.index]
    cols = [c for c in a.columns if c.startswith(("params.", "metrics.", "data."))]
    assert a[cols].equals(b[cols])
    with Reader(other) as r:                                             # code and data came along
        run = r.run(list(mine)[0])
        assert run["lineage"] and run["data"][0]["summary"]["shape"] == [10, 2]
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
    with sqlite3.connect(target) as c:                     # same ids, but other runs: another session
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


@pytest.mark.parametrize("spoil, words", [
    (_corrupt, "corrupted"), (_newer, "newer nbexp"), (_truncate, "not a readable nbexp bundle"),
    (_plain_ledger, "not an nbexp bundle"), (_text, "not a readable nbexp bundle"),
])
def test_bad_bundles_change_nothing(source, tmp_path, spoil, words):
    bundle = tmp_path / "b.nbexp"
    assert cli("--ledger", str(source), "export", "bundle", str(bundle), "--all").returncode == 0
    spoil(bundle)
    target = tmp_path / "t.sqlite"
    from nbexp.ledger import connect

    connect(target).close()
    before = snapshot(target)
    res = cli("--ledger", str(target), "import", str(bundle))
    assert res.returncode == 1 and words in res.stderr, res.stderr
    assert snapshot(target) == before


def test_export_needs_a_choice_and_refuses_to_overwrite(source, tmp_path):
    bundle = tmp_path / "b.nbexp"
    assert cli("--ledger", str(source), "export", "bundle", str(bundle)).returncode == 2
    assert cli("--ledger", str(source), "export", "bundle", str(bundle), "latest").returncode == 0
    again = cli("--ledger", str(source), "export", "bundle", str(bundle), "latest")
    assert again.returncode == 2 and "--force" in again.stderr
    assert cli("--ledger", str(source), "export", "bundle", str(bundle), "latest", "--force").returncode == 0
    dry = cli("--ledger", str(tmp_path / "new.sqlite"), "import", "--dry-run", str(bundle))
    assert dry.returncode == 0 and "would add 1 runs" in dry.stdout


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
