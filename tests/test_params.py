"""Params captured without instrumentation (DESIGN.md "Params")."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow          # sklearn estimators and torch modules in many cells


def params_of(reader):
    r = reader()
    return r.list_runs()[0]["params"]


def test_literal_assignments_with_types(cell, reader, db):
    cell("%nbexp track")
    cell("LR = 3e-4\nNEG = -2\nlayers = [64, 64]\nshape = (3, 4)\nname = 'adam'\nlr_text = '0.1'\n"
         "lr_num = 0.1\nuse_bn = True\nnothing = None\ncfg = {'opt': {'lr': 1e-3, 'betas': (0.9, 0.99)}, 'seed': 7}\n"
         "greeting = f'hi {name}'\ncomputed = len(layers)")
    p = params_of(reader)
    assert p["LR"] == 3e-4 and type(p["LR"]) is float
    assert p["NEG"] == -2 and type(p["NEG"]) is int
    assert p["layers"] == [64, 64] and p["shape"] == [3, 4]
    assert p["name"] == "adam"
    assert p["lr_text"] == "0.1" and p["lr_num"] == 0.1       # the string and the float stay apart
    assert p["use_bn"] is True and p["nothing"] is None
    assert p["cfg.opt.lr"] == 1e-3 and p["cfg.opt.betas"] == [0.9, 0.99] and p["cfg.seed"] == 7
    assert "greeting" not in p and "computed" not in p          # f-strings and computed values are not params
    types = dict(db().execute("SELECT key, type FROM params").fetchall())
    assert types["lr_text"] == "str" and types["lr_num"] == "float" and types["use_bn"] == "bool"


def test_never_private_modules_functions_classes(cell, reader):
    cell("%nbexp track")
    cell("import math\n_hidden = 5\ndef f(): pass\nclass C: pass\nok = 1\nf(); C(); math.pi")
    p = params_of(reader)
    assert p == {"ok": 1}


def test_configs_dataclass_namespace_simplenamespace(cell, reader):
    cell("%nbexp track")
    cell("from dataclasses import dataclass\nfrom types import SimpleNamespace\nimport argparse\n"
         "@dataclass\nclass Config:\n    lr: float = 0.01\n    epochs: int = 3\n"
         "conf = Config(lr=0.02)\n"
         "args = argparse.ArgumentParser().parse_args([])\nargs.batch = 16\n"
         "hp = SimpleNamespace(dropout=0.2, api_key='abc')")
    p = params_of(reader)
    assert p["conf.lr"] == 0.02 and p["conf.epochs"] == 3
    assert p["args.batch"] == 16
    assert p["hp.dropout"] == 0.2 and p["hp.api_key"] == "[REDACTED]"


def test_sklearn_pipeline_nested_names(cell, reader):
    cell("%nbexp track")
    cell("from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n"
         "from sklearn.ensemble import RandomForestClassifier\n"
         "pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=7, max_depth=3))")
    p = params_of(reader)
    assert p["pipe.class"] == "Pipeline"
    assert p["pipe.randomforestclassifier.n_estimators"] == 7
    assert p["pipe.randomforestclassifier.max_depth"] == 3
    assert p["pipe.randomforestclassifier.class"] == "RandomForestClassifier"
    assert p["pipe.standardscaler.with_mean"] is True


def test_torch_optimizer_scheduler_module(cell, reader):
    cell("%nbexp track")
    cell("import torch\nnet = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))\n"
         "opt = torch.optim.AdamW(net.parameters(), lr=0.003, weight_decay=0.01)\n"
         "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)")
    p = params_of(reader)
    assert p["net.class"] == "Sequential"
    assert p["net.n_params"] == 4 * 8 + 8 + 8 + 1
    assert p["net.device"] == "cpu" and p["net.dtype"] == "float32"
    assert p["opt.class"] == "AdamW" and p["opt.lr"] == 0.003 and p["opt.weight_decay"] == 0.01
    assert p["opt.betas"] == [0.9, 0.999]
    assert p["sched.class"] == "StepLR" and p["sched.step_size"] == 10 and p["sched.gamma"] == 0.5


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
    res = cell("class Est:\n    def fit(self): pass\n    def get_params(self, deep=True): raise RuntimeError('nope')\n"
               "est = Est()\nalpha = 1")
    assert res.success
    assert params_of(reader) == {"alpha": 1}
    assert "nope" in capsys.readouterr().err


def test_param_change_after_training_goes_to_next_run(cell, reader):
    cell("%nbexp track")
    cell("LR = 0.1")
    cell("acc = LR * 2")
    cell("LR = 0.3")                         # tweak after training: the trained run keeps 0.1
    first = reader().list_runs()[-1]         # oldest: the tweak opened the next run
    assert first["params"]["LR"] == 0.1
    cell("acc = LR * 2")
    runs = reader().list_runs()
    assert runs[0]["params"]["LR"] == 0.3 and runs[1]["params"]["LR"] == 0.1
    assert runs[0]["metrics"]["acc"]["last"] == pytest.approx(0.6)
