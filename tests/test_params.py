"""Params captured without instrumentation (docs/design.md "Params")."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # sklearn estimators and torch modules in many cells


def params_of(reader):
    r = reader()
    return r.list_runs()[0]["params"]


def test_literal_assignments_with_types(cell, reader, db):
    cell("%nbexp track")
    cell(
        "LR = 3e-4\nNEG = -2\nlayers = [64, 64]\nshape = (3, 4)\nname = 'adam'\nlr_text = '0.1'\n"
        "lr_num = 0.1\nuse_bn = True\nnothing = None\ncfg = {'opt': {'lr': 1e-3, 'betas': (0.9, 0.99)}, 'seed': 7}\n"
        "greeting = f'hi {name}'\ncomputed = len(layers)"
    )
    p = params_of(reader)
    assert p["LR"] == 3e-4 and type(p["LR"]) is float
    assert p["NEG"] == -2 and type(p["NEG"]) is int
    assert p["layers"] == [64, 64] and p["shape"] == [3, 4]
    assert p["name"] == "adam"
    assert p["lr_text"] == "0.1" and p["lr_num"] == 0.1  # the string and the float stay apart
    assert p["use_bn"] is True and p["nothing"] is None
    assert p["cfg.opt.lr"] == 1e-3 and p["cfg.opt.betas"] == [0.9, 0.99] and p["cfg.seed"] == 7
    assert "greeting" not in p and "computed" not in p  # f-strings and computed values are not params
    types = dict(db().execute("SELECT key, type FROM params").fetchall())
    assert types["lr_text"] == "str" and types["lr_num"] == "float" and types["use_bn"] == "bool"


def test_never_private_modules_functions_classes(cell, reader):
    cell("%nbexp track")
    cell("import math\n_hidden = 5\ndef f(): pass\nclass C: pass\nok = 1\nf(); C(); math.pi")
    p = params_of(reader)
    assert p == {"ok": 1}


def test_configs_dataclass_namespace_simplenamespace(cell, reader):
    cell("%nbexp track")
    cell(
        "from dataclasses import dataclass\nfrom types import SimpleNamespace\nimport argparse\n"
        "@dataclass\nclass Config:\n    lr: float = 0.01\n    epochs: int = 3\n"
        "conf = Config(lr=0.02)\n"
        "args = argparse.ArgumentParser().parse_args([])\nargs.batch = 16\n"
        "hp = SimpleNamespace(dropout=0.2, api_key='abc')"
    )
    p = params_of(reader)
    assert p["conf.lr"] == 0.02 and p["conf.epochs"] == 3
    assert p["args.batch"] == 16
    assert p["hp.dropout"] == 0.2 and p["hp.api_key"] == "[REDACTED]"


def test_sklearn_pipeline_nested_names(cell, reader):
    cell("%nbexp track")
    cell(
        "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=7, max_depth=3))"
    )
    p = params_of(reader)
    assert p["pipe.class"] == "Pipeline"
    assert p["pipe.randomforestclassifier.n_estimators"] == 7
    assert p["pipe.randomforestclassifier.max_depth"] == 3
    assert p["pipe.randomforestclassifier.class"] == "RandomForestClassifier"
    assert p["pipe.standardscaler.with_mean"] is True


def test_torch_optimizer_scheduler_module(cell, reader):
    cell("%nbexp track")
    cell(
        "import torch\nnet = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))\n"
        "opt = torch.optim.AdamW(net.parameters(), lr=0.003, weight_decay=0.01)\n"
        "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)"
    )
    p = params_of(reader)
    assert p["net.class"] == "Sequential"
    assert p["net.n_params"] == 4 * 8 + 8 + 8 + 1
    assert p["net.device"] == "cpu" and p["net.dtype"] == "float32"
    assert p["opt.class"] == "AdamW" and p["opt.lr"] == 0.003 and p["opt.weight_decay"] == 0.01
    assert p["opt.betas"] == [0.9, 0.999]
    assert p["sched.class"] == "StepLR" and p["sched.step_size"] == 10 and p["sched.gamma"] == 0.5


def test_a_scheduled_optimizer_records_the_rate_it_was_given_not_where_the_schedule_ended(cell, reader):
    """A user trial: ``StepLR(step_size=5, gamma=0.5)`` over 15 epochs left ``optimizer.lr 0.000125`` beside
    ``optimizer.initial_lr 0.001``, and an edit of the rate showed three param rows, one of them the decayed rate.
    The rate the notebook set is the param (``opt.lr``), once."""
    cell("%nbexp track")
    cell("LR = 0.001")
    cell(
        "import torch\nnet = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(net.parameters(), lr=LR)\n"
        "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)\n"
        "x = torch.ones(8, 2)\n"
        "for epoch in range(15):\n"
        "    opt.zero_grad()\n"
        "    loss = net(x).pow(2).mean()\n"
        "    loss.backward()\n"
        "    opt.step()\n"
        "    sched.step()"
    )
    p = params_of(reader)
    assert p["opt.lr"] == 0.001 and "opt.initial_lr" not in p


def test_explicit_params_and_magic(cell, reader):
    cell("%nbexp track")
    cell("import nbexp\nnbexp.log_params(optimizer='sgd', lr=0.5)")
    cell("%nbexp param momentum=0.9 note=hello")
    p = params_of(reader)
    assert p["optimizer"] == "sgd" and p["lr"] == 0.5 and p["momentum"] == 0.9 and p["note"] == "hello"


def test_exclude_params(cell, reader):
    cell("%nbexp track")
    cell("keep = 1\nnoise = 2\ncfg = {'a': 1, 'b': 2}")
    cell("%nbexp params --exclude noise cfg")
    cell("noise = 3\ncfg = {'a': 5}")
    assert params_of(reader) == {"keep": 1}


def test_huge_values_skipped_with_one_warning(cell, reader, db, capsys):
    cell("%nbexp track")
    cell("big = list(range(10))\nbig = [" + ", ".join(["1"] * 500) + "]")
    cell("big2 = [" + ", ".join(["2"] * 500) + "]")
    err = capsys.readouterr().err
    assert err.count("nbexp: warning") == 1 and "500 items" in err
    assert "big" not in params_of(reader)
    assert db().execute("SELECT count(*) FROM events WHERE cause = 'huge-value'").fetchone()[0] == 1


def test_object_whose_get_params_raises_is_skipped(cell, reader, capsys):
    cell("%nbexp track")
    res = cell(
        "class Est:\n    def fit(self): pass\n    def get_params(self, deep=True): raise RuntimeError('nope')\n"
        "est = Est()\nalpha = 1"
    )
    assert res.success
    assert params_of(reader) == {"alpha": 1}
    assert "nope" in capsys.readouterr().err


def test_param_change_after_training_goes_to_next_run(cell, reader):
    cell("%nbexp track")
    cell("LR = 0.1")
    cell("acc = LR * 2")
    cell("LR = 0.3")  # tweak after training: the trained run keeps 0.1
    first = reader().list_runs()[-1]  # oldest: the tweak opened the next run
    assert first["params"]["LR"] == 0.1
    cell("acc = LR * 2")
    runs = reader().list_runs()
    assert runs[0]["params"]["LR"] == 0.3 and runs[1]["params"]["LR"] == 0.1
    assert runs[0]["metrics"]["acc"]["last"] == pytest.approx(0.6)


SK_DATA = (
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.model_selection import GridSearchCV\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "X, y = load_iris(return_X_y=True)"
)


def test_a_run_s_params_are_what_its_training_depended_on(cell, reader):
    """An sklearn section, then a PyTorch section in the same notebook: two trainings, two runs,
    each with the params its training read (back to literals, estimators and optimizers), not
    the session's leftovers."""
    cell("%nbexp track mixed")
    cell(SK_DATA + "\nN_SPLIT = 100\nX_train, y_train, X_test, y_test = X[::2], y[::2], X[1::2], y[1::2]")
    cell("C = 1.0\nNOTE_WIDTH = 80")  # NOTE_WIDTH: never read by a training
    cell("clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))\nclf.fit(X_train, y_train)")
    cell("acc = clf.score(X_test, y_test)")
    cell("import torch\ntorch.manual_seed(0)\ntX = torch.randn(64, 4)\nty = (tX[:, 0] > 0).long()")
    cell("learning_rate = 0.05\nepochs = 3")
    cell(
        "net = torch.nn.Linear(4, 2)\nloss_fn = torch.nn.CrossEntropyLoss()\n"
        "opt = torch.optim.SGD(net.parameters(), lr=learning_rate)\n"
        "for epoch in range(epochs):\n"
        "    loss = loss_fn(net(tX), ty)\n    opt.zero_grad()\n    loss.backward()\n    opt.step()"
    )
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["mixed #2", "mixed"]  # the notebook's second run, named after the first
    torch_p, sk_p = runs[0]["params"], runs[1]["params"]
    assert not [k for k in torch_p if k.startswith(("clf.", "C", "NOTE_WIDTH", "N_SPLIT"))], sorted(torch_p)
    assert torch_p["learning_rate"] == 0.05 and torch_p["opt.lr"] == 0.05 and torch_p["epochs"] == 3
    assert torch_p["net.class"] == "Linear"
    assert sk_p["C"] == 1.0 and sk_p["clf.logisticregression.C"] == 1.0
    assert "NOTE_WIDTH" not in sk_p and "learning_rate" not in sk_p and not any(k.startswith("opt.") for k in sk_p)


