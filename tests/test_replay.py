"""Reproduce and review: `nbexp replay`, `nbexp check`, the HTML review (real kernels, the real CLI)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import chromium
import nbformat
import pytest
from nbclient import NotebookClient

from nbexp.ledger.queries import Reader

pytestmark = pytest.mark.kernel
NBEXP = [sys.executable, "-m", "nbexp.cli"]

SEEDED = [
    "%load_ext nbexp\n%nbexp track seeded",
    "from sklearn.datasets import load_breast_cancer\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\nfrom sklearn.metrics import roc_auc_score\n"
    "X, y = load_breast_cancer(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "C = 0.5\nMAX_ITER = 3000",
    "model = LogisticRegression(C=C, max_iter=MAX_ITER).fit(X_train, y_train)\n"
    "test_auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])",
]


def execute(cells, cwd, **kw):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(cwd)}}, **kw).execute()
    return nb


@pytest.fixture
def env(nbexp_home, tmp_path, monkeypatch):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return tmp_path


def cli(*args, cwd=None):
    return subprocess.run(NBEXP + list(args), capture_output=True, text=True, cwd=cwd, env=dict(os.environ))


def test_replay_reproduces_params_and_metrics(env, ledger_path):
    execute(SEEDED, env)
    with Reader(ledger_path) as r:
        original = r.list_runs()[0]
    out = env / "replay.ipynb"
    res = cli("replay", original["id"], "--execute", "-o", str(out), cwd=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "params: no change" in res.stdout
    with Reader(ledger_path) as r:
        replay = [x for x in r.list_runs() if x["replay_of"] == original["id"]]
        assert len(replay) == 1
        replay = replay[0]
        assert replay["params"] == original["params"]
        a, b = original["metrics"]["test_auc"]["last"], replay["metrics"]["test_auc"]["last"]
        assert abs(a - b) <= 1e-9
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata["nbexp"]["replay_of"] == original["id"]
    assert "%nbexp track" in nb.cells[1].source and "--replay-of" in nb.cells[1].source
    # with a param changed: exactly that param (and the estimator's copy of it) differ
    res = cli("replay", original["id"], "--execute", "--param", "C=2.0", "-o", str(env / "c2.ipynb"), cwd=env)
    assert res.returncode == 0, res.stderr
    with Reader(ledger_path) as r:
        newest = r.list_runs()[0]
        from nbexp.analysis.compare import compare_runs

        c = compare_runs(r, [original["id"], newest["id"]])
    assert c["param_diff"] == {"C": [0.5, 2.0], "model.C": [0.5, 2.0]}
    assert c["metric_delta"]["test_auc"] != 0
    bad = cli("replay", original["id"], "--param", "NOT_A_PARAM=1", cwd=env)
    assert bad.returncode == 2 and "NOT_A_PARAM" in bad.stderr


def test_replay_of_a_run_whose_value_was_set_again_after_its_model_was_built_builds_the_model_it_trained(
    env, ledger_path
):
    """``C`` set again and the training cell run again without the model's cell: the run trained the model built with
    the first ``C`` and records that one (source ``built``); its replay sets ``C`` back to it, says so, and reproduces
    the run's metric (a user trial: the replay built the model with the new ``C`` and computed another one)."""
    fit = "clf.fit(X_train, y_train)\ntest_auc = roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1])"
    cells = [*SEEDED[:2], "C = 1.0", "clf = LogisticRegression(C=C, max_iter=3000)", fit, "C = 0.01", fit]
    execute(cells, env)
    with Reader(ledger_path) as r:
        second, first = r.list_runs()[:2]
        assert second["params"]["C"] == first["params"]["C"] == 1.0 and second["params"]["clf.C"] == 1.0
        assert r.param_sources(second["id"])["C"] == "built"
    shown = cli("show", second["id"], cwd=env).stdout
    assert [ln.split() for ln in shown.splitlines() if ln.startswith("C ")] == [["C", "1", "built"]], shown
    assert "built: the value its model was built with" in shown
    rows = list(csv.reader(io.StringIO(cli("show", second["id"], "--csv", cwd=env).stdout)))
    assert ["param", "C", "1.0", "", "", "", "built"] in rows, rows
    res = cli("replay", second["id"], "--execute", "-o", str(env / "replay.ipynb"), cwd=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"note: the replay sets C = 1.0 as its model was built with: run {second['id']} set it again" in res.stderr
    assert "params: no change" in res.stdout
    with Reader(ledger_path) as r:
        replay = next(x for x in r.list_runs() if x["replay_of"] == second["id"])
        assert replay["metrics"]["test_auc"]["last"] == pytest.approx(second["metrics"]["test_auc"]["last"], abs=1e-9)


def test_imports_run_before_tracking_are_in_the_runs_code_and_its_replay(env, ledger_path):
    """Imports in a cell before ``%nbexp track`` and in the tracking cell itself (which the session starts inside):
    the runs' code starts with them, and the replay runs (before, it failed with ``NameError``: a user trial). An
    import that failed, and the rest of those cells, are not the runs' code."""
    cells = [
        "from sklearn.datasets import load_breast_cancer\nimport numpy as np\nwarmup = np.zeros(3)",
        "try:\n    import not_a_module_here as fastjson\nexcept ImportError:\n    import json as fastjson",
        "%%time\nimport csv",
        "import string, textwrap\ndel textwrap\nfrom math import e\ne = 0.5",  # e no longer holds math.e
        "%load_ext nbexp\n%nbexp track pre\nfrom sklearn.linear_model import LogisticRegression",
        "X, y = load_breast_cancer(return_X_y=True)",
        "clf = LogisticRegression(max_iter=3000).fit(X, y)\nacc = clf.score(X, y)",
    ]
    execute(cells, env)
    with Reader(ledger_path) as r:
        run = r.run(r.list_runs()[0]["id"])
    prelude = run["lineage"][0]["source"]
    assert prelude.splitlines()[1:] == [
        "from sklearn.datasets import load_breast_cancer",
        "import numpy as np",
        "import json as fastjson",
        "import csv",
        "import string",
        "from sklearn.linear_model import LogisticRegression",
    ], prelude
    res = cli("replay", run["id"], "--execute", "-o", str(env / "replay.ipynb"), cwd=env)
    assert res.returncode == 0, res.stdout + res.stderr
    with Reader(ledger_path) as r:
        replay = next(x for x in r.list_runs() if x["replay_of"] == run["id"])
        assert replay["status"] == "finished" and replay["metrics"]["acc"]["last"] == run["metrics"]["acc"]["last"]


def test_replay_that_fails_stops_and_marks_the_replay_failed(env, ledger_path):
    data = env / "data.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    execute(
        [
            "%load_ext nbexp\n%nbexp track needs-file",
            f"import pandas as pd\nframe = pd.read_csv({str(data)!r})",
            "score = float(frame.a.sum())",
            "after = 1",
        ],
        env,
    )
    data.unlink()
    with Reader(ledger_path) as r:
        original = r.list_runs()[0]
    out = env / "broken.ipynb"
    res = cli("replay", original["id"], "--execute", "-o", str(out), cwd=env)
    assert res.returncode == 1 and "failed" in res.stderr and "FileNotFoundError" in res.stderr
    nb = nbformat.read(out, as_version=4)
    errors = [
        c
        for c in nb.cells
        if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert len(errors) == 1 and "read_csv" in errors[0].source
    with Reader(ledger_path) as r:
        runs = {x["id"]: x for x in r.list_runs()}
        replay = [x for x in runs.values() if x["replay_of"] == original["id"]][0]
        assert replay["status"] == "failed"
        assert runs[original["id"]]["status"] == "finished"
        assert runs[original["id"]]["metrics"]["score"]["last"] == 4.0


def test_check_exit_codes(env, ledger_path):
    execute(
        [
            "%load_ext nbexp\n%nbexp track",
            "import nbexp\nfor v in (0.80, 0.85, 0.82):\n    with nbexp.run(f'auc {v}', v=v):\n"
            "        nbexp.log(val_auc=v, val_loss=1 - v)\n"
            "with nbexp.run('nan run'):\n    nbexp.log(val_auc=float('nan'))",
        ],
        env,
    )
    with Reader(ledger_path) as r:
        runs = {x["name"]: x["id"] for x in r.list_runs()}
    ok = cli("check", runs["auc 0.85"], "--metric", "val_auc", "--baseline", runs["auc 0.8"])
    import sqlite3

    with sqlite3.connect(ledger_path) as conn:  # tag a baseline, as %nbexp tag does
        conn.execute("INSERT INTO run_tags (run_id, tag) VALUES (?, 'baseline')", (runs["auc 0.8"],))
    assert cli("check", runs["auc 0.85"], "--metric", "val_auc", "--baseline", "tag:baseline").returncode == 0
    assert cli("check", "tag:baseline", "--metric", "val_auc", "--baseline", runs["auc 0.85"]).returncode == 1
    assert ok.returncode == 0 and "ok" in ok.stdout
    worse = cli("check", runs["auc 0.82"], "--metric", "val_auc")  # baseline: best (0.85)
    assert worse.returncode == 1 and "REGRESSED" in worse.stdout
    assert cli("check", runs["auc 0.82"], "--metric", "val_auc", "--tolerance", "0.05").returncode == 0
    assert cli("check", runs["auc 0.82"], "--metric", "val_auc", "--tolerance", "2%").returncode == 1
    assert cli("check", runs["auc 0.82"], "--metric", "val_auc", "--tolerance", "5%").returncode == 0
    lower = cli("check", runs["auc 0.82"], "--metric", "val_loss", "--baseline", runs["auc 0.85"])
    assert lower.returncode == 1 and "lower" in lower.stdout  # loss goes down
    unknown = cli("check", runs["auc 0.82"], "--metric", "nope")
    assert unknown.returncode == 2 and "no metric 'nope'" in unknown.stderr
    assert cli("check", runs["nan run"], "--metric", "val_auc").returncode == 1
    assert cli("check", runs["nan run"], "--metric", "val_auc", "--nan-ok").returncode == 0
    no_base = cli("check", runs["auc 0.82"], "--metric", "val_loss", "--baseline", runs["nan run"])
    assert no_base.returncode == 2 and "has no metric" in no_base.stderr
    assert cli("check", "zzzzzz", "--metric", "val_auc").returncode == 2
    assert cli("check", "--metric", "val_auc", "--tolerance", "lots").returncode == 2


def test_provenance_filters(env, ledger_path):
    execute(
        [
            "%load_ext nbexp\n%nbexp track",
            "import nbexp\nfor lr in (0.1, 0.3):\n    with nbexp.run(f'lr {lr}', LR=lr):\n        nbexp.log(acc=lr)",
        ],
        env,
    )
    out = json.loads(cli("--ledger", str(ledger_path), "ls", "--json", "--param", "LR=0.3").stdout)
    assert [x["name"] for x in out] == ["lr 0.3"]
    assert json.loads(cli("ls", "--json", "--since", "2d", "--status", "crashed").stdout) == []
    assert len(json.loads(cli("ls", "--json", "--since", "1h").stdout)) == 3
    import nbexp

    assert list(nbexp.runs(params={"LR": 0.1}).name) == ["lr 0.1"]
    assert len(nbexp.runs(since="30m")) == 3
    assert cli("ls", "--since", "soon").returncode == 2


def test_html_review_opens_in_chromium_with_figures(env, ledger_path, tmp_path):
    execute(
        [
            "%load_ext nbexp\n%nbexp track --sprint overnight --hypothesis 'more epochs help'",
            "import nbexp\nfor e in (5, 10):\n    with nbexp.run(f'epochs {e}', EPOCHS=e):\n"
            "        for i in range(e):\n            nbexp.log(loss=1 / (i + 1))",
            "%nbexp conclude 'they did, a little'",
        ],
        env,
    )
    page = tmp_path / "review.html"
    res = cli("review", "--sprint", "today", "--html", str(page))
    assert res.returncode == 0 and "hypothesis: more epochs help" in res.stdout
    assert page.stat().st_mode & 0o777 == 0o600  # it holds recorded code: private like the ledger
    text = page.read_text()
    assert "<script src" not in text and "https://" not in text.split("<script>")[0]  # self-contained
    chromium.skip_unless_installed()
    with chromium.headless() as b:
        pg = b.new_page()
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(page.as_uri())
        pg.wait_for_selector(".nbexp-figure .main-svg", timeout=30_000)
        assert pg.locator(".nbexp-figure .main-svg").count() >= 2
        assert "conclusion: they did, a little" in pg.inner_text("body")
        assert pg.get_by_role("table", name="Best per metric").is_visible()
        shots = Path(os.environ.get("NBEXP_SCREENSHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(shots / "review.png"), full_page=True)
    assert not errors


def test_review_magic(cell, capsys):
    cell("%nbexp track --sprint today-sprint")
    cell("import nbexp\nwith nbexp.run('one'):\n    nbexp.log(loss=0.5)")
    cell("%nbexp review --sprint today")
    out = capsys.readouterr().out
    assert "today-sprint" in out and "best per metric" in out and "loss" in out


def test_replay_sets_back_a_dict_key_a_model_was_built_with():
    """A run whose model was built with ``params["C"]`` 1.0 before the cell was edited to 0.01 (param ``params.C``,
    source ``built``): the replay rewrites that key of the dict literal (or ``dict(...)`` call), nothing else; a
    built value the code holds no literal of is left out and listed (``not_set``), the replay still written."""
    from nbexp.analysis.replay import build_notebook, override

    src = 'params = {"C": 0.01, "max_iter": 300}\nopts = dict(lr=0.1, epochs=3)\nC = 5'
    out, done = override(src, {"params.C": 1.0, "opts.lr": 0.5, "C": 2})
    assert out == 'params = {"C": 1.0, "max_iter": 300}\nopts = dict(lr=0.5, epochs=3)\nC = 2'
    assert done == {"params.C", "opts.lr", "C"}
    assert override("params = load()\nparams['C'] = 0.01", {"params.C": 1.0}) == (
        "params = load()\nparams['C'] = 0.01",
        set(),
    )
    run = {
        "id": "r1",
        "name": "x",
        "sprint": "s",
        "status": "finished",
        "params": {"params.C": 1.0, "cfg.lr": 0.1},
        "lineage": [
            {"source": 'params = {"C": 0.01}', "status": "ok", "execution_count": 1},
            {"source": "cfg = load()", "status": "ok", "execution_count": 2},
        ],
    }
    nb = build_notebook(run, {"params.C": 1.0, "cfg.lr": 0.1}, optional={"params.C", "cfg.lr"})
    assert nb.cells[2].source == 'params = {"C": 1.0}'
    assert nb.metadata["nbexp"]["not_set"] == ["cfg.lr"]
    assert nb.metadata["nbexp"]["overrides"] == {"params.C": 1.0}
