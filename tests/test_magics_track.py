"""%nbexp track over a session already tracking, and what magics store (secrets scrubbed)."""

from __future__ import annotations

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
