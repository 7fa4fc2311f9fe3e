"""The run book on its own (nbexp.runbook): when the next run opens and how a re-run is named.
No shell: cells are parsed as the session parses them; runs are written to a real ledger."""

from __future__ import annotations

import ast

import pytest

from nbexp.capture.params import from_literals, referenced_names, top_level_assignments
from nbexp.capture.secrets import scrub_text
from nbexp.capture.training import analyze as training_of
from nbexp.dataflow import Dataflow
from nbexp.ledger import connect
from nbexp.ledger.store import Store
from nbexp.ledger.writer import Writer
from nbexp.runbook import RunBook


def analyze(source: str):
    tree = ast.parse(source)
    return (*top_level_assignments(tree), referenced_names(source), training_of(tree, with_data=False))


@pytest.fixture
def book(tmp_path):
    writer = Writer(connect(tmp_path / "ledger.db"), "s1", on_error=lambda cause, msg: None)
    ended = []
    b = RunBook(
        "s1",
        Store(writer, scrub=scrub_text),
        writer.points,
        lambda ids: set(),
        Dataflow(),
        lambda key: False,
        on_end=ended.append,
        open_window=lambda: None,
    )
    yield b
    writer.close()


def test_a_rerun_of_a_named_run_is_numbered_after_it(book):
    first = book.open("baseline", "track", {})
    assert book.rerun_name(first) == "baseline #2"
    assert book.rerun_name(book.open("baseline #2", "rerun", {})) == "baseline #3"
    assert book.rerun_name(first) == "baseline #4"  # never a number twice
    assert book.rerun_name(book.open(None, "new", {})) is None


def test_a_trained_run_ends_at_a_changed_literal_or_its_training_cell_again(book):
    run = book.open(None, "new", {})
    run.set_params(from_literals(analyze("C = 1.0")[0], []), source="assign")
    run.frozen = True
    run.training_cells.update(("cell-2", "hash-2"))
    run.models.add("clf")
    assert book.screen(run, "cell-2", "other", "clf.fit(X, y)") == "re-executed"
    assert book.screen(run, "cell-7", "hash-2", "clf.fit(X, y)") == "re-executed"  # same text, no cell ids
    assert book.reason(run, "h9", "C = 0.1", analyze) == "changed"
    assert book.reason(run, "h9", "C = 1.0", analyze) is None
    assert book.reason(run, "h9", "clf.fit(X, y)", analyze) == "retrains"
    assert book.reason(run, "h9", "other = Model()\nother.fit(Z)", analyze) == "another training"


def test_an_evaluations_names_are_matched_to_the_runs_metric_keys_by_the_key_each_gets(book):
    """The names of an evaluation cell that name one of a run's metrics, with the key each gets there (a test-split
    cell's ``acc`` is ``test_acc`` after a training that recorded ``acc``): the same as asking each name's key."""
    book.trained_keys(analyze("clf.fit(X_train, y_train)")[3], {"acc", "loss"})
    t = analyze("acc = accuracy_score(y_test, clf.predict(X_test))\nloss = 1.0\nn = 3\nval_f1 = 0.5")[3]
    names = ["acc", "loss", "n", "val_f1", "f1", "test", "_acc", "x_acc"]
    for keys in ({"test_acc", "val_f1", "eval_f1", "loss"}, {"test_loss", "n"}, set(), {"acc", "eval_acc", "f1"}):
        expected = {n: book.metric_key(n, t) for n in names if book.metric_key(n, t) in keys}
        assert book.keys_among(names, t, keys) == expected, keys
    assert book.keys_among(names, t, {"test_acc", "val_f1", "eval_f1", "loss"}) == {
        "acc": "test_acc",
        "val_f1": "val_f1",
    }
    grown = {"test_acc"}
    assert book.keys_among(names, t, grown) == {"acc": "test_acc"}
    grown.add("test_loss")  # a run's keys grow between cells
    assert book.keys_among(names, t, grown) == {"acc": "test_acc", "loss": "test_loss"}


def test_an_ended_run_leaves_the_book(book):
    run = book.open(None, "new", {})
    inner = book.open("block", "context", {}, nested=True)
    assert book.current is run and book.stack == [inner]
    inner.end()
    run.end()
    assert book.current is None and book.stack == [] and book.runs == [run, inner]


