"""Drift between two data summaries of the same variable (or an explicit pair).

Everything is computed from the stored summaries, so a run from last week can be
compared with today's without keeping the data. Thresholds (the common conventions):

- PSI (population stability index) over the reference's deciles, or over the categories:
  below 0.1 stable, 0.1 to 0.25 moderate drift, 0.25 and above major drift.
- KS distance (largest gap between the two CDFs, rebuilt from the 105 stored quantiles):
  0.1 and above is flagged.
- Missing rate: a change of 5 percentage points or more.
- Out of range ("unexpected inputs"): 1% or more of the new values outside the reference's
  [min, max]: strictly below its minimum or strictly above its maximum (values equal to either
  are in range, so identical zero-heavy data is 0% out of range).
- Class balance: a class share moving by 10 percentage points or more, or the imbalance flag
  changing (the rule of :func:`nbexp.capture.data.is_imbalanced`, applied to the stored class
  shares); new or vanished categories; dtype changes; new or missing columns.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from ..capture.data import QUANTILE_PROBS, is_imbalanced

PSI_MODERATE = 0.1
PSI_MAJOR = 0.25
KS_FLAG = 0.1
MISSING_DELTA = 0.05
OUT_OF_RANGE_FLAG = 0.01
CLASS_SHARE_DELTA = 0.10
EPS = 1e-4


def _cdf(quantiles: list[float], x: float) -> float:
    """F(x) from the stored quantiles (values at :data:`QUANTILE_PROBS`), linear between them."""
    q, probs = quantiles, QUANTILE_PROBS
    if x < q[0]:
        return 0.0
    if x >= q[-1]:
        return 1.0
    i = bisect.bisect_right(q, x) - 1  # last index with q[i] <= x
    span = q[i + 1] - q[i]
    frac = (x - q[i]) / span if span > 0 else 1.0
    return min(1.0, probs[i] + frac * (probs[i + 1] - probs[i]))


def _share_below(quantiles: list[float], x: float) -> float:
    """The share of values strictly below ``x``, from the stored quantiles. Values equal to
    ``x`` never count: where ``x`` is itself a stored quantile, only the share up to the
    quantile before it is taken (a column with many zeros has many quantiles equal to 0)."""
    q, probs = quantiles, QUANTILE_PROBS
    j = bisect.bisect_left(q, x)  # first index with q[j] >= x
    if j == 0:
        return 0.0
    if j == len(q):
        return 1.0
    if q[j] == x:
        return probs[j - 1]
    span = q[j] - q[j - 1]
    return probs[j - 1] + (x - q[j - 1]) / span * (probs[j] - probs[j - 1])


def imbalanced(col: dict) -> bool:
    """Whether a label column is imbalanced, by today's rule on its stored class shares (a
    summary stored under an older rule is judged again), else its stored flag."""
    classes = col.get("classes")
    return is_imbalanced(classes.values()) if classes else bool(col.get("imbalanced"))


def psi(p: list[float], q: list[float]) -> float:
    """Population stability index of shares ``q`` against reference shares ``p``."""
    total = 0.0
    for a, b in zip(p, q):
        a, b = max(a, EPS), max(b, EPS)
        total += (b - a) * math.log(b / a)
    return total


def numeric(a: dict, b: dict) -> dict[str, float]:
    qa, qb = a.get("quantiles"), b.get("quantiles")
    if not qa or not qb:
        return {}
    deciles = [QUANTILE_PROBS.index(d / 10) for d in range(1, 10)]
    edges = sorted({qa[i] for i in deciles})
    fa = [0.0] + [_cdf(qa, e) for e in edges] + [1.0]
    fb = [0.0] + [_cdf(qb, e) for e in edges] + [1.0]
    pa = [fa[i + 1] - fa[i] for i in range(len(fa) - 1)]
    pb = [fb[i + 1] - fb[i] for i in range(len(fb) - 1)]
    grid = sorted(set(qa) | set(qb))
    ks = max(abs(_cdf(qa, x) - _cdf(qb, x)) for x in grid)
    below = _share_below(qb, a["min"]) if a.get("min") is not None else 0.0
    # values equal to the reference min or max are in range
    above = 1.0 - _cdf(qb, a["max"]) if a.get("max") is not None else 0.0
    return {"psi": psi(pa, pb), "ks": ks, "out_of_range": max(0.0, below) + max(0.0, above)}


def categorical(a: dict, b: dict) -> dict[str, Any]:
    ca, cb = a.get("categories"), b.get("categories")
    if ca is None or cb is None:
        ta = {k for k, _ in a.get("top", [])}
        tb = {k for k, _ in b.get("top", [])}
        return {"new_categories": sorted(tb - ta)[:10], "gone_categories": sorted(ta - tb)[:10]}
    na, nb = sum(ca.values()) or 1, sum(cb.values()) or 1
    keys = sorted(set(ca) | set(cb))
    pa = [ca.get(k, 0) / na for k in keys]
    pb = [cb.get(k, 0) / nb for k in keys]
    return {
        "psi": psi(pa, pb),
        "new_categories": sorted(set(cb) - set(ca))[:10],
        "gone_categories": sorted(set(ca) - set(cb))[:10],
    }


def column_drift(a: dict | None, b: dict | None) -> dict[str, Any]:
    """Scores and flags for one column; ``a`` is the reference."""
    if a is None or b is None:
        return {"flags": ["new column" if a is None else "missing column"], "severity": "major"}
    row: dict[str, Any] = {
        "dtype_a": a.get("dtype"),
        "dtype_b": b.get("dtype"),
        "missing_a": a.get("missing_rate"),
        "missing_b": b.get("missing_rate"),
    }
    flags: list[str] = []
    if a.get("dtype") != b.get("dtype"):
        flags.append(f"dtype {a.get('dtype')} -> {b.get('dtype')}")
    if a.get("type") == b.get("type") == "numeric" and not a.get("label"):
        row.update(numeric(a, b))
    elif a.get("type") == b.get("type") or a.get("label"):
        row.update(categorical(a, b))
    p = row.get("psi")
    severity = "ok"
    if p is not None and p >= PSI_MODERATE:
        severity = "major" if p >= PSI_MAJOR else "moderate"
        flags.append(f"PSI {p:.2f} ({severity})")
    if row.get("ks") is not None and row["ks"] >= KS_FLAG:
        flags.append(f"KS {row['ks']:.2f}")
        severity = severity if severity != "ok" else "moderate"
    if row.get("out_of_range", 0.0) >= OUT_OF_RANGE_FLAG:
        flags.append(f"{row['out_of_range']:.1%} outside the reference range")
    ma, mb = a.get("missing_rate") or 0.0, b.get("missing_rate") or 0.0
    if abs(mb - ma) >= MISSING_DELTA:
        flags.append(f"missing {ma:.1%} -> {mb:.1%}")
        severity = severity if severity != "ok" else "moderate"
    if row.get("new_categories"):
        flags.append("new categories: " + ", ".join(row["new_categories"][:5]))
    if row.get("gone_categories"):
        flags.append("vanished categories: " + ", ".join(row["gone_categories"][:5]))
    if a.get("label") and b.get("label"):
        sa, sb = a.get("classes", {}), b.get("classes", {})
        moved = max((abs(sb.get(k, 0.0) - sa.get(k, 0.0)) for k in set(sa) | set(sb)), default=0.0)
        row["class_shift"] = moved
        if moved >= CLASS_SHARE_DELTA:
            flags.append(f"class balance moved {moved:.0%}")
            severity = severity if severity != "ok" else "moderate"
        if imbalanced(a) != imbalanced(b):
            flags.append("now imbalanced" if imbalanced(b) else "no longer imbalanced")
            severity = severity if severity != "ok" else "moderate"
    if flags and severity == "ok":
        severity = "moderate"
    row["flags"] = flags
    row["severity"] = severity
    return row


def dataset_drift(a: dict, b: dict) -> list[dict[str, Any]]:
    """Per-column drift of two summaries of the same data object; one row per column."""
    ca = {c["name"]: c for c in a.get("columns", [])}
    cb = {c["name"]: c for c in b.get("columns", [])}
    rows = []
    for name in list(ca) + [n for n in cb if n not in ca]:
        row = {"column": name}
        row.update(column_drift(ca.get(name), cb.get(name)))
        rows.append(row)
    return rows


def drift_between(reader, run_a: str, run_b: str, name: str | None = None, other: str | None = None) -> list[dict]:
    """Drift rows of ``run_b``'s data against ``run_a``'s: every variable both used, or
    ``name`` in run_a against ``other`` (default the same name) in run_b.

    Raises:
        InvalidArgument: ``name`` or ``other`` was not recorded in its run.
    """
    from ..errors import InvalidArgument

    a = {d["name"]: d for d in reader.data(reader.resolve(run_a))}
    b = {d["name"]: d for d in reader.data(reader.resolve(run_b))}
    if name is not None:
        other = other or name
        missing = [f"{n!r} in run {ref}" for n, ref, side in ((name, run_a, a), (other, run_b, b)) if n not in side]
        if missing:
            raise InvalidArgument(f"no recorded data {' or '.join(missing)}")
        pairs = [(name if other == name else f"{name} -> {other}", a[name], b[other])]
    else:
        pairs = [(n, a[n], b[n]) for n in sorted(set(a) & set(b))]
    rows = []
    for label, da, db in pairs:
        if da["summary"] and db["summary"]:
            rows += [{"variable": label, **row} for row in dataset_drift(da["summary"], db["summary"])]
    return rows
