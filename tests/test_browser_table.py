# ruff: noqa: F811  (the fixtures imported from test_browser are requested by name)
"""The runs table in a real `jupyter lab` driven by chromium (issue 17): opened from the sidebar's Runs
button, sorted by clicking a metric's column header, a column added and removed with the column chooser,
rows grouped by a param, a query that filters and one that errors inline, a row opening its run.
Fixtures: tests/test_browser.py."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.error
import urllib.request

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
# the columns the table opens on: the sprint's main metric and the param that varies, as `nbexp ls` shows
KEY_COLUMNS = '["name","status","metrics.test_auc","params.C","start_time","duration"]'


@pytest.fixture(autouse=True)
def fresh_workspace(lab):
    """Each test starts on an empty lab workspace: the runs table's tab is restored after a reload (the layout
    restorer keeps it in the server's workspace, with its query), and the last test's table is not this one's."""
    url, token = lab
    req = urllib.request.Request(
        f"{url}/lab/api/workspaces/default", method="DELETE", headers={"Authorization": f"token {token}"}
    )
    try:
        urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as e:
        if e.code != 404:  # none saved yet
            raise


def _workspace(lab) -> dict:
    """The lab's saved workspace: what a reload restores."""
    url, token = lab
    req = urllib.request.Request(f"{url}/lab/api/workspaces/default", headers={"Authorization": f"token {token}"})
    try:
        return json.loads(urllib.request.urlopen(req, timeout=10).read())["data"]
    except urllib.error.HTTPError:
        return {}


@pytest.fixture(scope="module")
def kernel(env):
    with lab_kernel(env, "%load_ext nbexp\n%nbexp track sweep --sample-hz 0", SWEEP) as run:
        yield run


def _columns(grid) -> list[str]:
    import json

    return json.loads(grid.get_attribute("data-columns") or "[]")


def _click_cell(grid, column: int, row: int | None = None, modifiers: list[str] | None = None) -> None:
    """Click a column's header (row None) or a body row (with ``modifiers``: ``Control``, ``Shift``): the grid draws
    on a canvas, columns of fixed width."""
    x = column * COLUMN_WIDTH + COLUMN_WIDTH // 2
    y = HEADER_HEIGHT // 2 if row is None else HEADER_HEIGHT + 22 * row + 11
    grid.click(position={"x": x, "y": y}, modifiers=modifiers or [])


def _drag_first_border(page, grid) -> None:
    """Press the border between the first two columns' headers and drag it 60 px to the right; the mouse stays
    down."""
    at = grid.bounding_box()
    x, y = at["x"] + COLUMN_WIDTH - 2, at["y"] + HEADER_HEIGHT // 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 30, y)
    page.mouse.move(x + 60, y)


def test_runs_table_sorts_chooses_columns_groups_and_queries(page, kernel, tmp_path):
    from playwright.sync_api import expect

    expect(page.get_by_role("list", name="Runs").locator("li.nbexp-run")).to_have_count(4, timeout=30_000)
    page.get_by_role("button", name="Open the runs table").click()
    grid = page.get_by_role("grid", name="Runs table")
    status = page.get_by_role("status", name="Table status")
    expect(status).to_contain_text("4 runs", timeout=30_000)
    expect(grid).to_have_attribute("aria-rowcount", "4")

    # it opens on the key columns: the main metric and the param that varies; add a column, then remove one
    expect(grid).to_have_attribute("data-columns", KEY_COLUMNS)
    page.get_by_role("button", name="Choose columns").click()
    page.get_by_role("checkbox", name="metrics.train_loss", exact=True).check()
    expect(grid).to_have_attribute("data-columns", KEY_COLUMNS[:-1] + ',"metrics.train_loss"]')
    page.get_by_role("checkbox", name="duration", exact=True).uncheck()
    expect(grid).to_have_attribute(
        "data-columns", '["name","status","metrics.test_auc","params.C","start_time","metrics.train_loss"]'
    )
    page.get_by_role("button", name="Choose columns").click()

    # sort by the metric: its header, clicked on the canvas; the first row is then the best run
    _click_cell(grid, _columns(grid).index("metrics.test_auc"))
    expect(status).to_contain_text("sorted by metrics.test_auc descending")
    shot(page, "runs-table-sorted", tmp_path)
    _click_cell(grid, 0, row=0)
    best = page.get_by_role("tab", name="C=10.0", exact=True)  # the run's tab, titled by its name once loaded
    expect(best).to_be_visible(timeout=30_000)
    expect(page.locator(".jp-MainAreaWidget:visible")).to_contain_text("C=10.0", timeout=30_000)
    page.get_by_role("tab", name="Runs (today)").click()
    _click_cell(grid, _columns(grid).index("metrics.test_auc"))  # again: ascending
    expect(status).to_contain_text("sorted by metrics.test_auc ascending")

    # group by a param
    page.get_by_role("combobox", name="Group by").select_option("params.C")
    groups = page.get_by_role("list", name="Groups").locator("li")
    expect(groups).to_have_text(["params.C = 0.001: 1", "params.C = 0.1: 1", "params.C = 10: 1", "params.C = none: 1"])
    expect(grid).to_have_attribute(
        "data-columns", '["group","name","status","metrics.test_auc","params.C","start_time","metrics.train_loss"]'
    )
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


