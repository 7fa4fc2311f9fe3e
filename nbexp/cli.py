"""The ``nbexp`` command: list, show, diff and review runs in a ledger.

Tables go to stdout, ``--json`` and ``--csv`` give the same data for scripts. Exit codes:
0 ok, 1 error (unknown run, unreadable ledger), 2 usage.

On a terminal, tables fit its width (``$COLUMNS``, else the terminal's size): cells are cut with an
ellipsis, the widest columns first, run ids never, and nothing wraps; status words and the best
metric values are coloured unless ``$NO_COLOR`` is set (https://no-color.org); long commands show
progress on stderr. Off a terminal (piped, redirected) there is no colour and no progress, and tables
are whole whatever ``$COLUMNS`` says: ``nbexp ls | cut ...`` gets every character. (GNU readline sets
``COLUMNS=80`` in the environment of every process a Python that loaded it starts: IPython, Jupyter
kernels, pytest; a script piping ``nbexp`` from there would lose characters silently.)
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import shutil
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from .analysis.metrics import rank_metrics
from .errors import InvalidArgument, NbexpError
from .ledger import RUN_STATUSES, sprint_of
from .ledger.queries import Reader, parse_since
from .textfmt import WIDTH, count, duration, fmt, jsonable, table, when

KEY_PARAMS = 4  # params shown in `ls`: those that vary most among the listed runs
KEY_METRICS = 3
PRINTED = "stdout"  # the source of a metric read from a cell's printed output
PRINTED_NOTE = "* read from printed output"


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(jsonable(obj), indent=2, default=str))


def _csv_cell(value: Any) -> Any:
    """One CSV field: None empty, lists and dicts as JSON, numbers in full (not as a table rounds them)."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(jsonable(value), default=str)
    return value


def _echo_csv(header: list[str], rows: Iterable[list[Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([_csv_cell(v) for v in r] for r in rows)
    click.echo(buf.getvalue(), nl=False)


def _formats(f: Callable) -> Callable:
    """``--json`` and ``--csv`` for a listing: one ``output`` argument, ``"json"``, ``"csv"`` or None."""
    f = click.option("--csv", "output", flag_value="csv", help="CSV for spreadsheets and scripts")(f)
    return click.option("--json", "output", flag_value="json", help="JSON for scripts")(f)


def _emit(output: str | None, data: Any, rows: Callable[[], tuple[list[str], list[list[Any]]]]) -> bool:
    """Write ``data`` as JSON, or the ``(header, rows)`` that ``rows`` builds as CSV, as ``output``
    asks; True when it wrote (the command then prints no table)."""
    if output == "json":
        _echo_json(data)
    elif output == "csv":
        _echo_csv(*rows())
    return output is not None


def terminal_width() -> int | None:
    """The width tables fit: the terminal's (``$COLUMNS`` first) on a terminal; off one, None (no
    limit: piped output is whole, see the module docstring)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def colour() -> bool:
    """Colour only on a terminal, and never with ``$NO_COLOR`` set to anything but the empty string."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


_STATUS_COLOURS = {"finished": "green", "failed": "red", "crashed": "red", "running": "yellow"}


def _status(status: str) -> str:
    """A status word, coloured on a terminal."""
    fg = _STATUS_COLOURS.get(status)
    return click.style(status, fg=fg) if fg and colour() else status


def _styler(
    status_col: int | None = None, best: Collection[tuple[int, int]] = ()
) -> Callable[[int, int, str], str] | None:
    """A :func:`~nbexp.textfmt.table` ``style``: the status column coloured, the ``(row, column)``
    cells in ``best`` bold; None off a terminal."""
    if not colour():
        return None

    def style(i: int, j: int, text: str) -> str:
        if j == status_col:
            return _status(text)
        if (i, j) in best:
            return click.style(text, bold=True)
        return text

    return style


class _Progress:
    """A progress line on stderr (click's progressbar) on a terminal; nothing off one."""

    def __init__(self, length: int, label: str) -> None:
        self.bar = click.progressbar(length=length, label=label, file=sys.stderr) if sys.stderr.isatty() else None

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)


@contextlib.contextmanager
def progress(items: list, label: str) -> Iterator[Iterable]:
    """``items`` to iterate, with a progress line on stderr on a terminal (one step per item); as is
    off a terminal. For long commands: ``with progress(ids, "exporting") as ids: for rid in ids: ...``."""
    if not sys.stderr.isatty():
        yield items
        return
    with click.progressbar(items, label=label, file=sys.stderr) as bar:
        yield bar


def _reader(ctx: click.Context) -> Reader:
    try:
        return Reader(ctx.obj["ledger"])
    except NbexpError as exc:
        raise click.ClickException(str(exc)) from None


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidArgument as exc:
            raise click.UsageError(str(exc), ctx) from None
        except NbexpError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group)
@click.option(
    "--ledger",
    type=click.Path(dir_okay=False),
    envvar="NBEXP_LEDGER",
    help="ledger file (default $NBEXP_HOME/ledger.sqlite or ~/.nbexp/ledger.sqlite)",
)
@click.version_option(package_name="nbexp")
@click.pass_context
def main(ctx: click.Context, ledger: str | None) -> None:
    """nbexp: the experiments your notebooks recorded."""
    ctx.obj = {"ledger": ledger}
    token = WIDTH.set(terminal_width())  # every table this command prints, the review's included
    ctx.call_on_close(lambda: WIDTH.reset(token))


def _key_columns(runs: list[dict]) -> tuple[list[str], list[str]]:
    """Params that vary among the runs (most distinct values first), and the best-ranked metrics
    (nbexp/analysis/metrics.py)."""
    pkeys: dict[str, set] = {}
    for r in runs:
        for k, v in r["params"].items():
            pkeys.setdefault(k, set()).add(json.dumps(v))
    from .ledger.query import varying_params  # the runs table's key columns follow the same rule

    varying = varying_params({k: len(vals) for k, vals in pkeys.items()}, len(runs), KEY_PARAMS)
    return varying, rank_metrics(runs)[:KEY_METRICS]


@main.command("ls")
@click.option("--sprint", default="today", show_default=True, help="today, yesterday, all, YYYY-MM-DD or a sprint name")
@click.option("--status", type=click.Choice(RUN_STATUSES))
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="only runs with this param value")
@click.option("--data", "data_fp", metavar="FINGERPRINT", help="only runs that used this data (fingerprint or prefix)")
@click.option("--since", metavar="AGE", help="only runs started since 30m, 12h, 2d, 1w or a date")
@click.option("--tag", help="only runs with this tag")
@click.option("--search", metavar="TEXT", help="only runs whose id, name, status, note, tags or params contain TEXT")
@click.option(
    "--query",
    "-q",
    metavar="QUERY",
    help="only runs matching a query: 'metrics.auc > 0.9 and params.C < 1 and status = finished and tag = baseline'",
)
@click.option("--limit", type=click.IntRange(min=1), help="at most this many runs")
@_formats
@click.pass_context
def ls_cmd(ctx, sprint, status, params, data_fp, since, tag, search, query, limit, output):
    """List runs, newest first, with the params that vary and their metrics."""
    wanted = _overrides(params, "--param", identifiers=False)
    with _reader(ctx) as r:
        runs = r.list_runs(
            sprint=sprint,
            status=status,
            limit=limit,
            params=wanted,
            data=data_fp,
            tag=tag,
            started_after=parse_since(since),
            search=search,
            query=query,
        )
    if _emit(output, runs, lambda: _runs_csv(runs)):
        return
    if not runs:
        click.echo(f"no runs (sprint {sprint}{', status ' + status if status else ''})", err=True)
        return
    pcols, mcols = _key_columns(runs)
    rows = [
        [r["id"], r["name"], r["status"], when(r["start_time"]), duration(r)]
        + [r["params"].get(k) for k in pcols]
        + [_metric_cell(r["metrics"].get(k)) for k in mcols]
        for r in runs
    ]
    first = 5 + len(pcols)  # the first metric column
    best = {(i, first + j) for j, k in enumerate(mcols) for i in _best_rows(runs, k)}
    click.echo(
        table(
            ["run", "name", "status", "start", "time"] + pcols + mcols,
            rows,
            fixed=[0],
            style=_styler(status_col=2, best=best),
            drop=_ls_drop_order(len(pcols), len(mcols)),
        )
    )
    if any(r["metrics"].get(k, {}).get("source") == PRINTED for r in runs for k in mcols):
        click.echo(PRINTED_NOTE)


