"""A new cell's text read by the analysis child (nbexp.capture.texts): the same answers the kernel
would read itself, taken by the capture instead of parsing in the kernel, and a child that never
outlives its kernel nor breaks a cell."""

from __future__ import annotations

import ast
import json
import os
import signal
import time
from pathlib import Path

import nbformat
import pytest
from test_capture_cost import CELLS, _plain
from test_kernel import kernel_env, kernels  # noqa: F401  (fixtures)

from nbexp.capture import texts
from nbexp.ledger.queries import Reader

ROOT = Path(__file__).resolve().parents[1]

# IPython syntax the child reads as the shell does, and some it declines (one line after the transform:
# the shell's prefilter, which knows the namespace, would read it)
MAGIC_CELLS = [
    "%%time\nlr = 0.3\nmodel.fit(X, y)\n",
    "%%capture out\nfor e in range(3):\n    opt.step()\n    loss.backward()\n",
    "y = %time f(x)\n%timeit -n 3 g(x)\n!ls\n",
    "files = !ls\nn = len(files)\nok = n != 0\n",
    "x = 1\nx?\n",
    "%nbexp track?\n",
    "!pip install thing",
    "%matplotlib inline",
    "a = 1\nif a != 2:\n    df.to_csv('out.csv')\n",
]


