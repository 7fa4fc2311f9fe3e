"""The comparison figures a user reads: empty states that say why, parallel coordinates that read
(log axes, no constant axes, "none", at most 8 axes), the metric table's baseline deltas and best run."""

from __future__ import annotations

import math

import pytest

from nbexp import figures


def _annotation(fig: dict) -> str:
    return " ".join(a["text"] for a in fig["layout"].get("annotations", []))


def _no_axes(fig: dict) -> bool:
    layout = fig["layout"]
    return not fig["data"] and layout["xaxis"]["visible"] is False and layout["yaxis"]["visible"] is False


@pytest.mark.parametrize(
    "fingerprints, why",
    [
        ({}, "no data summaries were recorded for these runs"),
        ({"X": ["ab12", "ab12", "ab12"]}, "these runs share their data: nothing drifted"),
        ({"X": ["ab12", "cd34"]}, "no column drifted"),
    ],
)
def test_drift_without_rows_says_why_and_draws_no_axes(fingerprints, why):
    fig = figures.drift_bars([], fingerprints)
    assert _no_axes(fig) and why in _annotation(fig)
    assert not fig["layout"].get("shapes")  # no threshold lines over nothing


def test_system_timeline_empty_and_cpu_only():
    empty = figures.system_timeline({"r1": ([], []), "r2": ([], [])})
    assert _no_axes(empty) and "no system samples were recorded" in _annotation(empty)
    host = [{"time": 100.0 + i, "proc_cpu": 50.0 + i} for i in range(5)]
    one = figures.system_timeline({"r1": (host, [])})
    assert one["layout"]["showlegend"] is True  # one run: the legend still says which line is which
    assert "no GPU was visible to this kernel; CPU only" in one["layout"]["title"]["text"]
    assert [t["name"] for t in one["data"]] == ["r1 CPU %"]


def test_empty_curves_and_classes_say_why():
    classes = figures.class_distribution({"r1": [{"name": "X", "summary": {"columns": []}}]})
    assert _no_axes(classes) and "no label column" in _annotation(classes)


def _run(params: dict, auc: float | None) -> dict:
    return {"params": params, "metrics": {} if auc is None else {"test_auc": {"last": auc}}}


def test_parallel_coordinates_log_axis_constant_dropped_none_shown():
    runs = [
        _run({"C": 0.001, "penalty": None, "solver": "lbfgs"}, 0.7),
        _run({"C": 0.1, "penalty": "l2", "solver": "lbfgs"}, 0.8),
        _run({"C": 10.0, "penalty": "l2", "solver": "lbfgs"}, 0.9),
    ]
    fig = figures.parallel_coordinates(runs, "test_auc")
    dims = {d["label"]: d for d in fig["data"][0]["dimensions"]}
    assert set(dims) == {"C (log)", "penalty", "test_auc"}  # solver is the same everywhere: no axis
    c = dims["C (log)"]
    assert c["values"] == pytest.approx([-3, -1, 1])
    assert c["ticktext"] == ["0.001", "0.1", "10"] and c["tickvals"] == pytest.approx([-3, -1, 1])
    assert dims["penalty"]["ticktext"] == ["l2", "none"] and dims["penalty"]["values"] == [1, 0, 0]
    # the axis labels sit below the title: room above the plot, the title at the top
    assert fig["layout"]["margin"]["t"] >= 100 and fig["layout"]["title"]["yanchor"] == "top"
    # every line colour bright: no near-black end of the scale on a dark theme
    for _, colour in fig["data"][0]["line"]["colorscale"]:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b > 100


def test_parallel_coordinates_at_most_eight_axes_most_varied_first():
    runs = [_run({f"p{k:02d}": (i if k < 3 else i % 2) for k in range(12)}, 0.5 + i / 10) for i in range(4)]
    fig = figures.parallel_coordinates(runs, "test_auc")
    labels = [d["label"] for d in fig["data"][0]["dimensions"]]
    assert len(labels) == 8 and labels[-1] == "test_auc"
    assert labels[:3] == ["p00", "p01", "p02"]  # four distinct values each, before the two-valued ones


