"""Live sync to MLflow (issue #19). Prints Markdown tables for bench/RESULTS.md.

1. Per-cell time on the cell's thread: a real IPython shell tracking 300 cells (each logs 50 points and
   sets a param), without sync and with ``--sync`` to a real `mlflow server` on 127.0.0.1 (sqlite backend),
   alternating blocks of 50 cells so load drifts hit both alike.
2. Throughput: 20 runs x 10,000 points in a ledger; the live sync's first pass (the sync thread, from start to
   everything on the server) against ``nbexp export mlflow`` of the same runs into another experiment; then
   the cost of a pass with 1,000 new points in one run (the sync knows what the server has; the plain export
   counts every key's points on the server) and of a pass with nothing new.

    .venv/bin/python bench/bench_sync.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_export import POINTS, RUNS, build_ledger  # noqa: E402  (the same ledger as the export bench)

from nbexp.ledger import connect  # noqa: E402
from nbexp.ledger.queries import Reader  # noqa: E402
from nbexp.ledger.writer import INSERT_POINT, UPSERT_SUMMARY, summarize_points  # noqa: E402

CELLS, BLOCK = 300, 50


def per_cell(uri: str, root: Path) -> dict[str, list[float]]:
    import os

    from IPython.core.interactiveshell import InteractiveShell

    os.environ["NBEXP_HOME"] = str(root / "home")
    sh = InteractiveShell.instance()
    sh.run_cell("%load_ext nbexp", store_history=True)
    times: dict[str, list[float]] = {"plain": [], "sync": []}
    code = "LR = {i} * 0.001\nfor s in range(50):\n    nbexp.log(loss=1 / (s + 1))"
    sh.run_cell("import nbexp", store_history=True)
    for block in range(CELLS // BLOCK * 2):
        mode = "sync" if block % 2 else "plain"
        flag = f"--sync {uri}" if mode == "sync" else "--sync off"
        sh.run_cell(f"%nbexp track --sample-hz 0 {flag} b{block}", store_history=True)
        for i in range(BLOCK):
            t = time.perf_counter()
            sh.run_cell(code.format(i=i), store_history=True)
            times[mode].append(time.perf_counter() - t)
        sh.run_cell("%nbexp stop", store_history=True)
    return times


def add_points(path: Path, rid: str, start: int, n: int) -> None:
    conn = connect(path)
    pts = [(rid, "loss", s, 0.5, time.time() + s * 0.001) for s in range(start, start + n)]
    conn.execute("BEGIN")
    conn.executemany(INSERT_POINT, pts)
    conn.executemany(UPSERT_SUMMARY, summarize_points(pts))
    conn.execute("UPDATE runs SET updated = ? WHERE id = ?", (time.time(), rid))
    conn.execute("COMMIT")
    conn.close()


def wait_passes(sync, n: int) -> None:
    while sync.passes < n:
        if sync.error:
            raise RuntimeError(sync.error)
        time.sleep(0.01)


def main():
    from mlflow_service import running_mlflow

    from nbexp.export.mlflow import export_runs
    from nbexp.export.sync import Sync

    root = Path(tempfile.mkdtemp(prefix="nbexp-bench-sync-"))
    with running_mlflow(root) as server:
        times = per_cell(server.uri, root)
        ledger = root / "ledger.sqlite"
        ids = build_ledger(ledger)
        t = time.perf_counter()
        sync = Sync(str(ledger), "s", server.uri, "sync-bench", interval=3600)
        wait_passes(sync, 1)
        t_sync = time.perf_counter() - t
        with Reader(ledger) as r:
            t = time.perf_counter()
            stats = export_runs(r, ids, server.uri, "export-bench")
            t_export = time.perf_counter() - t
        assert stats["points"] == RUNS * POINTS
        # 1,000 new points in one run: a sync pass, and a plain export of all the runs again
        add_points(ledger, ids[0], POINTS, 1000)
        t = time.perf_counter()
        sync.wake()
        wait_passes(sync, 2)
        t_sync_incr = time.perf_counter() - t
        with Reader(ledger) as r:
            t = time.perf_counter()
            export_runs(r, ids, server.uri, "export-bench")
            t_export_incr = time.perf_counter() - t
        sync.close(5)
        t = time.perf_counter()
        Sync(str(ledger), "s", server.uri, "sync-bench", interval=3600).close(60)  # a fresh sync: nothing new
        t_idle = time.perf_counter() - t

    def ms(xs):
        return f"{statistics.median(xs) * 1000:.2f} / {statistics.quantiles(xs, n=20)[18] * 1000:.2f}"

    print(f"\nPer-cell time on the cell's thread, {CELLS} cells each (50 points + a param), median / p95 ms:\n")
    print("| tracking | per cell |")
    print("|---|---|")
    print(f"| no sync | {ms(times['plain'])} |")
    print(f"| --sync (server up) | {ms(times['sync'])} |")
    total = RUNS * POINTS
    print(f"\nThroughput, {RUNS} runs x {POINTS:,} points ({total:,}):\n")
    print("| | seconds | points/s |")
    print("|---|---|---|")
    print(f"| live sync, first pass | {t_sync:.1f} | {total / t_sync:,.0f} |")
    print(f"| nbexp export mlflow | {t_export:.1f} | {total / t_export:,.0f} |")
    print(f"| sync pass, 1,000 new points in one run | {t_sync_incr:.2f} | |")
    print(f"| export again, 1,000 new points in one run | {t_export_incr:.2f} | |")
    print(f"| a fresh sync's pass over {RUNS} synced runs (counts every key on the server) | {t_idle:.2f} | |")


if __name__ == "__main__":
    main()