def _ls_drop_order(n_params: int, n_metrics: int) -> list[int]:
    """The order in which `ls` leaves columns out on a narrow terminal (run, name, status, start, time,
    params, metrics): params after the first two, metrics after the first (the main one), the first two
    params, the time, the start, the main metric; the name and status stay (cut to ten characters at worst)."""
    params, metrics = list(range(5, 5 + n_params)), list(range(5 + n_params, 5 + n_params + n_metrics))
    return [*reversed(params[2:]), *reversed(metrics[1:]), *reversed(params[:2]), 4, 3, *metrics[:1]]


def _best_rows(runs: list[dict], metric: str) -> list[int]:
    """The rows of ``runs`` holding the best last value of ``metric`` (lowest for loss-like names,
    as :func:`nbexp.analysis.review.lower_is_better` says); none unless two runs have a value."""
    import math

    from .analysis.review import lower_is_better

    values = {
        i: m["last"]
        for i, r in enumerate(runs)
        if (m := r["metrics"].get(metric)) and isinstance(m.get("last"), (int, float)) and not math.isnan(m["last"])
    }
    if len(values) < 2:
        return []
    best = (min if lower_is_better(metric) else max)(values.values())
    return [i for i, v in values.items() if v == best]


def _iso(ts: float | None) -> str | None:
    return dt.datetime.fromtimestamp(ts).isoformat(timespec="seconds") if ts else None


def _runs_csv(runs: list[dict]) -> tuple[list[str], list[list[Any]]]:
    """Runs as CSV: one row each, every param as ``params.NAME`` and every metric's last value as
    ``metrics.NAME`` (as ``nbexp.runs()`` names its columns)."""
    pkeys = sorted({k for r in runs for k in r["params"]})
    mkeys = sorted({k for r in runs for k in r["metrics"]})
    header = ["run", "name", "status", "sprint", "start_time", "end_time", "duration_s", "tags"]
    rows = [
        [
            r["id"],
            r["name"],
            r["status"],
            r["sprint"],
            _iso(r["start_time"]),
            _iso(r["end_time"]),
            r["end_time"] - r["start_time"] if r["end_time"] and r["start_time"] else None,
            r.get("tags") or [],
        ]
        + [r["params"].get(k) for k in pkeys]
        + [(r["metrics"].get(k) or {}).get("last") for k in mkeys]
        for r in runs
    ]
    return header + [f"params.{k}" for k in pkeys] + [f"metrics.{k}" for k in mkeys], rows


def _metric_cell(m: dict | None) -> str | None:
    """A metric's last value as a listing shows it: marked ``*`` when it was read from printed output."""
    if m is None:
        return None
    return fmt(m["last"]) + ("*" if m.get("source") == PRINTED else "")


