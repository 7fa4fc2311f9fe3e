"""Compare runs: param diff, metric summaries side by side, code diff."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..capture.modules import PREFIX as MODULES
from ..capture.modules import is_module_artifact
from ..errors import InvalidArgument
from ..ledger.queries import Reader
from ..ledger.records import Comparison
from .drift import dataset_drift, imbalanced

_ABSENT = "<absent>"
# a run's system aggregates, as the ledger keeps them: what the compare view's System tab lists per run
SYSTEM_AGGREGATES = ("cpu_mean", "rss_peak_mb", "gpu_util_mean", "gpu_mem_peak_mb", "energy_wh", "gpu_count")


def same_param(a: Any, b: Any) -> bool:
    """The one rule for "this param did not change" (compare, diff and the review use it): the
    same type and value, NaN equal to NaN (``missing=nan`` in two XGBoost runs is no change),
    lists and dicts compared item by item under the same rule."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_param(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_param(a[k], b[k]) for k in a)
    return a == b


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _differs(values: list[Any]) -> bool:
    return any(not same_param(values[0], v) for v in values[1:])


def lineage_text(lineage: list[dict], counts: bool = True) -> list[str]:
    """A run's lineage as lines, each cell under a ``# In[n]`` header (``counts``), else under a bare
    ``# %%`` cell marker: what the code diff compares, so that the same cells run at other execution
    counts (a faithful replay) are the same code."""
    lines: list[str] = []
    for cell in lineage:
        count = cell["execution_count"]  # None: the imports nbexp read from before tracking
        lines.append(f"# In[{'' if count is None else count}]" if counts else "# %%")
        lines.extend(cell["source"].splitlines())
        lines.append("")
    return lines


def module_sources(reader: Reader, run_id: str) -> dict[str, dict]:
    """The notebook's modules a run trained with (:mod:`nbexp.capture.modules`), by module path
    (``train_utils.py``, ``pkg/__init__.py``): ``path`` (the file), ``sha256``, ``data`` (the bytes kept, None when
    it was too large to keep) and ``source`` (the same as text)."""
    out = {}
    for a in reader.artifacts(run_id):
        if not is_module_artifact(a["name"]):
            continue
        blob = reader.blob(a["sha256"]) if a["stored"] else None
        data = bytes(blob["data"]) if blob is not None else None
        source = data.decode("utf-8", "replace") if data is not None else None
        out[a["name"][len(MODULES) :]] = {"path": a["path"], "sha256": a["sha256"], "data": data, "source": source}
    return out


def module_blocks(a: Mapping[str, dict], b: Mapping[str, dict]) -> list[dict[str, Any]]:
    """Two runs' modules (:func:`module_sources`) compared module by module: per module that differs,
    ``{"module", "status": "changed" | "added" | "removed", "sha256_a", "sha256_b", "lines": [[tag, text], ...]}``
    (tags as :func:`cell_diff`'s; a hash is None for the run without the module); a module too large to keep is
    compared by hash alone (no lines)."""
    out: list[dict[str, Any]] = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if x is not None and y is not None and x["sha256"] == y["sha256"]:
            continue
        block: dict[str, Any] = {
            "module": name,
            "status": "changed" if x and y else "added" if y else "removed",
            "sha256_a": x["sha256"] if x else None,
            "sha256_b": y["sha256"] if y else None,
        }
        if (x is not None and x["source"] is None) or (y is not None and y["source"] is None):
            block["lines"] = []
        else:
            diff = difflib.unified_diff(
                (x["source"] if x else "").splitlines(), (y["source"] if y else "").splitlines(), lineterm="", n=3
            )
            block["lines"] = [[d[0], d[1:]] for d in list(diff)[2:]]
        out.append(block)
    return out


