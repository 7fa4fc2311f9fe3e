"""``nbexp explain`` on runs recorded in a real shell (fast: no kernel): the ranked factors and their
evidence, the environment change faked through the store (two package sets in one venv)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nbexp.capture.secrets import scrub_text
from nbexp.cli import main
from nbexp.ledger import connect, transaction
from nbexp.ledger.queries import Reader
from nbexp.ledger.store import Store


def two_sessions(cell, monkeypatch, first: str, second: str, fit: tuple[str, str] | None = None) -> None:
    """Two sessions, each one run: ``first`` then ``second`` as the code (and ``fit``'s cells after
    them), the metric from ``$V``: 0.9 then 0.85."""
    for i, (code, v) in enumerate(zip((first, second), ("0.9", "0.85"))):
        monkeypatch.setenv("V", v)
        cell("%nbexp track")
        cell(code)
        if fit:
            cell(fit[i])
        cell("nbexp.log(val_auc=float(os.environ['V']))")
        cell("%nbexp stop")


def explain_json(ledger_path, *args) -> dict:
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "explain", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_a_changed_package_set_is_the_environment_factor(cell, monkeypatch, ledger_path):
    two_sessions(cell, monkeypatch, "import os, nbexp\nLR = 0.1", "import os, nbexp\nLR = 0.1")
    with Reader(ledger_path) as r:
        b, a = r.run("latest"), r.run("latest~1")
    assert b["session_id"] != a["session_id"]
    packages = {"numpy": "2.1.0", "scikit-learn": "1.5.2", "pandas": "2.2.3"}
    changed = dict(packages, **{"scikit-learn": "1.6.0", "fakepkg": "2.0"})  # as if B ran in another venv
    conn = connect(ledger_path)
    try:
        with transaction(conn):
            store = Store(conn, scrub=scrub_text)
            for session, env_id, listed in ((a, "env-a", packages), (b, "env-b", changed)):
                store.store_git(session["session_id"], "c0ffee", False)
                store.store_packages(session["session_id"], env_id, json.dumps(listed), None)
    finally:
        conn.close()
    ex = explain_json(ledger_path, b["id"], "--vs", a["id"])
    assert [f["kind"] for f in ex["factors"]] == ["environment"]
    env = ex["factors"][0]
    assert env["evidence"]["upgraded"] == ["scikit-learn 1.5.2 -> 1.6.0"]
    assert env["evidence"]["added"] == ["fakepkg 2.0"] and not env["isolable"]
    assert ex["delta"] == pytest.approx(-0.05) and ex["metric"] == "val_auc"
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "explain", b["id"], "--vs", a["id"]])
    assert (
        res.exit_code == 0
        and "the installed packages differ: upgraded scikit-learn 1.5.2 -> 1.6.0; added fakepkg 2.0" in res.output
    )
    assert "val_auc -0.05 (0.9 -> 0.85)" in res.output


def test_params_code_and_cosmetic_params_are_ranked_by_prior(cell, monkeypatch, ledger_path):
    fit = "model = LogisticRegression(C=LR, verbose=VERBOSE).fit([[0.0], [1.0], [0.1], [0.9]], [0, 1, 0, 1])"
    two_sessions(
        cell,
        monkeypatch,
        "import os, nbexp\nfrom sklearn.linear_model import LogisticRegression\nLR = 0.1\nVERBOSE = 0",
        "import os, nbexp\nfrom sklearn.linear_model import LogisticRegression\nLR = 0.3\nVERBOSE = 2",
        (fit, "print('fitting')\n" + fit),
    )
    ex = explain_json(ledger_path, "latest", "--vs", "latest~1")
    kinds = [(f["kind"], f["title"]) for f in ex["factors"]]
    assert kinds[0][0] == "code"  # the new line, not the params
    assert kinds[1:] == [("param", "LR 0.1 -> 0.3"), ("param", "VERBOSE 0 -> 2")]
    assert "cosmetic" in ex["factors"][2]["sentence"]
    assert ex["factors"][1]["revert"] == {"params": {"LR": 0.1}}  # model.C joins LR's factor
    assert ex["factors"][1]["evidence"]["params"] == {"LR": [0.1, 0.3], "model.C": [0.1, 0.3]}
    # --vs best: the best other run on the main metric, i.e. the first
    assert explain_json(ledger_path)["a"] == ex["a"]


def test_bad_arguments_are_clear_errors(cell, monkeypatch, ledger_path):
    two_sessions(cell, monkeypatch, "import os, nbexp", "import os, nbexp")
    run = CliRunner().invoke
    res = run(main, ["--ledger", str(ledger_path), "explain", "latest", "--metric", "nope"])
    assert res.exit_code == 2 and "'nope'" in res.output and "val_auc" in res.output
    res = run(main, ["--ledger", str(ledger_path), "explain", "latest", "--vs", "latest"])
    assert res.exit_code == 2 and "itself" in res.output
    res = run(main, ["--ledger", str(ledger_path), "explain", "zzzzzz"])
    assert res.exit_code == 1 and "no run matches" in res.output and "Traceback" not in res.output


SWEEP = (
    "import nbexp\n"
    "grid = [(0.1, 32), (0.5, 64), (0.3, 32), (0.2, 64), (0.4, 32), (0.05, 64), (0.35, 32)]\n"
    "for i, (lr, batch) in enumerate(grid):\n"
    "    with nbexp.run(f'r{i}', lr=lr, batch=batch):\n"
    "        nbexp.log(val_auc=0.9 - (lr - 0.3) ** 2 + 0.0001 * (batch == 64))"
)


def test_the_review_explains_the_best_run_and_the_regressions_and_ranks_params(cell, ledger_path):
    cell("%nbexp track")
    cell(SWEEP)
    cell("%nbexp stop")
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "review", "--sprint", "today", "--importance"])
    assert res.exit_code == 0, res.output
    with Reader(ledger_path) as r:
        ids = {run["name"]: run["id"] for run in r.list_runs()}
    # r2 (lr 0.3) is the best; the best before it was r1 (lr 0.5, batch 64); r3..r6 came in worse than r2;
    # lr matters most across the sprint, so it comes first among the params that changed
    assert f"why best run {ids['r2']} vs {ids['r1']}: val_auc +0.0399" in res.output, res.output
    assert "first cause: param lr 0.5 -> 0.3" in res.output
    for name in ("r3", "r4", "r5", "r6"):
        assert f"why regressed run {ids[name]} vs {ids['r2']}: " in res.output
    assert f"why regressed run {ids['r1']}" not in res.output  # better than r0: no regression
    lines = res.output.splitlines()
    head = lines.index(next(ln for ln in lines if ln.startswith("what matters for val_auc over 7 runs")))
    assert lines[head + 1].split()[0] == "lr" and lines[head + 2].split()[0] == "batch"
    rev = json.loads(
        CliRunner().invoke(main, ["--ledger", str(ledger_path), "review", "--sprint", "today", "--json"]).output
    )
    assert [e["kind"] for e in rev["explanations"]] == ["best"] + ["regression"] * 4
    assert "importance" not in rev  # scikit-learn only when asked
    # the HTML review says the same, escaped
    page = ledger_path.parent / "review.html"
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "review", "--sprint", "today", "--html", str(page)])
    assert res.exit_code == 0, res.output
    assert f"why best run {ids['r2']} vs {ids['r1']}: val_auc +0.0399" in page.read_text()


def test_check_never_gates_against_an_ablation_replay(cell, ledger_path):
    """`nbexp check --baseline best` picks the best real run: a replay that `--ablate` ran to explain a run (tagged
    ablation) can score higher by chance, and is evidence, not a baseline."""
    cell("%nbexp track")
    cell(
        "import nbexp\nfor name, auc in (('base', 0.80), ('replay', 0.95), ('candidate', 0.85)):\n"
        "    with nbexp.run(name):\n        nbexp.log(val_auc=auc)"
    )
    cell("%nbexp stop")
    with Reader(ledger_path) as r:
        ids = {x["name"]: x["id"] for x in r.list_runs()}
    conn = connect(ledger_path)
    with transaction(conn):
        Store(conn, scrub=scrub_text).add_tags(ids["replay"], ["ablation"])
    conn.close()
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "check", ids["candidate"], "--metric", "val_auc"])
    assert res.exit_code == 0, res.output  # against base (0.80), not the replay (0.95)
    assert ids["base"] in res.output


def test_an_unchanged_metric_is_not_given_a_cause(cell, ledger_path):
    """Two runs scoring the same after a param edit: the explanation says the metric did not move and what
    differs, never "first cause: param C ..." for a change of zero."""
    cell("%nbexp track")
    cell("import nbexp\nfor C in (1.0, 0.1):\n    with nbexp.run(f'C={C}', C=C):\n        nbexp.log(accuracy=0.84)")
    cell("%nbexp stop")
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "explain", "latest", "--vs", "latest~1"])
    assert res.exit_code == 0, res.output
    assert "accuracy unchanged (0.84 in both), though " in res.output and "C 1 -> 0.1" in res.output, res.output
    assert "first cause" not in res.output


def test_a_rerun_that_continued_the_random_stream_is_named_by_explain_and_replay(cell, ledger_path):
    """A user trial (Keras): the seed set once at the top, the model built and trained; the learning rate edited
    and the model cells run again, the seeding cell not. The re-run drew the random numbers after the first
    training's, so its replay, which seeds once, did not reproduce it, and ``explain`` named no seed. Now both
    say that the random stream continued; the first run, and a run that ran its seed again, have no such note."""
    cell("%nbexp track stream")
    cell("import numpy as np\nSEED = 0\nnp.random.seed(SEED)")  # the seed by name, as tutorials write it
    cell("X = np.linspace(-1, 1, 40).reshape(20, 2)\ny = (X[:, 0] > 0).astype(int)")
    cell("LR = 0.1")
    model = "from sklearn.linear_model import SGDClassifier\nclf = SGDClassifier(eta0=LR, learning_rate='constant')"
    train = "clf.fit(X + np.random.normal(scale=0.5, size=X.shape), y)"
    evaluate = "acc = clf.score(X, y)"
    for source in (model, train, evaluate):
        cell(source)
    cell("LR = 0.2")
    for source in (model, train, evaluate):
        cell(source)
    cell("np.random.seed(0)")  # seeded again: the next training starts from the seed
    cell("LR = 0.3")
    for source in (model, train, evaluate):
        cell(source)
    cell("%nbexp stop")
    from nbexp.analysis.explain import continued_stream, explain

    with Reader(ledger_path) as r:
        third, second, first = (r.run(x["id"]) for x in r.list_runs())
        assert continued_stream(r, first) is None and continued_stream(r, third) is None
        seeded = next(c for c in second["lineage"] if "np.random.seed(SEED)" in c["source"])
        assert continued_stream(r, second) == {"cell": seeded["execution_count"], "run": first["id"]}
        factors = {f["key"]: f for f in explain(r, first["id"], second["id"], "acc")["factors"]}
    assert factors["seed:continued:B"]["kind"] == "seed" and not factors["seed:continued:B"]["isolable"], factors
    assert first["id"] in factors["seed:continued:B"]["sentence"] and "seed:continued:A" not in factors
    evidence = factors["seed:continued:B"]["evidence"]
    assert evidence == {"run": second["id"], "cell": seeded["execution_count"], "after": first["id"]}
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "replay", second["id"], "-o", "/dev/null"])
    assert res.exit_code == 0 and f"after run {first['id']} trained" in res.output, res.output
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "replay", first["id"], "-o", "/dev/null"])
    assert res.exit_code == 0 and "random numbers" not in res.output, res.output


def test_a_seed_of_one_call_or_generator_continues_no_stream(cell, ledger_path):
    """A review: ``random_state=0`` and ``default_rng(0)`` seed one call or a generator of their own; an ordinary
    re-run after ``C`` was edited drew nothing from a stream its data cell started."""
    cell("%nbexp track")
    cell(
        "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import train_test_split\nrng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(80, 2)); y = (X[:, 0] > 0).astype(int)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
    )
    for c in ("1.0", "0.01"):
        cell(f"C = {c}")
        cell("clf = LogisticRegression(C=C).fit(X_train, y_train)")
        cell("acc = clf.score(X_test, y_test)")
    cell("%nbexp stop")
    from nbexp.analysis.explain import continued_stream

    with Reader(ledger_path) as r:
        assert [continued_stream(r, r.run(x["id"])) for x in r.list_runs()] == [None, None]


def test_data_only_one_run_recorded_is_no_changed_data(cell, ledger_path):
    """The helper's trial: the training cell prints its training accuracy; the test split is scored in a cell of its
    own, which the user did not run again after editing ``max_depth`` and retraining. The second run recorded no
    ``X_test``: ``explain`` names the param, and no data factor (before: "first cause: the data changed (X_test,
    y_test): content changed", though nothing in them changed)."""
    cell("%nbexp track")
    cell(
        "from sklearn.datasets import make_classification\nfrom sklearn.model_selection import train_test_split\n"
        "from sklearn.tree import DecisionTreeClassifier\nfrom sklearn.metrics import accuracy_score\n"
        "X, y = make_classification(n_samples=300, n_features=8, flip_y=0.2, random_state=0)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
    )
    fit = (
        "clf = DecisionTreeClassifier(max_depth=max_depth, random_state=0).fit(X_train, y_train)\n"
        "print(f'Accuracy: {accuracy_score(y_train, clf.predict(X_train)):.3f}')"
    )
    for code in ("max_depth = 2", fit, "print(f'Accuracy: {accuracy_score(y_test, clf.predict(X_test)):.3f}')"):
        cell(code)
    cell("max_depth = None")
    cell(fit)
    cell("%nbexp stop")
    with Reader(ledger_path) as r:
        a, b = (r.run(row["id"]) for row in reversed(r.list_runs()))
        assert "X_test" in {d["name"] for d in a["data"]} and "X_test" not in {d["name"] for d in b["data"]}
    out = explain_json(ledger_path, b["id"], "--vs", a["id"], "--metric", "accuracy")
    kinds = [f["kind"] for f in out["factors"]]
    assert "data" not in kinds and kinds[0] == "param", out["factors"]
