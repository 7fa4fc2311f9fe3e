"""Hyperparameters, found without instrumentation.

From a cell's source: top-level assignments of literal values (``LR = 3e-4``,
``layers = [64, 64]``, ``cfg = {"opt": {"lr": 1e-3}}`` flattened as ``cfg.opt.lr``; a dict
written as ``dict(opt=dict(lr=1e-3))`` is that literal dict), and the
literal arguments of its training calls: ``model.fit(x, y, epochs=2, batch_size=64)`` gives
``fit.epochs`` and ``fit.batch_size``, ``xgb.train(params, dtrain, num_boost_round=50)``
``train.num_boost_round`` (see ``training.call_params_name``), and those of the early-stopping and plateau
callbacks it is given in a list (``callbacks=[EarlyStopping(patience=3)]``: ``fit.early_stopping.patience``).
Likewise the literal arguments
of a function or class the notebook defined, called by name and its result bound
(``model = build_model(8, dropout=0.1)`` gives ``build_model.hidden`` and ``build_model.dropout``,
positional ones named by its signature): kept from the text as :class:`CallArgs`, they are params
once the namespace says the name is the notebook's own (a library's objects are described by
:func:`from_object` instead).
From objects the cell names: dataclass, argparse and SimpleNamespace configs,
estimators with ``get_params()`` (scikit-learn, XGBoost and LightGBM estimators and
look-alikes), Keras models and optimizers (only when keras is already imported: the
optimizer's class and config, the loss, the compiled metrics), PyTorch optimizers, LR
schedulers and modules (only when torch is already imported).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import re
import sys
import types
from typing import Any, Iterable, Mapping

from . import syntax
from .secrets import scrub_value
from .training import call_params_name

MAX_LIST = 64  # longer lists are not hyperparameters
MAX_STR = 500  # nor are long strings
MAX_DEPTH = 4  # dict nesting kept when flattening

IGNORED_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
# keyword arguments of a training call that are not hyperparameters
CALL_ARGS_IGNORED = frozenset(
    {
        "verbose",
        "verbose_eval",
        "callbacks",
        "workers",
        "use_multiprocessing",
        "max_queue_size",
        "n_jobs",
        "pre_dispatch",
        "error_score",
    }
)

Params = dict[str, Any]


class Skipped(Exception):
    """A value that cannot be a param; the message says why (one warning per cause)."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


def parse_assignment(item: str) -> tuple[str, Any]:
    """``NAME=VALUE`` as typed on a command line or after ``%nbexp param``: the one rule for every
    place that takes one (``nbexp ls --param``, ``nbexp replay --param``, ``%nbexp param``). VALUE
    is read as a Python literal (``0.1``, ``True``, ``None``, ``[64, 64]``, ``'a b'``), else kept as
    text, so ``flag=True`` is the bool everywhere and ``model=tree`` the text ``tree``.

    Raises:
        ValueError: no ``=`` or an empty NAME; the message quotes ``item``.
    """
    name, eq, text = item.partition("=")
    name = name.strip()
    if not eq or not name:
        raise ValueError(f"expected NAME=VALUE, got {item!r}")
    try:
        return name, ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return name, text


def value_type(value: Any) -> str:
    """The stored type tag of a param value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    raise TypeError(f"not a param value: {type(value).__name__}")


def encode(value: Any) -> str:
    """JSON text of a param value; NaN and infinities survive."""
    return json.dumps(value, allow_nan=True)


def normalize(key: str, value: Any) -> Any:
    """A param value reduced to JSON types (tuples become lists, NumPy scalars
    Python numbers).

    Raises:
        Skipped: the value is not a plain, small hyperparameter.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, str) and len(value) > MAX_STR:
            raise Skipped("huge-value", f"param {key!r} skipped: a string of {len(value)} characters")
        return value
    mod = type(value).__module__
    if mod == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return normalize(key, value.item())
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST:
            raise Skipped("huge-value", f"param {key!r} skipped: a sequence of {len(value)} items")
        return [normalize(key, v) for v in value]
    raise Skipped("unsupported-value", f"param {key!r} skipped: {type(value).__name__} values are not recorded")


