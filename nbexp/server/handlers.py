"""REST handlers: one route table, a base handler that turns errors into one JSON shape,
short authenticated verbs that call the ledger's queries and the analysis layer.

Every route sits behind Jupyter Server's auth (no token: 403); writes (PATCH) also need
XSRF when authenticated by cookie. No endpoint takes a file path; ids, sort keys and
filters are checked against fixed patterns and lists before any query runs.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tornado.ioloop
import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .. import errors
from ..analysis.metrics import is_ablation, rank_counts
from ..errors import InvalidArgument, LedgerError, NbexpError, RunNotFound
from ..ledger import connect, transaction
from ..ledger.queries import SORT_KEYS, STATUSES, Reader
from ..ledger.store import Store
from ..ledger.transactions import is_busy
from ..textfmt import jsonable

NAMESPACE = "nbexp"
RUN_ID = r"[0-9a-f]{6,12}"
_RUN_ID = re.compile(rf"^{RUN_ID}$")
_TAG = re.compile(r"^[\w.\-:/ ]{1,64}$")
MAX_COMPARE = 20
MAX_EXPORT = 1000
CHUNK = 1 << 20


RETRY_AFTER_S = 2


class LedgerBusy(tornado.web.HTTPError):
    """503 with ``Retry-After``: another process held the ledger's write lock past the busy timeout."""

    def __init__(self) -> None:
        super().__init__(503, "ledger busy: another process is writing it; retry in a moment")
        self.retry_after = RETRY_AFTER_S


