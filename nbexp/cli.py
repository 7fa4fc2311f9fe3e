"""The ``nbexp`` command: list, show, diff and review runs in a ledger.

Tables go to stdout, ``--json`` gives the same data for scripts. Exit codes:
0 ok, 1 error (unknown run, unreadable ledger), 2 usage.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from .analysis.metrics import rank_metrics
from .errors import InvalidArgument, NbexpError
from .ledger import RUN_STATUSES, sprint_of
from .ledger.queries import Reader, parse_since
from .textfmt import duration, fmt, jsonable, table, when

KEY_PARAMS = 4  # params shown in `ls`: those that vary most among the listed runs
KEY_METRICS = 3
PRINTED = "stdout"  # the source of a metric read from a cell's printed output
PRINTED_NOTE = "* read from printed output"


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(jsonable(obj), indent=2, default=str))


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


def _key_columns(runs: list[dict]) -> tuple[list[str], list[str]]:
    """Params that vary among the runs (most distinct values first), and the best-ranked metrics
    (nbexp/analysis/metrics.py)."""
    pkeys: dict[str, set] = {}
    for r in runs:
        for k, v in r["params"].items():
            pkeys.setdefault(k, set()).add(json.dumps(v))
    varying = sorted(
        (k for k, vals in pkeys.items() if len(vals) > 1 or len(runs) == 1), key=lambda k: (-len(pkeys[k]), k)
    )[:KEY_PARAMS]
    return varying, rank_metrics(runs)[:KEY_METRICS]


@main.command("ls")
@click.option("--sprint", default="today", show_default=True, help="today, yesterday, all, YYYY-MM-DD or a sprint name")
@click.option("--status", type=click.Choice(RUN_STATUSES))
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="only runs with this param value")
@click.option("--data", "data_fp", metavar="FINGERPRINT", help="only runs that used this data (fingerprint or prefix)")
@click.option("--since", metavar="AGE", help="only runs started since 30m, 12h, 2d, 1w or a date")
@click.option("--tag", help="only runs with this tag")
@click.option("--search", metavar="TEXT", help="only runs whose id, name, status, note, tags or params contain TEXT")
@click.option("--limit", type=click.IntRange(min=1), help="at most this many runs")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def ls_cmd(ctx, sprint, status, params, data_fp, since, tag, search, limit, as_json):
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
        )
    if as_json:
        _echo_json(runs)
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
    click.echo(table(["run", "name", "status", "start", "time"] + pcols + mcols, rows))
    if any(r["metrics"].get(k, {}).get("source") == PRINTED for r in runs for k in mcols):
        click.echo(PRINTED_NOTE)


def _metric_cell(m: dict | None) -> str | None:
    """A metric's last value as a listing shows it: marked ``*`` when it was read from printed output."""
    if m is None:
        return None
    return fmt(m["last"]) + ("*" if m.get("source") == PRINTED else "")


@main.command("show")
@click.argument("run")
@click.option("--outputs", "with_outputs", is_flag=True, help="also list what its cells showed and its artifacts")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def show_cmd(ctx, run, with_outputs, as_json):
    """Show one run: status, params, metric summaries, environment, code."""
    with _reader(ctx) as r:
        info = r.run(run)
        if with_outputs:
            info["outputs"], info["artifacts"] = r.outputs(info["id"]), r.artifacts(info["id"])
    if as_json:
        _echo_json(info)
        return
    s = info["session"]
    click.echo(f"run {info['id']}  {info['name'] or ''}  [{info['status']}]  sprint {info['sprint']}")
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
    click.echo(table(["name", "value"], [[k, v] for k, v in info["params"].items()]) if info["params"] else "  (none)")
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
    click.echo("\nsystem")
    click.echo("  " + system_summary(info))
    if info["idle_hint"]:
        click.echo(f"  hint: {info['idle_hint']}")
    click.echo(f"\ncode: {len(info['lineage'])} cells (nbexp show --json for the text)")
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


# how a saved output is named: never .html or .svg, so a saved output is not a page that runs scripts
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "application/vnd.plotly.v1+json": "plotly.json",
    "text/html": "html.txt",
    "text/plain": "txt",
}


