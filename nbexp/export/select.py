"""Which runs an export takes: RUNS, ``--sprint S`` or ``--all`` (shared by the exporters)."""

from __future__ import annotations

from typing import Callable

import click


def select_options(fn: Callable) -> Callable:
    fn = click.option("--all", "all_runs", is_flag=True, help="every run in the ledger")(fn)
    fn = click.option("--sprint", help="the runs of a sprint: today, yesterday, a date or a name")(fn)
    return click.argument("runs", nargs=-1)(fn)


def selected_runs(reader, runs: tuple[str, ...], sprint: str | None, all_runs: bool) -> list[str]:
    if sum(bool(x) for x in (runs, sprint, all_runs)) != 1:
        raise click.UsageError("choose the runs: RUN ids, --sprint S or --all (one of them)")
    if runs:
        return [reader.resolve(r) for r in runs]
    return [r["id"] for r in reader.list_runs(sprint="all" if all_runs else sprint)]
