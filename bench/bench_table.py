"""Runs table and ``nbexp.runs()`` on a 100,000-run ledger (issue #17). Prints a Markdown table for
bench/RESULTS.md.

The ledger is synthetic, shaped as bench/bench_server.py's (written with plain SQL through nbexp's own
connection, migrated, triggers on): 100,000 finished runs in one sprint, 50 params each (5 of them varying:
``p0..p4`` in 0.1/0.3/1.0, the others constant), 10 single-value metrics, a tag on one run in ten. Timed:

- a ledger of an older schema (``NBEXP_BENCH_LEDGER`` naming a copy of one): its migration on first open
  (``NBEXP_BENCH_ONLY=frame``: then ``nbexp.runs()`` only);
- ``Reader.table`` in-process: the first page (50 rows, newest first), a page sorted by a metric, a query
  (``metrics.m0 > 0.9 and params.p1 < 1 and status = finished``), a query with a tag and a name match,
  a page sorted by a param, sorted by a metric with the query, grouped by a param, grouped and sorted;
- the same over HTTP, ``GET /nbexp/api/table``, on a real ``jupyter lab`` (loopback, so with the round trip);
- ``nbexp.runs(sprint="all")``: every run as a DataFrame, the first call in a process and the same call again
  (kept while the ledger is unchanged).

    .venv/bin/python bench/bench_table.py            # 100,000 runs
    .venv/bin/python bench/bench_table.py 10000      # another size
"""

from __future__ import annotations

import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from nbexp.ledger import connect, transaction
from nbexp.ledger.writer import INSERT_POINT, UPSERT_SUMMARY, summarize_points

N_PARAMS, N_METRICS = 50, 10
SPRINT = "2023-11-14"
QUERY = "metrics.m0 > 0.9 and params.p1 < 1 and status = finished"
QUERY2 = 'tag = sweep and (name ~ "run-1" or params.p0 = 0.1)'


def build(path: Path, n: int) -> None:
    """A ledger of ``n`` runs at ``path``."""
    conn = connect(path)
    rng = random.Random(0)
    t0 = 1.7e9
    with transaction(conn):
        conn.execute("INSERT INTO sessions (id, host, pid, started, ended) VALUES ('s', 'bench', 1, ?, ?)", (t0, t0))
        runs, params, metrics, tags = [], [], [], []
        for i in range(n):
            rid, start = f"{i:08x}", t0 + i * 5
            runs.append((rid, "s", SPRINT, f"run-{i}", "new", "finished", start, start + 1 + i % 7))
            for p in range(N_PARAMS):
                v = rng.choice([0.1, 0.3, 1.0]) if p < 5 else p
                params.append((rid, f"p{p}", json.dumps(v), "float" if p < 5 else "int", "assign"))
            for m in range(N_METRICS):
                metrics.append((rid, f"m{m}", 0, rng.random(), start + 1))
            if i % 10 == 0:
                tags.append((rid, "sweep"))
        conn.executemany(
            "INSERT INTO runs (id, session_id, sprint, name, kind, status, start_time, end_time) "
            "VALUES (?,?,?,?,?,?,?,?)",
            runs,
        )
        conn.executemany("INSERT INTO params (run_id, key, value, type, source) VALUES (?,?,?,?,?)", params)
        conn.executemany(INSERT_POINT, metrics)
        conn.executemany(UPSERT_SUMMARY, summarize_points(metrics))  # as the writer does
        conn.executemany("INSERT INTO run_tags (run_id, tag) VALUES (?, ?)", tags)
    conn.close()