def test_metric_table_deltas_against_the_baseline_and_best_marked(cell, reader):
    cell("%nbexp track sweep")
    cell(
        "import nbexp\n"
        "for C, auc, loss in ((1.0, 0.80, 0.5), (0.1, 0.90, 0.7), (10.0, 0.85, 0.3)):\n"
        "    with nbexp.run(f'C={C}', C=C):\n"
        "        nbexp.log(test_auc=auc, val_loss=loss)"
    )
    cell("%nbexp stop")
    from nbexp.analysis.compare import compare_runs

    r = reader()
    ids = [x["id"] for x in sorted(r.list_runs(), key=lambda x: x["start_time"]) if x["name"].startswith("C=")]
    c = compare_runs(r, ids)
    assert c["best"] == {"test_auc": 1, "val_loss": 2}  # highest auc, lowest loss
    assert c["baseline_delta"]["test_auc"] == [None, pytest.approx(0.1), pytest.approx(0.05)]
    fig = figures.metric_table(c)
    table = fig["data"][0]
    header = table["header"]["values"]
    assert header[1:4] == ids and header[4:] == [f"Δ {ids[1]} vs {ids[0]}", f"Δ {ids[2]} vs {ids[0]}"]
    cells = dict(zip(table["cells"]["values"][0], zip(*table["cells"]["values"][1:])))
    assert cells["test_auc"][:3] == ("0.8", "★ 0.9", "0.85")
    assert cells["val_loss"][:3] == ("0.5", "0.7", "★ 0.3")
    assert [float(v) for v in cells["val_loss"][3:]] == pytest.approx([0.2, -0.2])
    assert not math.isnan(float(cells["test_auc"][4]))


SWEEP = (
    "import nbexp\n"
    "for C, auc in ((0.001, 0.7), (0.1, 0.9), (10.0, 0.8)):\n"
    "    with nbexp.run(f'C={C}', C=C, solver='lbfgs'):\n"
    "        for i in range(20):\n"
    "            nbexp.log(train_loss=1.0 / (i + 1) + C / 100)\n"
    "        nbexp.log(test_auc=auc, lr=C)"
)


def _sweep(cell, reader):
    cell("%nbexp track sweep")
    cell(SWEEP)
    cell("%nbexp stop")
    r = reader()
    runs = sorted(r.list_runs(), key=lambda x: x["start_time"])
    return r, [x["id"] for x in runs if x["name"].startswith("C=")]


def _traces(fig: dict, axis: str) -> list[dict]:
    return [t for t in fig["data"] if t.get("xaxis") == axis]


def test_a_chart_per_metric_bars_for_single_values_one_colour_per_run(cell, reader):
    from nbexp.analysis.compare import compare_runs

    r, ids = _sweep(cell, reader)
    c = compare_runs(r, ids)
    out = figures.compare_figures(r, c)
    grid, colours = out["figures"]["grid"], out["colours"]
    titles = [a["text"] for a in grid["layout"]["annotations"]]
    assert titles == ["lr (log)", "test_auc", "train_loss"]  # every metric, in its own chart
    lr, auc, loss = (_traces(grid, a) for a in ("x", "x2", "x3"))
    # a single value per run: a bar per run, not a dot at step 0
    assert [t["type"] for t in auc] == ["bar"] * 3 and [t["y"] for t in auc] == [[0.7], [0.9], [0.8]]
    assert auc[1]["text"] == ["★ 0.9"]  # the best run marked
    assert [t["type"] for t in loss] == ["scatter"] * 3 and len(loss[0]["x"]) == 20
    # lr spans 0.001 to 10: a log axis; test_auc does not
    assert grid["layout"]["yaxis"]["type"] == "log" and grid["layout"]["yaxis2"].get("type") != "log"
    # each run one colour in every chart, one legend entry, one legend group (hiding it hides it everywhere)
    assert len(set(colours.values())) == 3
    for rid in ids:
        mine = [t for t in grid["data"] if t["legendgroup"] == rid]
        assert len(mine) == 3
        assert {t["marker"]["color"] for t in mine} == {colours[rid]}
        assert sum(t["showlegend"] for t in mine) == 1
    # the same colours in the scatter and class charts of the comparison
    scatter = out["figures"]["scatter"]
    assert {t["legendgroup"]: t["marker"]["color"] for t in scatter["data"]} == colours


