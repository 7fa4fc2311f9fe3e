"""A cell decided after it ran (nbexp/tracker.py ``Session._decide_after``) that logged points before the next
run opened: the user is told where those points went, in a real IPython shell."""

from __future__ import annotations

SK_DATA = (
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
)
SK_FIT = "clf = LogisticRegression(C=C, max_iter=200).fit(X_train, y_train)"
# a helper of the user's that logs through nbexp: the cell calling it never names nbexp or a training call
NOTE = "import nbexp\n\ndef note(**values):\n    nbexp.log(**values)"


def test_a_changed_value_cell_that_logged_says_where_its_points_went(cell, reader, capsys):
    """``C`` edited after the run trained, in a cell that also logs a point through the user's own helper: the
    cell names a value of the trained run but nothing that trains, so its run is decided once it ran; the edit
    opens the next run, and the point it logged before that is in the trained run. The user is told so, once,
    with the run's id and what to do, and the warning stays on that run."""
    cell("%nbexp track --sample-hz 0 baseline")
    for code in (SK_DATA, NOTE, "C = 1.0", SK_FIT):
        assert cell(code).success
    capsys.readouterr()
    assert cell("C = 0.01\nnote(checkpoint=0.5)").success
    err = capsys.readouterr().err
    runs = reader().list_runs()
    assert len(runs) == 2  # the edit opened the next run
    trained, after = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert trained["params"]["C"] == 1.0 and after["params"]["C"] == 0.01
    message = (
        f"a cell that changed a value of run {trained['id']} logged 1 point(s) there before the next run opened "
        "(name its training call or use %nbexp new)"
    )
    assert f"nbexp: warning: {message}" in err, err
    assert "checkpoint" in trained["metrics"] and "checkpoint" not in after["metrics"]
    assert [(e["level"], e["cause"], e["message"]) for e in trained["events"]] == [("warning", "segment", message)]
