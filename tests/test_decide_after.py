"""A cell decided after it ran (nbexp/tracker.py ``Session._decide_after``) that logged points before the next
run opened: the user is told where those points went, in a real IPython shell."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression

SK_DATA = (
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
)
SK_FIT = "clf = LogisticRegression(C=C, max_iter=200).fit(X_train, y_train)"
# a helper of the user's that logs through nbexp: the cell calling it never names nbexp or a training call
NOTE = "import nbexp\n\ndef note(**values):\n    nbexp.log(**values)"


def test_a_changed_value_cell_that_logged_says_where_its_points_went(cell, reader, capsys):
    """``C`` edited after the run trained, in a cell that also logs a point through the user's own helper: the
    cell names a value of the trained run but nothing that trains, so its run is decided once it ran; the edit
    opens the next run, and the point it logged before that is in the trained run. The user is told so, once,
    with the run's id and what to do, and the warning stays on that run."""
    cell("%nbexp track --sample-hz 0 baseline")
    for code in (SK_DATA, NOTE, "C = 1.0", SK_FIT):
        assert cell(code).success
    capsys.readouterr()
    assert cell("C = 0.01\nnote(checkpoint=0.5)").success
    err = capsys.readouterr().err
    runs = reader().list_runs()
    assert len(runs) == 2  # the edit opened the next run
    trained, after = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert trained["params"]["C"] == 1.0 and after["params"]["C"] == 0.01
    message = (
        f"a cell that changed a value of run {trained['id']} logged 1 point(s) there before the next run opened "
        "(name its training call or use %nbexp new)"
    )
    assert f"nbexp: warning: {message}" in err, err
    assert "checkpoint" in trained["metrics"] and "checkpoint" not in after["metrics"]
    assert [(e["level"], e["cause"], e["message"]) for e in trained["events"]] == [("warning", "segment", message)]


@pytest.mark.parametrize("typed, name", [("λ", "λ"), ("µ", "μ")])
def test_a_value_with_a_greek_name_edited_after_training_opens_the_next_run(cell, reader, typed, name):
    """Python names may start with a letter of any script (``λ = 1.0``, as notebooks written from a paper's
    formulas do; ``µ``, the micro sign a keyboard types, is the name ``μ``, as Python reads it): edited after the
    run trained, such a value opens the next run like any other, and the trained run keeps the value it trained
    with."""
    cell("%nbexp track --sample-hz 0 baseline")
    for code in (SK_DATA, f"{typed} = 1.0", f"clf = LogisticRegression(C={typed}, max_iter=200).fit(X_train, y_train)"):
        assert cell(code).success
    assert cell(f"{typed} = 0.01").success
    runs = reader().list_runs()
    assert len(runs) == 2  # the edit opened the next run
    trained, after = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert trained["params"][name] == 1.0 and after["params"][name] == 0.01


EVAL = (
    "from sklearn.metrics import accuracy_score\n"
    "acc = accuracy_score(y_test, clf.predict(X_test))\n"
    "print(f'accuracy: {acc:.3f}')"
)
# an evaluation on a random subsample drawn without a seed: each run of the cell computes another accuracy
EVAL_SAMPLED = (
    "import numpy as np\nfrom sklearn.metrics import accuracy_score\n"
    "rows = np.random.default_rng().choice(len(X_test), 12, replace=False)\n"
    "acc = accuracy_score(y_test[rows], clf.predict(X_test[rows])) + float(np.random.default_rng().random()) * 1e-6\n"
    "print(f'accuracy: {acc:.3f}')"
)


def _sprint(shell, ids, fit=SK_FIT):
    """Tracking, the data, ``C`` and a training cell (``fit``), with JupyterLab-style cell ids or without; returns a
    function that runs a cell as the user would (by its id)."""

    def run(key, code):
        res = shell.run_cell(code, store_history=True, cell_id=key if ids else None)
        assert res.success, res.error_in_exec
        return res

    run("track", "%nbexp track --sample-hz 0 baseline")
    for key, code in (("data", SK_DATA), ("c", "C = 1.0"), ("fit", fit)):
        run(key, code)
    return run


def _cell_runs(db, needle):
    """The run of each execution of the cells whose text holds ``needle``, in order."""
    rows = db().execute(
        "SELECT c.run_id FROM cells c JOIN code k ON k.hash = c.code_hash "
        "WHERE instr(k.source, ?) > 0 ORDER BY c.start",
        (needle,),
    )
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    "comment", ["", "# scored with the model fit on the train split\n"], ids=["", "fit in a comment"]
)
@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_an_evaluation_cell_run_again_unchanged_stays_in_its_run(shell, reader, db, ids, comment):
    """Training, then its evaluation cell, then the evaluation cell run again as it was (to see its output
    again): it computes exactly what it computed, so no run opens and nothing is added to the run (the accuracy
    keeps its one point); every execution of the cell is the trained run's, also when a comment of the cell
    names a training call. Before, any re-run of a cell that had produced metrics opened a copy of the run with
    the same params."""
    run = _sprint(shell, ids)
    for _ in range(3):
        run("eval", comment + EVAL)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline"]
    got = reader().run(runs[0]["id"])
    assert got["params"]["C"] == 1.0
    assert got["metrics"]["acc"]["steps"] == 1 and got["metrics"]["acc"]["last"] == shell.user_ns["acc"]
    assert got["metrics"]["accuracy"]["steps"] == 1
    assert _cell_runs(db, "accuracy_score") == [runs[0]["id"]] * 3


