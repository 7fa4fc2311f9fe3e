"""The morning review as text (terminal, ``%nbexp review``) and as one self-contained HTML
file (plotly.js and the figures embedded, no server) to attach to an e-mail or post."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from .analysis.metrics import curve_metric, main_metric
from .analysis.review import explanation_lines
from .textfmt import count, duration, fmt, html_table, table, when


def review_text(rev: dict) -> str:
    sp = rev["sprint"]
    out = [
        f"sprint {sp['id']}{' ' + repr(sp['name']) if sp['name'] else ''}: {count(len(rev['runs']), 'run')} "
        + ", ".join(f"{n} {s}" for s, n in rev["counts"].items())
    ]
    if sp.get("hypothesis"):
        out.append(f"hypothesis: {sp['hypothesis']}")
    if sp.get("conclusion"):
        out.append(f"conclusion: {sp['conclusion']}")
    if not rev["runs"]:
        return "\n".join(out)
    out += [
        "",
        table(
            ["run", "name", "status", "start", "time", "last cell / error"],
            [
                [x["id"], x["name"], x["status"], when(x["start_time"]), duration(x), x.get("error") or ""]
                for x in rev["runs"]
            ],
        ),
    ]
    out += drift_lines(rev["drift"])
    for row in rev["imbalance"]:
        out.append(
            f"imbalanced labels in run {row['run']}: {row['variable']}.{row['column']} "
            f"(minority {row['minority_share']:.1%})"
        )
    if rev["gpu_hours"]:
        out.append(f"\nGPU hours: {rev['gpu_hours']:.2f}")
    for h in rev["idle_hints"]:
        out.append(f"idle GPU in run {h['run']}: {h['hint']}")
    if rev["best"]:
        out += [
            "",
            "best per metric",
            table(
                ["metric", "best", "run", "vs previous best", "what changed"],
                [
                    [b["metric"], b["value"], b["run"], b.get("previous_run") or "-", b.get("changed") or "-"]
                    for b in rev["best"]
                ],
            ),
        ]
    why = explanation_lines(rev)  # why the best run won and each regression regressed (nbexp explain)
    if why:
        out += [""] + why
    return "\n".join(out)


DRIFT_COLUMNS_SHOWN = 3  # flagged columns named per variable in the text review


def drift_lines(drift: list[dict]) -> list[str]:
    """One line per drifted variable and pair of runs: its first flagged columns (the worst
    first), then "and N more columns", so a wide array that drifted is one line, not one per column."""
    groups: dict[tuple, list[dict]] = {}
    for d in drift:
        groups.setdefault((d["run"], d["reference"], d["variable"]), []).append(d)
    rank = {"major": 0, "moderate": 1}
    out = []
    for (run, ref, variable), rows in groups.items():
        rows = sorted(rows, key=lambda d: rank.get(d.get("severity") or "", 2))
        shown = "; ".join(f"{variable}.{d['column']}: {'; '.join(d['flags'])}" for d in rows[:DRIFT_COLUMNS_SHOWN])
        more = len(rows) - DRIFT_COLUMNS_SHOWN
        out.append(f"drift in run {run} vs {ref}: {shown}" + (f"; and {more} more columns" if more > 0 else ""))
    return out


# Characters that could end or confuse a ``<script>`` element (``</script>``, ``<!--``) or a JS
# string literal, written as JSON \u escapes: the parsed JSON is the same, the HTML parser sees none.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _script_json(obj: Any) -> str:
    """``obj`` as JSON safe to write inside a ``<script>`` element, whatever its strings hold."""
    return json.dumps(obj).translate(_SCRIPT_SAFE)


def review_figures(reader, rev: dict) -> dict[str, dict]:
    """Curves of the sprint's best-ranked curve metric, parallel coordinates against its main metric
    (one rule: nbexp/analysis/metrics.py), data drift."""
    from . import figures

    runs = rev["runs"]
    figs: dict[str, dict] = {}
    curve = curve_metric(runs)
    if curve:
        shown = [r for r in runs if curve in r["metrics"]][-10:]
        series = {r["id"]: reader.metric_points(r["id"], curve) for r in shown}
        labels = {r["id"]: f"{r['id']} {r['name'] or ''}".strip() for r in shown}
        figs["curves"] = figures.metric_curves(series, curve, labels=labels)
        if len(runs) > 1:
            figs["parallel"] = figures.parallel_coordinates(runs, main_metric(runs))
    if rev["drift"]:
        figs["drift"] = figures.drift_bars(rev["drift"])
    return figs


FIGURES_PER_RUN = 12  # figures of one best run embedded in the review page
FIGURE_BYTES = 20 * 1024 * 1024  # figure bytes embedded in one review page, all runs together
# what a stored image must start with to be embedded under its type (a blob that says image/png but
# holds something else, from an edited ledger or a bundle, is left out)
_IMAGE_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


def best_run_figures(reader, rev: dict) -> list[dict]:
    """The figures (PNG, JPEG) each best run's cells showed, for the review page: per run that is best
    on some metric, in the order of ``rev["best"]``, ``{"run", "name", "metrics", "figures": [{"cell",
    "mime", "data"}], "left_out"}``. Per cell the run's last execution (what the run finally showed),
    each image once; at most :data:`FIGURES_PER_RUN` per run and :data:`FIGURE_BYTES` in all, the rest
    counted in ``left_out``."""
    names = {r["id"]: r["name"] for r in rev["runs"]}
    order: dict[str, list[str]] = {}
    for b in rev["best"]:
        order.setdefault(b["run"], []).append(b["metric"])
    out, budget = [], FIGURE_BYTES
    for rid, metrics in order.items():
        last: dict[str, dict] = {}
        for c in reader.outputs(rid):
            last.pop(c["cell_key"], None)
            last[c["cell_key"]] = c
        figs: list[dict] = []
        seen: set[str] = set()
        left_out = 0
        for c in last.values():
            for o in c["outputs"]:
                if o["mime"] not in _IMAGE_MAGIC or o["hash"] in seen:
                    continue
                seen.add(o["hash"])
                if len(figs) >= FIGURES_PER_RUN or o["size"] > budget:
                    left_out += 1
                    continue
                blob = reader.blob(o["hash"])
                if blob is None or not bytes(blob["data"]).startswith(_IMAGE_MAGIC[o["mime"]]):
                    continue
                budget -= len(blob["data"])
                figs.append({"cell": c["execution_count"], "mime": o["mime"], "data": bytes(blob["data"])})
        if figs or left_out:
            out.append({"run": rid, "name": names.get(rid), "metrics": metrics, "figures": figs, "left_out": left_out})
    return out


def _figures_html(best: list[dict]) -> str:
    """The best runs' figures as ``<img>`` elements with ``data:`` URIs: the bytes base64-encoded (no
    character of theirs reaches the page as markup), every name and caption escaped."""
    parts = ["<h2>Figures of the best runs</h2>"]
    for b in best:
        label = f"run {b['run']}" + (f" {b['name']}" if b["name"] else "")
        parts.append(f"<h3>{html.escape(label)}: best {html.escape(', '.join(b['metrics']))}</h3>")
        parts.append(f'<div class="nbexp-run-figures" data-run="{html.escape(b["run"])}">')
        for f in b["figures"]:
            cell = f"Out[{f['cell'] if f['cell'] is not None else ' '}]"
            uri = f"data:{f['mime']};base64,{base64.b64encode(f['data']).decode('ascii')}"
            alt, caption = html.escape(f"{cell} of {label}"), html.escape(cell)
            parts.append(
                f'<figure><img src="{html.escape(uri)}" alt="{alt}"><figcaption>{caption}</figcaption></figure>'
            )
        if b["left_out"]:
            parts.append(
                f"<p>{b['left_out']} more figures not embedded: "
                f"<code>nbexp outputs {html.escape(b['run'])} --save DIR</code> writes them all</p>"
            )
        parts.append("</div>")
    return "\n".join(parts)


def review_html(ledger: str | None, rev: dict) -> str:
    """One HTML file: the review's tables and its figures, plotly.js inlined."""
    from plotly.offline import get_plotlyjs

    from .ledger.queries import Reader

    with Reader(ledger) as r:
        figs = review_figures(r, rev)
        best_figures = best_run_figures(r, rev)
    sp = rev["sprint"]
    title = f"nbexp review: sprint {sp['id']}" + (f" ({sp['name']})" if sp["name"] else "")
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{count(len(rev['runs']), 'run')}: "
        + html.escape(", ".join(f"{n} {s}" for s, n in rev["counts"].items()))
        + "</p>",
    ]
    for key in ("hypothesis", "conclusion"):
        if sp.get(key):
            parts.append(f"<p><b>{key}:</b> {html.escape(sp[key])}</p>")
    parts.append(
        "<h2>Runs</h2>"
        + html_table(
            ["run", "name", "status", "start", "time", "params that vary", "last cell / error"],
            [
                [
                    x["id"],
                    x["name"],
                    x["status"],
                    when(x["start_time"]),
                    duration(x),
                    _varying(rev["runs"], x),
                    x.get("error") or "",
                ]
                for x in rev["runs"]
            ],
            "Runs",
        )
    )
    if rev["best"]:
        parts.append(
            "<h2>Best per metric</h2>"
            + html_table(
                ["metric", "best", "run", "vs previous best", "what changed"],
                [
                    [b["metric"], b["value"], b["run"], b.get("previous_run") or "-", b.get("changed") or "-"]
                    for b in rev["best"]
                ],
                "Best per metric",
            )
        )
    why = explanation_lines(rev)
    if why:
        parts.append("<h2>Why</h2><pre>" + html.escape("\n".join(why)) + "</pre>")
    flags = drift_lines(rev["drift"])
    flags += [
        f"imbalanced labels in run {i['run']}: {i['variable']}.{i['column']} (minority {i['minority_share']:.1%})"
        for i in rev["imbalance"]
    ]
    flags += [f"idle GPU in run {h['run']}: {h['hint']}" for h in rev["idle_hints"]]
    if rev["gpu_hours"]:
        flags.append(f"GPU hours: {rev['gpu_hours']:.2f}")
    if flags:
        parts.append("<h2>Flags</h2><ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in flags) + "</ul>")
    if best_figures:
        parts.append(_figures_html(best_figures))
    scripts = []
    for i, (key, fig) in enumerate(figs.items()):
        parts.append(f'<div class="nbexp-figure" id="fig{i}" data-figure="{key}"></div>')
        scripts.append(
            f"Plotly.newPlot('fig{i}', {_script_json(fig['data'])}, {_script_json(fig['layout'])}, "
            "{displaylogo: false, responsive: true});"
        )
    style = (
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;"
        "margin:8px 0 16px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        ".nbexp-figure{height:380px;margin:12px 0}.nbexp-run-figures{display:flex;flex-wrap:wrap;gap:12px}"
        "figure{margin:0}figure img{max-width:480px;display:block}figcaption{color:#666;font:12px monospace}"
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style><script>{get_plotlyjs()}</script></head><body>"
        + "\n".join(parts)
        + "<script>"
        + "\n".join(scripts)
        + "</script></body></html>"
    )


def _varying(runs: list[dict], run: dict) -> str:
    keys = [
        k
        for k in sorted({k for r in runs for k in r["params"]})
        if len({json.dumps(r["params"].get(k)) for r in runs}) > 1
    ][:4]
    return ", ".join(f"{k}={fmt(run['params'].get(k))}" for k in keys if k in run["params"])
