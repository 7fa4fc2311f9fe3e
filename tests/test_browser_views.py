# ruff: noqa: F811  (the fixtures imported from test_browser are requested by name)
"""The sidebar's views a W&B / MLflow user reads, in a real `jupyter lab` driven by chromium: the main
metric picked per sprint (and kept), comparison tabs named by what differs, the metric table's best
run and baseline deltas, and charts that say why they are empty. Fixtures: tests/test_browser.py."""

from __future__ import annotations

import pytest
from test_browser import (  # noqa: F401  (fixtures)
    browser,
    env,
    jp_asyncio_loop,
    jp_server_cleanup,
    lab,
    page,
    set_theme,
    shot,
)

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
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(env={k: v for k, v in env.items() if not k.startswith("_")}, cwd=env["_ROOT"])
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)

    def run(code):
        reply = kc.execute_interactive(code, timeout=120, output_hook=lambda m: None)
        assert reply["content"]["status"] == "ok", reply["content"]

    run("%load_ext nbexp\n%nbexp track sweep --sample-hz 0")
    run(SWEEP)
    yield run
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def _sweep_ids(page):
    from playwright.sync_api import expect

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs).to_have_count(4, timeout=30_000)
    by_name = {}
    for i in range(runs.count()):
        text = runs.nth(i).inner_text()
        for name in ("C=0.001", "C=0.1", "C=10.0"):
            if f"{name} (" in text:
                by_name[name] = runs.nth(i).get_attribute("data-run-id")
    return by_name


def _chart(page, name):
    """The chart ``name`` of the comparison tab on show."""
    return page.locator(f'.nbexp-compare:visible [data-figure="{name}"]')


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
    expect(_chart(page, "drift")).to_contain_text("no data summaries were recorded for these runs")
    page.get_by_role("tab", name="System").last.click()
    expect(_chart(page, "system")).to_contain_text("no system samples were recorded")
    page.get_by_role("tab", name="Parallel coordinates").last.click()
    chart = _chart(page, "parallel")
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
        expect(_chart(page, "parallel").locator(".main-svg").first).to_be_visible(timeout=30_000)
        shot(page, "compare-parallel-dark", tmp_path)
    finally:
        set_theme(lab, "JupyterLab Light")
