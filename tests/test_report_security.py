"""Names are data, never markup (DESIGN.md "Security"): run, param, metric and column names that
hold HTML show as text in the review page, its plotly figures and the compare figures the sidebar
draws, and no script in them ever runs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import nbexp
from nbexp import figures
from nbexp.cli import main

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
    cell(f"import nbexp\nEVIL = {EVIL!r}\n"
         "for i, name in enumerate(EVIL):\n"
         "    with nbexp.run(name, kind=name, **{p: i + j for j, p in enumerate(EVIL)}):\n"
         "        for s in range(4):\n"
         "            nbexp.log(loss=1 / (s + 1 + i))")
    cell(DATA)
    for shift, seed in ((0.0, 1), (2.0, 2)):
        cell(f"train = load({shift}, {seed})")
        cell("score = float(train[EVIL[0]].mean())")
    cell("%nbexp stop")
    with sqlite3.connect(ledger_path) as conn:          # nbexp.log takes identifiers only; a bundle need not
        for table in ("metrics", "metric_summaries"):
            conn.execute(f"UPDATE {table} SET key = ? WHERE key = 'loss'", (METRIC,))
    conn.close()
    return ledger_path


def _has_no_markup(fig: dict) -> bool:
    return "<" not in json.dumps(fig, ensure_ascii=False)


def test_figures_hold_hostile_names_as_text():
    curves = figures.metric_curves({"r1": ([0, 1], [1.0, 0.5], [0.0, 1.0])}, METRIC, labels={"r1": f"r1 {LINK}"})
    runs = [{"id": f"r{i}", "params": {LINK: i, IMG: name}, "metrics": {METRIC: {"last": i / 10}}}
            for i, name in enumerate(EVIL)]
    parallel = figures.parallel_coordinates(runs, METRIC)
    compare = {"runs": [{"id": "r1"}, {"id": "r2"}], "param_diff": {LINK: [IMG, SCRIPT]},
               "metrics": {METRIC: [{"last": 1.0}, {"last": 2.0}]}, "metric_delta": {METRIC: 1.0}}
    params, metrics = figures.param_diff_table(compare), figures.metric_table(compare)
    drift = figures.drift_bars([{"variable": IMG, "column": LINK, "psi": 0.3}])
    classes = figures.class_distribution({"r1": [{"name": IMG, "summary": {"columns": [
        {"classes": {LINK: 0.5, SCRIPT: 0.5}}]}}]})
    for fig in (curves, parallel, params, metrics, drift, classes):
        assert _has_no_markup(fig), fig
    # the names are all there, as the entities plotly draws as the characters themselves
    assert curves["data"][0]["name"] == "r1 &lt;a href=\"https://example.com\"&gt;link&lt;/a&gt;"
    assert curves["layout"]["yaxis"]["title"]["text"].startswith("loss&lt;a href=")
    dims = parallel["data"][0]["dimensions"]
    assert [d["label"] for d in dims] == ["&lt;a href=\"https://example.com\"&gt;link&lt;/a&gt;",
                                          "&lt;img src=x onerror=\"window.__pwned=1\"&gt;", curves["layout"]["yaxis"]
                                          ["title"]["text"]]
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;" in dims[1]["ticktext"]
    assert params["data"][0]["cells"]["values"][0] == ["&lt;a href=\"https://example.com\"&gt;link&lt;/a&gt;"]
    assert drift["data"][0]["x"] == ["&lt;img src=x onerror=\"window.__pwned=1\"&gt;.&lt;a href=\"https://example.com\""
                                     "&gt;link&lt;/a&gt;"]
    assert figures._text("a & b <c>") == "a &amp; b &lt;c&gt;"


def test_compare_figures_for_the_sidebar_hold_no_markup(evil_ledger):
    ids = list(nbexp.runs(ledger=str(evil_ledger)).run_id)[::-1]       # oldest first: the named runs, then cells
    c = nbexp.compare(*ids, ledger=str(evil_ledger))
    assert c["metric"] == METRIC
    for name, fig in c["figures"].items():
        assert _has_no_markup(fig), name
    assert [t["name"].split(" ", 1)[1] for t in c["figures"]["curves"]["data"]] == [
        "&lt;/script&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;",
        "&lt;img src=x onerror=\"window.__pwned=1\"&gt;", "&lt;a href=\"https://example.com\"&gt;link&lt;/a&gt;"]


def test_html_review_runs_no_script_and_shows_names_as_text(evil_ledger, tmp_path):
    page = tmp_path / "review.html"
    res = CliRunner().invoke(main, ["--ledger", str(evil_ledger), "review", "--sprint", "today", "--html", str(page)])
    assert res.exit_code == 0, res.output
    text = page.read_text(encoding="utf-8")
    body = text.split("</head>", 1)[1]
    assert "<script>window.__pwned" not in body and "<img src=x" not in body and "<a href=" not in body
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium",
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
        pg = b.new_page()
        errors, dialogs = [], []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        pg.goto(page.as_uri())
        n_figs = pg.locator(".nbexp-figure").count()
        assert n_figs == 3                               # curves, parallel coordinates, drift
        pg.wait_for_function(f"document.querySelectorAll('.nbexp-figure .main-svg').length >= {n_figs}",
                             timeout=30_000)
        pg.wait_for_timeout(500)                         # let an onerror handler fire, had one been made
        assert pg.evaluate("typeof window.__pwned") == "undefined"
        assert pg.locator("a[href='https://example.com']").count() == 0
        assert pg.locator("img[src='x']").count() == 0
        for key in ("curves", "parallel", "drift"):
            assert pg.locator(f".nbexp-figure[data-figure={key}] .main-svg").count() >= 1, key
        svg_text = {key: pg.locator(f".nbexp-figure[data-figure={key}]").text_content()
                    for key in ("curves", "parallel", "drift")}
        for name in EVIL:
            assert name in svg_text["curves"], name            # legend: the run names, as written
            assert name in svg_text["parallel"], name          # param names and values
            assert name in svg_text["drift"], name             # the drifting columns
        assert "loss" + LINK in svg_text["curves"]             # axis title: the metric name
        assert pg.get_by_role("table", name="Runs").inner_text().count(LINK) >= 1
        assert METRIC in pg.get_by_role("table", name="Best per metric").inner_text()
        b.close()
    assert not errors and not dialogs
