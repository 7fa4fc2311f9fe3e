"""Data the model saw: fingerprints and distribution summaries.

Handles pandas DataFrame / Series, NumPy arrays and PyTorch tensors here, polars
DataFrame / Series in :mod:`.data_polars` and Spark DataFrames in :mod:`.data_spark`,
each only when the user has already imported that library. A summary is computed once
per distinct content (the fingerprint) and is exact up to :data:`ROW_BUDGET`
rows; beyond it, quantiles, histograms and category counts come from a uniform
sample of ``ROW_BUDGET`` rows drawn with a fixed seed (the summary says so),
while counts, missing values, min, max, mean and std stay exact.

Label-like arrays (the ``y`` of a ``fit`` call, names such as ``y_train`` or
``target``, integer/categorical vectors with few distinct values) carry their
class distribution and an imbalance flag: minority share below
:data:`IMBALANCE_SHARE` or majority:minority ratio above :data:`IMBALANCE_RATIO`.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
from typing import Any

ROW_BUDGET = 200_000  # rows summarized exactly; a fixed-seed sample beyond
SAMPLE_SEED = 0
MAX_COLUMNS = 200  # columns summarized per object
HIST_BINS = 20
# quantile probabilities stored per numeric column: every percentile plus finer tails, enough
# to rebuild a CDF for drift and out-of-range shares
QUANTILE_PROBS = [0.0, 0.001, 0.005] + [i / 100 for i in range(1, 100)] + [0.995, 0.999, 1.0]
TOP_VALUES = 20
CATEGORY_KEEP = 50  # categories kept in full for drift
LABEL_MAX_CLASSES = 20
IMBALANCE_SHARE = 0.10
IMBALANCE_RATIO = 5.0
REPORTED_QUANTILES = {"p1": 1, "p5": 5, "p25": 25, "p50": 50, "p75": 75, "p95": 95, "p99": 99}

LABEL_NAME = re.compile(r"^(y|y_\w+|\w+_y|labels?|targets?|class(es)?|outcome|\w+_labels?|\w+_target)$", re.IGNORECASE)


class DataSkipped(Exception):
    """An object that looks like data but cannot be summarized; the message says why."""


# (module, class, kind) of the data objects handled, NumPy arrays aside; a module counts only
# once the user has imported it
DATA_TYPES = (
    ("pandas", "DataFrame", "dataframe"),
    ("pandas", "Series", "series"),
    ("torch", "Tensor", "tensor"),
    ("polars", "DataFrame", "polars-dataframe"),
    ("polars", "Series", "polars-series"),
    ("pyspark.sql", "DataFrame", "spark-dataframe"),
)


def kind_of(obj: Any) -> str | None:
    """``dataframe``, ``series``, ``ndarray``, ``tensor``, ``polars-dataframe``, ``polars-series``,
    ``spark-dataframe`` or None; never imports a library."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return "ndarray" if obj.dtype.kind in "biufcmMOSUV" else None
    for module, cls, kind in DATA_TYPES:
        lib = sys.modules.get(module)
        if lib is not None and isinstance(obj, getattr(lib, cls, ())):
            return kind
    return None


def _backend(kind: str):
    """The module summarizing ``kind`` when it is not this one's (polars, Spark)."""
    if kind.startswith("polars-"):
        from . import data_polars

        return data_polars
    if kind.startswith("spark-"):
        from . import data_spark

        return data_spark
    return None