def test_a_rebound_name_has_no_params_of_the_old_object(cell, reader):
    cell("%nbexp track")
    cell(SK_DATA)
    cell("clf = GridSearchCV(LogisticRegression(max_iter=500), {'C': [0.1, 1.0]}, cv=3)")
    cell("clf = RandomForestClassifier(n_estimators=5, random_state=0)\nclf.fit(X, y)")
    p = reader().list_runs()[0]["params"]
    assert p["clf.class"] == "RandomForestClassifier" and p["clf.n_estimators"] == 5
    assert not [k for k in p if k in ("clf.cv", "clf.estimator.class") or k.startswith("clf.param_grid")], sorted(p)


def test_one_object_under_several_names_is_recorded_once(cell, reader):
    """Under the name it was trained through, nested estimators below it."""
    cell("%nbexp track")
    cell(SK_DATA)
    cell(
        "logreg = LogisticRegression(C=0.5, max_iter=500)\npipe = make_pipeline(StandardScaler(), logreg)\nmodel = pipe"
    )
    cell("model.fit(X, y)")
    p = reader().list_runs()[0]["params"]
    assert p["model.logisticregression.C"] == 0.5
    assert not [k for k in p if k.startswith(("logreg.", "pipe."))], sorted(p)


def test_sklearn_search_pipeline_column_transformer_and_defaults(cell, reader, db, capsys):
    """A grid written as a list of dicts, the best params once fitted, a pipeline's steps and a
    column transformer's transformers by name (not the string ``list``), and the params left at
    the class default marked so (source ``default``)."""
    cell("%nbexp track")
    cell(
        "import pandas as pd\nfrom sklearn.compose import ColumnTransformer\n"
        "from sklearn.preprocessing import OneHotEncoder\nfrom sklearn.svm import SVC\n" + SK_DATA + "\n"
        "df = pd.DataFrame(X, columns=['a', 'b', 'c', 'd'])\ndf['kind'] = ['x', 'y', 'z'] * 50"
    )
    cell(
        "pre = ColumnTransformer([('num', StandardScaler(), ['a', 'b', 'c', 'd']), "
        "('cat', OneHotEncoder(), ['kind'])])\n"
        "pipe = make_pipeline(pre, SVC())\n"
        "grid = [{'svc__kernel': ['linear'], 'svc__C': [0.5, 1.0]}, {'svc__kernel': ['rbf'], 'svc__gamma': [0.1]}]\n"
        "search = GridSearchCV(pipe, grid, cv=3)\nsearch.fit(df, y)"
    )
    assert "nbexp: warning" not in capsys.readouterr().err
    p = reader().list_runs()[0]["params"]
    assert p["grid.0.svc__C"] == [0.5, 1.0] and p["grid.1.svc__kernel"] == ["rbf"]  # the literal too
    assert p["search.class"] == "GridSearchCV"
    assert p["search.param_grid.0.svc.C"] == [0.5, 1.0] and p["search.param_grid.1.svc.gamma"] == [0.1]
    assert p["search.param_grid.0.svc.kernel"] == ["linear"]
    assert not [k for k in p if "best_params" in k]  # a fitted result, kept as the run table best_params (#16)
    assert p["search.estimator.steps"] == ["columntransformer", "svc"]
    assert p["search.estimator.columntransformer.transformers"] == ["num", "cat"]
    assert p["search.estimator.columntransformer.cat.columns"] == ["kind"]
    assert p["search.estimator.columntransformer.cat.class"] == "OneHotEncoder"
    assert "list" not in [v for k, v in p.items() if k.endswith(("steps", "transformers", "param_grid"))]
    sources = dict(db().execute("SELECT key, source FROM params").fetchall())
    assert sources["search.cv"] == "assign"  # set: 3, the default is None
    assert sources["search.estimator.svc.C"] == "default"  # SVC() left at C=1.0: the rbf candidates fit it
    # every candidate sets the kernel: the pipeline's own is fitted by none (a user trial read it as the one used)
    assert "search.estimator.svc.kernel" not in p and "search.estimator.svc.gamma" in p
    assert sources["search.estimator.columntransformer.cat.handle_unknown"] == "default"


