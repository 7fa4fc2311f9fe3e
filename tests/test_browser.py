"""The sidebar in a real browser: Debian's chromium driven by Playwright against a real
`jupyter lab` on 127.0.0.1, with a ledger filled by a real kernel."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import chromium
import pytest
from jupyter_client.manager import KernelManager

pytestmark = pytest.mark.browser
LABEXT = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "nbexp" / "package.json"
BUILD = Path(__file__).resolve().parent.parent / "nbexp" / "labextension"  # this checkout's build

if not chromium.installed():
    pytest.skip("Debian's chromium is not installed (make test installs it)", allow_module_level=True)
if not LABEXT.exists():
    pytest.skip("the lab extension is not built/installed (make env builds it)", allow_module_level=True)


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """pytest-jupyter's autouse loop fixtures would fight Playwright's own loop: not here."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    e = dict(os.environ)
    for var in (
        "HOME",
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
        "IPYTHONDIR",
    ):
        (root / var.lower()).mkdir()
        e[var] = str(root / var.lower())
    e["NBEXP_HOME"] = str(root / "nbexp")
    e.pop("NBEXP_LEDGER", None)
    settings = root / "jupyterlab_settings_dir" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    if (BUILD / "package.json").exists():  # this checkout's build wins over the one installed in the environment
        (root / "jupyter_path" / "labextensions").mkdir(parents=True)
        (root / "jupyter_path" / "labextensions" / "nbexp").symlink_to(BUILD)
        e["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root / "jupyter_path"), os.environ.get("JUPYTER_PATH")]))
    e["_ROOT"] = str(root)
    return e


@contextlib.contextmanager
def lab_kernel(env, *cells):
    """A real kernel in the lab's folder and environment that has run ``cells`` (each a code string, or
    ``(code, cell_id)`` to send the cell's id as JupyterLab does); yields ``run(code, cell_id=None)``."""
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env={k: v for k, v in env.items() if not k.startswith("_")}, cwd=env["_ROOT"])
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)

        def run(code, cell_id=None):
            if cell_id is None:
                reply = kc.execute_interactive(code, timeout=120, output_hook=lambda m: None)
            else:
                content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
                msg = kc.session.msg("execute_request", {**content, "allow_stdin": False}, metadata={"cellId": cell_id})
                kc.shell_channel.send(msg)
                reply = kc.get_shell_msg(timeout=120)
                while reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                    reply = kc.get_shell_msg(timeout=120)
            assert reply["content"]["status"] == "ok", reply["content"]

        for cell in cells:
            run(*cell) if isinstance(cell, tuple) else run(cell)
        yield run
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel(env):
    with lab_kernel(
        env,
        "%load_ext nbexp\n%nbexp track baseline --sample-hz 0",
        "LR = 0.1\nDEPTH = 4",
        "import nbexp\nfor i in range(40):\n    nbexp.log(loss=1.0 / (i + DEPTH) + LR)\nval_acc = 0.9 - LR / 10",
        "LR = 0.3",
        "import nbexp\nfor i in range(40):\n    nbexp.log(loss=1.0 / (i + DEPTH) + LR)\nval_acc = 0.9 - LR / 10",
    ) as run:
        yield run


@pytest.fixture(scope="module")
def lab(env, kernel):
    port, token = free_port(), secrets.token_hex(16)
    log = open(Path(env["_ROOT"]) / "lab.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={env['_ROOT']}",
            "--ServerApp.allow_root=True",
            "--LabApp.extension_manager=readonly",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env={k: v for k, v in env.items() if not k.startswith("_")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited: {(Path(env['_ROOT']) / 'lab.log').read_text()[-2000:]}")
        try:
            req = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(req, timeout=2)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.3)
    yield url, token
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with chromium.headless() as b:
        yield b


@pytest.fixture
def page(browser, lab, tmp_path):
    url, token = lab
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{url}/lab?token={token}")
    pg.locator('.jp-SideBar.jp-mod-left li[data-id="nbexp-sidebar"]').click(timeout=60_000)
    pg.errors = errors
    yield pg
    ctx.close()
    assert not [e for e in errors if "nbexp" in e.lower()], errors


def sidebar_ids(page, names, listed):
    """The sidebar's run ids by run name (a row reads "NAME (..."), once ``listed`` runs show."""
    from playwright.sync_api import expect

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs.nth(listed - 1)).to_be_visible(timeout=30_000)
    out = {}
    for i in range(runs.count()):
        text = runs.nth(i).inner_text()
        for name in names:
            if f"{name} (" in text:
                out[name] = runs.nth(i).get_attribute("data-run-id")
    return out


