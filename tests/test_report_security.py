"""Names are data, never markup (docs/design.md "Security"): run, param, metric and column names that
hold HTML show as text in the review page, its plotly figures and the compare figures the sidebar
draws, and no script in them ever runs."""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager

import chromium
import pytest
from click.testing import CliRunner

import nbexp
from nbexp import figures, report
from nbexp.cli import main

pytestmark = pytest.mark.browser  # two of its tests open pages in chromium

SCRIPT = "</script><script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
LINK = '<a href="https://example.com">link</a>'
EVIL = (SCRIPT, IMG, LINK)
METRIC = f"loss{LINK}{IMG}{SCRIPT}"

DATA = """
import numpy as np, pandas as pd
def load(shift, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: rng.normal(shift, 1, 5000) for name in EVIL})
"""


@pytest.fixture
def evil_ledger(cell, ledger_path):
    """A real ledger whose runs carry hostile names: three named runs (hostile run names, param
    names and param values), two cell runs on data whose hostile columns drift, and a metric
    renamed in the file as an edited ledger or an imported bundle could bring it."""
    cell("%nbexp track")
    cell(
        f"import nbexp\nEVIL = {EVIL!r}\n"
        "for i, name in enumerate(EVIL):\n"
        "    with nbexp.run(name, kind=name, **{p: i + j for j, p in enumerate(EVIL)}):\n"
        "        for s in range(4):\n"
        "            nbexp.log(loss=1 / (s + 1 + i))"
    )
    cell(DATA)
    for shift, seed in ((0.0, 1), (2.0, 2)):
        cell(f"train = load({shift}, {seed})")
        cell("score = float(train[EVIL[0]].mean())")
    cell("%nbexp stop")
    with sqlite3.connect(ledger_path) as conn:  # nbexp.log takes identifiers only; a bundle need not
        for table in ("metrics", "metric_summaries"):
            conn.execute(f"UPDATE {table} SET key = ? WHERE key = 'loss'", (METRIC,))
    conn.close()
    return ledger_path


@contextmanager
def _browser_page(url: str):
    """A chromium page on ``url``; yields ``(page, problems)``, problems being page errors and dialogs."""
    chromium.skip_unless_installed()
    with chromium.headless() as b:
        pg = b.new_page()
        problems: list[str] = []
        pg.on("pageerror", lambda e: problems.append(f"error: {e}"))
        pg.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        pg.goto(url)
        yield pg, problems


def _assert_inert(pg, figure_selector: str, n_figs: int) -> None:
    """Every figure drawn, no script of a name run, no element made from a name."""
    drawn = f"[...document.querySelectorAll('{figure_selector}')].filter(d => d.querySelector('.main-svg')).length"
    pg.wait_for_function(f"{drawn} === {n_figs}", timeout=30_000)
    pg.wait_for_timeout(500)  # let an onerror handler fire, had one been made
    assert pg.evaluate("typeof window.__pwned") == "undefined"
    assert pg.locator(".main-svg a").count() == 0  # plotly draws its links as svg <a xlink:href>
    assert pg.locator("img[src='x']").count() == 0
    assert (
        pg.evaluate(
            "[...document.querySelectorAll('*')].filter(e => [...e.attributes]"
            ".some(a => /href|src/.test(a.name) && a.value.includes('example.com'))).length"
        )
        == 0
    )


def _has_no_markup(fig: dict) -> bool:
    """No text plotly would read as markup: no ``<`` anywhere but in parcoords tick text,
    which plotly draws as plain text (the browser test shows it as written)."""
    fig = json.loads(json.dumps(fig))
    for trace in fig["data"]:
        for dim in trace.get("dimensions", []) if trace.get("type") == "parcoords" else []:
            dim.pop("ticktext", None)
    return "<" not in json.dumps(fig, ensure_ascii=False)


def test_figures_hold_hostile_names_as_text():
    curves = figures.metric_curves({"r1": ([0, 1], [1.0, 0.5], [0.0, 1.0])}, METRIC, labels={"r1": f"r1 {LINK}"})
    runs = [
        {"id": f"r{i}", "params": {LINK: i, IMG: name}, "metrics": {METRIC: {"last": i / 10}}}
        for i, name in enumerate(EVIL)
    ]
    parallel = figures.parallel_coordinates(runs, METRIC)
    compare = {
        "runs": [{"id": "r1"}, {"id": "r2"}],
        "param_diff": {LINK: [IMG, SCRIPT]},
        "metrics": {METRIC: [{"last": 1.0}, {"last": 2.0}]},
        "metric_delta": {METRIC: 1.0},
    }
    params, metrics = figures.param_diff_table(compare), figures.metric_table(compare)
    drift = figures.drift_bars([{"variable": IMG, "column": LINK, "psi": 0.3}])
    classes = figures.class_distribution(
        {"r1": [{"name": IMG, "summary": {"columns": [{"classes": {LINK: 0.5, SCRIPT: 0.5}}]}}]}
    )
    for fig in (curves, parallel, params, metrics, drift, classes):
        assert _has_no_markup(fig), fig
    # the names are all there, as the entities plotly draws as the characters themselves
    assert curves["data"][0]["name"] == 'r1 &lt;a href="https://example.com"&gt;link&lt;/a&gt;'
    assert curves["layout"]["yaxis"]["title"]["text"].startswith("loss&lt;a href=")
    dims = parallel["data"][0]["dimensions"]
    assert [d["label"] for d in dims] == [figures._text(LINK), figures._text(IMG), figures._text(METRIC)]
    assert SCRIPT in dims[1]["ticktext"]  # plain text there: see the browser test
    assert params["data"][0]["cells"]["values"][0] == ['&lt;a href="https://example.com"&gt;link&lt;/a&gt;']
    assert drift["data"][0]["x"] == [figures._text(f"{IMG}.{LINK}")]
    assert figures._text("a & b <c>") == "a &amp; b &lt;c&gt;"


