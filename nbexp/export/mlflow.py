"""Export runs to an MLflow tracking server (``nbexp export mlflow``).

Each nbexp run becomes one MLflow run, found again by its ``nbexp.uid`` tag, so exporting
is idempotent and resumable: params and tags already there are left alone, metric points
are appended after the ones the server already has (nbexp's points are append-only, so the
first N on the server are the first N here), artifacts are written once. A run still running
is exported as it is (status RUNNING, tag ``nbexp.status=running``) and completed by a
later export.

Mapped: params (keys and values within MLflow's limits; a longer value is truncated and the
full one kept in ``params/full_values.json``), metrics with step and timestamp (``log_batch``
in chunks of 1,000), system samples under MLflow's own ``system/...`` names, tags
(``mlflow.runName``, ``mlflow.source.name``, ``mlflow.source.git.commit``,
``mlflow.note.content``, ``nbexp.status``, ``nbexp.sprint``, the run's own tags), the
lineage as ``code/run.py`` and ``code/run.ipynb``, data summaries as
``data/summaries.json``, what the run's cells showed as ``outputs/NNN-cellC-S-kind.ext`` and the files
it kept as ``artifacts/NAME`` (those whose bytes the ledger holds), status FINISHED / FAILED / KILLED
and start and end times. Code, summaries, outputs and artifacts go once the run has ended.
"""

from __future__ import annotations

import json
import os
import sys
import time

from ..errors import MissingDependency, NbexpError
from ..ledger.schema import CRASHED, FAILED, FINISHED, INTERRUPTED
from ..textfmt import count

MAX_PARAM_VALUE = 6000
MAX_KEY = 250
BATCH = 1000
STATUS = {FINISHED: "FINISHED", FAILED: "FAILED", INTERRUPTED: "KILLED", CRASHED: "KILLED"}


class ExportError(NbexpError):
    """The export could not be done; the message says why. Nothing is marked exported that was not."""


def _import_mlflow():
    """The ``mlflow`` module, or a one-line :class:`MissingDependency` naming ``nbexp[mlflow]``."""
    try:
        import mlflow
    except ImportError as exc:
        raise MissingDependency.from_import_error(
            exc, needed_by="nbexp export mlflow", library="MLflow", extra="mlflow"
        ) from None
    return mlflow


def _client(uri: str):
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # fail fast when the server is gone
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    _import_mlflow()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not uri.startswith(("http://", "https://", "file:", "sqlite:", "postgresql", "mysql", "databricks")):
        raise ExportError(f"tracking URI {uri!r}: use http(s)://HOST:PORT of an MLflow server (or sqlite:///PATH)")
    try:
        return MlflowClient(tracking_uri=uri)  # opens the store: a refused one says so here
    except MlflowException as exc:
        if uri.startswith("file:"):  # MLflow 3 keeps file stores in maintenance only
            raise ExportError(
                f"tracking URI {uri!r}: {_mlflow_version()} refuses file stores; use an MLflow "
                f"server (http://HOST:PORT) or a database (sqlite:///PATH/mlflow.db), or set "
                f"MLFLOW_ALLOW_FILE_STORE=true to write the file store anyway"
            ) from None
        raise ExportError(f"tracking URI {uri!r}: {str(exc).splitlines()[0][:300]}") from None


def _mlflow_version() -> str:
    import mlflow

    return f"MLflow {mlflow.__version__}"


def _experiment(client, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name)
    if exp.lifecycle_stage == "deleted":
        raise ExportError(
            f"experiment {name!r} is deleted on the server: restore it "
            f"(mlflow experiments restore --experiment-id {exp.experiment_id}) or pick another name"
        )
    return exp.experiment_id


