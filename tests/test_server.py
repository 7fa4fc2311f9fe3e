"""The REST API under /nbexp/api/ on a real Jupyter Server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import json
import urllib.parse

import pytest
import tornado.httpclient

pytestmark = pytest.mark.server  # a real Jupyter server

TRAIN = "acc = 0.5 + LR\nimport nbexp\nfor i in range(30):\n    nbexp.log(loss=1.0 / (i + 1) + LR)"


@pytest.fixture
def filled(cell, ledger_path):
    """A ledger with two runs that differ by LR, written by a real shell."""
    cell("%nbexp track first")
    cell("LR = 0.1")
    cell(TRAIN)
    cell("LR = 0.3")
    cell(TRAIN)
    cell("%nbexp stop")
    return ledger_path


@pytest.fixture
def jp_server_config(ledger_path):
    return {"ServerApp": {"jpserver_extensions": {"nbexp": True}}, "NbexpApp": {"ledger": str(ledger_path)}}


async def get(jp_fetch, *path, **params):
    r = await jp_fetch("nbexp", "api", *path, params=params)
    return json.loads(r.body)


async def error_of(jp_fetch, *path, method="GET", body=None, headers=None, **params):
    with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
        await jp_fetch(
            "nbexp",
            "api",
            *path,
            method=method,
            body=body,
            params=params,
            **({"headers": headers} if headers is not None else {}),
        )
    payload = json.loads(exc.value.response.body)
    assert set(payload) == {"error"} and payload["error"]["status"] == exc.value.code
    assert "Traceback" not in payload["error"]["message"]
    return exc.value.code, payload["error"]["message"]


async def test_runs_list_sprints_and_one_run(filled, jp_fetch):
    data = await get(jp_fetch, "runs")
    assert data["total"] == 2 and len(data["runs"]) == 2 and data["main_metric"] in ("acc", "loss")
    newest, oldest = data["runs"]
    assert newest["params"]["LR"] == 0.3 and oldest["params"]["LR"] == 0.1
    assert oldest["name"] == "first" and newest["status"] == "finished"
    assert newest["metrics"]["acc"] == pytest.approx(0.8)
    sprints = (await get(jp_fetch, "sprints"))["sprints"]
    assert sprints[0]["runs"] == 2
    one = await get(jp_fetch, "runs", oldest["id"])
    assert one["params"]["LR"] == 0.1 and one["metric_summaries"]["loss"]["steps"] == 30
    assert one["lineage"]


async def test_paging_sorting_and_cursor(filled, jp_fetch):
    page = await get(jp_fetch, "runs", limit="1", offset="1", sort="start_time", order="asc")
    assert page["total"] == 2 and len(page["runs"]) == 1 and page["runs"][0]["params"]["LR"] == 0.3
    cursor = page["cursor"]
    assert (await get(jp_fetch, "runs", since=str(cursor)))["runs"] == []  # nothing changed since
    rid = page["runs"][0]["id"]
    await jp_fetch("nbexp", "api", "runs", rid, method="PATCH", body=json.dumps({"starred": True}))
    changed = await get(jp_fetch, "runs", since=str(cursor))
    assert [r["id"] for r in changed["runs"]] == [rid] and changed["runs"][0]["starred"] == 1
    assert changed["cursor"] > cursor


async def test_edits_star_tag_note_rename(filled, jp_fetch):
    rid = (await get(jp_fetch, "runs"))["runs"][0]["id"]
    body = {"starred": True, "name": "winner", "note": "best so far", "add_tags": ["keep", "lr-sweep"]}
    r = await jp_fetch("nbexp", "api", "runs", rid, method="PATCH", body=json.dumps(body))
    row = json.loads(r.body)
    assert (row["starred"], row["name"], row["note"], row["tags"]) == (1, "winner", "best so far", ["keep", "lr-sweep"])
    await jp_fetch("nbexp", "api", "runs", rid, method="PATCH", body=json.dumps({"remove_tags": ["keep"]}))
    assert (await get(jp_fetch, "runs", rid))["tags"] == ["lr-sweep"]
    assert [x["id"] for x in (await get(jp_fetch, "runs", tag="lr-sweep"))["runs"]] == [rid]


async def test_search_finds_runs_by_name_param_tag_and_note(filled, jp_fetch):
    newest, oldest = (await get(jp_fetch, "runs"))["runs"]

    async def found(text, **params):
        page = await get(jp_fetch, "runs", q=text, **params)
        assert page["total"] == len(page["runs"]) or params
        return [r["id"] for r in page["runs"]]

    assert await found("FIRST") == [newest["id"], oldest["id"]]  # name, any case (the re-run is "first #2")
    assert await found("first #2") == [newest["id"]]
    assert await found("lr=0.3") == [newest["id"]]  # a param as key=value
    assert await found(oldest["id"][:4]) == [oldest["id"]]
    assert await found("finished") == [newest["id"], oldest["id"]]
    await jp_fetch(
        "nbexp",
        "api",
        "runs",
        newest["id"],
        method="PATCH",
        body=json.dumps({"note": "50% less data", "add_tags": ["candidate"]}),
    )
    assert await found("candid") == [newest["id"]]
    assert await found("50% less") == [newest["id"]]
    assert await found("5_%") == []  # % and _ are literal text
    assert await found("lr=0.3", limit="1", offset="1") == []  # paged like any listing
    assert (await get(jp_fetch, "runs", q="lr=0.3", limit="1", offset="1"))["total"] == 1
    assert await found("no such run") == []


async def test_compare_gives_diffs_and_figures(filled, jp_fetch):
    ids = [r["id"] for r in (await get(jp_fetch, "runs"))["runs"]][::-1]
    c = await get(jp_fetch, "compare", runs=",".join(ids))
    assert c["param_diff"] == {"LR": [0.1, 0.3]}
    assert c["metric"] == "loss"
    assert set(c["figures"]) == {
        "params",
        "metrics",
        "grid",
        "curves",
        "parallel",
        "scatter",
        "drift",
        "classes",
        "system",
    }
    curves = c["figures"]["curves"]["data"]
    assert len(curves) == 2 and len(curves[0]["y"]) == 30
    table = c["figures"]["params"]["data"][0]
    assert table["type"] == "table" and table["cells"]["values"][0] == ["LR"]
    drift = c["figures"]["drift"]  # no data in these runs: no empty axes, a sentence saying why
    assert not drift["data"] and drift["layout"]["xaxis"]["visible"] is False
    assert drift["layout"]["annotations"][0]["text"] == "no data summaries were recorded for these runs"


@pytest.mark.parametrize(
    "path, params, code, words",
    [
        (("runs",), {"sort": "start_time; DROP TABLE runs"}, 400, "unknown sort key"),
        (("runs",), {"status": "finished' OR '1'='1"}, 400, "unknown status"),
        (("runs",), {"limit": "100000000"}, 400, "limit must be"),
        (("runs",), {"limit": "-5"}, 400, "limit must be"),
        (("runs",), {"sprint": "'; SELECT *"}, 400, "unknown sprint"),
        (("runs",), {"since": "yesterday"}, 400, "since"),
        (("runs",), {"tag": "<script>"}, 400, "malformed tag"),
        (("runs",), {"q": "x" * 201}, 400, "at most 200"),
        (("runs", "ffffff"), {}, 404, "no run"),
        (("runs", "..%2F..%2Fetc%2Fpasswd"), {}, 400, "malformed run id"),
        (("runs", "ZZZ"), {}, 400, "malformed run id"),
        (("compare",), {"runs": "abc"}, 400, "malformed run id"),
        (("compare",), {}, 400, "2 to 20"),
        (("compare",), {"runs": "aaaaaa,bbbbbb"}, 404, "no run"),
    ],
)
async def test_bad_input_gives_json_errors(filled, jp_fetch, path, params, code, words):
    got, message = await error_of(jp_fetch, *path, **params)
    assert got == code and words in message


async def test_bad_patch_bodies(filled, jp_fetch):
    rid = (await get(jp_fetch, "runs"))["runs"][0]["id"]
    for body, words in (
        (b"not json", "JSON"),
        (json.dumps({"starred": "yes"}), "starred"),
        (json.dumps({"path": "/etc"}), "unknown fields"),
        (json.dumps({"add_tags": ["a" * 200]}), "tags"),
    ):
        code, message = await error_of(jp_fetch, "runs", rid, method="PATCH", body=body)
        assert code == 400 and words in message


async def test_no_token_is_403(filled, jp_fetch):
    for path in (("runs",), ("sprints",), ("compare",), ("ping",)):
        code, _ = await error_of(jp_fetch, *path, headers={"Authorization": ""})
        assert code == 403


async def test_patch_with_cookie_but_no_xsrf_is_refused(
    filled, jp_fetch, jp_serverapp, jp_base_url, http_server_client
):
    rid = (await get(jp_fetch, "runs"))["runs"][0]["id"]
    # log in with the token like a browser does: a login cookie and an _xsrf cookie
    token = jp_serverapp.identity_provider.token
    r = await http_server_client.fetch(
        f"{jp_base_url}login?next=/",
        method="POST",
        follow_redirects=False,
        raise_error=False,
        body=urllib.parse.urlencode({"password": token, "_xsrf": "abc"}),
        headers={"Cookie": "_xsrf=abc"},
    )
    cookies = [c.split(";")[0] for c in r.headers.get_list("Set-Cookie")]
    assert any(c.startswith("username-") for c in cookies), r.code
    cookie = "; ".join(cookies + ["_xsrf=abc"])
    url = f"{jp_base_url}nbexp/api/runs/{rid}"
    refused = await http_server_client.fetch(
        url, method="PATCH", body=json.dumps({"starred": True}), headers={"Cookie": cookie}, raise_error=False
    )
    assert refused.code == 403
    allowed = await http_server_client.fetch(
        url,
        method="PATCH",
        body=json.dumps({"starred": True}),
        headers={"Cookie": cookie, "X-XSRFToken": "abc"},
        raise_error=False,
    )
    assert allowed.code == 200
    reading = await http_server_client.fetch(
        f"{jp_base_url}nbexp/api/runs", headers={"Cookie": cookie}, raise_error=False
    )
    assert reading.code == 200  # reads need no XSRF


async def test_missing_ledger_is_404_json(jp_fetch):
    code, message = await error_of(jp_fetch, "runs")
    assert code == 404 and "no ledger yet" in message


async def test_polling_while_four_kernels_write(jp_fetch, ledger_path, tmp_path, monkeypatch):
    """The sidebar's poll against a ledger 4 real kernels are writing: no error on either side."""
    import asyncio
    import os

    from jupyter_client.manager import KernelManager

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    kms, kcs = [], []
    try:
        for _ in range(4):
            km = KernelManager(kernel_name="python3")
            km.start_kernel(env=dict(os.environ))
            kc = km.client()
            kc.start_channels()
            kc.wait_for_ready(timeout=60)
            kms.append(km)
            kcs.append(kc)
        code = (
            "%load_ext nbexp\n%nbexp track --sample-hz 5\nimport nbexp, time\n"
            "for r in range(15):\n    with nbexp.run(f'r{r}', i=r):\n"
            "        for s in range(300):\n            nbexp.log(loss=s * 0.01)\n"
            "        time.sleep(0.2)\n"
        )
        pending = {kc.execute(code): kc for kc in kcs}
        cursor, polls, seen = None, 0, set()
        deadline = asyncio.get_event_loop().time() + 120
        while pending and asyncio.get_event_loop().time() < deadline:
            params = {"sprint": "all", "limit": "1000"}
            if cursor is not None:
                params["since"] = str(cursor)
            try:
                r = await jp_fetch("nbexp", "api", "runs", params=params)
            except tornado.httpclient.HTTPClientError as exc:
                if exc.code == 404 and polls == 0:  # no ledger yet: the kernels are starting
                    await asyncio.sleep(0.2)
                    continue
                raise
            body = json.loads(r.body)
            cursor = body["cursor"]
            seen.update(x["id"] for x in body["runs"])
            polls += 1
            for _msg_id, kc in list(pending.items()):
                try:
                    reply = kc.get_shell_msg(timeout=0.01)
                except Exception:
                    continue
                if reply["parent_header"].get("msg_id") in pending:
                    assert reply["content"]["status"] == "ok", reply["content"]
                    pending.pop(reply["parent_header"]["msg_id"])
            await asyncio.sleep(0.1)
        assert not pending and polls > 3
        # each kernel's writer commits its last rows within its flush interval after the reply: poll until then
        deadline = asyncio.get_event_loop().time() + 30
        while True:
            query = {"sprint": "all", "limit": "1000"}
            final = json.loads((await jp_fetch("nbexp", "api", "runs", params=query)).body)
            if final["total"] >= 4 * 16 or asyncio.get_event_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert final["total"] == 4 * 16  # 4 x (the tracked run + 15 sweep runs)
    finally:
        for kc, km in zip(kcs, kms):
            kc.stop_channels()
            km.shutdown_kernel(now=True)


