"""The W&B export's offline runs, as the tests make and read them (tests/test_wandb.py, tests/test_wandb_files.py):
``nbexp export wandb`` as a process, and the records of a run's ``.wandb`` log through wandb's own datastore reader
(imported when called: a test module skips first when wandb is missing)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def export_wandb(ledger: Path, out: Path) -> subprocess.CompletedProcess:
    """``nbexp --ledger LEDGER export wandb --all --dir OUT``: every run of the ledger as an offline run."""
    return subprocess.run(
        [sys.executable, "-m", "nbexp.cli", "--ledger", str(ledger), "export", "wandb", "--all", "--dir", str(out)],
        capture_output=True,
        text=True,
    )


def records(path: Path) -> Iterator[Any]:
    """The records (``wandb_internal_pb2.Record``) of the offline run log ``path``, in order."""
    from wandb.proto import wandb_internal_pb2 as pb
    from wandb.sdk.internal import datastore

    ds = datastore.DataStore()
    ds.open_for_scan(str(path))
    while (data := ds.scan_data()) is not None:
        rec = pb.Record()
        rec.ParseFromString(data)
        yield rec


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def read_offline(path: Path) -> dict[str, Any]:
    """What an offline run holds: ``history`` (rows), ``config``, ``summary`` and its ``run`` record."""
    out: dict[str, Any] = {"history": [], "config": {}, "summary": {}, "run": None}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out["summary"].update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "run":
            out["run"] = rec.run
            out["config"].update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
    return out
