"""Data summaries, fingerprints and drift (DESIGN.md "Data summaries") in a real IPython shell."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import nbexp
from nbexp.capture import data as data_capture


def run_data(reader, ref="latest"):
    r = reader()
    return {d["name"]: d for d in r.data(r.resolve(ref))}


def col(item, name):
    return {c["name"]: c for c in item["summary"]["columns"]}[name]


def test_summary_numbers_match_pandas_and_numpy(cell, reader, shell):
    cell("%nbexp track")
    cell("import numpy as np, pandas as pd\n"
         "rng = np.random.default_rng(1)\n"
         "df = pd.DataFrame({'x': rng.normal(3, 2, 5000), 'k': rng.integers(0, 7, 5000),\n"
         "                   'city': rng.choice(['oslo', 'lima', 'rome'], 5000, p=[.5, .3, .2]),\n"
         "                   'when': pd.date_range('2026-01-01', periods=5000, freq='h'),\n"
         "                   'flag': rng.random(5000) > 0.7})\n"
         "df.loc[::10, 'x'] = np.nan\n"
         "df.loc[::25, 'city'] = None\n"
         "n_rows = len(df)")
    df = shell.user_ns["df"]
    item = run_data(reader)["df"]
    assert item["kind"] == "dataframe" and item["shape"] == [5000, 5] and not item["summary"].get("sampled")
    x = col(item, "x")
    desc = df["x"].describe()
    assert x["missing"] == df["x"].isna().sum() and x["missing_rate"] == pytest.approx(0.1)
    assert x["mean"] == pytest.approx(desc["mean"]) and x["std"] == pytest.approx(desc["std"])
    assert x["min"] == pytest.approx(desc["min"]) and x["max"] == pytest.approx(desc["max"])
    assert x["p25"] == pytest.approx(desc["25%"]) and x["p50"] == pytest.approx(desc["50%"])
    assert x["p99"] == pytest.approx(np.nanquantile(df["x"], 0.99))
    counts, edges = np.histogram(df["x"].dropna(), bins=20)
    assert x["histogram"]["counts"] == counts.tolist()
    assert x["histogram"]["edges"] == pytest.approx(edges.tolist())
    city = col(item, "city")
    vc = df["city"].value_counts()
    assert city["type"] == "categorical" and city["distinct"] == 3 and city["missing"] == df["city"].isna().sum()
    assert city["top"][0] == [vc.index[0], int(vc.iloc[0])]
    when = col(item, "when")
    assert when["type"] == "datetime" and when["min"].startswith("2026-01-01")
    k = col(item, "k")
    assert k["distinct"] == 7 and k["zeros"] == int((df["k"] == 0).sum())
    assert col(item, "flag")["categories"] == {str(key): int(v) for key, v in
                                               df["flag"].value_counts().sort_index().items()}


def test_imbalanced_label_from_fit_call(cell, reader):
    cell("%nbexp track")
    cell("import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
         "rng = np.random.default_rng(0)\nX = rng.normal(size=(1000, 3))\n"
         "target = np.array([1] * 100 + [0] * 900)\n"
         "balanced = np.array([0, 1] * 500)\n"
         "clf = LogisticRegression().fit(X, target)\nclf2 = LogisticRegression().fit(X, balanced)")
    items = run_data(reader)
    t = items["target"]["summary"]["columns"][0]
    assert items["target"]["role"] == "label" and t["imbalanced"] is True
    assert t["classes"] == {"0": pytest.approx(0.9), "1": pytest.approx(0.1)}
    b = items["balanced"]["summary"]["columns"][0]
    assert b["label"] and b["imbalanced"] is False
    assert items["X"]["role"] == "features"
    df = nbexp.data()
    assert bool(df.loc[df.variable == "target", "imbalanced"].iloc[0]) is True


DRIFT_SETUP = """
import numpy as np, pandas as pd
def load(shift=0.0, missing=0.0, rare=False, seed=0):
    rng = np.random.default_rng(seed)
    n = 20000
    d = pd.DataFrame({'a': rng.normal(0, 1, n) + shift, 'b': rng.normal(5, 2, n), 'c': rng.uniform(0, 1, n),
                      'color': rng.choice(['red', 'blue', 'green'], n)})
    d['y'] = (rng.random(n) < (0.05 if rare else 0.5)).astype(int)
    if missing:
        d.loc[rng.random(n) < missing, 'b'] = np.nan
    return d
