"""Files a run wrote, kept with the run without a call (issue 18, "Files a run wrote").

A cell that saves a model, a checkpoint, predictions or a figure names the file in its code:
``torch.save(model, "model.pt")``, ``joblib.dump(clf, path)``, ``model.save("m.keras")``,
``booster.save_model(...)``, ``df.to_csv("out/preds.csv")``, ``plt.savefig(...)``,
``np.save(...)``, ``open(path, "w")``, ``Path(p).write_text(...)``. After the cell ran,
:func:`record` reads those paths from the cell's syntax tree (parsed once per cell text), resolves
each to a string (a literal, a name the namespace binds to a string or a ``pathlib.Path``, an
f-string of such names, ``a / "b"``, ``folder + "/b"``, ``os.path.join(...)``, ``Path(...)``), and stats only them:
nothing walks the notebook's tree (a path that is a folder, ``save_pretrained("out/")``, is
looked into, bounded). A file whose modification time is not older than the cell's start (less
the file system clock's tick: file times come from a coarser clock than ``time.time()``) was
written by the cell and becomes an artifact of the cell's run:

- its name and path: relative to the working directory (the notebook's folder) when inside it,
  else absolute; both scrubbed of secrets by the store;
- its size and SHA-256, and its bytes copied into the ledger when at most
  :data:`nbexp.recorder.ARTIFACT_COPY_MAX` (10 MB), so a run keeps its model when the next run
  overwrites the file. A file over :data:`HASH_MAX` is not read at all: its size is recorded, its
  hash left empty, and one warning says so.

The same name written again in the same run replaces the run's artifact (the run keeps what it
last wrote). Nothing here raises into the cell: a file that vanished or cannot be read is one
warning line.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..recorder import read_once
from . import syntax
from .modules import PREFIX as MODULES
from .training import cell_tree

HASH_MAX = 1 << 30  # files larger than this (1 GiB) are recorded by size only: hashing them would stall the cell
MAX_PATHS = 50  # candidate paths looked at per cell
MAX_DIR_ENTRIES = 1000  # entries looked at inside a folder a cell saved into
MAX_PATH_CHARS = 4096

# calls whose arguments may name the file they write: any positional argument, and these keywords
WRITERS = frozenset(
    {
        "save",  # torch.save(obj, f), model.save(path) (Keras), np.save(file, arr), image.save(fp)
        "dump",  # joblib.dump(obj, filename)
        "save_model",  # XGBoost, LightGBM, keras.models.save_model(model, filepath)
        "save_weights",
        "save_pretrained",  # Hugging Face: a folder
        "savefig",
        "savez",
        "savez_compressed",
        "savetxt",
        "imwrite",
        "imsave",
        "write_image",
        "write_html",
        "to_csv",
        "to_parquet",
        "to_json",
        "to_excel",
        "to_pickle",
        "to_feather",
        "to_hdf",
        "to_orc",
        "to_stata",
        "to_netcdf",
        "to_file",
    }
)
PATH_KEYWORDS = frozenset(
    {"f", "file", "fname", "filename", "filepath", "path", "path_or_buf", "excel_writer", "fp", "save_directory"}
)
RECEIVER_WRITERS = frozenset({"write_text", "write_bytes"})  # Path("p").write_text(...): the receiver is the file
MAYBE_WRITES = re.compile(r"save|dump|to_|open|write|imwrite|imsave")
_WRITE_MODE = re.compile(r"[wax+]")


@dataclass
class Seen:
    """Per session: the state ``(mtime_ns, size)`` of each file already recorded, so a file is not
    taken again by a later cell that names it without writing it."""

    state: dict[str, tuple[int, int]] = field(default_factory=dict)


def _tick() -> float:
    """How far a file's time may lag ``time.time()``: the coarse clock's resolution on Linux."""
    clock = getattr(time, "CLOCK_REALTIME_COARSE", 5 if sys.platform.startswith("linux") else None)
    if clock is not None:
        try:
            return min(max(time.clock_getres(clock), 0.001), 0.05)
        except (OSError, AttributeError):
            pass
    return 0.02


TICK = _tick()


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def _mode(call: ast.Call, pos: int) -> str | None:
    node = call.args[pos] if len(call.args) > pos else next((k.value for k in call.keywords if k.arg == "mode"), None)
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def path_nodes(tree: ast.AST) -> list[ast.expr]:
    """The expressions in a cell that may name a file it writes, in the order they appear."""
    out: list[ast.expr] = []
    for node in syntax.calls(tree):
        name = _call_name(node)
        if name in WRITERS:
            out.extend(a for a in node.args if not isinstance(a, ast.Starred))
            out.extend(k.value for k in node.keywords if k.arg in PATH_KEYWORDS)
        elif name == "open":
            method = isinstance(node.func, ast.Attribute)  # Path(p).open("w"): the mode comes first
            mode = _mode(node, 0 if method else 1)
            if mode and _WRITE_MODE.search(mode):
                if method:
                    out.append(node.func.value)  # type: ignore[attr-defined]
                elif node.args:
                    out.append(node.args[0])
                else:
                    out.extend(k.value for k in node.keywords if k.arg == "file")
        elif name in RECEIVER_WRITERS and isinstance(node.func, ast.Attribute):
            out.append(node.func.value)
    return out


def path_exprs(source: str, transform: Callable[[str], str]) -> tuple[ast.expr, ...]:
    """The candidate path expressions of a cell's text (IPython syntax allowed); a session keeps them
    per text (:mod:`nbexp.capture.texts`)."""
    if not MAYBE_WRITES.search(source):
        return ()
    tree = cell_tree(source, transform)
    return tuple(path_nodes(tree)) if tree is not None else ()


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        p = os.fspath(value)
        return p if isinstance(p, str) else None
    return None


def _same(x: Any) -> Any:
    return x


_CONVERSIONS: dict[int, Callable[[Any], str]] = {115: str, 114: repr, 97: ascii}  # f"{x!s}", !r, !a


def resolve(node: ast.expr, ns: Mapping[str, Any]) -> str | None:
    """The path an expression names, read from its literals and the namespace only (nothing is
    called, no attribute read): None when it cannot be told."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Name):
        return _text(ns.get(node.id))
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
            elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name):
                value = ns.get(v.value.id)
                if not isinstance(value, (str, int, float)) and _text(value) is None:
                    return None
                spec = ""
                if v.format_spec is not None:
                    s = resolve(v.format_spec, ns)
                    if s is None:
                        return None
                    spec = s
                try:
                    convert = _CONVERSIONS.get(v.conversion, _same)
                    value = convert(value)
                    parts.append(format(value, spec))
                except (ValueError, TypeError):
                    return None
            else:
                return None
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = resolve(node.left, ns), resolve(node.right, ns)
        return os.path.join(left, right) if left is not None and right is not None else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):  # OUT + "/preds.csv": strings only
        left, right = _str(node.left, ns), _str(node.right, ns)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.Call) and not node.keywords and node.args and _joins(node.func):
        pieces = [resolve(a, ns) for a in node.args]
        return None if any(p is None for p in pieces) else os.path.join(*pieces)  # type: ignore[arg-type]
    return None


