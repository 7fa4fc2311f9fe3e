"""Metrics: scalar conversion for ``nbexp.log`` and metric-looking variable names."""

from __future__ import annotations

import os
import re
from typing import Any

METRIC_WORDS = (
    "accuracy",
    "acc",
    "loss",
    "f1",
    "auc",
    "precision",
    "recall",
    "rmse",
    "mse",
    "mae",
    "r2",
    "score",
    "error",
)
METRIC_PREFIXES = ("train_", "val_", "valid_", "test_", "eval_")


def metric_name_pattern(extra: str | None = None) -> re.Pattern:
    """Regex matching metric-like variable names.

    A name matches when one of its ``_``-separated words is a metric word
    (``test_auc``, ``roc_auc``, ``val_loss``) or it starts with a split prefix
    (``train_``, ``val_``, ``test_``). ``extra`` (or ``$NBEXP_METRIC_NAMES``) adds
    comma-separated words.
    """
    words = list(METRIC_WORDS)
    extra = extra if extra is not None else os.environ.get("NBEXP_METRIC_NAMES", "")
    words += [w.strip().lower() for w in extra.split(",") if w.strip()]
    alt = "|".join(sorted(map(re.escape, set(words)), key=len, reverse=True))
    prefixes = "|".join(METRIC_PREFIXES)
    return re.compile(rf"^(?:(?:{prefixes})\w+|(?:\w+_)?(?:{alt})(?:_\w+)?)$", re.IGNORECASE)


def as_scalar(value: Any) -> float | None:
    """``value`` as a float when it is a real number scalar (Python, NumPy,
    0-d tensor or array); None otherwise. Booleans are not metrics."""
    t = type(value)
    if t is float:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int beyond a float's range is not a measurement
            return None
    mod = t.__module__
    if mod == "numpy" or mod.startswith("torch"):
        if getattr(value, "ndim", None) == 0 or (mod == "numpy" and not hasattr(value, "shape")):
            if "bool" in str(getattr(value, "dtype", "")) or "complex" in str(getattr(value, "dtype", "")):
                return None
            try:
                return float(value.item())
            except (TypeError, ValueError, RuntimeError):
                return None
    return None
