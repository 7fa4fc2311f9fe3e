"""An edit further upstream of a trained run's training (issue 15, "a trained run is never edited by a later cell").

The tutorial layout: data, a filter (or an in-place column change), the split, the training, the evaluation. The
filter cell is edited in place and the cells from it down are re-run. The edited cell is upstream of the training
only through the split, so no rule that looks at what the training cell names sees it; it must still open the
next run before it runs, so the trained run's code keeps the filter it trained on. Run in a real IPython shell,
with cell ids (JupyterLab). Without them (nbclient, papermill) a cell is known by its text alone, an edit is not
told from a new cell rebinding the data before it runs (a review found false runs at a new
``df = df.sort_values(...)`` when the rule guessed edits by the names a text binds and reads): the split re-run on
the data it made opens the next run, which begins at the edited cell. The guards, with
and without ids: cells new after training (the CIFAR tutorial's test batch, a summary rebinding ``cols``) and
edits of cells the training never depended on open no run.
"""

from __future__ import annotations

import ast

import pytest
from test_kernel import kernel_env, kernels  # noqa: F401  (fixtures)

from nbexp.capture.params import from_literals, referenced_names, top_level_assignments
from nbexp.capture.secrets import scrub_text
from nbexp.capture.training import analyze as training_of
from nbexp.dataflow import Dataflow
from nbexp.ledger import connect
from nbexp.ledger.store import Store
from nbexp.ledger.writer import Writer
from nbexp.runbook import RunBook

DATA = (
    "import numpy as np\n"
    "import pandas as pd\n"
    "from sklearn.datasets import make_classification\n"
    "X, y = make_classification(n_samples=400, n_features=6, random_state=0)\n"
    'df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])\n'
    'df["y"] = y'
)
SPLIT = (
    "from sklearn.model_selection import train_test_split\n"
    "X_train, X_test, y_train, y_test = train_test_split(\n"
    '    df.drop(columns="y"), df["y"], test_size=0.25, random_state=0\n'
    ")"
)
FIT = (
    "from sklearn.linear_model import LogisticRegression\n"
    "clf = LogisticRegression(C=1.0, max_iter=200).fit(X_train, y_train)"
)
EVAL = 'from sklearn.metrics import accuracy_score\nprint("accuracy", accuracy_score(y_test, clf.predict(X_test)))'
FILTER = ('df = df[df["f1"] > -2.0]', 'df = df[df["f1"] > -1.0]')
CLIP = ('df["f0"] = df["f0"].clip(-1, 1)', 'df["f0"] = df["f0"].clip(-2, 2)')
# pandas changing the frame itself (the Titanic tutorials' df.dropna(inplace=True)): no assignment names df
DROP = ("df.drop(index=df.index[:10], inplace=True)", "df.drop(index=df.index[:50], inplace=True)")


def _run(shell, key, code, ids):
    res = shell.run_cell(code, store_history=True, cell_id=key if ids else None)
    assert res.success, res.error_in_exec or res.error_before_exec


def _cells_of(db, run_id):
    """``(cell_key, source)`` of the cells stored under a run, in execution order."""
    return [
        tuple(r)
        for r in db().execute(
            "SELECT c.cell_key, code.source FROM cells c JOIN code ON code.hash = c.code_hash "
            "WHERE c.run_id = ? ORDER BY c.id",
            (run_id,),
        )
    ]


