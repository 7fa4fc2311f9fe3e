"""W&B offline export, read back with wandb's own datastore reader."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("wandb.sdk.internal.datastore")
pytestmark = pytest.mark.slow  # wandb, and the CLI as a process


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def read_offline(path):
    from wandb.proto import wandb_internal_pb2 as pb
    from wandb.sdk.internal import datastore

    ds = datastore.DataStore()
    ds.open_for_scan(str(path))
    out = {"history": [], "config": {}, "summary": {}, "run": None}
    while True:
        data = ds.scan_data()
        if data is None:
            break
        rec = pb.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out["summary"].update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "run":
            out["run"] = rec.run
            out["config"].update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
    return out


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
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbexp.cli",
            "--ledger",
            str(ledger_path),
            "export",
            "wandb",
            "--all",
            "--dir",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
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
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbexp.cli",
            "--ledger",
            str(ledger_path),
            "export",
            "wandb",
            "--all",
            "--dir",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert "0 offline runs written, 1 already there" in again.stdout
    assert len(list(out.glob("wandb/offline-run-*"))) == 1
