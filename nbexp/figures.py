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


# blue -> green -> amber: every end bright enough on a light and on a dark background (Viridis' dark purple
# vanishes on JupyterLab's dark theme)
BRIGHT_SCALE = [[0.0, "#4f8ef7"], [0.5, "#36c59a"], [1.0, "#f5b02e"]]
MAX_PARALLEL_PARAMS = 7  # axes for params; with the metric's, 8 at most: more is unreadable


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _tick(v: float) -> str:
    return f"{v:g}"


def parallel_coordinates(runs: list[dict], metric: str | None, max_params: int = MAX_PARALLEL_PARAMS) -> dict:
    """Params that vary across runs against ``metric``: at most ``max_params`` axes, the params with the
    most distinct values first; constant params get none. Numeric params spanning two decades or more
    (C = 0.001 / 0.1 / 10) are drawn on a log10 axis ticked with their real values; a missing or None
    value is the category "none"."""
    go = _go()
    keys = sorted({k for r in runs for k in r["params"]})
    candidates = []
    for k in keys:
        values = [r["params"].get(k) for r in runs]
        distinct = len({repr(v) for v in values})
        if distinct >= 2:
            candidates.append((-distinct, k, values))
    dims = []
    for _, k, values in sorted(candidates)[:max_params]:
        numbers = [v for v in values if v is not None]
        if numbers and all(_number(v) for v in numbers) and len(numbers) == len(values):
            lo, hi = min(numbers), max(numbers)
            if lo > 0 and hi / lo >= 100:  # two decades or more: a log axis
                ticks = sorted(set(numbers))
                if len(ticks) > 8:
                    ticks = [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
                dims.append(
                    dict(
                        label=_text(f"{k} (log)"),
                        values=[math.log10(v) for v in numbers],
                        tickvals=[math.log10(t) for t in ticks],
                        ticktext=[_tick(t) for t in ticks],
                    )
                )
            else:
                dims.append(dict(label=_text(k), values=list(numbers)))
        else:
            shown = ["none" if v is None else v if isinstance(v, str) else repr(v) for v in values]
            cats = sorted(set(shown), key=lambda c: (c == "none", c))  # tick text: drawn as plain text, as is
            dims.append(
                dict(
                    label=_text(k),
                    values=[cats.index(c) for c in shown],
                    tickvals=list(range(len(cats))),
                    ticktext=cats,
                )
            )
    line: dict[str, Any] = dict(color="#1f77b4")
    if metric:
        found = [(r["metrics"].get(metric) or {}).get("last") for r in runs]
        mv = [float("nan") if v is None else v for v in found]
        dims.append(dict(label=_text(metric), values=mv))
        if not any(math.isnan(v) for v in mv):  # colour by the metric when every run has it
            line = dict(color=mv, colorscale=BRIGHT_SCALE, showscale=True, colorbar=dict(title=_text(metric)))
    # bright lines read on a light and a dark background; the title sits above the axis labels
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line, labelangle=0, labelside="top"))
    fig.update_layout(
        title=dict(text=_text(f"params against {metric}" if metric else "params"), y=0.98, yanchor="top"),
        height=420,
        margin=dict(l=70, r=90, t=110, b=30),
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
    """Last values side by side, the best run per metric marked ★ (lower is better for loss-like names:
    ``analysis.review``'s rule, applied by ``compare_runs``), then each run's delta against the baseline,
    the first run, named in the column header."""
    ids = [r["id"] for r in compare["runs"]]
    keys = list(compare["metrics"])
    best = compare.get("best", {})

    def value(k: str, i: int) -> str:
        text = _cell((compare["metrics"][k][i] or {}).get("last"))
        return f"★ {text}" if best.get(k) == i else text

    cols = [keys] + [[value(k, i) for k in keys] for i in range(len(ids))]
    header = ["metric (last; ★ best)"] + ids
    deltas = compare.get("baseline_delta", {})
    for i in range(1, len(ids)):
        cols.append([_cell((deltas.get(k) or [None] * len(ids))[i]) for k in keys])
        header.append(f"Δ vs {ids[0]}" if len(ids) == 2 else f"Δ {ids[i]} vs {ids[0]}")
    return _table(header, cols, f"metrics (baseline {ids[0]})")


def drift_bars(rows: list[dict], fingerprints: dict[str, list] | None = None) -> dict:
    """PSI per column, with the 0.1 and 0.25 thresholds; with no row, a sentence saying why, from
    ``fingerprints`` (variable -> one data fingerprint per run, as ``compare_runs`` gives) when known."""
    go = _go()
    rows = [r for r in rows if r.get("psi") is not None]
    if not rows:
        fps = {n: v for n, v in (fingerprints or {}).items() if any(v)}
        if fingerprints is None:
            why = "no drift measured: no data summaries recorded, or the runs share their data"
        elif not fps:
            why = "no data summaries were recorded for these runs"
        elif all(len({f for f in v if f}) == 1 and all(v) for v in fps.values()):
            why = "these runs share their data: nothing drifted"
        else:
            why = "the data differs, but no column drifted past PSI 0.1"
        return _empty("data drift", why)
    labels = [_text(f"{r['variable']}.{r['column']}") for r in rows]
    colors = ["#d62728" if r["psi"] >= 0.25 else "#ff7f0e" if r["psi"] >= 0.1 else "#2ca02c" for r in rows]
    fig = go.Figure(go.Bar(x=labels, y=[r["psi"] for r in rows], marker_color=colors, name="PSI"))
    for level in (0.1, 0.25):
        fig.add_hline(y=level, line_dash="dot")
    fig.update_layout(
        title="data drift: PSI per column (0.1 moderate, 0.25 major)",
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
    if not fig.data:
        return _empty("class distribution", "no label column (a few classes) was recorded for these runs")
    fig.update_layout(
        title="class distribution",
        barmode="group",
        yaxis_tickformat=".0%",
        height=320,
        margin=dict(l=50, r=20, t=50, b=40),
    )
    return _plain(fig)


def system_timeline(series: dict[str, tuple[list[dict], list[dict]]]) -> dict:
    """GPU utilization (per GPU) and process CPU over each run's time, seconds from its start; a legend
    even for one run (which line is the GPU and which the CPU); with nothing sampled, a sentence saying why."""
    go = _go()
    fig = go.Figure()
    any_gpu = any(gpus for _, gpus in series.values())
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
    if not fig.data:
        return _empty(
            "GPU / CPU timeline",
            "no system samples were recorded for these runs (tracking with --sample-hz 0, or the runs were too short)",
        )
    title = "GPU / CPU timeline" if any_gpu else "CPU timeline: no GPU was visible to this kernel; CPU only"
    fig.update_layout(
        title=_text(title),
        showlegend=True,
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
        "curves": metric_curves(series, metric, labels=labels)
        if metric
        else _empty("metric curves", "no metric was recorded for these runs"),
        "parallel": parallel_coordinates(runs, metric),
        "drift": drift_bars(compare.get("drift", []), compare.get("data", {})),
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


def _empty(title: str, why: str = "") -> dict:
    """A figure with nothing to draw: no axes, only the title and, centred, the sentence saying why."""
    go = _go()
    fig = go.Figure()
    fig.update_layout(
        title=_text(title),
        height=200,
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
        annotations=[dict(text=_text(why or title), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)],
        margin=dict(l=20, r=20, t=50, b=20),
    )
    return _plain(fig)
