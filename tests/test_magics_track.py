"""%nbexp track over a session already tracking, and what magics store (secrets scrubbed)."""

from __future__ import annotations

import pytest

TOKEN = "ghp_" + "a1B2" * 9  # shaped like a GitHub token: scrubbed wherever it lands


def test_failing_track_keeps_the_session_tracking(cell, db, tmp_path, capsys):
    from nbexp import tracker

    cell("%nbexp track first")
    before = tracker.active_session()
    capsys.readouterr()
    res = cell(f"%nbexp track --ledger {tmp_path / 'no' / 'such' / 'ledger.sqlite'}")
    assert res.success  # a message, not an exception
    err = capsys.readouterr().err
    assert "does not exist" in err and f"still tracking session {before.id}" in err
    assert tracker.active_session() is before

    def cells():
        return db().execute("SELECT count(*) FROM cells WHERE session_id = ?", (before.id,)).fetchone()[0]

    n = cells()
    cell("LR = 0.1")  # ... and it still records the cells
    assert cells() == n + 1
    assert db().execute("SELECT status FROM runs WHERE name = 'first'").fetchone()[0] == "running"


def test_track_again_keeps_the_sprints_hypothesis_and_says_so(cell, db, capsys):
    cell("%nbexp track --hypothesis 'smaller LR converges'")
    cell("%nbexp track --hypothesis 'smaller LR converges'")  # the same one: nothing to say
    assert "keeps its hypothesis" not in capsys.readouterr().err
    cell("%nbexp track --hypothesis 'bigger batches help'")
    err = capsys.readouterr().err
    assert "keeps its hypothesis 'smaller LR converges'" in err and "%nbexp sprint NAME --hypothesis" in err
    assert db().execute("SELECT hypothesis FROM sprints").fetchone()[0] == "smaller LR converges"
    cell("%nbexp sprint calibration --hypothesis 'bigger batches help'")  # on purpose: replaced
    assert db().execute("SELECT hypothesis FROM sprints").fetchone()[0] == "bigger batches help"


def test_magics_scrub_secrets_from_tags_and_run_names(cell, db):
    cell(f"%nbexp track first-{TOKEN}")
    cell(f"%nbexp tag keep {TOKEN}")
    cell(f"%nbexp new second-{TOKEN}")
    cell(f"%%nbexp run third-{TOKEN}\nx = 1")
    cell("%nbexp stop")
    names = [r[0] for r in db().execute("SELECT name FROM runs ORDER BY start_time")]
    assert names == ["first-[REDACTED]", "second-[REDACTED]", "third-[REDACTED]"]
    assert sorted(r[0] for r in db().execute("SELECT tag FROM run_tags")) == ["[REDACTED]", "keep"]


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_run_all_again_in_the_same_kernel_goes_on_in_the_session(shell, reader, capsys, ids):
    """Run All, an edit, Run All again without restarting the kernel: the ``%nbexp track iris`` cell at the top runs
    again and says it keeps tracking; the edit opens ``iris #2``, a re-run of ``iris``. Before, the track cell opened
    a new session whose first run was named ``iris`` again, and ``nbexp show iris`` said the name was ambiguous (a
    user trial). Tracking with other options, or after ``%nbexp stop``, still starts a new session."""
    notebook = [
        ("track", "%nbexp track --sample-hz 0 iris"),
        (
            "data",
            "from sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression\n"
            "X, y = load_iris(return_X_y=True)",
        ),
        ("c", "C = 1.0"),
        ("fit", "clf = LogisticRegression(C=C, max_iter=500).fit(X, y)\nprint(f'Accuracy: {clf.score(X, y):.3f}')"),
    ]

    def run_all():
        for key, code in notebook:
            res = shell.run_cell(code, store_history=True, cell_id=key if ids else None)
            assert res.success, res.error_in_exec

    from nbexp import tracker

    run_all()
    session = tracker.active_session()
    capsys.readouterr()
    notebook[2] = ("c", "C = 0.01")
    run_all()
    assert tracker.active_session() is session
    assert f"nbexp: already tracking session {session.id}" in capsys.readouterr().out
    runs = reader().list_runs()
    assert [(r["name"], r["kind"]) for r in runs] == [("iris #2", "rerun"), ("iris", "track")]
    assert reader().run("iris #2")["params"]["C"] == 0.01 and reader().run("iris")["params"]["C"] == 1.0
    shell.run_cell("%nbexp track --sample-hz 1 iris")
    assert tracker.active_session() is not session
    shell.run_cell("%nbexp stop")


@pytest.mark.slow  # imports MLflow
def test_the_same_track_run_again_starts_the_sync_that_could_not_start(cell, capsys):
    """``%nbexp track --sync URI`` in a kernel where MLflow could not be imported: tracking starts, the sync does not
    and says why. MLflow installed, the same cell run again keeps the session (Run All) and now starts the sync of
    that session; run once more, it says how the running sync stands. Before, the session was kept and the sync never
    retried, with nothing said."""
    import socket

    from nbexp import tracker
    from nbexp.export import sync

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{free.getsockname()[1]}"  # nothing listens: the sync's passes wait for the server
    track = f"%nbexp track --sample-hz 0 --sync {uri} synced"
    cell("import sys\nsys.modules['mlflow'] = None  # what an import of a missing package meets")
    capsys.readouterr()
    try:
        cell(track)
        session = tracker.active_session()
        assert "nbexp: not syncing" in capsys.readouterr().err and sync.active() is None
        cell("del sys.modules['mlflow']")
        cell(track)
        out = capsys.readouterr().out
        assert "already tracking" in out and f"nbexp: sync to {uri}" in out, out
        assert tracker.active_session() is session
        running = sync.active()
        assert running is not None and running.session_id == session.id
        cell(track)
        assert f"nbexp: sync to {uri}" in capsys.readouterr().out and sync.active() is running
    finally:
        cell("%nbexp stop")
        sync.stop(timeout=1.0)


def test_a_new_session_of_the_same_name_counts_on_from_the_ledgers_runs(shell, reader, ledger_path):
    """The notebook run again in a new session on the same ledger (the kernel restarted, then Run All): its first run
    is ``baseline #2``, and an edit after its training ``baseline #3``; a third session's ``baseline #4``. Before, each
    session named its first run ``baseline`` again and its re-run ``baseline #2`` again, and ``nbexp show``, ``diff``,
    ``explain`` and ``replay`` refused the name as ambiguous (a user trial)."""
    from click.testing import CliRunner

    from nbexp.cli import main

    cells = (
        "from sklearn.linear_model import LogisticRegression\nfrom sklearn.datasets import load_iris\n"
        "X, y = load_iris(return_X_y=True)",
        "C = 1.0",
        "clf = LogisticRegression(C=C, max_iter=300).fit(X, y)",
    )
    for session in range(3):
        shell.run_cell("%nbexp track --sample-hz 0 baseline", store_history=True)
        for code in cells:
            assert shell.run_cell(code, store_history=True).success
        if session == 1:
            assert shell.run_cell("C = 0.5", store_history=True).success
        shell.run_cell("%nbexp stop", store_history=True)
    names = [r["name"] for r in reader().list_runs()]
    assert sorted(names) == ["baseline", "baseline #2", "baseline #3", "baseline #4"], names
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "show", "baseline #2"])
    assert res.exit_code == 0 and "baseline #2" in res.output, res.output
