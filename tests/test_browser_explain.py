# ruff: noqa: F811  (the fixtures imported from test_browser are requested by name)
"""The compare view's Explain action in a real `jupyter lab` driven by chromium: the ranked factors of the
last run against the first. Fixtures: tests/test_browser.py."""

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
)

pytestmark = pytest.mark.browser

SWEEP = (
    "import nbexp\n"
    "for C, penalty in ((0.001, None), (0.01, 'l2'), (0.1, 'l2'), (1.0, 'l2'), (10.0, 'l2')):\n"
    "    with nbexp.run(f'C={C}', C=C, penalty=penalty, solver='lbfgs'):\n"
    "        nbexp.log(test_auc=0.7 + C / 100)\n"
)


@pytest.fixture(scope="module")
def kernel(env):
    with lab_kernel(env, "%load_ext nbexp\n%nbexp track sweep --sample-hz 0", SWEEP) as run:
        yield run


def test_explain_action_in_the_compare_view(page, tmp_path):
    from playwright.sync_api import expect

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs).to_have_count(6, timeout=30_000)
    ids = {}
    for i in range(runs.count()):
        text = runs.nth(i).inner_text()
        for name in ("C=0.001", "C=10.0"):
            if f"{name} (" in text:
                ids[name] = runs.nth(i).get_attribute("data-run-id")
    for name in ("C=0.001", "C=10.0"):
        page.get_by_role("checkbox", name=f"Select run {ids[name]}").check()
    page.get_by_role("button", name="Compare selected runs").click()
    page.get_by_role("button", name="Explain").last.click()
    result = page.get_by_label("Explanation").last
    expect(result).to_contain_text("test_auc +0.1", timeout=30_000)
    factors = page.get_by_role("list", name="Factors, first cause first").last.locator("li")
    expect(factors).to_have_count(2)
    expect(factors).to_contain_text(["[param] param C 0.001 -> 10", "[param] param penalty None -> 'l2'"])
    expect(result).not_to_contain_text("--ablate")  # params passed to nbexp.run: no replay can revert them
    # what matters across the sprint's five scored runs: C, whose rank order is test_auc's
    importance = page.get_by_role("table", name="Param importance").last
    expect(importance.locator("tbody tr").first).to_contain_text("C", timeout=30_000)
    expect(importance.locator("tbody tr").first.locator("td").nth(2)).to_have_text("+1.00")
    shot(page, "compare-explain", tmp_path)