def flatten(prefix: str, value: Any, out: Params, skipped: list[Skipped], depth: int = 0) -> None:
    """Add ``value`` under ``prefix`` to ``out``; dicts flatten with dots."""
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            skipped.append(Skipped("deep-dict", f"param {prefix!r}: nesting deeper than {MAX_DEPTH} skipped"))
            return
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                continue
            flatten(f"{prefix}.{k}", v, out, skipped, depth + 1)
        return
    if (
        isinstance(value, (list, tuple))
        and value
        and len(value) <= MAX_LIST
        and all(isinstance(v, dict) for v in value)
    ):
        for i, v in enumerate(value):  # a search grid written as a list of dicts: grid.0.kernel
            flatten(f"{prefix}.{i}", v, out, skipped, depth)
        return
    try:
        out[prefix] = scrub_value(prefix, normalize(prefix, value))
    except Skipped as exc:
        skipped.append(exc)


def _target_names(target: ast.expr) -> Iterable[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for t in target.elts:
            yield from _target_names(t)


def _module_level(body: list[ast.stmt], in_loop: bool = False) -> Iterable[tuple[ast.stmt, bool]]:
    """Statements that bind module-level names: the cell's own, and those inside
    ``if``/``with``/``try``/``for``/``while`` blocks (not functions or classes)."""
    for node in body:
        yield node, in_loop
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # their bodies bind locals (a helper's own ``test_loss``), not the notebook's names
        loop = isinstance(node, (ast.For, ast.AsyncFor, ast.While))
        for field in ("body", "orelse", "finalbody"):
            yield from _module_level(getattr(node, field, None) or [], in_loop or loop)
        for handler in getattr(node, "handlers", None) or []:
            yield from _module_level(handler.body, in_loop)


_NO_VALUE = object()


def _literal_value(node: ast.expr) -> Any:
    """The value of a literal expression, or ``_NO_VALUE``. Plain constants and
    negative numbers take a fast path; containers go through ``literal_eval``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        v = node.operand.value
        if isinstance(node.op, ast.USub) and isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v
    if isinstance(node, ast.Call):
        return _dict_call(node)
    if not isinstance(node, (ast.List, ast.Tuple, ast.Dict, ast.Set, ast.UnaryOp)):
        return _NO_VALUE
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _container(node)


def _dict_call(node: ast.Call) -> Any:
    """``dict(k=literal, ...)``, ``dict({...}, k=v)``, ``dict(**{...})`` and ``dict([(k, v), ...])`` as the
    dict they make, or ``_NO_VALUE`` (any other call, or an argument that is not a literal)."""
    if not (isinstance(node.func, ast.Name) and node.func.id == "dict") or len(node.args) > 1:
        return _NO_VALUE
    out: dict[Any, Any] = {}
    if node.args:
        base = _literal_value(node.args[0])
        if base is _NO_VALUE or isinstance(base, (str, bytes)):
            return _NO_VALUE
        try:
            out.update(base)
        except (TypeError, ValueError):
            return _NO_VALUE
    for kw in node.keywords:
        value = _literal_value(kw.value)
        if value is _NO_VALUE or kw.arg is None and not isinstance(value, dict):
            return _NO_VALUE
        if kw.arg is None:
            out.update(value)
        else:
            out[kw.arg] = value
    return out


def _container(node: ast.expr) -> Any:
    """A list, tuple, set or dict display whose items are literals, ``dict(...)`` calls among them
    (``[dict(kernel="rbf")]``), or ``_NO_VALUE``: what ``literal_eval`` could not read."""
    if isinstance(node, ast.Dict):
        out: dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values):
            value = _literal_value(v)
            if value is _NO_VALUE:
                return _NO_VALUE
            if k is None:  # {**base, ...}
                if not isinstance(value, dict):
                    return _NO_VALUE
                out.update(value)
                continue
            key = _literal_value(k)
            if key is _NO_VALUE:
                return _NO_VALUE
            try:
                out[key] = value
            except TypeError:  # an unhashable key
                return _NO_VALUE
        return out
    if not isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return _NO_VALUE
    items = []
    for elt in node.elts:
        value = _literal_value(elt)
        if value is _NO_VALUE:
            return _NO_VALUE
        items.append(value)
    if isinstance(node, ast.List):
        return items
    if isinstance(node, ast.Tuple):
        return tuple(items)
    try:
        return set(items)
    except TypeError:
        return _NO_VALUE


@dataclasses.dataclass(frozen=True)
class CallArgs:
    """The literal arguments of a call by plain name whose result a cell binds (``model = build_model(8,
    dropout=0.1)``): ``positional`` as ``(position, value)`` pairs, ``keywords`` as ``(name, value)``
    pairs, in the order written. What the text alone cannot say is whether the name is the notebook's
    own function or class: :meth:`named` asks the object it names after the cell ran."""

    positional: tuple[tuple[int, Any], ...]
    keywords: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, call: ast.Call) -> CallArgs | None:
        """The literal arguments of ``call``, or None when it has none (or is not a call by plain name)."""
        if not isinstance(call.func, ast.Name) or call.func.id == "dict":
            return None
        positional = []
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):  # f(*args): the positions after it are unknown
                break
            value = _literal_value(arg)
            if value is not _NO_VALUE:
                positional.append((i, value))
        keywords = []
        for kw in call.keywords:
            if kw.arg is not None:
                value = _literal_value(kw.value)
                if value is not _NO_VALUE:
                    keywords.append((kw.arg, value))
        return cls(tuple(positional), tuple(keywords)) if positional or keywords else None

    def named(self, obj: Any = _NO_VALUE) -> dict[str, Any] | None:
        """The arguments by parameter name when ``obj`` (what the called name holds) is a function or
        class the notebook defined, else None; ``obj`` not given (the namespace unknown): the keyword
        arguments alone, as they would be named."""
        if obj is _NO_VALUE:
            return dict(self.keywords)
        if not _notebook_callable(obj):
            return None
        out: dict[str, Any] = {}
        if self.positional:
            try:
                params = list(inspect.signature(obj).parameters.values())
            except (TypeError, ValueError):
                params = []
            for i, value in self.positional:
                if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY, params[i].POSITIONAL_OR_KEYWORD):
                    out[params[i].name] = value
        out.update(self.keywords)
        return out


# Library functions whose literal arguments are settings of the run as much as a model's: the data split
# (``train_test_split(X, y, test_size=0.25, random_state=0)``: an edit of test_size is the run's tweak).
_SETTING_CALLS = frozenset({("sklearn.model_selection._split", "train_test_split")})


def _notebook_callable(obj: Any) -> bool:
    """A function or class defined in the notebook (module ``__main__``), other than the configs and
    estimators :func:`from_object` describes by their own params, or a library function in
    ``_SETTING_CALLS``."""
    if (getattr(obj, "__module__", None), getattr(obj, "__name__", None)) in _SETTING_CALLS:
        return True
    if getattr(obj, "__module__", None) != "__main__":
        return False
    if isinstance(obj, type):
        return not dataclasses.is_dataclass(obj) and not (hasattr(obj, "get_params") and hasattr(obj, "fit"))
    return isinstance(obj, types.FunctionType)


def top_level_assignments(tree: ast.Module) -> tuple[dict[str, Any], set[str]]:
    """Module-level ``NAME = value`` statements of a cell.

    Returns:
        ``(literal, computed)``: names bound to a literal (outside loops) with
        its value, and names bound to anything else (metric candidates). ``literal`` also holds,
        under the name called, the literal arguments of training calls (a dict, see
        :func:`_call_params`) and of calls by plain name whose result is bound (a :class:`CallArgs`).
    """
    literal: dict[str, Any] = {}
    computed: set[str] = set()
    for node, in_loop in _module_level(tree.body):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor)):
            computed.update(_target_names(node.target))
            continue
        elif isinstance(node, ast.Expr):
            _call_params(node.value, literal)
            continue
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    computed.update(_target_names(item.optional_vars))
            continue
        else:
            continue
        _call_params(value, literal)
        names = [n for t in targets for n in _target_names(t)]
        single = len(targets) == 1 and isinstance(targets[0], ast.Name)
        lit = _literal_value(value) if single and not in_loop else _NO_VALUE
        if lit is not _NO_VALUE:
            literal[names[0]] = lit
            computed.discard(names[0])
        else:
            computed.update(names)
            for n in names:
                literal.pop(n, None)
            # a training call's arguments are under its name already (_call_params)
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id not in names:
                args = CallArgs.of(value) if call_params_name(value) is None else None
                if args is not None:  # called twice with other arguments (a train and a test split): neither
                    literal[value.func.id] = args if literal.get(value.func.id, args) == args else _AMBIGUOUS
    for name in [n for n, v in literal.items() if v is _AMBIGUOUS]:
        del literal[name]
    return literal, computed


_AMBIGUOUS = object()  # a function called more than once in a cell with different literal arguments


def _call_params(value: ast.expr, literal: dict[str, Any]) -> None:
    """The literal keyword arguments of the training calls in ``value`` (and a literal params
    dict given first to ``xgb.train``/``lgb.train``), added to ``literal`` as one dict under the
    call's name: ``model.fit(x, y, epochs=2)`` gives ``literal["fit"] == {"epochs": 2}``."""
    for call in syntax.calls(value):
        root = call_params_name(call)
        if root is None:
            continue
        prev = literal.get(root)
        found: dict[str, Any] = prev if isinstance(prev, dict) else {}
        if root == "train" and call.args and isinstance(call.args[0], ast.Dict):
            params = _literal_value(call.args[0])
            if isinstance(params, dict):
                found["params"] = params
        for kw in call.keywords:
            if kw.arg == "callbacks":
                found.update(_stopping_callbacks(kw.value))
            if kw.arg is None or kw.arg in CALL_ARGS_IGNORED:
                continue
            v = _literal_value(kw.value)
            if v is not _NO_VALUE:
                found[kw.arg] = v
        if found:
            literal[root] = found


# Callbacks that decide how long a training runs or how its rate falls, by the name they are called by, with their
# positional parameters where they are commonly given by position (``lgb.early_stopping(20)``): what MLflow's
# autologging records of them. Keras's ``EarlyStopping`` and XGBoost's ``xgb.callback.EarlyStopping`` share a name
# and not their parameters, so theirs count by keyword only.
_STOPPING_CALLBACKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "EarlyStopping": ("early_stopping", ()),
    "early_stopping": ("early_stopping", ("stopping_rounds", "first_metric_only", "verbose", "min_delta")),
    "ReduceLROnPlateau": ("reduce_lr_on_plateau", ()),
}


