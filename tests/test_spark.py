"""Spark DataFrames summarized by Spark itself (docs/design.md "Data summaries"), in a real local Spark.

A local SparkSession (its JVM on 127.0.0.1) is started once for the module and stopped,
JVM included, at its end.
"""

from __future__ import annotations

import pytest

from nbexp.capture import data as data_capture

pyspark = pytest.importorskip("pyspark", reason="pyspark is in the dev extras")  # noqa: F841
pytestmark = pytest.mark.slow  # a local Spark JVM


@pytest.fixture(scope="module")
def spark():
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("nbexp-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    gateway = SparkContext._gateway
    session.stop()
    if gateway is not None:
        gateway.shutdown()
        gateway.proc.kill()
        gateway.proc.wait(30)
    SparkContext._gateway = SparkContext._jvm = None


SPARK_SETUP = """
from pyspark.sql import functions as F
def load(shift=0.0, missing=0.0, rare=False, seed=0, n=50000):
    d = spark.range(n)
    d = d.withColumn('a', F.randn(seed) + shift).withColumn('b', F.randn(seed + 1) * 2 + 5)
    d = d.withColumn('b', F.when(F.rand(seed + 2) < missing, None).otherwise(F.col('b')))
    d = d.withColumn('c', F.rand(seed + 3))
    d = d.withColumn('color', F.element_at(F.array(F.lit('red'), F.lit('blue'), F.lit('green')),
                                           (F.floor(F.rand(seed + 4) * 3) + 1).cast('int')))
    d = d.withColumn('user', F.concat(F.lit('u'), (F.col('id') % 1000).cast('string')))
    d = d.withColumn('y', (F.rand(seed + 5) < (0.05 if rare else 0.5)).cast('int'))
    return d.drop('id')
"""


@pytest.fixture
def collected(monkeypatch):
    """Rows each collect() brought to the driver; toPandas and rdd are off limits."""
    from pyspark.sql.classic.dataframe import DataFrame

    sizes: list[int] = []
    original = DataFrame.collect

    def counting(self):
        rows = original(self)
        sizes.append(len(rows))
        return rows

    def forbidden(self, *a, **k):
        raise AssertionError("the whole frame was brought to the driver")

    monkeypatch.setattr(DataFrame, "collect", counting)
    monkeypatch.setattr(DataFrame, "toPandas", forbidden)
    monkeypatch.setattr(DataFrame, "toLocalIterator", forbidden)
    return sizes


def run_data(reader, ref="latest"):
    r = reader()
    return {d["name"]: d for d in r.data(r.resolve(ref))}


def col(item, name):
    return {c["name"]: c for c in item["summary"]["columns"]}[name]


def test_spark_summary_by_spark_aggregations(spark, cell, reader, shell, collected):
    shell.user_ns["spark"] = spark
    cell("%nbexp track")
    cell(SPARK_SETUP)
    cell("train = load(missing=0.1, seed=1)\nscore = float(train.count())")
    item = run_data(reader)["train"]
    assert item["kind"] == "spark-dataframe" and item["shape"] == [50000, 6]
    # aggregates only: one row of statistics, one of quantiles and histograms, and at most 51 value
    # counts for each of the 3 counted columns (color, user and the label y), in one collect
    assert collected and max(collected) <= 3 * (data_capture.CATEGORY_KEEP + 1)
    frame = shell.user_ns["train"]
    from pyspark.sql import functions as F

    ref = frame.agg(
        F.mean("b").alias("mean"),
        F.stddev("b").alias("std"),
        F.min("b").alias("min"),
        F.max("b").alias("max"),
        F.count(F.when(F.col("b").isNull(), 1)).alias("missing"),
        F.percentile("b", 0.5).alias("p50"),
        F.percentile("b", 0.99).alias("p99"),
    ).first()
    b = col(item, "b")
    assert b["missing"] == ref["missing"] and 4000 < b["missing"] < 6000
    assert b["mean"] == pytest.approx(ref["mean"]) and b["std"] == pytest.approx(ref["std"])
    assert b["min"] == pytest.approx(ref["min"]) and b["max"] == pytest.approx(ref["max"])
    assert b["p50"] == pytest.approx(ref["p50"], abs=0.01) and b["p99"] == pytest.approx(ref["p99"], abs=0.02)
    assert sum(b["histogram"]["counts"]) == 50000 - ref["missing"]
    user = col(item, "user")
    assert user["distinct"] == 1000 and "categories" not in user  # exact, every row
    assert len(user["top"]) == data_capture.TOP_VALUES and user["top"][0][1] == 50
    color = col(item, "color")
    exact = {r["color"]: r["count"] for r in frame.groupBy("color").count().collect()}
    assert color["categories"] == exact and color["distinct"] == 3
    y = col(item, "y")
    assert y["label"] and y["imbalanced"] is False and set(y["classes"]) == {"0", "1"}
    assert "percentile_approx" in item["summary"]["approximate"]


def test_large_spark_frame_quantiles_come_from_a_spark_sample(spark, cell, reader, shell, collected, monkeypatch):
    monkeypatch.setattr(data_capture.summary, "ROW_BUDGET", 10_000)  # the backends read it there
    shell.user_ns["spark"] = spark
    cell("%nbexp track")
    cell(SPARK_SETUP)
    cell("train = load(seed=4)\nscore = float(train.count())")
    item = run_data(reader)["train"]
    sampled = item["summary"]["sampled"]
    assert sampled["of"] == 50000 and 9000 < sampled["rows"] < 11000 and sampled["by"] == "spark"
    assert max(collected) <= 3 * (data_capture.CATEGORY_KEEP + 1)
    from pyspark.sql import functions as F

    ref = (
        shell.user_ns["train"]
        .agg(F.mean("a").alias("mean"), F.max("a").alias("max"), F.percentile("a", 0.5).alias("p50"))
        .first()
    )
    a = col(item, "a")
    assert a["mean"] == pytest.approx(ref["mean"]) and a["max"] == ref["max"]  # exact: every row
    assert a["p50"] == pytest.approx(ref["p50"], abs=0.05)  # from ~10,000 rows
    assert sum(a["histogram"]["counts"]) == sampled["rows"]


def test_spark_drift_and_imbalance(spark, shell, drift_scenario):
    shell.user_ns["spark"] = spark
    df, columns = drift_scenario(SPARK_SETUP, "score = float(train.count())")
    assert set(df.loc[df["flags"] != "", "column"]) == {"a", "b", "y"}
    assert columns["y"]["imbalanced"] is True


def test_spark_fingerprint_is_content_not_order(spark):
    from pyspark.sql import functions as F

    df = spark.range(2000).withColumn("x", F.col("id") * 0.5).withColumn("s", F.col("id").cast("string"))
    fp, exact = data_capture.fingerprint(df, "spark-dataframe")
    shuffled = df.repartition(3).orderBy(F.rand(7))
    assert exact and data_capture.fingerprint(shuffled, "spark-dataframe")[0] == fp
    changed = df.withColumn("x", F.when(F.col("id") == 1999, 0.0).otherwise(F.col("x")))
    assert data_capture.fingerprint(changed, "spark-dataframe")[0] != fp
    # the same content built another way (a different plan) has the same fingerprint
    rebuilt = spark.createDataFrame([(i, i * 0.5, str(i)) for i in range(2000)], "id long, x double, s string")
    assert data_capture.fingerprint(rebuilt, "spark-dataframe")[0] == fp


def test_unchanged_spark_frame_is_summarized_once(spark, cell, db, shell):
    shell.user_ns["spark"] = spark
    cell("%nbexp track")
    cell(SPARK_SETUP)
    cell("train = load(seed=3, n=2000)")
    for _ in range(3):  # three runs, one summary
        cell("%nbexp new")
        cell("score = float(train.count())")
    conn = db()
    assert conn.execute("SELECT count(*) FROM datasets WHERE kind = 'spark-dataframe'").fetchone()[0] == 1
    assert conn.execute("SELECT count(DISTINCT run_id) FROM run_data WHERE name = 'train'").fetchone()[0] == 3


@pytest.mark.parametrize(
    "code",
    [
        "obj = spark.createDataFrame([], 'a double, s string')",
        "obj = spark.range(10).select(F.lit(None).cast('double').alias('a'))",
        "obj = spark.range(10).select(F.array('id').alias('arr'), F.create_map(F.lit('k'), 'id').alias('m'),"
        " F.struct('id').alias('st'), (F.col('id') > 3).alias('flag'), F.col('id').cast('decimal(10,2)').alias('d'),"
        " F.when(F.col('id') == 2, float('nan')).when(F.col('id') == 3, float('inf')).otherwise(1.0).alias('weird'),"
        " F.current_date().alias('day'))",
        "obj = spark.range(5).select(F.col('id').alias('a.b'), F.col('id').alias('x`y'))",
    ],
)
def test_awkward_spark_data_gives_a_summary(spark, cell, reader, shell, capsys, code):
    shell.user_ns["spark"] = spark
    cell("%nbexp track")
    res = cell("from pyspark.sql import functions as F\n" + code + "\nscore = 2.0 if obj is not None else 0.0")
    assert res.success
    summary = run_data(reader)["obj"]["summary"]
    assert summary is not None and "Traceback" not in capsys.readouterr().err
    if "weird" in code:
        weird = col({"summary": summary}, "weird")
        assert weird["missing"] == 1 and weird["inf"] == 1 and weird["max"] == 1.0


CONNECT_SCRIPT = """
import json, sys
from pyspark.sql import SparkSession, functions as F
from nbexp.capture import data
spark = SparkSession.builder.remote("local[1]").getOrCreate()
try:
    df = spark.range(2000).withColumn("x", F.col("id") * 0.5).withColumn("s", F.col("id").cast("string"))
    kind = data.kind_of(df)
    summary = data.summarize(df, kind, "df")
    print(json.dumps({"kind": kind, "type": type(df).__module__, "fingerprint": data.fingerprint(df, kind)[0],
                      "signature_same": data.signature(df, kind) == data.signature(df, kind),
                      "x": {c["name"]: c for c in summary["columns"]}["x"]}))
finally:
    spark.stop()
"""


def test_spark_connect_frames_take_the_same_path(spark, tmp_path):
    """A Spark Connect DataFrame (another class, same base) is summarized by Spark and has the
    fingerprint the classic API gives the same rows. Its local Connect server runs in a child
    process, stopped with it."""
    import json
    import subprocess
    import sys

    from pyspark.sql import functions as F

    proc = subprocess.run(
        [sys.executable, "-c", CONNECT_SCRIPT], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["kind"] == "spark-dataframe" and got["type"].startswith("pyspark.sql.connect")
    assert got["signature_same"]
    classic = spark.range(2000).withColumn("x", F.col("id") * 0.5).withColumn("s", F.col("id").cast("string"))
    assert got["fingerprint"] == data_capture.fingerprint(classic, "spark-dataframe")[0]
    assert got["x"]["mean"] == pytest.approx(499.75) and got["x"]["max"] == 999.5 and got["x"]["missing"] == 0
