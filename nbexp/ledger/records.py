"""The records that cross module boundaries, typed: what :class:`~nbexp.ledger.queries.Reader`
answers and :func:`~nbexp.analysis.compare.compare_runs` builds from it, read by the CLI, the REST
API, the figures, the review and the exporters. They are plain dicts at run time (JSON as they
are); these types let mypy (``make lint``) check the keys every reader uses.
"""

from __future__ import annotations

from typing import Any, TypedDict


class MetricSummary(TypedDict):
    """One metric of one run, from the summaries the writer keeps (NaN read back as NaN)."""

    last: float  # the value at the highest step
    min: float
    max: float
    steps: int  # points recorded
    nan: int  # of which NaN
    source: str  # log (nbexp.log), namespace, stdout, keras, sklearn, xgboost, lightgbm, result


class RunRecord(TypedDict, total=False):
    """One run as :meth:`Reader.run` gives it (listings give the fields down to ``tags``)."""

    id: str
    name: str | None
    status: str  # as readers see it: a running run of a dead session is crashed
    sprint: str
    kind: str
    start_time: float
    end_time: float | None
    session_id: str
    error: str | None
    note: str | None
    starred: int
    updated: float
    replay_of: str | None  # the run a replay reproduces
    gpu_util_mean: float | None  # system aggregates (queries.SYSTEM_FIELDS)
    gpu_util_max: float | None
    gpu_mem_peak_mb: float | None
    energy_wh: float | None
    gpu_count: int | None
    cpu_mean: float | None
    rss_peak_mb: float | None
    idle_hint: str | None
    params: dict[str, Any]
    metrics: dict[str, MetricSummary]
    tags: list[str]
    session: dict[str, Any]
    lineage: list[dict[str, Any]]
    data: list[dict[str, Any]]
    events: list[dict[str, Any]]


class Comparison(TypedDict, total=False):
    """Two or more runs side by side (see :func:`nbexp.analysis.compare.compare_runs`)."""

    runs: list[dict[str, Any]]
    params: dict[str, list[Any]]
    param_diff: dict[str, list[Any]]
    metrics: dict[str, list[MetricSummary | None]]
    metric_delta: dict[str, float]  # the last run's last value minus the first's
    baseline_delta: dict[str, list[float | None]]  # each run minus the baseline's value
    baseline: int  # the index of the baseline run (the first unless chosen)
    best: dict[str, int | None]  # per metric, the index of the best run (lower is better for loss-like names)
    code_diff: list[str]
    code_cells: list[dict[str, Any]]  # the code diff cell by cell
    module_blocks: list[dict[str, Any]]  # the first and last run's own modules of the notebook, by module
    module_diff: list[str]  # the same as a unified diff (compare.module_diff)
    code_by_run: list[list[dict[str, Any]] | None]  # each run's cells against the baseline's (None: the baseline)
    param_aliases: dict[str, list[str]]  # params that say the same thing twice (see compare.param_aliases)
    system: list[dict[str, Any]]  # each run's system aggregates
    fingerprints: dict[str, list[str | None]]
    drift: list[dict[str, Any]]
    imbalance: list[dict[str, Any]]
    figures: dict[str, Any]
    metric: str | None
