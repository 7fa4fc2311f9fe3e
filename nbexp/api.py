"""DataFrame views of the ledger (pandas imported here, on first use only)."""

from __future__ import annotations

import json
import os
import threading
from itertools import repeat
from typing import Any

from .errors import LedgerError
from .ledger.queries import SYSTEM_FIELDS, Reader

# The last frame of every run (no filter) with what it was read at: (ledger path, limit, stamp), the frame, and its
# rows stored as running with their sessions (whether each is still running depends on its kernel, not on a write).
# One frame, so the memory held is one frame's.
_LAST: dict[str, Any] = {}
# a frame stored in the ledger is stored again once this many of its runs changed (fewer: each new process re-reads
# them, ~1 s per 1,000 runs of 50 params); the first read of every run of a ledger of more than FEW_RUNS runs stores
# one
STORE_AFTER = 1000
FORMAT = 1  # of a stored frame's header: another is not read (a newer nbexp's frame is read in full instead)
_WRITERS: list[threading.Thread] = []  # the threads storing a frame (tests wait for them)


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

    Every run (no filter, no limit) of a ledger of schema 15 with more than ``FEW_RUNS`` runs, in a call that finds
    no frame kept: the frame's columns stored in the ledger are brought up to date by re-reading only the runs
    written since (the ledger's change log, :meth:`~nbexp.ledger.queries.Reader.changed_since`), in the order the
    runs table gives now: a new process reads ~75 stored columns instead of 5,000,000 param rows at 100,000 runs.
    The columns are stored again, by a thread once this call has returned, when none were stored or
    ``STORE_AFTER`` runs changed since; a ledger that cannot be written keeps none.
    """
    from .ledger.queries import FEW_RUNS, parse_since
    from .ledger.schema import CRASHED, RUNNING

    plain = sprint in (None, "all") and all(arg is None for arg in (status, params, data, since, tag, search, query))
    store: tuple[dict[str, Any], tuple[bytes, int], bool] | None = None
    with Reader(ledger) as r, r.snapshot():
        mark = r.frame_mark() if plain else None
        stamp = mark[0] if mark is not None else r.frame_stamp() if plain else None
        key = (str(r.path), limit, stamp)
        if stamp is not None and _LAST.get("key") == key:
            frame, running = _LAST["frame"], _LAST["running"]
        else:
            whole = mark if limit is None else None  # every run: the stored columns apply
            raw, reread = _up_to_date(r, whole) if whole is not None else (None, 0)
            if whole is not None and raw is not None and len(raw["ids"]) > FEW_RUNS:
                frame = _build(raw)
                if reread >= STORE_AFTER:
                    store = (raw, whole, False)
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
                # every run: their statuses as stored (a crashed kernel's run stays running), as stored columns hold
                raw = _raw(runs, ids, r.run_columns(ids), r.path, r.running_sessions() if whole is not None else {})
                frame = _build(raw)
                if whole is not None and len(ids) > FEW_RUNS:
                    store = (raw, whole, reread < 0)  # replaces stored columns it could not use
            running = []
            if stamp is not None:
                where = dict(zip(raw["ids"], range(len(raw["ids"]))))
                running = [(where[rid], sid) for rid, sid in r.running_sessions().items() if rid in where]
                _LAST.clear()  # the old frame goes before the next is kept: one in memory
                _LAST.update(key=key, frame=frame, running=running)
        now = [(row, RUNNING if r.session_alive(sid) else CRASHED) for row, sid in running]
        path = r.path
    # a copy, so a change the caller makes is not in the next call's frame (deep: ~20 ms at 100,000 runs x 75
    # columns, next to 1-2 s for the read)
    out = frame.copy(deep=True)
    if now:
        out.iloc[[row for row, _ in now], out.columns.get_loc("status")] = [st for _, st in now]
    if store is not None:  # last: the thread's encoding holds the GIL at times
        _store_later(path, *store)
    return out


def _frame(runs: list[dict], ids: list[str], read: tuple[dict, dict, dict], ledger: Any):
    """The DataFrame of ``runs`` (their ids ``ids``) and their columns ``read`` by :meth:`Reader.run_columns`."""
    return _build(_raw(runs, ids, read, ledger, {}))


BASE = ("run_id", "name", "status", "sprint", "start_time", "end_time")
PREFIXES = ("params", "metrics", "data")


def _raw(
    runs: list[dict], ids: list[str], read: tuple[dict, dict, dict], ledger: Any, running: dict[str, str]
) -> dict[str, Any]:
    """The columns of a frame before pandas types them: ``ids``, the run fields (``name``, ``status`` ... as lists,
    the times and system figures as float arrays; a run of ``running`` gets its stored status back, running, which
    :func:`runs_frame` resolves at each call), and ``cols``: ``{"params.lr": (values, present)}``, ``present`` a
    bool array of the runs that have the key, ``values`` a float or int array when every value is a float or an int
    (NaN at runs lacking a metric), else an object array of the values (None at runs lacking a param, NaN lacking a
    data fingerprint). :func:`_build` makes the frame of it; :func:`_merge` puts re-read runs in place."""
    import numpy as np

    from .ledger.schema import RUNNING

    n = len(ids)
    raw: dict[str, Any] = {"ids": list(ids)}
    for col in BASE[1:4]:
        raw[col] = [run[col] for run in runs]
    if running:
        raw["status"] = [RUNNING if rid in running else st for rid, st in zip(ids, raw["status"])]
    for col in BASE[4:]:
        raw[col] = np.array([run[col] for run in runs], dtype="float64")  # None: NaN, as to_datetime reads it
    for k in SYSTEM_FIELDS:
        values = [run[k] for run in runs]
        raw[f"system.{k}"] = values if k == "idle_hint" else np.array(values, dtype="float64")
    where = dict(zip(ids, range(n)))  # run ids are unique: a run's row in the frame
    last: list = [None, None]  # the run ids of the previous key and their rows: most keys share them (one list)
    cols: dict[str, tuple] = {}
    for prefix, read_cols in zip(PREFIXES, read):
        for k, pair in sorted(read_cols.items()):
            rids, values = pair[0], pair[1]
            if len(values) != len(rids):  # each value is placed by its own run id: never shifted onto another run
                raise LedgerError(f"ledger {ledger}: {len(values)} values for {len(rids)} runs in one column")
            if rids is not last[0]:
                last[:] = [rids, np.fromiter(map(where.get, rids, repeat(-1)), dtype=np.intp, count=len(rids))]
            rows = last[1]
            keep = rows >= 0
            if not keep.any():
                continue
            present = np.zeros(n, dtype=bool)
            present[rows[keep]] = True
            if prefix == "metrics":
                out = np.full(n, np.nan)
                out[rows[keep]] = np.asarray(values, dtype="float64")[keep]
            else:
                typed = _typed(values, len(pair) > 2 and pair[2]) if prefix == "params" else None
                if typed is not None:
                    out = np.zeros(n, dtype=typed.dtype)
                else:
                    out = np.full(n, None if prefix == "params" else np.nan, dtype=object)
                    typed = np.empty(len(values), dtype=object)
                    typed[:] = values  # element by element: a list value stays one value
                out[rows[keep]] = typed[keep]
            cols[f"{prefix}.{k}"] = (out, present)
    raw["cols"] = cols
    return raw


def _typed(values: list, numbers: bool = False) -> Any:
    """``values`` as one float or int array when all are floats or all are ints (of 64 bits), which is what pandas
    infers from them as objects, with or without missing ones (ints with a missing one: floats); else None.
    ``numbers``: no value is a bool, a list or a dict (:meth:`Reader.run_columns`' third item), so an int array
    of them holds ints only (a float would make it a float array)."""
    import numpy as np

    if numbers:
        array = np.asarray(values)
        if array.ndim == 1 and array.dtype.kind == "i":
            return array.astype(np.int64, copy=False)  # numpy 1 on Windows makes int32 of Python ints
    kinds = set(map(type, values))
    if kinds == {float}:
        return np.array(values, dtype="float64")
    if kinds == {int}:
        try:
            return np.array(values, dtype="int64")
        except OverflowError:
            return None
    return None


def _build(raw: dict[str, Any]):
    """The DataFrame of the columns ``raw`` (:func:`_raw`): the same frame for the same runs however ``raw`` was
    put together (read at once, stored and read back, or brought up to date run by run)."""
    import numpy as np
    import pandas as pd

    ids = raw["ids"]
    n = len(ids)
    columns: dict[str, Any] = {"run_id": ids}
    for col in BASE[1:]:
        columns[col] = raw[col]
    df = pd.DataFrame(columns, columns=list(BASE))
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col].astype("float64"), unit="s", utc=True)
    df["duration_s"] = (df["end_time"] - df["start_time"]).dt.total_seconds()
    extra: dict[str, Any] = {}
    cols = raw["cols"]
    for prefix in PREFIXES:
        for name in sorted(c for c in cols if c.startswith(prefix + ".")):
            values, present = cols[name]
            if prefix in ("metrics", "data"):
                out = values  # NaN at the runs lacking the key already
            elif values.dtype != object:
                # every value a float, or every value an int: the array itself when every run has the key, else
                # floats with NaN (pandas infers that from the values and None)
                out = values if present.all() else np.where(present, values, np.nan)
            else:
                out = pd.Series(values.copy()).infer_objects().to_numpy()  # typed as a frame of records infers
            extra[name] = out
    if n:
        for k in SYSTEM_FIELDS:
            extra[f"system.{k}"] = pd.Series(raw[f"system.{k}"], dtype=object if k == "idle_hint" else "float64")
    if extra:
        df = pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)
    return df


def _up_to_date(r: Reader, mark: tuple[bytes, int]) -> tuple[dict[str, Any] | None, int]:
    """The columns (:func:`_raw`) of every run at ``mark`` (stamp, change sequence): those stored in the ledger, with
    the runs changed since re-read and put in place, and how many runs were re-read; ``(None, 0)`` when none are
    stored, ``(None, -1)`` when those stored cannot be used (another format, damaged).

    Not the columns kept in this process: a ledger file replaced by another (a copy changed apart) would count its
    changes from the same sequence; the stored ones are the file's own."""
    stored = r.stored_frame()
    base = None if stored is None else _decode_raw(stored[2], stored[3])
    since = 0 if stored is None else stored[0]
    stamp, seq = mark
    if stored is None:
        return None, 0
    if base is None or since > seq:
        return None, -1
    if stored[1] == stamp:  # nothing written since they were stored
        return base, 0
    changed = r.changed_since(since) if since < seq else set()
    order = r.frame_order()
    known = dict(zip(base["ids"], range(len(base["ids"]))))
    fresh_ids = [rid for rid in order if rid in changed or rid not in known]
    if not fresh_ids and len(order) == len(base["ids"]) and order == base["ids"]:
        return base, 0
    by_id = {row["id"]: row for row in r.stored_runs(fresh_ids)}
    fresh_runs = [by_id[rid] for rid in fresh_ids]  # in the snapshot: every run of the order is there
    fresh = _raw(fresh_runs, fresh_ids, r.run_columns_of(fresh_ids), r.path, {})
    return _merge(order, base, known, fresh), len(fresh_ids)


def _merge(order: list[str], base: dict[str, Any], known: dict[str, int], fresh: dict[str, Any]) -> dict[str, Any]:
    """The columns of the runs ``order`` (in that order): a run's row from ``fresh`` when it is there, else from
    ``base`` (``known``: a run id's row there)."""
    import numpy as np

    n = len(order)
    mine = dict(zip(fresh["ids"], range(len(fresh["ids"]))))
    from_fresh = np.fromiter(map(mine.get, order, repeat(-1)), dtype=np.intp, count=n)
    in_fresh = from_fresh >= 0
    # a run not re-read is in the base (its id in ``known``): -1 for the re-read ones, whose base row is ignored
    from_base = np.fromiter(map(known.get, order, repeat(-1)), dtype=np.intp, count=n)
    in_base = ~in_fresh
    fi, bi = from_fresh[in_fresh], from_base[in_base]

    def combine(b: Any, f: Any, fill: Any) -> Any:
        """One column from the base's ``b`` and the fresh runs' ``f`` (None: the column is not there)."""
        typed = [a for a in (b, f) if a is not None and a.dtype != object]
        objects = [a for a in (b, f) if a is not None and a.dtype == object]
        if not objects and len({a.dtype for a in typed}) == 1:
            out = np.full(n, fill, dtype=typed[0].dtype) if fill is not None else np.zeros(n, dtype=typed[0].dtype)
        else:
            out = np.full(n, fill, dtype=object)
        if b is not None:
            out[in_base] = b[bi]
        if f is not None:
            out[in_fresh] = f[fi]
        return out

    def as_array(values: Any) -> Any:
        if isinstance(values, list):
            a = np.empty(len(values), dtype=object)
            a[:] = values
            return a
        return values

    raw: dict[str, Any] = {"ids": list(order)}
    for col in (*BASE[1:], *(f"system.{k}" for k in SYSTEM_FIELDS)):
        b, f = as_array(base[col]), as_array(fresh[col])
        out = combine(b, f, None)
        raw[col] = out.tolist() if out.dtype == object else out
    cols: dict[str, tuple] = {}
    for name in sorted(set(base["cols"]) | set(fresh["cols"])):
        prefix = name.partition(".")[0]
        vb, pb = base["cols"].get(name, (None, None))
        vf, pf = fresh["cols"].get(name, (None, None))
        present = combine(pb, pf, False)
        if not present.any():
            continue
        missing = np.nan if prefix in ("metrics", "data") else None
        values = combine(_objects(vb, pb, missing, vf), _objects(vf, pf, missing, vb), missing)
        cols[name] = (values, present)
    raw["cols"] = cols
    return raw


def _objects(values: Any, present: Any, missing: Any, other: Any) -> Any:
    """``values`` as objects (``missing`` where not ``present``) when ``other`` (the other side of a merge) is of
    another type; as they are otherwise."""
    if values is None or values.dtype == object or other is None or other.dtype == values.dtype:
        return values
    out = values.astype(object)
    out[~present] = missing
    return out


def _encode_raw(raw: dict[str, Any]) -> tuple[str, list[bytes]]:
    """``raw`` (:func:`_raw`) as a header (JSON) and parts: arrays of numbers and bools as their bytes, lists and
    object arrays as JSON (nothing a reader decodes runs code: no pickle)."""
    entries: list[list] = []
    parts: list[bytes] = []

    def put(value: Any) -> str:
        if isinstance(value, list) or value.dtype == object:
            parts.append(json.dumps(value if isinstance(value, list) else value.tolist()).encode())
            return "json"
        if value.dtype.kind in "fi":  # as _DTYPES name them, on any machine (big-endian ones too)
            value = value.astype(value.dtype.newbyteorder("<"), copy=False)
        parts.append(value.tobytes())
        return value.dtype.str

    for col in ("ids", *BASE[1:], *(f"system.{k}" for k in SYSTEM_FIELDS)):
        entries.append([col, put(raw[col])])
    for name, (values, present) in raw["cols"].items():
        entries.append([name, put(values), put(present)])
    return json.dumps({"format": FORMAT, "n": len(raw["ids"]), "columns": entries}), parts


def _decode_raw(header: str, parts: list[bytes]) -> dict[str, Any] | None:
    """The columns :func:`_encode_raw` stored; None for a header of another format or parts that do not fit it."""
    import numpy as np

    try:
        head = json.loads(header)
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            return None
        n, it = head["n"], iter(parts)

        def get(kind: str, as_list: bool = False) -> Any:
            part = next(it)
            if kind == "json":
                values = json.loads(part)
                if not isinstance(values, list) or len(values) != n:
                    raise ValueError("a column of another length")
                if as_list:
                    return values
                out = np.empty(n, dtype=object)
                out[:] = values
                return out
            if kind not in _DTYPES:
                raise ValueError(f"unknown part type {kind!r}")
            out = np.frombuffer(part, dtype=kind)
            if len(out) != n:
                raise ValueError("a column of another length")
            return out

        raw: dict[str, Any] = {"cols": {}}
        for entry in head["columns"]:
            if len(entry) == 2:
                raw[entry[0]] = get(entry[1], as_list=True)
            else:
                raw["cols"][entry[0]] = (get(entry[1]), get(entry[2]))
        if next(it, None) is not None:
            return None
        # the columns this nbexp builds a frame of, no fewer (another version's stored frame is read in full)
        if not {"ids", *BASE[1:], *(f"system.{k}" for k in SYSTEM_FIELDS)} <= raw.keys():
            return None
        if not all(name.partition(".")[0] in PREFIXES for name in raw["cols"]):
            return None
        return raw
    except (ValueError, KeyError, TypeError, StopIteration):  # JSONDecodeError is a ValueError
        return None


_DTYPES = ("<f8", "<i8", "|b1")  # the arrays a stored frame may hold (frombuffer of another type is refused)


def _store_later(path: Any, raw: dict[str, Any], mark: tuple[bytes, int], replace: bool) -> None:
    """Store ``raw`` (read at ``mark``: stamp, change sequence) in the ledger ``path``, in a thread: the caller's
    cell does not wait for it. Nothing is stored when the ledger cannot be written (read-only file or media) or
    holds columns of a later change sequence already, or of the same one unless ``replace`` (they could not be
    used)."""

    def store() -> None:
        from .ledger.frames import store_frame

        try:
            header, parts = _encode_raw(raw)
        except Exception:  # a thread's traceback would land under the user's next cell
            return  # a frame not stored is read from the rows next time
        store_frame(path, mark, header, parts, replace)

    _WRITERS[:] = [t for t in _WRITERS if t.is_alive()]
    thread = threading.Thread(target=store, name="nbexp-store-frame")  # not a daemon: a script's exit waits for it
    _WRITERS.append(thread)
    thread.start()


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
