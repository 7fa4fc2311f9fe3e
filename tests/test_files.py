"""Files a run wrote, kept with the run without a call (issue 18, part 2): the paths a cell's code
passes to ``joblib.dump``, ``df.to_csv`` and the like, when the cell wrote them, become artifacts
of the cell's run with their size and SHA-256, their bytes copied into the ledger."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # real shells that save models, the CLI as a process
NBEXP = [sys.executable, "-m", "nbexp.cli"]

SETUP = """\
import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
y = (X[:, 0] > 0).astype(int)
"""


def artifacts(reader, run="latest") -> dict[str, dict]:
    r = reader()
    return {a["name"]: a for a in r.artifacts(r.resolve(run))}


def stored(reader, digest: str) -> bytes | None:
    blob = reader().blob(digest)
    return blob["data"] if blob else None


def test_a_saved_model_is_an_artifact_and_each_run_keeps_its_own_bytes(cell, reader, workdir):
    cell("%nbexp track")
    cell(SETUP)
    cell("model = LogisticRegression(C=1.0).fit(X, y)\njoblib.dump(model, 'model.joblib')")
    first = (workdir / "model.joblib").read_bytes()
    a = artifacts(reader)["model.joblib"]
    assert a["path"] == "model.joblib"
    assert a["size"] == len(first)
    assert a["sha256"] == hashlib.sha256(first).hexdigest()
    assert a["stored"] is True
    assert stored(reader, a["sha256"]) == first
    first_run = reader().resolve("latest")

    cell("model = LogisticRegression(C=0.01).fit(X, y)\njoblib.dump(model, 'model.joblib')")  # a re-run: a new run
    second = (workdir / "model.joblib").read_bytes()
    assert second != first
    r = reader()
    assert r.resolve("latest") != first_run
    b = artifacts(reader)["model.joblib"]
    assert b["sha256"] == hashlib.sha256(second).hexdigest()
    # the file on disk was overwritten; the first run still has its own model
    old = artifacts(reader, first_run)["model.joblib"]
    assert old["sha256"] == hashlib.sha256(first).hexdigest()
    assert stored(reader, old["sha256"]) == first


def test_a_path_held_in_a_variable_is_found(cell, reader, workdir):
    (workdir / "out").mkdir()
    cell("%nbexp track")
    cell(SETUP)
    cell("model = LogisticRegression().fit(X, y)")
    cell("path = 'out/preds.csv'\npd.DataFrame({'p': model.predict(X)}).to_csv(path)")
    a = artifacts(reader)["out/preds.csv"]
    data = (workdir / "out" / "preds.csv").read_bytes()
    assert a["path"] == "out/preds.csv"
    assert a["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored(reader, a["sha256"]) == data


def test_a_cell_that_only_reads_a_file_records_nothing(cell, reader, workdir):
    (workdir / "data.csv").write_text("a,b\n1,2\n")
    cell("%nbexp track")
    cell(SETUP)
    cell("df = pd.read_csv('data.csv')\ntext = open('data.csv').read()")
    cell("model = LogisticRegression().fit(X, y)\njoblib.dump(model, 'model.joblib')")
    assert set(artifacts(reader)) == {"model.joblib"}


def test_a_failing_save_is_the_users_error_only(cell, reader, workdir, capfd):
    cell("%nbexp track")
    cell(SETUP)
    capfd.readouterr()
    result = cell(
        "model = LogisticRegression().fit(X, y)\n"
        "joblib.dump(model, 'model.joblib')\n"
        "joblib.dump(model, 'no_such_dir/model.joblib')"
    )
    assert isinstance(result.error_in_exec, FileNotFoundError)
    err = capfd.readouterr().err
    assert "nbexp:" not in err
    # what the cell wrote before it failed is kept; the file it could not write is not
    assert set(artifacts(reader)) == {"model.joblib"}


def test_cli_lists_the_files_and_saves_them_back(cell, reader, workdir, ledger_path, tmp_path):
    (workdir / "out").mkdir()
    cell("%nbexp track --sample-hz 0")
    cell(SETUP)
    cell(
        "model = LogisticRegression().fit(X, y)\n"
        "joblib.dump(model, 'model.joblib')\n"
        "open('out/page.html', 'w').write('<p>')"
    )
    cell("%nbexp stop")
    model = (workdir / "model.joblib").read_bytes()
    digest = hashlib.sha256(model).hexdigest()
    env = dict(os.environ, NBEXP_LEDGER=str(ledger_path))
    show = subprocess.run(NBEXP + ["show", "latest", "--outputs"], capture_output=True, text=True, env=env)
    assert show.returncode == 0, show.stderr
    line = next(ln for ln in show.stdout.splitlines() if "model.joblib" in ln)
    assert digest[:12] in line and str(len(model)) in line
    out = tmp_path / "saved"
    save = subprocess.run(NBEXP + ["outputs", "latest", "--save", str(out)], capture_output=True, text=True, env=env)
    assert save.returncode == 0, save.stderr
    assert "2 artifacts" in save.stdout
    assert (out / "artifacts" / "model.joblib").read_bytes() == model
    assert (out / "artifacts" / "out" / "page.html.txt").read_text() == "<p>"  # never saved as a page to open
