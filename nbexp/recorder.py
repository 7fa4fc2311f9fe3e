"""The explicit :class:`Run`: one experiment being recorded.

``nbexp.log``, ``nbexp.log_params`` and ``nbexp.run`` are thin calls over the
active :class:`Run`; tests and exporters use it directly.
"""

from __future__ import annotations

import hashlib
import json
import math
import mimetypes
import os
import time
from typing import Any, Callable

from .capture.metrics import as_scalar
from .capture.modules import PREFIX as MODULES
from .capture.params import Skipped, encode, normalize, value_type
from .capture.secrets import scrub_text, scrub_value
from .errors import InvalidArgument
from .ledger.schema import FAILED, FINISHED, INTERRUPTED, RUNNING
from .notices import error_text
from .textfmt import jsonable, storable_text

MAX_STEP = 2**63 - 1  # SQLite's largest INTEGER
ARTIFACT_COPY_MAX = 10 * 1024 * 1024  # artifacts up to this many bytes are copied into the ledger


def _cell_value(value: Any) -> Any:
    """A table cell as strict JSON: numbers (NumPy's too) as numbers; text, bool and None kept; the rest as text."""
    if value is None or isinstance(value, (str, bool)):
        return value
    number = as_scalar(value)
    if number is not None:
        return jsonable(number)
    return storable_text(str(value))[:200]


