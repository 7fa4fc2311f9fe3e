"""Metrics from the result objects real code leaves, with no nbexp call (docs/design.md "Metrics", issue 16):
real Keras (torch backend), scikit-learn, XGBoost, LightGBM and PyTorch objects in a real IPython shell."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # real libraries, tiny data

XY = (
    "import numpy as np\nrng = np.random.default_rng(0)\nX = rng.random((90, 4))\n"
    "y = (X[:, 0] + X[:, 1] > 1).astype(int)\n"
    "X_train, X_test, y_train, y_test = X[:60], X[60:], y[:60], y[60:]"
)


def only_run(reader):
    r = reader()
    runs = r.list_runs()
    assert len(runs) == 1, [x["name"] for x in runs]
    return r, runs[0]["id"]


def series(r, run_id, key):
    points = r.metric_series(run_id, key)
    return [p["step"] for p in points], [p["value"] for p in points]


def sources(r, run_id):
    return {k: m["source"] for k, m in r.metric_summaries([run_id]).get(run_id, {}).items()}


def n_points(r, run_id):
    return len(r.metric_series(run_id))


def test_keras_history_curves_and_evaluate_named_by_metrics_once(cell, reader, capsys):
    """History: one curve per key, step = epoch, in the run that trained; evaluate's list named by the
    model's metric names with a test_ prefix; showing history again, or in an error cell, adds nothing."""
    cell("%nbexp track")
    cell(
        XY + "\nimport keras\nkeras.utils.set_random_seed(0)\n"
        "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation='softmax')])\n"
        "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy',"
        " metrics=['sparse_categorical_accuracy'])"
    )
    cell(
        "history = model.fit(X_train, y_train, epochs=3, verbose=0, validation_data=(X_test, y_test))\nhistory.history"
    )
    cell("results = model.evaluate(X_test, y_test, verbose=0)")
    ns = cell.sh.user_ns
    hist, results = ns["history"].history, ns["results"]
    r, run_id = only_run(reader)
    assert set(hist) == {"loss", "sparse_categorical_accuracy", "val_loss", "val_sparse_categorical_accuracy"}
    for key, values in hist.items():
        assert series(r, run_id, key) == ([0, 1, 2], pytest.approx(values, rel=1e-12)), key
    assert series(r, run_id, "test_loss") == ([0], pytest.approx([results[0]], rel=1e-12))
    assert series(r, run_id, "test_sparse_categorical_accuracy")[1] == pytest.approx([results[1]], rel=1e-12)
    src = sources(r, run_id)
    assert {src[k] for k in hist} == {"keras"} and src["test_loss"] == "keras"
    before = n_points(r, run_id)
    cell("history")
    cell("history.history")
    cell("h = history\nh")
    cell("history\n1 / 0")  # an error cell
    cell("results")  # a list shown again: not what evaluate returned in this cell
    r, run_id = only_run(reader)
    assert n_points(r, run_id) == before
    assert "nbexp: warning" not in capsys.readouterr().err
    cell("%nbexp new other")
    cell("history")
    runs = reader().list_runs()
    assert len(runs) == 2 and not reader().metric_series(runs[0]["id"])  # never the run that did not train it


def test_keras_evaluate_unpacked_after_fit_is_the_test_splits_not_a_point_of_the_training_curves(cell, reader):
    """The Keras guide's layout with the results unpacked: ``loss, acc = model.evaluate(X_test, y_test)`` and
    ``Accuracy: ...`` printed, in a cell after ``fit``. The History's ``loss`` and ``accuracy`` are training curves of
    one point per epoch; the evaluation's are the test split's, ``test_loss`` and ``test_accuracy``. Before, its
    ``loss`` became a fourth point of the training loss curve and its printed accuracy was dropped, since the
    History held ``accuracy`` (a review)."""
    cell("%nbexp track")
    cell(
        XY + "\nimport keras\nkeras.utils.set_random_seed(0)\n"
        "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation='softmax')])\n"
        "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])"
    )
    cell("X_val, y_val = X_train[:15], y_train[:15]")
    cell("history = model.fit(X_train, y_train, epochs=3, verbose=0, validation_data=(X_val, y_val))")
    cell("loss, acc = model.evaluate(X_test, y_test, verbose=0)\nprint(f'Accuracy: {acc:.3f}')")
    ns = cell.sh.user_ns
    hist = ns["history"].history
    r, run_id = only_run(reader)
    for key in ("loss", "accuracy"):
        assert series(r, run_id, key) == ([0, 1, 2], pytest.approx(hist[key], rel=1e-12)), key
    assert series(r, run_id, "test_loss")[1] == pytest.approx([ns["loss"]], rel=1e-12)
    assert series(r, run_id, "test_accuracy")[1] == [round(ns["acc"], 3)]
    # the same on the validation split the History's val_ curves hold: the evaluation's own, no 4th epoch of them
    cell("loss, acc = model.evaluate(X_val, y_val, verbose=0)")
    r, run_id = only_run(reader)
    assert series(r, run_id, "val_loss") == ([0, 1, 2], pytest.approx(hist["val_loss"], rel=1e-12))
    assert series(r, run_id, "eval_val_loss")[1] == pytest.approx([ns["loss"]], rel=1e-12)


