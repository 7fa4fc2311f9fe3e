"""The code diff compares cells' code, not their execution counts: a faithful replay diffs empty
(the CLI's ``nbexp diff`` and the in-notebook ``nbexp.compare`` both), a changed line still shows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from jupyter_client.manager import KernelManager

import nbexp
from nbexp.ledger.queries import Reader

pytestmark = pytest.mark.kernel
NBEXP = [sys.executable, "-m", "nbexp.cli"]

# a cell run three times first: the original's training cells run at counts the replay does not repeat
ORIGINAL = [
    "%load_ext nbexp\n%nbexp track original",
    "1 + 1",
    "1 + 1",
    "1 + 1",
    "C = 0.5\nSEED = 3",
    "import nbexp\nfor step in range(3):\n    nbexp.log(score=C * SEED + step)",
]


@pytest.fixture
def env(nbexp_home, tmp_path, monkeypatch):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return tmp_path


def cli(*args, cwd):
    return subprocess.run(NBEXP + list(args), capture_output=True, text=True, cwd=cwd, env=dict(os.environ))


def test_a_replay_diffs_empty_and_a_change_still_shows(env, ledger_path):
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=dict(os.environ), cwd=str(env))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        for code in ORIGINAL:
            reply = kc.execute_interactive(code, timeout=120, output_hook=lambda m: None)
            assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel()  # a clean shutdown ends the run and flushes
    with Reader(ledger_path) as r:
        original = r.list_runs()[0]["id"]
    res = cli("replay", original, "--execute", "-o", str(env / "replay.ipynb"), cwd=env)
    assert res.returncode == 0, res.stdout + res.stderr
    with Reader(ledger_path) as r:
        replay = next(x for x in r.list_runs() if x["replay_of"] == original)["id"]
        counts = {
            rid: [c["execution_count"] for c in r.run(rid)["lineage"] if "SEED" in c["source"]]
            for rid in (original, replay)
        }
    assert counts[original] != counts[replay]  # the same cells, run at other counts

    same = nbexp.compare(original, replay, ledger=str(ledger_path))
    assert same["code_diff"] == []
    res = cli("diff", original, replay, cwd=env)
    assert res.returncode == 0, res.stderr
    assert "(same code)" in res.stdout and "# In[" not in res.stdout

    # a replay with a param changed: its line differs, and only that line
    res = cli("replay", original, "--execute", "--param", "C=2.0", "-o", str(env / "c2.ipynb"), cwd=env)
    assert res.returncode == 0, res.stdout + res.stderr
    with Reader(ledger_path) as r:
        changed = r.list_runs()[0]["id"]
    diff = nbexp.compare(original, changed, ledger=str(ledger_path))["code_diff"]
    body = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert sorted(body) == ["+C = 2.0", "-C = 0.5"], diff
