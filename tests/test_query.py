"""The runs table's query language (nbexp/ledger/query.py): parsing, the SQL it makes (every value bound),
errors with their position, and ``Reader``-level results on a real SQLite ledger for every field kind."""

from __future__ import annotations

import json

import pytest

from nbexp.errors import InvalidArgument
from nbexp.ledger import connect, transaction
from nbexp.ledger.queries import Reader
from nbexp.ledger.query import Context, QueryError, compile_query, parse_field, parse_fields, table

T0 = 1.7e9


@pytest.fixture
def ledger(tmp_path):
    """Five runs: C and model params, auc and loss metrics, tags, data, a GPU figure, one run of a kernel
    that died while it ran (status running in the ledger, crashed for readers)."""
    path = tmp_path / "ledger.sqlite"
    conn = connect(path)
    rows = [
        # id, name, status, C, model, auc, loss (min, last), tags, data fp, gpu
        ("aaaa01", "base lr", "finished", 0.1, "tree", 0.95, (0.2, 0.3), ["baseline"], "f00d", 40.0),
        ("aaaa02", "wide lr", "finished", 10, "tree", 0.91, (0.1, 0.1), [], "f00d", None),
        ("aaaa03", "it's 50%", "failed", 0.5, "linear", 0.80, (0.5, 0.6), ["baseline", "x"], "beef", 90.0),
        ("aaaa04", "resnet_x", "finished", 1, "100", 0.99, (0.05, 0.05), [], None, None),
        ("aaaa05", "dead", "running", 0.01, "tree", None, None, [], None, None),
    ]
    with transaction(conn):
        conn.execute(
            "INSERT INTO sessions (id, host, pid, started, ended) VALUES ('s', 'elsewhere', 1, ?, ?)", (T0, T0)
        )
        conn.execute(
            "INSERT INTO sessions (id, host, pid, started, heartbeat) VALUES ('d', 'elsewhere', 2, ?, ?)", (T0, T0)
        )
        for i, (rid, name, status, c, model, auc, loss, tags, fp, gpu) in enumerate(rows):
            start = T0 + i * 100
            end = None if status == "running" else start + 10 * (i + 1)
            conn.execute(
                "INSERT INTO runs (id, session_id, sprint, name, kind, status, start_time, end_time, gpu_util_mean) "
                "VALUES (?, ?, '2023-11-14', ?, 'new', ?, ?, ?, ?)",
                (rid, "d" if status == "running" else "s", name, status, start, end, gpu),
            )
            conn.execute(
                "INSERT INTO params (run_id, key, value, type, source) VALUES (?, 'C', ?, ?, 'assign')",
                (rid, json.dumps(c), "int" if isinstance(c, int) else "float"),
            )
            conn.execute(
                "INSERT INTO params (run_id, key, value, type, source) VALUES (?, 'model', ?, 'str', 'assign')",
                (rid, json.dumps(model)),
            )
            if auc is not None:
                conn.execute(
                    "INSERT INTO metric_summaries (run_id, key, count, nan_count, min, max, last, last_step) "
                    "VALUES (?, 'auc', 1, 0, ?, ?, ?, 0)",
                    (rid, auc, auc, auc),
                )
            if loss is not None:
                conn.execute(
                    "INSERT INTO metric_summaries (run_id, key, count, nan_count, min, max, last, last_step) "
                    "VALUES (?, 'loss', 5, 0, ?, 1.0, ?, 4)",
                    (rid, loss[0], loss[1]),
                )
            for tag in tags:
                conn.execute("INSERT INTO run_tags (run_id, tag) VALUES (?, ?)", (rid, tag))
            if fp:
                conn.execute(
                    "INSERT INTO run_data (run_id, name, fingerprint, time) VALUES (?, 'X', ?, ?)", (rid, fp, start)
                )
    conn.close()
    return path


def ids(path, query, **kw):
    with Reader(path) as r:
        return sorted(row["id"] for row in table(r, sprint="all", query=query, limit=100, **kw)["rows"])


