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
from .textfmt import count

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
    series: dict[str, tuple[list, list, list]],
    metric: str,
    x: str = "step",
    labels: dict[str, str] | None = None,
    colours: dict[str, str] | None = None,
) -> dict:
    """One line per run for ``metric``; ``series`` maps run id to its ``(steps, values, walls)``; each run
    in its comparison colour when ``colours`` gives one.

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
                "legendgroup": run_id,
                **({"line": {"color": colours[run_id]}} if colours and run_id in colours else {}),
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


def parallel_coordinates(
    runs: list[dict],
    metric: str | None,
    max_params: int = MAX_PARALLEL_PARAMS,
    params: list[str] | None = None,
    colours: dict[str, str] | None = None,
    aliases: dict[str, list[str]] | None = None,
) -> dict:
    """Params that vary across runs against ``metric`` (the last axis): at most ``max_params`` axes, the params
    with the most distinct values first (or the ``params`` the user chose, those that vary); constant params
    get none. Numeric params spanning two decades or more (C = 0.001 / 0.1 / 10) are drawn on a log10 axis
    ticked with their real values; a None value is the category "none", and a run without the param is
    marked "absent" (on a numeric axis, a tick of its own below the values).

    ``colours`` (run id -> colour, a comparison's :func:`run_colours`): each line in its run's colour, the
    same as in the comparison's other charts and their legend; the trace's ``meta.runs`` lists the run of
    each line (the lab hides a run's line when its legend entry is clicked off). Without ``colours`` (a
    whole sprint, as in the review page: too many runs for a colour each) lines are coloured by the metric.

    ``aliases`` (a comparison's ``param_aliases``; by default found among ``runs`` by the same rule,
    :func:`nbexp.analysis.compare.param_aliases`): a literal and the estimator params set from it (``C`` and
    ``model.C``, the same values in every run) are one axis, the literal's, labelled with every name
    ("C / model.C")."""
    go = _go()
    if aliases is None:
        from .analysis.compare import _ABSENT, param_aliases

        names = sorted({k for r in runs for k in r["params"]})
        aliases = param_aliases({k: [r["params"].get(k, _ABSENT) for r in runs] for k in names})
    hidden = {e for names in aliases.values() for e in names}
    keys = sorted({k for r in runs for k in r["params"]} - hidden)
    if params is not None:
        keys = [k for k in keys if k in set(params)]
    candidates = []
    for k in keys:
        values = [r["params"].get(k) for r in runs]
        distinct = len({repr(r["params"][k]) if k in r["params"] else "<absent>" for r in runs})
        if distinct >= 2:
            candidates.append((-distinct, k, values))
    dims = []
    for _, k, values in sorted(candidates)[:max_params]:
        name = " / ".join([k, *aliases.get(k, [])])
        absent = [k not in r["params"] for r in runs]
        present = [v for v, a in zip(values, absent) if not a]
        numbers = [v for v in present if v is not None]
        if numbers and all(_number(v) for v in numbers) and len(numbers) == len(present):
            lo, hi = min(numbers), max(numbers)
            log = lo > 0 and hi / lo >= 100  # two decades or more: a log axis
            scale = math.log10 if log else float
            ticks = sorted(set(numbers))
            if log and len(ticks) > 8:
                ticks = [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
            dim: dict[str, Any] = dict(label=_text(f"{name} (log)" if log else name))
            if any(absent):
                # a run without the param sits on a tick of its own below the axis's values, "absent", never
                # on a value it did not have (nor on "none", a None it did not have)
                span = (scale(hi) - scale(lo)) or 1.0
                below = scale(lo) - 0.25 * span
                dim["values"] = [below if a else scale(v) for v, a in zip(values, absent)]
                shown = ticks if log or len(ticks) <= 8 else [lo, hi]
                dim["tickvals"] = [below] + [scale(t) for t in shown]
                dim["ticktext"] = ["absent"] + [_tick(t) for t in shown]
            elif log:
                dim.update(
                    values=[math.log10(v) for v in numbers],
                    tickvals=[math.log10(t) for t in ticks],
                    ticktext=[_tick(t) for t in ticks],
                )
            else:
                dim["values"] = list(numbers)
            dims.append(dim)
        else:
            shown = [
                "absent" if a else "none" if v is None else v if isinstance(v, str) else repr(v)
                for v, a in zip(values, absent)
            ]
            # tick text: drawn as plain text, as is; "none" (a None value) and "absent" (no such param) last
            cats = sorted(set(shown), key=lambda c: (c == "absent", c == "none", c))
            dims.append(
                dict(
                    label=_text(name),
                    values=[cats.index(c) for c in shown],
                    tickvals=list(range(len(cats))),
                    ticktext=cats,
                )
            )
    line: dict[str, Any] = dict(color="#1f77b4")
    meta: dict[str, Any] | None = None
    if metric:
        found = [(r["metrics"].get(metric) or {}).get("last") for r in runs]
        mv = [float("nan") if v is None else v for v in found]
        have = [v for v in found if v is not None and _number(v)]
        if have and None in found:  # a run without the metric ends on an "absent" tick below the values
            lo, hi = min(have), max(have)
            below = lo - 0.25 * ((hi - lo) or abs(lo) or 1.0)
            ticks = sorted(set(have)) if len(set(have)) <= 6 else [lo, hi]
            dims.append(
                dict(
                    label=_text(metric),
                    values=[below if v is None else v for v in found],
                    tickvals=[below] + ticks,
                    ticktext=["absent"] + [f"{t:.4g}" for t in ticks],
                )
            )
        else:
            dims.append(dict(label=_text(metric), values=mv))
        if colours is None and not any(math.isnan(v) for v in mv):  # colour by the metric when every run has it
            line = dict(color=mv, colorscale=BRIGHT_SCALE, showscale=True, colorbar=dict(title=_text(metric)))
    if colours is not None:
        ids = [r["id"] for r in runs]
        line = run_line(ids, colours)
        meta = {"runs": ids}
    # bright lines read on a light and a dark background; the title sits above the axis labels
    trace = go.Parcoords(dimensions=dims, line=line, labelangle=0, labelside="top", meta=meta)
    fig = go.Figure(trace)
    fig.update_layout(
        title=dict(text=_text(f"params against {metric}" if metric else "params"), y=0.98, yanchor="top"),
        height=420,
        margin=dict(l=70, r=90 if colours is None else 40, t=110, b=30),
    )
    return _plain(fig)


def run_line(ids: list[str], colours: dict[str, str]) -> dict[str, Any]:
    """A parcoords ``line`` drawing the i-th line in the colour of run ``ids[i]``: parcoords colours lines
    through a colour scale only, so line i gets the value i and the scale one flat band per run (value i sits
    in the middle of band i, between cmin -0.5 and cmax n - 0.5)."""
    n = len(ids)
    scale: list[list[Any]] = []
    for i, rid in enumerate(ids):
        scale += [[i / n, colours[rid]], [(i + 1) / n, colours[rid]]]
    return dict(color=list(range(n)), colorscale=scale, cmin=-0.5, cmax=n - 0.5, showscale=False)


# one colour per run, the same in every chart of a comparison (plotly's and D3's ten, readable on light and dark)
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
GRID_COLUMNS = 3
MAX_GRID = 24  # metrics in the grid; the rest are named in the title


def run_colours(ids: list[str]) -> dict[str, str]:
    """The colour of each run in a comparison, by its position: the same in every chart."""
    return {rid: PALETTE[i % len(PALETTE)] for i, rid in enumerate(ids)}


def spans_decades(values: list[Any]) -> bool:
    """Whether positive ``values`` span two decades or more: drawn on a log axis."""
    nums = [v for v in values if _number(v)]
    return bool(nums) and min(nums) > 0 and max(nums) / min(nums) >= 100


def _axis(i: int) -> str:
    return "" if i == 1 else str(i)


def _grid_layout(titles: list[str], cols: int = GRID_COLUMNS, row_height: int = 250) -> dict:
    """Axes and titles of a grid of small multiples, as plotly's make_subplots lays them out."""
    from plotly.subplots import make_subplots

    rows = max(1, math.ceil(len(titles) / cols))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.08,
        vertical_spacing=min(0.3 / rows, 0.12) if rows > 1 else 0.1,
    )
    fig.update_layout(height=80 + row_height * rows, margin=dict(l=50, r=20, t=70, b=40))
    return _plain(fig)["layout"]


