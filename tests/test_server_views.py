# ruff: noqa: F811  (the fixtures imported from test_server are requested by name)
"""The compare and run-details API the views read: the user's choices (baseline, parallel-coordinates
params, scatter param, metric) reach the figures, a run's charts and the best run of its sprint, and bad
choices are 400s that say which argument. A real Jupyter Server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import pytest
from test_server import error_of, filled, get, jp_server_config  # noqa: F401  (fixtures)

pytestmark = pytest.mark.server


async def test_compare_takes_the_users_choices(filled, jp_fetch):
    ids = [r["id"] for r in (await get(jp_fetch, "runs"))["runs"]][::-1]  # oldest first
    c = await get(jp_fetch, "compare", runs=",".join(ids), baseline=ids[1], metric="acc", x="LR", params="LR")
    assert c["baseline"] == 1 and c["baseline_delta"]["acc"] == [pytest.approx(-0.2), None]
    assert c["x_param"] == "LR" and c["metric"] == "acc"
    assert c["figures"]["scatter"]["layout"]["title"]["text"] == "acc against LR (★ best run)"
    assert [d["label"] for d in c["figures"]["parallel"]["data"][0]["dimensions"]] == ["LR", "acc"]
    grid = c["figures"]["grid"]
    assert [a["text"] for a in grid["layout"]["annotations"]] == ["acc", "loss"]
    assert {t["legendgroup"]: t["marker"]["color"] for t in grid["data"]} == c["colours"]
    added = [line for b in c["code_cells"] for line in b.get("lines", []) if line[0] == "+"]
    assert ["+", "LR = 0.3"] in added and not any("In[" in text for _, text in added)


async def test_run_figures_and_the_best_run_of_the_sprint(filled, jp_fetch):
    runs = (await get(jp_fetch, "runs"))["runs"]
    worse, better = sorted(runs, key=lambda r: r["metrics"]["acc"])
    out = await get(jp_fetch, "runs", worse["id"], "figures")
    assert out["best"]["id"] == better["id"] and out["best"]["metric"] == "acc"
    grid = out["figures"]["grid"]
    assert [t["type"] for t in grid["data"]] == ["bar", "scatter"]  # acc: one value; loss: 30 steps
    run = await get(jp_fetch, "runs", worse["id"])
    assert run["param_sources"] == {"LR": "assign"}


@pytest.mark.parametrize(
    "params, words",
    [
        ({"baseline": "xyz"}, "malformed run id"),
        ({"baseline": "ffffff"}, "no run"),
        ({"params": "a\nb"}, "malformed param name"),
        ({"x": "y" * 201}, "malformed param name"),
        ({"metric": "a b"}, "malformed metric name"),
    ],
)
async def test_bad_choices_are_400s_naming_the_argument(filled, jp_fetch, params, words):
    ids = [r["id"] for r in (await get(jp_fetch, "runs"))["runs"]]
    code, message = await error_of(jp_fetch, "compare", runs=",".join(ids), **params)
    assert code in (400, 404) and words in message