# -- the cheap change check --------------------------------------------------------------
def probe_rows(n: int) -> list[int]:
    """The (at most 8) evenly spread positions whose values the cheap check compares."""
    return sorted({(i * (n - 1)) // 7 for i in range(8)}) if n else []


def signature(obj: Any, kind: str) -> tuple:
    """Identity, shape, dtypes and a few sampled values: equal signatures are taken as
    unchanged data without hashing it all."""
    try:
        if (backend := _backend(kind)) is not None:
            return backend.signature(obj, kind)
        if kind == "dataframe":
            n = len(obj)
            rows = probe_rows(n)
            sample = repr(obj.iloc[rows, : min(obj.shape[1], 50)].to_numpy().tolist()) if rows else ""
            return (id(obj), obj.shape, tuple(map(str, obj.dtypes[:500])), tuple(map(str, obj.columns[:500])), sample)
        if kind == "series":
            n = len(obj)
            rows = probe_rows(n)
            return (id(obj), obj.shape, str(obj.dtype), str(obj.name), repr(obj.iloc[rows].tolist()))
        if kind == "ndarray":
            flat = obj.reshape(-1) if obj.flags.c_contiguous or obj.flags.f_contiguous else obj.ravel()
            n = flat.size
            idx = probe_rows(n)
            return (id(obj), obj.shape, str(obj.dtype), repr(flat[idx].tolist()))
        if kind == "tensor":
            flat = obj.detach().reshape(-1)
            n = flat.numel()
            idx = probe_rows(n)
            vals = flat[idx].cpu().tolist() if idx else []
            return (
                id(obj),
                tuple(obj.shape),
                str(obj.dtype),
                str(obj.device),
                repr(vals),
                getattr(obj, "_version", None),
            )
    except Exception as exc:
        raise DataSkipped(f"cannot inspect it ({type(exc).__name__}: {exc})") from None
    return (id(obj),)


# -- fingerprint ----------------------------------------------------------------------------
def fingerprint(obj: Any, kind: str) -> tuple[str, bool]:
    """``(hex, exact)``: a content hash stable across kernels and machines. ``exact`` is False
    for a tensor on an accelerator, fingerprinted from its fixed-seed sample."""
    if (backend := _backend(kind)) is not None:
        return backend.fingerprint(obj, kind)
    import numpy as np

    h = hashlib.blake2b(digest_size=10)
    h.update(kind.encode())
    exact = True
    if kind == "dataframe":
        pd = sys.modules["pandas"]
        h.update(repr((obj.shape, [str(c) for c in obj.columns], [str(d) for d in obj.dtypes])).encode())
        for i in range(obj.shape[1]):
            _hash_series(h, obj.iloc[:, i], pd, np)
    elif kind == "series":
        pd = sys.modules["pandas"]
        h.update(repr((obj.shape, str(obj.dtype), str(obj.name))).encode())
        _hash_series(h, obj, pd, np)
    elif kind == "ndarray":
        h.update(repr((obj.shape, str(obj.dtype))).encode())
        _hash_array(h, obj, np)
    elif kind == "tensor":
        h.update(repr((tuple(obj.shape), str(obj.dtype))).encode())
        t = obj.detach()
        if t.device.type == "cpu":
            _hash_array(h, _tensor_numpy(t), np)
        else:
            exact = False
            _hash_array(h, _tensor_sample(t), np)
    return h.hexdigest(), exact


def _hash_series(h, s, pd, np) -> None:
    values = s.to_numpy() if s.dtype.kind in "biufcmM" else None
    if values is not None:
        h.update(np.ascontiguousarray(values).view(np.uint8).data)
        return
    try:
        h.update(pd.util.hash_pandas_object(s, index=False).to_numpy().view(np.uint8).data)
    except TypeError:  # unhashable values (lists, dicts): hash their text
        h.update("\x1f".join(map(repr, s.tolist())).encode("utf-8", "replace"))


def _hash_array(h, a, np) -> None:
    if a.dtype.kind == "O":
        h.update("\x1f".join(map(repr, a.reshape(-1).tolist())).encode("utf-8", "replace"))
    else:
        h.update(np.ascontiguousarray(a).view(np.uint8).data)


def _tensor_numpy(t):
    import numpy as np

    if t.dtype.is_floating_point and t.dtype not in (sys.modules["torch"].float32, sys.modules["torch"].float64):
        t = t.float()  # bfloat16 / float16 have no NumPy twin everywhere
    try:
        return t.numpy()
    except (TypeError, RuntimeError):
        return np.asarray(t.tolist())


def _tensor_sample(t):
    """At most ROW_BUDGET elements, picked on the tensor's own device, then moved.

    The positions are drawn uniformly with a fixed seed (with replacement, so that a tensor of
    billions of elements never needs a permutation of them all), then gathered on the device:
    only the sample crosses to the CPU."""
    torch = sys.modules["torch"]
    flat = t.reshape(-1)
    n = flat.numel()
    if n > ROW_BUDGET:
        g = torch.Generator(device="cpu").manual_seed(SAMPLE_SEED)
        idx = torch.randint(0, n, (ROW_BUDGET,), generator=g).sort().values.to(flat.device)
        flat = flat.index_select(0, idx)
    return _tensor_numpy(flat.cpu())


# -- summaries --------------------------------------------------------------------------------
def summarize(obj: Any, kind: str, name: str, label_names: set[str] | frozenset = frozenset()) -> dict:
    """The summary of one data object (see the module docstring)."""
    if (backend := _backend(kind)) is not None:
        return _scrub_names(backend.summarize(obj, kind, name, label_names))
    return _scrub_names(_summarize(obj, kind, name, label_names))


def _scrub_names(summary: dict) -> dict:
    """Column names (and a 0-d object's text) scrubbed of secrets; values are in :func:`fill_categories`."""
    from .secrets import scrub_text

    for col in summary.get("columns", ()):
        col["name"] = scrub_text(str(col["name"]))
    if isinstance(summary.get("value"), str):
        summary["value"] = scrub_text(summary["value"])[:100]
    return summary


def _summarize(obj: Any, kind: str, name: str, label_names: set[str] | frozenset) -> dict:
    import numpy as np

    pd = sys.modules.get("pandas")
    out: dict[str, Any] = {"kind": kind, "name": name}
    if kind == "dataframe":
        n = len(obj)
        out["shape"] = list(obj.shape)
        cols = list(obj.columns)
        dup = len(set(map(str, cols))) != len(cols)
        if dup:
            out["note"] = "duplicate column names: columns numbered by position"
        idx = _sample_index(n, np)
        out["rows"] = n
        out["sampled"] = _sample_note(n, idx)
        columns = []
        for i, col in enumerate(cols[:MAX_COLUMNS]):
            label = str(col) if not isinstance(col, tuple) else ".".join(map(str, col))
            if dup:
                label = f"{label}#{i}"
            s = obj.iloc[:, i]
            columns.append(
                _column(
                    label,
                    s.to_numpy() if s.dtype.kind in "biufcmM" else s,
                    idx,
                    np,
                    pd,
                    is_label=bool(LABEL_NAME.match(label)) or label in label_names,
                )
            )
        if len(cols) > MAX_COLUMNS:
            out["truncated_columns"] = len(cols) - MAX_COLUMNS
        out["columns"] = columns
    elif kind == "series":
        n = len(obj)
        out["shape"] = [n]
        idx = _sample_index(n, np)
        out["rows"] = n
        out["sampled"] = _sample_note(n, idx)
        values = obj.to_numpy() if obj.dtype.kind in "biufcmM" else obj
        out["columns"] = [
            _column(
                str(obj.name) if obj.name is not None else name,
                values,
                idx,
                np,
                pd,
                is_label=_label_like(name, values, np, label_names),
            )
        ]
    elif kind in ("ndarray", "tensor"):
        if kind == "tensor":
            out["device"] = str(obj.device)
            out["dtype"] = str(obj.dtype).replace("torch.", "")
            shape = list(obj.shape)
            t = obj.detach()
            if t.device.type != "cpu" and t.numel() > ROW_BUDGET:
                arr = _tensor_sample(t)
                out["sampled"] = {"rows": int(arr.size), "of": int(t.numel()), "seed": SAMPLE_SEED, "on": "device"}
                arr = arr.reshape(-1)
                shape_for_cols = None
            else:
                arr = _tensor_numpy(t.cpu())
                shape_for_cols = arr.shape
        else:
            arr = obj
            shape = list(arr.shape)
            out["dtype"] = str(arr.dtype)
            shape_for_cols = arr.shape
        out["shape"] = shape
        if arr.ndim == 0:
            out["rows"] = 1
            out["value"] = arr.item() if arr.dtype.kind in "biuf" else repr(arr.item())  # cut once scrubbed
            out["columns"] = []
            return out
        if shape_for_cols is not None and arr.ndim == 2 and arr.shape[1] <= MAX_COLUMNS:
            n = arr.shape[0]
            idx = _sample_index(n, np)
            out.setdefault("sampled", _sample_note(n, idx))
            out["rows"] = n
            out["columns"] = [_column(str(j), arr[:, j], idx, np, pd, is_label=False) for j in range(arr.shape[1])]
        else:
            flat = arr.reshape(-1)
            n = flat.size
            idx = _sample_index(n, np)
            out.setdefault("sampled", _sample_note(n, idx))
            out["rows"] = shape[0] if shape else 1
            if arr.ndim > 2:
                out["note"] = f"{arr.ndim}-d values summarized together"
            out["columns"] = [
                _column(
                    "values", flat, idx, np, pd, is_label=arr.ndim == 1 and _label_like(name, flat, np, label_names)
                )
            ]
    return out


def _sample_index(n: int, np):
    if n <= ROW_BUDGET:
        return None
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(n, ROW_BUDGET, replace=False))


def _sample_note(n: int, idx) -> dict | None:
    return None if idx is None else {"rows": ROW_BUDGET, "of": n, "seed": SAMPLE_SEED}


def _label_like(name: str, values, np, label_names) -> bool:
    if name in label_names or LABEL_NAME.match(name):
        return True
    kind = getattr(getattr(values, "dtype", None), "kind", "O")
    if kind not in "biu" or len(values) < 2 * LABEL_MAX_CLASSES:
        return False
    head = values[: min(len(values), 10_000)]
    return len(np.unique(head)) <= LABEL_MAX_CLASSES


def _f(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else (None if math.isnan(x) else x)


def _column(label: str, values, idx, np, pd, is_label: bool) -> dict:
    """Summary of one column (a NumPy array, or a pandas Series for non-numeric data)."""
    col: dict[str, Any] = {"name": label}
    dtype = values.dtype
    col["dtype"] = str(dtype)
    n = len(values)
    col["count"] = n
    if isinstance(values, np.ndarray) and dtype.kind in "biuf":
        col["type"] = "numeric" if dtype.kind != "b" else "boolean"
        x = values.astype(np.float64, copy=False)
        finite_mask = np.isfinite(x)
        missing = int(np.isnan(x).sum()) if dtype.kind == "f" else 0
        col["missing"] = missing
        col["missing_rate"] = missing / n if n else 0.0
        col["inf"] = int((~finite_mask).sum()) - missing
        ok = x[finite_mask] if col["inf"] or missing else x
        if ok.size:
            col.update(
                min=_f(ok.min()),
                max=_f(ok.max()),
                mean=_f(ok.mean()),
                std=_f(ok.std(ddof=1)) if ok.size > 1 else None,  # as pandas describe()
                zeros=int((ok == 0).sum()),
            )
            part = x[idx] if idx is not None else x
            part = part[np.isfinite(part)]
            if part.size:
                q = np.quantile(part, QUANTILE_PROBS)
                col["quantiles"] = [float(v) for v in q]
                for k, p in REPORTED_QUANTILES.items():
                    col[k] = float(q[QUANTILE_PROBS.index(p / 100)])
                counts, edges = np.histogram(part, bins=HIST_BINS)
                col["histogram"] = {"counts": counts.tolist(), "edges": [float(e) for e in edges]}
        if dtype.kind in "biu" or dtype.kind == "b":
            uniq, counts = np.unique(values if idx is None else values[idx], return_counts=True)
            col["distinct"] = int(len(uniq))
            if is_label or dtype.kind == "b":
                if len(uniq) <= CATEGORY_KEEP:
                    col["categories"] = {str(k): int(c) for k, c in zip(uniq.tolist(), counts.tolist())}
        if is_label:
            _classes(col, col.get("categories"))
        return col
    if isinstance(values, np.ndarray) and dtype.kind in "mM":
        col["type"] = "datetime"
        nat = np.isnat(values)
        col["missing"] = int(nat.sum())
        col["missing_rate"] = col["missing"] / n if n else 0.0
        ok = values[~nat]
        if ok.size:
            col["min"], col["max"] = str(ok.min()), str(ok.max())
        return col
    # categorical / text / mixed objects: a pandas Series
    s = values if pd is not None and isinstance(values, pd.Series) else (pd.Series(values) if pd is not None else None)
    col["type"] = "categorical"
    if s is None:  # object ndarray without pandas
        col["missing"] = sum(v is None for v in values)
        col["missing_rate"] = col["missing"] / n if n else 0.0
        return col
    missing = int(s.isna().sum())
    col["missing"] = missing
    col["missing_rate"] = missing / n if n else 0.0
    part = s.iloc[idx] if idx is not None else s
    try:
        vc = part.value_counts(dropna=True)
    except TypeError:  # unhashable values: count their text
        vc = part.dropna().map(repr).value_counts()
        col["note"] = "unhashable values counted by their text"
    mixed = {type(v).__name__ for v in part.dropna().iloc[:1000]}
    if len(mixed) > 1:
        col["mixed_types"] = sorted(mixed)
    return fill_categories(col, list(vc.head(CATEGORY_KEEP + 1).items()), len(vc), is_label)


def fill_categories(col: dict, counts: list, distinct: int, is_label: bool) -> dict:
    """Distinct count, top values and (for at most CATEGORY_KEEP) every category of a column,
    from ``counts``: (value, count) pairs, most frequent first, at least the top CATEGORY_KEEP + 1.

    Values are scrubbed of secrets before they are cut to 80 characters (every value of a column
    whose name looks secret, ``password`` or ``api_key``, is hidden); values that become the same
    text are counted together."""
    from .secrets import REDACTED, is_secret_name, scrub_text

    hide = is_secret_name(str(col.get("name", "")))
    merged: dict[str, int] = {}
    for k, c in counts:
        text = REDACTED if hide else scrub_text(str(k))[:80]
        merged[text] = merged.get(text, 0) + int(c)
    pairs = sorted(merged.items(), key=lambda kc: -kc[1]) if len(merged) < len(counts) else list(merged.items())
    col["distinct"] = int(distinct)
    col["top"] = [[k, c] for k, c in pairs[:TOP_VALUES]]
    if distinct <= CATEGORY_KEEP:
        col["categories"] = dict(pairs)
    if is_label:
        _classes(col, col.get("categories"))
    return col


def _classes(col: dict, categories: dict | None) -> None:
    if not categories or len(categories) > LABEL_MAX_CLASSES:
        return
    total = sum(categories.values())
    if not total:
        return
    shares = {k: v / total for k, v in categories.items()}
    col["label"] = True
    col["classes"] = shares
    lo, hi = min(shares.values()), max(shares.values())
    col["imbalanced"] = bool(len(shares) > 1 and (lo < IMBALANCE_SHARE or (lo > 0 and hi / lo > IMBALANCE_RATIO)))
    col["minority_share"] = lo


FIT_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit", "fit_resample"})


def fit_labels(tree) -> set[str]:
    """Names passed as ``y`` to a ``fit``-like call in a cell: ``model.fit(X, y_train)``."""
    import ast

    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FIT_METHODS:
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Name):
                out.add(node.args[1].id)
            for kw in node.keywords:
                if kw.arg == "y" and isinstance(kw.value, ast.Name):
                    out.add(kw.value.id)
    return out
