"""Cell code: scrubbed text and its content hash.

:func:`.secrets.scrub_text` finds secrets by their shape and by the name they are given in the
text. One more case needs the callee: a string passed *positionally* to a parameter with a secret
name, ``connect("db", "hunter2")`` for ``def connect(host, password)``. :func:`prepare` reads the
parameter names of each function the cell calls with a string literal, from

- a ``def`` (or a class's ``__init__``) in the cell itself, or
- the kernel's namespace (the running IPython shell's by default): ``connect``, ``db.connect``,
  ``pkg.mod.Client`` resolved by dictionary look-ups and :func:`inspect.getattr_static` (no
  property, ``__getattr__`` or import runs), then :func:`inspect.signature`;

and hides the string literals bound to secret-named parameters (also inside a tuple, list or dict
passed there: ``auth=("me", "pw")``). What stays out of reach: callees whose signature Python cannot read
(C functions without a text signature, ``*args`` wrappers without ``__wrapped__``), callees reached
through a call or subscript (``get_client().login("me", "pw")``), methods of objects whose class
is only known at run time (``self.x.connect(...)`` inside a function), and secrets that are not
literals in the call (a variable: its assignment is where the secret is, found by name or shape).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import re
import sys
import types
from collections.abc import Mapping
from typing import Any

from ..textfmt import storable_text
from .secrets import REDACTED, generation, is_secret_name, remember, scrub_text

# searched in the reversed source, so that each pattern starts with a literal (fast to scan for):
# ``name(`` and ``name = (`` / ``[`` / ``{`` read backwards
_CALLED_REVERSED = re.compile(r"\(\s*([\w.]*[A-Za-z_])(?![\w.])")
_KEYWORD_REVERSED = re.compile(r"[(\[{]\s*=\s*(\w+)")
_MISSING = object()
_signatures: dict[Any, tuple[str, ...] | None] = {}  # callee -> its positional parameter names
_MAX_SIGNATURES = 1024


def prepare(source: str, namespace: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """Return ``(hash, scrubbed_source)`` of one cell's code.

    Args:
        source: the cell as typed (IPython syntax allowed).
        namespace: the kernel's ``user_ns``, to read the signatures of the functions the cell
            calls (positional secrets); by default the running IPython shell's, if any.
    """
    if namespace is None and (ipython := sys.modules.get("IPython")) is not None:
        namespace = getattr(ipython.get_ipython(), "user_ns", None)
    secrets = _positional_secrets(source, namespace)
    if secrets:
        for value in secrets:
            remember(value)
        source = re.sub(
            "|".join(rf"(?<=['\"]){re.escape(v)}(?=['\"])" for v in sorted(secrets, key=len, reverse=True)),
            REDACTED,
            source,
        )
    return _prepare(source, generation())


@functools.lru_cache(maxsize=256)  # re-executed cells are the common case
def _prepare(source: str, _generation: int) -> tuple[str, str]:
    clean = storable_text(scrub_text(source))  # hashed as stored, so an import can check the hash
    return hashlib.sha1(clean.encode("utf-8")).hexdigest()[:16], clean


def _positional_secrets(source: str, namespace: Mapping[str, Any] | None) -> set[str]:
    """String literals the cell passes to secret-named parameters (see the module docstring).

    Cheap on the common cell: called names are found by a regex and looked up, and only the calls
    to a function with a secret-named parameter are parsed, each from its own text (parsing a whole
    200-line cell would take some 10 ms)."""
    if "(" not in source or ("'" not in source and '"' not in source):
        return set()
    reverse = source[::-1]
    found: set[str] = set()
    defined = _defined(source) if "def " in source else {}
    for name in {n[::-1] for n in _CALLED_REVERSED.findall(reverse)}:
        names = defined.get(name.rsplit(".", 1)[-1]) if defined else None
        if names is None and namespace is not None:
            names = _namespace_params(namespace, name)
        if not names or not any(is_secret_name(n) for n in names):
            continue
        for call in _calls(source, name):
            for i, arg in enumerate(call.args):
                if isinstance(arg, ast.Starred) or i >= len(names):
                    break
                if is_secret_name(names[i]):
                    found.update(_strings(arg))
    for keyword in {k[::-1] for k in _KEYWORD_REVERSED.findall(reverse)}:
        if is_secret_name(keyword):  # password=("me", "pw"); name="pw" is scrub_text's
            for m in re.finditer(rf"(?<![\w.]){re.escape(keyword)}\s*=\s*(?=[(\[{{])", source):
                found.update(_strings(_parse(_bracketed(source, m.end()))))
    return {v for v in found if v and v != REDACTED}


_BRACKETS = re.compile(r"""[()\[\]{}]|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|#[^\n]*""")


def _bracketed(source: str, start: int) -> str | None:
    """The text from the bracket at ``source[start]`` to its match (strings and comments skipped)."""
    depth = 0
    for m in _BRACKETS.finditer(source, start):
        c = m.group(0)[0]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return source[start : m.end()]
    return None


def _parse(text: str | None, prefix: str = "") -> ast.AST | None:
    """``prefix + text`` parsed as an expression; None when it does not parse (a triple-quoted
    string inside, IPython syntax)."""
    if text is None:
        return None
    try:
        return ast.parse(prefix + text, mode="eval").body
    except SyntaxError:
        return None


