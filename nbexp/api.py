"""DataFrame views of the ledger (pandas imported here, on first use only)."""

from __future__ import annotations

import os
from typing import Any

from .ledger.queries import Reader


def runs_frame(ledger: str | os.PathLike | None, sprint: str | None = None, status: str | None = None,
               limit: int | None = None, params: dict[str, Any] | None = None):
    """See :func:`nbexp.runs`."""
    import pandas as pd

    with Reader(ledger) as r:
        runs = r.list_runs(sprint=sprint, status=status, limit=limit, params=params)
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run["id"], "name": run["name"], "status": run["status"], "sprint": run["sprint"],
            "start_time": run["start_time"], "end_time": run["end_time"],
        }
        for k, v in run["params"].items():
            row[f"params.{k}"] = v
        for k, s in run["metrics"].items():
            row[f"metrics.{k}"] = s["last"]
        rows.append(row)
    base = ["run_id", "name", "status", "sprint", "start_time", "end_time"]
    df = pd.DataFrame(rows, columns=None if rows else base)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col], unit="s", utc=True)
    df["duration_s"] = (df["end_time"] - df["start_time"]).dt.total_seconds()
    params = sorted(c for c in df.columns if c.startswith("params."))
    metrics = sorted(c for c in df.columns if c.startswith("metrics."))
    for col in metrics:
        df[col] = df[col].astype("float64")
    for col in params:
        df[col] = df[col].infer_objects()
    return df[base + ["duration_s"] + params + metrics]