def _busy(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the ledger's write lock held too long by another connection."""
    return isinstance(exc, errors.LedgerBusy) or is_busy(exc)


class DeathStamps:
    """When the server's poll first saw each dead kernel: per ledger, the sessions with runs still stored ``running``
    whose kernel is gone, each with a change stamp. Readers show those runs ``crashed`` though nothing wrote them,
    so their ``updated`` stays from before the death; the first poll that sees a kernel gone gives its death a stamp
    just past every stamp given so far, which the poll's cursor includes, and a poll ``since`` a cursor sends such a
    run only when its death is newer than the cursor: once to each poll cursor, not at every poll. Held by the server
    (its poll's business, not the ledger reader's), for the last :attr:`MAX_LEDGERS` ledgers it has shown."""

    MAX_LEDGERS = 64

    def __init__(self) -> None:
        self._stamps: dict[str, dict[str, float]] = {}  # ledger path -> session id -> the death's change stamp

    def stamps(self, reader: Reader) -> dict[str, float]:
        """The dead sessions of ``reader``'s ledger and their deaths' stamps (a session is forgotten once none of
        its runs is stored running)."""
        dead = reader.dead_sessions()
        key = str(reader.path)
        before = self._stamps.get(key, {})
        known = {sid: t for sid, t in before.items() if sid in dead}
        if dead - set(known):
            stamp = max([reader.change_cursor(), *before.values()]) + 1e-6  # after every cursor given so far
            known.update({sid: stamp for sid in dead - set(known)})
        if key not in self._stamps and len(self._stamps) >= self.MAX_LEDGERS:  # forget the oldest ledger
            self._stamps.pop(next(iter(self._stamps)))
        self._stamps[key] = known
        return known


class BaseHandler(APIHandler):
    """Errors as ``{"error": {"status": int, "message": str}}``; nbexp errors become 4xx."""

    @property
    def nbexp(self):
        return self.settings["nbexp_settings"]

    @property
    def deaths(self) -> DeathStamps:
        """The server's :class:`DeathStamps` (one per Jupyter server, shared by its requests)."""
        return self.settings.setdefault("nbexp_deaths", DeathStamps())

    def reader(self) -> Reader:
        path = self.nbexp.ledger_path()
        if not path.exists():
            raise tornado.web.HTTPError(404, reason=f"no ledger yet at {path}: run %nbexp track in a notebook")
        return Reader(path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = self._reason
        exc_info = kwargs.get("exc_info")
        if exc_info:
            exc = exc_info[1]
            if isinstance(exc, tornado.web.HTTPError) and exc.log_message:
                message = exc.log_message
            elif isinstance(exc, tornado.web.HTTPError) and exc.reason:
                message = exc.reason
            elif isinstance(exc, (NbexpError, ValueError)):
                message = str(exc)  # mapped to 4xx in _handle_request_exception
            elif not isinstance(exc, tornado.web.HTTPError):
                message = "internal error (see the server log)"
        if exc_info and isinstance(exc_info[1], LedgerBusy):
            self.set_header("Retry-After", str(exc_info[1].retry_after))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"status": status_code, "message": message}}))

    def _handle_request_exception(self, e: BaseException) -> None:
        status = (
            404
            if isinstance(e, RunNotFound)
            else 400
            if isinstance(e, (InvalidArgument, ValueError))
            else 503
            if isinstance(e, (LedgerError, NbexpError))
            else None
        )
        if status is None or self._finished:
            super()._handle_request_exception(e)
            return
        self.log.warning("nbexp: %s %s: %s", status, self.request.uri, e)
        self.send_error(status, exc_info=(type(e), e, e.__traceback__))

    def int_arg(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        if not raw.isdigit() or not lo <= int(raw) <= hi:
            raise tornado.web.HTTPError(400, f"{name} must be an integer from {lo} to {hi}; got {raw[:40]!r}")
        return int(raw)

    def run_id(self, raw: str) -> str:
        if not _RUN_ID.match(raw):
            raise tornado.web.HTTPError(400, f"malformed run id {raw[:40]!r}: 6 to 12 lowercase hex digits")
        return raw

    def run_ids_arg(self, lo: int, hi: int) -> list[str]:
        """The ``runs`` argument: ``lo`` to ``hi`` comma-separated run ids."""
        ids = [self.run_id(x) for x in self.get_argument("runs", "").split(",") if x]
        if not lo <= len(ids) <= hi:
            raise tornado.web.HTTPError(400, f"runs must list {lo} to {hi} run ids, comma-separated")
        return ids

    def send(self, obj: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(jsonable(obj)))


def run_row(r: Mapping[str, Any]) -> dict:
    keep = (
        "id",
        "name",
        "status",
        "sprint",
        "kind",
        "start_time",
        "end_time",
        "starred",
        "note",
        "tags",
        "error",
        "idle_hint",
        "gpu_util_mean",
        "updated",
        "params",
        "data",
    )
    row = {k: r.get(k) for k in keep}
    row["metrics"] = {k: v["last"] for k, v in r["metrics"].items()}
    if "sort_value" in r:  # the value of the runs table's sort field (GET runs?by=)
        row["sort_value"] = r["sort_value"]
    return row


def sprint_main_metric(reader: Reader, sprint: str, picked: str | None) -> tuple[str | None, list[str]]:
    """The sprint's main metric (the user's pick when the sprint has it, else its best-ranked metric) and its
    metrics best first: what the sidebar shows and the runs table's key columns start with. The sprint's, never a
    page's: a poll's page of running runs would flip it."""
    metrics = rank_counts(reader.sprint_metric_counts(sprint))
    return (picked if picked in metrics else (metrics[0] if metrics else None)), metrics


def param_sources(reader: Reader, run_id: str) -> dict[str, str]:
    """Where each of a run's params came from, as the ledger records it (``assign``, ``default``,
    ``config``, ``estimator``, ``torch``, ``explicit``): the run view groups its params by it."""
    return reader.param_sources(run_id)


class SprintsHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        with self.reader() as r:
            self.send({"sprints": r.sprints()})


class RunsHandler(BaseHandler):
    """The sidebar's runs: ``GET runs?sprint=&limit=&offset=&sort=&order=&status=&tag=&q=&since=&metric=``, and the
    runs table's view of them: ``query`` (the table's query language) keeps the runs it matches, ``by`` (a table
    field: ``metrics.auc``, ``params.C``, ``duration`` ...) orders them as the table does and gives each row its
    ``sort_value``. ``by`` orders a page (not ``since`` or ``q``, whose runs the sidebar merges into what it has).
    A query or field that does not parse answers 400 with its ``position``, as GET table does."""

    @tornado.web.authenticated
    def get(self) -> None:
        from ..ledger.query import MAX_QUERY, QueryError

        try:
            self._get(MAX_QUERY)
        except QueryError as e:
            self.set_status(400)
            self.send({"error": {"status": 400, "message": e.reason, "position": e.position, "argument": e.argument}})

    def _get(self, max_query: int) -> None:
        status = self.get_argument("status", None) or None
        if status is not None and status not in STATUSES:
            raise tornado.web.HTTPError(400, f"unknown status {status[:40]!r}: one of {', '.join(STATUSES)}")
        sort = self.get_argument("sort", "start_time")
        if sort not in SORT_KEYS:
            raise tornado.web.HTTPError(400, f"unknown sort key {sort[:40]!r}: one of {', '.join(SORT_KEYS)}")
        order = self.get_argument("order", "desc")
        if order not in ("asc", "desc"):
            raise tornado.web.HTTPError(400, "order must be asc or desc")
        tag = self.get_argument("tag", None) or None
        if tag is not None and not _TAG.match(tag):
            raise tornado.web.HTTPError(400, f"malformed tag {tag[:40]!r}")
        since_raw = self.get_argument("since", None)
        since = None
        if since_raw:
            try:
                since = float(since_raw)
            except ValueError:
                raise tornado.web.HTTPError(
                    400, f"since must be a change cursor (a number); got {since_raw[:40]!r}"
                ) from None
        search = self.get_argument("q", None) or None
        if search is not None and len(search) > 200:
            raise tornado.web.HTTPError(400, "q is at most 200 characters")
        metric = self.get_argument("metric", None) or None
        if metric is not None and len(metric) > 200:
            raise tornado.web.HTTPError(400, "metric is at most 200 characters")
        query = self.get_argument("query", None, strip=False) or None  # as typed: error positions count from it
        by = self.get_argument("by", None, strip=False) or None
        for name, value in (("query", query), ("by", by)):
            if value is not None and len(value) > max_query:
                raise tornado.web.HTTPError(400, f"{name} is at most {max_query} characters")
        limit = self.int_arg("limit", 200, 1, self.nbexp.max_page)
        offset = self.int_arg("offset", 0, 0, 10**9)
        sprint = self.get_argument("sprint", "today")
        with self.reader() as r:
            deaths = self.deaths.stamps(r)
            cursor = max([r.change_cursor(), *deaths.values()])  # a kernel's death is a change too
            main, metrics = sprint_main_metric(r, sprint, metric)
            if by is not None and since is None and search is None and status is None and tag is None:
                runs, total = _table_order(r, sprint, query, by, order == "desc", offset, limit)
            else:
                runs, total = r.query_runs(
                    sprint=sprint,
                    status=status,
                    tag=tag,
                    limit=limit,
                    offset=offset,
                    sort=sort,
                    descending=order == "desc",
                    since=since,
                    search=search,
                    query=query,
                )
            if since is not None:  # crashed at read time: changed when the death was seen, not at every poll
                kept = [
                    x
                    for x in runs
                    if x["status"] != "crashed" or (x["updated"] or 0) > since or deaths.get(x["session_id"], 0) > since
                ]
                total -= len(runs) - len(kept)
                runs = kept
            sync = r.sync_states()  # the live syncs to MLflow of the kernels writing this ledger
        self.send(
            {
                "runs": [run_row(x) for x in runs],
                "sync": sync,
                "total": total,
                "cursor": cursor,
                "main_metric": main,
                "metrics": metrics,
                "offset": offset,
                "limit": limit,
            }
        )


def _table_order(
    reader: Reader, sprint: str, query: str | None, by: str, descending: bool, offset: int, limit: int
) -> tuple[list[dict], int]:
    """A page of runs in the runs table's order (``by``, then newest first), each with its ``sort_value``, and
    the number of runs ``query`` matches."""
    from ..ledger.query import table

    page = table(
        reader,
        sprint=sprint,
        query=query,
        sort=by,
        descending=descending,
        offset=offset,
        limit=limit,
        columns=[by],
        with_columns=False,
    )
    column = page["columns"][0]
    values = {row["id"]: row["cells"].get(column) for row in page["rows"]}
    runs = reader.runs_by_id(list(values))
    for run in runs:
        run["sort_value"] = values[run["id"]]
    return runs, page["total"]


class RunHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self, run_id: str) -> None:
        with self.reader() as r:
            run = dict(r.run(self.run_id(run_id)))
            run["param_sources"] = param_sources(r, str(run["id"]))
        run["metric_summaries"] = run.pop("metrics")
        self.send(run)

    @tornado.web.authenticated
    def patch(self, run_id: str) -> None:
        """Edit a run: ``{"starred": bool, "name": str, "note": str, "add_tags": [...], "remove_tags": [...]}``."""
        rid = self.run_id(run_id)
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: arrays or objects nested too deep
            raise tornado.web.HTTPError(400, "the body must be a JSON object (flat: fields as documented)") from None
        if not isinstance(body, dict) or not body:
            raise tornado.web.HTTPError(400, "the body must be a non-empty JSON object")
        unknown = set(body) - {"starred", "name", "note", "add_tags", "remove_tags"}
        if unknown:
            raise tornado.web.HTTPError(400, f"unknown fields: {', '.join(sorted(unknown))[:200]}")
        edit: dict[str, Any] = {}
        if "starred" in body:
            if not isinstance(body["starred"], bool):
                raise tornado.web.HTTPError(400, "starred must be true or false")
            edit["starred"] = body["starred"]
        for field, limit in (("name", 200), ("note", 4000)):
            if field in body:
                value = body[field]
                if value is not None and (not isinstance(value, str) or len(value) > limit):
                    raise tornado.web.HTTPError(400, f"{field} must be text of at most {limit} characters")
                edit[field] = value
        for field in ("add_tags", "remove_tags"):
            tags = body.get(field, [])
            if not isinstance(tags, list) or not all(isinstance(t, str) and _TAG.match(t) for t in tags):
                raise tornado.web.HTTPError(400, f"{field} must be a list of short tags (letters, digits, .-:/ )")
            edit[field] = tags
        with self.reader() as r:
            if not r.has_run(rid):
                raise RunNotFound(f"no run {rid}")
        from ..capture.secrets import scrub_text

        try:
            conn = connect(self.nbexp.ledger_path())
        except LedgerError as exc:
            if _busy(exc) or _busy(exc.__context__) or _busy(exc.__cause__):  # the SQLite error connect() wraps
                raise LedgerBusy() from None
            raise
        try:
            with transaction(conn):
                Store(conn, scrub=scrub_text).edit_run(rid, **edit)
        except BaseException as exc:
            if _busy(exc):
                raise LedgerBusy() from None
            raise
        finally:
            conn.close()
        with self.reader() as r:
            row = r.run(rid)
        self.send(run_row(row))


class CompareHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        """``runs`` to compare; optional ``metric`` (for parallel coordinates and the scatter), ``params``
        (comma-separated, the parallel coordinates' axes), ``x`` (the scatter's param) and ``baseline``
        (one of the compared runs: deltas are against it)."""
        ids = self.run_ids_arg(2, MAX_COMPARE)
        metric = self.get_argument("metric", None) or None
        if metric is not None and not metric.isidentifier():
            raise tornado.web.HTTPError(400, f"malformed metric name {metric[:40]!r}")
        raw = self.get_argument("params", None)
        params = [p for p in raw.split(",") if p] if raw is not None else None
        x_param = self.get_argument("x", None) or None
        for name in (params or []) + ([x_param] if x_param else []):
            if len(name) > 200 or not name.isprintable():
                raise tornado.web.HTTPError(400, f"malformed param name {name[:40]!r}")
        baseline = self.get_argument("baseline", None) or None
        if baseline is not None:
            baseline = self.run_id(baseline)
        from ..analysis.compare import compare_runs
        from ..figures import compare_figures

        with self.reader() as r:
            c = compare_runs(r, ids, baseline=baseline)
            figs = compare_figures(r, c, metric, params=params, x_param=x_param)
        self.send({**c, **figs})


class RunFiguresHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self, run_id: str) -> None:
        """A run's charts (a chart per metric, its system timeline) and the best run of its sprint."""
        from ..analysis.compare import best_in_sprint
        from ..figures import run_figures

        with self.reader() as r:
            run = r.run(self.run_id(run_id))
            figs = run_figures(r, run["id"])
            best = best_in_sprint(r, run)
        self.send({"run": run["id"], "figures": figs, "best": best})


class ExplainHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        """Why the second run scores differently from the first (``runs=A,B``, optional ``metric``): the ranked
        factors of ``nbexp explain``, and the stored ablation of the pair when one ran (the server replays
        nothing: ``nbexp explain --ablate`` does)."""
        a, b = self.run_ids_arg(2, 2)
        metric = self.get_argument("metric", None)
        if metric is not None and not metric.isidentifier():
            raise tornado.web.HTTPError(400, f"malformed metric name {metric[:40]!r}")
        from ..analysis.ablation import stored
        from ..analysis.explain import explain

        with self.reader() as r:
            ex = explain(r, a, b, metric)
            self.send(stored(r, ex["a"], ex["b"], ex["metric"]) or ex)


class ImportanceHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        """The params of a sprint's runs (``sprint``, default today; ``all``; or ``run``: that run's sprint) ranked
        by importance for ``metric`` (default: the main metric): random-forest importance and Spearman correlation."""
        sprint = self.get_argument("sprint", "today")
        metric = self.get_argument("metric", None)
        if metric is not None and not metric.isidentifier():
            raise tornado.web.HTTPError(400, f"malformed metric name {metric[:40]!r}")
        run = self.get_argument("run", None)  # the sprint of this run (the compare view's)
        if run is not None:
            run = self.run_id(run)
        with self.reader() as r:  # 404 here when there is no ledger yet
            path = r.path

        def work() -> dict:
            from ..analysis.explain import importance
            from ..analysis.metrics import main_metric
            from ..ledger.queries import Reader

            with Reader(path) as r:
                name = r.run(run)["sprint"] if run is not None else sprint
                runs = [x for x in r.list_runs(sprint=name) if not is_ablation(x)]
            chosen = metric or main_metric(runs)
            if chosen is None:
                raise InvalidArgument(f"no run of sprint {name!r} has a metric")
            return importance(runs, chosen)

        # scikit-learn's import and the forest take seconds: in a thread, so the lab's other requests
        # (the sidebar's poll, the runs table's pages) are answered meanwhile
        self.send(await tornado.ioloop.IOLoop.current().run_in_executor(None, work))


class ExportHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        """The listed runs as a bundle file, for ``nbexp import`` on another machine."""
        ids = self.run_ids_arg(1, MAX_EXPORT)
        from ..export.bundle import export_bundle

        with self.reader() as r:
            ids = list(dict.fromkeys(r.resolve(x) for x in ids))  # unknown ids: 404 before any file
            sprints = r.sprints_of(ids)
            path = r.path
        name = f"nbexp-{sprints[0] if len(sprints) == 1 else 'runs'}-{len(ids)}-run{'' if len(ids) == 1 else 's'}.nbexp"
        with tempfile.TemporaryDirectory(prefix="nbexp-export-") as tmp:
            bundle = Path(tmp) / name
            src = connect(path)
            try:
                export_bundle(src, ids, bundle)
            finally:
                src.close()
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            self.set_header("Content-Length", str(bundle.stat().st_size))
            with bundle.open("rb") as f:
                while chunk := f.read(CHUNK):
                    self.write(chunk)
        self.finish(set_content_type="application/octet-stream")


class OutputsHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self, run_id: str) -> None:
        """What a run's cells showed (per cell: kind, mime, size, hash) and its artifacts; content at ``blobs/HASH``."""
        with self.reader() as r:
            rid = r.resolve(self.run_id(run_id))
            self.send({"run": rid, "cells": r.outputs(rid), "artifacts": r.artifacts(rid)})


# the types a blob is served as: images as themselves, plotly figures as JSON, every other text as
# plain text (an HTML output is never rendered from the Jupyter origin), anything else as a download
INLINE_TYPES = {
    "image/png": "image/png",
    "image/jpeg": "image/jpeg",
    "application/vnd.plotly.v1+json": "application/json",
    "text/html": "text/plain; charset=utf-8",
    "text/plain": "text/plain; charset=utf-8",
}


class BlobHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self, digest: str) -> None:
        """Stored content by SHA-256, served so that a browser never runs it: see :data:`INLINE_TYPES`,
        ``nosniff`` and a sandboxing content security policy."""
        with self.reader() as r:
            blob = r.blob(digest)
        if blob is None:
            raise tornado.web.HTTPError(404, f"no stored content {digest[:16]}...")
        kind = INLINE_TYPES.get(blob["mime"])
        if kind is None:
            kind = "application/octet-stream"
            self.set_header("Content-Disposition", f'attachment; filename="{digest[:16]}"')
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox; default-src 'none'")
        self.set_header("Cache-Control", "private, max-age=86400, immutable")  # content never changes
        self.finish(blob["data"], set_content_type=kind)


class TableHandler(BaseHandler):
    """The runs table: ``GET table?sprint=&q=&sort=&order=&offset=&limit=&columns=&group=&metric=``. Without
    ``columns``, the sprint's key columns: its main metric (``metric``, the sidebar's pick) and the params that vary.
    A query, sort, group or column that does not parse answers 400 with the error's ``position`` (0-based) for the
    UI."""

    @tornado.web.authenticated
    def get(self) -> None:
        from ..ledger.query import MAX_QUERY, QueryError, table

        order = self.get_argument("order", "desc")
        if order not in ("asc", "desc"):
            raise tornado.web.HTTPError(400, "order must be asc or desc")
        # not stripped: an error's position counts from the text as typed
        text = {k: self.get_argument(k, None, strip=False) or None for k in ("q", "sort", "columns", "group")}
        for k, v in text.items():
            if v is not None and len(v) > MAX_QUERY:
                raise tornado.web.HTTPError(400, f"{k} is at most {MAX_QUERY} characters")
        limit = self.int_arg("limit", 100, 1, 1000)
        offset = self.int_arg("offset", 0, 0, 10**9)
        metric = self.get_argument("metric", None) or None
        if metric is not None and len(metric) > 200:
            raise tornado.web.HTTPError(400, "metric is at most 200 characters")
        sprint = self.get_argument("sprint", "today")
        try:
            with self.reader() as r:
                page = table(
                    r,
                    sprint=sprint,
                    metric=sprint_main_metric(r, sprint, metric)[0] if text["columns"] is None else None,
                    query=text["q"],
                    sort=text["sort"],
                    descending=order == "desc",
                    offset=offset,
                    limit=limit,
                    columns=text["columns"],
                    group=text["group"],
                    with_columns=self.get_argument("available", "1") != "0",
                )
        except QueryError as e:
            self.set_status(400)
            self.send({"error": {"status": 400, "message": e.reason, "position": e.position, "argument": e.argument}})
            return
        self.send(page)


class PingHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        from .. import __version__

        self.send({"nbexp": __version__, "ledger": str(self.nbexp.ledger_path())})


def routes(base_url: str) -> list[tuple[str, type]]:
    api = url_path_join(base_url, NAMESPACE, "api")
    return [
        (url_path_join(api, "ping"), PingHandler),
        (url_path_join(api, "sprints"), SprintsHandler),
        (url_path_join(api, "runs"), RunsHandler),
        (url_path_join(api, "runs", r"([^/]+)"), RunHandler),
        (url_path_join(api, "runs", r"([^/]+)", "outputs"), OutputsHandler),
        (url_path_join(api, "runs", r"([^/]+)", "figures"), RunFiguresHandler),
        (url_path_join(api, "blobs", r"([0-9a-f]{64})"), BlobHandler),
        (url_path_join(api, "compare"), CompareHandler),
        (url_path_join(api, "export"), ExportHandler),
        (url_path_join(api, "explain"), ExplainHandler),
        (url_path_join(api, "importance"), ImportanceHandler),
        (url_path_join(api, "table"), TableHandler),
    ]


def setup_handlers(web_app: Any, settings: Any) -> None:
    web_app.settings["nbexp_settings"] = settings
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))
