"""Sessions and run segmentation: the IPython event hooks.

A :class:`Session` is one tracked kernel. Its ``pre_run_cell`` hook decides
whether a new run opens *before* the cell runs (a run is one training and its
evaluation: see :meth:`nbexp.runbook.RunBook.reason`) and stores the cell as it starts (code once per distinct text,
start, status ``running``), so a kernel that dies inside a cell leaves it behind;
its ``post_run_cell`` hook stores how the cell ended (duration, ok/error/interrupted,
resource use) and captures params and metrics from the cell's code and the
objects it names. Everything is handed to the ledger's
writer thread; nothing here waits for the disk.
"""

from __future__ import annotations

import ast
import atexit
import fnmatch
import gc
import json
import os
import re
import secrets
import signal
import sqlite3
import sys
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any, Callable

from . import __version__
from .capture import code as code_capture
from .capture import environment, files, results, system
from .capture.metrics import as_scalar, metric_name_pattern
from .capture.modules import LocalModules
from .capture.outputs import BUDGET_MB, OutputCapture, kept_mime
from .capture.params import Skipped, flatten, from_literals, from_object
from .capture.secrets import scrub_text
from .capture.stdout import PrintedMetrics
from .capture.texts import HOLD_S, Texts
from .capture.training import DataUse, Training, cell_tree
from .dataflow import MISSING, PLAIN, Dataflow
from .datawatch import DataWatcher, is_model
from .errors import NotTracking
from .ledger import connect, resolve_path, sprint_of
from .ledger.queries import Reader
from .ledger.store import Store
from .ledger.writer import Writer
from .notices import Notices, error_text
from .recorder import Run, check_name, check_params
from .runbook import RunBook
from .textfmt import count

_session: Session | None = None
# a cell that opens a run itself: no automatic run opens before it
_OPENS_RUN = re.compile(r"^\s*%%?nbexp\s+(new|track|run)\b", re.MULTILINE)


def active_session() -> Session | None:
    return _session


def active_run() -> Run:
    """The run that ``nbexp.log`` writes to: the innermost ``nbexp.run`` block,
    else the session's current run.

    Raises:
        NotTracking: no session is tracking.
    """
    s = _session
    if s is None:
        raise NotTracking(
            "nbexp is not tracking: run %nbexp track in the notebook, or use `with nbexp.run(...)` in a script"
        )
    if s.stack:
        return s.stack[-1]
    return s.ensure_run()


_UNREAD = object()


class _Cell:
    """The cell being executed, from pre_run_cell to post_run_cell."""

    __slots__ = (
        "key",
        "hash",
        "stored_hash",
        "source",
        "start",
        "count",
        "shell_count",
        "run",
        "points_before",
        "magic",
        "end_run",
        "result",
        "window",
        "decide_after",
        "repeat",
        "carried",
        "torch_before",
        "outcome",
        "showed",
        "trained",
    )

    def __init__(self, key, code_hash, source, start, count, run, magic, shell_count):
        self.key, self.hash, self.source, self.start = key, code_hash, source, start
        self.stored_hash = code_hash  # the text stored when the cell started
        self.count, self.run, self.magic = count, run, magic
        self.shell_count = shell_count  # the shell's execution_count as it started (count: the In[N] shown)
        self.points_before = run.n_points if run else 0
        self.end_run = False  # %%nbexp run: the run ends with the cell
        self.result: Any = None  # %%nbexp run: the body's own ExecutionResult
        self.window: Any = None  # the system sampler's window over the cell
        self.decide_after = False  # whether it opens the next run is decided once it ran (RunBook.screen)
        self.repeat = False  # an evaluation run again that computed what it computed before: nothing new to record
        self.carried = False  # it opened a run that evaluates the trained run's model again (RunBook.carry)
        self.torch_before: Any = None  # torch's CUDA memory peaks when the cell started
        self.outcome: Any = _UNREAD  # what it computed, as an evaluation (Session._outcome), once read
        self.showed: list = []  # what it displayed (OutputCapture.end), once it ran
        self.trained = False  # it trained its run (Session._capture)


_HANDOVER_S = 0.0002  # the GIL switch interval while a cell's capture runs in a kernel (see _hook_kernel)
_YIELD_S = 0.001  # the time left to the kernel to send a reply before a capture that parses a new cell
# The longest a capture waits, the GIL free, for the kernel's shell-channel thread to send the execute
# reply (ipykernel 7; see _hook_kernel). Captured meanwhile, the thread and the capture took turns at the
# GIL at every step of the send, each turn up to the switch interval (the kernel bench's A/B stayed within
# its noise: bench/RESULTS.md, issue 15, 2026-11-26 21:41).
_REPLY_WAIT_S = 0.005
# The analysis child (nbexp.capture.texts) starts this long after %nbexp track: started at once, its start
# (0.1 s of imports, even at nice 10) made the first cells after track slower on a busy 2-core machine
# (bench/RESULTS.md, issue 15, 14:00-14:14 UTC); until then new texts are read in the kernel, as before.
_CHILD_AFTER_S = 2.0
# A kernel's installed packages are listed this long after %nbexp track, after the analysis child's start: the
# listing, a child process of ~0.4 s of CPU, slowed the first cells after track on a 2-core machine, whatever its
# priority (bench/RESULTS.md, issue 15, "the package listing moved after them"). git's state is read at once.
_PACKAGES_AFTER_S = _CHILD_AFTER_S + 1.0
# A cell that starts within this long of the previous cell's capture follows it in a run of cells ("Run All",
# cells queued with Shift-Enter): its own capture will delay the next cell, so the analysis child reads
# its new text at once, beside it. A cell a person started (later) has the child hold its text (HOLD_S): a short
# cell's text is handed to the child once its reply has left, and the capture waits for the answer (the GIL free),
# off the path of a cell the person waits for (bench/RESULTS.md, issue 15). A kernel takes ~10 ms from one cell's
# capture to the next queued cell's start on the 2-core bench machine; no person starts a cell 50 ms after the
# last one ended.
_FOLLOWS_S = 0.05
_RAN_KEPT = 200  # the last cells a session remembers, to find where a run begins (see Session._made_since)
# How long the capture after a short cell's reply waits for the child to read its new text (then it is read in
# the kernel): a fixed part and a part per line, several times what the child takes on the 2-core bench machine
# (1.5 ms for 5 lines, 4.7 ms for 50, 16 ms for 200: about what the kernel itself takes, and 1 ms more). Read in
# the kernel instead, the parse made the next cell's own work slower, by 0.2-0.3 ms for a 50-line text
# (bench/RESULTS.md, issue 15, 2026-11-27 16:20).
_CHILD_WAIT_S, _CHILD_WAIT_LINE_S, _CHILD_WAIT_MAX_S = 0.005, 0.0003, 0.25


def _goes_on(obj: Any, t: Training) -> bool:
    """Whether training ``obj`` again (in a cell analysed as ``t``) goes on from the weights it has: a torch module
    with parameters, a Keras model, a scikit-learn style estimator with ``warm_start=True`` or trained by
    ``partial_fit``; not an estimator whose ``fit`` starts afresh, nor a loss module with no weights."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return next(iter(obj.parameters()), None) is not None
    keras = sys.modules.get("keras")
    model = getattr(keras, "Model", None) if keras is not None else None
    if isinstance(model, type) and isinstance(obj, model):
        return True
    if callable(getattr(obj, "get_params", None)) and callable(getattr(obj, "fit", None)):
        return getattr(obj, "warm_start", False) is True or "partial_fit" in t.train_calls
    return False


# the longest list, and the most keys, of a config dict read again after a cell changed it (see _configs_changed)
_CONFIG_LIST = 16
_CONFIG_KEYS = 1000


def _plain(value: Any) -> bool:
    return value is None or type(value) in (bool, int, float, str)


def _imports(body: list[ast.stmt]) -> Iterable[ast.Import | ast.ImportFrom]:
    """The absolute imports of a cell at its top level and in its ``if``/``try``/``with`` blocks (an ``except
    ImportError:`` fallback), not in functions or classes."""
    for node in body:
        if isinstance(node, ast.Import) or isinstance(node, ast.ImportFrom) and not node.level:
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody"):
                yield from _imports(getattr(node, block, None) or [])
            for handler in getattr(node, "handlers", None) or []:
                yield from _imports(handler.body)


def _still_imported(ns: dict[str, Any], node: ast.Import | ast.ImportFrom, alias: ast.alias) -> bool:
    """Whether the name an import bound still holds what it imported (not ``e = 0.5`` after ``from math import e``,
    nor the other branch of a ``try``/``except ImportError`` fallback); a ``*`` import: its module was imported."""
    if isinstance(node, ast.ImportFrom):
        module = sys.modules.get(node.module or "")
        if alias.name == "*":
            return module is not None
        held = getattr(module, alias.name, MISSING) if module is not None else MISSING
        if held is MISSING:
            held = sys.modules.get(f"{node.module}.{alias.name}", MISSING)
        return held is not MISSING and ns.get(alias.asname or alias.name, MISSING) is held
    if alias.asname:
        return sys.modules.get(alias.name, MISSING) is ns.get(alias.asname, None)
    top = alias.name.partition(".")[0]
    return sys.modules.get(top, MISSING) is ns.get(top, None)


def _child_wait(text: str) -> float:
    """The longest the capture after a short cell waits for the analysis child's answer on ``text``."""
    return min(_CHILD_WAIT_MAX_S, _CHILD_WAIT_S + _CHILD_WAIT_LINE_S * text.count("\n"))


