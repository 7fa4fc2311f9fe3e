"""The house rules a reader of the code relies on, checked on the source itself (fast: no kernel).

- The ledger owns every write: no module outside ``nbexp/ledger/`` runs SQL (``.execute``,
  ``.executemany``, ``.executescript``), holds SQL that writes (INSERT, UPDATE, DELETE, CREATE,
  BEGIN ...), or reaches into a ``Reader``'s connection (``.conn``). Writes are methods of
  ``nbexp.ledger.store.Store``; reads are methods of ``nbexp.ledger.queries.Reader``. A schema
  change touches ``ledger/`` only.
- The modules of nbexp import one another without a circle (module-level imports, those under
  ``if TYPE_CHECKING:`` included: a circle there is still two modules that know each other's
  insides).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nbexp"
LEDGER = PACKAGE / "ledger"

# Known exceptions, each to be removed, never added to: none left (bundle copies moved to ledger/bundle.py).
SQL_ALLOWED: set[str] = set()

# Import circles that exist today, each an allow-listed group of modules (a circle inside a group
# passes; a new circle, or a group that grows, fails). Remove a group once its circle is gone.
CYCLES_ALLOWED: list[set[str]] = []

EXECUTE = {"execute", "executemany", "executescript"}
WRITE_SQL = re.compile(
    r"^\s*(INSERT\s+(OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TEMP\s+|TEMPORARY\s+|UNIQUE\s+)?(TABLE|INDEX|TRIGGER|VIEW)|DROP\s+(TABLE|INDEX|TRIGGER|VIEW)"
    r"|ALTER\s+TABLE|BEGIN(\s+(IMMEDIATE|EXCLUSIVE|DEFERRED)(\s+TRANSACTION)?)?\s*$|COMMIT\s*$|ROLLBACK\b"
    r"|ATTACH\s+DATABASE|DETACH\s+DATABASE|PRAGMA\s+\w+\s*=|VACUUM)",
    re.IGNORECASE,
)


def modules() -> dict[str, Path]:
    """Every module of nbexp by dotted name (a package by its own name)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "labextension" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if ROOT in path.parents else str(path)


def outside_ledger() -> list[Path]:
    return [p for p in modules().values() if LEDGER not in p.parents]


def sql_violations(path: Path) -> list[str]:
    """What in ``path`` runs SQL, holds SQL that writes, or reads a connection's ``.conn``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in EXECUTE
            and (node.args or node.keywords)
        ):  # nbclient's client.execute() takes nothing
            found.append(f"{rel(path)}:{node.lineno}: .{node.func.attr}(...) outside ledger/")
        elif isinstance(node, ast.Attribute) and node.attr == "conn":
            found.append(f"{rel(path)}:{node.lineno}: .conn (a Reader's connection) outside ledger/")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and WRITE_SQL.match(node.value):
            found.append(f"{rel(path)}:{node.lineno}: SQL that writes: {node.value[:40]!r}")
    return found


def test_the_checks_catch_what_they_are_meant_to(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        'conn.execute("UPDATE runs SET note = ? WHERE id = ?", (n, r))\n'
        'SQL = "INSERT OR IGNORE INTO run_tags (run_id, tag) VALUES (?, ?)"\n'
        "row = reader.conn.execute\n"
        "w.executemany(SQL, rows)\n"
        'c.execute("BEGIN IMMEDIATE")\n'
        '"""Update the runs: a docstring, not SQL."""\n'
        "client.execute()\n"
    )
    found = sql_violations(bad)
    lines = sorted(int(re.search(r"\.py:(\d+):", f).group(1)) for f in found)
    assert lines == [1, 1, 2, 3, 4, 5, 5], found


def test_nothing_outside_the_ledger_executes_sql():
    found = [v for p in outside_ledger() if rel(p) not in SQL_ALLOWED for v in sql_violations(p)]
    assert not found, "write through nbexp.ledger.store.Store and read through Reader methods:\n" + "\n".join(found)


@pytest.mark.parametrize("allowed", sorted(SQL_ALLOWED))
def test_the_sql_allow_list_is_not_stale(allowed):
    assert sql_violations(ROOT / allowed), f"{allowed} runs no SQL anymore: take it off SQL_ALLOWED"


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The nbexp modules ``name`` imports at module level (``if``/``try`` blocks at the top included),
    its own parent packages left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name in known)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in known:  # from . import tracker: the submodule
                        out.add(sub)
                    elif target in known:
                        out.add(target)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    # A module's parent packages are imported before it whatever it says, so an edge to one
    # (``from .. import __version__``) adds nothing: only the edges that could make a circle count.
    return {m for m in out if m != name and not name.startswith(m + ".")}


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components of ``graph`` with more than one module (each holds a circle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_the_cycle_check_finds_a_circle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_nbexp_imports_without_circles():
    graph = import_graph()
    assert graph["nbexp.tracker"] >= {"nbexp.ledger.store", "nbexp.recorder"}  # the graph is read right
    new = [sorted(g) for g in strongly_connected(graph) if not any(g <= ok for ok in CYCLES_ALLOWED)]
    assert not new, f"import circles inside nbexp (module-level imports): {new}"


def test_the_ledger_imports_nothing_of_nbexp_but_itself_and_its_errors():
    """DESIGN: the ledger imports nothing of nbexp but its own modules (plus the error types it
    raises and the text helper the writer uses): no capture, no tracker, no server."""
    graph = import_graph()
    allowed = {"nbexp.errors", "nbexp.textfmt"}
    for name, deps in graph.items():
        if name.startswith("nbexp.ledger"):
            outside = {d for d in deps if not d.startswith("nbexp.ledger")} - allowed
            assert not outside, f"{name} imports {sorted(outside)}"
