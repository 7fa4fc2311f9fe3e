"""The shared walk over a cell's syntax tree (nbexp.capture.syntax) and the session's bounded
record of cell texts: the capture reads each new cell once and answers exactly as before."""

from __future__ import annotations

import ast
import dataclasses
import threading

import pytest
from IPython.core.interactiveshell import InteractiveShell

from nbexp.capture import files, params, results, syntax, training
from nbexp.capture.data import fit_labels

CELLS = [
    # params, metrics, training, evaluation: what the analysers look for
    "lr = 0.1\nC = -1.0\ngrid = {'C': [0.1, 1.0], 'k': (1, 2)}\nclf = SVC(C=C).fit(X_train, y_train, epochs=3)\n"
    "pred = clf.predict(X_test)\nval_acc = accuracy_score(y_test, pred)\nval_acc",
    # defs, lambdas, classes, loops, comprehensions, with blocks, imports
    "import numpy as np, torch.nn as nn\nfrom sklearn.svm import SVC as S\n"
    "def train(model, X, y, n=3, *a, k=None, **kw):\n    for _ in range(n):\n        model.fit(X[_], y)\n"
    "    return lambda z: z + n\n"
    "class Net(nn.Module):\n    def forward(self, x):\n        return self.l(x)\n"
    "for epoch in range(3):\n    opt.zero_grad()\n    loss = loss_fn(model(xb), yb)\n"
    "    loss.backward()\n    opt.step()\n"
    "with nbexp.run('a') as r:\n    r.log(acc=1)\n"
    "with open('out.csv', 'w') as f:\n    f.write(str([i * 2 for i in range(3) if i]))\n"
    "df.to_csv(path / 'x.csv')\ncfg.lr = 0.2\ncfg['wd'] += 1e-4\nx, (y, *zs) = 1, (2, 3, 4)\n",
    # operators, comparisons, boolean ops, f-strings, dict unpacking, starred calls, await, match
    "a = not (b < c <= d) and e or -f\nmsg = f'{a!r:>{w}} {b}'\nd = {**base, 'k': v}\n"
    "g(*args, **{'x': 1})\nres = await fetch(u)\nmatch cmd:\n    case {'lr': lr, **rest}:\n        pass\n"
    "    case [x, *_] if x > 0:\n        pass\n",
    # boosting libraries and searches
    "evals = {}\nbst = xgb.train({'eta': 0.1, 'max_depth': 3}, dtrain, num_boost_round=10, evals_result=evals)\n"
    "gbm = lgb.train(params, train_set, callbacks=[lgb.record_evaluation(hist)])\n"
    "search = GridSearchCV(SVC(), grid).fit(X, y=labels)\nscores = cross_val_score(clf, X, y, cv=5)\n",
    # IPython syntax: the code inside %%time and %time counts
    "%%time\nlr = 0.3\nmodel.fit(X, y)\n",
    "y = %time f(x)\n%timeit -n 3 g(x)\n!ls\n",
]


def _plain(x):
    """A comparable form of an analyser's answer (syntax nodes as their dump)."""
    if isinstance(x, ast.AST):
        return ast.dump(x)
    if dataclasses.is_dataclass(x):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return sorted(map(repr, x))
    return x


def _answers(tree):
    return _plain(
        (
            params.top_level_assignments(tree),
            training.analyze(tree),
            training.analyze(tree, with_data=False),
            fit_labels(tree),
            results.cell_syntax(tree),
            files.path_nodes(tree),
        )
    )


@pytest.mark.parametrize("source", CELLS)
def test_every_analyser_answers_the_same_on_the_shared_walk(source):
    """The tree a new cell is parsed to once (walked once, shared by every analyser) gives each
    analyser the answer it gives on a freshly parsed tree that was not indexed."""
    transform = InteractiveShell.instance().transform_cell
    shared = training.cell_tree(source, transform)
    assert shared is not None and "_nbexp_kids" in shared.__dict__
    fresh = ast.parse(ast.unparse(shared))
    assert "_nbexp_kids" not in fresh.__dict__
    assert _answers(shared) == _answers(fresh)
    # the same nodes in ast.walk's order, less the context and operator leaves no analyser reads
    silent = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
    for node in [shared, *shared.body]:
        assert syntax.walk(node) == [n for n in ast.walk(node) if not isinstance(n, silent)]
    assert syntax.calls(shared) == [n for n in ast.walk(shared) if isinstance(n, ast.Call)]


def test_a_long_session_keeps_a_bounded_record_of_cell_texts(cell):
    """Over a long session (every cell a new text: a counter in a comment) the session remembers
    no more texts than the parse cache keeps, and a text it let go counts as new again."""
    from nbexp import tracker

    cell("%nbexp track")
    session = tracker.active_session()
    n = training.CACHED_TEXTS + 40
    for i in range(n):
        assert cell(f"x = {i}").success
    assert len(session._texts) == training.CACHED_TEXTS
    first, last = "x = 0", f"x = {n - 1}"
    assert first not in session._texts and last in session._texts
    cell("x = 0")  # run long ago, let go: recorded again as a text new to the session
    assert first in session._texts and len(session._texts) == training.CACHED_TEXTS


