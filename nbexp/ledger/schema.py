"""Ledger schema as numbered migrations, applied under ``PRAGMA user_version``.

Each entry of :data:`MIGRATIONS` moves the schema one version up. Never edit a
migration that has shipped: append a new one.
"""

from __future__ import annotations

import sqlite3
import sys
import time

from ..errors import SchemaTooNewError
from .transactions import transaction

# A run's status, as stored in ``runs.status``: the one definition every module imports.
# ``crashed`` is written for a run whose kernel died, when the next session on that host and pid
# starts; readers also show a ``running`` run whose kernel is gone as crashed, writing nothing.
RUNNING, FINISHED, FAILED, INTERRUPTED, CRASHED = "running", "finished", "failed", "interrupted", "crashed"
RUN_STATUSES = (RUNNING, FINISHED, FAILED, INTERRUPTED, CRASHED)
# A cell execution's status, in ``cells.status``: ``running`` from its start until it ends (it stays
# so for the cell a dead kernel was in), then ok, error or interrupted.
CELL_STATUSES = ("running", "ok", "error", "interrupted")

# the tables whose rows make a run's line of the frame of nbexp.runs(), with the column naming the run: migration 15
# logs each write to them in frame_changes (see FRAME_CHANGE_TRIGGERS)
_FRAME_CHANGE_TABLES = {"runs": "id", "params": "run_id", "metric_summaries": "run_id", "run_data": "run_id"}


def _frame_change_triggers() -> str:
    """Migration 15's triggers: each insert, update or delete on a table of :data:`_FRAME_CHANGE_TABLES` adds one to
    the change sequence and upserts it as the run's (both runs of an update that moves a row)."""
    out = []
    for table, column in _FRAME_CHANGE_TABLES.items():
        for op, rows in (("insert", ("NEW",)), ("update", ("OLD", "NEW")), ("delete", ("OLD",))):
            logs = "".join(
                f"""
        INSERT INTO frame_changes (run_id, seq) SELECT {row}.{column}, seq FROM frame_stamp WHERE true
            ON CONFLICT (run_id) DO UPDATE SET seq = excluded.seq;"""
                for row in rows
            )
            out.append(
                f"""
    CREATE TRIGGER frame_changes_{table}_{op} AFTER {op.upper()} ON {table} BEGIN
        UPDATE frame_stamp SET seq = seq + 1;{logs}
    END;"""
            )
    return "".join(out).lstrip() + "\n    "