def _output_rows(cells: list[dict]) -> list[list[Any]]:
    return [
        [
            c["execution_count"] if c["execution_count"] is not None else "-",
            o["kind"],
            o["mime"],
            o["size"],
            o["hash"][:12],
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
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def outputs_cmd(ctx, run, save_dir, as_json):
    """List what a run's cells showed (figures, tables, results, printed text); --save writes them as files."""
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
                count = c["execution_count"] if c["execution_count"] is not None else i
                for o in c["outputs"]:
                    blob = r.blob(o["hash"])
                    if blob is None:
                        continue
                    name = f"{i:03d}-cell{count}-{o['seq']}-{o['kind']}.{_EXTENSIONS.get(o['mime'], 'bin')}"
                    try:
                        (folder / name).write_bytes(blob["data"])
                    except OSError as exc:
                        raise click.ClickException(f"cannot write {folder / name}: {exc}") from None
                    n += 1
            n_art = _save_artifacts(r, rid, folder / "artifacts")
    if as_json:
        _echo_json(cells)
    elif not save_dir:
        _echo_outputs(cells)
    if save_dir:
        more = f" and {n_art} artifacts (in artifacts/)" if n_art else ""
        click.echo(f"wrote {n} outputs{more} of run {rid} to {save_dir}", err=as_json)


def _save_artifacts(r: Reader, rid: str, folder: Path) -> int:
    """Write a run's stored artifacts into ``folder``, each under its name made one safe file name
    (``out/preds.csv`` as ``out_preds.csv``; a page or a script gets ``.txt`` added, like outputs)."""
    n = 0
    for a in r.artifacts(rid):
        blob = r.blob(a["sha256"]) if a["stored"] else None
        if blob is None:
            continue
        name = re.sub(r"[^\w.+-]+", "_", a["name"]).lstrip("._") or "artifact"
        if name.lower().endswith((".html", ".htm", ".xhtml", ".svg", ".js", ".mjs")):
            name += ".txt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(blob["data"])
        except OSError as exc:
            raise click.ClickException(f"cannot write {folder / name}: {exc}") from None
        n += 1
    return n


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
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def diff_cmd(ctx, runs, code, as_json):
    """Param diff, metric deltas and code diff between runs (the first is the baseline)."""
    from .analysis.compare import compare_runs

    if len(runs) < 2:
        raise click.UsageError("diff needs two runs or more, e.g. nbexp diff latest~1 latest")
    with _reader(ctx) as r:
        c = compare_runs(r, list(runs))
    if as_json:
        _echo_json(c)
        return
    ids = [x["id"] for x in c["runs"]]
    click.echo("runs: " + "  ".join(f"{x['id']} {x['name'] or ''} [{x['status']}]".rstrip() for x in c["runs"]))
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
        click.echo(table(["metric"] + ids + ["delta"], rows))
    else:
        click.echo("  (none)")
    _echo_data_side(c, ids)
    if code:
        click.echo("\ncode")
        click.echo("\n".join(c["code_diff"]) if c["code_diff"] else "  (same code)")


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
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def data_cmd(ctx, run, as_json):
    """Summaries of the data a run used: per variable and column."""
    with _reader(ctx) as r:
        items = r.data(r.resolve(run))
    if as_json:
        _echo_json(items)
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
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def drift_cmd(ctx, run_a, run_b, name, other, show_all, as_json):
    """Data drift of RUN_B against RUN_A: PSI, KS, missing rates, categories, class balance."""
    from .analysis.drift import drift_between

    with _reader(ctx) as r:
        rows = drift_between(r, run_a, run_b, name, other)
    for row in rows:
        row["flags"] = "; ".join(row["flags"])
    if as_json:
        _echo_json(rows)
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
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def review_cmd(ctx, sprint, html_file, as_json):
    """The morning review: what ran in a sprint, how it ended, what won and what changed."""
    from .analysis.review import review
    from .report import review_text

    if html_file:  # say so before the work, not after the text review is out
        folder = Path(html_file).absolute().parent
        if not folder.is_dir():
            raise click.BadParameter(f"cannot write {html_file}: folder {folder} does not exist", param_hint="--html")
    with _reader(ctx) as r:
        sprint_id = r.sprint_id(sprint) or sprint_of(__import__("time").time())
        rev = review(r, sprint_id)
    if as_json:
        _echo_json(rev)
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

    from .analysis.compare import compare_runs
    from .analysis.replay import build_notebook, environment_differences

    overrides = _overrides(params, "--param")
    with _reader(ctx) as r:
        original = r.run(run)
        nb = build_notebook(original, overrides, ledger=str(r.path))
        env_notes = environment_differences(r, original)
        ledger_path = r.path
    out = Path(output or f"replay-{original['id']}.ipynb")
    nbformat.write(nb, out)
    click.echo(
        f"wrote {out}: {len(nb.cells) - 2} cells of run {original['id']}"
        + (f", with {', '.join(f'{k}={v!r}' for k, v in overrides.items())}" if overrides else "")
    )
    for note in env_notes:
        click.echo(f"warning: environment differs: {note}", err=True)
    if not execute:
        return
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(
        nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(out.resolve().parent)}}
    )
    failed = None
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
    for name, fps in c["data"].items():
        if None not in fps and fps[0] != fps[1]:
            click.echo(
                f"warning: data {name!r} differs from the original's (fingerprint {fps[0][:10]} -> {fps[1][:10]})",
                err=True,
            )


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
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def check_cmd(ctx, run, metric, baseline, higher, tolerance, nan_ok, as_json):
    """CI gate: exit 0 when RUN holds up against the baseline on METRIC, 1 when it regressed, 2 on usage errors."""
    from .analysis.check import check
    from .errors import RunNotFound

    try:
        with _reader(ctx) as r:
            v = check(r, run, metric, baseline, higher, tolerance, nan_ok)
    except RunNotFound as exc:
        raise click.UsageError(str(exc), ctx) from None
    if as_json:
        _echo_json(v)
    else:
        click.echo(
            table(
                ["metric", "better", "baseline", "value", "candidate", "value", "delta", "allowed", "verdict"],
                [
                    [
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
                ],
            )
        )
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
    """Export runs: to a portable bundle, or to a shared tracker (see `nbexp export --help`)."""


@main.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="check the bundle and say what would be added; change nothing")
@click.pass_context
def import_cmd(ctx, file, dry_run):
    """Merge a bundle into the ledger; importing twice changes nothing."""
    from .export.bundle import import_bundle

    stats = import_bundle(file, ctx.obj["ledger"], dry_run=dry_run)
    click.echo(
        ("would add" if dry_run else "added") + f" {stats['runs_added']} runs ({stats['points']:,} points), "
        f"skipped {stats['runs_skipped']} already there"
        + (f", gave {stats['runs_renamed']} a fresh id (theirs was taken)" if stats["runs_renamed"] else "")
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
