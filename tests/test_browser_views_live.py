# ruff: noqa: F811  (the fixtures imported from test_browser are requested by name)
"""What a new user's LogisticRegression tutorial (C edited, the evaluation in its own cell) shows in the compare
view, in a real `jupyter lab` driven by chromium: three runs' code each against the baseline run (chosen in the
Code diff tab too), ``C`` and ``model.C`` one row and one axis, and a comparison of a run still running that
grows as the run logs, keeping the user's open tab and hidden runs. Fixtures: tests/test_browser.py."""

from __future__ import annotations

import pytest
from test_browser import (  # noqa: F401  (fixtures)
    browser,
    env,
    jp_asyncio_loop,
    jp_server_cleanup,
    lab,
    lab_kernel,
    page,
    shot,
    sidebar_ids,
)
from test_views_tutorial import EVALUATE, LOAD, TRAIN

pytestmark = pytest.mark.browser

NAMES = ("tutorial", "tutorial #2", "tutorial #3")


@pytest.fixture(scope="module")
def kernel(env):
    cells = ["%load_ext nbexp\n%nbexp track tutorial --sample-hz 0", LOAD]
    for c, it in ((0.1, 500), (1.0, 500), (10.0, 900)):
        cells += [TRAIN.format(c=c, it=it), EVALUATE]
    with lab_kernel(env, *cells) as run:
        yield run  # the last run, tutorial #3, is still running: the session's current run


def compare_chart(page, name):
    """The chart ``name`` of the comparison tab on show (not of a refresh still drawing out of sight)."""
    return page.locator(f'.nbexp-compare:visible .nbexp-compare-body:not([aria-hidden]) [data-figure="{name}"]')


def _ids(page) -> dict[str, str]:
    out = sidebar_ids(page, NAMES, 3)
    assert len(out) == 3, out
    return out


def _compare(page, ids, names):
    for name in names:
        page.get_by_role("checkbox", name=f"Select run {ids[name]}").check()
    page.get_by_role("button", name="Compare selected runs").click()


def test_three_runs_code_each_against_the_baseline_and_c_once(page, kernel, tmp_path):
    from playwright.sync_api import expect

    ids = _ids(page)
    _compare(page, ids, NAMES)
    view = page.locator(".nbexp-compare:visible")
    diff = view.get_by_role("table", name="Param diff")
    expect(diff).to_be_visible(timeout=30_000)
    # C = 0.1 then LogisticRegression(C=C): one row named by both, not C and model.C apart
    expect(diff.locator("tbody tr td:first-child")).to_have_text(["C / model.C", "model.max_iter"])
    view.get_by_role("tab", name="Code diff").click()
    code = view.get_by_role("region", name="Code diff")
    first, second, third = (ids[n] for n in NAMES)
    middle = code.get_by_role("region", name=f"Run {second} (tutorial #2) against {first}")
    last = code.get_by_role("region", name=f"Run {third} (tutorial #3) against {first}")
    expect(middle).to_contain_text("+C = 1.0", timeout=30_000)  # the middle run's edit, not only the last's
    expect(last).to_contain_text("+C = 10.0")
    expect(code).not_to_contain_text("In[")
    code.scroll_into_view_if_needed()
    shot(page, "tutorial-code-three", tmp_path)
    # the baseline chosen in the Code diff tab: the others against it
    view.get_by_role("combobox", name="Baseline run").select_option(third)
    against = code.get_by_role("region", name=f"Run {first} (tutorial) against {third}")
    expect(against).to_contain_text("-C = 10.0", timeout=30_000)
    expect(code.get_by_role("region", name=f"Run {second} (tutorial #2) against {third}")).to_be_visible()
    expect(code.get_by_role("region", name=f"against {first}")).to_have_count(0)
    view.get_by_role("tab", name="Parallel coordinates").click()
    expect(view.get_by_role("checkbox", name="Axis C / model.C")).to_be_checked(timeout=30_000)
    expect(view.get_by_role("checkbox", name="Axis model.C", exact=True)).to_have_count(0)
    expect(compare_chart(page, "parallel")).to_contain_text("C / model.C (log)")
    expect(view.get_by_role("combobox", name="Scatter param").locator("option")).to_have_text(
        ["C / model.C", "model.max_iter"]
    )
    shot(page, "tutorial-parallel", tmp_path)
    # what matters across the sprint: three runs rank nothing, and the view says so instead of a ranking
    view.get_by_role("button", name="Explain").click()
    matters = view.get_by_label("What matters across the sprint")
    expect(matters).to_contain_text(
        "3 runs have train_acc: importance needs 4 or more runs with different values of train_acc", timeout=60_000
    )
    expect(view.get_by_role("table", name="Param importance")).to_have_count(0)
    matters.scroll_into_view_if_needed()
    shot(page, "tutorial-importance", tmp_path)


