"""Search benchmark (issue #19): the LIKE search of schema 7 against the FTS5 index of schema 8, and what
the index's triggers add to the writes a kernel makes. Prints Markdown tables; copy them to bench/RESULTS.md.

The ledger is synthetic, written with plain SQL through nbexp's own connection (migrated, triggers on):
sessions of 100 runs, each run with a name, 4 params, a tag on one run in ten and one cell of code (its
own text, 12 lines; 1 run in 100 uses a focal loss). Both searches run through ``Reader.query_runs`` as
the sidebar calls it (all sprints, a page of 200); "LIKE" is the same reader with the index ignored.

    .venv/bin/python bench/bench_search.py              # 10,000 and 100,000 runs
    .venv/bin/python bench/bench_search.py 10000        # one size
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from nbexp.ledger import connect, transaction
from nbexp.ledger.bundle import drop_derived
from nbexp.ledger.queries import Reader

TMP = Path(tempfile.mkdtemp(prefix="nbexp-bench-search-"))
OPTIMIZERS = ["adam", "adamw", "sgd", "rmsprop"]
ARCHS = ["resnet18", "resnet50", "vit-small", "mlp", "convnext"]
QUERIES = [
    ("a word in names (resnet50)", "resnet50"),
    ("a param value (rmsprop)", "rmsprop"),
    ("key=value (optimizer=sgd)", "optimizer=sgd"),
    ("a word only in code, 1% of runs (focal)", "focal"),
    ("two words (convnext rmsprop)", "convnext rmsprop"),
    ("no match (zebrafish)", "zebrafish"),
]


def code_of(i: int) -> str:
    loss = "FocalLoss(gamma=2.0)" if i % 100 == 7 else "nn.CrossEntropyLoss()"
    return "\n".join(
        [
            "import torch",
            "from torch import nn",
            f"model = build('{ARCHS[i % len(ARCHS)]}', width={64 + i % 7 * 32})",
            f"criterion = {loss}",
            f"optimizer = torch.optim.{OPTIMIZERS[i % 4].capitalize()}(model.parameters(), lr={1e-4 * (1 + i % 13)})",
            "for epoch in range(EPOCHS):",
            "    for x, y in loader:",
            "        optimizer.zero_grad()",
            "        loss = criterion(model(x), y)",
            "        loss.backward()",
            "        optimizer.step()",
            f"    nbexp.log(loss=loss.item())  # run {i}",
        ]
    )


def build(n: int) -> Path:
    """A ledger of ``n`` runs; returns its path."""
    path = TMP / f"ledger-{n}.sqlite"
    conn = connect(path)
    t0 = 1.7e9
    with transaction(conn):
        conn.executemany(
            "INSERT INTO sessions (id, host, pid, started, ended) VALUES (?, 'bench', 1, ?, ?)",
            [(f"s{j:06d}", t0 + j * 1000, t0 + j * 1000 + 999) for j in range((n + 99) // 100)],
        )
        runs, params, tags, code, cells = [], [], [], [], []
        for i in range(n):
            rid, start = f"{i:08x}", t0 + i * 10
            runs.append((rid, f"s{i // 100:06d}", "2023-11-14", f"{ARCHS[i % 5]}-{i}", start, start + 9))
            params += [
                (rid, "lr", repr(1e-4 * (1 + i % 13)), "float", "assign"),
                (rid, "batch_size", str(32 << i % 4), "int", "assign"),
                (rid, "optimizer", f'"{OPTIMIZERS[i % 4]}"', "str", "assign"),
                (rid, "model.arch", f'"{ARCHS[i % 5]}"', "str", "assign"),
            ]
            if i % 10 == 0:
                tags.append((rid, "sweep"))
            code.append((f"{i:016x}", code_of(i)))
            cells.append((f"s{i // 100:06d}", rid, f"k{i}", f"{i:016x}", start + 1))
        conn.executemany(
            "INSERT INTO runs (id, session_id, sprint, name, kind, status, start_time, end_time) "
            "VALUES (?, ?, ?, ?, 'track', 'finished', ?, ?)",
            runs,
        )
        conn.executemany("INSERT INTO params VALUES (?, ?, ?, ?, ?)", params)
        conn.executemany("INSERT INTO run_tags VALUES (?, ?)", tags)
        conn.executemany("INSERT INTO code VALUES (?, ?)", code)
        conn.executemany(
            "INSERT INTO cells (session_id, run_id, cell_key, code_hash, start, status) VALUES (?, ?, ?, ?, ?, 'ok')",
            cells,
        )
    conn.close()
    return path


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def search_table(sizes: list[int]) -> None:
    print("| runs | query | LIKE (schema 7) ms | matches | FTS5 ms | matches |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in sizes:
        t = time.perf_counter()
        path = build(n)
        built = time.perf_counter() - t
        with Reader(path) as fts, Reader(path) as like:
            like._indexed = False  # the schema-7 search: LIKE over runs, tags and params
            for label, text in QUERIES:
                results = []
                for r in (like, fts):
                    s, (_runs, total) = timed(lambda r=r, text=text: r.query_runs(limit=200, search=text))
                    results += [s * 1000, total]
                print(f"| {n:,} | {label} | {results[0]:.1f} | {results[1]:,} | {results[2]:.1f} | {results[3]:,} |")
        size = path.stat().st_size / 2**20
        print(f"| {n:,} | (ledger built in {built:.1f} s, {size:.0f} MiB with the index) | | | | |")


FIFTY = "\n".join(f"p{i} = compute_feature(x, {i}) * 0.5  # feature {i}" for i in range(50))


def write_costs(indexed: bool) -> tuple[float, float]:
    """Median seconds of a new 50-line cell (its code and cell rows) and of 1,000 params, one transaction each."""
    conn = connect(TMP / f"writes-{indexed}.sqlite")
    if not indexed:
        drop_derived(conn)  # schema 8 without the views, the index and its triggers
        conn.execute("DROP INDEX cells_code")  # the index the code search joins through
    conn.execute("INSERT INTO sessions (id, started) VALUES ('s', 0)")
    conn.execute(
        "INSERT INTO runs (id, session_id, sprint, status, start_time) VALUES ('r', 's', '2023-11-14', 'running', 0)"
    )
    k = [0]

    def cell_insert():
        k[0] += 1
        with transaction(conn):
            conn.execute("INSERT OR IGNORE INTO code VALUES (?, ?)", (f"{k[0]:016x}", f"{FIFTY}\n# {k[0]}"))
            conn.execute(
                "INSERT INTO cells (session_id, run_id, cell_key, code_hash, start, status) "
                "VALUES ('s', 'r', ?, ?, 0, 'ok')",
                (str(k[0]), f"{k[0]:016x}"),
            )

    def params_insert():
        k[0] += 1
        with transaction(conn):
            conn.executemany(
                "INSERT OR REPLACE INTO params VALUES ('r', ?, ?, 'float', 'assign')",
                [(f"block{k[0]}.layer{j}.weight_decay", repr(j * 1e-5)) for j in range(1000)],
            )

    try:
        return timed(cell_insert, 200)[0], timed(params_insert, 9)[0]
    finally:
        conn.close()


def write_table() -> None:
    """What the index's triggers (and the cells_code index) add to a kernel's writes."""
    (c0, p0), (c1, p1) = write_costs(False), write_costs(True)
    print("| write | no index ms | with FTS5 triggers ms | added ms |")
    print("|---|---:|---:|---:|")
    print(f"| a new 50-line cell (code + cells row) | {c0 * 1000:.3f} | {c1 * 1000:.3f} | {(c1 - c0) * 1000:.3f} |")
    print(f"| 1,000 params (one transaction) | {p0 * 1000:.1f} | {p1 * 1000:.1f} | {(p1 - p0) * 1000:.1f} |")


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    print(f"SQLite {__import__('sqlite3').sqlite_version}, Python {sys.version.split()[0]}\n")
    write_table()
    print()
    search_table(sizes)