MIGRATIONS: list[str] = [
    # 1: sessions, runs, params, metrics, code, cells, environments, events
    """
    CREATE TABLE sprints (
        id TEXT PRIMARY KEY,          -- local date, the day turning at 04:00
        name TEXT,
        hypothesis TEXT,
        conclusion TEXT
    );
    CREATE TABLE environments (
        id TEXT PRIMARY KEY,          -- hash of the installed distributions
        packages TEXT NOT NULL        -- JSON {name: version}
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        name TEXT,
        sprint TEXT,
        host TEXT,
        pid INTEGER,
        pid_started REAL,             -- process create time, guards against pid reuse
        started REAL,
        ended REAL,
        heartbeat REAL,
        python TEXT,
        platform TEXT,
        nbexp_version TEXT,
        notebook TEXT,
        kernel_id TEXT,
        git_commit TEXT,
        git_dirty INTEGER,
        cuda TEXT,
        env_id TEXT
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        sprint TEXT NOT NULL,
        name TEXT,
        kind TEXT,                    -- track | new | rerun | cell | context
        status TEXT NOT NULL,         -- running finished failed interrupted crashed
        start_time REAL NOT NULL,
        end_time REAL,
        error TEXT,
        note TEXT,
        starred INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_sprint ON runs(sprint, start_time);
    CREATE INDEX runs_session ON runs(session_id);
    CREATE TABLE run_tags (
        run_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (run_id, tag)
    );
    CREATE TABLE params (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT,                   -- JSON, so 0.1 and "0.1" stay different
        type TEXT NOT NULL,           -- int float bool str none list dict
        source TEXT,                  -- assign config estimator torch explicit
        PRIMARY KEY (run_id, key)
    );
    CREATE TABLE metrics (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        step INTEGER,
        value REAL,                   -- NULL stands for NaN (SQLite stores NaN as NULL)
        wall REAL NOT NULL
    );
    CREATE INDEX metrics_run ON metrics(run_id, key, step);
    CREATE TABLE code (
        hash TEXT PRIMARY KEY,
        source TEXT NOT NULL
    );
    CREATE TABLE cells (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        run_id TEXT,
        cell_key TEXT NOT NULL,       -- Jupyter cell id, else the code hash
        execution_count INTEGER,
        code_hash TEXT NOT NULL,
        start REAL NOT NULL,
        duration REAL,
        status TEXT NOT NULL,         -- ok error interrupted
        n_points INTEGER NOT NULL DEFAULT 0,  -- metric points the cell produced in its run
        error_type TEXT,
        error_message TEXT
    );
    CREATE INDEX cells_session ON cells(session_id, start);
    CREATE INDEX cells_run ON cells(run_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session_id TEXT,
        run_id TEXT,
        time REAL NOT NULL,
        level TEXT NOT NULL,          -- warning | info
        cause TEXT NOT NULL,
        message TEXT NOT NULL
    );
    """,
    # 2: system usage: samples per tick, aggregates per cell and per run
    """
    ALTER TABLE sessions ADD COLUMN gpus TEXT;          -- JSON [{index, name, uuid, mem_total_mb}]
    ALTER TABLE sessions ADD COLUMN driver TEXT;
    ALTER TABLE sessions ADD COLUMN system_note TEXT;   -- e.g. why there is no GPU data
    ALTER TABLE sessions ADD COLUMN sample_hz REAL;
    CREATE TABLE host_samples (
        session_id TEXT NOT NULL,
        time REAL NOT NULL,
        proc_cpu REAL,                -- percent of one core
        proc_rss_mb REAL,
        proc_threads INTEGER,
        sys_cpu REAL,                 -- percent of all cores
        sys_mem REAL                  -- percent of memory used
    );
    CREATE INDEX host_samples_time ON host_samples(session_id, time);
    CREATE TABLE gpu_samples (
        session_id TEXT NOT NULL,
        time REAL NOT NULL,
        gpu INTEGER NOT NULL,         -- NVML index
        util REAL, mem_util REAL, mem_used_mb REAL, mem_total_mb REAL,
        power_w REAL, power_limit_w REAL, temp_c REAL, sm_clock_mhz REAL,
        proc_mem_mb REAL              -- this process's GPU memory
    );
    CREATE INDEX gpu_samples_time ON gpu_samples(session_id, time);
    ALTER TABLE cells ADD COLUMN cpu_mean REAL;
    ALTER TABLE cells ADD COLUMN rss_peak_mb REAL;
    ALTER TABLE cells ADD COLUMN gpu_util_mean REAL;
    ALTER TABLE cells ADD COLUMN gpu_util_max REAL;
    ALTER TABLE cells ADD COLUMN gpu_mem_peak_mb REAL;
    ALTER TABLE cells ADD COLUMN energy_wh REAL;
    ALTER TABLE cells ADD COLUMN torch_mem_peak_mb REAL;
    ALTER TABLE cells ADD COLUMN torch_reserved_peak_mb REAL;
    ALTER TABLE cells ADD COLUMN idle_hint TEXT;
    ALTER TABLE runs ADD COLUMN cpu_mean REAL;
    ALTER TABLE runs ADD COLUMN rss_peak_mb REAL;
    ALTER TABLE runs ADD COLUMN gpu_util_mean REAL;
    ALTER TABLE runs ADD COLUMN gpu_util_max REAL;
    ALTER TABLE runs ADD COLUMN gpu_mem_peak_mb REAL;
    ALTER TABLE runs ADD COLUMN energy_wh REAL;
    ALTER TABLE runs ADD COLUMN gpu_count INTEGER;
    ALTER TABLE runs ADD COLUMN idle_hint TEXT;
    """,
    # 3: data summaries, stored once per content fingerprint, linked to runs by variable name
    """
    CREATE TABLE datasets (
        fingerprint TEXT PRIMARY KEY,
        kind TEXT NOT NULL,           -- dataframe series ndarray tensor
        shape TEXT,                   -- JSON
        exact_fingerprint INTEGER NOT NULL DEFAULT 1,
        sampled INTEGER NOT NULL DEFAULT 0,
        summary TEXT NOT NULL,        -- JSON, see nbexp/capture/data.py
        created REAL NOT NULL
    );
    CREATE TABLE run_data (
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,           -- the variable name in the notebook
        fingerprint TEXT NOT NULL,
        role TEXT,                    -- label | features
        time REAL NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    CREATE INDEX run_data_fingerprint ON run_data(fingerprint);
    """,
    # 4: a change stamp per run, kept by triggers, so the sidebar can fetch only what changed
    """
    ALTER TABLE runs ADD COLUMN updated REAL;
    UPDATE runs SET updated = coalesce(end_time, start_time);
    CREATE INDEX runs_updated ON runs(updated);
    CREATE TRIGGER runs_stamp_insert AFTER INSERT ON runs BEGIN
        UPDATE runs SET updated = (julianday('now') - 2440587.5) * 86400.0 WHERE id = NEW.id;
    END;
    CREATE TRIGGER runs_stamp_update AFTER UPDATE OF status, end_time, name, note, starred, error, idle_hint
        ON runs BEGIN
        UPDATE runs SET updated = (julianday('now') - 2440587.5) * 86400.0 WHERE id = NEW.id;
    END;
    CREATE TRIGGER run_tags_stamp_insert AFTER INSERT ON run_tags BEGIN
        UPDATE runs SET updated = (julianday('now') - 2440587.5) * 86400.0 WHERE id = NEW.run_id;
    END;
    CREATE TRIGGER run_tags_stamp_delete AFTER DELETE ON run_tags BEGIN
        UPDATE runs SET updated = (julianday('now') - 2440587.5) * 86400.0 WHERE id = OLD.run_id;
    END;
    """,
    # 5: metric summaries kept by the writer at each flush, so listings never scan the points
    """
    CREATE TABLE metric_summaries (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        count INTEGER NOT NULL,
        nan_count INTEGER NOT NULL,
        min REAL,
        max REAL,
        last REAL,                    -- the value at the highest step (NULL: NaN)
        last_step INTEGER,
        PRIMARY KEY (run_id, key)
    );
    INSERT INTO metric_summaries (run_id, key, count, nan_count, min, max, last, last_step)
        SELECT m.run_id, m.key, a.n, a.nans, a.lo, a.hi, m.value, m.step
        FROM (SELECT run_id, key, count(*) AS n, sum(value IS NULL) AS nans, min(value) AS lo, max(value) AS hi,
                     max(step) AS top FROM metrics GROUP BY run_id, key) a
        JOIN metrics m ON m.run_id = a.run_id AND m.key = a.key AND m.step IS a.top
        GROUP BY m.run_id, m.key;
    """,
    # 6: replays point at the run they reproduce
    """
    ALTER TABLE runs ADD COLUMN replay_of TEXT;
    """,
    # 7: where a metric nbexp found came from (no row: logged with nbexp.log), and the result tables a
    # run kept (a search's cv_results_): columns and rows as JSON
    """
    CREATE TABLE metric_sources (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        source TEXT NOT NULL,         -- namespace stdout result keras sklearn xgboost lightgbm
        PRIMARY KEY (run_id, key)
    );
    CREATE TABLE run_tables (
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        source TEXT,
        columns TEXT NOT NULL,        -- JSON list of column names
        rows TEXT NOT NULL,           -- JSON list of rows, each a list of plain values
        PRIMARY KEY (run_id, name)
    );
    """,
    # 8: what cells showed and the files a run logged: content stored once per SHA-256 (blobs), referenced
    # per cell execution (cell_outputs, keyed like cells: session, start, cell key) and per run (artifacts)
    """
    CREATE TABLE blobs (
        hash TEXT PRIMARY KEY,        -- SHA-256 of data, hex
        mime TEXT NOT NULL,           -- as first stored
        size INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE cell_outputs (
        session_id TEXT NOT NULL,
        cell_key TEXT NOT NULL,
        start REAL NOT NULL,          -- the cell execution's start (cells.start)
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,         -- order within the cell
        kind TEXT NOT NULL,           -- display | result | stdout
        mime TEXT NOT NULL,
        hash TEXT NOT NULL,           -- blobs.hash
        size INTEGER NOT NULL,
        PRIMARY KEY (session_id, start, cell_key, seq)
    );
    CREATE INDEX cell_outputs_run ON cell_outputs(run_id);
    CREATE TABLE artifacts (
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT,                    -- the file as logged; NULL for an object
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        stored INTEGER NOT NULL,      -- 1: its bytes are in blobs (hash = sha256)
        time REAL NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    """,
    # 9: the ledger as sqlite-utils and datasette read it: views with readable times and the status readers
    # show, and full-text search (FTS5, trigram: any substring of 3+ characters, case-insensitive) over run
    # names, notes, statuses, tags, params and cell code, kept by triggers and filled from the rows already there.
    # The FTS tables and triggers for runs, run_tags and code are the SQL sqlite-utils 4.2 writes for
    # ``db[table].enable_fts(columns, tokenize="trigram", create_triggers=True)`` (so ``sqlite-utils search``
    # and datasette find them), with runs' update trigger narrowed to the indexed columns (the change stamp
    # updates runs at every write). params_fts keeps its own copy: the writer replaces a changed param
    # (INSERT OR REPLACE), which fires no delete trigger, so an external-content index would keep the old
    # row's terms; here the old entry stays behind under a rowid no params row has, which no search joins.
    # Derived objects: bundles leave the views, FTS tables and their triggers out (see ledger/bundle.py).
    """
    CREATE VIEW runs_view AS
        SELECT r.id, r.name,
               CASE WHEN r.status = 'running' AND (s.id IS NULL OR s.ended IS NOT NULL OR s.heartbeat IS NULL
                         OR s.heartbeat < (julianday('now') - 2440587.5) * 86400.0 - 600)
                    THEN 'crashed' ELSE r.status END AS status,
               datetime(r.start_time, 'unixepoch', 'localtime') AS start,
               datetime(r.end_time, 'unixepoch', 'localtime') AS end,
               round(r.end_time - r.start_time, 3) AS duration_s,
               r.sprint, s.notebook, r.kind, r.note, r.starred, r.error, r.replay_of, r.session_id, s.host,
               s.git_commit, r.gpu_util_mean, r.gpu_mem_peak_mb, r.energy_wh, r.start_time, r.end_time
        FROM runs r LEFT JOIN sessions s ON s.id = r.session_id;
    CREATE VIEW run_params AS
        SELECT run_id, key,
               CASE WHEN type = 'str' THEN json_extract(value, '$')
                    WHEN type = 'int' THEN CAST(value AS INTEGER)
                    WHEN type = 'float' AND value NOT IN ('NaN', 'Infinity', '-Infinity') THEN CAST(value AS REAL)
                    ELSE value END AS value,
               type, source
        FROM params;
    CREATE VIEW run_metrics_last AS
        SELECT m.run_id, m.key, m.last, m.min, m.max, m.count AS steps, m.nan_count AS nan, m.last_step,
               coalesce(src.source, 'log') AS source
        FROM metric_summaries m LEFT JOIN metric_sources src ON src.run_id = m.run_id AND src.key = m.key;
    CREATE INDEX cells_code ON cells(code_hash);
    CREATE VIRTUAL TABLE "runs_fts" USING FTS5 ("name", "note", "status", tokenize='trigram', content="runs");
    CREATE TRIGGER "runs_ai" AFTER INSERT ON "runs" BEGIN
        INSERT INTO "runs_fts" (rowid, "name", "note", "status")
            VALUES (new.rowid, new."name", new."note", new."status");
    END;
    CREATE TRIGGER "runs_ad" AFTER DELETE ON "runs" BEGIN
        INSERT INTO "runs_fts" ("runs_fts", rowid, "name", "note", "status")
            VALUES ('delete', old.rowid, old."name", old."note", old."status");
    END;
    CREATE TRIGGER "runs_au" AFTER UPDATE OF "name", "note", "status" ON "runs" BEGIN
        INSERT INTO "runs_fts" ("runs_fts", rowid, "name", "note", "status")
            VALUES ('delete', old.rowid, old."name", old."note", old."status");
        INSERT INTO "runs_fts" (rowid, "name", "note", "status")
            VALUES (new.rowid, new."name", new."note", new."status");
    END;
    INSERT INTO "runs_fts" ("runs_fts") VALUES ('rebuild');
    CREATE VIRTUAL TABLE "run_tags_fts" USING FTS5 ("tag", tokenize='trigram', content="run_tags");
    CREATE TRIGGER "run_tags_ai" AFTER INSERT ON "run_tags" BEGIN
        INSERT INTO "run_tags_fts" (rowid, "tag") VALUES (new.rowid, new."tag");
    END;
    CREATE TRIGGER "run_tags_ad" AFTER DELETE ON "run_tags" BEGIN
        INSERT INTO "run_tags_fts" ("run_tags_fts", rowid, "tag") VALUES ('delete', old.rowid, old."tag");
    END;
    CREATE TRIGGER "run_tags_au" AFTER UPDATE ON "run_tags" BEGIN
        INSERT INTO "run_tags_fts" ("run_tags_fts", rowid, "tag") VALUES ('delete', old.rowid, old."tag");
        INSERT INTO "run_tags_fts" (rowid, "tag") VALUES (new.rowid, new."tag");
    END;
    INSERT INTO "run_tags_fts" ("run_tags_fts") VALUES ('rebuild');
    CREATE VIRTUAL TABLE "code_fts" USING FTS5 ("source", tokenize='trigram', content="code");
    CREATE TRIGGER "code_ai" AFTER INSERT ON "code" BEGIN
        INSERT INTO "code_fts" (rowid, "source") VALUES (new.rowid, new."source");
    END;
    CREATE TRIGGER "code_ad" AFTER DELETE ON "code" BEGIN
        INSERT INTO "code_fts" ("code_fts", rowid, "source") VALUES ('delete', old.rowid, old."source");
    END;
    CREATE TRIGGER "code_au" AFTER UPDATE ON "code" BEGIN
        INSERT INTO "code_fts" ("code_fts", rowid, "source") VALUES ('delete', old.rowid, old."source");
        INSERT INTO "code_fts" (rowid, "source") VALUES (new.rowid, new."source");
    END;
    INSERT INTO "code_fts" ("code_fts") VALUES ('rebuild');
    CREATE VIRTUAL TABLE "params_fts" USING FTS5 ("key", "value", tokenize='trigram');
    CREATE TRIGGER "params_ai" AFTER INSERT ON "params" BEGIN
        INSERT OR REPLACE INTO "params_fts" (rowid, "key", "value") VALUES (new.rowid, new."key", new."value");
    END;
    CREATE TRIGGER "params_ad" AFTER DELETE ON "params" BEGIN
        DELETE FROM "params_fts" WHERE rowid = old.rowid;
    END;
    CREATE TRIGGER "params_au" AFTER UPDATE ON "params" BEGIN
        DELETE FROM "params_fts" WHERE rowid = old.rowid;
        INSERT OR REPLACE INTO "params_fts" (rowid, "key", "value") VALUES (new.rowid, new."key", new."value");
    END;
    INSERT INTO "params_fts" (rowid, "key", "value") SELECT rowid, key, value FROM params;
    """,
    # 10: foreign keys from every child table to runs, sessions and code, so sqlite-utils and datasette show the
    # links (datasette: a run's params, metrics, cells one click away). SQLite cannot add a constraint to a table,
    # so each child table (and runs, a child of sessions) is rebuilt the documented way (create new_X, copy, drop X,
    # rename), keeping every rowid: the full-text index of runs, run_tags and params refers to rows by rowid.
    # The views and the triggers of the rebuilt tables are dropped first and made again, as migrations 4 and 9 wrote
    # them (a rename checks every view and trigger, and these name tables that are briefly missing).
    # Rows that already point at nothing are dealt with first, so PRAGMA foreign_key_check is empty after:
    # - a run or cell whose session is missing keeps its data: a bare session row (id only) is added;
    # - a cell or event whose run is missing keeps its row with run_id NULL (the cell still belongs to its session);
    #   an event whose session is missing likewise;
    # - rows derived from a run that is missing (params, metrics, summaries, sources, tables, tags, data links,
    #   outputs, artifacts) and samples of a missing session are deleted: nothing can reach them;
    # - a cell whose code is missing is deleted (its code_hash is NOT NULL and a stand-in code row would not hash
    #   to it).
    # ON DELETE: deleting a run (with PRAGMA foreign_keys = ON) takes its derived rows along, and sets its cells'
    # and events' run_id to NULL; deleting a session takes its runs, cells, outputs and samples.
    # runs.replay_of stays a plain column: the run a replay reproduces may live in another ledger (a bundle).
    # nbexp's own connections leave PRAGMA foreign_keys off (SQLite's default): the kernel's writer batches rows
    # by kind, not in parent order, and a bundle carries a session's cells whose runs it does not carry.
    """
    DROP VIEW runs_view;
    DROP VIEW run_params;
    DROP VIEW run_metrics_last;
    DROP TRIGGER runs_stamp_insert;
    DROP TRIGGER runs_stamp_update;
    DROP TRIGGER run_tags_stamp_insert;
    DROP TRIGGER run_tags_stamp_delete;
    DROP TRIGGER runs_ai;
    DROP TRIGGER runs_ad;
    DROP TRIGGER runs_au;
    DROP TRIGGER run_tags_ai;
    DROP TRIGGER run_tags_ad;
    DROP TRIGGER run_tags_au;
    DROP TRIGGER params_ai;
    DROP TRIGGER params_ad;
    DROP TRIGGER params_au;
    INSERT INTO sessions (id)
        SELECT DISTINCT session_id FROM runs WHERE session_id NOT IN (SELECT id FROM sessions)
        UNION SELECT DISTINCT session_id FROM cells WHERE session_id NOT IN (SELECT id FROM sessions);
    UPDATE cells SET run_id = NULL WHERE run_id IS NOT NULL AND run_id NOT IN (SELECT id FROM runs);
    DELETE FROM cells WHERE code_hash NOT IN (SELECT hash FROM code);
    UPDATE events SET run_id = NULL WHERE run_id IS NOT NULL AND run_id NOT IN (SELECT id FROM runs);
    UPDATE events SET session_id = NULL WHERE session_id IS NOT NULL AND session_id NOT IN (SELECT id FROM sessions);
    DELETE FROM host_samples WHERE session_id NOT IN (SELECT id FROM sessions);
    DELETE FROM gpu_samples WHERE session_id NOT IN (SELECT id FROM sessions);
    DELETE FROM cell_outputs WHERE session_id NOT IN (SELECT id FROM sessions);
    DELETE FROM run_tags WHERE run_id NOT IN (SELECT id FROM runs);
    DELETE FROM params WHERE run_id NOT IN (SELECT id FROM runs);
    DELETE FROM metrics WHERE run_id NOT IN (SELECT id FROM runs);
    DELETE FROM run_data WHERE run_id NOT IN (SELECT id FROM runs);
    DELETE FROM metric_summaries WHERE run_id NOT IN (SELECT id FROM runs);
    DELETE FROM metric_sources WHERE run_id NOT IN (SELECT id FROM runs);
    DELETE FROM run_tables WHERE run_id NOT IN (SELECT id FROM runs);
    DELETE FROM cell_outputs WHERE run_id NOT IN (SELECT id FROM runs);
    DELETE FROM artifacts WHERE run_id NOT IN (SELECT id FROM runs);

    CREATE TABLE new_runs (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        sprint TEXT NOT NULL,
        name TEXT,
        kind TEXT,
        status TEXT NOT NULL,
        start_time REAL NOT NULL,
        end_time REAL,
        error TEXT,
        note TEXT,
        starred INTEGER NOT NULL DEFAULT 0,
        cpu_mean REAL,
        rss_peak_mb REAL,
        gpu_util_mean REAL,
        gpu_util_max REAL,
        gpu_mem_peak_mb REAL,
        energy_wh REAL,
        gpu_count INTEGER,
        idle_hint TEXT,
        updated REAL,
        replay_of TEXT
    );
    INSERT INTO new_runs (rowid, id, session_id, sprint, name, kind, status, start_time, end_time, error, note,
                          starred, cpu_mean, rss_peak_mb, gpu_util_mean, gpu_util_max, gpu_mem_peak_mb, energy_wh,
                          gpu_count, idle_hint, updated, replay_of)
        SELECT rowid, id, session_id, sprint, name, kind, status, start_time, end_time, error, note,
               starred, cpu_mean, rss_peak_mb, gpu_util_mean, gpu_util_max, gpu_mem_peak_mb, energy_wh,
               gpu_count, idle_hint, updated, replay_of FROM runs;
    DROP TABLE runs;
    ALTER TABLE new_runs RENAME TO runs;
    CREATE INDEX runs_sprint ON runs(sprint, start_time);
    CREATE INDEX runs_session ON runs(session_id);
    CREATE INDEX runs_updated ON runs(updated);

    CREATE TABLE new_run_tags (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (run_id, tag)
    );
    INSERT INTO new_run_tags (rowid, run_id, tag) SELECT rowid, run_id, tag FROM run_tags;
    DROP TABLE run_tags;
    ALTER TABLE new_run_tags RENAME TO run_tags;

    CREATE TABLE new_params (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT,
        type TEXT NOT NULL,
        source TEXT,
        PRIMARY KEY (run_id, key)
    );
    INSERT INTO new_params (rowid, run_id, key, value, type, source)
        SELECT rowid, run_id, key, value, type, source FROM params;
    DROP TABLE params;
    ALTER TABLE new_params RENAME TO params;

    CREATE TABLE new_metrics (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        step INTEGER,
        value REAL,
        wall REAL NOT NULL
    );
    INSERT INTO new_metrics (rowid, run_id, key, step, value, wall)
        SELECT rowid, run_id, key, step, value, wall FROM metrics;
    DROP TABLE metrics;
    ALTER TABLE new_metrics RENAME TO metrics;
    CREATE INDEX metrics_run ON metrics(run_id, key, step);

    CREATE TABLE new_cells (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        run_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
        cell_key TEXT NOT NULL,
        execution_count INTEGER,
        code_hash TEXT NOT NULL REFERENCES code(hash),
        start REAL NOT NULL,
        duration REAL,
        status TEXT NOT NULL,
        n_points INTEGER NOT NULL DEFAULT 0,
        error_type TEXT,
        error_message TEXT,
        cpu_mean REAL,
        rss_peak_mb REAL,
        gpu_util_mean REAL,
        gpu_util_max REAL,
        gpu_mem_peak_mb REAL,
        energy_wh REAL,
        torch_mem_peak_mb REAL,
        torch_reserved_peak_mb REAL,
        idle_hint TEXT
    );
    INSERT INTO new_cells (id, session_id, run_id, cell_key, execution_count, code_hash, start, duration, status,
                           n_points, error_type, error_message, cpu_mean, rss_peak_mb, gpu_util_mean, gpu_util_max,
                           gpu_mem_peak_mb, energy_wh, torch_mem_peak_mb, torch_reserved_peak_mb, idle_hint)
        SELECT id, session_id, run_id, cell_key, execution_count, code_hash, start, duration, status,
               n_points, error_type, error_message, cpu_mean, rss_peak_mb, gpu_util_mean, gpu_util_max,
               gpu_mem_peak_mb, energy_wh, torch_mem_peak_mb, torch_reserved_peak_mb, idle_hint FROM cells;
    DROP TABLE cells;
    ALTER TABLE new_cells RENAME TO cells;
    CREATE INDEX cells_session ON cells(session_id, start);
    CREATE INDEX cells_run ON cells(run_id);
    CREATE INDEX cells_code ON cells(code_hash);

    CREATE TABLE new_events (
        id INTEGER PRIMARY KEY,
        session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
        run_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
        time REAL NOT NULL,
        level TEXT NOT NULL,
        cause TEXT NOT NULL,
        message TEXT NOT NULL
    );
    INSERT INTO new_events (id, session_id, run_id, time, level, cause, message)
        SELECT id, session_id, run_id, time, level, cause, message FROM events;
    DROP TABLE events;
    ALTER TABLE new_events RENAME TO events;
    CREATE INDEX events_run ON events(run_id);
    CREATE INDEX events_session ON events(session_id);

    CREATE TABLE new_host_samples (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        time REAL NOT NULL,
        proc_cpu REAL,
        proc_rss_mb REAL,
        proc_threads INTEGER,
        sys_cpu REAL,
        sys_mem REAL
    );
    INSERT INTO new_host_samples (rowid, session_id, time, proc_cpu, proc_rss_mb, proc_threads, sys_cpu, sys_mem)
        SELECT rowid, session_id, time, proc_cpu, proc_rss_mb, proc_threads, sys_cpu, sys_mem FROM host_samples;
    DROP TABLE host_samples;
    ALTER TABLE new_host_samples RENAME TO host_samples;
    CREATE INDEX host_samples_time ON host_samples(session_id, time);

    CREATE TABLE new_gpu_samples (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        time REAL NOT NULL,
        gpu INTEGER NOT NULL,
        util REAL, mem_util REAL, mem_used_mb REAL, mem_total_mb REAL,
        power_w REAL, power_limit_w REAL, temp_c REAL, sm_clock_mhz REAL,
        proc_mem_mb REAL
    );
    INSERT INTO new_gpu_samples (rowid, session_id, time, gpu, util, mem_util, mem_used_mb, mem_total_mb, power_w,
                                 power_limit_w, temp_c, sm_clock_mhz, proc_mem_mb)
        SELECT rowid, session_id, time, gpu, util, mem_util, mem_used_mb, mem_total_mb, power_w,
               power_limit_w, temp_c, sm_clock_mhz, proc_mem_mb FROM gpu_samples;
    DROP TABLE gpu_samples;
    ALTER TABLE new_gpu_samples RENAME TO gpu_samples;
    CREATE INDEX gpu_samples_time ON gpu_samples(session_id, time);

    CREATE TABLE new_run_data (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        role TEXT,
        time REAL NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    INSERT INTO new_run_data (rowid, run_id, name, fingerprint, role, time)
        SELECT rowid, run_id, name, fingerprint, role, time FROM run_data;
    DROP TABLE run_data;
    ALTER TABLE new_run_data RENAME TO run_data;
    CREATE INDEX run_data_fingerprint ON run_data(fingerprint);

    CREATE TABLE new_metric_summaries (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        count INTEGER NOT NULL,
        nan_count INTEGER NOT NULL,
        min REAL,
        max REAL,
        last REAL,
        last_step INTEGER,
        PRIMARY KEY (run_id, key)
    );
    INSERT INTO new_metric_summaries (rowid, run_id, key, count, nan_count, min, max, last, last_step)
        SELECT rowid, run_id, key, count, nan_count, min, max, last, last_step FROM metric_summaries;
    DROP TABLE metric_summaries;
    ALTER TABLE new_metric_summaries RENAME TO metric_summaries;

    CREATE TABLE new_metric_sources (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    INSERT INTO new_metric_sources (rowid, run_id, key, source) SELECT rowid, run_id, key, source FROM metric_sources;
    DROP TABLE metric_sources;
    ALTER TABLE new_metric_sources RENAME TO metric_sources;

    CREATE TABLE new_run_tables (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        source TEXT,
        columns TEXT NOT NULL,
        rows TEXT NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    INSERT INTO new_run_tables (rowid, run_id, name, source, columns, rows)
        SELECT rowid, run_id, name, source, columns, rows FROM run_tables;
    DROP TABLE run_tables;
    ALTER TABLE new_run_tables RENAME TO run_tables;

    CREATE TABLE new_cell_outputs (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        cell_key TEXT NOT NULL,
        start REAL NOT NULL,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        mime TEXT NOT NULL,
        hash TEXT NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (session_id, start, cell_key, seq)
    );
    INSERT INTO new_cell_outputs (rowid, session_id, cell_key, start, run_id, seq, kind, mime, hash, size)
        SELECT rowid, session_id, cell_key, start, run_id, seq, kind, mime, hash, size FROM cell_outputs;
    DROP TABLE cell_outputs;
    ALTER TABLE new_cell_outputs RENAME TO cell_outputs;
    CREATE INDEX cell_outputs_run ON cell_outputs(run_id);

    CREATE TABLE new_artifacts (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        path TEXT,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        stored INTEGER NOT NULL,
        time REAL NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    INSERT INTO new_artifacts (rowid, run_id, name, path, size, sha256, stored, time)
        SELECT rowid, run_id, name, path, size, sha256, stored, time FROM artifacts;
    DROP TABLE artifacts;
    ALTER TABLE new_artifacts RENAME TO artifacts;

    CREATE TRIGGER runs_stamp_insert AFTER INSERT ON runs BEGIN
        UPDATE runs SET updated = (julianday('now') - 2440587.5) * 86400.0 WHERE id = NEW.id;
    END;
    CREATE TRIGGER runs_stamp_update AFTER UPDATE OF status, end_time, name, note, starred, error, idle_hint
        ON runs BEGIN
        UPDATE runs SET updated = (julianday('now') - 2440587.5) * 86400.0 WHERE id = NEW.id;
    END;
    CREATE TRIGGER run_tags_stamp_insert AFTER INSERT ON run_tags BEGIN
        UPDATE runs SET updated = (julianday('now') - 2440587.5) * 86400.0 WHERE id = NEW.run_id;
    END;
    CREATE TRIGGER run_tags_stamp_delete AFTER DELETE ON run_tags BEGIN
        UPDATE runs SET updated = (julianday('now') - 2440587.5) * 86400.0 WHERE id = OLD.run_id;
    END;
    CREATE TRIGGER "runs_ai" AFTER INSERT ON "runs" BEGIN
        INSERT INTO "runs_fts" (rowid, "name", "note", "status")
            VALUES (new.rowid, new."name", new."note", new."status");
    END;
    CREATE TRIGGER "runs_ad" AFTER DELETE ON "runs" BEGIN
        INSERT INTO "runs_fts" ("runs_fts", rowid, "name", "note", "status")
            VALUES ('delete', old.rowid, old."name", old."note", old."status");
    END;
    CREATE TRIGGER "runs_au" AFTER UPDATE OF "name", "note", "status" ON "runs" BEGIN
        INSERT INTO "runs_fts" ("runs_fts", rowid, "name", "note", "status")
            VALUES ('delete', old.rowid, old."name", old."note", old."status");
        INSERT INTO "runs_fts" (rowid, "name", "note", "status")
            VALUES (new.rowid, new."name", new."note", new."status");
    END;
    CREATE TRIGGER "run_tags_ai" AFTER INSERT ON "run_tags" BEGIN
        INSERT INTO "run_tags_fts" (rowid, "tag") VALUES (new.rowid, new."tag");
    END;
    CREATE TRIGGER "run_tags_ad" AFTER DELETE ON "run_tags" BEGIN
        INSERT INTO "run_tags_fts" ("run_tags_fts", rowid, "tag") VALUES ('delete', old.rowid, old."tag");
    END;
    CREATE TRIGGER "run_tags_au" AFTER UPDATE ON "run_tags" BEGIN
        INSERT INTO "run_tags_fts" ("run_tags_fts", rowid, "tag") VALUES ('delete', old.rowid, old."tag");
        INSERT INTO "run_tags_fts" (rowid, "tag") VALUES (new.rowid, new."tag");
    END;
    CREATE TRIGGER "params_ai" AFTER INSERT ON "params" BEGIN
        INSERT OR REPLACE INTO "params_fts" (rowid, "key", "value") VALUES (new.rowid, new."key", new."value");
    END;
    CREATE TRIGGER "params_ad" AFTER DELETE ON "params" BEGIN
        DELETE FROM "params_fts" WHERE rowid = old.rowid;
    END;
    CREATE TRIGGER "params_au" AFTER UPDATE ON "params" BEGIN
        DELETE FROM "params_fts" WHERE rowid = old.rowid;
        INSERT OR REPLACE INTO "params_fts" (rowid, "key", "value") VALUES (new.rowid, new."key", new."value");
    END;
    CREATE VIEW runs_view AS
        SELECT r.id, r.name,
               CASE WHEN r.status = 'running' AND (s.id IS NULL OR s.ended IS NOT NULL OR s.heartbeat IS NULL
                         OR s.heartbeat < (julianday('now') - 2440587.5) * 86400.0 - 600)
                    THEN 'crashed' ELSE r.status END AS status,
               datetime(r.start_time, 'unixepoch', 'localtime') AS start,
               datetime(r.end_time, 'unixepoch', 'localtime') AS end,
               round(r.end_time - r.start_time, 3) AS duration_s,
               r.sprint, s.notebook, r.kind, r.note, r.starred, r.error, r.replay_of, r.session_id, s.host,
               s.git_commit, r.gpu_util_mean, r.gpu_mem_peak_mb, r.energy_wh, r.start_time, r.end_time
        FROM runs r LEFT JOIN sessions s ON s.id = r.session_id;
    CREATE VIEW run_params AS
        SELECT run_id, key,
               CASE WHEN type = 'str' THEN json_extract(value, '$')
                    WHEN type = 'int' THEN CAST(value AS INTEGER)
                    WHEN type = 'float' AND value NOT IN ('NaN', 'Infinity', '-Infinity') THEN CAST(value AS REAL)
                    ELSE value END AS value,
               type, source
        FROM params;
    CREATE VIEW run_metrics_last AS
        SELECT m.run_id, m.key, m.last, m.min, m.max, m.count AS steps, m.nan_count AS nan, m.last_step,
               coalesce(src.source, 'log') AS source
        FROM metric_summaries m LEFT JOIN metric_sources src ON src.run_id = m.run_id AND src.key = m.key;
    """,
    # 11: explanations (``nbexp explain --ablate``) and the replays each one ran: a replay of run B with one
    # factor set back to run A's value, or B unchanged (factor '') to measure the replay noise
    """
    CREATE TABLE explanations (
        id TEXT PRIMARY KEY,
        run_a TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,  -- the reference
        run_b TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,  -- the run explained, the one replayed
        metric TEXT NOT NULL,
        created REAL NOT NULL,
        status TEXT NOT NULL,         -- running, finished, failed
        result TEXT                   -- JSON: the ranked factors with their effects, the waterfall
    );
    CREATE INDEX explanations_pair ON explanations(run_b, run_a, created);
    CREATE TABLE ablation_of (
        run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,  -- the replay run
        explanation_id TEXT NOT NULL REFERENCES explanations(id) ON DELETE CASCADE,
        factor TEXT NOT NULL          -- the factor's key; '' for a replay of B unchanged
    );
    CREATE INDEX ablation_of_explanation ON ablation_of(explanation_id);
    """,
    # 12: indexes for the runs table (issue 17): a page by start time without sorting every run, the running
    # runs whose kernel may be gone (status as readers see it), and the runs with a param or metric key:
    # a query on params.X / metrics.X reads that key's index entries only (covering: no lookup of 100,000
    # rows in a table of 5,000,000), and the column chooser's keys take one seek each
    """
    CREATE INDEX runs_start ON runs(start_time);
    CREATE INDEX runs_running ON runs(session_id) WHERE status = 'running';
    CREATE INDEX params_key ON params(key, run_id, type, value);
    CREATE INDEX params_number ON params(key, CAST(value AS REAL), run_id, type, value)
        WHERE type IN ('int', 'float') AND value NOT IN ('NaN', 'Infinity', '-Infinity');
    CREATE INDEX metric_summaries_key ON metric_summaries(key, last, run_id, min, max);
    """,
    # 13: the live sync's state per session (nbexp/export/sync.py): JSON {"uri", "state", "behind", "at"}, written by
    # the kernel's sync thread after each pass so the sidebar, in the server process, can say synced / behind /
    # server unreachable
    """
    ALTER TABLE sessions ADD COLUMN sync_state TEXT;
    """,
    # 14: a stamp of what nbexp.runs() reads (issue 17): any insert, update or delete of a run, a param, a metric
    # summary, a tag or a data fingerprint sets a new random stamp, so a frame read at one stamp is still the
    # ledger's while the stamp is the same (nbexp/api.py keeps the last frame, 0.1 s instead of 6 s at 100,000
    # runs). Random, not a counter: two ledgers (a copy changed apart) never share one. A table rebuilt by a later
    # migration loses its triggers: recreate them there. One row and 15 triggers: instant at any size.
    """
    CREATE TABLE frame_stamp (id INTEGER PRIMARY KEY CHECK (id = 1), stamp BLOB NOT NULL);
    INSERT INTO frame_stamp (id, stamp) VALUES (1, randomblob(16));
    CREATE TRIGGER frame_stamp_runs_insert AFTER INSERT ON runs BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_runs_update AFTER UPDATE ON runs BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_runs_delete AFTER DELETE ON runs BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_params_insert AFTER INSERT ON params BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_params_update AFTER UPDATE ON params BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_params_delete AFTER DELETE ON params BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_metric_summaries_insert AFTER INSERT ON metric_summaries BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_metric_summaries_update AFTER UPDATE ON metric_summaries BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_metric_summaries_delete AFTER DELETE ON metric_summaries BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_run_tags_insert AFTER INSERT ON run_tags BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_run_tags_update AFTER UPDATE ON run_tags BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_run_tags_delete AFTER DELETE ON run_tags BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_run_data_insert AFTER INSERT ON run_data BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_run_data_update AFTER UPDATE ON run_data BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    CREATE TRIGGER frame_stamp_run_data_delete AFTER DELETE ON run_data BEGIN
        UPDATE frame_stamp SET stamp = randomblob(16);
    END;
    """,
    # 15: the frame of nbexp.runs() kept in the ledger (issue 17): a change sequence (frame_stamp.seq, one more at
    # every row written to the runs, their params, metric summaries or data fingerprints) and, per run, the
    # sequence of its last change (frame_changes: one row per run, upserted, not a row per param written); the
    # frame stored as columns at one sequence (frame_cache, written by nbexp.runs() in a thread, see nbexp/api.py),
    # so a new process reads it and re-reads only the runs changed since. In the ledger, not beside it: a copied
    # or replaced ledger carries its own frame and its own log. No row is read: instant at any size.
    """
    ALTER TABLE frame_stamp ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE frame_changes (run_id TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    CREATE INDEX frame_changes_seq ON frame_changes(seq);
    CREATE TABLE frame_cache (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        stamp BLOB NOT NULL,
        header TEXT NOT NULL
    );
    CREATE TABLE frame_cache_parts (pos INTEGER PRIMARY KEY, data BLOB NOT NULL);
    """
    + _frame_change_triggers(),
]

