"""Which cells train, read statically from a cell's syntax tree.

A run is one training and its evaluation (docs/design.md "Runs"), so the tracker needs
to know, before a cell runs, whether it trains and what it reads and writes:

- *trains*: ``est.fit(...)`` / ``partial_fit`` / ``fit_transform`` (scikit-learn,
  XGBoost and LightGBM estimators, Keras ``model.fit``), ``optimizer.step()`` or
  ``loss.backward()`` inside a loop (PyTorch), ``xgb.train`` / ``lgb.train``,
  ``trainer.train()`` (Hugging Face), ``cross_val_score`` and friends, or a call
  to a function an earlier cell defined whose body trains (the PyTorch
  quickstart's ``train(dataloader, model, loss_fn, optimizer)`` in an epoch loop).
  Training inside ``with nbexp.run(...)`` belongs to that run and does not count.
- *models*: the names a cell trains through: the receiver of ``fit``/``step``/
  ``train`` and the names a training call's result is bound to.
- *reads*: names the cell reads without binding them itself (its inputs).
- *writes*: names it binds (imports left out: a module is not a value that
  changed) and the models it changes in place (``model.compile(...)``,
  ``est.set_params(...)``, ``net.load_state_dict(...)``).
- *call params*: a training call's literal keyword arguments are hyperparameters kept under
  a name of their own (``fit.epochs``, ``train.num_boost_round``, ``cross_val_score.cv``,
  see ``call_params_name``); the cell counts as binding that name, so a run's slice reaches it.
- *defines*: every name it binds at cell level, imports, functions and classes included
  (what a replay needs defined before a cell that reads it).
- *deps*: per name the cell binds or changes, the names the top-level statement doing it
  reads (``X_train, X_test = train_test_split(X, y)`` gives ``X_train -> {train_test_split,
  X, y}``); *mutated* holds the names changed in place rather than rebound
  (``clf.fit(X)``, ``cfg.lr = 0.1``, ``n += 1``), whose earlier dependencies still count.
  The session chains these into the dataflow record a run's params are sliced from.

- *data*: which names hold data that flows into training or evaluation (:func:`data_use`):
  the data nbexp fingerprints and summarizes, never every array a cell mentions.

Nothing here executes code or touches objects: it is text analysis, cached by
the caller per distinct cell text.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import AbstractSet

from . import syntax

FIT_METHODS = frozenset({"fit", "partial_fit", "fit_transform", "fit_predict", "fit_resample", "fit_generator"})
# step() and backward() train only when repeated: one call in a cell is a test or a demo
LOOP_METHODS = frozenset({"step", "backward"})
# train() on these receivers: xgb.train(params, dtrain), lgb.train(params, train_set)
TRAIN_MODULES = frozenset({"xgb", "xgboost", "lgb", "lightgbm", "catboost"})
TRAIN_FUNCTIONS = frozenset(
    {
        "cross_val_score",
        "cross_validate",
        "cross_val_predict",
        "learning_curve",
        "validation_curve",
        "permutation_test_score",
    }
)
# training calls that fit a transformer for its output (a projection for a plot, a resampled set): alone in a
# cell after a run trained, they are not another model's training
TRANSFORM_FITS = frozenset({"fit_transform", "fit_resample"})
MUTATORS = frozenset({"compile", "set_params", "load_state_dict", "load_weights", "build"})
# a dict's methods that change it in place (``config.update(lr=0.01)``): noted apart (Training.updated), since
# meters, progress bars and rcParams have an ``update`` too; the session counts them for a config dict it holds
DICT_UPDATES = frozenset({"update", "setdefault"})
# every word a training call needs in a cell's text (see training_call); a cell with none of them,
# and no call of a function that trains, does not train
TRAIN_WORDS = FIT_METHODS | LOOP_METHODS | TRAIN_FUNCTIONS | {"train"}
# what a model produces: a name bound from these is a prediction, never a dataset
PREDICT_METHODS = frozenset({"predict", "predict_proba", "predict_log_proba", "decision_function"})
# methods whose arguments are evaluation data; the second argument (or y=) is a label
EVAL_METHODS = PREDICT_METHODS | {"evaluate", "score"}
LABEL_METHODS = (FIT_METHODS | {"evaluate", "score"}) - {"fit_generator"}
# constructors that wrap data for training: DataLoader(ds), TensorDataset(X, y), lgb.Dataset(X, label=y),
# xgb.DMatrix(X, label=y), catboost's Pool, tf.data.Dataset.from_tensor_slices((X, y))
DATA_WRAPPERS = frozenset(
    {"DataLoader", "Dataset", "TensorDataset", "DMatrix", "QuantileDMatrix", "Pool", "from_tensor_slices"}
)
# PyTorch's functional losses, loss(input, target): the target is data, the input a model's output
TORCH_LOSSES = frozenset(
    {
        "cross_entropy",
        "nll_loss",
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "kl_div",
    }
)
# scikit-learn-style metric functions, metric(y_true, y_pred, ...): only y_true is data
METRIC_FUNCTION = re.compile(r"^(\w+_(score|error|loss|curve|report|matrix|deviance)|matthews_corrcoef|auc_score)$")


@dataclass
class Training:
    """What one cell does with respect to training (see the module docstring)."""

    trains: bool = False
    models: set[str] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    trainer_defs: set[str] = field(default_factory=set)  # functions defined here whose bodies train
    calls: set[str] = field(default_factory=set)  # plain-name calls at cell level (not in a def)
    train_calls: set[str] = field(default_factory=set)  # the training calls' names at cell level (fit, step, ...)
    defines: set[str] = field(default_factory=set)  # every name bound at cell level (imports too)
    deps: dict[str, AbstractSet[str]] = field(default_factory=dict)  # name bound or changed -> names its statement read
    mutated: set[str] = field(default_factory=set)  # names changed in place, not rebound
    updated: set[str] = field(default_factory=set)  # names whose update()/setdefault() the cell calls (DICT_UPDATES)
    # per name bound or changed, the names its statement read only by constant keys (``params["C"]``: those keys)
    # or only spread as keywords (``LogisticRegression(**params)``: None, every key); a name read otherwise too
    # (``make_model(params)``) is not here: which of its keys were read is not known
    keys_read: dict[str, dict[str, frozenset[str] | None]] = field(default_factory=dict)
    data: DataUse = field(default_factory=lambda: DataUse())  # the data it feeds to training or evaluation


@dataclass
class DataUse:
    """The data one cell feeds to training or evaluation, read from its syntax (see :func:`data_use`).

    What the names hold is known only when the cell has run: :class:`nbexp.datawatch.DataWatcher`
    resolves ``calls`` (a model or a training function?) and ``bound`` (a prediction?) against
    the namespace.
    """

    inputs: set[str] = field(default_factory=set)  # arguments of fit/evaluate/score/predict, y_true, wrappers
    labels: set[str] = field(default_factory=set)  # of those, the ones in a label position
    calls: dict[str, set[str]] = field(default_factory=dict)  # f(...) by plain name -> the data names passed
    # per name bound at cell level: (from a predict-like call, data names its value reads,
    # names it calls, names whose attributes it reads: ``grid.cv_results_``)
    bound: dict[str, tuple[bool, AbstractSet[str], AbstractSet[str], AbstractSet[str]]] = field(default_factory=dict)
    loop_vars: set[str] = field(default_factory=set)  # for-loop targets: temporaries, never datasets
    # what for loops iterate over (``for xb, yb in loader``, ``enumerate(loader)``): a data wrapper among them is
    # the data the loop reads (nbexp.datawatch)
    iterated: set[str] = field(default_factory=set)


# The empty name set and the bound name that reads nothing (``p1 = 0.5``), shared by every text's analysis made in
# the process (an answer the analysis child sends shares one copy of each within the text): most of a cell's names
# have them, and a text's answer is kept (:data:`CACHED_TEXTS`). With a set of its own for each, a kept 50-line
# text held ~300 tracked objects, not ~100, that every full collection then walked.
_NONE: frozenset[str] = frozenset()
_PLAIN_BOUND: tuple[bool, AbstractSet[str], AbstractSet[str], AbstractSet[str]] = (False, _NONE, _NONE, _NONE)


def _root(node: ast.expr) -> str | None:
    """``model`` for ``model``, ``model.net``, ``model[0]``; None for a call's result."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_run_block(node: ast.With | ast.AsyncWith) -> bool:
    """``with nbexp.run(...)`` (or ``with run(...)``): an explicit run of its own."""
    for item in node.items:
        call = item.context_expr
        if isinstance(call, ast.Call):
            f = call.func
            if isinstance(f, ast.Attribute) and f.attr == "run" and _root(f.value) == "nbexp":
                return True
            if isinstance(f, ast.Name) and f.id == "run":
                return True
    return False


