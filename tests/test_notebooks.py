"""Tutorial-style notebooks in real kernels: one hyperparameter edited in place and the affected
cells re-run gives exactly one new run whose param diff is the tweak (docs/design.md "Runs", issue 15).

Each notebook under tests/notebooks/ is written the way tutorials are: results printed, training
and evaluation in separate cells, no nbexp call but ``%nbexp track``. Its cells are tagged
``hyperparameters``, ``model``, ``train`` and ``evaluate``. Each runs twice: through nbclient
(which sends no cell ids, like papermill and nbconvert) and through a kernel client that sends
JupyterLab's ``cellId`` in the execute_request metadata.
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


def _run_and_tweak(nb, execute_cell, tweak, ledger_path):
    """Run every cell, snapshot the run, edit the hyperparameter in place, re-run the tagged cells."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            execute_cell(cell, i)
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
        # the retraining (its time) is in the new run: the last execution of the training cell
        key, run_id = r.conn.execute(
            "SELECT c.cell_key, c.run_id FROM cells c JOIN code ON code.hash = c.code_hash "
            "WHERE code.source = ? ORDER BY c.id DESC LIMIT 1",
            (train.source,),
        ).fetchone()
        assert run_id == new_run["id"]
        if mode == "lab-ids":  # the id JupyterLab sends is the one recorded
            assert key == train.id


def test_replay_of_a_rerun_reproduces_its_metric(kernel_env, ledger_path, tmp_path):
    """JupyterLab ids, the learning rate edited and the tagged cells re-run: `nbexp replay
    --execute` of the re-run defines every name before use and reproduces its loss."""
    import os
    import subprocess
    import sys

    nb = nbformat.read(NOTEBOOKS / "pytorch_loop.ipynb", as_version=4)
    k = LabKernel()
    try:
        _run_and_tweak(nb, k.execute_cell, TWEAKS["pytorch_loop"], ledger_path)
    finally:
        k.shutdown()
    with Reader(ledger_path) as r:
        rerun = r.list_runs()[0]
    assert rerun["kind"] == "rerun"
    out = tmp_path / "replay.ipynb"
    res = subprocess.run(
        [sys.executable, "-m", "nbexp.cli", "replay", rerun["id"], "--execute", "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ),
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "params: no change" in res.stdout
    with Reader(ledger_path) as r:
        replay = next(x for x in r.list_runs() if x["replay_of"] == rerun["id"])
        assert replay["status"] == "finished"
        assert replay["params"]["learning_rate"] == 1e-1
        assert replay["metrics"]["loss"]["last"] == pytest.approx(rerun["metrics"]["loss"]["last"], abs=1e-9)