def test_keras_compile_and_fit_without_a_call(cell, reader, db):
    """Keras 3 (torch backend): the optimizer's class and config, the loss, the compiled metrics
    and the literal arguments of ``model.fit`` are the run's params; editing ``RMSprop()`` to
    ``RMSprop(learning_rate=1e-2)`` opens a second run whose params say so."""
    cell("%nbexp track")
    cell(
        "import numpy as np\nimport keras\nrng = np.random.default_rng(0)\n"
        "x_train, y_train = rng.random((64, 8)), rng.integers(0, 3, 64)"
    )
    cell(
        "model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation='relu'), keras.layers.Dense(3)])"
    )
    compile_cell = (
        "model.compile(optimizer=keras.optimizers.RMSprop(),\n"
        "              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),\n"
        "              metrics=[keras.metrics.SparseCategoricalAccuracy(), 'accuracy'])"
    )
    cell(compile_cell)
    fit = "history = model.fit(x_train, y_train, batch_size=16, epochs=2, validation_split=0.25, verbose=0)"
    assert cell(fit).success
    p = params_of(reader)
    assert p["model.class"] == "Sequential" and p["model.n_params"] == 8 * 4 + 4 + 4 * 3 + 3
    assert p["model.optimizer.class"] == "RMSprop" and p["model.optimizer.learning_rate"] == 0.001
    assert p["model.optimizer.rho"] == 0.9
    assert p["model.loss"] == "SparseCategoricalCrossentropy" and p["model.loss.from_logits"] is True
    assert p["model.metrics"] == ["sparse_categorical_accuracy", "accuracy"]
    assert p["fit.epochs"] == 2 and p["fit.batch_size"] == 16 and p["fit.validation_split"] == 0.25
    assert "fit.verbose" not in p
    sources = dict(db().execute("SELECT key, source FROM params").fetchall())
    assert sources["model.optimizer.rho"] == "default" and sources["model.optimizer.learning_rate"] == "default"
    cell(compile_cell.replace("RMSprop()", "RMSprop(learning_rate=1e-2)"))
    cell(fit)
    runs = reader().list_runs()
    assert len(runs) == 2
    assert runs[0]["params"]["model.optimizer.learning_rate"] == 0.01
    assert runs[1]["params"]["model.optimizer.learning_rate"] == 0.001