def _all_texts() -> list[str]:
    found = list(CELLS) + MAGIC_CELLS
    for path in sorted(
        [*(ROOT / "tests" / "notebooks").glob("*.ipynb"), *(ROOT / "example_notebooks").glob("*.ipynb")]
    ):
        nb = nbformat.read(path, as_version=4)
        found += [c.source for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    for path in sorted((ROOT / "tests").glob("test_*.py")):  # every code-like string of the tests
        found += [
            n.value
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and any(c in n.value for c in "\n=(")
        ]
    return list(dict.fromkeys(found))


def test_the_child_answers_what_the_kernel_would_read(shell):
    """Over every cell of the test and example notebooks, cells with IPython syntax and every code-like
    string in the tests (parsing or not), each part the
    child answers equals what the kernel reads from the text itself (compared as plain values: sets
    sorted, syntax nodes dumped); the child declines only texts the shell's prefilter would read."""
    sources = _all_texts()
    assert len(sources) > 1000
    syntax = texts._default_transform(shell)
    assert syntax == ["nbexp.magics:_help_suffix"]  # nbexp's own `%nbexp WORD?` transform, read in the child too
    child = texts._Child(syntax)
    try:
        answered, declined = 0, []
        for source in sources:
            assert child.ask(source, hold=0.0)
            got = child.answers(timeout=30)
            assert len(got) == 1 and got[0][0] == source
            found = got[0][1]
            if "analysis" in found:
                answered += 1
            else:
                declined.append(source)
            for part, value in found.items():
                assert _plain(value) == _plain(texts.PARTS[part](source, shell.transform_cell)), (part, source)
        assert child.alive
        # declined: exactly the texts IPython's transformer turns into one line (`%%time` cells, `!ls`,
        # `%matplotlib inline`), which the shell's prefilter then reads knowing the namespace
        one_line = [
            s
            for s in sources
            if texts._MAGIC_CHARS.intersection(s)
            and len(shell.input_transformer_manager.transform_cell(s).splitlines()) == 1
        ]
        assert declined == one_line and answered == len(sources) - len(declined) > 1000
    finally:
        child.close()
    assert child.proc.returncode == 0


def test_a_custom_transform_keeps_ipython_syntax_in_the_kernel(shell):
    """A shell whose transform the child cannot repeat (a transformer added by another extension) gets
    no IPython syntax read by the child: it sends only texts the transform never touches."""
    shell.input_transformers_post.append(lambda lines: [line.replace("0.3", "0.4") for line in lines])
    try:
        assert texts._default_transform(shell) is None
        kept = texts.Texts(shell.transform_cell, shell)
        kept.start_child()
        try:
            assert kept.start("lr = 0.3\nx = lr != 1\n") and not kept.waiting  # '!' : read in the kernel
            assert kept.start("lr = 0.3\nx = lr + 1\n") and kept.waiting
            assert kept.collect(30)
            assert kept.get("lr = 0.3\nx = lr + 1\n", "analysis")[0] == {"lr": 0.3}
            assert kept.stats == {"child": 4, "kernel": 0}
        finally:
            kept.close()
    finally:
        shell.input_transformers_post.clear()


def test_the_child_holds_a_text_and_lets_go_of_one_the_kernel_read(shell):
    """The child reads a new text only once it held it as long as the kernel asked: a cell done sooner has
    its text read in the kernel, which drops it, and the child never reads it (it would compete with the
    next cell for the machine); a text held and not dropped is answered without another word."""
    child = texts._Child(texts._default_transform(shell))
    try:
        assert child.ask("warm = 1\n", hold=0.0) and len(child.answers(timeout=30)) == 1  # up
        assert child.ask("lr = 0.1\nval_loss = lr * 2\n", hold=0.5)
        assert child.answers(timeout=0.2) == []  # held
        child.drop("lr = 0.1\nval_loss = lr * 2\n")
        assert child.asked == {}
        time.sleep(0.6)  # past its hold: dropped, it is not read
        assert _nothing_came(child)
        assert child.ask("lr = 0.2\nval_loss = lr * 3\n", hold=0.3)
        got = child.answers(timeout=30)
        assert [source for source, _ in got] == ["lr = 0.2\nval_loss = lr * 3\n"]
        assert got[0][1]["analysis"][0] == {"lr": 0.2}
        time.sleep(0.3)
        assert _nothing_came(child) and child.alive  # one answer for it, none for the dropped text
    finally:
        child.close()


def test_a_held_text_is_handed_over_once_and_answered_by_the_child(shell):
    """The capture after a short cell hands its held text to the child (sent now, answered), collecting that
    answer while an older text is still asked; a text the child was sent at once (a cell that followed another)
    is not handed over again (the capture then waits no longer for it)."""
    t = texts.Texts(shell.transform_cell, shell)
    t.start_child()
    try:
        assert t._child is not None and t._child.ask("warm = 1\n", hold=0.0) and t._child.answers(timeout=30)
        assert t.start("old = 1\n", hold=60.0)  # asked, held a minute: still outstanding below
        assert t.start("lr = 0.1\nval_loss = lr * 2\n", hold=60.0)
        assert t.hand_over("lr = 0.1\nval_loss = lr * 2\n")
        assert not t.hand_over("lr = 0.1\nval_loss = lr * 2\n")  # sent already
        assert not t.collect(30.0, until="lr = 0.1\nval_loss = lr * 2\n")  # "old" is still asked
        assert t.answered("lr = 0.1\nval_loss = lr * 2\n") and t.stats == {"child": 4, "kernel": 0}
        assert t.start("epochs = 3\n", hold=0.0)  # sent at once
        assert not t.hand_over("epochs = 3\n")
    finally:
        t.close()


def _bytes_read(pid: int) -> int:
    """What process ``pid`` has read so far through read(2) and the like (Linux's /proc/PID/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


def test_a_text_dropped_before_its_hold_never_reaches_the_child(shell):
    """A held text stays in the kernel until its time comes: one dropped before (a person's short cell, read in
    the kernel after its reply) is never written to the child's pipe, so the child does not wake beside the cell
    nor beside its reply; one held to its time is sent then and answered."""
    child = texts._Child(texts._default_transform(shell))
    written = []
    send = child._send
    child._send = lambda message: written.append(message) or send(message)
    try:
        assert child.ask("warm = 1\n", hold=0.0) and len(child.answers(timeout=30)) == 1  # up, imports done
        try:
            read = _bytes_read(child.proc.pid)
        except (OSError, AssertionError):
            pytest.skip("this machine does not show a process's I/O (Linux's /proc/PID/io)")
        time.sleep(0.3)
        before, written[:] = _bytes_read(child.proc.pid), []
        assert before >= read
        for i in range(5):
            source = f"lr = 0.{i + 1}\nval_loss = lr * 2\n"
            assert child.ask(source, hold=0.5)
            child.drop(source)
        time.sleep(0.8)  # past every hold
        assert written == [] and child.asked == {}
        assert _bytes_read(child.proc.pid) == before
        assert child.ask("lr = 0.9\nval_loss = lr * 3\n", hold=1.0)
        time.sleep(0.2)
        assert written == []  # not yet
        got = child.answers(timeout=30)
        assert [source for source, _ in got] == ["lr = 0.9\nval_loss = lr * 3\n"]
        assert [m[:2] for m in written] == [(7, "lr = 0.9\nval_loss = lr * 3\n")] and _bytes_read(
            child.proc.pid
        ) > before
    finally:
        child.close()


def test_a_short_new_cell_is_read_in_the_kernel_after_it_ran(cell):
    """A tracked session's new cell that is done before the child's hold: its text is read in the kernel (after
    the cell, as without the child), the child lets it go, and the run gets the same params and metrics."""
    from nbexp import tracker

    cell("%nbexp track")
    session = tracker.active_session()
    assert _up(session)
    before = dict(session._texts.stats)
    time.sleep(0.2)  # a person's pause: a cell right after another's capture ("Run All") has its text read at once
    assert cell("lr = 0.05\nepochs = 3\nval_acc = 0.5 + lr\n").success
    assert session._texts.stats["child"] == before["child"] and session._texts.stats["kernel"] > before["kernel"]
    assert not session._texts.waiting  # dropped: nothing of it is read in the child
    time.sleep(texts.HOLD_S + 0.2)
    assert _nothing_came(session._texts._child)
    run = session.current
    assert run.params["lr"] == 0.05 and run.params["epochs"] == 3 and "val_acc" in run.metric_keys


def test_a_text_read_before_its_cell_ran_keeps_the_child_reading_the_rest(cell):
    """Once a run trained, a new cell that names a training call or nbexp has its analysis read in the kernel
    before it runs (whether it opens the next run); the child still reads the rest of the text (its data use,
    results and files) while the long cell runs, so the capture after it parses nothing."""
    from nbexp import tracker

    cell("%nbexp track")
    session = tracker.active_session()
    cell("import time, nbexp")
    assert _up(session)
    assert cell("lr = 0.1\nnbexp.log(loss=0.5)\n").success  # trains: the run is frozen
    before = dict(session._texts.stats)
    assert cell("lr = 0.2\nepochs = 3\ntime.sleep(0.5)\nnbexp.log(loss=0.4)\n").success
    stats = {k: session._texts.stats[k] - before[k] for k in before}
    # the analysis read in the kernel before the cell, unless the child (asked at once: the cell follows the
    # last one) answered first on a busy machine; the rest from the child, none of it read after the cell
    assert stats in ({"child": 3, "kernel": 1}, {"child": 4, "kernel": 0})
    assert session.current.params["lr"] == 0.2


def test_a_cell_right_after_another_is_read_at_once_one_after_a_pause_is_held(cell, monkeypatch):
    """A new cell that starts right after the previous cell's capture (Run All) has the child read its text at
    once; one a person starts after a pause has it held (read in the kernel after a short cell)."""
    from nbexp import tracker

    cell("%nbexp track")
    session = tracker.active_session()
    assert _up(session)
    child = session._texts._child
    holds = []
    ask = child.ask
    monkeypatch.setattr(child, "ask", lambda source, hold=texts.HOLD_S: holds.append(hold) or ask(source, hold))
    cell("a = 1\nb = a + 1\n")
    cell("c = 2\nd = c + 1\n")  # at once
    time.sleep(0.2)
    cell("e = 3\nf = e + 1\n")  # after a pause
    assert holds[-2:] == [0.0, texts.HOLD_S]


def _nothing_came(child) -> bool:
    """Whether no answer came up the child's pipe (one the kernel no longer expects is thrown away unread by
    ``answers``: look at the bytes)."""
    with child._lock:
        child._read()
        return child._inbox == b""


def _child_of(session, timeout=30.0):
    deadline = time.time() + timeout
    while session._texts._child is None and time.time() < deadline:
        time.sleep(0.05)
    return session._texts._child


def _up(session) -> bool:
    """Whether the session's child is up: it answered a text asked to be read at once."""
    child = _child_of(session)
    return child is not None and child.ask("probe = 1\n", hold=0.0) and session._texts.collect(timeout=60)


