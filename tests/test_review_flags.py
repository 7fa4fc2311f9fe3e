"""Data flags that hold on real data (issue 16): imbalance relative to the number of classes,
out-of-range shares that do not count the reference's own min, datasets that are only what
flows into training or evaluation, and a review that pairs runs of one notebook and stays short."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_digits

from nbexp.analysis.drift import dataset_drift
from nbexp.capture import data as data_capture
from nbexp.cli import main

pytestmark = pytest.mark.slow  # real sklearn data and fits in a real shell


def label_column(values, name="y"):
    return data_capture.summarize(np.asarray(values), "ndarray", name, {name})["columns"][0]


def test_imbalance_is_relative_to_the_number_of_classes():
    digits = label_column(load_digits().target)  # ten classes, 9.7% to 10.1% each
    assert digits["label"] and len(digits["classes"]) == 10 and digits["minority_share"] < 0.10
    assert digits["imbalanced"] is False
    assert label_column([1] * 50 + [0] * 950)["imbalanced"] is True  # 95/5
    assert label_column([0] * 480 + [1] * 500 + [2] * 20)["imbalanced"] is True  # one tiny class of three
    assert label_column([0, 1] * 500)["imbalanced"] is False
    assert label_column([0] * 340 + [1] * 330 + [2] * 330)["imbalanced"] is False


@pytest.mark.parametrize(
    "values",
    [
        np.maximum(0, np.random.default_rng(0).normal(size=5000)),  # half zeros
        load_digits().data[:, 10],  # a digits pixel column: many 0s and 16s
        load_digits().data,  # the whole array, 64 columns
    ],
    ids=["relu-normal", "digits-pixel", "digits"],
)
def test_identical_zero_heavy_data_is_in_range_and_a_shift_is_not(values):
    a = data_capture.summarize(values, "ndarray", "X")
    same = dataset_drift(a, data_capture.summarize(values.copy(), "ndarray", "X"))
    assert max(row["out_of_range"] for row in same) == 0.0
    assert [row["flags"] for row in same if row["flags"]] == []
    shifted = dataset_drift(a, data_capture.summarize(values - 0.5, "ndarray", "X"))
    flagged = [row for row in shifted if row["flags"]]
    assert flagged and any("outside the reference range" in "; ".join(r["flags"]) for r in flagged)


def datasets(reader) -> set[str]:
    r = reader()
    return {d["name"] for run in r.list_runs() for d in r.data(run["id"])}


def test_only_data_fed_to_training_or_evaluation_becomes_a_dataset(cell, reader):
    cell("%nbexp track")
    cell(
        "import numpy as np, torch\n"
        "from sklearn.datasets import load_digits\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import GridSearchCV, KFold, train_test_split\n"
        "X, y = load_digits(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
    )
    cell("clf = LogisticRegression(max_iter=100)\nclf.fit(X_train, y_train)")
    cell("y_pred = clf.predict(X_test)\npredictions = clf.predict_proba(X_test)")
    cell("test_acc = accuracy_score(y_test, y_pred)")
    cell(
        "fold_acc = []\n"
        "for train_index, val_index in KFold(3).split(X_train):\n"
        "    X_tr, y_tr = X_train[train_index], y_train[train_index]\n"
        "    m = LogisticRegression(max_iter=50).fit(X_tr, y_tr)\n"
        "    fold_acc.append(m.score(X_train[val_index], y_train[val_index]))"
    )
    cell(
        "grid = GridSearchCV(LogisticRegression(max_iter=50), {'C': [0.1, 1.0]}, cv=2).fit(X_train, y_train)\n"
        "means = grid.cv_results_['mean_test_score']\n"
        "best_score = float(means.max())"
    )
    cell(
        "net = torch.nn.Linear(64, 10)\n"
        "X_t, y_t = torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train)\n"
        "opt = torch.optim.SGD(net.parameters(), lr=0.01)\n"
        "for epoch in range(3):\n"
        "    opt.zero_grad()\n"
        "    out = net(X_t)\n"
        "    loss = torch.nn.functional.cross_entropy(out, y_t)\n"
        "    loss.backward()\n"
        "    opt.step()"
    )
    found = datasets(reader)
    assert {"X_train", "y_train", "X_test", "y_test", "X_tr", "y_tr", "X_t", "y_t"} <= found
    assert not found & {"y_pred", "predictions", "train_index", "val_index", "means", "out", "X", "y"}, found
    r = reader()
    roles = {d["name"]: d["role"] for run in r.list_runs() for d in r.data(run["id"])}
    assert roles["y_test"] == "label" and roles["y_t"] == "label" and roles["X_test"] == "features"


def notebook(cell, shell, path: str) -> None:
    """A new tracked session whose notebook is ``path`` (as VS Code tells a kernel its notebook)."""
    from nbexp import tracker

    if tracker.active_session() is not None:
        cell("%nbexp stop")
    shell.user_ns["__vsc_ipynb_file__"] = path
    cell("%nbexp track")


TITANIC = (
    "import numpy as np, pandas as pd\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "rng = np.random.default_rng(0)\n"
    "X = pd.DataFrame({'age': rng.normal(30, 10, 800), 'fare': rng.exponential(30, 800),\n"
    "                  'sex': rng.integers(0, 2, 800)})\n"
    "y = (rng.random(800) < 0.4).astype(int)"
)
DIGITS = (
    "import numpy as np\n"
    "from sklearn.datasets import load_digits\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_digits(return_X_y=True)\n"
    "X = X[:900]\ny = y[:900]"
)
IRIS = (
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_iris(return_X_y=True)"
)
FIT = "clf = LogisticRegression(max_iter=50, C=C).fit(X, y)\ntrain_acc = clf.score(X, y)"


def review(ledger) -> str:
    res = CliRunner().invoke(main, ["--ledger", str(ledger), "review", "--sprint", "today"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_review_of_unrelated_notebooks_pairs_only_one_notebook_and_fits_a_screen(cell, shell, reader, ledger_path):
    notebook(cell, shell, "/work/titanic.ipynb")
    cell(TITANIC)
    cell("C = 1.0")
    cell(FIT)
    notebook(cell, shell, "/work/digits.ipynb")
    cell(DIGITS)
    cell("C = 1.0")
    cell(FIT)
    notebook(cell, shell, "/work/iris.ipynb")
    cell(IRIS)
    cell("C = 1.0")
    cell(FIT)
    cell("C = 0.5")
    cell(FIT)  # a re-run of iris: same data, no drift
    # the digits notebook again, in a new kernel, on drifted pixels
    notebook(cell, shell, "/work/digits.ipynb")
    cell(DIGITS + "\nX = np.clip(X + 6, 0, 16)")
    cell("C = 1.0")
    cell(FIT)
    cell("%nbexp stop")
    runs = list(reversed(reader().list_runs()))
    assert len(runs) == 5
    titanic, digits_a, digits_b = runs[0]["id"], runs[1]["id"], runs[4]["id"]
    out = review(ledger_path)
    lines = out.splitlines()
    assert len(lines) < 40, out
    assert "missing column" not in out and "new column" not in out, out
    assert f"drift in run {digits_b} vs {digits_a}: X." in out  # the real drift, named
    assert [ln for ln in lines if ln.startswith("drift in run")] == [
        ln for ln in lines if ln.startswith(f"drift in run {digits_b} vs {digits_a}")
    ]
    assert titanic not in " ".join(ln for ln in lines if ln.startswith("drift in run"))


def test_review_what_changed_treats_nan_as_equal_and_stays_short(cell, ledger_path):
    cell("%nbexp track")
    cell(
        "import nbexp\n"
        "base = dict(missing=float('nan'), a=1, b=2, c=3, d=4, e=5, f=6, g=7)\n"
        "with nbexp.run('first', **base):\n"
        "    nbexp.log(acc=0.5)\n"
        "with nbexp.run('second', **dict(base, a=10, b=20, c=30, d=40, e=50, f=60, g=70)):\n"
        "    nbexp.log(acc=0.9)"
    )
    cell("%nbexp stop")
    out = review(ledger_path)
    row = next(ln for ln in out.splitlines() if ln.startswith("acc"))
    assert "missing" not in row and "NaN" not in row, row
    assert "a: 1 -> 10" in row and "and 2 more" in row and "g: 7 -> 70" not in row, row


def test_review_what_changed_names_the_data_when_no_param_changed(cell, reader):
    """A user trial: the data filter edited (``df[df.age > 18]`` to ``> 30``) and the notebook re-run. No param
    changed, so the review's "what changed" said "same params", though the model saw other data."""
    from nbexp.analysis.review import review as review_of

    cell("%nbexp track")
    cell(
        "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "raw = np.random.default_rng(0).normal(size=(300, 2))"
    )
    for threshold in ("-1.0", "0.2"):
        cell("df = raw.copy()")
        cell(f"df = df[df[:, 1] > {threshold}]")
        cell("X, y = df[:, :1], (df[:, 0] + df[:, 1] > 0.3).astype(int)")
        cell("clf = LogisticRegression().fit(X, y)")
        cell("acc = clf.score(X, y)\nerr = 1 - acc")
    r = reader()
    second, first = r.list_runs()
    best = review_of(r, first["sprint"])["best"]
    paired = [b for b in best if b.get("previous_run")]  # acc or err: the one the second run did better on
    assert [(b["run"], b["previous_run"]) for b in paired] == [(second["id"], first["id"])], best
    assert paired[0]["changed"] == "same params; other data: X, y", paired[0]


def test_review_ranks_no_run_by_a_count(cell, reader):
    from nbexp.analysis.review import review as review_of

    cell("%nbexp track")
    cell(
        "import nbexp\nwith nbexp.run('a'):\n    nbexp.log(auc=0.8, best_iteration=40)\n"
        "with nbexp.run('b'):\n    nbexp.log(auc=0.9, best_iteration=12)"
    )
    r = reader()
    best = review_of(r, r.list_runs()[0]["sprint"])["best"]
    assert [b["metric"] for b in best] == ["auc"], best