def test_fit_arguments_edited_open_the_next_run(cell, reader):
    """``epochs=2`` edited to ``epochs=3`` in a re-executed fit cell: a new run, ``fit.epochs``
    is its only changed param; a name given to fit is followed to its literal."""
    cell("%nbexp track")
    cell(
        "import numpy as np\nimport keras\nrng = np.random.default_rng(0)\n"
        "x, y = rng.random((32, 4)), rng.random(32)\nbatch = 8"
    )
    cell(
        "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])\n"
        "model.compile(optimizer='adam', loss='mse')"
    )
    cell("model.fit(x, y, epochs=2, batch_size=batch, verbose=0)")
    cell("model.fit(x, y, epochs=3, batch_size=batch, verbose=0)")
    runs = reader().list_runs()
    assert len(runs) == 2
    new, first = runs[0]["params"], runs[1]["params"]
    assert first["fit.epochs"] == 2 and new["fit.epochs"] == 3 and new["batch"] == first["batch"] == 8
    assert first["model.loss"] == "mse" and first["model.optimizer.class"] == "Adam"
    assert {k for k in new if new[k] != first.get(k)} == {"fit.epochs"}


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm"])
def test_native_train_params_dict_and_rounds(cell, reader, lib):
    """``xgb.train(params, dtrain, num_boost_round=...)`` / ``lgb.train(...)``: the params dict
    (a literal, flattened) and the number of rounds; an inline params dict too."""
    cell("%nbexp track")
    if lib == "xgboost":
        setup = "import xgboost as xgb\ndtrain = xgb.DMatrix(X, label=y)"
        train = "bst = xgb.train(params, dtrain, num_boost_round=5)"
        inline = "bst = xgb.train({'max_depth': 3, 'eta': 0.5}, dtrain, num_boost_round=4)"
    else:
        setup = "import lightgbm as lgb\ndtrain = lgb.Dataset(X, label=y)"
        train = "bst = lgb.train(params, dtrain, num_boost_round=5)"
        inline = "bst = lgb.train({'max_depth': 3, 'verbose': -1}, dtrain, num_boost_round=4)"
    cell(
        "import numpy as np\nrng = np.random.default_rng(0)\nX, y = rng.random((200, 4)), rng.integers(0, 2, 200)\n"
        + setup
    )
    cell(
        "params = {'objective': 'binary', 'max_depth': 2}"
        if lib == "lightgbm"
        else "params = {'objective': 'binary:logistic', 'max_depth': 2}"
    )
    assert cell(train).success
    p = params_of(reader)
    assert p["params.max_depth"] == 2 and p["train.num_boost_round"] == 5
    assert cell(inline).success
    runs = reader().list_runs()
    assert len(runs) == 2
    p = runs[0]["params"]
    assert p["train.params.max_depth"] == 3 and p["train.num_boost_round"] == 4
    assert "params.max_depth" not in p  # the params dict of the first run was not used here


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm"])
def test_sklearn_api_boosters(cell, reader, lib):
    cell("%nbexp track")
    cls = "xgboost.XGBClassifier" if lib == "xgboost" else "lightgbm.LGBMClassifier"
    cell(
        f"import numpy as np\nimport {lib}\nrng = np.random.default_rng(0)\n"
        "X, y = rng.random((100, 4)), rng.integers(0, 2, 100)"
    )
    assert cell(f"clf = {cls}(n_estimators=7, max_depth=2, learning_rate=0.3)\nclf.fit(X, y)").success
    p = params_of(reader)
    assert p["clf.n_estimators"] == 7 and p["clf.max_depth"] == 2 and p["clf.learning_rate"] == 0.3


