"""Metrics from the result objects real code leaves (docs/design.md "Metrics", issue 16).

Tutorials rarely assign ``test_acc = ...``: their results sit in objects. After a cell ran,
:func:`harvest` reads them from the names the cell bound, the models it trained and the
value its last expression showed, and returns metric points and result tables for the run
the cell belongs to:

- **Keras**: a ``History`` (bound or shown) gives one curve per key of ``history.history``,
  step = epoch. What ``model.evaluate(...)`` returned (a list, a scalar or a dict) is named by
  the model's metric names, prefixed ``test_`` / ``val_`` when the call's data is named so
  (``model.evaluate(x_test, y_test)`` gives ``test_loss``), else ``eval_`` (a bare ``loss``
  would run on from the training curve of the same name).
- **scikit-learn**: a search the cell fitted gives ``best_score`` (``best_<scoring>`` when
  scoring is one string, ``best_<refit>`` for several) and the tables ``cv_results`` (the
  ``param_*`` columns and each scorer's mean, std and rank) and ``best_params`` (one row).
  ``cross_val_score(...)`` bound to ``scores`` gives ``scores_mean`` and ``scores_std``;
  ``cross_validate(...)`` the mean and std of each ``test_*`` / ``train_*`` key;
  ``classification_report(..., output_dict=True)`` ``accuracy``, ``macro_avg_f1_score``-style
  keys (per class too for at most 10 classes; bound to ``test_report``: ``test_accuracy``, see
  below); ``est.score(...)`` and the ``sklearn.metrics`` functions, shown as the last value
  or bound to a name that does not look like a metric, a metric named after the
  function (``accuracy_score`` gives ``accuracy``).
- **XGBoost / LightGBM**: a model the cell trained gives its ``evals_result_`` as curves
  ``<eval set>.<metric>`` (step = round), ``best_iteration`` and ``best_<metric>`` when early
  stopping set them; a LightGBM ``Booster`` its ``best_score`` per eval set and metric; the
  dicts ``xgb.train(evals_result=d)`` and ``lgb.record_evaluation(d)`` fill, curves too.
- **Anything else** (PyTorch loops): a real scalar the last expression showed, when the
  function called or the name shown looks like a metric (``test_loop(...)``), and a dict of
  metric-like names to scalars.
- **Metrics kept in a dict**: a metric-like key the cell stores a computed scalar under
  (``results["f1"] = f1_score(...)``, ``results.update(accuracy=...)``, ``scores = {"auc": auc(...)}``),
  read from the dict once the cell ran, source ``namespace`` (a dict of literal values is a config).

A dict's keys are qualified by what the dict's name adds to "results"
(:func:`nbexp.capture.metrics.container_qualifier`): ``train_scores = {"f1": ...}`` and
``test_scores = {"f1": ...}`` give ``train_f1`` and ``test_f1``, ``rf_results["acc"]`` gives
``rf_acc``, while ``results``, ``scores``, ``metrics``, a record's name (``cr``, ``row``, ``entry``:
:data:`nbexp.capture.metrics.CONTAINER_WORDS`) or ``d`` add nothing (``f1``), and a key that says it
already stays (``val_metrics["val_loss"]`` is ``val_loss``). A key is spelled as a printed name is
(:func:`nbexp.capture.metrics.normalize_name`): ``test_scores["F1"]`` and a printed ``test F1 0.8``
are both ``test_f1``. Always, not only when
two dicts collide: the key depends on the dict's name alone, the same in every cell and every
run of the notebook. A dict shown by its name as a cell's value is read the same way.

Libraries are never imported here: objects are recognised by their class's module and name
and by duck attributes. Which call produced a name is read from the cell's syntax tree, parsed
only when a candidate object is there. A result object (a History, a shown dict) is harvested
once per session (:class:`Seen`): re-showing ``history`` or ``history.history`` adds nothing.
"""

from __future__ import annotations

import ast
import re
import sys
import types
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from . import syntax
from .metrics import NamePattern, as_scalar, container_qualifier, normalize_name, qualified
from .training import cell_tree, training_call

MAX_POINTS = 100_000  # points taken from the curves of one cell
MAX_ROWS = 500  # rows of a search's cv_results kept
MAX_CLASSES = 10  # per-class metrics of a classification report up to this many classes
MAX_SEEN = 4096