def compare_chart(page, name):
    """The chart ``name`` of the comparison tab on show."""
    return page.locator(f'.nbexp-compare:visible [data-figure="{name}"]')


def shot(pg, name, tmp_path):
    shots = Path(os.environ.get("NBEXP_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(shots / f"{name}.png"))


def test_sidebar_lists_runs_and_a_new_run_appears_live(page, kernel, tmp_path):
    from playwright.sync_api import expect

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs).to_have_count(2, timeout=30_000)
    expect(page.get_by_role("status")).to_contain_text("2 runs")
    expect(runs.first).to_contain_text("LR=0.3")
    expect(runs.last).to_contain_text("baseline")
    shot(page, "sidebar", tmp_path)
    started = time.time()
    kernel("%nbexp new live-run")
    expect(runs).to_have_count(3, timeout=10_000)
    expect(runs.first).to_contain_text("live-run")
    assert time.time() - started < 10


def test_compare_two_runs_in_three_clicks(page, tmp_path):
    from playwright.sync_api import expect

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs.nth(1)).to_be_visible(timeout=30_000)
    ids = [runs.nth(i).get_attribute("data-run-id") for i in range(runs.count())]
    # the two trained runs show the main metric: val_acc, an evaluation metric, ranks before the training loss
    pair = [i for i in ids if "val_acc" in page.locator(f'li[data-run-id="{i}"]').inner_text()][:2]
    assert len(pair) == 2
    for rid in pair:  # clicks 1 and 2
        page.get_by_role("checkbox", name=f"Select run {rid}").check()
    page.get_by_role("button", name="Compare selected runs").click()  # click 3
    diff = page.get_by_role("table", name="Param diff")
    expect(diff).to_be_visible(timeout=30_000)
    expect(diff).to_contain_text("LR")
    expect(diff).to_contain_text("0.1")
    expect(diff).to_contain_text("0.3")
    expect(page.locator(".nbexp-chart .main-svg").first).to_be_visible(timeout=30_000)
    expect(page.locator(".nbexp-chart .scatterlayer .trace")).to_have_count(2)
    shot(page, "compare", tmp_path)
    page.get_by_role("tab", name="Code diff").click()
    expect(page.get_by_label("Code diff")).to_contain_text("+LR = 0.3")


def test_run_details_and_star(page, tmp_path):
    from playwright.sync_api import expect

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs.first).to_be_visible(timeout=30_000)
    rid = runs.last.get_attribute("data-run-id")
    page.get_by_role("button", name=f"Star run {rid}").click()
    expect(page.get_by_role("button", name=f"Star run {rid}")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name=f"Show run {rid}").click()
    params = page.get_by_role("table", name="Params")
    expect(params).to_contain_text("DEPTH", timeout=30_000)
    expect(page.get_by_role("table", name="Metric summaries")).to_contain_text("loss")
    page.get_by_role("button", name=f"Add tags run {rid}").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox").fill("best, keep")
    dialog.get_by_role("button", name="Ok").click()
    expect(page.locator(f"#nbexp-run-{rid}.nbexp-run-view")).to_contain_text("tags: best, keep", timeout=10_000)
    expect(page.locator(f'li[data-run-id="{rid}"]')).to_contain_text("#best #keep", timeout=10_000)


def set_theme(lab, theme: str) -> None:
    """Through JupyterLab's own settings API, as the Settings > Theme menu does."""
    url, token = lab
    body = json.dumps({"raw": json.dumps({"theme": theme})}).encode()
    req = urllib.request.Request(
        f"{url}/lab/api/settings/@jupyterlab/apputils-extension:themes",
        data=body,
        method="PUT",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10)


def test_dark_theme_renders(page, lab, tmp_path):
    from playwright.sync_api import expect

    set_theme(lab, "JupyterLab Dark")
    try:
        page.reload()
        page.locator('.jp-SideBar.jp-mod-left li[data-id="nbexp-sidebar"]').click(timeout=60_000)
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false", timeout=30_000)
        runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
        expect(runs.first).to_be_visible(timeout=30_000)
        bg = page.locator(".nbexp-panel").evaluate("n => getComputedStyle(n).backgroundColor")
        rgb = [int(x) for x in bg[bg.index("(") + 1 : bg.index(")")].split(",")[:3]]
        assert sum(rgb) < 3 * 100, bg  # a dark panel
        color = page.locator(".nbexp-name").first.evaluate("n => getComputedStyle(n).color")
        assert sum(int(x) for x in color[color.index("(") + 1 : color.index(")")].split(",")[:3]) > 300, color
        shot(page, "sidebar-dark", tmp_path)
    finally:
        set_theme(lab, "JupyterLab Light")