def training_call(call: ast.Call, in_loop: bool) -> str | None:
    """The kind of training ``call`` is (``fit``, ``step``, ``train``, ``cv``), or None."""
    f = call.func
    if isinstance(f, ast.Attribute):
        if f.attr in FIT_METHODS:
            return "fit"
        if f.attr in LOOP_METHODS and in_loop:
            return "step"
        if f.attr == "train":
            recv = _root(f.value)
            if recv is not None and (recv in TRAIN_MODULES or "trainer" in recv.lower()):
                return "train"
        if f.attr in TRAIN_FUNCTIONS:
            return "cv"
    elif isinstance(f, ast.Name) and f.id in TRAIN_FUNCTIONS:
        return "cv"
    return None


def call_params_name(call: ast.Call) -> str | None:
    """The name a training call's literal arguments are kept under: ``fit`` for
    ``est.fit(...)`` and the other fit methods, ``train`` for ``xgb.train(...)``,
    ``lgb.train(...)`` and ``trainer.train(...)``, the function's own name for
    ``cross_val_score(...)`` and friends; None for anything else."""
    kind = training_call(call, False)
    if kind == "cv":
        f = call.func
        return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    return kind


class _Visitor(syntax.Visitor):
    def __init__(self) -> None:
        self.out = Training()
        self.loop = 0
        self.func = 0  # inside a def/lambda: trains only when called
        self.func_trains = False
        self.run_block = 0
        self.stored: set[str] = set()
        self.loaded: set[str] = set()
        self.locals: list[set[str]] = []  # per enclosing function: its arguments and local names
        self.stmt_loaded: set[str] = set()  # the current top-level statement's reads, binds, changes
        self.stmt_bound: set[str] = set()
        self.stmt_mutated: set[str] = set()
        self.stmt_keys: dict[str, set[str]] = {}  # names read by constant keys (params["C"]) -> the keys
        self.stmt_spread: set[str] = set()  # names spread as keywords (**params)
        self.stmt_whole: set[str] = set()  # names read otherwise
        self._keyed: set[int] = set()  # the Name nodes read by key or spread, not as a whole
        self._whole: set[int] = set()  # the calls that are a statement of their own (see _in_place)

    # -- scopes --------------------------------------------------------------------
    def _loop(self, node: ast.AST) -> None:
        self.loop += 1
        self.generic_visit(node)
        self.loop -= 1

    visit_For = visit_AsyncFor = visit_While = _loop

    def visit_Constant(self, node: ast.Constant) -> None:
        """A leaf: NodeVisitor's own ``visit_Constant`` looks for the deprecated ``visit_Num``
        family on every literal, the costliest step of walking a cell of assignments."""

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if not self.func:
            self.out.writes.add(node.name)
            self.stored.add(node.name)
        outer_trains, outer_loop = self.func_trains, self.loop
        for d in node.decorator_list:
            self.visit(d)
        for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(d)
        self.func += 1
        self.func_trains, self.loop = False, 0
        a = node.args
        self.locals.append({x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x})
        for stmt in node.body:
            self.visit(stmt)
        self.locals.pop()
        if self.func_trains and self.func == 1:
            self.out.trainer_defs.add(node.name)
        self.func -= 1
        self.loop = outer_loop
        self.func_trains = outer_trains or self.func_trains

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if not self.func:
            self.out.writes.add(node.name)
            self.stored.add(node.name)
        self.func += 1
        self.generic_visit(node)
        self.func -= 1

    def visit_Lambda(self, node: ast.Lambda) -> None:
        a = node.args
        self.func += 1
        self.locals.append({x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x})
        self.generic_visit(node)
        self.locals.pop()
        self.func -= 1

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        block = _is_run_block(node)
        self.run_block += block
        self.generic_visit(node)
        self.run_block -= block

    visit_AsyncWith = visit_With

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            name = (alias.asname or alias.name).split(".")[0]
            if self.func:
                self.locals[-1].add(name)
            else:
                self.stored.add(name)  # bound, but not a changed value
                self.out.defines.add(name)

    visit_ImportFrom = visit_Import

    # -- names ---------------------------------------------------------------------
    def visit_Subscript(self, node: ast.Subscript) -> None:
        if (
            isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Name)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            self.stmt_keys.setdefault(node.value.id, set()).add(node.slice.value)
            self._keyed.add(id(node.value))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if self.func and any(node.id in scope for scope in self.locals):
                return  # an argument or local of the function, not a global it reads
            self.loaded.add(node.id)
            self.stmt_loaded.add(node.id)
            if id(node) not in self._keyed:
                self.stmt_whole.add(node.id)
        elif not self.func:
            self.stored.add(node.id)
            self.out.writes.add(node.id)
            self.stmt_bound.add(node.id)
        elif self.locals:
            self.locals[-1].add(node.id)

    def _changes(self, target: ast.expr) -> None:
        """``cfg.lr = 0.1``, ``cfg['lr'] = 0.1``, ``n += 1``: the root name changes in place."""
        root = _root(target)
        if root is not None and not self.func and not self.run_block:
            self.stmt_mutated.add(root)
            if not isinstance(target, ast.Name):
                self.out.writes.add(root)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.generic_visit(node)
        self._changes(node.target)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        for target in node.targets:
            if isinstance(target, (ast.Attribute, ast.Subscript)):
                self._changes(target)
        if not self.func and not self.run_block and _contains_training(node.value, self.loop > 0):
            for target in node.targets:
                self.out.models.update(n.id for n in syntax.walk(target) if isinstance(n, ast.Name))

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Call):
            self._whole.add(id(node.value))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        for kw in node.keywords:
            if kw.arg is None and isinstance(kw.value, ast.Name):  # f(**params): every key, as a keyword
                self.stmt_spread.add(kw.value.id)
                self._keyed.add(id(kw.value))
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Name) and not self.func:
            self.out.calls.add(f.id)
        kind = training_call(node, self.loop > 0)
        if isinstance(f, ast.Attribute) and (
            kind in ("fit", "train")
            or (kind == "step" and f.attr == "step")
            or f.attr in MUTATORS
            or (id(node) in self._whole and _in_place(node))
        ):
            recv = _root(f.value)
            if kind == "train" and recv in TRAIN_MODULES:
                recv = None
            if recv is not None and not self.func and not self.run_block:
                self.out.writes.add(recv)
                self.stmt_mutated.add(recv)
                if kind:
                    self.out.models.add(recv)
        elif isinstance(f, ast.Attribute) and f.attr in DICT_UPDATES and isinstance(f.value, ast.Name):
            if not self.func and not self.run_block:
                self.out.updated.add(f.value.id)
        if kind is None:
            return
        if not self.func and not self.run_block:
            name = call_params_name(node)
            if name is not None:  # fit.epochs: bound by this cell, read by nothing
                self.out.writes.add(name)
                self.stmt_bound.add(name)
        if self.func:
            self.func_trains = True
        elif not self.run_block:
            self.out.trains = True
            self.out.train_calls.add(_call_name(node) or kind)