def test_native_xgb_train_best_score_is_named_after_the_metric_early_stopping_watched(cell, reader):
    """``xgb.train(..., early_stopping_rounds=3)`` with two eval metrics: the Booster's ``best_score`` is the last
    metric's (what early stopping watched), ``best_logloss``, whose direction is known (it goes down). Before, the
    Booster kept no evaluation results of its own (they are the user's ``evals_result=`` dict) and it was
    ``best_score``, which review could rank neither way (a user trial)."""
    cell("%nbexp track")
    cell(
        XY + "\nimport xgboost as xgb\n"
        "dtrain, dtest = xgb.DMatrix(X_train, label=y_train), xgb.DMatrix(X_test, label=y_test)"
    )
    cell(
        "evals = {}\nparams = {'objective': 'binary:logistic', 'eval_metric': ['auc', 'logloss'], 'nthread': 1}\n"
        "bst = xgb.train(params, dtrain, num_boost_round=40, evals=[(dtest, 'test')], evals_result=evals,"
        " early_stopping_rounds=3, verbose_eval=False)"
    )
    bst = cell.sh.user_ns["bst"]
    r, run_id = only_run(reader)
    assert series(r, run_id, "best_logloss")[1] == [pytest.approx(bst.best_score, rel=1e-12)]
    assert "best_score" not in r.run(run_id)["metrics"]


def test_sklearn_search_tables_and_best_params_not_params(cell, reader):
    """A fitted search: ``best_<scoring>`` and the cv_results / best_params tables hold what the search
    holds. Its best_params_ were params before (``search.best_params.C``): a fitted result, now a table."""
    cell("%nbexp track")
    cell(XY + "\nfrom sklearn.linear_model import LogisticRegression\nfrom sklearn.model_selection import GridSearchCV")
    cell("search = GridSearchCV(LogisticRegression(), {'C': [0.1, 1.0, 10.0]}, cv=3, scoring='accuracy')")
    cell("search.fit(X_train, y_train)")
    search = cell.sh.user_ns["search"]
    r, run_id = only_run(reader)
    params = r.run(run_id)["params"]
    assert "search.param_grid.C" in params
    assert not [k for k in params if "best_params" in k], sorted(params)
    assert series(r, run_id, "best_accuracy")[1] == [pytest.approx(search.best_score_, rel=1e-12)]
    assert sources(r, run_id)["best_accuracy"] == "sklearn"
    tables = {t["name"]: t for t in r.run_tables(run_id)}
    cv = tables["cv_results"]
    assert cv["source"] == "sklearn"
    assert cv["columns"] == ["param_C", "mean_test_score", "std_test_score", "rank_test_score"]
    assert [row[0] for row in cv["rows"]] == [0.1, 1.0, 10.0]
    assert [row[1] for row in cv["rows"]] == pytest.approx(list(search.cv_results_["mean_test_score"]), rel=1e-12)
    assert [row[3] for row in cv["rows"]] == list(search.cv_results_["rank_test_score"])
    assert tables["best_params"]["columns"] == ["C"] and tables["best_params"]["rows"] == [[search.best_params_["C"]]]
    before = n_points(r, run_id)
    cell("search")  # shown again: no second best score
    r, run_id = only_run(reader)
    assert n_points(r, run_id) == before


