"""Direct tests of the pure functions under the front doors: drift scores and flags, metric
summaries, the search clause, and literal extraction from a cell. Every expected value is worked
out by hand in the comment beside it, so a change in the math shows here before it shows in a
review page or the sidebar."""

from __future__ import annotations

import ast
import math
import sqlite3
import time

import pytest

from nbexp.analysis.drift import categorical, column_drift, dataset_drift, numeric, psi
from nbexp.capture.data import QUANTILE_PROBS
from nbexp.capture.params import from_literals, top_level_assignments
from nbexp.errors import InvalidArgument
from nbexp.ledger.queries import parse_since, parse_sprint, search_where
from nbexp.ledger.writer import summarize_points

# ---------------------------------------------------------------- drift: PSI, KS, flags


def test_psi_of_two_known_distributions():
    # (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5) = 0.25 ln 2 + 0.25 ln 1.5 = 0.274653
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.274653, abs=1e-6)
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_clamps_an_empty_bin_instead_of_dividing_by_zero():
    # the empty share counts as 1e-4: (0.5 - 1) ln(0.5/1) + (0.5 - 1e-4) ln(0.5/1e-4) = 0.346574 + 4.257745
    assert psi([1.0, 0.0], [0.5, 0.5]) == pytest.approx(0.5 * math.log(2) + 0.4999 * math.log(5000))


def _uniform(shift: float = 0.0) -> dict:
    """A numeric summary of a uniform distribution on [shift, 1 + shift]: quantile p is p + shift."""
    return {
        "type": "numeric",
        "dtype": "float64",
        "quantiles": [p + shift for p in QUANTILE_PROBS],
        "min": shift,
        "max": 1.0 + shift,
        "missing_rate": 0.0,
    }


def test_numeric_drift_of_a_shifted_uniform():
    scores = numeric(_uniform(), _uniform(0.2))
    # over the reference's deciles, the shifted data has shares 0, 0, 0.1 x 7, 0.3:
    # PSI = 2 (1e-4 - 0.1) ln(1e-4/0.1) + (0.3 - 0.1) ln 3 = 1.380170 + 0.219722
    assert scores["psi"] == pytest.approx(2 * (1e-4 - 0.1) * math.log(1e-3) + 0.2 * math.log(3), abs=1e-6)
    # the CDFs are x and x - 0.2 on [0.2, 1]: the largest gap is 0.2
    assert scores["ks"] == pytest.approx(0.2)
    # values in (1, 1.2] are above the reference's max: 20% of them
    assert scores["out_of_range"] == pytest.approx(0.2)


def test_numeric_drift_of_the_same_distribution_is_zero():
    assert numeric(_uniform(), _uniform()) == {"psi": 0.0, "ks": 0.0, "out_of_range": 0.0}
    assert numeric({"quantiles": None}, _uniform()) == {}  # nothing stored: nothing to score


def test_flags_and_severity_of_a_shifted_column():
    row = column_drift(_uniform(), _uniform(0.2))
    assert row["severity"] == "major"  # PSI 1.6 >= 0.25
    assert row["flags"] == ["PSI 1.60 (major)", "KS 0.20", "20.0% outside the reference range"]
    assert column_drift(_uniform(), _uniform()) == {
        "dtype_a": "float64",
        "dtype_b": "float64",
        "missing_a": 0.0,
        "missing_b": 0.0,
        "psi": 0.0,
        "ks": 0.0,
        "out_of_range": 0.0,
        "flags": [],
        "severity": "ok",
    }


def test_missing_rate_flagged_from_five_points():
    b = _uniform() | {"missing_rate": 0.05}
    row = column_drift(_uniform(), b)
    assert row["flags"] == ["missing 0.0% -> 5.0%"] and row["severity"] == "moderate"
    assert column_drift(_uniform(), _uniform() | {"missing_rate": 0.04})["flags"] == []


