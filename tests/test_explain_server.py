"""The Explain and importance routes under /nbexp/api/ on a real Jupyter Server (what the compare view's
Explain action and the UI's importance read)."""

from __future__ import annotations

import json

import pytest
import tornado.httpclient

from nbexp.ledger.queries import Reader

SWEEP = (  # as in test_explain.py: lr matters, batch barely
    "import nbexp\n"
    "grid = [(0.1, 32), (0.5, 64), (0.3, 32), (0.2, 64), (0.4, 32), (0.05, 64), (0.35, 32)]\n"
    "for i, (lr, batch) in enumerate(grid):\n"
    "    with nbexp.run(f'r{i}', lr=lr, batch=batch):\n"
    "        nbexp.log(val_auc=0.9 - (lr - 0.3) ** 2 + 0.0001 * (batch == 64))"
)

pytestmark = pytest.mark.server


@pytest.fixture
def sweep(cell, ledger_path):
    cell("%nbexp track")
    cell(SWEEP)
    cell("%nbexp stop")
    with Reader(ledger_path) as r:
        return {run["name"]: run["id"] for run in r.list_runs()}


@pytest.fixture
def jp_server_config(ledger_path):
    return {"ServerApp": {"jpserver_extensions": {"nbexp": True}}, "NbexpApp": {"ledger": str(ledger_path)}}


async def get(jp_fetch, path, **params):
    return json.loads((await jp_fetch("nbexp", "api", path, params=params)).body)


async def status_of(jp_fetch, path, **params):
    with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
        await jp_fetch("nbexp", "api", path, params=params)
    message = json.loads(exc.value.response.body)["error"]["message"]
    assert "Traceback" not in message
    return exc.value.code, message


async def test_explain_and_importance_routes(sweep, jp_fetch):
    ex = await get(jp_fetch, "explain", runs=f"{sweep['r1']},{sweep['r2']}")
    assert ex["a"] == sweep["r1"] and ex["b"] == sweep["r2"] and ex["metric"] == "val_auc"
    assert {f["title"] for f in ex["factors"]} == {"lr 0.5 -> 0.3", "batch 64 -> 32"}
    assert ex["summary"].startswith("val_auc +0.0399")
    imp = await get(jp_fetch, "importance", sprint="today")
    assert imp["metric"] == "val_auc" and imp["runs"] == 7
    assert [p["param"] for p in imp["params"]] == ["lr", "batch"]
    code, message = await status_of(jp_fetch, "explain", runs=sweep["r1"])
    assert code == 400 and "2 to 2 run ids" in message
    code, message = await status_of(jp_fetch, "explain", runs=f"{sweep['r1']},{sweep['r2']}", metric="nope")
    assert code == 400 and "'nope'" in message
    code, message = await status_of(jp_fetch, "importance", metric="x;drop")
    assert code == 400 and "malformed metric" in message