def metric_grid(
    series: dict[str, dict[str, tuple[list, list, list]]],
    labels: dict[str, str] | None = None,
    colours: dict[str, str] | None = None,
    best: Mapping[str, int | None] | None = None,
) -> dict:
    """A chart for every metric, small multiples in one figure: ``series`` maps metric to run id to its
    ``(steps, values, walls)``. A metric some run logged at several steps is a line per run; a metric
    every run logged once is a bar per run. Values spanning two decades get a log axis. Each run keeps its
    colour in every chart and is listed once in the legend: clicking it hides the run everywhere (one
    legend group per run). ``best`` (metric -> index of the best run in ``labels``' order) marks the best
    bar with a star."""
    labels = labels or {}
    ids = list(labels) or list(dict.fromkeys(rid for runs in series.values() for rid in runs))
    colours = colours or run_colours(ids)
    metrics = [m for m in series if any(s[0] for s in series[m].values())]
    if not metrics:
        return _empty("metrics", "no metric was recorded for these runs")
    shown, rest = metrics[:MAX_GRID], metrics[MAX_GRID:]
    traces: list[dict] = []
    titles: list[str] = []
    logs: dict[int, bool] = {}
    legend: set[str] = set()
    notes: list[str] = []
    for i, metric in enumerate(shown, 1):
        runs = series[metric]
        single = all(len(s[0]) <= 1 for s in runs.values())
        values = [v for s in runs.values() for v in s[1] if v is not None]
        logs[i] = spans_decades(values) and all(_number(v) and v > 0 for v in values)
        titles.append(_text(metric + (" (log)" if logs[i] else "")))
        axes = {"xaxis": f"x{_axis(i)}", "yaxis": f"y{_axis(i)}"}
        for rid in ids:
            steps, vals, _ = runs.get(rid, ([], [], []))
            if not steps:
                continue
            name = _text(labels.get(rid, rid))
            common = {"name": name, "legendgroup": rid, "showlegend": rid not in legend, **axes}
            legend.add(rid)
            if single:
                top = best.get(metric) if best else None
                star = top is not None and ids[top] == rid
                v = vals[0] if vals and vals[0] == vals[0] else None
                traces.append(
                    {
                        "type": "bar",
                        "x": [name],
                        "y": [v],
                        "marker": {"color": colours[rid]},
                        "text": [("★ " if star else "") + f"{v:.4g}" if v is not None else "NaN"],
                        "textposition": "auto",
                        **common,
                    }
                )
            else:
                xs, ys, down = downsample(steps, vals)
                if down:
                    notes.append(f"{metric}: {len(xs)} of {len(steps)} points")
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "lines+markers" if len(xs) < 50 else "lines",
                        "x": list(xs),
                        "y": [None if v is None or v != v else v for v in ys],
                        "line": {"color": colours[rid]},
                        "marker": {"color": colours[rid]},
                        **common,
                    }
                )
    layout = _grid_layout(titles, cols=min(GRID_COLUMNS, len(titles)))
    for i, log in logs.items():
        single = all(t["type"] == "bar" for t in traces if t["xaxis"] == f"x{_axis(i)}")
        axis: dict[str, Any] = {"showticklabels": False} if single else {"title": {"text": "step"}}
        layout[f"xaxis{_axis(i)}"].update(axis)
        if log:
            layout[f"yaxis{_axis(i)}"]["type"] = "log"
    title = "metrics: a chart per metric (bars: one value per run; lines: by step)"
    if rest:
        title += f"; {len(rest)} more not drawn: " + ", ".join(rest[:5]) + ("…" if len(rest) > 5 else "")
    if notes:
        title += " (downsampled for display: " + "; ".join(notes) + ")"
    layout.update(
        title={"text": _text(title), "font": {"size": 13}},
        showlegend=True,
        barmode="group",
    )
    return _clean({"data": traces, "layout": layout})