@pytest.mark.parametrize(
    "query, expected",
    [
        ("metrics.auc > 0.9", ["aaaa01", "aaaa02", "aaaa04"]),
        ("metrics.auc >= 0.95 and params.C < 1", ["aaaa01"]),
        ("min(metrics.loss) <= 0.1", ["aaaa02", "aaaa04"]),
        ("max(metrics.loss) = 1", ["aaaa01", "aaaa02", "aaaa03", "aaaa04"]),
        ("params.C = 10", ["aaaa02"]),
        ("params.C != 10", ["aaaa01", "aaaa03", "aaaa04", "aaaa05"]),
        ('params.model = "tree" and not params.C > 1', ["aaaa01", "aaaa05"]),
        ("params.model = 100", []),  # typed: the string "100" is not the number 100
        ('params.model = "100"', ["aaaa04"]),
        ("params.model ~ LIN", ["aaaa03"]),
        ("status = finished", ["aaaa01", "aaaa02", "aaaa04"]),
        ("status = crashed", ["aaaa05"]),  # running in the ledger, its kernel gone
        ("status = running", []),
        ("status != finished", ["aaaa03", "aaaa05"]),
        ("tag = baseline", ["aaaa01", "aaaa03"]),
        ("tag != baseline", ["aaaa02", "aaaa04", "aaaa05"]),
        ("tag ~ bas and tag = x", ["aaaa03"]),
        ('name ~ "lr"', ["aaaa01", "aaaa02"]),
        ('name ~ "50%"', ["aaaa03"]),  # % and _ taken literally
        ("name ~ _x", ["aaaa04"]),
        ("name = 'it''s 50%'", ["aaaa03"]),
        ('name !~ "lr" and (status = failed or status = crashed)', ["aaaa03", "aaaa05"]),
        ("duration >= 30", ["aaaa03", "aaaa04"]),
        (f"start_time > {T0 + 250}", ["aaaa04", "aaaa05"]),
        ("start_time > 2023-01-01", ["aaaa01", "aaaa02", "aaaa03", "aaaa04", "aaaa05"]),
        ("system.gpu_util_mean > 50", ["aaaa03"]),
        ("data.X = f00d", ["aaaa01", "aaaa02"]),
        ("metrics.auc > 0.9 or tag = x", ["aaaa01", "aaaa02", "aaaa03", "aaaa04"]),
        ("`params`.`C` < 0.2 AND metrics.auc > 0", ["aaaa01"]),
        ("", ["aaaa01", "aaaa02", "aaaa03", "aaaa04", "aaaa05"]),
    ],
)
def test_query_selects_runs(ledger, query, expected):
    assert ids(ledger, query) == expected


def test_every_value_is_bound_never_formatted_into_the_sql():
    evil = "x'; DROP TABLE runs; --"
    sql, args = compile_query(
        f'name = "{evil}" or params.{evil[0]} ~ "{evil}" or tag = "{evil}" or metrics.m > 1e-3', Context(["s9"])
    )
    assert "DROP" not in sql and evil in args and "%x'; DROP TABLE runs; --%" in args
    assert 0.001 in args and sql.count("?") == len(args)


def test_a_hostile_value_is_data(ledger):
    assert ids(ledger, 'name = "x\'; DROP TABLE runs; --"') == []
    assert len(ids(ledger, "")) == 5


@pytest.mark.parametrize(
    "query, position, words",
    [
        ("metrics.auc >", 13, "expected a value"),
        ("metrics.auc > 0.9 and", 21, "expected a field"),
        ("foo = 1", 0, "unknown field 'foo'"),
        ("status = done", 9, "unknown status 'done'"),
        ("(name = a", 9, "expected ')'"),
        ("name = a b", 9, "expected 'and', 'or'"),
        ('name = "abc', 7, "unclosed string"),
        ("metrics.auc > high", 14, "compare with a number"),
        ("name == 1", 6, "expected a value"),
        ("params.C <> 1", 10, "expected a value"),
        ("min(params.C) < 1", 0, "takes a metric"),
        ("system.nope > 1", 0, "unknown system field"),
        ("status > finished", 7, "status takes = or !="),
        ("name & 1", 5, "unexpected character '&'"),
        ("params.x = `open", 11, "unclosed `"),
    ],
)
def test_errors_name_the_problem_and_its_position(query, position, words):
    with pytest.raises(QueryError) as exc:
        compile_query(query)
    assert exc.value.position == position and words in exc.value.reason
    assert isinstance(exc.value, InvalidArgument)  # the project's error: the CLI and server map it


