"""REST API and sidebar cost (issue #7). Prints a Markdown table for bench/RESULTS.md.

Builds a ledger of 10,000 runs (50 params and 10 metrics each) plus 10 runs with 10,000
points each, starts a real `jupyter lab` on 127.0.0.1 with the nbexp extension on it, and
times over HTTP on the loopback (so the figures include the HTTP round trip):
- GET /nbexp/api/runs (the sidebar's first page, 200 runs of the 10,000),
- GET /nbexp/api/compare for the 10 long runs (server time and JSON size),
- the sidebar's first paint in chromium (Playwright): from clicking the nbexp tab to the
  first run row on screen, from the page's own performance clock.

    .venv/bin/python bench/bench_server.py
    NBEXP_BENCH_LEDGER=/path/ledger.sqlite .venv/bin/python bench/bench_server.py   # a ledger of any size:
        # the sidebar's first page and first paint only (nothing is built or written; use a copy)
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
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import chromium  # noqa: E402  (tests/chromium.py: the one way to launch it)

from nbexp.ledger import connect, sprint_of  # noqa: E402
from nbexp.ledger.writer import INSERT_POINT, UPSERT_SUMMARY, summarize_points  # noqa: E402

N_RUNS, N_PARAMS, N_METRICS = 10_000, 50, 10
LONG_RUNS, LONG_POINTS = 10, 10_000


def build(path: Path) -> list[str]:
    conn = connect(path)
    rng = random.Random(0)
    now = time.time()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO sessions (id, host, pid, started, ended) VALUES ('s', 'bench', 1, ?, ?)", (now, now))
    runs, params, metrics = [], [], []
    for i in range(N_RUNS):
        rid = f"{i:06x}"
        start = now - (N_RUNS - i) * 5
        runs.append((rid, "s", sprint_of(now), f"run-{i}", "new", "finished", start, start + 4))
        for p in range(N_PARAMS):
            v = rng.choice([0.1, 0.3, 1.0]) if p < 5 else p
            params.append((rid, f"p{p}", json.dumps(v), "float" if p < 5 else "int", "assign"))
        for m in range(N_METRICS):
            metrics.append((rid, f"m{m}", 0, rng.random(), start + 3))
    long_ids = []
    for j in range(LONG_RUNS):
        rid = f"f{j:05x}"
        long_ids.append(rid)
        runs.append((rid, "s", sprint_of(now), f"long-{j}", "new", "finished", now + j, now + j + 1))
        params.append((rid, "lr", json.dumps(0.01 * (j + 1)), "float", "assign"))
        for step in range(LONG_POINTS):
            metrics.append((rid, "loss", step, 1.0 / (step + 1) + rng.random() * 0.01 + j * 0.01, now + step))
    conn.executemany(
        "INSERT INTO runs (id, session_id, sprint, name, kind, status, start_time, end_time) VALUES (?,?,?,?,?,?,?,?)",
        runs,
    )
    conn.executemany("INSERT INTO params (run_id, key, value, type, source) VALUES (?,?,?,?,?)", params)
    conn.executemany(INSERT_POINT, metrics)
    conn.executemany(UPSERT_SUMMARY, summarize_points(metrics))  # as the writer does
    conn.execute("COMMIT")
    conn.close()
    return long_ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    root = Path(tempfile.mkdtemp(prefix="nbexp-bench-server-"))
    given = os.environ.get("NBEXP_BENCH_LEDGER")
    ledger = Path(given) if given else root / "ledger.sqlite"
    long_ids = [] if given else build(ledger)
    env = dict(os.environ)
    for var in (
        "HOME",
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
        "IPYTHONDIR",
    ):
        (root / var.lower()).mkdir()
        env[var] = str(root / var.lower())
    port, token = free_port(), secrets.token_hex(8)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.allow_root=True",
            f"--NbexpApp.ledger={ledger}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def get(path):
            req = urllib.request.Request(f"{base}/nbexp/api/{path}", headers={"Authorization": f"token {token}"})
            t = time.perf_counter()
            body = urllib.request.urlopen(req, timeout=60).read()
            return time.perf_counter() - t, body

        for _ in range(100):
            try:
                get("ping")
                break
            except OSError:
                time.sleep(0.3)
        get("runs?sprint=all")  # warm up
        list_times = [get("runs?sprint=all&limit=200")[0] for _ in range(30)]
        if given:
            n_runs = json.loads(get("runs?sprint=all&limit=1")[1])["total"]
            paint = first_paint(base, token)
            print("| measure | figure | goal |\n|---|---|---|")
            print(
                f"| GET /nbexp/api/runs, first page (200 of {n_runs:,} runs) | "
                f"{statistics.median(list_times) * 1e3:.1f} ms median | < 100 ms |"
            )
            shown = f"{paint * 1e3:.0f} ms" if paint is not None else "not measured (no chromium)"
            print(
                f"| sidebar first paint with {n_runs:,} runs (click on the tab -> first row, chromium) "
                f"| {shown} | <= 1 s |"
            )
            return
        delta_times = [get(f"runs?sprint=all&since={time.time() + 3600}")[0] for _ in range(30)]
        # the sidebar's filter for rows it has not loaded: a param value about a third of the runs
        # have (the search looks at ids, names, notes, tags and all 500,000 params)
        search_times = [get("runs?sprint=all&limit=200&q=p3%3D0.3")[0] for _ in range(10)]
        search_total = json.loads(get("runs?sprint=all&limit=200&q=p3%3D0.3")[1])["total"]
        cmp_times, size = [], 0
        for _ in range(5):
            t, body = get(f"compare?runs={','.join(long_ids)}&metric=loss")
            cmp_times.append(t)
            size = len(body)
        paint = first_paint(base, token)
    finally:
        proc.terminate()
        proc.wait(15)
    rows = [
        (
            "GET /nbexp/api/runs, first page (200 of 10,000 runs, 50 params + 10 metrics each)",
            f"{statistics.median(list_times) * 1e3:.1f} ms median",
            "<= 50 ms",
        ),
        (
            "GET /nbexp/api/runs?since=CURSOR (nothing changed: the sidebar's 1 s poll)",
            f"{statistics.median(delta_times) * 1e3:.1f} ms median",
            "",
        ),
        (
            f"GET /nbexp/api/runs?q=p3=0.3 (server-side search, {search_total:,} of 10,000 runs match)",
            f"{statistics.median(search_times) * 1e3:.1f} ms median",
            "",
        ),
        (
            "GET /nbexp/api/compare, 10 runs x 10,000 points",
            f"{statistics.median(cmp_times) * 1e3:.0f} ms median",
            "<= 300 ms",
        ),
        (
            "compare JSON size (diffs + 7 figures, curves downsampled to <= 1,000 points per run)",
            f"{size / 1e6:.2f} MB",
            "<= 1 MB",
        ),
        (
            "sidebar first paint with 10,000 runs (click on the tab -> first row, chromium)",
            f"{paint * 1e3:.0f} ms" if paint is not None else "not measured (no chromium)",
            "<= 1 s",
        ),
    ]
    print("| measure | figure | goal |\n|---|---|---|")
    for name, fig, goal in rows:
        print(f"| {name} | {fig} | {goal} |")


def first_paint(base: str, token: str) -> float | None:
    if not chromium.installed():
        return None
    with chromium.headless() as b:
        page = b.new_page()
        page.goto(f"{base}/lab?token={token}")
        tab = page.locator('.jp-SideBar.jp-mod-left li[data-id="nbexp-sidebar"]')
        tab.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        t0 = page.evaluate("() => performance.now()")
        tab.click()
        page.locator("li.nbexp-run").first.wait_for(state="visible", timeout=60_000)
        ms = page.evaluate("() => performance.now()") - t0
    return ms / 1000


if __name__ == "__main__":
    main()
