"""End to end in real Jupyter kernels (ipykernel via jupyter_client / nbclient)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from nbexp.ledger.queries import Reader

pytestmark = pytest.mark.kernel
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "example_notebooks" / "01-one-day-sprint.ipynb"


@pytest.fixture
def kernel_env(nbexp_home, tmp_path, monkeypatch):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    return dict(os.environ)


class Kernel:
    def __init__(self, env):
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code, timeout=120):
        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
        return reply["content"]

    def send(self, code):
        return self.kc.execute(code)

    def wait(self, msg_id, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]
        raise TimeoutError(msg_id)

    @property
    def pid(self):
        return self.km.provisioner.process.pid

    def shutdown(self):
        self.kc.stop_channels()
        if self.km.is_alive():
            self.km.shutdown_kernel(now=True)
        else:  # killed by the test: close its sockets all the same
            self.km.cleanup_resources()
        # Left to the garbage collector, a context with open sockets blocks forever in term(),
        # hanging whichever later test happens to collect it.
        self.km.context.destroy(linger=0)


@pytest.fixture
def kernels(kernel_env):
    started = []

    def start():
        k = Kernel(kernel_env)
        started.append(k)
        return k

    yield start
    for k in started:
        k.shutdown()


def test_example_notebook_end_to_end(kernel_env, ledger_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(ROOT)}}).execute()
    with Reader(ledger_path) as r:
        runs = list(reversed(r.list_runs()))
        assert [x["status"] for x in runs] == ["finished"] * 9
        baseline, tweaked = runs[0], runs[1]
        assert baseline["name"] == "baseline" and tweaked["kind"] == "rerun"
        from nbexp.analysis.compare import compare_runs

        sk = compare_runs(r, [baseline["id"], tweaked["id"]])
        assert sk["param_diff"] == {"C": [0.01, 1.0], "model.logisticregression.C": [0.01, 1.0]}
        assert set(sk["metrics"]) >= {"test_auc", "test_acc"}
        sweep = [x for x in runs if x["kind"] == "context"]
        assert sorted(x["params"]["C"] for x in sweep) == [0.001, 0.1, 10.0]
        torch_a, torch_b = runs[-4], runs[-3]
        tc = compare_runs(r, [torch_a["id"], torch_b["id"]])
        assert tc["param_diff"] == {"LR": [0.01, 0.1], "opt.lr": [0.01, 0.1]}
        assert torch_a["metrics"]["train_loss"]["steps"] == 60
        assert torch_b["metrics"]["val_loss"]["last"] != torch_a["metrics"]["val_loss"]["last"]
        # the filtered reload: drift flags exactly feature 5, the 10%-minority label is imbalanced
        from nbexp.analysis.drift import drift_between

        syn_a, syn_b = runs[-2], runs[-1]
        assert compare_runs(r, [syn_a["id"], syn_b["id"]])["param_diff"] == {"MIN_F5": [None, -0.5]}
        flagged = {
            (row["variable"], row["column"]) for row in drift_between(r, syn_a["id"], syn_b["id"]) if row["flags"]
        }
        assert flagged == {("X_tr", "5")}
        y = {d["name"]: d for d in r.data(syn_b["id"])}["y_tr"]["summary"]["columns"][0]
        assert y["imbalanced"] and 0.09 < y["minority_share"] < 0.12
        session = r.run(baseline["id"])["session"]
        assert session["python"] and session["env_id"] and session["kernel_id"]


def test_four_kernels_write_one_ledger_at_once(kernels, ledger_path):
    ks = [kernels() for _ in range(4)]
    for i, k in enumerate(ks):
        assert k.run(f"%load_ext nbexp\n%nbexp track k{i}")["status"] == "ok"
    code = (
        "import nbexp\n"
        "for r in range(20):\n"
        "    with nbexp.run(f'r{r}', idx=r):\n"
        "        for s in range(500):\n"
        "            nbexp.log(loss=s * 0.1)\n"
    )
    ids = [k.send(code) for k in ks]
    for k, msg_id in zip(ks, ids):
        assert k.wait(msg_id)["status"] == "ok"
    for k in ks:
        assert k.run("%nbexp stop")["status"] == "ok"
    conn = sqlite3.connect(ledger_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 4
    assert conn.execute("SELECT count(*) FROM runs WHERE kind = 'context' AND status = 'finished'").fetchone()[0] == 80
    assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == 4 * 20 * 500
    conn.close()


def test_sigkilled_kernel_shows_crashed_and_keeps_earlier_data(kernels, ledger_path, tmp_path):
    k = kernels()
    k.run("%load_ext nbexp\n%nbexp track doomed")
    k.run("LR = 0.5")
    k.run("import nbexp\nfor i in range(100):\n    nbexp.log(loss=LR / (i + 1))\nacc = 0.25 * 3")
    deadline = time.time() + 10
    while time.time() < deadline:  # the writer commits right after the cell
        with sqlite3.connect(ledger_path) as c:
            if c.execute("SELECT count(*) FROM metrics").fetchone()[0] == 101:
                break
        time.sleep(0.1)
    os.kill(k.pid, signal.SIGKILL)
    k.km.provisioner.process.wait(10)
    with Reader(ledger_path) as r:
        run = r.run("doomed")
        assert run["status"] == "crashed"
        assert run["params"]["LR"] == 0.5
        assert run["metrics"]["loss"]["steps"] == 100 and run["metrics"]["acc"]["last"] == 0.75
        assert len(run["lineage"]) >= 2
    out = subprocess.run(
        [sys.executable, "-m", "nbexp.cli", "--ledger", str(ledger_path), "ls", "--status", "crashed"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "doomed" in out and "crashed" in out
    # A later kernel on the same ledger sees it crashed too.
    k2 = kernels()
    reply = k2.run(f"import nbexp\nassert nbexp.runs(ledger={str(ledger_path)!r}).status.tolist() == ['crashed']")
    assert reply["status"] == "ok"


def test_kernel_shutdown_finishes_the_run_and_flushes(kernels, ledger_path):
    k = kernels()
    k.run("%load_ext nbexp\n%nbexp track graceful")
    k.run("import nbexp\nfor i in range(1000):\n    nbexp.log(loss=i)")
    k.kc.stop_channels()
    k.km.shutdown_kernel(now=False)  # a normal shutdown: atexit closes the session
    with Reader(ledger_path) as r:
        run = r.run("graceful")
        assert run["status"] == "finished" and run["end_time"] is not None
        assert run["metrics"]["loss"]["steps"] == 1000
        assert run["session"]["ended"] is not None


def test_fingerprint_stable_across_kernels(kernels, ledger_path):
    code = (
        "import numpy as np, pandas as pd\n"
        "rng = np.random.default_rng(7)\n"
        "frame = pd.DataFrame({'x': rng.normal(size=5000), 'c': rng.choice(['a', 'b'], 5000)})\n"
        "score = float(frame.x.mean())"
    )
    for i in range(2):
        k = kernels()
        k.run(f"%load_ext nbexp\n%nbexp track k{i}")
        assert k.run(code)["status"] == "ok"
        k.run("%nbexp stop")
    conn = sqlite3.connect(ledger_path)
    rows = conn.execute("SELECT run_id, fingerprint FROM run_data WHERE name = 'frame'").fetchall()
    assert len(rows) == 2 and rows[0][1] == rows[1][1]
    assert conn.execute("SELECT count(*) FROM datasets").fetchone()[0] == 1  # summarized once
    conn.close()


def test_compare_widget_in_a_real_kernel(kernel_env, ledger_path):
    """nbexp.compare as a cell's last value shows tabs whose outputs hold the plotly figures."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(c)
            for c in (
                "%load_ext nbexp\n%nbexp track",
                "LR = 0.1",
                "import nbexp\nfor i in range(5):\n    nbexp.log(loss=LR / (i + 1))",
                "LR = 0.2",
                "import nbexp\nfor i in range(5):\n    nbexp.log(loss=LR / (i + 1))",
                "nbexp.compare('latest~1', 'latest')",
            )
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, kernel_name="python3", timeout=120, store_widget_state=True).execute()
    last = nb.cells[-1].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in last)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    outputs = [o for m in state.values() if m["model_name"] == "OutputModel" for o in m["state"].get("outputs", [])]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)
    assert any("LR" in str(o.get("data", {}).get("text/html", "")) for o in outputs)
    titles = [m["state"].get("titles") for m in state.values() if m["model_name"] == "TabModel"]
    assert titles and "Metric curves" in titles[0]


