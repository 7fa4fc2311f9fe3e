"""``nbexp get RUN ARTIFACT -o FILE`` (issue 18): a file a run wrote comes back byte-identical even
after the next run overwrote it on disk; unknown runs and artifacts, and files whose bytes were not
kept, are one clear line and exit 1, with nothing written."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # real shells that save models, the CLI as a process
NBEXP = [sys.executable, "-m", "nbexp.cli"]

SAVE = "import joblib\nweights = {w!r}\njoblib.dump(weights, 'model.joblib')"


def nbexp(ledger_path, *args, cwd=None):
    env = dict(os.environ, NBEXP_LEDGER=str(ledger_path))
    return subprocess.run(NBEXP + list(args), capture_output=True, env=env, cwd=cwd)


def test_get_restores_each_runs_model_byte_identical(cell, reader, workdir, ledger_path, tmp_path):
    cell("%nbexp track --sample-hz 0")
    cell(SAVE.format(w=[0.1] * 50))
    first = (workdir / "model.joblib").read_bytes()
    cell("%nbexp new")
    cell(SAVE.format(w=[0.9] * 50))  # the second run overwrites the file
    second = (workdir / "model.joblib").read_bytes()
    cell("%nbexp stop")
    assert first != second
    r = reader()
    run1, run2 = r.resolve("latest~1"), r.resolve("latest")

    out = tmp_path / "restored.joblib"
    got = nbexp(ledger_path, "get", run1, "model.joblib", "-o", str(out))
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == first
    assert hashlib.sha256(first).hexdigest()[:12].encode() in got.stdout
    # an existing file is kept unless --force
    again = nbexp(ledger_path, "get", run2, "model.joblib", "-o", str(out))
    assert again.returncode == 1 and b"--force" in again.stderr and b"Traceback" not in again.stderr
    assert out.read_bytes() == first
    assert nbexp(ledger_path, "get", run2, "model.joblib", "-o", str(out), "--force").returncode == 0
    assert out.read_bytes() == second
    # to stdout, and by default under its base name in the current folder
    assert nbexp(ledger_path, "get", run1, "model.joblib", "-o", "-").stdout == first
    here = tmp_path / "here"
    here.mkdir()
    assert nbexp(ledger_path, "get", run1, "model.joblib", cwd=here).returncode == 0
    assert (here / "model.joblib").read_bytes() == first


def test_get_says_what_is_wrong_and_writes_nothing(cell, reader, workdir, ledger_path, tmp_path):
    big = workdir / "checkpoint.bin"
    cell("%nbexp track --sample-hz 0")
    cell(SAVE.format(w=[1, 2, 3]))
    # over the 10 MB copy limit: recorded with size and hash, its bytes not copied
    cell(f"with open({str(big)!r}, 'wb') as f:\n    f.truncate(11 * 1024 * 1024)")
    cell("%nbexp stop")
    rid = reader().resolve("latest")
    out = tmp_path / "out.bin"
    cases = [
        (("zzzzzz", "model.joblib"), b"no run matches 'zzzzzz'"),
        ((rid, "nope.pt"), b"no artifact named 'nope.pt' (its artifacts: checkpoint.bin, model.joblib)"),
        ((rid, "checkpoint.bin"), b"were not kept: it was over the copy limit"),
    ]
    for args, words in cases:
        res = nbexp(ledger_path, "get", *args, "-o", str(out))
        assert res.returncode == 1, (args, res.stderr)
        assert words in res.stderr, res.stderr
        assert b"Traceback" not in res.stderr
        assert not out.exists()
    res = nbexp(ledger_path, "get", rid, "checkpoint.bin", "-o", str(out))
    assert b"it was at checkpoint.bin (in the notebook's folder)" in res.stderr  # where to look for it
    res = nbexp(ledger_path, "get", rid, "model.joblib", "-o", str(tmp_path / "no" / "such" / "folder"))
    assert res.returncode == 1 and b"cannot write" in res.stderr and b"Traceback" not in res.stderr


# the inline backend as a kernel has it; set up again by hand, since in this shared test shell an earlier test may
# have imported pyplot, and then matplotlib.use() loads the backend without IPython's inline figures
PLOT = """\
import matplotlib
matplotlib.use("module://matplotlib_inline.backend_inline")
from matplotlib_inline.backend_inline import configure_inline_support
configure_inline_support(get_ipython(), "module://matplotlib_inline.backend_inline")
import matplotlib.pyplot as plt
lr = {lr}
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([1, lr, lr / 2])
ax.set_title(f"loss lr={{lr}}")
plt.show()
"""


def test_a_bundle_round_trip_keeps_each_runs_figure_and_model(cell, reader, workdir, ledger_path, tmp_path):
    """Two runs of the same notebook (the second overwrote model.joblib) exported as one bundle and
    imported into a fresh ledger: each run has its own figure and its own model there, byte-identical."""
    cell("%nbexp track --sample-hz 0")
    cell(PLOT.format(lr=0.1))
    cell(SAVE.format(w=[0.1] * 50))
    cell("%nbexp new")
    cell(PLOT.format(lr=0.9))
    cell(SAVE.format(w=[0.9] * 50))
    cell("%nbexp stop")
    r = reader()
    runs = [r.resolve("latest~1"), r.resolve("latest")]

    def figures(rd, rid):
        return [rd.blob(o["hash"])["data"] for c in rd.outputs(rid) for o in c["outputs"] if o["mime"] == "image/png"]

    before = {rid: figures(r, rid) for rid in runs}
    assert all(len(f) == 1 and f[0].startswith(b"\x89PNG") for f in before.values())
    assert before[runs[0]] != before[runs[1]]
    models = {}
    for rid in runs:
        got = nbexp(ledger_path, "get", rid, "model.joblib", "-o", "-")
        assert got.returncode == 0, got.stderr
        models[rid] = got.stdout
    assert models[runs[1]] == (workdir / "model.joblib").read_bytes() != models[runs[0]]

    bundle, fresh = tmp_path / "runs.nbexp", tmp_path / "fresh" / "ledger.sqlite"
    assert nbexp(ledger_path, "export", "bundle", str(bundle), *runs).returncode == 0
    res = nbexp(fresh, "import", str(bundle))
    assert res.returncode == 0 and b"added 2 runs" in res.stdout, res.stderr
    from nbexp.ledger.queries import Reader

    with Reader(fresh) as other:
        assert {rid: figures(other, rid) for rid in runs} == before
    for rid in runs:
        assert nbexp(fresh, "get", rid, "model.joblib", "-o", "-").stdout == models[rid]


def test_get_names_the_file_safely_by_default(cell, reader, workdir, ledger_path, tmp_path):
    """An artifact named by a bundle or a call (``../../x``, a page) lands in the current folder under a
    safe name, never above it and never as a page to open."""
    cell("%nbexp track --sample-hz 0")
    cell("import nbexp\nnbexp.log_artifact(b'w', name='../../up.bin')\nnbexp.log_artifact(b'<p>', name='r.html')")
    cell("%nbexp stop")
    rid = reader().resolve("latest")
    here = tmp_path / "a" / "b"
    here.mkdir(parents=True)
    for name in ("../../up.bin", "r.html"):
        assert nbexp(ledger_path, "get", rid, name, cwd=here).returncode == 0
    assert sorted(os.listdir(here)) == ["r.html.txt", "up.bin"]
    assert not (tmp_path / "up.bin").exists()