def _stopping_callbacks(value: ast.expr) -> dict[str, dict[str, Any]]:
    """The literal arguments of the early-stopping and plateau callbacks a training call is given in a list
    (``callbacks=[keras.callbacks.EarlyStopping(patience=3)]``), under their snake-case name
    (``{"early_stopping": {"patience": 3}}``): ``fit.early_stopping.patience``. Logging arguments
    (``verbose``) are left out, as for the call's own."""
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(value, (ast.List, ast.Tuple)):
        return out
    for item in value.elts:
        if not isinstance(item, ast.Call):
            continue
        f = item.func
        callee = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        known = _STOPPING_CALLBACKS.get(callee or "")
        if known is None:
            continue
        key, positional = known
        args: dict[str, Any] = {}
        for name, arg in zip(positional, item.args):
            if isinstance(arg, ast.Starred):
                break
            v = _literal_value(arg)
            if v is not _NO_VALUE:
                args[name] = v
        for kw in item.keywords:
            if kw.arg is not None:
                v = _literal_value(kw.value)
                if v is not _NO_VALUE:
                    args[kw.arg] = v
        args = {k: v for k, v in args.items() if k not in CALL_ARGS_IGNORED}
        if args:
            out[key] = args
    return out


def from_literals(literal: dict[str, Any], skipped: list[Skipped], ns: Mapping[str, Any] | None = None) -> Params:
    """Params from the literal top-level assignments of one cell. The arguments of a call
    (:class:`CallArgs`) count when ``ns``, the namespace after the cell, holds the notebook's own
    function or class under the name called; without ``ns`` their keyword arguments count."""
    out: Params = {}
    for name, value in literal.items():
        if name.startswith("_") or name in IGNORED_NAMES:
            continue
        if isinstance(value, CallArgs):
            args = value.named() if ns is None else value.named(ns.get(name))
            if args is None:
                continue
            for key, arg in args.items():
                _literal_param(f"{name}.{key}", arg, out, skipped)
            continue
        _literal_param(name, value, out, skipped)
    return out