def test_new_cells_are_read_by_the_child_and_captured_as_before(cell, db, tmp_path, monkeypatch):
    """A tracked session's new cells are read by the child (the kernel parses none of them), and the
    run gets the same params and metrics; a re-executed cell asks nothing."""
    from nbexp import tracker

    monkeypatch.chdir(tmp_path)  # the cell writes report.txt

    cell("%nbexp track")
    session = tracker.active_session()
    cell("import time")
    assert _up(session)
    before = dict(session._texts.stats)
    # the cell runs a while (as cells that train do): the child has read it when it ends
    body = (
        "lr = 0.05\nepochs = 3\ntime.sleep(0.3)\nval_acc = 0.5 + lr\n"
        "with open('report.txt', 'w') as f:\n    f.write('x')\n"
    )
    assert cell(body).success
    assert cell(body).success
    stats = {k: session._texts.stats[k] - before[k] for k in before}
    assert stats == {"child": 4, "kernel": 0}
    run = session.current
    assert run.params["lr"] == 0.05 and run.params["epochs"] == 3
    assert "val_acc" in run.metric_keys
    names = [r["name"] for r in db().execute("select name from artifacts where run_id = ?", (run.id,))]
    assert names == ["report.txt"]


def test_a_dead_child_costs_no_cell(cell, capsys):
    """The child killed outright: the next new cells are read in the kernel, captured as ever, and
    nothing is printed about it."""
    from nbexp import tracker

    cell("%nbexp track")
    session = tracker.active_session()
    child = _child_of(session)
    os.kill(child.proc.pid, signal.SIGKILL)
    child.proc.wait()
    capsys.readouterr()
    assert cell("lr = 0.2\nval_loss = lr * 2\n").success
    assert cell("lr = 0.3\nval_loss = lr * 3\n").success
    assert session._texts._child is None
    assert session.current.params["lr"] == 0.3 and "val_loss" in session.current.metric_keys
    out = capsys.readouterr()
    assert "nbexp" not in out.err and "nbexp" not in out.out