def test_fields_name_columns_and_round_trip():
    fields = parse_fields("name, metrics.auc, max(metrics.loss), params.`a, b`, system.gpu_util_mean, tag")
    assert [f.id for f in fields] == [
        "name",
        "metrics.auc",
        "max(metrics.loss)",
        "params.`a, b`",
        "system.gpu_util_mean",
        "tag",
    ]
    assert parse_field(fields[3].id) == fields[3]


def test_table_sorts_pages_and_shows_columns(ledger):
    with Reader(ledger) as r:
        page = table(r, sprint="all", sort="metrics.auc", columns="name,metrics.auc,params.C,status", limit=2)
        assert page["total"] == 5 and [row["id"] for row in page["rows"]] == ["aaaa04", "aaaa01"]
        assert page["rows"][0]["cells"] == {
            "name": "resnet_x",
            "metrics.auc": 0.99,
            "params.C": 1,
            "status": "finished",
        }
        rest = table(r, sprint="all", sort="metrics.auc", columns="metrics.auc", offset=2, limit=10)["rows"]
        assert [row["id"] for row in rest] == ["aaaa02", "aaaa03", "aaaa05"]  # no auc: last
        up = table(r, sprint="all", sort="metrics.auc", descending=False, columns="metrics.auc")["rows"]
        assert [row["id"] for row in up] == ["aaaa03", "aaaa02", "aaaa01", "aaaa04", "aaaa05"]  # no auc: last
        by_name = table(r, sprint="all", sort="name", descending=False)["rows"]
        assert [row["name"] for row in by_name] == sorted(row["name"] for row in by_name)
        assert by_name[0]["status"] in ("finished", "failed", "crashed")
        assert {row["status"] for row in by_name} == {"finished", "failed", "crashed"}
        assert page["available"]["params"] == ["C", "model"] and page["available"]["metrics"] == ["auc", "loss"]
        assert page["available"]["tags"] == ["baseline", "x"] and page["available"]["data"] == ["X"]


def test_table_groups_by_a_param_and_by_tags(ledger):
    with Reader(ledger) as r:
        page = table(r, sprint="all", group="params.model", sort="metrics.auc", columns="params.model")
    assert page["groups"] == [
        {"value": "100", "count": 1},
        {"value": "linear", "count": 1},
        {"value": "tree", "count": 3},
    ]
    assert [row["group"] for row in page["rows"]] == ["100", "linear", "tree", "tree", "tree"]
    assert [row["id"] for row in page["rows"]][2:] == ["aaaa01", "aaaa02", "aaaa05"]  # by auc in a group
    with Reader(ledger) as r:
        tags = table(r, sprint="all", group="tag")["groups"]
    assert tags == [
        {"value": "baseline", "count": 1},
        {"value": "baseline, x", "count": 1},
        {"value": None, "count": 3},
    ]


@pytest.mark.parametrize("arg", ["sort", "group", "columns"])
def test_a_bad_sort_group_or_column_names_its_argument(ledger, arg):
    with Reader(ledger) as r, pytest.raises(QueryError) as exc:
        table(r, sprint="all", **{arg: "metrics."})
    assert exc.value.argument == arg and exc.value.reason.startswith(f"{arg}: ")


def test_reader_and_runs_frame_take_a_query(ledger):
    import nbexp

    with Reader(ledger) as r:
        assert [x["id"] for x in r.list_runs(sprint="all", query="tag = baseline")] == ["aaaa03", "aaaa01"]
    df = nbexp.runs(ledger=str(ledger), query="metrics.auc > 0.9 and params.C < 5")
    assert sorted(df["run_id"]) == ["aaaa01", "aaaa04"]
    assert df["metrics.auc"].dtype == "float64" and set(df["params.model"]) == {"tree", "100"}
    with pytest.raises(QueryError):
        nbexp.runs(ledger=str(ledger), query="metrics.auc >")