def _analyze(source: str):
    tree = ast.parse(source)
    return (*top_level_assignments(tree), referenced_names(source), training_of(tree, with_data=False))


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_the_run_book_tells_an_edit_of_a_cell_upstream_from_a_new_cell_or_a_rerun(tmp_path, ids):
    """The run book alone (no shell): the cells are recorded as the session records them once they ran, then the
    cell about to run is screened. Only an edited version of the filter the split read opens the next run before
    it runs; a re-run of the same text, a new cell binding ``df`` and an edit of a cell run after training do not."""
    writer = Writer(connect(tmp_path / "ledger.db"), "s1", on_error=lambda cause, msg: None)
    flow = Dataflow()
    book = RunBook(
        "s1",
        Store(writer, scrub=scrub_text),
        writer.points,
        lambda ids: set(),
        flow,
        lambda key: False,
        on_end=lambda run: None,
        open_window=lambda: None,
    )
    run = book.open(None, "new", {})

    def key_of(key, source):  # a cell id, or (no ids: papermill, nbclient) the code hash
        return key if ids else f"h{hash(source)}"

    def ran(key, source):  # what the session does once a cell ran (Session._capture)
        literal, computed, _names, t = _analyze(source)
        if flow.trains(t):
            book.trained(run, t)
            run.frozen = True
            run.training_cells.update((key_of(key, source), f"h{hash(source)}"))
        flow.record(t, literal, computed, from_literals(literal, []))
        flow.bound(t, f"h{hash(source)}", key_of(key, source))

    def screened(key, source):
        return book.screen(run, key_of(key, source), f"h{hash(source)}", source)

    old, new = FILTER
    for key, source in (("data", "df = load()"), ("filter", old), ("split", "X_train, y_train = split(df)")):
        ran(key, source)
    ran("fit", "clf.fit(X_train, y_train)")
    assert run.frozen
    # without cell ids a cell is its text: an edit looks like any new cell rebinding df, and is not told apart
    assert screened("filter", new) == ("edited upstream" if ids else None)
    assert screened("filter", old) is None  # the same text again: what the run trained on
    assert screened("other", "top = df.head()") is None  # a new cell that reads the data
    assert screened("other", "df = df.sort_values('f0')") is None  # a new cell that rebinds it
    ran("twin", old)  # a new cell with the very text of the filter, after training...
    assert screened("twin", new) is None  # ...edited: it made nothing the training read
    ran("look", "df = df[df.y == 1]")  # after the training
    assert screened("look", "df = df[df.y == 0]") is None
    writer.close()


@pytest.mark.slow  # whole training scenarios in many cells
@pytest.mark.parametrize("edit", [FILTER, CLIP, DROP], ids=["filter", "column in place", "inplace=True"])
def test_an_edit_two_cells_upstream_of_training_opens_the_next_run_before_it_runs(shell, reader, db, edit):
    """The filter (or a column clipped in place) is edited and the cells from it down re-run: the edited cell
    opens the next run before it runs. The trained run keeps the filter it trained on (its code, what ``nbexp
    replay`` runs); the new run holds the edited cell, the split, the training and the evaluation. (With cell
    ids, as JupyterLab sends them: without, an edit is not told from a new cell rebinding the data.)"""
    ids = True
    old, new = edit
    _run(shell, None, "%nbexp track --sample-hz 0 baseline", False)
    for key, code in (("c1", DATA), ("c2", old), ("c3", SPLIT), ("c4", FIT), ("c5", EVAL)):
        _run(shell, key, code, ids)
    assert len(reader().list_runs()) == 1
    _run(shell, "c2", new, ids)
    runs = reader().list_runs()
    assert len(runs) == 2, runs  # opened by the edited cell itself, not later by the split or the training
    for key, code in (("c3", SPLIT), ("c4", FIT), ("c5", EVAL)):
        _run(shell, key, code, ids)
    runs = reader().list_runs()
    assert len(runs) == 2, runs
    first, second = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert (first["status"], second["name"], second["kind"]) == ("finished", "baseline #2", "rerun")
    assert [src for _key, src in _cells_of(db, second["id"])] == [new, SPLIT, FIT, EVAL]
    assert new not in [src for _key, src in _cells_of(db, first["id"])]
    first_code = [c["source"] for c in reader().lineage(first["id"])]
    assert old in first_code and new not in first_code
    assert new in [c["source"] for c in reader().lineage(second["id"])]
    assert "accuracy" in first["metrics"] and "accuracy" in second["metrics"]


