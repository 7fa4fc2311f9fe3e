"""W&B offline export, read back with wandb's own datastore reader."""

from __future__ import annotations

import pytest

pytest.importorskip("wandb.sdk.internal.datastore")
from wandb_offline import export_wandb, read_offline  # noqa: E402

pytestmark = pytest.mark.slow  # wandb, and the CLI as a process


def test_wandb_offline_runs(cell, ledger_path, tmp_path, reader):
    cell("%nbexp track --sample-hz 0 wb")
    cell("LR = 0.05\nlayers = [32, 32]")
    cell(
        "import nbexp\nfor i in range(20):\n    nbexp.log(step=i, loss=1 / (i + 1), acc=i / 20)\n"
        "width, lr = layers[0], LR"
    )
    cell("%nbexp tag keep")
    cell("%nbexp note wandb please")
    cell("%nbexp stop")
    out = tmp_path / "wb"
    res = export_wandb(ledger_path, out)
    assert res.returncode == 0 and "1 offline runs written" in res.stdout, res.stderr
    files = list(out.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1
    got = read_offline(files[0])
    local = reader().list_runs()[0]
    assert got["config"]["LR"] == 0.05 and got["config"]["layers"] == [32, 32]
    rows = [h for h in got["history"] if "loss" in h]
    assert [(r["_step"], r["loss"], r["acc"]) for r in rows] == [(i, 1 / (i + 1), i / 20) for i in range(20)]
    assert got["summary"]["loss"] == pytest.approx(local["metrics"]["loss"]["last"])
    assert got["summary"]["nbexp/status"] == "finished"
    assert "keep" in list(got["run"].tags) and got["run"].notes == "wandb please" and got["run"].display_name == "wb"
    code = list(out.glob("wandb/offline-run-*/files/code/run.py"))
    assert code and "LR = 0.05" in code[0].read_text()
    again = export_wandb(ledger_path, out)
    assert "0 offline runs written, 1 already there" in again.stdout
    assert len(list(out.glob("wandb/offline-run-*"))) == 1
