"""nbexp: an experiment tracker that lives inside Jupyter.

In a notebook::

    %load_ext nbexp
    %nbexp track

From then on every cell's code, the hyperparameters it sets and the metrics it
computes go into a local SQLite ledger. Read them back with :func:`runs`,
:func:`get_run` and :func:`compare`, or the ``nbexp`` command line.

Importing this module is cheap: pandas, NumPy, torch and friends are only
touched when the user already imported them or asks for a DataFrame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import pandas

    from .recorder import Run

__all__ = [
    "__version__",
    "compare",
    "data",
    "drift",
    "explain",
    "get_run",
    "log",
    "log_artifact",
    "log_params",
    "run",
    "runs",
    "system",
]


def log(step: int | None = None, **metrics: Any) -> None:
    """Record metrics on the active run; buffered, cheap enough for a training loop.

    Args:
        step: a non-negative int; None continues one past the last step.
        **metrics: metric names to real scalars (Python, NumPy, 0-d tensors).
            NaN and infinities are kept as such.

    Raises:
        InvalidArgument: no metric, a bad step, a non-identifier name or a
            non-scalar value; nothing is recorded then.
        NotTracking: nothing is tracking (run ``%nbexp track`` first).

    Example:
        >>> for epoch in range(3):                      # doctest: +SKIP
        ...     nbexp.log(step=epoch, loss=1 / (epoch + 1))
    """
    from .tracker import active_run

    active_run().log(step, **metrics)


def log_artifact(path_or_object: Any, name: str | None = None) -> dict[str, Any]:
    """Record a file (or bytes) as an artifact of the active run: name, path, size and SHA-256;
    files up to 10 MB are copied into the ledger, so the run keeps them after they are overwritten.

    Args:
        path_or_object: a file path (``str`` or ``pathlib.Path``) or ``bytes``.
        name: the name in the run (default: the file's name; required for bytes).

    Returns:
        ``{"name", "path", "size", "sha256", "stored"}``.

    Raises:
        InvalidArgument: no such file, bytes without a name, a bad name; nothing is recorded then.
        NotTracking: nothing is tracking (run ``%nbexp track`` first).

    Example:
        >>> nbexp.log_artifact("model.joblib")          # doctest: +SKIP
    """
    from .tracker import active_run

    return active_run().log_artifact(path_or_object, name)


def log_params(**params: Any) -> None:
    """Record params on the active run (they win over captured ones).

    Example:
        >>> nbexp.log_params(lr=3e-4, layers=[64, 64])   # doctest: +SKIP
    """
    from .tracker import active_run

    active_run().log_params(**params)


def run(name: str | None = None, ledger: str | None = None, **params: Any) -> Run:
    """Open a run for a ``with`` block: one run per sweep point.

    The run inherits the session's params, then ``params``; it ends
    ``finished``, ``failed`` (the block raised) or ``interrupted``. Outside a
    tracked notebook, the first call starts a script session on ``ledger``.

    Example:
        >>> for lr in (0.01, 0.1):                       # doctest: +SKIP
        ...     with nbexp.run(f"lr={lr}", lr=lr):
        ...         nbexp.log(acc=train(lr))
    """
    from . import tracker

    session = tracker.active_session()
    if session is None or ledger is not None and tracker.resolve_path(ledger) != session.ledger_path:
        session = tracker.start(ledger=ledger, open_run=False)
    return session.new_run(name, kind="context", params=params, nested=True)


def runs(
    sprint: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    ledger: str | None = None,
    data: str | None = None,
    params: dict[str, Any] | None = None,
    since: str | float | None = None,
    tag: str | None = None,
    search: str | None = None,
    query: str | None = None,
) -> pandas.DataFrame:
    """The ledger's runs as a pandas DataFrame, newest first.

    Columns: ``run_id, name, status, sprint, start_time, end_time, duration_s``,
    then ``params.*`` (typed) and ``metrics.*`` (each run's last value), as
    MLflow's ``search_runs``; ``data.NAME`` (the fingerprint of each variable's
    data) and ``system.*`` (GPU/CPU aggregates).

    Every run (no filter) of a ledger of more than 2,000 runs is read from the frame stored in the ledger and
    the runs written since it was stored; the first such call on a ledger reads every row and stores the frame
    once it has returned (see :func:`nbexp.api.runs_frame`).

    Args:
        sprint: ``today``, ``yesterday``, a date ``YYYY-MM-DD``, a sprint name
            or ``all``; None for all.
        status: keep only runs with this status (crashed included).
        limit: at most this many runs.
        ledger: ledger path; None for the active session's or the default one.
        data: only runs that used data with this fingerprint (or prefix).
        params: only runs with these param values, e.g. ``{"LR": 0.3}`` (typed: 0.3 is not "0.3").
        since: only runs started since ``30m``, ``12h``, ``2d``, ``1w``, a date or epoch seconds.
        tag: only runs with this tag.
        search: only runs whose id, name, status, note, tags or params (``lr=0.1``) contain
            this text, case-insensitively.
        query: only runs matching a query of the runs table's language, e.g.
            ``'metrics.test_auc > 0.9 and params.C < 1 and status = finished and tag = baseline'``
            (see :mod:`nbexp.ledger.query`).

    Example:
        >>> nbexp.runs(sprint="all", since="2d", status="crashed")     # doctest: +SKIP
    """
    from .api import runs_frame

    return runs_frame(
        _ledger(ledger),
        sprint=sprint,
        status=status,
        limit=limit,
        data=data,
        params=params,
        since=since,
        tag=tag,
        search=search,
        query=query,
    )


def data(run_id: str = "latest", ledger: str | None = None) -> pandas.DataFrame:
    """Summaries of the data a run's cells used, one row per variable and column.

    Columns: ``variable, kind, shape, fingerprint, role, sampled, column, type,
    dtype, count, missing, missing_rate, min, p1 ... p99, max, mean, std, zeros,
    distinct, top, imbalanced, minority_share, classes``.
    """
    from .api import data_frame

    return data_frame(_ledger(ledger), run_id)


def drift(
    run_a: str, run_b: str, name: str | None = None, other: str | None = None, ledger: str | None = None
) -> pandas.DataFrame:
    """Drift of ``run_b``'s data against ``run_a``'s, per variable and column.

    Compares every variable both runs used (or ``name`` in run_a with ``other``,
    default the same name, in run_b). Columns: ``variable, column, severity
    (ok/moderate/major), psi, ks, out_of_range, missing_a, missing_b, dtype_a,
    dtype_b, class_shift, flags``. Thresholds: see :mod:`nbexp.analysis.drift`.
    """
    from .api import drift_frame

    return drift_frame(_ledger(ledger), run_a, run_b, name, other)


def system(run_id: str = "latest", ledger: str | None = None) -> pandas.DataFrame:
    """A run's system samples as a DataFrame, one row per tick.

    Columns: ``time``, this process's ``proc_cpu`` (percent of one core),
    ``proc_rss_mb``, ``proc_threads``, the machine's ``sys_cpu`` and ``sys_mem``
    (percent), then per GPU ``gpu{i}.util``, ``gpu{i}.mem_used_mb``, ``.power_w``,
    ``.temp_c``, ``.sm_clock_mhz``, ``.proc_mem_mb`` and more, where NVML answered.
    """
    from .api import system_frame

    return system_frame(_ledger(ledger), run_id)


def get_run(run_id: str, ledger: str | None = None) -> dict[str, Any]:
    """One run as a dict: its fields, params, metric summaries, tags and lineage.

    Args:
        run_id: a run id or a unique prefix of one; ``latest`` or ``latest~N``.
    """
    from .ledger import queries

    with queries.Reader(_ledger(ledger)) as r:
        return dict(r.run(run_id))


def compare(
    *run_ids: str,
    ledger: str | None = None,
    metric: str | None = None,
    baseline: str | None = None,
    params: list[str] | None = None,
    x_param: str | None = None,
) -> dict[str, Any]:
    """Compare runs (the first is the baseline unless ``baseline`` names another): param diff,
    metrics side by side, code diff, data drift; as the last value of a cell it shows as tabs
    with plotly figures, the same the sidebar's compare view draws (a chart per metric, the
    parallel coordinates over ``params``, a scatter of ``x_param`` against ``metric``).

    Returns:
        A dict: ``runs``, ``params`` (every key, one value per run), ``param_diff``
        (only keys that differ), ``metrics`` (summaries per run), ``metric_delta``,
        ``code_diff`` (unified diff of the first and last run's lineage), ``data``
        (fingerprints), ``drift``, ``imbalance``, ``figures`` (plotly figure dicts).

    Example:
        >>> nbexp.compare("latest~1", "latest")["param_diff"]    # doctest: +SKIP
        {'LR': [0.1, 0.3]}
    """
    from .analysis.compare import compare_runs
    from .ledger import queries
    from .widgets import Comparison

    with queries.Reader(_ledger(ledger)) as r:
        c = Comparison(compare_runs(r, list(run_ids), baseline=baseline))
        try:
            from .figures import compare_figures

            c.update(compare_figures(r, c, metric, params=params, x_param=x_param))
        except ImportError:  # no plotly: the data without figures
            pass
        return c


def explain(
    run: str = "latest",
    vs: str = "best",
    metric: str | None = None,
    ablate: bool = False,
    budget: int = 8,
    timeout: int = 600,
    ledger: str | None = None,
) -> dict[str, Any]:
    """Why ``run`` scores differently from ``vs`` (a run, ``best`` or ``tag:NAME``) on ``metric`` (default:
    the main metric): the factors that differ (data, code, params, environment, seed, system), ranked, each
    with its evidence and a plain sentence, and a one-line ``summary``.

    With ``ablate``, ``run`` is replayed in fresh kernels (at most ``budget`` replays, ``timeout`` seconds a
    cell): unchanged, to measure the noise, and once per factor a replay can isolate, that factor set back to
    ``vs``'s value; each factor then has its ``effect`` on the metric, and ``ablation`` holds the waterfall.
    Without ``ablate``, the newest ablation already stored for the pair (run overnight) is shown.

    Example:
        >>> nbexp.explain("latest", vs="best")["summary"]          # doctest: +SKIP
        'test_auc -0.021 (0.951 -> 0.93): first cause: the data changed (X_train, ...): ...'
    """
    from .analysis.explain import explain as explain_runs
    from .analysis.explain import resolve_pair
    from .ledger import queries

    path = _ledger(ledger)
    with queries.Reader(path) as r:
        a, b, metric = resolve_pair(r, run, vs, metric)
        ex = explain_runs(r, a, b, metric)
        ledger_path = r.path
        if not ablate:
            from .analysis.ablation import stored

            ex = stored(r, a, b, metric) or ex  # an ablation already run for this pair
    if ablate:
        from .analysis.ablation import ablate as run_ablation

        ex = run_ablation(ledger_path, ex, budget=budget, timeout=timeout)
    return ex


def _ledger(ledger: str | None):
    from . import tracker
    from .tracker import active_session

    s = active_session()
    if s is not None and (ledger is None or tracker.resolve_path(ledger) == s.ledger_path):
        s.flush()  # read what this kernel has recorded so far
    return ledger or (s.ledger_path if s else None)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbexp``: register the ``%nbexp`` magics. After ``%reload_ext nbexp`` the
    session tracking this shell goes on, and one line says so."""
    from . import tracker
    from .magics import NbexpMagics

    ipython.register_magics(NbexpMagics(ipython))
    session = tracker.active_session()
    if session is not None and session.shell is ipython and session.reloading:
        session.reloading = False
        run = session.current
        print(
            f"nbexp: extension reloaded; still tracking session {session.id}"
            + (f", run {run.id}" if run is not None else "")
            + f" in {session.ledger_path}"
        )


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbexp``: stop tracking, flush, unhook everything. Within ``%reload_ext
    nbexp`` (which unloads, then loads the extension again) the session keeps tracking."""
    from . import tracker

    session = tracker.active_session()
    if session is not None and session.shell is ipython:
        if _reloading():
            session.reloading = True
            return
        session.stop()


def _reloading() -> bool:
    """True when called from IPython's ``reload_extension`` (``%reload_ext``)."""
    import sys

    frame: Any = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "reload_extension" and "IPython" in code.co_filename:
            return True
        frame = frame.f_back
    return False


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbexp"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "nbexp"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Jupyter Server loads this: the REST API for the sidebar."""
    from .server import load

    load(serverapp)