@main.command("show")
@click.argument("run")
@click.option("--outputs", "with_outputs", is_flag=True, help="also list what its cells showed and its artifacts")
@click.option("--code", "code", is_flag=True, help="print only the run's cells, as nbexp replay writes them")
@_formats
@click.pass_context
def show_cmd(ctx, run, with_outputs, code, output):
    """Show one run: status, params, metric summaries, environment, code (--code: its cells)."""
    with _reader(ctx) as r:
        info = r.run(run)
        info["param_sources"] = r.param_sources(info["id"])  # where each param came from (`built`: see Reader)
        info["tables"] = _tables_kept(r.run_tables(info["id"]))  # a search's cv_results: `nbexp table` prints one
        if with_outputs:
            info["outputs"], info["artifacts"] = r.outputs(info["id"]), r.artifacts(info["id"])
    if code:
        if output:
            raise click.UsageError("--code prints the cells as text; --json has them under 'lineage'", ctx)
        from .analysis.compare import lineage_text

        # `# %%` cell markers, not `# In[n]`: the text is a script editors and jupytext read as cells
        click.echo("\n".join(lineage_text(info["lineage"], counts=False)).rstrip("\n"))
        return
    if _emit(output, info, lambda: _show_csv(info)):
        return
    s = info["session"]
    click.echo(f"run {info['id']}  {info['name'] or ''}  [{_status(info['status'])}]  sprint {info['sprint']}")
    click.echo(f"started {when(info['start_time'])}  took {duration(info)}  kind {info['kind']}")
    if info["error"]:
        click.echo(f"error: {info['error']}")
    if info["tags"]:
        click.echo("tags: " + ", ".join(info["tags"]))
    if info["note"]:
        click.echo(f"note: {info['note']}")
    click.echo(
        f"session {s.get('id')} on {s.get('host')}  python {s.get('python')}  nbexp {s.get('nbexp_version')}"
        + (f"  git {s['git_commit'][:10]}{'+dirty' if s.get('git_dirty') else ''}" if s.get("git_commit") else "")
        + (f"  notebook {s['notebook']}" if s.get("notebook") else "")
    )
    click.echo("\nparams")
    sources = info["param_sources"]
    click.echo(
        table(["name", "value", "source"], [[k, v, sources.get(k, "")] for k, v in info["params"].items()], fixed=[0])
        if info["params"]
        else "  (none)"
    )
    if "built" in sources.values():
        click.echo("  (built: the value its model was built with, set again before the training, which used this one)")
    click.echo("\nmetrics")
    click.echo(
        table(
            ["name", "last", "min", "max", "steps", "source"],
            [
                [k, m["last"], m["min"], m["max"], m["steps"], _SOURCES.get(m.get("source"), m.get("source"))]
                for k, m in info["metrics"].items()
            ],
        )
        if info["metrics"]
        else "  (none)"
    )
    if info["tables"]:
        click.echo("\ntables")
        click.echo(
            table(
                ["name", "rows", "columns", "source"],
                [[t["name"], t["rows"], len(t["columns"]), t["source"]] for t in info["tables"]],
                fixed=[0],
            )
        )
        click.echo(f"  (nbexp table {info['id']} NAME prints one)")
    click.echo("\nsystem")
    click.echo("  " + system_summary(info))
    if info["idle_hint"]:
        click.echo(f"  hint: {info['idle_hint']}")
    click.echo(f"\ncode: {len(info['lineage'])} cells (nbexp show {info['id']} --code prints them)")
    for e in info["events"]:
        click.echo(f"warning: {e['message']}")
    if with_outputs:
        click.echo("\noutputs")
        _echo_outputs(info["outputs"])
        click.echo("\nartifacts")
        click.echo(
            table(
                ["name", "size", "sha256", "copy", "path"],
                [[a["name"], a["size"], a["sha256"][:12], a["stored"], a["path"]] for a in info["artifacts"]],
            )
            if info["artifacts"]
            else "  (none)"
        )


def _tables_kept(tables: list[dict]) -> list[dict]:
    """What ``show`` and ``table`` list of a run's result tables: ``name``, ``source``, ``rows`` (a count),
    ``columns`` (their names)."""
    return [{"name": t["name"], "source": t["source"], "rows": len(t["rows"]), "columns": t["columns"]} for t in tables]


@main.command("table")
@click.argument("run")
@click.argument("name", required=False)
@_formats
@click.pass_context
def table_cmd(ctx, run, name, output):
    """Print a result table RUN kept (NAME: a search's cv_results, best_params), or, without NAME, list them."""
    with _reader(ctx) as r:
        rid = r.resolve(run)
        tables = r.run_tables(rid)
    if name is None:
        listed = _tables_kept(tables)
        if _emit(output, listed, lambda: (["name", "source", "rows", "columns"], [list(t.values()) for t in listed])):
            return
        if not listed:
            click.echo(f"run {rid} kept no tables")
            return
        click.echo(
            table(
                ["name", "rows", "columns", "source"],
                [[t["name"], t["rows"], ", ".join(t["columns"]), t["source"]] for t in listed],
                fixed=[0],
            )
        )
        return
    found = next((t for t in tables if t["name"] == name), None)
    if found is None:
        kept = ", ".join(t["name"] for t in tables) or "none"
        raise click.BadParameter(f"run {rid} kept no table {name!r} (its tables: {kept})", param_hint="NAME")
    if _emit(output, found, lambda: (found["columns"], found["rows"])):
        return
    n = len(found["rows"])
    click.echo(f"{found['name']} of run {rid} ({n} row{'' if n == 1 else 's'}, from {found['source']})")
    click.echo(table(found["columns"], found["rows"]))