def _literal_param(name: str, value: Any, out: Params, skipped: list[Skipped]) -> None:
    if isinstance(value, (bytes, complex, Ellipsis.__class__)):
        return
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=repr)
    flatten(name, value, out, skipped)


_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z][A-Za-z0-9_]*")


def referenced_names(source: str) -> list[str]:
    """Public names a cell may read or bind, in first-seen order.

    A fast superset (words in strings and comments count too): callers look each
    up in the namespace and keep only config-like objects.
    """
    return [n for n in dict.fromkeys(_IDENTIFIER.findall(source)) if n not in IGNORED_NAMES]


def from_object(name: str, obj: Any, skipped: list[Skipped], defaults: set[str] | None = None) -> Params:
    """Params of one object the cell names, or {} when it is not a config-like object.

    ``defaults``, when given, gets the keys of estimator params equal to their class's
    default (so listings can show the ones that were set first)."""
    if "keras" in sys.modules and not isinstance(obj, type):
        found = _keras(name, obj, skipped, defaults)
        if found is not None:
            return found
    if "lightgbm" in sys.modules and _is_lightgbm_stopping(obj):
        return _stopping_callback(name, obj, skipped)
    if isinstance(obj, type) or callable(obj) and not hasattr(obj, "get_params") and not is_torch_module(obj):
        return {}
    out: Params = {}
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            flatten(f"{name}.{f.name}", getattr(obj, f.name, None), out, skipped)
        return out
    cls = type(obj)
    if cls.__module__ in ("argparse", "types") and cls.__name__ in ("Namespace", "SimpleNamespace"):
        for k, v in vars(obj).items():
            if not k.startswith("_"):
                flatten(f"{name}.{k}", v, out, skipped)
        return out
    if hasattr(obj, "get_params") and hasattr(obj, "fit"):
        return _estimator(name, obj, skipped, defaults)
    if "torch" in sys.modules:
        return _torch(name, obj, skipped)
    return {}


