"""The `nbexp` command line, through click's runner and as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from nbexp.cli import main

pytestmark = pytest.mark.slow  # the CLI as real processes, MLflow imported


@pytest.fixture
def two_runs(cell, ledger_path):
    cell("%nbexp track base")
    cell("LR = 0.1\nDEPTH = 3")
    cell("test_auc = 0.8 + LR")
    cell("LR = 0.3")
    cell("test_auc = 0.8 + LR")
    cell("%nbexp stop")
    return ledger_path


def invoke(ledger, *args):
    return CliRunner().invoke(main, ["--ledger", str(ledger), *args], catch_exceptions=False)


def test_ls_table_and_json(two_runs):
    res = invoke(two_runs, "ls")
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert lines[0].split()[:5] == ["run", "name", "status", "start", "time"]
    assert "LR" in lines[0] and "test_auc" in lines[0]
    assert len(lines) == 3 and "base" in lines[2]
    data = json.loads(invoke(two_runs, "ls", "--json").output)
    assert [r["params"]["LR"] for r in data] == [0.3, 0.1]
    assert data[0]["metrics"]["test_auc"]["last"] == pytest.approx(1.1)


def test_ls_filters(two_runs):
    data = json.loads(invoke(two_runs, "ls", "--json", "--param", "LR=0.1").output)
    assert len(data) == 1 and data[0]["name"] == "base"
    assert json.loads(invoke(two_runs, "ls", "--json", "--status", "failed").output) == []
    assert len(json.loads(invoke(two_runs, "ls", "--json", "--sprint", "all", "--limit", "1").output)) == 1
    assert json.loads(invoke(two_runs, "ls", "--json", "--sprint", "yesterday").output) == []
    data = json.loads(invoke(two_runs, "ls", "--json", "--search", "lr=0.3").output)
    assert [r["params"]["LR"] for r in data] == [0.3]
    assert invoke(two_runs, "ls", "--search", "BASE").output.splitlines()[1].split()[1] == "base"


def test_diff_shows_exactly_the_tweak(two_runs):
    res = invoke(two_runs, "diff", "latest~1", "latest")
    assert res.exit_code == 0
    section = res.output.split("params that differ")[1].split("metrics")[0]
    rows = [ln.split() for ln in section.strip().splitlines()[1:]]
    assert rows == [["LR", "0.1", "0.3"]]
    assert "test_auc" in res.output and "0.2" in res.output  # delta
    assert "+LR = 0.3" in res.output.splitlines()  # the code diff: the tweak cell, added
    data = json.loads(invoke(two_runs, "diff", "--json", "latest~1", "latest").output)
    assert data["param_diff"] == {"LR": [0.1, 0.3]}
    assert data["metric_delta"]["test_auc"] == pytest.approx(0.2)


def test_show_and_review(two_runs):
    res = invoke(two_runs, "show", "base")
    assert res.exit_code == 0 and "LR" in res.output and "test_auc" in res.output and "[finished]" in res.output
    res = invoke(two_runs, "review", "--sprint", "today")
    assert res.exit_code == 0
    assert "2 runs" in res.output and "best per metric" in res.output and "LR: 0.1 -> 0.3" in res.output


def test_exit_codes_as_a_real_process(two_runs, tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "nbexp.cli", "--ledger", str(two_runs), *args], capture_output=True, text=True
        )

    assert run("ls").returncode == 0
    bad = run("show", "nosuchrun")
    assert bad.returncode == 1 and "no run matches 'nosuchrun'" in bad.stderr
    assert run("frobnicate").returncode == 2
    assert run("ls", "--sprint", "someday").returncode == 2
    assert run("diff", "latest").returncode == 2
    missing = subprocess.run(
        [sys.executable, "-m", "nbexp.cli", "--ledger", str(tmp_path / "none.sqlite"), "ls"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "no ledger" in missing.stderr


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["show", "latest~99999999999999999999"], 1, "fewer runs"),
        (["show", "latest~-1"], 2, "bad run reference 'latest~-1'"),
        (["show", "latest~+1"], 2, "bad run reference"),
        (["diff", "latest~1", "latest~x"], 2, "bad run reference"),
        (["review", "--sprint", "today", "--html", "no/such/folder/review.html"], 2, "folder"),
        (["export", "mlflow", "--all", "--tracking-uri", "file:///tmp/nbexp-test-mlruns"], 1, "refuses file stores"),
    ],
)
def test_bad_input_gives_a_message_not_a_traceback(two_runs, tmp_path, monkeypatch, args, code, words):
    if args[0] == "export":
        pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "nbexp.cli", "--ledger", str(two_runs), *args], capture_output=True, text=True
    )
    assert res.returncode == code and words in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not res.stdout
    assert not (tmp_path / "no").exists()


def test_huge_limit_and_back_references_mean_everything_and_nothing(two_runs):
    data = json.loads(invoke(two_runs, "ls", "--json", "--limit", "99999999999999999999999").output)
    assert [r["params"]["LR"] for r in data] == [0.3, 0.1]
    assert json.loads(invoke(two_runs, "show", "--json", "latest~1").output)["name"] == "base"
    assert json.loads(invoke(two_runs, "show", "--json", "latest~").output)["name"] == "base"  # as HEAD~ in git


def test_ledger_that_is_not_a_file(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "nbexp.cli", "--ledger", "/dev/full", "ls"], capture_output=True, text=True
    )
    assert res.returncode == 1 and "/dev/full is not an nbexp ledger (not a regular file)" in res.stderr, res.stderr


def test_param_filter_reads_values_as_python_literals_like_replay(cell, ledger_path):
    cell("%nbexp track flags")
    cell("AUGMENT = True\nMODEL = 'tree'")
    cell("test_auc = 0.9 if AUGMENT and MODEL == 'tree' else 0.5")
    cell("AUGMENT = False")
    cell("test_auc = 0.9 if AUGMENT and MODEL == 'tree' else 0.5")
    cell("%nbexp stop")
    on = json.loads(invoke(ledger_path, "ls", "--json", "--param", "AUGMENT=True").output)
    assert [r["params"]["AUGMENT"] for r in on] == [True]  # the bool, as %nbexp param and replay read it
    off = json.loads(invoke(ledger_path, "ls", "--json", "--param", "AUGMENT=False", "--param", "MODEL=tree").output)
    assert [r["params"]["AUGMENT"] for r in off] == [False]
    res = invoke(ledger_path, "ls", "--param", "=True")
    assert res.exit_code == 2 and "NAME=VALUE" in res.output


def test_import_counts_one_run_in_the_singular(two_runs, tmp_path):
    """A user trial read "added 1 runs": a count of one says run, any other count runs (export and import)."""
    one, both = tmp_path / "one.nbexp", tmp_path / "both.nbexp"
    wrote = invoke(two_runs, "export", "bundle", str(one), "latest")
    assert wrote.exit_code == 0 and ": 1 run, " in wrote.output
    wrote = invoke(two_runs, "export", "bundle", str(both), "--all")
    assert wrote.exit_code == 0 and ": 2 runs, " in wrote.output
    target = tmp_path / "target.sqlite"
    assert "would add 1 run (" in invoke(target, "import", "--dry-run", str(one)).output
    assert "added 1 run (" in invoke(target, "import", str(one)).output
    assert "added 1 run (" in invoke(target, "import", str(both)).output  # the other one was already there
    assert "added 0 runs (" in invoke(target, "import", str(both)).output


def test_a_searchs_tables_are_listed_by_show_and_printed_by_table(cell, ledger_path):
    """A user trial: a GridSearchCV's cv_results and best_params were stored, and no command showed them. ``show``
    lists the tables a run kept; ``nbexp table RUN NAME`` prints one (as JSON and CSV too); a name it did not keep
    is a usage error that names the tables it has."""
    cell("%nbexp track grid")
    cell(
        "from sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import GridSearchCV\nX, y = load_iris(return_X_y=True)"
    )
    cell("search = GridSearchCV(LogisticRegression(max_iter=500), {'C': [0.1, 1.0, 10.0]}, cv=3)\nsearch.fit(X, y)")
    search = cell.sh.user_ns["search"]
    cell("%nbexp stop")
    shown = invoke(ledger_path, "show", "grid").output
    assert "tables" in shown and "cv_results" in shown and "best_params" in shown, shown
    listed = json.loads(invoke(ledger_path, "table", "grid", "--json").output)
    assert {t["name"]: t["rows"] for t in listed} == {"best_params": 1, "cv_results": 3}
    cv = json.loads(invoke(ledger_path, "table", "grid", "cv_results", "--json").output)
    rank = cv["columns"].index("rank_test_score")
    assert [row[rank] for row in cv["rows"]] == list(search.cv_results_["rank_test_score"])
    text = invoke(ledger_path, "table", "grid", "best_params").output
    lines = text.splitlines()
    assert lines[0].endswith("(1 row, from sklearn)") and lines[1].split() == ["C"], text
    assert float(lines[2]) == search.best_params_["C"], text
    csv_text = invoke(ledger_path, "table", "grid", "cv_results", "--csv").output
    assert csv_text.splitlines()[0].split(",") == cv["columns"] and len(csv_text.splitlines()) == 4
    res = invoke(ledger_path, "table", "grid", "nope")
    assert res.exit_code == 2 and "no table 'nope'" in res.output and "cv_results" in res.output, res.output