def _show_csv(info: dict) -> tuple[list[str], list[list[Any]]]:
    """A run's params and metrics as CSV: ``kind`` param or metric, its value (a metric's last), for metrics min,
    max and steps, and where it came from (``source``)."""
    sources = info.get("param_sources") or {}
    rows: list[list[Any]] = [["param", k, v, None, None, None, sources.get(k)] for k, v in info["params"].items()]
    rows += [
        ["metric", k, m["last"], m["min"], m["max"], m["steps"], m.get("source")] for k, m in info["metrics"].items()
    ]
    return ["kind", "name", "value", "min", "max", "steps", "source"], rows


def _output_rows(cells: list[dict], full: bool = False) -> list[list[Any]]:
    """One row per output; ``full``: whole hashes and no ``-`` for a missing count (CSV)."""
    return [
        [
            c["execution_count"] if c["execution_count"] is not None or full else "-",
            o["kind"],
            o["mime"],
            o["size"],
            o["hash"] if full else o["hash"][:12],
        ]
        for c in cells
        for o in c["outputs"]
    ]


def _echo_outputs(cells: list[dict]) -> None:
    rows = _output_rows(cells)
    click.echo(table(["cell", "kind", "mime", "bytes", "hash"], rows) if rows else "  (none)")


@main.command("outputs")
@click.argument("run", default="latest")
@click.option("--save", "save_dir", type=click.Path(file_okay=False), help="write each output as a file in this folder")
@_formats
@click.pass_context
def outputs_cmd(ctx, run, save_dir, output):
    """List what a run's cells showed (figures, tables, results, printed text); --save writes them as files."""
    from .capture.outputs import output_file_name

    with _reader(ctx) as r:
        rid = r.resolve(run)
        cells = r.outputs(rid)
        if save_dir:
            folder = Path(save_dir)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise click.ClickException(f"cannot create {folder}: {exc}") from None
            n = 0
            for i, c in enumerate(cells, 1):
                for o in c["outputs"]:
                    blob = r.blob(o["hash"])
                    if blob is None:
                        continue
                    name = output_file_name(i, c["execution_count"], o["seq"], o["kind"], o["mime"])
                    try:
                        (folder / name).write_bytes(blob["data"])
                    except OSError as exc:
                        raise click.ClickException(f"cannot write {folder / name}: {exc}") from None
                    n += 1
            n_art = _save_artifacts(r, rid, folder / "artifacts")
    header = ["cell", "kind", "mime", "bytes", "hash"]
    if not _emit(output, cells, lambda: (header, _output_rows(cells, full=True))) and not save_dir:
        _echo_outputs(cells)
    if save_dir:
        more = f" and {n_art} artifacts (in artifacts/)" if n_art else ""
        click.echo(f"wrote {n} outputs{more} of run {rid} to {save_dir}", err=output is not None)


def _save_artifacts(r: Reader, rid: str, folder: Path) -> int:
    """Write a run's stored artifacts into ``folder``, each at its name's own path, one file per name
    (:func:`~nbexp.capture.outputs.artifact_paths`: ``@modules/pkg/__init__.py`` as ``_modules/pkg/__init__.py``)."""
    from .capture.outputs import artifact_paths

    n = 0
    artifacts = r.artifacts(rid)
    paths = artifact_paths(a["name"] for a in artifacts)
    for a in artifacts:
        blob = r.blob(a["sha256"]) if a["stored"] else None
        if blob is None:
            continue
        target = folder / paths[a["name"]]
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob["data"])
        except OSError as exc:
            raise click.ClickException(f"cannot write {target}: {exc}") from None
        n += 1
    return n


def _pick_artifact(found: list[dict], wanted: str, rid: str) -> dict:
    """The artifact ``wanted`` names: its name, else its path as logged, else a unique base name."""
    for key in ("name", "path"):
        hit = [a for a in found if a[key] == wanted]
        if hit:
            return hit[0]
    hit = [a for a in found if a["name"].rsplit("/", 1)[-1] == wanted]
    if len(hit) == 1:
        return hit[0]
    names = ", ".join(a["name"] for a in (hit or found)[:20]) or "none"
    what = "several artifacts match" if hit else "no artifact named"
    raise click.ClickException(f"run {rid}: {what} {wanted!r} (its artifacts: {names})")


