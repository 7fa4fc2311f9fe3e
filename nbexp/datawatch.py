"""Watching the data a session's cells touch: cheap check in the cell, the rest in a thread.

At each cell end, :meth:`DataWatcher.check` looks at the data objects the cell named.
An object whose cheap signature (identity, shape, dtypes, a few sampled values) is
unchanged is linked to the run at once with its known fingerprint. Anything else goes
to a worker thread, which fingerprints it, summarizes it unless the ledger already has
that fingerprint, re-checks the signature (data changed meanwhile: dropped with a note),
and links it to the runs.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any, Callable

from .capture import data as data_capture
from .ledger.queries import Reader


class DataWatcher:
    """Watches a session's data; ``enabled=False`` (``%nbexp track --no-data``) watches nothing.

    Args:
        store: the session's :class:`~nbexp.ledger.store.Store`, written from the worker thread too.
        ledger_path: the ledger the worker reads (is a fingerprint's summary there already?).
        warn: the session's ``warn(cause, message)``.
    """

    def __init__(self, store: Any, ledger_path: str, warn: Callable[[str, str], None], enabled: bool = True) -> None:
        self.store = store
        self.ledger_path = ledger_path
        self.warn = warn
        self.enabled = enabled
        self.known: dict[str, tuple[tuple, str, str | None]] = {}  # name -> (signature, fingerprint, role)
        self.summarized: set[str] = set()
        self.jobs: queue.Queue = queue.Queue()
        self._reader: Reader | None = None  # the worker's own read connection
        self._thread = threading.Thread(target=self._loop, name="nbexp-data", daemon=True)
        if enabled:
            self._thread.start()

    def check(self, names: list[str], ns: dict, run_ids: list[str], labels: set[str]) -> None:
        """Link (or queue) the data objects among ``names``; called at cell end."""
        if not self.enabled:
            return
        for name in names:
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

    def _link(self, run_ids: list[str], name: str, fp: str, role: str | None) -> None:
        self.store.link_run_data(run_ids, name, fp, role, time.time())

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
