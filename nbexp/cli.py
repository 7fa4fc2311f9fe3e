"""The ``nbexp`` command: list, show, diff and review runs in a ledger.

Tables go to stdout, ``--json`` gives the same data for scripts. Exit codes:
0 ok, 1 error (unknown run, unreadable ledger), 2 usage.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from typing import Any

import click

from .errors import InvalidArgument, NbexpError
from .ledger import sprint_of
from .ledger.queries import Reader, parse_sprint

KEY_PARAMS = 4      # params shown in `ls`: those that vary most among the listed runs
KEY_METRICS = 3


def fmt(value: Any) -> str:
    """One table cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%m-%d %H:%M") if ts else "-"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(_jsonable(obj), indent=2, default=str))


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
@click.option("--ledger", type=click.Path(dir_okay=False), envvar="NBEXP_LEDGER",
              help="ledger file (default $NBEXP_HOME/ledger.sqlite or ~/.nbexp/ledger.sqlite)")
@click.version_option(package_name="nbexp")
@click.pass_context
def main(ctx: click.Context, ledger: str | None) -> None:
    """nbexp: the experiments your notebooks recorded."""
    ctx.obj = {"ledger": ledger}


def _key_columns(runs: list[dict]) -> tuple[list[str], list[str]]:
    """Params that vary among the runs (most distinct values first), and the metrics most runs have."""
    pkeys: dict[str, set] = {}
    for r in runs:
        for k, v in r["params"].items():
            pkeys.setdefault(k, set()).add(json.dumps(v))
    varying = sorted((k for k, vals in pkeys.items() if len(vals) > 1 or len(runs) == 1),
                     key=lambda k: (-len(pkeys[k]), k))[:KEY_PARAMS]
    counts: dict[str, int] = {}
    for r in runs:
        for k in r["metrics"]:
            counts[k] = counts.get(k, 0) + 1
    metrics = sorted(counts, key=lambda k: (-counts[k], k))[:KEY_METRICS]
    return varying, metrics


@main.command("ls")
@click.option("--sprint", default="today", show_default=True, help="today, yesterday, all, YYYY-MM-DD or a sprint name")
@click.option("--status", type=click.Choice(["running", "finished", "failed", "interrupted", "crashed"]))
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="only runs with this param value")
@click.option("--data", "data_fp", metavar="FINGERPRINT", help="only runs that used this data (fingerprint or prefix)")
@click.option("--limit", type=click.IntRange(min=1), help="at most this many runs")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def ls_cmd(ctx, sprint, status, params, data_fp, limit, as_json):
    """List runs, newest first, with the params that vary and their metrics."""
    wanted = {}
    for item in params:
        name, eq, text = item.partition("=")
        if not eq:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--param")
        try:
            wanted[name] = json.loads(text)
        except ValueError:
            wanted[name] = text
    with _reader(ctx) as r:
        runs = r.list_runs(sprint=sprint, status=status, limit=limit, params=wanted, data=data_fp)
    if as_json:
        _echo_json(runs)
        return
    if not runs:
        click.echo(f"no runs (sprint {sprint}{', status ' + status if status else ''})", err=True)
        return
    pcols, mcols = _key_columns(runs)
    rows = [[r["id"], r["name"], r["status"], when(r["start_time"]), _duration(r)]
            + [r["params"].get(k) for k in pcols]
            + [r["metrics"][k]["last"] if k in r["metrics"] else None for k in mcols] for r in runs]
    click.echo(table(["run", "name", "status", "start", "time"] + pcols + mcols, rows))


def _duration(run: dict) -> str:
    if not run["end_time"]:
        return "-"
    s = run["end_time"] - run["start_time"]
    return f"{s:.1f}s" if s < 60 else f"{s / 60:.1f}m" if s < 3600 else f"{s / 3600:.1f}h"


@main.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def show_cmd(ctx, run, as_json):
    """Show one run: status, params, metric summaries, environment, code."""
    with _reader(ctx) as r:
        info = r.run(run)
    if as_json:
        _echo_json(info)
        return
    s = info["session"]
    click.echo(f"run {info['id']}  {info['name'] or ''}  [{info['status']}]  sprint {info['sprint']}")
    click.echo(f"started {when(info['start_time'])}  took {_duration(info)}  kind {info['kind']}")
    if info["error"]:
        click.echo(f"error: {info['error']}")
    if info["tags"]:
        click.echo("tags: " + ", ".join(info["tags"]))
    if info["note"]:
        click.echo(f"note: {info['note']}")
    click.echo(f"session {s.get('id')} on {s.get('host')}  python {s.get('python')}  nbexp {s.get('nbexp_version')}"
               + (f"  git {s['git_commit'][:10]}{'+dirty' if s.get('git_dirty') else ''}" if s.get("git_commit") else "")
               + (f"  notebook {s['notebook']}" if s.get("notebook") else ""))
    click.echo("\nparams")
    click.echo(table(["name", "value"], [[k, v] for k, v in info["params"].items()]) if info["params"] else "  (none)")
    click.echo("\nmetrics")
    click.echo(table(["name", "last", "min", "max", "steps"],
                     [[k, m["last"], m["min"], m["max"], m["steps"]] for k, m in info["metrics"].items()])
               if info["metrics"] else "  (none)")
    click.echo("\nsystem")
    click.echo("  " + system_summary(info))
    if info["idle_hint"]:
        click.echo(f"  hint: {info['idle_hint']}")
    click.echo(f"\ncode: {len(info['lineage'])} cells (nbexp show --json for the text)")
    for e in info["events"]:
        click.echo(f"warning: {e['message']}")