def _contains_training(node: ast.AST, in_loop: bool) -> bool:
    return any(isinstance(n, ast.Call) and training_call(n, in_loop) for n in syntax.walk(node))


def _roots(node: ast.AST | None) -> set[str]:
    """The names whose data an expression passes on: ``X`` of ``X``, ``X[train_index]``,
    ``X.values``, ``np.asarray(X)``, ``X / 255``, ``[(X_val, y_val)]``; never an index
    (``train_index``), a lambda's or a comprehension's own names, or a metric's y_pred."""
    if node is None:
        return set()
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, (ast.Attribute, ast.Starred)):
        return _roots(node.value)
    if isinstance(node, ast.Subscript):
        return _roots(node.value)
    if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Constant)):
        return set()
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if name is not None and METRIC_FUNCTION.match(name) and name not in TRAIN_FUNCTIONS:
            return _roots(_y_true(node))
        if name in TORCH_LOSSES and isinstance(node.func, ast.Attribute):
            return _roots(_arg(node, 1, "target"))
        called = _roots(node.func.value) if isinstance(node.func, ast.Attribute) else set()
        for a in node.args:
            called |= _roots(a)
        for kw in node.keywords:
            called |= _roots(kw.value)
        return called
    out: set[str] = set()
    for child in syntax.children(node):
        if isinstance(child, ast.expr):
            out |= _roots(child)
    return out


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def _y_true(call: ast.Call) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg in ("y_true", "labels_true", "y"):
            return kw.value
    return call.args[0] if call.args else None


