"""The morning review of one sprint: what ran, how it ended, what won and why."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ..ledger.queries import Reader
from ..ledger.schema import CRASHED
from .compare import same_param
from .drift import dataset_drift, imbalanced
from .metrics import is_ablation, is_score

LOWER_IS_BETTER = re.compile(
    r"(loss|error|err|mse|rmse|mae|mape|perplexity|time|latency|deviance|(^|[._])l[12]($|[._]))", re.IGNORECASE
)
# scikit-learn's scorers negate an error so that higher is better: neg_mean_squared_error, neg_log_loss
NEGATED = re.compile(r"(^|[._])neg_", re.IGNORECASE)
CHANGES_SHOWN = 5  # params listed per "what changed"; the rest as "and N more"


def lower_is_better(metric: str) -> bool:
    """Direction of a metric, from its name: loss, error, mse, LightGBM's ``l2`` ... go down; a scikit-learn
    score that negates an error (``best_neg_mean_squared_error``) goes up."""
    return not NEGATED.search(metric) and bool(LOWER_IS_BETTER.search(metric))


def _param_change(a: dict, b: dict, data_a: Mapping[str, str], data_b: Mapping[str, str]) -> str:
    """The params that differ between two runs (equal as :func:`~.compare.same_param` says:
    NaN and NaN are no change), at most :data:`CHANGES_SHOWN` of them, then "and N more"; then the data both
    runs recorded under a name with other content (``data_a``, ``data_b``: name -> fingerprint), as "other data:
    X_train, X_test" (an edited filter is no param, but it changed what the model saw)."""
    keys = sorted(set(a) | set(b))
    parts = []
    for k in keys:
        va, vb = a.get(k, "<absent>"), b.get(k, "<absent>")
        if not same_param(va, vb):
            parts.append(f"{k}: {json.dumps(va)} -> {json.dumps(vb)}")
    more = len(parts) - CHANGES_SHOWN
    text = "; ".join(parts[:CHANGES_SHOWN]) + (f"; and {more} more" if more > 0 else "") if parts else "same params"
    other = sorted(name for name, fp in data_b.items() if name in data_a and data_a[name] != fp)
    if other:
        shown = ", ".join(other[:CHANGES_SHOWN]) + (
            f" and {len(other) - CHANGES_SHOWN} more" if len(other) > CHANGES_SHOWN else ""
        )
        text += f"; other data: {shown}"
    return text


def lineages(reader: Reader, runs: list[dict]) -> dict[str, str]:
    """Per run id, the key of its lineage: runs of the same notebook (its session's notebook
    path; a session that knows none is a notebook of its own) share one, and a replay shares
    its original run's. Drift and "what changed" compare runs of one lineage only: a titanic
    frame and the digits array that happen to share the name ``X`` are not the same data."""
    notebook_of: dict[str, str] = {}  # session id -> key

    def session_key(run_id: str, session_id: str) -> str:
        if session_id not in notebook_of:
            try:
                nb = reader.run(run_id).get("session", {}).get("notebook")
            except Exception:  # a run gone meanwhile: its session stands alone
                nb = None
            notebook_of[session_id] = f"notebook:{nb}" if nb else f"session:{session_id}"
        return notebook_of[session_id]

    by_id = {r["id"]: r for r in runs}
    keys: dict[str, str] = {}

    def key(run_id: str, depth: int = 0) -> str:
        if run_id in keys:
            return keys[run_id]
        r: Mapping[str, Any] | None = by_id.get(run_id)
        if r is None:  # a replay's original outside the sprint
            try:
                r = reader.run(run_id)
            except Exception:
                return f"run:{run_id}"
        origin = r.get("replay_of")
        if origin and depth < 20:
            k = key(origin, depth + 1)
        else:
            k = session_key(r["id"], r["session_id"])
        keys[run_id] = k
        return k

    return {r["id"]: key(r["id"]) for r in runs}


