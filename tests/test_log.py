"""nbexp.log and automatic metrics (docs/design.md "Metrics")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nbexp
from nbexp.errors import InvalidArgument, NotTracking

pytestmark = pytest.mark.slow  # tensors and tight logging loops in many cells


@pytest.fixture
def run(cell):
    cell("%nbexp track")
    from nbexp import tracker

    return tracker.active_run()


def test_log_steps_and_scalar_types(run, reader):
    nbexp.log(loss=1.0, acc=0.5)
    nbexp.log(loss=np.float32(0.5))
    nbexp.log(step=10, loss=torch.tensor(0.25), acc=np.int64(1))
    r = reader()
    series = r.metric_series(run.id, "loss")
    assert [(p["step"], p["value"]) for p in series] == [(0, 1.0), (1, 0.5), (10, 0.25)]
    s = r.metric_summaries([run.id])[run.id]
    assert s["loss"] == {"last": 0.25, "min": 0.25, "max": 1.0, "steps": 3, "nan": 0, "source": "log"}
    assert s["acc"]["last"] == 1.0


def test_nan_and_inf_survive(run, reader):
    nbexp.log(loss=float("nan"))
    nbexp.log(loss=float("inf"))
    nbexp.log(loss=-math.inf)
    nbexp.log(loss=np.float64("nan"))
    values = [p["value"] for p in reader().metric_series(run.id, "loss")]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf and math.isnan(values[3])
    df = nbexp.runs()
    assert math.isnan(df.loc[0, "metrics.loss"])


@pytest.mark.parametrize(
    "kwargs, names",
    [
        ({"acc": "high"}, "'acc'"),
        ({"step": "x", "loss": 1}, "step"),
        ({}, "no metrics"),
        ({"bad key": 1.0}, "'bad key'"),
        ({"loss": 1.0, "acc": [1, 2]}, "'acc'"),
        ({"flag": True}, "'flag'"),
        ({"step": -1, "loss": 1}, "step"),
        ({"loss": torch.ones(3)}, "'loss'"),
    ],
)
def test_bad_log_input_raises_and_writes_nothing(run, reader, kwargs, names):
    with pytest.raises(InvalidArgument) as exc:
        nbexp.log(**kwargs)
    assert names in str(exc.value)
    assert reader().metric_series(run.id) == []


def test_log_without_tracking_says_how(nbexp_home):
    from nbexp import tracker

    tracker.stop()
    with pytest.raises(NotTracking, match="%nbexp track"):
        nbexp.log(loss=1.0)


def test_automatic_metrics_from_computed_names(cell, reader):
    cell("%nbexp track")
    cell(
        "import numpy as np\nval_loss = float(np.mean([0.2, 0.4]))\ntest_auc = np.float64(0.91)\n"
        "accuracy = 0.5\nroc_auc = 0.1 + 0.7\nn = len([1])\nloss_history = [1, 2]"
    )
    m = reader().list_runs()[0]["metrics"]
    assert m["val_loss"]["last"] == pytest.approx(0.3)
    assert m["test_auc"]["last"] == pytest.approx(0.91)
    assert m["roc_auc"]["last"] == pytest.approx(0.8)
    assert "accuracy" not in m  # a literal is a param, not a measured metric
    assert "n" not in m and "loss_history" not in m


def test_metric_names_configurable(cell, reader):
    cell("%nbexp track --metric-names ndcg")
    cell("ndcg = 0.25 * 2")
    assert reader().list_runs()[0]["metrics"]["ndcg"]["last"] == 0.5


def test_every_point_of_a_tight_loop_is_kept(run, reader):
    for i in range(20000):
        nbexp.log(loss=i * 0.5)
    s = reader().metric_summaries([run.id])[run.id]["loss"]
    assert s["steps"] == 20000 and s["last"] == 19999 * 0.5


def test_summary_across_flushes_and_out_of_order_steps(run, reader):
    from nbexp import tracker

    nbexp.log(step=5, loss=0.5)
    tracker.active_session().writer.flush()
    nbexp.log(step=2, loss=0.1)  # an earlier step, logged later: not the last value
    nbexp.log(step=9, loss=float("nan"))
    tracker.active_session().writer.flush()
    nbexp.log(step=7, loss=0.9)
    s = reader().metric_summaries([run.id])[run.id]["loss"]
    assert math.isnan(s["last"]) and s["min"] == 0.1 and s["max"] == 0.9
    assert s["steps"] == 4 and s["nan"] == 1
