"""Run segmentation and statuses in a real IPython shell (docs/design.md "Runs")."""

from __future__ import annotations

import re

import pytest

import nbexp

pytestmark = pytest.mark.slow  # whole training scenarios in many cells

TRAIN = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.metrics import roc_auc_score
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
model = LogisticRegression(C=LR, max_iter=5000).fit(X_train, y_train)
test_auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
"""


def test_tweak_one_param_and_rerun_gives_exactly_that_diff(cell, reader):
    cell("%nbexp track morning")
    cell("LR = 0.1\nSEED = 0")
    cell(TRAIN)
    cell("LR = 0.3")
    cell(TRAIN)
    r = reader()
    runs = r.list_runs()
    assert [x["kind"] for x in reversed(runs)] == ["track", "rerun"]
    c = nbexp.compare(runs[1]["id"], runs[0]["id"])
    assert {k: v for k, v in c["param_diff"].items() if not k.startswith("model.")} == {"LR": [0.1, 0.3]}
    assert c["param_diff"]["model.C"] == [0.1, 0.3]
    assert set(c["param_diff"]) == {"LR", "model.C"}
    auc = c["metrics"]["test_auc"]
    assert auc[0]["last"] != auc[1]["last"]
    assert 0.9 < auc[0]["last"] <= 1.0


def test_new_run_opens_when_a_cell_that_produced_metrics_only_computes_another_value(cell, reader):
    cell("%nbexp track")
    cell("x = 1")
    cell("x = 1")  # no metrics: same run
    cell("import random\nloss = 0.5 * 2")
    cell("y = 2")
    cell("import random\nloss = 0.5 * 2")  # the same value again: nothing new, same run
    assert len(reader().list_runs()) == 1
    cell("import random\nloss = random.random()")  # another value of the metric: a new run
    runs = reader().list_runs()
    assert len(runs) == 2
    assert runs[1]["status"] == "finished"
    assert runs[0]["status"] == "running"
    cell("import random\nloss = random.random()")  # and again
    assert len(reader().list_runs()) == 3


def test_new_stop_and_status(cell, reader, capsys):
    cell("%nbexp track first")
    cell("%nbexp new second")
    cell("%nbexp status")
    out = capsys.readouterr().out
    assert "second" in out and "2 runs" in out
    cell("%nbexp stop")
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["second", "first"]
    assert {r["status"] for r in runs} == {"finished"}
    cell("%nbexp status")
    assert "not tracking" in capsys.readouterr().out


def test_cell_magic_is_exactly_one_run(cell, reader):
    cell("%nbexp track")
    cell("a = 1")
    cell("%%nbexp run fit-once\nalpha = 0.5\nscore = alpha * 2")
    cell("b = 2")
    runs = reader().list_runs()
    assert len(runs) == 3
    fit = [r for r in runs if r["name"] == "fit-once"][0]
    assert fit["status"] == "finished"
    assert fit["params"]["alpha"] == 0.5
    assert fit["metrics"]["score"]["last"] == 1.0
    assert fit["kind"] == "cell"


def test_cell_magic_run_that_raises_is_failed(cell, reader, capsys):
    cell("%nbexp track")
    capsys.readouterr()
    res = cell("%%nbexp run boom\nraise ValueError('bad batch')")
    # the cell fails with the user's own exception (Run All stops there), its traceback shown once
    assert isinstance(res.error_in_exec, ValueError) and str(res.error_in_exec) == "bad batch"
    out = capsys.readouterr()
    assert re.sub(r"\x1b\[[0-9;]*m", "", out.out + out.err).count("ValueError: bad batch") == 1
    assert cell("%%nbexp run fine\nscore = 0.5 * 2").success
    assert isinstance(cell("%%nbexp run typo\nx = (").error_in_exec, SyntaxError)
    runs = {r["name"]: r for r in reader().list_runs()}
    assert runs["boom"]["status"] == "failed"
    assert "ValueError: bad batch" in runs["boom"]["error"]
    assert runs["typo"]["status"] == "failed" and runs["fine"]["status"] == "finished"


def test_sweep_with_context_runs(cell, reader):
    cell("%nbexp track")
    cell("import nbexp\nBATCH = 32\nOTHER = 7")
    cell(
        "for lr in (0.01, 0.1, 1.0):\n"
        "    with nbexp.run(f'lr-{lr}', lr=lr):\n"
        "        for step in range(5):\n"
        "            nbexp.log(loss=lr * BATCH / (step + 1))"
    )
    runs = [r for r in reader().list_runs() if r["kind"] == "context"]
    assert sorted(r["params"]["lr"] for r in runs) == [0.01, 0.1, 1.0]
    assert all(r["params"]["BATCH"] == 32 for r in runs)  # what the sweep read
    assert not any("OTHER" in r["params"] for r in runs)  # a session leftover it never read
    assert all(r["status"] == "finished" and r["metrics"]["loss"]["steps"] == 5 for r in runs)
    cell("1 + 1")
    assert len(reader().list_runs()) == 4  # the sweep cell did not open an extra run


def test_context_run_failing_is_failed_and_exception_reaches_user(cell, reader):
    cell("%nbexp track")
    res = cell("import nbexp\nwith nbexp.run('bad'):\n    nbexp.log(loss=1.0)\n    raise RuntimeError('diverged')")
    assert isinstance(res.error_in_exec, RuntimeError)
    bad = [r for r in reader().list_runs() if r["name"] == "bad"][0]
    assert bad["status"] == "failed" and "diverged" in bad["error"]


def test_user_error_reaches_user_and_fails_run_if_last(cell, reader, db):
    cell("%nbexp track")
    res = cell("1 / 0")
    assert isinstance(res.error_in_exec, ZeroDivisionError)
    row = db().execute("SELECT status, error_type, error_message FROM cells ORDER BY id DESC").fetchone()
    assert tuple(row) == ("error", "ZeroDivisionError", "ZeroDivisionError: division by zero")
    cell("%nbexp new")
    assert reader().list_runs()[1]["status"] == "failed"


def test_error_then_fixed_is_finished(cell, reader):
    cell("%nbexp track")
    cell("1 / 0")
    cell("x = 1")
    cell("%nbexp stop")
    assert reader().list_runs()[0]["status"] == "finished"


def test_keyboard_interrupt_makes_run_interrupted(cell, reader):
    cell("%nbexp track")
    res = cell("raise KeyboardInterrupt")
    assert isinstance(res.error_in_exec, KeyboardInterrupt)
    cell("%nbexp stop")
    run = reader().list_runs()[0]
    assert run["status"] == "interrupted"


def test_cells_code_stored_once_per_distinct_text(cell, db):
    cell("%nbexp track")
    for _ in range(3):
        cell("z = 40 + 2")
    cell("w = 1")
    conn = db()
    assert conn.execute("SELECT count(*) FROM cells").fetchone()[0] == 4
    assert conn.execute("SELECT count(*) FROM code WHERE source LIKE 'z = 40%'").fetchone()[0] == 1


def test_lineage_is_latest_version_of_each_cell_in_order(cell, reader, shell):
    cell("%nbexp track")
    # Jupyter passes cell ids; the shell API takes them too.
    shell.run_cell("a = 1", store_history=True, cell_id="c1")
    shell.run_cell("b = a + 1", store_history=True, cell_id="c2")
    shell.run_cell("a = 5", store_history=True, cell_id="c1")
    r = reader()
    lineage = r.lineage(r.list_runs()[0]["id"])
    # the latest version of each cell; a name is defined before the cell that reads it
    assert [c["source"] for c in lineage] == ["a = 5", "b = a + 1"]


def test_lineage_without_cell_ids_keeps_only_the_version_an_edit_left(cell, reader):
    """Without cell ids (papermill, nbclient, a console) an edited cell comes back as a new text. A user trial's
    third run held all three versions of its training cell (``C = 0.1``, ``C = 1.0``, ``C = 10.0``): its code diff
    showed ``C = 1.0`` as added, explain said it "ran a new cell", and a replay fitted three models. A version that
    a later cell binding the same names replaced leaves; one read in between stays."""
    from tests.test_views_tutorial import tutorial

    tutorial(cell, [(0.1, 500), (1.0, 500), (10.0, 900)])
    r = reader()
    runs = r.list_runs()[::-1]  # oldest first
    assert len(runs) == 3
    for run, c in zip(runs, ("0.1", "1.0", "10.0")):
        fits = [x["source"] for x in r.lineage(run["id"]) if "LogisticRegression(C=C" in x["source"]]
        assert fits == [next(f for f in fits if f.startswith(f"C = {c}\n"))]
    cell("a = 1")
    cell("b = a + 1")  # reads the first version: it stays
    cell("a = 2")
    cell("d = [3, 1, None]")
    cell("d = d[:2]")  # builds on the first d: not an edit of it
    sources = [x["source"] for x in reader().lineage(runs[-1]["id"])]
    assert sources.index("a = 1") < sources.index("b = a + 1") and "a = 2" in sources
    assert sources.index("d = [3, 1, None]") < sources.index("d = d[:2]")


def test_lineage_without_cell_ids_drops_an_edited_settings_cell_whose_read_values_it_kept(cell, reader):
    """A user trial (nbclient, no cell ids): a settings cell, the split that reads two of its values, the pipeline, the
    training; then ``MAX_ITER = 200`` edited to 100 and the settings, training and evaluation cells re-run. The
    re-run's code held both versions of the settings cell (its diff showed the whole cell added, the replay ran it
    twice), since the split had read the first. The split read ``TEST_SIZE`` and ``SEED``, which the edit binds by
    the very same assignments: the first version leaves. An edit that changes a value the split read keeps both."""
    cell("%nbexp track")
    cell("TEST_SIZE = 0.25\nSEED = 42\nMAX_ITER = 200")
    cell("split = (TEST_SIZE, SEED)")
    cell("MAX_ITER = 100\nSEED = 42\nTEST_SIZE = 0.25")  # the edit (another line order: the same assignments)
    cell("model = (MAX_ITER, split)")
    sources = [x["source"] for x in reader().lineage(reader().list_runs()[0]["id"])]
    assert sources == [
        "MAX_ITER = 100\nSEED = 42\nTEST_SIZE = 0.25",
        "split = (TEST_SIZE, SEED)",
        "model = (MAX_ITER, split)",
    ]
    cell("TEST_SIZE = 0.5\nSEED = 42\nMAX_ITER = 100")  # changes what the split read: the split ran on the old one
    cell("model = (MAX_ITER, split)")
    sources = [x["source"] for x in reader().lineage(reader().list_runs()[0]["id"])]
    assert sources.index("MAX_ITER = 100\nSEED = 42\nTEST_SIZE = 0.25") < sources.index("split = (TEST_SIZE, SEED)")
    assert "TEST_SIZE = 0.5\nSEED = 42\nMAX_ITER = 100" in sources


def test_lineage_without_cell_ids_carries_what_an_edited_version_stood_for_to_the_next_edit(cell, reader):
    """Found in the last read of the change: a second edit that reads what the cell between the first two versions
    bound cannot stand for the version the first edit replaced either (a replay would read ``TEST_SIZE`` before any
    cell bound it)."""
    cell("%nbexp track")
    for source in ("TEST_SIZE = 0.25\nMAX_ITER = 200", "N = TEST_SIZE * 4", "TEST_SIZE = 0.25\nMAX_ITER = 100"):
        cell(source)
    cell("TEST_SIZE = 0.25\nMAX_ITER = N // 2")
    cell("model = (MAX_ITER, N)")
    sources = [x["source"] for x in reader().lineage(reader().list_runs()[0]["id"])]
    assert "TEST_SIZE = 0.25\nMAX_ITER = 200" not in sources  # the first edit stands for it: the split read the same
    assert sources.index("TEST_SIZE = 0.25\nMAX_ITER = 100") < sources.index("N = TEST_SIZE * 4"), sources
    assert sources.index("N = TEST_SIZE * 4") < sources.index("TEST_SIZE = 0.25\nMAX_ITER = N // 2"), sources


@pytest.mark.parametrize(
    "between, edit",
    [
        # the edit reads what the cell between bound from the first version: it cannot move before that cell
        ("N = TEST_SIZE * 4", "TEST_SIZE = 0.25\nMAX_ITER = N // 2"),
        # the cell between changed the first version's dict in place; the edit bound a fresh one
        ("params['metric'] = 'auc'", "params = {'num_leaves': 31}\nROUNDS = 200"),
    ],
)
def test_lineage_without_cell_ids_keeps_a_first_version_the_edit_cannot_stand_for(cell, reader, between, edit):
    """From a review: where the edited version cannot take the first one's place before the cell that read it (it
    reads what that cell bound, or that cell changed the first version's object), both versions stay, in an order
    a replay can run."""
    cell("%nbexp track")
    first = (
        "params = {'num_leaves': 31}\nTEST_SIZE = 0.25" if "params" in between else "TEST_SIZE = 0.25\nMAX_ITER = 200"
    )
    cell(first)
    cell(between)
    cell(edit)
    cell("model = (ROUNDS, params)" if "params" in between else "model = (MAX_ITER, N)")
    sources = [x["source"] for x in reader().lineage(reader().list_runs()[0]["id"])]
    assert sources.index(first) < sources.index(between) < sources.index(edit), sources


def test_a_trained_runs_code_reads_a_rebound_name_after_the_cell_that_made_it(cell, reader, shell):
    """A user trial (cell ids): a notebook read its data, filtered it (``df = df[df.age > 18]``), trained, evaluated;
    then the filter was edited and the cells re-run from the reading cell down. The reading cell, run again as it
    was, belongs to the trained run; the edited filter opens the next run. The trained run's code put the filter,
    which reads ``df`` before binding it again, before the cell that made ``df``: its replay raised ``NameError``."""
    cell("%nbexp track")

    def run(cell_id: str, source: str) -> None:
        assert shell.run_cell(source, store_history=True, cell_id=cell_id).success

    run(
        "c1",
        "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\nraw = np.arange(80.0).reshape(40, 2)",
    )
    run("c2", "df = raw.copy()")
    run("c3", "df = df[df[:, 0] > 2]")
    run("c4", "X, y = df[:, :1], (df[:, 1] > 40).astype(int)")  # the training reads X and y, not df
    run("c5", "clf = LogisticRegression().fit(X, y)")
    run("c6", "acc = clf.score(X, y)")
    run("c2", "df = raw.copy()")  # re-run from the reading cell down, the filter edited
    run("c3", "df = df[df[:, 0] > 6]")
    run("c4", "X, y = df[:, :1], (df[:, 1] > 40).astype(int)")
    run("c5", "clf = LogisticRegression().fit(X, y)")
    run("c6", "acc = clf.score(X, y)")
    r = reader()
    first = r.list_runs()[-1]
    assert len(r.list_runs()) == 2
    sources = [c["source"] for c in r.lineage(first["id"])]
    assert sources.index("df = raw.copy()") < sources.index("df = df[df[:, 0] > 2]"), sources
    ns: dict = {}
    for source in sources:  # the replay's order runs, and computes the first run's accuracy
        exec(source, ns)
    assert ns["acc"] == first["metrics"]["acc"]["last"]


def _replayed(r, run: dict) -> tuple[list[str], dict]:
    """A run's code (its lineage's sources) and the namespace it leaves run in order, as ``nbexp replay`` runs it."""
    sources = [c["source"] for c in r.lineage(run["id"])]
    ns: dict = {}
    for source in sources:
        exec(source, ns)
    return sources, ns


def test_without_cell_ids_a_filter_edited_after_training_stays_out_of_the_trained_runs_code(cell, reader):
    """A user trial without cell ids (nbclient): a notebook read its data, filtered it, trained, evaluated; then the
    filter was edited and the cells re-run from the reading cell down. The edited filter cannot be told from a new
    cell before it runs, so it ran while the trained run was current; the trained run's code then held it, its
    replay gave the second run's accuracy, and the code diff of the two runs was empty. The code of a run that
    trained leaves out the cells run after its training that bound again what the training read."""
    cell("%nbexp track")
    cell(
        "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "raw = np.random.default_rng(0).normal(size=(300, 2))"
    )
    read, split = "df = raw.copy()", "X, y = df[:, :1], (df[:, 0] + df[:, 1] > 0.3).astype(int)"
    train, evaluate = "clf = LogisticRegression().fit(X, y)", "acc = clf.score(X, y)"
    for source in (read, "df = df[df[:, 1] > -1.0]", split, train, evaluate):
        cell(source)
    for source in (read, "df = df[df[:, 1] > 0.2]", split, train, evaluate):  # the filter edited in place
        cell(source)
    r = reader()
    second, first = r.list_runs()
    assert first["metrics"]["acc"]["last"] != second["metrics"]["acc"]["last"]
    codes = []
    for run in (first, second):
        sources, ns = _replayed(r, run)
        assert ns["acc"] == run["metrics"]["acc"]["last"], sources
        codes.append(sources)
    assert "df = df[df[:, 1] > 0.2]" not in codes[0] and "df = df[df[:, 1] > 0.2]" in codes[1]


@pytest.mark.parametrize("refilter", [True, False])
def test_a_reruns_code_leaves_out_a_filter_whose_data_the_reading_cell_replaced(cell, reader, refilter):
    """A user trial without cell ids: the filter edited so that it does not hold the old one (``> -1.0`` to
    ``< 0.5``), re-run from the reading cell down. The re-run's code held both filters, the old one after the reading
    cell, so its replay filtered twice and computed other metrics. Run from the reading cell down without the filter
    (``refilter`` False), the re-run trained on unfiltered data, and its code filtered it still."""
    cell("%nbexp track")
    cell(
        "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "raw = np.random.default_rng(0).normal(size=(300, 2))"
    )
    read, split = "df = raw.copy()\ndf[:3]", "X, y = df[:, :1], (df[:, 0] + df[:, 1] > 0.3).astype(int)"
    train, evaluate = "clf = LogisticRegression().fit(X, y)", "acc = clf.score(X, y)"
    old, edit = "df = df[df[:, 1] > -1.0]\nprint(len(df), 'rows')", "df = df[df[:, 1] < 0.5]\nprint(len(df), 'rows')"
    for source in (read, old, split, train, evaluate):
        cell(source)
    for source in (read, edit, split, train, evaluate) if refilter else (read, split, train, evaluate):
        cell(source)
    r = reader()
    second, first = r.list_runs()
    assert first["metrics"]["acc"]["last"] != second["metrics"]["acc"]["last"]
    for run in (first, second):
        sources, ns = _replayed(r, run)
        assert ns["acc"] == run["metrics"]["acc"]["last"], sources
    assert old in [c["source"] for c in r.lineage(first["id"])]
    assert old not in [c["source"] for c in r.lineage(second["id"])]


_HEAD = (
    "import numpy as np, pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "rng = np.random.default_rng(0)\nraw = rng.normal(size=(400, 4))\n"
    "df = pd.DataFrame(raw, columns=list('abcd'))\ndf['y'] = (df.a + df.c > 0).astype(int)"
)
# notebooks a review of the lineage rules wrote: each left a cell out of a run's code that its replay needs
_NEEDED = {
    "an evaluation that binds the data it scores": [
        "X, y = df[list('abcd')][:200], df.y[:200]",
        "clf = LogisticRegression().fit(X, y)",
        "df = df[200:]\ntest_acc = clf.score(df[list('abcd')], df.y)\nprint('test accuracy', test_acc)",
    ],
    "a function reading the data a later cell rebinds": [
        "def features():\n    return df[list('ab')], df.y",
        "df = df[:300]",
        "X, y = features()",
        "clf = LogisticRegression().fit(X, y)",
        "df = pd.DataFrame(raw, columns=list('abcd'))[300:]\ndf['y'] = (df.a + df.c > 0).astype(int)",
        "test_acc = clf.score(*features())",
    ],
    "a list extended in place": [
        "features = ['a', 'b']",
        "features += ['c']",
        "clf = LogisticRegression().fit(df[features], df.y)",
        "test_acc = clf.score(df[features], df.y)",
    ],
    "a seed whose value is thrown away": [
        "_ = np.random.seed(0)",
        "noisy = df[list('abcd')] + np.random.normal(scale=2.0, size=(400, 4))",
        "clf = LogisticRegression().fit(noisy, df.y)",
        "test_acc = clf.score(noisy, df.y)",
        "_ = len(noisy)",
    ],
}


@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("notebook", sorted(_NEEDED))
def test_a_runs_code_keeps_the_cells_its_replay_needs(shell, reader, notebook, ids):
    """The rules that leave cells out of a run's code (a cell run after the training that binds again what it read,
    a cell whose values were bound afresh before any cell read them) leave none that the replay needs: an
    evaluation's own ``df``, a value a function's body reads, a list extended in place, a seeding call."""

    def run(i: int, source: str) -> None:
        assert shell.run_cell(source, store_history=True, cell_id=f"c{i}" if ids else None).success

    for i, source in enumerate(["%nbexp track", _HEAD, *_NEEDED[notebook]]):
        run(i, source)
    r = reader()
    (only,) = r.list_runs()
    _sources, ns = _replayed(r, only)
    assert ns["test_acc"] == only["metrics"]["test_acc"]["last"]


def test_reload_ext_leaves_one_set_of_hooks(cell, shell):
    cell("%nbexp track")
    before = len(shell.events.callbacks["post_run_cell"])
    cell("%reload_ext nbexp")
    cell("%nbexp track")
    assert len(shell.events.callbacks["post_run_cell"]) == before
    cell("%unload_ext nbexp")
    assert len(shell.events.callbacks["post_run_cell"]) == before - 1


def test_sprint_hypothesis_tag_note(cell, reader):
    cell("%nbexp track --sprint calibration --hypothesis 'smaller LR converges'")
    cell("%nbexp tag baseline keep")
    cell("%nbexp note first try")
    cell("%nbexp conclude it did")
    r = reader()
    run = r.run(r.list_runs(sprint="calibration")[0]["id"])
    assert run["tags"] == ["baseline", "keep"]
    assert run["note"] == "first try"
    info = r.sprint_info(run["sprint"])
    assert (info["name"], info["hypothesis"], info["conclusion"]) == ("calibration", "smaller LR converges", "it did")


def test_unknown_word_and_bare_magic(cell, capsys):
    res = cell("%nbexp frobnicate")
    assert not res.success and "unknown word 'frobnicate'" in str(res.error_in_exec)
    assert "track" in str(res.error_in_exec)
    cell("%nbexp")
    assert "%nbexp track [NAME]" in capsys.readouterr().out
    res = cell("%nbexp track --bogus")
    assert not res.success and "%nbexp track" in str(res.error_in_exec)
    assert cell("z = 1").success


def test_capture_problems_never_break_the_cell(cell, reader, capsys):
    cell("%nbexp track")
    res = cell(
        "from types import SimpleNamespace\n"
        "class Angry:\n"
        "    def __repr__(self): raise RuntimeError('no repr')\n"
        "    def __getattr__(self, name): raise RuntimeError('no attributes either')\n"
        "angry = Angry()\n"
        "hp = SimpleNamespace(lr=0.1, thing=Angry())\n"
        "score = float('nan') if False else 0.5 + 0.25\n"
        "alpha = 2"
    )
    assert res.success
    err = capsys.readouterr().err
    assert err.count("nbexp: warning") <= 2 and "no attributes either" in err
    run = reader().list_runs()[0]
    assert run["params"]["alpha"] == 2 and run["params"]["hp.lr"] == 0.1
    assert run["metrics"]["score"]["last"] == 0.75
    cell("angry2 = Angry()")  # the same cause again: no second line
    assert "nbexp: warning" not in capsys.readouterr().err


# -- a run is one training and its evaluation (issue 15: segment around training) -------------------------
SK_DATA = (
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
)
SK_FIT = "clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=200))\nclf.fit(X_train, y_train)"
SK_EVAL = "print('accuracy', accuracy_score(y_test, clf.predict(X_test)))"


def _cells(db):
    return [
        tuple(r)
        for r in db().execute(
            "SELECT c.cell_key, code.source, c.run_id FROM cells c JOIN code ON code.hash = c.code_hash ORDER BY c.id"
        )
    ]


def test_edited_hyperparameter_opens_the_run_before_it_with_cell_ids(cell, shell, reader, db):
    """JupyterLab: C edited in place, then the training and evaluation cells re-run. The new run
    opens before the edited cell; no metric is recognised, the first run's C is never rewritten."""
    cell("%nbexp track baseline")
    for cid, code in (
        ("data", SK_DATA),
        ("hp", "C = 1.0"),
        ("fit", SK_FIT),
        ("eval", SK_EVAL),
        ("hp", "C = 0.01"),
        ("fit", SK_FIT),
        ("eval", SK_EVAL),
    ):
        assert shell.run_cell(code, store_history=True, cell_id=cid).success
    runs = reader().list_runs()
    assert len(runs) == 2
    first, second = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert first["params"]["C"] == 1.0 and first["params"]["clf.logisticregression.C"] == 1.0
    assert second["params"]["C"] == 0.01 and second["params"]["clf.logisticregression.C"] == 0.01
    assert (second["name"], second["kind"]) == ("baseline #2", "rerun")
    diff = nbexp.compare(first["id"], second["id"])["param_diff"]
    assert diff == {"C": [1.0, 0.01], "clf.logisticregression.C": [1.0, 0.01]}
    by_run = [(key, rid) for key, _src, rid in _cells(db)]
    assert by_run[-3:] == [("hp", second["id"]), ("fit", second["id"]), ("eval", second["id"])]