CV_SCORE = frozenset({"cross_val_score"})
CV_VALIDATE = frozenset({"cross_validate"})
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.]+")


@dataclass
class Found:
    key: str
    value: float
    source: str
    step: int | None = None


@dataclass
class Table:
    name: str
    columns: list[str]
    rows: list[list[Any]]
    source: str


@dataclass
class Harvest:
    """What one cell left: metric points, result tables, and a line per object that could not be read."""

    metrics: list[Found] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def record(self, run: Any) -> None:
        """Write it to ``run`` (a :class:`nbexp.recorder.Run`)."""
        for f in self.metrics:
            run.log_found(f.key, f.value, source=f.source, step=f.step)
        for t in self.tables:
            run.log_table(t.name, t.columns, t.rows, source=t.source)


class Seen:
    """Result objects already harvested in a session, by identity (weakly where the object allows)."""

    def __init__(self) -> None:
        self._refs: dict[int, tuple[bool, Any]] = {}

    def __contains__(self, obj: Any) -> bool:
        entry = self._refs.get(id(obj))
        if entry is None:
            return False
        weak, ref = entry
        return (ref() if weak else ref) is obj

    def add(self, obj: Any) -> None:
        try:
            entry = (True, weakref.ref(obj))
        except TypeError:  # dicts and lists: held, so their id is not reused meanwhile
            entry = (False, obj)
        if len(self._refs) >= MAX_SEEN:
            self._refs.pop(next(iter(self._refs)))
        self._refs[id(obj)] = entry


def metric_key(name: Any) -> str | None:
    """``name`` as a metric key: letters, digits, ``_`` and ``.`` (``f1-score`` -> ``f1_score``)."""
    key = _KEY_CHARS.sub("_", str(name)).strip("_.")
    if not key:
        return None
    return key if not key[0].isdigit() else f"m_{key}"


# -- the cell's syntax -----------------------------------------------------------------------
@dataclass
class CellSyntax:
    producers: dict[str, ast.Call] = field(default_factory=dict)  # name -> the call it was last bound to
    last: ast.expr | None = None  # the expression whose value the cell shows
    filled: list[tuple[str, str]] = field(default_factory=list)  # (dict name, source): evals_result=d
    stored: dict[str, list[str]] = field(default_factory=dict)  # dict name -> keys given a computed value


def _computed(node: ast.expr) -> bool:
    """Whether a value is computed: not a constant (``0.5``, ``-1``) nor a display (a config's lists, dicts)."""
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return not isinstance(node, (ast.Constant, ast.List, ast.Tuple, ast.Dict, ast.Set))


def _str_keys(node: ast.Dict) -> list[str]:
    """The string keys of a dict display whose values are computed."""
    return [
        k.value
        for k, v in zip(node.keys, node.values)
        if isinstance(k, ast.Constant) and isinstance(k.value, str) and _computed(v)
    ]


def _stores(st: ast.stmt, stored: dict[str, list[str]]) -> None:
    """The keys a statement stores computed values under in a dict it names: ``d["f1"] = ...``,
    ``d.update(f1=...)``, ``d.update({"f1": ...})``, ``d = {"f1": ...}`` (which starts ``d`` afresh)."""
    if isinstance(st, (ast.Assign, ast.AnnAssign)) and st.value is not None:
        targets = st.targets if isinstance(st, ast.Assign) else [st.target]
        for target in targets:
            if isinstance(target, ast.Name):
                stored.pop(target.id, None)
                if isinstance(st.value, ast.Dict) and len(targets) == 1:
                    stored[target.id] = _str_keys(st.value)
            elif (
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Name)
                and isinstance(target.slice, ast.Constant)
                and isinstance(target.slice.value, str)
                and _computed(st.value)
            ):
                stored.setdefault(target.value.id, []).append(target.slice.value)
    elif isinstance(st, ast.Expr) and isinstance(st.value, ast.Call):
        call = st.value
        f = call.func
        if isinstance(f, ast.Attribute) and f.attr == "update" and isinstance(f.value, ast.Name):
            keys = [kw.arg for kw in call.keywords if kw.arg is not None and _computed(kw.value)]
            if len(call.args) == 1 and isinstance(call.args[0], ast.Dict):
                keys += _str_keys(call.args[0])
            if keys:
                stored.setdefault(f.value.id, []).extend(keys)