@main.command("get")
@click.argument("run")
@click.argument("artifact")
@click.option(
    "-o", "--output", "dest", metavar="FILE", help="where to write it ('-': stdout; default: its base name here)"
)
@click.option("--force", is_flag=True, help="replace FILE if it exists")
@click.pass_context
def get_cmd(ctx, run, artifact, dest, force):
    """Restore a file a run wrote or logged (ARTIFACT: its name, as `nbexp show RUN --outputs` lists it),
    byte-identical to what the run kept even when a later run overwrote the file."""
    import hashlib
    import tempfile

    with _reader(ctx) as r:
        rid = r.resolve(run)
        a = _pick_artifact(r.artifacts(rid), artifact, rid)
        blob = r.blob(a["sha256"]) if a["stored"] and a["sha256"] else None
    if blob is None:
        why = "it was over the copy limit when recorded" if not a["stored"] else "its bytes are missing from the ledger"
        raise click.ClickException(
            f"run {rid}: the bytes of {a['name']} ({a['size']:,} bytes) were not kept: {why}; "
            + (f"it was at {a['path']}" if a["path"] else "it was an object")
            + (" (in the notebook's folder)" if a["path"] and not os.path.isabs(a["path"]) else "")
            + (f" with SHA-256 {a['sha256']}" if a["sha256"] else " (not hashed)")
        )
    data = blob["data"]
    if hashlib.sha256(data).hexdigest() != a["sha256"]:  # a ledger edited by hand: never hand back other bytes
        raise click.ClickException(f"run {rid}: the stored bytes of {a['name']} do not match its SHA-256")
    if dest == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    from .capture.outputs import artifact_file_path

    base = artifact_file_path(a["name"]).rsplit("/", 1)[-1]  # a safe file name, never .. or a page
    target = Path(dest) if dest else Path(base)
    if target.is_dir():
        target = target / base
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists: --force replaces it")
    # written beside the target and renamed over it: an interrupted get leaves no half file
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
    click.echo(f"wrote {target}: {a['name']} of run {rid}, {len(data):,} bytes, SHA-256 {a['sha256'][:12]}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# where a metric came from, as ``nbexp show`` says it
_SOURCES = {"log": "nbexp.log", "namespace": "variable", PRINTED: "printed"}


def system_summary(run: dict) -> str:
    """One line of a run's system aggregates; says so where nothing was measured."""
    parts = []
    if run.get("gpu_util_mean") is not None:
        parts.append(
            f"GPU {run['gpu_util_mean']:.0f}% mean, {run['gpu_util_max']:.0f}% max over {run['gpu_count']} GPU(s)"
        )
        if run.get("gpu_mem_peak_mb") is not None:
            parts.append(f"GPU memory peak {run['gpu_mem_peak_mb']:.0f} MB")
        if run.get("energy_wh") is not None:
            parts.append(f"{run['energy_wh']:.2f} Wh")
    else:
        parts.append("GPU not recorded")
    if run.get("cpu_mean") is not None:
        parts.append(f"CPU {run['cpu_mean']:.0f}% of a core")
    if run.get("rss_peak_mb") is not None:
        parts.append(f"RSS peak {run['rss_peak_mb']:.0f} MB")
    return ", ".join(parts)


@main.command("diff")
@click.argument("runs", nargs=-1, required=True)
@click.option("--code/--no-code", default=True, help="show the code diff")
@_formats
@click.pass_context
def diff_cmd(ctx, runs, code, output):
    """Param diff, metric deltas and code diff between runs (the first is the baseline)."""
    from .analysis.compare import compare_runs

    if len(runs) < 2:
        raise click.UsageError("diff needs two runs or more, e.g. nbexp diff latest~1 latest")
    with _reader(ctx) as r:
        c = compare_runs(r, list(runs))
    ids = [x["id"] for x in c["runs"]]
    if _emit(output, c, lambda: _diff_csv(c, ids)):
        return
    click.echo(
        table(
            ["run", "name", "status"],
            [[x["id"], x["name"] or "", x["status"]] for x in c["runs"]],
            fixed=[0],
            style=_styler(status_col=2),
        )
    )
    click.echo("\nparams that differ")
    if c["param_diff"]:
        click.echo(table(["param"] + ids, [[k] + v for k, v in c["param_diff"].items()]))
    else:
        click.echo("  (none: same params)")
    click.echo("\nmetrics (last value)")
    if c["metrics"]:
        rows = [
            [k] + [s["last"] if s else None for s in v] + [c["metric_delta"].get(k)] for k, v in c["metrics"].items()
        ]
        best = c.get("best") or {}
        bold = {(i, 1 + best[k]) for i, k in enumerate(c["metrics"]) if best.get(k) is not None}
        click.echo(table(["metric"] + ids + ["delta"], rows, style=_styler(best=bold)))
    else:
        click.echo("  (none)")
    _echo_data_side(c, ids)
    if code:
        click.echo("\ncode")
        click.echo("\n".join(c["code_diff"]) if c["code_diff"] else "  (same code)")
        if c.get("module_diff"):
            click.echo("\nmodules (the notebook's own files the runs trained with)")
            click.echo("\n".join(c["module_diff"]))


def _diff_csv(c: dict, ids: list[str]) -> tuple[list[str], list[list[Any]]]:
    """A comparison as CSV: every param (``kind`` param), then every metric's last value with the
    delta of the last run against the first (``kind`` metric); one column per run."""
    rows: list[list[Any]] = [["param", k, *v, None] for k, v in c["params"].items()]
    rows += [
        ["metric", k, *[s["last"] if s else None for s in v], c["metric_delta"].get(k)] for k, v in c["metrics"].items()
    ]
    return ["kind", "name", *ids, "delta"], rows


def _echo_data_side(c: dict, ids: list[str]) -> None:
    if not c.get("data"):
        return
    click.echo("\ndata (fingerprints)")
    click.echo(
        table(["variable"] + ids, [[n] + [fp[:10] if fp else "-" for fp in fps] for n, fps in c["data"].items()])
    )
    for row in c["drift"]:
        click.echo(f"drift: {row['variable']}.{row['column']}: {'; '.join(row['flags'])}")
    for row in c["imbalance"]:
        click.echo(
            f"imbalanced: run {row['run']} {row['variable']}.{row['column']} (minority {row['minority_share']:.1%})"
        )


@main.command("data")
@click.argument("run", default="latest")
@_formats
@click.pass_context
def data_cmd(ctx, run, output):
    """Summaries of the data a run used: per variable and column."""
    with _reader(ctx) as r:
        items = r.data(r.resolve(run))
    stats = ["missing_rate", "min", "p50", "max", "mean", "std", "distinct"]
    if _emit(
        output,
        items,
        lambda: (
            ["variable", "column", "dtype", *stats],
            [
                [item["name"], c["name"], c["dtype"], *[c.get(k) for k in stats]]
                for item in items
                for c in (item["summary"] or {}).get("columns", [])
            ],
        ),
    ):
        return
    if not items:
        click.echo("no data recorded for this run", err=True)
        return
    for item in items:
        s = item["summary"] or {}
        sampled = s.get("sampled")
        note = f", sampled {sampled['rows']:,} of {sampled['of']:,} rows" if sampled else ""
        click.echo(
            f"{item['name']}  {item['kind']} {tuple(item['shape'] or ())}  fingerprint "
            f"{item['fingerprint'][:12]}  {item['role'] or ''}{note}"
        )
        rows = []
        for c in s.get("columns", []):
            detail = ""
            if c.get("label"):
                shares = ", ".join(f"{k}: {v:.1%}" for k, v in list(c.get("classes", {}).items())[:6])
                detail = f"classes {shares}" + ("  IMBALANCED" if c.get("imbalanced") else "")
            elif c.get("top"):
                detail = "top " + ", ".join(f"{k} ({n})" for k, n in c["top"][:3])
            rows.append(
                [
                    c["name"],
                    c["dtype"],
                    c.get("missing_rate"),
                    c.get("min"),
                    c.get("p50"),
                    c.get("max"),
                    c.get("mean"),
                    c.get("std"),
                    c.get("distinct"),
                    detail,
                ]
            )
        click.echo(table(["column", "dtype", "missing", "min", "p50", "max", "mean", "std", "distinct", ""], rows))
        click.echo("")


@main.command("drift")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--var", "name", help="compare only this variable")
@click.option("--other", help="... against this variable of RUN_B (default: the same name)")
@click.option("--all", "show_all", is_flag=True, help="show unflagged columns too")
@_formats
@click.pass_context
def drift_cmd(ctx, run_a, run_b, name, other, show_all, output):
    """Data drift of RUN_B against RUN_A: PSI, KS, missing rates, categories, class balance."""
    from .analysis.drift import drift_between

    with _reader(ctx) as r:
        rows = drift_between(r, run_a, run_b, name, other)
    for row in rows:
        row["flags"] = "; ".join(row["flags"])
    keys = ["variable", "column", "severity", "psi", "ks", "flags"]
    if _emit(output, rows, lambda: (keys, [[row.get(k) for k in keys] for row in rows])):
        return
    shown = [r for r in rows if show_all or r["flags"]]
    if not rows:
        click.echo("no data in common between the two runs", err=True)
        return
    if not shown:
        click.echo(f"no drift flagged ({len(rows)} columns compared)")
        return
    click.echo(
        table(
            ["variable", "column", "severity", "psi", "ks", "flags"],
            [[r["variable"], r["column"], r["severity"], r.get("psi"), r.get("ks"), r["flags"]] for r in shown],
        )
    )


@main.command("review")
@click.option("--sprint", default="yesterday", show_default=True, help="today, yesterday, YYYY-MM-DD or a sprint name")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), help="also write a self-contained HTML report")
@click.option("--importance", is_flag=True, help="rank the params by importance for the main metric (scikit-learn)")
@_formats
@click.pass_context
def review_cmd(ctx, sprint, html_file, importance, output):
    """The morning review: what ran in a sprint, how it ended, what won and what changed."""
    from .analysis.review import review
    from .report import review_text

    if html_file:  # say so before the work, not after the text review is out
        folder = Path(html_file).absolute().parent
        if not folder.is_dir():
            raise click.BadParameter(f"cannot write {html_file}: folder {folder} does not exist", param_hint="--html")
    with _reader(ctx) as r:
        sprint_id = r.sprint_id(sprint) or sprint_of(__import__("time").time())
        rev = review(r, sprint_id, importance=importance)
    if _emit(output, rev, lambda: _runs_csv(rev["runs"])):  # CSV: the sprint's runs, as ls --csv
        return
    click.echo(review_text(rev))
    if html_file:
        from .report import review_html

        page, out = review_html(ctx.obj["ledger"], rev), Path(html_file)
        existed = out.exists()
        try:
            if not existed:  # a report holds recorded code: 0600 like the ledger
                from .ledger import private_file

                private_file(out)
            out.write_text(page, encoding="utf-8")
        except OSError as exc:
            if not existed:  # no half-written report left behind
                out.unlink(missing_ok=True)
            raise click.ClickException(f"cannot write {html_file}: {exc.strerror or exc}") from None
        click.echo(f"\nwrote {html_file} (one self-contained file: open it in a browser or attach it)", err=True)