def review(reader: Reader, sprint_id: str, importance: bool = False) -> dict[str, Any]:
    """Review a sprint.

    Returns:
        ``{"sprint": {...}, "runs": [...] (oldest first), "counts": {status: n},
        "best": [{"metric", "value", "run", "previous_run", "changed"}] (the previous best of the
        same lineage: see :func:`lineages`), "gpu_hours": float
        (wall time x GPUs of the sampled runs; nested sweep runs not counted twice),
        "idle_hints": [{"run", "hint"}], "explanations": [...] (see :func:`explanations`),
        "importance": {...} (only with ``importance``: :func:`~.explain.importance` of the main metric)}``
    """
    runs = list(reversed(reader.list_runs(sprint=sprint_id)))
    counts: dict[str, int] = {}
    for r in runs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
        if r["status"] == CRASHED:
            cell = reader.last_cell(r["id"])
            first = cell["source"].strip().splitlines()[0][:60] if cell and cell["source"].strip() else "?"
            r["error"] = (
                f"kernel died while running cell: {first}"
                if cell and cell["status"] == "running"
                else f"kernel died; last recorded cell: {first}"
            )
    best = []
    lineage = lineages(reader, runs)
    data: dict[str, dict[str, str]] | None = None  # run id -> data name -> fingerprint, read once when needed
    metrics = sorted({k for r in runs for k in r["metrics"]})
    for m in metrics:
        if not is_score(m):  # best_iteration, scores_std: no direction, no best run
            continue
        lower = lower_is_better(m)
        scored = [
            (r, r["metrics"][m]["last"]) for r in runs if m in r["metrics"] and not math.isnan(r["metrics"][m]["last"])
        ]
        if not scored:
            continue
        pick = min if lower else max
        top_run, top = pick(scored, key=lambda t: t[1])
        earlier = [
            (r, v)
            for r, v in scored
            if r["start_time"] < top_run["start_time"] and lineage[r["id"]] == lineage[top_run["id"]]
        ]
        entry: dict[str, Any] = {
            "metric": m,
            "value": top,
            "run": top_run["id"],
            "direction": "lower" if lower else "higher",
        }
        if earlier:
            prev_run, prev = pick(earlier, key=lambda t: t[1])
            if data is None:
                data = reader.data_fingerprints([r["id"] for r in runs])
            entry.update(
                previous_run=prev_run["id"],
                previous_value=prev,
                changed=_param_change(
                    prev_run["params"], top_run["params"], data.get(prev_run["id"], {}), data.get(top_run["id"], {})
                ),
            )
        best.append(entry)
    gpu_hours = sum(
        (r["end_time"] - r["start_time"]) * r["gpu_count"] / 3600
        for r in runs
        if r["gpu_count"] and r["end_time"] and r["kind"] != "context"
    )
    hints = [{"run": r["id"], "hint": r["idle_hint"]} for r in runs if r["idle_hint"]]
    drift, imbalance = _data_flags(reader, runs, lineage)
    from .metrics import main_metric

    main = main_metric(runs)
    extra: dict[str, Any] = {}
    weights = None
    if importance and main:
        from .explain import importance as param_importance

        extra["importance"] = param_importance([r for r in runs if not is_ablation(r)], main)
        weights = {p["param"]: p["importance"] for p in extra["importance"]["params"]}
    extra["explanations"] = explanations(reader, runs, lineage, main, weights) if main else []
    return {
        **extra,
        "sprint": reader.sprint_info(sprint_id),
        "runs": runs,
        "counts": counts,
        "best": best,
        "gpu_hours": gpu_hours,
        "idle_hints": hints,
        "drift": drift,
        "imbalance": imbalance,
    }


