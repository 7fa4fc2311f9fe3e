"""The dataflow record of a session: what each name was computed from, and a run's backward slice.

Each executed cell adds its reads and writes (the :class:`~nbexp.capture.training.Training` read
from its syntax tree) and the params it set. A run's params are the params of the names its
training reached back to through this record (the backward slice), so session leftovers that
the training never read are not among them.

The record knows no session and no IPython: the session hands it each cell's analysis and the
namespace, and asks it for closures, params and whether a cell trains. It reports skipped
params through the ``warn`` callable and leaves out ``--exclude`` patterns through
``is_excluded``.
"""

from __future__ import annotations

import sys
import types
from typing import AbstractSet, Any, Callable, Iterable

from .capture.params import Skipped, from_object
from .capture.training import Training
from .recorder import Run

MISSING = object()
_UNKNOWN = object()  # which keys of a dict a build read: not known
# namespace values that are never config objects: skip them without a closer look
PLAIN = frozenset({int, float, bool, str, bytes, list, tuple, dict, set, type(None), complex})


def _is_object(obj: Any) -> bool:
    """A value bound to a name that is an object described by its params (not a literal, class or module)."""
    return obj is not MISSING and type(obj) not in PLAIN and not isinstance(obj, (type, type(sys)))


def _nested_ids(obj: Any) -> set[int]:
    """Ids of the estimators inside an estimator (a pipeline's steps, a search's estimator)."""
    if not (hasattr(obj, "get_params") and hasattr(obj, "fit")):
        return set()
    try:
        return {id(v) for v in obj.get_params(deep=True).values() if hasattr(v, "get_params")}
    except Exception:
        return set()