def system_summary(run: dict) -> str:
    """One line of a run's system aggregates; says so where nothing was measured."""
    parts = []
    if run.get("gpu_util_mean") is not None:
        parts.append(f"GPU {run['gpu_util_mean']:.0f}% mean, {run['gpu_util_max']:.0f}% max over "
                     f"{run['gpu_count']} GPU(s)")
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
        rows = [[k] + [s["last"] if s else None for s in v] + [c["metric_delta"].get(k)] for k, v in c["metrics"].items()]
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
    click.echo(table(["variable"] + ids, [[n] + [fp[:10] if fp else "-" for fp in fps]
                                         for n, fps in c["data"].items()]))
    for row in c["drift"]:
        click.echo(f"drift: {row['variable']}.{row['column']}: {'; '.join(row['flags'])}")
    for row in c["imbalance"]:
        click.echo(f"imbalanced: run {row['run']} {row['variable']}.{row['column']} "
                   f"(minority {row['minority_share']:.1%})")


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
        click.echo(f"{item['name']}  {item['kind']} {tuple(item['shape'] or ())}  fingerprint "
                   f"{item['fingerprint'][:12]}  {item['role'] or ''}{note}")
        rows = []
        for c in s.get("columns", []):
            detail = ""
            if c.get("label"):
                shares = ", ".join(f"{k}: {v:.1%}" for k, v in list(c.get("classes", {}).items())[:6])
                detail = f"classes {shares}" + ("  IMBALANCED" if c.get("imbalanced") else "")
            elif c.get("top"):
                detail = "top " + ", ".join(f"{k} ({n})" for k, n in c["top"][:3])
            rows.append([c["name"], c["dtype"], c.get("missing_rate"), c.get("min"), c.get("p50"), c.get("max"),
                         c.get("mean"), c.get("std"), c.get("distinct"), detail])
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
    click.echo(table(["variable", "column", "severity", "psi", "ks", "flags"],
                     [[r["variable"], r["column"], r["severity"], r.get("psi"), r.get("ks"), r["flags"]] for r in shown]))


@main.command("review")
@click.option("--sprint", default="yesterday", show_default=True, help="today, yesterday, YYYY-MM-DD or a sprint name")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
@click.pass_context
def review_cmd(ctx, sprint, as_json):
    """The morning review: what ran in a sprint, how it ended, what won and what changed."""
    from .analysis.review import review

    with _reader(ctx) as r:
        sprint_id = parse_sprint(sprint, r.conn) or sprint_of(__import__("time").time())
        rev = review(r, sprint_id)
    if as_json:
        _echo_json(rev)
        return
    sp = rev["sprint"]
    click.echo(f"sprint {sp['id']}{' ' + repr(sp['name']) if sp['name'] else ''}: {len(rev['runs'])} runs "
               + ", ".join(f"{n} {s}" for s, n in rev["counts"].items()))
    if sp.get("hypothesis"):
        click.echo(f"hypothesis: {sp['hypothesis']}")
    if sp.get("conclusion"):
        click.echo(f"conclusion: {sp['conclusion']}")
    if not rev["runs"]:
        return
    click.echo("")
    click.echo(table(["run", "name", "status", "start", "time", "last cell / error"],
                     [[x["id"], x["name"], x["status"], when(x["start_time"]), _duration(x), x.get("error") or ""]
                      for x in rev["runs"]]))
    for d in rev["drift"]:
        click.echo(f"drift in run {d['run']} vs {d['reference']}: {d['variable']}.{d['column']}: {'; '.join(d['flags'])}")
    for row in rev["imbalance"]:
        click.echo(f"imbalanced labels in run {row['run']}: {row['variable']}.{row['column']} "
                   f"(minority {row['minority_share']:.1%})")
    if rev["gpu_hours"]:
        click.echo(f"\nGPU hours: {rev['gpu_hours']:.2f}")
    for h in rev["idle_hints"]:
        click.echo(f"idle GPU in run {h['run']}: {h['hint']}")
    if rev["best"]:
        click.echo("\nbest per metric")
        click.echo(table(["metric", "best", "run", "vs previous best", "what changed"],
                         [[b["metric"], b["value"], b["run"], b.get("previous_run") or "-", b.get("changed") or "-"]
                          for b in rev["best"]]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
