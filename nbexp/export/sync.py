"""Live sync of a tracked session to an MLflow server (``%nbexp track --sync URI``, ``$NBEXP_SYNC_URI``,
``c.NbexpMagics.sync_uri``).

A :class:`Sync` is one background thread per tracked kernel. It reads the session's runs from the ledger
(never from the cell hooks: the kernel's writer has committed them), and every few seconds hands the runs
that changed to the idempotent MLflow exporter (:func:`nbexp.export.mlflow.export_runs`): params and tags as
the run gets them, the metric points logged since the last pass, and once a run has ended its status, code,
outputs and artifacts. The cell's thread never waits on it: ``%nbexp track`` starts it, ``%nbexp stop`` gives
it a last, bounded pass.

When the server cannot be reached the thread waits longer each time (up to half a minute) and tries again; nothing
is lost, since the ledger keeps every point. Each pass counts what the server holds for a run it could not
finish (a batch may have landed without its answer), so every point arrives exactly once. What a kernel could
not send before it stopped, ``nbexp sync`` sends.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

INTERVAL = 3.0  # seconds between passes while the server answers
MAX_BACKOFF = 30.0
FINAL_TIMEOUT = 15.0  # longest %nbexp stop waits for the last pass
STATE_EVERY = 30.0  # the state is written to the ledger when it changes, and at least this often


class Sync:
    """The background sync of the runs of session ``session_id`` in ``ledger`` to ``uri``.

    Args:
        ledger: the ledger file the session writes.
        session_id: whose runs are sent.
        uri: the MLflow tracking server (``http://HOST:PORT``).
        experiment: the MLflow experiment the runs go into.
        interval: seconds between passes.
    """

    def __init__(
        self, ledger: str, session_id: str, uri: str, experiment: str = "nbexp", interval: float = INTERVAL
    ) -> None:
        self.ledger, self.session_id, self.uri, self.experiment = str(ledger), session_id, uri, experiment
        self.interval = interval
        self.error: str | None = None  # the last failure, None once a pass succeeds
        self.passes = 0  # passes that reached the server
        self.points_sent = 0
        self.last_ok: float | None = None
        self.final_ok: bool | None = None  # whether the last pass, after close(), reached the server
        self._known: dict[str, dict[str, int]] = {}  # run id -> metric key -> points the server holds
        self._seen: dict[str, tuple] = {}  # run id -> what the ledger held at its last successful pass
        self._recorded: tuple[str | None, float] = (None, 0.0)  # the state last written to the ledger, and when
        self._wake = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()  # one pass at a time
        self._thread = threading.Thread(target=self._loop, name="nbexp-sync", daemon=True)
        self._thread.start()

    # -- the thread -------------------------------------------------------------------------------------
    def _loop(self) -> None:
        delay = 0.0
        while True:
            final = self._stopping  # asked to stop before this pass began: it is the last one
            ok = self.sync_once()
            self._record_state()
            if final:
                break
            delay = self.interval if ok else min(MAX_BACKOFF, max(self.interval, delay * 2))
            self._wake.wait(delay)
            self._wake.clear()
        self.final_ok = ok

    def sync_once(self) -> bool:
        """One pass: send what changed in the session's runs since the last pass. Returns whether the server
        took it (True also when nothing had changed)."""
        from ..errors import NbexpError
        from ..ledger.queries import Reader
        from .mlflow import export_runs

        with self._lock:
            try:
                with Reader(self.ledger) as reader:  # a fresh one each pass: a Reader keeps what it read
                    return self._pass(reader, export_runs)
            except NbexpError as exc:
                self.error = str(exc)
                return False
            except Exception as exc:  # the thread never dies: say what happened, try again later
                self.error = f"{type(exc).__name__}: {exc}"
                return False

    def _pass(self, reader, export_runs) -> bool:
        """Send the runs whose ledger state changed since their last successful pass."""
        changed = []
        for rid, stamp in reader.session_sync_state(self.session_id).items():
            if self._seen.get(rid) != stamp:
                changed.append((rid, stamp))
        if not changed:
            if self.error is None:
                self.last_ok = time.time()
            return self.error is None or self._probe()
        for rid, stamp in changed:
            try:
                stats = export_runs(reader, [rid], self.uri, self.experiment, known=self._known)
            except BaseException:
                self._known.pop(rid, None)  # recount on the server next time
                raise
            self.points_sent += stats["points"]
            self._seen[rid] = stamp
        self.error, self.last_ok = None, time.time()
        self.passes += 1
        return True

    def _probe(self) -> bool:
        """After a failure with nothing new to send: whether the server answers again."""
        import urllib.request

        try:
            urllib.request.urlopen(f"{self.uri.rstrip('/')}/health", timeout=5).close()
        except OSError as exc:
            self.error = f"cannot reach the MLflow server at {self.uri}: {exc}"
            return False
        self.error, self.last_ok = None, time.time()
        return True

    def _record_state(self) -> None:
        """Keep the state phrase in the session's ledger row (when it changed, else every ``STATE_EVERY`` seconds),
        where the sidebar reads it: the server process cannot ask this thread."""
        from ..capture.secrets import scrub_text
        from ..ledger import connect, transaction
        from ..ledger.store import Store

        behind = self.behind()  # read once: the phrase and the count written beside it say the same
        state, now = self._phrase(behind), time.time()
        if state == self._recorded[0] and now - self._recorded[1] < STATE_EVERY:
            return
        try:
            conn = connect(self.ledger)
            try:
                with transaction(conn):
                    Store(conn, scrub=scrub_text).set_sync_state(
                        self.session_id, _without_credentials(self.uri), state, behind, now
                    )
            finally:
                conn.close()
            self._recorded = (state, now)
        except Exception:  # a busy or read-only ledger: the next pass tries again
            pass

    # -- callers ----------------------------------------------------------------------------------------
    def behind(self) -> int:
        """Metric points of the session's runs the server does not have yet, as far as this sync knows. Read
        on the caller's own connection: it never waits for a pass in progress."""
        from ..errors import NbexpError
        from ..ledger.queries import Reader

        try:
            with Reader(self.ledger) as reader:
                rows = reader.session_metric_counts(self.session_id)
        except (NbexpError, sqlite3.Error):
            return 0
        return sum(max(0, n - self._known.get(rid, {}).get(key, 0)) for rid, key, n in rows)

    def state(self) -> str:
        """One phrase: ``synced``, ``behind by N points``, ``server unreachable (...)`` or ``starting``."""
        if self.last_ok is None and not self.error:
            return "starting"  # nothing sent yet: no need to count
        return self._phrase(self.behind())

    def _phrase(self, behind: int) -> str:
        """:meth:`state`'s phrase for ``behind`` points not yet on the server (read by the caller)."""
        if self.error:
            return f"server unreachable, {behind:,} points waiting ({self.error})"
        if self.last_ok is None:
            return "starting"
        return "synced" if behind == 0 else f"behind by {behind:,} points"

    def status_line(self) -> str:
        return f"nbexp: sync to {self.uri} (experiment {self.experiment!r}): {self.state()}"

    def wake(self) -> None:
        """Start a pass now (after a run ended, say)."""
        self._wake.set()

    def close(self, timeout: float = FINAL_TIMEOUT) -> bool:
        """Stop the thread after a last pass, waiting at most ``timeout`` seconds. Returns whether the last
        pass reached the server (what it could not send, ``nbexp sync`` sends)."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        return bool(self.final_ok)


def _without_credentials(uri: str) -> str:
    """``http://user:secret@host:5000`` -> ``http://host:5000``: what the ledger and the sidebar may show."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")))


_active: Sync | None = None


def start(ledger: str, session_id: str, uri: str, experiment: str = "nbexp") -> Sync:
    """Start the sync of a session (closing one already running in this process)."""
    global _active
    from .mlflow import _client

    _client(uri)  # a bad URI or a missing MLflow is said now, at %nbexp track, not in the thread
    # MLflow prints a "View run at URL" line when a run ends: from this thread it would land in some cell's output
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    stop(timeout=1.0)
    _active = Sync(ledger, session_id, uri, experiment)
    return _active


def active() -> Sync | None:
    return _active


def stop(timeout: float = FINAL_TIMEOUT) -> Sync | None:
    """Close the running sync after a last pass. Returns it (None when none ran)."""
    global _active
    s, _active = _active, None
    if s is not None:
        s.close(timeout)
    return s