def module_diff(blocks: list[dict[str, Any]], ids: tuple[str, str]) -> list[str]:
    """:func:`module_blocks` as the lines of a unified diff (``--- train_utils.py (run A)``...)."""
    lines: list[str] = []
    for block in blocks:
        name = block["module"]
        if not block["lines"]:
            short = [(h or "-")[:12] for h in (block.get("sha256_a"), block.get("sha256_b"))]
            lines.append(f"module {name}: sha256 {short[0]} -> {short[1]} (too large to keep)")
            continue
        lines.append(f"--- {name} (run {ids[0]})" if block["status"] != "added" else "--- /dev/null")
        lines.append(f"+++ {name} (run {ids[1]})" if block["status"] != "removed" else "+++ /dev/null")
        lines += [tag + text for tag, text in block["lines"]]
    return lines


def cell_diff(a: list[dict], b: list[dict]) -> list[dict[str, Any]]:
    """Two lineages compared cell by cell, on their sources only (execution counts are not code: the
    same cells run at other counts are the same): a list of blocks, ``{"status": "same", "count": n}``
    for a run of identical cells, else ``{"status": "changed" | "added" | "removed", "lines": [...]}``
    with each line as ``[tag, text]``, the tag ``" "``, ``"+"``, ``"-"`` or ``"@"`` (a hunk header)."""
    sa, sb = [c["source"] for c in a], [c["source"] for c in b]
    out: list[dict[str, Any]] = []

    def lines(x: str, y: str) -> list[list[str]]:
        diff = difflib.unified_diff(x.splitlines(), y.splitlines(), lineterm="", n=3)
        return [[d[0], d[1:]] for d in list(diff)[2:]]  # the ---/+++ file header names nothing here

    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, sa, sb, autojunk=False).get_opcodes():
        if op == "equal":
            out.append({"status": "same", "count": i2 - i1})
            continue
        olds, news = sa[i1:i2], sb[j1:j2]
        for k in range(max(len(olds), len(news))):
            if k < len(olds) and k < len(news):
                out.append({"status": "changed", "lines": lines(olds[k], news[k])})
            elif k < len(olds):
                out.append({"status": "removed", "lines": [["-", x] for x in olds[k].splitlines()]})
            else:
                out.append({"status": "added", "lines": [["+", x] for x in news[k].splitlines()]})
    return out


def param_aliases(params: Mapping[str, list[Any]]) -> dict[str, list[str]]:
    """The params that say the same thing twice, for display: ``{"C": ["model.C"]}`` where a notebook wrote
    ``C = 0.1`` then ``LogisticRegression(C=C)`` and the capture recorded both the literal ``C`` and the
    estimator's ``model.C``.

    The ledger does not record that ``model.C`` was set from ``C`` (the capture marks both ``assign``), so the
    rule is a display-level guess that keeps to what the runs show: a literal param (a name without a dot) is
    paired with an estimator param (a dotted name) when the estimator param's last component is the literal's
    name AND both carry the same value (:func:`same_param`) in every compared run, neither absent from any.
    ``C`` against ``svc.C`` with another value in one run stays two params. Each pair is shown once where
    params are lined up against each other (the diff row "C / model.C", one parallel-coordinates axis, one
    scatter choice); a run's own params table keeps both names.

    Args:
        params: every key with one value per run (``"<absent>"`` where a run lacks it), as
            :func:`compare_runs` returns them.

    Returns:
        Per literal name, the estimator params it stands for (sorted); literals with none are left out.
    """
    out: dict[str, list[str]] = {}
    for key, values in params.items():
        if "." not in key or _ABSENT in [v for v in values if isinstance(v, str)]:
            continue
        literal = key.rsplit(".", 1)[1]
        same = params.get(literal)
        if same is None or any(isinstance(v, str) and v == _ABSENT for v in same):
            continue
        if all(same_param(a, b) for a, b in zip(same, values)):
            out.setdefault(literal, []).append(key)
    return {k: sorted(v) for k, v in sorted(out.items())}


