"""Data summaries, fingerprints and drift (docs/design.md "Data summaries") in a real IPython shell."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import nbexp
from nbexp.capture import data as data_capture

pytestmark = pytest.mark.slow  # real pandas/polars/sklearn data in many cells


def run_data(reader, ref="latest"):
    r = reader()
    return {d["name"]: d for d in r.data(r.resolve(ref))}


def col(item, name):
    return {c["name"]: c for c in item["summary"]["columns"]}[name]


def test_summary_numbers_match_pandas_and_numpy(cell, reader, shell):
    cell("%nbexp track")
    cell(
        "import numpy as np, pandas as pd\n"
        "rng = np.random.default_rng(1)\n"
        "df = pd.DataFrame({'x': rng.normal(3, 2, 5000), 'k': rng.integers(0, 7, 5000),\n"
        "                   'city': rng.choice(['oslo', 'lima', 'rome'], 5000, p=[.5, .3, .2]),\n"
        "                   'when': pd.date_range('2026-01-01', periods=5000, freq='h'),\n"
        "                   'flag': rng.random(5000) > 0.7})\n"
        "df.loc[::10, 'x'] = np.nan\n"
        "df.loc[::25, 'city'] = None\n"
        "score = float(df['x'].mean())"
    )
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
    assert col(item, "flag")["categories"] == {
        str(key): int(v) for key, v in df["flag"].value_counts().sort_index().items()
    }


def test_imbalanced_label_from_fit_call(cell, reader):
    cell("%nbexp track")
    cell(
        "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "rng = np.random.default_rng(0)\nX = rng.normal(size=(1000, 3))\n"
        "target = np.array([1] * 100 + [0] * 900)\n"
        "balanced = np.array([0, 1] * 500)\n"
        "clf = LogisticRegression().fit(X, target)\nclf2 = LogisticRegression().fit(X, balanced)"
    )
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


def test_drift_flags_exactly_the_changed_columns(cell, reader, drift_scenario):
    df, _ = drift_scenario(DRIFT_SETUP, TRAIN)
    runs = reader().list_runs()
    flagged = set(df.loc[df["flags"] != "", "column"])
    assert flagged == {"a", "b", "y"}
    rows = df.set_index("column")
    assert rows.loc["a", "severity"] == "major" and rows.loc["a", "psi"] >= 0.25 and rows.loc["a", "ks"] > 0.3
    assert "missing 0.0% -> 19.7%" in rows.loc["b", "flags"]  # 20% of rows, at random
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
    cell(
        "import numpy as np, pandas as pd\n"
        "big = pd.DataFrame(np.random.default_rng(0).normal(size=(1_000_000, 4)), columns=list('abcd'))"
    )
    for _ in range(3):  # three runs, one summary
        cell("%nbexp new")
        cell("score = float(big['a'].mean())")
    conn = db()
    assert conn.execute("SELECT count(*) FROM datasets").fetchone()[0] == 1
    assert conn.execute("SELECT count(DISTINCT run_id) FROM run_data WHERE name = 'big'").fetchone()[0] == 3
    summary = json.loads(conn.execute("SELECT summary FROM datasets").fetchone()[0])
    assert summary["sampled"] == {"rows": data_capture.ROW_BUDGET, "of": 1_000_000, "seed": 0}
    cell("big2 = big.copy()\nscore = float(big2['a'].mean())")  # same content, other object: no new summary
    conn = db()
    assert conn.execute("SELECT count(*) FROM datasets").fetchone()[0] == 1
    cell("big.iloc[0, 0] = 99.0\nscore = float(big['a'].mean())")  # changed content: a new summary
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


@pytest.mark.parametrize(
    "code, name",
    [
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
    ],
)
def test_awkward_data_gives_a_summary_never_an_error(cell, reader, capsys, code, name):
    cell("%nbexp track")
    res = cell("import numpy as np, pandas as pd, torch\n" + code + "\nscore = 2.0 if obj is not None else 0.0")
    assert res.success
    items = run_data(reader)
    assert name in items and items[name]["summary"] is not None
    assert "Traceback" not in capsys.readouterr().err


def test_len_that_raises_is_one_warning(cell, reader, capsys):
    cell("%nbexp track")
    res = cell(
        "import pandas as pd\n"
        "class Weird(pd.DataFrame):\n"
        "    def __len__(self): raise RuntimeError('no length for you')\n"
        "w = Weird({'a': [1, 2]})\nscore = 1.0 if w is not None else 0.0"
    )
    assert res.success
    cell("score = 2.0 if w is not None else 0.0")
    err = capsys.readouterr().err
    assert err.count("nbexp: warning") == 1 and "'w'" in err


def test_data_changed_while_summarized_is_dropped_with_a_note(cell, reader, capsys, monkeypatch):
    cell("%nbexp track")
    original = data_capture.summarize

    def mutating(obj, kind, name, labels=frozenset()):
        out = original(obj, kind, name, labels)
        obj.iloc[0, 0] = -1.0  # the user's next cell, racing the worker
        return out

    monkeypatch.setattr(data_capture, "summarize", mutating)
    res = cell("import pandas as pd\nframe = pd.DataFrame({'a': [1.0, 2.0, 3.0]})\nscore = float(frame['a'].sum())")
    assert res.success
    assert "frame" not in run_data(reader)  # reading waits for the worker
    assert "changed while it was being summarized" in capsys.readouterr().err
    monkeypatch.setattr(data_capture, "summarize", original)
    cell("score = float(frame['a'].sum())")
    assert "frame" in run_data(reader)


def test_tensor_summary(cell, reader):
    cell("%nbexp track")
    cell("import torch\nt = torch.linspace(0, 1, 1001)\nscore = float(t.mean())")
    item = run_data(reader)["t"]
    c = item["summary"]["columns"][0]
    assert item["kind"] == "tensor" and item["summary"]["device"] == "cpu"
    assert c["min"] == 0.0 and c["max"] == 1.0 and c["p50"] == pytest.approx(0.5)


def test_no_data_library_means_no_data_capture():
    import subprocess
    import sys

    code = (
        "import sys\nfrom nbexp.capture.data import kind_of\n"
        "print(kind_of([1, 2]), kind_of('x'), 'pandas' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["None", "None", "False", "False"]


# -- polars: summarized with polars and NumPy only ---------------------------------------------
POLARS_SETUP = """
import numpy as np, polars as pl
def load(shift=0.0, missing=0.0, rare=False, seed=0):
    rng = np.random.default_rng(seed)
    n = 20000
    a = rng.normal(0, 1, n) + shift
    b = rng.normal(5, 2, n)
    b = [None if m else float(v) for v, m in zip(b, rng.random(n) < missing)]
    return pl.DataFrame({'a': a, 'b': pl.Series(b, dtype=pl.Float64), 'c': rng.uniform(0, 1, n),
                         'color': rng.choice(['red', 'blue', 'green'], n),
                         'y': (rng.random(n) < (0.05 if rare else 0.5)).astype(int)})