def _qualname(obj: Any) -> str:
    return type(obj).__name__


_SCALARS = (bool, int, float, str, type(None))
_GRIDS = ("param_grid", "param_distributions")


def _estimator(name: str, est: Any, skipped: list[Skipped], defaults: set[str] | None = None) -> Params:
    """An estimator's ``get_params(deep=True)``, nested estimators below it (``pipe.clf.C``):
    a pipeline's ``steps`` and a column transformer's ``transformers`` as their names (each
    one's class and params under its name, a transformer's columns too) and a search's grid
    (a list of dicts numbered). What fitting found (a search's ``best_params_``) is a result,
    not a param: it is kept as the run's ``best_params`` table (see :mod:`.results`)."""
    out: Params = {f"{name}.class": _qualname(est)}
    params = est.get_params(deep=True)
    searched = _searched(params)
    for key in sorted(params):
        if key in searched:
            continue
        value = params[key]
        dotted = f"{name}.{key.replace('__', '.')}"
        leaf = key.rpartition("__")[2]
        if hasattr(value, "get_params") and hasattr(value, "fit"):
            out[f"{dotted}.class"] = _qualname(value)
            continue
        if leaf in ("steps", "transformers") and isinstance(value, (list, tuple)):
            items = [v for v in value if isinstance(v, tuple) and v and isinstance(v[0], str)]
            out[dotted] = [v[0] for v in items]
            if leaf == "transformers":
                owner = dotted.rpartition(".")[0]
                for tname, _trans, *cols in items:
                    if cols:
                        out[f"{owner}.{tname}.columns"] = _grid_values(cols[0])
            continue
        if leaf in _GRIDS:
            _grid(dotted, value, out, skipped)
            continue
        if callable(value):
            continue
        if isinstance(value, _SCALARS) or type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
            flatten(dotted, value, out, skipped)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, _SCALARS) for v in value):
            flatten(dotted, value, out, skipped)
        elif isinstance(value, dict):
            flatten(dotted, value, out, skipped)
        else:
            out[dotted] = _qualname(value)
        if defaults is not None and dotted in out and _is_default(est, params, key, value):
            defaults.add(dotted)
    return out


