"""Every write of the ledger, each a named method of :class:`Store`.

A store writes through any *execute sink*: an object with ``execute(sql, params)`` and
``executemany(sql, rows)``. A kernel's sink is its :class:`~nbexp.ledger.writer.Writer`, which
queues the statements and writes them in batches on its own thread; the server and the CLI
hand a store a direct connection, inside :func:`~nbexp.ledger.transactions.transaction`::

    with transaction(conn):
        Store(conn, scrub=scrub_text).edit_run(run_id, starred=True, add_tags=["best"])

No module outside :mod:`nbexp.ledger` writes SQL: a schema change touches this package only.

Secrets. The texts a person types or a notebook holds (run names, notes, tags, sprint labels,
notebook paths, warning messages) are scrubbed here, once, with the ``scrub`` function the
store's creator passes: the ledger imports nothing of nbexp but its own modules, so the
scrubbing rules (:func:`nbexp.capture.secrets.scrub_text`) come in from outside, and a store
cannot be made without saying how it scrubs. Param values and code are scrubbed where they
are captured, before they are compared with what the run already holds.

Metric points skip the statement queue altogether: :attr:`Store.points` is the writer's own
deque, which ``Run.log`` appends to (the tight-loop path, one append per point).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .schema import CRASHED, RUNNING


class Sink(Protocol):
    """Where a store's statements go: a :class:`~nbexp.ledger.writer.Writer` or a connection."""

    def execute(self, sql: str, params: Any = ...) -> Any: ...

    def executemany(self, sql: str, rows: Any) -> Any: ...


_UNSET: Any = object()

SESSION_COLUMNS = (
    "id",
    "name",
    "sprint",
    "host",
    "pid",
    "pid_started",
    "started",
    "heartbeat",
    "python",
    "platform",
    "nbexp_version",
    "notebook",
    "kernel_id",
)
RUN_SYSTEM_COLUMNS = ("cpu_mean", "rss_peak_mb", "gpu_util_mean", "gpu_util_max", "gpu_mem_peak_mb", "energy_wh")
CELL_END = (
    "UPDATE cells SET run_id = ?, code_hash = ?, duration = ?, status = ?, n_points = ?, error_type = ?, "
    "error_message = ?, cpu_mean = ?, rss_peak_mb = ?, gpu_util_mean = ?, gpu_util_max = ?, "
    "gpu_mem_peak_mb = ?, energy_wh = ?, torch_mem_peak_mb = ?, torch_reserved_peak_mb = ?, idle_hint = ?, "
    "execution_count = ? WHERE session_id = ? AND start = ? AND cell_key = ?"
)
INSERT_DATASET = (
    "INSERT OR IGNORE INTO datasets (fingerprint, kind, shape, exact_fingerprint, sampled, summary, "
    "created) VALUES (?,?,?,?,?,?,?)"
)
LINK_DATA = "INSERT OR REPLACE INTO run_data (run_id, name, fingerprint, role, time) VALUES (?,?,?,?,?)"
INSERT_PARAM = "INSERT OR REPLACE INTO params (run_id, key, value, type, source) VALUES (?, ?, ?, ?, ?)"
INSERT_EVENT = "INSERT INTO events (session_id, run_id, time, level, cause, message) VALUES (?,?,?,?,?,?)"