def test_sprint_metric_counts_mark_a_metric_printed_only_when_every_run_printed_it(ledger):
    conn = connect(ledger)
    with transaction(conn):
        conn.execute("INSERT INTO metric_sources (run_id, key, source) VALUES ('aaaa01', 'auc', 'stdout')")
        for rid in ("aaaa01", "aaaa02", "aaaa03", "aaaa04"):
            conn.execute("INSERT INTO metric_sources (run_id, key, source) VALUES (?, 'loss', 'stdout')", (rid,))
        conn.execute("INSERT INTO metric_sources (run_id, key, source) VALUES ('aaaa05', 'gone', 'stdout')")
    conn.close()
    with Reader(ledger) as r:
        assert r.sprint_metric_counts("all") == {"auc": (4, False), "loss": (4, True)}
        assert r.sprint_metric_counts("2023-11-14") == {"auc": (4, False), "loss": (4, True)}
        assert r.sprint_metric_counts("2020-01-01") == {}


@pytest.fixture
def ties(tmp_path):
    """40 runs in two sprints whose metric ``m`` has ties, NaN (stored as NULL) or no value at all, started at
    times that tie too (then the later row is the newer), and a param ``k`` for queries: ``(path, runs)``, each
    run ``(id, sprint, start, m, k)`` in insertion order."""
    import random

    path = tmp_path / "ties.sqlite"
    conn = connect(path)
    rng = random.Random(7)
    runs = []
    with transaction(conn):
        conn.execute("INSERT INTO sessions (id, host, pid, started, ended) VALUES ('s', 'h', 1, ?, ?)", (T0, T0))
        for i in range(40):
            rid, sprint = f"r{i:03d}", "2023-11-14" if i % 3 else "2023-11-15"
            start = T0 + rng.choice([0, 10, 20, 30, i])  # ties in start time: the rowid decides
            m = rng.choice([0.1, 0.5, 0.5, 0.9, 2.0, "nan", None])
            k = rng.choice([1, 2, 2, 2.5, 2.0, None])  # 2 and 2.0: one group; None: the run has no k
            runs.append((rid, sprint, start, m, k))
            conn.execute(
                "INSERT INTO runs (id, session_id, sprint, name, status, start_time, end_time) "
                "VALUES (?, 's', ?, ?, 'finished', ?, ?)",
                (rid, sprint, rid, start, start + 1),
            )
            if k is not None:
                conn.execute(
                    "INSERT INTO params (run_id, key, value, type) VALUES (?, 'k', ?, ?)",
                    (rid, json.dumps(k), "int" if isinstance(k, int) else "float"),
                )
            if m is not None:
                last = None if m == "nan" else m  # the writer stores NaN as NULL
                conn.execute(
                    "INSERT INTO metric_summaries (run_id, key, count, nan_count, min, max, last, last_step) "
                    "VALUES (?, 'm', 1, ?, ?, ?, ?, 0)",
                    (rid, int(m == "nan"), last, last, last),
                )
    conn.close()
    return path, runs


def _expected_by_m(runs, descending, sprint=None, k=None):
    """The order the table promises: runs with a value of m by it (ties newest first: start time, then the later
    row), then the runs lacking it (no value or NaN) newest first."""
    keep = [(i, r) for i, r in enumerate(runs) if (sprint is None or r[1] == sprint) and (k is None or r[4] == k)]

    def key(item):
        i, (_rid, _sprint, start, m, _k) = item
        has = isinstance(m, float)
        return (0 if has else 1, (-m if descending else m) if has else 0, -start, -i)

    return [r[0] for _, r in sorted(keep, key=key)]