def _searched(params: dict[str, Any]) -> set[str]:
    """The params of a search's estimator that its grid sets in every candidate (``estimator__svc__C`` for a grid
    ``{"svc__C": [0.1, 1, 10]}``): the value the estimator was built with is fitted by no candidate, and listed it
    read as what the search used (a user trial: ``search.estimator.clf.C 1`` beside the grid). A key that some dicts
    of a list leave out stays: those candidates use it."""
    out: set[str] = set()
    for key in _GRIDS:
        grid = params.get(key)
        dicts = grid if isinstance(grid, (list, tuple)) else [grid]
        if dicts and all(isinstance(d, dict) for d in dicts):
            common = set.intersection(*(set(map(str, d)) for d in dicts))
            out |= {f"estimator__{k}" for k in common}
    return out


def _grid(prefix: str, grid: Any, out: Params, skipped: list[Skipped]) -> None:
    """A search grid: ``search.param_grid.C = [0.1, 1.0]``; a list of dicts numbered
    (``search.param_grid.0.kernel``); estimators and distributions by name."""
    if isinstance(grid, dict):
        for k, v in grid.items():
            flatten(f"{prefix}.{str(k).replace('__', '.')}", _grid_values(v), out, skipped)
    elif isinstance(grid, (list, tuple)):
        for i, g in enumerate(grid):
            _grid(f"{prefix}.{i}", g, out, skipped)


def _grid_values(values: Any) -> Any:
    if isinstance(values, _SCALARS):
        return values
    if isinstance(values, (list, tuple)) or type(values).__module__ == "numpy" and getattr(values, "ndim", 0) == 1:
        return [
            v
            if isinstance(v, _SCALARS)
            else v.item()
            if type(v).__module__ == "numpy" and getattr(v, "ndim", 1) == 0
            else _qualname(v)
            for v in list(values)[:MAX_LIST]
        ]
    dist = getattr(values, "dist", None)  # scipy.stats frozen distributions: loguniform(0.001, 10)
    if dist is not None and hasattr(values, "rvs"):
        return f"{getattr(dist, 'name', _qualname(dist))}{tuple(getattr(values, 'args', ()))}"
    return _qualname(values)


@functools.lru_cache(maxsize=256)
def _init_defaults(cls: type) -> dict[str, Any]:
    try:
        return {
            p.name: p.default
            for p in inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
            if p.default is not inspect.Parameter.empty
        }
    except (TypeError, ValueError):
        return {}


def _is_default(est: Any, params: dict[str, Any], key: str, value: Any) -> bool:
    """Whether ``params[key]`` equals the default of the estimator that owns it."""
    owner_key, _, leaf = key.rpartition("__")
    owner = params.get(owner_key) if owner_key else est
    if owner is None:
        return False
    default = _init_defaults(type(owner)).get(leaf, _NO_VALUE)  # type: ignore[arg-type]  # a class is hashable
    try:
        return default is not _NO_VALUE and type(default) is type(value) and bool(default == value)
    except Exception:
        return False


