"""Which run's code a cell is: a sweep cell's `with nbexp.run(...)` blocks, not the run it ran beside;
`%nbexp new` and `%nbexp stop` none of the run they end (DESIGN "lineage": a run's code is what produced it)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from test_kernel import kernel_env, kernels  # noqa: F401  (fixtures)

from nbexp.cli import main

SETUP = "import nbexp\nlr = 0.1\nepochs = 3"
LOSS = "val_loss = lr * 2"
SWEEP = (
    "for alpha in [0.1, 0.2]:\n    with nbexp.run('sgd', alpha=alpha) as r:\n        r.log(acc=alpha*3)\n"
    "        print('done', alpha)"
)


def nbexp_cli(*args: str) -> str:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def code_of(run_id: str) -> list[str]:
    """The cells ``nbexp show RUN --code`` prints, each as its text."""
    text = nbexp_cli("show", run_id, "--code")
    return [c.strip() for c in text.split("# %%") if c.strip()]


def searched(text: str) -> set[str]:
    return {line.split()[0] for line in nbexp_cli("ls", "--search", text).splitlines()[1:] if line.strip()}


def test_a_sweep_cell_is_its_blocks_code_not_the_tracked_runs(cell, reader):
    cell("%nbexp track")
    cell(SETUP)
    cell(LOSS)
    assert cell(SWEEP).success
    runs = reader().list_runs()
    tracked = next(r["id"] for r in runs if r["kind"] == "track")
    sgd = {r["id"] for r in runs if r["name"] == "sgd"}
    assert len(sgd) == 2 and tracked not in sgd
    assert searched("sgd") == sgd  # the tracked run ran nothing of the sweep
    assert searched("alpha*3") == sgd  # the sweep cell's code finds every block it opened
    r = reader()
    assert r.outputs(tracked) == []  # what the sweep printed is the blocks', as its code is
    shown = [o for x in sgd for c in r.outputs(x) for o in c["outputs"]]
    assert [o["kind"] for o in shown] == ["stdout"] and b"done 0.2" in r.blob(shown[0]["hash"])["data"]
    assert code_of(tracked) == [SETUP, LOSS]
    for run_id in sgd:  # each block's code is what led to it, the sweep cell last
        assert code_of(run_id) == [SETUP, LOSS, SWEEP]
    # a later cell of the tracked run may read what the sweep left: its code then holds the sweep cell
    cell("best = alpha * 10")
    cell("%nbexp stop")
    assert code_of(tracked) == [SETUP, LOSS, SWEEP, "best = alpha * 10"]  # not the %nbexp stop cell
    assert searched("sgd") == sgd  # a cell it did not run is in its code, not in what finds it (its own cells)


def test_cells_that_work_in_an_open_block_are_its_code(cell, reader):
    """``run = nbexp.run(...)`` without ``with``: the cells that log to it and end it are its code."""
    cell("%nbexp track")
    cell(SETUP)
    cell(LOSS)
    cell("manual = nbexp.run('manual', beta=1)")
    cell("manual.log(acc=0.5)")
    cell("manual.end()")
    cell("%nbexp stop")
    runs = {r["name"]: r["id"] for r in reader().list_runs()}
    assert code_of(runs[None]) == [SETUP, LOSS]
    assert code_of(runs["manual"]) == [
        SETUP,
        LOSS,
        "manual = nbexp.run('manual', beta=1)",
        "manual.log(acc=0.5)",
        "manual.end()",
    ]
    assert searched("manual.log") == {runs["manual"]}


def test_nbexp_new_and_stop_cells_are_none_of_the_code_of_the_run_they_end(cell, reader):
    cell("%nbexp track first")
    cell("x = 1")
    cell("%nbexp new second")
    cell("y = x + 1")
    cell("%nbexp stop")
    runs = {r["name"]: r["id"] for r in reader().list_runs()}
    assert code_of(runs["first"]) == ["x = 1"]
    assert code_of(runs["second"]) == ["x = 1", "%nbexp new second", "y = x + 1"]  # the cell that opened it
    assert searched("second") == {runs["second"]}


@pytest.mark.kernel
def test_a_sweep_cell_in_a_real_kernel(kernels, ledger_path):  # noqa: F811  (the fixture)
    """In a kernel the cell's row is written after the reply (tracker._defer): the same runs' code."""
    from nbexp.ledger.queries import Reader

    k = kernels()
    for code in ("%load_ext nbexp\n%nbexp track", SETUP, LOSS, SWEEP, "%nbexp stop"):
        assert k.run(code)["status"] == "ok", code

    with Reader(ledger_path) as r:
        runs = r.list_runs()
    tracked = next(x["id"] for x in runs if x["kind"] == "track")
    sgd = {x["id"] for x in runs if x["name"] == "sgd"}
    assert len(sgd) == 2
    assert searched("sgd") == sgd
    assert code_of(tracked) == [SETUP, LOSS]
