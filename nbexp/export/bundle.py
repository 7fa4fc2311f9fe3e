"""Portable bundles: runs in one self-describing SQLite file.

A bundle is an nbexp ledger file (same schema, same migrations) that holds only the chosen
runs and what they refer to (sessions, params, metric points and summaries, cells and their
code, environments, data summaries, tags, events, system samples), plus a ``bundle_manifest``
table: format, nbexp and schema versions, the run ids, and a SHA-256 of every table's rows.

``nbexp import`` checks the manifest and the checksum, then merges: a run already in the
target (same id, session and start time) is skipped, so importing twice changes nothing; a run
or session whose id is taken by another one is given a fresh id, so ids never collide.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InvalidArgument, LedgerError, NbexpError
from ..ledger import connect
from ..ledger.schema import SCHEMA_VERSION

FORMAT = "nbexp-bundle/1"
# tables copied per run (by run_id), and what links the rest
RUN_TABLES = ("params", "metrics", "metric_summaries", "run_tags", "run_data", "events")


class BundleError(NbexpError):
    """A file that is not a usable nbexp bundle; the message says why."""


def _columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name != 'bundle_manifest' ORDER BY name")]


def checksum(conn: sqlite3.Connection) -> str:
    """SHA-256 over every table's rows in a fixed order."""
    h = hashlib.sha256()
    for table in _tables(conn):
        cols = _columns(conn, table)
        h.update(f"\x1e{table}\x1f{','.join(cols)}".encode())
        order = ", ".join(f'"{c}"' for c in cols)
        for row in conn.execute(f'SELECT {order} FROM "{table}" ORDER BY {order}'):
            h.update(json.dumps(row, default=repr).encode())
    return h.hexdigest()


def export_bundle(source: sqlite3.Connection, run_ids: list[str], path: str | Path, overwrite: bool = False) -> dict:
    """Write the runs ``run_ids`` of ``source`` (a ledger connection) to the bundle ``path``.

    Returns:
        ``{"path", "runs", "points", "bytes"}``.
    """
    path = Path(path)
    if not run_ids:
        raise InvalidArgument("nothing to export: no run matches")
    if path.exists():
        if not overwrite:
            raise InvalidArgument(f"{path} exists: pass --force to replace it")
        path.unlink()
    tmp = path.with_name(path.name + ".partial")
    tmp.unlink(missing_ok=True)
    out = connect(tmp)
    try:
        out.execute("ATTACH DATABASE ? AS src", (str(_db_path(source)),))
        out.execute("BEGIN")
        out.execute("CREATE TEMP TABLE chosen (id TEXT PRIMARY KEY)")
        out.executemany("INSERT OR IGNORE INTO chosen VALUES (?)", [(r,) for r in run_ids])

        def copy(table: str, where: str) -> None:
            cols = ", ".join(f'"{c}"' for c in _columns(out, table) if c in _columns(out, table, "src"))
            out.execute(f'INSERT OR IGNORE INTO main."{table}" ({cols}) SELECT {cols} FROM src."{table}" WHERE {where}')

        copy("runs", "id IN (SELECT id FROM chosen)")
        copy("sessions", "id IN (SELECT session_id FROM main.runs)")
        copy("sprints", "id IN (SELECT sprint FROM main.runs)")
        copy("environments", "id IN (SELECT env_id FROM main.sessions)")
        for table in RUN_TABLES:
            copy(table, "run_id IN (SELECT id FROM chosen)")
        copy("cells", "session_id IN (SELECT session_id FROM main.runs)")
        copy("code", "hash IN (SELECT code_hash FROM main.cells)")
        copy("datasets", "fingerprint IN (SELECT fingerprint FROM main.run_data)")
        for table in ("host_samples", "gpu_samples"):
            copy(table, "EXISTS (SELECT 1 FROM main.runs r WHERE r.session_id = src.%s.session_id AND "
                        "src.%s.time BETWEEN r.start_time AND coalesce(r.end_time, 1e18))" % (table, table))
        out.execute("COMMIT")
        out.execute("DETACH DATABASE src")
        points = out.execute("SELECT count(*) FROM metrics").fetchone()[0]
        out.execute("CREATE TABLE bundle_manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        manifest = {"format": FORMAT, "nbexp_version": __version__, "schema_version": str(SCHEMA_VERSION),
                    "created": str(time.time()), "runs": json.dumps(sorted(set(run_ids))),
                    "checksum": checksum(out)}
        out.executemany("INSERT INTO bundle_manifest VALUES (?, ?)", manifest.items())
        out.execute("PRAGMA journal_mode = DELETE")       # one self-contained file, no -wal beside it
    finally:
        out.close()
    tmp.replace(path)
    return {"path": str(path), "runs": len(set(run_ids)), "points": points, "bytes": path.stat().st_size}