# an evaluation that draws (a new figure each time) and names the model again, as tutorials do
EVAL_PLOTTED = (
    "import matplotlib.pyplot as plt\n"
    "from sklearn.metrics import ConfusionMatrixDisplay\n"
    "best = clf\nfig, axes = plt.subplots(1, 2)\naxes[0].plot(best.predict_proba(X_test)[:, 1])\n"
    "disp = ConfusionMatrixDisplay.from_estimator(best, X_test, y_test, ax=axes[1])\n"
    "acc = best.score(X_test, y_test)\nprint(f'accuracy: {acc:.3f}')\nplt.close('all')"  # as inline figures are
)


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_an_evaluation_cell_that_draws_and_names_the_model_again_stays_in_its_run_when_run_again(
    shell, reader, db, ids
):
    """The evaluation cell draws a figure and a confusion matrix and binds the model under a second name; run
    again as it was, it computed the same, so it stays in the trained run, and the model's params are recorded
    once, under the name it trained through. Before, each run of the cell opened a copy of the run (a figure and
    a model could not be compared), and the run listed the model's params twice (``best.C`` beside ``clf.C``)."""
    run = _sprint(shell, ids)
    for _ in range(3):
        run("eval", EVAL_PLOTTED)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline"]
    got = reader().run(runs[0]["id"])
    assert got["params"]["C"] == 1.0 and got["params"]["clf.C"] == 1.0
    assert not [k for k in got["params"] if k.startswith(("best.", "disp.", "fig.", "axes."))], sorted(got["params"])
    assert got["metrics"]["acc"]["steps"] == 1
    assert _cell_runs(db, "ConfusionMatrixDisplay") == [runs[0]["id"]] * 3


def test_an_evaluation_cell_that_draws_other_data_when_run_again_opens_the_next_run(shell, reader, db):
    """The same evaluation text draws a confusion matrix of a subsample drawn anew each time (its seed and its size
    the execution count: two bootstrap samples of the 38 test rows can give the same matrix, two of another size
    cannot), with the same accuracy on the whole test set printed: each run of it computed another matrix, so each
    opens the next run, as a changed value would."""
    run = _sprint(shell, True)
    count = "get_ipython().execution_count"
    code = EVAL_PLOTTED.replace(
        "from_estimator(best, X_test, y_test,",
        f"from_estimator(best, *resample(X_test, y_test, n_samples=10 + {count} % 25, random_state={count}),",
    )
    code = "from sklearn.utils import resample\n" + code
    for _ in range(3):
        run("eval", code)
    assert [r["name"] for r in reader().list_runs()] == ["baseline #3", "baseline #2", "baseline"]


def test_an_evaluation_cell_that_shows_another_picture_when_run_again_opens_the_next_run(shell, reader):
    """An evaluation cell that draws through pyplot alone (nothing bound) data drawn anew each time and displays
    the figure as a notebook's inline backend does (a PNG), with the same accuracy printed: each run displayed
    another picture, so it opens the next run; the same picture again stays in the run."""
    from matplotlib.figure import Figure

    formatters = shell.display_formatter.formatters
    before = {mime: f.lookup_by_type(Figure) for mime, f in formatters.items() if Figure in f}
    try:
        _figures_shown_again(shell, reader)
    finally:  # the shell is shared by the tests that follow
        for mime, f in formatters.items():
            f.pop(Figure, None)
            if mime in before:
                f.for_type(Figure, before[mime])


def _figures_shown_again(shell, reader):
    run = _sprint(shell, True)
    run(
        "inline",  # what %matplotlib inline sets up in a kernel: figures displayed as PNG
        "from IPython.core.pylabtools import select_figure_formats\nselect_figure_formats(get_ipython(), {'png'})",
    )
    drawn = (
        "import matplotlib.pyplot as plt\nimport numpy as np\nfrom IPython.display import display\n"
        "acc = clf.score(X_test, y_test)\nprint(f'accuracy: {acc:.3f}')\n"
        "plt.figure()\nplt.plot(np.random.default_rng(SEED).random(5))\ndisplay(plt.gcf())\nplt.close()"
    )
    for seed in ("get_ipython().execution_count", "get_ipython().execution_count", "0", "0"):
        run("eval", drawn.replace("SEED", seed))
    # another picture opened #2, the edit to a fixed seed #3, the same picture again stayed in #3
    names = [r["name"] for r in reader().list_runs()]
    assert names == ["baseline #3", "baseline #2", "baseline"], names


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_an_evaluation_cell_that_computes_another_value_when_run_again_opens_the_next_run(shell, reader, ids):
    """The same evaluation text run again computes another accuracy (a subsample drawn without a seed): the
    trained run keeps the value it had; the new value goes to the next run (named after it), which evaluates the
    same model and so has its params."""
    run = _sprint(shell, ids)
    run("eval", EVAL_SAMPLED)
    first = shell.user_ns["acc"]
    run("eval", EVAL_SAMPLED)
    second = shell.user_ns["acc"]
    assert first != second
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    trained, after = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert trained["metrics"]["acc"]["steps"] == 1 and trained["metrics"]["acc"]["last"] == first
    assert after["metrics"]["acc"]["steps"] == 1 and after["metrics"]["acc"]["last"] == second
    assert trained["params"] == after["params"] and after["params"]["C"] == 1.0