@pytest.mark.parametrize("walk", [True, False])
def test_table_sorted_by_a_metric_puts_runs_lacking_it_last_on_every_page(ties, walk, monkeypatch):
    """Sorting by a metric walks its index (schema 12) or sorts the matching runs: the same rows, page by page."""
    from nbexp.ledger import query

    if not walk:  # a query is taken as too rare a match to walk the index for
        monkeypatch.setattr(query, "INDEX_WALK_RUNS", 0)
    path, runs = ties
    with Reader(path) as r:
        for descending in (True, False):
            for sprint, q, k in (("all", None, None), ("2023-11-14", None, None), ("all", "params.k = 1", 1)):
                want = _expected_by_m(runs, descending, None if sprint == "all" else sprint, k)
                for limit in (7, 40):
                    got = []
                    for offset in range(0, len(want) + limit, limit):
                        page = table(
                            r,
                            sprint=sprint,
                            query=q,
                            sort="metrics.m",
                            descending=descending,
                            offset=offset,
                            limit=limit,
                            columns="metrics.m",
                            with_columns=False,
                        )
                        assert page["total"] == len(want)
                        got += [row["id"] for row in page["rows"]]
                    assert got == want, (descending, sprint, q, limit)


def test_runs_frame_of_many_runs_equals_the_frame_read_run_by_run(tmp_path, monkeypatch):
    """``nbexp.runs()`` reads a big listing key by key (one JSON array each) and a small one run by run: the same
    frame, column for column and dtype for dtype, whatever the params' types and which runs lack a key."""
    import math

    import pandas as pd

    import nbexp
    from nbexp.ledger import queries

    path = tmp_path / "types.sqlite"
    conn = connect(path)
    with transaction(conn):
        conn.execute("INSERT INTO sessions (id, host, pid, started, ended) VALUES ('s', 'h', 1, ?, ?)", (T0, T0))
        for i in range(12):
            rid = f"t{i:02d}"
            conn.execute(
                "INSERT INTO runs (id, session_id, sprint, name, status, start_time, end_time, gpu_util_mean) "
                "VALUES (?, 's', '2023-11-14', ?, 'finished', ?, ?, ?)",
                (rid, f"run {i}", T0 + i, T0 + i + 3, None if i % 2 else 50.0),
            )
            params = {
                "ints": (i, "int"),
                "floats": (math.nan if i == 3 else i / 4, "float"),
                "mixed": (i if i % 2 else i + 0.5, "int" if i % 2 else "float"),
                "text": (f"m{i % 3}", "str"),
                "flag": (i % 2 == 0, "bool"),
                "shape": ([i, 2], "list"),
                "ragged": (list(range(i % 3)), "list"),
                "none": (None, "none"),
            }
            if i % 3:
                params["some"] = (i * 1.5, "float")  # not every run
            if i % 4 == 0:
                params["int_or_bool"] = (True, "bool")
            elif i % 4 == 1:
                params["int_or_bool"] = (7, "int")
            for key, (value, kind) in params.items():
                conn.execute(
                    "INSERT INTO params (run_id, key, value, type) VALUES (?, ?, ?, ?)",
                    (rid, key, json.dumps(value), kind),
                )
            if i % 5:
                conn.execute(
                    "INSERT INTO metric_summaries (run_id, key, count, nan_count, min, max, last, last_step) "
                    "VALUES (?, 'acc', 1, 0, ?, ?, ?, 0)",
                    (rid, i / 10, i / 10, i / 10),
                )
            conn.execute(  # values SQLite's own text for a REAL changes (15 or 17 digits), and a NaN (NULL)
                "INSERT INTO metric_summaries (run_id, key, count, nan_count, min, max, last, last_step) "
                "VALUES (?, 'exact', 1, 0, 0, 0, ?, 0)",
                (rid, EXACT[i % len(EXACT)]),
            )
            if i % 2:
                conn.execute(
                    "INSERT INTO run_data (run_id, name, fingerprint, time) VALUES (?, 'X', ?, ?)", (rid, f"fp{i}", T0)
                )
    conn.close()
    by_run = nbexp.runs(sprint="all", ledger=str(path))
    monkeypatch.setattr(queries, "FEW_RUNS", 0)
    by_key = nbexp.runs(sprint="all", ledger=str(path))
    pd.testing.assert_frame_equal(by_run, by_key)
    assert by_key["params.ints"].dtype == "int64" and by_key["params.floats"].dtype == "float64"
    assert by_key["params.mixed"].dtype == "float64" and by_key["params.some"].dtype == "float64"
    assert by_key["params.flag"].dtype == "bool" and by_key["params.int_or_bool"].dtype == "object"
    assert list(by_key["run_id"]) == [f"t{i:02d}" for i in reversed(range(12))]  # newest first
    assert by_key["params.shape"].iloc[0] == [11, 2] and math.isnan(
        by_key.loc[by_key["run_id"] == "t03", "params.floats"].item()
    )
    assert by_key["metrics.acc"].isna().sum() == 3 and by_key["data.X"].notna().sum() == 6
    exact = dict(zip(by_key["run_id"], by_key["metrics.exact"]))  # the very floats logged, not 15 digits of them
    for i in range(12):
        want = EXACT[i % len(EXACT)]
        assert exact[f"t{i:02d}"] == want or want is None and math.isnan(exact[f"t{i:02d}"])


