"""The Python API: nbexp.runs(), get_run(), compare()."""

from __future__ import annotations

import pandas as pd
import pytest

import nbexp
from nbexp.errors import InvalidArgument, RunNotFound


@pytest.fixture
def tracked(cell):
    cell("%nbexp track one")
    cell("LR = 0.1\nopt = 'sgd'\nlayers = [8, 8]")
    cell("val_loss = 1.0 - LR if opt == 'sgd' and layers else 0.0")  # what the run reads is its params
    cell("LR = 0.2")
    cell("val_loss = 1.0 - LR if opt == 'sgd' and layers else 0.0")
    cell("%nbexp stop")


def test_runs_dataframe_typed_columns(tracked):
    df = nbexp.runs()
    assert list(df.columns[:7]) == ["run_id", "name", "status", "sprint", "start_time", "end_time", "duration_s"]
    assert df["params.LR"].dtype == "float64" and df["metrics.val_loss"].dtype == "float64"
    assert pd.api.types.is_datetime64_any_dtype(df["start_time"])
    assert df["params.layers"].tolist() == [[8, 8], [8, 8]]
    assert df["params.LR"].tolist() == [0.2, 0.1]
    assert df["metrics.val_loss"].tolist() == pytest.approx([0.8, 0.9])
    assert (df["duration_s"] >= 0).all()


def test_runs_filters(tracked):
    assert len(nbexp.runs(limit=1)) == 1
    assert len(nbexp.runs(status="finished")) == 2
    assert len(nbexp.runs(status="crashed")) == 0
    assert len(nbexp.runs(sprint="today")) == 2
    assert nbexp.runs(search="opt=sgd")["run_id"].tolist() == nbexp.runs()["run_id"].tolist()
    assert nbexp.runs(search="LR=0.2")["params.LR"].tolist() == [0.2]
    assert nbexp.runs(search="adam").empty
    with pytest.raises(InvalidArgument, match="search must be text"):
        nbexp.runs(search=0.2)
    with pytest.raises(InvalidArgument, match="status"):
        nbexp.runs(status="done")


def test_get_run_and_compare(tracked):
    run = nbexp.get_run("one")
    assert run["params"]["opt"] == "sgd" and run["metrics"]["val_loss"]["steps"] == 1
    assert [c["source"] for c in run["lineage"]][-1].startswith("val_loss = 1.0 - LR")
    c = nbexp.compare("latest~1", "latest")
    assert c["param_diff"] == {"LR": [0.1, 0.2]}
    assert c["metric_delta"]["val_loss"] == pytest.approx(-0.1)
    assert any(line.startswith("+LR = 0.2") for line in c["code_diff"])
    with pytest.raises(InvalidArgument):
        nbexp.compare("latest")
    with pytest.raises(RunNotFound):
        nbexp.get_run("nope")


def test_empty_ledger_gives_empty_frame(shell, ledger_path):
    from nbexp.ledger import connect

    connect(ledger_path).close()
    df = nbexp.runs()
    assert len(df) == 0 and "run_id" in df.columns


def test_compare_shows_as_tabs_and_magics(tracked, cell):
    c = cell("%nbexp compare").result
    assert c["param_diff"] == {"LR": [0.1, 0.2]}
    view = c.widget()
    tabs = view.children[1]
    assert [tabs.get_title(i) for i in range(len(tabs.children))] == [
        "Params",
        "Metrics",
        "Metric curves",
        "Parallel coordinates",
        "Data",
        "System",
        "Code diff",
    ]
    import ipywidgets

    ipywidgets.Widget.close_all()  # no comm behind them in a bare shell: close before exit
    from nbexp.widgets import html_section

    assert "<td>LR</td>" in html_section(c, "params") and "+LR = 0.2" in html_section(c, "code")
    assert set(c["figures"]) >= {"curves", "parallel", "params"}  # the tabs' content: see test_kernel
    df = cell("%nbexp runs --sprint today").result
    assert len(df) == 2 and "params.LR" in df.columns
    res = cell("%nbexp compare latest")
    assert not res.success and "two runs" in str(res.error_in_exec)


def test_search_matches_key_value_pairs_and_text_inside_values(cell):
    cell("%nbexp track")
    cell("formula = 'y=mx+b'\nLR_DECAY = 0.5\nval_loss = 0.25 * 2")
    cell("%nbexp stop")
    rid = nbexp.runs()["run_id"].tolist()
    assert nbexp.runs(search="y=mx")["run_id"].tolist() == rid  # "=" inside a value
    assert nbexp.runs(search="decay=0.5")["run_id"].tolist() == rid  # key ends, value starts
    assert nbexp.runs(search="formula=y=m")["run_id"].tolist() == rid
    assert nbexp.runs(search="decay=0.25").empty and nbexp.runs(search="x=mx").empty