def _data_flags(reader: Reader, runs: list[dict], lineage: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Drift of each run's data against the previous run of its lineage (see :func:`lineages`)
    that used the same variable with other content, and imbalanced label columns (each
    distinct dataset once)."""
    drift, imbalance, seen = [], [], set()
    last: dict[tuple[str, str], tuple[str, dict]] = {}  # (lineage, variable) -> (run id, data item)
    for r in runs:
        for d in reader.data(r["id"]):
            if not d["summary"]:
                continue
            slot = (lineage[r["id"]], d["name"])
            prev = last.get(slot)
            if prev and prev[1]["fingerprint"] != d["fingerprint"] and prev[1]["summary"]:
                for row in dataset_drift(prev[1]["summary"], d["summary"]):
                    if row["flags"]:
                        drift.append({"run": r["id"], "reference": prev[0], "variable": d["name"], **row})
            last[slot] = (r["id"], d)
            if d["fingerprint"] not in seen:
                seen.add(d["fingerprint"])
                imbalance += [
                    {
                        "run": r["id"],
                        "variable": d["name"],
                        "column": c["name"],
                        "minority_share": c.get("minority_share"),
                    }
                    for c in d["summary"].get("columns", [])
                    if imbalanced(c)
                ]
    return drift, imbalance


MAX_REGRESSIONS = 5  # regressions explained in a review, newest first; the rest are counted
WHY_FACTORS = 3  # factors named per explained run


def explanations(
    reader: Reader, runs: list[dict], lineage: dict[str, str], metric: str, weights: dict[str, float] | None = None
) -> list[dict]:
    """Why, on the sprint's main metric, the best run beat the previous best of its lineage, and why each
    run that came in worse than the best before it (in its lineage) regressed: the top factors of
    :func:`~.explain.explain`, in one line each (an ablation already stored for the pair comes first).
    Ablation replays are not explained again; the finished ablations of the sprint's runs not shown so far
    follow (``kind`` ``ablation``). Each ``{"kind": "best" | "regression" | "ablation", "metric", "run",
    "against", "value", "reference_value", "summary", "factors": [lines]}``; past :data:`MAX_REGRESSIONS`
    regressions, one ``{"kind": "more", "count"}``. ``weights`` (the sprint's param importance) orders params."""
    from .ablation import stored
    from .explain import explain, lines

    lower = lower_is_better(metric)
    better = (lambda x, y: x < y) if lower else (lambda x, y: x > y)
    scored = [
        r
        for r in runs
        if metric in r["metrics"] and not math.isnan(r["metrics"][metric]["last"]) and not is_ablation(r)
    ]
    pairs: list[tuple[str, dict, dict]] = []
    best_run = None
    for r in scored:
        if best_run is None or better(r["metrics"][metric]["last"], best_run["metrics"][metric]["last"]):
            best_run = r
    if best_run is not None:
        earlier = [
            r
            for r in scored
            if r["start_time"] < best_run["start_time"] and lineage[r["id"]] == lineage[best_run["id"]]
        ]
        if earlier:
            prev = earlier[0]
            for r in earlier[1:]:
                if better(r["metrics"][metric]["last"], prev["metrics"][metric]["last"]):
                    prev = r
            pairs.append(("best", prev, best_run))
    regressions = []
    best_so_far: dict[str, dict] = {}
    for r in scored:
        key = lineage[r["id"]]
        top = best_so_far.get(key)
        if top is not None and better(top["metrics"][metric]["last"], r["metrics"][metric]["last"]):
            regressions.append(("regression", top, r))
        if top is None or better(r["metrics"][metric]["last"], top["metrics"][metric]["last"]):
            best_so_far[key] = r
    regressions.reverse()  # newest first
    pairs += regressions[:MAX_REGRESSIONS]
    out: list[dict] = []
    for kind, a, b in pairs:
        try:
            ex = stored(reader, a["id"], b["id"], metric) or explain(reader, a["id"], b["id"], metric, weights)
        except Exception as exc:  # a run the explanation cannot read: say so, review the rest
            out.append({"kind": kind, "metric": metric, "run": b["id"], "against": a["id"], "error": str(exc)})
            continue
        out.append(
            {
                "kind": kind,
                "metric": metric,
                "run": b["id"],
                "against": a["id"],
                "value": ex["value_b"],
                "reference_value": ex["value_a"],
                "summary": ex["summary"],
                "factors": lines(ex, WHY_FACTORS),
                "ablation": (ex.get("ablation") or {}).get("id"),
            }
        )
    # the ablations that finished for the sprint's runs (queued overnight: nbexp explain --ablate), not shown yet
    shown = {(a["id"], b["id"]) for _, a, b in pairs}
    sprint_ids = {r["id"] for r in runs}
    for item in reader.explanations(status="finished"):
        ex = item["result"]
        if not ex or item["run_b"] not in sprint_ids or (item["run_a"], item["run_b"]) in shown:
            continue
        shown.add((item["run_a"], item["run_b"]))
        out.append(
            {
                "kind": "ablation",
                "metric": item["metric"],
                "run": item["run_b"],
                "against": item["run_a"],
                "value": ex["value_b"],
                "reference_value": ex["value_a"],
                "summary": ex["summary"],
                "factors": lines(ex, WHY_FACTORS),
                "ablation": item["id"],
            }
        )
    if len(regressions) > MAX_REGRESSIONS:
        out.append({"kind": "more", "metric": metric, "count": len(regressions) - MAX_REGRESSIONS})
    return out


def explanation_lines(rev: dict) -> list[str]:
    """The review's explanations (and param importance, when asked) as text, for the terminal."""
    out = []
    for e in rev.get("explanations", []):
        if e["kind"] == "more":
            out.append(f"  and {e['count']} more regressions (nbexp explain RUN --vs best)")
            continue
        head = {"best": "why best", "regression": "why regressed", "ablation": "ablation of"}.get(e["kind"], e["kind"])
        if "error" in e:
            out.append(f"{head} run {e['run']} vs {e['against']}: cannot explain: {e['error']}")
            continue
        out.append(f"{head} run {e['run']} vs {e['against']}: {e['summary']}")
        out += ["    " + line for line in e["factors"][1:]]
    if rev.get("importance"):
        from .explain import importance_lines

        out += importance_lines(rev["importance"])
    return out
