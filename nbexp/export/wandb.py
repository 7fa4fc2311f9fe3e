"""Export runs as W&B offline runs (``nbexp export wandb``) that ``wandb sync`` uploads later.

Each run becomes ``DIR/wandb/offline-run-*-nbexp-<run>-<session>``: config = params, history =
metrics by step (all the metrics of one step in one row), summary = each metric's last value plus
the run's system aggregates and nbexp status, tags and notes from the run, the lineage saved as
``code/run.py`` in the run's files. What the run's cells showed and the files it kept are the run's
files too (``wandb sync`` uploads them): ``nbexp/outputs/003-cell7-0-display.png`` per output (named
as ``nbexp outputs --save`` names them), ``nbexp/artifacts/<name>`` per artifact whose bytes the
ledger holds, and ``nbexp/manifest.json`` listing both with sizes and SHA-256 (artifacts too large to
have been copied are listed there only). A run already exported to DIR is skipped.
"""

from __future__ import annotations

import json
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


def write_outputs(reader, run_id: str, folder: Path) -> list[Path]:
    """Write a run's outputs and stored artifacts under ``folder`` (``outputs/``, ``artifacts/``) with
    a ``manifest.json``; returns the files written. Names come from
    :func:`nbexp.capture.outputs.output_file_name` and :func:`~nbexp.capture.outputs.artifact_paths`
    (never outside ``folder``, never a page)."""
    from ..capture.outputs import artifact_paths, output_file_name

    written: list[Path] = []
    manifest: dict[str, list] = {"outputs": [], "artifacts": []}
    for i, c in enumerate(reader.outputs(run_id), 1):
        for o in c["outputs"]:
            blob = reader.blob(o["hash"])
            if blob is None:
                continue
            name = output_file_name(i, c["execution_count"], o["seq"], o["kind"], o["mime"])
            target = folder / "outputs" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob["data"])
            written.append(target)
            manifest["outputs"].append(
                {"file": f"outputs/{name}", "cell": c["execution_count"], "kind": o["kind"], "mime": o["mime"]}
                | {"size": o["size"], "sha256": o["hash"]}
            )
    artifacts = reader.artifacts(run_id)
    paths = artifact_paths(a["name"] for a in artifacts)
    for a in artifacts:
        entry = {k: a[k] for k in ("name", "path", "size", "sha256", "stored")}
        blob = reader.blob(a["sha256"]) if a["stored"] and a["sha256"] else None
        if blob is not None:
            rel = paths[a["name"]]
            target = folder / "artifacts" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob["data"])
            written.append(target)
            entry["file"] = f"artifacts/{rel}"
        manifest["artifacts"].append(entry)
    if written or manifest["artifacts"]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        written.append(folder / "manifest.json")
    return written


def export_runs(reader, run_ids: list[str], directory: str | Path, project: str = "nbexp") -> dict[str, int]:
    """Write ``run_ids`` as W&B offline runs under ``directory``; counts created/skipped/points/files
    (outputs, artifacts and manifests)."""
    os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    wandb = _import_wandb()

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stats = {"created": 0, "skipped": 0, "points": 0, "files": 0}
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
            files = [code, *write_outputs(reader, rid, Path(wr.dir) / "nbexp")]
            for f in files:  # a files record per file: wandb sync uploads them
                wr.save(str(f), base_path=wr.dir, policy="now")
            stats["files"] += len(files) - 1
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
        """Export runs as W&B offline runs: config, history by step, summary, tags, notes, code, and
        what the runs' cells showed and the files they kept, as run files."""
        from ..ledger.queries import Reader

        _import_wandb()  # before any work: a missing wandb is one line naming the fix
        with Reader(ctx.obj["ledger"]) as r:
            ids = selected_runs(r, runs, sprint, all_runs)
            stats = export_runs(r, ids, directory, project)
        click.echo(
            f"{stats['created']} offline runs written, {stats['skipped']} already there; "
            f"{stats['points']:,} points, {stats['files']:,} output and artifact files; "
            f"upload with: wandb sync {directory}/wandb/offline-run-*"
        )

    return wandb_cmd
