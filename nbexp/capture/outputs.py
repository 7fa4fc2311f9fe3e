"""What a cell showed: its rich outputs and the tail of what it printed, kept with its run.

:class:`OutputCapture` watches a tracked shell the way a notebook sees it, without running
anything again:

- every ``display()`` goes through the shell's display publisher (``shell.display_pub``:
  ipykernel's ``ZMQDisplayPublisher`` in a kernel); its ``publish`` is wrapped on the instance,
  so matplotlib and seaborn figures (``image/png``), plotly figures
  (``application/vnd.plotly.v1+json``) and HTML tables (``text/html``) are seen as they are sent;
- the last expression's value goes through the display hook (``shell.displayhook``): its
  ``write_format_data`` is wrapped likewise, so a DataFrame left as the cell's last line keeps
  its HTML table and anything else its ``text/plain`` repr;
- the tail of the cell's stdout (its last :data:`STDOUT_TAIL` characters, from a line start) comes
  from the tee nbexp already has on ``sys.stdout`` (:class:`nbexp.capture.stdout.CellOutput`); a
  session without it (``--no-stdout-metrics``: no tee at all) keeps no stdout.

Of each display one representation is kept, the first of :data:`MIMES` it has (a figure's PNG,
not also its ``<Figure size 640x480>`` text). Text (HTML, plain text, plotly JSON, stdout) is
scrubbed of secrets with the same rules as code before it is hashed. Every output is stored once
per SHA-256 of its bytes (``blobs``) and referenced per cell execution (``cell_outputs``).

Budget: a run keeps outputs up to ``budget_mb`` megabytes (an output shown again in the same run
counts once). The output that would pass it, and every later one of that run, is not kept, and
one warning says so (also recorded with the run). ``budget_mb=0`` turns output capture off.
Displays inside ``%%capture`` go to that magic's own publisher and are not seen here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, Callable, Iterable

# the representations kept, best first: one per display
MIMES = ("image/png", "image/jpeg", "application/vnd.plotly.v1+json", "text/html", "text/plain")


TEXT_MIMES = frozenset({"application/vnd.plotly.v1+json", "text/html", "text/plain"})
STDOUT_TAIL = 20 * 1024  # characters of stdout kept per cell
BUDGET_MB = 50.0  # per run
MAX_PER_CELL = 100  # displays kept per cell (a loop that displays in every step keeps its first ones)
WIDGET = "application/vnd.jupyter.widget-view+json"  # live widgets: nothing to keep
_IMAGE_MAGIC = {"image/png": b"\x89PNG", "image/jpeg": b"\xff\xd8"}


def kept_mime(data: dict) -> str | None:
    """The one representation of a display that is kept (and compared): the first of ``MIMES`` it has."""
    return next((m for m in MIMES if data.get(m) not in (None, "", b"")), None)


def _bytes(mime: str, value: Any, scrub: Callable[[str], str]) -> bytes:
    """One representation as stored: images as their raw bytes (IPython hands them raw or
    base64-encoded), text scrubbed and UTF-8 encoded, plotly figures as JSON text."""
    if mime in _IMAGE_MAGIC:
        if isinstance(value, str):
            return base64.b64decode(value)
        value = bytes(value)
        return value if value.startswith(_IMAGE_MAGIC[mime]) else base64.b64decode(value)
    if mime == "application/vnd.plotly.v1+json" and not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"), default=str)
    elif isinstance(value, list):  # text given as lines
        value = "".join(map(str, value))
    elif isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return scrub(str(value)).encode("utf-8", "backslashreplace")


# how an output is named as a file (nbexp outputs --save, the W&B export): never .html or .svg, so a
# saved output is not a page that runs scripts when opened
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "application/vnd.plotly.v1+json": "plotly.json",
    "text/html": "html.txt",
    "text/plain": "txt",
}
_ACTIVE = (".html", ".htm", ".xhtml", ".svg", ".js", ".mjs")


def output_file_name(index: int, execution_count: int | None, seq: int, kind: str, mime: str) -> str:
    """``003-cell7-0-display.png``: the ``index``-th cell execution of a run (its prompt number when
    known, else ``index``), the output's place in it, its kind and an extension from its type."""
    count = execution_count if execution_count is not None else index
    return f"{index:03d}-cell{count}-{seq}-{kind}.{EXTENSIONS.get(mime, 'bin')}"