def test_scatter_of_a_chosen_param_best_run_starred_and_a_chosen_baseline(cell, reader):
    from nbexp.analysis.compare import compare_runs

    r, ids = _sweep(cell, reader)
    c = compare_runs(r, ids, baseline=ids[1])
    assert c["baseline"] == 1
    assert c["baseline_delta"]["test_auc"] == [pytest.approx(-0.2), None, pytest.approx(-0.1)]
    out = figures.compare_figures(r, c, metric="test_auc", x_param="C")
    scatter = out["figures"]["scatter"]
    assert scatter["layout"]["xaxis"]["type"] == "log"  # C = 0.001 .. 10
    assert [t["x"] for t in scatter["data"]] == [[0.001], [0.1], [10.0]]
    assert [t["marker"]["symbol"] for t in scatter["data"]] == ["circle", "star", "circle"]
    header = out["figures"]["metrics"]["data"][0]["header"]["values"]
    assert header[-2:] == [f"Δ {ids[0]} vs {ids[1]}", f"Δ {ids[2]} vs {ids[1]}"]
    # parallel coordinates over the params the user chose: only those that vary get an axis
    par = figures.parallel_coordinates([r.run(i) for i in ids], "test_auc", params=["solver", "C"])
    assert [d["label"] for d in par["data"][0]["dimensions"]] == ["C (log)", "test_auc"]
    from nbexp.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="baseline"):
        compare_runs(r, ids[:2], baseline=ids[2])


def test_drift_overlay_draws_both_distributions_with_psi_and_ks(cell, reader, drift_scenario):
    from test_data import DRIFT_SETUP, TRAIN

    from nbexp.analysis.compare import compare_runs

    drift_scenario(DRIFT_SETUP, TRAIN)
    r = reader()
    ids = [x["id"] for x in sorted(r.list_runs(), key=lambda x: x["start_time"])]
    c = compare_runs(r, ids)
    out = figures.compare_figures(r, c)
    fig = out["figures"]["drift_hist"]
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    a = next(t for t in titles if t.startswith("train.a:"))
    assert "PSI" in a and "KS" in a
    a_traces = _traces(fig, "x" if titles[0] == a else f"x{titles.index(a) + 1}")
    assert [t["type"] for t in a_traces] == ["histogram", "histogram"]
    assert [t["legendgroup"] for t in a_traces] == ids
    assert sum(a_traces[0]["y"]) == pytest.approx(1.0) and sum(a_traces[1]["y"]) == pytest.approx(1.0)
    # a shift of one standard deviation: the new run's mass sits to the right of the reference's
    centre = [sum(x * y for x, y in zip(t["x"], t["y"])) for t in a_traces]
    assert centre[1] - centre[0] == pytest.approx(1.0, abs=0.15)
    assert fig["layout"]["barmode"] == "overlay"
    y = next(t for t in titles if t.startswith("train.y:"))
    assert "PSI" in y


def test_code_diff_per_cell_ignores_execution_counts():
    from nbexp.analysis.compare import cell_diff

    a = [
        {"execution_count": 1, "source": "import numpy as np"},
        {"execution_count": 2, "source": "LR = 0.1\nDEPTH = 4"},
        {"execution_count": 3, "source": "fit(LR)"},
    ]
    b = [{**a[0], "execution_count": 11}, {"execution_count": 12, "source": "LR = 0.3\nDEPTH = 4"}, a[2]]
    blocks = cell_diff(a, b)
    assert [x["status"] for x in blocks] == ["same", "changed", "same"]
    assert ["-", "LR = 0.1"] in blocks[1]["lines"] and ["+", "LR = 0.3"] in blocks[1]["lines"]
    assert [" ", "DEPTH = 4"] in blocks[1]["lines"]
    assert cell_diff(a, [{**x, "execution_count": 20 + i} for i, x in enumerate(a)]) == [{"status": "same", "count": 3}]


def test_new_charts_say_why_they_are_empty():
    grid = figures.metric_grid({"loss": {"r1": ([], [], [])}}, {"r1": "r1"})
    assert _no_axes(grid) and "no metric was recorded for these runs" in _annotation(grid)
    runs = [{"id": "r1", "params": {}, "metrics": {}}, {"id": "r2", "params": {}, "metrics": {}}]
    scatter = figures.param_scatter(runs, None, "auc")
    assert _no_axes(scatter) and "no param differs between these runs" in _annotation(scatter)
    rows = [{"variable": "X", "column": "a", "psi": 0.4, "ks": 0.3, "flags": ["PSI 0.40 (major)"]}]
    overlay = figures.drift_overlays(rows, ("r1", []), ("r2", []))
    assert _no_axes(overlay) and "no flagged column has a stored distribution" in _annotation(overlay)