@pytest.mark.parametrize("edit", [FILTER, CLIP, DROP], ids=["filter", "column in place", "inplace=True"])
def test_without_cell_ids_an_edit_upstream_joins_the_next_run_once_the_split_reads_it(shell, reader, db, edit):
    """nbclient, papermill: no cell ids, so the edited filter cannot be told from a new cell before it runs and runs
    in the trained run. Once the split re-runs on the data it made, the next run opens there and begins at the
    edited cell: the trained run keeps the filter it trained on (its code, what ``nbexp replay`` runs, and its
    cells); the new run holds the edited cell, the split, the training and the evaluation."""
    old, new = edit
    _run(shell, None, "%nbexp track --sample-hz 0 baseline", False)
    for code in (DATA, old, SPLIT, FIT, EVAL):
        _run(shell, None, code, False)
    _run(shell, None, "print(df.shape)", False)  # a look at the data after the training: the trained run's
    for code in (new, SPLIT, FIT, EVAL):
        _run(shell, None, code, False)
    runs = reader().list_runs()
    assert len(runs) == 2, runs
    first, second = reader().run(runs[1]["id"]), reader().run(runs[0]["id"])
    assert (first["status"], second["name"], second["kind"]) == ("finished", "baseline #2", "rerun")
    assert [src for _key, src in _cells_of(db, second["id"])] == [new, SPLIT, FIT, EVAL]
    assert [src for _key, src in _cells_of(db, first["id"])][-1] == "print(df.shape)"
    first_code = [c["source"] for c in reader().lineage(first["id"])]
    assert old in first_code and new not in first_code
    second_code = [c["source"] for c in reader().lineage(second["id"])]
    assert new in second_code
    assert first["end_time"] <= second["start_time"]
    assert "accuracy" in first["metrics"] and "accuracy" in second["metrics"]


def test_a_new_cell_changing_the_data_after_training_begins_the_next_run_once_the_split_reads_it(shell, reader, db):
    """With cell ids: after the training a new cell (not an edit: a cell id of its own) filters the data, and the
    split, the training and the evaluation are run again. The next run opens when the split reads the filtered
    data, and begins at the new cell: the trained run's code never holds a filter it did not train on."""
    old, new = FILTER
    _run(shell, None, "%nbexp track --sample-hz 0 baseline", False)
    for key, code in (("c1", DATA), ("c2", old), ("c3", SPLIT), ("c4", FIT), ("c5", EVAL), ("more", new)):
        _run(shell, key, code, True)
    assert len(reader().list_runs()) == 1  # a new cell is not an edit: nothing opens before the split reads it
    for key, code in (("c3", SPLIT), ("c4", FIT), ("c5", EVAL)):
        _run(shell, key, code, True)
    runs = reader().list_runs()
    assert len(runs) == 2, runs
    first, second = runs[1]["id"], runs[0]["id"]
    assert [key for key, _src in _cells_of(db, second)] == ["more", "c3", "c4", "c5"]
    assert new not in [c["source"] for c in reader().lineage(first)]


PREDICTIONS = {  # cells run after the training
    "model": ('df["pred"] = clf.predict(df[features])\nprint("rows right", (df.pred == df.y).mean())',),
    "alias": ("best = clf", 'df["pred"] = best.predict(df[features])'),
    "value": ("proba = clf.predict_proba(df[features])[:, 1]", 'df["score"] = proba'),
}


