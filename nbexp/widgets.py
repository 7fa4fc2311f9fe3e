"""In-notebook views (ipywidgets): the same figures the sidebar shows.

:class:`Comparison` is what ``nbexp.compare`` returns: a plain dict of the comparison
(param diff, metrics, code diff, data) that displays itself as tabs when it is the
last value of a cell.
"""

from __future__ import annotations

import html

from .textfmt import html_table

TABS = ("params", "metrics", "curves", "parallel", "data", "system", "code")


class Comparison(dict):
    """The result of :func:`nbexp.compare`: a dict that shows as a tabbed view."""

    def widget(self):
        """The ipywidgets view: one tab per aspect, plotly figures inside."""
        import ipywidgets as w

        children, titles = [], []
        figs = self.get("figures", {})
        for key in TABS:
            out = w.Output()
            with out:
                _show(self, key, figs)
            children.append(out)
            titles.append(
                {
                    "params": "Params",
                    "metrics": "Metrics",
                    "curves": "Metric curves",
                    "parallel": "Parallel coordinates",
                    "data": "Data",
                    "system": "System",
                    "code": "Code diff",
                }[key]
            )
        tabs = w.Tab(children=children)
        for i, t in enumerate(titles):
            tabs.set_title(i, t)
        header = w.HTML(
            "<b>nbexp compare</b>: "
            + ", ".join(html.escape(f"{r['id']} {r['name'] or ''} [{r['status']}]") for r in self["runs"])
        )
        return w.VBox([header, tabs])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        try:
            display(self.widget())
        except ImportError:  # no ipywidgets: a text summary
            print(text_summary(self))


def _show(c: dict, key: str, figs: dict) -> None:
    from IPython.display import HTML, display

    if key in ("params", "metrics", "code"):
        display(HTML(html_section(c, key)))
    # the figures the sidebar's compare view draws (nbexp.figures.compare_figures), in the same places
    if key == "curves":
        _figure(figs.get("grid") or figs.get("curves"))  # a chart per metric, one colour per run
    if key in ("parallel", "system"):
        _figure(figs.get(key))
    if key == "parallel":
        _figure(figs.get("scatter"))  # the most varied (or chosen) param against the metric
        if figs.get("search"):  # a search's candidates, next to the runs' params
            _figure(figs["search"])
    if key == "data":
        display(HTML(html_section(c, "data")))
        _figure(figs.get("drift"))
        _figure(figs.get("drift_hist"))  # the flagged columns' two distributions overlaid
        _figure(figs.get("classes"))


def _figure(fig: dict | None) -> None:
    if not fig:
        return
    import plotly.graph_objects as go
    from IPython.display import display

    display(go.Figure(fig))


def html_section(c: dict, key: str) -> str:
    ids = [r["id"] for r in c["runs"]]
    if key == "params":
        if not c["param_diff"]:
            return "<p>Same params.</p>"
        return html_table(["param"] + ids, [[k] + v for k, v in c["param_diff"].items()])
    if key == "metrics":
        return (
            html_table(
                ["metric (last)"] + ids + ["delta"],
                [
                    [k] + [s["last"] if s else None for s in v] + [c["metric_delta"].get(k)]
                    for k, v in c["metrics"].items()
                ],
            )
            if c["metrics"]
            else "<p>No metrics recorded.</p>"
        )
    if key == "code":
        return f"<pre>{html.escape(chr(10).join(c['code_diff']) or 'Same code.')}</pre>"
    lines = [f"{d['variable']}.{d['column']}: {'; '.join(d['flags'])}" for d in c.get("drift", [])]
    lines += [
        f"run {i['run']} {i['variable']}.{i['column']}: imbalanced (minority {i['minority_share']:.1%})"
        for i in c.get("imbalance", [])
    ]
    return (
        "<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>"
        if lines
        else "<p>Data: no drift or imbalance flagged (or not recorded).</p>"
    )


def text_summary(c: dict) -> str:
    lines = ["nbexp compare: " + ", ".join(r["id"] for r in c["runs"])]
    for k, v in c["param_diff"].items():
        lines.append(f"  {k}: " + " -> ".join(map(repr, v)))
    for k, d in c["metric_delta"].items():
        lines.append(f"  {k}: delta {d:+.4g}")
    return "\n".join(lines)