def test_script_json_cannot_end_the_script_element():
    obj = {"name": SCRIPT + IMG + "<!-- & \u2028\u2029", "n": [1, 2.5, None]}
    text = report._script_json(obj)
    assert json.loads(text) == obj
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}


def test_compare_figures_for_the_sidebar_hold_no_markup(evil_ledger, tmp_path):
    ids = list(nbexp.runs(ledger=str(evil_ledger)).run_id)[::-1]  # oldest first: the named runs, then cells
    c = nbexp.compare(*ids, ledger=str(evil_ledger))
    assert c["metric"] == METRIC
    for name, fig in c["figures"].items():
        assert _has_no_markup(fig), name
    assert [t["name"].split(" ", 1)[1] for t in c["figures"]["curves"]["data"]] == [
        "&lt;/script&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;",
        '&lt;img src=x onerror="window.__pwned=1"&gt;',
        '&lt;a href="https://example.com"&gt;link&lt;/a&gt;',
    ]
    # drawn by plotly.js as the sidebar draws them
    from plotly.offline import get_plotlyjs

    page = tmp_path / "sidebar-figures.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><script>" + get_plotlyjs() + "</script></head>"
        "<body>"
        + "".join(f'<div class="fig" id="{k}"></div>' for k in c["figures"])
        + "<script>"
        + "".join(
            f"Plotly.newPlot('{k}', {report._script_json(f['data'])}, {report._script_json(f['layout'])});"
            for k, f in c["figures"].items()
        )
        + "</script></body></html>",
        encoding="utf-8",
    )
    with _browser_page(page.as_uri()) as (pg, problems):
        _assert_inert(pg, ".fig", len(c["figures"]))
        shown = {k: pg.locator(f"#{k}").text_content() for k in c["figures"]}
        for name in EVIL:
            assert name in shown["curves"] and name in shown["parallel"], name
            assert name.replace(" ", "") in shown["params"].replace(" ", ""), name  # table cells wrap at spaces
        assert METRIC.replace(" ", "") in shown["metrics"].replace(" ", "")
        for key, text in shown.items():
            assert "&lt;" not in text and "&amp;" not in text, key
    assert not problems


def test_html_review_runs_no_script_and_shows_names_as_text(evil_ledger, tmp_path):
    page = tmp_path / "review.html"
    res = CliRunner().invoke(main, ["--ledger", str(evil_ledger), "review", "--sprint", "today", "--html", str(page)])
    assert res.exit_code == 0, res.output
    text = page.read_text(encoding="utf-8")
    body = text.split("</head>", 1)[1]
    assert "<script>window.__pwned" not in body and "<img src=x" not in body and "<a href=" not in body
    with _browser_page(page.as_uri()) as (pg, problems):
        n_figs = pg.locator(".nbexp-figure").count()
        assert n_figs == 3  # curves, parallel coordinates, drift
        _assert_inert(pg, ".nbexp-figure", n_figs)
        for key in ("curves", "parallel", "drift"):
            assert pg.locator(f".nbexp-figure[data-figure={key}] .main-svg").count() >= 1, key
        svg_text = {
            key: pg.locator(f".nbexp-figure[data-figure={key}]").text_content()
            for key in ("curves", "parallel", "drift")
        }
        for name in EVIL:
            assert name in svg_text["curves"], name  # legend: the run names, as written
            assert name in svg_text["parallel"], name  # param names and values
            assert name in svg_text["drift"], name  # the drifting columns
        assert "loss" + LINK in svg_text["curves"]  # axis title: the metric name
        for key, shown in svg_text.items():
            assert "&lt;" not in shown and "&amp;" not in shown, key  # no entity shown as such
        assert pg.get_by_role("table", name="Runs").inner_text().count(LINK) >= 1
        assert METRIC in pg.get_by_role("table", name="Best per metric").inner_text()
    assert not problems