def _statements(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Every statement at cell level, inside loops, ``with``, ``if`` and ``try`` too (not in defs)."""
    for st in body:
        yield st
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for name in ("body", "orelse", "finalbody"):
            inner = getattr(st, name, None)
            if isinstance(inner, list):
                yield from _statements(inner)
        for handler in getattr(st, "handlers", None) or []:
            yield from _statements(handler.body)


def _unawait(node: ast.expr | None) -> ast.expr | None:
    return node.value if isinstance(node, ast.Await) else node


def cell_syntax(tree: ast.Module) -> CellSyntax:
    out = CellSyntax()
    for st in _statements(tree.body):
        target: ast.expr | None
        value: ast.expr | None
        if isinstance(st, ast.Assign) and len(st.targets) == 1:
            target, value = st.targets[0], st.value
        elif isinstance(st, ast.AnnAssign) and st.value is not None:
            target, value = st.target, st.value
        else:
            target = value = None
        if isinstance(target, ast.Name):
            value = _unawait(value)
            if isinstance(value, ast.Call):
                out.producers[target.id] = value
            else:
                out.producers.pop(target.id, None)
        _stores(st, out.stored)
    out.stored = {name: list(dict.fromkeys(keys)) for name, keys in out.stored.items() if keys}
    for node in syntax.calls(tree):
        name = _call_name(node)
        if name == "record_evaluation" and node.args and isinstance(node.args[0], ast.Name):
            out.filled.append((node.args[0].id, "lightgbm"))
        elif training_call(node, False) == "train":
            root = _root(node.func)
            source = "lightgbm" if root in ("lgb", "lightgbm") else "xgboost"
            for kw in node.keywords:
                if kw.arg == "evals_result" and isinstance(kw.value, ast.Name):
                    out.filled.append((kw.value.id, source))
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        out.last = _unawait(tree.body[-1].value)
    return out


def syntax_of(source: str, transform: Callable[[str], str]) -> CellSyntax | None:
    """What :func:`harvest` reads from a cell's text (None: it does not parse); a session keeps it per text
    (:mod:`nbexp.capture.texts`)."""
    tree = cell_tree(source, transform)
    return cell_syntax(tree) if tree is not None else None


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def _root(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _resolve(node: ast.expr, ns: Mapping[str, Any]) -> Any:
    """The object ``model`` or ``mod.fn`` names (attributes read only off modules); None if unknown."""
    if isinstance(node, ast.Name):
        return ns.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, ns)
        if isinstance(owner, types.ModuleType):
            return getattr(owner, node.attr, None)
        if isinstance(node.value, ast.Name) and owner is not None:  # model.evaluate: the model
            return owner
    return None


# -- recognising objects ---------------------------------------------------------------------
def _module(obj: Any) -> str:
    return type(obj).__module__ or ""


def is_history(obj: Any) -> bool:
    t = type(obj)
    return (
        t.__name__ == "History" and "keras" in (t.__module__ or "") and isinstance(getattr(obj, "history", None), dict)
    )


def is_search(obj: Any) -> bool:
    return (
        "sklearn" in sys.modules
        and not isinstance(obj, type)
        and hasattr(obj, "best_score_")
        and isinstance(getattr(obj, "cv_results_", None), dict)
    )


def _boosting_source(obj: Any) -> str | None:
    mod = _module(obj)
    for lib in ("xgboost", "lightgbm"):
        if mod.startswith(lib) and lib in sys.modules and not isinstance(obj, type):
            return lib
    return None


def _is_array(obj: Any) -> bool:
    return _module(obj) == "numpy" and type(obj).__name__ == "ndarray"


# -- harvesting --------------------------------------------------------------------------------
def harvest(
    *,
    source: str,
    transform: Callable[[str], str],
    ns: Mapping[str, Any],
    bound: Iterable[str],
    models: Iterable[str],
    last: Any,
    seen: Seen,
    metric_re: NamePattern,
    known: set[str],
    kept_syntax: Callable[[], CellSyntax | None] | None = None,
) -> Harvest:
    """The metrics and tables one cell that ran without error left.

    Args:
        source: the cell's code (IPython syntax allowed), parsed only when a candidate is there.
        transform: IPython's ``shell.transform_cell``.
        ns: the kernel's namespace after the cell.
        bound: names the cell binds or changes; models: names it trained through.
        last: the value its last expression showed (``ExecutionResult.result``), or None.
        seen: the session's result objects already harvested (updated here).
        metric_re: what a metric-like name looks like; known: the run's metric keys so far.
        kept_syntax: gives the cell's syntax when the caller keeps it per text (else the text is read).
    """
    out = Harvest()
    models = [m for m in dict.fromkeys(models) if m in ns]
    names = [n for n in dict.fromkeys([*bound, *models]) if n in ns]  # scores = cross_val_score(...) trains too
    syntax: list[CellSyntax | None] = []

    def tree() -> CellSyntax | None:
        if not syntax:
            try:
                syntax.append(kept_syntax() if kept_syntax is not None else syntax_of(source, transform))
            except Exception as exc:  # IPython could not transform it: no names traced to calls
                out.problems.append(f"results: the cell's code could not be read ({type(exc).__name__}: {exc})")
                syntax.append(None)
        return syntax[0]

    for name in models:
        _guard(out, name, _model, ns[name], out)
    parsed = tree() if models and ("evals_result" in source or "record_evaluation" in source) else None
    if parsed is not None:
        for dict_name, lib in parsed.filled:
            evals = ns.get(dict_name)
            _guard(out, dict_name, _curves, evals, lib, out)
            if lib == "xgboost" and "metric_name" not in source:  # EarlyStopping(metric_name=...) watched another
                # the native xgb.train's Booster keeps no results of its own: its best score is named by the dict
                for f in out.metrics:
                    if f.key == "best_score" and f.source == "xgboost":
                        f.key = _best_key(evals)
    if ".update(" in source:  # d.update(f1=...) changes d in place: not among the names bound
        parsed = tree()
        if parsed is not None:
            names += [n for n in parsed.stored if n in ns and n not in names]
    for name in names:
        obj = ns[name]
        if is_history(obj):
            _guard(out, name, _history, obj, seen, out)
        elif syntax and (syntax[0] is None or name not in syntax[0].producers and name not in syntax[0].stored):
            continue  # the code read once: a name neither bound to a call nor filled in place has nothing to read
        elif isinstance(obj, (list, tuple, dict, float, int)) or _is_array(obj) or as_scalar(obj) is not None:
            s = tree()
            call = s.producers.get(name) if s is not None else None
            if call is not None:
                _guard(out, name, _produced, name, obj, call, ns, metric_re, out)
            if s is not None and name in s.stored and isinstance(obj, dict):
                _guard(out, name, _stored, name, obj, s.stored[name], metric_re, seen, out)
    if last is not None and not any(last is ns.get(n) for n in models):
        _guard(out, "the cell's value", _shown, last, tree, ns, seen, metric_re, known, out)
    return out


def _guard(out: Harvest, what: str, extract: Callable[..., None], *args: Any) -> None:
    try:
        extract(*args)
    except Exception as exc:  # a library's object we do not understand: one line, never a broken cell
        out.problems.append(f"results of {what} skipped ({type(exc).__name__}: {exc})")


def _add(out: Harvest, key: Any, value: Any, source: str, step: int | None = None) -> None:
    k = metric_key(key)
    v = as_scalar(value)
    if k is not None and v is not None:
        out.metrics.append(Found(k, v, source, step))


def _points_left(out: Harvest) -> int:
    return MAX_POINTS - len(out.metrics)


# Keras ------------------------------------------------------------------------------------
def _history(hist: Any, seen: Seen, out: Harvest) -> None:
    if hist in seen:
        return
    seen.add(hist)
    seen.add(hist.history)
    epochs = list(getattr(hist, "epoch", None) or [])
    for key, values in list(hist.history.items()):
        if not isinstance(values, (list, tuple)):
            continue
        steps = epochs if len(epochs) == len(values) and all(type(e) is int and e >= 0 for e in epochs) else None
        for i, v in enumerate(values[: _points_left(out)]):
            _add(out, key, v, "keras", steps[i] if steps else i)


def _split_prefix(call: ast.Call) -> str:
    """``test_`` / ``val_`` when the data an evaluate call is given is named so, else ``eval_``."""
    data = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "x"), None)
    words = [n.id.lower() for n in syntax.walk(data) if isinstance(n, ast.Name)] if data is not None else []
    if any("test" in w for w in words):
        return "test_"
    if any("val" in w for w in words):
        return "val_"
    return "eval_"


def keras_metric_names(model: Any, n: int) -> list[str] | None:
    """The names of the ``n`` values ``model.evaluate`` returned as a list, in its order:
    Keras 3 flattens its compiled metrics (``metrics_names`` says ``compile_metrics``)."""
    names: list[str] = []
    for m in list(getattr(model, "metrics", None) or []):
        subs = getattr(m, "metrics", None) if type(m).__name__ == "CompileMetrics" else None
        if subs:
            names += [s.name for s in subs]
        else:
            names.append(m.name)
    if len(names) == n:
        return names
    legacy = list(getattr(model, "metrics_names", None) or [])
    return legacy if len(legacy) == n and all(isinstance(x, str) for x in legacy) else None


def _evaluate(model: Any, value: Any, call: ast.Call, out: Harvest) -> bool:
    if "keras" not in _module(model) or not hasattr(model, "metrics"):
        return False
    prefix = _split_prefix(call)
    if isinstance(value, dict):
        items = list(value.items())
    else:
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        names = keras_metric_names(model, len(values))
        if names is None:
            raise ValueError(f"{len(values)} values but the model's metric names do not match")
        items = list(zip(names, values))
    for name, v in items:
        _add(out, prefix + str(name), v, "keras")
    return True


# scikit-learn ------------------------------------------------------------------------------
def _search(obj: Any, out: Harvest) -> None:
    scoring, refit = getattr(obj, "scoring", None), getattr(obj, "refit", True)
    key = f"best_{scoring}" if isinstance(scoring, str) else f"best_{refit}" if isinstance(refit, str) else "best_score"
    _add(out, key, obj.best_score_, "sklearn")
    cv = obj.cv_results_
    columns = [c for c in cv if c.startswith("param_")]
    columns += [c for c in cv if c.startswith(("mean_test_", "std_test_", "rank_test_"))]
    n = min(len(cv.get("params", ())), MAX_ROWS)
    out.tables.append(Table("cv_results", columns, [[_cell(cv[c], i) for c in columns] for i in range(n)], "sklearn"))
    best = getattr(obj, "best_params_", None)
    if isinstance(best, dict):
        row = [v if isinstance(v, (str, bool, int, float, type(None))) else _plain(v) for v in best.values()]
        out.tables.append(Table("best_params", [str(k) for k in best], [row], "sklearn"))


def _plain(value: Any) -> Any:
    number = as_scalar(value)
    if number is not None or isinstance(value, (str, bool, type(None))):
        return value if number is None else number
    item = getattr(value, "item", None)  # NumPy str/bool scalars
    if _module(value) == "numpy" and callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    return type(value).__name__ if callable(getattr(value, "get_params", None)) else str(value)


def _cell(column: Any, i: int) -> Any:
    mask = getattr(column, "mask", None)
    if mask is not None and getattr(mask, "ndim", None) and bool(mask[i]):
        return None  # a masked param_* entry: the candidate has no such param
    return _plain(column[i])


def _metric_function(call: ast.Call, ns: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(key, source)`` for ``est.score(...)`` and the ``sklearn.metrics`` functions."""
    name = _call_name(call)
    if name == "score" and isinstance(call.func, ast.Attribute):
        owner = _resolve(call.func.value, ns) if isinstance(call.func.value, ast.Name) else None
        lib = _module(owner).split(".")[0]
        return "score", "sklearn" if lib in ("sklearn", "xgboost", "lightgbm", "imblearn", "catboost") else "result"
    fn = _resolve(call.func, ns)
    module = getattr(fn, "__module__", None) or ""
    skm = sys.modules.get("sklearn.metrics")
    if callable(fn) and module.startswith("sklearn.metrics"):
        name = getattr(fn, "__name__", name)
    elif not (skm is not None and name in getattr(skm, "__all__", ())):
        return None
    if not name:
        return None
    return (name[: -len("_score")] if name.endswith("_score") and name != "_score" else name), "sklearn"


def _report(report: dict, out: Harvest, qualifier: str = "") -> None:
    """``classification_report(..., output_dict=True)``: overall, average and (few) per-class metrics, under
    the qualifier of the name it is bound to (``test_report`` gives ``test_accuracy``, ``report`` ``accuracy``)."""
    classes = [k for k, v in report.items() if isinstance(v, dict) and not str(k).endswith(" avg")]
    for label, entry in report.items():
        if not isinstance(entry, dict):
            _add(out, qualified(qualifier, str(label)), entry, "sklearn")
            continue
        if label in classes and len(classes) > MAX_CLASSES:
            continue
        prefix = str(label) if str(label).endswith(" avg") else f"class_{label}"
        for metric, v in entry.items():
            if metric != "support":
                _add(out, qualified(qualifier, f"{prefix}_{metric}"), v, "sklearn")


def _cv_scores(name: str, scores: Any, out: Harvest) -> None:
    if _is_array(scores) and scores.ndim == 1 and len(scores):
        _add(out, f"{name}_mean", scores.mean(), "sklearn")
        _add(out, f"{name}_std", scores.std(), "sklearn")


def _cv_validate(result: dict, out: Harvest) -> None:
    for key, scores in result.items():
        if isinstance(key, str) and key.startswith(("test_", "train_")):
            _cv_scores(key, scores, out)


def _produced(
    name: str,
    obj: Any,
    call: ast.Call,
    ns: Mapping[str, Any],
    metric_re: NamePattern,
    out: Harvest,
    shown: bool = False,
) -> None:
    """What ``call`` returned: bound to ``name``, or (``shown``) the cell's value, ``name`` the function's."""
    fname = _call_name(call)
    if fname == "evaluate" and isinstance(call.func, ast.Attribute):
        model = _resolve(call.func.value, ns) if isinstance(call.func.value, ast.Name) else None
        if model is not None and _evaluate(model, obj, call, out):
            return
    if fname in CV_SCORE:
        _cv_scores(name, obj, out)
    elif fname in CV_VALIDATE and isinstance(obj, dict):
        _cv_validate(obj, out)
    elif fname == "classification_report" and isinstance(obj, dict):
        _report(obj, out, "" if shown else container_qualifier(name))  # test_report: test_accuracy
    elif (shown or not metric_re.match(name)) and as_scalar(obj) is not None:  # else the namespace has it
        found = _metric_function(call, ns)
        if found is not None:
            _add(out, found[0], obj, found[1])


def _stored(name: str, obj: dict, keys: list[str], metric_re: NamePattern, seen: Seen, out: Harvest) -> None:
    """The metric-like ``keys`` the cell stored in the dict ``obj`` named ``name`` (see :func:`_stores`), read
    from the dict as the cell left it, each under the dict's qualifier (``test_scores["f1"]`` is ``test_f1``).
    Once read, the dict shown later is not read again (:class:`Seen`)."""
    n = len(out.metrics)
    qualifier = container_qualifier(name)
    for key in keys:
        if metric_re.match(key) and key in obj:
            k = metric_key(normalize_name(key))  # spelled as printed text is: "F1" is f1
            if k is not None:
                _add(out, qualified(qualifier, k), obj[key], "namespace")
    if len(out.metrics) > n:
        seen.add(obj)


# XGBoost / LightGBM -------------------------------------------------------------------------
def _curves(evals: Any, source: str, out: Harvest) -> None:
    """``{eval set: {metric: [value per round]}}`` as curves ``<eval set>.<metric>``."""
    if not isinstance(evals, dict):
        return
    for dataset, metrics in evals.items():
        if not isinstance(metrics, dict):
            continue
        for metric, values in metrics.items():
            if isinstance(values, (list, tuple)):
                for i, v in enumerate(values[: _points_left(out)]):
                    _add(out, f"{dataset}.{metric}", v, source, i)


def _model(obj: Any, out: Harvest) -> None:
    """A model the cell trained: a search, or an XGBoost / LightGBM model or Booster."""
    if is_search(obj):
        _search(obj, out)
        return
    source = _boosting_source(obj)
    if source is None:
        return
    evals = getattr(obj, "evals_result_", None)
    if not isinstance(evals, dict) and callable(getattr(obj, "evals_result", None)) and source == "xgboost":
        try:
            evals = obj.evals_result()
        except Exception:  # not trained with an eval set
            evals = None
    _curves(evals, source, out)
    curves = {f.key for f in out.metrics}
    for attr in ("best_iteration", "best_iteration_"):
        it = getattr(obj, attr, None)
        if type(it) is int and (it > 0 or source == "xgboost"):  # LightGBM's 0: no early stopping
            _add(out, "best_iteration", it, source)
            break
    for attr in ("best_score", "best_score_"):
        best = getattr(obj, attr, None)
        if isinstance(best, dict):  # LightGBM: {eval set: {metric: value}}
            for dataset, metrics in best.items():
                for metric, v in (metrics or {}).items():
                    key = metric_key(f"{dataset}.{metric}")
                    if key not in curves:
                        _add(out, key, v, source)
            break
        if as_scalar(best) is not None:
            _add(out, _best_key(evals), best, source)
            break


def _best_key(evals: Any) -> str:
    """The key of XGBoost's ``best_score``: the score, at the best round, of the metric early stopping watched,
    the last eval set's last metric (``best_logloss`` goes down, ``best_auc`` up; a ``custom_metric`` comes last);
    ``best_score`` when the evaluation results do not say which."""
    if isinstance(evals, dict) and evals:
        metrics = list(evals.values())[-1]
        if isinstance(metrics, dict) and metrics:
            key = metric_key(f"best_{list(metrics)[-1]}")
            if key is not None:
                return key
    return "best_score"


# the value a cell shows --------------------------------------------------------------------
def _shown(
    value: Any,
    tree: Callable[[], CellSyntax | None],
    ns: Mapping[str, Any],
    seen: Seen,
    metric_re: NamePattern,
    known: set[str],
    out: Harvest,
) -> None:
    if is_history(value):
        _history(value, seen, out)
        return
    if value in seen:
        return
    if not isinstance(value, (list, tuple, dict)) and not _is_array(value) and as_scalar(value) is None:
        if is_search(value) or _boosting_source(value):  # GridSearchCV(...).fit(X, y) shown, never named
            s = tree()
            if s is not None and isinstance(s.last, ast.Call) and training_call(s.last, False) == "fit":
                _model(value, out)
        return
    s = tree()
    expr = s.last if s is not None else None
    if expr is None:
        return
    if isinstance(expr, ast.Attribute) and expr.attr == "history" and isinstance(value, dict):
        owner = _resolve(expr.value, ns) if isinstance(expr.value, ast.Name) else None
        if is_history(owner):  # model.fit(...).history, or history.history of a History not seen yet
            _history(owner, seen, out)
            return
    if isinstance(expr, ast.Call):
        fname = _call_name(expr) or ""
        n = len(out.metrics)
        _produced(fname, value, expr, ns, metric_re, out, shown=True)
        if len(out.metrics) > n:
            return
        if fname == "classification_report" or fname in CV_SCORE | CV_VALIDATE:
            return
        name = fname
    elif isinstance(expr, ast.Name):
        name = expr.id
    elif isinstance(expr, ast.Attribute):
        name = expr.attr
    else:
        name = ""
    if isinstance(value, dict):  # {"val_acc": acc, ...}, or what a function returned
        seen.add(value)
        qualifier = container_qualifier(expr.id) if isinstance(expr, ast.Name) else ""  # test_scores: test_f1
        for key, v in list(value.items())[:1000]:
            k = metric_key(normalize_name(key)) if isinstance(key, str) and metric_re.match(key) else None
            if k is not None:
                _add(out, qualified(qualifier, k), v, "result")
        return
    if as_scalar(value) is None or not metric_re.match(name):
        return
    if not isinstance(expr, ast.Call) and metric_key(name) in known:
        return  # a metric shown again, not computed again
    _add(out, name, value, "result")
