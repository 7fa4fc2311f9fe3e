# ruff: noqa: F811  (the fixtures imported from test_browser are requested by name)
"""What a user trial found in the compare and run views, in a real `jupyter lab` driven by chromium: runs of
two experiments (LogisticRegression runs with C and val_acc, an SGD run with alpha and its own loss)
compared side by side are titled by their names (not "C=0.01 vs C=<absent>"), the System tab lists every
run's aggregates and says why there is no timeline, a param a run lacks is "absent" (not "none") in
parallel coordinates and left out of the scatter, "Compare with best" only against a run holding this run's
metric, and a run's tab is titled by its name. Fixtures: tests/test_browser.py."""

from __future__ import annotations

import re

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
    shot,
    sidebar_ids,
)
from test_figures_views import TRIAL

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def kernel(env):
    with lab_kernel(env, "%load_ext nbexp\n%nbexp track trial --sample-hz 0", TRIAL) as run:
        yield run


def _ids(page) -> dict[str, str]:
    out = sidebar_ids(page, ("lr C=0.01", "lr C=1.0", "sgd-a"), 3)
    assert len(out) == 3, out
    return out


def test_runs_of_two_experiments_compared_by_name_system_per_run_absent_params(page, kernel, tmp_path):
    from playwright.sync_api import expect

    ids = _ids(page)
    for name in ("lr C=0.01", "sgd-a"):
        page.get_by_role("checkbox", name=f"Select run {ids[name]}").check()
    page.get_by_role("button", name="Compare selected runs").click()
    expect(page.get_by_role("tab", name="lr C=0.01 vs sgd-a")).to_be_visible(timeout=30_000)
    assert page.get_by_role("tab", name=re.compile("absent")).count() == 0
    page.get_by_role("tab", name="System").last.click()
    system = page.locator(".nbexp-compare:visible").get_by_role("table", name="System per run")
    expect(system).to_be_visible(timeout=30_000)
    expect(system.locator("th")).to_contain_text(["run", "CPU mean %", "peak RSS MB"])
    rows = system.locator("tbody tr")
    expect(rows).to_have_count(2)  # every run, not only one with a sample
    expect(rows.nth(0)).to_contain_text(f"lr C=0.01 ({ids['lr C=0.01']})")
    expect(rows.nth(1)).to_contain_text(f"sgd-a ({ids['sgd-a']})")
    for i in range(2):
        assert re.search(r"\d", rows.nth(i).locator("td").nth(1).inner_text())  # its CPU mean, recorded
    expect(compare_chart(page, "system")).to_contain_text("no system samples were recorded")
    assert compare_chart(page, "system").locator(".xtick").count() == 0  # no blank axes
    shot(page, "trial-compare-system", tmp_path)
    page.get_by_role("tab", name="Parallel coordinates").last.click()
    par = compare_chart(page, "parallel")
    expect(par).to_contain_text("absent", timeout=30_000)
    expect(par).not_to_contain_text("none")
    scatter = compare_chart(page, "scatter")
    expect(scatter).to_contain_text("not drawn, no C", timeout=30_000)
    assert scatter.locator(".scatterlayer .point").count() <= 1  # the run without C has no point
    shot(page, "trial-compare-parallel", tmp_path)


def test_compare_with_best_only_against_a_run_with_this_runs_metric_and_tab_named(page, kernel, tmp_path):
    from playwright.sync_api import expect

    ids = _ids(page)
    page.get_by_role("button", name=f"Show run {ids['sgd-a']}").click()
    view = page.locator(f"#nbexp-run-{ids['sgd-a']}")
    best = view.get_by_role("button", name="Compare with best")
    expect(best).to_be_disabled(timeout=30_000)
    expect(best).to_have_attribute("title", re.compile("no other run of sprint .* recorded sgd_loss"))
    expect(page.get_by_role("tab", name="sgd-a", exact=True)).to_be_visible()  # its name, not "Run 17de66"
    shot(page, "trial-run-sgd", tmp_path)
    page.get_by_role("button", name=f"Show run {ids['lr C=0.01']}").click()
    view = page.locator(f"#nbexp-run-{ids['lr C=0.01']}")
    best = view.get_by_role("button", name="Compare with best")
    expect(best).to_be_enabled(timeout=30_000)
    expect(best).to_have_attribute("title", re.compile("lr C=1.0.*val_acc"))
    best.click()
    expect(page.get_by_role("tab", name="C=1 vs C=0.01")).to_be_visible(timeout=30_000)
