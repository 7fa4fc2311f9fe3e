"""A session's cell texts, each analysed once, and analysed off the kernel's thread where it can be.

What the capture reads from a cell's text (:func:`analysis`: its params, names and training;
:func:`data`: its labels and data use; :func:`.results.syntax_of`: the calls its result names were bound
to; :func:`.files.path_exprs`: the files it may write) depends on the text alone: :class:`Texts` keeps these
answers per distinct text (the most recently run :data:`CACHED_TEXTS`), so a re-executed cell is not
read again.

A new cell's text costs its kernel milliseconds of parsing and walking (a 50-line cell 3-4 ms on a
busy machine), paid after the reply, where a "Run All"'s next cell waits for it. So a session with a
shell hands each new text to an analysis child process (:class:`_Child`) as the cell starts: the child
parses it on another core while the cell runs, and the capture picks the answers up if they came (in a
kernel it waits for them at most the 1 ms it leaves the reply anyway, holding no GIL, or, for a text handed
over after a short cell's reply, a few ms: see ``nbexp.tracker.Session._answered``). Each text is held
:data:`HOLD_S` first, in the kernel (a thread of ``_Child`` sends it once its time has come): parsing beside
a short cell slowed that cell by about as much as the parse (two cores: the kernel's own threads need the
other one), and even handing the text over cost the cell's start 0.1 ms. A cell done sooner has its text
handed to the child once its reply has left (:meth:`Texts.hand_over`), and the capture waits for the answer,
the GIL free: read in the kernel there, the parse slowed the next cell's own work (bench/RESULTS.md, issue
15). Outside a kernel (a plain shell, whose capture delays the prompt) it is read in the process and let go,
never sent (:meth:`Texts.let_go`). A cell that follows another at once ("Run All") has its text read at once:
its capture delays the next cell, so the parse is better done beside it (``nbexp.tracker._FOLLOWS_S``).
A text the capture needs before the child answered, one the child declines, or every text when the
child is not running or died, is analysed in the kernel exactly as the child would (the same functions:
the answers are the same objects, compared in tests/test_texts_child.py). The child runs no user code:
it parses text (``ast.parse`` executes nothing; IPython's input transformer turns ``%magic`` lines into
calls as text), imports nbexp's analysers and nothing else (IPython's transformer only for a text with
IPython syntax), runs at nice 10, and exits when the kernel closes its pipe or dies (its parent gone).
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any

from . import files, results
from .data import fit_labels
from .environment import _HOME
from .params import referenced_names, top_level_assignments
from .training import CACHED_TEXTS, DataUse, Training, cell_tree, data_use
from .training import analyze as training_of

Transform = Callable[[str], str]

# How long a new text is held before the child reads it (see the module docstring): cells done sooner (most
# cells that do not train) have it read after their reply; longer ones (training, loading) in the child while
# they run. On the 2-core bench machine a 50-line text read beside its 17-ms cell added 3 ms to it.
HOLD_S = 0.1


# -- what is read from a text (pure: the same text gives the same answer) -----------------------------
def analysis(source: str, transform: Transform) -> tuple[dict[str, Any], set[str], list[str], Training]:
    """``(literal, computed, names, training)`` of a cell's source (IPython syntax allowed: the code
    inside ``%%time``, ``%%capture``, ``%time`` is what counts; ``transform``: the shell's
    ``transform_cell``). What deciding a run needs, nothing more: the data a cell uses is read after it
    ran (:func:`data`). Callers read the result, never change it."""
    tree = cell_tree(source, transform)
    if tree is None:
        return {}, set(), referenced_names(source), Training()
    return (*top_level_assignments(tree), referenced_names(source), training_of(tree, with_data=False))


def data(source: str, transform: Transform) -> tuple[set[str], DataUse]:
    """``(fit_labels, data_use)`` of a cell's source."""
    tree = cell_tree(source, transform)
    return (set(), DataUse()) if tree is None else (fit_labels(tree), data_use(tree))


PARTS: dict[str, Callable[[str, Transform], Any]] = {
    "analysis": analysis,
    "data": data,
    "syntax": results.syntax_of,
    "paths": files.path_exprs,
}


def answers(source: str, transform: Transform) -> dict[str, Any]:
    """Every part of a text's analysis that could be read (a part whose reading raised is left out)."""
    out = {}
    for name, read in PARTS.items():
        try:
            out[name] = read(source, transform)
        except Exception:
            pass
    return out