def test_a_long_session_keeps_the_analyses_of_its_texts_not_their_syntax_trees(cell):
    """Every node of a kept syntax tree is an object the garbage collector walks at each full collection, in the
    user's process: a session keeps each text's analyses (above), and only the last few trees, which the analysers
    of one capture share. (It kept 256 trees: a long session of 50-line cells made a full collection ~4 times as
    long, bench/RESULTS.md.)"""
    import gc

    def nodes() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, ast.AST))

    cell("%nbexp track --sample-hz 0")
    text = "\n".join(f"p{i} = [k * {i} for k in range(5)]" for i in range(40))
    per_tree = sum(1 for _ in ast.walk(ast.parse(text)))
    before = nodes()
    for i in range(60):  # new texts, read in the kernel (the analysis child starts 2 s after track)
        assert cell(f"{text}\n# {i}").success
    assert nodes() - before < (training.CACHED_TREES + 2) * per_tree, per_tree


def test_a_cell_starts_with_the_captures_garbage_collected_and_the_collector_as_the_user_left_it(cell):
    """The capture after a cell leaves objects behind (a new text's analyses, the run's rows): the collector waits
    while it runs and then collects what is due, so the user's next cell starts with an empty youngest generation
    instead of walking them in its first collection (and in more older-generation passes: bench/RESULTS.md, issue
    15). A user who set other thresholds keeps them; one who turned the collector off keeps it off."""
    import gc

    cell("%nbexp track --sample-hz 0")
    text = "\n".join(f"p{i} = [k * {i} for k in range(5)]" for i in range(40))
    thresholds = gc.get_threshold()
    young = []
    for i in range(30):  # new texts: parsed by the capture, their analyses kept
        assert cell(f"{text}\nval_loss = p1[1] * {i}\n# {i}").success
        young.append(gc.get_count()[0])
    assert sorted(young)[len(young) // 2] < 20, young  # a few objects of IPython's own, after the hooks
    assert gc.get_threshold() == thresholds and gc.isenabled()
    gc.set_threshold(500, 7, 9)
    try:
        assert cell(f"{text}\n# other").success
        assert gc.get_threshold() == (500, 7, 9)
        gc.disable()
        assert cell(f"{text}\n# off").success
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.set_threshold(*thresholds)


def test_a_tracked_cell_pays_for_no_more_older_generation_passes_than_an_untracked_one(cell):
    """Each new text leaves its analyses behind, and over a session they reach the older generations: a middle
    pass cost 1-2 ms in a tracked kernel and a full one 40-70 ms, inside whichever of the user's cells the
    interpreter's next collection fell in. A pass that is due, or due within a pass or two, now runs right
    after the capture (a full one by the interpreter's own rule), so the same cells tracked see no more of them
    inside than untracked (IPython's own parse of a 40-line cell brings some: a dozen in 150 cells)."""
    import gc

    from nbexp import tracker

    text = "\n".join(f"p{i} = [k * {i} for k in range(5)]" for i in range(40))
    depth = [0]
    passes = []

    def seen(phase, info):
        if phase == "start" and info["generation"] > 0 and threading.current_thread() is threading.main_thread():
            passes.append((info["generation"], depth[0] > 0))

    def inside_cells(label):
        passes.clear()
        for i in range(150):
            assert cell(f"{text}\nval_loss = p1[1] * {i}\n# {label} {i}").success
        return [g for g, in_capture in passes if not in_capture]

    gc.callbacks.append(seen)
    try:
        untracked = inside_cells("untracked")
        cell("%nbexp track --sample-hz 0")
        session = tracker.active_session()
        drain = session._drain

        def capture():
            depth[0] += 1
            try:
                drain()
            finally:
                depth[0] -= 1

        session._drain = capture
        tracked = inside_cells("tracked")
    finally:
        gc.callbacks.remove(seen)
    # the capture resets the youngest generation and takes the middle pass when it is near: the tracked cells see
    # fewer than the untracked ones (0-1 against 12 here; 42 before, and 7 with one full pass when the thresholds
    # were lowered only after the collector was back on)
    assert len(tracked) <= 3 and tracked.count(2) <= untracked.count(2), (untracked, tracked)


def test_the_package_listing_waits_until_the_first_cells_after_track_have_run(cell, db, monkeypatch):
    """Listing the installed packages is a child process of ~0.4 s of CPU, which on a small machine slowed the
    first cells after %nbexp track: it starts seconds later, once they have run, and the packages are recorded
    all the same; git's state is recorded at once. A session stopped before then lists nothing."""
    import time

    from nbexp import tracker
    from nbexp.capture import environment

    listed, gits = [], []
    real_packages, real_git = environment.packages, environment.git
    monkeypatch.setattr(environment, "packages", lambda: (listed.append(time.monotonic()), real_packages())[1])
    monkeypatch.setattr(environment, "git", lambda *a: (gits.append(time.monotonic()), real_git(*a))[1])
    tracked = time.monotonic()
    assert cell("%nbexp track --sample-hz 0 first").success
    for i in range(5):
        assert cell(f"x{i} = {i} * 2").success
    assert len(gits) == 1
    sessions = "SELECT s.git_commit, s.env_id, e.packages FROM sessions s LEFT JOIN environments e ON e.id = s.env_id"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # both written by the ledger's writer thread (git's first)
        commit, env_id, packages = db().execute(sessions).fetchone()
        if env_id:
            break
        time.sleep(0.1)
    assert commit == real_git()[0]
    assert env_id and '"ipython"' in packages
    assert len(listed) == 1 and listed[0] - tracked >= tracker._PACKAGES_AFTER_S
    # tracked again and stopped at once: its thread ends then, without listing
    before = {t for t in threading.enumerate() if t.name == "nbexp-env"}
    assert cell("%nbexp track --sample-hz 0 second").success
    (waiting,) = {t for t in threading.enumerate() if t.name == "nbexp-env"} - before
    assert cell("%nbexp stop").success
    waiting.join(tracker._PACKAGES_AFTER_S / 2)
    assert not waiting.is_alive() and len(listed) == 1
