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