# -- the session's texts ---------------------------------------------------------------------------
class _Record:
    __slots__ = ("parts", "asked")

    def __init__(self) -> None:
        self.parts: dict[str, Any] = {}
        self.asked = False  # handed to the child: an answer is expected (neither answered nor let go)


class Texts:
    """The cell texts a session ran, most recent last, at most :data:`CACHED_TEXTS`, with what has been
    read from each (see the module docstring). ``transform``: the shell's ``transform_cell``."""

    def __init__(self, transform: Transform | None, shell: Any = None) -> None:
        self.transform = transform
        self._records: dict[str, _Record] = {}
        self._child: _Child | None = None
        # None: the shell transforms IPython syntax in ways the child cannot (see _default_transform)
        self._ipython_syntax = _default_transform(shell) if shell is not None else None
        self.stats = {"child": 0, "kernel": 0}  # parts answered by the child, read in the kernel
        self._start_lock = threading.Lock()
        self._closed = False

    def __contains__(self, source: object) -> bool:
        return source in self._records

    def __len__(self) -> int:
        return len(self._records)

    def _record(self, source: str) -> tuple[_Record, bool]:
        rec = self._records.pop(source, None)
        new = rec is None
        if rec is None:
            rec = _Record()
            if len(self._records) >= CACHED_TEXTS:
                del self._records[next(iter(self._records))]
        self._records[source] = rec  # the most recent last
        return rec, new

    def start(self, source: str, hold: float = HOLD_S) -> bool:
        """A cell with this text starts: True when the session had not run it (or let it go); a new
        text goes to the child, which reads it once it held it ``hold`` seconds, while the cell runs."""
        rec, new = self._record(source)
        child = self._child
        if new and child is not None and (self._ipython_syntax is not None or not _MAGIC_CHARS.intersection(source)):
            rec.asked = child.ask(source, hold)
            if not child.alive:
                self._lost()
        return new

    def _lost(self) -> None:
        """The child died (or answered garbage): every text is read here from now on."""
        child, self._child = self._child, None
        for rec in self._records.values():
            rec.asked = False
        if child is not None:
            child.close()

    def get(self, source: str, part: str) -> Any:
        """``part`` (a key of :data:`PARTS`) of a text's analysis: kept, else the child's answer if it
        came, else read here."""
        rec = self._records.get(source)
        if rec is None:
            rec = self._record(source)[0]
        parts = rec.parts
        if part not in parts:
            if rec.asked:
                self.collect()
            if part not in parts:
                parts[part] = PARTS[part](source, self.transform)  # type: ignore[arg-type]
                self.stats["kernel"] += 1
        return parts[part]

    def let_go(self, source: str) -> None:
        """The capture after the cell reads this text here (the child's answer did not come in time): the
        child lets it go if it has not started on it, and its answer, if one still comes, is not taken.
        Not for reads before or while the cell runs: the child may still answer the other parts by the end."""
        rec = self._records.get(source)
        child = self._child
        if rec is not None and rec.asked:
            rec.asked = False
            if child is not None:
                child.drop(source)

    def hand_over(self, source: str) -> bool:
        """A held text whose cell is done (its reply gone): the child reads it now. True when it was sent now;
        False when it was sent before (a text of a cell that followed another, or ran past its hold: the child
        is reading it already), never asked, or the child is gone."""
        rec = self._records.get(source)
        child = self._child
        if rec is None or not rec.asked or child is None:
            return False
        sent = child.send_now(source)
        if not child.alive:
            self._lost()
            return False
        return sent

    def answered(self, source: str) -> bool:
        """Whether what a capture reads of this text (its analysis and data use) is there."""
        rec = self._records.get(source)
        return rec is not None and "analysis" in rec.parts and "data" in rec.parts

    @property
    def waiting(self) -> bool:
        """Whether an answer of the child is expected for a text of this session (asked, neither answered
        nor let go)."""
        child = self._child
        return child is not None and bool(child.asked)

    def collect(self, timeout: float = 0.0, until: str | None = None) -> bool:
        """Take the child's answers that came (waiting up to ``timeout`` seconds, the GIL free, for all
        those asked, or only until the answer on ``until`` came); True when none is outstanding."""
        child = self._child
        if child is None:
            return True
        for source, found in child.answers(timeout, until):
            rec = self._records.get(source)
            if rec is None:
                continue  # let go meanwhile
            rec.asked = False
            for name, value in found.items():
                if name not in rec.parts:
                    rec.parts[name] = value
                    self.stats["child"] += 1
        if not child.alive:
            self._lost()
            return True
        return not child.asked

    def start_child(self, delay: float = 0.0) -> None:
        """Start the analysis child, after ``delay`` seconds (called in a thread of the session: a
        process start is milliseconds, its imports 0.1 s of CPU)."""
        if os.name == "nt":  # select() takes no pipe there: every text is read in the kernel
            return
        if delay:
            time.sleep(delay)
        with self._start_lock:
            if self._closed:
                return
            try:
                self._child = _Child(self._ipython_syntax)
            except Exception:  # no child: every text is read in the kernel, as without one
                self._child = None

    def close(self) -> None:
        with self._start_lock:
            self._closed = True
            child, self._child = self._child, None
        if child is not None:
            child.close()