class _Nudge:
    """An object the garbage collector tracks, allocated fresh each time (lists and dicts come from free lists,
    which the collector does not count)."""


def _lower_thresholds(t1: int, t2: int) -> None:
    """threshold0 at 1, and an older generation whose pass is due within a pass or two of the one below counted
    as due (a full pass still only when the interpreter's own rule allows it)."""
    _, c1, c2 = gc.get_count()
    gc.set_threshold(1, c1 - 1 if 2 < t1 <= c1 + 2 else t1, c2 - 1 if 1 < t2 <= c2 + 1 else t2)


def _nudge(t1: int, t2: int) -> None:
    """One collection by the interpreter's rules, now (the collector enabled), by :func:`_lower_thresholds`."""
    _lower_thresholds(t1, t2)
    nudges = []
    for _ in range(2):  # new tracked objects past the threshold collect (3.12+: at the loop's next check)
        nudges.append(_Nudge())
    del nudges


def _collect_due() -> None:
    """Turn the collector (off while a capture ran) back on and have the interpreter's own collection run now,
    by its own rules: the youngest generation, and an older one when its turn has come (a full pass only when
    the interpreter would make one). The user's next cell then starts with an empty youngest generation, as if
    nbexp had allocated nothing, and an older generation whose pass is due within a pass or two of the one below
    has it here, not in a cell. The thresholds are set before the collector is on: the first allocation after
    would otherwise collect by the user's thresholds, and the lowered ones would come too late."""
    t0, t1, t2 = gc.get_threshold()
    if t0 <= 0 or gc.get_count()[0] < max(1, t0 // 4):  # it left little: no pass of its own for that
        gc.enable()
        return
    try:
        _lower_thresholds(t1, t2)
        gc.enable()
        for _ in range(3):
            c2 = gc.get_count()[2]
            _nudge(t1, t2)
            # A middle pass (it adds one to the oldest generation's count) may just have made a full one due,
            # which the interpreter checks at its next collection, in a cell: once more, so that check is here
            # (the youngest generation is near empty: a cheap pass).
            if gc.get_count()[2] <= c2 or not 1 < t2 <= gc.get_count()[2] + 1:
                break
    finally:
        gc.enable()
        gc.set_threshold(t0, t1, t2)


class Session:
    """One tracked kernel (or script), writing to one ledger.

    Args:
        ledger: ledger path; None for the default.
        name: name of the first run.
        shell: the IPython shell to hook; None for a script session.
        sprint_name / hypothesis: label today's sprint.
        metric_names: extra comma-separated metric words.
        sample_hz: system samples per second (0: off).
        idle_after / idle_util: the idle-GPU hint fires for cells that ran at least
            ``idle_after`` seconds with mean GPU utilization below ``idle_util`` percent.
        replay_of: the run this session replays (``nbexp replay``); its runs point at it.
        data: fingerprint and summarize the data cells name (False: ``--no-data``).
        stdout_metrics: read metrics from what cells print (False: ``--no-stdout-metrics``).
        outputs_budget: megabytes of cell outputs kept per run (0: none kept; see :mod:`nbexp.capture.outputs`).
    """

    def __init__(
        self,
        ledger: str | None = None,
        name: str | None = None,
        shell: Any = None,
        sprint_name: str | None = None,
        hypothesis: str | None = None,
        metric_names: str | None = None,
        open_run: bool = True,
        sample_hz: float = 1.0,
        idle_after: float = system.IDLE_AFTER_S,
        idle_util: float = system.IDLE_UTIL_PCT,
        replay_of: str | None = None,
        data: bool = True,
        stdout_metrics: bool = True,
        outputs_budget: float = BUDGET_MB,
    ) -> None:
        self.ledger_path = resolve_path(ledger)
        self.track_args: dict[str, Any] | None = None  # what %nbexp track was given (see nbexp.magics)
        connect(self.ledger_path).close()  # raises LedgerError before anything is hooked
        self._reader = Reader(self.ledger_path)
        self.id = secrets.token_hex(4)
        self.shell = shell
        self.started = time.time()
        self.excluded: list[str] = []
        self.metric_re = metric_name_pattern(metric_names)
        # printed results (nbexp.capture.stdout): sys.stdout teed while a cell runs, read after it
        self.printed = (
            PrintedMetrics(metric_name_pattern(metric_names, prefixes=False))
            if shell is not None and stdout_metrics
            else None
        )
        # result objects and written files already recorded (each is read once, in the cell that made it)
        self._results_seen = results.Seen()
        self._files_seen = files.Seen()
        # the notebook's own modules the kernel imported, and the version of each it runs
        self._modules = LocalModules(os.getcwd(), self.warn, shell)
        # the last cell texts this session ran, with what was read from each (nbexp.capture.texts): a
        # re-executed cell is not read again, a new one is read by the analysis child while it runs
        self._texts = Texts(shell.transform_cell if shell is not None else None, shell)
        self._new_text: str | None = None  # a cell text new to the session, which a queued capture reads
        self.n_cells = 0
        self._cell: _Cell | None = None
        self._nested = 0
        # the last cells that ran: (cell key, start, the run it is stored in, whether it trained or recorded anything
        # there: a metric, a logged point); see _made_since
        self._ran: deque[tuple[str, float, Run | None, bool]] = deque(maxlen=_RAN_KEPT)
        # captures queued until the kernel has replied (see _defer)
        self._pending: list[Callable[[], None]] = []
        self._pending_lock = threading.Lock()
        self._ending = threading.Event()  # set as the session stops: the package listing waits no more
        self._drain_queued = False
        self._captured_at = 0.0  # perf_counter when the last capture ended (see _FOLLOWS_S)
        # the shell's execution_count as a cell kept in history starts, less the In[N] the notebook shows for it: 1
        # where IPython counts the cell before pre_run_cell (IPython 9), 0 before; learnt from the cells' results
        self._count_ahead = 0
        # id of a model object that goes on from its weights when trained again -> (a weak reference to it, the run
        # that trained it last): see _continued
        self._trained_models: dict[int, tuple[weakref.ref, str]] = {}
        self._runs_before_cell = 0
        # The dataflow record: what each name was computed from; a run's params are the params of
        # the names its training reached back to (see nbexp.dataflow).
        self.dataflow = Dataflow(self.warn, self.is_excluded)
        self.reloading = False  # within %reload_ext nbexp: the session goes on
        self._block_ended: Run | None = None  # the last `nbexp.run(...)` block to end (see _block_of)
        write_conn = connect(self.ledger_path)
        self.writer = Writer(
            write_conn, self.id, on_error=lambda cause, msg: self.warn(cause, msg, record=cause != "ledger-row")
        )
        self.store = Store(self.writer, scrub=scrub_text)
        # The run book: the runs, the current one, and when a cell opens the next (see nbexp.runbook).
        self.book = RunBook(
            self.id,
            self.store,
            self.writer.points,
            self._reader.taken_run_ids,
            self.dataflow,
            self.is_excluded,
            on_end=self.run_ended,
            open_window=lambda: self.sampler.open(),
            replay_of=replay_of,
            named=self._reader.name_count,
        )
        self.notices = Notices(self.store, self.id, lambda: self.current)
        self._insert_session(sprint_name, hypothesis)
        self.idle_after, self.idle_util = idle_after, idle_util
        self.replay_of = replay_of
        self.sampler = system.Sampler(sample_hz, sink=self._write_samples, note=self.warn)
        self.data = DataWatcher(self.store, self.ledger_path, self.warn, enabled=data)
        self.store.set_session_system(
            self.id,
            json.dumps([{k: g[k] for k in ("index", "name", "uuid", "mem_total_mb")} for g in self.sampler.gpus])
            if self.sampler.gpus
            else None,
            self.sampler.driver,
            self.sampler.describe(),
            sample_hz,
        )
        # what cells display and print (nbexp.capture.outputs), kept with their run
        self.outputs = (
            OutputCapture(
                shell,
                self.store,
                scrub_text,
                self.warn,
                stdout=self.printed.output.text if self.printed is not None else None,
                budget_mb=outputs_budget,
            )
            if shell is not None and outputs_budget > 0
            else None
        )
        if shell is not None:
            shell.events.register("pre_run_cell", self.pre_run_cell)
            shell.events.register("post_run_cell", self.post_run_cell)
        atexit.register(self.stop)
        self._hook_kernel()
        threading.Thread(
            target=self._slow_environment,
            args=(_PACKAGES_AFTER_S if shell is not None else 0.0,),
            name="nbexp-env",
            daemon=True,
        ).start()
        if shell is not None:  # the analysis child, once the first cells after %nbexp track have run
            threading.Thread(
                target=self._texts.start_child, args=(_CHILD_AFTER_S,), name="nbexp-texts", daemon=True
            ).start()
        self._prelude = shell is not None  # the imports run before tracking, read once the tracking cell ran
        if open_run:
            self.new_run(self.book.first_name(name), kind="track")
        self.writer.flush()

    # -- ledger rows ------------------------------------------------------------
    def _record_prelude(self) -> None:
        """The imports the kernel ran before tracking began (in its earlier cells, and in the ``%nbexp track`` cell
        itself, which the session starts inside and never records): one cell of the session, before its first, so
        each run's code (``nbexp show --code``, ``nbexp replay``) has the modules and names its cells use. Before,
        a replay of a notebook that imported next to ``%nbexp track`` failed (``NameError``; a user trial). Only
        top-level imports whose names the namespace holds once the tracking cell ran (one that failed, or was deleted
        since, is left out); the rest of those cells is not: what they computed is not the runs' code."""
        try:
            self._read_prelude()
        except Exception as exc:  # the runs' code lacks the earlier imports: said once, tracking goes on
            self.warn("internal", f"imports run before tracking not recorded ({type(exc).__name__}: {exc})")

    def _read_prelude(self) -> None:
        shell = self.shell
        inputs = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) or []
        ns = shell.user_ns
        lines: dict[str, None] = {}
        for raw in inputs:
            if not isinstance(raw, str) or "import" not in raw:
                continue
            try:  # the code inside %%time and %time too
                tree = cell_tree(raw, shell.transform_cell)
            except Exception:  # IPython syntax it cannot read: nothing of it
                tree = None
            for node in _imports(tree.body if tree is not None else []):
                kept = [a for a in node.names if _still_imported(ns, node, a)]
                if kept:  # import string, textwrap; del textwrap: import string
                    node = (
                        ast.ImportFrom(node.module, kept, 0) if isinstance(node, ast.ImportFrom) else ast.Import(kept)
                    )
                    lines[ast.unparse(node)] = None
        if not lines:
            return
        source = code_capture.PRELUDE_HEADER + "\n" + "\n".join(lines)
        code_hash, clean = code_capture.prepare(source, ns)
        start = self.started  # before any cell of the session
        self.store.start_cell(self.id, None, code_hash, None, code_hash, clean, start)  # no In[N] of its own
        self.store.close_cell(self.id, code_hash, start, 0.0, "ok")

    def _insert_session(self, sprint_name: str | None, hypothesis: str | None) -> None:
        env = environment.basic(self.shell.user_ns if self.shell is not None else None)
        pid = os.getpid()
        try:
            import psutil

            pid_started = psutil.Process(pid).create_time()
        except Exception:
            pid_started = None
        self.sprint = sprint_of(self.started)
        self.store.open_session(
            dict(
                id=self.id,
                name=None,
                sprint=self.sprint,
                host=env["host"],
                pid=pid,
                pid_started=pid_started,
                started=self.started,
                heartbeat=self.started,
                python=env["python"],
                platform=env["platform"],
                nbexp_version=__version__,
                notebook=env["notebook"],
                kernel_id=env["kernel_id"],
            )
        )
        self.store.mark_crashed(env["host"], pid, self.id)
        if sprint_name or hypothesis:
            self.label_sprint(sprint_name, hypothesis)

    def label_sprint(
        self, name: str | None = None, hypothesis: str | None = None, conclusion: str | None = None
    ) -> None:
        """Name today's sprint and set its hypothesis or conclusion (None keeps what is there)."""
        self.store.label_sprint(sprint_of(time.time()), name, hypothesis, conclusion)

    def _slow_environment(self, delay: float) -> None:
        """git's state at once (a run synced live carries its commit); the installed packages and CUDA ``delay``
        seconds later (see ``_PACKAGES_AFTER_S``), unless the session stopped meanwhile (nothing is stored
        after the session's last write)."""
        try:
            commit, dirty = environment.git()
            self.store.store_git(self.id, commit, dirty)
            if self._ending.wait(delay):
                return
            env_id, pkgs = environment.packages()
            try:
                cuda = environment.cuda()
            except Exception:  # torch half imported by the user's cell right now
                cuda = None
            if not self._ending.is_set():
                self.store.store_packages(self.id, env_id, pkgs, cuda)
        except Exception as exc:  # pragma: no cover - depends on the machine
            self.warn("environment", f"environment not recorded: {exc}")

    # -- runs ---------------------------------------------------------------------
    @property
    def runs(self) -> list[Run]:
        """Every run this session opened, oldest first."""
        return self.book.runs

    @property
    def current(self) -> Run | None:
        """The session's current run (None between ``%%nbexp run`` and the next cell)."""
        return self.book.current

    @property
    def stack(self) -> list[Run]:
        """The open ``with nbexp.run(...)`` blocks, innermost last."""
        return self.book.stack

    def new_run(
        self,
        name: str | None = None,
        kind: str = "new",
        params: dict | None = None,
        nested: bool = False,
        start: float | None = None,
    ) -> Run:
        """Open a run. Unless ``nested``, the current run closes first (at ``start``, when given:
        the start of a cell that, once it ran, turned out to open this run, which starts then).

        A run's params are what its training depended on (see :meth:`Dataflow.slice_params`), so a run
        opened before a cell inherits nothing: its training pulls in the values it reads. A
        ``with nbexp.run(...)`` block inherits the params the cell running it depends on (a
        script session, which captures nothing, every param set in it); then ``params``.

        Raises:
            InvalidArgument: the name is not text or a param is not a plain value; no run opens then.
        """
        name = check_name(name, "nbexp.run")
        params = check_params(params, "nbexp.run") if params else None
        if start is None and not nested and self._cell is not None and self._cell.magic:
            start = self._cell.start  # %nbexp new: the cell is the new run's, none of the old one's code
        if not nested and self.current is not None:
            self.current.end(at=start)
        return self.book.open(name, kind, self._inherited(kind), params, nested, start=start)

    def _inherited(self, kind: str) -> dict[str, Any]:
        if self.shell is None:
            return dict(self.dataflow.params)
        if kind != "context" or self._cell is None:
            return {}
        t = self._analyze(self._cell.source)[3]
        return self.dataflow.params_of(self.dataflow.closure(t.reads), set(), self.shell.user_ns)

    def _trains(self, cell: _Cell, run: Run | None = None, t: Training | None = None) -> bool:
        """Whether a cell that ran trains: its code or a function it calls whose body trains, or it
        logged points to ``run`` (its own run by default). ``t``: its analysis when the caller has
        it; else its text is analysed (cached by text). The capture's rule, and the idle-GPU hint's."""
        if run is None:
            run = cell.run
        if run is not None and run.n_points > cell.points_before:
            return True
        return self.dataflow.trains(self._analyze(cell.source)[3] if t is None else t)

    def ensure_run(self) -> Run:
        return self.current or self.new_run(kind="new")

    def run_ended(self, run: Run) -> None:
        """A run ended: its system stats and idle hint are stored (the run book then lets it go)."""
        if run.kind == "context":
            self._block_ended = run
        stats = self.sampler.close(run.window)
        # a run's hint is its first training cell's; a run with no cells (nbexp.run() outside a
        # notebook) is judged on its whole window
        hint = run.idle_hint
        if hint is None and run.n_cells == 0:
            hint = system.idle_hint(stats, stats["wall_s"], bool(self.sampler.gpus), self.idle_after, self.idle_util)
        self.store.set_run_system(run.id, stats, len(self.sampler.gpus) or None, hint)

    def _write_samples(self, host: dict, gpus: list[dict]) -> None:
        self.store.add_samples(self.id, host, gpus)

    # -- params ---------------------------------------------------------------------
    @property
    def param_state(self) -> dict[str, Any]:
        """Each param key's value as last set in the session (the dataflow record's, shared)."""
        return self.dataflow.params

    def is_excluded(self, key: str) -> bool:
        return any(key == pat or key.startswith(pat + ".") or fnmatch.fnmatchcase(key, pat) for pat in self.excluded)

    def exclude(self, names: list[str]) -> None:
        self.excluded.extend(names)
        self.dataflow.exclude()
        for run in [r for r in self.runs if r.status == "running"]:
            for key in [k for k in run.params if self.is_excluded(k)]:
                run.params.pop(key)
        self.store.delete_params([r.id for r in self.runs if r.status == "running"], names)

    # -- warnings --------------------------------------------------------------------
    def warn(self, cause: str, message: str, record: bool = True) -> None:
        """One line to stderr once per cause; every cause recorded once per run (see :class:`Notices`)."""
        self.notices.warn(cause, message, record)

    # -- IPython hooks -----------------------------------------------------------------
    def pre_run_cell(self, info: Any) -> None:
        try:
            self._pre_run_cell(info)
        except Exception as exc:
            self.warn("internal", f"cell not recorded ({type(exc).__name__}: {exc})")

    def _pre_run_cell(self, info: Any) -> None:
        if self._pending:
            self._drain()  # the previous cell's capture, if the kernel had no idle moment for it
        if self._cell is not None:  # a cell run from inside a cell (%%nbexp run, %%capture)
            self._nested += 1
            if self.printed is not None:
                self.printed.follow()  # %%capture's body prints to its own stream: still this cell's output
            return
        if self._replied is not None:
            self._replied.clear()  # set once this cell's reply has left (see _hook_kernel)
        raw = info.raw_cell or ""
        code_hash, clean = code_capture.prepare(raw, self.shell.user_ns)
        follows = time.perf_counter() - self._captured_at < _FOLLOWS_S
        if self._texts.start(clean, hold=0.0 if follows else HOLD_S):  # new: the child reads it (see _FOLLOWS_S)
            self._new_text = clean
        key = getattr(info, "cell_id", None) or code_hash
        magic = code_capture.drives_only_nbexp(raw)
        run = self.current
        late = carried = False
        start = None
        if run is None and not magic:
            run = self.ensure_run()  # after %%nbexp run: the next cell opens a run
        elif (
            run is not None
            and run.frozen
            and not magic
            and not self.stack
            and not ("nbexp" in raw and _OPENS_RUN.search(raw))
        ):
            screened = self.book.screen(run, key, code_hash, clean)
            if screened == "before":
                screened = self.book.reason(
                    run, code_hash, clean, self._analyze, cell_id=key if key != code_hash else None
                )
            if screened == "after":
                late = True
            elif screened:
                start = time.time()  # the cell's start: the run it opens starts there, the trained run ends there
                run = self._next_run(run, screened, start=start, source=clean)
                carried = screened == "re-evaluates"
        start = time.time() if start is None else start
        shell_count = self.shell.execution_count
        count = shell_count - self._count_ahead if getattr(info, "store_history", True) else shell_count
        self._cell = cell = _Cell(key, code_hash, clean, start, count, run, magic, shell_count)
        cell.decide_after, cell.carried = late, carried
        cell.window = self.sampler.open()
        # Stored as it starts, so a kernel that dies inside the cell leaves its code and start behind.
        self._store_cell_start(cell)
        self._runs_before_cell = len(self.runs)
        cell.torch_before = system.torch_cuda_peaks()
        if self.printed is not None:
            self.printed.start()
        if self.outputs is not None:
            self.outputs.start()

    def _next_run(self, run: Run, reason: str, start: float, source: str) -> Run:
        """Open the run after ``run`` for ``reason`` (:meth:`RunBook.reason`), named after it (``baseline #2``: the
        notebook's next run, a re-run or another model's training), at ``start``, when the cell (``source``) that
        opened it started. A cell that rebinds what the training read from data changed since (``"upstream"``) opens
        it at the first cell that changed it (:meth:`_made_since`): the cells from there on are the new run's, and
        the trained run's code ends before them."""
        if reason == "another training":
            return self.new_run(self.book.rerun_name(run), kind="new", start=start)
        begins = self._made_since(run, source, start) if reason == "upstream" else start
        up = self.book.upstream(run) if reason == "re-evaluates" else None
        new = self.new_run(self.book.rerun_name(run), kind="rerun", start=begins)
        if begins < start:
            self.store.move_cells(self.id, run.id, new.id, begins)
        if reason == "re-evaluates":
            self.book.carry(run, new, up)
            self.data.carry(run.id, new.id)
        return new

    def _decide_after(self, cell: _Cell, printed: tuple = (), shown: Any = None) -> None:
        """A cell that named a value or metric of its trained run, but nothing that trains, ran
        in it (:meth:`RunBook.screen`): now that it ran, its text says whether it opens the next
        run, which then holds the cell (from its start) and what it left; the trained run keeps
        what it had and ends where the cell began. An evaluation cell of the run run again unchanged
        (``printed``, ``shown``: the metrics it printed, what it showed) stays in the run when it computed
        exactly what it computed before and logged nothing while it ran (there is nothing new to record), and
        opens the next run otherwise."""
        run = cell.run
        if run is None or run is not self.current or run.status != "running" or self.stack:
            return
        evaluated = run.eval_cells.get(cell.key)
        if evaluated is not None and evaluated[0] == cell.hash:
            if run.n_points == cell.points_before and self._outcome(cell, printed, shown) == evaluated[1]:
                cell.repeat = True  # the same evaluation again: it stays in the run it evaluates
                return
            reason: str | None = "re-evaluates"
        else:
            cell_id = cell.key if cell.key != cell.hash else None
            reason = self.book.reason(run, cell.hash, cell.source, self._analyze, cell_id=cell_id)
            if not reason and (cell_id is None or cell_id in run.eval_cells):
                # it printed again a metric an evaluation of the run printed: that evaluation edited, without ids
                # (the training split's accuracy printed after the test split's is another metric: RunBook.metric_key)
                t = self._analyze(cell.source)[3]
                keys = {self.book.metric_key(key, t) for key, _ in printed}
                reason = "re-evaluates" if keys & run.eval_printed else None
        if not reason:
            return
        if run.n_points > cell.points_before:
            self.warn(
                "segment",
                f"a cell that changed a value of run {run.id} logged {run.n_points - cell.points_before} "
                f"point(s) there before the next run opened (name its training call or use %nbexp new)",
            )
        cell.run = self._next_run(run, reason, start=cell.start, source=cell.source)
        cell.carried = reason == "re-evaluates"
        cell.points_before = 0

    def _made_since(self, run: Run, source: str, start: float) -> float:
        """Where the run after ``run`` begins when a cell (``source``, started at ``start``) rebinds what its training
        read from data changed since (:meth:`RunBook.made_since`): at the first cell run since the training that made
        that data (the filter above the split edited and re-run, without cell ids), else at the cell. Not before a
        cell that recorded anything in the trained run (its training, a metric of it): what it recorded stays there,
        and so does the cell."""
        makers = self.book.made_since(run, self._analyze(source)[3])
        if makers:
            for key, began, home, recorded in reversed(self._ran):
                if home is not run or recorded:  # back to the training, a metric (or a cell of another run)
                    break
                if key in makers:
                    start = began
        return start

    def _block_of(self, cell: _Cell) -> Run | None:
        """The ``nbexp.run(...)`` block a cell that ran worked in: the last one it opened, else the innermost
        one still open, else one it ended (``r.end()``); None when it touched none."""
        opened = [r for r in self.runs[self._runs_before_cell :] if r.kind == "context"]
        if opened:
            return opened[-1]
        if self.stack:
            return self.stack[-1]
        ended = self._block_ended
        return ended if ended is not None and ended.end_time is not None and ended.end_time >= cell.start else None

    def _store_cell_start(self, cell: _Cell) -> None:
        self.store.start_cell(
            self.id, cell.run.id if cell.run else None, cell.key, cell.count, cell.hash, cell.source, cell.start
        )

    def _store_cell_end(self, cell: _Cell, status: str) -> None:
        """End a cell whose post_run_cell will not come (``%nbexp stop`` inside it)."""
        self.store.close_cell(self.id, cell.key, cell.start, time.time() - cell.start, status)

    def adopt_cell(self, run: Run, body: str, result: Any) -> bool:
        """Make the executing cell (a ``%%nbexp run`` cell) record ``body`` into
        ``run``, which ends when the cell does. False when no cell is executing."""
        cell = self._cell
        if cell is None:
            return False
        cell.hash, cell.source = code_capture.prepare(body, self.shell.user_ns)
        cell.run, cell.magic, cell.end_run, cell.result = run, False, True, result
        cell.points_before = run.n_points
        return True

    def post_run_cell(self, result: Any) -> None:
        try:
            self._post_run_cell(result)
        except Exception as exc:
            self._cell = None
            self.warn("internal", f"cell not recorded ({type(exc).__name__}: {exc})")

    def _post_run_cell(self, result: Any) -> None:
        if self._nested:
            self._nested -= 1
            return
        cell, self._cell = self._cell, None
        if cell is None:  # the %nbexp track cell itself
            if self._prelude:
                self._prelude = False
                self._defer(self._record_prelude)
            return
        end = time.time()
        printed = self.printed.end() if self.printed is not None else ()
        stats = self.sampler.close(cell.window)
        torch_peaks = system.cell_peaks(cell.torch_before, system.torch_cuda_peaks())
        shown_count = getattr(result, "execution_count", None)  # the In[N] the notebook shows
        if isinstance(shown_count, int):
            if getattr(getattr(result, "info", None), "store_history", False):
                self._count_ahead = cell.shell_count - shown_count
            cell.count = shown_count
        result = cell.result or result
        exc = result.error_in_exec or result.error_before_exec
        if exc is None:
            status = "ok"
        elif isinstance(exc, KeyboardInterrupt):
            status = "interrupted"
        else:
            status = "error"
        error = error_text(exc)
        self.n_cells += 1
        hint = system.idle_hint(stats, end - cell.start, bool(self.sampler.gpus), self.idle_after, self.idle_util)
        if hint:
            try:  # the idle-GPU hint is for training cells alone; parsed only when a hint would fire
                trained = self._trains(cell)
            except Exception:
                trained = False
            if not trained:
                hint = None  # a GPU idle while data loads or a report is written is no advice
        if hint:
            print(f"nbexp: hint: {hint}")
        shown = getattr(result, "result", None)
        showed = cell.showed = self.outputs.end() if self.outputs is not None else []

        def finish() -> None:
            if cell.decide_after:
                try:
                    self._decide_after(cell, tuple(printed), shown)
                except Exception as failure:  # the cell stays in the run it ran in
                    self.warn("internal", f"next run not opened ({type(failure).__name__}: {failure})")
            run = cell.run if cell.run is not None and cell.run.status == "running" and not cell.magic else None
            run = run or self.current or cell.run
            capture = run is not None and run.status == "running" and not cell.magic
            # A cell that logged nothing to its run while it worked in `nbexp.run(...)` blocks (a sweep) is the
            # blocks' code, not its run's: stored under the block (see _block_of and Reader.lineage).
            quiet = run is None or run is not cell.run or run.n_points == cell.points_before
            home = (self._block_of(cell) if quiet and not cell.magic else None) or run
            if self.outputs is not None:
                self.outputs.keep(self.id, cell.key, cell.start, home.id if capture else None, showed)
            if run is not None:
                if not cell.magic:  # a %nbexp cell says nothing of how the run's own cells ended
                    run._last_cell_status = status
                    run._last_cell_error = error
                run.n_cells += 1
                if hint and run.idle_hint is None:
                    run.idle_hint = hint
            if capture and not cell.repeat:
                # a name printed more than once (a loop's "epoch 3: loss 0.41") is a curve: it stands for the
                # variable of the same name, which holds only the loop's last value
                curves = frozenset(k for k, n in Counter(k for k, _ in printed).items() if n > 1)
                logged = run is cell.run and run.n_points > cell.points_before  # while it ran (nbexp.log)
                progressed = bool(printed) or logged
                noted: set[str] = set()
                run.noting = noted
                try:
                    evaluated = self._capture(cell, run, status, shown, curves, progressed)
                finally:
                    run.noting = None
                points = run.n_points
                keyed: list[tuple[str, float]] = []
                if printed:  # each distinct key once (a loop prints thousands of lines)
                    t = self._analyze(cell.source)[3]
                    keys = {key: self.book.metric_key(key, t) for key in {key for key, _ in printed}}
                    keyed = [(keys[key], value) for key, value in printed]
                self._record_printed(run, keyed)
                if cell.trained:  # what its training recorded: an evaluation's metric of that name says its split
                    self.book.trained_keys(self._analyze(cell.source)[3], noted | {key for key, _ in keyed})
                # a cell of a trained run that only printed metrics (print(f"Accuracy: {...}")) evaluated it too
                evaluated = evaluated or (
                    run.frozen and status == "ok" and run.n_points > points and cell.key not in run.training_cells
                )
                if evaluated:
                    try:
                        self._evaluated(cell, run, tuple(printed), shown, logged, keyed)
                    except Exception as failure:  # kept like a training cell: run again, it opens the next run
                        run.training_cells.update((cell.key, cell.hash))
                        self.warn("internal", f"evaluation not kept ({type(failure).__name__}: {failure})")
            elif cell.repeat:
                self._repeated(cell)
            if cell.hash != cell.stored_hash:  # %%nbexp run: the body replaced the cell's text
                self.store.store_code(cell.hash, cell.source)
            self.store.end_cell(
                self.id,
                cell.key,
                cell.start,
                run_id=home.id if home else None,
                code_hash=cell.hash,
                duration=end - cell.start,
                status=status,
                n_points=run.n_points - cell.points_before if run is cell.run else 0,
                error_type=type(exc).__name__ if exc else None,
                error=error,
                stats=stats,
                torch_peaks=torch_peaks,
                idle_hint=hint,
                execution_count=cell.count,
            )
            recorded = cell.trained or (run is not None and run is cell.run and run.n_points > cell.points_before)
            self._ran.append((cell.key, cell.start, home, recorded))
            if cell.end_run and run is not None:
                run.end()

        self._defer(finish)

    # -- the capture after a cell, off its critical path ----------------------------------
    def _defer(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (what a finished cell left to read: its params, metrics, results, data and
        its ledger row) once the kernel has replied, or now outside a kernel.

        In a kernel the cell runs inside the execute request's handler, which sends the reply
        as soon as the cell returns; the kernel then calls its ``post_handler_hook``, where the
        session finishes what is queued (:meth:`_hook_kernel`). A kernel without that hook gets
        a callback queued on its event loop instead. Nothing touches the user's namespace
        between the cell's end and then, and the next cell (like :meth:`stop` and :meth:`flush`)
        first finishes what is queued, so ``fn`` reads exactly what it would have read before
        the reply.
        """
        if self._after_reply:
            with self._pending_lock:
                self._pending.append(fn)
            return
        loop = None
        aio = sys.modules.get("asyncio")  # never imported for this: no asyncio, no loop
        if aio is not None and self.shell is not None and getattr(self.shell, "kernel", None) is not None:
            try:
                loop = aio.get_running_loop()
            except RuntimeError:
                loop = None
        with self._pending_lock:
            self._pending.append(fn)
            if loop is not None and not self._drain_queued:
                try:
                    loop.call_soon(self._drain)
                    self._drain_queued = True
                    return
                except RuntimeError:  # a loop closing under us
                    pass
            elif loop is not None:
                return
        self._drain()

    def _drain(self) -> None:
        """Finish every queued capture, oldest first; a failure is one warning line and its cell's.

        The garbage collector waits while the captures run and then collects what is due at once
        (:func:`_collect_due`): collected inside the captures, the objects they leave (a new text's
        analysis, the run's rows) stayed in the youngest generation and the user's next cell paid for
        walking them, and for every older-generation pass they added (bench/RESULTS.md, issue 15)."""
        if self._new_text is not None and self._pending:
            self._answered(self._new_text, 0.0)  # a new text's analysis, from the child if it is there
        with self._pending_lock:
            self._drain_queued, self._new_text = False, None
            pending, self._pending = self._pending, []
        collecting = bool(pending) and gc.isenabled()  # a user who turned the collector off keeps it off
        try:
            if collecting:
                gc.disable()
            for fn in pending:
                try:
                    fn()
                except Exception as exc:
                    self.warn("internal", f"cell not recorded ({type(exc).__name__}: {exc})")
        finally:
            if collecting:
                _collect_due()  # turns it back on
        self._captured_at = time.perf_counter()

    def _analyze(self, source: str) -> tuple[dict[str, Any], set[str], list[str], Training]:
        """``(literal, computed, names, training)`` of a cell's source (:func:`nbexp.capture.texts.analysis`),
        read once per text. Callers read the result, never change it."""
        return self._texts.get(source, "analysis")

    def _data_of(self, source: str) -> tuple[set[str], DataUse]:
        """``(fit_labels, data_use)`` of a cell's source (:func:`nbexp.capture.texts.data`), once per text."""
        return self._texts.get(source, "data")

    def _record_printed(self, run: Run, printed: Iterable[tuple[str, float]]) -> None:
        """Metrics a cell printed (before an error too), with source stdout. A metric found another way
        wins: a key the run holds from a variable, ``nbexp.log`` or a result object is not read again from
        the text, nor is its printed spelling (XGBoost prints ``validation_0-logloss`` for the
        ``evals_result_`` curve ``validation_0.logloss``)."""
        if not printed:
            return
        found = {k.replace(".", "_") for k in run.metric_keys if run.metric_sources.get(k) != "stdout"}
        for key, value in printed:
            if key not in found:
                run.log_found(key, value, source="stdout")

    def _capture(
        self,
        cell: _Cell,
        run: Run,
        status: str,
        shown: Any = None,
        printed_curves: frozenset[str] = frozenset(),
        progressed: bool = False,
    ) -> bool:
        """Params, metrics and data of a cell that ran in ``run``; ``shown``: the value its last expression
        showed; ``printed_curves``: names the cell printed as a curve (not read from the namespace); ``progressed``:
        it printed or logged metrics (an interrupted training that did so trained part way). True when
        the cell evaluated the run (computed metrics without training)."""
        skipped: list[Skipped] = []
        seen = self._files_seen
        text = cell.source
        self._modules.notice()  # the version of a module this cell imported: one length check when it imported none
        files.record(
            text,
            cell.start,
            run,
            self.shell.user_ns,
            self.shell.transform_cell,
            self.warn,
            seen,
            kept_paths=lambda: self._texts.get(text, "paths"),
        )
        literal, computed, names, t = self._analyze(cell.source)
        ns = self.shell.user_ns
        params = self._params_of(literal, names, skipped)
        configs = self._configs_changed(t, ns, params) if t.mutated or t.updated else set()
        for s in skipped:
            self.warn(s.cause, str(s))
        if self.excluded:
            params = {k: v for k, v in params.items() if not self.is_excluded(k)}
        if status == "ok":
            for name in sorted(computed):
                if not self.metric_re.match(name) or name not in ns or name in printed_curves:
                    continue
                value = as_scalar(ns[name])
                if value is not None:
                    run.log_auto(self.book.metric_key(name, t), value)
            # results libraries keep (a History, a search, evals_result_), in the run that trained them
            found = results.harvest(
                source=cell.source,
                transform=self.shell.transform_cell,
                ns=ns,
                bound=t.writes,
                models=t.models,
                last=shown,
                seen=self._results_seen,
                metric_re=self.metric_re,
                known=run.metric_keys,
                kept_syntax=lambda: self._texts.get(text, "syntax"),
            )
            for problem in found.problems:
                self.warn("results", problem)
            for f in found.metrics:  # an evaluation's (classification_report's accuracy on the test split)
                f.key = self.book.metric_key(f.key, t)
            found.record(run)
        # a training interrupted part way (it printed or logged its progress) trained all the same: the values it
        # read belong to this run, and an edit after it opens the next run; one interrupted before it showed any
        # progress (while its data loaded) trained nothing, and run again it stays in its run
        trains = (status == "ok" or status == "interrupted" and progressed) and self._trains(cell, run, t)
        # Data, like params: once a run has trained, data loaded afterwards waits for the next run,
        # unless the cell evaluates the run's models on it.
        run_ids = [run.id] if trains or not run.frozen or t.reads & run.models else []
        run_ids += [r.id for r in self.runs[self._runs_before_cell :] if r is not run]
        labels, data = self._data_of(cell.source)
        self.data.check(data, ns, run_ids, labels, self.dataflow.trainer_funcs, self.metric_re)
        if trains:
            self.book.trained(run, t)  # what its training read, before the cell's own record
        self.dataflow.record(t, literal, computed, params)
        stale = self.dataflow.stale(t, ns) if trains and self.dataflow.trains(t) else []
        if status == "ok" and (trains or run.frozen and (cell.carried or t.reads & (run.slice | run.models))):
            # the evaluation that opened a carried run describes afresh what it reaches (an edited threshold)
            self.dataflow.slice_params(run, t, ns, trains, refresh=cell.carried, stale=stale)
        elif not run.frozen:
            run.set_params(params, source="assign")  # until it trains: what its cells set
        if cell.carried and status == "ok":  # and the values it binds itself
            run.set_params({k: v for k, v in params.items() if k.split(".", 1)[0] in literal}, source="assign")
        self.dataflow.bound(t, cell.hash, cell.key, literal.keys(), changed=configs)
        for built, edited in stale:
            self.warn(
                "stale",
                f"{edited} was set again after {built} was built from it, and {built} was not built again: run "
                f"{run.id} trained {built} with the earlier {edited} (run the cell that builds {built} again to use "
                "the new one)",
            )
        if trains:
            run.frozen = True
            run.models |= t.models
            run.inputs |= t.reads | self.dataflow.globals_read(t.calls)
            run.estimators |= {n for n in run.slice - run.estimators if is_model(ns.get(n))}
            if self.dataflow.trains(t):
                cell.trained = True
                run.training_cells.update((cell.key, cell.hash))
                try:
                    self._keep_modules(run)
                except Exception as exc:  # a module that cannot be read: one warning, the capture goes on
                    self.warn("modules", f"the notebook's modules not kept ({type(exc).__name__}: {exc})")
                try:
                    self._continued(run, t, ns)
                except Exception:  # a model that cannot be read: no note, the capture goes on
                    pass
            else:  # an evaluation cell that computed metrics (see _evaluated)
                keys = self.book.keys_among(computed, t, run.metric_keys)
                run.eval_metrics |= keys.keys()
                run.eval_keys |= set(keys.values())
                return True
        return False

    def _keep_modules(self, run: Run) -> None:
        """Keep with ``run`` the source of each of the notebook's own modules the kernel runs as it trains
        (artifacts ``@modules/...``, :mod:`nbexp.capture.modules`): only those not kept with it already."""
        for key, m in self._modules.current(self.shell.user_ns if self.shell is not None else {}).items():
            if run.modules.get(key) != m.digest:
                run.modules[key] = m.digest
                path = os.path.relpath(m.path, self._modules.root) if m.path.startswith(self._modules.root) else m.path
                run.keep_artifact(key, path, m.size, m.digest, m.data)

    def _continued(self, run: Run, t: Training, ns: dict[str, Any]) -> None:
        """A training cell of ``run`` (``t``) ran: when a model it trained is the very object another run trained
        last, and that object goes on from its weights when trained again (a torch module, a Keras model, a
        scikit-learn estimator with ``warm_start`` or trained by ``partial_fit``), ``run`` did not train from scratch:
        the user is told, once, and the run keeps the note (``nbexp replay`` and ``explain`` read it). The PyTorch
        quickstart's learning rate edited and run again from its cell down leaves the model's cell out: the second
        run trains on the first one's weights, which its replay, building the model afresh, does not."""
        for name in sorted(t.models | t.reads | self.dataflow.globals_read(t.calls)):
            obj = ns.get(name)
            if obj is None or not _goes_on(obj, t):
                continue
            held = self._trained_models.get(id(obj))
            if held is not None and held[0]() is obj and held[1] != run.id:
                self.warn(
                    "continued",
                    f"run {run.id} trained {name} on from the weights run {held[1]} left ({name} was not built again "
                    f"since): a replay, which builds it afresh, computes other values",
                )
            try:
                self._trained_models[id(obj)] = (weakref.ref(obj), run.id)
            except TypeError:  # no weak reference to it: not followed
                pass

    def _params_of(self, literal: dict[str, Any], names: list[str], skipped: list[Skipped]) -> dict[str, Any]:
        """The params a cell's text and the objects it names give (what the session records of it)."""
        ns = self.shell.user_ns
        params = from_literals(literal, skipped, ns)  # the namespace: which called names are the notebook's own
        for name in names:
            obj = ns.get(name, MISSING)
            if obj is MISSING or type(obj) in PLAIN:
                continue
            try:
                params.update(from_object(name, obj, skipped))
            except Exception as exc:
                skipped.append(Skipped("object", f"params of {name!r} skipped ({type(exc).__name__}: {exc})"))
        return params

    def _configs_changed(self, t: Training, ns: dict[str, Any], params: dict[str, Any]) -> set[str]:
        """The config dicts a cell changed in place or rebuilt from themselves (``config["hidden"] = 64``,
        ``config.update(lr=0.01)``, ``config = {**config, "hidden": 64}``): dicts the session holds params of (a
        literal made them). The keys it holds are read again from their values now, into ``params``, for the
        dataflow record, which describes a name the cell changed afresh (before, it dropped them all: the next run
        had no ``config.*``). Only those keys, and only plain values: in a cell that trains, numbers, text and
        flags alone (a list an epoch loop fills is no param), elsewhere short lists of them too; never a key the
        cell added (``results["test_acc"] = ...`` in a dict made with a model's name is a metric), nor a dict grown
        past :data:`_CONFIG_KEYS` (a vocabulary). Returns the names read so (changed in place)."""
        out = set()
        trains = self.dataflow.trains(t)
        for name in t.mutated | t.updated:
            value = ns.get(name)
            if type(value) is not dict or len(value) > _CONFIG_KEYS:
                continue
            held = self.dataflow.keys_of(name)
            if not held:
                continue
            leaves: dict[str, Any] = {}
            flatten(name, value, leaves, [])  # what cannot be a param was never one of its keys
            for key, leaf in leaves.items():
                if key in held and (
                    _plain(leaf)
                    or not trains
                    and isinstance(leaf, list)
                    and len(leaf) <= _CONFIG_LIST
                    and all(map(_plain, leaf))
                ):
                    params[key] = leaf
            out.add(name)
        return out

    def _repeated(self, cell: _Cell) -> None:
        """An evaluation that ran again and computed what it computed before (:meth:`_decide_after`): its values are
        in the run already; the dataflow record takes the names it bound as its again."""
        literal, computed, names, t = self._analyze(cell.source)
        self.dataflow.record(t, literal, computed, self._params_of(literal, names, []))
        self.dataflow.bound(t, cell.hash, cell.key, literal.keys())

    def _outcome(self, cell: _Cell, printed: tuple, shown: Any) -> dict[str, Any] | None:
        """What an evaluation cell computed (:meth:`RunBook.outcome`): the values it bound or changed, what it
        showed, displayed (a figure's picture) and the metrics it printed; None when one of them cannot be
        compared."""
        if cell.outcome is _UNREAD:  # read once: _decide_after compares it, _evaluated keeps it
            t = self._analyze(cell.source)[3]
            displayed = [(kind, m, data[m]) for kind, data in cell.showed if (m := kept_mime(data)) is not None]
            cell.outcome = self.book.outcome(
                self.shell.user_ns, t.writes | t.mutated, printed, shown, t.mutated, displayed
            )
        return cell.outcome

    def _evaluated(
        self, cell: _Cell, run: Run, printed: tuple, shown: Any, logged: bool, keyed: Iterable[tuple[str, float]]
    ) -> None:
        """An evaluation cell of ``run`` ran (it computed metrics, it does not train): keep what it computed, so
        the same text run again stays in ``run`` when it computes exactly the same (a user re-running the cell to
        see its output) and opens the next run otherwise (:meth:`_decide_after`). A cell that logged points while
        it ran (``logged``: ``nbexp.log`` in a helper) or computed something that cannot be compared
        (:meth:`RunBook.outcome`) opens the next run before it runs again, like a training cell. ``keyed``: the
        metrics it printed, under their keys in ``run`` (:meth:`RunBook.metric_key`)."""
        outcome = None if logged else self._outcome(cell, printed, shown)
        run.eval_printed |= {key for key, _ in keyed if key in run.metric_keys}
        if outcome is not None:
            run.eval_cells[cell.key] = (cell.hash, outcome)
        else:
            run.training_cells.update((cell.key, cell.hash))

    # -- end -----------------------------------------------------------------------------
    def _hook_kernel(self) -> None:
        """Finish each cell's capture once the kernel replied, and end the runs as soon as the
        kernel is asked to go, not at interpreter exit.

        ipykernel calls ``kernel.post_handler_hook`` after a request's handler returned (the
        execute reply is sent) and before it says it is idle: the capture done there delays no
        reply, and its warnings still reach the cell (a notebook stops listening to a cell once
        its kernel is idle). A shutdown request reaches ``kernel.do_shutdown`` first; atexit
        handlers come only after ipykernel has terminated the kernel's children and after
        handlers registered later (joblib/loky's waits for its workers), and Jupyter sends
        SIGTERM 2.5 s after asking. SIGTERM's default action exits without atexit, so the
        session handles it too (when nothing else does), ends its runs and then lets the signal
        terminate the process.
        """
        kernel: Any = getattr(self.shell, "kernel", None)
        self._kernel_hooks: list[tuple[Any, str, Callable]] = []
        self._replied = self._watch_replies(kernel)
        self._after_reply = False  # the kernel's post_handler_hook finishes each cell's capture
        after = getattr(kernel, "post_handler_hook", None)
        if callable(after):

            def post_handler_hook(_original=after):
                _original()
                if self._pending:
                    # The reply is on its way through the kernel's shell-channel thread, which needs
                    # a core and the GIL to send it: the capture waits until it has left (the GIL
                    # free). Before a capture that reads a cell new to the session (milliseconds of
                    # work), give it 1 ms in all (longer while the analysis child reads a text handed over
                    # now: see _answered); during any capture, hand the GIL over within 0.2 ms (not
                    # Python's 5 ms), for the kernel's other threads.
                    began = time.perf_counter()
                    interval = sys.getswitchinterval()
                    sys.setswitchinterval(min(interval, _HANDOVER_S))  # the wait too wins the GIL back soon
                    try:
                        replied = self._replied
                        if self._send_reply is not None:
                            self._send_reply()
                        elif replied is not None and not replied.wait(_REPLY_WAIT_S) and not self._replies_seen:
                            # no reply ever seen, twice: this kernel's replies do not pass the stream's callback
                            # (ipykernel 7 before 7.4 sends on the socket itself): the session waits no more
                            self._reply_timeouts += 1
                            if self._reply_timeouts >= 2:
                                self._replied = None
                        text = self._new_text
                        if text is not None:  # the time is spent waiting for the analysis child's answer
                            try:
                                answered = self._answered(
                                    text, max(0.0, _YIELD_S - (time.perf_counter() - began)), hand_over=True
                                )
                            except Exception:  # the text is read here instead
                                answered = False
                            if not answered:
                                time.sleep(max(0.0, _YIELD_S - (time.perf_counter() - began)))
                        self._drain()
                    finally:
                        sys.setswitchinterval(interval)

            kernel.post_handler_hook = post_handler_hook
            self._kernel_hooks.append((kernel, "post_handler_hook", post_handler_hook))
            self._after_reply = True
        original = getattr(kernel, "do_shutdown", None)
        if original is not None:

            def do_shutdown(restart, _original=original):
                self._on_exit()
                return _original(restart)

            kernel.do_shutdown = do_shutdown
            self._kernel_hooks.append((kernel, "do_shutdown", do_shutdown))
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
            signal.SIG_DFL,
            None,
        ):
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _watch_replies(self, kernel: Any) -> threading.Event | None:
        """An event the kernel's shell stream sets each time it has sent a message (the execute
        reply, cleared when a cell starts), where a shell-channel thread sends them (ipykernel 7):
        None elsewhere (a plain shell replies to no one; ipykernel 6 sends on the main thread, where the
        capture sends the queued reply itself first: ``_send_reply``).

        The stream's send callback is read and set on the shell-channel thread's own loop, as pyzmq
        reads and sets it there at each send. Where the callback never runs (an ipykernel 7 that sends
        on the socket itself), two waits time out with no reply ever seen and the session waits no more."""
        stream: Any = getattr(kernel, "shell_stream", None)
        loop = getattr(stream, "io_loop", None)
        self._send_reply: Callable[[], None] | None = None
        if getattr(kernel, "shell_channel_thread", None) is None:
            if callable(getattr(stream, "flush", None)):
                # ipykernel 6 queues the reply on the shell stream of the main thread and sends it once
                # the kernel says it is idle, after the capture: send it before, as ipykernel does then
                def send_reply() -> None:
                    try:
                        import zmq

                        stream.flush(zmq.POLLOUT)
                    except Exception:
                        pass

                self._send_reply = send_reply
            return None
        if not callable(getattr(stream, "on_send", None)):
            return None
        replied = threading.Event()
        held: dict[str, Any] = {}  # the callback the stream had before nbexp's
        self._replies_seen, self._reply_timeouts = False, 0  # a wait that timed out on a busy machine is no sign

        def sent(msg: Any, status: Any) -> None:
            self._replies_seen = True
            replied.set()
            chained = held.get("chained")
            if chained is not None:
                chained(msg, status)

        def install() -> None:
            held["chained"] = getattr(stream, "_send_callback", None)  # none in ipykernel: kept all the same
            stream.on_send(sent)

        def restore() -> None:
            if getattr(stream, "_send_callback", None) is sent:
                stream.on_send(held.get("chained"))

        try:
            if loop is not None:
                loop.add_callback(install)
            else:
                install()
        except Exception:  # a closed stream or loop: captures then do not wait
            return None
        self._reply_restore: tuple[Any, Callable[[], None]] | None = (loop, restore)
        return replied

    def _answered(self, text: str, wait: float = _YIELD_S, hand_over: bool = False) -> bool:
        """Whether a new cell text's analysis came from the analysis child (nbexp.capture.texts), waiting
        for it at most ``wait`` seconds: in a kernel ``_YIELD_S`` (the GIL free: the reply leaves
        meanwhile), the time a capture that reads a new text left the reply anyway; elsewhere (a plain
        shell, where the capture delays the prompt) not at all. A text the child was asked to read beside its
        cell (a cell that followed another at once, or ran past its hold) is not waited for longer: waiting in
        proportion to the text lost on a busy 2-core machine (the child, at nice 10, often late: the wait then
        came on top of reading the text here). ``hand_over`` (a kernel, its reply gone): a text still held,
        its cell done before its hold, goes to the child now, and the capture waits for the answer up to
        :func:`_child_wait` (the child then has a core to itself: the kernel waits, the GIL free). A late
        answer is not waited for: the text is read here, as without a child."""
        self._new_text = None  # waited for once
        texts = self._texts
        until = None
        if hand_over and texts.hand_over(text):
            wait, until = max(wait, _child_wait(text)), text
        if texts.waiting:
            texts.collect(wait, until)
        if texts.answered(text):
            return True
        texts.let_go(text)  # read here: the child, holding it or late, need not
        return False

    def _unhook_kernel(self) -> None:
        for kernel, name, hook in self._kernel_hooks:
            if kernel.__dict__.get(name) is hook:
                delattr(kernel, name)
        self._kernel_hooks, self._after_reply = [], False
        held = getattr(self, "_reply_restore", None)
        if held is not None:
            loop, restore = held
            try:
                if loop is not None:
                    loop.add_callback(restore)
                else:
                    restore()
            except Exception:
                pass
        self._reply_restore, self._replied, self._send_reply = None, None, None
        try:
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except ValueError:  # not the main thread (a shutdown request on the control thread)
            pass

    def _on_exit(self) -> None:
        try:
            self.stop("interrupted" if self._cell is not None else "ok")
        except Exception:  # never in the way of the kernel's own shutdown
            pass

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._on_exit()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    def stop(self, cell_status: str = "ok") -> None:
        """Close the open runs, unhook, flush and stop the writer. Safe to call twice.

        Args:
            cell_status: how a cell still executing ends: ``ok`` for ``%nbexp stop`` inside a
                cell, ``interrupted`` when the kernel shuts down (or gets SIGTERM) while it runs;
                its run then ends interrupted too.

        The run ends and the session's end are written and flushed first, before the
        threads are stopped, so a kernel killed during slow cleanup still has them.
        """
        global _session
        if getattr(self, "_stopped", False):
            return
        self._drain()
        self._stopped = True
        self._ending.set()
        if self.shell is not None:
            for event, fn in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
                try:
                    self.shell.events.unregister(event, fn)
                except ValueError:
                    pass
        self._unhook_kernel()
        if self.printed is not None:
            self.printed.stop()
        if self.outputs is not None:
            self.outputs.uninstall()
        end: tuple[str | None, str | None] = (None, None)
        at = None
        if self._cell is not None:  # stopped from inside a cell: its post_run_cell will not come
            self._store_cell_end(self._cell, cell_status)
            if self._cell.magic:  # %nbexp stop: the runs end where it began, it is none of their code
                at = self._cell.start
            self._cell = None
            if cell_status == "interrupted":
                end = ("interrupted", "the kernel shut down while a cell was running")
        for run in reversed(self.stack):
            run.end(*end, at=at)
        if self.current is not None:
            self.current.end(*end, at=at)
        self.store.end_session(self.id, time.time())
        self.writer.flush(timeout=2.0)
        self.sampler.stop()
        self.data.stop()
        self._texts.close()
        self.writer.close()
        try:
            self._reader.close()
        except sqlite3.Error:
            pass
        atexit.unregister(self.stop)
        if _session is self:
            _session = None

    def flush(self, timeout: float = 60.0) -> None:
        """Finish queued cell captures, wait for queued data summaries, then write everything queued."""
        self._drain()
        self.data.wait(timeout)
        self.writer.flush(timeout=timeout)

    def status_line(self) -> str:
        run = self.current
        cur = (
            (
                f"run {run.id}{' ' + repr(run.name) if run.name else ''} ({run.n_cells} cells, "
                f"{len(run.params)} params, {len(run.metric_keys)} metrics)"
            )
            if run
            else "no open run"
        )
        return (
            f"nbexp: tracking · ledger {self.ledger_path} · sprint {sprint_of(time.time())} · "
            f"session {self.id} · {cur} · {count(len(self.runs), 'run')}, {count(self.n_cells, 'cell')} this session · "
            f"{self.sampler.describe()}{'' if self.data.enabled else ' · data capture off'}"
            f"{'' if self.printed is not None or self.shell is None else ' · printed metrics off'}"
        )


def start(ledger: str | None = None, name: str | None = None, shell: Any = None, **kw: Any) -> Session:
    """Start tracking (stopping a session already running in this process)."""
    global _session
    if _session is not None:
        _session.stop()
    _session = Session(ledger, name, shell, **kw)
    return _session


def stop() -> None:
    if _session is not None:
        _session.stop()
