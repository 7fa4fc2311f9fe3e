"""pandas DataFrames and Series, NumPy arrays and PyTorch tensors: every path through NumPy.

Only reached for objects of a library the user has already imported
(:func:`nbexp.capture.data.kind_of`); nothing here imports pandas or torch itself. Numeric
and datetime columns are summarized as NumPy arrays, other pandas columns as Series. A tensor
on an accelerator is fingerprinted and summarized from a fixed-seed sample of
:data:`~.summary.ROW_BUDGET` elements gathered on its own device (the summary says so).
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

from .summary import (
    LABEL_NAME,
    MAX_COLUMNS,
    ROW_BUDGET,
    SAMPLE_SEED,
    column,
    label_like,
    probe_rows,
    sample_index,
    sample_note,
)

KINDS = frozenset({"dataframe", "series", "ndarray", "tensor"})


# -- the cheap change check --------------------------------------------------------------
def signature(obj: Any, kind: str) -> tuple:
    """Identity, shape, dtypes and a few sampled values (see :func:`nbexp.capture.data.signature`)."""
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
        return (id(obj), tuple(obj.shape), str(obj.dtype), str(obj.device), repr(vals), getattr(obj, "_version", None))
    return (id(obj),)


# -- fingerprint ----------------------------------------------------------------------------
def fingerprint(obj: Any, kind: str) -> tuple[str, bool]:
    """``(hex, exact)``; ``exact`` is False for a tensor on an accelerator, fingerprinted from
    its fixed-seed sample."""
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
            _hash_array(h, tensor_numpy(t), np)
        else:
            exact = False
            _hash_array(h, tensor_sample(t), np)
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


def tensor_numpy(t):
    """A CPU tensor as a NumPy array (bfloat16 / float16 widened to float32 first)."""
    import numpy as np

    if t.dtype.is_floating_point and t.dtype not in (sys.modules["torch"].float32, sys.modules["torch"].float64):
        t = t.float()  # bfloat16 / float16 have no NumPy twin everywhere
    try:
        return t.numpy()
    except (TypeError, RuntimeError):
        return np.asarray(t.tolist())


def tensor_sample(t):
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
    return tensor_numpy(flat.cpu())


# -- summaries --------------------------------------------------------------------------------
def summarize(obj: Any, kind: str, name: str, label_names: set[str] | frozenset = frozenset()) -> dict:
    """The summary of one pandas, NumPy or torch object (names not yet scrubbed)."""
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
        idx = sample_index(n, np)
        out["rows"] = n
        out["sampled"] = sample_note(n, idx)
        columns = []
        for i, col in enumerate(cols[:MAX_COLUMNS]):
            label = str(col) if not isinstance(col, tuple) else ".".join(map(str, col))
            if dup:
                label = f"{label}#{i}"
            s = obj.iloc[:, i]
            columns.append(
                column(
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
        idx = sample_index(n, np)
        out["rows"] = n
        out["sampled"] = sample_note(n, idx)
        values = obj.to_numpy() if obj.dtype.kind in "biufcmM" else obj
        out["columns"] = [
            column(
                str(obj.name) if obj.name is not None else name,
                values,
                idx,
                np,
                pd,
                is_label=label_like(name, values, np, label_names),
            )
        ]
    elif kind in ("ndarray", "tensor"):
        if kind == "tensor":
            out["device"] = str(obj.device)
            out["dtype"] = str(obj.dtype).replace("torch.", "")
            shape = list(obj.shape)
            t = obj.detach()
            if t.device.type != "cpu" and t.numel() > ROW_BUDGET:
                arr = tensor_sample(t)
                out["sampled"] = {"rows": int(arr.size), "of": int(t.numel()), "seed": SAMPLE_SEED, "on": "device"}
                arr = arr.reshape(-1)
                shape_for_cols = None
            else:
                arr = tensor_numpy(t.cpu())
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
            idx = sample_index(n, np)
            out.setdefault("sampled", sample_note(n, idx))
            out["rows"] = n
            out["columns"] = [column(str(j), arr[:, j], idx, np, pd, is_label=False) for j in range(arr.shape[1])]
        else:
            flat = arr.reshape(-1)
            n = flat.size
            idx = sample_index(n, np)
            out.setdefault("sampled", sample_note(n, idx))
            out["rows"] = shape[0] if shape else 1
            if arr.ndim > 2:
                out["note"] = f"{arr.ndim}-d values summarized together"
            out["columns"] = [
                column("values", flat, idx, np, pd, is_label=arr.ndim == 1 and label_like(name, flat, np, label_names))
            ]
    return out