def test_extensions_listed_enabled_and_ok():
    import re
    import subprocess
    import sys
    from pathlib import Path

    jupyter = str(Path(sys.executable).parent / "jupyter")
    plain = re.compile(r"\x1b\[[0-9;]*m")
    server = subprocess.run([jupyter, "server", "extension", "list"], capture_output=True, text=True)
    out = plain.sub("", server.stdout + server.stderr)
    assert re.search(r"nbexp\s+enabled", out) and re.search(r"nbexp [\d.]+ OK", out), out
    lab = subprocess.run([jupyter, "labextension", "list"], capture_output=True, text=True)
    out = plain.sub("", lab.stdout + lab.stderr)
    assert re.search(r"nbexp v[\d.]+ enabled\s+OK", out), out


async def test_export_downloads_a_bundle_that_imports_elsewhere(filled, jp_fetch, tmp_path):
    from nbexp.export.bundle import import_bundle
    from nbexp.ledger.queries import Reader

    newest, oldest = (await get(jp_fetch, "runs"))["runs"]
    r = await jp_fetch("nbexp", "api", "export", params={"runs": f"{oldest['id']},{newest['id']}"})
    assert r.headers["Content-Type"] == "application/octet-stream"
    name = r.headers["Content-Disposition"].split('filename="')[1].rstrip('"')
    assert name == f"nbexp-{newest['sprint']}-2-runs.nbexp"
    bundle = tmp_path / name
    bundle.write_bytes(r.body)
    other = tmp_path / "laptop.sqlite"
    assert import_bundle(bundle, other)["runs_added"] == 2
    with Reader(other) as rd:
        got = {x["id"]: x for x in rd.list_runs(sprint="all")}
    assert set(got) == {newest["id"], oldest["id"]}
    assert got[newest["id"]]["params"]["LR"] == 0.3 and got[oldest["id"]]["name"] == "first"
    assert got[newest["id"]]["metrics"]["loss"]["steps"] == 30