def test_categorical_psi_and_new_and_vanished_categories():
    a = {"type": "categorical", "dtype": "object", "categories": {"cat": 50, "dog": 50}}
    b = {"type": "categorical", "dtype": "object", "categories": {"cat": 25, "dog": 75}}
    assert categorical(a, b)["psi"] == pytest.approx(0.274653, abs=1e-6)  # as the two-share case above
    row = column_drift(a, b)
    assert row["severity"] == "major" and row["flags"] == ["PSI 0.27 (major)"]
    c = {"type": "categorical", "dtype": "object", "categories": {"cat": 50, "eel": 50}}
    row = column_drift(a, c)
    assert row["new_categories"] == ["eel"] and row["gone_categories"] == ["dog"]
    assert "new categories: eel" in row["flags"] and "vanished categories: dog" in row["flags"]


def test_class_balance_moving_ten_points_is_flagged():
    def label(share_1: float, imbalanced: bool) -> dict:
        return {
            "type": "categorical",
            "dtype": "int64",
            "label": True,
            "categories": {"0": round(100 * (1 - share_1)), "1": round(100 * share_1)},
            "classes": {"0": 1 - share_1, "1": share_1},
            "imbalanced": imbalanced,
        }

    row = column_drift(label(0.5, False), label(0.08, True))
    assert row["class_shift"] == pytest.approx(0.42)
    assert "class balance moved 42%" in row["flags"] and "now imbalanced" in row["flags"]
    assert column_drift(label(0.5, False), label(0.45, False))["class_shift"] == pytest.approx(0.05)
    assert not any("class balance" in f for f in column_drift(label(0.5, False), label(0.45, False))["flags"])


def test_new_and_missing_columns_are_major():
    rows = dataset_drift({"columns": [{"name": "x", **_uniform()}]}, {"columns": [{"name": "y", **_uniform()}]})
    assert rows == [
        {"column": "x", "flags": ["missing column"], "severity": "major"},
        {"column": "y", "flags": ["new column"], "severity": "major"},
    ]


def test_a_dtype_change_alone_is_moderate():
    row = column_drift(_uniform(), _uniform() | {"dtype": "int64"})
    assert row["flags"] == ["dtype float64 -> int64"] and row["severity"] == "moderate"


# ---------------------------------------------------------------- metric summaries


def test_summaries_count_nans_and_keep_the_value_at_the_highest_step():
    points = [
        ("r1", "loss", 0, 1.0, 0.0),
        ("r1", "loss", 3, 0.2, 0.0),
        ("r1", "loss", 1, None, 0.0),
        ("r1", "loss", 3, 0.4, 0.0),  # same step as 0.2, later: it is the last value
        ("r1", "acc", 0, 0.9, 0.0),
        ("r2", "loss", 5, 7.0, 0.0),
    ]
    rows = {(r[0], r[1]): r[2:] for r in summarize_points(points)}
    # count, NaN count, min, max, last value, its step
    assert rows == {
        ("r1", "loss"): (4, 1, 0.2, 1.0, 0.4, 3),
        ("r1", "acc"): (1, 0, 0.9, 0.9, 0.9, 0),
        ("r2", "loss"): (1, 0, 7.0, 7.0, 7.0, 5),
    }


def test_summary_of_a_series_that_starts_with_a_nan():
    rows = summarize_points([("r", "loss", 0, None, 0.0), ("r", "loss", 1, 2.0, 0.0), ("r", "loss", 2, 3.0, 0.0)])
    assert rows == [("r", "loss", 3, 1, 2.0, 3.0, 3.0, 2)]
    assert summarize_points([]) == []


# ---------------------------------------------------------------- search and other query parsing


@pytest.fixture
def runs_db():
    """The columns the search clause reads, on an in-memory SQLite: four runs."""
    conn = sqlite3.connect(":memory:")
    conn.executescript("""
        CREATE TABLE runs (id TEXT, name TEXT, status TEXT, note TEXT);
        CREATE TABLE run_tags (run_id TEXT, tag TEXT);
        CREATE TABLE params (run_id TEXT, key TEXT, value TEXT);
        INSERT INTO runs VALUES ('a1', 'baseline', 'finished', NULL), ('b2', 'wide_net', 'failed', 'OOM at 100%'),
                                ('c3', NULL, 'finished', NULL), ('d4', 'widexnet', 'finished', NULL);
        INSERT INTO run_tags VALUES ('c3', 'Keeper');
        INSERT INTO params VALUES ('a1', 'lr', '0.1'), ('b2', 'lr', '0.15'), ('c3', 'opt.lr', '0.01'),
                                  ('a1', 'optimizer', '"adam"'), ('d4', 'url', '"a=b"');
    """)
    yield lambda text: sorted(
        r[0] for r in conn.execute(f"SELECT id FROM runs WHERE {search_where(text)[0]}", search_where(text)[1])
    )
    conn.close()