def _overrides(items: tuple[str, ...], option: str, identifiers: bool = True) -> dict[str, Any]:
    """``NAME=VALUE`` options by :func:`nbexp.capture.params.parse_assignment`'s one rule; with
    ``identifiers``, NAME must be a Python name (replay rewrites ``NAME = ...`` lines)."""
    from .capture.params import parse_assignment

    out = {}
    for item in items:
        try:
            name, value = parse_assignment(item)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None
        if identifiers and not name.isidentifier():
            raise click.BadParameter(f"expected NAME=VALUE with NAME a Python name, got {item!r}", param_hint=option)
        out[name] = value
    return out


@main.command("replay")
@click.argument("run")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="notebook to write (default replay-RUN.ipynb)")
@click.option("--execute", is_flag=True, help="run it in a fresh kernel, tracked, and diff against the original")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="replay with this param changed")
@click.option("--timeout", type=int, default=1800, show_default=True, help="seconds per cell with --execute")
@click.pass_context
def replay_cmd(ctx, run, output, execute, params, timeout):
    """Write a run's code as a clean notebook; with --execute, run it again under tracking."""
    import nbformat

    from .analysis.compare import compare_runs, module_sources
    from .analysis.explain import continued_model, continued_stream
    from .analysis.replay import build_notebook, compare_figures, environment_differences, figure_lines, kept_modules

    overrides = _overrides(params, "--param")
    with _reader(ctx) as r:
        original = r.run(run)
        # a value set again after its model was built from it: the replay builds the model as the run trained it
        sources = r.param_sources(original["id"])
        built = {k: v for k, v in original["params"].items() if sources.get(k) == "built" and k not in overrides}
        out = Path(output or f"replay-{original['id']}.ipynb")
        # the notebook's modules as the run trained with them, whatever the files beside it hold now
        out.resolve().parent.mkdir(parents=True, exist_ok=True)
        folder, differ, unserved = kept_modules(module_sources(r, original["id"]), out.resolve().parent, out.stem)
        nb = build_notebook(original, {**built, **overrides}, ledger=str(r.path), modules=folder, optional=built)
        not_set = nb.metadata["nbexp"].get("not_set", [])
        built = {k: v for k, v in built.items() if k not in not_set}
        env_notes = environment_differences(r, original)
        stream = continued_stream(r, original)
        continued = continued_model(original)
        ledger_path = r.path
    nbformat.write(nb, out)
    click.echo(
        f"wrote {out}: {len(nb.cells) - 2} cells of run {original['id']}"
        + (f", with {', '.join(f'{k}={v!r}' for k, v in overrides.items())}" if overrides else "")
    )
    for note in env_notes:
        click.echo(f"warning: environment differs: {note}", err=True)
    if differ and folder is not None:
        click.echo(
            f"note: since run {original['id']} trained, {', '.join(differ)}: the replay imports the version it "
            f"trained with, from {folder}",
            err=True,
        )
    for what in unserved:
        click.echo(f"warning: the replay imports {what}", err=True)
    if not_set:
        click.echo(
            f"warning: run {original['id']}'s model was built with {', '.join(not_set)} as it recorded, which the "
            "replay cannot set back (no literal assignment of it in the run's code): it may train another model",
            err=True,
        )
    if built:
        values = ", ".join(f"{k} = {v!r}" for k, v in built.items())
        click.echo(
            f"note: the replay sets {values} as its model was built with: run {original['id']} set it again "
            "afterwards and trained the model built before (nbexp show lists the note)",
            err=True,
        )
    if continued is not None:
        click.echo(f"warning: the model: {continued}", err=True)
    if stream is not None:
        click.echo(
            f"warning: random numbers: run {original['id']} trained without running its seed (In[{stream['cell']}])"
            f" again after run {stream['run']} trained, so it drew the numbers that came after; the replay seeds"
            " once, and may compute other values",
            err=True,
        )
    if not execute:
        return
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    failed = None
    code_cells = sum(c.cell_type == "code" for c in nb.cells)  # the ones nbclient runs, and reports
    with _Progress(code_cells, f"replaying run {original['id']}") as bar:
        client = NotebookClient(
            nb,
            kernel_name="python3",
            timeout=timeout,
            resources={"metadata": {"path": str(out.resolve().parent)}},
            on_cell_executed=lambda **_: bar.update(1),
        )
        try:
            client.execute()
        except CellExecutionError as exc:
            failed = exc
    nbformat.write(nb, out)
    with Reader(ledger_path) as r:
        replay_id = r.latest_replay(original["id"])
        if replay_id is None:
            raise click.ClickException(f"the replay did not start tracking: see {out}")
        replay = r.run(replay_id)
        c = compare_runs(r, [original["id"], replay["id"]])
        figs = compare_figures(r, original, replay)  # what the cells showed: the same figures?
    if failed is not None:
        first = str(failed).strip().splitlines()
        raise click.ClickException(
            f"replay run {replay['id']} failed; executed notebook in {out}\n" + "\n".join(first[-6:])
        )
    click.echo(f"replay run {replay['id']} [{replay['status']}]; nbexp diff {original['id']} {replay['id']}:")
    click.echo(
        "  params: " + ("; ".join(f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in c["param_diff"].items()) or "no change")
    )
    for k, d in c["metric_delta"].items():
        click.echo(f"  {k}: {c['metrics'][k][0]['last']:.6g} -> {c['metrics'][k][1]['last']:.6g} (delta {d:+.3g})")
    for line in figure_lines(figs):
        click.echo(f"  {line}")
    if c.get("module_diff"):
        click.echo("warning: the replay trained with other modules than the original (nbexp diff shows them)", err=True)
    for name, fps in c["data"].items():
        if None not in fps and fps[0] != fps[1]:
            click.echo(
                f"warning: data {name!r} differs from the original's (fingerprint {fps[0][:10]} -> {fps[1][:10]})",
                err=True,
            )