def _arg(call: ast.Call, pos: int, *names: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg in names:
            return kw.value
    return call.args[pos] if len(call.args) > pos else None


class _DataVisitor(syntax.Visitor):
    """Collects a :class:`DataUse`; function and class bodies are not the cell's data."""

    def __init__(self) -> None:
        self.out = DataUse()

    def visit_FunctionDef(self, node: ast.AST) -> None:
        return

    visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = visit_Constant = visit_FunctionDef

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.out.loop_vars |= {n.id for n in syntax.walk(node.target) if isinstance(n, ast.Name)}
        self.out.iterated |= _roots(node.iter)
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_Assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        self.generic_visit(node)
        if node.value is None:
            return
        value = node.value
        nodes = syntax.walk(value)
        calls = [n for n in nodes if isinstance(n, ast.Call)]
        predicted = any(isinstance(c.func, ast.Attribute) and c.func.attr in PREDICT_METHODS for c in calls)
        callees = {c.func.id for c in calls if isinstance(c.func, ast.Name)}
        called = {id(c.func) for c in calls}
        owners = {r for n in nodes if isinstance(n, ast.Attribute) and id(n) not in called for r in _roots(n.value)}
        info: tuple[bool, AbstractSet[str], AbstractSet[str], AbstractSet[str]] = (
            predicted,
            _roots(value) or _NONE,
            callees or _NONE,
            owners or _NONE,
        )
        if info == _PLAIN_BOUND:
            info = _PLAIN_BOUND  # `p1 = 0.5`: one shared tuple, not four objects per name
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, (ast.Name, ast.Tuple, ast.List, ast.Starred)):
                for n in syntax.walk(target):
                    if isinstance(n, ast.Name):
                        self.out.bound[n.id] = info

    visit_AnnAssign = visit_Assign

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        out, f, name = self.out, node.func, _call_name(node)
        if name is None:
            return
        label: ast.expr | None = None
        data: Sequence[ast.expr | None]
        if isinstance(f, ast.Attribute) and (name in FIT_METHODS or name in EVAL_METHODS):
            data = list(node.args) + [kw.value for kw in node.keywords]
            if name in LABEL_METHODS:
                label = _arg(node, 1, "y")
        elif name in TRAIN_FUNCTIONS:  # cross_val_score(est, X, y, ...)
            data = list(node.args[1:]) + [kw.value for kw in node.keywords if kw.arg != "estimator"]
            label = _arg(node, 2, "y")
        elif isinstance(f, ast.Attribute) and name == "train" and _root(f.value) in TRAIN_MODULES:
            data = list(node.args) + [kw.value for kw in node.keywords]
        elif name in DATA_WRAPPERS:
            data = list(node.args) + [kw.value for kw in node.keywords]
            label = _arg(node, 1 if name == "TensorDataset" else 99, "label")
        elif isinstance(f, ast.Attribute) and name in TORCH_LOSSES:
            data = [_arg(node, 1, "target")]
            label = data[0]
        elif METRIC_FUNCTION.match(name):
            data = [_y_true(node)]
            label = data[0]
        elif isinstance(f, ast.Name):  # model(X), train_model(X, y): decided at run time
            found = set()
            for a in list(node.args) + [kw.value for kw in node.keywords]:
                found |= _roots(a)
            if found:
                out.calls[name] = out.calls.get(name, set()) | found
            return
        else:
            return
        for d in data:
            out.inputs |= _roots(d)
        out.labels |= _roots(label)


