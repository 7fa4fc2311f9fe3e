"""System usage with a scripted fake NVML (tests/fake_nvml.py) in a real IPython shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import nbexp

pytestmark = pytest.mark.slow  # sampler threads over time

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def gpus(monkeypatch):
    """Script the fake NVML: gpus(dict, ...) or gpus(init_error='library')."""
    monkeypatch.setenv("NBEXP_NVML_MODULE", "fake_nvml")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def script(*specs, init_error=None, cpu_busy=False):
        monkeypatch.setenv(
            "FAKE_NVML_SCRIPT", json.dumps({"gpus": list(specs), "init_error": init_error, "cpu_busy": cpu_busy})
        )

    return script


TRACK = "%nbexp track --sample-hz 20 --idle-after 0.4"
# a model whose training takes a while (the idle-GPU hint is for cells that train)
MODEL = (
    "import time\nclass Model:\n    def fit(self, X, y, seconds=0.8):\n        time.sleep(seconds)\n        return self"
)
TRAIN = "model = Model().fit([[0.0]], [0])"


def last_cell(db, where="1"):
    return db().execute(f"SELECT * FROM cells WHERE {where} ORDER BY id DESC LIMIT 1").fetchone()


def test_busy_gpu_aggregates_and_no_hint(cell, gpus, db, reader, capsys):
    gpus(
        {
            "name": "Fake H100",
            "util": 95,
            "mem_used_mb": 60000,
            "mem_total_mb": 80000,
            "power_w": 600,
            "proc_mem_mb": 50000,
        }
    )
    cell(TRACK)
    assert "sampling 1 GPU(s) [0:Fake H100]" in capsys.readouterr().out
    cell(MODEL)
    cell(TRAIN)
    c = last_cell(db)
    assert c["gpu_util_mean"] == pytest.approx(95) and c["gpu_util_max"] == 95
    assert c["gpu_mem_peak_mb"] == pytest.approx(60000)
    assert c["idle_hint"] is None
    assert "nbexp: hint" not in capsys.readouterr().out
    cell("%nbexp stop")
    run = reader().list_runs()[0]
    assert run["gpu_util_mean"] == pytest.approx(95) and run["gpu_count"] == 1
    assert run["energy_wh"] == pytest.approx(600 * run_duration(run) / 3600, rel=0.35)
    assert run["idle_hint"] is None


def run_duration(run):
    return run["end_time"] - run["start_time"]


@pytest.mark.parametrize(
    "spec, cpu_busy, cause",
    [
        ({"util": 5, "mem_used_mb": 8000, "mem_total_mb": 80000, "proc_mem_mb": 6000}, False, "larger batch size"),
        ({"util": 0, "mem_used_mb": 500, "mem_total_mb": 80000, "proc_mem_mb": 0}, False, "on the CPU"),
        # the fake's CPU clock keeps a core busy: a real busy loop gets less than 90% of a core on a loaded machine
        ({"util": 10, "mem_used_mb": 70000, "mem_total_mb": 80000, "proc_mem_mb": 60000}, True, "input pipeline"),
    ],
)
def test_idle_hint_names_the_cause(cell, gpus, db, reader, capsys, monkeypatch, spec, cpu_busy, cause):
    monkeypatch.setenv("NBEXP_CPU_CLOCK_MODULE", "fake_nvml")
    gpus(spec, cpu_busy=cpu_busy)
    cell(TRACK)
    cell(MODEL)
    capsys.readouterr()
    cell(TRAIN)
    out = capsys.readouterr().out
    assert out.count("nbexp: hint:") == 1 and cause in out
    assert cause in last_cell(db)["idle_hint"]
    cell("x = 1")  # short cells never get the hint
    assert "nbexp: hint" not in capsys.readouterr().out
    cell("%nbexp stop")
    assert cause in reader().list_runs()[0]["idle_hint"]


def test_idle_hint_waits_for_the_threshold(cell, gpus, capsys):
    gpus({"util": 0})
    cell("%nbexp track --sample-hz 20")  # default: 60 s
    cell(MODEL)
    cell("model = Model().fit([[0.0]], [0], seconds=0.5)")
    assert "nbexp: hint" not in capsys.readouterr().out


def test_no_hint_for_a_cell_that_does_not_train_and_the_run_keeps_its_training_cells(cell, gpus, db, reader, capsys):
    """Loading data for a while on a GPU machine is not an idle GPU: no hint under that cell, and the
    run's hint comes from its training cell, not from the first slow cell (on a real H200 a 6 s data
    cell told a run that trained at 69% busy that nothing of it ran on the GPU)."""
    gpus({"util": 5, "mem_used_mb": 8000, "mem_total_mb": 80000, "proc_mem_mb": 6000})
    cell(TRACK + " loads-then-trains")
    cell(MODEL)
    capsys.readouterr()
    cell("X = [[0.0]] * 1000\ntime.sleep(0.8)  # reading a large file")
    assert "nbexp: hint" not in capsys.readouterr().out
    assert last_cell(db)["idle_hint"] is None
    cell("%nbexp stop")
    assert reader().list_runs()[0]["idle_hint"] is None  # the run never trained on an idle GPU
    cell(TRACK + " trains")
    cell("model = Model().fit(X, [0] * 1000)")
    assert "larger batch size" in capsys.readouterr().out
    cell("%nbexp stop")
    assert "larger batch size" in reader().list_runs()[0]["idle_hint"]


def test_two_gpus_and_cuda_visible_devices(cell, gpus, db, monkeypatch):
    gpus({"name": "A", "util": 90}, {"name": "B", "util": 10})
    cell(TRACK)
    cell("import time\ntime.sleep(0.5)")
    c = last_cell(db)
    assert c["gpu_util_mean"] == pytest.approx(50) and c["gpu_util_max"] == 90
    assert {r[0] for r in db().execute("SELECT DISTINCT gpu FROM gpu_samples")} == {0, 1}
    cell("%nbexp stop")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    cell(TRACK)
    cell("import time\ntime.sleep(0.5)")
    assert last_cell(db)["gpu_util_mean"] == pytest.approx(10)
    session = db().execute("SELECT gpus FROM sessions ORDER BY started DESC").fetchone()[0]
    assert [g["name"] for g in json.loads(session)] == ["B"]


def test_gpu_lost_mid_run_is_noted_once(cell, gpus, db, capsys):
    gpus({"util": 80, "fail_after": 3})
    cell(TRACK)
    res = cell("import time\ntime.sleep(0.6)")
    assert res.success
    cell("time.sleep(0.3)")
    err = capsys.readouterr().err
    assert err.count("stopped answering NVML") == 1
    n_gpu = db().execute("SELECT count(*) FROM gpu_samples").fetchone()[0]
    assert n_gpu == 3
    assert db().execute("SELECT count(*) FROM host_samples").fetchone()[0] > n_gpu
    assert db().execute("SELECT count(*) FROM events WHERE cause LIKE 'gpu-lost%'").fetchone()[0] == 1


@pytest.mark.parametrize("init_error", ["library", "driver", None])
def test_no_gpu_is_quiet_cpu_and_memory_only(cell, gpus, db, capsys, init_error):
    gpus(init_error=init_error)  # None: NVML works but there is no GPU
    cell(TRACK)
    cell("%nbexp status")
    out = capsys.readouterr().out
    assert "no GPU" in out
    for _ in range(3):
        cell("import time\ntime.sleep(0.5)")
    captured = capsys.readouterr()
    assert captured.err == "" and "nbexp: hint" not in captured.out
    c = last_cell(db)
    assert c["gpu_util_mean"] is None and c["cpu_mean"] is not None and c["rss_peak_mb"] > 10
    assert db().execute("SELECT count(*) FROM gpu_samples").fetchone()[0] == 0
    assert db().execute("SELECT count(*) FROM host_samples").fetchone()[0] >= 10


def test_sampling_off(cell, gpus, db):
    gpus({"util": 50})
    cell("%nbexp track --sample-hz 0")
    cell("import time\ntime.sleep(0.3)")
    assert db().execute("SELECT count(*) FROM host_samples").fetchone()[0] == 0
    assert last_cell(db)["cpu_mean"] is not None  # per-cell CPU time needs no sampler


def test_system_dataframe_and_runs_columns(cell, gpus):
    gpus({"util": [20, 40, 60], "power_w": 300})
    cell(TRACK)
    cell("import time\ntime.sleep(0.5)")
    cell("%nbexp stop")
    df = nbexp.system("latest")
    assert len(df) >= 5
    assert {"time", "proc_cpu", "proc_rss_mb", "gpu0.util", "gpu0.power_w", "gpu0.mem_used_mb"} <= set(df.columns)
    assert set(df["gpu0.util"].dropna()) <= {20.0, 40.0, 60.0}
    runs = nbexp.runs()
    assert runs.loc[0, "system.gpu_util_mean"] == pytest.approx(df["gpu0.util"].mean(), abs=10)
    assert runs.loc[0, "system.gpu_count"] == 1


def test_bad_sample_hz(cell):
    res = cell("%nbexp track --sample-hz -1")
    assert not res.success and "--sample-hz" in str(res.error_in_exec)


def test_show_and_review_carry_system_usage(cell, gpus, ledger_path):
    from click.testing import CliRunner

    from nbexp.cli import main

    gpus({"util": 5, "mem_used_mb": 8000, "mem_total_mb": 80000, "proc_mem_mb": 6000})
    cell(TRACK + " idle-run")
    cell(MODEL)
    cell(TRAIN)
    cell("%nbexp stop")
    show = CliRunner().invoke(main, ["--ledger", str(ledger_path), "show", "idle-run"]).output
    assert "GPU 5% mean" in show and "hint: " in show and "larger batch size" in show
    review = CliRunner().invoke(main, ["--ledger", str(ledger_path), "review", "--sprint", "today"]).output
    assert "GPU hours: 0.00" in review and "idle GPU in run" in review


def test_show_says_not_recorded_without_gpu(cell, gpus, ledger_path):
    from click.testing import CliRunner

    from nbexp.cli import main

    gpus(init_error="library")
    cell(TRACK + " cpu-run")
    cell("%nbexp stop")
    show = CliRunner().invoke(main, ["--ledger", str(ledger_path), "show", "cpu-run"]).output
    assert "GPU not recorded" in show and "CPU" in show