# a value the accuracy does not show: an f1 with noise, kept in a dict (a result object) and nowhere else
EVAL_WITH_SCORES = (
    EVAL + "\nfrom sklearn.metrics import f1_score\nimport random\n"
    "scores = {'f1': f1_score(y_test, clf.predict(X_test), average='macro') - random.random() * 1e-6}"
)
# a helper of the user's that logs a value through nbexp while the cell runs
EVAL_LOGGING = (
    "import numpy as np\nimport nbexp\n\ndef evaluate(model):\n"
    "    nbexp.log(sub_acc=float(np.random.default_rng().random()))\n"
    "    return model.score(X_test, y_test)"
)


@pytest.mark.parametrize("code", ["scores", "helper"])
def test_an_evaluation_that_computed_more_than_its_accuracy_is_compared_whole(shell, reader, code):
    """The accuracy is the same when the evaluation runs again, but something else it computed is not (an f1 in
    a dict, a value its helper logged while it ran): the trained run keeps its one value of each, the other goes
    to the next run."""
    run = _sprint(shell, True)
    if code == "helper":
        run("helper", EVAL_LOGGING)
        text, key = "test_acc = evaluate(clf)\nprint(f'test accuracy: {test_acc:.3f}')", "sub_acc"
    else:
        text, key = EVAL_WITH_SCORES, "f1"
    for _ in range(2):
        run("eval", text)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    trained, after = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert trained["metrics"][key]["steps"] == 1 and after["metrics"][key]["steps"] == 1
    assert trained["metrics"][key]["last"] != after["metrics"][key]["last"]


def test_an_edited_evaluation_cell_opens_the_next_run_before_it_runs(shell, reader, db):
    """With cell ids, the evaluation cell edited in place (scored on the first 20 test rows) and run: the next run
    opens before it runs (the cell is that run's), evaluates the same model (the trained run's params), and keeps
    the new accuracy; the trained run keeps its own. Then ``C`` edited and the training re-run: a third run, so
    the second never mixes two models."""
    run = _sprint(shell, True)
    run("eval", EVAL)
    first = shell.user_ns["acc"]
    edited = EVAL.replace("y_test, clf.predict(X_test)", "y_test[:20], clf.predict(X_test[:20])")
    run("eval", edited)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    trained, after = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert _cell_runs(db, "accuracy_score") == [trained["id"], after["id"]]
    assert trained["metrics"]["acc"]["steps"] == 1 and trained["metrics"]["acc"]["last"] == first
    assert after["metrics"]["acc"]["last"] == shell.user_ns["acc"] != first
    assert after["params"] == trained["params"]
    run("c", "C = 0.01")
    run("fit", SK_FIT)
    run("eval", edited)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #3", "baseline #2", "baseline"]
    assert reader().run(runs[1]["id"])["metrics"]["acc"]["steps"] == 1
    assert reader().run(runs[0]["id"])["params"]["C"] == 0.01


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_a_value_the_model_gets_again_or_that_did_not_change_is_not_stale(shell, reader, capsys, ids):
    """The stale-model note only where the model lacks the value (a review): ``C = 1.0`` run again unchanged, and a
    training cell that hands ``C`` to the model itself (``clf.set_params(C=C)``) say nothing and record the ``C`` the
    model trained with; after a stale training, the literal cell run again with the value it holds opens no run, so
    the evaluation that follows stays with the model it evaluates."""
    build, fit = "clf = LogisticRegression(C=C, max_iter=200)", "clf.fit(X_train, y_train)"
    score = "test_acc = clf.score(X_test, y_test)"

    def run(key, code):
        res = shell.run_cell(code, store_history=True, cell_id=key if ids else None)
        assert res.success, res.error_in_exec

    run("track", "%nbexp track --sample-hz 0 baseline")
    for key, code in (("data", SK_DATA), ("c", "C = 1.0"), ("build", build), ("fit", fit), ("score", score)):
        run(key, code)
    run("c", "C = 1.0")  # the same value again
    run("fit", fit)
    assert "was set again" not in capsys.readouterr().err
    run("c", "C = 0.01")
    run("set-fit", "clf.set_params(C=C)\n" + fit)  # the training cell gives the model the new C
    assert shell.user_ns["clf"].C == 0.01 and "was set again" not in capsys.readouterr().err
    trained = reader().list_runs()[0]
    assert {k: reader().run(trained["id"])["params"][k] for k in ("C", "clf.C")} == {"C": 0.01, "clf.C": 0.01}
    assert reader().param_sources(trained["id"])["C"] == "assign"
    run("c", "C = 0.5")
    run("fit", fit)  # stale: clf still has 0.01
    assert capsys.readouterr().err.count("was set again") == 1
    stale = reader().list_runs()[0]
    assert reader().run(stale["id"])["params"]["C"] == 0.01
    run("c", "C = 0.5")  # what C held when the run trained: no change, no run
    run("score", score)
    runs = reader().list_runs()
    assert runs[0]["id"] == stale["id"] and runs[0]["metrics"]["test_acc"]["last"] == shell.user_ns["test_acc"]