def param_scatter(
    runs: list[dict],
    param: str | None,
    metric: str | None,
    labels: dict[str, str] | None = None,
    colours: dict[str, str] | None = None,
    best: int | None = None,
) -> dict:
    """One point per run: ``param`` (x) against ``metric``'s last value (y), each run in its colour, the
    best run (index ``best``) drawn as a star. A numeric param spanning two decades gets a log axis; a
    None value is the category "none". A run without the param has no place on the x axis: it is left out,
    and the title names it."""
    if not param or not metric:
        return _empty("param against metric", "no param differs between these runs, or no metric was recorded")
    labels = labels or {}
    ids = [r["id"] for r in runs]
    colours = colours or run_colours(ids)
    without = [labels.get(r["id"], r["id"]) for r in runs if param not in r["params"]]
    xs = [r["params"].get(param) for r in runs]
    numeric = all(_number(v) for r, v in zip(runs, xs) if param in r["params"])
    if not numeric:
        xs = ["none" if v is None else v if isinstance(v, str) else repr(v) for v in xs]
    traces = []
    for i, (r, x) in enumerate(zip(runs, xs)):
        y = (r["metrics"].get(metric) or {}).get("last")
        if y is None or param not in r["params"]:
            continue
        name = _text(labels.get(r["id"], r["id"]))
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [x if numeric else _text(x)],
                "y": [y],
                "name": name + (" ★ best" if i == best else ""),
                "legendgroup": r["id"],
                "marker": {
                    "color": colours[r["id"]],
                    "size": 18 if i == best else 12,
                    "symbol": "star" if i == best else "circle",
                },
            }
        )
    left_out = f"not drawn, no {param}: {', '.join(without)}" if without else ""
    if not traces:
        return _empty(f"{param} against {metric}", left_out or f"no run recorded {metric}")
    xaxis: dict[str, Any] = {"title": {"text": _text(param + (" (log)" if numeric and spans_decades(xs) else ""))}}
    if numeric and spans_decades(xs):
        xaxis["type"] = "log"
    elif not numeric:
        xaxis["type"] = "category"
    return _clean(
        {
            "data": traces,
            "layout": {
                "title": {
                    "text": _text(f"{metric} against {param} (★ best run)" + (f"; {left_out}" if left_out else ""))
                },
                "xaxis": xaxis,
                "yaxis": {"title": {"text": _text(metric)}},
                "height": 360,
                "showlegend": True,
                "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
            },
        }
    )