def system_rows(host: list[dict], gpus: list[dict]) -> list[tuple[str, float, float, int]]:
    """``(key, value, time, step)`` of the system samples, under MLflow's system metric names."""
    rows = []
    for i, h in enumerate(host):
        for key, field in (
            ("system/cpu_utilization_percentage", "sys_cpu"),
            ("system/system_memory_usage_percentage", "sys_mem"),
            ("system/process_cpu_utilization_percentage", "proc_cpu"),
            ("system/process_memory_rss_megabytes", "proc_rss_mb"),
        ):
            if h.get(field) is not None:
                rows.append((key, float(h[field]), h["time"], i))
    steps: dict[int, int] = {}
    for g in gpus:
        i = steps.get(g["gpu"], 0)
        steps[g["gpu"]] = i + 1
        for key, gfield in (
            ("utilization_percentage", "util"),
            ("memory_usage_megabytes", "mem_used_mb"),
            ("memory_usage_percentage", None),
            ("power_usage_watts", "power_w"),
        ):
            value = (
                100.0 * g["mem_used_mb"] / g["mem_total_mb"]
                if gfield is None and g.get("mem_total_mb")
                else g.get(gfield)
                if gfield
                else None
            )
            if value is not None:
                rows.append((f"system/gpu_{g['gpu']}_{key}", float(value), g["time"], i))
    return rows


def _pending_points(client, reader, rid: str, run: dict, mid: str | None, known: dict[str, int] | None = None):
    """Per metric key, the points of run ``rid`` the MLflow run ``mid`` does not have yet (all of
    them when ``mid`` is None, a run not created yet): its metrics, then its system samples.

    ``known``: points per key the server is known to hold (a live sync's count of what it sent); a key
    not in it is counted on the server (``get_metric_history``).

    Returns:
        ``[(key, have, batch)]``: the server holds ``have`` points of ``key``; ``batch`` follows them."""
    from mlflow.entities import Metric

    def have(key: str) -> int:
        if not mid:
            return 0
        if known is not None and key in known:
            return known[key]
        return len(client.get_metric_history(mid, key))

    batches = []
    for key in run["metrics"]:
        n = have(key)
        points = reader.metric_points_after(rid, key, n)
        batches.append(
            (key, n, [Metric(key, float("nan") if v is None else v, int(w * 1000), s or 0) for s, v, w in points])
        )
    host, gpus = reader.system_series(rid)
    by_key: dict[str, list] = {}
    for key, value, t, step in system_rows(host, gpus):
        by_key.setdefault(key, []).append(Metric(key, value, int(t * 1000), step))
    for key, batch in by_key.items():
        n = have(key)
        batches.append((key, n, batch[n:]))
    return batches


def _run_files(reader, rid: str) -> list[tuple[str, str]]:
    """``(artifact path, blob hash)`` of what a run's cells showed (``outputs/NNN-cellC-S-kind.ext``) and of
    the files it kept whose bytes the ledger holds (``artifacts/PATH``: each name's own path, folders kept, one file
    per name, as :func:`~nbexp.capture.outputs.artifact_paths` gives it). Outputs are named as ``nbexp outputs
    --save`` and the W&B export name them, never .html or .svg (a page the MLflow UI would run)."""

    from ..capture.outputs import artifact_paths, output_file_name

    files = []
    for i, c in enumerate(reader.outputs(rid), 1):
        for o in c["outputs"]:
            name = output_file_name(i, c["execution_count"], o["seq"], o["kind"], o["mime"])
            files.append((f"outputs/{name}", o["hash"]))
    artifacts = reader.artifacts(rid)
    paths = artifact_paths(a["name"] for a in artifacts)  # over all of them, as the W&B export and --save name them
    files += [(f"artifacts/{paths[a['name']]}", a["sha256"]) for a in artifacts if a["stored"]]
    return files


def _listed(client, mid: str, folder: str) -> set[str]:
    """Every file path under ``folder`` of MLflow run ``mid``, its subfolders too."""
    out: set[str] = set()
    for a in client.list_artifacts(mid, folder):
        if a.is_dir:
            out |= _listed(client, mid, a.path)
        else:
            out.add(a.path)
    return out


