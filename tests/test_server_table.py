"""The runs table's REST route, GET /nbexp/api/table, on a real Jupyter server (pytest-jupyter's jp_fetch),
and ``nbexp ls --query`` on the same kind of ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tornado.httpclient

pytestmark = pytest.mark.server  # a real Jupyter server

TRAIN = "import nbexp\nfor i in range(5):\n    nbexp.log(loss=1.0 / (i + 1) + C)\nnbexp.log(auc=0.9 - C / 100)"


@pytest.fixture
def filled(cell, ledger_path):
    """Three runs of a real shell that differ by C (0.1, 1, 10); the C=1 run tagged baseline."""
    cell("%nbexp track first")
    for c in ("0.1", "1", "10"):
        cell(f"C = {c}")
        cell(TRAIN)
        if c == "1":
            cell("%nbexp tag baseline")
    cell("%nbexp stop")
    return ledger_path


@pytest.fixture
def jp_server_config(ledger_path):
    return {"ServerApp": {"jpserver_extensions": {"nbexp": True}}, "NbexpApp": {"ledger": str(ledger_path)}}


async def get(jp_fetch, **params):
    r = await jp_fetch("nbexp", "api", "table", params={"sprint": "all", **params})
    return json.loads(r.body)


async def test_table_sorts_filters_groups_and_lists_columns(filled, jp_fetch):
    page = await get(jp_fetch, sort="metrics.auc", order="asc", columns="name,params.C,metrics.auc,min(metrics.loss)")
    assert page["total"] == 3 and page["columns"] == ["name", "params.C", "metrics.auc", "min(metrics.loss)"]
    assert [row["cells"]["params.C"] for row in page["rows"]] == [10, 1, 0.1]  # auc 0.8, 0.89, 0.899
    assert page["rows"][0]["cells"]["min(metrics.loss)"] == pytest.approx(10.2)
    assert "C" in page["available"]["params"] and {"auc", "loss"} <= set(page["available"]["metrics"])
    assert page["available"]["tags"] == ["baseline"]
    hit = await get(jp_fetch, q="metrics.auc > 0.85 and params.C < 5 and status = finished and tag = baseline")
    assert hit["total"] == 1 and hit["rows"][0]["status"] == "finished"
    one = await get(jp_fetch, sort="params.C", order="desc", limit="1", offset="1", columns="params.C")
    assert one["total"] == 3 and [row["cells"]["params.C"] for row in one["rows"]] == [1]
    grouped = await get(jp_fetch, group="tag")
    assert grouped["groups"] == [{"value": "baseline", "count": 1}, {"value": None, "count": 2}]
    assert [row["group"] for row in grouped["rows"]] == ["baseline", None, None]


async def test_the_table_opens_on_the_main_metric_and_the_params_that_vary(filled, cell, jp_fetch):
    """Until the user chooses columns, the table shows what ``nbexp ls`` shows: the sprint's main metric (the
    sidebar's pick, ``metric``) and the params that vary across its runs, not a param every run has alike."""
    cell("%nbexp track second")
    cell("import nbexp\nwith nbexp.run('same-seed', C=0.5, seed=1):\n    nbexp.log(auc=0.5)")
    cell("with nbexp.run('same-seed-2', C=0.7, seed=1):\n    nbexp.log(auc=0.6)")
    cell("%nbexp stop")
    page = await get(jp_fetch)
    assert page["columns"][:4] == ["name", "status", "metrics.auc", "params.C"], page["columns"]
    assert "params.seed" not in page["columns"] and page["columns"][-2:] == ["start_time", "duration"]
    assert {row["cells"]["params.C"] for row in page["rows"]} >= {0.1, 1, 10, 0.5, 0.7}
    picked = await get(jp_fetch, metric="loss")
    assert picked["columns"][:4] == ["name", "status", "metrics.loss", "params.C"]
    chosen = await get(jp_fetch, metric="loss", columns="name,params.seed")
    assert chosen["columns"] == ["name", "params.seed"]


@pytest.mark.parametrize(
    "params, argument, position, words",
    [
        ({"q": "metrics.auc > "}, "query", 14, "expected a value"),
        ({"q": "params.C < 1 and colour = red"}, "query", 17, "unknown field 'colour'"),
        ({"sort": "metrics"}, "sort", 0, "unknown field"),
        ({"group": "params."}, "group", 0, "needs a name"),
    ],
)
async def test_a_bad_query_is_a_400_with_its_position(filled, jp_fetch, params, argument, position, words):
    with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
        await get(jp_fetch, **params)
    assert exc.value.code == 400
    error = json.loads(exc.value.response.body)["error"]
    assert error["position"] == position and error["argument"] == argument and words in error["message"]
    assert "Traceback" not in error["message"]


@pytest.mark.parametrize(
    "query, position, message, right",
    [
        ("metrics.acu > 0.85", 0, "no metric 'acu' in this sprint; did you mean 'auc'?", "metrics.auc > 0.85"),
        ("status = finished and params.c < 1", 22, "no param 'c' in this sprint; did you mean 'C'?", "params.C < 1"),
        ("max(metrics.los) < 2", 0, "no metric 'los' in this sprint; did you mean 'loss'?", "max(metrics.loss) < 2"),
        ("params.auc > 0.5", 0, "no param 'auc' in this sprint; 'auc' is a metric: metrics.auc", "metrics.auc > 0.5"),
        ("metrics.zzz > 1", 0, "no metric 'zzz' in this sprint; its metrics: auc, loss", None),
    ],
)
async def test_a_misspelt_metric_or_param_is_a_400_naming_the_near_ones(
    filled, jp_fetch, query, position, message, right
):
    """A key that no run of the sprint has matches no run: the table said "0 runs" as if none scored (a user trial
    typed ``metrics.acuracy``). It is an error at the key's position, as a syntax error is, naming the near keys."""
    with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
        await get(jp_fetch, sprint="today", q=query)
    error = json.loads(exc.value.response.body)["error"]
    assert exc.value.code == 400 and (error["message"], error["position"]) == (message, position)
    assert error["argument"] == "query"
    if right:  # the key it names matches runs
        assert (await get(jp_fetch, sprint="today", q=right))["total"] >= 1