SCHEMA_VERSION = len(MIGRATIONS)
# the triggers of migration 14 that set frame_stamp: a ledger lacking one (a bundle, which leaves triggers out, or a
# table rebuilt without them) has no stamp a reader can trust
FRAME_STAMP_TRIGGERS = tuple(
    f"frame_stamp_{table}_{op}"
    for table in ("runs", "params", "metric_summaries", "run_tags", "run_data")
    for op in ("insert", "update", "delete")
)
# the triggers of migration 15 that log which runs changed: a ledger lacking one keeps no frame (nbexp/api.py)
FRAME_CHANGE_TRIGGERS = tuple(
    f"frame_changes_{table}_{op}" for table in _FRAME_CHANGE_TABLES for op in ("insert", "update", "delete")
)
# the migrations that copy or index every row (10: the tables rebuilt with their foreign keys, 12: the runs table's
# indexes): 42 s for a ledger of 100,000 runs, so a ledger of more than NOTICE_RUNS runs says so on stderr first
SLOW_MIGRATIONS = (10, 12)
NOTICE_RUNS = 5000


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema of ``conn`` up to :data:`SCHEMA_VERSION`.

    Returns:
        The version the ledger had before.

    Raises:
        SchemaTooNewError: the ledger was written by a newer nbexp.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    check_version(version)
    if version == SCHEMA_VERSION:
        return version
    # Migration 10 rebuilds tables (drop, rename): with foreign keys enforced, dropping runs would delete the rows
    # that point at it. The pragma is a no-op inside a transaction, so it is set around it.
    enforced = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    if enforced:
        conn.execute("PRAGMA foreign_keys = OFF")
    try:
        with transaction(conn):
            # Another process may have migrated while we waited for the lock.
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            started = _notice(conn, current)
            for number in range(current, SCHEMA_VERSION):
                for statement in split_statements(MIGRATIONS[number]):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if started is not None:
            print(f"nbexp: ledger upgraded in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        if enforced:
            conn.execute("PRAGMA foreign_keys = ON")
    return version


def _notice(conn: sqlite3.Connection, current: int) -> float | None:
    """Say on stderr that a big ledger is being upgraded (a first ``%nbexp track`` or ``nbexp ls`` would seem to
    hang for a minute otherwise); the time it started, None when nothing was said."""
    if current == 0 or not any(current < version <= SCHEMA_VERSION for version in SLOW_MIGRATIONS):
        return None  # a new ledger, or only quick migrations
    runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    if runs <= NOTICE_RUNS:
        return None
    path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
    print(
        f"nbexp: upgrading the ledger {path} ({runs:,} runs) to this version of nbexp, once; "
        f"this takes a while (about 40 s per 100,000 runs)...",
        file=sys.stderr,
        flush=True,
    )
    return time.monotonic()


def split_statements(script: str) -> list[str]:
    """The statements of a migration, keeping ``CREATE TRIGGER ... END;`` blocks whole."""
    out, buf = [], ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf.strip())
            buf = ""
    return out


def check_version(version: int) -> None:
    """Raise :class:`SchemaTooNewError` for a schema this nbexp does not know."""
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"this ledger has schema version {version}, but this nbexp knows versions "
            f"up to {SCHEMA_VERSION}: upgrade nbexp (pip install -U nbexp) to read it"
        )
