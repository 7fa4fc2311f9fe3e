"""Data summary cost (issue #5). Prints a Markdown table for bench/RESULTS.md.

A 1,000,000 x 20 mixed DataFrame (12 float columns, 2 of them with 10% missing, 3 int,
3 pandas categoricals, 2 object string columns, one with missing values). nbexp's cost is
what its worker thread does for new data (fingerprint + summary) and what a cell pays for
unchanged data (the cheap signature check). whylogs (`why.log`) and pandas
`describe(include="all")` profile the same frame in the same run as references.
whylogs 1.6 needs NumPy < 2, so it runs in its own venv (.venv-whylogs, made by
`make bench`) on the same frame, built by the same function and seed.

    .venv/bin/python bench/bench_data.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

WHYLOGS_PY = Path(__file__).resolve().parents[1] / ".venv-whylogs" / "bin" / "python"


def frame(n=1_000_000, seed=0):
    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(12):
        x = rng.normal(i, 1 + i, n)
        if i < 2:
            x[rng.random(n) < 0.1] = np.nan
        cols[f"f{i}"] = x
    for i in range(3):
        cols[f"i{i}"] = rng.integers(0, 10 ** (i + 1), n)
    for i in range(3):
        cols[f"c{i}"] = pd.Categorical(rng.choice([f"k{j}" for j in range(5 * (i + 1))], n))
    cols["s0"] = rng.choice(["alpha", "beta", "gamma", "delta"], n).astype(object)
    s1 = rng.choice(["x", "y", "z"], n).astype(object)
    s1[rng.random(n) < 0.05] = None
    cols["s1"] = s1
    return pd.DataFrame(cols)


def timed(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def whylogs_seconds() -> float | None:
    """Time whylogs' why.log on the same frame, in its own interpreter."""
    if os.environ.get("NBEXP_BENCH_WHYLOGS_CHILD"):
        import whylogs as why

        df = frame()
        return timed(lambda: why.log(df), repeat=1)
    if not WHYLOGS_PY.exists():
        return None
    out = subprocess.run(
        [str(WHYLOGS_PY), __file__],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NBEXP_BENCH_WHYLOGS_CHILD": "1"},
    )
    return float(out.stdout.strip().splitlines()[-1])


def polars_rows(df, t_pandas: float) -> list[tuple[str, str, str]]:
    """The same frame as a polars DataFrame, summarized without pandas."""
    import polars as pl

    from nbexp.capture import data

    pdf = pl.from_pandas(df)
    t_all = timed(lambda: (data.fingerprint(pdf, "polars-dataframe"), data.summarize(pdf, "polars-dataframe", "df")))
    checks = []
    for _ in range(50):
        t = time.perf_counter()
        data.signature(pdf, "polars-dataframe")
        checks.append(time.perf_counter() - t)
    return [
        ("polars: fingerprint + summary (same frame)", f"{t_all:.2f} s ({t_all / t_pandas:.2f} x pandas path)", ""),
        ("polars: re-check of unchanged data", f"{statistics.median(checks) * 1e3:.2f} ms", "<= 5 ms"),
    ]


def spark_rows(df) -> list[tuple[str, str, str]]:
    """The same frame as a cached Spark DataFrame in local[2] Spark, summarized by Spark."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    from nbexp.capture import data

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        plain = df.astype({c: object for c in ("c0", "c1", "c2")})
        sdf = spark.createDataFrame(plain).cache()
        sdf.count()
        t_fp = timed(lambda: data.fingerprint(sdf, "spark-dataframe"), repeat=2)
        t_sum = timed(lambda: data.summarize(sdf, "spark-dataframe", "df"), repeat=2)
        t_ref = timed(lambda: sdf.summary().collect(), repeat=2)
        t_sig = timed(lambda: data.signature(sdf, "spark-dataframe"), repeat=20)
    finally:
        gateway = SparkContext._gateway
        spark.stop()
        if gateway is not None:
            gateway.shutdown()
            gateway.proc.kill()
    return [
        (
            "Spark local[2], cached: fingerprint + summary",
            f"{t_fp + t_sum:.2f} s (fingerprint {t_fp:.2f} s, summary {t_sum:.2f} s)",
            "off the cell's path",
        ),
        (
            "Spark's own DataFrame.summary() (count, mean, std, min, 25/50/75%, max)",
            f"{t_ref:.2f} s ({t_ref / (t_fp + t_sum):.2f} x nbexp)",
            "reference",
        ),
        ("Spark: re-check of unchanged data (schema + plan hash)", f"{t_sig * 1e3:.2f} ms", "<= 5 ms"),
    ]


def main():
    from nbexp.capture import data

    df = frame()
    size = df.memory_usage(deep=True).sum()

    def nbexp_summary():
        data.fingerprint(df, "dataframe")
        data.summarize(df, "dataframe", "df")

    t_fp = timed(lambda: data.fingerprint(df, "dataframe"))
    t_sum = timed(lambda: data.summarize(df, "dataframe", "df"))
    t_all = timed(nbexp_summary)
    checks = []
    for _ in range(50):
        t = time.perf_counter()
        data.signature(df, "dataframe")
        checks.append(time.perf_counter() - t)
    tracemalloc.start()
    nbexp_summary()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t_desc = timed(lambda: df.describe(include="all"), repeat=1)
    rows = [
        ("frame", f"1,000,000 x 20, {size / 1e6:.0f} MB in memory", ""),
        (
            "nbexp fingerprint + summary (new data, worker thread)",
            f"{t_all:.2f} s (fingerprint {t_fp:.2f} s, summary {t_sum:.2f} s)",
            "<= 1 s",
        ),
        ("re-check of unchanged data (in the cell)", f"{statistics.median(checks) * 1e3:.2f} ms", "<= 5 ms"),
        ("peak extra memory (tracemalloc)", f"{peak / 1e6:.0f} MB = {peak / size:.2f} x the frame", "<= 0.5 x"),
        ("pandas describe(include='all')", f"{t_desc:.2f} s ({t_desc / t_all:.1f} x nbexp)", "reference"),
    ]
    rows += polars_rows(df, t_all) + spark_rows(df)
    df = None  # free the frame before whylogs builds its own
    t_why = whylogs_seconds()
    if t_why is None:
        rows.append(("whylogs why.log", "not measured (.venv-whylogs missing: make bench creates it)", ""))
    else:
        rows.append(
            (
                "whylogs 1.6.4 why.log (NumPy 1.26, own venv)",
                f"{t_why:.2f} s ({t_why / t_all:.1f} x nbexp)",
                "nbexp >= 10 x faster",
            )
        )
    print("| measure | figure | goal |\n|---|---|---|")
    for name, fig, goal in rows:
        print(f"| {name} | {fig} | {goal} |")
    from nbexp.capture import data

    print(
        f"\nSampled: rows beyond {data.ROW_BUDGET:,} -> quantiles, histograms and category counts from a "
        f"fixed-seed sample of {data.ROW_BUDGET:,} rows; counts, missing, min, max, mean, std exact; "
        "the fingerprint always covers every value."
    )


if __name__ == "__main__":
    if os.environ.get("NBEXP_BENCH_WHYLOGS_CHILD"):
        print(whylogs_seconds())
        sys.exit(0)
    main()
