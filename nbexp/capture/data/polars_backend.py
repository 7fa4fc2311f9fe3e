"""polars DataFrames and Series: the same summary as for pandas, without pandas.

Only reached when the user has imported polars (:func:`nbexp.capture.data.kind_of`).
Numeric, boolean (without nulls) and temporal columns go through NumPy (zero-copy for
numeric columns without nulls) and share the pandas path's numbers; string, categorical,
nested and other columns are counted with polars' own ``value_counts``. A polars null and a
float NaN both count as missing, as in pandas. A ``LazyFrame`` is never collected.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

from . import summary as base

KINDS = frozenset({"polars-dataframe", "polars-series"})


def _pl():
    return sys.modules["polars"]


def signature(obj: Any, kind: str) -> tuple:
    if kind == "polars-dataframe":
        rows = base.probe_rows(obj.height)
        sample = repr(obj.select(obj.columns[:50])[rows].rows()) if rows else ""
        return (id(obj), obj.shape, tuple(map(str, obj.dtypes[:500])), tuple(obj.columns[:500]), sample)
    rows = base.probe_rows(len(obj))
    return (id(obj), obj.shape, str(obj.dtype), obj.name, repr(obj.gather(rows).to_list()) if rows else "")


def fingerprint(obj: Any, kind: str) -> tuple[str, bool]:
    import numpy as np

    h = hashlib.blake2b(digest_size=10)
    h.update(kind.encode())
    if kind == "polars-dataframe":
        h.update(repr((obj.shape, obj.columns, [str(d) for d in obj.dtypes])).encode())
        for s in obj.get_columns():
            _hash_series(h, s, np)
    else:
        h.update(repr((obj.shape, str(obj.dtype), obj.name)).encode())
        _hash_series(h, obj, np)
    return h.hexdigest(), True


def _hash_series(h, s, np) -> None:
    pl = _pl()
    nulls = s.null_count()
    if nulls:
        h.update(np.packbits(s.is_null().to_numpy()).data)
    if s.dtype.is_numeric() or s.dtype.is_temporal() or s.dtype == pl.Boolean:
        filled = s.fill_null(0) if nulls and not s.dtype.is_temporal() else s
        values = filled.to_numpy()
        if values.dtype.kind in "mM" and nulls:
            values = values.copy()
            values[np.isnat(values)] = values.dtype.type(0, np.datetime_data(values.dtype)[0])
        if values.dtype.kind != "O":
            h.update(np.ascontiguousarray(values).view(np.uint8).data)
            return
    try:
        text = s.cast(pl.String)
    except Exception:  # nested or object values: hash their text
        h.update("\x1f".join(map(repr, s.to_list())).encode("utf-8", "replace"))
        return
    joined = text.fill_null("").str.join("\x1f").item()
    h.update((joined or "").encode("utf-8"))


def summarize(obj: Any, kind: str, name: str, label_names: set[str] | frozenset = frozenset()) -> dict:
    import numpy as np

    out: dict[str, Any] = {"kind": kind, "name": name, "library": "polars"}
    if kind == "polars-dataframe":
        n = obj.height
        out["shape"] = [n, obj.width]
        series = obj.get_columns()
    else:
        n = len(obj)
        out["shape"] = [n]
        series = [obj]
    idx = base.sample_index(n, np)
    out["rows"] = n
    out["sampled"] = base.sample_note(n, idx)
    columns = []
    for s in series[: base.MAX_COLUMNS]:
        label = s.name if kind == "polars-dataframe" or s.name else name
        columns.append(_column(label, s, idx, np, label_names, single=kind != "polars-dataframe", var=name))
    if len(series) > base.MAX_COLUMNS:
        out["truncated_columns"] = len(series) - base.MAX_COLUMNS
    out["columns"] = columns
    return out


def _column(label: str, s, idx, np, label_names, single: bool, var: str) -> dict:
    pl = _pl()
    dtype = s.dtype
    named_label = bool(base.LABEL_NAME.match(label)) or label in label_names
    if dtype.is_numeric() or (dtype == pl.Boolean and not s.null_count()) or dtype.is_temporal():
        values = s.to_numpy()
        if values.dtype.kind != "O":
            is_label = named_label or (single and base.label_like(var, values, np, label_names))
            numeric = base.column(label, values, idx, np, None, is_label=is_label)
            numeric["dtype"] = str(dtype)
            return numeric
    n = len(s)
    col: dict[str, Any] = {"name": label, "dtype": str(dtype), "count": n, "type": "categorical"}
    missing = s.null_count()
    col["missing"] = missing
    col["missing_rate"] = missing / n if n else 0.0
    part = s.gather(idx) if idx is not None else s
    part = part.drop_nulls()
    try:
        vc = part.value_counts(sort=True)
        pairs = list(zip(vc[:, 0].to_list(), vc[:, 1].to_list()))
    except Exception:  # values polars cannot group: count their text
        from collections import Counter

        pairs = Counter(map(repr, part.to_list())).most_common()
        col["note"] = "values counted by their text"
    pairs = [(k if isinstance(k, str) else repr(k) if isinstance(k, (list, dict)) else k, c) for k, c in pairs]
    return base.fill_categories(
        col, pairs[: base.CATEGORY_KEEP + 1], len(pairs), named_label or (single and var in label_names)
    )
