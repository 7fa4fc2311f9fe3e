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