def _diff_json(ledger_path) -> dict:
    """What ``nbexp diff --json latest~1 latest`` says differs between the two newest runs."""
    import json

    from click.testing import CliRunner

    from nbexp.cli import main

    res = CliRunner().invoke(
        main, ["--ledger", str(ledger_path), "diff", "--json", "latest~1", "latest"], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.output)["param_diff"]


def test_a_config_dict_changed_in_place_is_the_next_runs_tweak(cell, reader, ledger_path):
    """A config dict changed by a cell of its own (``config["C"] = 0.1``, ``config.update(max_iter=300)``) and the
    training run again: each new run's diff is the change and where it flows (``model.C``), the other keys stay.
    Before, a dict changed in place lost all its params (``config.* -> <absent>``: a user trial). An accumulator a
    training cell fills (``history["score"] = [...]``) is no param."""
    cell("%nbexp track")
    cell(SK_DATA)
    cell('config = {"C": 1.0, "max_iter": 200}\nhistory = {"score": []}')
    train = (
        'model = LogisticRegression(C=config["C"], max_iter=config["max_iter"]).fit(X, y)\n'
        'history["score"] = [model.score(X, y)]'
    )
    cell(train)
    cell('config["C"] = 0.1')
    cell(train)
    assert len(reader().list_runs()) == 2  # (flushed)
    assert _diff_json(ledger_path) == {"config.C": [1.0, 0.1], "model.C": [1.0, 0.1]}
    cell("config.update(max_iter=300)")
    cell(train)
    runs = reader().list_runs()
    assert len(runs) == 3
    assert _diff_json(ledger_path) == {"config.max_iter": [200, 300], "model.max_iter": [200, 300]}
    assert runs[0]["params"]["config.C"] == 0.1 and not [k for k in runs[0]["params"] if k.startswith("history")]