@main.command("explain")
@click.argument("run", default="latest")
@click.option(
    "--vs", "vs", default="best", show_default=True, help="the run to explain it against: RUN, best or tag:NAME"
)
@click.option("--metric", help="the metric to explain (default: the main metric of the two runs)")
@click.option("--ablate", is_flag=True, help="replay RUN in fresh kernels with each factor reverted, to measure it")
@click.option("--budget", type=int, default=8, show_default=True, help="replays at most with --ablate")
@click.option("--timeout", type=int, default=600, show_default=True, help="seconds per replayed cell with --ablate")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def explain_cmd(ctx, run, vs, metric, ablate, budget, timeout, as_json):
    """Why RUN scores differently from another run: the factors that differ, ranked, each with its evidence.

    With --ablate, RUN is replayed unchanged (the noise) and once per factor a replay can isolate, that factor
    set back to the other run's value; each factor's effect and a waterfall from one value to the other follow.
    """
    from .analysis.explain import explain, lines, resolve_pair

    with _reader(ctx) as r:
        a, b, metric = resolve_pair(r, run, vs, metric)
        ex = explain(r, a, b, metric)
        ledger_path = r.path
        if not ablate:
            from .analysis.ablation import stored

            ex = stored(r, a, b, metric) or ex  # an ablation already run for this pair (overnight)
    if ablate:
        from .analysis.ablation import ablate as run_ablation

        isolable = sum(1 for f in ex["factors"] if f["isolable"])
        with _Progress(min(budget, isolable + 2), f"ablating run {b}") as bar:
            ex = run_ablation(ledger_path, ex, budget=budget, timeout=timeout, on_replay=lambda *_: bar.update(1))
    if as_json:
        _echo_json(ex)
        return
    from .analysis.ablation import waterfall_lines

    click.echo(f"run {ex['b']} vs {ex['a']} ({ex['direction']} is better)")
    if ex.get("ablation") and not ablate:
        click.echo(f"(ablation {ex['ablation']['id']}, stored: --ablate replays again)")
    click.echo(ex["summary"])
    for line in lines(ex):
        click.echo("  " + line)
    for line in waterfall_lines(ex):
        click.echo(line)


