"""Replay a run: its lineage as a clean notebook, optionally with changed params.

The notebook's first cell loads nbexp and tracks the replay (``--replay-of`` links the new
run to the original); a markdown cell lists the original's params; then the lineage's
cells follow in execution order. Cells that only drove nbexp, and cells whose last
execution failed, are left out (and listed). ``--param NAME=VALUE`` rewrites the value of
the top-level ``NAME = literal`` assignments in those cells.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from ..capture.code import drives_only_nbexp
from ..errors import InvalidArgument


def override(source: str, values: dict[str, Any]) -> tuple[str, set[str]]:
    """``source`` with top-level ``NAME = literal`` assignments of ``values`` rewritten;
    returns the new text and the names rewritten."""
    if not values:
        return source, set()
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax: leave the cell as it is
        return source, set()
    lines = source.splitlines(keepends=True)
    edits = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in values
        ):
            try:
                ast.literal_eval(node.value)
            except (ValueError, SyntaxError, TypeError):
                continue
            edits.append((node.value, node.targets[0].id))
    done = set()
    for value_node, name in sorted(edits, key=lambda e: (e[0].lineno, e[0].col_offset), reverse=True):
        assert value_node.end_lineno is not None and value_node.end_col_offset is not None  # set by ast.parse
        start = sum(len(ln) for ln in lines[: value_node.lineno - 1]) + len(
            lines[value_node.lineno - 1].encode()[: value_node.col_offset].decode()
        )
        end = sum(len(ln) for ln in lines[: value_node.end_lineno - 1]) + len(
            lines[value_node.end_lineno - 1].encode()[: value_node.end_col_offset].decode()
        )
        source = source[:start] + repr(values[name]) + source[end:]
        lines = source.splitlines(keepends=True)
        done.add(name)
    return source, done


def build_notebook(run: dict, overrides: dict[str, Any], ledger: str | None = None):
    """The replay notebook (nbformat) of ``run`` (a :meth:`Reader.run` dict).

    Raises:
        InvalidArgument: an override names no top-level literal assignment of the lineage.
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    track = f"%load_ext nbexp\n%nbexp track replay-{run['id']} --replay-of {run['id']}"
    if ledger:
        track += f" --ledger {ledger}"
    params = "\n".join(
        f"- `{k}` = `{json.dumps(v)}`" + (f"  **(overridden: `{json.dumps(overrides[k])}`)**" if k in overrides else "")
        for k, v in run["params"].items()
    )
    cells = [
        new_markdown_cell(
            f"# Replay of run {run['id']} {run['name'] or ''}\n\n"
            f"Written by `nbexp replay` from the run's lineage (sprint {run['sprint']}, "
            f"status {run['status']}).\n\nParams of the original:\n\n{params}"
        ),
        new_code_cell(track),
    ]
    skipped, rewritten = [], set()
    for cell in run["lineage"]:
        src = cell["source"]
        if drives_only_nbexp(src):
            continue
        if cell["status"] != "ok":
            skipped.append(f"In[{cell['execution_count']}] ({cell['status']})")
            continue
        src, done = override(src, overrides)
        rewritten |= done
        cells.append(new_code_cell(src))
    missing = set(overrides) - rewritten
    if missing:
        raise InvalidArgument(
            f"--param {', '.join(sorted(missing))}: no top-level literal assignment of "
            f"{'that name' if len(missing) == 1 else 'those names'} in run {run['id']}'s code"
        )
    if skipped:
        cells.insert(1, new_markdown_cell("Left out (their last execution failed): " + ", ".join(skipped)))
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "nbexp": {"replay_of": run["id"], "overrides": overrides},
        },
    )
    nbformat.validate(nb)
    return nb


def environment_differences(reader, run: dict) -> list[str]:
    """How this machine differs from the original run's: packages, git commit, dirty tree."""
    from ..capture import environment

    notes = []
    session = run.get("session") or {}
    env_id = session.get("env_id")
    if env_id:
        packages = reader.environment_packages(env_id)
        if packages:
            then = json.loads(packages)
            _, now_text = environment.packages()
            now = json.loads(now_text)
            changed = [f"{k} {then[k]} -> {now.get(k, 'missing')}" for k in sorted(then) if now.get(k) != then[k]]
            added = [k for k in sorted(now) if k not in then]
            if changed:
                notes.append(
                    f"{len(changed)} packages differ: " + ", ".join(changed[:8]) + (" ..." if len(changed) > 8 else "")
                )
            if added:
                notes.append(f"{len(added)} packages installed since: " + ", ".join(added[:8]))
    commit, dirty = environment.git()
    if session.get("git_commit") and commit and commit != session["git_commit"]:
        notes.append(f"git commit {session['git_commit'][:10]} then, {commit[:10]} now")
    if dirty:
        notes.append("the working tree has uncommitted changes now")
    if session.get("git_dirty"):
        notes.append("the original ran from a tree with uncommitted changes")
    return notes