def data_use(tree: ast.Module) -> DataUse:
    """The data a cell feeds to training or evaluation, as far as its syntax tells:

    - the arguments of ``fit``-like calls (``fit``, ``partial_fit``, ``fit_transform`` ...),
      ``evaluate``, ``score`` and ``predict``-like calls (the data a prediction is made from
      is evaluation data), ``xgb.train`` / ``lgb.train``, ``cross_val_score(est, X, y)`` and
      its friends, and data wrappers (``DataLoader``, ``TensorDataset``, ``lgb.Dataset``,
      ``xgb.DMatrix``);
    - the ``y_true`` of a metric function (``accuracy_score(y_test, y_pred)``: ``y_test``);
    - of an argument, the data it indexes or converts (``X[train_index]`` is ``X``), not the index;
    - calls by plain name (``model(X)``, ``loss_fn(pred, y)``), kept in ``calls`` for the
      watcher to keep when the callee is a model or a training function;
    - the names the cell binds and what their values read (a name bound from ``predict`` or
      a model's output is a prediction, not a dataset), and its for-loop targets (temporaries).
    """
    v = _DataVisitor()
    v.visit(tree)
    return v.out


def analyze(tree: ast.Module, with_data: bool = True) -> Training:
    """What ``tree`` (one cell, magics already turned into Python) does about training;
    ``with_data=False`` leaves ``data`` empty (the tracker reads it after the cell ran, when
    deciding a run needs only the rest)."""
    v = _Visitor()
    out = v.out
    if with_data:
        out.data = data_use(tree)
    rebound: set[str] = set()
    for stmt in tree.body:
        v.stmt_loaded, v.stmt_bound, v.stmt_mutated = set(), set(), set()
        v.stmt_keys, v.stmt_spread, v.stmt_whole = {}, set(), set()
        v.visit(stmt)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            v.stmt_bound.add(stmt.name)
        keyed = _keys_read(v)
        for name in v.stmt_bound | v.stmt_mutated:
            deps = v.stmt_loaded - {name}
            keys = {d: k for d, k in keyed.items() if d in deps}
            if name in v.stmt_mutated or name in v.stmt_loaded:  # clf.fit(X), x = x[:100]: x still
                out.deps[name] = out.deps.get(name, set()) | deps  # depends on what it was
                if name not in rebound:
                    out.mutated.add(name)
                if keys or name in out.keys_read:
                    out.keys_read[name] = _merge_keys(out.keys_read.get(name, {}), keys, deps)
            else:
                out.deps[name] = deps or _NONE
                rebound.add(name)
                out.mutated.discard(name)
                out.keys_read[name] = keys
                if not keys:
                    del out.keys_read[name]
    out.reads = v.loaded - v.stored
    out.defines |= v.stored
    return out


