# ruff: noqa: F811  (the fixtures imported from test_browser are requested by name)
"""The compare view's Outputs tab in a real `jupyter lab` driven by chromium (issue 18): two runs of a
notebook whose plot cell was tweaked between them show their loss plots side by side, in one row,
each run's own figure in its own column; a figure only one run showed sits next to a "no figure"
note. Cells carry JupyterLab's cell ids (execute_request metadata ``cellId``), as in a notebook.
Loads this checkout's build of the lab extension (tests/test_browser_outputs.py's ``env``)."""

from __future__ import annotations

import os
from pathlib import Path

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

PLOT = """\
import matplotlib
matplotlib.use("module://matplotlib_inline.backend_inline")
import matplotlib.pyplot as plt
lr = {lr}
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot([1 / (1 + lr * i) for i in range(30)], color={color!r})
ax.set_title("loss, lr={lr}")
plt.show()
"""
MATRIX = "plt.figure(figsize=(3, 3))\nplt.imshow([[40, 2], [5, 33]])\nplt.title('confusion')\nplt.show()"


@pytest.fixture(scope="module")
def kernel(env):
    with lab_kernel(
        env,
        ("%load_ext nbexp\n%nbexp track lr-0.1 --sample-hz 0", "setup"),
        (PLOT.format(lr=0.1, color="tab:blue"), "plot"),
        (MATRIX, "matrix"),
        ("%nbexp new lr-0.9", "new"),
        (PLOT.format(lr=0.9, color="tab:red"), "plot"),  # the same cell, tweaked
        ("%nbexp stop", "stop"),
    ) as run:
        yield run


def test_compare_outputs_shows_each_runs_figure_side_by_side(page, kernel, tmp_path):
    from playwright.sync_api import expect

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs).to_have_count(2, timeout=30_000)
    ids = {
        ("lr-0.1" if "lr-0.1" in runs.nth(i).inner_text() else "lr-0.9"): runs.nth(i).get_attribute("data-run-id")
        for i in range(2)
    }
    for rid in ids.values():
        page.get_by_role("checkbox", name=f"Select run {rid}").check()
    page.get_by_role("button", name="Compare selected runs").click()
    page.get_by_role("tab", name="Outputs").click()
    view = page.locator(".nbexp-compare:visible .nbexp-compare-outputs")
    rows = view.locator(".nbexp-compare-grid-row[data-row]")
    expect(rows).to_have_count(2, timeout=30_000)  # the loss plot's cell, the confusion matrix's
    images = view.locator("img.nbexp-output-image")
    expect(images).to_have_count(3, timeout=30_000)
    for i in range(3):
        page.wait_for_function("n => n.complete && n.naturalWidth > 0", arg=images.nth(i).element_handle())
    # columns follow the compare view's run order; the loss plots share a row, one per run
    order = [c.get_attribute("data-run") for c in rows.first.locator(".nbexp-compare-output").all()]
    assert sorted(order) == sorted(ids.values())
    loss = rows.first.locator("img.nbexp-output-image")
    expect(loss).to_have_count(2)
    left, right = loss.nth(0).bounding_box(), loss.nth(1).bounding_box()
    assert abs(left["y"] - right["y"]) < 2 and right["x"] >= left["x"] + left["width"]  # side by side
    assert loss.nth(0).get_attribute("src") != loss.nth(1).get_attribute("src")  # each run's own figure
    expect(rows.first).not_to_contain_text("same figure in every run")
    # the confusion matrix: only the first run showed it
    matrix = rows.nth(1)
    expect(matrix.locator("img.nbexp-output-image")).to_have_count(1)
    expect(matrix.locator(f'[data-run="{ids["lr-0.9"]}"]')).to_contain_text("no figure in this run")
    expect(matrix.locator(f'[data-run="{ids["lr-0.1"]}"] img')).to_have_count(1)
    shot(page, "compare-outputs", Path(os.environ.get("NBEXP_SCREENSHOTS", tmp_path)))