class Store:
    """The ledger's writes, over one execute sink.

    Args:
        sink: a :class:`~nbexp.ledger.writer.Writer` (statements are queued, written by its
            thread) or a writable :class:`sqlite3.Connection` (statements run at once: wrap a
            method that writes several rows in :func:`~nbexp.ledger.transactions.transaction`).
        scrub: replaces the secrets in a text (``nbexp.capture.secrets.scrub_text``); applied to
            every name, note, tag, label and message before it is stored.
    """

    def __init__(self, sink: Sink, *, scrub: Callable[[str], str]) -> None:
        self.sink = sink
        self._scrub = scrub

    def _text(self, text: str | None) -> str | None:
        """``text`` with its secrets replaced; None and "" stay as they are."""
        return self._scrub(text) if text else text

    @property
    def points(self):
        """The writer's queue of metric points ``(run_id, key, step, value, wall)``: append to it."""
        return self.sink.points  # a writer sink only

    def add_points(self, points: Iterable[tuple]) -> None:
        """Queue metric points ``(run_id, key, step, value, wall)`` (a writer sink only)."""
        self.sink.points.extend(points)  # type: ignore[attr-defined]

    def metric_source(self, run_id: str, key: str, source: str) -> None:
        """Say where a run's metric came from (its first source stays: a found metric is never re-labelled)."""
        self.sink.execute(
            "INSERT OR IGNORE INTO metric_sources (run_id, key, source) VALUES (?, ?, ?)", (run_id, key, source)
        )

    def run_table(self, run_id: str, name: str, source: str | None, columns: str, rows: str) -> None:
        """Keep a result table with a run (``columns`` and ``rows`` already JSON); the same name replaces it."""
        self.sink.execute(
            "INSERT OR REPLACE INTO run_tables (run_id, name, source, columns, rows) VALUES (?, ?, ?, ?, ?)",
            (run_id, name, source, columns, rows),
        )

    # -- sessions ---------------------------------------------------------------------------
    def open_session(self, row: dict[str, Any]) -> None:
        """Insert a session: ``row`` has the :data:`SESSION_COLUMNS` (``notebook`` is scrubbed)."""
        row = dict(row, notebook=self._text(row.get("notebook")) or None)
        self.sink.execute(
            f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)}) VALUES ({','.join('?' * len(SESSION_COLUMNS))})",
            tuple(row.get(c) for c in SESSION_COLUMNS),
        )

    def mark_crashed(self, host: str, pid: int, session_id: str) -> None:
        """Mark ``crashed`` the runs still ``running`` of earlier sessions of this host and pid
        (a kernel restarted in the same process: the old one cannot be running anymore)."""
        self.sink.execute(
            "UPDATE runs SET status = ? WHERE status = ? AND session_id IN "
            "(SELECT id FROM sessions WHERE host = ? AND pid = ? AND id != ?)",
            (CRASHED, RUNNING, host, pid, session_id),
        )

    def set_session_system(
        self, session_id: str, gpus: str | None, driver: str | None, note: str | None, sample_hz: float
    ) -> None:
        """The session's GPUs (JSON), driver, sampler description and sampling rate."""
        self.sink.execute(
            "UPDATE sessions SET gpus = ?, driver = ?, system_note = ?, sample_hz = ? WHERE id = ?",
            (gpus, driver, note, sample_hz, session_id),
        )

    def store_git(self, session_id: str, git_commit: str | None, git_dirty: bool | None) -> None:
        """The session's git state (the commit and whether the tree differs from it)."""
        self.sink.execute(
            "UPDATE sessions SET git_commit = ?, git_dirty = ? WHERE id = ?",
            (git_commit, None if git_dirty is None else int(git_dirty), session_id),
        )

    def store_packages(self, session_id: str, env_id: str, packages: str, cuda: str | None) -> None:
        """The session's installed packages (stored once per distinct set) and CUDA."""
        self.sink.execute("INSERT OR IGNORE INTO environments (id, packages) VALUES (?, ?)", (env_id, packages))
        self.sink.execute("UPDATE sessions SET env_id = ?, cuda = ? WHERE id = ?", (env_id, cuda, session_id))

    def set_sync_state(self, session_id: str, uri: str, state: str, behind: int, at: float) -> None:
        """The live sync's last word for a session (``synced``, ``behind by N points``, ``server unreachable``):
        the URI without credentials, scrubbed like any text."""
        value = {"uri": self._text(uri), "state": self._text(state), "behind": int(behind), "at": at}
        self.sink.execute("UPDATE sessions SET sync_state = ? WHERE id = ?", (json.dumps(value), session_id))

    def end_session(self, session_id: str, ended: float) -> None:
        self.sink.execute("UPDATE sessions SET ended = ?, heartbeat = ? WHERE id = ?", (ended, ended, session_id))

    def label_sprint(
        self, sprint_id: str, name: str | None = None, hypothesis: str | None = None, conclusion: str | None = None
    ) -> None:
        """Name a sprint and set its hypothesis or conclusion; None keeps what is there."""
        self.sink.execute(
            "INSERT INTO sprints (id, name, hypothesis, conclusion) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name = coalesce(excluded.name, name), "
            "hypothesis = coalesce(excluded.hypothesis, hypothesis), "
            "conclusion = coalesce(excluded.conclusion, conclusion)",
            (sprint_id, self._text(name) or None, self._text(hypothesis) or None, self._text(conclusion) or None),
        )

    def add_samples(self, session_id: str, host: dict, gpus: list[dict]) -> None:
        """One system sample: the process and host, and each GPU."""
        self.sink.execute(
            "INSERT INTO host_samples (session_id, time, proc_cpu, proc_rss_mb, proc_threads, sys_cpu, sys_mem) "
            "VALUES (?,?,?,?,?,?,?)",
            (
                session_id,
                host["time"],
                host["proc_cpu"],
                host["proc_rss_mb"],
                host["proc_threads"],
                host["sys_cpu"],
                host["sys_mem"],
            ),
        )
        self.sink.executemany(
            "INSERT INTO gpu_samples (session_id, time, gpu, util, mem_util, mem_used_mb, mem_total_mb, "
            "power_w, power_limit_w, temp_c, sm_clock_mhz, proc_mem_mb) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    session_id,
                    g["time"],
                    g["gpu"],
                    g["util"],
                    g["mem_util"],
                    g["mem_used_mb"],
                    g["mem_total_mb"],
                    g["power_w"],
                    g["power_limit_w"],
                    g["temp_c"],
                    g["sm_clock_mhz"],
                    g["proc_mem_mb"],
                )
                for g in gpus
            ],
        )

    def add_event(self, session_id: str, run_id: str | None, time: float, level: str, cause: str, message: str) -> None:
        """A warning (or other event) of a session, for the run it concerns (scrubbed)."""
        self.sink.execute(INSERT_EVENT, (session_id, run_id, time, level, cause, self._text(message)))

    # -- runs ---------------------------------------------------------------------------------
    def open_run(
        self,
        run_id: str,
        session_id: str,
        sprint: str,
        name: str | None,
        kind: str,
        start_time: float,
        replay_of: str | None = None,
    ) -> None:
        """A new run, ``running`` (its name scrubbed)."""
        self.sink.execute(
            "INSERT INTO runs (id, session_id, sprint, name, kind, status, start_time, replay_of) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (run_id, session_id, sprint, self._text(name), kind, RUNNING, start_time, replay_of),
        )

    def end_run(self, run_id: str, status: str, end_time: float, error: str | None) -> None:
        """Close a run with its final status (one of :data:`~nbexp.ledger.schema.RUN_STATUSES`)."""
        self.sink.execute(
            "UPDATE runs SET status = ?, end_time = ?, error = ? WHERE id = ?", (status, end_time, error, run_id)
        )

    def set_run_system(self, run_id: str, stats: dict[str, Any], gpu_count: int | None, idle_hint: str | None) -> None:
        """A run's resource use over its lifetime (``stats`` has :data:`RUN_SYSTEM_COLUMNS`)."""
        self.sink.execute(
            f"UPDATE runs SET {', '.join(c + ' = ?' for c in RUN_SYSTEM_COLUMNS)}, gpu_count = ?, idle_hint = ? "
            "WHERE id = ?",
            (*(stats[c] for c in RUN_SYSTEM_COLUMNS), gpu_count, idle_hint, run_id),
        )

    def set_params(self, run_id: str, params: Iterable[tuple[str, str, str, str]]) -> None:
        """Insert or replace params: ``(key, value as JSON, type, source)`` each."""
        self.sink.executemany(INSERT_PARAM, [(run_id, *p) for p in params])

    def delete_params(self, run_ids: Iterable[str], patterns: list[str]) -> None:
        """Remove from the runs every param a pattern names: the key itself, the keys under it
        (``opt`` takes ``opt.lr``) or the keys its glob matches."""
        self.sink.executemany(
            "DELETE FROM params WHERE run_id = ? AND (key = ? OR key LIKE ? ESCAPE '\\' OR key GLOB ?)",
            [
                (rid, n, n.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%", n)
                for rid in run_ids
                for n in patterns
            ],
        )

    def drop_params(self, run_id: str, keys: Iterable[str]) -> None:
        """Remove exactly these keys from a run's params (no patterns)."""
        self.sink.executemany("DELETE FROM params WHERE run_id = ? AND key = ?", [(run_id, k) for k in keys])

    def add_tags(self, run_id: str, tags: Iterable[str]) -> None:
        """Tag a run (scrubbed; a tag it has already is kept once)."""
        self.sink.executemany(
            "INSERT OR IGNORE INTO run_tags (run_id, tag) VALUES (?, ?)", [(run_id, self._text(t)) for t in tags]
        )

    def remove_tags(self, run_id: str, tags: Iterable[str]) -> None:
        self.sink.executemany("DELETE FROM run_tags WHERE run_id = ? AND tag = ?", [(run_id, t) for t in tags])

    def set_note(self, run_id: str, note: str | None) -> None:
        self.sink.execute("UPDATE runs SET note = ? WHERE id = ?", (self._text(note), run_id))

    def edit_run(
        self,
        run_id: str,
        *,
        name: str | None = _UNSET,
        note: str | None = _UNSET,
        starred: bool = _UNSET,
        add_tags: Iterable[str] = (),
        remove_tags: Iterable[str] = (),
    ) -> None:
        """What a person edits on a run (the sidebar's PATCH): its name, note, star and tags.
        A field left out is not touched; None clears a name or note. On a connection, run it
        inside :func:`~nbexp.ledger.transactions.transaction` so the edit lands whole."""
        sets: dict[str, Any] = {}
        if starred is not _UNSET:
            sets["starred"] = int(starred)
        if name is not _UNSET:
            sets["name"] = self._text(name)
        if note is not _UNSET:
            sets["note"] = self._text(note)
        if sets:
            self.sink.execute(
                f"UPDATE runs SET {', '.join(k + ' = ?' for k in sets)} WHERE id = ?", (*sets.values(), run_id)
            )
        self.add_tags(run_id, add_tags)
        self.remove_tags(run_id, remove_tags)

    # -- cells ----------------------------------------------------------------------------------
    def store_code(self, code_hash: str, source: str) -> None:
        """A cell's text, once per distinct text (already scrubbed by the code capture)."""
        self.sink.execute("INSERT OR IGNORE INTO code (hash, source) VALUES (?, ?)", (code_hash, source))

    def start_cell(
        self,
        session_id: str,
        run_id: str | None,
        cell_key: str,
        execution_count: int | None,
        code_hash: str,
        source: str,
        start: float,
    ) -> None:
        """A cell as it starts (its code and a ``running`` cell row), so a kernel that dies in it leaves both."""
        self.store_code(code_hash, source)
        self.sink.execute(
            "INSERT INTO cells (session_id, run_id, cell_key, execution_count, code_hash, start, status) "
            "VALUES (?,?,?,?,?,?,?)",
            (session_id, run_id, cell_key, execution_count, code_hash, start, RUNNING),
        )

    def end_cell(
        self,
        session_id: str,
        cell_key: str,
        start: float,
        *,
        run_id: str | None,
        code_hash: str,
        duration: float,
        status: str,
        n_points: int,
        error_type: str | None,
        error: str | None,
        stats: dict[str, Any],
        torch_peaks: tuple | None,
        idle_hint: str | None,
        execution_count: int | None,
    ) -> None:
        """How a cell ended: its run, final code, duration, status, error, resource use and execution count (the one
        the notebook shows, known for sure once the cell ran)."""
        self.sink.execute(
            CELL_END,
            (
                run_id,
                code_hash,
                duration,
                status,
                n_points,
                error_type,
                error,
                stats["cpu_mean"],
                stats["rss_peak_mb"],
                stats["gpu_util_mean"],
                stats["gpu_util_max"],
                stats["gpu_mem_peak_mb"],
                stats["energy_wh"],
                torch_peaks[0] if torch_peaks else None,
                torch_peaks[1] if torch_peaks else None,
                idle_hint,
                execution_count,
                session_id,
                start,
                cell_key,
            ),
        )

    def move_cells(self, session_id: str, from_run: str, to_run: str, since: float) -> None:
        """The cells of run ``from_run`` that started at ``since`` or later (and what they showed) are run ``to_run``'s:
        the next run turned out to begin with them (the data filter edited and re-run, found when the split read it)."""
        for table in ("cells", "cell_outputs"):
            self.sink.execute(
                f"UPDATE {table} SET run_id = ? WHERE session_id = ? AND run_id = ? AND start >= ?",
                (to_run, session_id, from_run, since),
            )

    def close_cell(self, session_id: str, cell_key: str, start: float, duration: float, status: str) -> None:
        """End a cell whose end will not be seen (tracking stopped inside it)."""
        self.sink.execute(
            "UPDATE cells SET duration = ?, status = ? WHERE session_id = ? AND start = ? AND cell_key = ?",
            (duration, status, session_id, start, cell_key),
        )

    # -- data ------------------------------------------------------------------------------------
    def store_dataset(
        self, fingerprint: str, kind: str, shape: str, exact: bool, sampled: bool, summary: str, created: float
    ) -> None:
        """A data summary, once per fingerprint (``shape`` and ``summary`` as JSON)."""
        self.sink.execute(INSERT_DATASET, (fingerprint, kind, shape, int(exact), int(sampled), summary, created))

    def link_run_data(self, run_ids: Iterable[str], name: str, fingerprint: str, role: str | None, time: float) -> None:
        """The data named ``name`` (with this fingerprint and role) was used by each of the runs."""
        self.sink.executemany(LINK_DATA, [(rid, name, fingerprint, role, time) for rid in run_ids])

    def copy_run_data(self, from_run: str, to_run: str) -> None:
        """Link the data of run ``from_run`` to run ``to_run`` too, except names ``to_run`` has linked itself."""
        self.sink.execute(
            "INSERT OR IGNORE INTO run_data (run_id, name, fingerprint, role, time) "
            "SELECT ?, name, fingerprint, role, time FROM run_data WHERE run_id = ?",
            (to_run, from_run),
        )

    # -- outputs and artifacts -------------------------------------------------------------------
    def store_blob(self, digest: str, mime: str, data: bytes) -> None:
        """Content, once per SHA-256 (``digest``, hex, computed by the caller; text already scrubbed)."""
        self.sink.execute(
            "INSERT OR IGNORE INTO blobs (hash, mime, size, data) VALUES (?, ?, ?, ?)",
            (digest, mime, len(data), bytes(data)),
        )

    def add_cell_outputs(
        self, session_id: str, cell_key: str, start: float, run_id: str, outputs: Iterable[tuple]
    ) -> None:
        """What one cell execution (keyed like ``cells``: session, cell key, start) showed in ``run_id``:
        ``(seq, kind, mime, hash, size)`` each, the content stored with :meth:`store_blob`."""
        self.sink.executemany(
            "INSERT OR IGNORE INTO cell_outputs (session_id, cell_key, start, run_id, seq, kind, mime, hash, size) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [(session_id, cell_key, start, run_id, *o) for o in outputs],
        )

    def add_artifact(
        self, run_id: str, name: str, path: str | None, size: int, sha256: str, stored: bool, time: float
    ) -> None:
        """A file or object a run logged (its name and path scrubbed); the same name replaces it."""
        self.sink.execute(
            "INSERT OR REPLACE INTO artifacts (run_id, name, path, size, sha256, stored, time) VALUES (?,?,?,?,?,?,?)",
            (run_id, self._text(name), self._text(path) or None, size, sha256, int(stored), time),
        )

    # -- explanations ----------------------------------------------------------------------------
    def open_explanation(self, explanation_id: str, run_a: str, run_b: str, metric: str, created: float) -> None:
        """An explanation whose ablation replays are under way (``running``)."""
        self.sink.execute(
            "INSERT INTO explanations (id, run_a, run_b, metric, created, status) VALUES (?, ?, ?, ?, ?, 'running')",
            (explanation_id, run_a, run_b, metric, created),
        )

    def link_ablation(self, run_id: str, explanation_id: str, factor: str) -> None:
        """``run_id`` is a replay an explanation ran, with ``factor`` reverted ('' for none: the noise)."""
        self.sink.execute(
            "INSERT OR REPLACE INTO ablation_of (run_id, explanation_id, factor) VALUES (?, ?, ?)",
            (run_id, explanation_id, factor),
        )

    def end_explanation(self, explanation_id: str, status: str, result: str | None) -> None:
        """The explanation's outcome: ``finished`` or ``failed``, and its result (JSON)."""
        self.sink.execute(
            "UPDATE explanations SET status = ?, result = ? WHERE id = ?", (status, result, explanation_id)
        )