"""


def test_polars_summary_numbers_match_polars(cell, reader, shell):
    cell("%nbexp track")
    cell(
        "import numpy as np, polars as pl, datetime as dt\n"
        "rng = np.random.default_rng(1)\n"
        "x = rng.normal(3, 2, 5000)\n"
        "pdf = pl.DataFrame({'x': pl.Series([None if i % 10 == 0 else float(v) for i, v in enumerate(x)]),\n"
        "                    'k': rng.integers(0, 7, 5000),\n"
        "                    'city': pl.Series([None if i % 25 == 0 else c for i, c in\n"
        "                                       enumerate(rng.choice(['oslo', 'lima', 'rome'], 5000,\n"
        "                                                            p=[.5, .3, .2]))]),\n"
        "                    'when': pl.datetime_range(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1) +\n"
        "                                              dt.timedelta(hours=4999), '1h', eager=True),\n"
        "                    'flag': rng.random(5000) > 0.7})\n"
        "score = float(pdf['x'].mean())"
    )
    df = shell.user_ns["pdf"]
    import polars as pl

    item = run_data(reader)["pdf"]
    assert item["kind"] == "polars-dataframe" and item["shape"] == [5000, 5]
    x = col(item, "x")
    assert x["dtype"] == "Float64" and x["missing"] == df["x"].null_count() == 500
    assert x["mean"] == pytest.approx(df["x"].mean()) and x["std"] == pytest.approx(df["x"].std())
    assert x["min"] == pytest.approx(df["x"].min()) and x["max"] == pytest.approx(df["x"].max())
    assert x["p50"] == pytest.approx(df["x"].quantile(0.5, interpolation="linear"))
    assert x["p99"] == pytest.approx(df["x"].quantile(0.99, interpolation="linear"))
    counts, _ = np.histogram(df["x"].drop_nulls().to_numpy(), bins=20)
    assert x["histogram"]["counts"] == counts.tolist()
    city = col(item, "city")
    vc = df["city"].drop_nulls().value_counts(sort=True)
    assert city["type"] == "categorical" and city["distinct"] == 3 and city["missing"] == df["city"].null_count()
    assert city["top"][0] == [vc[0, "city"], vc[0, "count"]]
    assert col(item, "when")["type"] == "datetime" and col(item, "when")["min"].startswith("2026-01-01")
    assert col(item, "k")["zeros"] == int((df["k"] == 0).sum())
    assert col(item, "flag")["categories"] == {str(r[0]): r[1] for r in df["flag"].value_counts().sort("flag").rows()}
    assert pl.DataFrame is type(df)


def test_polars_drift_and_imbalance(drift_scenario):
    df, columns = drift_scenario(POLARS_SETUP, "score = float(train['a'].mean())")
    assert set(df.loc[df["flags"] != "", "column"]) == {"a", "b", "y"}
    assert columns["y"]["label"] and columns["y"]["imbalanced"] is True


@pytest.mark.parametrize(
    "code",
    [
        "obj = pl.DataFrame()",
        "obj = pl.DataFrame({'a': [None] * 10}, schema={'a': pl.Float64})",
        "obj = pl.DataFrame({'a': [[1], [2, 3], None], 'b': [{'k': 1}, None, {'k': 2}]})",
        "obj = pl.DataFrame({'a': pl.Series([object(), 1, 'x'], dtype=pl.Object)})",
        "obj = pl.DataFrame({'a': [True, None, False], 'c': pl.Series(['u', 'v', None], dtype=pl.Categorical)})",
        "obj = pl.Series('s', ['a', None, 'b'])",
        "obj = pl.concat([pl.DataFrame({'a': [1.0]}), pl.DataFrame({'a': [float('nan')]})], rechunk=False)",
    ],
)
def test_awkward_polars_data_gives_a_summary(cell, reader, capsys, code):
    cell("%nbexp track")
    res = cell("import polars as pl\n" + code + "\nscore = 2.0 if obj is not None else 0.0")
    assert res.success
    assert run_data(reader)["obj"]["summary"] is not None
    assert "Traceback" not in capsys.readouterr().err


def test_polars_fingerprint_ignores_chunking_and_sees_content():
    import polars as pl

    df = pl.DataFrame({"a": [1, None, 3, 4], "s": ["x", None, "y", "z"]})
    chunked = pl.concat([df[:2], df[2:]], rechunk=False)
    assert chunked.n_chunks() == 2
    fp = data_capture.fingerprint(df, "polars-dataframe")[0]
    assert data_capture.fingerprint(chunked, "polars-dataframe")[0] == fp
    assert data_capture.fingerprint(df.with_columns(pl.col("a").fill_null(0)), "polars-dataframe")[0] != fp
    assert data_capture.fingerprint(df.with_columns(pl.col("s").fill_null("")), "polars-dataframe")[0] != fp


def test_polars_path_never_imports_pandas():
    import subprocess
    import sys

    code = (
        "import sys, polars as pl\nfrom nbexp.capture import data as d\n"
        "df = pl.DataFrame({'a': [1.0, None, 3.0], 's': ['x', 'y', None]})\n"
        "k = d.kind_of(df)\nd.signature(df, k)\nd.fingerprint(df, k)\n"
        "s = d.summarize(df, k, 'df')\n"
        "print(k, s['columns'][0]['missing'], 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["polars-dataframe", "1", "False"]


def test_a_failing_summary_is_one_warning_line(cell, reader, capsys, monkeypatch):
    def failing(obj, kind, name, labels=frozenset()):
        raise RuntimeError("analysis failed\n+- Project [a, b]\n   +- Range (0, 10)")  # a Spark-like plan

    monkeypatch.setattr(data_capture, "summarize", failing)
    cell("%nbexp track")
    assert cell("import numpy as np\nfeatures = np.ones((4, 2))\nscore = float(features.sum())").success
    nbexp.runs()  # waits for the data worker
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert lines == ["nbexp: warning: data 'features' not summarized (RuntimeError: analysis failed ..."]


def test_tensor_device_sample_is_bounded_reproducible_and_real():
    """The sample a GPU tensor is summarized from (run here on the CPU: no GPU on this machine)."""
    t = torch.arange(3_000_000, dtype=torch.float32).reshape(1000, 3000)
    a, b = data_capture.tensor_sample(t), data_capture.tensor_sample(t)
    assert a.shape == (data_capture.ROW_BUDGET,) and (a == b).all()
    assert (np.diff(a) >= 0).all() and a.min() >= 0 and a.max() < 3_000_000 and (a == np.round(a)).all()
    assert abs(float(a.mean()) - 1_500_000) < 20_000  # uniform over the whole tensor


def test_no_data_option_captures_no_data(cell, db, reader, capsys):
    assert cell("%nbexp track --no-data").success
    cell("import numpy as np\nX_train = np.ones((100, 3))\nscore = float(X_train.sum())")
    cell("%nbexp status")
    assert "data capture off" in capsys.readouterr().out
    conn = db()
    assert conn.execute("SELECT count(*) FROM datasets").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM run_data").fetchone()[0] == 0
    assert reader().list_runs()[0]["metrics"]["score"]["last"] == 300.0  # the rest is tracked


@pytest.mark.parametrize("library", ["lightgbm", "torch"])
def test_a_rerun_that_trains_on_a_data_wrapper_records_the_data_it_was_made_from(cell, reader, library):
    """A user trial: ``dtrain = lgb.Dataset(X_train, label=y_train)`` in a cell of its own, ``lgb.train(params,
    dtrain)`` in the next; ``num_leaves`` edited and the params and training cells re-run. The re-run recorded no
    data at all (the training reads ``dtrain``, which is no data nbexp summarizes), and a replay's diff then showed
    ``X_train`` as new data. A wrapper a training reads stands for the data it was made from (a PyTorch
    ``DataLoader`` over a ``TensorDataset`` too): the re-run holds the same data, with the same fingerprints, and
    nothing else (not the index the wrapper took rows by). A wrapper made again in the training cell itself stands
    for what it is made from there."""
    cell("%nbexp track")
    cell(
        "import numpy as np\nrng = np.random.default_rng(0)\nX_train = rng.normal(size=(300, 4))\nrows = np.arange(250)"
    )
    if library == "lightgbm":
        cell("y_train = (X_train[:, 0] > 0).astype(int)")
        cell("import lightgbm as lgb\ndtrain = lgb.Dataset(X_train[rows], label=y_train[rows])")
        train = "booster = lgb.train(params, dtrain, num_boost_round=5)"
        settings = "params = {'objective': 'binary', 'num_leaves': %d, 'verbose': -1}"
    else:
        cell("y_train = X_train[:, 0] * 2.0")
        cell(
            "import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n"
            "ds = TensorDataset(torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train, dtype=torch.float32))"
        )
        cell("loader = DataLoader(ds, batch_size=50)")
        cell("net = torch.nn.Linear(4, 1)")
        train = (
            "opt = torch.optim.SGD(net.parameters(), lr=LR)\n"
            "for xb, yb in loader:\n"
            "    opt.zero_grad()\n"
            "    loss = ((net(xb).squeeze(1) - yb) ** 2).mean()\n"
            "    loss.backward()\n"
            "    opt.step()"
        )
        settings = "LR = 0.0%d"
    cell(settings % 7)
    assert cell(train).success
    cell(settings % 3)  # the edit, then the training again
    assert cell(train).success
    r = reader()
    runs = r.list_runs()
    assert len(runs) == 2
    first, second = (run_data(reader, run["id"]) for run in runs[::-1])
    wanted = {"X_train", "y_train"}  # the arrays the wrapper was made from
    assert set(first) == set(second) == wanted, (sorted(first), sorted(second))
    assert {name: first[name]["fingerprint"] for name in wanted} == {
        name: second[name]["fingerprint"] for name in wanted
    }
    if library == "lightgbm":
        cell("X_small, y_small = X_train[:100], y_train[:100]")
        assert cell("dtrain = lgb.Dataset(X_small, label=y_small)\n" + train).success
        assert set(run_data(reader)) == {"X_small", "y_small"}
