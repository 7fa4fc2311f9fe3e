# ruff: noqa: F811  (the env fixture imported from test_replay is requested by name)
"""``nbexp explain --ablate`` on real notebooks run in real kernels: a sklearn run whose data was filtered
and whose C changed, each factor's effect checked against the same variants computed by hand; a seeded
torch run whose only change is the seed."""

from __future__ import annotations

import json

import pytest
from test_replay import cli, env, execute  # noqa: F401  (env: a fixture)

from nbexp.ledger.queries import Reader

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

LOAD = (
    "from sklearn.datasets import load_breast_cancer\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\nfrom sklearn.metrics import roc_auc_score\n"
    "X, y = load_breast_cancer(return_X_y=True)\n"
)
FILTER = "keep = X[:, 0] > 13.0\nX, y = X[keep], y[keep]\n"
SPLIT = "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
FIT = (
    "model = LogisticRegression(C=C, max_iter=MAX_ITER).fit(X_train, y_train)\n"
    "test_auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])"
)


def sklearn_cells(filtered: bool, c: float) -> list[str]:
    return [
        "%load_ext nbexp\n%nbexp track sk",
        LOAD + (FILTER if filtered else "") + SPLIT,
        f"C = {c}\nMAX_ITER = 5000",
        FIT,
    ]


def by_hand(filtered: bool, c: float) -> float:
    """The notebook's test_auc, computed here without any kernel or nbexp."""
    ns: dict = {}
    exec(LOAD + (FILTER if filtered else "") + SPLIT + f"\nC = {c}\nMAX_ITER = 5000\n" + FIT, ns)
    return ns["test_auc"]


def test_filtered_data_comes_first_and_ablation_measures_each_factor(env, ledger_path):
    execute(sklearn_cells(False, 0.5), env)
    execute(sklearn_cells(True, 0.001), env)
    with Reader(ledger_path) as r:
        a, b = r.resolve("latest~1"), r.resolve("latest")
    res = cli("explain", b, "--vs", a, "--json", cwd=env)
    assert res.returncode == 0, res.stderr
    ex = json.loads(res.stdout)
    assert ex["metric"] == "test_auc"
    kinds = [f["kind"] for f in ex["factors"]]
    assert kinds[:2] == ["data", "param"], ex["factors"]
    data, param = ex["factors"][:2]
    assert "X_train" in data["title"] and "PSI" in data["sentence"]  # the filter drifted the training data
    assert param["title"] == "C 0.5 -> 0.001" and param["revert"] == {"params": {"C": 0.5}}

    res = cli("explain", b, "--vs", a, "--ablate", "--budget", "4", "--json", cwd=env)
    assert res.returncode == 0, res.stderr
    ex = json.loads(res.stdout)
    ab = ex["ablation"]
    assert len(ab["noise_values"]) == 2 and ab["replays"] == 4
    noise = ab["noise"] + 1e-9
    factors = {f["kind"]: f for f in ex["factors"]}
    vb = by_hand(True, 0.001)
    assert ex["value_b"] == pytest.approx(vb, abs=noise) and ex["value_a"] == pytest.approx(by_hand(False, 0.5))
    data_effect = vb - by_hand(False, 0.001)  # B with A's data
    param_effect = vb - by_hand(True, 0.5)  # B with A's C
    assert factors["data"]["effect"] == pytest.approx(data_effect, abs=noise)
    assert factors["param"]["effect"] == pytest.approx(param_effect, abs=noise)
    assert abs(data_effect) > abs(param_effect) > noise  # measured: the data matters most, C a little
    ranked = [f["kind"] for f in ex["factors"][:2]]
    assert ranked == ["data", "param"]
    steps = ab["waterfall"]
    assert steps[0]["value"] == ex["value_a"] and steps[-1]["value"] == ex["value_b"]
    assert sum(s["value"] for s in steps[:-1]) == pytest.approx(ex["value_b"])
    assert ab["figure"]["data"][0]["type"] == "waterfall"
    # the replays are runs of the ledger, linked to the stored explanation
    with Reader(ledger_path) as r:
        stored = r.explanations(run_b=b)
        assert [s["status"] for s in stored] == ["finished"] and stored[0]["id"] == ab["id"]
        links = r.ablation_runs(ab["id"])
        assert sorted(links.values()) == sorted(["", "", factors["data"]["key"], factors["param"]["key"]])
        assert all(r.run(rid)["replay_of"] == b and "ablation" in r.run(rid)["tags"] for rid in links)
    text = cli("explain", b, "--vs", a, cwd=env)  # the stored ablation, shown without replaying again
    assert text.returncode == 0, text.stderr
    assert f"ablation {ab['id']}, stored" in text.stdout
    assert "test_auc -0.021 (0.995 -> 0.9739): most of it follows the data" in text.stdout, text.stdout
    assert "waterfall of test_auc" in text.stdout
    again = json.loads(cli("explain", "--json", cwd=env).stdout)  # latest --vs best: the replays are neither
    assert (again["b"], again["a"]) == (b, a) and again["ablation"]["id"] == ab["id"]
    review = cli("review", "--sprint", "today", cwd=env)  # the next morning: the finished ablation is there
    assert review.returncode == 0, review.stderr
    assert (
        f"ablation of run {b} vs {a}: test_auc -0.021 (0.995 -> 0.9739): most of it follows the data" in review.stdout
    )
    assert cli("explain", b, "--vs", a, "--ablate", "--budget", "1").returncode == 2


TORCH = [
    "%load_ext nbexp\n%nbexp track torch-seeded",
    "import torch\nSEED = {seed}\ntorch.manual_seed(SEED)\n"
    "X = torch.randn(256, 4)\ny = (X[:, 0] + X[:, 1] > 0).float()",
    "EPOCHS = 30\nLR = 0.1",
    "model = torch.nn.Linear(4, 1)\nopt = torch.optim.SGD(model.parameters(), lr=LR)\n"
    "for _ in range(EPOCHS):\n"
    "    opt.zero_grad()\n"
    "    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(X).squeeze(1), y)\n"
    "    loss.backward()\n"
    "    opt.step()\n"
    "train_loss = float(loss)",
]


def test_a_run_that_changed_only_its_seed_says_so(env, ledger_path):
    for seed in (0, 1):
        execute([c.replace("{seed}", str(seed)) for c in TORCH], env)
    res = cli("explain", "latest", "--vs", "latest~1", "--json", cwd=env)
    assert res.returncode == 0, res.stderr
    ex = json.loads(res.stdout)
    assert ex["only_seed"] and {f["kind"] for f in ex["factors"]} == {"seed"}, ex["factors"]
    assert "nothing changed but the seed" in ex["summary"] and "SEED 0 -> 1" in ex["summary"]
    assert ex["delta"] != 0