DRIFT_BINS = 30
MAX_OVERLAYS = 12


def _column(items: list[dict], variable: str, column: str) -> dict | None:
    for d in items:
        if d["name"] == variable:
            for c in (d.get("summary") or {}).get("columns", []):
                if c.get("name") == column:
                    return c
    return None


def _shares(col: dict, edges: list[float]) -> list[float]:
    from .analysis.drift import _cdf

    q = col["quantiles"]
    f = [_cdf(q, e) for e in edges]
    f[-1] = 1.0
    return [max(0.0, f[i + 1] - f[i]) for i in range(len(f) - 1)]


def drift_overlays(
    rows: list[dict],
    reference: tuple[str, list[dict]],
    other: tuple[str, list[dict]],
    labels: dict[str, str] | None = None,
    colours: dict[str, str] | None = None,
) -> dict:
    """For each flagged column (``rows``, as ``compare_runs``' ``drift``), the two distributions overlaid,
    rebuilt from the stored summaries: a numeric column's share of values per bin (from its 105 stored
    quantiles), a categorical one's share per category. ``reference`` and ``other`` are ``(run id, data
    items)``; each chart's title gives the column's PSI and KS."""
    labels = labels or {}
    colours = colours or run_colours([reference[0], other[0]])
    charts: list[tuple[str, list[dict], bool]] = []
    for row in rows:
        a = _column(reference[1], row["variable"], row["column"])
        b = _column(other[1], row["variable"], row["column"])
        if a is None or b is None:
            continue
        if a.get("quantiles") and b.get("quantiles") and not (a.get("label") or a.get("classes")):
            lo = min(a["quantiles"][0], b["quantiles"][0])
            hi = max(a["quantiles"][-1], b["quantiles"][-1])
            if not hi > lo:
                continue
            size = (hi - lo) / DRIFT_BINS
            edges = [lo + size * k for k in range(DRIFT_BINS + 1)]
            centres = [lo + size * (k + 0.5) for k in range(DRIFT_BINS)]
            pair = [(rid, centres, _shares(col, edges)) for rid, col in ((reference[0], a), (other[0], b))]
            bins = {"start": lo, "end": hi, "size": size}
        else:
            ca, cb = a.get("categories") or a.get("classes"), b.get("categories") or b.get("classes")
            if not ca or not cb:
                continue
            keys = sorted(set(ca) | set(cb), key=str)
            pair = [
                (rid, [_text(k) for k in keys], [c.get(k, 0) / (sum(c.values()) or 1) for k in keys])
                for rid, c in ((reference[0], ca), (other[0], cb))
            ]
            bins = None
        scores = [f"PSI {row['psi']:.2f}" if row.get("psi") is not None else None]
        scores.append(f"KS {row['ks']:.2f}" if row.get("ks") is not None else None)
        scores += [f for f in row.get("flags", []) if not f.startswith(("PSI", "KS"))][:2]  # missing rate, classes
        title = f"{row['variable']}.{row['column']}: " + " · ".join(s for s in scores if s)
        traces = []
        for rid, x, y in pair:
            t: dict[str, Any] = {
                "type": "histogram",
                "histfunc": "sum",
                "x": x,
                "y": y,
                "name": _text(labels.get(rid, rid)),
                "legendgroup": rid,
                "marker": {"color": colours.get(rid, PALETTE[0])},
                "opacity": 0.55,
            }
            if bins:
                t.update(xbins=bins, autobinx=False)
            traces.append(t)
        charts.append((title, traces, bins is None))
        if len(charts) == MAX_OVERLAYS:
            break
    if not charts:
        return _empty("drift", "no flagged column has a stored distribution to draw")
    cols = min(2, len(charts))
    layout = _grid_layout([_text(t) for t, _, _ in charts], cols=cols, row_height=260)
    data = []
    for i, (_, traces, categorical) in enumerate(charts, 1):
        for t in traces:
            data.append({**t, "xaxis": f"x{_axis(i)}", "yaxis": f"y{_axis(i)}", "showlegend": i == 1})
        layout[f"yaxis{_axis(i)}"]["tickformat"] = ".0%"
        if categorical:
            layout[f"xaxis{_axis(i)}"]["type"] = "category"
    ref, oth = (_text(labels.get(r, r)) for r in (reference[0], other[0]))
    layout.update(
        title={"text": f"drift: {oth} against {ref}, the distributions of each flagged column", "font": {"size": 13}},
        barmode="overlay",
        showlegend=True,
    )
    return _clean({"data": data, "layout": layout})


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
    """The params that differ, a row each; a literal and the estimator params set from it (``param_aliases``)
    one row named by both ("C / model.C")."""
    from .analysis.compare import merged_param_diff

    ids = [r["id"] for r in compare["runs"]]
    diff = merged_param_diff(compare)
    keys = list(diff)
    cols = [keys] + [[_cell(diff[k][i]) for k in keys] for i in range(len(ids))]
    return _table(["param"] + ids, cols, "params that differ" if keys else "params that differ: none")