EXACT = [1 / 3, 0.1 + 0.2, 1.2158389953704502e272, None, -591392.3298177579, 0.46795476594943197]


def test_sprint_metric_counts_see_every_new_summary_and_source(ledger):
    """The counts behind the sidebar's main metric are kept between requests, and a new summary or a new printed
    source (another process writing the ledger) shows on the next read."""
    with Reader(ledger) as r:
        assert r.sprint_metric_counts("all") == {"auc": (4, False), "loss": (4, False)}
    conn = connect(ledger)
    with transaction(conn):
        conn.execute(
            "INSERT INTO metric_summaries (run_id, key, count, nan_count, min, max, last, last_step) "
            "VALUES ('aaaa05', 'auc', 1, 0, 0.5, 0.5, 0.5, 0)"
        )
    with Reader(ledger) as r:
        assert r.sprint_metric_counts("all") == {"auc": (5, False), "loss": (4, False)}
        assert r.sprint_metric_counts("2023-11-14")["auc"] == (5, False)
    with transaction(conn):
        conn.execute(
            "INSERT INTO metric_summaries (run_id, key, count, nan_count, min, max, last, last_step) "
            "VALUES ('aaaa01', 'f1', 1, 0, 0.5, 0.5, 0.5, 0)"
        )
        conn.execute("INSERT INTO metric_sources (run_id, key, source) VALUES ('aaaa01', 'f1', 'stdout')")
    conn.close()
    with Reader(ledger) as r:
        assert r.sprint_metric_counts("all") == {"auc": (5, False), "loss": (4, False), "f1": (1, True)}
        assert r.sprint_metric_counts("2023-11-15") == {}


@pytest.mark.parametrize("fast", [True, False])
def test_table_grouped_by_a_numeric_param_counts_and_orders_like_sql(ties, fast, monkeypatch):
    """Grouping by a param whose values are numbers reads its index (schema 12) group by group: the same groups
    (by value, 2 and 2.0 one group, runs without the param last as None) and the same rows on every page as
    grouping every run by its value in SQL."""
    from collections import Counter

    from nbexp.ledger import query

    if not fast:
        monkeypatch.setattr(query, "_grouped_by_number", lambda *a, **k: None)
    path, runs = ties

    def value(k):
        return 2.0 if k == 2 else k  # one group

    with Reader(path) as r:
        for sprint, q, sort, descending in (
            ("all", None, None, True),
            ("all", None, None, False),
            ("2023-11-14", None, "metrics.m", True),
            ("all", "metrics.m > 0.3", "metrics.m", False),
        ):
            scope = [
                (i, x)
                for i, x in enumerate(runs)
                if (sprint == "all" or x[1] == sprint) and (q is None or (isinstance(x[3], float) and x[3] > 0.3))
            ]
            counts = Counter(value(x[4]) for _, x in scope)
            keys = sorted(k for k in counts if k is not None) + ([None] if None in counts else [])
            by_m = _expected_by_m([x for _, x in scope], descending) if sort else None

            def within(item, by_m=by_m, descending=descending):
                i, x = item
                return by_m.index(x[0]) if by_m else (-1 if descending else 1) * (x[2] * 1000 + i)

            want = [x[0] for k in keys for _, x in sorted((it for it in scope if value(it[1][4]) == k), key=within)]
            got, groups = [], None
            for offset in range(0, len(want) + 6, 6):
                page = table(
                    r,
                    sprint=sprint,
                    query=q,
                    group="params.k",
                    sort=sort,
                    descending=descending,
                    offset=offset,
                    limit=6,
                    columns="params.k",
                    with_columns=False,
                )
                groups = page["groups"]
                got += [row["id"] for row in page["rows"]]
                assert all(row["group"] == row["cells"]["params.k"] for row in page["rows"])
            assert got == want, (sprint, q, sort, descending)
            assert [g["count"] for g in groups] == [counts[k] for k in keys]
            assert [g["value"] for g in groups] == keys and type(groups[0]["value"]) is int  # the 1s: ints