# an evaluation that only prints its metric (the scikit-learn gallery's way): no variable holds it
EVAL_PRINTED = (
    "from sklearn.metrics import accuracy_score\nprint(f'Accuracy: {accuracy_score(y_test, clf.predict(X_test)):.3f}')"
)


def test_an_evaluation_cell_that_only_prints_its_metric_is_never_rewritten(shell, reader):
    """With cell ids: the printing evaluation cell run again unchanged stays in the trained run; edited in place
    (scored on the first 20 test rows) it opens the next run before it runs, and that run, run again after ``C``
    changed and the model retrained, is not rewritten either. Before, the edit printed its other accuracy into the
    trained run, whose accuracy became a curve of both values."""
    run = _sprint(shell, True)
    run("eval", EVAL_PRINTED)
    run("eval", EVAL_PRINTED)
    runs = reader().list_runs()
    assert len(runs) == 1
    first = reader().run(runs[0]["id"])["metrics"]["accuracy"]
    assert first["steps"] == 1
    edited = EVAL_PRINTED.replace("y_test, clf.predict(X_test)", "y_test[:20], clf.predict(X_test[:20])")
    run("eval", edited)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    trained, after = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert trained["metrics"]["accuracy"] == first
    assert after["metrics"]["accuracy"]["steps"] == 1 and after["metrics"]["accuracy"]["last"] != first["last"]
    run("c", "C = 0.01")
    run("fit", SK_FIT)
    run("eval", edited)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #3", "baseline #2", "baseline"]
    assert reader().run(runs[1]["id"])["metrics"]["accuracy"]["steps"] == 1


def test_an_edited_evaluation_cell_that_only_prints_its_metric_opens_the_next_run_without_cell_ids(shell, reader):
    """Without cell ids (nbclient, papermill): the printing evaluation cell edited (scored on the first 20 test rows)
    and run is known only once it ran, by the metric it printed again, one the run's evaluation printed: it opens the
    next run, from its start, with its accuracy; the trained run keeps its one value. Before, the edit printed its
    other accuracy into the trained run, whose accuracy became a curve of both values (a leftover of a user trial).
    Run again unchanged, the evaluation stays where it is."""
    run = _sprint(shell, False)
    run("eval", EVAL_PRINTED)
    run("eval", EVAL_PRINTED)
    first = reader().run(reader().list_runs()[0]["id"])["metrics"]["accuracy"]
    assert (len(reader().list_runs()), first["steps"]) == (1, 1)
    edited = EVAL_PRINTED.replace("y_test, clf.predict(X_test)", "y_test[:20], clf.predict(X_test[:20])")
    run("eval", edited)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    trained, after = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert trained["metrics"]["accuracy"] == first
    assert after["metrics"]["accuracy"]["steps"] == 1 and after["metrics"]["accuracy"]["last"] != first["last"]
    assert after["params"]["C"] == 1.0  # it evaluates the trained model again
    # and holds the data that model trained on: explain named the training data changed, since the re-evaluation
    # had none recorded (a user trial)
    trained_data = {d["name"]: d["fingerprint"] for d in trained["data"]}
    assert {"X_train", "y_train"} <= set(trained_data), trained_data
    assert {d["name"]: d["fingerprint"] for d in after["data"]}.items() >= trained_data.items()
    from nbexp.analysis.explain import explain

    factors = explain(reader(), trained["id"], after["id"], "accuracy")["factors"]
    assert [f["kind"] for f in factors] == ["code"], factors
    run("eval", edited)
    assert len(reader().list_runs()) == 2