def test_after_training_only_a_cell_that_may_train_is_decided_before_it_runs(book):
    """A cell's words decide when its run is chosen: one that may train (its curves belong to the
    run it opens) before it runs, one that only names a value or metric the run used after it
    ran, from what it rebound; one that names nothing the run used is never parsed."""
    run = book.open(None, "new", {})
    run.set_params(from_literals(analyze("C = 1.0")[0], []), source="assign")
    run.frozen = True
    run.training_cells.update(("cell-2", "hash-2"))
    run.models.add("clf")
    run.inputs |= {"cfg", "X"}
    run.eval_metrics.add("test_auc")
    run.eval_keys.add("test_auc")
    book.dataflow.trainer_funcs.add("train_model")
    plot = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot(history)\nprint(summary)"
    assert book.screen(run, "cell-9", "h9", plot) is None
    assert book.screen(run, "cell-9", "h9", "model = train_model(X)") == "before"
    assert book.screen(run, "cell-9", "h9", "other.fit(Z)") == "before"
    assert book.screen(run, "cell-9", "h9", "C = 0.5\nnbexp.log(note=1)") == "before"
    for source in ("cfg.lr = 0.2", "test_auc = roc_auc_score(y, p)", "C = 0.5"):
        assert book.screen(run, "cell-9", "h9", source) == "after"
    # every reason still holds, whenever it is asked
    assert book.reason(run, "h9", "cfg.lr = 0.2", analyze) == "upstream"
    assert book.reason(run, "h9", "model = train_model(X)", analyze) == "another training"
    assert book.reason(run, "h9", "test_auc = roc_auc_score(y, p)", analyze) == "re-evaluates"
    assert book.reason(run, "h9", "C = 0.5", analyze) == "changed"
    run.drop_params(["C"])
    assert book.screen(run, "cell-9", "h9", "C = 0.5") is None  # the run's params as they are now


def test_a_run_id_the_ledger_holds_is_never_drawn_again(tmp_path, monkeypatch):
    """Ids are drawn a few at a time and checked in one query: none the ledger (another kernel's
    runs) or this session holds comes out, and every id is drawn once."""
    from nbexp.ledger.queries import Reader

    path = tmp_path / "ledger.db"
    writer = Writer(connect(path), "s1", on_error=lambda cause, msg: None)
    store = Store(writer, scrub=scrub_text)
    store.open_run("aaaaaa", "s1", "2026-11-26", None, "new", 0.0, None)
    writer.flush()
    reader = Reader(path)
    draws = iter(["aaaaaa", "bbbbbb", "aaaaaa", "cccccc"] + [f"{i:06x}" for i in range(100)])
    monkeypatch.setattr("nbexp.runbook.secrets.token_hex", lambda n: next(draws))
    b = RunBook(
        "s1",
        store,
        writer.points,
        reader.taken_run_ids,
        Dataflow(),
        lambda key: False,
        on_end=lambda run: None,
        open_window=lambda: None,
    )
    ids = [b.open(None, "new", {}).id for _ in range(12)]
    assert "aaaaaa" not in ids and len(set(ids)) == 12
    assert ids[0] == "bbbbbb"
    reader.close()
    writer.close()