def test_search_text_matches_name_status_note_tag_or_param(runs_db):
    assert runs_db("base") == ["a1"]  # name
    assert runs_db("FAILED") == ["b2"]  # status, case-insensitive
    assert runs_db("keeper") == ["c3"]  # tag
    assert runs_db("adam") == ["a1"]  # a param's value
    assert runs_db("optimizer") == ["a1"]  # a param's key


def test_search_key_value_matches_key_suffix_and_value_prefix(runs_db):
    # key ends with "lr", value starts with "0.1": lr=0.1 and lr=0.15, not opt.lr=0.01
    assert runs_db("lr=0.1") == ["a1", "b2"]
    assert runs_db("lr=0.01") == ["c3"]  # opt.lr ends with lr
    assert runs_db("optimizer=adam") == ["a1"]  # a string value is stored JSON-quoted
    assert runs_db("a=b") == ["d4"]  # "=" inside a value matches as text too


def test_search_takes_percent_and_underscore_literally(runs_db):
    assert runs_db("wide_net") == ["b2"]  # not widexnet: _ is no wildcard
    assert runs_db("100%") == ["b2"]
    assert runs_db("%") == ["b2"]


def test_parse_since_units_dates_and_bad_text():
    before = time.time()
    assert before - 2 * 3600 - 1 <= parse_since("2h") <= time.time() - 2 * 3600
    assert before - 1.5 * 86400 - 1 <= parse_since("1.5d") <= time.time() - 1.5 * 86400
    assert parse_since(1700000000) == 1700000000.0 and parse_since("") is None
    assert parse_since("2024-05-01") == time.mktime((2024, 5, 1, 0, 0, 0, 0, 0, -1))
    with pytest.raises(InvalidArgument, match="'soon'"):
        parse_since("soon")


def test_parse_sprint_words_dates_and_names():
    assert parse_sprint("all") is None and parse_sprint(None) is None
    assert parse_sprint("2024-05-01") == "2024-05-01"
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        "CREATE TABLE sprints (id TEXT, name TEXT);"
        "INSERT INTO sprints VALUES ('2024-05-01', 'tuning'), ('2024-05-03', 'tuning');"
    )
    assert parse_sprint("tuning", conn) == "2024-05-03"  # the newest sprint of that name
    with pytest.raises(InvalidArgument, match="'nosuch'"):
        parse_sprint("nosuch", conn)


# ---------------------------------------------------------------- literal extraction from a cell

CELL = """
lr = 0.01
layers = [64, 32]
cfg = {"opt": "adam", "beta": (0.9, 0.99)}
neg = -3
width: int = 5
model = make(lr)
for i in range(3):
    acc = i
    rate = 0.5
if flag:
    depth = 4
a, b = 1, 2
seed = 1
seed = seed + 1
with open("x") as fh:
    pass
"""


def test_top_level_literals_and_computed_names():
    literal, computed = top_level_assignments(ast.parse(CELL))
    assert literal == {
        "lr": 0.01,
        "layers": [64, 32],
        "cfg": {"opt": "adam", "beta": (0.9, 0.99)},
        "neg": -3,
        "width": 5,
        "depth": 4,
    }
    # bound to a call, in a loop, by unpacking, rebound to an expression, or by with ... as
    assert computed == {"model", "i", "acc", "rate", "a", "b", "seed", "fh"}


def test_from_literals_flattens_sorts_sets_and_skips_private_and_secret_values():
    skipped = []
    params = from_literals(
        {
            "lr": 0.01,
            "_private": 1,
            "In": [1],
            "cfg": {"opt": "adam", "beta": (0.9, 0.99)},
            "classes": {3, 1, 2},
            "raw": b"x",
            "z": 1j,
            "flag": True,
            "api_key": "sk-abcdefghijklmnopqrstuvwxyz123456",
        },
        skipped,
    )
    assert params == {
        "lr": 0.01,
        "cfg.opt": "adam",
        "cfg.beta": [0.9, 0.99],
        "classes": [1, 2, 3],
        "flag": True,
        "api_key": "[REDACTED]",
    }
    assert skipped == []