# the accuracy on the training split, then on the test split, each in a cell of its own, bound to the same name
EVAL_TRAIN_SPLIT = "from sklearn.metrics import accuracy_score\nacc = accuracy_score(y_train, clf.predict(X_train))"
EVAL_TEST_SPLIT = "acc = accuracy_score(y_test, clf.predict(X_test))"


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_two_evaluation_cells_that_bind_the_same_metric_are_one_evaluation(shell, reader, ids):
    """The training split's accuracy and then the test split's, each in a cell of its own and bound to the same name
    (a tutorial run top to bottom): one run, holding the test split's as ``acc`` and the training split's as
    ``train_acc``. Before, the run's ``acc`` was a curve of both values, the last one its value in every view, and
    without cell ids the test cell opened a copy of the run ("baseline #2", the same params) with the test accuracy
    alone, as if it were the first cell edited. Edited, the test cell still opens the next run, which holds the
    edit's ``acc``."""
    run = _sprint(shell, ids)
    run("train split", EVAL_TRAIN_SPLIT)
    on_train = shell.user_ns["acc"]
    run("test split", EVAL_TEST_SPLIT)
    on_test = shell.user_ns["acc"]
    assert on_train != on_test
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline"]
    metrics = reader().run(runs[0]["id"])["metrics"]
    assert {k: (m["steps"], m["last"]) for k, m in metrics.items()} == {"acc": (1, on_test), "train_acc": (1, on_train)}
    run("test split", EVAL_TEST_SPLIT.replace("y_test, clf.predict(X_test)", "y_test[:20], clf.predict(X_test[:20])"))
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    assert reader().run(runs[0]["id"])["metrics"]["acc"]["last"] == shell.user_ns["acc"] != on_test
    assert reader().run(runs[1]["id"])["metrics"]["acc"]["steps"] == 1


# the training split's accuracy printed under the label the test split's evaluation printed (a tutorial's two cells)
PRINTED_TRAIN_SPLIT = (
    "from sklearn.metrics import accuracy_score\n"
    "print(f'Accuracy: {accuracy_score(y_train, clf.predict(X_train)):.3f}')"
)


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
@pytest.mark.parametrize("train_first", [False, True], ids=["test split first", "train split first"])
def test_the_training_splits_accuracy_printed_like_the_test_splits_is_its_own_metric(shell, reader, ids, train_first):
    """``Accuracy: ...`` printed on the test split and on the training split, each by a cell of its own, in either
    order: one run, whose ``accuracy`` is the test split's and ``train_accuracy`` the training split's. Before, without
    cell ids the second cell opened a re-evaluation run ("baseline #2") as if it were the first cell edited, and with
    ids the run's accuracy became a curve of both values. The training split's cell edited (its first 20 rows) and run
    again opens the next run, with cell ids and without."""
    run = _sprint(shell, ids)
    cells = [("test split", EVAL_PRINTED), ("train split", PRINTED_TRAIN_SPLIT)]
    for key, code in reversed(cells) if train_first else cells:
        run(key, code)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline"]
    clf, ns = shell.user_ns["clf"], shell.user_ns
    on_test = round(clf.score(ns["X_test"], ns["y_test"]), 3)
    on_train = round(clf.score(ns["X_train"], ns["y_train"]), 3)
    assert on_test != on_train
    metrics = reader().run(runs[0]["id"])["metrics"]
    assert {k: (m["steps"], m["last"]) for k, m in metrics.items()} == {
        "accuracy": (1, on_test),
        "train_accuracy": (1, on_train),
    }
    run(
        "train split",
        PRINTED_TRAIN_SPLIT.replace("y_train, clf.predict(X_train)", "y_train[:20], clf.predict(X_train[:20])"),
    )
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    assert reader().run(runs[1]["id"])["metrics"]["train_accuracy"]["steps"] == 1
    assert set(reader().run(runs[0]["id"])["metrics"]) == {"train_accuracy"}


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_the_test_splits_accuracy_printed_like_the_training_cells_own_is_the_test_splits(shell, reader, ids):
    """A training cell that prints its own training accuracy (``Accuracy: ...`` after ``fit``), then an evaluation
    cell that prints ``Accuracy: ...`` on the test split: the run's ``accuracy`` is the training cell's,
    ``test_accuracy`` the test split's, one point each. Before, they were one two-point ``accuracy`` curve whose last
    value was the test split's; once ``C`` was edited and the notebook run again from there, each run still compares
    like with like."""
    fit = SK_FIT + "\nprint(f'Accuracy: {clf.score(X_train, y_train):.3f}')"
    run = _sprint(shell, ids, fit)
    run("eval", EVAL_PRINTED)
    run("c", "C = 0.05")
    run("fit", fit)
    run("eval", EVAL_PRINTED)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    for r, C in zip(runs, (0.05, 1.0)):
        clf = LogisticRegression(C=C, max_iter=200).fit(shell.user_ns["X_train"], shell.user_ns["y_train"])
        ns = shell.user_ns
        metrics = reader().run(r["id"])["metrics"]
        assert {k: (m["steps"], m["last"]) for k, m in metrics.items()} == {
            "accuracy": (1, round(clf.score(ns["X_train"], ns["y_train"]), 3)),
            "test_accuracy": (1, round(clf.score(ns["X_test"], ns["y_test"]), 3)),
        }, r["name"]