def test_the_table_opens_on_the_main_metric_and_follows_the_sidebars_pick(page, kernel, tmp_path):
    """A user who has not chosen columns sees the sprint's main metric and the params that vary (not only name,
    status and times); picking another main metric in the sidebar shows its column. Columns the user chose stay."""
    from playwright.sync_api import expect

    grid, status = _open_table(page)
    expect(grid).to_have_attribute("data-columns", KEY_COLUMNS)
    rows = page.get_by_role("table", name="Runs on screen")
    expect(rows.get_by_role("columnheader")).to_have_text(json.loads(KEY_COLUMNS))
    expect(rows.get_by_role("row").filter(has_text="C=10.0")).to_contain_text("0.8")  # its test_auc
    shot(page, "runs-table-key-columns", tmp_path)
    page.get_by_role("combobox", name="Main metric").select_option("train_loss")
    expect(grid).to_have_attribute("data-columns", KEY_COLUMNS.replace("test_auc", "train_loss"), timeout=10_000)
    # chosen by the user: the columns stay whatever the main metric
    page.get_by_role("button", name="Choose columns").click()
    page.get_by_role("checkbox", name="start_time", exact=True).uncheck()
    chosen = '["name","status","metrics.train_loss","params.C","duration"]'
    expect(grid).to_have_attribute("data-columns", chosen)
    page.get_by_role("combobox", name="Main metric").select_option("test_auc")
    page.get_by_role("searchbox", name="Query runs").fill("params.C >= 10")  # the table asked again
    expect(grid).to_have_attribute("aria-rowcount", "1")
    expect(grid).to_have_attribute("data-columns", chosen)