def test_polars_and_spark_fingerprints_stable_across_kernels(kernels, ledger_path):
    """The same rows give the same fingerprint in two kernels, for Spark even when the second
    kernel's frame is partitioned and ordered differently; each is summarized once."""
    for i in range(2):
        k = kernels()
        k.run(f"%load_ext nbexp\n%nbexp track k{i} --sample-hz 0")
        reply = k.run(
            "import polars as pl\n"
            "from pyspark.sql import SparkSession, functions as F\n"
            "spark = (SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false')\n"
            "         .config('spark.ui.showConsoleProgress', 'false')\n"
            "         .config('spark.driver.bindAddress', '127.0.0.1').config('spark.driver.host', '127.0.0.1')\n"
            "         .getOrCreate())\n"
            f"table = spark.range(3000).withColumn('x', F.col('id') % 7 * 0.5).repartition({i + 1})"
            f".orderBy(F.rand({i}))\n"
            "small = pl.DataFrame({'a': [1.5, None, 3.0] * 100, 's': ['u', 'v', None] * 100})\n"
            "score = float(table.count() + small.height)",
            timeout=180,
        )
        assert reply["status"] == "ok", reply
        assert k.run("import nbexp\nnbexp.runs()\nspark.stop()", timeout=180)["status"] == "ok"
        k.run("%nbexp stop")
    conn = sqlite3.connect(ledger_path)
    for name, kind in (("table", "spark-dataframe"), ("small", "polars-dataframe")):
        fps = [fp for (fp,) in conn.execute("SELECT fingerprint FROM run_data WHERE name = ?", (name,))]
        assert len(fps) == 2 and fps[0] == fps[1], name
        assert conn.execute("SELECT count(*) FROM datasets WHERE kind = ?", (kind,)).fetchone()[0] == 1
    conn.close()