class Dataflow:
    """Reads and writes of a session's cells, and the backward slice they answer.

    Args:
        warn: ``warn(cause, message)``, for params of an object that could not be read.
        is_excluded: True for a param key the session never records.

    Attributes:
        params: per param key, its value as last assigned (literals, and objects' params as
            the cell that named them left them); a name rebound drops its old keys.
        deps: per name, the names the statement that last bound it read (a change in place
            adds to them).
        writers: per name, the code hash of the cell that last bound it.
        makers: per name, the cells (cell ids, or code hashes where the front end sends none) that made its
            value: the last to rebind it, and those that changed it in place or rebuilt it from itself since
            (``df = df[df.f1 > 0]``, ``df["f0"] = ...``).
        versions: per cell id, the code hash it last ran with (front ends that send cell ids).
        reads: per cell (as in ``makers``) that made a value, the names its last run read, less those it made.
        trainer_funcs: functions defined in the session whose bodies train.
    """

    def __init__(
        self,
        warn: Callable[[str, str], None] = lambda cause, message: None,
        is_excluded: Callable[[str], bool] = lambda key: False,
    ) -> None:
        self.warn = warn
        self.is_excluded = is_excluded
        self.params: dict[str, Any] = {}
        self.deps: dict[str, AbstractSet[str]] = {}
        self.writers: dict[str, str] = {}
        self.makers: dict[str, set[str]] = {}
        self.versions: dict[str, str] = {}
        self.reads: dict[str, AbstractSet[str]] = {}
        self.trainer_funcs: set[str] = set()
        # the order of the cells' bindings: when a name was last built (bound afresh, not changed in place), and when
        # a name bound to a literal was last set (see stale)
        self._bindings = 0
        self._built: dict[str, int] = {}
        self._set: dict[str, int] = {}
        # per name built from names bound to literals: those names' params as they were then (see built_with)
        self._built_with: dict[str, dict[str, Any]] = {}
        # per name built, the dicts its build read only by constant keys (those keys) or spread (None: every key)
        self._built_keys: dict[str, dict[str, frozenset[str] | None]] = {}
        self._in_place: set[str] = set()  # names set by a change in place (config["C"] = 0.01), not a literal

    def keys_of(self, name: str) -> set[str]:
        """The param keys the record holds of ``name`` (``name`` itself or ``name.<key>``)."""
        prefix = name + "."
        return {key for key in self.params if key == name or key.startswith(prefix)}

    def _params_under(self, roots: AbstractSet[str]) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if k.split(".", 1)[0] in roots}

    def trains(self, t: Training) -> bool:
        """Whether a cell trains: by its own code, or by calling a function whose body trains."""
        return t.trains or bool(t.calls & self.trainer_funcs)

    def record(self, t: Training, literal: dict[str, Any], computed: set[str], params: dict[str, Any]) -> None:
        """Keep what each name depends on and its params now. A name the cell binds or names
        is described afresh: a name rebound to another object keeps nothing of the old one."""
        described = t.writes | set(literal) | computed | {k.split(".", 1)[0] for k in params}
        if described:
            for key in [k for k in self.params if k.split(".", 1)[0] in described]:
                del self.params[key]
        self.params.update(params)
        for name, deps in t.deps.items():
            if name in t.mutated:
                self.deps[name] = self.deps.get(name, set()) | deps
            else:
                self.deps[name] = deps

    def bound(
        self,
        t: Training,
        code_hash: str,
        key: str | None = None,
        literal: AbstractSet[str] = frozenset(),
        changed: AbstractSet[str] = frozenset(),
    ) -> None:
        """Note which cell (by code hash) last bound each name ``t`` writes and which made its value, the
        functions it (re)defines (a function rebound to something else no longer trains), and the version
        of the cell (``key``: its cell id, or its code hash when the front end sends none) that ran; ``literal``: the
        names it bound to a literal (``C = 1.0``); ``changed``: config dicts it changed in place besides
        (``config.update(lr=0.01)``: see ``Session._configs_changed``)."""
        cell = key or code_hash
        self._bindings += 1
        if t.writes or changed:
            self.reads[cell] = (t.reads | t.mutated) - t.writes - changed
        for name in t.writes | changed:
            self.writers[name] = code_hash
            if name in t.mutated or name in changed:
                self.makers.setdefault(name, set()).add(cell)
                fed = {d for d in t.deps.get(name, ()) if d in self._set or d in literal}
                if fed and name in self._built:  # clf.set_params(C=C), clf.C = C: built again from C now
                    self._built[name] = self._bindings
                    self._built_with[name] = {**self._built_with.get(name, {}), **self._params_under(fed)}
                    keys = t.keys_read.get(name, {})
                    held = self._built_keys.setdefault(name, {})
                    for d in fed:  # set_params(C=params["C"]): that key of params now, another read: not known
                        if d in keys:
                            held[d] = keys[d]
                        else:
                            held.pop(d, None)
            else:
                self.makers[name] = {cell}
                self._built[name] = self._bindings
                set_from = {d for d in self.deps.get(name, ()) if d in self._set or d in literal}
                if set_from:  # clf = LogisticRegression(C=C): C's params now (a scan of the params, for such names)
                    self._built_with[name] = self._params_under(set_from)
                    self._built_keys[name] = dict(t.keys_read.get(name, {}))
                else:
                    self._built_with.pop(name, None)
                    self._built_keys.pop(name, None)
            if name in literal:
                self._set[name] = self._bindings
                self._in_place.discard(name)
            elif name in changed:  # config["C"] = 0.01: its keys read again (Session._configs_changed)
                self._set[name] = self._bindings
                self._in_place.add(name)
            else:
                self._set.pop(name, None)
                self._in_place.discard(name)
        if key is not None and key != code_hash:
            self.versions[key] = code_hash
        self.trainer_funcs -= t.writes - t.trainer_defs
        self.trainer_funcs |= t.trainer_defs

    def stale(self, t: Training, ns: dict[str, Any]) -> list[tuple[str, str]]:
        """``(name, value)`` pairs where ``name`` (what a training cell analysed as ``t`` trained or read, and does not
        build afresh itself) was built from ``value``, a name bound to a literal, and ``value`` was set again since,
        while ``name`` was not built again: ``C`` edited and run again with the training cell but not with ``clf =
        LogisticRegression(C=C)``; not ``clf = LogisticRegression(C=C).fit(X, y)`` run again, nor a function (in
        ``ns``, the namespace) whose body reads the value when it is called. Asked before the cell's own bindings are
        noted (:meth:`bound`)."""
        out = []
        for name in sorted((t.models | t.reads) - (t.writes - t.mutated)):
            built = self._built.get(name)
            if built is None or isinstance(ns.get(name), (types.FunctionType, type)):
                continue
            fed = t.deps.get(name, ()) if name in t.mutated else ()  # clf.set_params(C=C) in the training cell
            for value in sorted(self.deps.get(name, ())):
                if self._set.get(value, 0) <= built or value in fed:
                    continue
                keys = self._keys_read(name, value)
                if value in self._in_place and keys is _UNKNOWN:
                    continue  # a dict changed in place: whether the model read the keys that changed is not known
                if not self._same(name, value, keys):
                    out.append((name, value))
        return out

    def _keys_read(self, name: str, value: str) -> Any:
        """Which keys of the dict ``value`` the build of ``name`` read: a frozenset of them (``params["C"]``), None
        for all (``**params``), or ``_UNKNOWN`` (read otherwise, ``make_model(params)``, or not a dict)."""
        return self._built_keys.get(name, {}).get(value, _UNKNOWN)

    def _same(self, name: str, value: str, keys: Any = None) -> bool:
        """Whether ``value``'s params are what they were when ``name`` was built from it (set again to the same);
        ``keys``: the only keys of the dict ``value`` the build read (a frozenset), else all."""
        held = self._built_with.get(name)
        if held is None:
            return False

        def read(key: str) -> bool:
            parts = key.split(".", 2)
            return parts[0] == value and (not isinstance(keys, frozenset) or len(parts) > 1 and parts[1] in keys)

        return {k: v for k, v in held.items() if read(k)} == {k: v for k, v in self.params.items() if read(k)}

    def built_with(self, t: Training, stale: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """The params a training cell analysed as ``t`` used in place of the ones it would record: where a name it
        reads was built from a value that was set again since (:meth:`stale`), that value's params as they were when
        the name was built (``C`` 1.0, not the 0.01 it was set to after ``clf = LogisticRegression(C=C)`` ran);
        ``stale``: :meth:`stale` of the cell."""
        out: dict[str, Any] = {}
        for built, edited in stale:
            held = self._built_with.get(built, {})
            if edited in t.reads:  # what a training reading the value itself used it for is not known
                continue
            if edited in held:  # a plain value (C)
                out[edited] = held[edited]
                continue
            # a dict's keys, where the build read them by key (LogisticRegression(C=params["C"])) or spread them all
            # (**params); not where it read the dict otherwise (make_model(params): it may read params["alpha"] and
            # the training loop params["epochs"])
            keys = self._keys_read(built, edited)
            if keys is _UNKNOWN:
                continue
            for key, value in held.items():
                parts = key.split(".", 2)
                if parts[0] == edited and len(parts) > 1 and (keys is None or parts[1] in keys):
                    out[key] = value
        return out

    def globals_read(self, calls: set[str]) -> set[str]:
        """The globals the bodies of the training functions among ``calls`` read (``def run_experiment():
        model.fit(X_train, y_train)``: ``X_train``, ``y_train``), which the cell calling them reads through
        them without naming them."""
        out: set[str] = set()
        for name in calls & self.trainer_funcs:
            out |= self.deps.get(name, set())
        return out

    def closure(self, roots: set[str], stop: set[str] | frozenset[str] = frozenset()) -> set[str]:
        """``roots`` and every name they were computed from, through the dataflow record; names in ``stop``
        are neither reached nor followed."""
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            name = todo.pop()
            if name not in seen and name not in stop:
                seen.add(name)
                todo.extend(self.deps.get(name, ()))
        return seen

    def exclude(self) -> None:
        """Forget the params ``is_excluded`` now leaves out."""
        for key in [k for k in self.params if self.is_excluded(k)]:
            self.params.pop(key)

    def params_of(
        self,
        names: set[str],
        models: set[str],
        ns: dict[str, Any],
        defaults: set[str] | None = None,
        described: Iterable[str] = (),
    ) -> dict[str, Any]:
        """The params of ``names``: each object's as it is now, each literal's as last assigned.

        One object reached through several names is described once: under a name it trained
        through (``models``) when there is one, its nested estimators below it, not again under
        the names bound to them, nor under any name if ``described`` (names whose objects the
        caller has described already, such as a trained run's) holds it (``best = clf`` in an
        evaluation cell).
        """
        by_root: dict[str, dict[str, Any]] = {}
        for key, value in self.params.items():
            root = key.split(".", 1)[0]
            if root in names:
                by_root.setdefault(root, {})[key] = value
        out: dict[str, Any] = {}
        seen: set[int] = set()
        for name in described:
            obj = ns.get(name, MISSING)
            if _is_object(obj):
                seen.add(id(obj))
                seen.update(_nested_ids(obj))
        skipped: list[Skipped] = []
        for name in sorted(names, key=lambda n: (n not in models, n)):
            obj = ns.get(name, MISSING)
            if _is_object(obj):
                if id(obj) in seen:
                    continue
                try:
                    found = from_object(name, obj, skipped, defaults)
                except Exception:
                    found = {}
                if found:
                    seen.add(id(obj))
                    seen.update(_nested_ids(obj))
                    out.update(found)
                    continue
            out.update(by_root.get(name, {}))
        for s in skipped:
            self.warn(s.cause, str(s))
        return {k: v for k, v in out.items() if not self.is_excluded(k)}

    def slice_params(
        self,
        run: Run,
        t: Training,
        ns: dict[str, Any],
        trains: bool,
        refresh: bool = False,
        stale: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Make ``run``'s params what its training and evaluation depended on.

        At its first training cell the run's params become those of the backward slice from
        the cell (what it reads and binds, back through the dataflow record to literals,
        configs, estimators, optimizers and data); session leftovers outside it are dropped.
        Later training or evaluation cells of the run add the names they reach that the run
        had not, never changing a param the run already has (a trained run is not rewritten),
        unless ``refresh``: the cell that opened a run carried from a trained one (RunBook.carry)
        describes everything it reaches as it is now. A value set again after a model the training reads was built
        from it (``stale``: :meth:`stale` of the training cell) is recorded as the model was built with it
        (:meth:`built_with`).
        """
        roots = t.reads | t.models | t.writes if trains else set(t.reads)
        reached = self.closure(roots)
        # a value set again after the model was built from it did not reach the training: the one that did is recorded
        used = self.built_with(t, stale) if trains and self.trains(t) else {}
        models = run.models | t.models if trains else run.models
        defaults: set[str] = set()
        first = not run.frozen
        if first:
            run.slice = reached
            wanted = self.params_of(reached, models, ns, defaults)
        else:
            new = reached if refresh else reached - run.slice
            if not new:
                return
            described = () if refresh else frozenset(run.slice)
            run.slice |= new
            wanted = self.params_of(new, models, ns, defaults, described)
        used = {k: v for k, v in used.items() if k in wanted and wanted[k] != v}  # the values it did not get
        run.unused.update((k, wanted[k]) for k in used)
        wanted.update(used)
        if first:
            run.drop_params([k for k in run.params if k not in wanted])
        elif not refresh:
            wanted = {k: v for k, v in wanted.items() if k not in run.params}
        # estimator params left at their class's default are marked so (source ``default``), values a model was built
        # with that were set again since so (``built``: nbexp replay sets them back)
        run.set_params({k: v for k, v in wanted.items() if k not in defaults and k not in used}, source="assign")
        run.set_params({k: v for k, v in wanted.items() if k in defaults}, source="default")
        run.set_params({k: v for k, v in wanted.items() if k in used and k not in defaults}, source="built")