@pytest.mark.parametrize(
    "params, code, words",
    [
        ({}, 400, "1 to 1000"),
        ({"runs": "../../etc"}, 400, "malformed run id"),
        ({"runs": "abcdef"}, 404, "no run"),
    ],
)
async def test_export_bad_input(filled, jp_fetch, params, code, words):
    got, message = await error_of(jp_fetch, "export", **params)
    assert got == code and words in message


async def test_patch_while_another_process_holds_the_write_lock_is_503(filled, jp_fetch, monkeypatch):
    """Another writer holding the ledger past the busy timeout: 503, Retry-After, the JSON error shape."""
    import sqlite3

    monkeypatch.setenv("NBEXP_BUSY_TIMEOUT_MS", "200")
    rid = (await get(jp_fetch, "runs"))["runs"][0]["id"]
    other = sqlite3.connect(filled, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the write lock, as a busy kernel's writer holds it
    try:
        with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
            await jp_fetch("nbexp", "api", "runs", rid, method="PATCH", body=json.dumps({"starred": True}))
        assert exc.value.code == 503
        assert int(exc.value.response.headers["Retry-After"]) >= 1
        assert json.loads(exc.value.response.body) == {
            "error": {"status": 503, "message": "ledger busy: another process is writing it; retry in a moment"}
        }
    finally:
        other.execute("ROLLBACK")
        other.close()
    row = json.loads(
        (await jp_fetch("nbexp", "api", "runs", rid, method="PATCH", body=json.dumps({"starred": True}))).body
    )
    assert row["starred"] == 1  # the retry goes through once the lock is free


async def test_patch_body_nested_deep_is_400(filled, jp_fetch):
    rid = (await get(jp_fetch, "runs"))["runs"][0]["id"]
    code, message = await error_of(jp_fetch, "runs", rid, method="PATCH", body="[" * 100_000 + "]" * 100_000)
    assert code == 400 and "JSON object" in message


async def test_patch_scrubs_secrets_from_tags_names_and_notes(filled, jp_fetch):
    rid = (await get(jp_fetch, "runs"))["runs"][0]["id"]
    token = "ghp_" + "a1B2" * 9
    body = {"name": f"run {token}", "note": f"used {token}", "add_tags": [token]}
    row = json.loads((await jp_fetch("nbexp", "api", "runs", rid, method="PATCH", body=json.dumps(body))).body)
    assert token not in json.dumps(row) and "[REDACTED]" in row["tags"] and "[REDACTED]" in row["name"]


async def test_main_metric_is_the_sprints_across_polls(cell, ledger_path, jp_fetch):
    """A running run logging only train_loss, newest in the sprint: the sidebar's metric stays test_auc
    (held by more runs) on the first page, on a one-run page, and on every ``since=`` poll; the user's
    pick (``metric=``) wins when the sprint has it."""
    from nbexp import tracker

    def flush():
        tracker.active_session().flush()

    cell("%nbexp track sweep")
    cell("import nbexp\nfor C in (0.1, 1.0, 10.0):\n    with nbexp.run(f'c{C}', C=C):\n        nbexp.log(test_auc=C)")
    flush()
    first = await get(jp_fetch, "runs")
    assert first["main_metric"] == "test_auc"
    cell("live = nbexp.run('live')\nlive.__enter__()\nfor i in range(3):\n    nbexp.log(train_loss=1.0 / (i + 1))")
    flush()
    page = await get(jp_fetch, "runs", limit="1")
    assert page["runs"][0]["name"] == "live" and page["runs"][0]["status"] == "running"
    assert page["main_metric"] == "test_auc" and page["metrics"] == ["test_auc", "train_loss"]
    cursor = page["cursor"]
    for _ in range(2):
        poll = await get(jp_fetch, "runs", since=str(cursor))
        assert "live" in {r["name"] for r in poll["runs"]}  # only running runs come back, none with test_auc
        assert all(r["status"] == "running" and "test_auc" not in r["metrics"] for r in poll["runs"])
        assert poll["main_metric"] == "test_auc"
        cursor = poll["cursor"]
        cell("nbexp.log(train_loss=0.1)")
        flush()
    picked = await get(jp_fetch, "runs", since=str(cursor), metric="train_loss")
    assert picked["main_metric"] == "train_loss"
    assert (await get(jp_fetch, "runs", metric="no_such_metric"))["main_metric"] == "test_auc"
    cell("live.__exit__(None, None, None)\n%nbexp stop")
    empty = await get(jp_fetch, "runs", sprint="1999-01-01")
    assert empty["main_metric"] is None and empty["metrics"] == []  # an empty sprint names no metric


async def test_the_sidebar_page_says_what_each_live_sync_last_said(filled, jp_fetch):
    """The kernel's sync thread keeps its state in the session's row (Store.set_sync_state); the runs page,
    which the sidebar polls, carries it, without the URI's credentials."""
    import time

    from nbexp.capture.secrets import scrub_text
    from nbexp.export.sync import _without_credentials
    from nbexp.ledger import connect, transaction
    from nbexp.ledger.queries import Reader
    from nbexp.ledger.store import Store

    assert (await get(jp_fetch, "runs"))["sync"] == []  # no session synced
    with Reader(filled) as r:
        session = r.run("first")["session_id"]
    conn = connect(filled)
    with transaction(conn):
        uri = _without_credentials("http://me:hunter2@127.0.0.1:5000")
        Store(conn, scrub=scrub_text).set_sync_state(session, uri, "behind by 12 points", 12, time.time())
    conn.close()
    (said,) = (await get(jp_fetch, "runs"))["sync"]
    assert said["session"] == session and said["state"] == "behind by 12 points" and said["behind"] == 12
    assert said["uri"] == "http://127.0.0.1:5000" and said["ended"] is not None  # the session was stopped