def _db_path(conn: sqlite3.Connection) -> str:
    return conn.execute("PRAGMA database_list").fetchone()[2]


def open_bundle(path: str | Path) -> tuple[sqlite3.Connection, dict[str, str]]:
    """A read-only connection to a checked bundle and its manifest.

    Raises:
        BundleError: missing, truncated, corrupted (checksum), not a bundle, or from a newer nbexp.
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"no bundle at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'bundle_manifest'").fetchone():
            raise BundleError(f"{path} is an SQLite file but not an nbexp bundle (no manifest)")
        manifest = dict(conn.execute("SELECT key, value FROM bundle_manifest"))
        if manifest.get("format") != FORMAT:
            raise BundleError(f"{path}: unknown bundle format {manifest.get('format')!r}")
        version = int(manifest.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise BundleError(f"{path} was written by a newer nbexp (schema {version}, this one knows "
                              f"{SCHEMA_VERSION}): upgrade nbexp to import it")
        if version < SCHEMA_VERSION:
            raise BundleError(f"{path} has schema {version}; re-export it with this nbexp ({SCHEMA_VERSION})")
        if checksum(conn) != manifest.get("checksum"):
            raise BundleError(f"{path} is corrupted: its content does not match its checksum")
        return conn, manifest
    except sqlite3.DatabaseError as exc:
        raise BundleError(f"{path} is not a readable nbexp bundle (truncated or not SQLite: {exc})") from None


def import_bundle(path: str | Path, ledger: str | Path | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Merge the bundle at ``path`` into ``ledger``; all or nothing.

    Returns:
        ``{"runs_added", "runs_skipped", "runs_renamed", "points"}``.
    """
    src, manifest = open_bundle(path)
    try:
        dst = connect(ledger)
    except LedgerError:
        src.close()
        raise
    stats = {"runs_added": 0, "runs_skipped": 0, "runs_renamed": 0, "points": 0}
    try:
        dst.execute("BEGIN IMMEDIATE")
        # sessions: same id and start -> the same session; same id, other session -> a fresh id
        session_map: dict[str, str] = {}
        for sid, host, started in src.execute("SELECT id, host, started FROM sessions"):
            mine = dst.execute("SELECT host, started FROM sessions WHERE id = ?", (sid,)).fetchone()
            if mine is None or (mine[0], mine[1]) == (host, started):
                session_map[sid] = sid
            else:
                session_map[sid] = _fresh(dst, "sessions", 4)
        run_map: dict[str, str] = {}
        new_runs = []
        for rid, sid, start in src.execute("SELECT id, session_id, start_time FROM runs"):
            mine = dst.execute("SELECT session_id, start_time FROM runs WHERE id = ?", (rid,)).fetchone()
            if mine is not None and mine == (session_map[sid], start):
                stats["runs_skipped"] += 1
                continue
            run_map[rid] = rid if mine is None else _fresh(dst, "runs", 3)
            stats["runs_renamed"] += mine is not None
            new_runs.append(rid)
        stats["runs_added"] = len(new_runs)
        for table in ("sprints", "environments", "code", "datasets"):
            _copy(src, dst, table, None, {})
        _copy(src, dst, "sessions", "id IN (SELECT session_id FROM runs WHERE id IN ({ids}))", {"id": session_map},
              new_runs)
        _copy(src, dst, "runs", "id IN ({ids})", {"id": run_map, "session_id": session_map,
                                                   "replay_of": run_map}, new_runs)
        for table in RUN_TABLES:
            n = _copy(src, dst, table, "run_id IN ({ids})", {"run_id": run_map, "session_id": session_map}, new_runs,
                      drop=("id",) if table == "events" else ())
            if table == "metrics":
                stats["points"] = n
        new_sessions = {session_map[s] for (s,) in src.execute(
            f"SELECT DISTINCT session_id FROM runs WHERE id IN ({','.join('?' * len(new_runs))})", new_runs)} \
            if new_runs else set()
        fresh_sessions = [s for s, mapped in session_map.items() if mapped in new_sessions and not dst.execute(
            "SELECT 1 FROM cells WHERE session_id = ? LIMIT 1", (mapped,)).fetchone()]
        for table in ("cells", "host_samples", "gpu_samples"):
            _copy(src, dst, table, "session_id IN ({ids})", {"session_id": session_map,
                                                             "run_id": run_map}, fresh_sessions, drop=("id",))
        if dry_run:
            dst.execute("ROLLBACK")
        else:
            dst.execute("COMMIT")
    except BaseException:
        dst.execute("ROLLBACK")
        raise
    finally:
        src.close()
        dst.close()
    return stats


