"""What every data backend shares: the summary's constants and the column helpers.

A summary is computed once per distinct content (the fingerprint) and is exact up to
:data:`ROW_BUDGET` rows; beyond it, quantiles, histograms and category counts come from a
uniform sample of ``ROW_BUDGET`` rows drawn with a fixed seed (the summary says so), while
counts, missing values, min, max, mean and std stay exact.

Label-like arrays (the ``y`` of a ``fit`` call, names such as ``y_train`` or ``target``,
integer/categorical vectors with few distinct values) carry their class distribution and an
imbalance flag, relative to the number of classes K (:func:`is_imbalanced`): the smallest class
holds under :data:`IMBALANCE_EVEN_FRACTION` of an even share 1/K (under 10% of two classes, under
2% of ten), or the largest class is more than :data:`IMBALANCE_RATIO` times the smallest. Ten
balanced classes (about 10% each) are not imbalanced; a 90/10 or 95/5 binary label is.

The backends (:mod:`.numpy_backend`, :mod:`.polars_backend`, :mod:`.spark_backend`) import
this module; it imports none of them.
"""

from __future__ import annotations

import math
import re
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
IMBALANCE_EVEN_FRACTION = 0.2  # the minority share is compared with this fraction of 1/K
IMBALANCE_RATIO = 5.0  # majority:minority above this is imbalanced
REPORTED_QUANTILES = {"p1": 1, "p5": 5, "p25": 25, "p50": 50, "p75": 75, "p95": 95, "p99": 99}

LABEL_NAME = re.compile(r"^(y|y_\w+|\w+_y|labels?|targets?|class(es)?|outcome|\w+_labels?|\w+_target)$", re.IGNORECASE)


class DataSkipped(Exception):
    """An object that looks like data but cannot be summarized; the message says why."""


def probe_rows(n: int) -> list[int]:
    """The (at most 8) evenly spread positions whose values the cheap change check compares."""
    return sorted({(i * (n - 1)) // 7 for i in range(8)}) if n else []


def sample_index(n: int, np):
    """Sorted positions of the fixed-seed sample of ``ROW_BUDGET`` rows, or None for all ``n``."""
    if n <= ROW_BUDGET:
        return None
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(n, ROW_BUDGET, replace=False))


def sample_note(n: int, idx) -> dict | None:
    """The summary's ``sampled`` entry for :func:`sample_index`'s ``idx``."""
    return None if idx is None else {"rows": ROW_BUDGET, "of": n, "seed": SAMPLE_SEED}


def label_like(name: str, values, np, label_names) -> bool:
    """Whether a single vector named ``name`` is a label: by its name, or integers with few classes."""
    if name in label_names or LABEL_NAME.match(name):
        return True
    kind = getattr(getattr(values, "dtype", None), "kind", "O")
    if kind not in "biu" or len(values) < 2 * LABEL_MAX_CLASSES:
        return False
    head = values[: min(len(values), 10_000)]
    return len(np.unique(head)) <= LABEL_MAX_CLASSES


def as_float(x) -> float | None:
    """``x`` as a float for JSON: NaN becomes None, infinities stay."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else (None if math.isnan(x) else x)


def column(label: str, values, idx, np, pd, is_label: bool) -> dict:
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
                min=as_float(ok.min()),
                max=as_float(ok.max()),
                mean=as_float(ok.mean()),
                std=as_float(ok.std(ddof=1)) if ok.size > 1 else None,  # as pandas describe()
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


def scrub_names(summary: dict) -> dict:
    """Column names (and a 0-d object's text) scrubbed of secrets; values are in :func:`fill_categories`."""
    from ..secrets import scrub_text

    for col in summary.get("columns", ()):
        col["name"] = scrub_text(str(col["name"]))
    if isinstance(summary.get("value"), str):
        summary["value"] = scrub_text(summary["value"])[:100]
    return summary


def fill_categories(col: dict, counts: list, distinct: int, is_label: bool) -> dict:
    """Distinct count, top values and (for at most CATEGORY_KEEP) every category of a column,
    from ``counts``: (value, count) pairs, most frequent first, at least the top CATEGORY_KEEP + 1.

    Values are scrubbed of secrets before they are cut to 80 characters (every value of a column
    whose name looks secret, ``password`` or ``api_key``, is hidden); values that become the same
    text are counted together."""
    from ..secrets import REDACTED, is_secret_name, scrub_text

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
    col["imbalanced"] = is_imbalanced(shares.values())
    col["minority_share"] = min(shares.values())


def is_imbalanced(shares) -> bool:
    """The imbalance rule, relative to the number of classes K (the one place it is written):
    the smallest share is under :data:`IMBALANCE_EVEN_FRACTION` of an even share 1/K, or the
    largest share is more than :data:`IMBALANCE_RATIO` times the smallest. One class is never
    imbalanced. ``shares`` are the classes' shares (or counts: only their proportions matter)."""
    shares = [float(s) for s in shares]
    k = len(shares)
    if k < 2:
        return False
    total = sum(shares)
    if total <= 0:
        return False
    lo, hi = min(shares) / total, max(shares) / total
    return bool(lo < IMBALANCE_EVEN_FRACTION / k or lo <= 0 or hi / lo > IMBALANCE_RATIO)


FIT_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit", "fit_resample"})


def fit_labels(tree) -> set[str]:
    """Names passed as ``y`` to a ``fit``-like call in a cell: ``model.fit(X, y_train)``."""
    import ast

    from ..syntax import calls

    out: set[str] = set()
    for node in calls(tree):
        if isinstance(node.func, ast.Attribute) and node.func.attr in FIT_METHODS:
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Name):
                out.add(node.args[1].id)
            for kw in node.keywords:
                if kw.arg == "y" and isinstance(kw.value, ast.Name):
                    out.add(kw.value.id)
    return out