def test_an_edited_value_cell_is_wholly_the_next_runs(cell, shell, reader, db):
    """A cell that only edits a value the trained run used is checked once it ran (nothing
    parsed before the reply), yet it belongs to the next run whole: its start opens that run,
    what it printed is kept there, and the trained run ends where the cell began."""
    cell("%nbexp track baseline")
    for cid, code in (("data", SK_DATA), ("hp", "C = 1.0"), ("fit", SK_FIT), ("eval", SK_EVAL)):
        assert shell.run_cell(code, store_history=True, cell_id=cid).success
    assert shell.run_cell("C = 0.01\nprint('C is now', C)", store_history=True, cell_id="hp").success
    runs = reader().list_runs()
    assert len(runs) == 2
    first, second = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    start = db().execute("SELECT start FROM cells WHERE cell_key = 'hp' ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert second["start_time"] == start == first["end_time"]
    assert first["status"] == "finished" and first["params"]["C"] == 1.0 and second["params"]["C"] == 0.01
    assert [c["cell_key"] for c in reader().outputs(second["id"])] == ["hp"]
    assert "hp" not in [c["cell_key"] for c in reader().outputs(first["id"])]
    assert _cells(db)[-1][2] == second["id"]


def test_rerun_without_cell_ids_trains_in_the_new_run(cell, reader, db):
    """nbclient/papermill: no cell ids. Re-executing the same training text opens the run before
    it, so its time is in the new run; the evaluation after it belongs to the new run too."""
    cell("%nbexp track")
    cell(SK_DATA)
    cell("C = 1.0")
    cell(SK_FIT)
    cell(SK_EVAL)
    cell(SK_FIT)  # the same training again: a second run, same params
    cell(SK_EVAL)
    runs = reader().list_runs()
    assert len(runs) == 2 and runs[0]["kind"] == "rerun" and runs[0]["name"] is None
    cells = _cells(db)
    assert [rid for _k, _s, rid in cells[-2:]] == [runs[0]["id"]] * 2
    assert nbexp.compare(runs[1]["id"], runs[0]["id"])["param_diff"] == {}


def test_edited_training_cell_without_ids_is_a_new_run(cell, reader):
    """An edited training cell (new text, same model name) without cell ids opens a new run."""
    cell("%nbexp track")
    cell(SK_DATA)
    cell("clf = LogisticRegression(C=1.0, max_iter=200).fit(X_train, y_train)")
    cell(SK_EVAL)
    cell("clf = LogisticRegression(C=0.1, max_iter=200).fit(X_train, y_train)")
    runs = reader().list_runs()
    assert len(runs) == 2
    assert nbexp.compare(runs[1]["id"], runs[0]["id"])["param_diff"] == {"clf.C": [1.0, 0.1]}


def test_a_trained_run_is_never_rewritten(cell, reader):
    """After training, a changed value waits for the next run even when no cell opens one and no
    metric was recognised; a name first set after training joins the run only if its cells read it."""
    cell("%nbexp track")
    cell(SK_DATA)
    cell("C = 1.0")
    cell(SK_FIT)
    cell("clf.set_params(logisticregression__C=5.0)")  # changed in place: not this run's training
    cell("THRESHOLD = 0.5")
    cell("print((clf.predict_proba(X_test)[:, 1] > THRESHOLD).mean())")  # read by this run's evaluation
    cell("WARM = True")  # never read in this run
    first = reader().run(reader().list_runs()[0]["id"])
    assert first["params"]["clf.logisticregression.C"] == 1.0
    assert first["params"]["THRESHOLD"] == 0.5 and "WARM" not in first["params"]
    cell(SK_FIT)  # re-trains: the next run, with what changed
    cell("print((clf.predict_proba(X_test)[:, 1] > THRESHOLD).mean())")
    runs = reader().list_runs()
    assert len(runs) == 2
    diff = nbexp.compare(runs[1]["id"], runs[0]["id"])["param_diff"]
    assert diff == {}  # SK_FIT rebuilt clf with C = 1.0 again; WARM was never read by either run


def test_edited_metric_cell_without_ids_is_a_new_run(cell, reader):
    cell("%nbexp track")
    cell(SK_DATA + "\nclf = LogisticRegression(max_iter=200).fit(X_train, y_train)")
    cell("score = accuracy_score(y_test, clf.predict(X_test))")
    # edited: no cell id, new text (edited to score the training split, it is another metric, train_score: a
    # tutorial's training-split accuracy after its test-split one, test_decide_after.py)
    cell("score = accuracy_score(y_test[:20], clf.predict(X_test[:20]))")
    runs = reader().list_runs()
    assert len(runs) == 2
    assert runs[0]["metrics"]["score"]["steps"] == 1 and runs[1]["metrics"]["score"]["steps"] == 1


def test_pytorch_train_function_called_in_an_epoch_loop_trains(cell, reader, db):
    """The PyTorch quickstart layout: ``def train(...)`` in one cell, the epoch loop calling it in
    another; an edited learning rate re-run opens one run, the first keeps its LR."""
    cell("%nbexp track mlp")
    cell("import torch\ntorch.manual_seed(0)\nX = torch.randn(64, 4)\ny = (X[:, 0] > 0).float()")
    cell(
        "def train_loop(model, loss_fn, optimizer):\n"
        "    model.train()\n"
        "    for i in range(0, 64, 16):\n"
        "        loss = loss_fn(model(X[i:i + 16]).squeeze(1), y[i:i + 16])\n"
        "        optimizer.zero_grad()\n"
        "        loss.backward()\n"
        "        optimizer.step()"
    )
    for lr in (0.1, 0.01):
        cell(f"learning_rate = {lr}\nepochs = 3")
        cell(
            "model = torch.nn.Linear(4, 1)\n"
            "optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)\n"
            "loss_fn = torch.nn.BCEWithLogitsLoss()\n"
            "for t in range(epochs):\n"
            "    train_loop(model, loss_fn, optimizer)"
        )
        cell(
            "with torch.no_grad():\n"
            '    print(f"Accuracy: {((model(X).squeeze(1) > 0).float() == y).float().mean():.3f}")'
        )
    runs = reader().list_runs()
    assert [r["name"] for r in runs] == ["mlp #2", "mlp"]
    diff = nbexp.compare(runs[1]["id"], runs[0]["id"])["param_diff"]
    assert diff["learning_rate"] == [0.1, 0.01] and set(diff) <= {"learning_rate", "optimizer.lr"}


def test_time_cell_magic_sees_the_code_inside(cell, reader):
    """``%%time`` and ``%time``: literals, metrics and training inside them are captured."""
    cell("%nbexp track")
    cell(SK_DATA)
    fit = (
        "%%time\nC = {c}\nclf = LogisticRegression(C=C, max_iter=200).fit(X_train, y_train)\n"
        "%time test_acc = clf.score(X_test, y_test)"
    )
    cell(fit.format(c=1.0))
    run = reader().list_runs()[0]
    assert run["params"]["C"] == 1.0 and run["metrics"]["test_acc"]["steps"] == 1
    cell(fit.format(c=0.1))
    runs = reader().list_runs()
    assert len(runs) == 2
    assert nbexp.compare(runs[1]["id"], runs[0]["id"])["param_diff"] == {"C": [1.0, 0.1], "clf.C": [1.0, 0.1]}


def test_capture_and_timeit_cells_are_seen_through(cell, reader):
    """``%%capture`` runs its body through a nested run_cell, ``%%timeit`` in its own scope:
    both cells' literals count, and the captured cell's metric too."""
    cell("%nbexp track")
    cell("%%timeit -n 1 -r 1\nWIDTH = 64\nsum(range(WIDTH))")
    assert reader().list_runs()[0]["params"]["WIDTH"] == 64
    cell("%%capture out\nN_TREES = 5\nscore = N_TREES * 0.1\nprint(score)")
    run = reader().list_runs()[0]
    assert run["params"]["N_TREES"] == 5
    assert "WIDTH" not in run["params"]  # the score never read it (%%timeit did not even bind it)
    assert run["metrics"]["score"]["last"] == 0.5


def test_reload_ext_keeps_the_session_and_says_so(cell, shell, reader, capsys):
    """``%reload_ext nbexp`` (after editing the package, or by habit) keeps tracking the same
    session and run, with one line saying so; ``%unload_ext`` still stops."""
    from nbexp import tracker

    cell("%nbexp track kept")
    session = tracker.active_session()
    cell("C = 2.0")
    capsys.readouterr()
    cell("%reload_ext nbexp")
    out = capsys.readouterr().out
    assert out.count("nbexp:") == 1 and f"still tracking session {session.id}" in out
    assert tracker.active_session() is session
    cell("score = C * 0.25")
    runs = reader().list_runs()
    assert len(runs) == 1 and runs[0]["name"] == "kept" and runs[0]["status"] == "running"
    assert runs[0]["metrics"]["score"]["last"] == 0.5 and runs[0]["params"]["C"] == 2.0
    cell("%unload_ext nbexp")
    assert tracker.active_session() is None
    assert reader().list_runs()[0]["status"] == "finished"


# the trial's pattern: a training function reads the data and config from globals; the cell calling it
# names neither (tests: an edit upstream of training opens the next run)
UP_DATA = (
    "from sklearn.datasets import load_breast_cancer\n"
    "from sklearn.model_selection import train_test_split\n"
    "X, y = load_breast_cancer(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)"
)
UP_DEF = (
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n\n"
    "def run_experiment():\n"
    "    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))\n"
    "    model.fit(X_train, y_train)\n"
    "    return model, model.score(X_test, y_test)"
)
UP_CALL = "model, val_acc = run_experiment()"


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_an_edited_data_cell_upstream_of_a_training_function_opens_the_next_run(shell, reader, ids):
    """The data cell's split is edited and every cell re-run. Training happens inside a function that reads
    ``X_train`` from globals, so the cell calling it names no data; the data cell is still upstream of the
    training (through the function's body), so its edit opens the next run. The trained run is never
    rewritten: its code keeps the split it trained on, and the edit is the code diff between the two."""
    shell.run_cell("%nbexp track --sample-hz 0 split", store_history=True)
    edited = UP_DATA.replace("test_size=0.25", "test_size=0.4")
    for key, code in (("data", UP_DATA), ("def", UP_DEF), ("call", UP_CALL), ("data", edited), ("def", UP_DEF)):
        assert shell.run_cell(code, store_history=True, cell_id=key if ids else None).success
    runs = reader().list_runs()
    assert len(runs) == 2, runs  # the edit opened the next run before the training re-ran
    assert shell.run_cell(UP_CALL, store_history=True, cell_id="call" if ids else None).success
    runs = reader().list_runs()
    assert len(runs) == 2, runs
    first, second = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert (second["name"], second["kind"]) == ("split #2", "rerun")
    code_of = {r["id"]: "\n".join(c["source"] for c in reader().lineage(r["id"])) for r in (first, second)}
    assert "test_size=0.25" in code_of[first["id"]] and "test_size=0.4" not in code_of[first["id"]]
    assert "test_size=0.4" in code_of[second["id"]] and "test_size=0.25" not in code_of[second["id"]]
    assert first["metrics"]["val_acc"]["last"] != second["metrics"]["val_acc"]["last"]


def test_a_cell_adding_a_column_to_upstream_data_after_training_opens_no_run(cell, reader):
    """Changed in place after training (``df["pred"] = ...``), a frame the features came from is not a new
    input: the evaluation cell that adds a prediction column stays in the trained run."""
    cell("%nbexp track --sample-hz 0")
    for code in (
        "import pandas as pd\nfrom sklearn.datasets import load_breast_cancer\n"
        "df = load_breast_cancer(as_frame=True).frame",
        "X = df.drop(columns='target')\ny = df['target']",
        "from sklearn.tree import DecisionTreeClassifier\nclf = DecisionTreeClassifier(max_depth=3).fit(X, y)",
        "df['pred'] = clf.predict(X)\naccuracy = (df['pred'] == df['target']).mean()",
    ):
        assert cell(code).success
    runs = reader().list_runs()
    assert len(runs) == 1, runs
    assert "accuracy" in reader().run(runs[0]["id"])["metrics"]


def test_a_quick_baseline_before_the_real_model_is_a_run_of_its_own(cell, reader):
    """The trial's pattern: a DummyClassifier baseline trained on the same data just before the real model.
    Shared data does not tie two trainings: the model's run holds none of the baseline's params, so a tweak of
    the model gives a diff that is exactly the tweak."""
    cell("%nbexp track --sample-hz 0")
    for code in (
        SK_DATA,
        "from sklearn.dummy import DummyClassifier\n"
        "dummy = DummyClassifier(strategy='most_frequent').fit(X_train, y_train)\n"
        "print('baseline accuracy', dummy.score(X_test, y_test))",
        "clf = LogisticRegression(C=1.0, max_iter=300).fit(X_train, y_train)",
        "accuracy = clf.score(X_test, y_test)",
    ):
        assert cell(code).success
    runs = reader().list_runs()
    assert len(runs) == 2, runs
    baseline, model = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert any(k.startswith("dummy.") for k in baseline["params"])
    assert not any(k.startswith("dummy.") for k in model["params"]), model["params"]
    assert model["params"]["clf.C"] == 1.0 and "accuracy" in model["metrics"]
    assert cell("clf = LogisticRegression(C=0.1, max_iter=300).fit(X_train, y_train)").success
    assert cell("accuracy = clf.score(X_test, y_test)").success
    runs = reader().list_runs()
    assert len(runs) == 3, runs
    assert nbexp.compare(runs[1]["id"], runs[0]["id"])["param_diff"] == {"clf.C": [1.0, 0.1]}


def test_cross_validation_then_the_final_fit_of_the_same_estimator_is_one_run(cell, reader):
    """``cross_val_score(clf, ...)`` then ``clf.fit(...)``: the estimator the run cross-validated is the one it
    fits, so it stays one run (the estimator ties them; the data alone would not)."""
    cell("%nbexp track --sample-hz 0")
    for code in (
        SK_DATA,
        "from sklearn.model_selection import cross_val_score\n"
        "clf = LogisticRegression(C=1.0, max_iter=300)\n"
        "scores = cross_val_score(clf, X_train, y_train, cv=3)",
        "clf.fit(X_train, y_train)\naccuracy = clf.score(X_test, y_test)",
    ):
        assert cell(code).success
    assert len(reader().list_runs()) == 1


def test_evaluation_helpers_and_plot_projections_after_training_open_no_run(cell, reader):
    """After training: the user's evaluation helper called with another literal (``split='val'``), and a PCA
    fitted only to plot the test set, are evaluation, not a changed value or another model's training."""
    cell("%nbexp track --sample-hz 0")
    for code in (
        SK_DATA,
        "clf = LogisticRegression(C=1.0, max_iter=300).fit(X_train, y_train)",
        "def evaluate(model, X, y, split='test'):\n    return model.score(X, y)",
        "train_accuracy = evaluate(clf, X_train, y_train, split='train')",
        "test_accuracy = evaluate(clf, X_test, y_test, split='test')",
        "from sklearn.decomposition import PCA\nX2 = PCA(n_components=2).fit_transform(X_test)",
        "f1_like = clf.score(X_test, y_test)",
    ):
        assert cell(code).success
    runs = reader().list_runs()
    assert len(runs) == 1, runs
    assert {"train_accuracy", "test_accuracy", "f1_like"} <= set(reader().run(runs[0]["id"])["metrics"])


def _runner(shell, ids):
    """A function that runs a cell as the user would, by its JupyterLab cell id or (``ids`` False) by its text alone,
    and checks that it succeeded (``ok``) or failed."""

    def run(key, code, ok=True):
        res = shell.run_cell(code, store_history=True, cell_id=key if ids else None)
        assert res.success is ok, res.error_in_exec

    return run


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_a_training_interrupted_part_way_is_a_run_of_its_own(shell, reader, ids):
    """The user stops a long training (Kernel > Interrupt: a ``KeyboardInterrupt`` inside the loop, after some
    optimizer steps), lowers ``epochs`` and runs the training again: two runs, the first *interrupted* with the
    epochs it was started with, the second *finished* with the edit. Before, no run opened: the one run ended
    finished with ``epochs`` 20 and a loss curve of both trainings (a user trial)."""

    run = _runner(shell, ids)
    run("track", "%nbexp track --sample-hz 0 intr")
    run("data", "import torch\ntorch.manual_seed(0)\nX = torch.randn(64, 4)\ny = (X[:, 0] > 0).long()")
    run("model", "model = torch.nn.Linear(4, 2)\nloss_fn = torch.nn.CrossEntropyLoss()")
    run("hp", "lr = 0.1\nepochs = 200")
    train = (
        "optimizer = torch.optim.SGD(model.parameters(), lr=lr)\n"
        "for epoch in range(epochs):\n"
        "    loss = loss_fn(model(X), y)\n"
        "    optimizer.zero_grad()\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "    print(f'epoch {epoch} loss {loss.item():.4f}')\n"
        "    if epoch == 3 and epochs == 200:\n"
        "        raise KeyboardInterrupt  # the user's interrupt, four epochs in"
    )
    run("train", train, ok=False)
    run("hp", "lr = 0.1\nepochs = 20")
    run("train", train)
    shell.run_cell("%nbexp stop")
    runs = reader().list_runs()
    assert [(r["name"], r["status"]) for r in runs] == [("intr #2", "finished"), ("intr", "interrupted")]
    first, second = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert (first["params"]["epochs"], second["params"]["epochs"]) == (200, 20)
    assert (first["metrics"]["loss"]["steps"], second["metrics"]["loss"]["steps"]) == (4, 20)


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_a_training_interrupted_before_it_showed_progress_stays_in_its_run(shell, reader, ids):
    """Interrupted while its data loads, before a first epoch printed anything, a training cell trained nothing: run
    again unchanged, it trains in the same run, which ends finished (a review)."""

    run = _runner(shell, ids)
    run("track", "%nbexp track --sample-hz 0 slow")
    run("data", "import torch\ntorch.manual_seed(0)\nX = torch.randn(64, 4)\ny = (X[:, 0] > 0).long()\nloading = True")
    run("model", "model = torch.nn.Linear(4, 2)\nloss_fn = torch.nn.CrossEntropyLoss()\nlr = 0.1")
    train = (
        "if loading:\n"
        "    loading = False\n"
        "    raise KeyboardInterrupt  # the user's interrupt, while the data loads\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=lr)\n"
        "for epoch in range(5):\n"
        "    loss = loss_fn(model(X), y)\n"
        "    optimizer.zero_grad()\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "    print(f'epoch {epoch} loss {loss.item():.4f}')"
    )
    run("train", train, ok=False)
    run("train", train)
    shell.run_cell("%nbexp stop")
    runs = reader().list_runs()
    assert [(r["name"], r["status"]) for r in runs] == [("slow", "finished")]
    assert reader().run(runs[0]["id"])["metrics"]["loss"]["steps"] == 5