@main.command("check")
@click.argument("run", default="latest")
@click.option("--metric", required=True, help="the metric to hold up")
@click.option("--baseline", default="best", show_default=True, help="RUN, best or tag:NAME")
@click.option(
    "--higher-is-better/--lower-is-better",
    "higher",
    default=None,
    help="direction (default: from the name: loss, error, mse, ... go down)",
)
@click.option("--tolerance", default="0", show_default=True, help="allowed regression: absolute (0.01) or 2%")
@click.option("--nan-ok", is_flag=True, help="a NaN candidate is not a regression")
@_formats
@click.pass_context
def check_cmd(ctx, run, metric, baseline, higher, tolerance, nan_ok, output):
    """CI gate: exit 0 when RUN holds up against the baseline on METRIC, 1 when it regressed, 2 on usage errors."""
    from .analysis.check import check
    from .errors import RunNotFound

    try:
        with _reader(ctx) as r:
            v = check(r, run, metric, baseline, higher, tolerance, nan_ok)
    except RunNotFound as exc:
        raise click.UsageError(str(exc), ctx) from None
    row = [
        v["metric"],
        v["direction"],
        v["baseline"],
        v["baseline_value"],
        v["candidate"],
        v["candidate_value"],
        v["delta"],
        v["allowed"],
        "ok" if v["ok"] else "REGRESSED",
    ]
    csv_header = ["metric", "better", "baseline", "baseline_value", "candidate", "candidate_value"]
    if not _emit(output, v, lambda: ([*csv_header, "delta", "allowed", "verdict"], [row])):
        header = ["metric", "better", "baseline", "value", "candidate", "value", "delta", "allowed", "verdict"]
        click.echo(table(header, [row], fixed=[2, 4]))
        click.echo(v["reason"])
    ctx.exit(0 if v["ok"] else 1)


class _Exporters(_Group):
    """``nbexp export NAME ...``: one subcommand per exporter in the ``nbexp.exporters`` entry points."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .export import exporters

        return sorted(exporters())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from .export import exporters

        ep = exporters().get(name)
        return ep.load()() if ep is not None else None


@main.group("export", cls=_Exporters)
def export_group():
    """Export runs: to a portable bundle, or to a shared tracker (MLflow, W&B): `nbexp export KIND --help`."""


@main.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="check the bundle and say what would be added; change nothing")
@click.pass_context
def import_cmd(ctx, file, dry_run):
    """Merge a bundle into the ledger; importing twice changes nothing."""
    from .export.bundle import import_bundle

    stats = import_bundle(file, ctx.obj["ledger"], dry_run=dry_run)
    click.echo(
        ("would add" if dry_run else "added") + f" {count(stats['runs_added'], 'run')} ({stats['points']:,} points), "
        f"skipped {stats['runs_skipped']} already there"
        + (f", gave {stats['runs_renamed']} a fresh id (theirs was taken)" if stats["runs_renamed"] else "")
    )


@main.command("sync")
@click.argument("runs", nargs=-1)
@click.option("--sprint", help="the runs of a sprint: today, yesterday, a date or a name")
@click.option("--all", "all_runs", is_flag=True, help="every run in the ledger")
@click.option("--uri", envvar="NBEXP_SYNC_URI", required=True, help="the MLflow server (default $NBEXP_SYNC_URI)")
@click.option("--experiment", default="nbexp", show_default=True, help="MLflow experiment to write into")
@click.pass_context
def sync_cmd(ctx, runs, sprint, all_runs, uri, experiment):
    """Send the rest: what a live sync (%nbexp track --sync) could not send before its kernel stopped (default:
    the runs of the last 7 days); what the server has is not sent again."""
    from .export.mlflow import _import_mlflow, export_runs

    _import_mlflow()
    with _reader(ctx) as r:
        if runs or sprint or all_runs:
            from .export.select import selected_runs

            ids = selected_runs(r, runs, sprint, all_runs)
        else:
            since = dt.datetime.now().timestamp() - 7 * 86400
            ids = [x["id"] for x in r.list_runs(sprint="all") if x["start_time"] >= since]
        stats = export_runs(r, ids, uri, experiment) if ids else {"created": 0, "updated": 0, "points": 0, "files": 0}
    click.echo(
        f"synced {count(len(ids), 'run')} to {uri} (experiment {experiment!r}): "
        f"{stats['created']} created, "
        f"{stats['updated']} updated, {stats['points']:,} points and {stats.get('files', 0)} files sent"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