def merged_param_diff(compare: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``compare["param_diff"]`` with each :func:`param_aliases` pair as one row named by both
    (``"C / model.C"``), at the literal's place: what the compare views list as the params that differ."""
    aliases = compare.get("param_aliases") or {}
    hidden = {e for names in aliases.values() for e in names}
    return {
        " / ".join([k, *aliases[k]]) if k in aliases else k: v
        for k, v in compare["param_diff"].items()
        if k not in hidden
    }


def compare_runs(reader: Reader, refs: list[str], baseline: str | None = None) -> Comparison:
    """Compare two or more runs (ids, prefixes, ``latest~N``).

    Returns:
        A plain dict: ``runs`` (id, name, status, ...), ``params`` (every key with one value per run, ``"<absent>"``
        where a run lacks it), ``param_diff`` (only the keys whose values differ), ``metrics`` (per key a list of
        summaries, None where absent), ``metric_delta`` (last value of the last run minus the first's),
        ``baseline_delta`` (per key, each run's last value minus the baseline's, the first run's: None for the
        baseline itself and where a value is missing), ``best`` (per key, the index of the best run: lowest for
        loss-like names as :func:`~.review.lower_is_better` says, else highest; None unless two runs have a value)
        and ``code_diff`` (unified diff of the first and last run's lineage, a list of lines; execution counts are
        not code: a replay of the same cells diffs empty), ``code_cells`` (the same, cell by cell:
        :func:`cell_diff`), ``module_blocks`` and ``module_diff`` (the notebook's own modules the first
        and last run trained with, module by module and as a unified diff: :func:`module_blocks`), ``system`` (per
        run its aggregates :data:`SYSTEM_AGGREGATES`, None where not recorded), ``param_aliases``
        (:func:`param_aliases`: a literal and the estimator params set from it, shown once), ``code_by_run`` (per
        run, :func:`cell_diff` of the baseline's lineage against the run's; None for the baseline itself: what the
        compare view's code diff shows for three runs or more).

    Raises:
        InvalidArgument: fewer than two runs.
        RunNotFound: a reference matches no run or several.
    """
    if len(refs) < 2:
        raise InvalidArgument(f"compare needs at least two runs; got {len(refs)}")
    runs = [reader.run(ref) for ref in refs]
    b_index = 0
    if baseline is not None:
        ids = [r["id"] for r in runs]
        b_id = reader.resolve(baseline)
        if b_id not in ids:
            raise InvalidArgument(f"baseline {baseline!r} is not one of the compared runs ({', '.join(ids)})")
        b_index = ids.index(b_id)
    keys = sorted({k for r in runs for k in r["params"]})
    params = {k: [r["params"].get(k, _ABSENT) for r in runs] for k in keys}
    param_diff = {k: v for k, v in params.items() if _differs(v)}
    mkeys = sorted({k for r in runs for k in r["metrics"]})
    metrics = {k: [r["metrics"].get(k) for r in runs] for k in mkeys}
    delta = {}
    for k, summaries in metrics.items():
        if summaries[0] is not None and summaries[-1] is not None:
            delta[k] = summaries[-1]["last"] - summaries[0]["last"]
    from .review import lower_is_better  # review imports this module

    baseline_delta: dict[str, list[float | None]] = {}
    best: dict[str, int | None] = {}
    for k, summaries in metrics.items():
        lasts = [s["last"] if s is not None and not _nan(s["last"]) else None for s in summaries]
        base = lasts[b_index]
        baseline_delta[k] = [
            None if base is None or v is None or i == b_index else v - base for i, v in enumerate(lasts)
        ]
        have = {i: v for i, v in enumerate(lasts) if v is not None}
        pick = min if lower_is_better(k) else max
        best[k] = pick(have, key=have.__getitem__) if len(have) > 1 else None
    a, b = runs[0], runs[-1]
    code_diff = list(
        difflib.unified_diff(
            lineage_text(a["lineage"], counts=False),
            lineage_text(b["lineage"], counts=False),
            fromfile=f"run {a['id']}",
            tofile=f"run {b['id']}",
            lineterm="",
        )
    )
    fields = ("id", "name", "status", "sprint", "start_time", "end_time")
    summary = [{k: v for k, v in r.items() if k in fields} for r in runs]
    data = data_side(runs)
    out: Comparison = {
        "runs": summary,
        "params": params,
        "param_diff": param_diff,
        "metrics": metrics,
        "metric_delta": delta,
        "baseline_delta": baseline_delta,
        "best": best,
        "code_diff": code_diff,
    }
    out["code_cells"] = cell_diff(a["lineage"], b["lineage"])
    out["module_blocks"] = module_blocks(module_sources(reader, a["id"]), module_sources(reader, b["id"]))
    out["module_diff"] = module_diff(out["module_blocks"], (a["id"], b["id"]))
    out["baseline"] = b_index
    base_lineage = runs[b_index]["lineage"]
    out["code_by_run"] = [None if i == b_index else cell_diff(base_lineage, r["lineage"]) for i, r in enumerate(runs)]
    out["param_aliases"] = param_aliases(params)
    out["system"] = [{k: r.get(k) for k in SYSTEM_AGGREGATES} for r in runs]
    out.update(data)  # type: ignore[typeddict-item]  # fingerprints, drift, imbalance
    return out


def data_side(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Fingerprints per variable and run, drift of the last run against the first, and the
    label columns each run flagged imbalanced."""
    names = sorted({d["name"] for r in runs for d in r["data"]})
    by_run = [{d["name"]: d for d in r["data"]} for r in runs]
    fingerprints = {n: [b[n]["fingerprint"] if n in b else None for b in by_run] for n in names}
    drift_rows = []
    first, last = by_run[0], by_run[-1]
    for n in names:
        a, b = first.get(n), last.get(n)
        if a and b and a["fingerprint"] != b["fingerprint"] and a["summary"] and b["summary"]:
            for row in dataset_drift(a["summary"], b["summary"]):
                if row["flags"]:
                    drift_rows.append({"variable": n, **row})
    imbalance = [
        {"run": r["id"], "variable": d["name"], "column": c["name"], "minority_share": c.get("minority_share")}
        for r in runs
        for d in r["data"]
        if d["summary"]
        for c in d["summary"].get("columns", [])
        if imbalanced(c)
    ]
    return {"data": fingerprints, "drift": drift_rows, "imbalance": imbalance}


def best_in_sprint(reader: Reader, run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The best run of ``run``'s sprint by a metric ``run`` has: the sprint's main metric (the metric most
    of its runs hold, ranked as the sidebar ranks it; lowest for loss-like names) when ``run`` recorded it,
    else the run's own metric that the sprint ranks highest (an SGD run among LogisticRegression runs is
    compared on its own loss, not against a score it never had). What the run view's "Compare with best"
    compares against: ``{"id", "name", "metric", "value"}``; ``{"id": None, "metric", "why"}`` when no other
    run of the sprint has that metric (or this run has no metric); None when the sprint has no metric."""
    from .metrics import rank_counts
    from .review import lower_is_better

    counts = reader.sprint_metric_counts(run["sprint"])
    ranked = rank_counts(counts)
    if not ranked:
        return None
    own = [m for m in ranked if not _nan((run["metrics"].get(m) or {}).get("last"))]
    if not own:
        return {"id": None, "metric": ranked[0], "why": f"this run recorded no metric (the sprint's is {ranked[0]})"}
    metric = own[0]
    if counts[metric][0] < 2:
        why = f"no other run of sprint {run['sprint']} recorded {metric}"
        return {
            "id": None,
            "metric": metric,
            "why": why + ("" if metric == ranked[0] else f" (its main metric, {ranked[0]}, is not in this run)"),
        }
    row = reader.best_by_metric(run["sprint"], metric, lower_is_better(metric))
    return None if row is None else {"id": row[0], "name": row[1], "metric": metric, "value": row[2]}