def test_an_interrupt_of_the_kernel_leaves_the_child_reading(cell):
    """Interrupting a kernel (jupyter_client's killpg SIGINT, Ctrl-C in a terminal) reaches its whole process
    group: the child ignores it and keeps reading new texts (it died, and every later text was read in the kernel
    for the rest of the session)."""
    from nbexp import tracker

    cell("%nbexp track")
    session = tracker.active_session()
    child = _child_of(session)
    cell("import time")
    assert _up(session)
    os.kill(child.proc.pid, signal.SIGINT)
    time.sleep(0.5)
    assert child.proc.poll() is None
    before = session._texts.stats["child"]
    assert cell("lr = 0.2\ntime.sleep(0.3)\nval_loss = lr * 2\n").success
    assert session._texts._child is child and session._texts.stats["child"] > before


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.time() + timeout
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _tracked_with_child(k, tmp_path: Path, name: str = "") -> int:
    """Track in the real kernel ``k`` (a first run called ``name``) and wait until its analysis child is up: the
    child's pid."""
    k.run("%load_ext nbexp")
    k.run(f"%nbexp track {name}".rstrip())
    pid_file = tmp_path / "child.pid"
    up = (
        "import time\nfrom nbexp import tracker\n"
        "while tracker.active_session()._texts._child is None:\n    time.sleep(0.1)\n"
        f"open({str(pid_file)!r}, 'w').write(str(tracker.active_session()._texts._child.proc.pid))\n"
    )
    assert k.run(up)["status"] == "ok"
    return int(pid_file.read_text())