def metric_table(compare: Mapping[str, Any]) -> dict:
    """Last values side by side, the best run per metric marked ★ (lower is better for loss-like names:
    ``analysis.review``'s rule, applied by ``compare_runs``), then each run's delta against the baseline
    (``compare["baseline"]``, the first run unless chosen), named in the column header."""
    ids = [r["id"] for r in compare["runs"]]
    keys = list(compare["metrics"])
    best = compare.get("best", {})
    base = compare.get("baseline", 0)

    def value(k: str, i: int) -> str:
        text = _cell((compare["metrics"][k][i] or {}).get("last"))
        return f"★ {text}" if best.get(k) == i else text

    cols = [keys] + [[value(k, i) for k in keys] for i in range(len(ids))]
    header = ["metric (last; ★ best)"] + ids
    deltas = compare.get("baseline_delta", {})
    for i in range(len(ids)):
        if i == base:
            continue
        cols.append([_cell((deltas.get(k) or [None] * len(ids))[i]) for k in keys])
        header.append(f"Δ vs {ids[base]}" if len(ids) == 2 else f"Δ {ids[i]} vs {ids[base]}")
    return _table(header, cols, f"metrics (baseline {ids[base]})")


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


def class_distribution(items: dict[str, list[dict]], colours: dict[str, str] | None = None) -> dict:
    """Class shares of label-like data per run, side by side: ``items`` maps run id to its data items; each
    run in its comparison colour (``colours``)."""
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
                            name=_text(f"{run_id} {d['name']}.{c.get('name', '')}"),
                            legendgroup=run_id,
                            marker_color=(colours or {}).get(run_id),
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


