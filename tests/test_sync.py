"""Live sync to MLflow (#19): a notebook tracked with ``--sync`` in a real kernel appears on an MLflow server
backed by PostgreSQL while it runs, survives the server being killed and restarted mid-run, and every run,
param and metric point arrives exactly once (read back with MlflowClient)."""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402
from mlflow_service import free_port, running_mlflow  # noqa: E402
from test_kernel import Kernel as KernelBase  # noqa: E402

from nbexp.ledger.queries import Reader  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.kernel]  # PostgreSQL, an MLflow server and a real kernel

NBEXP = [sys.executable, "-m", "nbexp.cli"]
EXPERIMENT = "nbexp"  # the live sync's default


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """A throwaway PostgreSQL cluster in a temp dir on 127.0.0.1 (as ``nobody`` when run as root: postgres
    refuses root), trusting local connections, with a database ``mlflow``."""

    def __init__(self, bindir: Path):
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="nbexp-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            os.chown(self.dir, 65534, 65534)
        os.chmod(self.dir, 0o755)

    def start(self) -> Postgres:
        subprocess.run(
            [*self.as_user, str(self.bin / "initdb"), "-D", str(self.data), "-U", "mlflow", "--auth=trust"],
            check=True,
            capture_output=True,
        )
        self.log = open(self.dir / "postgres.log", "ab")
        self.proc = subprocess.Popen(
            [
                *self.as_user,
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        import psycopg2

        deadline = time.time() + 60
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="mlflow", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError((self.dir / "postgres.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE mlflow")
        conn.close()
        return self

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg2://mlflow@127.0.0.1:{self.port}/mlflow"  # SQLAlchemy 2.1 defaults to psycopg 3

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # postgres' fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postgres():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (make postgres installs Debian's postgresql package)")
    pytest.importorskip("psycopg2", reason="psycopg2-binary (in nbexp[dev]) lets MLflow use PostgreSQL")
    pg = Postgres(bindir)
    try:
        yield pg.start()
    finally:  # also a cluster that started but never answered
        pg.stop()


@pytest.fixture
def mlflow_server(postgres, tmp_path):
    with running_mlflow(tmp_path, postgres.uri) as s:
        yield s


class Kernel(KernelBase):
    """test_kernel's kernel (started, and shut down without hanging), whose ``run`` returns what the cell printed."""

    def run(self, code: str, timeout: float = 180) -> str:
        """Run ``code``; its printed text (stdout and stderr), raising if the cell failed."""
        out: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        assert reply["content"]["status"] == "ok", "".join(out)
        return "".join(out)


@pytest.fixture
def kernel(nbexp_home, tmp_path, monkeypatch):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("NBEXP_SYNC_URI", raising=False)
    k = Kernel(dict(os.environ))
    yield k
    k.shutdown()


def server_points(uri: str) -> dict[str, int]:
    """Metric points per run name on the server (0 runs: empty)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return {}
    out = {}
    for run in client.search_runs([exp.experiment_id]):
        out[run.info.run_name] = sum(len(client.get_metric_history(run.info.run_id, key)) for key in run.data.metrics)
    return out


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _ledger_says(ledger_path) -> str:
    """The live sync's state as the sidebar reads it (``Reader.sync_states``)."""
    with Reader(ledger_path) as r:
        states = r.sync_states()
    return states[0]["state"] if states else ""


def test_a_synced_notebook_survives_the_server_restart_and_every_point_arrives_once(
    kernel, mlflow_server, ledger_path, tmp_path
):
    uri = mlflow_server.uri
    out = kernel.run(f"%load_ext nbexp\n%nbexp track --sample-hz 0 --sync {uri} first")
    assert f"sync to {uri}" in out
    kernel.run(
        "import nbexp, time\nLR = 0.1\nfor i in range(150):\n    nbexp.log(loss=1 / (i + 1) + LR)\n"
        "    time.sleep(0.02)\nacc = 0.5 + LR\nprint('acc', acc)\n"
        f"open({str(tmp_path / 'model.txt')!r}, 'w').write('weights')"
    )
    # the run is on the server while it runs (params and points), without a call
    wait_for(lambda: server_points(uri).get("first", 0) >= 150, 300, "the first points on the server")
    client = MlflowClient(uri)
    exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    (live,) = client.search_runs([exp_id])
    assert live.info.status == "RUNNING" and live.data.params["LR"] == "0.1"

    mlflow_server.kill()  # mid-run, maybe mid-request
    kernel.run("for i in range(150, 400):\n    nbexp.log(loss=1 / (i + 1) + LR)\n    time.sleep(0.01)")
    status = wait_for(
        lambda: (lambda text: "unreachable" in text and text)(kernel.run("%nbexp status")), 300, "unreachable"
    )
    assert "points waiting" in status
    # the sidebar's word for it: the thread keeps its state in the session's row, which the server reads
    wait_for(lambda: _ledger_says(ledger_path).startswith("server unreachable"), 120, "unreachable in the ledger")
    kernel.run("%nbexp new second")
    kernel.run("LR = 0.3\nfor i in range(200):\n    nbexp.log(loss=1 / (i + 1) + LR, acc=i / 200)\nacc = 0.9")

    mlflow_server.start()  # the same server, port and database, back
    # the sync catches up by itself while the kernel still runs
    wait_for(lambda: server_points(uri).get("second", 0) >= 400, 300, "the catch-up")
    assert "synced" in wait_for(
        lambda: (lambda text: "synced" in text and text)(kernel.run("%nbexp status")), 300, "synced"
    )
    wait_for(lambda: _ledger_says(ledger_path) == "synced", 120, "synced in the ledger")
    out = kernel.run("%nbexp stop")
    assert "stopped" in out and "sync to" in out
    # the ends go out with the last pass (on a loaded machine it may outlast %nbexp stop's wait: the thread goes on)
    wait_for(lambda: {m.info.status for m in client.search_runs([exp_id])} == {"FINISHED"}, 300, "the runs' ends")

    # every run, param and point exactly once
    with Reader(ledger_path) as r:
        runs = r.list_runs(sprint="all")
        assert len(runs) == 2
        mine = {}
        for run in runs:
            full = r.run(run["id"])
            points = {
                key: [(s or 0, v) for s, v, _w in r.metric_points_after(run["id"], key, 0)] for key in full["metrics"]
            }
            mine[f"{full['session_id']}:{full['id']}"] = (full, points)
    theirs = client.search_runs([exp_id], max_results=100)
    assert sorted(m.data.tags["nbexp.uid"] for m in theirs) == sorted(mine)  # each run once
    total = 0
    for m in theirs:
        full, points = mine[m.data.tags["nbexp.uid"]]
        assert m.info.status == "FINISHED" and m.info.run_name == full["name"]
        assert m.data.params == {k: v if isinstance(v, str) else json.dumps(v) for k, v in full["params"].items()}
        assert set(m.data.metrics) == set(points)
        for key, expected in points.items():
            history = sorted(client.get_metric_history(m.info.run_id, key), key=lambda p: (p.timestamp, p.step))
            got = [(p.step, None if math.isnan(p.value) else p.value) for p in history]
            assert got == expected, key  # each point once, in order
            total += len(got)
        files = {a.path for a in client.list_artifacts(m.info.run_id, "code")}
        assert "code/run.py" in files  # sent when the run ended
    assert total >= 150 + 250 + 400
    # the first run printed its accuracy: the output is an MLflow artifact
    first = next(m for m in theirs if m.info.run_name == "first")
    outputs = client.list_artifacts(first.info.run_id, "outputs")
    assert any(a.path.endswith("stdout.txt") for a in outputs), [a.path for a in outputs]
    # and the file it wrote, with its bytes (at its own path: outside the notebook's folder, its folders kept)
    (tmp_path / "down").mkdir()
    down = Path(client.download_artifacts(first.info.run_id, "artifacts", str(tmp_path / "down")))
    (local,) = [p for p in down.rglob("model.txt")]
    assert local.read_text() == "weights"

    # nothing is left for nbexp sync to send
    res = subprocess.run(
        [*NBEXP, "--ledger", str(ledger_path), "sync", "--uri", uri, "--experiment", EXPERIMENT],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and "0 created" in res.stdout and " 0 points" in res.stdout, res.stdout + res.stderr