@pytest.mark.parametrize("fast", [True, False])
def test_table_sorted_by_a_numeric_param_orders_ties_newest_first(ties, fast, monkeypatch):
    """A sort by a numeric param reads its runs value by value (a param has few values, so ties are the rule):
    the order of sorting every run by the typed value, ties (2 and 2.0 too) newest first, runs without it last."""
    from nbexp.ledger import query

    if not fast:
        monkeypatch.setattr(query, "_grouped_by_number", lambda *a, **k: None)
    path, runs = ties
    with Reader(path) as r:
        for descending, q in ((True, None), (False, None), (True, "metrics.m > 0.3"), (False, "metrics.m > 0.3")):
            scope = [(i, x) for i, x in enumerate(runs) if q is None or (isinstance(x[3], float) and x[3] > 0.3)]

            def key(item, descending=descending):
                i, x = item
                k = x[4]
                return (k is None, 0 if k is None else (-k if descending else k), -x[2], -i)

            want = [x[0] for _, x in sorted(scope, key=key)]
            got = []
            for offset in range(0, len(want) + 7, 7):
                page = table(
                    r,
                    sprint="all",
                    query=q,
                    sort="params.k",
                    descending=descending,
                    offset=offset,
                    limit=7,
                    columns="params.k",
                    with_columns=False,
                )
                got += [row["id"] for row in page["rows"]]
            assert got == want, (descending, q)


def test_table_grouped_by_a_param_and_sorted_by_one_keeps_each_rows_group(ties):
    """Grouped by a param and sorted by a param (here the same one: every run of a group ties, so newest first):
    each row still says its group."""
    path, runs = ties

    def value(k):
        return 2.0 if k == 2 else k

    keys = sorted({value(x[4]) for x in runs} - {None}) + [None]
    want = [
        x[0]
        for k in keys
        for i, x in sorted(((i, x) for i, x in enumerate(runs) if value(x[4]) == k), key=lambda it: (-it[1][2], -it[0]))
    ]
    with Reader(path) as r:
        got = []
        for offset in range(0, 48, 8):
            page = table(
                r,
                sprint="all",
                group="params.k",
                sort="params.k",
                descending=False,
                offset=offset,
                limit=8,
                columns="params.k",
                with_columns=False,
            )
            assert all(row["group"] == row["cells"]["params.k"] for row in page["rows"])
            got += [row["id"] for row in page["rows"]]
    assert got == want


