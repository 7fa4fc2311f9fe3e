"""Tutorial-style notebooks in real kernels: one hyperparameter edited in place and the affected
cells re-run gives exactly one new run whose param diff is the tweak (docs/design.md "Runs", issue 15).

Each notebook under tests/notebooks/ is written the way tutorials are: results printed, training
and evaluation in separate cells, no nbexp call but ``%nbexp track``. Its cells are tagged
``hyperparameters``, ``model``, ``train`` and ``evaluate``. Each runs twice: through nbclient
(which sends no cell ids, like papermill and nbconvert) and through a kernel client that sends
JupyterLab's ``cellId`` in the execute_request metadata.

Both runs of each notebook carry the metrics the example prints or keeps, with no line added
(issue 16), and in the JupyterLab mode ``nbexp replay --execute`` of the re-run reproduces them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from nbexp.analysis.compare import compare_runs
from nbexp.ledger.queries import Reader

pytestmark = pytest.mark.kernel
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
# notebook: (the hyperparameter text, its edit, the param that changes, the leaf it flows to); the text is
# edited in the cell tagged ``hyperparameters`` that holds it (lightgbm_train: the train call's argument)
TWEAKS = {
    "sklearn_digits": ("C = 1.0", "C = 0.1", "C", "C"),
    "pytorch_loop": ("learning_rate = 1e-2", "learning_rate = 1e-1", "learning_rate", "lr"),
    "timed_forest": ("max_depth = 3", "max_depth = 5", "max_depth", "max_depth"),
    "keras_fit": ("learning_rate=1e-3", "learning_rate=1e-2", "model.optimizer.learning_rate", "learning_rate"),
    "lightgbm_train": ("num_boost_round=30", "num_boost_round=40", "train.num_boost_round", "num_boost_round"),
    "xgboost_sklearn": ("max_depth=3", "max_depth=5", "xgb_model.max_depth", "max_depth"),
    "joblib_grid_search": ("n_folds = 3", "n_folds = 5", "n_folds", "cv"),
}
RERUN_TAGS = {"hyperparameters", "model", "train", "evaluate"}
# notebook: the metrics its runs carry with no line added (issue 16), name -> points per run; each is what
# the example prints (stdout), keeps in an object (a History, a search, evals_result_) or names at top level
METRICS = {
    "sklearn_digits": {"accuracy": 1},  # print(f"Accuracy: {accuracy_score(...):.3f}")
    "pytorch_loop": {"loss": 5, "accuracy": 1},  # "epoch 1: loss 0.69" per epoch, "Accuracy: 85.9%"
    "timed_forest": {"roc_auc": 1},  # print("ROC AUC:", roc_auc_score(...))
    "keras_fit": {
        "loss": 2,  # History, one point per epoch
        "val_loss": 2,
        "sparse_categorical_accuracy": 2,
        "val_sparse_categorical_accuracy": 2,
        "test_loss": 1,  # model.evaluate(x_test, ...) named by the model's metrics
        "test_sparse_categorical_accuracy": 1,
    },
    "lightgbm_train": {"rmse_test": 1, "valid_0.l2": 1, "valid_0.l1": 1, "best_iteration": 1},
    "xgboost_sklearn": {"validation_0.logloss": 40, "accuracy": 1},  # evals_result_, one point per round
    "joblib_grid_search": {"best_score": 1, "test_score": 1, "scores_mean": 1, "scores_std": 1},
}


@pytest.fixture
def kernel_env(nbexp_home, tmp_path, monkeypatch):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    return None


class LabKernel:
    """A kernel driven like JupyterLab drives it: each execute_request carries the cell's id."""

    def __init__(self):
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def execute_cell(self, cell, index, timeout=120):
        content = {
            "code": cell.source,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        msg = self.kc.session.msg("execute_request", content, metadata={"cellId": cell.id})
        self.kc.shell_channel.send(msg)
        deadline = time.time() + timeout
        while time.time() < deadline:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                assert reply["content"]["status"] == "ok", (cell.source, reply["content"])
                return
        raise TimeoutError(cell.source)

    def shutdown(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)  # a normal shutdown, as when the notebook is closed


def _settle(execute_cell):
    """``%nbexp status``: it writes what the kernel has queued (the writer commits once a second on its own)."""
    status = nbformat.v4.new_code_cell("%nbexp status")
    execute_cell(status, 0)


def _run_and_tweak(nb, execute_cell, tweak, ledger_path):
    """Run every cell, snapshot the run, edit the hyperparameter in place, re-run the tagged cells."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            execute_cell(cell, i)
    _settle(execute_cell)
    with Reader(ledger_path) as r:
        runs = r.list_runs()
        assert len(runs) == 1, [x["name"] for x in runs]
        before = r.run(runs[0]["id"])["params"]
    old, new, _name, _leaf = tweak
    hp = next(c for c in nb.cells if "hyperparameters" in c.metadata.get("tags", []) and old in c.source)
    hp.source = hp.source.replace(old, new)
    for i, cell in enumerate(nb.cells):
        if RERUN_TAGS & set(cell.metadata.get("tags", [])):
            execute_cell(cell, i)
    return before


@pytest.mark.parametrize("mode", ["nbclient", "lab-ids"])
@pytest.mark.parametrize("notebook", sorted(TWEAKS))
def test_tweak_in_place_gives_one_run_whose_diff_is_the_tweak(notebook, mode, kernel_env, ledger_path):
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    tweak = TWEAKS[notebook]
    if mode == "nbclient":
        client = NotebookClient(
            nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}
        )
        with client.setup_kernel():  # shuts the kernel down normally on the way out
            before = _run_and_tweak(nb, client.execute_cell, tweak, ledger_path)
    else:
        k = LabKernel()
        try:
            before = _run_and_tweak(nb, k.execute_cell, tweak, ledger_path)
        finally:
            k.shutdown()
    _old, _new, name, leaf = tweak
    train = next(c for c in nb.cells if "train" in c.metadata.get("tags", []))
    with Reader(ledger_path) as r:
        runs = r.list_runs()
        assert len(runs) == 2, [x["name"] for x in runs]  # exactly one new run
        new_run, first = runs[0], runs[1]
        assert new_run["name"] == first["name"] + " #2" and new_run["kind"] == "rerun"
        # the first run is never rewritten (compared as stored: XGBoost's missing=nan is a NaN param)
        assert json.dumps(r.run(first["id"])["params"], sort_keys=True) == json.dumps(before, sort_keys=True)
        diff = compare_runs(r, [first["id"], new_run["id"]])["param_diff"]
        assert name in diff and all(k == name or k.endswith("." + leaf) for k in diff), diff
        assert {x["status"] for x in runs} == {"finished"}
        for run in runs:  # both runs carry the example's own metrics, with curves where the library keeps them
            steps = {k: v["steps"] for k, v in run["metrics"].items()}
            assert {k: steps.get(k) for k in METRICS[notebook]} == METRICS[notebook], steps
        # the retraining (its time) is in the new run: the last execution of the training cell
        key, run_id = r.conn.execute(
            "SELECT c.cell_key, c.run_id FROM cells c JOIN code ON code.hash = c.code_hash "
            "WHERE code.source = ? ORDER BY c.id DESC LIMIT 1",
            (train.source,),
        ).fetchone()
        assert run_id == new_run["id"]
        if mode == "lab-ids":  # the id JupyterLab sends is the one recorded
            assert key == train.id
    if mode == "lab-ids":
        _replay_reproduces(new_run, ledger_path)


def _replay_reproduces(rerun, ledger_path):
    """`nbexp replay --execute` of a re-run defines every name before use, runs with the same params and
    gives the same metrics (every notebook seeds its randomness, as the tutorials do)."""
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run(
            [sys.executable, "-m", "nbexp.cli", "replay", rerun["id"], "--execute", "-o", f"{tmp}/replay.ipynb"],
            capture_output=True,
            text=True,
            cwd=tmp,
            env=dict(os.environ),
        )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "params: no change" in res.stdout, res.stdout
    with Reader(ledger_path) as r:
        replay = next(x for x in r.list_runs() if x["replay_of"] == rerun["id"])
        assert replay["status"] == "finished"
        for key, s in rerun["metrics"].items():
            assert replay["metrics"][key]["last"] == pytest.approx(s["last"], rel=1e-5, abs=1e-9), key


# Not joblib_grid_search: its evaluation cell also fits clones (cross_val_score), so it is a training cell, and
# running it again opens the next run
EVALUATED_AGAIN = sorted(set(TWEAKS) - {"joblib_grid_search"})


@pytest.mark.parametrize("mode", ["nbclient", "lab-ids"])
@pytest.mark.parametrize("notebook", EVALUATED_AGAIN)
def test_evaluation_cells_run_again_unchanged_open_no_run(notebook, mode, kernel_env, ledger_path):
    """Every cell run, then the cells tagged ``evaluate`` run again as they are (to see their output again):
    they compute what they computed, so the notebook keeps one run, which holds every execution of them."""
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    evaluate = [(i, c) for i, c in enumerate(nb.cells) if "evaluate" in c.metadata.get("tags", [])]
    assert evaluate

    def sprint(execute_cell):
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                execute_cell(cell, i)
        for _ in range(2):
            for i, cell in evaluate:
                execute_cell(cell, i)
        _settle(execute_cell)

    if mode == "nbclient":
        client = NotebookClient(
            nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}
        )
        with client.setup_kernel():
            sprint(client.execute_cell)
    else:
        k = LabKernel()
        try:
            sprint(k.execute_cell)
        finally:
            k.shutdown()
    with Reader(ledger_path) as r:
        runs = r.list_runs()
        assert [x["name"] for x in runs] == [runs[-1]["name"]], [x["name"] for x in runs]
        for _i, cell in evaluate:
            homes = r.conn.execute(
                "SELECT c.run_id FROM cells c JOIN code ON code.hash = c.code_hash WHERE code.source = ?",
                (cell.source,),
            ).fetchall()
            assert [h[0] for h in homes] == [runs[0]["id"]] * 3