THRESHOLD_EVAL = (
    "from sklearn.metrics import accuracy_score\n"
    "print(f'Accuracy: {accuracy_score(y_test, clf.predict_proba(X_test)[:, 1] > threshold):.3f}')"
)


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_an_evaluation_of_a_model_an_earlier_run_trained_keeps_its_key(shell, reader, ids):
    """A training cell that prints its own ``Accuracy``, an evaluation on the test split with its own threshold, the
    threshold edited and the evaluation run again: the edit opens the next run, which evaluates the model the first
    run trained and did not train it again. Its test split's accuracy is ``test_accuracy`` as in the first run
    (a review: it was ``accuracy`` there, the first run's training accuracy, and the main metric compared the two)."""
    data = SK_DATA.replace("load_iris", "load_breast_cancer")
    fit = SK_FIT + "\nprint(f'Accuracy: {clf.score(X_train, y_train):.3f}')"

    def run(key, code):
        res = shell.run_cell(code, store_history=True, cell_id=key if ids else None)
        assert res.success, res.error_in_exec

    run("track", "%nbexp track --sample-hz 0 baseline")
    for key, code in (("data", data), ("c", "C = 1.0"), ("thr", "threshold = 0.5"), ("fit", fit)):
        run(key, code)
    run("eval", THRESHOLD_EVAL)
    run("thr", "threshold = 0.3")
    run("eval", THRESHOLD_EVAL)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    first, second = (reader().run(r["id"])["metrics"] for r in reversed(runs))
    assert set(first) == {"accuracy", "test_accuracy"} and set(second) == {"test_accuracy"}
    assert first["accuracy"]["steps"] == 1


def test_an_edited_evaluation_of_both_splits_never_extends_the_training_curve(shell, reader):
    """Without cell ids: a training cell prints its own ``Accuracy``, a test cell prints ``Accuracy`` (the test
    split's), then the test cell is edited to print the training split's too (it reads both splits). The edited cell's
    ``Accuracy`` is no point of the training cell's ``accuracy``: it is ``eval_accuracy`` (a review: the training
    accuracy curve of the trained run ended on the test value)."""
    fit = SK_FIT + "\nprint(f'Accuracy: {clf.score(X_train, y_train):.3f}')"
    run = _sprint(shell, False, fit)
    run("eval", EVAL_PRINTED)
    run("eval", PRINTED_TRAIN_SPLIT.replace("Accuracy", "Train accuracy") + "\n" + EVAL_PRINTED.split("\n")[1])
    ns = shell.user_ns
    metrics = reader().run(reader().list_runs()[-1]["id"])["metrics"]
    assert metrics["accuracy"]["steps"] == 1
    assert metrics["accuracy"]["last"] == round(ns["clf"].score(ns["X_train"], ns["y_train"]), 3)
    assert metrics["eval_accuracy"]["last"] == round(ns["clf"].score(ns["X_test"], ns["y_test"]), 3)


# a validation split carved out of the test split (a tutorial's X_val), and its accuracy printed like the test split's
SK_VAL = "X_val, X_test, y_val, y_test = train_test_split(X_test, y_test, test_size=0.5, random_state=3)"
PRINTED_VAL_SPLIT = "print(f'Accuracy: {accuracy_score(y_val, clf.predict(X_val)):.3f}')"


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_the_validation_splits_accuracy_printed_like_the_test_splits_is_its_own_metric(shell, reader, ids):
    """``Accuracy: ...`` printed on the validation split and then on the test split, each by a cell of its own: one
    run, whose ``val_accuracy`` is the validation split's (Keras's name for it) and ``accuracy`` the test split's.
    Before, without cell ids the test cell opened a re-evaluation run ("baseline #2") as if the validation cell had
    been edited, and with ids the run's accuracy was a curve of both."""
    run = _sprint(shell, ids)
    run("val", SK_VAL)
    run("eval val", "from sklearn.metrics import accuracy_score\n" + PRINTED_VAL_SPLIT)
    run("eval test", EVAL_PRINTED)
    ns = shell.user_ns
    on_val, on_test = (round(ns["clf"].score(ns[f"X_{s}"], ns[f"y_{s}"]), 3) for s in ("val", "test"))
    assert on_val != on_test
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline"]
    metrics = reader().run(runs[0]["id"])["metrics"]
    assert {k: (m["steps"], m["last"]) for k, m in metrics.items()} == {
        "val_accuracy": (1, on_val),
        "accuracy": (1, on_test),
    }


def test_an_edited_evaluation_cell_that_names_a_training_word_opens_the_next_run_with_cell_ids(shell, reader):
    """With cell ids, an evaluation cell whose text holds a training word (``train`` in a comment: its edit is decided
    by parsing it before it runs), edited to score other rows: it recomputes the run's metric in the cell that
    computed it, so the next run opens; the trained run keeps its one accuracy (a review found it kept both)."""
    code = "# accuracy on test (not train)\nfrom sklearn.metrics import accuracy_score\n" + EVAL_TEST_SPLIT
    run = _sprint(shell, True)
    run("eval", code)
    first = shell.user_ns["acc"]
    run("eval", code.replace("y_test, clf.predict(X_test)", "y_test[:20], clf.predict(X_test[:20])"))
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    acc = reader().run(runs[1]["id"])["metrics"]["acc"]
    assert (acc["steps"], acc["last"]) == (1, first)