def test_cell_running_when_the_kernel_dies_is_the_one_review_blames(kernels, ledger_path):
    k = kernels()
    k.run("%load_ext nbexp\n%nbexp track doomed")
    k.run("def helper(x):\n    return x + 1")
    k.send("import time\nfor _ in range(600):\n    time.sleep(0.1)   # a long training, killed by OOM")
    deadline = time.time() + 30
    running = None
    while time.time() < deadline and not running:  # the cell is stored when it starts, not when it ends
        c = sqlite3.connect(ledger_path)
        running = c.execute("SELECT count(*) FROM cells WHERE status = 'running'").fetchone()[0]
        c.close()
        time.sleep(0.1)
    assert running == 1
    os.kill(k.pid, signal.SIGKILL)
    k.km.provisioner.process.wait(10)
    out = subprocess.run(
        [sys.executable, "-m", "nbexp.cli", "--ledger", str(ledger_path), "review", "--sprint", "today"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "kernel died while running cell: import time" in out
    assert "def helper" not in out


LOKY_CELL = (
    "from joblib import Parallel, delayed\n"
    "from sklearn.datasets import make_classification\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.model_selection import cross_val_score\n"
    "X, y = make_classification(n_samples=200, random_state=0)\n"
    "scores = cross_val_score(RandomForestClassifier(n_estimators=10), X, y, cv=3, n_jobs=2)\n"
    "print(Parallel(n_jobs=2)(delayed(abs)(-i) for i in range(4)))"
)


def test_slow_shutdown_with_joblib_workers_is_not_a_crash(kernels, ledger_path):
    """joblib/loky with n_jobs=2 leaves worker processes: the kernel takes longer than Jupyter's
    2.5 s to exit and gets SIGTERM. Its runs still end finished, not crashed."""
    k = kernels()
    k.run("%load_ext nbexp\n%nbexp track joblib-run")
    assert k.run(LOKY_CELL)["status"] == "ok"
    k.kc.stop_channels()
    k.km.shutdown_kernel(now=False)
    with Reader(ledger_path) as r:
        run = r.run("joblib-run")
        assert run["status"] == "finished" and run["end_time"] is not None
        assert run["session"]["ended"] is not None


def test_sigterm_ends_runs_finished_or_interrupted(kernels, ledger_path):
    """SIGTERM (docker stop, a scheduler, Jupyter after a slow shutdown) is not a crash: an idle
    kernel's run ends finished, a run whose cell was executing ends interrupted."""
    idle, busy = kernels(), kernels()
    idle.run("%load_ext nbexp\n%nbexp track idle-run")
    idle.run("LR = 0.5")
    busy.run("%load_ext nbexp\n%nbexp track busy-run")
    busy.send("import time\nfor _ in range(600):\n    time.sleep(0.1)")
    deadline = time.time() + 30
    running = 0
    while time.time() < deadline and not running:
        c = sqlite3.connect(ledger_path)
        running = c.execute("SELECT count(*) FROM cells WHERE status = 'running'").fetchone()[0]
        c.close()
        time.sleep(0.1)
    for k in (idle, busy):
        os.kill(k.pid, signal.SIGTERM)
        k.km.provisioner.process.wait(10)
    with Reader(ledger_path) as r:
        assert r.run("idle-run")["status"] == "finished"
        busy_run = r.run("busy-run")
        assert busy_run["status"] == "interrupted"
        assert (
            r.conn.execute("SELECT status FROM cells WHERE run_id = ? ORDER BY id DESC", (busy_run["id"],)).fetchone()[
                0
            ]
            == "interrupted"
        )


def test_the_kernel_replies_before_nbexp_reads_what_the_cell_left(kernels, ledger_path, tmp_path):
    """A cell's capture (params, metrics, results, data) runs in the kernel's idle time after the
    reply, and the next cell, even one sent back to back, waits for it: the record is what the
    namespace held when the cell ended, never what a later cell left."""
    flag = tmp_path / "replied"
    k = kernels()
    k.run("%load_ext nbexp\n%nbexp track deferred")
    k.run(
        "import dataclasses, os, time\n"
        "@dataclasses.dataclass\n"
        "class Config:\n"
        "    lr: float = 0.1\n"
        "    def __getattribute__(self, key):\n"
        "        if key == 'when':  # nbexp reads the fields: has the client seen the reply by then?\n"
        f"            for _ in range(100):\n"
        f"                if os.path.exists({str(flag)!r}):\n"
        "                    return 'after the reply'\n"
        "                time.sleep(0.1)\n"
        "            return 'before the reply'\n"
        "        return object.__getattribute__(self, key)\n"
        "    when: str = ''\n"
    )
    first = k.send("cfg = Config(lr=0.1)")
    assert k.wait(first)["status"] == "ok"
    flag.touch()
    # back to back: each cell is queued while the one before may still be captured
    codes = ("%nbexp stop", "%nbexp track evals", "val_loss = 0.1 * 3", "val_loss = 0.1 * 2", "%nbexp stop")
    sent = [k.send(code) for code in codes]
    assert [k.wait(m)["status"] for m in sent] == ["ok"] * len(codes)
    with Reader(ledger_path) as r:
        assert r.run("deferred")["params"]["cfg.when"] == "after the reply"
        first_run, rerun = r.run("evals"), r.run("evals #2")
    assert first_run["metrics"]["val_loss"]["last"] == pytest.approx(0.3)
    assert rerun["metrics"]["val_loss"]["last"] == pytest.approx(0.2)


def test_a_capture_warning_shows_under_the_cell_that_caused_it(kernels):
    """The capture runs after the reply, yet before the kernel says it is idle: a notebook (like
    ``execute_interactive`` here) stops listening to a cell at idle, so a warning written later
    would reach no cell."""
    k = kernels()
    k.run("%load_ext nbexp\n%nbexp track")
    shown = []
    reply = k.kc.execute_interactive(
        "class Model:\n"
        "    def get_params(self, deep=True):\n"
        "        raise RuntimeError('no params today')\n"
        "    def fit(self, X):\n"
        "        return self\n"
        "model = Model()",
        timeout=120,
        output_hook=shown.append,
    )
    assert reply["content"]["status"] == "ok"
    text = "".join(m["content"]["text"] for m in shown if m["msg_type"] == "stream")
    assert "nbexp: warning: params of 'model' skipped (RuntimeError: no params today)" in text


def test_a_cells_capture_starts_once_its_reply_has_left_the_kernel(kernels, ledger_path):
    """The execute reply leaves through ipykernel's shell-channel thread, which needs the GIL at each
    step of the send; a capture started beside it took turns with it at the GIL and held the reply
    back (bench/RESULTS.md, 2026-11-26). The capture waits, the GIL free, until the shell stream has
    sent the reply, and ``%nbexp stop`` leaves the stream's send callback as it found it. (A guard: the
    capture reads a config late enough that the reply had mostly left before too; the figure is the
    kernel bench's.)"""
    k = kernels()
    k.run("%load_ext nbexp")
    k.run(
        "import dataclasses\n"
        "_stream = get_ipython().kernel.shell_stream\n"
        "_before, _sent = _stream._send_callback, []\n"
        "@dataclasses.dataclass\n"
        "class Config:\n"
        "    lr: float = 0.1\n"
        "    def __getattribute__(self, key):\n"
        "        if key == 'when':  # read by nbexp's capture: had the reply left by then?\n"
        "            return 'after the reply' if len(_sent) > object.__getattribute__(self, 'sends') else 'before'\n"
        "        return object.__getattribute__(self, key)\n"
        "    when: str = ''\n"
        "    sends: int = 0\n"
    )
    names = [f"replies-{i}" for i in range(4)]
    for name in names:
        k.run(f"%nbexp track {name}")
        k.run(  # the shell stream's sends, counted (after nbexp's own callback, which it keeps)
            "_theirs = _stream._send_callback\n"
            "_stream.on_send(lambda msg, status: (_sent.append(1), _theirs and _theirs(msg, status)))"
        )
        assert k.run("cfg = Config(lr=0.1, sends=len(_sent))")["status"] == "ok"
        for i in range(3):
            assert k.run(f"x = {i}")["status"] == "ok"
        seen = k.run("assert __import__('nbexp').tracker.active_session()._replied is not None, 'waits no more'")
        assert seen["status"] == "ok", seen  # the kernel's sends were seen: the capture still waits for them
        k.run("_stream.on_send(_theirs)\n%nbexp stop")
        assert k.run("assert _stream._send_callback is _before, _stream._send_callback")["status"] == "ok"
    with Reader(ledger_path) as r:
        assert [r.run(name)["params"].get("cfg.when") for name in names] == ["after the reply"] * len(names)


def test_a_kernel_whose_replies_pass_no_send_callback_is_not_waited_for(kernels, ledger_path):
    """ipykernel 7 before 7.4 sends the reply on the shell socket itself, so the stream's send callback
    never runs: after two waits of 5 ms the session stops waiting, instead of adding 5 ms to every cell."""
    k = kernels()
    # as a kernel that sends on the socket: whatever callback is set on the stream never runs
    k.run("import nbexp\nget_ipython().kernel.shell_stream.on_send = lambda callback: None")
    k.run("%load_ext nbexp\n%nbexp track raw-sends")
    for i in range(3):
        assert k.run(f"lr = 0.{i + 1}")["status"] == "ok"
    waits = k.run("assert nbexp.tracker.active_session()._replied is None, 'still waiting'")
    assert waits["status"] == "ok", waits
    k.run("%nbexp stop")
    with Reader(ledger_path) as r:
        assert r.run("raw-sends")["status"] == "finished"


def test_a_cells_execution_count_is_the_one_the_notebook_shows(kernels, ledger_path):
    """Each cell's ``In[N]`` in the ledger (and in replay warnings and ``explain``'s "cell In[N] changed") is the
    execution count the kernel's reply gave the notebook, also for a cell that ran while the kernel died. Before, on
    IPython 9 (which counts a cell before its ``pre_run_cell``), every cell was one ahead of its notebook: the seed
    cell shown as [2] was In[3] (a user trial)."""
    k = kernels()
    shown = [k.run("%load_ext nbexp\n%nbexp track counted")["execution_count"]]
    for code in ("import numpy as np\nnp.random.seed(0)", "x = np.random.rand(10)", "print(x.mean())"):
        shown.append(k.run(code)["execution_count"])
    k.send("import time\ntime.sleep(60)")  # the kernel dies inside it: only its start is stored
    deadline, counts = time.time() + 30, []
    while len(counts) < len(shown) and time.time() < deadline:  # the writer commits the cell's start at once
        time.sleep(0.1)
        with sqlite3.connect(ledger_path) as conn:
            counts = [r[0] for r in conn.execute("SELECT execution_count FROM cells ORDER BY start")]
    os.kill(k.pid, signal.SIGKILL)
    k.km.provisioner.process.wait(10)
    assert counts == shown[1:] + [shown[-1] + 1], (counts, shown)
