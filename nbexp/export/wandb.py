"""Export runs as W&B offline runs (``nbexp export wandb``) that ``wandb sync`` uploads later.

Each run becomes ``DIR/wandb/offline-run-*-nbexp-<run>-<session>``: config = params, history =
metrics by step (all the metrics of one step in one row), summary = each metric's last value plus
the run's system aggregates and nbexp status, tags and notes from the run, the lineage saved as
``code/run.py`` in the run's files. A run already exported to DIR is skipped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..errors import MissingDependency
from ..ledger.schema import FINISHED, RUNNING


def _import_wandb():
    """The ``wandb`` module, or a one-line :class:`MissingDependency` naming ``nbexp[wandb]``."""
    try:
        import wandb
    except ImportError as exc:
        raise MissingDependency.from_import_error(
            exc, needed_by="nbexp export wandb", library="wandb", extra="wandb"
        ) from None
    return wandb


def wandb_id(run: dict) -> str:
    return re.sub(r"[^a-z0-9-]", "", f"nbexp-{run['id']}-{run['session_id']}".lower())[:64]


def export_runs(reader, run_ids: list[str], directory: str | Path, project: str = "nbexp") -> dict[str, int]:
    """Write ``run_ids`` as W&B offline runs under ``directory``; counts created/skipped/points."""
    os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    wandb = _import_wandb()

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stats = {"created": 0, "skipped": 0, "points": 0}
    for rid in run_ids:
        run = reader.run(rid)
        wid = wandb_id(run)
        if list((directory / "wandb").glob(f"offline-run-*-{wid}")):
            stats["skipped"] += 1
            continue
        wr = wandb.init(
            mode="offline",
            dir=str(directory),
            project=project,
            id=wid,
            name=run["name"] or run["id"],
            config=dict(run["params"]),
            tags=[t[:64] for t in run["tags"]] + [f"sprint-{run['sprint']}"],
            notes=run["note"],
            reinit=True,
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
        )
        try:
            rows: dict[int, dict[str, Any]] = {}
            for key in run["metrics"]:
                steps, values, _walls = reader.metric_points(rid, key)
                for step, value in zip(steps, values):
                    rows.setdefault(step or 0, {})[key] = value
                stats["points"] += len(steps)
            for step in sorted(rows):
                wr.log(rows[step], step=step)
            summary = {k: m["last"] for k, m in run["metrics"].items()}
            summary.update(
                {
                    f"system/{k}": run[k]
                    for k in (
                        "gpu_util_mean",
                        "gpu_util_max",
                        "gpu_mem_peak_mb",
                        "energy_wh",
                        "cpu_mean",
                        "rss_peak_mb",
                    )
                    if run.get(k) is not None
                }
            )
            summary["nbexp/status"] = run["status"]
            summary["nbexp/run_id"] = run["id"]
            for k, v in summary.items():
                wr.summary[k] = v
            from ..analysis.compare import lineage_text

            code = Path(wr.dir) / "code" / "run.py"
            code.parent.mkdir(parents=True, exist_ok=True)
            code.write_text("\n".join(lineage_text(run["lineage"])), encoding="utf-8")
        finally:
            wr.finish(exit_code=0 if run["status"] in (FINISHED, RUNNING) else 1)
        stats["created"] += 1
    return stats


def cli():
    """The ``nbexp export wandb`` command."""
    import click

    from .select import select_options, selected_runs

    @click.command("wandb")
    @select_options
    @click.option(
        "--dir",
        "directory",
        required=True,
        type=click.Path(file_okay=False),
        help="folder for the offline runs (then: wandb sync DIR/wandb/offline-run-*)",
    )
    @click.option("--project", default="nbexp", show_default=True, help="W&B project name")
    @click.pass_context
    def wandb_cmd(ctx, runs, sprint, all_runs, directory, project):
        """Export runs as W&B offline runs: config, history by step, summary, tags, notes, code."""
        from ..ledger.queries import Reader

        _import_wandb()  # before any work: a missing wandb is one line naming the fix
        with Reader(ctx.obj["ledger"]) as r:
            ids = selected_runs(r, runs, sprint, all_runs)
            stats = export_runs(r, ids, directory, project)
        click.echo(
            f"{stats['created']} offline runs written, {stats['skipped']} already there; "
            f"{stats['points']:,} points; upload with: wandb sync {directory}/wandb/offline-run-*"
        )

    return wandb_cmd