def _str(node: ast.expr, ns: Mapping[str, Any]) -> str | None:
    """A side of ``+``: a string literal, a name bound to a string, or another such sum (a ``Path``
    has no ``+``, so a name bound to one does not count)."""
    if isinstance(node, ast.Name):
        value = ns.get(node.id)
        return value if isinstance(value, str) else None
    return resolve(node, ns) if isinstance(node, (ast.Constant, ast.BinOp, ast.JoinedStr)) else None


def _joins(func: ast.expr) -> bool:
    """``os.path.join``, ``Path`` or ``pathlib.Path`` (not ``",".join``)."""
    if isinstance(func, ast.Name):
        return func.id in ("Path", "PurePath")
    if isinstance(func, ast.Attribute):
        if func.attr in ("Path", "PurePath"):
            return True
        return func.attr == "join" and isinstance(func.value, ast.Attribute) and func.value.attr == "path"
    return False


def candidate_paths(
    source: str,
    transform: Callable[[str], str],
    ns: Mapping[str, Any],
    kept_paths: Callable[[], tuple[ast.expr, ...]] | None = None,
) -> list[str]:
    """Absolute paths a cell's code names as files it writes (deduplicated, at most :data:`MAX_PATHS`);
    ``kept_paths``: gives the text's path expressions when the caller keeps them (else the text is read)."""
    out: dict[str, None] = {}
    for node in kept_paths() if kept_paths is not None else path_exprs(source, transform):
        p = resolve(node, ns)
        if not p or len(p) > MAX_PATH_CHARS or "\x00" in p:
            continue
        out.setdefault(os.path.abspath(os.path.expanduser(p)), None)
        if len(out) >= MAX_PATHS:
            break
    return list(out)


def _written(path: str, since: float) -> Iterable[tuple[str, os.stat_result]]:
    """``(file, stat)`` of ``path`` (or of the files in it, when a folder) modified at or after ``since``."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return
    if os.path.isdir(path):
        seen = 0
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                seen += 1
                if seen > MAX_DIR_ENTRIES:
                    return
                full = os.path.join(root, f)
                try:
                    fst = os.stat(full)
                except OSError:
                    continue
                if fst.st_mtime >= since and os.path.isfile(full):
                    yield full, fst
    elif st.st_mtime >= since and os.path.isfile(path):
        yield path, st


def name_of(path: str, cwd: str) -> str:
    """How an artifact is named: its path relative to ``cwd`` when inside it, else absolute."""
    try:
        rel = os.path.relpath(path, cwd)
    except ValueError:  # another drive
        return path
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return path
    rel = rel.replace(os.sep, "/")
    return "./" + rel if rel.startswith(MODULES) else rel  # the run's own modules have that name (capture.modules)


def record(
    source: str,
    start: float,
    run: Any,
    ns: Mapping[str, Any],
    transform: Callable[[str], str],
    warn: Callable[[str, str], None],
    seen: Seen,
    kept_paths: Callable[[], tuple[ast.expr, ...]] | None = None,
) -> list[dict[str, Any]]:
    """Record the files the cell (``source``, started at ``start``) wrote as artifacts of ``run``;
    returns what was recorded (``kept_paths``: see :func:`candidate_paths`). Never raises: a problem is
    one warning line."""
    kept: list[dict[str, Any]] = []
    try:
        paths = candidate_paths(source, transform, ns, kept_paths)
        if not paths:
            return kept
        cwd, since = os.getcwd(), start - TICK
        for p in paths:
            for path, st in _written(p, since):
                state = (st.st_mtime_ns, st.st_size)
                if seen.state.get(path) == state:
                    continue
                name = name_of(path, cwd)
                try:
                    if st.st_size > HASH_MAX:
                        data, digest = None, ""
                        warn("files", f"{name} is {st.st_size / 2**30:.1f} GiB: its size is recorded, not its hash")
                    else:
                        data, digest, _size = read_once(path)
                except OSError as exc:
                    warn("files", f"{name} not recorded ({type(exc).__name__}: {exc})")
                    continue
                size = len(data) if data is not None else st.st_size
                kept.append(run.keep_artifact(name, name, size, digest, data))
                seen.state[path] = state
    except Exception as exc:
        warn("files", f"files the cell wrote not recorded ({type(exc).__name__}: {exc})")
    return kept