def _points(page, rid: str) -> int:
    """How many points the Charts tab's loss chart draws for run ``rid``."""
    return compare_chart(page, "grid").evaluate(
        f"n => n.data.filter(t => t.legendgroup === '{rid}' && t.type === 'scatter')"
        ".reduce((k, t) => k + t.x.length, 0)"
    )


def test_a_comparison_with_a_running_run_grows_as_it_logs(page, kernel, tmp_path):
    """Last in this module: it logs into the running run."""
    from playwright.sync_api import expect

    ids = _ids(page)
    running = ids["tutorial #3"]
    kernel("for i in range(5):\n    nbexp.log(loss=1.0 / (i + 1))")
    _compare(page, ids, ("tutorial #2", "tutorial #3"))
    view = page.locator(".nbexp-compare:visible")
    view.get_by_role("tab", name="Charts").click()
    grid = compare_chart(page, "grid")
    expect(grid.locator(".annotation-text")).to_contain_text(["loss"], timeout=30_000)
    page.wait_for_function(  # the loss curve as logged so far
        f"() => [...document.querySelectorAll('.nbexp-compare [data-figure=grid]')].some(n => n.data && "
        f"n.data.some(t => t.legendgroup === '{running}' && t.type === 'scatter' && t.x.length === 5))",
        timeout=30_000,
    )
    # the user hides the other run: it stays hidden through the refreshes
    grid.locator(".legend .traces", has_text=ids["tutorial #2"]).click()
    expect(grid.locator(".barlayer .point")).to_have_count(1, timeout=30_000)
    page.set_viewport_size({"width": 1400, "height": 500})  # the charts taller than the view: the user scrolls
    node = view.first.element_handle()
    top = node.evaluate("n => { n.scrollTop = n.scrollHeight; return n.scrollTop; }")
    assert top > 0
    kernel("for i in range(5, 12):\n    nbexp.log(loss=1.0 / (i + 1))")
    # no reload, no click: the chart redraws with the new points
    page.wait_for_function(
        f"() => [...document.querySelectorAll('.nbexp-compare [data-figure=grid]')].some(n => n.isConnected && "
        f"n.data && n.data.some(t => t.legendgroup === '{running}' && t.type === 'scatter' && t.x.length === 12))",
        timeout=30_000,
    )
    assert _points(page, running) == 12
    assert node.evaluate("n => n.scrollTop") == top  # the scroll kept
    expect(view.get_by_role("tab", name="Charts")).to_have_attribute("aria-selected", "true")  # the open tab kept
    expect(grid.locator(".barlayer .point")).to_have_count(1)  # the hidden run still hidden
    page.set_viewport_size({"width": 1400, "height": 900})
    metrics = page.get_by_role("tab", name="Params & metrics")
    metrics.last.click()
    table = view.get_by_role("table", name="Metrics")
    expect(table.locator("tr", has_text="loss")).to_contain_text("0.0833", timeout=30_000)  # 1 / 12: the last value
    shot(page, "tutorial-live", tmp_path)