def test_from_literals_skips_dicts_nested_too_deep_and_says_so():
    skipped = []
    params = from_literals({"deep": {"a": {"b": {"c": {"d": {"e": 1}}}}}, "ok": {"a": 1}}, skipped)
    assert params == {"ok.a": 1}
    assert [s.cause for s in skipped] == ["deep-dict"] and "'deep.a.b.c.d'" in str(skipped[0])


@pytest.mark.parametrize(
    "item, expected",
    [
        ("flag=True", ("flag", True)),  # the bool for ls --param, replay --param and %nbexp param alike
        ("lr=0.1", ("lr", 0.1)),
        ("layers=[64, 64]", ("layers", [64, 64])),
        ("model=tree", ("model", "tree")),  # not a literal: the text
        ("opt.lr=1e-3", ("opt.lr", 0.001)),
        ("note=a=b", ("note", "a=b")),
        ("empty=", ("empty", "")),
    ],
)
def test_name_value_is_one_rule(item, expected):
    from nbexp.capture.params import parse_assignment

    assert parse_assignment(item) == expected


@pytest.mark.parametrize("item", ["novalue", "=3", " =3"])
def test_name_value_without_a_name_is_refused_naming_the_text(item):
    from nbexp.capture.params import parse_assignment

    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_assignment(item)


@pytest.mark.parametrize(
    "source, only",
    [
        ("%nbexp track\n# a comment\n%nbexp tag x", True),
        ("%load_ext nbexp\n%nbexp track baseline", True),
        ("%%nbexp run sweep\nmodel.fit(X, y)", True),  # the cell magic drives the body itself
        ("%nbexp track\nLR = 0.1", False),
        ("", False),
    ],
)
def test_one_rule_for_cells_that_only_drive_nbexp(source, only):
    from nbexp.capture.code import drives_only_nbexp

    assert drives_only_nbexp(source) is only


def test_jsonable_and_html_table_have_one_home():
    from nbexp.textfmt import html_table, jsonable

    assert jsonable({"a": [float("nan"), float("inf"), -float("inf"), 1.5]}) == {"a": [None, "inf", "-inf", 1.5]}
    page = html_table(["<b>param</b>"], [["</td><script>x()</script>"]], label='a "label"')
    assert "<script>" not in page and "&lt;b&gt;param&lt;/b&gt;" in page and 'aria-label="a &quot;label&quot;"' in page


def _runs(*metric_sets):
    return [{"metrics": dict(m)} for m in metric_sets]


def test_main_metric_prefers_evaluation_over_training_and_code_over_print():
    from nbexp.analysis.metrics import curve_metric, main_metric, rank_metrics

    s = {"steps": 1, "source": "namespace"}
    curve = {"steps": 5, "source": "keras"}
    printed = {"steps": 1, "source": "stdout"}
    # a Keras sprint: every run has the training loss and the test accuracy; the test metric stands for them
    runs = _runs({"loss": curve, "test_acc": s}, {"loss": curve, "test_acc": s, "val_loss": curve})
    assert rank_metrics(runs) == ["test_acc", "loss", "val_loss"]
    assert main_metric(runs) == "test_acc" and curve_metric(runs) == "loss"
    # more runs hold it: that comes first; then a name found in code before one only printed
    runs = _runs({"accuracy": printed, "roc_auc": s}, {"accuracy": printed, "roc_auc": s}, {"accuracy": printed})
    assert main_metric(runs) == "accuracy"
    assert rank_metrics(_runs({"accuracy": printed, "roc_auc": s})) == ["roc_auc", "accuracy"]
    assert rank_metrics(_runs({"rmse_train": s, "rmse_test": s, "mape": s})) == ["rmse_test", "mape", "rmse_train"]
    assert main_metric([]) is None and curve_metric(_runs({})) is None