def test_a_run_opened_by_an_edited_evaluation_records_the_values_the_edit_set(shell, reader):
    """With cell ids, an evaluation cell that sets its own threshold, edited from 0.5 to 0.9: the next run opens
    before it runs, evaluates the same model (``C`` as trained) and records the threshold it used, 0.9; the
    trained run keeps 0.5."""
    run = _sprint(shell, True)
    text = (
        "from sklearn.metrics import accuracy_score\nthreshold = 0.5\n"
        "acc = accuracy_score(y_test == 0, clf.predict_proba(X_test)[:, 0] > threshold)"
    )
    run("eval", text)
    run("eval", text.replace("0.5", "0.9"))
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    trained, after = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert trained["params"]["threshold"] == 0.5 and after["params"]["threshold"] == 0.9
    assert trained["params"]["C"] == after["params"]["C"] == 1.0
    assert trained["params"]["clf.C"] == after["params"]["clf.C"]


def test_an_evaluation_that_builds_a_results_table_stays_when_run_again(shell, reader):
    """An evaluation cell that keeps its report in a pandas DataFrame (and shows it) run again unchanged: the frame
    is compared by its rows, so the cell stays in the trained run and its accuracy keeps one point."""
    run = _sprint(shell, True)
    text = (
        "import pandas as pd\nfrom sklearn.metrics import accuracy_score, classification_report\n"
        "pred = clf.predict(X_test)\nacc = accuracy_score(y_test, pred)\n"
        "report = pd.DataFrame(classification_report(y_test, pred, output_dict=True)).T\nreport"
    )
    for _ in range(2):
        run("eval", text)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline"]
    assert reader().run(runs[0]["id"])["metrics"]["acc"]["steps"] == 1


def test_an_evaluation_cell_run_again_in_a_re_evaluation_run_stays_in_it_without_cell_ids(shell, reader):
    """Without cell ids: two evaluation cells, the accuracy and the F1 score; the accuracy's cell edited opens the
    re-evaluation run ``baseline #2``; the F1 cell run again unchanged (to have #2's F1 too) stays in #2, which then
    holds both. A review found it opening a third run, from the keys of the evaluations #2 took over without their
    cells."""
    run = _sprint(shell, False)
    acc = "from sklearn.metrics import accuracy_score\nacc = accuracy_score(y_test, clf.predict(X_test))"
    f1 = "from sklearn.metrics import f1_score\nf1 = f1_score(y_test, clf.predict(X_test), average='macro')"
    run("acc", acc)
    run("f1", f1)
    run("acc", acc.replace("y_test, clf.predict(X_test)", "y_test[:20], clf.predict(X_test[:20])"))
    run("f1", f1)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    assert set(reader().run(runs[0]["id"])["metrics"]) == {"acc", "f1"}


