"""Export to a real `mlflow server` on 127.0.0.1 (sqlite backend, artifacts under tmp), read back
with MlflowClient."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402
from mlflow_service import free_port, running_mlflow  # noqa: E402

pytestmark = pytest.mark.slow  # a real MLflow server

NBEXP = [sys.executable, "-m", "nbexp.cli"]
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_mlflow(tmp_path_factory.mktemp("mlflow")) as s:
        yield s


def cli(ledger, *args):
    return subprocess.run(NBEXP + ["--ledger", str(ledger), *args], capture_output=True, text=True)


@pytest.fixture
def sprint(cell, ledger_path, monkeypatch):
    monkeypatch.setenv("NBEXP_NVML_MODULE", "fake_nvml")
    monkeypatch.setenv("FAKE_NVML_SCRIPT", json.dumps({"gpus": [{"util": 70, "power_w": 300}]}))
    cell("%nbexp track --sample-hz 20 baseline")
    long_list = json.dumps(["f" * 150 + str(i) for i in range(60)])  # a param over MLflow's 6,000 chars
    cell(f"import numpy as np, time\nLR = 0.1\nLONG = {long_list}\nX = np.arange(12.0).reshape(6, 2)")
    cell(
        "import nbexp\nfor i in range(1500):\n    nbexp.log(step=i, loss=1 / (i + 1) + LR)\n"
        "time.sleep(0.3)\nacc = float(X.mean()) * LR * len(LONG) / 60"
    )
    cell("%nbexp note first try")
    cell("%nbexp tag keep")
    cell("LR = 0.3")
    cell(
        "import nbexp\nfor i in range(1500):\n    nbexp.log(step=i, loss=1 / (i + 1) + LR)\n"
        "time.sleep(0.3)\nacc = float(X.mean()) * LR * len(LONG) / 60"
    )
    cell("raise ValueError('boom')")
    cell("%nbexp stop")
    return ledger_path


def mlflow_runs(server, experiment):
    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], max_results=1000) if exp else []


def test_export_sprint_and_read_it_back(sprint, server, reader):
    res = cli(sprint, "export", "mlflow", "--sprint", "today", "--tracking-uri", server.uri, "--experiment", "e1")
    assert res.returncode == 0, res.stderr
    assert "2 runs created" in res.stdout
    client, runs = mlflow_runs(server, "e1")
    assert len(runs) == 2
    r = reader()
    by_uid = {m.data.tags["nbexp.uid"]: m for m in runs}
    for local in r.list_runs():
        m = by_uid[f"{local['session_id']}:{local['id']}"]
        assert m.data.params["LR"] == json.dumps(local["params"]["LR"])
        assert m.data.params["LONG"].endswith("...[truncated]") and len(m.data.params["LONG"]) <= 6000
        history = client.get_metric_history(m.info.run_id, "loss")
        assert sorted((p.step, p.value) for p in history) == [
            (i, 1 / (i + 1) + local["params"]["LR"]) for i in range(1500)
        ]
        assert m.data.metrics["acc"] == pytest.approx(local["metrics"]["acc"]["last"])
        assert m.data.tags["mlflow.runName"] == (local["name"] or local["id"])
        assert m.data.tags["nbexp.sprint"] == local["sprint"]
        names = set(m.data.metrics)
        assert {
            "system/gpu_0_utilization_percentage",
            "system/cpu_utilization_percentage",
            "system/gpu_0_power_usage_watts",
        } <= names
        arts = {a.path for folder in ("code", "data", "params") for a in client.list_artifacts(m.info.run_id, folder)}
        assert {"code/run.py", "code/run.ipynb", "data/summaries.json", "params/full_values.json"} <= arts
        full = json.loads(Path(client.download_artifacts(m.info.run_id, "params/full_values.json")).read_text())
        assert json.loads(full["LONG"]) == ["f" * 150 + str(i) for i in range(60)]
        assert m.info.status == {"finished": "FINISHED", "failed": "FAILED"}[local["status"]]
        assert abs(m.info.start_time / 1000 - local["start_time"]) < 0.01
    base = by_uid[next(f"{x['session_id']}:{x['id']}" for x in r.list_runs() if x["name"] == "baseline")]
    assert base.data.tags["mlflow.note.content"] == "first try" and base.data.tags["nbexp.tag.keep"] == "true"
    # again: nothing new, no duplicates
    again = cli(sprint, "export", "mlflow", "--sprint", "today", "--tracking-uri", server.uri, "--experiment", "e1")
    assert again.returncode == 0 and "0 runs created, 0 updated, 2 unchanged; 0 points" in again.stdout
    client, runs = mlflow_runs(server, "e1")
    assert len(runs) == 2
    assert len(client.get_metric_history(runs[0].info.run_id, "loss")) == 1500


def test_server_killed_mid_export_then_resumed(cell, ledger_path, tmp_path):
    cell("%nbexp track --sample-hz 0 big")
    cell("import nbexp\nfor i in range(60000):\n    nbexp.log(step=i, loss=i * 1e-5)")
    cell("%nbexp stop")
    with running_mlflow(tmp_path) as s:
        proc = subprocess.Popen(
            NBEXP
            + [
                "--ledger",
                str(ledger_path),
                "export",
                "mlflow",
                "--all",
                "--tracking-uri",
                s.uri,
                "--experiment",
                "resume",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            client = MlflowClient(s.uri)
            deadline = time.time() + 60
            while time.time() < deadline:  # wait until some points are in, then kill it
                exp = client.get_experiment_by_name("resume")
                runs = client.search_runs([exp.experiment_id]) if exp else []
                if runs and len(client.get_metric_history(runs[0].info.run_id, "loss")) >= 2000:
                    break
                time.sleep(0.05)
            s.kill()
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:  # the export outlived its wait: it goes with the test
                proc.kill()
                proc.wait(10)
        assert proc.returncode == 1 and "MLflow" in err, (out, err)
        s.start()
        res = cli(ledger_path, "export", "mlflow", "--all", "--tracking-uri", s.uri, "--experiment", "resume")
        assert res.returncode == 0, res.stderr
        client, runs = mlflow_runs(s, "resume")
        assert len(runs) == 1
        history = client.get_metric_history(runs[0].info.run_id, "loss")
        assert len(history) == 60000 and len({p.step for p in history}) == 60000
        assert runs[0].info.status == "FINISHED"


def test_bad_targets_give_one_message(sprint, server, tmp_path):
    res = cli(sprint, "export", "mlflow", "--all", "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert res.returncode == 1 and ("cannot reach" in res.stderr or "MLflow at" in res.stderr), res.stderr
    res = cli(sprint, "export", "mlflow", "--all", "--tracking-uri", "ftp://example/x")
    assert res.returncode == 1 and "tracking URI" in res.stderr
    client = MlflowClient(server.uri)
    exp_id = client.create_experiment("gone")
    client.delete_experiment(exp_id)
    res = cli(sprint, "export", "mlflow", "--all", "--tracking-uri", server.uri, "--experiment", "gone")
    assert res.returncode == 1 and "deleted on the server" in res.stderr
    dry = cli(sprint, "export", "mlflow", "--all", "--tracking-uri", server.uri, "--experiment", "dry", "--dry-run")
    assert dry.returncode == 0 and "would send: 2 runs created" in dry.stdout
    assert MlflowClient(server.uri).get_experiment_by_name("dry") is not None  # created, empty
    assert not MlflowClient(server.uri).search_runs([client.get_experiment_by_name("dry").experiment_id])


def test_running_run_is_exported_and_completed_later(cell, ledger_path, server):
    cell("%nbexp track --sample-hz 0 live")
    cell("import nbexp\nfor i in range(10):\n    nbexp.log(loss=i)")
    from nbexp import tracker

    tracker.active_session().flush()
    res = cli(ledger_path, "export", "mlflow", "--all", "--tracking-uri", server.uri, "--experiment", "live")
    assert res.returncode == 0, res.stderr
    client, runs = mlflow_runs(server, "live")
    assert runs[0].info.status == "RUNNING" and runs[0].data.tags["nbexp.status"] == "running"
    cell("for i in range(10, 15):\n    nbexp.log(loss=i)")
    cell("%nbexp stop")
    res = cli(ledger_path, "export", "mlflow", "--all", "--tracking-uri", server.uri, "--experiment", "live")
    assert "0 runs created, 1 updated" in res.stdout and "5 points" in res.stdout
    client, runs = mlflow_runs(server, "live")
    assert runs[0].info.status == "FINISHED" and runs[0].data.tags["nbexp.status"] == "finished"
    assert len(client.get_metric_history(runs[0].info.run_id, "loss")) == 15


def test_artifacts_keep_their_folders_and_names_that_fold_into_one_path_keep_their_bytes(
    cell, ledger_path, server, tmp_path
):
    """A run's files keep their folders on the MLflow server (a package of the notebook's own code stays importable
    once downloaded), and two names that fold into one safe path (``a b.csv``, ``a_b.csv``) are two files, each with
    its bytes: the flat names of the first export wrote the later over the earlier, and left it so on every
    re-export (a user trial). A name that is another's folder (``out``, ``out/a.csv``) moves the later aside.
    ``nbexp outputs --save`` writes them the same way."""
    cell("%nbexp track --sample-hz 0 files")
    cell(
        "import nbexp\n"
        "nbexp.log_artifact(b'one', name='out/a b.csv')\n"
        "nbexp.log_artifact(b'two', name='out/a_b.csv')\n"
        "nbexp.log_artifact(b'init', name='pkg/__init__.py')\n"
        "nbexp.log_artifact(b'flat', name='pkg___init__.py')\n"
        "nbexp.log_artifact(b'file', name='out')\n"
        "acc = 0.5"
    )
    cell("%nbexp stop")
    for sent in ("5 files", "0 files"):  # again: nothing left to send, nothing replaced
        res = cli(ledger_path, "export", "mlflow", "--all", "--tracking-uri", server.uri, "--experiment", "files")
        assert res.returncode == 0 and f"points and {sent} sent to" in res.stdout, res.stdout + res.stderr
    client, (run,) = mlflow_runs(server, "files")
    down = Path(client.download_artifacts(run.info.run_id, "artifacts", str(tmp_path)))
    got = {str(p.relative_to(down)): p.read_bytes() for p in down.rglob("*") if p.is_file()}
    assert got == {
        "out": b"file",  # a file, and the folder the names under out/ would have: theirs is out_/
        "out_/a_b.csv": b"two",  # a clean name first: the one that had to be folded moves aside
        "out_/a_b.csv_": b"one",
        "pkg/__init__.py": b"init",
        "pkg___init__.py": b"flat",
    }
    save = subprocess.run(
        NBEXP + ["--ledger", str(ledger_path), "outputs", "latest", "--save", str(tmp_path / "saved")],
        capture_output=True,
        text=True,
    )
    assert save.returncode == 0 and "5 artifacts" in save.stdout, save.stdout + save.stderr
    saved = tmp_path / "saved" / "artifacts"
    assert {str(p.relative_to(saved)): p.read_bytes() for p in saved.rglob("*") if p.is_file()} == got


def test_dry_run_counts_the_points_the_export_sends(sprint, server):
    def points(res):
        assert res.returncode == 0, res.stderr
        return int(res.stdout.split(" points")[0].rsplit(" ", 1)[1].replace(",", ""))

    args = ("export", "mlflow", "--sprint", "today", "--tracking-uri", server.uri, "--experiment", "counted")
    dry = points(cli(sprint, *args, "--dry-run"))
    assert dry > 2 * 1500  # the metrics, and the system samples on top
    assert points(cli(sprint, *args)) == dry
    assert points(cli(sprint, *args, "--dry-run")) == 0  # all there: nothing more would be sent


def test_planted_secrets_reach_no_byte_of_the_mlflow_server(cell, ledger_path, server, monkeypatch):
    """Real server: the secret corpus of tests/test_secrets.py, planted through the shell and
    exported, is in no byte of MLflow's backend store or artifact root, nor in what its REST API
    answers for the exported runs (params, tags, run names, metric keys, artifact lists)."""
    import urllib.parse
    import urllib.request

    from test_secrets import PLANTED, _plant

    monkeypatch.delenv("MY_TOKEN", raising=False)  # a planted cell sets it: gone again after the test
    _plant(cell)
    res = cli(
        ledger_path, "export", "mlflow", "--sprint", "today", "--tracking-uri", server.uri, "--experiment", "planted"
    )
    assert res.returncode == 0, res.stderr
    client, runs = mlflow_runs(server, "planted")
    assert len(runs) >= 2

    def rest(path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{server.uri}/api/2.0/mlflow/{path}", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read()

    exp_id = client.get_experiment_by_name("planted").experiment_id
    answers = [rest("runs/search", {"experiment_ids": [exp_id], "max_results": 1000})]
    for m in runs:
        answers.append(rest("runs/get?" + urllib.parse.urlencode({"run_id": m.info.run_id})))
        for key in m.data.metrics:
            answers.append(
                rest("metrics/get-history?" + urllib.parse.urlencode({"run_id": m.info.run_id, "metric_key": key}))
            )
        for folder in ("", "code", "data", "params"):
            answers.append(rest("artifacts/list?" + urllib.parse.urlencode({"run_id": m.info.run_id, "path": folder})))
    api = b"\n".join(answers)
    store = b"".join(p.read_bytes() for p in server.root.glob("mlflow.db*"))
    artifacts = {p: p.read_bytes() for p in (server.root / "artifacts").rglob("*") if p.is_file()}
    leaked = [
        (name, where)
        for name, secret in PLANTED.items()
        for where, raw in [("REST API", api), ("backend store", store), *artifacts.items()]
        if secret.encode() in raw
    ]
    assert not leaked, "; ".join(f"{name} in {where}" for name, where in leaked)
    # the export carried the planted runs: their names, params, code and data summaries, scrubbed
    assert b"sync-[REDACTED]" in api and b"postgresql://etl:[REDACTED]@warehouse.internal/dw" in api
    code = b"".join(raw for p, raw in artifacts.items() if p.name == "run.py")
    assert b"lr = 0.1" in code and b"conn = connect('db.internal', '[REDACTED]')" in code
    assert any(p.name == "summaries.json" and b"[REDACTED]" in raw for p, raw in artifacts.items())
