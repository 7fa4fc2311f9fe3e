"""Replay a run: its lineage as a clean notebook, optionally with changed params.

The notebook's first cell loads nbexp and tracks the replay (``--replay-of`` links the new
run to the original); a markdown cell lists the original's params; then the lineage's
cells follow in execution order. Cells that only drove nbexp, and cells whose last
execution failed, are left out (and listed). ``--param NAME=VALUE`` rewrites the value of
the top-level ``NAME = literal`` assignments in those cells.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from ..capture.code import drives_only_nbexp
from ..capture.modules import PREFIX as MODULES
from ..capture.modules import is_module_artifact, module_name
from ..errors import InvalidArgument


def _literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return False
    return True


def override(source: str, values: dict[str, Any]) -> tuple[str, set[str]]:
    """``source`` with top-level ``NAME = literal`` assignments of ``values`` rewritten, and for a key
    ``NAME.KEY`` the literal value of ``KEY`` in ``NAME = {"KEY": ...}`` or ``NAME = dict(KEY=...)``;
    returns the new text and the keys rewritten."""
    if not values:
        return source, set()
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax: leave the cell as it is
        return source, set()
    lines = source.splitlines(keepends=True)
    edits = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name in values and _literal(node.value):
            edits.append((node.value, name))
            continue
        keyed = {k.split(".", 1)[1]: k for k in values if k.startswith(name + ".") and k.count(".") == 1}
        if not keyed:
            continue
        items: list[tuple[str | None, ast.expr]] = []
        if isinstance(node.value, ast.Dict):
            items = [
                (k.value if isinstance(k, ast.Constant) and isinstance(k.value, str) else None, v)
                for k, v in zip(node.value.keys, node.value.values)
            ]
        elif (
            isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) and node.value.func.id == "dict"
        ):
            items = [(kw.arg, kw.value) for kw in node.value.keywords]
        for key, value_node in items:
            if key in keyed and _literal(value_node):
                edits.append((value_node, keyed[key]))
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


def kept_modules(modules: dict[str, dict], workdir: Path, stem: str) -> tuple[Path | None, list[str], list[str]]:
    """Write the notebook's own modules a run trained with (:func:`.compare.module_sources`) into a new
    folder in ``workdir`` (``<stem>-modules-XXXX``) for its replay to import (:func:`serve`), whatever the files
    beside the notebook hold now. Returns the folder (None when the run kept none), the module paths whose file in
    ``workdir`` differs from the kept one, each with how (``train_utils.py changed``, ``pkg/sub.py is not there``),
    and the module paths not served, each with why: too large
    to have been kept (the replay imports the file as it is), a name of Python's standard library or of a package
    installed here (a ledger from elsewhere cannot replace those). Only ``.py`` files are read, to compare."""
    differ: list[str] = []
    skipped: list[str] = []
    served: dict[str, bytes] = {}
    for path, m in sorted(modules.items()):
        name = module_name(path)
        top = name.split(".", 1)[0]
        if not is_module_artifact(MODULES + path):
            continue
        if top in sys.stdlib_module_names or top in sys.builtin_module_names:
            skipped.append(f"{path} (a module of Python's standard library)")
            continue
        try:
            spec = importlib.util.find_spec(top) if top not in sys.modules else sys.modules[top].__spec__
        except (ImportError, ValueError):
            spec = None
        if _installed(getattr(spec, "origin", None)):
            skipped.append(f"{path} (the name of a package installed here)")
            continue
        recorded = m.get("path") or path
        here = Path(recorded) if os.path.isabs(recorded) else workdir / recorded  # outside the folder: absolute
        try:
            if not (here.name.endswith(".py") and hashlib.sha256(here.read_bytes()).hexdigest() == m["sha256"]):
                differ.append(f"{path} changed")
        except OSError:
            differ.append(f"{path} is not there")
        if m.get("data") is None:
            skipped.append(f"{path} (too large to have been kept: the replay imports the file as it is)")
            continue
        served[path] = m["data"]
    if not served:
        return None, differ, skipped
    folder = Path(tempfile.mkdtemp(prefix=f"{stem}-modules-", dir=workdir))
    for path, data in served.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as fh:  # a new folder: nothing there to overwrite or follow
            fh.write(data)
    # where each module was in the run, for its __file__ (the replay runs in workdir, as the notebook did)
    origins = {
        p: str(Path(m["path"]) if os.path.isabs(m["path"] or "") else workdir / (m["path"] or p))
        for p, m in modules.items()
        if p in served
    }
    (folder / MANIFEST).write_text(json.dumps(origins), encoding="utf-8")
    return folder, differ, skipped


def _installed(origin: str | None) -> bool:
    """Whether a module's file is inside the Python environment (an installed package, the standard library)."""
    if not origin or not os.path.isabs(origin):
        return False
    real = os.path.realpath(origin)
    parts = Path(real).parts
    prefixes = {os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return "site-packages" in parts or "dist-packages" in parts or any(real.startswith(p) for p in prefixes)


class _KeptLoader(importlib.machinery.SourceFileLoader):
    """Runs a kept module's bytes as the module at its own path: its ``__file__`` (and the data files a module finds
    beside it) as in the run. ``nbexp_kept`` names the file holding the bytes (read by the replay's own capture)."""

    def __init__(self, fullname: str, path: str, kept: str) -> None:
        super().__init__(fullname, path)
        self.nbexp_kept = kept

    def get_data(self, path: str) -> bytes:
        if path == self.path:
            with open(self.nbexp_kept, "rb") as fh:
                return fh.read()
        return super().get_data(path)

    def path_stats(self, path: str) -> Any:
        raise OSError("a kept module is compiled from its bytes, never from a cached .pyc")


class _Kept:
    """A finder (``sys.meta_path``) that imports the kept modules before any other place, so a cell putting its
    own folder first on ``sys.path`` does not bring the edited file back. A kept package searches its own folder
    in the notebook's first (its modules not kept, its data files); a folder of kept modules with no package there
    (a namespace package, the replay run elsewhere) is one."""

    def __init__(self, folder: str, files: dict[str, str], origins: dict[str, str]) -> None:
        self.folder, self.files, self.origins = folder, files, origins

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        rel = self.files.get(fullname)
        if rel is None:
            return self._namespace(fullname, path)
        kept = os.path.join(self.folder, rel)
        origin = self.origins.get(rel) or kept
        loader = _KeptLoader(fullname, origin, kept)
        if not rel.endswith("__init__.py"):
            return importlib.util.spec_from_file_location(fullname, origin, loader=loader)
        locations = [os.path.dirname(origin)]
        other = importlib.machinery.PathFinder.find_spec(fullname, path)
        if other is not None and other.submodule_search_locations:
            locations += [p for p in other.submodule_search_locations if p not in locations]
        locations.append(os.path.dirname(kept))
        return importlib.util.spec_from_file_location(
            fullname, origin, loader=loader, submodule_search_locations=locations
        )

    def _namespace(self, fullname: str, path: Any) -> Any:
        if not any(name.startswith(fullname + ".") for name in self.files):
            return None
        other = importlib.machinery.PathFinder.find_spec(fullname, path)
        if other is not None and other.loader is not None:  # a package there: its kept modules are served by name
            return None
        spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
        locations = list(other.submodule_search_locations or []) if other is not None else []
        spec.submodule_search_locations = locations + [os.path.join(self.folder, *fullname.split("."))]
        return spec


MANIFEST = "nbexp-modules.json"  # in a folder of kept modules: each module path's file in the run


def serve(folder: str) -> None:
    """Import the modules kept in ``folder`` (:func:`kept_modules`) first: what a replay's first cell calls."""
    files = {}
    for dirpath, _dirs, names in os.walk(folder):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), folder).replace(os.sep, "/")
            if is_module_artifact(MODULES + rel):
                files[module_name(rel)] = rel
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as fh:
            origins = {k: v for k, v in json.load(fh).items() if isinstance(k, str) and isinstance(v, str)}
    except (OSError, ValueError, AttributeError):
        origins = {}
    sys.meta_path.insert(0, _Kept(folder, files, origins))
    # worker processes (joblib's loky, multiprocessing's spawn) start with this sys.path and no finder: first on it,
    # the folder gives them the kept files too (at the folder's path, without the data files beside the originals)
    sys.path.insert(0, folder)


