"""Hyperparameters, found without instrumentation.

From a cell's source: top-level assignments of literal values (``LR = 3e-4``,
``layers = [64, 64]``, ``cfg = {"opt": {"lr": 1e-3}}`` flattened as ``cfg.opt.lr``).
From objects the cell names: dataclass, argparse and SimpleNamespace configs,
estimators with ``get_params()`` (scikit-learn and look-alikes), PyTorch
optimizers, LR schedulers and modules (only when torch is already imported).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import sys
from typing import Any, Iterable

from .secrets import scrub_value

MAX_LIST = 64        # longer lists are not hyperparameters
MAX_STR = 500        # nor are long strings
MAX_DEPTH = 4        # dict nesting kept when flattening

IGNORED_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})

Params = dict[str, Any]


class Skipped(Exception):
    """A value that cannot be a param; the message says why (one warning per cause)."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


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
        if isinstance(node.op, ast.USub) and type(node.operand.value) in (int, float):
            return -node.operand.value
    if not isinstance(node, (ast.List, ast.Tuple, ast.Dict, ast.Set, ast.UnaryOp)):
        return _NO_VALUE
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO_VALUE


def top_level_assignments(tree: ast.Module) -> tuple[dict[str, Any], set[str]]:
    """Module-level ``NAME = value`` statements of a cell.

    Returns:
        ``(literal, computed)``: names bound to a literal (outside loops) with
        its value, and names bound to anything else (metric candidates).
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
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    computed.update(_target_names(item.optional_vars))
            continue
        else:
            continue
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
    return literal, computed


def from_literals(literal: dict[str, Any], skipped: list[Skipped]) -> Params:
    """Params from the literal top-level assignments of one cell."""
    out: Params = {}
    for name, value in literal.items():
        if name.startswith("_") or name in IGNORED_NAMES or isinstance(value, (bytes, complex, Ellipsis.__class__)):
            continue
        if isinstance(value, (set, frozenset)):
            value = sorted(value, key=repr)
        flatten(name, value, out, skipped)
    return out


_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z][A-Za-z0-9_]*")


def referenced_names(source: str) -> list[str]:
    """Public names a cell may read or bind, in first-seen order.

    A fast superset (words in strings and comments count too): callers look each
    up in the namespace and keep only config-like objects.
    """
    return [n for n in dict.fromkeys(_IDENTIFIER.findall(source)) if n not in IGNORED_NAMES]


def from_object(name: str, obj: Any, skipped: list[Skipped]) -> Params:
    """Params of one object the cell names, or {} when it is not a config-like object."""
    if isinstance(obj, type) or callable(obj) and not hasattr(obj, "get_params") and not _is_torch_module(obj):
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
        return _estimator(name, obj, skipped)
    if "torch" in sys.modules:
        return _torch(name, obj, skipped)
    return {}


def _qualname(obj: Any) -> str:
    return type(obj).__name__


def _estimator(name: str, est: Any, skipped: list[Skipped]) -> Params:
    out: Params = {f"{name}.class": _qualname(est)}
    params = est.get_params(deep=True)
    for key in sorted(params):
        value = params[key]
        dotted = f"{name}.{key.replace('__', '.')}"
        if hasattr(value, "get_params") and hasattr(value, "fit"):
            out[f"{dotted}.class"] = _qualname(value)
            continue
        if key == "steps" or key == "transformers" or callable(value):
            continue
        if value is None or isinstance(value, (bool, int, float, str)):
            flatten(dotted, value, out, skipped)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str, type(None))) for v in value):
            flatten(dotted, value, out, skipped)
        elif isinstance(value, dict):
            flatten(dotted, value, out, skipped)
        elif type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
            flatten(dotted, value, out, skipped)
        else:
            out[dotted] = _qualname(value)
    return out


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return bool(torch) and isinstance(obj, torch.nn.Module)


def _torch(name: str, obj: Any, skipped: list[Skipped]) -> Params:
    torch = sys.modules["torch"]
    out: Params = {}
    if isinstance(obj, torch.optim.Optimizer):
        out[f"{name}.class"] = _qualname(obj)
        groups = obj.param_groups
        for i, group in enumerate(groups):
            prefix = name if i == 0 else f"{name}.group{i}"
            for k, v in group.items():
                if k == "params" or isinstance(v, torch.Tensor) and v.ndim > 0:
                    continue
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