@pytest.mark.parametrize("how", sorted(PREDICTIONS))
@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_predictions_added_to_the_data_after_training_open_no_run_when_the_split_runs_again(
    shell, reader, db, ids, how
):
    """After the training a cell adds the model's predictions to ``df`` (what the run made, not what it trains
    on; read through the model, an alias of it or a value computed from it) and the split is run again unchanged,
    to look at the test set: all of it is the one run (two reviews found false runs there). Retrained after, the
    next run opens at the training, and the analysis cell stays in the run whose model it read."""
    split = (
        'features = ["f0", "f1", "f2"]\n'
        "from sklearn.model_selection import train_test_split\n"
        'X_train, X_test, y_train, y_test = train_test_split(df[features], df["y"], test_size=0.25, random_state=0)'
    )
    preds = tuple((f"pred{i}", code) for i, code in enumerate(PREDICTIONS[how]))
    _run(shell, None, "%nbexp track --sample-hz 0 baseline", False)
    cells = (("c1", DATA), ("c2", FILTER[0]), ("c3", split), ("c4", FIT), ("c5", EVAL))
    for key, code in cells + preds + (("c3", split), ("look", "print(X_test.shape)")):
        _run(shell, key, code, ids)
    assert len(reader().list_runs()) == 1
    _run(shell, "c4", FIT.replace("C=1.0", "C=0.1"), ids)
    runs = reader().list_runs()
    assert len(runs) == 2, runs
    assert preds[-1][1] in [src for _key, src in _cells_of(db, runs[1]["id"])]
    assert [src for _key, src in _cells_of(db, runs[0]["id"])] == [FIT.replace("C=1.0", "C=0.1")]


def test_an_edit_upstream_stays_in_the_trained_run_when_a_metric_of_it_was_recorded_after(shell, reader, db):
    """Without cell ids the filter is edited and re-run, then a cell logs a metric of the trained run (the rows it
    keeps now), then the split, training and evaluation re-run. What that cell recorded is the trained run's, so
    the next run begins at the split, not at the edit: no cell leaves its metrics behind in another run."""
    old, new = FILTER
    log = "import nbexp\nnbexp.log(n_rows=len(df))"
    _run(shell, None, "%nbexp track --sample-hz 0 baseline", False)
    for code in (DATA, old, SPLIT, FIT, EVAL, new, log, SPLIT, FIT, EVAL):
        _run(shell, None, code, False)
    runs = reader().list_runs()
    assert len(runs) == 2, runs
    first, second = runs[1]["id"], runs[0]["id"]
    assert [src for _key, src in _cells_of(db, second)] == [SPLIT, FIT, EVAL]
    assert [src for _key, src in _cells_of(db, first)][-2:] == [new, log]
    assert "n_rows" in reader().run(first)["metrics"]


@pytest.mark.slow
def test_an_edit_upstream_of_a_training_cell_that_rebuilds_its_data_opens_the_next_run(shell, reader, db):
    """The training cell drops the empty rows of ``df`` in its own name before fitting on it: the filter above
    it still made what the training read, so its edit opens the next run before it runs (the rebuilt ``df`` once
    hid everything upstream of it)."""
    old, new = FILTER
    cols = 'cols = [f"f{i}" for i in range(6)]'
    fit = (
        "from sklearn.linear_model import LogisticRegression\n"
        "df = df.dropna()\n"
        'clf = LogisticRegression(max_iter=200).fit(df[cols], df["y"])'
    )
    evaluate = 'print("accuracy", clf.score(df[cols], df["y"]))'
    _run(shell, None, "%nbexp track --sample-hz 0 baseline", False)
    for key, code in (("c1", DATA), ("c2", old), ("cols", cols), ("c4", fit), ("c5", evaluate)):
        _run(shell, key, code, True)
    _run(shell, "c2", new, True)
    runs = reader().list_runs()
    assert len(runs) == 2, runs  # opened by the edited filter itself
    first_code = [c["source"] for c in reader().lineage(runs[1]["id"])]
    assert old in first_code and new not in first_code