def test_the_notebook_comparison_shows_the_sidebars_figures(cell, reader, ledger_path, monkeypatch):
    """One figure, two places: ``nbexp.compare`` in a notebook shows the chart per metric, the
    scatter and the drift overlays the sidebar's compare view draws, not the older single chart."""
    import plotly.io as pio
    from IPython.utils.capture import capture_output

    import nbexp
    from nbexp.widgets import _show

    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")  # what JupyterLab's kernel uses

    _r, ids = _sweep(cell, reader)
    c = nbexp.compare(*ids, ledger=str(ledger_path), baseline=ids[1], x_param="C")
    assert c["baseline"] == 1
    shown = {}
    for tab in ("curves", "parallel"):
        with capture_output() as cap:
            _show(c, tab, c["figures"])
        shown[tab] = [o.data["application/vnd.plotly.v1+json"] for o in cap.outputs]
    assert [f["layout"]["annotations"][0]["text"] for f in shown["curves"]] == ["lr (log)"]
    assert shown["curves"][0]["data"] == c["figures"]["grid"]["data"]
    scatter = shown["parallel"][1]
    assert scatter["data"] == c["figures"]["scatter"]["data"] and "C" in scatter["layout"]["xaxis"]["title"]["text"]


def _scale_colour(scale: list, position: float) -> str:
    """The colour a plotly colour scale gives ``position`` (0..1) when the stops around it agree (a flat band)."""
    for (lo, c1), (hi, c2) in zip(scale, scale[1:]):
        if lo <= position <= hi and lo < hi:
            assert c1 == c2, f"{position} falls between two colours: {c1} .. {c2}"
            return c1
    raise AssertionError(f"{position} is outside the colour scale")


def test_parallel_coordinates_lines_in_the_runs_colours_of_the_other_charts(cell, reader):
    """The compare view's parallel coordinates (and nbexp.compare's: the same figure) draw each run's line
    in that run's colour, the one the metric charts and the scatter (with its legend) give it, not a colour
    scale of the metric; the metric stays the last axis."""
    from nbexp.analysis.compare import compare_runs

    r, ids = _sweep(cell, reader)
    out = figures.compare_figures(r, compare_runs(r, ids), metric="test_auc")
    colours = out["colours"]
    par = out["figures"]["parallel"]["data"][0]
    assert [d["label"] for d in par["dimensions"]][-1] == "test_auc"
    line = par["line"]
    assert line["showscale"] is False  # no metric colour bar
    assert par["meta"]["runs"] == ids  # line i is run ids[i]: the lab hides a run's line from the legend
    span = line["cmax"] - line["cmin"]
    drawn = {rid: _scale_colour(line["colorscale"], (v - line["cmin"]) / span) for rid, v in zip(ids, line["color"])}
    assert drawn == colours and len(set(drawn.values())) == 3
    # the same colours as the metric grid and the scatter of the same comparison
    grid = {t["legendgroup"]: t["marker"]["color"] for t in out["figures"]["grid"]["data"]}
    scatter = {t["legendgroup"]: t["marker"]["color"] for t in out["figures"]["scatter"]["data"]}
    assert drawn == grid == scatter
    # the review page's sprint-wide chart (no per-run colours) still colours by the metric
    review = figures.parallel_coordinates([r.run(i) for i in ids], "test_auc")["data"][0]["line"]
    assert review["showscale"] is True and review["color"] == [0.7, 0.9, 0.8]


def test_system_timeline_with_too_few_samples_draws_no_axes_and_says_why_per_run():
    """User trial: one CPU sample for one run drew a dot on blank -1..1 axes and the other run was not
    mentioned. Too few samples: no axes, a sentence naming each run's sample count."""
    fig = figures.system_timeline(
        {"r1": ([{"time": 10.0, "proc_cpu": 80.0}], []), "r2": ([], [])}, {"r1": "r1 lr-a", "r2": "r2 sgd-b"}
    )
    assert _no_axes(fig)
    why = _annotation(fig)
    assert (
        "too few system samples for a timeline" in why and "r1 lr-a: 1 sample" in why and "r2 sgd-b: no samples" in why
    )
    host = [{"time": 100.0 + i, "proc_cpu": 50.0 + i} for i in range(5)]
    some = figures.system_timeline({"r1": (host, []), "r2": (host[:1], [])})
    assert [t["name"] for t in some["data"]] == ["r1 CPU %"]  # a line only for the run with enough samples
    assert "no line for r2: 1 sample" in some["layout"]["title"]["text"]


