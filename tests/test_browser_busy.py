"""The sidebar while another process holds the ledger's write lock: it says so and retries.

Runs the lab extension built in this checkout (``nbexp/labextension`` beside the imported
``nbexp``), linked into the test's own Jupyter data folder, searched first here."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import test_browser
from test_browser import browser, jp_asyncio_loop, jp_server_cleanup, kernel, lab, page  # noqa: F401

import nbexp

pytestmark = pytest.mark.browser
BUILT = Path(nbexp.__file__).parent / "labextension"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if not (BUILT / "package.json").exists():
        pytest.skip("the lab extension is not built in this checkout (cd labextension && jlpm build)")
    e = test_browser.env.__wrapped__(tmp_path_factory)
    (Path(e["JUPYTER_DATA_DIR"]) / "labextensions").mkdir()
    (Path(e["JUPYTER_DATA_DIR"]) / "labextensions" / "nbexp").symlink_to(BUILT)
    e["JUPYTER_PREFER_ENV_PATH"] = "0"  # the user data folder before the venv's share/jupyter
    e["NBEXP_BUSY_TIMEOUT_MS"] = "300"  # the server gives up on the lock quickly: 503
    return e


def test_star_while_the_ledger_is_busy_says_so_and_retries(page, env, tmp_path):  # noqa: F811 (a fixture)
    from playwright.sync_api import expect

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs.first).to_be_visible(timeout=30_000)
    rid = runs.first.get_attribute("data-run-id")
    other = sqlite3.connect(Path(env["NBEXP_HOME"]) / "ledger.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a busy writer in another process
    try:
        page.get_by_role("button", name=f"Star run {rid}").click()
        expect(page.get_by_role("status").first).to_contain_text("ledger busy, retrying", timeout=15_000)
        test_browser.shot(page, "sidebar-ledger-busy", tmp_path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    expect(page.get_by_role("button", name=f"Star run {rid}")).to_have_attribute("aria-pressed", "true", timeout=15_000)
    expect(page.get_by_role("status").first).not_to_contain_text("ledger busy")