async def runs(jp_fetch, **params):
    r = await jp_fetch("nbexp", "api", "runs", params={"sprint": "all", **params})
    return json.loads(r.body)


async def test_the_sidebars_runs_in_the_tables_query_and_order(filled, jp_fetch):
    """The sidebar is a compact view of the runs table: GET runs takes the table's ``query`` and its sort field
    (``by``), and its rows keep what the sidebar shows (params, the main metric, tags, status)."""
    page = await runs(jp_fetch, query="params.C < 5", by="metrics.auc", order="asc")
    assert page["total"] == 2 and [r["params"]["C"] for r in page["runs"]] == [1, 0.1]  # auc 0.89, 0.899
    assert [r["sort_value"] for r in page["runs"]] == [pytest.approx(0.89), pytest.approx(0.899)]
    assert page["runs"][0]["tags"] == ["baseline"] and page["runs"][0]["metrics"]["auc"] == pytest.approx(0.89)
    assert page["runs"][0]["status"] == "finished" and page["main_metric"] == "auc"
    desc = await runs(jp_fetch, by="params.C", order="desc", limit="2", offset="1")
    assert desc["total"] == 3 and [r["params"]["C"] for r in desc["runs"]] == [1, 0.1]
    only = await runs(jp_fetch, query="tag = baseline")  # a query alone: newest first, as the sidebar lists
    assert only["total"] == 1 and only["runs"][0]["tags"] == ["baseline"]
    with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
        await runs(jp_fetch, query="params.C < 1 and colour = red")
    error = json.loads(exc.value.response.body)["error"]
    assert exc.value.code == 400 and error["position"] == 17 and "unknown field 'colour'" in error["message"]


async def test_bad_page_and_order_are_400(filled, jp_fetch):
    for params in ({"limit": "0"}, {"order": "up"}, {"offset": "-1"}):
        with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
            await get(jp_fetch, **params)
        assert exc.value.code == 400


def test_cli_ls_query(filled):
    def ls(*args):
        return subprocess.run(
            [sys.executable, "-m", "nbexp.cli", "--ledger", str(filled), "ls", "--sprint", "all", *args],
            capture_output=True,
            text=True,
        )

    out = ls("--query", "params.C >= 1 and metrics.auc > 0.85", "--json")
    assert out.returncode == 0, out.stderr
    assert [r["params"]["C"] for r in json.loads(out.stdout)] == [1]
    bad = ls("--query", "params.C >")
    assert bad.returncode != 0 and "expected a value" in bad.stderr and "Traceback" not in bad.stderr


async def test_a_run_whose_kernel_died_comes_once_in_the_live_poll(
    filled, ledger_path, tmp_path, monkeypatch, jp_fetch
):
    """A run still stored running whose kernel was killed is shown crashed without anyone writing it: the sidebar's
    poll (``since`` the last cursor) gives it once as changed, then not again at every poll (it did, and the sidebar
    listed it whatever the table's query)."""
    from test_kernel import Kernel

    from nbexp.ledger.queries import Reader

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    k = Kernel(dict(os.environ))
    try:
        assert k.run("%load_ext nbexp\n%nbexp track doomed")["status"] == "ok"
        assert k.run("C = 7")["status"] == "ok"
        deadline = time.time() + 30
        while time.time() < deadline:  # the kernel's writer commits after the cell
            with Reader(ledger_path) as r:
                if any(x["name"] == "doomed" for x in r.list_runs(sprint="all")):
                    break
            time.sleep(0.1)
        alive = await runs(jp_fetch, since="0")
        assert [x["status"] for x in alive["runs"] if x["name"] == "doomed"] == ["running"]
        os.kill(k.pid, signal.SIGKILL)
        k.km.provisioner.process.wait(10)
        died = await runs(jp_fetch, since=str(alive["cursor"]))
        assert [(x["name"], x["status"]) for x in died["runs"]] == [("doomed", "crashed")]
        assert died["cursor"] > alive["cursor"]
        for _ in range(2):  # nothing changed since: the crashed run is not news again
            again = await runs(jp_fetch, since=str(died["cursor"]))
            assert again["runs"] == [] and again["cursor"] == died["cursor"]
        listed = await runs(jp_fetch)  # a first page still lists it, crashed
        assert [x["status"] for x in listed["runs"] if x["name"] == "doomed"] == ["crashed"]
    finally:
        k.shutdown()


async def test_a_bundle_of_one_run_is_named_in_the_singular(filled, jp_fetch):
    """The sidebar says "downloaded NAME": a bundle of one run is ...-1-run.nbexp, not ...-1-runs.nbexp."""
    newest = (await runs(jp_fetch, limit="1"))["runs"][0]
    r = await jp_fetch("nbexp", "api", "export", params={"runs": newest["id"]})
    assert r.headers["Content-Disposition"] == f'attachment; filename="nbexp-{newest["sprint"]}-1-run.nbexp"'