def _keras(name: str, obj: Any, skipped: list[Skipped], defaults: set[str] | None) -> Params | None:
    """A Keras model (``model.class``, ``model.n_params`` once built and, once compiled, its
    optimizer, loss and metrics), a Keras optimizer or an early-stopping or plateau callback; None for anything
    else."""
    keras = sys.modules["keras"]
    try:
        model_cls, optimizer_cls = keras.Model, keras.optimizers.Optimizer
    except AttributeError:  # keras 2 or a partial import: not handled here
        return None
    if isinstance(obj, optimizer_cls):
        return _keras_optimizer(name, obj, skipped, defaults)
    stopping = tuple(c for c in (getattr(keras.callbacks, n, None) for n in _KERAS_STOPPING) if isinstance(c, type))
    if stopping and isinstance(obj, stopping):
        return _stopping_callback(name, obj, skipped)
    if not isinstance(obj, model_cls):
        return None
    out: Params = {f"{name}.class": _qualname(obj)}
    if getattr(obj, "built", False):
        out[f"{name}.n_params"] = int(obj.count_params())
    config = getattr(getattr(obj, "_compile_config", None), "config", None)
    if not getattr(obj, "compiled", False) or not isinstance(config, dict):
        return out
    optimizer = getattr(obj, "optimizer", None)
    if isinstance(optimizer, optimizer_cls):
        out.update(_keras_optimizer(f"{name}.optimizer", optimizer, skipped, defaults))
    loss = config.get("loss")
    if isinstance(loss, dict):
        for output, one in loss.items():
            _keras_loss(f"{name}.loss.{output}", one, out, skipped)
    elif isinstance(loss, (list, tuple)):
        for i, one in enumerate(loss):
            _keras_loss(f"{name}.loss.{i}", one, out, skipped)
    elif loss is not None:
        _keras_loss(f"{name}.loss", loss, out, skipped)
    for key in ("metrics", "weighted_metrics"):
        metrics = config.get(key)
        if isinstance(metrics, dict):
            for output, ms in metrics.items():
                out[f"{name}.{key}.{output}"] = _keras_names(ms)
        elif metrics:
            out[f"{name}.{key}"] = _keras_names(metrics)
    if config.get("loss_weights") is not None:
        flatten(f"{name}.loss_weights", config["loss_weights"], out, skipped)
    return out


_KERAS_STOPPING = ("EarlyStopping", "ReduceLROnPlateau")  # the Keras callbacks read as params (see _stopping_callbacks)


def _is_lightgbm_stopping(obj: Any) -> bool:
    """LightGBM's early-stopping callback (what ``lgb.early_stopping(20)`` returns)."""
    cls = type(obj)
    return cls.__module__ == "lightgbm.callback" and cls.__name__ == "_EarlyStoppingCallback"


def _stopping_callback(name: str, callback: Any, skipped: list[Skipped]) -> Params:
    """An early-stopping or plateau callback bound to a name (``es = EarlyStopping(patience=3)`` or
    ``es = lgb.early_stopping(20)``, then ``callbacks=[es]``): its class and the arguments it keeps under their own
    names (``es.patience``, ``es.stopping_rounds``), not what it counted while it ran (``wait``, ``best``) nor its
    logging (``verbose``). LightGBM's is named after the function that makes it (``early_stopping``)."""
    out: Params = {f"{name}.class": "early_stopping" if _is_lightgbm_stopping(callback) else _qualname(callback)}
    try:
        names = [p for p in inspect.signature(type(callback).__init__).parameters if p not in ("self", "verbose")]
    except (TypeError, ValueError):
        return out
    for key in names:
        value = getattr(callback, key, _NO_VALUE)
        if value is not _NO_VALUE and isinstance(value, _SCALARS):
            flatten(f"{name}.{key}", value, out, skipped)
    return out


def _keras_optimizer(name: str, opt: Any, skipped: list[Skipped], defaults: set[str] | None) -> Params:
    """``opt.class`` and the optimizer's config (``opt.learning_rate``, ``opt.rho``); a learning
    rate schedule as its class and config below ``opt.learning_rate``. Float32 values are
    stored as written (``0.001``, not ``0.0010000000474974513``)."""
    out: Params = {f"{name}.class": _qualname(opt)}
    try:
        config = opt.get_config()
    except Exception as exc:
        skipped.append(Skipped("object", f"params of {name!r} skipped ({type(exc).__name__}: {exc})"))
        return out
    init = _init_defaults(type(opt))  # type: ignore[arg-type]
    for key, value in config.items():
        if key == "name":
            continue
        if isinstance(value, dict) and "class_name" in value:  # a serialized schedule
            out[f"{name}.{key}.class"] = value["class_name"]
            sub = {k: v for k, v in (value.get("config") or {}).items() if k != "name"}
            flatten(f"{name}.{key}", sub, out, skipped)
            continue
        if isinstance(value, float):
            value = _float32(value)
        flatten(f"{name}.{key}", value, out, skipped)
        default = init.get(key, _NO_VALUE)
        if (
            defaults is not None
            and default is not _NO_VALUE
            and f"{name}.{key}" in out
            and (type(default) is type(value) and default == value or default is None and value is None)
        ):
            defaults.add(f"{name}.{key}")
    return out