def _upload_files(client, reader, rid: str, mid: str) -> int:
    """Upload the outputs and artifacts of run ``rid`` the MLflow run ``mid`` does not have yet. Returns how many."""
    import tempfile

    files = _run_files(reader, rid)
    if not files:
        return 0
    existing = _listed(client, mid, "outputs") | _listed(client, mid, "artifacts")
    missing = [(path, digest) for path, digest in files if path not in existing]
    if not missing:
        return 0
    n = 0
    with tempfile.TemporaryDirectory(prefix="nbexp-mlflow-") as tmp:
        for path, digest in missing:
            blob = reader.blob(digest)
            if blob is None:
                continue
            local = os.path.join(tmp, *path.split("/"))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "wb") as f:
                f.write(blob["data"])
            client.log_artifact(mid, local, path.rsplit("/", 1)[0])
            n += 1
    return n


def export_runs(
    reader,
    run_ids: list[str],
    uri: str,
    experiment: str = "nbexp",
    dry_run: bool = False,
    progress=None,
    known: dict[str, dict[str, int]] | None = None,
) -> dict[str, int]:
    """Export ``run_ids`` to the MLflow server at ``uri``. Returns counts: created, updated,
    skipped (nothing new), points (metric and system points sent), files (outputs and artifacts uploaded).

    A run's code, data summaries, outputs and artifacts are uploaded once it has ended (a running run's
    are not complete yet; the export that completes it sends them).

    ``known``: ``{run id: {metric key: points the server holds}}``, kept up to date here as batches are
    sent, so a caller that exports the same runs again and again (the live sync) does not count every
    key's points on the server each time. A caller must drop a run's entry when an export of it fails:
    a batch may have landed without its answer."""
    from mlflow.entities import Param, RunTag
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    stats = {"created": 0, "updated": 0, "skipped": 0, "points": 0, "files": 0}
    try:
        exp_id = _experiment(client, experiment)
        for n, rid in enumerate(run_ids, 1):
            run = reader.run(rid)
            uid = f"{run['session_id']}:{run['id']}"
            found = client.search_runs([exp_id], filter_string=f"tags.`nbexp.uid` = '{uid}'", max_results=1)
            mid: str | None
            if found:
                mrun = found[0]
                mid, have_params, have_tags = mrun.info.run_id, dict(mrun.data.params), dict(mrun.data.tags)
            else:
                mid, have_params, have_tags = None, {}, {}
            # params
            full, params = {}, []
            for key, value in run["params"].items():
                text = value if isinstance(value, str) else json.dumps(value)
                k = key[:MAX_KEY]
                if len(text) > MAX_PARAM_VALUE:
                    full[key] = text
                    text = text[: MAX_PARAM_VALUE - 20] + "...[truncated]"
                if k not in have_params:
                    params.append(Param(k, text))
            # tags
            session = run["session"] or {}
            tags = {
                "mlflow.runName": run["name"] or run["id"],
                "nbexp.status": run["status"],
                "nbexp.sprint": run["sprint"],
                "nbexp.run_id": run["id"],
            }
            if session.get("notebook"):
                tags["mlflow.source.name"] = session["notebook"]
            if session.get("git_commit"):
                tags["mlflow.source.git.commit"] = session["git_commit"]
            if run["note"]:
                tags["mlflow.note.content"] = run["note"]
            for t in run["tags"]:
                tags[f"nbexp.tag.{t}"] = "true"
            new_tags = [RunTag(k, str(v)) for k, v in tags.items() if have_tags.get(k) != str(v)]
            # metric and system points after those the server has: what a dry run counts is what is sent
            counts = known.setdefault(rid, {}) if known is not None and found else None
            batches = _pending_points(client, reader, rid, run, mid, counts)
            sent = sum(len(batch) for _key, _have, batch in batches)
            if dry_run:
                stats["points"] += sent
                stats["created" if not found else "updated" if sent or params or new_tags else "skipped"] += 1
                continue
            if not found:
                mid = client.create_run(
                    exp_id,
                    start_time=int(run["start_time"] * 1000),
                    tags={"nbexp.uid": uid},
                    run_name=run["name"] or run["id"],
                ).info.run_id
                stats["created"] += 1
            for i in range(0, max(len(params), len(new_tags)), 100):
                client.log_batch(mid, params=params[i : i + 100], tags=new_tags[i : i + 100])
            counts = known.setdefault(rid, {}) if known is not None else None
            for key, have, batch in batches:
                for i in range(0, len(batch), BATCH):
                    client.log_batch(mid, metrics=batch[i : i + BATCH])
                    if counts is not None:
                        counts[key] = have + min(len(batch), i + BATCH)
                if counts is not None:
                    counts[key] = have + len(batch)
            if run["status"] == "running":
                stats["points"] += sent
                if found:
                    stats["updated" if sent or params or new_tags else "skipped"] += 1
                if progress:
                    progress(n, len(run_ids), run["id"])
                continue
            # artifacts, once, when the run has ended
            existing = {a.path for folder in ("code", "data", "params") for a in client.list_artifacts(mid, folder)}
            if "code/run.py" not in existing:
                from ..analysis.compare import lineage_text

                client.log_text(mid, "\n".join(lineage_text(run["lineage"])), "code/run.py")
                try:
                    import nbformat

                    from ..analysis.replay import build_notebook

                    client.log_text(mid, nbformat.writes(build_notebook(run, {})), "code/run.ipynb")
                except Exception:  # a lineage nbformat cannot hold: the .py is still there
                    pass
            if run["data"] and "data/summaries.json" not in existing:
                client.log_dict(mid, {d["name"]: d["summary"] for d in run["data"]}, "data/summaries.json")
            if full and "params/full_values.json" not in existing:
                client.log_dict(mid, full, "params/full_values.json")
            stats["files"] += _upload_files(client, reader, rid, str(mid))
            if run["status"] in STATUS and (not found or found[0].info.status != STATUS[run["status"]]):
                client.set_terminated(mid, STATUS[run["status"]], int((run["end_time"] or time.time()) * 1000))
            stats["points"] += sent
            if found:
                stats["updated" if sent or params or new_tags else "skipped"] += 1
            if progress:
                progress(n, len(run_ids), run["id"])
    except MlflowException as exc:
        raise ExportError(f"MLflow at {uri}: {str(exc).splitlines()[0][:300]}") from None
    except OSError as exc:
        if exc.filename is not None:  # a file the upload writes (a local artifact store, the temporary copy)
            raise ExportError(f"MLflow at {uri}: cannot write {exc.filename} ({exc.strerror or exc})") from None
        raise ExportError(f"cannot reach the MLflow server at {uri}: {exc}") from None
    except Exception as exc:  # requests' errors, without importing requests here
        if type(exc).__module__.startswith(("requests", "urllib3")):
            raise ExportError(f"cannot reach the MLflow server at {uri}: {type(exc).__name__}") from None
        raise
    return stats


