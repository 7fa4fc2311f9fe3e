"""DataFrame views of the ledger (pandas imported here, on first use only)."""

from __future__ import annotations

import os
from itertools import repeat
from typing import Any

from .errors import LedgerError
from .ledger.queries import SYSTEM_FIELDS, Reader

# The last frame of every run (no filter) with what it was read at: (ledger path, limit, stamp), the frame, and its
# rows stored as running with their sessions (whether each is still running depends on its kernel, not on a write).
# One frame, so the memory held is one frame's.
_LAST: dict[str, Any] = {}


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
    query: str | None = None,
):
    """See :func:`nbexp.runs`.

    A call without filters (``sprint`` None or ``all``, a ``limit`` at most) keeps its frame: the next such call
    returns a copy of it while the ledger's :meth:`~nbexp.ledger.queries.Reader.frame_stamp` is unchanged (no write
    to the runs, params, metric summaries, tags or data fingerprints since), its runs stored as running shown as
    crashed once their kernel is gone, as a new read would. Filters (a ``since`` or ``today`` moves with the clock)
    read the ledger each time.
    """
    import pandas as pd

    from .ledger.queries import parse_since
    from .ledger.schema import CRASHED, RUNNING

    plain = sprint in (None, "all") and all(arg is None for arg in (status, params, data, since, tag, search, query))
    with Reader(ledger) as r, r.snapshot():
        stamp = r.frame_stamp() if plain else None
        key = (str(r.path), limit, stamp)
        if stamp is not None and _LAST.get("key") == key:
            frame, running = _LAST["frame"], _LAST["running"]
        else:
            runs, _ = r.query_runs(
                sprint=sprint,
                status=status,
                limit=limit,
                params=params,
                data=data,
                tag=tag,
                started_after=parse_since(since),
                search=search,
                query=query,
                details=False,
            )
            ids = [run["id"] for run in runs]
            frame = _frame(runs, ids, r.run_columns(ids), r.path)
            running = []
            if stamp is not None:
                where = dict(zip(ids, range(len(ids))))
                running = [(where[rid], sid) for rid, sid in r.running_sessions().items() if rid in where]
                _LAST.clear()  # the old frame goes before the next is kept: one in memory
                _LAST.update(key=key, frame=frame, running=running)
        now = [(row, RUNNING if r.session_alive(sid) else CRASHED) for row, sid in running]
    # a copy, so a change the caller makes is not in the next call's frame: with copy-on-write (pandas 3) a shallow
    # one is enough (a column is copied when written)
    out = frame.copy(deep=not _copy_on_write(pd))
    if now:
        out.iloc[[row for row, _ in now], out.columns.get_loc("status")] = [st for _, st in now]
    return out


def _copy_on_write(pd: Any) -> bool:
    """Whether pandas copies a frame's data when it is written (always from pandas 3, an option in pandas 2)."""
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    try:
        return pd.get_option("mode.copy_on_write") is True
    except KeyError:  # pandas 2.0
        return False


def _frame(runs: list[dict], ids: list[str], read: tuple[dict, dict, dict], ledger: Any):
    """The DataFrame of ``runs`` (their ids ``ids``) and their columns ``read`` by :meth:`Reader.run_columns`."""
    import numpy as np
    import pandas as pd

    params_cols, metric_cols, data_cols = read
    # built column by column: a dict per run (75 keys each) took most of the 11 s at 100,000 runs
    base = ["run_id", "name", "status", "sprint", "start_time", "end_time"]
    columns: dict[str, Any] = {"run_id": ids}
    for col in base[1:]:
        columns[col] = [run[col] for run in runs]
    df = pd.DataFrame(columns, columns=base)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col].astype("float64"), unit="s", utc=True)
    df["duration_s"] = (df["end_time"] - df["start_time"]).dt.total_seconds()
    extra: dict[str, Any] = {}
    where = dict(zip(ids, range(len(ids))))  # run ids are unique: a run's row in the frame
    last: list = [None, None]  # the run ids of the previous key and their rows: most keys share them (one list)

    def aligned(pair: tuple, dtype: Any = None) -> Any:
        """A column in ``ids``' order from ``(run ids, values[, numeric])``, runs lacking the key as NaN; None when
        no run of ``ids`` has it."""
        rids, values = pair[0], pair[1]
        if len(values) != len(rids):  # each value is placed by its own run id: never shifted onto another run
            raise LedgerError(f"ledger {ledger}: {len(values)} values for {len(rids)} runs in one column")
        if rids is not last[0]:
            last[:] = [rids, np.fromiter(map(where.get, rids, repeat(-1)), dtype=np.intp, count=len(rids))]
        rows = last[1]
        keep = rows >= 0
        if not keep.any():
            return None
        if dtype is None and len(pair) > 2 and pair[2] and len(rows) == len(ids) and keep.all():
            # every run has the key and no value is a bool: one numeric array is what inferring the objects gives
            numbers = np.asarray(values)
            if numbers.ndim == 1 and numbers.dtype.kind in "if":  # not lists of numbers (2-d)
                out = np.empty(len(ids), dtype=numbers.dtype)
                out[rows] = numbers
                return out
        if dtype is not None:
            out = np.full(len(ids), np.nan, dtype=dtype)
            out[rows[keep]] = np.asarray(values, dtype=dtype)[keep]
            return out
        column = np.full(len(ids), None, dtype=object)
        picked = np.empty(len(values), dtype=object)
        picked[:] = values  # element by element: a list value stays one value
        column[rows[keep]] = picked[keep]
        return pd.Series(column).infer_objects().to_numpy()  # typed as a frame of records infers

    for prefix, cols, dtype in (
        ("params", params_cols, None),
        ("metrics", metric_cols, "float64"),
        ("data", data_cols, object),
    ):
        for k, pair in sorted(cols.items()):
            column = aligned(pair, dtype)
            if column is not None:
                extra[f"{prefix}.{k}"] = column
    if runs:
        for k in SYSTEM_FIELDS:
            values = [run[k] for run in runs]
            extra[f"system.{k}"] = pd.Series(values, dtype=object if k == "idle_hint" else "float64")
    if extra:
        df = pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)
    return df


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