def _named(rid: str, params: dict, metrics: dict) -> dict:
    return {"id": rid, "params": params, "metrics": {k: {"last": v} for k, v in metrics.items()}}


def test_a_param_absent_from_a_run_is_marked_absent_not_drawn_as_none_or_a_value():
    """User trial: runs of two experiments (LogisticRegression with C, SGD with alpha) drew the SGD run's
    missing C as "none", as if C were None, and put it mid-axis in the scatter."""
    runs = [
        _named("a", {"C": 0.01, "penalty": None}, {"val_acc": 0.8}),
        _named("b", {"C": 1.0, "penalty": None}, {"val_acc": 0.9}),
        _named("c", {"alpha": 0.001}, {"val_acc": 0.7}),
    ]
    fig = figures.parallel_coordinates(runs, "val_acc")
    dims = {d["label"]: d for d in fig["data"][0]["dimensions"]}
    c = dims["C (log)"]  # still a numeric (log) axis for the runs that have C
    assert c["ticktext"] == ["absent", "0.01", "1"]
    assert c["values"][:2] == pytest.approx([-2, 0]) and c["values"][2] == c["tickvals"][0] < -2
    penalty = dims["penalty"]
    assert penalty["ticktext"] == ["none", "absent"]  # None and absent are not the same thing
    assert [penalty["ticktext"][v] for v in penalty["values"]] == ["none", "none", "absent"]
    runs[2]["metrics"] = {"sgd_loss": {"last": 0.5}}  # another experiment's metric: no val_acc
    acc = figures.parallel_coordinates(runs, "val_acc")["data"][0]["dimensions"][-1]
    assert acc["ticktext"] == ["absent", "0.8", "0.9"] and acc["values"][2] == acc["tickvals"][0] < 0.8
    runs[2]["metrics"] = {"val_acc": {"last": 0.7}}
    scatter = figures.param_scatter(runs, "C", "val_acc", {"c": "c sgd"})
    assert [t["x"] for t in scatter["data"]] == [[0.01], [1.0]]  # the run without C is left out
    assert "not drawn, no C: c sgd" in scatter["layout"]["title"]["text"]
    assert scatter["layout"]["xaxis"].get("type") != "category"  # C stays numeric


# runs of two experiments: LogisticRegression runs with C and val_acc, an SGD run with alpha and its own loss
TRIAL = (
    "import nbexp\n"
    "for C, acc in ((0.01, 0.8), (1.0, 0.9)):\n"
    "    with nbexp.run(f'lr C={C}', C=C):\n"
    "        nbexp.log(val_acc=acc)\n"
    "with nbexp.run('sgd-a', alpha=0.1):\n"
    "    nbexp.log(sgd_loss=0.5)\n"
)


def test_compare_with_best_picks_among_runs_that_have_this_runs_metric(cell, reader):
    """User trial: an SGD run's "Compare with best" opened the best LogisticRegression run by val_acc, a
    metric the SGD run never had."""
    from nbexp.analysis.compare import best_in_sprint

    cell("%nbexp track trial")
    cell(TRIAL)
    r = reader()
    by = {x["name"]: r.run(x["id"]) for x in r.list_runs()}
    best = best_in_sprint(r, by["lr C=0.01"])
    assert best["id"] == by["lr C=1.0"]["id"] and best["metric"] == "val_acc"
    alone = best_in_sprint(r, by["sgd-a"])
    assert alone["id"] is None and alone["metric"] == "sgd_loss"
    assert "no other run of sprint" in alone["why"] and "val_acc" in alone["why"]
    cell("with nbexp.run('sgd-b', alpha=1.0):\n    nbexp.log(sgd_loss=0.2)\n")
    cell("%nbexp stop")
    r = reader()
    by = {x["name"]: r.run(x["id"]) for x in r.list_runs()}
    best = best_in_sprint(r, by["sgd-a"])
    assert best["id"] == by["sgd-b"]["id"] and best["metric"] == "sgd_loss"  # its own metric, lower is better