def build_notebook(
    run: dict,
    overrides: dict[str, Any],
    ledger: str | None = None,
    modules: Path | None = None,
    optional: AbstractSet[str] = frozenset(),
):
    """The replay notebook (nbformat) of ``run`` (a :meth:`Reader.run` dict); ``modules``: a folder of the run's
    modules (:func:`kept_modules`) the replay imports before the notebook's own; ``optional``: overrides that may
    find no assignment to rewrite (listed in the notebook's metadata as ``not_set``).

    Raises:
        InvalidArgument: an override names no top-level literal assignment of the lineage.
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    track = f"%load_ext nbexp\n%nbexp track replay-{run['id']} --replay-of {run['id']}"
    if ledger:
        track += f" --ledger {ledger}"
    if modules is not None:  # after tracking starts, and not an import statement: not the replay's code
        track += f"\n__import__('nbexp.analysis.replay', fromlist=['serve']).serve({str(modules)!r})"
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
    not_set = sorted((set(overrides) - rewritten) & set(optional))
    missing = set(overrides) - rewritten - set(optional)
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
            "nbexp": {
                "replay_of": run["id"],
                "overrides": {k: v for k, v in overrides.items() if k not in not_set},
                **({"not_set": not_set} if not_set else {}),
            },
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


FIGURE_MIMES = ("image/png", "image/jpeg", "application/vnd.plotly.v1+json")
PIXEL_DIFF_MAX = 4096 * 4096  # pixels compared per image; larger ones are compared by hash only


def _session_figures(reader, run: dict) -> dict[tuple[str, float], list[dict]]:
    """The figures (``mime``, ``hash``) each cell execution of ``run``'s session showed, by
    ``(cell_key, start)``: a lineage cell may have run in an earlier run of the session."""
    session = run.get("session") or {}
    runs = [run["id"]] + [
        r["id"]
        for r in reader.list_runs(sprint="all", started_after=session.get("started") or 0)
        if r["session_id"] == run["session_id"] and r["id"] != run["id"]
    ]
    out: dict[tuple[str, float], list[dict]] = {}
    for rid in runs:
        for c in reader.outputs(rid):
            figs = [{"mime": o["mime"], "hash": o["hash"]} for o in c["outputs"] if o["mime"] in FIGURE_MIMES]
            out.setdefault((c["cell_key"], c["start"]), []).extend(figs)
    return out


def _replayed_cells(run: dict) -> list[dict]:
    """The lineage cells a replay runs, in its order (what :func:`build_notebook` writes)."""
    return [c for c in run["lineage"] if not drives_only_nbexp(c["source"]) and c["status"] == "ok"]


def pixel_diff(a: bytes, b: bytes) -> str | None:
    """How two images differ, in words (``"3.1% of pixels changed (mean 0.8/255)"`` or
    ``"size 640x480 -> 800x600"``); None when Pillow is missing or cannot read them."""
    try:
        import io

        from PIL import Image, ImageChops
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(a)) as ia, Image.open(io.BytesIO(b)) as ib:
            if ia.size != ib.size:
                return f"size {ia.size[0]}x{ia.size[1]} -> {ib.size[0]}x{ib.size[1]}"
            if ia.size[0] * ia.size[1] > PIXEL_DIFF_MAX:
                return None
            diff = ImageChops.difference(ia.convert("RGBA"), ib.convert("RGBA"))
            r, g, bl, al = diff.split()
            most = ImageChops.lighter(ImageChops.lighter(r, g), ImageChops.lighter(bl, al))
            hist = most.histogram()
    except Exception:  # a truncated or odd image: the hash comparison stands
        return None
    n = sum(hist)
    changed = n - hist[0]
    if not changed:
        return "same pixels (the files differ only in metadata)"
    mean = sum(i * c for i, c in enumerate(hist)) / n
    return f"{100 * changed / n:.3g}% of pixels changed (mean {mean:.2g}/255)"


def compare_figures(reader, original: dict, replay: dict) -> list[dict]:
    """The replay's figures against the original's, cell by cell in replay order, figure by figure
    in each cell: ``{"cell", "replay_cell"`` (the prompt numbers), ``"index"`` (1-based within the
    cell), ``"mime", "status"`` (``same``: byte-identical; ``differs``; ``missing``: the replay did not
    show it; ``new``: only the replay showed it) and ``"detail"`` (a pixel-diff summary for images
    that differ, when Pillow reads them)}. ``original`` and ``replay`` are :meth:`Reader.run` dicts.

    The n-th cell the replay ran is the n-th cell of the original's lineage it was written from, so
    cells pair by order (a cell rewritten by ``--param`` still pairs with its original)."""
    out: list[dict] = []
    ours = _replayed_cells(original)
    theirs = [c for c in replay["lineage"] if not drives_only_nbexp(c["source"])]
    shown, shown_again = _session_figures(reader, original), _session_figures(reader, replay)
    for i, cell in enumerate(ours):
        again = theirs[i] if i < len(theirs) else None
        before = shown.get((cell["cell_key"], cell["start"]), [])
        after = shown_again.get((again["cell_key"], again["start"]), []) if again else []
        for k in range(max(len(before), len(after))):
            a, b = (before[k] if k < len(before) else None), (after[k] if k < len(after) else None)
            entry: dict[str, Any] = {
                "cell": cell["execution_count"],
                "replay_cell": again["execution_count"] if again else None,
                "index": k + 1,
                "mime": (a or b or {})["mime"],
                "detail": None,
            }
            if a is None:
                entry["status"] = "new"
            elif b is None:
                entry["status"] = "missing"
            elif a["hash"] == b["hash"]:
                entry["status"] = "same"
            else:
                entry["status"] = "differs"
                if a["mime"].startswith("image/") and b["mime"].startswith("image/"):
                    ba, bb = reader.blob(a["hash"]), reader.blob(b["hash"])
                    if ba and bb:
                        entry["detail"] = pixel_diff(bytes(ba["data"]), bytes(bb["data"]))
            out.append(entry)
    return out


def figure_lines(figs: list[dict]) -> list[str]:
    """The replay's figure comparison as the CLI prints it: a count line, then one line per figure
    that is not the same."""
    if not figs:
        return []
    counts: dict[str, int] = {}
    for f in figs:
        counts[f["status"]] = counts.get(f["status"], 0) + 1
    plural = {"same": "same", "differs": "differ", "missing": "missing in the replay", "new": "new in the replay"}
    lines = ["figures: " + ", ".join(f"{counts[s]} {plural[s]}" for s in plural if s in counts)]
    words = {"differs": "differs", "missing": "not shown by the replay", "new": "shown by the replay only"}
    for f in figs:
        if f["status"] == "same":
            continue
        where = f"figure {f['index']} of cell [{f['cell'] if f['cell'] is not None else ' '}]"
        if f["replay_cell"] is not None:
            where += f" (replay [{f['replay_cell']}])"
        kind = "plotly figure" if "plotly" in f["mime"] else f["mime"].split("/")[-1].upper()
        lines.append(f"  {where}, {kind}: {words[f['status']]}" + (f": {f['detail']}" if f["detail"] else ""))
    return lines
