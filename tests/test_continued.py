"""A run that trains another run's model on from its weights (``nbexp.tracker.Session._continued``): the user, replay
and explain are told; a model that starts afresh when fitted again says nothing."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from nbexp.cli import main

# the PyTorch quickstart's layout, small: the model in a cell of its own, the learning rate in another
WARM = [
    ("data", "import torch\ntorch.manual_seed(0)\nX = torch.randn(256, 8)\ny = (X.sum(1) > 0).long()"),
    ("model", "model = torch.nn.Linear(8, 2)"),
    ("lr", "learning_rate = 0.01"),
    ("opt", "loss_fn = torch.nn.CrossEntropyLoss()\noptimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)"),
    (
        "train",
        "for epoch in range(20):\n"
        "    loss = loss_fn(model(X), y)\n"
        "    optimizer.zero_grad()\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "acc = (model(X).argmax(1) == y).float().mean().item()\n"
        "print(f'Accuracy: {acc:.4f}')",
    ),
]


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_a_rerun_that_trains_the_previous_runs_model_on_says_so(shell, reader, ledger_path, capsys, ids):
    """The learning rate edited and the notebook run again from its cell down: the model's cell is not run again, so
    the second run trains the first run's model on from its weights. The user is told once, and ``nbexp replay``
    and ``nbexp explain`` say so (a model factor, first). Before, nothing said it: the diff was the learning rate
    alone, the replay (building the model afresh) computed other values, and ``explain`` blamed the seed (a user
    trial). Run again with the model's cell, it trains from scratch and nothing is said."""

    def run(key, code):
        res = shell.run_cell(code, store_history=True, cell_id=key if ids else None)
        assert res.success, res.error_in_exec

    run("track", "%nbexp track --sample-hz 0 warm")
    cells = dict(WARM)
    for key, code in WARM:
        run(key, code)
    capsys.readouterr()
    run("lr", "learning_rate = 0.02")
    for key in ("opt", "train"):
        run(key, cells[key])
    err = capsys.readouterr().err
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["warm #2", "warm"]
    first, second = runs[1]["id"], runs[0]["id"]
    note = (
        f"run {second} trained model on from the weights run {first} left (model was not built again since): a "
        "replay, which builds it afresh, computes other values"
    )
    assert f"nbexp: warning: {note}" in err, err
    assert [e["message"] for e in reader().run(second)["events"] if e["cause"] == "continued"] == [note]
    assert not [e for e in reader().run(first)["events"] if e["cause"] == "continued"]
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "replay", second, "-o", os.devnull])
    assert res.exit_code == 0 and f"warning: the model: {note}" in res.output, res.output
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "explain", second, "--vs", first, "--json"])
    factors = json.loads(res.output)["factors"]
    assert (factors[0]["kind"], factors[0]["evidence"]["note"]) == ("model", note), factors
    # the model's cell run again too: trained from scratch, nothing to say
    run("lr", "learning_rate = 0.05")
    for key in ("model", "opt", "train"):
        run(key, cells[key])
    third = reader().list_runs()[0]
    assert third["name"] == "warm #3"
    assert not [e for e in reader().run(third["id"])["events"] if e["cause"] == "continued"]


def test_an_estimator_fitted_again_starts_afresh_and_is_no_continued_model(shell, reader):
    """scikit-learn's ``fit`` starts from scratch: the same estimator object fitted again by the next run (its ``C``
    set in place) trained nothing on, and nothing is said; one with ``warm_start=True`` goes on from its coefficients,
    and is."""
    shell.run_cell("%nbexp track --sample-hz 0 sk")
    shell.run_cell(
        "from sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression\n"
        "X, y = load_iris(return_X_y=True)"
    )
    for warm in (False, True):
        shell.run_cell(f"clf = LogisticRegression(max_iter=50, warm_start={warm})")
        for c in (1.0, 0.5):
            assert shell.run_cell(f"C = {c}", store_history=True).success
            assert shell.run_cell("clf.set_params(C=C)\nclf.fit(X, y)", store_history=True).success
    runs = reader().list_runs()
    noted = [bool([e for e in reader().run(r["id"])["events"] if e["cause"] == "continued"]) for r in reversed(runs)]
    assert noted == [False, False, False, True], noted