_MAGIC_CHARS = frozenset("%!?")  # a text with none of them is never transformed (training.cell_tree)


def _default_transform(shell: Any) -> list[str] | None:
    """The cleanup transforms nbexp added (``module:name``) when ``shell.transform_cell`` is IPython's
    own: its transformer manager with the standard transforms (and nbexp's, like ``%nbexp track?``),
    nothing after it. Then the child reads IPython syntax as the shell does (a text that turns into
    one line, which the shell's prefilter would see, it declines). None when the shell transforms
    otherwise: the child then gets only texts the transform never touches."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        from IPython.core.interactiveshell import InteractiveShell
    except Exception:
        return None

    def key(transforms: list) -> list:
        return [
            t if isinstance(t, (types.FunctionType, type)) else (type(t), getattr(t, "__dict__", None))
            for t in transforms
        ]

    try:
        m, fresh = shell.input_transformer_manager, TransformerManager()
        cleanup, standard = m.cleanup_transforms, fresh.cleanup_transforms
        extra = cleanup[len(standard) :]
        if not (
            type(shell).transform_cell is InteractiveShell.transform_cell
            and type(m) is TransformerManager
            and not shell.input_transformers_post
            and key(cleanup[: len(standard)]) == key(standard)
            and key(m.line_transforms) == key(fresh.line_transforms)
            and m.token_transformers == fresh.token_transformers
            and all(
                isinstance(t, types.FunctionType)
                and t.__module__.startswith("nbexp.")
                and getattr(sys.modules.get(t.__module__), t.__qualname__, None) is t
                for t in extra
            )
        ):
            return None
        return [f"{t.__module__}:{t.__qualname__}" for t in extra]
    except Exception:
        return None


# -- the analysis child ------------------------------------------------------------------------------
_HEADER = struct.Struct("<I")


def _frame(message: tuple) -> bytes:
    """One message on the pipes, either way: its pickle's length, then the pickle."""
    body = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


# the kernel's own sys.path (IPython and nbexp as the kernel imports them, whatever -I leaves out), this nbexp first
_CHILD_CODE = (
    "import json, sys; sys.path[:] = [sys.argv[1]] + json.loads(sys.argv[4]); "
    "from nbexp.capture.texts import _serve; _serve()"
)
_MAX_ANSWER = 64 << 20  # an answer frame longer than this is not one: the child is taken as dead


