"""DataFrame views of the ledger (pandas imported here, on first use only)."""

from __future__ import annotations

import os
from typing import Any

from .ledger.queries import SYSTEM_FIELDS, Reader


def runs_frame(
    ledger: str | os.PathLike | None,
    sprint: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    params: dict[str, Any] | None = None,
    data: str | None = None,
    since: str | float | None = None,
    tag: str | None = None,
    search: str | None = None,
):
    """See :func:`nbexp.runs`."""
    import pandas as pd

    from .ledger.queries import parse_since

    with Reader(ledger) as r:
        runs = r.list_runs(
            sprint=sprint,
            status=status,
            limit=limit,
            params=params,
            data=data,
            tag=tag,
            started_after=parse_since(since),
            search=search,
        )
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run["id"],
            "name": run["name"],
            "status": run["status"],
            "sprint": run["sprint"],
            "start_time": run["start_time"],
            "end_time": run["end_time"],
        }
        for k in SYSTEM_FIELDS:
            row[f"system.{k}"] = run[k]
        for k, v in run["params"].items():
            row[f"params.{k}"] = v
        for k, s in run["metrics"].items():
            row[f"metrics.{k}"] = s["last"]
        for k, fp in run["data"].items():
            row[f"data.{k}"] = fp
        rows.append(row)
    base = ["run_id", "name", "status", "sprint", "start_time", "end_time"]
    df = pd.DataFrame(rows, columns=None if rows else base)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col], unit="s", utc=True)
    df["duration_s"] = (df["end_time"] - df["start_time"]).dt.total_seconds()
    system_cols = [f"system.{k}" for k in SYSTEM_FIELDS] if rows else []
    for col in system_cols:
        if col != "system.idle_hint":
            df[col] = df[col].astype("float64")
    param_cols = sorted(c for c in df.columns if c.startswith("params."))
    metric_cols = sorted(c for c in df.columns if c.startswith("metrics."))
    for col in metric_cols:
        df[col] = df[col].astype("float64")
    for col in param_cols:
        df[col] = df[col].infer_objects()
    data_cols = sorted(c for c in df.columns if c.startswith("data."))
    return df[base + ["duration_s"] + param_cols + metric_cols + data_cols + system_cols]


DATA_COLUMNS = [
    "variable",
    "kind",
    "shape",
    "fingerprint",
    "role",
    "sampled",
    "column",
    "type",
    "dtype",
    "count",
    "missing",
    "missing_rate",
    "min",
    "p1",
    "p5",
    "p25",
    "p50",
    "p75",
    "p95",
    "p99",
    "max",
    "mean",
    "std",
    "zeros",
    "distinct",
    "top",
    "imbalanced",
    "minority_share",
    "classes",
]


def data_frame(ledger: str | os.PathLike | None, run: str):
    """See :func:`nbexp.data`."""
    import pandas as pd

    with Reader(ledger) as r:
        items = r.data(r.resolve(run))
    rows = []
    for item in items:
        summary = item["summary"] or {}
        base = {
            "variable": item["name"],
            "kind": item["kind"],
            "shape": tuple(item["shape"] or ()),
            "fingerprint": item["fingerprint"],
            "role": item["role"],
            "sampled": bool(summary.get("sampled")),
        }
        for col in summary.get("columns") or [{}]:
            row = dict(base)
            row.update({k: col.get(k) for k in DATA_COLUMNS if k in col})
            row["column"] = col.get("name")
            rows.append(row)
    return pd.DataFrame(rows, columns=DATA_COLUMNS)


DRIFT_COLUMNS = [
    "variable",
    "column",
    "severity",
    "psi",
    "ks",
    "out_of_range",
    "missing_a",
    "missing_b",
    "dtype_a",
    "dtype_b",
    "class_shift",
    "flags",
]


def drift_frame(
    ledger: str | os.PathLike | None, run_a: str, run_b: str, name: str | None = None, other: str | None = None
):
    """See :func:`nbexp.drift`."""
    import pandas as pd

    from .analysis.drift import drift_between

    with Reader(ledger) as r:
        rows = drift_between(r, run_a, run_b, name, other)
    for row in rows:
        row["flags"] = "; ".join(row["flags"])
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def system_frame(ledger: str | os.PathLike | None, run: str):
    """See :func:`nbexp.system`."""
    import pandas as pd

    with Reader(ledger) as r:
        host, gpus = r.system_series(r.resolve(run))
    frame = pd.DataFrame(host, columns=["time", "proc_cpu", "proc_rss_mb", "proc_threads", "sys_cpu", "sys_mem"])
    if gpus:
        g = pd.DataFrame(gpus)
        wide = g.pivot_table(index="time", columns="gpu", values=[c for c in g.columns if c not in ("time", "gpu")])
        wide.columns = [f"gpu{gpu}.{field}" for field, gpu in wide.columns]
        frame = frame.merge(wide.reset_index(), on="time", how="outer")
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame.sort_values("time").reset_index(drop=True)
