"""Data the model saw: fingerprints and distribution summaries.

:func:`kind_of` names a data object without importing any library, and :func:`signature`,
:func:`fingerprint` and :func:`summarize` hand it to the backend of its kind:

- :mod:`.numpy_backend`: pandas DataFrame / Series, NumPy arrays, PyTorch tensors;
- :mod:`.polars_backend`: polars DataFrame / Series (without pandas);
- :mod:`.spark_backend`: Spark DataFrames (by Spark's own aggregations).

Each is reached only when the user has already imported that library; polars' and Spark's
backend modules are imported at their first object. Every backend has the same small
protocol: ``KINDS`` (the kinds it handles), ``signature(obj, kind)``,
``fingerprint(obj, kind)`` and ``summarize(obj, kind, name, label_names)``. What they share
(the summary's constants, the per-column numbers, category counts, label detection) is in
:mod:`.summary`, which imports no backend; see its docstring for what a summary holds.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

from . import numpy_backend
from .numpy_backend import tensor_sample
from .summary import (
    CATEGORY_KEEP,
    FIT_METHODS,
    HIST_BINS,
    IMBALANCE_EVEN_FRACTION,
    IMBALANCE_RATIO,
    LABEL_MAX_CLASSES,
    LABEL_NAME,
    MAX_COLUMNS,
    QUANTILE_PROBS,
    REPORTED_QUANTILES,
    ROW_BUDGET,
    SAMPLE_SEED,
    TOP_VALUES,
    DataSkipped,
    fill_categories,
    fit_labels,
    is_imbalanced,
    probe_rows,
    scrub_names,
)

__all__ = [
    "CATEGORY_KEEP",
    "DATA_TYPES",
    "FIT_METHODS",
    "HIST_BINS",
    "IMBALANCE_EVEN_FRACTION",
    "IMBALANCE_RATIO",
    "LABEL_MAX_CLASSES",
    "LABEL_NAME",
    "MAX_COLUMNS",
    "QUANTILE_PROBS",
    "REPORTED_QUANTILES",
    "ROW_BUDGET",
    "SAMPLE_SEED",
    "TOP_VALUES",
    "DataSkipped",
    "fill_categories",
    "fingerprint",
    "fit_labels",
    "is_imbalanced",
    "kind_of",
    "probe_rows",
    "signature",
    "summarize",
    "tensor_sample",
]

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

# kind prefix -> the backend module imported at the first object of that kind; any other kind
# is numpy_backend's
LAZY_BACKENDS = {"polars-": "polars_backend", "spark-": "spark_backend"}


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


def backend(kind: str):
    """The backend module for ``kind`` (see the module docstring for its protocol)."""
    for prefix, module in LAZY_BACKENDS.items():
        if kind.startswith(prefix):
            return import_module(f".{module}", __name__)
    return numpy_backend


def signature(obj: Any, kind: str) -> tuple:
    """Identity, shape, dtypes and a few sampled values: equal signatures are taken as
    unchanged data without hashing it all. Raises :class:`DataSkipped` when the object
    cannot be inspected."""
    try:
        return backend(kind).signature(obj, kind)
    except Exception as exc:
        raise DataSkipped(f"cannot inspect it ({type(exc).__name__}: {exc})") from None


def fingerprint(obj: Any, kind: str) -> tuple[str, bool]:
    """``(hex, exact)``: a content hash stable across kernels and machines. ``exact`` is False
    for a tensor on an accelerator, fingerprinted from its fixed-seed sample."""
    return backend(kind).fingerprint(obj, kind)


def summarize(obj: Any, kind: str, name: str, label_names: set[str] | frozenset = frozenset()) -> dict:
    """The summary of one data object, its column names scrubbed of secrets (see :mod:`.summary`)."""
    return scrub_names(backend(kind).summarize(obj, kind, name, label_names))
