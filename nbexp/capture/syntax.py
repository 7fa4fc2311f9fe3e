"""One walk over a cell's syntax tree, shared by every analyser.

A new cell's text is read by several analysers (its params in :mod:`.params`, its training and data
in :mod:`.training`, its results in :mod:`.results`, its files in :mod:`.files`, its labels in
:mod:`.data.summary`), each walking the tree or parts of it again with :func:`ast.walk` and
:class:`ast.NodeVisitor`, which find a node's children anew on every visit (``ast.iter_child_nodes``:
a ``getattr`` per field, the costliest step of reading a cell). :func:`index` walks the tree once, as
the tree is parsed (:func:`.training.cell_tree`), and keeps each node's children on the node and the
tree's calls on its root; :func:`walk`, :func:`calls` and :class:`Visitor` then read those, in the
very order ``ast.walk`` and ``NodeVisitor`` give (less the context and operator leaves no analyser
reads), so every analyser's answer stays the same. A tree that was not indexed (parsed elsewhere) is
walked the standard way.
"""

from __future__ import annotations

import ast
from typing import Any, TypeVar

_AST = ast.AST
_Tree = TypeVar("_Tree", bound=ast.AST)
_CALL = ast.Call
# Field types that never hold a node an analyser looks at: names and constants, and the leaves
# ``Load``/``Store``/``Del`` of every name and the operator of every ``a * b``, ``not x``, ``a < b``,
# ``a and b`` (left out of the index: a third of a cell's nodes).
_PLAIN_TYPES = frozenset(
    {"identifier", "string", "constant", "int", "expr_context", "operator", "unaryop", "cmpop", "boolop"}
)
_SILENT = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
_FIELDS: dict[type, tuple[tuple[str, ...], bool]] = {}
_LEAF: tuple[ast.AST, ...] = ()


def _node_fields(cls: type) -> tuple[tuple[str, ...], bool]:
    """``(fields, typed)``: the fields of a node class that may hold child nodes, read from its
    signature in the class's docstring (``Name(identifier id, expr_context ctx)``: none), typed; every
    field, not typed, when the signature cannot be read (each value is then checked)."""
    found = _FIELDS.get(cls)
    if found is None:
        fields = tuple(cls._fields)  # type: ignore[attr-defined]
        found = (fields, False)
        doc = (cls.__doc__ or "").strip()
        if doc.startswith(cls.__name__ + "(") and doc.endswith(")"):
            parts = [p.split() for p in doc[len(cls.__name__) + 1 : -1].split(",") if p.strip()]
            if all(len(p) == 2 for p in parts) and [p[1] for p in parts] == list(fields):
                found = (tuple(name for typ, name in parts if typ.rstrip("*?") not in _PLAIN_TYPES), True)
        _FIELDS[cls] = found
    return found


def index(tree: _Tree) -> _Tree:
    """Keep on each node of ``tree`` its child nodes (in ``ast.iter_child_nodes``' order, less the
    leaves above) and on ``tree`` its calls (in ``ast.walk``'s order); returns ``tree``. The tree must
    not change afterwards."""
    calls: list[ast.Call] = []
    nodes: list[ast.AST] = [tree]
    known = _FIELDS.get
    for node in nodes:  # breadth first, like ast.walk: the list grows as it is read
        cls = node.__class__
        fields, typed = known(cls) or _node_fields(cls)
        if not fields:
            node._nbexp_kids = _LEAF  # type: ignore[attr-defined]
            continue
        kids: list[ast.AST] = []
        for name in fields:
            value = getattr(node, name, None)
            if value is None:
                continue
            if value.__class__ is list:
                kids.extend(item for item in value if isinstance(item, _AST) and not isinstance(item, _SILENT))
            elif typed or isinstance(value, _AST) and not isinstance(value, _SILENT):
                kids.append(value)
        node._nbexp_kids = kids  # type: ignore[attr-defined]
        if cls is _CALL:
            calls.append(node)  # type: ignore[arg-type]
        nodes.extend(kids)
    tree._nbexp_calls = calls  # type: ignore[attr-defined]
    return tree


def walk(node: ast.AST) -> list[ast.AST]:
    """The nodes of ``node``'s subtree, ``node`` first, in ``ast.walk``'s order (less the leaves
    :func:`index` leaves out, in an indexed tree). Kept on an indexed node: the params, training and
    data analysers each walk a statement's value; callers read the list, never change it."""
    d = node.__dict__
    nodes = d.get("_nbexp_walk")
    if nodes is not None:
        return nodes
    if "_nbexp_kids" not in d:
        return list(ast.walk(node))
    nodes = [node]
    for n in nodes:  # the list grows as it is read
        nodes.extend(n._nbexp_kids)
    d["_nbexp_walk"] = nodes
    return nodes


def calls(tree: ast.AST) -> list[ast.Call]:
    """The calls in ``tree``, in ``ast.walk``'s order."""
    found = tree.__dict__.get("_nbexp_calls")
    if found is None:
        return [n for n in walk(tree) if isinstance(n, _CALL)]
    return found


def children(node: ast.AST) -> list[ast.AST]:
    """``node``'s child nodes, in ``ast.iter_child_nodes``' order."""
    kids = node.__dict__.get("_nbexp_kids")
    return list(ast.iter_child_nodes(node)) if kids is None else kids


class Visitor(ast.NodeVisitor):
    """An ``ast.NodeVisitor`` that finds children from :func:`index` (the same nodes, the same
    order) and its ``visit_`` method by the node's class once per class."""

    def visit(self, node: ast.AST) -> Any:
        cls = node.__class__
        method = self._methods.get(cls)
        if method is None:
            method = self._methods[cls] = getattr(type(self), "visit_" + cls.__name__, None) or type(self).generic_visit
        return method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        kids = node.__dict__.get("_nbexp_kids")
        if kids is None:
            super().generic_visit(node)
            return
        for child in kids:
            self.visit(child)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._methods = {}

    _methods: dict[type, Any] = {}