"""

TRAIN = "score = float(train['a'].mean() + train['b'].mean())"


def test_drift_flags_exactly_the_changed_columns(cell, reader, capsys):
    cell("%nbexp track")
    cell(DRIFT_SETUP)
    cell("train = load(seed=1)")
    cell(TRAIN)
    cell("train = load(shift=1.0, missing=0.2, rare=True, seed=2)")
    cell(TRAIN)                                 # a re-run: new run with the new data
    runs = reader().list_runs()
    assert len(runs) == 2
    df = nbexp.drift(runs[1]["id"], runs[0]["id"])
    flagged = set(df.loc[df["flags"] != "", "column"])
    assert flagged == {"a", "b", "y"}
    rows = df.set_index("column")
    assert rows.loc["a", "severity"] == "major" and rows.loc["a", "psi"] >= 0.25 and rows.loc["a", "ks"] > 0.3
    assert "missing 0.0% -> 19.7%" in rows.loc["b", "flags"]                # 20% of rows, at random
    assert "class balance moved" in rows.loc["y", "flags"] and "now imbalanced" in rows.loc["y", "flags"]
    assert rows.loc["c", "severity"] == "ok" and rows.loc["c", "psi"] < 0.01
    ns: dict = {}
    exec(DRIFT_SETUP, ns)
    ref, new = ns["load"](seed=1)["a"], ns["load"](shift=1.0, missing=0.2, rare=True, seed=2)["a"]
    true_share = ((new < ref.min()) | (new > ref.max())).mean()
    assert rows.loc["a", "out_of_range"] == pytest.approx(true_share, abs=0.002)
    # the same through the magic, the CLI and compare
    shown = cell(f"%nbexp drift {runs[1]['id']} {runs[0]['id']}").result
    assert list(shown.column[:3]) != [] and shown.severity.iloc[0] == "major"
    c = nbexp.compare(runs[1]["id"], runs[0]["id"])
    assert {row["column"] for row in c["drift"]} == {"a", "b", "y"}
    assert c["data"]["train"][0] != c["data"]["train"][1]


def test_cli_data_drift_review_diff_mention_flags(cell, reader, ledger_path):
    from click.testing import CliRunner

    from nbexp.cli import main

    cell("%nbexp track")
    cell(DRIFT_SETUP)
    cell("train = load(seed=1)")
    cell(TRAIN)
    cell("train = load(shift=1.0, rare=True, seed=2)")
    cell(TRAIN)
    cell("%nbexp stop")

    def run(*args):
        res = CliRunner().invoke(main, ["--ledger", str(ledger_path), *args])
        assert res.exit_code == 0, res.output
        return res.output

    out = run("data", "latest")
    assert "train  dataframe (20000, 5)" in out and "IMBALANCED" in out
    out = run("drift", "latest~1", "latest")
    assert "a" in out and "major" in out and "\nc " not in out
    assert json.loads(run("drift", "--json", "latest~1", "latest"))[0]["variable"] == "train"
    out = run("review", "--sprint", "today")
    assert "drift in run" in out and "train.a" in out and "imbalanced labels in run" in out
    out = run("diff", "latest~1", "latest")
    assert "data (fingerprints)" in out and "drift: train.a" in out


def test_unchanged_data_is_summarized_once(cell, db, shell):
    cell("%nbexp track")
    cell("import numpy as np, pandas as pd\n"
         "big = pd.DataFrame(np.random.default_rng(0).normal(size=(1_000_000, 4)), columns=list('abcd'))")
    for _ in range(3):
        cell("score = float(big['a'].mean())")      # re-runs: three runs, one summary
    conn = db()
    assert conn.execute("SELECT count(*) FROM datasets").fetchone()[0] == 1
    assert conn.execute("SELECT count(DISTINCT run_id) FROM run_data WHERE name = 'big'").fetchone()[0] == 3
    summary = json.loads(conn.execute("SELECT summary FROM datasets").fetchone()[0])
    assert summary["sampled"] == {"rows": data_capture.ROW_BUDGET, "of": 1_000_000, "seed": 0}
    cell("big2 = big.copy()\nscore = float(big2['a'].mean())")    # same content, other object: no new summary
    conn = db()
    assert conn.execute("SELECT count(*) FROM datasets").fetchone()[0] == 1
    cell("big.iloc[0, 0] = 99.0\nscore = float(big['a'].mean())")   # changed content: a new summary
    assert db().execute("SELECT count(*) FROM datasets").fetchone()[0] == 2


def test_runs_frame_has_data_fingerprints_and_filter(cell):
    cell("%nbexp track")
    cell("import numpy as np\nX = np.arange(100.0).reshape(50, 2)")
    cell("score = float(X.sum())")
    cell("X = X * 2")
    cell("score = float(X.sum())")
    df = nbexp.runs()
    assert df["data.X"].nunique() == 2
    fp = df["data.X"].iloc[1]
    only = nbexp.runs(data=fp[:8])
    assert list(only.run_id) == [df.run_id.iloc[1]]


@pytest.mark.parametrize("code, name", [
    ("obj = pd.DataFrame()", "obj"),
    ("obj = pd.DataFrame({'a': [np.nan] * 10})", "obj"),
    ("obj = pd.DataFrame({'a': [1, 'x', 2.5, None, b'y']})", "obj"),
    ("obj = pd.DataFrame({'a': [[1], [2, 3], {'k': 1}, None]})", "obj"),
    ("obj = pd.DataFrame([[1, 2], [3, 4]], columns=['a', 'a'])", "obj"),
    ("obj = pd.DataFrame(np.ones((3, 4)), columns=pd.MultiIndex.from_product([['x', 'y'], [1, 2]]))", "obj"),
    ("obj = np.array(3.5)", "obj"),
    ("obj = np.zeros((2, 3, 4, 5, 6))", "obj"),
    ("obj = torch.arange(24.0).reshape(2, 3, 4)", "obj"),
    ("obj = torch.tensor([1, 0, 0, 0, 0, 0, 0, 0, 0, 0] * 10)", "obj"),
    ("obj = pd.Series(['a', None, 'b'], name='s')", "obj"),
])
def test_awkward_data_gives_a_summary_never_an_error(cell, reader, capsys, code, name):
    cell("%nbexp track")
    res = cell("import numpy as np, pandas as pd, torch\n" + code + "\nscore = 1.0 * 2")
    assert res.success
    items = run_data(reader)
    assert name in items and items[name]["summary"] is not None
    assert "Traceback" not in capsys.readouterr().err


def test_len_that_raises_is_one_warning(cell, reader, capsys):
    cell("%nbexp track")
    res = cell("import pandas as pd\n"
               "class Weird(pd.DataFrame):\n"
               "    def __len__(self): raise RuntimeError('no length for you')\n"
               "w = Weird({'a': [1, 2]})\nscore = 0.5 * 2")
    assert res.success
    cell("w2 = w")
    err = capsys.readouterr().err
    assert err.count("nbexp: warning") == 1 and "'w'" in err


def test_data_changed_while_summarized_is_dropped_with_a_note(cell, reader, capsys, monkeypatch):
    cell("%nbexp track")
    original = data_capture.summarize

    def mutating(obj, kind, name, labels=frozenset()):
        out = original(obj, kind, name, labels)
        obj.iloc[0, 0] = -1.0                    # the user's next cell, racing the worker
        return out

    monkeypatch.setattr(data_capture, "summarize", mutating)
    res = cell("import pandas as pd\nframe = pd.DataFrame({'a': [1.0, 2.0, 3.0]})")
    assert res.success
    assert "frame" not in run_data(reader)         # reading waits for the worker
    assert "changed while it was being summarized" in capsys.readouterr().err
    monkeypatch.setattr(data_capture, "summarize", original)
    cell("frame.shape")
    assert "frame" in run_data(reader)


def test_tensor_summary(cell, reader):
    cell("%nbexp track")
    cell("import torch\nt = torch.linspace(0, 1, 1001)")
    item = run_data(reader)["t"]
    c = item["summary"]["columns"][0]
    assert item["kind"] == "tensor" and item["summary"]["device"] == "cpu"
    assert c["min"] == 0.0 and c["max"] == 1.0 and c["p50"] == pytest.approx(0.5)


def test_no_data_library_means_no_data_capture():
    import subprocess
    import sys

    code = ("import sys\nfrom nbexp.capture.data import kind_of\n"
            "print(kind_of([1, 2]), kind_of('x'), 'pandas' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["None", "None", "False", "False"]
