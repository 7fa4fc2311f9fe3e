"""What a new user's LogisticRegression tutorial shows in the compare views (pure data: the compare answer and its
figures): ``C = 0.1`` then ``LogisticRegression(C=C)`` is one param in the diff and one axis, and each of three
runs' code is diffed against the baseline run, not only the last against the first."""

from __future__ import annotations

import pytest

from nbexp import figures
from nbexp.analysis.compare import compare_runs, merged_param_diff

LOAD = (
    "from sklearn.datasets import load_breast_cancer\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_breast_cancer(return_X_y=True)\n"
    "X = X[:, :5]"
)
TRAIN = "C = {c}\nmodel = LogisticRegression(C=C, max_iter={it}).fit(X, y)"
EVALUATE = "import nbexp\nnbexp.log(train_acc=model.score(X, y))"


def tutorial(cell, edits):
    """The tutorial run once per ``(C, max_iter)`` edit: the training cell edited, the evaluation in its own cell."""
    cell("%nbexp track tutorial")
    cell(LOAD)
    for c, it in edits:
        cell(TRAIN.format(c=c, it=it))
        cell(EVALUATE)


def _ids(reader) -> list[str]:
    return [x["id"] for x in reader().list_runs()][::-1]  # oldest first


def test_a_literal_and_the_estimator_param_set_from_it_are_one_row_and_one_axis(cell, reader):
    """User trial: ``C = 0.1`` then ``LogisticRegression(C=C)`` listed ``C`` and ``model.C`` as two params that
    differ, two parallel-coordinates axes and two scatter choices, for one setting."""
    tutorial(cell, [(0.1, 500), (1.0, 500), (10.0, 900)])
    r = reader()
    c = compare_runs(r, _ids(reader))
    assert c["param_aliases"] == {"C": ["model.C"]}
    assert list(merged_param_diff(c)) == ["C / model.C", "model.max_iter"]
    assert c["params"]["C"] == c["params"]["model.C"] == [0.1, 1.0, 10.0]  # both kept for the details
    figs = figures.compare_figures(r, c)
    dims = [d["label"] for d in figs["figures"]["parallel"]["data"][0]["dimensions"]]
    assert dims == ["C / model.C (log)", "model.max_iter", "train_acc"]
    assert figs["figures"]["params"]["data"][0]["cells"]["values"][0] == ["C / model.C", "model.max_iter"]
    assert figures.compare_figures(r, c, x_param="model.C")["x_param"] == "C"  # one scatter choice
    # chosen as the parallel axes by the literal's name: one axis still
    chosen = figures.compare_figures(r, c, params=["C"])["figures"]["parallel"]["data"][0]["dimensions"]
    assert [d["label"] for d in chosen] == ["C / model.C (log)", "train_acc"]


@pytest.mark.parametrize(
    "params, aliases",
    [
        ({"C": [0.1, 1.0], "model.C": [0.1, 1.0]}, {"C": ["model.C"]}),
        ({"C": [0.1, 1.0], "model.C": [0.1, 2.0]}, {}),  # set otherwise in one run: two params
        ({"C": [0.1, "<absent>"], "model.C": [0.1, "<absent>"]}, {}),  # a run without them: nothing to pair
        ({"C": [0.1, 1.0], "model.Cs": [0.1, 1.0], "model.alpha": [0.1, 1.0]}, {}),  # another name
        ({"C": [1, 2], "model.C": [1.0, 2.0]}, {}),  # 1 and 1.0: not the same value (same_param)
        ({"C": [1.0, 2.0], "pipe.clf.C": [1.0, 2.0], "svc.C": [1.0, 2.0]}, {"C": ["pipe.clf.C", "svc.C"]}),
    ],
)
def test_param_aliases_pair_a_literal_only_with_an_estimator_param_of_its_name_and_values(params, aliases):
    from nbexp.analysis.compare import param_aliases

    assert param_aliases(params) == aliases


def test_three_runs_code_each_against_the_baseline(cell, reader):
    """User trial: the code diff of three runs showed only the last run against the first; the middle run's
    edit was nowhere. Each run is diffed against the baseline (the first, or the one chosen)."""
    tutorial(cell, [(0.1, 500), (1.0, 500), (10.0, 900)])
    r = reader()
    ids = _ids(reader)
    c = compare_runs(r, ids)

    def added(blocks):
        return [text for b in blocks for tag, text in b.get("lines", []) if tag == "+"]

    by_run = c["code_by_run"]
    assert by_run[0] is None  # the baseline
    assert "C = 1.0" in added(by_run[1]) and "C = 10.0" not in added(by_run[1])
    assert "C = 10.0" in added(by_run[2])
    assert not any("In[" in t for b in by_run[1:] for t in added(b))  # execution counts are not code
    c = compare_runs(r, ids, baseline=ids[2])
    assert c["code_by_run"][2] is None and c["code_by_run"][0] is not None
    removed = [text for b in c["code_by_run"][1] for tag, text in b.get("lines", []) if tag == "-"]
    assert "C = 10.0" in removed  # run 2 against run 3: what run 3 added is gone


def _scored(c: float, value: float, **more) -> dict:
    return {"params": {"C": c, **more}, "metrics": {"val_acc": {"last": value}}}


def test_importance_says_why_not_when_the_metric_barely_varies():
    """User trial: four runs at near-equal accuracy (the same 0.956 three times) showed a param importance
    ranking as if it meant something."""
    from nbexp.analysis.explain import IMPORTANCE_MIN_RUNS, importance

    near = [_scored(0.1, 0.956140350877193), _scored(1.0, 0.956140350877193), _scored(10.0, 0.9649122807017544)]
    near.append(_scored(100.0, 0.9561403508771931))  # the same accuracy, but for float rounding
    imp = importance(near, "val_acc")
    assert imp["params"] == [] and imp["runs"] == 4
    assert imp["note"] == (
        f"4 runs have val_acc, with 2 different values: importance needs {IMPORTANCE_MIN_RUNS} or more runs "
        "with different values of val_acc"
    )
    # repeats of one setting spread as much as the whole sweep: within noise, no ranking
    noisy = [_scored(0.1, 0.95, seed=1), _scored(0.1, 0.97, seed=1), _scored(1.0, 0.96), _scored(10.0, 0.955)]
    noisy.append(_scored(100.0, 0.965))
    imp = importance(noisy, "val_acc")
    assert imp["params"] == [] and "within the spread of runs with the same params" in imp["note"]
    # runs that differ beyond that: ranked
    apart = [_scored(c, 0.7 + c / 1000) for c in (0.1, 1.0, 10.0, 100.0)]
    assert [p["param"] for p in importance(apart, "val_acc")["params"]] == ["C"]


def test_parallel_coordinates_of_a_sprint_draw_a_literal_and_its_estimator_param_as_one_axis():
    """The review page's parallel coordinates (a whole sprint, no comparison) pair them by the same rule."""
    runs = [_scored(c, 0.7 + c / 100, **{"model.C": c, "model.tol": 1e-4}) for c in (0.1, 1.0, 10.0)]
    dims = [d["label"] for d in figures.parallel_coordinates(runs, "val_acc")["data"][0]["dimensions"]]
    assert dims == ["C / model.C (log)", "val_acc"]


def test_importance_of_one_run_says_run_in_the_singular():
    """The runs table's "What matters" line read "1 runs have val_acc" for a sprint of one run."""
    from nbexp.analysis.explain import importance

    assert importance([_scored(0.1, 0.9)], "val_acc")["note"].startswith("1 run has val_acc: importance needs")