def test_an_evaluations_outcome_compares_values_and_refuses_what_it_cannot_compare():
    """What an evaluation cell computed, as the run book compares two runs of its text: equal values give equal
    outcomes (arrays and CPU tensors by their bytes, frames by their rows and labels, NaN equal to NaN, functions
    by name); any other value, or another shown value or printed metric, gives another outcome; a value it cannot
    compare cheaply (a model, a large array or frame) gives none, so the cell is never taken for the same
    evaluation."""
    import numpy as np
    import pandas as pd
    import torch
    from sklearn.linear_model import LogisticRegression

    def ns(**over):
        base = {
            "acc": 0.9,
            "nan": float("nan"),
            "pred": np.arange(12) % 3,
            "logits": torch.ones(4, 3),
            "report": {"f1": [0.5, np.float64(0.25)], "n": 12},
            "score": np.float32(0.75),
            "accuracy_score": np.mean,
            "table": pd.DataFrame({"precision": [0.9, 0.8], "recall": [0.7, 0.6]}, index=["0", "1"]),
        }
        return {**base, **over}

    names = {"acc", "nan", "pred", "logits", "report", "score", "accuracy_score", "table", "unbound"}
    first = RunBook.outcome(ns(), names, (("accuracy", 0.9),), 0.9)
    assert first is not None
    assert RunBook.outcome(ns(), names, (("accuracy", 0.9),), 0.9) == first
    for changed in (
        {"acc": 0.91},
        {"pred": (np.arange(12) + 1) % 3},
        {"logits": torch.ones(4, 3) * 2},
        {"report": {"f1": [0.5, 0.26], "n": 12}},
        {"score": np.float32(0.5)},
        {"table": pd.DataFrame({"precision": [0.9, 0.81], "recall": [0.7, 0.6]}, index=["0", "1"])},
        {"table": pd.DataFrame({"precision": [0.9, 0.8], "rec": [0.7, 0.6]}, index=["0", "1"])},
    ):
        assert RunBook.outcome(ns(**changed), names, (("accuracy", 0.9),), 0.9) != first, changed
    assert RunBook.outcome(ns(), names, (("accuracy", 0.8),), 0.9) != first
    assert RunBook.outcome(ns(), names, (("accuracy", 0.9),), 0.8) != first
    assert RunBook.outcome(ns(acc=1), names, (), None) != RunBook.outcome(ns(acc=True), names, (), None)

    # a list of numbers (a loop's losses) by its values, NaN equal to NaN; more items than an outcome reads: none
    with_losses = names | {"losses"}
    losses = RunBook.outcome(ns(losses=[0.5, float("nan"), 2]), with_losses, (), None)
    assert losses is not None and RunBook.outcome(ns(losses=[0.5, float("nan"), 2]), with_losses, (), None) == losses
    assert RunBook.outcome(ns(losses=[0.5, float("nan"), 3]), with_losses, (), None) != losses
    assert RunBook.outcome(ns(losses=(0.5, float("nan"), 2)), with_losses, (), None) != losses
    assert RunBook.outcome(ns(losses=[list(range(1000))] * 101), with_losses, (), None) is None

    def closure(k):
        return lambda x: x * k

    opaque = (
        LogisticRegression(),
        pd.DataFrame({"a": [[1], [2]]}),  # cells that cannot be hashed
        pd.DataFrame(np.zeros((200_000, 1))),  # over 100,000 cells
        np.zeros(300_000),  # over 1 MB
        [np.zeros(100_000)] * 11,  # 8.8 MB in all
        np.ma.masked_array([1, 2], mask=[0, 1]),
        np.array([(1, [1])], dtype=[("a", int), ("b", object)]),
        closure(2),
        [1].append,
    )
    for value in opaque:
        assert RunBook.outcome(ns(acc=value), names, (), None) is None, value


def test_an_evaluations_figures_count_by_kind_and_picture_and_a_model_it_names_again_as_the_name_holding_it():
    """A figure, its axes (one or an array of them) and their artists are new objects each time the cell runs:
    they count by their kind, and what they draw by the picture the cell displayed; a scikit-learn plot by the
    values it computed (a confusion matrix's counts). So the same drawing gives the same outcome, another picture
    or other counts another. A model the cell binds under a second name (``best = clf``) is the object another
    name holds, equal while that name holds it; not when the cell changed it in place, nor when no other name
    holds it, nor for a value that is no model (an array filled in place through a second name)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import ConfusionMatrixDisplay

    model, other = LogisticRegression(), LogisticRegression()
    names = {"fig", "axes", "disp", "best", "acc"}

    def evaluated(acc=0.9, held=model, png="iVBORw0KGgo=", counts=(5, 1), changed=frozenset()):
        fig, axes = plt.subplots(1, 2)
        lines = axes[0].plot([0.1, 0.9])
        disp = ConfusionMatrixDisplay(np.array([counts, counts[::-1]])).plot(ax=axes[1])
        ns = {"fig": fig, "axes": axes, "disp": disp, "best": held, "clf": model, "acc": acc}
        try:
            return RunBook.outcome(ns, names, (("accuracy", acc),), lines, changed, [("display", "image/png", png)])
        finally:
            plt.close(fig)

    first = evaluated()
    assert first is not None and evaluated() == first
    for changed in ({"acc": 0.8}, {"png": "iVBORw0KGgp="}, {"counts": (4, 2)}):
        assert evaluated(**changed) != first, changed
    assert evaluated(held=other) is None  # a model no other name holds
    assert evaluated(changed={"best"}) is None  # changed in place: not the object it was
    big = np.zeros(300_000)
    assert RunBook.outcome({"best": model}, {"best"}, (), None) is None
    assert RunBook.outcome({"buf": big, "preds": big}, {"buf"}, (), None) is None