def artifact_file_path(name: str) -> str:
    """An artifact's name as a relative path that stays inside the folder it is written to:
    ``out/preds.csv`` kept, ``../x`` and ``/abs/model.pt`` folded in (``x``, ``abs/model.pt``), each
    part made of safe characters; a page or a script gets ``.txt`` added."""
    parts = [re.sub(r"[^\w.+-]+", "_", p).lstrip(".") for p in name.replace("\\", "/").split("/")]
    path = "/".join(p for p in parts if p) or "artifact"
    return path + ".txt" if path.lower().endswith(_ACTIVE) else path


def artifact_paths(names: Iterable[str]) -> dict[str, str]:
    """Each of a run's artifact names as the relative path it is written to (:func:`artifact_file_path`), one
    path per name: where two names fold into one (``out/a b.csv`` and ``out/a_b.csv``, or two spellings a
    case-insensitive disk takes for one), or one's file would be another's folder (``out`` and ``out/a.csv``), the
    later gets ``_`` added to the part in the way until it is free, so no file an export or ``nbexp outputs --save``
    writes replaces another or cannot be written. Names that are already safe paths claim theirs first, in name
    order (``x`` keeps ``x`` next to a ``../../x`` folded into it), then the others."""
    files: set[str] = set()
    folders: set[str] = set()
    out: dict[str, str] = {}
    for name in sorted(names, key=lambda n: (artifact_file_path(n) != n, n)):
        parts = artifact_file_path(name).split("/")
        for i in range(len(parts) - 1):  # a folder that is another name's file
            while "/".join(parts[: i + 1]).lower() in files:
                parts[i] += "_"
        while (rel := "/".join(parts)).lower() in files or rel.lower() in folders:
            parts[-1] += "_"
        files.add(rel.lower())
        folders.update("/".join(parts[: i + 1]).lower() for i in range(len(parts) - 1))
        out[name] = rel
    return out


