# ruff: noqa: F811  (the fixtures imported from test_browser are requested by name)
"""The compare view's Code diff tab in a real `jupyter lab` driven by chromium: two runs of a notebook whose helper
module beside it (``train_utils.py``, under ``%autoreload 2``) was edited between them, no cell changed, show the
module's edit below the cells ("Same code."). Cells carry JupyterLab's cell ids. Loads this checkout's build of
the lab extension (tests/test_browser.py's ``env``)."""

from __future__ import annotations

import os
import time
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

UTILS = (
    "from sklearn.linear_model import LogisticRegression\n\n"
    "def load(X):\n"
    "    return X[:, :10]\n\n"
    "def build_model(C):\n"
    "    return LogisticRegression(C=C, max_iter=3000)\n"
)


@pytest.fixture(scope="module")
def kernel(env):
    utils = Path(env["_ROOT"]) / "train_utils.py"
    utils.write_text(UTILS)
    fit = "model = build_model(C=1.0)\nmodel.fit(load(X), y)"
    evaluate = "acc = model.score(load(X), y)\nprint('accuracy', acc)"
    with lab_kernel(
        env,
        ("%load_ext nbexp\n%nbexp track helpers --sample-hz 0", "setup"),
        ("%load_ext autoreload\n%autoreload 2\nfrom train_utils import build_model, load", "imports"),
        ("from sklearn.datasets import load_breast_cancer\nX, y = load_breast_cancer(return_X_y=True)", "data"),
        (fit, "fit"),
        (evaluate, "eval"),
    ) as run:
        before = utils.stat().st_mtime_ns
        while utils.stat().st_mtime_ns <= before:  # autoreload compares file times
            time.sleep(0.05)
            utils.write_text(UTILS.replace("X[:, :10]", "X[:, :3]"))
        run(fit, "fit")
        run(evaluate, "eval")
        run("%nbexp stop", "stop")
        yield run


def test_compare_shows_an_edit_of_the_notebooks_module(page, kernel, tmp_path):
    from playwright.sync_api import expect

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs).to_have_count(2, timeout=30_000)
    for i in range(2):
        rid = runs.nth(i).get_attribute("data-run-id")
        page.get_by_role("checkbox", name=f"Select run {rid}").check()
    page.get_by_role("button", name="Compare selected runs").click()
    page.get_by_role("tab", name="Code diff").last.click()
    region = page.get_by_role("region", name="Code diff").last
    expect(region).to_contain_text("Same code.", timeout=30_000)  # no cell changed
    modules = region.locator("section", has_text="The notebook's modules")
    expect(modules).to_be_visible()
    expect(modules.get_by_role("heading", name="train_utils.py: changed")).to_be_visible()
    diff = modules.locator("pre.nbexp-diff")
    expect(diff.locator(".nbexp-diff-del")).to_contain_text("return X[:, :10]")
    expect(diff.locator(".nbexp-diff-add")).to_contain_text("return X[:, :3]")
    shot(page, "compare-modules", Path(os.environ.get("NBEXP_SCREENSHOTS", tmp_path)))