def _open_table(page):
    from playwright.sync_api import expect

    expect(page.get_by_role("list", name="Runs").locator("li.nbexp-run").first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Open the runs table").click()
    grid = page.get_by_role("grid", name="Runs table")
    expect(grid).to_have_attribute("aria-rowcount", re.compile(r"^\d+$"), timeout=30_000)
    return grid, page.get_by_role("status", name="Table status")


def _add_column(page, grid, column):
    from playwright.sync_api import expect

    page.get_by_role("button", name="Choose columns").click()
    page.get_by_role("checkbox", name=column, exact=True).check()
    expect(grid).to_have_attribute("data-columns", re.compile(re.escape(f'"{column}"')))
    page.get_by_role("button", name="Choose columns").click()


def test_the_sidebar_follows_the_tables_query_and_sort(page, kernel, tmp_path):
    """The sidebar is a compact view of the table's model: a query typed in the table filters it (and it says
    so, with a button that clears the query in both), a sort of the table orders it."""
    from playwright.sync_api import expect

    grid, status = _open_table(page)
    sidebar = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    total = sidebar.count()
    assert total >= 4
    box = page.get_by_role("searchbox", name="Query runs")
    box.fill("params.C >= 0.1")
    box.press("Enter")
    expect(status).to_contain_text("3 runs")  # C = 0.1, 1.0 (the first test's) and 10.0
    expect(sidebar).to_have_count(3, timeout=10_000)
    view = page.get_by_label("Runs table view")
    expect(view).to_contain_text("query: params.C >= 0.1")
    expect(page.locator("#nbexp-sidebar").get_by_role("status")).to_contain_text("3 runs match the query")
    # newest first until the table sorts: then the sidebar lists the runs in the table's order
    expect(sidebar.first).to_contain_text("C=1.0 (")
    _add_column(page, grid, "metrics.test_auc")
    header = _columns(grid).index("metrics.test_auc")
    _click_cell(grid, header)
    expect(status).to_contain_text("sorted by metrics.test_auc descending")
    expect(view).to_contain_text("sorted by metrics.test_auc descending")
    expect(sidebar.first).to_contain_text("C=10.0 (", timeout=10_000)  # test_auc 0.8
    _click_cell(grid, header)
    expect(status).to_contain_text("sorted by metrics.test_auc ascending")
    expect(sidebar.first).to_contain_text("C=0.1 (", timeout=10_000)  # 0.701, then 0.71, 0.8
    names = [sidebar.nth(i).get_by_role("button", name=re.compile("^Show run")).inner_text() for i in range(3)]
    assert [n.split(" (")[0] for n in names] == ["C=0.1", "C=1.0", "C=10.0"]
    shot(page, "sidebar-follows-table", tmp_path)
    # Compare from the sorted sidebar: the oldest run is still the baseline, whatever the order shown
    for i in (0, 2):
        sidebar.nth(i).get_by_role("checkbox").check()
    page.get_by_role("button", name="Compare selected runs").click()
    expect(page.get_by_role("tab", name=re.compile(r"^C=0\.1 vs C=10"))).to_be_visible(timeout=30_000)
    page.get_by_role("tab", name="Runs (today)").click()
    # a query that keeps no run: the sidebar says why it is empty
    box.fill("params.C > 100")
    box.press("Enter")
    expect(page.locator("#nbexp-sidebar .nbexp-empty")).to_have_text("No run matches the runs table’s query.")
    # the sidebar clears the query: both views list every run again, still in the table's order
    page.get_by_role("button", name="Clear the query").click()
    expect(sidebar).to_have_count(total, timeout=10_000)
    expect(box).to_have_value("")
    expect(status).to_contain_text(f"{total} runs, sorted by metrics.test_auc ascending")
    expect(view).not_to_contain_text("query:")
    expect(sidebar.first).to_contain_text("C=0.001 (")  # test_auc 0.70001: the lowest
    page.get_by_role("button", name="Clear the sort").click()
    expect(status).not_to_contain_text("sorted by", timeout=10_000)
    expect(view).to_be_hidden()


def test_a_run_started_in_a_kernel_appears_live_in_the_open_table(page, kernel, tmp_path):
    """The open table updates without a reload: a run a kernel starts appears (running), its metric and then its
    end show up, and the user's scroll position, sort and columns stay as they were."""
    from playwright.sync_api import expect

    grid, status = _open_table(page)
    rows = page.get_by_role("table", name="Runs on screen")
    expect(rows).to_contain_text("C=10.0", timeout=30_000)
    before = int(grid.get_attribute("aria-rowcount"))
    _add_column(page, grid, "metrics.test_auc")
    _click_cell(grid, _columns(grid).index("metrics.test_auc"))
    expect(status).to_contain_text("sorted by metrics.test_auc descending")
    columns = _columns(grid)

    # scrolled down a long table, the user stays where they are when a run appears above them
    kernel("import nbexp\nfor i in range(60):\n    with nbexp.run(f'bulk-{i}', seed=i):\n        pass")
    before += 60
    expect(status).to_contain_text(f"{before} runs", timeout=15_000)
    grid.hover()
    page.mouse.wheel(0, 600)
    first = rows.get_by_role("row").nth(1)
    expect(first).not_to_have_attribute("aria-rowindex", "2")
    scrolled = first.get_attribute("aria-rowindex")
    kernel("%nbexp new live-run")
    expect(status).to_contain_text(f"{before + 1} runs", timeout=15_000)
    expect(first).to_have_attribute("aria-rowindex", scrolled)
    shot(page, "runs-table-live-scrolled", tmp_path)
    page.mouse.wheel(0, -10_000)
    expect(first).to_have_attribute("aria-rowindex", "2")
    live = rows.get_by_role("row").filter(has_text="live-run")
    expect(live).to_contain_text("running", timeout=15_000)
    kernel("import nbexp\nnbexp.log(test_auc=0.95)")  # the best so far: first under the sort
    expect(rows.get_by_role("row").nth(1)).to_contain_text("live-run", timeout=15_000)
    expect(rows.get_by_role("row").nth(1)).to_contain_text("0.95")
    kernel("%nbexp new after-live")  # ends live-run
    expect(live).to_contain_text("finished", timeout=15_000)
    expect(status).to_contain_text(f"{before + 2} runs", timeout=15_000)
    # the user's view survived every refresh
    expect(status).to_contain_text("sorted by metrics.test_auc descending")
    assert _columns(grid) == columns
    shot(page, "runs-table-live", tmp_path)


def test_the_sidebar_lists_only_what_the_tables_query_keeps_when_a_kernel_dies(page, kernel, env, tmp_path):
    """The sidebar's live poll keeps to the table's query: a run of another kernel that is running and then
    crashed (the kernel killed), which the query excludes, never shows in the sidebar's list or count."""
    from playwright.sync_api import expect

    grid, status = _open_table(page)
    box = page.get_by_role("searchbox", name="Query runs")
    box.fill("params.C >= 5 and status = finished")
    box.press("Enter")
    expect(grid).to_have_attribute("aria-rowcount", "1")  # C=10.0
    sidebar = page.get_by_role("list", name="Runs").locator("li.nbexp-run")
    said = page.locator("#nbexp-sidebar").get_by_role("status")
    expect(sidebar).to_have_count(1)
    pid_file = tmp_path / "pid"
    with lab_kernel(env, "%load_ext nbexp\n%nbexp track doomed --sample-hz 0") as run:
        run(f"C = 7\nimport os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))")
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        polls = 0
        while polls < 3:  # the sidebar's poll, several times after the kernel died
            with page.expect_response(lambda r: "/nbexp/api/runs?" in r.url and "since=" in r.url, timeout=15_000):
                pass
            polls += 1
        expect(sidebar).to_have_count(1)
        expect(sidebar.first).to_contain_text("C=10.0")
        expect(said).to_contain_text("1 run matches the query")
        expect(grid).to_have_attribute("aria-rowcount", "1")
        shot(page, "sidebar-query-crashed-run", tmp_path)
        # the run is there, crashed: the query kept it out
        box.fill("")
        box.press("Enter")
        expect(sidebar.filter(has_text="doomed")).to_contain_text("crashed", timeout=15_000)


def test_rows_selected_in_the_table_open_the_sidebars_comparison(page, kernel, tmp_path):
    """Ctrl-click selects a row (again: unselects it), shift-click selects the rows from the last one; "Compare
    selected" opens the comparison the sidebar's Compare opens, the oldest run the baseline."""
    from playwright.sync_api import expect

    grid, status = _open_table(page)
    box = page.get_by_role("searchbox", name="Query runs")
    box.fill("(params.C = 0.1 or params.C = 10) and status = finished")
    box.press("Enter")
    expect(grid).to_have_attribute("aria-rowcount", "2")
    rows = page.get_by_role("table", name="Runs on screen").get_by_role("row")
    expect(rows.nth(1)).to_contain_text("C=10.0")  # newest first
    compare = page.get_by_role("button", name="Compare selected rows")
    expect(compare).to_be_disabled()
    _click_cell(grid, 0, row=1, modifiers=["Control"])
    expect(rows.nth(2)).to_have_attribute("aria-selected", "true")
    _click_cell(grid, 0, row=1, modifiers=["Control"])  # again: unselected
    expect(rows.nth(2)).to_have_attribute("aria-selected", "false")
    _click_cell(grid, 0, row=0, modifiers=["Control"])
    _click_cell(grid, 0, row=1, modifiers=["Shift"])
    expect(compare).to_have_text("Compare selected (2)")
    expect(rows.nth(1)).to_have_attribute("aria-selected", "true")
    expect(rows.nth(2)).to_have_attribute("aria-selected", "true")
    expect(page.locator(".nbexp-run-view")).to_have_count(0)  # no row opened
    shot(page, "runs-table-selected", tmp_path)
    compare.click()
    expect(page.get_by_role("tab", name=re.compile(r"^C=0\.1 vs C=10"))).to_be_visible(timeout=30_000)


def test_a_column_border_drags_its_width_and_a_reload_reopens_the_table(page, kernel, lab, tmp_path):
    """A drag on a column header's border widens the column (it sorted instead, a user trial found), remembered for
    the sprint; a browser reload reopens the runs table on its sprint and query, its columns as wide as they were.
    A count of one says "1 run" (it said "1 runs")."""
    from playwright.sync_api import expect

    grid, status = _open_table(page)
    box = page.get_by_role("searchbox", name="Query runs")
    box.fill("params.C >= 5 and status = finished")
    box.press("Enter")
    expect(grid).to_have_attribute("aria-rowcount", "1")  # C=10.0
    expect(status).to_have_text("1 run")
    expect(page.locator("#nbexp-sidebar").get_by_role("status")).to_contain_text("1 run matches the query")
    columns = _columns(grid)
    assert json.loads(grid.get_attribute("data-widths")) == {c: COLUMN_WIDTH for c in columns}

    # drag the border between the first two columns 60 px to the right: the first column widens, nothing sorts
    _drag_first_border(page, grid)
    page.mouse.up()
    widths = {**{c: COLUMN_WIDTH for c in columns}, columns[0]: COLUMN_WIDTH + 60}
    expect(grid).to_have_attribute("data-widths", json.dumps(widths, separators=(",", ":")))
    expect(status).to_have_text("1 run")  # not sorted by the column
    # a click in a header (not on a border) still sorts: the second column's middle, moved right by the first's width
    grid.click(position={"x": COLUMN_WIDTH + 60 + COLUMN_WIDTH // 2, "y": HEADER_HEIGHT // 2})
    expect(status).to_have_text(f"1 run, sorted by {columns[1]} descending")
    shot(page, "runs-table-resized", tmp_path)

    # the layout restorer has saved the table with its view: a reload reopens it, the widths remembered
    saved = {}
    for _ in range(100):
        saved = _workspace(lab)
        if saved.get("nbexp-runs-table:runs-table", {}).get("data", {}).get("sort") == columns[1]:
            break
        page.wait_for_timeout(100)
    assert saved["nbexp-runs-table:runs-table"]["data"]["query"] == "params.C >= 5 and status = finished", saved
    page.reload()
    tab = page.get_by_role("tab", name="Runs (today)")
    expect(tab).to_be_visible(timeout=60_000)
    grid = page.get_by_role("grid", name="Runs table")
    expect(page.get_by_role("searchbox", name="Query runs")).to_have_value("params.C >= 5 and status = finished")
    expect(grid).to_have_attribute("aria-rowcount", "1", timeout=30_000)
    expect(status).to_have_text(f"1 run, sorted by {columns[1]} descending")
    expect(grid).to_have_attribute("data-widths", json.dumps(widths, separators=(",", ":")))
    expect(page.get_by_role("table", name="Runs on screen")).to_contain_text("C=10.0")
    shot(page, "runs-table-restored", tmp_path)
    # the sidebar, opened after the reload, keeps to the restored query
    page.locator('.jp-SideBar.jp-mod-left li[data-id="nbexp-sidebar"]').click()
    expect(page.locator("#nbexp-sidebar").get_by_role("status")).to_contain_text("1 run matches the query")
    expect(page.get_by_role("list", name="Runs").locator("li.nbexp-run")).to_have_count(1)


def test_a_column_drag_keeps_its_width_when_a_live_refresh_lands_before_the_mouse_is_let_go(page, kernel, tmp_path):
    """A run that starts or ends in a kernel refreshes the open table; one that landed while a column's border was
    held put the column back to its width, and the drag was lost (a fresh-clone CI run saw it, a running run's
    heartbeat being enough). The width under the mouse is the user's until they let go."""
    from playwright.sync_api import expect

    grid, status = _open_table(page)
    box = page.get_by_role("searchbox", name="Query runs")
    box.fill("params.C >= 40 and status = finished")
    box.press("Enter")
    expect(status).to_have_text("0 runs")
    columns = _columns(grid)
    _drag_first_border(page, grid)
    # the mouse still down: a run ends in the kernel, and the table shows it
    kernel("with nbexp.run('held', C=50.0):\n    nbexp.log(test_auc=0.5)")
    expect(status).to_have_text("1 run", timeout=30_000)
    expect(page.get_by_role("table", name="Runs on screen")).to_contain_text("held")
    page.mouse.up()
    widths = {**{c: COLUMN_WIDTH for c in columns}, columns[0]: COLUMN_WIDTH + 60}
    expect(grid).to_have_attribute("data-widths", json.dumps(widths, separators=(",", ":")))
    shot(page, "runs-table-drag-held-through-refresh", tmp_path)


def test_a_misspelt_metric_in_the_query_is_an_inline_error_naming_the_near_one(page, kernel, tmp_path):
    """``metrics.test_acu > 0.75`` matched no run and the table said 0 runs; it is an error under the query, as a
    syntax error is, naming the metric meant. Names in it are text, never markup."""
    from playwright.sync_api import expect

    grid, status = _open_table(page)
    box = page.get_by_role("searchbox", name="Query runs")
    error = page.get_by_role("alert", name="Query error")
    box.fill("status = finished and metrics.test_acu > 0.75")
    box.press("Enter")
    expect(error).to_contain_text("^ no metric 'test_acu' in this sprint; did you mean 'test_auc'?")
    expect(box).to_have_attribute("aria-invalid", "true")
    assert error.inner_text().splitlines()[1].index("^") == len("status = finished and ")  # under the field
    shot(page, "runs-table-unknown-metric", tmp_path)
    box.fill("params.`<img src=x onerror=alert(1)>` = 1")
    box.press("Enter")
    expect(error).to_contain_text("no param '<img src=x onerror=alert(1)>' in this sprint")
    expect(error.locator("img")).to_have_count(0)
    box.fill("status = finished and metrics.test_auc > 0.75")
    box.press("Enter")
    expect(error).to_have_text("")
    expect(grid).to_have_attribute("aria-rowcount", re.compile(r"^[1-9]"))