def _float32(value: float) -> float:
    """The shortest decimal that is the same float32 as ``value`` (``0.001`` for Keras's
    float32 learning rate), or ``value`` when it is not a float32."""
    np = sys.modules.get("numpy")
    if np is None:
        return value
    short = float(str(np.float32(value)))
    return short if float(np.float32(short)) == value else value


def _keras_loss(key: str, loss: Any, out: Params, skipped: list[Skipped]) -> None:
    """A compiled loss: a string as given, a function by name, a loss object by class (by its
    function's name for a plain wrapper) with its arguments (``model.loss.from_logits``)."""
    if isinstance(loss, str) or loss is None:
        out[key] = loss
        return
    if not hasattr(loss, "get_config"):
        out[key] = getattr(loss, "__name__", _qualname(loss))
        return
    config = loss.get_config()
    cls = _qualname(loss)
    out[key] = config.get("name", cls) if cls == "LossFunctionWrapper" else cls
    for k, v in config.items():
        if k not in ("name", "reduction", "dtype"):
            flatten(f"{key}.{k}", v, out, skipped)


def _keras_names(metrics: Any) -> list[Any]:
    """Compiled metrics by name: strings as given, metric objects by their name, functions by theirs."""
    if not isinstance(metrics, (list, tuple)):
        metrics = [metrics]
    return [
        m
        if isinstance(m, str) or m is None
        else getattr(m, "name", None) or getattr(m, "__name__", None) or _qualname(m)
        for m in metrics
    ][:MAX_LIST]


def is_torch_module(obj: Any) -> bool:
    """A PyTorch module (a model or a loss), when the user imported torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _torch(name: str, obj: Any, skipped: list[Skipped]) -> Params:
    torch = sys.modules["torch"]
    out: Params = {}
    if isinstance(obj, torch.optim.Optimizer):
        out[f"{name}.class"] = _qualname(obj)
        groups = obj.param_groups
        for i, group in enumerate(groups):
            prefix = name if i == 0 else f"{name}.group{i}"
            for k, v in group.items():
                if k == "params" or k == "initial_lr" or isinstance(v, torch.Tensor) and v.ndim > 0:
                    continue
                if k == "lr" and "initial_lr" in group:
                    # an LR scheduler keeps the rate it started from there and changes ``lr`` as it steps: read
                    # after the training, ``lr`` is where the schedule ended, not the rate the notebook set
                    v = group["initial_lr"]
                if isinstance(v, torch.Tensor):
                    v = v.item()
                flatten(f"{prefix}.{k}", v, out, skipped)
        return out
    sched_base = getattr(torch.optim.lr_scheduler, "LRScheduler", None) or getattr(
        torch.optim.lr_scheduler, "_LRScheduler", ()
    )
    if sched_base and isinstance(obj, sched_base):
        out[f"{name}.class"] = _qualname(obj)
        for k, v in obj.state_dict().items():
            if k.startswith("_") or k in ("last_epoch", "base_lrs", "_last_lr", "optimizer"):
                continue
            if v is None or isinstance(v, (bool, int, float, str)):
                flatten(f"{name}.{k}", v, out, skipped)
        return out
    if isinstance(obj, torch.nn.Module):
        out[f"{name}.class"] = _qualname(obj)
        n_params = n_train = 0
        device = dtype = None
        for p in obj.parameters():
            n_params += p.numel()
            if p.requires_grad:
                n_train += p.numel()
            if device is None:
                device, dtype = str(p.device), str(p.dtype).replace("torch.", "")
        out[f"{name}.n_params"] = n_params
        out[f"{name}.n_trainable"] = n_train
        if device is not None:
            out[f"{name}.device"] = device
            out[f"{name}.dtype"] = dtype
        return out
    return {}
