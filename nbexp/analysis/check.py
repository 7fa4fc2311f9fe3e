"""``nbexp check``: does a candidate run hold up against a baseline on one metric?

Tolerance is absolute (``0.01``) or relative to the baseline (``2%``). A NaN candidate
counts as a regression unless NaN is allowed.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InvalidArgument, RunNotFound
from .metrics import is_ablation
from .review import lower_is_better


def parse_tolerance(text: str) -> tuple[float, bool]:
    """``(value, relative)`` from ``0.01`` or ``2%``."""
    relative = text.endswith("%")
    try:
        value = float(text[:-1] if relative else text)
    except ValueError:
        raise InvalidArgument(f"--tolerance must be a number or a percentage; got {text!r}") from None
    if value < 0 or math.isnan(value):
        raise InvalidArgument(f"--tolerance must be 0 or more; got {text!r}")
    return (value / 100.0 if relative else value), relative


def pick_baseline(reader, ref: str, metric: str, lower: bool, candidate_id: str) -> str:
    """A run id from ``RUN``, ``best`` (the best run with the metric, not the candidate) or ``tag:NAME``."""
    if ref == "best":
        runs = [
            r
            for r in reader.list_runs(sprint="all")
            if r["id"] != candidate_id
            and metric in r["metrics"]
            and not math.isnan(r["metrics"][metric]["last"])
            and not is_ablation(r)  # a replay made to explain a run is not a baseline
        ]
        if not runs:
            raise InvalidArgument(f"no baseline: no other run has metric {metric!r}")
        pick = min if lower else max
        return pick(runs, key=lambda r: r["metrics"][metric]["last"])["id"]
    if ref.startswith("tag:"):
        runs = reader.list_runs(sprint="all", tag=ref[4:])
        runs = [r for r in runs if r["id"] != candidate_id]
        if not runs:
            raise RunNotFound(f"no run tagged {ref[4:]!r} (other than the candidate)")
        return runs[0]["id"]
    return reader.resolve(ref)


def check(
    reader,
    candidate: str,
    metric: str,
    baseline: str = "best",
    higher_is_better: bool | None = None,
    tolerance: str = "0",
    nan_ok: bool = False,
) -> dict[str, Any]:
    """The verdict: ``{"ok": bool, "metric", "direction", "baseline", "candidate", "baseline_value",
    "candidate_value", "delta", "allowed", "reason"}``.

    Raises:
        InvalidArgument: unknown metric, a baseline without it, a bad tolerance (exit 2).
        RunNotFound: no such run (exit 2).
    """
    tol, relative = parse_tolerance(tolerance)
    cand_id = reader.resolve(candidate)
    lower = lower_is_better(metric) if higher_is_better is None else not higher_is_better
    cand = reader.run(cand_id)
    if metric not in cand["metrics"]:
        known = ", ".join(sorted(cand["metrics"])) or "none"
        raise InvalidArgument(f"run {cand_id} has no metric {metric!r} (it has: {known})")
    base_id = pick_baseline(reader, baseline, metric, lower, cand_id)
    base = reader.run(base_id)
    if metric not in base["metrics"]:
        raise InvalidArgument(f"baseline run {base_id} has no metric {metric!r}")
    b, c = base["metrics"][metric]["last"], cand["metrics"][metric]["last"]
    if math.isnan(b):
        raise InvalidArgument(f"baseline run {base_id} has NaN for {metric!r}: pick another baseline")
    allowed = tol * abs(b) if relative else tol
    delta = c - b
    if math.isnan(c):
        ok, reason = nan_ok, "candidate is NaN" + (" (allowed)" if nan_ok else "")
    else:
        worse = delta if lower else -delta
        ok = worse <= allowed + 1e-12
        reason = "holds up" if ok else f"regressed by {abs(worse):.4g} (allowed {allowed:.4g})"
    return {
        "ok": ok,
        "metric": metric,
        "direction": "lower" if lower else "higher",
        "baseline": base_id,
        "candidate": cand_id,
        "baseline_value": b,
        "candidate_value": c,
        "delta": delta,
        "allowed": allowed,
        "reason": reason,
    }