def test_export_selected_runs_downloads_a_bundle(page, tmp_path):
    from playwright.sync_api import expect

    from nbexp.export.bundle import import_bundle
    from nbexp.ledger.queries import Reader

    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(runs.nth(1)).to_be_visible(timeout=30_000)
    export = page.get_by_role("button", name="Export selected runs as a bundle")
    expect(export).to_be_disabled()
    pair = [runs.nth(i).get_attribute("data-run-id") for i in (0, 1)]
    for rid in pair:
        page.get_by_role("checkbox", name=f"Select run {rid}").check()
    with page.expect_download(timeout=30_000) as info:
        export.click()
    download = info.value
    assert download.suggested_filename.endswith("-2-runs.nbexp")
    bundle = tmp_path / download.suggested_filename
    download.save_as(bundle)
    expect(page.get_by_role("status")).to_contain_text(f"nbexp import {download.suggested_filename}")
    assert import_bundle(bundle, tmp_path / "elsewhere.sqlite")["runs_added"] == 2
    with Reader(tmp_path / "elsewhere.sqlite") as r:
        assert {x["id"] for x in r.list_runs(sprint="all")} == set(pair)


def test_sidebar_shows_the_live_sync_state(page, env):
    """A kernel syncing to MLflow (%nbexp track --sync) keeps its sync thread's last word in the ledger; the
    sidebar says it under the run count (tests/test_sync.py runs the thread against a real server)."""
    from playwright.sync_api import expect

    from nbexp.capture.secrets import scrub_text
    from nbexp.ledger import connect, transaction
    from nbexp.ledger.queries import Reader
    from nbexp.ledger.store import Store

    ledger = Path(env["NBEXP_HOME"]) / "ledger.sqlite"
    with Reader(ledger) as r:
        session = r.run("baseline")["session_id"]
    conn = connect(ledger)
    with transaction(conn):
        Store(conn, scrub=scrub_text).set_sync_state(
            session, "http://127.0.0.1:5000", "server unreachable, 120 points waiting", 120, time.time()
        )
    conn.close()
    sync = page.get_by_label("Sync to MLflow")
    said = "sync to http://127.0.0.1:5000: server unreachable, 120 points waiting"
    expect(sync).to_contain_text(said, timeout=30_000)


def test_filter_finds_a_run_that_is_not_loaded_yet(page, kernel):
    """Last in this module: it adds 250 runs. The sidebar loads 200 rows; the filter must
    still find the oldest of them, through the server's search."""
    from playwright.sync_api import expect

    # the name is written in a cell of the tracked run (the sweep cell is its blocks' code: a word of it finds them
    # all), computed so that it is no param the blocks inherit
    kernel("special = '-'.join(['needle', 'in', 'haystack'])")
    kernel(
        "import nbexp\nfor i in range(250):\n"
        "    with nbexp.run(special if i == 0 else f'bulk-{i}', seed=i):\n"
        "        nbexp.log(loss=1.0 / (i + 1))"
    )
    runs = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    expect(page.get_by_role("status")).to_contain_text("runs", timeout=30_000)
    page.reload()
    page.locator('.jp-SideBar.jp-mod-left li[data-id="nbexp-sidebar"]').click(timeout=60_000)
    expect(runs).to_have_count(200, timeout=30_000)
    assert page.locator("li.nbexp-run", has_text="needle-in-haystack").count() == 0  # not loaded
    page.get_by_role("searchbox", name="Filter runs").fill("NEEDLE")
    # the needle by its name, and the tracked run by the code of its cell that named it (full-text search)
    expect(runs).to_have_count(2, timeout=10_000)
    expect(page.locator("li.nbexp-run", has_text="needle-in-haystack")).to_have_count(1)
    expect(page.get_by_role("status")).to_contain_text("2 of ")
    page.get_by_role("searchbox", name="Filter runs").fill("seed=249")  # a param
    expect(runs).to_have_count(1, timeout=10_000)
    expect(runs.first).to_contain_text("bulk-249")
    page.get_by_role("searchbox", name="Filter runs").fill("no such run")
    expect(page.locator(".nbexp-empty")).to_contain_text("No run matches", timeout=10_000)