@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_a_new_cell_rebinding_the_filtered_data_after_training_opens_no_run(shell, reader, ids):
    """After the tutorial's training a new cell sorts ``df`` (or drops its empty rows) in its own name, as the
    filter above the split did: it is not the filter edited, and the evaluation after it stays in the run."""
    old, _new = FILTER
    _run(shell, None, "%nbexp track --sample-hz 0 baseline", False)
    for key, code in (("c1", DATA), ("c2", old), ("c3", SPLIT), ("c4", FIT), ("c5", EVAL)):
        _run(shell, key, code, ids)
    for key, code in (("sort", 'df = df.sort_values("f0")'), ("drop", "df = df.dropna()"), ("c5", EVAL)):
        _run(shell, key, code, ids)
    runs = reader().list_runs()
    assert len(runs) == 1, runs


@pytest.mark.slow
@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_the_cifar_tutorials_test_batch_after_training_opens_no_run(shell, reader, ids):
    """The PyTorch CIFAR tutorial: a batch of training images is shown before training, the training loop binds
    ``inputs, labels`` for each batch, and after training a new cell takes a test batch (``images, labels =
    next(dataiter)``), predicts it and the accuracy is computed. The test batch is not an edit of anything the
    training read: all of it is the one run."""
    _run(shell, None, "%nbexp track --sample-hz 0 cifar", False)
    cells = (
        (
            "data",
            "import torch\nfrom torch import nn, optim\nfrom torch.utils.data import DataLoader, TensorDataset\n"
            "torch.manual_seed(0)\nbatch_size = 8\n"
            "trainset = TensorDataset(torch.randn(64, 12), torch.randint(0, 3, (64,)))\n"
            "trainloader = DataLoader(trainset, batch_size=batch_size, shuffle=True)\n"
            "testset = TensorDataset(torch.randn(32, 12), torch.randint(0, 3, (32,)))\n"
            "testloader = DataLoader(testset, batch_size=batch_size, shuffle=False)\n"
            "classes = ('plane', 'car', 'bird')",
        ),
        (
            "show",
            "dataiter = iter(trainloader)\nimages, labels = next(dataiter)\n"
            "print(' '.join(f'{classes[labels[j]]:5s}' for j in range(batch_size)))",
        ),
        (
            "net",
            "class Net(nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.fc = nn.Linear(12, 3)\n\n"
            "    def forward(self, x):\n"
            "        return self.fc(x)\n\n\n"
            "net = Net()",
        ),
        ("opt", "criterion = nn.CrossEntropyLoss()\noptimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)"),
        (
            "train",
            "for epoch in range(2):\n"
            "    running_loss = 0.0\n"
            "    for i, data in enumerate(trainloader, 0):\n"
            "        inputs, labels = data\n"
            "        optimizer.zero_grad()\n"
            "        outputs = net(inputs)\n"
            "        loss = criterion(outputs, labels)\n"
            "        loss.backward()\n"
            "        optimizer.step()\n"
            "        running_loss += loss.item()\n"
            "print('Finished Training')",
        ),
        (
            "test batch",
            "dataiter = iter(testloader)\nimages, labels = next(dataiter)\n"
            "print('GroundTruth: ', ' '.join(f'{classes[labels[j]]:5s}' for j in range(batch_size)))",
        ),
        (
            "predict",
            "outputs = net(images)\n_, predicted = torch.max(outputs, 1)\n"
            "print('Predicted: ', ' '.join(f'{classes[predicted[j]]:5s}' for j in range(batch_size)))",
        ),
        (
            "accuracy",
            "correct = 0\ntotal = 0\nwith torch.no_grad():\n"
            "    for data in testloader:\n"
            "        images, labels = data\n"
            "        outputs = net(images)\n"
            "        _, predicted = torch.max(outputs.data, 1)\n"
            "        total += labels.size(0)\n"
            "        correct += (predicted == labels).sum().item()\n"
            "print(f'Accuracy of the network on the test images: {100 * correct // total} %')",
        ),
    )
    for key, code in cells:
        _run(shell, key, code, ids)
    runs = reader().list_runs()
    assert len(runs) == 1, runs
    assert reader().run(runs[0]["id"])["params"]["optimizer.lr"] == 0.001