class Run:
    """One run of a tracked session.

    Create runs through a session (``%nbexp track``, ``%nbexp new``,
    ``nbexp.run(...)``), not directly. A run knows its session only through what it is
    handed: the ``store`` it writes to, the writer's ``points`` queue ``log()`` appends to,
    ``is_excluded`` (the session's ``--exclude`` patterns) and ``on_end``, called once
    with the run when it ends.
    """

    def __init__(
        self,
        run_id: str,
        name: str | None,
        kind: str,
        params: dict[str, Any],
        *,
        store: Any,
        points: Any,
        is_excluded: Callable[[str], bool],
        on_end: Callable[[Run], None],
    ) -> None:
        self.store = store
        self._is_excluded = is_excluded
        self._on_end = on_end
        self.id = run_id
        self.name = name
        self.kind = kind
        self.start_time = time.time()
        self.end_time: float | None = None
        self.status = RUNNING
        self.error: str | None = None
        self.params: dict[str, Any] = {}
        # Segmentation (see nbexp/runbook.py RunBook.reason): once a training cell ran in this run, it is
        # frozen: a changed value opens the next run instead of rewriting this one's params.
        self.frozen = False
        self.training_cells: set[str] = set()  # cell ids and code hashes that trained in this run
        self.models: set[str] = set()  # names it trained through
        self.inputs: set[str] = set()  # names its training cells read, and the globals their training functions read
        # names in its slice bound to models as it trained (fit/predict objects, torch modules): a later training
        # that reads none of them, nor a name it trained through, is another training, even on the same data
        self.estimators: set[str] = set()
        self.noting: set[str] | None = None  # while a cell's capture runs: the keys it found (log_found)
        self.eval_metrics: set[str] = set()  # names of the metrics computed by cells that do not train
        self.eval_keys: set[str] = set()  # their keys in the run (RunBook.metric_key: train_acc for acc on X_train)
        self.eval_printed: set[str] = set()  # metrics printed by cells that do not train (print(f"Accuracy: ..."))
        self.modules: dict[str, str] = {}  # the notebook's modules it trained with: artifact name -> SHA-256 kept
        # its evaluation cells (cells that computed metrics but do not train): cell id (or text's hash without
        # ids) -> (the text's hash, what it computed); the same text run again opens the next run only if it
        # computes something else (RunBook.screen: "after")
        self.eval_cells: dict[str, tuple[str, dict[str, Any]]] = {}
        # Params (see nbexp/dataflow.py Dataflow.slice_params): once it trains, its params are those of the
        # names its training and evaluation cells depended on (the backward slice), plus the explicit ones.
        self.slice: set[str] = set()  # names its training and evaluation depended on
        self.explicit: set[str] = set()  # params set explicitly: never dropped from it
        self._roots: set[str] | None = None  # the names its params hang from (param_roots)
        self._sources: dict[str, str] = {}  # key -> how it was set (assign, default, explicit, ...)
        # a param recorded as its model was built with it (source built): the value its name held when the run trained
        self.unused: dict[str, Any] = {}
        self.n_points = 0
        self.n_cells = 0
        self.metric_keys: set[str] = set()
        self.metric_sources: dict[str, str] = {}  # found metrics: key -> where (none for nbexp.log)
        self._next_step = 0
        self._auto_steps: dict[str, int] = {}
        self._last_cell_status = "ok"
        self._last_cell_error: str | None = None
        self.idle_hint: str | None = None
        self.window: Any = None  # the system sampler's window over this run
        self._points = points  # the writer's queue, bound once for log()
        self.set_params(params, source=None)

    # -- logging --------------------------------------------------------------
    def log(self, step: int | None = None, **metrics: Any) -> None:
        """Record metric points at ``step`` (default: one past the last step).

        Args:
            step: a non-negative int; None continues from the previous call.
            **metrics: names to real-number scalars (Python, NumPy, 0-d tensors).

        Raises:
            InvalidArgument: nothing given, a bad step, a non-identifier name or
                a value that is not a real scalar. Nothing is recorded then.

        Example:
            >>> run.log(loss=0.25, acc=0.91)            # doctest: +SKIP
        """
        if self.status != RUNNING:
            raise InvalidArgument(f"run {self.id} has ended ({self.status}); open a new one with nbexp.run()")
        if not metrics:
            raise InvalidArgument("nbexp.log() got no metrics: pass at least one, e.g. nbexp.log(loss=0.25)")
        if step is None:
            step = self._next_step
        elif type(step) is not int:
            step = _check_step(step)
        elif not 0 <= step <= MAX_STEP:
            raise InvalidArgument(f"nbexp.log(step=...) must be an int from 0 to 2**63-1; got {step}")
        if step > MAX_STEP:  # the step after 2**63-1
            raise InvalidArgument("nbexp.log: the next step would pass 2**63-1; pass step= explicitly")
        values = []
        for key, value in metrics.items():
            if not key.isidentifier():
                raise InvalidArgument(f"nbexp.log: metric name {key!r} is not an identifier; use letters, digits and _")
            t = type(value)
            if t is float:
                v = value if value == value else None  # NaN is stored as NULL
            elif t is int:
                v = _int_value(key, value)
            else:
                v = _check_value(key, value)
            values.append((key, v))
        wall = time.time()
        append = self._points.append
        rid = self.id
        for key, v in values:
            append((rid, key, step, v, wall))
            if key not in self.metric_keys:
                self.metric_keys.add(key)
        self.n_points += len(values)
        self._next_step = step + 1

    def log_auto(self, key: str, value: float) -> None:
        """Record a metric found in the namespace (one point per cell that set it)."""
        self.log_found(key, value, source="namespace")

    def log_found(self, key: str, value: float, *, source: str, step: int | None = None) -> None:
        """Record a metric nbexp found without a call, saying where (``source``: namespace, stdout,
        result, keras, sklearn, xgboost, lightgbm). ``step`` None: one past the last step found for
        ``key`` in this run, so a value found once per cell becomes a curve over the cells.

        A key keeps its first source; the sources are what listings show next to a number.
        """
        if step is None:
            step = self._auto_steps.get(key, 0)
        self._auto_steps[key] = max(step + 1, self._auto_steps.get(key, 0))
        self._points.append((self.id, key, step, None if math.isnan(value) else value, time.time()))
        if self.noting is not None:
            self.noting.add(key)
        if key not in self.metric_sources:
            self.metric_sources[key] = source
            self.store.metric_source(self.id, key, source)
        self.metric_keys.add(key)
        self.n_points += 1

    def log_table(self, name: str, columns: list[str], rows: list[list[Any]], *, source: str) -> None:
        """Keep a result table with this run (a search's ``cv_results_``): plain values only, the rest as text."""
        rows = [[_cell_value(v) for v in row] for row in rows]
        self.store.run_table(self.id, name, source, json.dumps([str(c) for c in columns]), json.dumps(rows))

    def log_artifact(self, path_or_object: Any, name: str | None = None) -> dict[str, Any]:
        """Record a file, or some bytes, as an artifact of this run: its name, path, size and SHA-256;
        the content itself is copied into the ledger when it is at most :data:`ARTIFACT_COPY_MAX`
        bytes, so the run keeps its model even after the file is overwritten.

        Args:
            path_or_object: a file's path (``str`` or ``os.PathLike``), or ``bytes`` (text: ``text.encode()``).
            name: the artifact's name in the run (default: the file's name; required for bytes).
                Logging a name again replaces that artifact.

        Returns:
            ``{"name", "path", "size", "sha256", "stored"}``.

        Raises:
            InvalidArgument: no such file, not a regular file, unreadable, a bytes object without a
                name, or a name that is not short text; nothing is recorded then.

        Example:
            >>> nbexp.log_artifact("model.joblib")                          # doctest: +SKIP
        """
        if self.status != RUNNING:
            raise InvalidArgument(f"run {self.id} has ended ({self.status}); open a new one with nbexp.run()")
        if name is not None and (type(name) is not str or not name.strip() or len(name) > 200 or "\x00" in name):
            raise InvalidArgument(
                f"nbexp.log_artifact(name=...) must be non-empty text of at most 200 characters; got {name!r:.60}"
            )
        if name is not None and name.startswith(MODULES):
            raise InvalidArgument(
                f"nbexp.log_artifact(name=...): names starting {MODULES!r} are the run's own modules (nbexp keeps "
                f"them); got {name!r:.60}"
            )
        if isinstance(path_or_object, (bytes, bytearray, memoryview)):
            if name is None:
                raise InvalidArgument("nbexp.log_artifact: bytes need a name=..., e.g. name='predictions.csv'")
            raw = bytes(path_or_object)
            data: bytes | None = raw
            path = None
            digest, size = hashlib.sha256(raw).hexdigest(), len(raw)
        elif isinstance(path_or_object, (str, os.PathLike)):
            data, path, digest, size = _read_artifact(path_or_object)
            name = name or os.path.basename(path)
        else:
            raise InvalidArgument(
                "nbexp.log_artifact(path_or_object=...) takes a file path (str or pathlib.Path) or bytes; "
                f"got {type(path_or_object).__name__}"
            )
        return self.keep_artifact(name, path, size, digest, data)

    def keep_artifact(self, name: str, path: str | None, size: int, digest: str, data: bytes | None) -> dict[str, Any]:
        """Store an artifact already read: its bytes copied when given and at most :data:`ARTIFACT_COPY_MAX`
        (``log_artifact`` and the files a cell wrote, :mod:`nbexp.capture.files`)."""
        stored = data is not None and size <= ARTIFACT_COPY_MAX
        if stored:
            self.store.store_blob(digest, mimetypes.guess_type(name)[0] or "application/octet-stream", data)
        self.store.add_artifact(self.id, name, path, size, digest, stored, time.time())
        return {"name": name, "path": path, "size": size, "sha256": digest, "stored": stored}

    def log_params(self, **params: Any) -> None:
        """Record params given explicitly (they win over captured ones).

        Raises:
            InvalidArgument: a value is not a plain param (number, string, bool,
                None or a short list of those); nothing is recorded then.
        """
        if not params:
            raise InvalidArgument("nbexp.log_params() got no params: pass some, e.g. nbexp.log_params(lr=0.1)")
        self.set_params(check_params(params, "nbexp.log_params"), source="explicit")

    def set_params(self, params: dict[str, Any], source: str | None) -> None:
        """Store already-normalized params on this run."""
        rows = []
        for key, value in params.items():
            if self._is_excluded(key):
                continue
            value = scrub_value(key, value)
            if (
                key in self.params
                and self.params[key] == value
                and type(self.params[key]) is type(value)
                and (source is None or self._sources.get(key) in (source, "explicit"))
            ):
                continue
            self.params[key] = value
            self._roots = None
            self._sources[key] = source or "assign"
            if source == "explicit":
                self.explicit.add(key)
            rows.append((key, encode(value), value_type(value), source or "assign"))
        self.store.set_params(self.id, rows)

    def param_source(self, key: str) -> str:
        """How param ``key`` was set: assign, default, explicit, ..."""
        return self._sources.get(key, "assign")

    def drop_params(self, keys: list[str]) -> None:
        """Remove params that turned out not to be this run's (outside its training's slice)."""
        keys = [k for k in keys if k in self.params and k not in self.explicit]
        for key in keys:
            del self.params[key]
        if keys:
            self._roots = None
            self.store.drop_params(self.id, keys)

    @property
    def param_roots(self) -> set[str]:
        """The names its params hang from (``clf`` of ``clf.C``, ``lr`` of ``lr``): what a cell's
        words are checked against before it runs (:meth:`~nbexp.runbook.RunBook.screen`)."""
        if self._roots is None:
            self._roots = {k.split(".", 1)[0] for k in self.params}
        return self._roots

    # -- lifecycle ------------------------------------------------------------
    def end(self, status: str | None = None, error: str | None = None, at: float | None = None) -> None:
        """Close the run: ``finished`` unless its last cell failed or was interrupted; ``at``: when
        it ended, if not now (the start of the cell found, after it ran, to open the next run)."""
        if self.status != RUNNING:
            return
        if status is None:
            status = {"ok": FINISHED, "error": FAILED, "interrupted": INTERRUPTED}[self._last_cell_status]
            error = error or self._last_cell_error
        self.status = status
        self.error = error
        self.end_time = time.time() if at is None else at
        self.store.end_run(self.id, status, self.end_time, error)
        self._on_end(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.end(FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(INTERRUPTED, "KeyboardInterrupt")
        else:
            self.end(FAILED, error_text(exc))

    def __repr__(self) -> str:
        return f"<nbexp.Run {self.id} {self.name or ''!s} {self.status}>"


def _read_artifact(path: str | os.PathLike) -> tuple[bytes | None, str, str, int]:
    """``(content or None when over the copy limit, absolute path, SHA-256, size)`` of a file, read once.

    Raises:
        InvalidArgument: no such file, not a regular file, or unreadable.
    """
    try:
        path = os.path.abspath(os.fspath(path))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"nbexp.log_artifact(path_or_object=...): not a usable path ({exc})") from None
    if not os.path.isfile(path):
        what = "is not a regular file" if os.path.exists(path) else "does not exist"
        raise InvalidArgument(f"nbexp.log_artifact(path_or_object=...): {path} {what}")
    try:
        data, digest, size = read_once(path)
    except OSError as exc:
        raise InvalidArgument(f"nbexp.log_artifact(path_or_object=...): cannot read {path} ({exc})") from None
    return data, path, digest, size


def read_once(path: str) -> tuple[bytes | None, str, int]:
    """``(content, or None when over the copy limit; SHA-256; size)`` of a file, read once in
    1 MiB chunks (a file of any size is hashed without holding it whole). Raises OSError."""
    h, size, chunks = hashlib.sha256(), 0, []
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
            if size <= ARTIFACT_COPY_MAX:
                chunks.append(chunk)
            else:
                chunks = []
    return (b"".join(chunks) if size <= ARTIFACT_COPY_MAX else None), h.hexdigest(), size


def check_params(params: dict[str, Any], where: str) -> dict[str, Any]:
    """``params`` normalized as stored, or :class:`InvalidArgument` naming the first bad one
    (checked before anything is written, so a bad call records nothing)."""
    clean = {}
    for key, value in params.items():
        if not key or not isinstance(key, str):
            raise InvalidArgument(f"{where}: param names must be non-empty strings; got {key!r}")
        if isinstance(value, dict):
            raise InvalidArgument(f"{where}: param {key!r} is a dict; pass its items as {key}.name=value")
        try:
            clean[key] = normalize(key, value)
        except Skipped:
            raise InvalidArgument(
                f"{where}: param {key!r} must be a number, string, bool, None or a short list "
                f"of those; got {type(value).__name__}"
            ) from None
    return clean


def check_name(name: Any, where: str) -> str | None:
    """A run name as stored: secrets scrubbed, text SQLite can hold; InvalidArgument if not text."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise InvalidArgument(f"{where}: the run name must be a string; got {type(name).__name__} {name!r}")
    return storable_text(scrub_text(name))


def _check_step(step: Any) -> int:
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise InvalidArgument(f"nbexp.log(step=...) must be a non-negative int; got {type(step).__name__} {step!r}")
    step = step.__index__()
    if not 0 <= step <= MAX_STEP:
        raise InvalidArgument(f"nbexp.log(step=...) must be an int from 0 to 2**63-1; got {step}")
    return step


def _int_value(key: str, value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        raise InvalidArgument(
            f"nbexp.log: metric {key!r} is an int too large for a float ({len(str(value))} digits)"
        ) from None


def _check_value(key: str, value: Any) -> float | None:
    v = as_scalar(value)
    if v is None:
        shown = repr(value)
        shown = shown if len(shown) < 40 else shown[:37] + "..."
        raise InvalidArgument(
            f"nbexp.log: metric {key!r} must be a real number (int, float, NumPy scalar or 0-d tensor); "
            f"got {type(value).__name__} {shown}"
        )
    return None if v != v else v
