"""The dataflow record on its own (nbexp.dataflow): which names a training reaches back to, and
their params. Pure: cells are parsed as the session parses them, no shell, no ledger."""

from __future__ import annotations

import ast

from nbexp.capture.params import from_literals, top_level_assignments
from nbexp.capture.training import analyze
from nbexp.dataflow import Dataflow


def run_cell(flow: Dataflow, source: str):
    """Record ``source`` as the session does after a cell ran; its analysis back."""
    tree = ast.parse(source)
    literal, computed = top_level_assignments(tree)
    t = analyze(tree)
    flow.record(t, literal, computed, from_literals(literal, []))
    flow.bound(t, str(hash(source)))
    return t


def test_the_slice_of_a_training_holds_what_it_read_and_not_the_rest():
    flow = Dataflow()
    for src in ("a = 1", "b = a + 1", "c = 5"):
        run_cell(flow, src)
    t = run_cell(flow, "clf.fit(b)")
    assert flow.trains(t)
    reached = flow.closure(t.reads)
    assert {"a", "b"} <= reached and "c" not in reached
    assert flow.params_of(reached, t.models, {"a": 1, "b": 2, "c": 5}) == {"a": 1}


def test_a_rebound_name_drops_its_old_dependencies_and_params():
    flow = Dataflow()
    for src in ("a = 1", "x = 2", "b = a + 1", "b = x * 2"):
        run_cell(flow, src)
    assert flow.closure({"b"}) == {"b", "x"}
    run_cell(flow, "a = int('3')")  # a literal rebound to a computed value: its old param goes
    assert flow.params_of({"a", "x"}, set(), {"a": 3, "x": 2}) == {"x": 2}


def test_a_change_in_place_keeps_the_old_dependencies():
    flow = Dataflow()
    for src in ("a = 1", "x = 2", "b = x * 2", "b += a"):
        run_cell(flow, src)
    assert flow.closure({"b"}) == {"a", "b", "x"}


def test_inplace_true_changes_the_frame_a_statement_calls_it_on_and_nothing_else():
    """pandas' ``df.dropna(inplace=True)`` changes ``df`` (its edit upstream of a training opens the next run); a
    layer built with ``inplace=True`` changes no ``nn`` (a review: every model cell became a maker of ``nn``, which a
    torch training reads, so a new ``head = nn.Sequential(..., nn.ReLU(inplace=True))`` after training opened a
    run, and an unrelated model's width leaked into the params of the run that trained another)."""
    flow = Dataflow()
    run_cell(flow, "df = load()")
    run_cell(flow, "fill = 0.5")
    run_cell(flow, "df.fillna(fill, inplace=True)")
    assert {"df", "fill"} <= flow.closure({"df"})
    run_cell(flow, "width2 = 99")
    for src in (
        "other = nn.Sequential(nn.Linear(12, width2), nn.ReLU(inplace=True))",
        "x = F.relu(y, inplace=True)",
        "F.relu(y, inplace=True)",  # changes y, which the analysis does not follow; not F
        'pd.eval("c = a + b", target=df, inplace=True)',
    ):
        t = run_cell(flow, src)
        assert not {"nn", "F", "pd"} & (t.writes | t.mutated), src
    t = run_cell(flow, "net = nn.Sequential(nn.Linear(4, 8))\nopt.step()")
    assert "width2" not in flow.closure(t.reads | t.writes)


def test_a_function_whose_body_trains_makes_its_callers_train_until_it_is_rebound():
    flow = Dataflow()
    run_cell(flow, "def train(model, X, y):\n    model.fit(X, y)")
    assert flow.trains(analyze(ast.parse("train(clf, X, y)")))
    run_cell(flow, "train = print")
    assert not flow.trains(analyze(ast.parse("train(clf, X, y)")))


def test_excluded_params_are_left_out_and_forgotten():
    excluded: list[str] = []
    flow = Dataflow(is_excluded=lambda key: key in excluded)
    run_cell(flow, "lr = 0.1\nseed = 0")
    t = run_cell(flow, "clf = make_model(lr, seed)\nclf.fit(X)")
    reached = flow.closure(t.reads | t.models | t.writes)
    excluded.append("seed")
    assert flow.params_of(reached, t.models, {}) == {"lr": 0.1}
    flow.exclude()
    assert "seed" not in flow.params and flow.params["lr"] == 0.1
