"""Watching the data a session's cells feed to training: cheap check in the cell, the rest in a thread.

At each cell end, :meth:`DataWatcher.check` looks at the data objects the cell fed to
training or evaluation (:meth:`DataWatcher.datasets`): not every array it names, so loop
temporaries (``train_index``), predictions (``y_pred``) and results (``means``) are no datasets.
An object whose cheap signature (identity, shape, dtypes, a few sampled values) is
unchanged is linked to the run at once with its known fingerprint. Anything else goes
to a worker thread, which fingerprints it, summarizes it unless the ledger already has
that fingerprint, re-checks the signature (data changed meanwhile: dropped with a note),
and links it to the runs.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from typing import AbstractSet, Any, Callable

from .capture import data as data_capture
from .capture.params import is_torch_module
from .capture.training import DataUse
from .ledger.queries import Reader


def is_model(obj: Any) -> bool:
    """A model instance: a PyTorch module, or an object with ``fit`` and ``predict`` (scikit-learn,
    Keras, XGBoost, LightGBM). Classes, data and plain values are not."""
    if obj is None or isinstance(obj, (type, int, float, str, bytes, list, tuple, dict, set)):
        return False
    if is_torch_module(obj):
        return True
    if data_capture.kind_of(obj) is not None:
        return False
    try:
        return callable(getattr(obj, "fit", None)) and callable(getattr(obj, "predict", None))
    except Exception:
        return False


# Objects that hold data for a training library without being data nbexp summarizes: the data they were made from
# is what a training that reads them saw (``lgb.train(params, dtrain)``, ``for xb, yb in loader``).
_WRAPPERS = (
    ("lightgbm", "Dataset"),
    ("xgboost", "DMatrix"),  # QuantileDMatrix too (a subclass)
    ("torch.utils.data", "Dataset"),  # TensorDataset, Subset, a notebook's own Dataset class
    ("torch.utils.data", "DataLoader"),
)
_WRAPPED_DEPTH = 3  # DataLoader -> Subset -> TensorDataset -> the tensors


def is_data_wrapper(obj: Any) -> bool:
    """A LightGBM ``Dataset``, an XGBoost ``DMatrix``, a PyTorch ``Dataset`` or ``DataLoader`` (of a library the
    user imported; none is imported here)."""
    for module, cls in _WRAPPERS:
        lib = sys.modules.get(module)
        kind = getattr(lib, cls, None) if lib is not None else None
        if isinstance(kind, type) and isinstance(obj, kind):
            return True
    return False


_CARRY = object()  # a job of the watcher's queue: link a run's data to the run that re-evaluates its model


class DataWatcher:
    """Watches a session's data; ``enabled=False`` (``%nbexp track --no-data``) watches nothing.

    Args:
        store: the session's :class:`~nbexp.ledger.store.Store`, written from the worker thread too.
        ledger_path: the ledger the worker reads (is a fingerprint's summary there already?).
        warn: the session's ``warn(cause, message)``.
    """

    def __init__(
        self, store: Any, ledger_path: str | os.PathLike, warn: Callable[[str, str], None], enabled: bool = True
    ) -> None:
        self.store = store
        self.ledger_path = ledger_path
        self.warn = warn
        self.enabled = enabled
        self.known: dict[str, tuple[tuple, str, str | None]] = {}  # name -> (signature, fingerprint, role)
        self.summarized: set[str] = set()
        self.results: set[str] = set()  # names holding what a model produced (predictions, cv results)
        # name -> the data names the value last bound to it reads (``dtrain = lgb.Dataset(X[idx], label=y)``: X, y)
        self.made_from: dict[str, AbstractSet[str]] = {}
        self.jobs: queue.Queue = queue.Queue()
        self._reader: Reader | None = None  # the worker's own read connection
        self._thread = threading.Thread(target=self._loop, name="nbexp-data", daemon=True)
        if enabled:
            self._thread.start()

    def datasets(self, use: DataUse, ns: dict, trainer_funcs=frozenset(), metric_re=None) -> list[str]:
        """The names of a cell's :class:`DataUse` that are datasets, now that the cell has run.

        A name bound from a ``predict``-like call, from a model's output (``model(X)``), from a
        model's attribute (``grid.cv_results_``) or from such a result is a result (remembered
        across cells until rebound otherwise), never a dataset. Datasets are the cell's
        training and evaluation inputs, the arguments of a call to a model or to a function
        whose body trains (``trainer_funcs``), and, where a cell computes a metric-like name
        (``metric_re``: ``score = float(train['a'].mean())``), the data that value reads, and a data wrapper a for
        loop iterates over (``for xb, yb in loader``: see :meth:`check`). Loop targets are temporaries and never
        count.
        """
        results = self.results
        made_from = self.made_from
        for name, (predicted, sources, callees, owners) in use.bound.items():
            made_from[name] = sources
            if predicted or (
                (sources or callees or owners)  # `p = 0.5` reads nothing: the common name, no lookups
                and (
                    (results and not results.isdisjoint(sources))
                    or any(is_model(ns.get(c)) for c in callees)
                    or any(is_model(ns.get(o)) for o in owners)
                )
            ):
                results.add(name)
            else:
                results.discard(name)
        names = set(use.inputs) | {n for n in use.iterated if is_data_wrapper(ns.get(n))}  # for xb, yb in loader
        for callee, args in use.calls.items():
            if callee in trainer_funcs or is_model(ns.get(callee)):
                names |= args
        if metric_re is not None:
            for name, (_, sources, _, _) in use.bound.items():
                if metric_re.match(name):
                    names |= sources
        return sorted(names - self.results - use.loop_vars)

    def check(
        self,
        use: DataUse,
        ns: dict,
        run_ids: list[str],
        labels: set[str],
        trainer_funcs=frozenset(),
        metric_re=None,
    ) -> None:
        """Link (or queue) the datasets of a cell (see :meth:`datasets`); called at cell end. A data wrapper a
        cell reads (``dtrain = lgb.Dataset(X_train, label=y_train)`` two cells above ``lgb.train(params,
        dtrain)``) stands for the data it was made from (:attr:`made_from`), so a re-run that trains on it again
        records that data too."""
        if not self.enabled:
            return
        labels = set(labels) | use.labels
        for name in self._unwrapped(self.datasets(use, ns, trainer_funcs, metric_re), ns):
            obj = ns.get(name)
            if obj is None:
                continue
            kind = data_capture.kind_of(obj)
            if kind is None:
                continue
            try:
                sig = data_capture.signature(obj, kind)
            except data_capture.DataSkipped as exc:
                self.warn("data", f"data {name!r} not summarized: {exc}")
                continue
            known = self.known.get(name)
            if known is not None and known[0] == sig:
                self._link(run_ids, name, known[1], known[2])
            else:
                self.jobs.put((name, obj, kind, sig, list(run_ids), name in labels, set(labels)))

    def _unwrapped(self, names: list[str], ns: dict) -> list[str]:
        """``names``, each data wrapper among them replaced by the data names its value read when it was bound
        (:attr:`made_from`: the arrays, not an index into them; through wrappers made from wrappers,
        :data:`_WRAPPED_DEPTH` deep), in order, once each; results (predictions) are never data."""
        out: dict[str, None] = {}
        for name in names:
            todo, depth = [name], 0
            while todo:
                nxt = []
                for n in todo:
                    if depth < _WRAPPED_DEPTH and is_data_wrapper(ns.get(n)):
                        nxt += sorted(m for m in self.made_from.get(n, ()) if m != n and m not in self.results)
                    else:
                        out.setdefault(n)
                todo, depth = nxt, depth + 1
        return list(out)

    def _link(self, run_ids: list[str], name: str, fp: str, role: str | None) -> None:
        self.store.link_run_data(run_ids, name, fp, role, time.time())

    def carry(self, prev_id: str, new_id: str) -> None:
        """Run ``new_id`` evaluates the model ``prev_id`` trained again (:meth:`nbexp.runbook.RunBook.carry`): it
        holds the data that training saw too. Queued behind the data still being summarized for ``prev_id``; what
        ``new_id`` links itself stays (a re-evaluation had no training data, and ``explain`` called it changed)."""
        if self.enabled:
            self.jobs.put((_CARRY, prev_id, new_id))

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until queued objects are summarized (or ``timeout`` passes)."""
        deadline = time.time() + timeout
        while self.jobs.unfinished_tasks and time.time() < deadline:
            time.sleep(0.01)
        return not self.jobs.unfinished_tasks

    def stop(self) -> None:
        if not self.enabled:
            return
        self.wait(30)
        self.jobs.put(None)
        self._thread.join(5)
        if self._reader is not None:
            self._reader.close()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is None:
                    return
                if job[0] is _CARRY:
                    self.store.copy_run_data(job[1], job[2])
                    continue
                self._process(*job)
            except Exception as exc:
                self.warn("data", f"data {job[0]!r} not summarized ({type(exc).__name__}: {exc})")
            finally:
                self.jobs.task_done()

    def _process(
        self, name: str, obj: Any, kind: str, sig: tuple, run_ids: list[str], is_y: bool, labels: set[str]
    ) -> None:
        fp, exact = data_capture.fingerprint(obj, kind)
        summary = None
        if fp not in self.summarized and not self._in_ledger(fp):
            summary = data_capture.summarize(obj, kind, name, labels)
        if data_capture.signature(obj, kind) != sig:
            self.warn(
                "data-changed",
                f"data {name!r} changed while it was being summarized; it will be summarized at its next use",
            )
            return
        role = None
        if summary is not None:
            role = "label" if any(c.get("label") for c in summary.get("columns", [])) or is_y else "features"
            self.store.store_dataset(
                fp,
                kind,
                json.dumps(summary.get("shape")),
                exact,
                bool(summary.get("sampled")),
                json.dumps(summary, default=str),
                time.time(),
            )
        else:
            role = "label" if is_y else (self.known.get(name, (None, None, None))[2] or "features")
        self.summarized.add(fp)
        self.known[name] = (sig, fp, role)
        self._link(run_ids, name, fp, role)

    def _in_ledger(self, fp: str) -> bool:
        try:
            if self._reader is None:
                self._reader = Reader(self.ledger_path)
            return self._reader.has_dataset(fp)
        except Exception:
            return False