def test_sklearn_cross_validation_report_and_metric_functions(cell, reader):
    """cross_val_score's array as mean and std, cross_validate per scorer, a classification report
    dict, a metric function's value shown or bound to a name that does not look like a metric."""
    cell("%nbexp track")
    cell(
        XY + "\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score, classification_report\n"
        "from sklearn.model_selection import cross_val_score, cross_validate"
    )
    cell("scores = cross_val_score(LogisticRegression(), X, y, cv=3)")
    cell("cv = cross_validate(LogisticRegression(), X, y, cv=3, scoring=['accuracy', 'f1'])")
    cell("clf = LogisticRegression().fit(X_train, y_train)\npredicted = clf.predict(X_test)")
    cell("report = classification_report(y_test, predicted, output_dict=True)")
    cell("accuracy_score(y_test, predicted)")
    cell("clf.score(X_test, y_test)")
    cell("result = accuracy_score(y_train, clf.predict(X_train))")
    ns = cell.sh.user_ns
    r = reader()
    values = {}
    for run in r.list_runs():
        for p in r.metric_series(run["id"]):
            values.setdefault(p["key"], []).append(p["value"])
    scores, cv, report = ns["scores"], ns["cv"], ns["report"]
    assert values["scores_mean"] == [pytest.approx(scores.mean())] and values["scores_std"] == [
        pytest.approx(scores.std())
    ]
    assert values["test_f1_mean"] == [pytest.approx(cv["test_f1"].mean())]
    assert values["test_accuracy_std"] == [pytest.approx(cv["test_accuracy"].std())]
    assert values["macro_avg_f1_score"] == [pytest.approx(report["macro avg"]["f1-score"])]
    assert values["weighted_avg_precision"] == [pytest.approx(report["weighted avg"]["precision"])]
    assert values["class_1_recall"] == [pytest.approx(report["1"]["recall"])]
    assert "macro_avg_support" not in values
    train_acc = (ns["clf"].predict(ns["X_train"]) == ns["y_train"]).mean()
    # the report's accuracy and accuracy_score shown, on the test split; bound to `result` on the training split, its
    # own metric (it was a third point of the test split's accuracy)
    assert values["accuracy"] == pytest.approx([report["accuracy"], report["accuracy"]])
    assert values["train_accuracy"] == pytest.approx([train_acc])
    assert values["score"] == [pytest.approx(ns["clf"].score(ns["X_test"], ns["y_test"]))]
    assert "result" not in values
    run_id = r.list_runs()[0]["id"]
    assert sources(r, run_id)["score"] == "sklearn"


def test_xgboost_and_lightgbm_evals_in_the_training_run(cell, reader):
    cell("%nbexp track")
    cell(XY + "\nimport xgboost as xgb")
    cell(
        "xgb_model = xgb.XGBClassifier(n_estimators=30, max_depth=2, eval_metric='logloss', n_jobs=1,"
        " early_stopping_rounds=3)"
    )
    cell("xgb_model.fit(X_train, y_train, eval_set=[(X_test, y_test)], verbose=False)")
    model = cell.sh.user_ns["xgb_model"]
    r, run_id = only_run(reader)
    curve = model.evals_result()["validation_0"]["logloss"]
    assert series(r, run_id, "validation_0.logloss") == (list(range(len(curve))), pytest.approx(curve, rel=1e-12))
    assert series(r, run_id, "best_iteration")[1] == [model.best_iteration]
    # the score of the metric early stopping watched, named after it: logloss goes down (a review ranked it up)
    assert series(r, run_id, "best_logloss")[1] == [pytest.approx(model.best_score, rel=1e-12)]
    assert "best_score" not in r.run(run_id)["metrics"]
    assert sources(r, run_id)["validation_0.logloss"] == "xgboost"

    cell("%nbexp new lgb")
    cell(
        "import lightgbm as lgb\nparams = {'objective': 'regression', 'metric': ['l2', 'l1'], 'verbose': -1,"
        " 'num_threads': 1, 'learning_rate': 0.3}"
    )
    cell(
        "gbm = lgb.train(params, lgb.Dataset(X_train, y_train), num_boost_round=40,"
        " valid_sets=[lgb.Dataset(X_test, y_test)], callbacks=[lgb.early_stopping(3, verbose=False)])"
    )
    gbm = cell.sh.user_ns["gbm"]
    r = reader()
    lgb_run = r.list_runs()[0]["id"]
    assert series(r, lgb_run, "best_iteration")[1] == [gbm.best_iteration] and gbm.best_iteration > 0
    assert series(r, lgb_run, "valid_0.l2")[1] == [pytest.approx(gbm.best_score["valid_0"]["l2"], rel=1e-12)]
    assert series(r, lgb_run, "valid_0.l1")[1] == [pytest.approx(gbm.best_score["valid_0"]["l1"], rel=1e-12)]
    assert sources(r, lgb_run)["valid_0.l2"] == "lightgbm"
    assert not r.metric_series(lgb_run, "validation_0.logloss")  # the XGBoost curve stays with its run