def test_a_cells_torch_peak_is_known_only_when_the_process_peak_rose_in_it():
    """nbexp never resets torch's peak counters (a user's later max_memory_allocated() must read the
    true peak), so a cell's own peak is the process's new peak when it rose, else unknown."""
    from nbexp.capture.system import cell_peaks

    assert cell_peaks(None, None) is None  # torch without CUDA
    assert cell_peaks(None, (1537.8, 1672.0)) == (1537.8, 1672.0)  # CUDA started in this cell
    assert cell_peaks((1217.8, 1672.0), (1537.8, 1672.0)) == (1537.8, None)  # allocated rose, reserved did not
    assert cell_peaks((1537.8, 1672.0), (1537.8, 1672.0)) is None  # below the earlier peak: not known


# ---------------------------------------------------------------- a metric's direction


@pytest.mark.parametrize(
    "metric, lower",
    [
        ("val_loss", True),
        ("best_logloss", True),  # XGBoost's best_score with eval_metric='logloss' (a user trial ranked it up)
        ("best_merror", True),
        ("valid_0.l2", True),  # LightGBM's metrics
        ("valid_0.l1", True),
        ("training.binary_logloss", True),
        ("best_auc", False),
        ("accuracy", False),
        ("best_neg_mean_squared_error", False),  # scikit-learn negates an error so that higher is better
        ("test_neg_log_loss_mean", False),
        ("f1", False),
    ],
)
def test_a_metrics_direction_from_its_name(metric, lower):
    from nbexp.analysis.review import lower_is_better

    assert lower_is_better(metric) is lower


def test_a_count_or_a_spread_kept_beside_the_scores_is_no_score():
    """User trials: ``review`` listed XGBoost's ``best_iteration`` among the best metrics, higher being better, and
    named the run whose folds agreed least the best by ``cross_val_score``'s ``scores_std``."""
    from nbexp.analysis.metrics import is_score, rank_counts

    counts = ("best_iteration", "n_iter", "epochs", "validation.epoch")
    spreads = ("scores_std", "std_test_score", "acc.std", "f1_stdev")
    assert not any(is_score(k) for k in counts + spreads)
    scores = ("val_loss", "iteration_time", "best_logloss", "accuracy", "val_loss_epoch", "scores_mean", "stdout_acc")
    scores += ("explained_variance", "test_explained_variance")
    assert all(is_score(k) for k in scores)
    assert rank_counts({"best_iteration": (2, False), "auc": (2, False)}) == ["auc", "best_iteration"]
    assert rank_counts({"scores_std": (2, False), "scores_mean": (2, False)})[-1] == "scores_std"


def test_the_split_a_cells_names_are_of():
    """What a cell reads says which split it scores: one split word as a word of its names (``X_train``,
    ``train_loader``, ``X_validation``), not inside one (``trainset``), nor two in one name (``train_test_split``),
    nor two splits among its names (``X_train`` and ``X_test``); ``valid`` and ``validation`` are ``val``."""
    from nbexp.capture.metrics import split_of

    cases = {
        ("X_train", "y_train", "clf"): "train",
        ("train_loader", "model"): "train",
        ("X_validation", "y_valid"): "val",
        ("df_test", "train_test_split"): "test",
        ("X_train", "X_test"): "",
        ("trainset", "Xtest"): "",
        ("X", "y", "clf"): "",
        ("X_train_scaled", "TRAINING_ROWS"): "train",
        # a split word alone is a loop variable or a splitter, no data (a review: ``for name, val in rows``)
        ("rows", "val", "X_test"): "test",
        ("cv", "X", "y"): "",
    }
    assert {names: split_of(names) for names in cases} == cases


def test_a_held_out_splits_metric_is_an_evaluation_metric_whatever_the_splits_name():
    """``dev_accuracy`` and ``holdout_accuracy`` rank as evaluation metrics like ``val_accuracy``, before a training
    cell's bare ``accuracy`` (a review: the main metric was the training accuracy when the held-out split was
    named ``X_dev``); the training split's is a training metric."""
    from nbexp.analysis.metrics import kind_of, rank_counts

    held_out = ("dev_accuracy", "holdout_auc", "oof_auc", "val_loss", "test_f1", "accuracy_dev", "eval_val_loss")
    assert [kind_of(k) for k in held_out] == [0] * len(held_out)
    assert (kind_of("accuracy"), kind_of("train_accuracy")) == (1, 2)
    assert rank_counts({"accuracy": (1, False), "dev_accuracy": (1, False)})[0] == "dev_accuracy"