# a helper whose body binds a local named like a metric, defined in a cell of its own (the PyTorch tutorials' test_loop)
DEF_EVALUATE = (
    "from sklearn.metrics import log_loss\n\n"
    "def evaluate(model, X, y):\n    test_loss = log_loss(y, model.predict_proba(X))\n    return test_loss"
)


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_a_helpers_local_named_like_a_metric_is_not_the_cells_metric(shell, reader, ids):
    """``C`` edited and the notebook run again from there, through a cell that only defines the evaluation helper (its
    body binds a local ``test_loss``): the second run holds its own test loss alone. Before, defining the helper
    recorded the global ``test_loss`` the first run left into the second run, and without cell ids the helper's cell
    opened a third run, so the training and its evaluation were two runs (a user trial)."""

    def run(key, code):
        res = shell.run_cell(code, store_history=True, cell_id=key if ids else None)
        assert res.success, res.error_in_exec

    run("track", "%nbexp track --sample-hz 0 baseline")
    cells = [("data", SK_DATA), ("c", "C = 1.0"), ("def", DEF_EVALUATE), ("fit", SK_FIT)]
    cells.append(("eval", "test_loss = evaluate(clf, X_test, y_test)\nprint(f'Test loss: {test_loss:.4f}')"))
    for key, code in cells:
        run(key, code)
    first = shell.user_ns["test_loss"]
    run("c", "C = 0.05")
    for key, code in cells[2:]:
        run(key, code)
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["baseline #2", "baseline"]
    loss = reader().run(runs[0]["id"])["metrics"]["test_loss"]
    assert (loss["steps"], loss["last"], loss["min"]) == (1, shell.user_ns["test_loss"], shell.user_ns["test_loss"])
    assert shell.user_ns["test_loss"] != first


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_a_value_edited_after_the_model_was_built_from_it_is_said_not_to_reach_it(shell, reader, capsys, ids):
    """``C`` edited and run again with the training cell but not with ``clf = LogisticRegression(C=C)``: the model the
    second run trains still has the first ``C``. The user is told so once, naming the run and what to run, and the run
    keeps the note; run again with the model's cell, nothing is said (a user trial: the diff said ``C 1 -> 0.01`` and
    ``explain`` that accuracy did not depend on it)."""
    build, fit = "clf = LogisticRegression(C=C, max_iter=200)", "clf.fit(X_train, y_train)"

    def run(key, code):
        res = shell.run_cell(code, store_history=True, cell_id=key if ids else None)
        assert res.success, res.error_in_exec

    run("track", "%nbexp track --sample-hz 0 baseline")
    for key, code in (("data", SK_DATA), ("c", "C = 1.0"), ("build", build), ("fit", fit)):
        run(key, code)
    assert "nbexp: warning" not in capsys.readouterr().err
    run("c", "C = 0.01")
    run("fit", fit)
    assert shell.user_ns["clf"].C == 1.0
    err = capsys.readouterr().err
    second = reader().list_runs()[0]
    message = (
        f"C was set again after clf was built from it, and clf was not built again: run {second['id']} trained clf "
        "with the earlier C (run the cell that builds clf again to use the new one)"
    )
    assert err.count(message) == 1, err
    assert [e["message"] for e in reader().run(second["id"])["events"] if e["cause"] == "stale"] == [message]
    # the run records the C its model was built with, as the model says (a diff with the first run shows no edit)
    assert {k: reader().run(second["id"])["params"][k] for k in ("C", "clf.C")} == {"C": 1.0, "clf.C": 1.0}
    run("c", "C = 0.1")
    for key, code in (("build", build), ("fit", fit)):
        run(key, code)
    assert "was set again" not in capsys.readouterr().err
    third = reader().list_runs()[0]
    assert {k: reader().run(third["id"])["params"][k] for k in ("C", "clf.C")} == {"C": 0.1, "clf.C": 0.1}
    # a training cell that builds its model itself uses the value set before it: nothing to say, its C is the run's
    run("c", "C = 0.5")
    run("build-fit", "clf = LogisticRegression(C=C, max_iter=200).fit(X_train, y_train)")
    run("c", "C = 0.2")
    run("build-fit", "clf = LogisticRegression(C=C, max_iter=200).fit(X_train, y_train)")
    assert "was set again" not in capsys.readouterr().err
    last = reader().list_runs()[0]
    assert {k: reader().run(last["id"])["params"][k] for k in ("C", "clf.C")} == {"C": 0.2, "clf.C": 0.2}


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_a_dict_key_changed_after_the_model_was_built_from_it_is_said_not_to_reach_it(shell, reader, capsys, ids):
    """``clf = LogisticRegression(**params)``, then ``params["C"] = 0.01`` and only the training run again: the model
    trains with the first ``C``. The user is told so, and the run records ``params.C`` as the model was built with it
    (a user trial: no warning, ``params.C 0.01`` recorded while ``clf.C`` was 1.0). A key the build read by name
    (``params["C"]``) counts alone: a change of another key (``params["epochs"]``, read by the training loop) says
    nothing; a dict the build read as a whole (``make_model(params)``) is not known to be read by key: nothing said."""
    fit = "clf.fit(X_train, y_train)"

    def run(key, code):
        res = shell.run_cell(code, store_history=True, cell_id=key if ids else None)
        assert res.success, res.error_in_exec

    run("track", "%nbexp track --sample-hz 0 spread")
    run("data", SK_DATA)
    run("params", 'params = {"C": 1.0, "max_iter": 300}')
    run("build", "clf = LogisticRegression(**params)")
    run("fit", fit)
    assert "was set again" not in capsys.readouterr().err
    run("edit", 'params["C"] = 0.01')
    run("fit", fit)
    assert shell.user_ns["clf"].C == 1.0
    assert capsys.readouterr().err.count("params was set again after clf was built from it") == 1
    second = reader().list_runs()[0]
    recorded = reader().run(second["id"])["params"]
    assert (recorded["params.C"], recorded["clf.C"]) == (1.0, 1.0)
    assert reader().param_sources(second["id"])["params.C"] == "built"

    def stale():  # the note of the latest run (the line on stderr comes once a session)
        return [e for e in reader().run(reader().list_runs()[0]["id"])["events"] if e["cause"] == "stale"]

    # by key: only the keys the build read
    run("params", 'params = {"C": 1.0, "epochs": 3}')
    run("build", 'clf = LogisticRegression(C=params["C"], max_iter=300)')
    run("fit", fit)
    run("edit", 'params["epochs"] = 5')
    run("fit", fit)
    assert not stale()
    run("edit", 'params["C"] = 0.1')
    run("fit", fit)
    assert len(stale()) == 1 and shell.user_ns["clf"].C == 1.0
    assert reader().run(reader().list_runs()[0]["id"])["params"]["params.C"] == 1.0

    # read as a whole: which keys is not known
    run("helper", "def make_model(p):\n    return LogisticRegression(C=p['C'], max_iter=300)")
    run("build", "clf = make_model(params)")
    run("fit", fit)
    run("edit", 'params["C"] = 0.5')
    run("fit", fit)
    assert not stale()