def _keys_read(v: _Visitor) -> dict[str, frozenset[str] | None]:
    """The names the statement just visited read only by constant keys (those keys) or only spread (None)."""
    out: dict[str, frozenset[str] | None] = {}
    for name in (v.stmt_keys.keys() | v.stmt_spread) - v.stmt_whole:
        out[name] = None if name in v.stmt_spread else frozenset(v.stmt_keys[name])
    return out


# pandas' methods that change their frame or series when told ``inplace=True`` (not ``eval``: ``pd.eval(...,
# target=df, inplace=True)`` is a function of the module that changes its target)
PANDAS_IN_PLACE = frozenset(
    {
        "bfill",
        "clip",
        "drop",
        "drop_duplicates",
        "dropna",
        "ffill",
        "fillna",
        "interpolate",
        "mask",
        "query",
        "rename",
        "rename_axis",
        "replace",
        "reset_index",
        "set_index",
        "sort_index",
        "sort_values",
        "where",
    }
)


def _in_place(node: ast.Call) -> bool:
    """A pandas method told to change its object rather than return a new one (``df.dropna(inplace=True)``,
    ``df["age"].fillna(0, inplace=True)``): it changes the name it is called on, as an assignment to it would. Asked
    of a call that is a statement of its own (pandas returns None then): ``nn.ReLU(inplace=True)`` inside an
    expression builds a layer and changes no ``nn``; ``F.relu(x, inplace=True)``, ``sc.pp.normalize_total(adata,
    inplace=True)`` are no pandas method and change their argument, not the module."""
    return (
        isinstance(node.func, ast.Attribute)
        and node.func.attr in PANDAS_IN_PLACE
        and any(
            kw.arg == "inplace" and isinstance(kw.value, ast.Constant) and kw.value.value is True
            for kw in node.keywords
        )
    )


def _merge_keys(
    before: dict[str, frozenset[str] | None], now: dict[str, frozenset[str] | None], deps: AbstractSet[str]
) -> dict[str, frozenset[str] | None]:
    """A name changed in place (``clf.set_params(C=params["C"])``) read the keys of both statements; a name that
    a statement read as a whole is read by unknown keys from then on (left out)."""
    out = dict(before)
    for name in deps - now.keys():
        out.pop(name, None)
    for name, keys in now.items():
        if name in out:
            old = out[name]
            out[name] = None if old is None or keys is None else old | keys
        else:
            out[name] = keys
    return out