def test_update_of_what_is_not_a_config_dict_changes_no_params_and_opens_no_run(cell, reader, capsys):
    """``update()`` of a meter, a progress bar or ``rcParams``, and a metric stored into a dict that holds a
    literal, are no config change (a review): the evaluation stays in the run it evaluates, and the metric is no
    param."""
    cell("%nbexp track")
    cell(SK_DATA)
    cell(
        "class Meter:\n    def __init__(self): self.n, self.total = 0, 0.0\n"
        "    def update(self, v): self.n += 1; self.total += v\n"
        "meter = Meter()\nresults = {'model': 'logreg'}\nC = 1.0"
    )
    cell("clf = LogisticRegression(C=C, max_iter=500).fit(X, y)\nmeter.update(clf.score(X, y))\nresults['acc'] = 0.5")
    cell("meter.update(clf.score(X, y))\nresults.update(acc=clf.score(X, y))\nacc = results['acc']")
    runs = reader().list_runs()
    assert len(runs) == 1 and "acc" in runs[0]["metrics"]
    assert runs[0]["params"]["results.model"] == "logreg" and "results.acc" not in runs[0]["params"]
    assert "skipped" not in capsys.readouterr().err


def test_a_config_written_as_a_dict_call_is_a_literal_dict(cell, reader, ledger_path):
    """``params = dict(n_estimators=5, max_depth=4)`` is recorded as the literal dict
    ``{"n_estimators": 5, "max_depth": 4}`` is (``params.max_depth``; nested, merged and secret
    values alike); ``max_depth=4`` edited to ``6`` is the tweak ``nbexp diff`` shows (#15)."""
    cell("%nbexp track")
    cell(SK_DATA)
    cell(
        "other = dict({'opt': dict(lr=1e-3, betas=(0.9, 0.99))}, seed=7, api_key='sk-abcdefghijklmnopqrstuvwxyz1234')\n"
        "same = {'opt': {'lr': 1e-3, 'betas': (0.9, 0.99)}, 'seed': 7, 'api_key': 'sk-abcdefghijklmnopqrstuvwxyz1234'}"
    )
    p = params_of(reader)
    assert {k.replace("other.", "same.", 1): v for k, v in p.items() if k.startswith("other.")} == {
        k: v for k, v in p.items() if k.startswith("same.")
    }
    assert p["other.opt.lr"] == 1e-3 and p["other.opt.betas"] == [0.9, 0.99] and p["other.seed"] == 7
    assert p["other.api_key"] == "[REDACTED]"
    config = "params = dict(n_estimators=5, max_depth=4, random_state=0)"
    train = (
        "def run_experiment():\n    model = RandomForestClassifier(**params)\n    model.fit(X, y)\n"
        "    return model, model.score(X, y)\n"
    )
    cell(config)
    cell(train)
    cell("model, val_acc = run_experiment()")
    cell(config.replace("max_depth=4", "max_depth=6"))
    cell("model, val_acc = run_experiment()")
    runs = reader().list_runs()
    assert len(runs) == 2
    assert runs[1]["params"]["params.max_depth"] == 4 and runs[0]["params"]["params.max_depth"] == 6
    assert runs[0]["params"]["params.n_estimators"] == 5 and "params" not in runs[0]["params"]
    assert _diff_json(ledger_path)["params.max_depth"] == [4, 6]


TORCH_DATA = (
    "import torch\nfrom sklearn.datasets import make_classification\n"
    "X_np, y_np = make_classification(n_samples=64, n_features=4, n_informative=2, random_state=0)\n"
    "X, y = torch.tensor(X_np, dtype=torch.float32), torch.tensor(y_np)\n"
    "def build_model(hidden, dropout=0.0, seed=0):\n"
    "    torch.manual_seed(seed)\n"
    "    return torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout),\n"
    "                               torch.nn.Linear(hidden, 2))\n"
    "SEED = 1"
)
TORCH_TRAIN = (
    "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    "for epoch in range(3):\n"
    "    loss = torch.nn.functional.cross_entropy(model(X), y)\n"
    "    opt.zero_grad()\n    loss.backward()\n    opt.step()"
)