class _Child:
    """The analysis child, seen from the kernel: texts go down its stdin, answers come up its stdout
    (length-prefixed pickles). Neither pipe ever blocks the kernel: what cannot be written now is kept
    and written at the next chance, answers are read as they come."""

    def __init__(self, ipython_syntax: list[str] | None) -> None:
        syntax = "-" if ipython_syntax is None else ",".join(ipython_syntax)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _CHILD_CODE, _HOME, str(os.getpid()), syntax, json.dumps(sys.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        try:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self._out, self._in = self.proc.stdin.fileno(), self.proc.stdout.fileno()
            os.set_blocking(self._out, False)
            os.set_blocking(self._in, False)
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise
        self._outbox = b""
        self._inbox = b""
        # re-entrant: a SIGTERM handled while the kernel waits for an answer (in answers) ends the session on
        # the same thread, whose capture then asks the child again (Session._on_sigterm)
        self._lock = threading.RLock()
        self._due = threading.Condition(self._lock)  # the courier waits on it (see ask)
        self.asked: dict[int, str] = {}  # request number -> text, until answered
        self._held: dict[int, tuple[float, str]] = {}  # request number -> (when to send it, text), not sent yet
        self._courier: threading.Thread | None = None
        self._n = 0
        self.alive = True

    def ask(self, source: str, hold: float = HOLD_S) -> bool:
        """Hand the child ``source``, to read once it was held ``hold`` seconds (unless dropped meanwhile).

        A held text stays in the kernel until then, with a thread of ours (the courier) that sends it when
        its time comes: a cell done sooner (most cells a person runs) has its text sent only after its reply
        (:meth:`send_now`) or dropped, never sent, so neither the send (a pipe write, 0.1 ms of the cell's start
        on the 2-core bench machine) nor the child's wake-up happens beside the cell and its reply
        (bench/RESULTS.md, issue 15)."""
        with self._lock:
            if not self.alive:
                return False
            self._n += 1
            self.asked[self._n] = source
            if hold > 0 and self._courier_up():
                self._held[self._n] = (time.monotonic() + hold, source)
                self._due.notify()
            else:  # at once (or no courier: the child holds it, as it can)
                self._send((self._n, source, hold))
            return self.alive

    def _courier_up(self) -> bool:
        """Whether the courier thread runs (started with the first held text; with the lock held)."""
        if self._courier is None:
            courier = threading.Thread(target=self._deliver, name="nbexp-texts", daemon=True)
            try:
                courier.start()
            except RuntimeError:  # no thread to be had: texts go at once, with their hold
                return False
            self._courier = courier
        return True

    def _deliver(self) -> None:
        """The courier: send each held text once its time has come, until the child is closed or dead."""
        with self._due:
            while self.alive:
                nxt = self._send_due()
                if not self.alive:
                    return
                self._due.wait(None if nxt is None else max(0.0, nxt - time.monotonic()))

    def _send_due(self) -> float | None:
        """Send the held texts whose time has come (with the lock held); when the next one's comes, if any."""
        now = time.monotonic()
        for n in [n for n, (when, _) in self._held.items() if when <= now]:
            held = self._held.pop(n, None)  # a failed send (the child died) clears them all
            if held is not None and self.alive:
                self._send((n, held[1], 0.0))
        return min((when for when, _ in self._held.values()), default=None)

    def drop(self, source: str) -> None:
        """The kernel reads ``source`` itself: the child lets it go if it has not started on it (an answer
        that comes all the same is not taken); a text still held is never sent."""
        with self._lock:
            if not self.alive:
                return
            for n in [n for n, asked in self.asked.items() if asked == source]:
                del self.asked[n]
                if self._held.pop(n, None) is None:
                    self._send((n, None, 0.0))

    def send_now(self, source: str) -> bool:
        """Send ``source`` now if it is still held (its hold not over); whether it was."""
        with self._lock:
            if not self.alive:
                return False
            held = [n for n, (_, text) in self._held.items() if text == source]
            for n in held:
                del self._held[n]
                self._send((n, source, 0.0))
            return bool(held)

    def _send(self, message: tuple) -> None:
        self._outbox += _frame(message)
        self._flush()

    def _flush(self) -> None:
        try:
            while self._outbox:
                n = os.write(self._out, self._outbox)
                self._outbox = self._outbox[n:]
        except BlockingIOError:
            pass
        except OSError:
            self._died()

    def answers(self, timeout: float, until: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """The answers that came, waiting up to ``timeout`` seconds for every text asked (or until none asked
        holds ``until``)."""
        out: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            if not self.alive:
                return out
            if self._outbox:
                self._flush()
            deadline = time.perf_counter() + timeout
            while True:
                self._read()
                while len(self._inbox) >= _HEADER.size:
                    (size,) = _HEADER.unpack_from(self._inbox)
                    if size > _MAX_ANSWER:
                        self._died()
                        return out
                    if len(self._inbox) < _HEADER.size + size:
                        break
                    body = self._inbox[_HEADER.size : _HEADER.size + size]
                    self._inbox = self._inbox[_HEADER.size + size :]
                    try:
                        n, found = pickle.loads(body)  # our own child's answer, over a pipe only we hold
                    except Exception:
                        self._died()
                        return out
                    source = self.asked.pop(n, None)
                    if source is not None and isinstance(found, dict):
                        out.append((source, found))
                left = deadline - time.perf_counter()
                if not self.asked or not self.alive or left <= 0:
                    return out
                if until is not None and until not in self.asked.values():
                    return out
                nxt = self._send_due()  # the courier waits for the lock meanwhile
                if nxt is not None:
                    left = min(left, max(0.0, nxt - time.monotonic()))
                try:
                    select.select([self._in], [], [], left)
                except (OSError, ValueError):
                    self._died()
                    return out

    def _read(self) -> None:
        try:
            while True:
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    self._died()
                    return
                self._inbox += chunk
        except BlockingIOError:
            pass
        except OSError:
            self._died()

    def _died(self) -> None:  # with the lock held
        self.alive = False
        self.asked.clear()
        self._held.clear()
        self._due.notify_all()  # the courier ends

    def close(self) -> None:
        with self._lock:
            self.alive = False
            self._due.notify_all()  # the courier ends
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()  # type: ignore[union-attr]
                except OSError:
                    pass
        try:
            self.proc.wait(timeout=1.0)  # it exits on the closed pipe
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Declined(Exception):
    """A text the child does not read: the kernel's shell would transform it in a way it cannot."""


def _serve() -> None:  # pragma: no cover - runs in the child (tests/test_texts_child.py drives it)
    """The child's loop: take a text, hold it as long as the kernel asked (unless it drops it meanwhile),
    then answer every part :func:`answers` could read; until the kernel closes the pipe or is gone
    (checked every 2 s while idle)."""
    # Behind the kernel and the user's cells for the CPU, like the package-list child: on a busy 2-core
    # machine it then answers two thirds of the new texts in time (nine in ten at nice 0), and its start
    # (0.1 s of imports) does not compete with the first cells after `%nbexp track`; with a core to
    # spare, as most machines have, the nice value changes nothing (bench/RESULTS.md, issue 15).
    try:
        os.nice(10)
    except (AttributeError, OSError):
        pass
    # An interrupt of the kernel (jupyter_client's killpg, Ctrl-C in a terminal) reaches its whole process group:
    # it is for the user's cell, not for us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The answers' pipe is ours alone: anything else that writes to stdout (a warning an import prints) goes to
    # stderr, which is /dev/null, and cannot break the framing.
    out = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    parent, syntax = int(sys.argv[2]), sys.argv[3]
    manager: list[Any] = []

    def transform(code: str) -> str:
        if syntax == "-":
            raise _Declined
        if not manager:  # IPython's transformer and nbexp's cleanup transforms, imported for the first text
            # that needs them (0.2 s of CPU: not while the first cells after `%nbexp track` run)
            import importlib

            from IPython.core.inputtransformer2 import TransformerManager

            m = TransformerManager()
            for name in filter(None, syntax.split(",")):
                module, _, qualname = name.partition(":")
                m.cleanup_transforms.append(getattr(importlib.import_module(module), qualname))
            manager.append(m)
        cell = manager[0].transform_cell(code)
        if len(cell.splitlines()) == 1:  # the shell's prefilter (autocall, aliases) reads one-line cells
            raise _Declined
        return cell

    inp = sys.stdin.fileno()
    buf = b""
    held: tuple[int, str, float] | None = None  # (request, text, when to read it)

    def send(reply: bytes) -> bool:
        view = memoryview(reply)
        try:
            while view:
                view = view[os.write(out, view) :]
        except OSError:  # the kernel closed its end: it is gone or done
            return False
        return True

    while True:
        wait = 2.0 if held is None else max(0.0, held[2] - time.monotonic())
        ready, _, _ = select.select([inp], [], [], wait)
        if ready:
            chunk = os.read(inp, 1 << 16)
            if not chunk:
                return  # the kernel closed the pipe, or is gone
            buf += chunk
            reply = b""
            while len(buf) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buf)
                if len(buf) < _HEADER.size + size:
                    break  # the rest of this message comes with the next read
                n, source, hold = pickle.loads(buf[_HEADER.size : _HEADER.size + size])
                buf = buf[_HEADER.size + size :]
                if source is None:  # dropped: the kernel read it itself
                    if held is not None and held[0] == n:
                        held = None
                    continue
                if held is not None:
                    # Only the newest text is read: the kernel asked for another since, so it started the next
                    # cell, which it does only once the capture of the earlier ones was done (without us).
                    reply += _frame((held[0], {}))
                held = (n, source, time.monotonic() + hold)
            if reply and not send(reply):
                return
        elif held is None and os.getppid() != parent:
            return
        if held is not None and time.monotonic() >= held[2]:
            n, source, _ = held
            held = None
            if not send(_frame((n, answers(source, transform)))):
                return