# IPython magics whose body or argument is Python code run in the user namespace
CODE_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "memit", "debug"})
CODE_LINE_MAGICS = frozenset({"time", "timeit", "prun", "memit", "debug"})


# the cell texts whose analyses are kept (nbexp.capture.texts): a notebook's cells, re-executed, are not parsed again
CACHED_TEXTS = 256
# the cell texts whose trees are kept: the analysers of one capture share a tree, and a session keeps each text's
# analyses, not its tree. Every node is an object the garbage collector walks at each full pass: 256 trees of
# 50-line cells made a tracked process's full collection ~4 times as long (bench/RESULTS.md, 2026-11-26 21:55).
CACHED_TREES = 8


@functools.lru_cache(maxsize=CACHED_TREES)
def cell_tree(source: str, transform: Callable[[str], str]) -> ast.Module | None:
    """A cell's text as a syntax tree, IPython syntax allowed (``transform``: the shell's
    ``transform_cell``; the code inside ``%%time``, ``%%capture``, ``%time`` is what counts), or
    None when it does not parse. Cached by text: the tracker's analysis, result capture and file
    capture read the one tree of a cell, which none of them changes."""
    code = source
    if "%" in code or "!" in code or "?" in code:
        code = transform(code)
    try:
        tree = ast.parse(code)
        if "get_ipython" in code:
            tree = unwrap_magics(tree, transform)
    except SyntaxError:
        return None
    return syntax.index(tree)  # walked once here, read by every analyser (see nbexp.capture.syntax)


def unwrap_magics(tree: ast.Module, transform) -> ast.Module:
    """Replace ``get_ipython().run_cell_magic('time', '', body)`` (what IPython turns a
    ``%%time`` cell into) and ``get_ipython().run_line_magic('time', 'stmt')`` lines by the
    Python code they run, so literals, metrics and training inside them are seen.

    ``transform`` turns IPython syntax into Python (``shell.transform_cell``); it is applied
    to each body, which may hold magics of its own. Bodies that do not parse stay as they are.
    """
    body: list[ast.stmt] = []
    changed = False
    for stmt in tree.body:
        inner = _magic_body(stmt, transform)
        if inner is None:
            body.append(stmt)
        else:
            body.extend(inner)
            changed = True
    if not changed:
        return tree
    return ast.Module(body=body, type_ignores=[])


def _magic_body(stmt: ast.stmt, transform, depth: int = 0) -> list[ast.stmt] | None:
    value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Attribute):
        return None
    f = value.func
    if not (isinstance(f.value, ast.Call) and isinstance(f.value.func, ast.Name) and f.value.func.id == "get_ipython"):
        return None
    args = [a.value for a in value.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if not args or len(args) != len(value.args):
        return None
    name = args[0]
    if f.attr == "run_cell_magic" and len(args) == 3 and name in CODE_CELL_MAGICS:
        code = args[2]
    elif f.attr == "run_line_magic" and len(args) == 2 and name in CODE_LINE_MAGICS:
        code = args[1]
        if name == "timeit":  # %timeit -n 3 -r 1 stmt: options first
            code = _strip_options(code)
    else:
        return None
    if "%" in code or "!" in code or "?" in code:
        code = transform(code)
    try:
        inner = ast.parse(code)
    except SyntaxError:
        return None
    stmts = inner.body
    if depth < 4:
        stmts = [s for st in stmts for s in (_magic_body(st, transform, depth + 1) or [st])]
    if isinstance(stmt, ast.Assign):  # y = %time f(x)
        if len(stmts) != 1 or not isinstance(stmts[0], ast.Expr):
            return None
        return [ast.Assign(targets=stmt.targets, value=stmts[0].value, lineno=stmt.lineno)]
    return stmts


def _strip_options(code: str) -> str:
    words = code.split()
    i = 0
    while i < len(words) and words[i].startswith("-"):
        i += 1 if words[i] in ("-q", "-o", "-p") or len(words[i]) > 2 else 2
    return " ".join(words[i:]) if i else code
