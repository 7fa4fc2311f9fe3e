"""A session's run book: the runs it opened, which one is current, and when the next one opens.

A run is one training and its evaluation. Once a run trained, a cell that trains again, edits
a value the run's training used or recomputes one of its evaluation metrics opens the next
run (see :meth:`RunBook.screen` and :meth:`RunBook.reason`): before it runs when it may train
or is an edited version of a cell upstream of the training, otherwise once it ran, so most cells
are not parsed before the kernel replies; a re-run of a named run is named after it (``baseline #2``).

The run book knows no session and no IPython: it is handed the store runs are written to, the
writer's points queue, the dataflow record and the callables it needs, and the analysis of
the cell about to run.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import re
import secrets
import sqlite3
import sys
import time
import types
import unicodedata
from typing import AbstractSet, Any, Callable, Iterable

from .capture.metrics import as_scalar, names_split, qualified, split_of
from .capture.params import CallArgs, from_literals
from .capture.secrets import scrub_value
from .capture.training import CACHED_TEXTS, TRAIN_WORDS, TRANSFORM_FITS, Training
from .dataflow import Dataflow
from .datawatch import is_model
from .ledger import sprint_of
from .recorder import Run

_COUNTED = re.compile(r"(.*) #(\d+)", re.DOTALL)
# ASCII characters that end a word (a name or a number): a text's words are its runs of the others
_NOT_WORD = bytes(32 if b < 128 and not (chr(b).isalnum() or b == 95) else b for b in range(256))
_NOT_WORD_TEXT = {b: " " for b in range(128) if _NOT_WORD[b] == 32}
_DRAWN = 8  # run ids drawn (and checked against the ledger) at a time
_SPARE_S = 60.0  # how long ids found free are kept for the next runs


@functools.lru_cache(maxsize=CACHED_TEXTS)  # a re-executed cell's text is screened again before it runs
def _words(source: str) -> frozenset[str]:
    """The words of a cell's text, split at ASCII characters other than letters, digits and ``_``: its names,
    and its numbers (never a name: ``1e3`` holds none), which no name looked up in it matches. Half the time of
    a regex for names: 25 us of a new 50-line text's start (bench/RESULTS.md, issue 15). Python names may hold
    letters of any script, normalized as Python reads them (NFKC: ``µ`` is ``μ``, ``Ｌｒ`` is ``Lr``); a
    character beyond ASCII never ends a word (next to a name, in code, it is part of it)."""
    if not source.isascii():
        return frozenset(unicodedata.normalize("NFKC", source).translate(_NOT_WORD_TEXT).split())
    return frozenset(source.encode("ascii").translate(_NOT_WORD).decode("ascii").split())


class _Upstream:
    """What a run's training read, as it read it: the names (back through the dataflow record) and the cells
    (cell ids, or code hashes without ids) that made their values; ``made``: the names its training cells bound
    (their products and loop temporaries: not followed, as they are not what the training read)."""

    __slots__ = ("names", "cells", "made")

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.cells: set[str] = set()
        self.made: set[str] = set()


_BUILTINS = frozenset(dir(builtins))


class RunBook:
    """The runs of one session.

    Args:
        session_id: the session the runs belong to.
        store: the session's :class:`~nbexp.ledger.store.Store`.
        points: the writer's points queue (``Run.log`` appends to it).
        taken: of a list of run ids, the set the ledger already holds (ids are drawn, a few at a time,
            until free ones are found).
        dataflow: the session's :class:`~nbexp.dataflow.Dataflow` (what trains, what a name was
            computed from, which cell last bound it).
        is_excluded: True for a param key the session never records.
        on_end: called with a run when it ends, after the book has let it go.
        open_window: opens the system sampler's window over a new run.
        replay_of: the run the session replays; its runs point at it.
        named: of a run name, the highest counter the ledger's runs of that name hold (``baseline #3``: 3; 1 for
            ``baseline`` alone; 0 for none): a re-run, or a session's first run, never takes a name another has.

    Attributes:
        runs: every run opened, oldest first.
        current: the session's current run (None between ``%%nbexp run`` and the next cell).
        stack: the open ``with nbexp.run(...)`` blocks, innermost last.
    """

    def __init__(
        self,
        session_id: str,
        store: Any,
        points: Any,
        taken: Callable[[list[str]], set[str]],
        dataflow: Dataflow,
        is_excluded: Callable[[str], bool],
        on_end: Callable[[Run], None],
        open_window: Callable[[], Any],
        replay_of: str | None = None,
        named: Callable[[str], int] | None = None,
    ) -> None:
        self.session_id = session_id
        self.named = named
        self.store = store
        self.points = points
        self.taken = taken
        self._spare: list[str] = []  # ids drawn and found free, not used yet
        self._spare_until = 0.0
        self.dataflow = dataflow
        self.is_excluded = is_excluded
        self.on_end = on_end
        self.open_window = open_window
        self.replay_of = replay_of
        self.runs: list[Run] = []
        self._ids: set[str] = set()  # ids of self.runs
        self.current: Run | None = None
        self.stack: list[Run] = []
        self._rerun_counts: dict[str, int] = {}
        self._upstream: dict[str, _Upstream] = {}  # run id -> what its training read (see trained)
        # id of a text's analysis -> (it, its split): see _split
        self._splits: dict[int, tuple[Training, str | None]] = {}
        # a name a training read or trained through -> the keys that training recorded: see trained_keys
        self._model_keys: dict[str, frozenset[str]] = {}
        self._trained_of: dict[int, tuple[Training, frozenset[str]]] = {}  # id of an analysis -> its _trained keys

    def new_id(self) -> str:
        """A run id neither the ledger nor this session has used. Ids are drawn eight at a time and
        checked against the ledger in one query, so opening a run rarely reads the ledger (a re-run
        opens on the cell's path, before it runs)."""
        if time.monotonic() > self._spare_until:
            self._spare = []  # another kernel on this ledger may have drawn one since
        while self._spare:
            rid = self._spare.pop()
            if rid not in self._ids:
                return rid
        for _ in range(20):
            drawn = [rid for rid in dict.fromkeys(secrets.token_hex(3) for _ in range(_DRAWN)) if rid not in self._ids]
            try:
                taken = self.taken(drawn)
            except sqlite3.Error:  # the ledger unreadable now: an id is still drawn, unchecked
                taken = set()
            free = [rid for rid in drawn if rid not in taken]
            if free:
                self._spare, self._spare_until = free[1:], time.monotonic() + _SPARE_S
                return free[0]
        return secrets.token_hex(6)

    def open(
        self,
        name: str | None,
        kind: str,
        inherited: dict[str, Any],
        params: dict | None = None,
        nested: bool = False,
        start: float | None = None,
    ) -> Run:
        """Open a run with ``inherited`` then ``params`` as its params (checked by the caller);
        it becomes the current run, or, ``nested``, the innermost block. The current run, if
        any, is the caller's to end first. ``start``: when it started, if not now."""
        run = Run(
            self.new_id(),
            name,
            kind,
            {},
            store=self.store,
            points=self.points,
            is_excluded=self.is_excluded,
            on_end=self._ended,
        )
        if start is not None:
            run.start_time = start
        run.window = self.open_window()
        self.store.open_run(
            run.id, self.session_id, sprint_of(run.start_time), name, kind, run.start_time, self.replay_of
        )
        run.set_params(inherited, source="inherited")
        if params:
            run.set_params(params, source="explicit")
        self.runs.append(run)
        self._ids.add(run.id)
        if nested:
            self.stack.append(run)
        else:
            self.current = run
        return run

    def _ended(self, run: Run) -> None:
        self._upstream.pop(run.id, None)
        self.on_end(run)
        if run in self.stack:
            self.stack.remove(run)
        if run is self.current:
            self.current = None

    def screen(self, run: Run, key: str, code_hash: str, source: str) -> str | None:
        """How the cell about to run (``key``, ``code_hash``, ``source``) may open the next run
        after ``run`` trained, from its words and cell id alone (no parsing, before it runs):

        - ``"re-executed"``: it is a cell that trained in ``run`` (same cell id, or the same text:
          papermill, nbclient and nbconvert send no cell ids): it opens the next run before it runs;
        - ``"re-evaluates"``: it is an evaluation cell of ``run`` edited (its cell id, other text): it opens
          the next run before it runs, which evaluates ``run``'s model again (:meth:`carry`);
        - ``"edited upstream"``: it is an edited version of a cell that made a value ``run``'s training
          read (:meth:`edits_upstream`): it opens the next run before it runs;
        - ``"before"``: it names a training call, a function that trains or ``nbexp``: it may
          train (its curves and logged points belong to the run it opens), so :meth:`reason`
          decides before it runs;
        - ``"after"``: it names a value or an evaluation metric of ``run`` but nothing that
          trains, or it is an evaluation cell of ``run`` run again unchanged: :meth:`reason` (for the
          latter, whether it computed the same values) decides once it has run (off the kernel's reply),
          and the cell is recorded in the run it opens;
        - None: it names nothing the run used: no reason below can hold.
        """
        if key in run.training_cells or code_hash in run.training_cells:
            return "re-executed"
        words = _words(source)
        if self.edits_upstream(run, key, code_hash):
            return "edited upstream"
        evaluated = run.eval_cells.get(key)
        # the same text: decided once it ran, by what it computed (a training word in a comment changes nothing
        # there), unless it calls a function that trains or nbexp; edited, it opens the next run
        calls = words & self.dataflow.trainer_funcs or "nbexp" in words
        if evaluated is not None and evaluated[0] == code_hash and not calls:
            return "after"
        if words & TRAIN_WORDS or calls:
            return "before"
        if evaluated is not None:
            return "re-evaluates"
        if words & run.inputs or words & run.eval_metrics or words & run.param_roots:
            return "after"
        return None

    def metric_key(self, name: str, t: Training) -> str:
        """The key of a metric ``name`` that a cell analysed as ``t`` printed, bound or left in a result object. A cell
        that does not train and reads data of one split alone (what it names but does not call) says the split:
        always for a split other than the test split (``train_accuracy`` for ``accuracy_score(y_train,
        clf.predict(X_train))``, ``val_loss`` for a validation split, Keras's own names; ``dev_``, ``holdout_``...),
        and for the test split when the training of a model the cell reads recorded ``name`` (``test_loss`` for
        ``model.evaluate(x_test, ...)`` after ``fit``, whose History holds ``loss``; ``test_accuracy`` after a
        training cell that printed its own ``Accuracy``). A key that training recorded all the same (a cell of no
        split or of several, the validation split's ``val_loss`` a History holds) is ``eval_<key>``: an evaluation is
        never a point of its model's training curves. ``name`` itself for a training cell's metrics and a name that
        says its split.

        A tutorial prints ``Accuracy: ...`` for each split, each in a cell of its own: distinct metrics, neither a
        second point of the other nor an edit of the other's evaluation, named alike in every run whatever
        evaluation cells ran in it and in what order, and whether the run trained the model or evaluates one an
        earlier run trained (an edited threshold)."""
        split = self._split(t)
        if split is None or names_split(name):
            return name
        trained = self._trained(t)
        key = qualified(split, name) if split and (split != "test" or name in trained) else name
        return qualified("eval", key) if key in trained else key

    def keys_among(self, names: Iterable[str], t: Training, keys: AbstractSet[str]) -> dict[str, str]:
        """``{name: key}`` for the names among ``names`` whose :meth:`metric_key` (in a cell analysed as ``t``) is
        one of ``keys``. A key ends with its name (``test_`` + ``accuracy``, ``eval_`` + ``loss``), so only a name
        that ends one of them at a ``_`` is asked: a 50-line cell binds 50 names, of which a run's keys name one
        or two."""
        if not keys:
            return {}
        ends = _key_ends(keys)
        out = {}
        for name in names:
            if name in ends:
                key = self.metric_key(name, t)
                if key in keys:
                    out[name] = key
        return out

    def trained_keys(self, t: Training, keys: AbstractSet[str]) -> None:
        """A training cell (analysed as ``t``) recorded ``keys``: what the models it trained, and the values it read (a
        PyTorch loop trains ``opt`` and calls ``model``), stand for until a training reads them again (see
        :meth:`metric_key`)."""
        held = frozenset(keys)
        for name in t.models | t.reads:
            if name not in _BUILTINS:  # range, len: no evaluation reads them for the model
                self._model_keys[name] = held
        self._trained_of.clear()

    def _trained(self, t: Training) -> frozenset[str]:
        """The keys the last training of the models a cell analysed as ``t`` reads recorded (:meth:`trained_keys`)."""
        held = self._trained_of.get(id(t))
        if held is not None and held[0] is t:
            return held[1]
        keys = frozenset().union(*(self._model_keys[n] for n in t.reads if n in self._model_keys))
        if len(self._trained_of) >= CACHED_TEXTS:
            self._trained_of.clear()
        self._trained_of[id(t)] = (t, keys)
        return keys

    def _split(self, t: Training) -> str | None:
        """The one split (:func:`~nbexp.capture.metrics.split_of`) of the data a cell analysed as ``t`` reads, ``""``
        for none or several, None for a cell that trains; once per analysis (a text's, kept by the session)."""
        held = self._splits.get(id(t))
        if held is not None and held[0] is t:
            return held[1]
        split = None if self.dataflow.trains(t) else split_of(t.reads - t.calls)
        if len(self._splits) >= CACHED_TEXTS:
            self._splits.clear()
        self._splits[id(t)] = (t, split)
        return split

    def upstream(self, run: Run) -> _Upstream | None:
        """What ``run``'s training read (:meth:`trained`), for :meth:`carry` (a run lets it go as it ends)."""
        return self._upstream.get(run.id)

    def carry(self, prev: Run, new: Run, up: _Upstream | None) -> None:
        """``new`` evaluates ``prev``'s trained model again (an evaluation cell of ``prev`` edited, or run again and
        computing other values): it holds the same training, so it has ``prev``'s params (what that training
        depended on) and is trained like it: a changed value, a retraining or an edit upstream then opens the
        run after ``new``, instead of mixing a second model into it. ``up``: :meth:`upstream` of ``prev``, read
        before it ended."""
        by_source: dict[str, dict[str, Any]] = {}
        for key, value in prev.params.items():
            by_source.setdefault(prev.param_source(key), {})[key] = value
        for source, params in by_source.items():
            new.set_params(params, source=source)
        new.frozen = prev.frozen
        new.training_cells |= prev.training_cells
        new.models |= prev.models
        new.inputs |= prev.inputs
        new.estimators |= prev.estimators
        new.slice |= prev.slice
        if up is not None:
            mine = self._upstream.setdefault(new.id, _Upstream())
            mine.names |= up.names
            mine.cells |= up.cells
            mine.made |= up.made

    def trained(self, run: Run, t: Training) -> None:
        """A cell of ``run`` trained (``t``, its analysis): note what its training read, back through the
        dataflow record as it stands before the cell's own record, and the cells that made those values.

        Only cells that train count (an evaluation cell's metrics are not its training), and the names the
        run's training cells bound without reading them are not followed: a loop's ``labels`` or the model an epoch loop
        changed are the training's products, and a cell rebinding them later (the CIFAR tutorial's test
        batch) made nothing the training read."""
        flow = self.dataflow
        if not flow.trains(t):
            return
        up = self._upstream.setdefault(run.id, _Upstream())
        read = t.reads | t.mutated  # a training cell's df = df.dropna() or clf.fit(...) read df and clf too
        up.made |= t.writes - read
        names = flow.closure(read | flow.globals_read(t.calls), up.made)
        up.names |= names
        for name in names:
            up.cells |= flow.makers.get(name, set())

    def edits_upstream(self, run: Run, key: str, code_hash: str) -> bool:
        """Whether the cell about to run is an edited version of a cell that made a value ``run``'s training read
        (:meth:`trained`): the data filter two cells above the split the training reads, edited in place and
        re-run. Its edit would otherwise rewrite the trained run's code (what ``nbexp replay`` runs) until a cell
        the training names re-ran.

        Known by its cell id (JupyterLab sends one), which last ran other text and made such a value: nothing is
        parsed before the cell runs. A cell new after training (``images, labels = next(iter(testloader))``, a
        summary rebinding ``cols``, one with the very text of an upstream cell) is none, nor is a re-run of the
        same text (it computes what the run trained on), nor an edit of a cell that ran after the training.
        Without cell ids (papermill, nbclient) a cell is known by its text alone, and telling an edit from a new
        cell that rebinds the same names (``df = df.dropna()`` after ``df = df[df.f1 > -2]``) would take a parse
        before every cell and still open false runs: there such an edit runs in the trained run, and the split
        re-run on what it made opens the next run, which begins at the edit (:meth:`made_since`)."""
        up = self._upstream.get(run.id)
        if up is None or key == code_hash:  # no cell id
            return False
        last = self.dataflow.versions.get(key)
        return last is not None and last != code_hash and key in up.cells

    def made_since(self, run: Run, t: Training) -> set[str]:
        """The cells (cell ids, or code hashes without ids) that made a value the training of ``run`` read through
        a cell analysed as ``t`` and that are none of those it read it from (:meth:`trained`): a cell run since the
        training that changed the data ``t`` reads (the filter above the split edited, or a new cell changing the
        frame). Without cell ids that edit is told only here, once the split that reads it runs again. A cell that
        read the run's models, or a value computed from them, is none (``df["pred"] = clf.predict(...)``,
        ``df["score"] = proba``, ``best.predict(...)`` after ``best = clf``: what the run made, not what it trains
        on)."""
        up = self._upstream.get(run.id)
        if up is None:
            return set()
        flow = self.dataflow
        products = run.models | up.made
        out: set[str] = set()
        for name in flow.closure(t.reads | t.mutated, up.made) & up.names:
            for cell in flow.makers.get(name, set()) - up.cells:
                if not flow.closure(set(flow.reads.get(cell, ()))) & products:
                    out.add(cell)
        return out

    def reason(
        self,
        run: Run,
        code_hash: str,
        source: str,
        analyze: Callable[[str], tuple[dict[str, Any], set[str], list[str], Training]],
        cell_id: str | None = None,
    ) -> str | None:
        """Why a cell (``code_hash``, ``source``) that :meth:`screen` did not pass starts a new run
        after ``run`` trained, or None. ``analyze`` gives ``(literal, computed, names, training)``
        of a source (the session's, cached); ``cell_id``: its JupyterLab cell id, None without ids.

        - it trains through a name ``run`` trained through (an edited training cell without ids);
        - it trains a model that owes nothing to ``run``'s models: neither a name it trained through nor an
          estimator its training used, nor anything computed from them (``another training``: a quick baseline
          and the real model on the same data are two runs); a transformer fitted for its output alone
          (``PCA(2).fit_transform(X_test)`` for a plot) is not another training;
        - it assigns a literal that differs from ``run``'s param (``C = 1.0`` edited to ``C = 0.1``);
        - it rebinds a name ``run``'s training read (the globals its training functions read too), with code
          other than what last bound it, or from data a cell run since the training made (:meth:`made_since`);
        - it recomputes a metric that a non-training cell of ``run`` computed (an edited
          evaluation cell without ids, or with its id). A cell whose id no evaluation of ``run`` had is
          another cell, not an edit: the test split's accuracy bound after the training split's, each in a cell
          of its own, is one evaluation of the run. Without ids too, the training split's is another metric
          (:meth:`metric_key`).
        """
        flow = self.dataflow
        literal, computed, _names, t = analyze(source)
        trains = flow.trains(t)
        if trains and t.models & run.models:
            return "retrains"
        if (
            trains
            and run.models
            and not (t.train_calls and t.train_calls <= TRANSFORM_FITS and not t.calls & flow.trainer_funcs)
            and not flow.closure(t.reads | t.models) & (run.models | run.estimators)
        ):
            return "another training"  # a model that owes nothing to this run's models (shared data does not tie)
        # a call's literal arguments (``evaluate(clf, X_val, split='val')``, ``plot(h, title='Loss')``) are not
        # values the training read: an evaluation helper called with other arguments opens nothing
        values = {k: v for k, v in literal.items() if not isinstance(v, CallArgs)}
        for k, v in from_literals(values, []).items():
            if k in run.params and not self.is_excluded(k):
                old = run.unused.get(k, run.params[k])  # C set to what it held when the run trained: no change
                v = scrub_value(k, v)
                if old != v or type(old) is not type(v):
                    return "changed"
        if any(n in run.inputs and flow.writers.get(n) != code_hash for n in t.writes if n not in literal):
            return "upstream"
        if t.writes & run.inputs and self.made_since(run, t):
            return "upstream"  # the split re-run on data that a cell run since the training made
        if (cell_id is None or cell_id in run.eval_cells) and self.keys_among(computed, t, run.eval_keys):
            return "re-evaluates"
        return None

    @staticmethod
    def outcome(
        ns: dict[str, Any],
        names: set[str],
        printed: tuple,
        shown: Any,
        changed: AbstractSet[str] = frozenset(),
        displayed: list | tuple = (),
    ) -> dict[str, Any] | None:
        """What an evaluation cell computed, comparable between two runs of its text: a fingerprint of each
        value it bound or changed (``names`` in ``ns``; ``changed``: those it changed in place), of what it showed
        and displayed (``(kind, mime, data)``: a figure's picture as the notebook got it) and the metrics it
        printed; None when one of them cannot be compared cheaply (a new model, a large array or frame, a CUDA
        tensor): such a cell opens the next run whenever it runs again. A figure, chart or plot object counts by
        its kind (what it draws is in what the cell displayed), a scikit-learn ``*Display`` by the values it
        computed; a model the cell bound, not changed, that another name of the notebook holds (``best = clf``)
        counts as that name's object."""
        out: dict[str, Any] = {}
        budget = list(_BUDGET)  # shared: a cell binding a thousand 1 MB arrays is not read whole
        for name in sorted(names):
            if name in ns:
                fp = _fingerprint(ns[name], budget)
                out[name] = _held_as(ns, names, ns[name]) if fp is _UNKNOWN and name not in changed else fp
        out["<shown>"] = _fingerprint(shown, budget)
        out["<displayed>"] = _fingerprint(list(displayed), budget)
        out["<printed>"] = _fingerprint(list(printed), budget)
        return None if any(v is _UNKNOWN for v in out.values()) else out

    def rerun_name(self, prev: Run) -> str | None:
        """``baseline #2`` after ``baseline``, ``baseline #3`` after that; None after an unnamed run."""
        if not prev.name:
            return None
        m = _COUNTED.fullmatch(prev.name)
        base, n = (m.group(1), int(m.group(2))) if m else (prev.name, 1)
        n = max(n, self._count(base)) + 1
        self._rerun_counts[base] = n
        return f"{base} #{n}"

    def first_name(self, name: str | None) -> str | None:
        """The name of a session's first run asked as ``name``: ``name`` itself when no run of the ledger has it, else
        the next counter (the notebook run again after a kernel restart: ``baseline #2``, not a second
        ``baseline`` that ``nbexp show baseline`` could not tell apart)."""
        if not name:
            return name
        m = _COUNTED.fullmatch(name)
        base = m.group(1) if m else name
        n = self._count(base)
        if n == 0 or m and int(m.group(2)) > n:
            return name
        self._rerun_counts[base] = n + 1
        return f"{base} #{n + 1}"

    def _count(self, base: str) -> int:
        """The highest counter of ``base`` this session or, the first time it is asked, the ledger holds."""
        if base not in self._rerun_counts:
            try:
                self._rerun_counts[base] = self.named(base) if self.named is not None else 0
            except sqlite3.Error:  # the ledger unreadable now: this session's own counter
                self._rerun_counts[base] = 0
        return self._rerun_counts[base]


def _key_ends(keys: AbstractSet[str]) -> frozenset[str]:
    """Each key and each of its ends after a ``_`` (``eval_test_loss``: ``test_loss``, ``loss``): the names a metric of
    that key may have been bound to (see :meth:`RunBook.keys_among`). Kept per key set while its size holds: the
    sets asked (a run's metric keys, its evaluation keys) only grow."""
    held = _ENDS.get(id(keys))
    if held is not None and held[0] is keys and held[1] == len(keys):  # a run's keys only grow
        return held[2]
    now = tuple(keys)  # at once: nbexp.log from a thread of the user's may add a key while a capture reads them
    ends = frozenset(key[i + 1 :] for key in now for i, c in enumerate(key) if c == "_") | frozenset(now)
    if len(_ENDS) >= 64:
        _ENDS.clear()
    _ENDS[id(keys)] = (keys, len(now), ends)
    return ends


_ENDS: dict[int, tuple[AbstractSet[str], int, frozenset[str]]] = {}  # id of a key set -> (it, its size, its ends)
_UNKNOWN = object()  # a value a fingerprint cannot stand for
_MAX_ITEMS = 1000  # the longest container fingerprinted item by item
_MAX_BYTES = 1 << 20  # the largest array, tensor or text fingerprinted
_BUDGET = (8 << 20, 100_000)  # bytes and items one outcome may read, all its values together
# Libraries whose objects are figures, charts and plots: a fingerprint stands for their kind (see _fingerprint_of).
_VIEW_LIBRARIES = frozenset({"matplotlib", "plotly", "seaborn", "bokeh", "altair"})
_DATA_LIBRARIES = frozenset({"builtins", "numpy", "pandas", "torch"})


def _is_view(obj: Any) -> bool:
    """A figure, axes, artist or chart (scikit-learn's ``*Display`` plots too), of the class or a parent's."""
    if str(type(obj).__module__).partition(".")[0] in _DATA_LIBRARIES:
        return False  # an array, frame or tensor: no class of theirs draws (the walk below is for every value)
    for cls in type(obj).__mro__[:-1]:
        top = str(getattr(cls, "__module__", "")).partition(".")[0]
        if top in _VIEW_LIBRARIES or top == "sklearn" and cls.__name__.endswith("Display"):
            return True
    return False


def _held_as(ns: dict[str, Any], names: set[str], obj: Any) -> Any:
    """A model bound by the cell to a name that another name of the notebook (one the cell did not bind, not
    IPython's ``_`` names) holds too: the cell bound no new model (``best = clf``), and it stands for that name's
    object. Else ``_UNKNOWN``."""
    if not is_model(obj):
        return _UNKNOWN
    held = sorted(k for k, v in list(ns.items()) if v is obj and k not in names and not k.startswith("_"))
    return ("held as", held[0], id(obj)) if held else _UNKNOWN


def _fingerprint(obj: Any, budget: list[int] | None = None, depth: int = 0) -> Any:
    """A hashable stand-in for ``obj`` equal for equal values (NaN equal to NaN), or ``_UNKNOWN``: plain values,
    small containers of them, plain functions, classes and modules by name, figures and plots by their kind
    (:func:`_is_view`), NumPy arrays and CPU tensors up to 1 MB by a hash of their bytes, pandas frames and
    series up to 100,000 cells by a hash of their rows; at most ``budget`` (bytes, items; spent here) in all.
    Reads nothing from a GPU and never raises."""
    if budget is None:
        budget = list(_BUDGET)
    try:
        return _fingerprint_of(obj, budget, depth)
    except Exception:
        return _UNKNOWN


def _spend(budget: list[int], nbytes: int, items: int = 1) -> bool:
    budget[0] -= nbytes
    budget[1] -= items
    return budget[0] >= 0 and budget[1] >= 0


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _fingerprint_of(obj: Any, budget: list[int], depth: int) -> Any:
    budget[1] -= 1  # _spend(budget, 0), inline: a cell's values are mostly numbers, read here first
    if budget[1] < 0 or budget[0] < 0:
        return _UNKNOWN
    cls = type(obj)
    if cls is float:
        return "nan" if obj != obj else obj
    if cls is int:
        return obj
    if obj is None or cls is bool:
        return ("bool", obj)
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return "nan" if obj != obj else obj
    if isinstance(obj, (str, bytes)):
        if len(obj) > _MAX_BYTES or not _spend(budget, len(obj)):
            return _UNKNOWN
        data = obj.encode("utf-8", "surrogatepass") if isinstance(obj, str) else obj
        return (type(obj).__name__, obj if len(obj) <= 256 else _digest(data))
    if isinstance(obj, types.ModuleType):
        return ("module", obj.__name__)
    if isinstance(obj, types.FunctionType):  # a closure's captured values are not its name
        return ("ref", obj.__module__, obj.__qualname__) if not obj.__closure__ else _UNKNOWN
    if isinstance(obj, type):
        return ("ref", obj.__module__, obj.__qualname__)
    if callable(obj):  # builtins, ufuncs, NumPy's dispatchers; a bound method is its object's: not compared
        bound = getattr(obj, "__self__", None)
        qualname = getattr(obj, "__qualname__", None)
        if isinstance(qualname, str) and (bound is None or isinstance(bound, types.ModuleType)):
            return ("ref", getattr(obj, "__module__", None), qualname)
        return _UNKNOWN
    if isinstance(obj, (list, tuple, dict)):
        if depth >= 3 or len(obj) > _MAX_ITEMS:
            return _UNKNOWN
        items = [x for kv in obj.items() for x in kv] if isinstance(obj, dict) else list(obj)
        if all(type(x) is int or type(x) is float and x == x for x in items):  # numbers: their own fingerprints
            budget[1] -= len(items)
            return (type(obj).__name__, tuple(items)) if budget[1] >= 0 else _UNKNOWN
        fps = []
        for x in items:
            f = _fingerprint_of(x, budget, depth + 1)
            if f is _UNKNOWN:
                return _UNKNOWN
            fps.append(f)
        return (type(obj).__name__, tuple(fps))
    if _is_view(obj):  # a new object each time the cell runs: what it draws is in what the cell displayed
        kind = ("view", type(obj).__module__, type(obj).__qualname__)
        if type(obj).__module__.startswith("sklearn"):  # a *Display holds the values it computed (its artists: views)
            values = _fingerprint_of(dict(vars(obj)), budget, depth + 1)
            return _UNKNOWN if values is _UNKNOWN else (*kind, values)
        return kind
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        if type(obj) is np.ndarray and obj.dtype == object and obj.size <= _MAX_ITEMS and depth < 3:
            items = [_fingerprint_of(x, budget, depth + 1) for x in obj.flat]  # plt.subplots(2, 2)'s axes
            return _UNKNOWN if any(f is _UNKNOWN for f in items) else ("ndarray", obj.shape, "object", tuple(items))
        if type(obj) is not np.ndarray or obj.dtype.hasobject or obj.nbytes > _MAX_BYTES:
            return _UNKNOWN  # masked arrays and other subclasses: more than their bytes
        if not _spend(budget, obj.nbytes):
            return _UNKNOWN
        return ("ndarray", obj.shape, str(obj.dtype), _digest(np.ascontiguousarray(obj).tobytes()))
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, (pd.DataFrame, pd.Series)):  # a results table, by its values and labels
        if obj.size > _MAX_ITEMS * 100 or not _spend(budget, obj.size * 8, obj.size // 100):
            return _UNKNOWN
        labels = _fingerprint_of(
            [str(obj.dtypes.to_dict() if obj.ndim == 2 else obj.dtype), list(map(str, getattr(obj, "columns", [])))],
            budget,
            depth + 1,
        )
        rows = pd.util.hash_pandas_object(obj, index=True).to_numpy().tobytes()  # raises on unhashable cells
        return _UNKNOWN if labels is _UNKNOWN else (type(obj).__name__, obj.shape, labels, _digest(rows))
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        nbytes = obj.nelement() * obj.element_size()
        if obj.device.type != "cpu" or obj.layout != torch.strided or nbytes > _MAX_BYTES or not _spend(budget, nbytes):
            return _UNKNOWN
        flat = obj.detach().contiguous().view(-1).view(torch.uint8).numpy()
        return ("tensor", tuple(obj.shape), str(obj.dtype), _digest(flat.tobytes()))
    value = as_scalar(obj)  # NumPy scalars
    if value is None:
        return _UNKNOWN
    return "nan" if value != value else value
