"""Spark DataFrames, summarized by Spark's own aggregations: nothing is collected to the driver.

Only reached when the user has imported pyspark (:func:`nbexp.capture.data.kind_of`).
The driver receives aggregate rows only: one row of per-column statistics, one row of
quantiles and histogram counts, and at most ``CATEGORY_KEEP + 1`` value counts per
categorical column (all columns' counts in one collect).

- Counts, missing values (null, and NaN for floating columns), min, max, mean, std, zeros,
  category counts and the distinct counts of categorical columns are exact, over every row;
  the value counts of all categorical (and label) columns come from one Spark job. Quantiles,
  histograms and the distinct counts of numeric columns come from a fixed-seed Spark sample of
  about ``ROW_BUDGET`` rows when the frame is larger (as for pandas; the summary says so);
  quantiles by ``percentile_approx`` with accuracy :data:`ACCURACY` (rank error at most
  1/ACCURACY), distinct counts by ``approx_count_distinct``.
- The fingerprint is the row count plus two order-independent sums of per-row hashes
  (``xxhash64`` and ``hash``) computed by Spark: the same rows in any order and partitioning
  give the same fingerprint, on any machine.
- The cheap change check is identity, schema and Spark's semantic hash of the plan: a Spark
  DataFrame is immutable, so the same object with the same plan is taken as the same data
  (a source file rewritten under an unchanged object is not noticed until a new DataFrame
  is made from it).
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import summary as base

KINDS = frozenset({"spark-dataframe"})
ACCURACY = 10_000
SAMPLE_PARTITIONS = 4
NUMERIC = ("byte", "short", "integer", "long", "float", "double", "decimal")
TEMPORAL = ("date", "timestamp", "timestamp_ntz")
NESTED = ("array", "map", "struct")


def _F():
    from pyspark.sql import functions  # only reached once the user has imported pyspark

    return functions


def _col(name: str):
    return _F().col("`" + name.replace("`", "``") + "`")


def signature(obj: Any, kind: str) -> tuple:
    return (id(obj), obj.schema.simpleString(), obj.semanticHash())


def fingerprint(obj: Any, kind: str) -> tuple[str, bool]:
    F = _F()
    # Spark refuses to hash maps (their entry order is not fixed): those columns hash as JSON
    cols = [F.to_json(_col(f.name)) if "map<" in f.dataType.simpleString() else _col(f.name) for f in obj.schema.fields]
    if cols:
        row = obj.agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.xxhash64(*cols).cast("decimal(38,0)")).alias("h1"),
            F.sum(F.hash(*cols).cast("decimal(38,0)")).alias("h2"),
        ).first()
        parts = (row["n"], str(row["h1"]), str(row["h2"]))
    else:
        parts = (obj.count(), "", "")
    h = hashlib.blake2b(digest_size=10)
    h.update(kind.encode())
    h.update(repr((obj.schema.simpleString(), parts)).encode())
    return h.hexdigest(), True


def _type(field) -> str:
    return field.dataType.typeName()


def summarize(obj: Any, kind: str, name: str, label_names: set[str] | frozenset = frozenset()) -> dict:
    F = _F()
    fields = obj.schema.fields
    kept = fields[: base.MAX_COLUMNS]
    numeric = {f.name for f in kept if _type(f) in NUMERIC}
    floating = {f.name for f in kept if _type(f) in ("float", "double")}
    temporal = {f.name for f in kept if _type(f) in TEMPORAL}

    def finite(f):  # NaN and +-inf become null, as the pandas path drops them
        x = _col(f.name).cast("double")
        if f.name in floating:
            return F.when(F.isnan(x) | (F.abs(x) == float("inf")), None).otherwise(x)
        return x

    # pass 1: one row of per-column statistics
    exprs = [F.count(F.lit(1)).alias("n")]
    for i, f in enumerate(kept):
        c = _col(f.name)
        miss = (c.isNull() | F.isnan(c)) if f.name in floating else c.isNull()
        exprs.append(F.sum(F.when(miss, 1).otherwise(0)).alias(f"m{i}"))
        if f.name in numeric:
            x = finite(f)
            exprs += [
                F.min(x).alias(f"lo{i}"),
                F.max(x).alias(f"hi{i}"),
                F.mean(x).alias(f"mu{i}"),
                F.stddev_samp(x).alias(f"sd{i}"),
                F.count(x).alias(f"ok{i}"),
                F.sum(F.when(x == 0, 1).otherwise(0)).alias(f"z{i}"),
            ]
            if f.name in floating:
                exprs.append(F.sum(F.when(F.abs(c) == float("inf"), 1).otherwise(0)).alias(f"inf{i}"))
        elif f.name in temporal:
            exprs += [F.min(c).alias(f"lo{i}"), F.max(c).alias(f"hi{i}")]
    stats = obj.agg(*exprs).first().asDict()
    n = int(stats["n"])

    # categorical and label columns: value counts (exact distinct counts too) in one job below
    labels = {f.name for f in kept if base.LABEL_NAME.match(f.name) or f.name in label_names}
    counted = [
        (i, f) for i, f in enumerate(kept) if f.name not in temporal and (f.name not in numeric or f.name in labels)
    ]

    # pass 2, over a fixed-seed sample of about ROW_BUDGET rows beyond it: quantiles, distinct
    # counts of numeric columns and fixed-bin histograms between their (exact) min and max. The
    # (small) sample is shuffled into a few partitions: merging a quantile sketch per partition
    # of a many-partition frame costs more than the shuffle (1M rows, 100 partitions: 4x).
    sampled = n > base.ROW_BUDGET
    part = obj.sample(withReplacement=False, fraction=base.ROW_BUDGET / n, seed=base.SAMPLE_SEED) if sampled else obj
    part = part.repartition(SAMPLE_PARTITIONS)
    bins: dict[int, tuple[float, float]] = {}
    hist_exprs = [F.count(F.lit(1)).alias("n")]
    for i, f in enumerate(kept):
        if f.name in numeric and f.name not in labels:
            hist_exprs.append(F.approx_count_distinct(_col(f.name)).alias(f"d{i}"))
        if f.name in numeric and stats[f"lo{i}"] is not None:
            hist_exprs.append(F.percentile_approx(finite(f), base.QUANTILE_PROBS, ACCURACY).alias(f"q{i}"))
            lo, hi = float(stats[f"lo{i}"]), float(stats[f"hi{i}"])
            width = (hi - lo) / base.HIST_BINS if hi > lo else 1.0
            bins[i] = (lo, width)
            x = finite(f)  # least() skips nulls, so keep them out of every bin
            b = F.when(x.isNotNull(), F.least(F.floor((x - F.lit(lo)) / F.lit(width)), F.lit(base.HIST_BINS - 1)))
            hist_exprs += [F.sum(F.when(b == k, 1).otherwise(0)).alias(f"h{i}_{k}") for k in range(base.HIST_BINS)]
    hist = part.agg(*hist_exprs).first().asDict()
    value_counts = _value_counts(obj, counted)

    columns = []
    for i, f in enumerate(kept):
        missing = int(stats[f"m{i}"] or 0)
        col: dict[str, Any] = {
            "name": f.name,
            "dtype": f.dataType.simpleString(),
            "count": n,
            "missing": missing,
            "missing_rate": missing / n if n else 0.0,
        }
        is_label = f.name in labels
        pairs, distinct = value_counts.get(i, ([], None))  # exact, over every row
        if distinct is None:
            distinct = min(int(hist.get(f"d{i}") or 0), n - missing)  # the estimate can overshoot
        if f.name in numeric:
            col["type"] = "numeric"
            col["inf"] = int(stats.get(f"inf{i}") or 0)
            if i in bins:
                lo, width = bins[i]
                col.update(
                    min=base.as_float(stats[f"lo{i}"]),
                    max=base.as_float(stats[f"hi{i}"]),
                    mean=base.as_float(stats[f"mu{i}"]),
                    std=base.as_float(stats[f"sd{i}"]) if stats[f"ok{i}"] > 1 else None,
                    zeros=int(stats[f"z{i}"] or 0),
                )
                if hist[f"q{i}"] is not None:  # None: no finite value made it into the sample
                    q = [float(v) for v in hist[f"q{i}"]]
                    col["quantiles"] = q
                    for key, p in base.REPORTED_QUANTILES.items():
                        col[key] = q[base.QUANTILE_PROBS.index(p / 100)]
                    col["histogram"] = {
                        "counts": [int(hist[f"h{i}_{k}"] or 0) for k in range(base.HIST_BINS)],
                        "edges": [lo + k * width for k in range(base.HIST_BINS)] + [col["max"]],
                    }
            col["distinct"] = distinct
            if is_label:
                base.fill_categories(col, pairs, distinct, is_label=True)
        elif f.name in temporal:
            col["type"] = "datetime"
            if stats[f"lo{i}"] is not None:
                col["min"], col["max"] = str(stats[f"lo{i}"]), str(stats[f"hi{i}"])
        else:
            col["type"] = "categorical"
            base.fill_categories(col, pairs, distinct, is_label=is_label)
        columns.append(col)
    out: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "library": "spark",
        "shape": [n, len(fields)],
        "rows": n,
        "sampled": {"rows": int(hist["n"]), "of": n, "seed": base.SAMPLE_SEED, "by": "spark"} if sampled else None,
        "columns": columns,
        "approximate": f"quantiles by Spark percentile_approx (accuracy {ACCURACY}); "
        "distinct counts of numeric columns by approx_count_distinct",
    }
    if len(fields) > base.MAX_COLUMNS:
        out["truncated_columns"] = len(fields) - base.MAX_COLUMNS
    return out


def _value_counts(obj, fields: list[tuple[int, Any]]) -> dict[int, tuple[list[tuple[str, int]], int]]:
    """Per column index: the top CATEGORY_KEEP + 1 values with their exact counts, and the exact
    number of distinct values, for all ``fields`` in one Spark job (one scan of the data, not
    one per column): every row becomes (column, value) pairs, counted, ranked per column."""
    if not fields:
        return {}
    from pyspark.sql import Window

    F = _F()
    pairs = [
        F.struct(
            F.lit(i).alias("c"),
            (F.to_json(_col(f.name)) if _type(f) in NESTED else _col(f.name).cast("string")).alias("k"),
        )
        for i, f in fields
    ]
    counts = (
        obj.select(F.explode(F.array(*pairs)).alias("e"))
        .select("e.c", "e.k")
        .where(F.col("k").isNotNull())
        .groupBy("c", "k")
        .count()
    )
    ranked = (
        counts.withColumn("rank", F.row_number().over(Window.partitionBy("c").orderBy(F.desc("count"), F.asc("k"))))
        .withColumn("distinct", F.count(F.lit(1)).over(Window.partitionBy("c")))
        .where(F.col("rank") <= base.CATEGORY_KEEP + 1)
    )
    top: dict[int, list[tuple[str, int]]] = {i: [] for i, _ in fields}
    distinct: dict[int, int] = {}
    for row in ranked.orderBy("c", "rank").collect():
        top[row["c"]].append((_text(row["k"]), int(row["count"])))
        distinct[row["c"]] = int(row["distinct"])
    return {i: (top[i], distinct.get(i, 0)) for i, _ in fields}


def _text(value: Any) -> str:
    """Spark casts booleans to 'true'/'false'; the pandas and NumPy paths say 'True'/'False'."""
    return {"true": "True", "false": "False"}.get(value, value)