def _calls(source: str, name: str) -> list[ast.Call]:
    """The calls to dotted ``name`` in ``source``, each parsed from its own text."""
    out = []
    for m in re.finditer(rf"(?<![\w.]){re.escape(name)}\s*(?=\()", source):
        node = _parse(_bracketed(source, m.end()), prefix="f")
        if isinstance(node, ast.Call):
            out.append(node)
    return out


_DEF = re.compile(r"(?m)^([ \t]*)(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*(?=\()|^([ \t]*)class[ \t]+(\w+)")


@functools.lru_cache(maxsize=256)
def _defined(source: str) -> dict[str, tuple[str, ...]]:
    """Positional parameter names of the functions (and classes, by ``__init__``) a cell defines;
    methods without their ``self``, as they are called on an object."""
    out: dict[str, tuple[str, ...]] = {}
    cls: tuple[int, str] | None = None  # (indent, name) of the enclosing class
    for m in _DEF.finditer(source):
        if m.group(4):
            cls = (len(m.group(3)), m.group(4))
            continue
        text = _bracketed(source, m.end())
        try:
            tree = ast.parse(f"def f{text}: pass") if text else None
        except SyntaxError:
            tree = None
        if tree is None or not isinstance(tree.body[0], ast.FunctionDef):
            continue
        spec = tree.body[0].args
        args = tuple(a.arg for a in spec.posonlyargs + spec.args)
        in_class = cls is not None and len(m.group(1)) > cls[0]
        if in_class and args[:1] in (("self",), ("cls",)):
            args = args[1:]
        out[m.group(2)] = args
        if cls is not None and in_class and m.group(2) == "__init__":
            out[cls[1]] = args
    return out


def _strings(node: ast.AST | None) -> tuple[str, ...]:
    """The string literals of an argument: a string, or the strings of a tuple, list, set or dict
    values. Not those of a call or subscript (``os.environ["DB_PASSWORD"]`` names a secret, it is not
    one); a call is looked at on its own."""
    if isinstance(node, ast.Constant):
        return (node.value,) if isinstance(node.value, str) else ()
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return tuple(v for e in node.elts for v in _strings(e))
    if isinstance(node, ast.Dict):
        return tuple(v for e in node.values for v in _strings(e))
    return ()


def _namespace_params(namespace: Mapping[str, Any], dotted: str) -> tuple[str, ...] | None:
    """Positional parameter names of ``dotted`` in ``namespace`` (bound ``self`` dropped), or None."""
    head, *rest = dotted.split(".")
    obj = namespace.get(head, _MISSING)
    if obj is _MISSING:
        return None
    bound = False
    try:
        for attr in rest:
            owner = obj
            obj = inspect.getattr_static(owner, attr)
            bound = False
            if isinstance(obj, staticmethod):
                obj = obj.__func__
            elif isinstance(obj, classmethod):
                obj, bound = obj.__func__, True
            elif isinstance(obj, (property, types.MemberDescriptorType, types.GetSetDescriptorType)):
                return None
            elif inspect.isfunction(obj) and not isinstance(owner, (type, types.ModuleType)):
                bound = attr not in _instance_dict(owner)  # a method of its class, not a stored function
    except AttributeError:
        return None
    if not callable(obj):
        return None
    names = _parameters(obj)
    return names[1:] if bound and names else names


def _instance_dict(obj: Any) -> Mapping[str, Any]:
    try:
        d = object.__getattribute__(obj, "__dict__")
    except Exception:  # noqa: BLE001 - a class may make __dict__ anything; then no instance dict
        return {}
    return d if isinstance(d, Mapping) else {}


def _parameters(obj: Any) -> tuple[str, ...] | None:
    try:
        return _signatures[obj]
    except (KeyError, TypeError):
        pass
    try:
        params = inspect.signature(obj).parameters.values()
        names = tuple(p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    except (TypeError, ValueError, RecursionError):
        names = None
    try:
        if len(_signatures) >= _MAX_SIGNATURES:
            _signatures.pop(next(iter(_signatures)))
        _signatures[obj] = names
    except TypeError:  # unhashable callables are not cached
        pass
    return names


NBEXP_ONLY = ("%nbexp", "%load_ext nbexp", "%reload_ext nbexp", "%unload_ext nbexp")


# the first line of the cell nbexp records for the imports a kernel ran before tracking (Session._record_prelude)
PRELUDE_HEADER = "# imported before %nbexp track (nbexp read them from the kernel's earlier input)"


def is_prelude(source: str) -> bool:
    """Whether a cell of a run's code is the imports nbexp read from before tracking (:data:`PRELUDE_HEADER`)."""
    return source.startswith(PRELUDE_HEADER)


def drives_only_nbexp(source: str) -> bool:
    """True for a cell that only drives nbexp (``%%nbexp ...``, ``%nbexp ...`` lines,
    ``%load_ext nbexp``): the tracker records no capture for it and replay leaves it out."""
    if "nbexp" not in source:  # most cells: not read line by line before each runs
        return False
    if source.lstrip().startswith("%%nbexp"):
        return True
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return bool(lines) and all(ln.startswith(NBEXP_ONLY) for ln in lines)