def test_literal_arguments_of_a_notebook_function_are_params_under_its_name(cell, reader, ledger_path):
    """``model = build_model(8, dropout=0.1)`` with ``build_model`` defined in the notebook: its
    literal arguments, positional ones named by its signature, are the params ``build_model.hidden``
    and ``build_model.dropout`` of the run that trains the model; ``8`` edited to ``16`` is the
    tweak ``nbexp diff`` shows, beside what it changed in the model. A library function's
    arguments (``make_classification(n_samples=64)``) are not params: its object says what it is."""
    cell("%nbexp track")
    cell(TORCH_DATA)
    cell("model = build_model(8, dropout=0.1, seed=SEED)")
    cell(TORCH_TRAIN)
    cell("model = build_model(16, dropout=0.1, seed=SEED)")
    cell(TORCH_TRAIN)
    runs = reader().list_runs()
    assert len(runs) == 2
    first, second = runs[1]["params"], runs[0]["params"]
    assert first["build_model.hidden"] == 8 and first["build_model.dropout"] == 0.1 and first["SEED"] == 1
    assert second["build_model.hidden"] == 16 and second["build_model.dropout"] == 0.1
    assert "build_model.seed" not in first  # a name passed: its literal is the param (SEED)
    assert not [k for k in first if k.startswith("make_classification")], sorted(first)
    diff = _diff_json(ledger_path)
    assert diff["build_model.hidden"] == [8, 16]
    assert set(diff) == {"build_model.hidden", "model.n_params", "model.n_trainable"}


def test_an_edited_test_size_of_the_data_split_is_the_runs_tweak(cell, reader, ledger_path):
    """The data split's literal arguments (``train_test_split(X, y, test_size=0.25, random_state=0)``) are settings of
    the run as much as a model's: ``test_size`` edited to ``0.4`` and the split and training re-run is the one line
    ``nbexp diff`` shows (it showed none: "same params")."""
    split = "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)"
    cell("%nbexp track --sample-hz 0 split")
    cell(
        "from sklearn.datasets import make_classification\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import train_test_split\n"
        "X, y = make_classification(n_samples=200, random_state=0)"
    )
    for code in (split, split.replace("0.25", "0.4")):
        cell(code)
        cell("clf = LogisticRegression(C=1.0).fit(X_train, y_train)")
        cell("print('accuracy', clf.score(X_test, y_test))")
    runs = reader().list_runs()
    assert len(runs) == 2, runs
    first = runs[1]["params"]
    assert first["train_test_split.test_size"] == 0.25 and first["train_test_split.random_state"] == 0, first
    assert _diff_json(ledger_path) == {"train_test_split.test_size": [0.25, 0.4]}


def test_literal_arguments_of_a_notebook_class_but_not_of_a_config_class(cell, reader):
    """``net = Net(hidden=4)`` with ``Net`` a module class the notebook defines gives ``Net.hidden``
    beside what the module says of itself (``net.n_params``); a dataclass config is described by its
    fields alone (``conf.lr``, no ``Config.lr``)."""
    cell("%nbexp track")
    cell(TORCH_DATA)
    cell(
        "from dataclasses import dataclass\n@dataclass\nclass Config:\n    lr: float = 0.1\n"
        "class Net(torch.nn.Module):\n    def __init__(self, hidden=8):\n        super().__init__()\n"
        "        self.body = build_model(hidden)\n    def forward(self, x):\n        return self.body(x)"
    )
    cell("conf = Config(lr=0.05)\nmodel = Net(hidden=4)")
    cell(TORCH_TRAIN.replace("lr=0.1", "lr=conf.lr"))
    p = params_of(reader)
    assert p["Net.hidden"] == 4 and p["model.class"] == "Net" and p["model.n_params"] == 4 * 4 + 4 + 4 * 2 + 2
    assert p["conf.lr"] == 0.05 and not [k for k in p if k.startswith("Config.")], sorted(p)