def stdout_tail(text: str, limit: int = STDOUT_TAIL) -> str:
    """The last ``limit`` characters of ``text``, from a line start when there is one."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    nl = text.find("\n", cut - 1)
    return text[nl + 1 :] if 0 <= nl < len(text) - 1 else text[cut:]


class OutputCapture:
    """A tracked shell's cell outputs, handed to the ledger per cell execution.

    Args:
        shell: the IPython shell (its ``display_pub`` and ``displayhook`` are wrapped).
        store: the session's :class:`~nbexp.ledger.store.Store`.
        scrub: the secret scrubber applied to every text output.
        warn: ``warn(cause, message)``, the session's one-line warnings.
        stdout: returns the text the last cell printed (the session's tee); None: no stdout kept.
        budget_mb: megabytes of outputs kept per run.
        tail: characters of stdout kept per cell.
    """

    def __init__(
        self,
        shell: Any,
        store: Any,
        scrub: Callable[[str], str],
        warn: Callable[[str, str], None],
        stdout: Callable[[], str] | None = None,
        budget_mb: float = BUDGET_MB,
        tail: int = STDOUT_TAIL,
    ) -> None:
        self.shell, self.store, self.scrub, self.warn = shell, store, scrub, warn
        self.budget = int(budget_mb * 1024 * 1024)
        self.tail = tail
        self._stdout = stdout
        self._pending: list[tuple[str, dict]] = []  # (kind, mime bundle) of the running cell
        self._ids: dict[str, int] = {}  # display_id -> its place in _pending (an update replaces it)
        self._on = False
        self._dropped = 0
        self._used: dict[str, int] = {}  # run id -> bytes kept
        self._seen: dict[str, set[str]] = {}  # run id -> hashes kept (counted once)
        self._over: set[str] = set()  # runs past their budget
        self._stored: set[str] = set()  # hashes handed to the writer by this session
        self._wrapped: list[tuple[Any, str, Any]] = []  # (object, attribute, our wrapper)
        self.install()

    # -- hooks ------------------------------------------------------------------------------
    def install(self) -> None:
        """Wrap ``display_pub.publish`` and ``displayhook.write_format_data`` on their instances
        (again when the shell replaced them since)."""
        for obj, attr, kind in (
            (getattr(self.shell, "display_pub", None), "publish", "display"),
            (getattr(self.shell, "displayhook", None), "write_format_data", "result"),
        ):
            if obj is None or any(o is obj and a == attr for o, a, _ in self._wrapped):
                continue
            original = getattr(obj, attr, None)
            if original is None:
                continue
            wrapper = self._wrapper(original, kind)
            try:
                setattr(obj, attr, wrapper)
            except (AttributeError, TypeError):
                continue
            self._wrapped.append((obj, attr, wrapper))

    def _wrapper(self, original: Callable, kind: str) -> Callable:
        capture = self

        def wrapper(*args, **kwargs):
            if capture._on:
                try:
                    data = kwargs["data"] if "data" in kwargs else kwargs.get("format_dict", args[0] if args else None)
                    capture._seen_output(kind, data, kwargs.get("transient"))
                except Exception:
                    pass  # never in the way of the display itself
            return original(*args, **kwargs)

        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        return wrapper

    def _seen_output(self, kind: str, data: Any, transient: Any) -> None:
        if not isinstance(data, dict) or WIDGET in data:
            return
        display_id = transient.get("display_id") if isinstance(transient, dict) else None
        if display_id is not None and display_id in self._ids:  # an updated display: its last state
            self._pending[self._ids[display_id]] = (kind, data)
            return
        if len(self._pending) >= MAX_PER_CELL:
            self._dropped += 1
            return
        if display_id is not None:
            self._ids[display_id] = len(self._pending)
        self._pending.append((kind, data))

    def uninstall(self) -> None:
        """Take the wrappers out (where ours is still the attribute) and the stdout tee."""
        for obj, attr, wrapper in self._wrapped:
            try:
                if vars(obj).get(attr) is wrapper:
                    delattr(obj, attr)
            except (AttributeError, TypeError):
                pass
        self._wrapped = []
        self._on = False

    # -- per cell -----------------------------------------------------------------------------
    def start(self) -> None:
        """A cell starts: collect what it shows."""
        self._pending, self._ids, self._dropped = [], {}, 0
        self.install()
        self._on = True

    def end(self) -> list[tuple[str, dict]]:
        """The cell ended: stop collecting; what it showed, for :meth:`keep` (once the kernel replied)."""
        self._on = False
        pending, self._pending, self._ids = self._pending, [], {}
        return pending

    def keep(self, session_id: str, cell_key: str, start: float, run_id: str | None, pending: list) -> None:
        """Store what a cell showed (``pending``, from :meth:`end`) for ``run_id`` (None: keep
        nothing), before the next cell starts (its stdout tail is still readable). Never raises."""
        if run_id is None or run_id in self._over:
            return
        try:
            self._store(session_id, cell_key, start, run_id, pending)
        except Exception as exc:
            self.warn("outputs", f"outputs of a cell not kept ({type(exc).__name__}: {exc})")

    def _outputs(self, pending: list[tuple[str, dict]]) -> list[tuple[str, str, bytes]]:
        """``(kind, mime, bytes)`` of the cell's displays, its result and its stdout tail."""
        out = []
        for kind, data in pending:
            mime = kept_mime(data)
            if mime is None:
                continue
            try:
                out.append((kind, mime, _bytes(mime, data[mime], self.scrub)))
            except Exception as exc:
                self.warn("outputs", f"a {mime} output not kept ({type(exc).__name__}: {exc})")
        if self._dropped:
            self.warn("outputs", f"a cell displayed more than {MAX_PER_CELL} outputs: the first {MAX_PER_CELL} kept")
        text = stdout_tail(self._stdout() or "", self.tail) if self._stdout is not None else ""
        if text.strip():
            out.append(("stdout", "text/plain", self.scrub(text).encode("utf-8", "backslashreplace")))
        return out

    def _store(self, session_id: str, cell_key: str, start: float, run_id: str, pending: list) -> None:
        seen = self._seen.setdefault(run_id, set())
        used = self._used.get(run_id, 0)
        rows = []
        for seq, (kind, mime, data) in enumerate(self._outputs(pending)):
            digest = hashlib.sha256(data).hexdigest()
            if digest not in seen:
                if used + len(data) > self.budget:
                    self._over.add(run_id)
                    self.warn(
                        "outputs-budget",
                        f"run {run_id} reached its outputs budget of {self.budget / 1048576:g} MB: its later "
                        "outputs are not kept (%nbexp track --outputs-budget MB sets it)",
                    )
                    break
                used += len(data)
                seen.add(digest)
            if digest not in self._stored:
                self.store.store_blob(digest, mime, data)
                self._stored.add(digest)
            rows.append((seq, kind, mime, digest, len(data)))
        self._used[run_id] = used
        self.store.add_cell_outputs(session_id, cell_key, start, run_id, rows)