def test_shown_metric_like_values_torch(cell, reader):
    """A PyTorch-style evaluation function's value shown, a dict of metrics shown; values from
    functions whose names are not metric-like, and a metric shown again, are not metrics."""
    cell("%nbexp track")
    cell(
        "import torch\ntorch.manual_seed(0)\nnet = torch.nn.Linear(4, 1)\nX = torch.randn(16, 4)\n"
        "def test_loop(model):\n    with torch.no_grad():\n        return ((model(X) - 1) ** 2).mean()\n"
        "def evaluate(model):\n    return {'val_loss': float(test_loop(model)), 'note': 'ok', 'n': 16}\n"
        "def compute(model):\n    return 3.5"
    )
    cell("test_loop(net)")
    cell("evaluate(net)")
    cell("compute(net)")
    cell("val_loss = float(test_loop(net))")
    cell("val_loss")  # shown again: one point, from the namespace
    expected = float(((cell.sh.user_ns["net"](cell.sh.user_ns["X"]) - 1) ** 2).mean())
    r, run_id = only_run(reader)
    assert series(r, run_id, "test_loop")[1] == [pytest.approx(expected)]
    assert series(r, run_id, "val_loss")[1] == [pytest.approx(expected)] * 2  # evaluate()'s, then the name's
    src = sources(r, run_id)
    assert src["test_loop"] == "result" and src["val_loss"] == "result"
    assert set(src) == {"test_loop", "val_loss"}


def test_compare_plots_each_runs_search_candidates(cell, reader):
    """Two runs of a grid search (the grid's cv edited in between): the comparison plots each run's
    candidates, their mean test score with the std over folds as error bars, named by their params."""
    import nbexp

    cell("%nbexp track")
    cell(XY + "\nfrom sklearn.linear_model import LogisticRegression\nfrom sklearn.model_selection import GridSearchCV")
    cell("folds = 3")
    cell("search = GridSearchCV(LogisticRegression(), {'C': [0.1, 10.0]}, cv=folds)\nsearch.fit(X_train, y_train)")
    first = dict(cell.sh.user_ns["search"].cv_results_)
    cell("folds = 4")
    cell("search = GridSearchCV(LogisticRegression(), {'C': [0.1, 10.0]}, cv=folds)\nsearch.fit(X_train, y_train)")
    second = dict(cell.sh.user_ns["search"].cv_results_)
    runs = reader().list_runs()
    assert len(runs) == 2
    fig = nbexp.compare(runs[1]["id"], runs[0]["id"])["figures"]["search"]
    assert "mean test score per candidate" in fig["layout"]["title"]["text"]
    for trace, cv in zip(fig["data"], (first, second), strict=True):
        assert trace["x"] == ["C=0.1", "C=10.0"]
        assert trace["y"] == pytest.approx(list(cv["mean_test_score"]), rel=1e-12)
        assert trace["error_y"]["array"] == pytest.approx(list(cv["std_test_score"]), rel=1e-12)


def test_metrics_kept_in_a_dict(cell, reader):
    """``results["f1"] = f1_score(...)``, ``results.update(accuracy=...)`` and a dict written with
    computed metric-like values are the run's metrics (source namespace: read from the variable), the
    value winning over its printed rounding, once each though the dict is shown later; a dict of literal
    values is a config, not metrics (#15)."""
    cell("%nbexp track")
    cell(
        XY + "\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score, f1_score, precision_score"
    )
    cell("clf = LogisticRegression(C=0.1).fit(X_train, y_train)\npred = clf.predict(X_test)")
    cell(
        "results = {}\nresults['f1'] = f1_score(y_test, pred)\n"
        "results.update(accuracy=accuracy_score(y_test, pred), note='ok')\n"
        "print(f\"f1: {results['f1']:.2f}\")"
    )
    cell("results")  # shown afterwards: the same values, not new points
    cell("summary = {'precision': precision_score(y_test, pred), 'n': len(pred)}\nweights = {'f1': 0.5, 'auc': 0.5}")
    ns = cell.sh.user_ns
    r, run_id = only_run(reader)
    assert series(r, run_id, "f1")[1] == [pytest.approx(ns["results"]["f1"], rel=1e-12)]
    assert series(r, run_id, "accuracy")[1] == [pytest.approx(ns["results"]["accuracy"], rel=1e-12)]
    assert series(r, run_id, "precision")[1] == [pytest.approx(ns["summary"]["precision"], rel=1e-12)]
    assert sources(r, run_id) == {"f1": "namespace", "accuracy": "namespace", "precision": "namespace"}