def cli():
    """The ``nbexp export mlflow`` command."""
    import click

    from .select import select_options, selected_runs

    @click.command("mlflow")
    @select_options
    @click.option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        required=True,
        help="the MLflow server, e.g. http://127.0.0.1:5000 (default $MLFLOW_TRACKING_URI)",
    )
    @click.option("--experiment", default="nbexp", show_default=True, help="MLflow experiment to write into")
    @click.option("--dry-run", is_flag=True, help="say what would be sent; send nothing")
    @click.pass_context
    def mlflow_cmd(ctx, runs, sprint, all_runs, tracking_uri, experiment, dry_run):
        """Export runs to an MLflow server: params, metrics with steps, tags, system metrics, code and data."""
        from ..ledger.queries import Reader

        _import_mlflow()  # before any work: a missing MLflow is one line naming the fix
        from tqdm import tqdm

        with Reader(ctx.obj["ledger"]) as r:
            ids = selected_runs(r, runs, sprint, all_runs)
            # a progress bar on a terminal, quiet off one (tqdm's disable=None)
            with tqdm(total=len(ids), unit="run", desc="export", disable=None, file=sys.stderr) as bar:
                stats = export_runs(
                    r, ids, tracking_uri, experiment, dry_run=dry_run, progress=lambda i, n, rid: bar.update(1)
                )
        click.echo(
            ("would send: " if dry_run else "")
            + f"{count(stats['created'], 'run')} created, {stats['updated']} updated, "
            f"{stats['skipped']} unchanged; {stats['points']:,} points"
            + ("" if dry_run else f" and {count(stats['files'], 'file')}")
            + f" sent to {tracking_uri} (experiment {experiment!r})"
        )

    return mlflow_cmd
