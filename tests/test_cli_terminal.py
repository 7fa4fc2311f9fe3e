"""The `nbexp` command on a terminal and off it: tables fit `$COLUMNS`, colour only on a terminal
(`NO_COLOR` respected), whole plain output when piped, `--csv` / `--json` for scripts, `show --code`.

The terminal is a real pseudo-terminal (``pty.openpty``) given to a real ``python -m nbexp.cli``."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # the CLI as real processes

LONG = "gradient_boosted_trees_with_a_very_long_descriptive_name_for_the_baseline_sweep_point"
ESC = "\x1b["


@pytest.fixture
def runs(cell, ledger_path):
    """Two finished runs in today's sprint, the first with a name far wider than 80 columns."""
    cell(f"%nbexp track {LONG}")
    cell("LR = 0.1\nDEPTH = 3")
    cell("test_auc = 0.8 + LR")
    cell("%nbexp new short")
    cell("LR = 0.3")
    cell("test_auc = 0.8 + LR")
    cell("%nbexp stop")
    return ledger_path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "LINES")}
    env.update(extra)
    return env


def on_terminal(ledger, *args, **env: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its stdin, stdout and stderr; return its exit code and
    everything it wrote (the terminal's ``\\r\\n`` as ``\\n``)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbexp.cli", "--ledger", str(ledger), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env(**env),
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode().replace("\r\n", "\n")


def piped(ledger, *args, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nbexp.cli", "--ledger", str(ledger), *args],
        capture_output=True,
        text=True,
        env=_env(**env),
    )


def test_tables_fit_the_terminal_and_piped_output_is_whole(runs):
    code, out = on_terminal(runs, "ls", COLUMNS="80", NO_COLOR="1")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["run", "name", "status"]
    assert max(len(line) for line in lines) <= 80, out
    assert LONG not in out and "…" in out  # the long name cut, marked
    long_row = next(line for line in lines if line.split()[1].startswith(LONG[:10]))
    assert long_row.split()[1].endswith("…") and "finished" in long_row
    ids = [r["id"] for r in json.loads(piped(runs, "ls", "--json").stdout)]
    assert all(rid in out for rid in ids)  # run ids are never cut

    res = piped(runs, "ls")  # a script reading `nbexp ls | cut ...` gets every character
    assert res.returncode == 0 and LONG in res.stdout and "…" not in res.stdout
    res = piped(runs, "ls", COLUMNS="80")  # ... whatever $COLUMNS says: readline sets it in every child
    assert res.returncode == 0 and LONG in res.stdout and "…" not in res.stdout  # of an IPython or a kernel


def test_colour_on_a_terminal_only_and_never_with_no_color(runs):
    code, out = on_terminal(runs, "ls", COLUMNS="200")
    assert code == 0, out
    assert "\x1b[32mfinished" in out  # finished in green
    assert "\x1b[1m1.1" in out  # the best test_auc (0.8 + 0.3) in bold
    code, out = on_terminal(runs, "show", "short", COLUMNS="200")
    assert code == 0 and "[\x1b[32mfinished" in out, out

    code, out = on_terminal(runs, "ls", COLUMNS="200", NO_COLOR="1")
    assert code == 0 and "finished" in out and ESC not in out, out
    res = piped(runs, "ls")
    assert res.returncode == 0 and "finished" in res.stdout and ESC not in res.stdout + res.stderr


def test_csv_and_json_hold_the_same_runs(runs):
    as_json = json.loads(piped(runs, "ls", "--json").stdout)
    as_csv = list(csv.DictReader(io.StringIO(piped(runs, "ls", "--csv").stdout)))
    assert [r["id"] for r in as_json] == [r["run"] for r in as_csv]
    assert [r["name"] for r in as_csv] == ["short", LONG]  # whole, whatever $COLUMNS says
    assert [float(r["params.LR"]) for r in as_csv] == [r["params"]["LR"] for r in as_json] == [0.3, 0.1]
    assert [float(r["metrics.test_auc"]) for r in as_csv] == pytest.approx([1.1, 0.9])

    review = list(csv.DictReader(io.StringIO(piped(runs, "review", "--sprint", "today", "--csv").stdout)))
    assert sorted(r["run"] for r in review) == sorted(r["id"] for r in as_json)

    diff = list(csv.reader(io.StringIO(piped(runs, "diff", "--csv", "latest~1", "latest").stdout)))
    assert diff[0] == ["kind", "name", as_json[1]["id"], as_json[0]["id"], "delta"]
    assert ["param", "LR", "0.1", "0.3", ""] in diff
    metric = next(row for row in diff if row[:2] == ["metric", "test_auc"])
    assert float(metric[-1]) == pytest.approx(0.2)
    assert json.loads(piped(runs, "diff", "--json", "latest~1", "latest").stdout)["param_diff"] == {"LR": [0.1, 0.3]}

    show = list(csv.DictReader(io.StringIO(piped(runs, "show", "short", "--csv").stdout)))
    assert {(r["kind"], r["name"]) for r in show} >= {("param", "LR"), ("metric", "test_auc")}
    outputs = piped(runs, "outputs", "short", "--csv")
    assert outputs.returncode == 0 and next(csv.reader(io.StringIO(outputs.stdout)))[:3] == ["cell", "kind", "mime"]


def test_show_code_prints_the_runs_cells(runs):
    res = piped(runs, "show", "short", "--code")
    assert res.returncode == 0, res.stderr
    assert "LR = 0.3" in res.stdout.splitlines() and "test_auc = 0.8 + LR" in res.stdout.splitlines()
    assert "# %%" in res.stdout and "# In[" not in res.stdout
    assert "params" not in res.stdout  # only the code: `nbexp show RUN --code > run.py`
    bad = piped(runs, "show", "short", "--code", "--json")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.kernel
def test_replay_shows_progress_on_a_terminal_only(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # the replay's kernel: a fresh profile
    rid = json.loads(piped(runs, "show", "--json", "short").stdout)["id"]
    code, out = on_terminal(runs, "replay", "short", "--execute", "-o", str(tmp_path / "a.ipynb"), COLUMNS="80")
    assert code == 0, out
    assert f"replaying run {rid}" in out and "100%" in out, repr(out)  # click's progress line, on stderr
    res = piped(runs, "replay", "short", "--execute", "-o", str(tmp_path / "b.ipynb"))
    assert res.returncode == 0, res.stderr
    assert "replaying" not in res.stdout + res.stderr and "\r" not in res.stderr


def test_a_narrow_terminal_leaves_out_params_before_it_cuts_names_status_or_metrics(cell, ledger_path):
    """User trial: at 80 columns `nbexp ls` showed "sgd …" and "finis…" but kept every param column. Names and
    status keep ten characters, the metric stays, and params that do not fit are left out (--csv has all)."""
    cell("%nbexp track")
    cell(
        "import nbexp\n"
        "for i, lr in enumerate((0.3, 0.1)):\n"
        "    with nbexp.run(f'mlp lr={lr}', learning_rate_init=lr, hidden_layer_sizes=64 + i,\n"
        "                   batch_size_for_training=32 + i, early_stopping_patience=5 + i, momentum_value=0.9 - i):\n"
        "        nbexp.log(test_auc=0.8 + lr)\n"
    )
    cell("%nbexp stop")
    code, out = on_terminal(ledger_path, "ls", COLUMNS="80", NO_COLOR="1")
    assert code == 0, out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out
    assert lines[0].split()[:3] == ["run", "name", "status"] and "test_auc" in lines[0], out
    assert any("mlp lr=0.3" in line and "finished" in line for line in lines), out
    wide = piped(ledger_path, "ls").stdout.splitlines()[0]
    assert len(wide.split()) > len(lines[0].split())  # some params were left out, not cut to nothing