def median_ms(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


CASES = [  # (what, table arguments)
    ("first page (50 rows, newest first)", {}),
    (f"query `{QUERY}`", {"q": QUERY}),
    (f"query `{QUERY2}`", {"q": QUERY2}),
    ("sorted by a metric (`metrics.m3`, descending)", {"sort": "metrics.m3", "columns": "name,metrics.m3,params.p0"}),
    ("sorted by a param (`params.p0`, descending)", {"sort": "params.p0", "columns": "name,metrics.m3,params.p0"}),
    (
        f"sorted by a metric, query `{QUERY}`",
        {"sort": "metrics.m3", "q": QUERY, "columns": "name,metrics.m3,params.p0"},
    ),
    ("grouped by a param (`params.p0`)", {"group": "params.p0"}),
    ("grouped by a param, sorted by a metric", {"group": "params.p0", "sort": "metrics.m3"}),
]


def in_process(path: Path, n: int) -> list[tuple[str, str]]:
    from nbexp.ledger.queries import Reader
    from nbexp.ledger.query import table

    out = []
    with Reader(path) as r:
        for what, args in CASES:
            kw = {"query": args.get("q"), "sort": args.get("sort"), "group": args.get("group")}
            kw["columns"] = args.get("columns")
            total = table(r, sprint="all", limit=50, with_columns=False, **kw)["total"]
            ms = median_ms(lambda kw=kw: table(r, sprint="all", limit=50, with_columns=False, **kw), 7)
            out.append((f"`Reader` + `table()`: {what}, {total:,} of {n:,} runs", f"{ms:.1f} ms"))
        ms = median_ms(lambda: table(r, sprint="all", limit=50, with_columns=True), 5)
        out.append(("... first page with the column chooser's choices (params, metrics, data, tags)", f"{ms:.1f} ms"))
    return out


def over_http(path: Path, n: int) -> list[tuple[str, str]]:
    root = Path(tempfile.mkdtemp(prefix="nbexp-bench-table-"))
    env = dict(os.environ)
    for var in ("HOME", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        (root / var.lower()).mkdir()
        env[var] = str(root / var.lower())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(8)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.allow_root=True",
            "--ServerApp.jpserver_extensions={'nbexp': True}",
            f"--NbexpApp.ledger={path}",
        ],
        env=env,
        cwd=root,  # not the checkout: `python -m` would import its nbexp before $PYTHONPATH's (timed in-process)
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/nbexp/api/"
    out = []
    try:

        def get(query: dict) -> bytes:
            url = base + "table?" + urllib.parse.urlencode({"sprint": "all", "limit": 50, **query})
            req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
            return urllib.request.urlopen(req, timeout=120).read()

        for _ in range(200):
            try:
                get({"available": "0"})
                break
            except OSError:
                time.sleep(0.3)
        req = urllib.request.Request(base + "runs?sprint=all&limit=200", headers={"Authorization": f"token {token}"})
        ms = median_ms(lambda: urllib.request.urlopen(req, timeout=120).read(), 7)
        out.append((f"`GET /nbexp/api/runs` (the sidebar's first page, 200 of {n:,} runs)", f"{ms:.1f} ms"))
        for what, args in CASES:
            query = {"available": "0", **args}
            total = json.loads(get(query))["total"]
            ms = median_ms(lambda query=query: get(query), 7)
            out.append((f"`GET /nbexp/api/table`: {what}, {total:,} of {n:,} runs", f"{ms:.1f} ms"))
    finally:
        proc.terminate()
        proc.wait(15)
    return out


def migrate(path: Path) -> list[tuple[str, str]]:
    """The first open of a ledger of an older schema migrates it: timed (nothing when it is current)."""
    import sqlite3

    from nbexp.ledger.schema import SCHEMA_VERSION

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as c:
        version = c.execute("PRAGMA user_version").fetchone()[0]
    if version >= SCHEMA_VERSION:
        return []
    t = time.perf_counter()
    connect(path).close()
    took = time.perf_counter() - t
    return [(f"first open: migrating the ledger from schema {version} to {SCHEMA_VERSION}", f"{took:.1f} s")]


def add_runs(path: Path, k: int) -> None:
    """``k`` more runs of the same shape as :func:`build`'s, newer than every run of ``path``."""
    conn = connect(path)
    rng = random.Random()
    with transaction(conn):
        t0 = conn.execute("SELECT max(start_time) FROM runs").fetchone()[0] + 5
        runs, params, metrics = [], [], []
        for i in range(k):
            rid, start = f"n{secrets.token_hex(6)}", t0 + i * 5
            runs.append((rid, "s", SPRINT, f"new-{i}", "new", "finished", start, start + 1 + i % 7))
            for p in range(N_PARAMS):
                v = rng.choice([0.1, 0.3, 1.0]) if p < 5 else p
                params.append((rid, f"p{p}", json.dumps(v), "float" if p < 5 else "int", "assign"))
            for m in range(N_METRICS):
                metrics.append((rid, f"m{m}", 0, rng.random(), start + 1))
        conn.executemany(
            "INSERT INTO runs (id, session_id, sprint, name, kind, status, start_time, end_time) "
            "VALUES (?,?,?,?,?,?,?,?)",
            runs,
        )
        conn.executemany("INSERT INTO params (run_id, key, value, type, source) VALUES (?,?,?,?,?)", params)
        conn.executemany(INSERT_POINT, metrics)
        conn.executemany(UPSERT_SUMMARY, summarize_points(metrics))
    conn.close()


def drop_stored_frame(path: Path) -> bool:
    """Forget the frame ``nbexp.runs()`` stored in the ledger (schema 15); False for a ledger without the table."""
    import sqlite3

    conn = connect(path)
    try:
        with transaction(conn):
            conn.execute("DELETE FROM frame_cache")
            conn.execute("DELETE FROM frame_cache_parts")
        return True
    except sqlite3.OperationalError:  # no such table: an nbexp before schema 15
        return False
    finally:
        conn.close()


def runs_frame(path: Path, n: int) -> list[tuple[str, str]]:
    """Each read of the frame in a new process (nothing kept from an earlier call: the time a notebook's first
    ``nbexp.runs()`` takes), then the same call again in one process (the frame kept while the ledger is
    unchanged, schema 14). From schema 15 the first call of a process reads the frame stored in the ledger: timed
    with none stored yet (each process stores one as it ends: dropped before the next), with one stored, and after
    100 more runs were written since (fewer than ``STORE_AFTER``: each process re-reads them)."""
    what = f"`nbexp.runs(sprint='all')`: {n:,} runs x 50 params + 10 metrics as a DataFrame"
    code = (
        "import sys, time, nbexp\n"
        "t = time.perf_counter(); nbexp.runs(sprint='all', ledger=sys.argv[1]); print(time.perf_counter() - t)\n"
        "t = time.perf_counter(); nbexp.runs(sprint='all', ledger=sys.argv[1]); print(time.perf_counter() - t)\n"
    )

    def one() -> tuple[float, float]:
        out = subprocess.run(  # not from the checkout: `python -c` imports its nbexp before $PYTHONPATH's
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=tempfile.gettempdir(),
        )
        a, b = (float(x) for x in out.stdout.split())
        return a, b

    def median(times: list[tuple[float, float]], which: int = 0) -> float:
        return statistics.median(t[which] for t in times)

    rows = []
    never: list[tuple[float, float]] = []
    for _ in range(3):
        if not drop_stored_frame(path):
            break
        never.append(one())
    if never:
        rows.append((f"{what}, first call in a process, no frame stored yet", f"{median(never):.2f} s"))
    stored = [one() for _ in range(3)]
    label = "first call in a process, the stored frame current" if never else "first call in a process"
    rows.append((f"{what}, {label}", f"{median(stored):.2f} s"))
    rows.append((f"{what}, again, the ledger unchanged", f"{median(stored, 1) * 1e3:.1f} ms"))
    add_runs(path, 100)
    after = [one() for _ in range(3)]
    label = "100 runs written since the frame was stored" if never else "100 runs written since"
    rows.append((f"{what}, first call in a process, {label}", f"{median(after):.2f} s"))
    return rows


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    path = Path(
        os.environ.get("NBEXP_BENCH_LEDGER") or Path(tempfile.mkdtemp(prefix="nbexp-bench-table-")) / "l.sqlite"
    )
    if not path.exists():
        build(path, n)
    only = os.environ.get("NBEXP_BENCH_ONLY")  # "frame": nbexp.runs() only
    if only == "frame":
        rows = migrate(path) + runs_frame(path, n)
    else:
        rows = migrate(path) + in_process(path, n) + over_http(path, n) + runs_frame(path, n)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| measure | median |\n|---|---|")
    for what, fig in rows:
        print(f"| {what} | {fig} |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "build":
        build(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
