# ruff: noqa: F811  (the fixtures imported from test_browser are requested by name)
"""The sidebar's views a W&B / MLflow user reads, in a real `jupyter lab` driven by chromium: the main
metric picked per sprint (and kept), comparison tabs named by what differs, the metric table's best
run and baseline deltas, charts that say why they are empty, a chart per metric (single values as
bars, a run's colour the same in every chart, hidden everywhere at once), chosen axes, scatter and
baseline, run details (grouped params, filter, highlighted cells, Compare with best), drift overlays
and the per-cell code diff. Fixtures: tests/test_browser.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_browser import (  # noqa: F401  (fixtures)
    browser,
    compare_chart,
    env,
    jp_asyncio_loop,
    jp_server_cleanup,
    lab,
    lab_kernel,
    page,
    set_theme,
    shot,
    sidebar_ids,
)

import nbexp

pytestmark = pytest.mark.browser

SWEEP = (
    "import nbexp\n"
    "for C, penalty in ((0.001, None), (0.1, 'l2'), (10.0, 'l2')):\n"
    "    with nbexp.run(f'C={C}', C=C, penalty=penalty, solver='lbfgs'):\n"
    "        for i in range(20):\n"
    "            nbexp.log(train_loss=1.0 / (i + 1) + C / 100)\n"
    "        nbexp.log(test_auc=0.7 + C / 100)\n"
)


@pytest.fixture(scope="module")
def kernel(env):
    with lab_kernel(env, "%load_ext nbexp\n%nbexp track sweep --sample-hz 0", SWEEP) as run:
        yield run


def _sweep_ids(page):
    return sidebar_ids(page, ("C=0.001", "C=0.1", "C=10.0"), 4)


def test_main_metric_is_picked_per_sprint_and_kept(page, tmp_path):
    from playwright.sync_api import expect

    ids = _sweep_ids(page)
    pick = page.get_by_role("combobox", name="Main metric")
    expect(pick).to_have_value("test_auc")  # held by as many runs as train_loss: the evaluation metric
    row = page.locator(f'li[data-run-id="{ids["C=10.0"]}"]')
    expect(row).to_contain_text("test_auc 0.8")
    pick.select_option("train_loss")
    expect(row).to_contain_text("train_loss 0.15")
    expect(page.get_by_role("status")).to_contain_text("metric: train_loss")
    shot(page, "main-metric", tmp_path)
    page.reload()  # remembered for this sprint
    page.locator('.jp-SideBar.jp-mod-left li[data-id="nbexp-sidebar"]').click(timeout=60_000)
    expect(page.get_by_role("combobox", name="Main metric")).to_have_value("train_loss", timeout=30_000)
    expect(page.locator(f'li[data-run-id="{ids["C=10.0"]}"]')).to_contain_text("train_loss 0.15")
    page.get_by_role("combobox", name="Main metric").select_option("test_auc")


def test_compare_tabs_named_by_what_differs_best_marked_deltas_vs_baseline(page, lab, tmp_path):
    from playwright.sync_api import expect

    ids = _sweep_ids(page)
    for name in ("C=0.001", "C=10.0"):
        page.get_by_role("checkbox", name=f"Select run {ids[name]}").check()
    page.get_by_role("button", name="Compare selected runs").click()
    expect(page.get_by_role("tab", name="C=0.001 vs C=10")).to_be_visible(timeout=30_000)
    page.get_by_role("checkbox", name=f"Select run {ids['C=0.1']}").check()
    page.get_by_role("button", name="Compare selected runs").click()
    three = page.get_by_role("tab", name="C=0.001 vs C=0.1 vs C=10")
    expect(three).to_be_visible(timeout=30_000)
    base = ids["C=0.001"]
    metrics = page.get_by_role("table", name="Metrics").last
    expect(metrics).to_be_visible(timeout=30_000)
    header = metrics.locator("th")
    expect(header).to_contain_text(["metric", base, ids["C=0.1"], ids["C=10.0"], f"Δ {ids['C=0.1']} vs {base}"])
    auc = metrics.locator("tr", has_text="test_auc")
    expect(auc).to_contain_text("★ 0.8")  # highest auc: C=10
    loss = metrics.locator("tr", has_text="train_loss")
    expect(loss.locator("td").nth(1)).to_contain_text("★")  # lowest loss: C=0.001, the baseline
    shot(page, "compare-three", tmp_path)
    for tab in ("Parallel coordinates", "Data", "System"):
        page.get_by_role("tab", name=tab).last.click()
        expect(page.locator(".nbexp-compare:visible .nbexp-chart .main-svg").last).to_be_visible(timeout=30_000)
        shot(page, f"compare-{tab.split()[0].lower()}", tmp_path)
    page.get_by_role("tab", name="Data").last.click()
    expect(compare_chart(page, "drift")).to_contain_text("no data summaries were recorded for these runs")
    page.get_by_role("tab", name="System").last.click()
    expect(compare_chart(page, "system")).to_contain_text("no system samples were recorded")
    page.get_by_role("tab", name="Parallel coordinates").last.click()
    chart = compare_chart(page, "parallel")
    expect(chart).to_contain_text("C (log)", timeout=30_000)
    expect(chart).to_contain_text("none")
    set_theme(lab, "JupyterLab Dark")
    try:
        page.reload()
        page.locator('.jp-SideBar.jp-mod-left li[data-id="nbexp-sidebar"]').click(timeout=60_000)
        _sweep_ids(page)
        for rid in ids.values():
            page.get_by_role("checkbox", name=f"Select run {rid}").check()
        page.get_by_role("button", name="Compare selected runs").click()
        page.get_by_role("tab", name="Parallel coordinates").last.click()
        expect(compare_chart(page, "parallel").locator(".main-svg").first).to_be_visible(timeout=30_000)
        shot(page, "compare-parallel-dark", tmp_path)
    finally:
        set_theme(lab, "JupyterLab Light")


def _compare(page, ids, names):
    for name in names:
        page.get_by_role("checkbox", name=f"Select run {ids[name]}").check()
    page.get_by_role("button", name="Compare selected runs").click()


def _figure_runs(page, name):
    """``{run id: colour}`` of the traces plotly drew in the chart ``name``, and the runs it shows."""
    return compare_chart(page, name).evaluate(
        "n => n._fullData.filter(t => t.legendgroup).map(t => "
        "[t.legendgroup, (t.marker && t.marker.color) || (t.line && t.line.color), t.visible, t.type])"
    )


def test_a_chart_per_metric_bars_for_single_values_colours_match_hidden_everywhere(page, tmp_path):
    from playwright.sync_api import expect

    ids = _sweep_ids(page)
    _compare(page, ids, ("C=0.001", "C=0.1", "C=10.0"))
    page.get_by_role("tab", name="Charts").last.click()
    grid = compare_chart(page, "grid")
    expect(grid.locator(".main-svg").first).to_be_visible(timeout=30_000)
    # one chart per metric, titled by it; test_auc (one value per run) as three bars, train_loss as lines
    expect(grid.locator(".annotation-text")).to_have_text(["test_auc", "train_loss"])
    expect(grid.locator(".barlayer .point")).to_have_count(3)
    expect(grid.locator(".scatterlayer .trace")).to_have_count(3)
    expect(grid.locator(".legend .traces")).to_have_count(3)  # one legend, a run listed once
    shot(page, "compare-charts", tmp_path)
    grid_colours = {}
    for rid, colour, _, _ in _figure_runs(page, "grid"):
        grid_colours.setdefault(rid, set()).add(colour)
    assert set(grid_colours) == set(ids.values()) and all(len(c) == 1 for c in grid_colours.values())
    assert len({next(iter(c)) for c in grid_colours.values()}) == 3
    page.get_by_role("tab", name="Parallel coordinates").last.click()
    expect(compare_chart(page, "scatter").locator(".main-svg").first).to_be_visible(timeout=30_000)
    scatter = {rid: colour for rid, colour, _, _ in _figure_runs(page, "scatter")}
    assert scatter == {rid: next(iter(c)) for rid, c in grid_colours.items()}  # the same colour for a run
    # parallel coordinates: each run's line in that colour too (not a colour scale of the metric)
    expect(compare_chart(page, "parallel").locator(".main-svg").first).to_be_visible(timeout=30_000)
    assert _parallel_lines(page) == scatter
    shot(page, "compare-parallel-run-colours", tmp_path)
    # hide C=10 in the charts' legend: it is gone from every chart of the comparison
    page.get_by_role("tab", name="Charts").last.click()
    expect(grid.locator(".legend .traces")).to_have_count(3, timeout=30_000)
    grid.locator(".legend .traces", has_text=ids["C=10.0"]).click()
    expect(grid.locator(".barlayer .point")).to_have_count(2)
    page.get_by_role("tab", name="Parallel coordinates").last.click()
    expect(compare_chart(page, "scatter").locator(".scatterlayer .point")).to_have_count(2, timeout=30_000)
    hidden = [rid for rid, _, visible, _ in _figure_runs(page, "scatter") if visible == "legendonly"]
    assert hidden == [ids["C=10.0"]]
    lines = _parallel_lines(page)  # its parallel-coordinates line drawn transparent, the others as they were
    assert lines[ids["C=10.0"]] == "rgba(0,0,0,0)"
    assert {k: v for k, v in lines.items() if k != ids["C=10.0"]} == {
        k: v for k, v in scatter.items() if k != ids["C=10.0"]
    }


def _parallel_lines(page) -> dict:
    """``{run id: colour}`` of the lines of the parallel-coordinates chart on show: line i is run ``meta.runs[i]``,
    coloured by the flat band of the colour scale its value falls in."""
    runs, scale, values, lo, hi = compare_chart(page, "parallel").evaluate(
        "n => { const t = n.data[0]; return [t.meta.runs, t.line.colorscale, t.line.color, t.line.cmin, t.line.cmax]; }"
    )
    out = {}
    for rid, v in zip(runs, values):
        at = (v - lo) / (hi - lo)
        out[rid] = next(c1 for (a, c1), (b, c2) in zip(scale, scale[1:]) if a <= at <= b and a < b and c1 == c2)
    return out


def test_parallel_params_scatter_and_baseline_are_chosen(page, tmp_path):
    from playwright.sync_api import expect

    ids = _sweep_ids(page)
    _compare(page, ids, ("C=0.001", "C=0.1", "C=10.0"))
    page.get_by_role("combobox", name="Baseline run").last.select_option(ids["C=0.1"])
    metrics = page.get_by_role("table", name="Metrics").last
    expect(metrics.locator("th").last).to_have_text(f"Δ {ids['C=10.0']} vs {ids['C=0.1']}", timeout=30_000)
    auc = metrics.locator("tr", has_text="test_auc")
    expect(auc.locator("td").last).to_have_text("0.099")  # 0.8 - 0.701
    page.get_by_role("tab", name="Parallel coordinates").last.click()
    par = compare_chart(page, "parallel")
    expect(par).to_contain_text("penalty", timeout=30_000)
    page.get_by_role("checkbox", name="Axis penalty").last.uncheck()
    expect(par).not_to_contain_text("penalty", timeout=30_000)
    expect(par).to_contain_text("C (log)")
    for choice in ("train_loss", "test_auc", "train_loss"):  # chosen again while drawn: the last choice shows, once
        page.get_by_role("combobox", name="Metric").last.select_option(choice)
    expect(compare_chart(page, "scatter")).to_contain_text("train_loss against C", timeout=30_000)
    expect(compare_chart(page, "scatter")).to_have_count(1)
    expect(compare_chart(page, "parallel")).to_have_count(1)
    expect(compare_chart(page, "scatter").locator(".scatterlayer .point")).to_have_count(3)
    compare_chart(page, "scatter").scroll_into_view_if_needed()
    shot(page, "compare-parallel-scatter", tmp_path)


def test_run_details_grouped_params_filter_charts_and_compare_with_best(page, tmp_path):
    from playwright.sync_api import expect

    ids = _sweep_ids(page)
    page.get_by_role("button", name=f"Show run {ids['C=0.1']}").click()
    view = page.locator(f"#nbexp-run-{ids['C=0.1']}")
    params = view.get_by_role("table", name="Params")
    expect(params).to_contain_text("penalty", timeout=30_000)
    expect(params.locator("tr.nbexp-group").first).to_contain_text("Explicit (3)")
    view.get_by_role("searchbox", name="Filter params").fill("solv")
    expect(params.locator("tbody tr:not(.nbexp-group):visible")).to_have_count(1)
    expect(params.locator("tbody tr:visible", has_text="lbfgs")).to_have_count(1)
    expect(view.get_by_role("status", name="Params shown")).to_contain_text("1 of 3 params")
    view.get_by_role("searchbox", name="Filter params").fill("")
    expect(params.locator("tbody tr:not(.nbexp-group):visible")).to_have_count(3)
    grid = view.locator('[data-figure="grid"]')
    expect(grid.locator(".barlayer .point")).to_have_count(1, timeout=30_000)  # test_auc: one value, a bar
    expect(grid.locator(".annotation-text")).to_have_text(["test_auc", "train_loss"])
    code = view.get_by_role("region", name="Run code")
    expect(code).to_contain_text("nbexp.log(test_auc")
    # coloured by the lab's highlighter: the keyword `for` in its own span
    expect(code.locator("span", has_text="for").first).to_be_visible()
    token = code.locator("pre span").first
    assert token.evaluate("n => getComputedStyle(n).display") == "inline"  # tokens flow as code, not boxes
    shot(page, "run-details", tmp_path)
    best = view.get_by_role("button", name="Compare with best")
    expect(best).to_be_enabled()
    best.click()
    expect(page.get_by_role("tab", name="C=10 vs C=0.1")).to_be_visible(timeout=30_000)


def test_drift_overlay_and_code_diff_without_execution_counts(page, kernel, env, tmp_path):
    """Last in this module: it adds runs on drifting data."""
    from playwright.sync_api import expect
    from test_data import DRIFT_SETUP, TRAIN

    kernel(DRIFT_SETUP)
    kernel("train = load(seed=1)")
    kernel(TRAIN)
    kernel("train = load(shift=1.0, missing=0.2, rare=True, seed=2)")
    kernel(TRAIN)
    ids = _sweep_ids(page)  # the sweep's three runs and the session's run, which trained on load(seed=1)
    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs).to_have_count(5, timeout=30_000)  # and a new run: the same cell on other data
    all_ids = [runs.nth(i).get_attribute("data-run-id") for i in range(5)]
    first = next(rid for rid in all_ids[1:] if rid not in ids.values())
    newest = [first, all_ids[0]]
    # the kernel summarises data in a worker and writes it within a second: the run is listed before its
    # data is in the ledger (and the comparison shows what the ledger holds when it opens)
    ledger = str(Path(env["NBEXP_HOME"]) / "ledger.sqlite")
    for _ in range(150):
        if "a" in {row["column"] for row in nbexp.compare(*newest, ledger=ledger)["drift"]}:
            break
        time.sleep(0.2)
    for rid in newest:
        page.get_by_role("checkbox", name=f"Select run {rid}").check()
    page.get_by_role("button", name="Compare selected runs").click()
    page.get_by_role("tab", name="Data").last.click()
    overlay = compare_chart(page, "drift_hist")
    expect(overlay).to_contain_text("train.a: PSI", timeout=30_000)
    expect(overlay).to_contain_text("KS")
    kinds = overlay.evaluate("n => n._fullData.filter(t => t.xaxis === 'x').map(t => [t.type, t.legendgroup])")
    assert kinds == [["histogram", newest[0]], ["histogram", newest[1]]]
    expect(overlay.locator(".legend .traces")).to_have_count(2)
    # the label column as its classes, side by side in the overlay: shares of 0 and 1 in each run
    y_axis = overlay.evaluate("n => n.layout.annotations.findIndex(a => a.text.startsWith('train.y:'))")
    classes = overlay.evaluate(
        f"n => n._fullData.filter(t => t.xaxis === 'x{y_axis + 1 if y_axis else ''}').map(t => t.x)"
    )
    assert classes == [["0", "1"], ["0", "1"]]
    expect(compare_chart(page, "classes").locator(".barlayer .trace")).to_have_count(2)  # class balance side by side
    shot(page, "compare-drift", tmp_path)
    page.get_by_role("tab", name="Code diff").last.click()
    diff = page.get_by_role("region", name="Code diff").last
    # no cell ids (a kernel driven by jupyter_client): the second load binds the same name, nothing read the first
    # in between, so it is that cell edited; the new run re-ran the training cell at a later execution count: the
    # same cell, not a change
    expect(diff).to_contain_text("Cell 3: changed", timeout=30_000)
    expect(diff).to_contain_text("-train = load(seed=1)")
    expect(diff).to_contain_text("+train = load(shift=1.0, missing=0.2, rare=True, seed=2)")
    expect(diff).to_contain_text("cell 4 the same")
    expect(diff).not_to_contain_text("In[")
    expect(diff.locator(".nbexp-diff-add")).to_have_count(1)
    expect(diff.locator(".nbexp-diff-del")).to_have_count(1)
    assert diff.locator(".nbexp-diff-add span:not(.nbexp-diff-tag)").count() > 1  # highlighted tokens
    shot(page, "compare-code", tmp_path)
