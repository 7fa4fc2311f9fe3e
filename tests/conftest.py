"""Shared fixtures: a real IPython shell, an isolated NBEXP_HOME, ledger readers."""

from __future__ import annotations

import os
import sqlite3
import tempfile

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

# A private IPython profile for the whole test run, set before IPython starts.
os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="nbexp-ipython-"))
os.environ.pop("NBEXP_LEDGER", None)
# Keras 3 runs on PyTorch in the tests (no tensorflow); kernels started by the tests inherit it.
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture
def nbexp_home(tmp_path, monkeypatch):
    """An empty NBEXP_HOME; the default ledger lives in it."""
    home = tmp_path / "nbexp-home"
    monkeypatch.setenv("NBEXP_HOME", str(home))
    monkeypatch.delenv("NBEXP_LEDGER", raising=False)
    return home


@pytest.fixture
def ledger_path(nbexp_home):
    return nbexp_home / "ledger.sqlite"


@pytest.fixture
def shell(nbexp_home):
    """A real InteractiveShell with nbexp loaded (not yet tracking)."""
    from IPython.core.interactiveshell import InteractiveShell

    from nbexp import tracker

    sh = InteractiveShell.instance()
    sh.reset(new_session=False)
    sh.run_cell("%load_ext nbexp", store_history=True)
    sh.run_cell("%reload_ext nbexp", store_history=True)
    yield sh
    tracker.stop()
    sh.reset(new_session=False)


class Cells:
    """Run cells in the shell like a user: history on, results returned."""

    def __init__(self, sh):
        self.sh = sh

    def __call__(self, code: str):
        return self.sh.run_cell(code, store_history=True)


@pytest.fixture
def cell(shell):
    return Cells(shell)


@pytest.fixture
def db(ledger_path):
    """A function returning a fresh read connection to the test ledger (flushing first)."""
    conns = []

    def open_db():
        from nbexp import tracker

        s = tracker.active_session()
        if s is not None:
            s.flush()
        conn = sqlite3.connect(ledger_path)
        conn.row_factory = sqlite3.Row
        conns.append(conn)
        return conn

    yield open_db
    for c in conns:
        c.close()


@pytest.fixture
def reader(ledger_path):
    """Like ``db`` but a :class:`nbexp.ledger.queries.Reader`."""
    from nbexp import tracker
    from nbexp.ledger.queries import Reader

    readers = []

    def open_reader():
        s = tracker.active_session()
        if s is not None:
            s.flush()
        r = Reader(ledger_path)
        readers.append(r)
        return r

    yield open_reader
    for r in readers:
        r.close()


@pytest.fixture
def drift_scenario(cell, reader):
    """Run the drift scenario: ``setup`` defines ``load(shift, missing, rare, seed)``; a run
    trains (``train``) on ``load(seed=1)``, a re-run on a frame with column a shifted, b's
    missing rate raised and class 1 of y made rare. Returns the drift frame and the newest
    run's ``train`` summary columns by name."""
    import nbexp

    def scenario(setup: str, train: str):
        cell("%nbexp track")
        cell(setup)
        cell("train = load(seed=1)")
        cell(train)
        cell("train = load(shift=1.0, missing=0.2, rare=True, seed=2)")
        cell(train)  # a re-run: a new run with the new data
        r = reader()
        runs = r.list_runs()
        assert len(runs) == 2
        items = {d["name"]: d for d in r.data(r.resolve("latest"))}
        columns = {c["name"]: c for c in items["train"]["summary"]["columns"]}
        return nbexp.drift(runs[1]["id"], runs[0]["id"]), columns

    return scenario


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The notebook's folder (``tmp_path/nb``): the shell's working directory, where its cells save files."""
    folder = tmp_path / "nb"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder
