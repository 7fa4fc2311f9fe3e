"""Plotly figures built from query results: one figure, two places.

Each function returns a plain JSON-able dict (``{"data": [...], "layout": {...}}``) that
the REST API sends to the sidebar (plotly.js) and the notebook widget shows with plotly.
Long metric series are downsampled for display by min/max per bucket (every bucket keeps
its first, lowest, highest and last point), and the figure says so.

plotly.js renders a small HTML subset in every text it draws (``<a href>``, ``<b>``,
``<br>``...), so every name a user or a bundle brings in (run, param, metric, variable,
column and category names, table cells, titles) goes through :func:`_text` before it
enters a figure: a run named ``<a href="...">`` shows those characters, not a link.
Parcoords tick text is the exception: plotly draws it as plain text, entities and all.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from .analysis.metrics import curve_metric

MAX_POINTS = 1000  # per trace, after downsampling


def _text(value: Any) -> str:
    """``value`` as text plotly shows literally: ``&``, ``<`` and ``>`` as the entities plotly decodes.

    Quotes stay as they are: outside a tag they are harmless, and plotly does not decode ``&quot;``.
    """
    return html.escape(str(value), quote=False)


def _go():
    import plotly.graph_objects as go

    return go


def _plain(fig) -> dict:
    d = fig.to_plotly_json()
    d.setdefault("layout", {}).pop("template", None)  # the page's theme decides the look
    return _clean(d)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _clean(obj.tolist())
    return obj


def downsample(xs: list, ys: list, max_points: int = MAX_POINTS) -> tuple[list, list, bool]:
    """Min/max-per-bucket downsampling that keeps the extremes; ``(xs, ys, downsampled)``.

    Each of ``max_points // 4`` buckets keeps its first, lowest, highest and last point.
    """
    n = len(xs)
    if n <= max_points:
        return xs, ys, False
    import numpy as np

    y = np.asarray([np.nan if v is None else v for v in ys], dtype=float)
    buckets = max_points // 4
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep = set(edges[:-1].tolist()) | set((edges[1:] - 1).tolist())
    filled = np.where(np.isnan(y), np.inf, y)
    lows = np.minimum.reduceat(filled, edges[:-1])
    finite = np.isfinite(lows)
    for b in np.nonzero(finite)[0]:
        lo, hi = edges[b], edges[b + 1]
        keep.add(int(lo + np.argmin(filled[lo:hi])))
        keep.add(int(lo + np.nanargmax(np.where(np.isnan(y[lo:hi]), -np.inf, y[lo:hi]))))
    idx = sorted(keep)
    return [xs[i] for i in idx], [ys[i] for i in idx], True


def metric_curves(
    series: dict[str, tuple[list, list, list]], metric: str, x: str = "step", labels: dict[str, str] | None = None
) -> dict:
    """One line per run for ``metric``; ``series`` maps run id to its ``(steps, values, walls)``.

    The traces are written as plain dicts: plotly's validation of every point of a long
    series costs more than the query.
    """
    go = _go()
    fig = go.Figure()
    fig.update_layout(xaxis_title=_text(x), yaxis_title=_text(metric), height=360, margin=dict(l=50, r=20, t=50, b=40))
    traces, note = [], []
    for run_id, (steps, values, walls) in series.items():
        if not steps:
            continue
        xs, ys, down = downsample(steps if x == "step" else walls, values)
        if down:
            note.append(f"{run_id}: {len(xs)} of {len(steps)} points")
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(xs) < 50 else "lines",
                "name": _text((labels or {}).get(run_id, run_id)),
                "x": list(xs),
                "y": [None if v is None or v != v else v for v in ys],
            }
        )
    title = f"{metric} by {x}"
    if note:
        title += " (downsampled for display: min/max per bucket; " + ", ".join(note) + ")"
    fig.update_layout(title=_text(title))
    out = _plain(fig)
    out["data"] = _clean(traces)
    return out


def parallel_coordinates(runs: list[dict], metric: str | None) -> dict:
    """Numeric and categorical params that vary across runs, against ``metric``."""
    go = _go()
    keys = sorted({k for r in runs for k in r["params"]})
    dims = []
    for k in keys:
        values = [r["params"].get(k) for r in runs]
        if len({repr(v) for v in values}) < 2:
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None):
            dims.append(dict(label=_text(k), values=[v if v is not None else None for v in values]))
        else:
            cats = sorted({repr(v) for v in values})  # tick text: parcoords draws it as plain text, as is
            dims.append(
                dict(
                    label=_text(k),
                    values=[cats.index(repr(v)) for v in values],
                    tickvals=list(range(len(cats))),
                    ticktext=[c.strip("'") for c in cats],
                )
            )
        if len(dims) >= 12:
            break
    line: dict[str, Any] = {}
    if metric:
        mv = [r["metrics"].get(metric, {}).get("last") for r in runs]
        mv = [float("nan") if v is None else v for v in mv]
        dims.append(dict(label=_text(metric), values=mv))
        if not any(math.isnan(v) for v in mv):  # colour by the metric when every run has it
            line = dict(color=mv, colorscale="Viridis", showscale=True)
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line))
    fig.update_layout(
        title=_text(f"params against {metric}" if metric else "params"), height=380, margin=dict(l=60, r=60, t=60, b=30)
    )
    return _plain(fig)


def _table(header: list[str], columns: list[list], title: str) -> dict:
    go = _go()
    fig = go.Figure(
        go.Table(
            header=dict(values=[_text(h) for h in header], align="left"),
            cells=dict(values=[[_text(v) for v in col] for col in columns], align="left"),
        )
    )
    fig.update_layout(
        title=_text(title),
        margin=dict(l=10, r=10, t=40, b=10),
        height=max(160, 40 + 26 * len(columns[0])) if columns and columns[0] else 160,
    )
    return _plain(fig)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def param_diff_table(compare: Mapping[str, Any]) -> dict:
    ids = [r["id"] for r in compare["runs"]]
    keys = list(compare["param_diff"])
    cols = [keys] + [[_cell(compare["param_diff"][k][i]) for k in keys] for i in range(len(ids))]
    return _table(["param"] + ids, cols, "params that differ" if keys else "params that differ: none")


def metric_table(compare: Mapping[str, Any]) -> dict:
    ids = [r["id"] for r in compare["runs"]]
    keys = list(compare["metrics"])
    cols = [keys] + [[_cell((compare["metrics"][k][i] or {}).get("last")) for k in keys] for i in range(len(ids))]
    cols.append([_cell(compare["metric_delta"].get(k)) for k in keys])
    return _table(["metric (last)"] + ids + ["delta"], cols, "metrics")


def drift_bars(rows: list[dict]) -> dict:
    """PSI per column, with the 0.1 and 0.25 thresholds."""
    go = _go()
    rows = [r for r in rows if r.get("psi") is not None]
    labels = [_text(f"{r['variable']}.{r['column']}") for r in rows]
    colors = ["#d62728" if r["psi"] >= 0.25 else "#ff7f0e" if r["psi"] >= 0.1 else "#2ca02c" for r in rows]
    fig = go.Figure(go.Bar(x=labels, y=[r["psi"] for r in rows], marker_color=colors, name="PSI"))
    for level in (0.1, 0.25):
        fig.add_hline(y=level, line_dash="dot")
    fig.update_layout(
        title="data drift: PSI per column (0.1 moderate, 0.25 major)" if rows else "data drift: not recorded",
        height=340,
        margin=dict(l=50, r=20, t=50, b=80),
    )
    return _plain(fig)


def class_distribution(items: dict[str, list[dict]]) -> dict:
    """Class shares of label-like data per run: ``items`` maps run id to its data items."""
    go = _go()
    fig = go.Figure()
    for run_id, data in items.items():
        for d in data:
            for c in (d.get("summary") or {}).get("columns", []):
                if c.get("classes"):
                    fig.add_trace(
                        go.Bar(
                            x=[_text(k) for k in c["classes"]],
                            y=list(c["classes"].values()),
                            name=_text(f"{run_id} {d['name']}"),
                        )
                    )
    fig.update_layout(
        title="class distribution" if fig.data else "class distribution: not recorded",
        barmode="group",
        yaxis_tickformat=".0%",
        height=320,
        margin=dict(l=50, r=20, t=50, b=40),
    )
    return _plain(fig)


def system_timeline(series: dict[str, tuple[list[dict], list[dict]]]) -> dict:
    """GPU utilization (per GPU) and process CPU over each run's time, seconds from its start."""
    go = _go()
    fig = go.Figure()
    for run_id, (host, gpus) in series.items():
        t0 = min([h["time"] for h in host] + [g["time"] for g in gpus], default=0.0)
        for gpu in sorted({g["gpu"] for g in gpus}):
            pts = [g for g in gpus if g["gpu"] == gpu]
            fig.add_trace(
                go.Scatter(
                    x=[p["time"] - t0 for p in pts],
                    y=[p["util"] for p in pts],
                    mode="lines",
                    name=_text(f"{run_id} GPU{gpu} util %"),
                )
            )
        if host:
            fig.add_trace(
                go.Scatter(
                    x=[h["time"] - t0 for h in host],
                    y=[h["proc_cpu"] for h in host],
                    mode="lines",
                    line=dict(dash="dot"),
                    name=_text(f"{run_id} CPU %"),
                )
            )
    fig.update_layout(
        title="GPU / CPU timeline" if fig.data else "GPU / CPU timeline: not recorded",
        xaxis_title="seconds from run start",
        yaxis_title="%",
        height=340,
        margin=dict(l=50, r=20, t=50, b=40),
    )
    return _plain(fig)


def compare_figures(reader, compare: Mapping[str, Any], metric: str | None = None) -> dict[str, Any]:
    """Every comparison figure for the runs of ``compare`` (from analysis.compare)."""
    ids = [r["id"] for r in compare["runs"]]
    labels = {r["id"]: f"{r['id']} {r['name'] or ''}".strip() for r in compare["runs"]}
    runs = [reader.run(rid) for rid in ids]
    if metric is None or metric not in compare["metrics"]:
        metric = curve_metric(runs)
    series = {rid: reader.metric_points(rid, metric) for rid in ids} if metric else {}
    figs: dict[str, Any] = {
        "params": param_diff_table(compare),
        "metrics": metric_table(compare),
        "curves": metric_curves(series, metric, labels=labels) if metric else _empty("metric curves: not recorded"),
        "parallel": parallel_coordinates(runs, metric),
        "drift": drift_bars(compare.get("drift", [])),
        "classes": class_distribution({r["id"]: r["data"] for r in runs}),
        "system": system_timeline({rid: reader.system_series(rid) for rid in ids}),
    }
    searches = {rid: t for rid in ids for t in reader.run_tables(rid) if t["name"] == "cv_results"}
    if searches:
        figs["search"] = search_scores(searches, labels)
    return {"metric": metric, "figures": figs}


def search_scores(tables: dict[str, dict], labels: dict[str, str] | None = None) -> dict:
    """A hyperparameter search's candidates (the ``cv_results`` table each run kept): the mean test
    score of each candidate with its standard deviation as an error bar, one trace per run, candidates
    named by their params. With several scorers, the first one's (``mean_test_<scorer>``)."""
    go = _go()
    labels = labels or {}
    fig = go.Figure()
    scorer = None
    for rid, t in tables.items():
        cols = t["columns"]
        means = [c for c in cols if c.startswith("mean_test_")]
        if not means:
            continue
        mean = means[0]
        scorer = scorer or mean[len("mean_test_") :]
        std = "std_test_" + mean[len("mean_test_") :]
        params = [c for c in cols if c.startswith("param_")]
        rows = t["rows"]
        x = [", ".join(f"{c[len('param_') :]}={r[cols.index(c)]}" for c in params) for r in rows]
        fig.add_trace(
            go.Scatter(
                x=[_text(v) for v in x],
                y=[r[cols.index(mean)] for r in rows],
                error_y=dict(type="data", array=[r[cols.index(std)] for r in rows]) if std in cols else None,
                mode="markers+lines",
                name=_text(labels.get(rid, rid)),
            )
        )
    title = f"search: mean test {scorer} per candidate (error bar: std over folds)" if scorer else "search"
    fig.update_layout(
        title=_text(title),
        xaxis_title="candidate",
        yaxis_title=_text(f"mean test {scorer or 'score'}"),
        height=380,
        margin=dict(l=50, r=20, t=50, b=120),
    )
    return _plain(fig)


def _empty(title: str) -> dict:
    go = _go()
    fig = go.Figure()
    fig.update_layout(title=title, height=200)
    return _plain(fig)