@pytest.mark.kernel
@pytest.mark.parametrize("end", ["shutdown", "sigkill"])
def test_the_child_dies_with_its_kernel(kernels, tmp_path, end):  # noqa: F811 (the fixture)
    """A real kernel's analysis child exits when the kernel shuts down, and when it is killed outright
    (SIGKILL: no cleanup of ours runs): no orphan is left behind."""
    k = kernels()
    pid = _tracked_with_child(k, tmp_path)
    assert k.run("lr = 0.1\nval_loss = lr * 2\n")["status"] == "ok"
    assert _alive(pid)
    if end == "shutdown":
        k.shutdown()
    else:
        os.kill(k.pid, signal.SIGKILL)
    assert _gone(pid)


@pytest.mark.kernel
def test_a_short_new_cell_in_a_kernel_is_read_by_the_child_once_its_reply_left(kernels, tmp_path):  # noqa: F811
    """In a real kernel, a person's short new cells (done before their hold) have their texts handed to the child
    once their replies have left, and the capture waits for its answers, the GIL free: read in the kernel there,
    the parse slowed the next cell (bench/RESULTS.md, issue 15). The runs get their params and metrics all the
    same."""
    k = kernels()
    _tracked_with_child(k, tmp_path)
    stats = tmp_path / "stats.json"
    save = f"open({str(stats)!r}, 'w').write(__import__('json').dumps(tracker.active_session()._texts.stats))\n"
    assert k.run(save)["status"] == "ok"
    before = json.loads(stats.read_text())
    for i in range(5):
        time.sleep(0.3)  # a person's pause: a cell right after another's capture has its text read at once
        assert k.run(f"lr = 0.0{i + 1}\nepochs = {i + 2}\nval_acc = 0.5 + lr\n")["status"] == "ok"
    time.sleep(0.3)
    assert k.run(save)["status"] == "ok"
    after = json.loads(stats.read_text())
    # each text read once, by the child unless it was late on a busy machine (then here, as without a child):
    # before, every one of them was read here
    assert after["child"] > before["child"]
    check = "params = tracker.active_session().current.params\nassert params['lr'] == 0.05, params\n"
    assert k.run(check)["status"] == "ok"


@pytest.mark.kernel
def test_a_sigterm_while_the_kernel_waits_for_the_child_ends_the_run_finished(kernels, tmp_path, ledger_path):  # noqa: F811
    """SIGTERM (docker stop, a scheduler) that comes while the capture after a short cell waits for the analysis
    child's answer on its text: the kernel ends its run finished and exits (it took the child's lock a second time,
    on the same thread, and hung)."""
    k = kernels()
    child = _tracked_with_child(k, tmp_path, "waiting")
    os.kill(child, signal.SIGSTOP)  # a child late on a busy machine: the capture waits its longest
    try:
        time.sleep(0.3)  # a person's pause: the text is held, and handed over after the reply
        long_text = "".join(f"p{i} = {i}\n" for i in range(1000))  # waited for 0.25 s
        assert k.wait(k.send(long_text))["status"] == "ok"
        os.kill(k.pid, signal.SIGTERM)  # the reply came (the kernel is not idle yet): the capture is waiting
        k.km.provisioner.process.wait(20)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGCONT)
    with Reader(ledger_path) as r:
        assert r.run("waiting")["status"] == "finished"
