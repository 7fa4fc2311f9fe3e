"""MLflow export speed (issue #8). Prints a Markdown table for bench/RESULTS.md.

20 runs x 10,000 points in a ledger, a real `mlflow server` on 127.0.0.1 (sqlite backend),
then in the same run: `nbexp export mlflow` of those runs, and MLflow's own best case: one
`log_batch` loop of the same points (chunks of 1,000) into fresh runs on the same server.

    .venv/bin/python bench/bench_export.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from nbexp.ledger import connect, sprint_of  # noqa: E402
from nbexp.ledger.queries import Reader  # noqa: E402
from nbexp.ledger.writer import INSERT_POINT, UPSERT_SUMMARY, summarize_points  # noqa: E402

RUNS, POINTS = 20, 10_000


def build_ledger(path: Path) -> list[str]:
    """A ledger at ``path`` with RUNS finished runs of POINTS ``loss`` points each (summaries included), as
    the tracker would have left it; returns the run ids. bench/bench_sync.py builds its ledger with it too."""
    conn = connect(path)
    now = time.time()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO sessions (id, host, pid, started, ended) VALUES ('s', 'bench', 1, ?, ?)", (now, now))
    ids, points = [], []
    for i in range(RUNS):
        rid = f"{i:06x}"
        ids.append(rid)
        conn.execute(
            "INSERT INTO runs (id, session_id, sprint, name, kind, status, start_time, end_time) "
            "VALUES (?, 's', ?, ?, 'new', 'finished', ?, ?)",
            (rid, sprint_of(now), f"r{i}", now + i, now + i + 1),
        )
        points += [(rid, "loss", s, 1.0 / (s + 1), now + s * 0.001) for s in range(POINTS)]
    conn.executemany(INSERT_POINT, points)
    conn.executemany(UPSERT_SUMMARY, summarize_points(points))
    conn.execute("COMMIT")
    conn.close()
    return ids


def main():
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient
    from mlflow_service import running_mlflow

    from nbexp.export.mlflow import export_runs

    root = Path(tempfile.mkdtemp(prefix="nbexp-bench-export-"))
    ledger = root / "ledger.sqlite"
    ids = build_ledger(ledger)
    now = time.time()
    with running_mlflow(root) as server:
        with Reader(ledger) as r:
            t = time.perf_counter()
            stats = export_runs(r, ids, server.uri, "nbexp-bench")
            t_nbexp = time.perf_counter() - t
        client = MlflowClient(server.uri)
        exp = client.create_experiment("mlflow-ceiling")
        t = time.perf_counter()
        for _ in range(RUNS):
            mid = client.create_run(exp).info.run_id
            batch = [Metric("loss", 1.0 / (s + 1), int((now + s * 0.001) * 1000), s) for s in range(POINTS)]
            for j in range(0, POINTS, 1000):
                client.log_batch(mid, metrics=batch[j : j + 1000])
            client.set_terminated(mid, "FINISHED")
        t_ceiling = time.perf_counter() - t
    total = RUNS * POINTS
    print("| measure | figure | goal |\n|---|---|---|")
    print(
        f"| nbexp export mlflow, {RUNS} runs x {POINTS:,} points | {t_nbexp:.1f} s ({total / t_nbexp:,.0f} points/s; "
        f"{stats['points']:,} points sent, with tags, code and artifacts) | |"
    )
    print(
        f"| MLflow's own log_batch loop, same points, same server | {t_ceiling:.1f} s "
        f"({total / t_ceiling:,.0f} points/s) | |"
    )
    print(f"| ratio nbexp / ceiling (throughput) | {t_ceiling / t_nbexp:.2f} x | >= 0.7 x |")


if __name__ == "__main__":
    main()