def test_a_function_called_twice_with_other_literals_in_one_cell_is_no_param(cell, reader):
    """``train = make_split('train')`` and ``valid = make_split('valid')`` in one cell: which call's argument the
    run's params would hold is ambiguous (the last one used to win: the run that trained on 'train' said
    'valid'), so neither is kept."""
    cell("%nbexp track --sample-hz 0")
    cell("def make_split(split, frac=0.7):\n    return [1, 2, 3] if split == 'train' else [4]")
    assert cell("train = make_split('train')\nvalid = make_split('valid')\nsize = 3").success
    params = reader().run(reader().list_runs()[0]["id"])["params"]
    assert not any(k.startswith("make_split.") for k in params) and params["size"] == 3, params
    assert cell("once = make_split('train', frac=0.5)").success
    params = reader().run(reader().list_runs()[0]["id"])["params"]
    assert params.get("make_split.frac") == 0.5 and params.get("make_split.split") == "train", params


@pytest.mark.parametrize("lib", ["keras", "lightgbm"])
def test_early_stopping_callbacks_given_to_the_training_call_are_params(cell, reader, lib):
    """A user trial: ``EarlyStopping(monitor="val_loss", patience=3)`` in ``model.fit(..., callbacks=[...])`` and
    ``lgb.early_stopping(stopping_rounds=20)`` in ``lgb.train`` change the result and were in no run's params
    (MLflow's autologging records them). Their literal arguments are the training call's params
    (``fit.early_stopping.patience``; ``lgb.early_stopping(5)`` by position too); a logging callback is not."""
    cell("%nbexp track")
    cell("import numpy as np\nrng = np.random.default_rng(0)\nX, y = rng.random((120, 4)), rng.integers(0, 2, 120)")
    if lib == "keras":
        cell("import keras\nmodel = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation='sigmoid')])")
        cell("model.compile(optimizer='adam', loss='binary_crossentropy')")
        train = (
            "history = model.fit(X, y, epochs=3, validation_split=0.25, verbose=0,\n"
            "                    callbacks=[keras.callbacks.EarlyStopping(monitor='val_loss', patience=2,\n"
            "                                                             restore_best_weights=True, verbose=1)])"
        )
        wanted = {
            "fit.early_stopping.monitor": "val_loss",
            "fit.early_stopping.patience": 2,
            "fit.early_stopping.restore_best_weights": True,
        }
    else:
        cell(
            "import lightgbm as lgb\ndtrain = lgb.Dataset(X[:90], label=y[:90])\n"
            "dvalid = lgb.Dataset(X[90:], label=y[90:])"
        )
        train = (
            "booster = lgb.train({'objective': 'binary', 'verbose': -1}, dtrain, num_boost_round=20,\n"
            "                    valid_sets=[dvalid],\n"
            "                    callbacks=[lgb.early_stopping(5, verbose=False), lgb.log_evaluation(0)])"
        )
        wanted = {"train.early_stopping.stopping_rounds": 5}
    assert cell(train).success
    p = params_of(reader)
    assert {k: p.get(k) for k in wanted} == wanted
    assert not any(k.endswith("early_stopping.verbose") or "log_evaluation" in k for k in p), sorted(p)
    if lib == "keras":  # bound to a name first, then given: read from the object, not what it counted
        cell("stop = keras.callbacks.EarlyStopping(monitor='val_loss', patience=4)")
        assert cell("history = model.fit(X, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[stop])").success
        p = params_of(reader)
        assert p["stop.class"] == "EarlyStopping" and p["stop.patience"] == 4 and p["stop.monitor"] == "val_loss"
        assert not {"stop.wait", "stop.best", "stop.stopped_epoch", "stop.verbose"} & set(p), sorted(p)
    else:  # bound to a name first (a leftover of the trial: not read)
        cell("stop = lgb.early_stopping(7, verbose=False)")
        assert cell(train.replace("lgb.early_stopping(5, verbose=False)", "stop")).success
        p = params_of(reader)
        assert p["stop.class"] == "early_stopping" and p["stop.stopping_rounds"] == 7, sorted(p)
        assert not {"stop.best_score", "stop.best_iter", "stop.verbose", "stop.enabled"} & set(p), sorted(p)