def _fresh(dst: sqlite3.Connection, table: str, nbytes: int) -> str:
    while True:
        candidate = secrets.token_hex(nbytes)
        if not dst.execute(f"SELECT 1 FROM {table} WHERE id = ?", (candidate,)).fetchone():
            return candidate


def _copy(src, dst, table: str, where: str | None, remap: dict[str, dict[str, str]], ids: list[str] | None = None,
          drop: tuple[str, ...] = ()) -> int:
    """Copy rows of ``table`` (optionally only ``where``), renaming ids through ``remap``;
    ``drop`` leaves out columns the target assigns itself (INTEGER PRIMARY KEY)."""
    if ids is not None and not ids:
        return 0
    cols = [c for c in _columns(src, table) if c in _columns(dst, table) and c not in drop]
    sql = "SELECT " + ", ".join(f'"{c}"' for c in cols) + f' FROM "{table}"'
    args: list[Any] = []
    if where:
        sql += " WHERE " + where.format(ids=",".join("?" * len(ids or [])))
        args = list(ids or [])
    idx = {c: i for i, c in enumerate(cols)}
    rows = []
    for row in src.execute(sql, args):
        row = list(row)
        for col, mapping in remap.items():
            if col in idx and row[idx[col]] in mapping:
                row[idx[col]] = mapping[row[idx[col]]]
        rows.append(row)
    quoted = ", ".join(f'"{c}"' for c in cols)
    dst.executemany(f'INSERT OR IGNORE INTO "{table}" ({quoted}) VALUES ({",".join("?" * len(cols))})', rows)
    return len(rows)


def cli():
    """The ``nbexp export bundle`` command (registered through the ``nbexp.exporters`` entry points)."""
    import click

    from .select import select_options, selected_runs

    @click.command("bundle")
    @click.argument("file", type=click.Path(dir_okay=False))
    @select_options
    @click.option("--force", is_flag=True, help="replace FILE if it exists")
    @click.pass_context
    def bundle_cmd(ctx, file, runs, sprint, all_runs, force):
        """Write runs to one portable bundle FILE (a self-describing SQLite file with checksums)."""
        from ..ledger import connect as open_ledger
        from ..ledger.queries import Reader

        with Reader(ctx.obj["ledger"]) as r:
            ids = selected_runs(r, runs, sprint, all_runs)
            src = open_ledger(r.path)
        try:
            info = export_bundle(src, ids, file, overwrite=force)
        finally:
            src.close()
        click.echo(f"wrote {info['path']}: {info['runs']} runs, {info['points']:,} points, {info['bytes']:,} bytes")

    return bundle_cmd