def test_two_dicts_of_the_same_metrics_keep_both(cell, reader, ledger_path):
    """``train_scores`` and ``test_scores`` both hold ``f1`` and ``acc``: the run keeps four metrics, named by what
    each dict's name adds (``train_f1``, ``test_f1``), and so do two classification reports; running the cell
    again adds a point to each, never a new name; a plain ``results`` dict keeps its bare keys."""
    from click.testing import CliRunner

    import nbexp
    from nbexp.cli import main

    cell("%nbexp track")
    cell(
        XY + "\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score, classification_report, f1_score"
    )
    cell("clf = LogisticRegression(C=0.1).fit(X_train, y_train)")
    cell("p_train, p_test = clf.predict(X_train), clf.predict(X_test)")
    scores = (
        "train_scores = {'f1': f1_score(y_train, p_train), 'acc': accuracy_score(y_train, p_train)}\n"
        "test_scores = {}\n"
        "test_scores['f1'] = f1_score(y_test, p_test)\n"
        "test_scores.update(acc=accuracy_score(y_test, p_test))\n"
        "train_report = classification_report(y_train, p_train, output_dict=True)\n"
        "test_report = classification_report(y_test, p_test, output_dict=True)"
    )
    cell(scores)
    ns = cell.sh.user_ns
    r, run_id = only_run(reader)
    train, test = ns["train_scores"], ns["test_scores"]
    assert train["f1"] != test["f1"]  # the data tells them apart: a collision would lose one
    expected = {
        "train_f1": train["f1"],
        "train_acc": train["acc"],
        "test_f1": test["f1"],
        "test_acc": test["acc"],
        "train_accuracy": ns["train_report"]["accuracy"],
        "test_accuracy": ns["test_report"]["accuracy"],
        "test_macro_avg_f1_score": ns["test_report"]["macro avg"]["f1-score"],
    }
    metrics = nbexp.get_run(run_id)["metrics"]
    for key, value in expected.items():
        assert (metrics[key]["last"], metrics[key]["steps"]) == (pytest.approx(value, rel=1e-12), 1), key
    assert not {"f1", "acc", "accuracy", "macro_avg_f1_score"} & set(metrics)
    show = CliRunner().invoke(main, ["--ledger", str(ledger_path), "show", run_id])
    assert show.exit_code == 0, show.output
    rows = {line.split()[0] for line in show.output.splitlines() if line.strip()}
    assert {"train_f1", "test_f1", "train_acc", "test_acc"} <= rows

    cell(scores)  # run again (a run of its own or the same): the same names, never new ones
    cell("results = {'f1': f1_score(y_test, p_test)}")
    reader()  # flushed
    again = nbexp.get_run("latest")["metrics"]
    assert set(again) == set(metrics) | {"f1"}
    assert again["test_f1"]["last"] == pytest.approx(test["f1"], rel=1e-12) and again["f1"]["steps"] == 1


def test_a_record_named_like_one_keeps_its_bare_keys(cell, reader):
    """A dict named like a generic record (``cr`` for a classification report, ``row`` for a table's row) says
    nothing about which data its metrics were measured on: its keys stay ``accuracy``, not ``cr_accuracy``."""
    import nbexp

    cell("%nbexp track")
    cell(
        XY + "\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score, classification_report\n"
        "clf = LogisticRegression(C=0.1).fit(X_train, y_train)\np = clf.predict(X_test)"
    )
    cell("cr = classification_report(y_test, p, output_dict=True)")
    cell(
        "row = {'model': 'lr', 'f1': 2 * cr['1']['precision'] * cr['1']['recall'] / (cr['1']['precision'] + "
        "cr['1']['recall'])}"
    )
    reader()  # flushed
    ns = cell.sh.user_ns
    metrics = nbexp.get_run("latest")["metrics"]
    assert metrics["accuracy"]["last"] == pytest.approx(ns["cr"]["accuracy"], rel=1e-12)
    assert metrics["f1"]["last"] == pytest.approx(ns["row"]["f1"], rel=1e-12)
    assert not {k for k in metrics if k.startswith(("cr_", "row_"))}


def test_a_dict_key_is_spelled_as_a_printed_name(cell, reader):
    """``test_scores = {"F1": ...}`` and ``print("test F1", ...)`` of the same value are one metric, ``test_f1``:
    a dict's key and a printed label follow one spelling rule (lower_snake)."""
    import nbexp

    cell("%nbexp track")
    cell(
        "tp, fp, fn = 30, 15, 10\n"
        "test_scores = {'F1': 2 * tp / (2 * tp + fp + fn)}\n"
        "print('test F1', test_scores['F1'])"
    )
    reader()  # flushed
    metrics = nbexp.get_run("latest")["metrics"]
    assert {k: (m["last"], m["source"]) for k, m in metrics.items()} == {
        "test_f1": (pytest.approx(60 / 85), "namespace")
    }