def test_runs_frame_is_kept_until_a_write_changes_what_it_shows(tmp_path, monkeypatch):
    """``nbexp.runs()`` without filters keeps its frame (schema 14's stamp): the next call reads no column again
    and a change the caller makes to the frame it got is not in the next one; each kind of write another
    connection makes after it (a param, a metric's last value, a name, a status, a system figure, a data
    fingerprint, a run deleted, a run imported) shows on the call after; a run whose kernel dies shows as
    crashed with nothing written."""
    import subprocess
    import sys

    import pandas as pd

    import nbexp
    from nbexp.ledger.queries import Reader as R

    reads = []
    run_columns = R.run_columns
    monkeypatch.setattr(R, "run_columns", lambda self, ids: reads.append(len(ids)) or run_columns(self, ids))
    kernel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    path = tmp_path / "kept.sqlite"
    conn = connect(path)
    try:
        import socket

        with transaction(conn):
            conn.execute(
                "INSERT INTO sessions (id, host, pid, started) VALUES ('k', ?, ?, ?)",
                (socket.gethostname(), kernel.pid, T0),
            )
            for i, status in enumerate(["finished", "finished", "running"]):
                conn.execute(
                    "INSERT INTO runs (id, session_id, sprint, name, status, start_time) VALUES (?, 'k', ?, ?, ?, ?)",
                    (f"r{i}", "2023-11-14", f"run {i}", status, T0 + i),
                )
                conn.execute(
                    "INSERT INTO params (run_id, key, value, type) VALUES (?, 'lr', ?, 'float')",
                    (f"r{i}", json.dumps(i / 10)),
                )
                conn.execute(
                    "INSERT INTO metric_summaries (run_id, key, count, nan_count, min, max, last, last_step) "
                    "VALUES (?, 'auc', 1, 0, 0.5, 0.5, 0.5, 0)",
                    (f"r{i}",),
                )

        def runs() -> pd.DataFrame:
            return nbexp.runs(ledger=str(path)).set_index("run_id")

        first = runs()
        assert first.loc["r2", "status"] == "running" and len(reads) == 1
        first.loc["r0", "name"] = "changed by the caller"
        first["params.lr"] = 9.0
        again = runs()
        assert len(reads) == 1  # kept: no column read again
        assert again.loc["r0", "name"] == "run 0" and list(again["params.lr"]) == [0.2, 0.1, 0.0]

        writes = [
            (
                "INSERT INTO params (run_id, key, value, type) VALUES ('r1', 'depth', '3', 'int')",
                lambda f: f.loc["r1", "params.depth"] == 3,
            ),
            (
                "UPDATE metric_summaries SET last = 0.75 WHERE run_id = 'r0'",
                lambda f: f.loc["r0", "metrics.auc"] == 0.75,
            ),
            (
                "UPDATE params SET value = '0.5' WHERE run_id = 'r0' AND key = 'lr'",
                lambda f: f.loc["r0", "params.lr"] == 0.5,
            ),
            ("UPDATE runs SET name = 'renamed' WHERE id = 'r1'", lambda f: f.loc["r1", "name"] == "renamed"),
            ("UPDATE runs SET status = 'failed' WHERE id = 'r0'", lambda f: f.loc["r0", "status"] == "failed"),
            ("UPDATE runs SET cpu_mean = 42 WHERE id = 'r1'", lambda f: f.loc["r1", "system.cpu_mean"] == 42),
            (
                "INSERT INTO run_data (run_id, name, fingerprint, time) VALUES ('r0', 'X', 'f00d', 0)",
                lambda f: f.loc["r0", "data.X"] == "f00d",
            ),
            ("DELETE FROM runs WHERE id = 'r1'", lambda f: "r1" not in f.index),
            (
                "INSERT INTO runs (id, session_id, sprint, name, status, start_time) "
                "VALUES ('r9', 'k', '2023-11-15', 'imported', 'finished', 1.8e9)",
                lambda f: f.index[0] == "r9" and f.loc["r9", "name"] == "imported",
            ),
        ]
        for n, (sql, shows) in enumerate(writes, start=2):
            with transaction(conn):
                conn.execute(sql)
            frame = runs()
            assert shows(frame), sql
            assert len(reads) == n, sql
            assert runs().equals(frame) and len(reads) == n  # kept again until the next write
        kernel.kill()
        kernel.wait()
        dead = runs()
        assert dead.loc["r2", "status"] == "crashed"  # as a new read shows it, with nothing written
        assert len(reads) == len(writes) + 1
        with transaction(conn):  # a ledger without the stamp's triggers (a bundle has none): read each time
            conn.execute("DROP TRIGGER frame_stamp_params_update")
            conn.execute("UPDATE params SET value = '0.25' WHERE run_id = 'r0' AND key = 'lr'")
        assert runs().loc["r0", "params.lr"] == 0.25
    finally:
        conn.close()
        kernel.kill()
        kernel.wait()
