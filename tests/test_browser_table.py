# ruff: noqa: F811  (the fixtures imported from test_browser are requested by name)
"""The runs table in a real `jupyter lab` driven by chromium (issue 17): opened from the sidebar's Runs
button, sorted by clicking a metric's column header, a column added and removed with the column chooser,
rows grouped by a param, a query that filters and one that errors inline, a row opening its run.
Fixtures: tests/test_browser.py."""

from __future__ import annotations

import re

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
    "for C in (0.001, 0.1, 10.0):\n"
    "    with nbexp.run(f'C={C}', C=C):\n"
    "        for i in range(5):\n"
    "            nbexp.log(train_loss=1.0 / (i + 1) + C / 100)\n"
    "        nbexp.log(test_auc=0.7 + C / 100)\n"
)
COLUMN_WIDTH, HEADER_HEIGHT = 140, 24  # RunsTable.ts


@pytest.fixture(scope="module")
def kernel(env):
    with lab_kernel(env, "%load_ext nbexp\n%nbexp track sweep --sample-hz 0", SWEEP) as run:
        yield run


def _columns(grid) -> list[str]:
    import json

    return json.loads(grid.get_attribute("data-columns") or "[]")


def _click_cell(grid, column: int, row: int | None = None) -> None:
    """Click a column's header (row None) or a body row: the grid draws on a canvas, columns of fixed width."""
    x = column * COLUMN_WIDTH + COLUMN_WIDTH // 2
    y = HEADER_HEIGHT // 2 if row is None else HEADER_HEIGHT + 22 * row + 11
    grid.click(position={"x": x, "y": y})


def test_runs_table_sorts_chooses_columns_groups_and_queries(page, kernel, tmp_path):
    from playwright.sync_api import expect

    expect(page.get_by_role("list", name="Runs").locator("li.nbexp-run")).to_have_count(4, timeout=30_000)
    page.get_by_role("button", name="Open the runs table").click()
    grid = page.get_by_role("grid", name="Runs table")
    status = page.get_by_role("status", name="Table status")
    expect(status).to_contain_text("4 runs", timeout=30_000)
    expect(grid).to_have_attribute("aria-rowcount", "4")

    # add a column, then remove one
    page.get_by_role("button", name="Choose columns").click()
    page.get_by_role("checkbox", name="metrics.test_auc", exact=True).check()
    expect(grid).to_have_attribute("data-columns", '["name","status","start_time","duration","metrics.test_auc"]')
    page.get_by_role("checkbox", name="duration", exact=True).uncheck()
    expect(grid).to_have_attribute("data-columns", '["name","status","start_time","metrics.test_auc"]')
    page.get_by_role("button", name="Choose columns").click()

    # sort by the metric: its header, clicked on the canvas; the first row is then the best run
    _click_cell(grid, _columns(grid).index("metrics.test_auc"))
    expect(status).to_contain_text("sorted by metrics.test_auc descending")
    shot(page, "runs-table-sorted", tmp_path)
    _click_cell(grid, 0, row=0)
    best = page.get_by_role("tab", name=re.compile(r"^Run [0-9a-f]+$"))
    expect(best).to_be_visible(timeout=30_000)
    expect(page.locator(".jp-MainAreaWidget:visible")).to_contain_text("C=10.0", timeout=30_000)
    page.get_by_role("tab", name="Runs (today)").click()
    _click_cell(grid, _columns(grid).index("metrics.test_auc"))  # again: ascending
    expect(status).to_contain_text("sorted by metrics.test_auc ascending")

    # group by a param
    page.get_by_role("combobox", name="Group by").select_option("params.C")
    groups = page.get_by_role("list", name="Groups").locator("li")
    expect(groups).to_have_text(["params.C = 0.001: 1", "params.C = 0.1: 1", "params.C = 10: 1", "params.C = none: 1"])
    expect(grid).to_have_attribute("data-columns", '["group","name","status","start_time","metrics.test_auc"]')
    shot(page, "runs-table-grouped", tmp_path)
    page.get_by_role("combobox", name="Group by").select_option("")

    # a query that filters, then one that errors inline at its position
    box = page.get_by_role("searchbox", name="Query runs")
    box.fill("params.C >= 0.1 and metrics.test_auc > 0.7 and status = finished")
    box.press("Enter")
    expect(status).to_contain_text("2 runs")
    expect(grid).to_have_attribute("aria-rowcount", "2")
    box.fill("params.C >= ")
    box.press("Enter")
    error = page.get_by_role("alert", name="Query error")
    expect(error).to_contain_text("expected a value after >=")
    expect(error).to_contain_text("            ^")  # under the end of the text
    expect(box).to_have_attribute("aria-invalid", "true")
    shot(page, "runs-table-error", tmp_path)
    box.fill("")
    box.press("Enter")
    expect(error).to_have_text("")
    expect(status).to_contain_text("4 runs")

    # what matters across the sprint: three scored runs are too few to rank, a fourth makes C the first
    matters = page.get_by_label("What matters")
    expect(matters).to_contain_text("3 runs have test_auc: importance needs 4 or more")
    kernel("import nbexp\nwith nbexp.run('C=1.0', C=1.0):\n    nbexp.log(test_auc=0.7 + 1.0 / 100)\n%nbexp status")
    box.fill("status = finished")
    box.press("Enter")
    expect(matters).to_contain_text("What matters for test_auc over 4 runs: C 1.00 (Spearman +1.00)", timeout=30_000)