MIN_TIMELINE_SAMPLES = 3  # a run's samples for a line: fewer draw a dot on axes that say nothing


def system_timeline(series: dict[str, tuple[list[dict], list[dict]]], labels: dict[str, str] | None = None) -> dict:
    """GPU utilization (per GPU) and process CPU over each run's time, seconds from its start; a legend
    even for one run (which line is the GPU and which the CPU). A run with fewer than
    :data:`MIN_TIMELINE_SAMPLES` samples draws no line (one sample is a dot on blank axes): the title names
    it, and with no run to draw, a sentence says why (sampling off, or runs too short) and how many samples
    each run has. The runs' aggregates (CPU mean, peak RSS, ...) are recorded apart from these samples."""
    go = _go()
    labels = labels or {}
    fig = go.Figure()
    any_gpu = False
    few: list[str] = []
    for run_id, (host, gpus) in series.items():
        name = labels.get(run_id, run_id)
        t0 = min([h["time"] for h in host] + [g["time"] for g in gpus], default=0.0)
        drawn = False
        for gpu in sorted({g["gpu"] for g in gpus}):
            pts = [g for g in gpus if g["gpu"] == gpu]
            if len(pts) < MIN_TIMELINE_SAMPLES:
                continue
            any_gpu = drawn = True
            fig.add_trace(
                go.Scatter(
                    x=[p["time"] - t0 for p in pts],
                    y=[p["util"] for p in pts],
                    mode="lines",
                    name=_text(f"{name} GPU{gpu} util %"),
                )
            )
        if len(host) >= MIN_TIMELINE_SAMPLES:
            drawn = True
            fig.add_trace(
                go.Scatter(
                    x=[h["time"] - t0 for h in host],
                    y=[h["proc_cpu"] for h in host],
                    mode="lines",
                    line=dict(dash="dot"),
                    name=_text(f"{name} CPU %"),
                )
            )
        if not drawn:
            n = len(host)
            few.append(f"{name}: {count(n, 'sample') if n else 'no samples'}")
    if not fig.data:
        if all(not host and not gpus for host, gpus in series.values()):
            why = "no system samples were recorded for these runs "
            why += "(tracking with --sample-hz 0, or the runs were too short)"
        else:
            why = (
                f"too few system samples for a timeline ({'; '.join(few)}; {MIN_TIMELINE_SAMPLES} needed): "
                "the runs were shorter than a few sampling intervals, or sampling was off"
            )
        return _empty("GPU / CPU timeline", why)
    title = "GPU / CPU timeline" if any_gpu else "CPU timeline: no GPU was visible to this kernel; CPU only"
    if few:
        title += f" (no line for {'; '.join(few)}: too few samples)"
    fig.update_layout(
        title=_text(title),
        showlegend=True,
        xaxis_title="seconds from run start",
        yaxis_title="%",
        height=340,
        margin=dict(l=50, r=20, t=50, b=40),
    )
    return _plain(fig)