@pytest.mark.slow
@pytest.mark.parametrize("ids", [True, False], ids=["cell ids", "no cell ids"])
def test_cells_after_training_that_rebind_upstream_names_open_no_run(shell, reader, ids):
    """After training: a summary cell rebinding ``cols`` (the feature columns' name upstream), a cell that reads
    the data frame, a cell sorting ``df`` in its own name, and an analysis cell that narrows ``df`` then is edited
    and re-run. None is an edit of a cell the training read: they stay in the trained run."""
    _run(shell, None, "%nbexp track --sample-hz 0", False)
    for key, code in (
        ("c1", DATA),
        ("cols", 'cols = [c for c in df.columns if c.startswith("f")]'),
        (
            "c3",
            "from sklearn.model_selection import train_test_split\n"
            'X_train, X_test, y_train, y_test = train_test_split(df[cols], df["y"], random_state=0)',
        ),
        ("c4", FIT),
        ("c5", "test_accuracy = clf.score(X_test, y_test)"),
        (
            "summary",
            'result = {"model": "logreg", "test_accuracy": test_accuracy}\ncols = list(result)\n'
            "summary = pd.DataFrame([result], columns=cols)\nprint(summary)",
        ),
        ("look", 'top = df.sort_values("f0").head(3)\nprint(top)'),
        ("sort", 'df = df.sort_values("f0")'),  # rebinds df from itself, as an upstream filter does
        ("narrow", 'df = df[df["y"] == 1]\nprint(len(df))'),
        ("narrow", 'df = df[df["y"] == 0]\nprint(len(df))'),
    ):
        _run(shell, key, code, ids)
    runs = reader().list_runs()
    assert len(runs) == 1, runs
    assert "test_accuracy" in reader().run(runs[0]["id"])["metrics"]


@pytest.mark.kernel
def test_an_edited_filter_in_a_real_kernel_opens_the_next_run_before_it_runs(kernels, ledger_path):  # noqa: F811
    """In a kernel each cell's capture comes after the reply (tracker._defer): the training's reads are noted by
    then, so the edited filter still opens the next run before it runs. JupyterLab sends the cell id in the
    request's metadata (``cellId``)."""
    ids = True
    from nbexp.ledger.queries import Reader

    k = kernels()

    def run(key, code):
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False}
        msg = k.kc.session.msg("execute_request", content, metadata={"cellId": key} if ids else {})
        k.kc.shell_channel.send(msg)
        reply = k.wait(msg["header"]["msg_id"])
        assert reply["status"] == "ok", (code, reply)

    old, new = FILTER
    run("track", "%load_ext nbexp\n%nbexp track --sample-hz 0 baseline")
    for key, code in (("c1", DATA), ("c2", old), ("c3", SPLIT), ("c4", FIT), ("c5", EVAL), ("c2", new)):
        run(key, code)
    run("check", "from nbexp import tracker\nassert len(tracker.active_session().runs) == 2")  # opened at c2
    for key, code in (("c3", SPLIT), ("c4", FIT), ("c5", EVAL)):
        run(key, code)
    run("stop", "%nbexp stop")
    with Reader(ledger_path) as r:
        runs = r.list_runs()
        assert len(runs) == 2, runs
        first, second = runs[1]["id"], runs[0]["id"]
        first_code = [c["source"] for c in r.lineage(first)]
        assert old in first_code and new not in first_code
        cells = r.conn.execute(
            "SELECT code.source FROM cells c JOIN code ON code.hash = c.code_hash WHERE c.run_id = ? ORDER BY c.id",
            (second,),
        ).fetchall()
    assert [src for (src,) in cells if not src.startswith(("from nbexp", "%nbexp"))] == [new, SPLIT, FIT, EVAL]
