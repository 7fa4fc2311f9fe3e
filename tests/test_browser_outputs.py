# ruff: noqa: F811  (the fixtures imported from test_browser are requested by name)
"""The run view's Outputs and Artifacts in a real `jupyter lab` driven by chromium (issue 18): a
figure a tracked kernel cell showed is an image the page loads from the blob URL with its login
cookie, an HTML output is shown as text (its markup never runs), a saved model is listed with a
download link. Loads this checkout's build of the lab extension (JUPYTER_PATH). Fixtures:
tests/test_browser.py."""

from __future__ import annotations

import os
import re
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
BUILD = Path(__file__).resolve().parent.parent / "nbexp" / "labextension"
EVIL = "<b>table</b><img src=x onerror=alert(1)>"

if not (BUILD / "package.json").exists():
    pytest.skip("this checkout's lab extension is not built (cd labextension && jlpm build)", allow_module_level=True)


@pytest.fixture(scope="module")
def kernel(env):
    with lab_kernel(
        env,
        "%load_ext nbexp\n%nbexp track shown --sample-hz 0",
        "import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2, 4])\nplt.title('loss')\nplt.show()",
        f"from IPython.display import HTML, display\ndisplay(HTML({EVIL!r}))",
        "import joblib\njoblib.dump({'weights': [1, 2, 3]}, 'model.joblib')",
        "from sklearn.linear_model import LogisticRegression\nmodel = LogisticRegression(C=0.1, max_iter=200)\n"
        "model.fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])",
        "print('epoch 1 done')",
    ) as run:
        yield run


def test_run_view_shows_figures_html_as_text_and_artifacts(page, kernel, tmp_path):
    from playwright.sync_api import expect

    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs.first).to_be_visible(timeout=30_000)
    rid = runs.first.get_attribute("data-run-id")
    page.get_by_role("button", name=f"Show run {rid}").click()
    view = page.locator(f"#nbexp-run-{rid}.nbexp-run-view")
    img = view.locator("img.nbexp-output-image")
    expect(img).to_have_count(1, timeout=30_000)
    img.scroll_into_view_if_needed()  # below the run's charts: a lazy image loads once the user scrolls to it
    page.wait_for_function(
        "n => n.complete && n.naturalWidth > 0", arg=img.element_handle(), timeout=30_000
    )  # the blob GET worked with the page's cookie
    assert img.evaluate("n => n.naturalWidth") > 100
    texts = view.locator("pre.nbexp-output-text")
    expect(texts.filter(has_text="onerror=alert(1)")).to_have_count(1, timeout=30_000)
    assert view.locator('img[src="x"]').count() == 0 and page.locator('img[src="x"]').count() == 0
    assert view.locator("b", has_text="table").count() == 0
    artifacts = view.get_by_role("list", name="Artifacts")
    expect(artifacts).to_contain_text("model.joblib")
    link = artifacts.get_by_role("link", name="download")
    href = link.get_attribute("href")
    assert href and "/nbexp/api/blobs/" in href
    view.locator("h3", has_text="Outputs").scroll_into_view_if_needed()
    shot(page, "run-outputs", Path(os.environ.get("NBEXP_SCREENSHOTS", tmp_path)))
    artifacts.scroll_into_view_if_needed()
    shot(page, "run-artifacts", Path(os.environ.get("NBEXP_SCREENSHOTS", tmp_path)))
    page.wait_for_timeout(500)  # a dialog an onerror handler would open
    assert dialogs == []


def test_run_view_shows_an_estimator_by_its_text_and_labels_printed_output(page, kernel, tmp_path):
    """The user trial: `model.fit(...)` as a cell's last line showed scikit-learn's HTML repr as escaped
    text (`<style>.sk-global {...`). Its text form is what the user reads, labelled Out[n] like the
    notebook; a printed line is labelled as printed, not as a result."""
    from playwright.sync_api import expect

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs.first).to_be_visible(timeout=30_000)
    rid = runs.first.get_attribute("data-run-id")
    page.get_by_role("button", name=f"Show run {rid}").click()
    view = page.locator(f"#nbexp-run-{rid}.nbexp-run-view")
    estimator = view.locator("pre.nbexp-output-result", has_text="LogisticRegression(C=0.1, max_iter=200)")
    expect(estimator).to_have_count(1, timeout=30_000)
    expect(estimator).to_be_visible()
    assert "sk-global" not in estimator.inner_text() and "<style" not in estimator.inner_text()
    cell = estimator.locator("xpath=..")
    expect(cell.locator(".nbexp-output-prompt").first).to_have_text(re.compile(r"^Out\[\d+\]$"))
    printed = view.locator("pre.nbexp-output-stdout", has_text="epoch 1 done")
    expect(printed).to_have_count(1)
    label = printed.locator("xpath=preceding-sibling::div[contains(@class, 'nbexp-output-prompt')][1]")
    expect(label).to_have_text(re.compile(r"printed"))
    assert not label.inner_text().startswith("Out[")
    estimator.evaluate("n => n.scrollIntoView({block: 'center'})")
    shot(page, "run-outputs-estimator", Path(os.environ.get("NBEXP_SCREENSHOTS", tmp_path)))