def compare_figures(
    reader,
    compare: Mapping[str, Any],
    metric: str | None = None,
    params: list[str] | None = None,
    x_param: str | None = None,
) -> dict[str, Any]:
    """Every comparison figure for the runs of ``compare`` (from analysis.compare), each run in the same
    colour in every one: ``grid`` (a chart per metric), ``curves`` (``metric`` by step), ``parallel``
    (``params``, else the most varied, against ``metric``), ``scatter`` (``x_param``, else the most varied
    param, against ``metric``), ``drift`` (PSI per column), ``drift_hist`` (the flagged columns'
    distributions overlaid), ``classes`` and ``system``. ``params`` and ``x_param`` are the user's choice."""
    ids = [r["id"] for r in compare["runs"]]
    labels = {r["id"]: f"{r['id']} {r['name'] or ''}".strip() for r in compare["runs"]}
    colours = run_colours(ids)
    runs = [reader.run(rid) for rid in ids]
    if metric is None or metric not in compare["metrics"]:
        metric = curve_metric(runs)
    series = {m: {rid: reader.metric_points(rid, m) for rid in ids} for m in compare["metrics"]}
    aliases = compare.get("param_aliases") or {}
    stands_for = {e: k for k, names in aliases.items() for e in names}  # model.C -> C: one scatter choice
    diff = {k: v for k, v in compare["param_diff"].items() if k not in stands_for}
    varied = sorted(diff, key=lambda k: (-len({repr(v) for v in diff[k]}), k))
    x_param = stands_for.get(x_param, x_param) if x_param is not None else None
    if x_param is None or x_param not in compare["params"]:
        x_param = varied[0] if varied else None
    best = compare.get("best", {})
    figs: dict[str, Any] = {
        "params": param_diff_table(compare),
        "metrics": metric_table(compare),
        "grid": metric_grid(series, labels, colours, best),
        "curves": metric_curves({rid: series[metric][rid] for rid in ids}, metric, labels=labels, colours=colours)
        if metric
        else _empty("metric curves", "no metric was recorded for these runs"),
        "parallel": parallel_coordinates(runs, metric, params=params, colours=colours, aliases=aliases),
        "scatter": param_scatter(runs, x_param, metric, labels, colours, best.get(metric) if metric else None),
        "drift": drift_bars(compare.get("drift", []), compare.get("data", {})),
        "classes": class_distribution({r["id"]: r["data"] for r in runs}, colours),
        "system": system_timeline({rid: reader.system_series(rid) for rid in ids}, labels),
    }
    if compare.get("drift"):
        figs["drift_hist"] = drift_overlays(
            compare["drift"], (ids[0], runs[0]["data"]), (ids[-1], runs[-1]["data"]), labels, colours
        )
    searches = {rid: t for rid in ids for t in reader.run_tables(rid) if t["name"] == "cv_results"}
    if searches:
        figs["search"] = search_scores(searches, labels)
    return {"metric": metric, "x_param": x_param, "colours": colours, "figures": figs}


def run_figures(reader, run_id: str) -> dict[str, Any]:
    """One run's charts for its details view: ``grid`` (a chart per metric: curves by step, a bar for a
    single value) and ``system`` (its GPU / CPU timeline), as the comparison draws them."""
    run = reader.run(run_id)
    label = f"{run['id']} {run['name'] or ''}".strip()
    series = {m: {run["id"]: reader.metric_points(run["id"], m)} for m in run["metrics"]}
    return {
        "grid": metric_grid(series, {run["id"]: label}),
        "system": system_timeline({run["id"]: reader.system_series(run["id"])}),
    }


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
