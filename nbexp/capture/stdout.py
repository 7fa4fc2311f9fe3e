"""Printed results: what a cell writes to ``sys.stdout``, and the metrics in it.

:class:`CellOutput` keeps the text the running cell prints. It tees the ``write`` of the
``sys.stdout`` object itself (an instance attribute that calls the original), so
``sys.stdout`` stays the object it was: ipykernel's ``OutStream`` in a kernel, a text stream
in a terminal. Libraries that check its type or its ``fileno`` see no difference, the text
reaches the notebook unchanged, and text ipykernel forwards from C code (it calls its own
``write``) is seen too. A cell run from inside a cell (``%%capture``, ``%%nbexp run``) finds
``sys.stdout`` replaced by then: :meth:`CellOutput.follow` tees that stream as well, so text
printed inside ``%%capture`` still counts as the cell's output. Text a cell sends elsewhere
(``contextlib.redirect_stdout`` to a file, ``print(file=...)``) and stderr (warnings,
logging, progress bars) are not read.

:func:`printed_metrics` reads ``name: number`` and ``name=number`` pairs from that text,
conservatively; the tracker records them with ``source=stdout``. Example::

    In [3]: test_loop(model)          # prints "Accuracy: 45.3%, Avg loss: 1.602"
    # the run now has accuracy=0.453 and avg_loss=1.602, marked as read from printed output

Names. A printed name is its label's words, lower_snake (:func:`nbexp.capture.metrics.normalize_name`,
the one spelling rule for names read from text), so two metrics that share a metric word keep
apart: ``cv accuracy 0.917`` and ``test accuracy 0.912`` are ``cv_accuracy`` and ``test_accuracy``,
``train loss: 0.4`` and ``val loss: 0.5`` are ``train_loss`` and ``val_loss``, ``ROC AUC 0.93`` is
``roc_auc``, as W&B, MLflow or Keras would name them. The label is the one to four words before
the separator, back to the line's start, a delimiter or a counter (``Epoch 3 loss 0.12`` is
``loss``); words up to its last prose word (articles, pronouns, prepositions, "got", "reached":
:data:`PROSE_WORDS`; ``a`` and ``I`` only in a sentence, so ``Model A accuracy`` and ``Model B
accuracy`` are ``model_a_accuracy`` and ``model_b_accuracy``) are no part of it, nor are the
auxiliaries that end it (``The test accuracy: 0.9`` is ``test_accuracy``, ``Training finished with
loss 0.3`` is ``loss``, ``Accuracy is: 0.9`` is ``accuracy``); any other word that ends it qualifies
it (``Loss before`` and ``Loss after`` are ``loss_before`` and ``loss_after``). A name over 40
characters loses its leading words until it fits (``GradientBoostingClassifier validation accuracy``
is ``validation_accuracy``). A label followed by one space rather than ``:`` or ``=`` must end in
a metric word (``accuracy of 0.93`` gives nothing). A one-word name printed on a line after a name
that starts with a split word, or after a split word that heads the line, takes that split word
(``val Loss: 0.5 Acc: 0.7`` is ``val_loss``, ``val_acc``; ``train loss 0.4 acc 0.8`` is
``train_loss``, ``train_acc``; ``Validation: loss 0.3`` is ``validation_loss``: the line says which
data, as Keras's own ``val_`` names do). Any other name
printed again is a curve (one point per print).
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any, Callable

from .metrics import SPLIT_WORDS, NamePattern, normalize_name, qualified

TAIL_CHARS = 64 * 1024  # the text kept per cell: its last 64 KB
MAX_NAME = 40  # longer names are prose, not metric names
MAX_PAIRS_PER_LINE = 20  # more on one line is a dump (an array, a dict of settings), not a log line
MAX_LINE = 4000

_NONE = object()

# ANSI colour and cursor codes (Keras, rich, IPython tracebacks in a terminal)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# A pair: a name, a separator, a number. The name is one to four words (a letter first, then
# letters, digits, _ - / . @; a printed dict's key may be quoted) that start the line or follow a
# delimiter (, ; | tab { : = " - ") or a counter ("Epoch 3 training loss: 0.4"), checked by
# _name_starts: so prose before it is no part of it, and "after training for a while the loss: 0.5"
# gives nothing. The separator is
# ":" or "=", or one space (not a table's column gap). The number ends its token: not "5ms",
# "9845/10000", "1,234" or "12:30".
_PAIR = re.compile(  # possessive words (*+): a line without pairs is given up on in one pass
    r"(?<![\w\-/.@'\"])(?P<q>['\"]?)(?P<name>[A-Za-z][\w\-/.@]*+(?: [A-Za-z][\w\-/.@]*+){0,3})(?P=q)"
    r"(?P<sep>[ \t]*[:=][ \t]*| )"
    r"(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?%?|[-+]?(?:[nN][aA][nN]|[iI][nN][fF](?:inity)?)\b)"
    r"(?=$|[\s;|}]|,(?!\d))"
)
_WORDS = re.compile(r"[A-Za-z]+")
_FLOATY = re.compile(r"[.eE%nN]")  # a number written as a measurement, not a count: 0.41, 1e-3, 45%, nan
_BRACKETS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")  # innermost (...) and [...]
# a cheap first look for a pair: a separator, or a number written as a measurement (0.41, 45%, nan)
_MAYBE_PAIR = re.compile(r"[:=.%]|[nN][aA][nN]|[iI][nN][fF]")
# a cheap first look for _SKIP's words (most lines have none of them)
_MAYBE_SKIP = re.compile(r"arn|ARN|Err|ERR|Exception|File|time|nbexp")
# lines never read: warnings, errors, exceptions, %time's report, nbexp's own lines
_SKIP = re.compile(
    r"(?i:warn)|\b[A-Z]\w*(?:Error|Exception)\b|\bException\b|\bERROR\b|^\s*Error\b|File \""
    r"|^\s*(?:CPU times|Wall time):|^nbexp:"
)


# Words of a sentence, not of a metric's name: a label's words up to the last of them are dropped
# ("The test accuracy", "Training finished with loss", "Our model reached accuracy", "So far best loss").
PROSE_WORDS = frozenset(
    "an the of on in at for with by from to into over after before and or as than then so far now here there "
    "is are was were be been has have had get got gets reached reaches reach achieved achieves achieve "
    "gives gave give yields yielded shows showed our my your its their this that these those we it you they".split()
)
# Prose words that may end a label and are no part of it ("Accuracy is: 0.9"). Others that end one qualify it:
# "Accuracy before: 0.91" and "Accuracy after: 0.93" are two metrics (accuracy_before, accuracy_after).
TRAILING_PROSE = frozenset("is are was were be been".split())
# One letter that is an article or a pronoun in a sentence ("I got loss", "reached a loss") and a name's
# qualifier after a word that is not prose ("Model A accuracy", "Phase I loss"): see _prose.
LETTERS = frozenset("ai")


def _prose(words: list[str], i: int) -> bool:
    """Whether ``words[i]`` is a sentence's word: one of :data:`PROSE_WORDS`, or ``a`` / ``I`` starting the
    label or after another prose word (``A model reached``, ``with a``, ``so I``), but not after a name's word
    (``Model A``, ``Model B``, ``Phase I`` qualify what follows, so an A/B comparison keeps both names)."""
    w = words[i].lower()
    if w in PROSE_WORDS:
        return True
    return w in LETTERS and (i == 0 or _prose(words, i - 1))


def _label(raw: str, spaced: bool, metric_re: NamePattern) -> str | None:
    """The metric name in a printed label ``raw`` (its one to four words), or None.

    Auxiliaries at its end (:data:`TRAILING_PROSE`: ``Accuracy is`` -> ``accuracy``), and words up to the
    last prose word before what is left, are dropped when what is left still looks like a metric (``The
    test accuracy`` -> ``test_accuracy``; ``Accuracy of model`` stays whole; ``Loss before`` is
    ``loss_before``). A label printed with one space before its number (``spaced``) has no ``:`` or ``=``
    to say where it is: its last word must be a metric word itself (``cv accuracy 0.917`` ->
    ``cv_accuracy``; ``accuracy of 0.93`` gives nothing). A name longer than 40 characters loses its
    leading words until it fits (``GradientBoostingClassifier validation accuracy`` ->
    ``validation_accuracy``): the value is kept. Not metric-like: None."""
    words = raw.split(" ")
    if spaced and not metric_re.match(normalize_name(words[-1])):
        return None
    while len(words) > 1 and words[-1].lower() in TRAILING_PROSE:  # "Accuracy is: 0.9"
        words.pop()
    cut = max((i + 1 for i in range(len(words) - 1) if _prose(words, i)), default=0)
    for label in (words[cut:], words) if cut else (words,):
        name = normalize_name(" ".join(label))
        if name.isidentifier() and metric_re.match(name):
            while len(name) > MAX_NAME and len(label) > 1:  # too long: its leading words go, never the value
                label = label[1:]
                name = normalize_name(" ".join(label))
            return name if len(name) <= MAX_NAME and name.isidentifier() and metric_re.match(name) else None
    return None


def _metric_name(raw: str, spaced: bool, metric_re: NamePattern, names: dict) -> str | None:
    """``raw`` as a metric name (:func:`_label`), or None; remembered in ``names``."""
    found = names.get((raw, spaced), _NONE)
    if found is _NONE:
        found = _label(raw, spaced, metric_re)
        if len(names) > 4096:
            names.clear()
        names[(raw, spaced)] = found
    return found


def _number(text: str) -> float:
    if text.endswith("%"):
        digits = text[:-1]
        # 45.3% -> float("45.3e-2"): 0.453 exactly as printed, not 45.3 / 100 = 0.45299999999999996
        return float(digits + "e-2") if "e" not in digits.lower() else float(digits) / 100.0
    return float(text)


def _name_starts(before: str) -> bool:
    """Whether a name may start after ``before`` (the line up to it): at the line's start, after
    a delimiter, or after a counter or a percentage (``Epoch 3 training loss``)."""
    before = before.rstrip(" \t")
    if not before:
        return True
    last = before[-1]
    return last in ",;|\t{}:=%" or last.isdigit() or (last == "-" and (before.endswith(" -") or before.endswith(" --")))


def _line_pairs(line: str, metric_re: NamePattern, names: dict) -> list[tuple[str, float]]:
    pairs: list[tuple[str, float]] = []
    matches = list(_PAIR.finditer(line))
    if len(matches) > MAX_PAIRS_PER_LINE:
        return pairs
    split = ""  # the split word of the line's latest name that had one ("val loss 0.5": val)
    for m in matches:
        raw, sep, num = m.group("name", "sep", "num")
        if sep == " " and not _FLOATY.search(num):  # "epoch 3 loss 0.41": a count is not a measurement
            continue
        if not _name_starts(line[max(0, m.start() - 64) : m.start()]):
            continue
        name = _metric_name(raw, sep == " ", metric_re, names)
        if name is None:
            continue
        if not pairs:  # a heading's split word ("Validation: loss 0.3 acc 0.9", "Epoch 2 val - loss: 0.3")
            head = _WORDS.findall(line[: m.start()])
            split = head[-1].lower() if head and head[-1].lower() in SPLIT_WORDS else ""
        first = name.partition("_")[0]
        if first in SPLIT_WORDS and first != name:
            split = first
        elif split and "_" not in name:  # "val Loss: 0.5 Acc: 0.7": val_acc, not train's acc
            name = qualified(split, name)
        pairs.append((name, _number(num)))
    return pairs


def _clean(line: str) -> str:
    """One output line as a terminal would leave it: only the text after its last carriage return
    (Keras redraws its progress bar with ``\\r`` and backspaces), colour codes gone, bracketed
    and parenthesized parts (shapes, lists, fractions in parentheses) removed."""
    if "\r" in line:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    line = line.replace("\b", "")
    if "(" in line or "[" in line:  # brackets become a space: "[0]\tvalidation_0-logloss:0.6" keeps its tab
        for _ in range(8):
            line, n = _BRACKETS.subn(" ", line)
            if not n:
                break
    return line


def scan(text: str, metric_re: NamePattern, names: dict | None = None) -> tuple[list[tuple[str, float]], bool]:
    """``(pairs, traceback)``: :func:`printed_metrics` of ``text``, and whether a traceback
    started in it (nothing after it is read). ``names`` remembers how raw names read."""
    names = {} if names is None else names
    pairs: list[tuple[str, float]] = []
    for line in text.split("\n"):
        if "Traceback" in line:
            return pairs, True
        if not line or len(line) > MAX_LINE or not _MAYBE_PAIR.search(line):
            continue
        line = _clean(line)
        if _MAYBE_SKIP.search(line) and _SKIP.search(line):
            continue
        pairs += _line_pairs(line, metric_re, names)
    return pairs, False


def printed_metrics(text: str, metric_re: NamePattern) -> list[tuple[str, float]]:
    """The metric values printed in ``text``, as ``(name, value)`` in the order they appear.

    Read: ``name: number`` and ``name=number`` pairs (``Accuracy: 45.3%, Avg loss: 1.602``,
    ``test_auc=0.93``, Keras's ``4/4 - 0s - loss: 1.0986 - val_loss: 1.0912``, a printed dict's
    ``'loss': 0.5``), and ``name number`` with one space when the number is written as a
    measurement (``epoch 3 loss 0.41``: ``loss``, not the count ``3``). A name is the one to
    four words before the separator, back to the previous pair, a delimiter (``,;|`` tab,
    `` - ``, ``:``, ``=``) or a counter (``Epoch 3 training loss: 0.4`` is ``training_loss``),
    less the words up to a prose word (``The test accuracy`` is ``test_accuracy``), normalized
    to a lower_snake identifier (``ROC AUC`` -> ``roc_auc``, ``cv accuracy 0.917`` ->
    ``cv_accuracy``); kept only when it matches ``metric_re`` and is at most 40 characters, and
    with one space before the number only when its last word is a metric word (a longer name keeps
    its last words). A one-word name after a split word's name on its line (``val loss 0.5 acc
    0.7``) is ``val_acc``.

    Percent: a number followed by ``%`` is a percentage, stored as a fraction
    (``Accuracy: 45.3%`` -> ``accuracy`` 0.453); a number without it is taken as printed
    (``Accuracy: 45.3`` stays 45.3).

    Never read: numbers in parentheses or brackets (shapes, lists, ``(98%)``), fractions
    (``9845/10000``), numbers with a unit (``5ms``), lines that mention a warning, an
    exception or error class (``ValueError``, ``ERROR``, ``Error:``), a ``File "...`` frame,
    ``%time``'s ``CPU times:`` / ``Wall time:``, lines with more than 20 pairs, and anything
    after a ``Traceback`` line. ``nan`` and ``inf`` are values (a diverged loss).
    """
    return scan(text, metric_re)[0]


class CellOutput:
    """The text the running cell writes to ``sys.stdout``: its last ``limit`` characters.

    ``start()`` begins a cell (installing the tee on ``sys.stdout`` the first time, or on a
    new ``sys.stdout`` a cell left behind), ``follow()`` tees the stream a cell run inside
    the cell prints to (``%%capture``'s), ``end()`` stops collecting (the text stays readable
    until the next ``start()``), ``text()`` is the kept text, ``stop()`` removes the tees.
    Text older than the last ``limit`` characters is handed, as whole lines, to ``spill``
    (when given) before it is dropped, so nothing printed goes unread however long the cell.
    Costs one extra Python call per ``write`` while installed.
    """

    def __init__(self, limit: int = TAIL_CHARS, spill: Callable[[str], None] | None = None) -> None:
        self.limit = limit
        self.spill = spill
        self._chunks: list[str] = []
        self._size = 0
        self._on = False
        self._stopped = False
        self._lock = threading.Lock()
        # (stream, tee, the instance write it replaced, teed for a cell run inside the cell)
        self._tees: list[tuple[Any, Any, Any, bool]] = []

    # -- the tee ----------------------------------------------------------------------
    def _patch(self, stream: Any, followed: bool) -> None:
        """Tee ``stream.write`` unless our tee is its write already. IPython 9 tees it too, for
        the history, around each ``run_cell``, and puts back the write it found when the cell
        ends, which takes ours out: so the tee goes back on at every cell's start."""
        if stream is None:
            return
        try:
            current = vars(stream).get("write", _NONE)
            original = stream.write
        except (AttributeError, TypeError):  # no write, or no instance dict: not teed
            return
        if any(t[0] is stream and t[1] is current for t in self._tees):
            return
        for t in self._tees:
            if t[0] is stream:  # a tee of ours deeper in the chain (a later wrapper kept it): silent
                t[1].live = False
        self._tees = [t for t in self._tees if t[0] is not stream]
        out = self

        def write(text, _original=original):
            if write.live and out._on and type(text) is str:
                out._chunks.append(text)
                out._size += len(text)
                if out._size > 2 * out.limit:
                    out._trim()
            return _original(text)

        write.live = True  # type: ignore[attr-defined]  # a tee deeper in the chain is switched off
        try:
            stream.write = write
        except (AttributeError, TypeError):
            return
        self._tees.append((stream, write, current, followed))

    def _unpatch(self, followed_only: bool) -> None:
        kept = []
        for t in self._tees:
            stream, tee, saved, followed = t
            if followed_only and not followed:
                kept.append(t)
                continue
            tee.live = False  # in someone's chain still (they wrapped ours): it only passes text on
            try:
                if vars(stream).get("write") is tee:
                    if saved is _NONE:
                        del stream.write
                    else:
                        stream.write = saved
            except (AttributeError, TypeError):
                pass
        self._tees = kept

    def _trim(self) -> None:
        """Keep the last ``limit`` characters from a line start (trimmed at twice that, so the cost
        per character stays constant); hand whole dropped lines to ``spill``."""
        with self._lock:
            chunks, self._chunks = self._chunks, []
            text = "".join(chunks)
            cut = len(text) - self.limit
            if cut <= 0:
                self._chunks.insert(0, text)
                return
            nl = text.find("\n", cut - 1)
            if nl < 0:  # one long line: keep its end (a terminal shows only what follows its last \r)
                cr = text.find("\r", cut - 1)
                head, kept = "", text[cr + 1 :] if cr >= 0 else text[cut:]
            else:
                head, kept = text[: nl + 1], text[nl + 1 :]
            self._chunks.insert(0, kept)
            self._size = sum(map(len, self._chunks))
        if head and self.spill is not None:
            self.spill(head)

    # -- per cell ---------------------------------------------------------------------
    def start(self) -> None:
        """Begin a cell: forget the last cell's text and tee the current ``sys.stdout``."""
        if self._stopped:
            return
        self._unpatch(followed_only=True)
        self._chunks, self._size = [], 0
        self._patch(sys.stdout, followed=False)
        self._on = True

    def follow(self) -> None:
        """A cell run inside the cell (``%%capture``'s body) starts: tee its ``sys.stdout`` too."""
        if self._on:
            self._patch(sys.stdout, followed=True)

    def end(self) -> None:
        """The cell ended: stop collecting; :meth:`text` keeps its text until the next start."""
        self._on = False
        self._unpatch(followed_only=True)

    def text(self) -> str:
        """The text the cell printed (its last ``limit`` characters, starting at a line)."""
        if self._size > self.limit:
            self._trim()
        with self._lock:
            return "".join(self._chunks)

    def stop(self) -> None:
        """Remove the tees (``%nbexp stop``, the session's end). Safe to call twice."""
        self._on = False
        self._stopped = True
        self._unpatch(followed_only=False)


class PrintedMetrics:
    """A tracked shell's printed metrics: a :class:`CellOutput` and the pairs read from it.

    The tracker calls :meth:`start` before each cell, :meth:`follow` before a cell run inside
    it, and :meth:`end` after it, which returns the cell's ``(name, value)`` pairs in order
    (:func:`printed_metrics`), including those read from text older than the kept tail.
    """

    def __init__(self, metric_re: NamePattern, limit: int = TAIL_CHARS) -> None:
        self.metric_re = metric_re
        self.output = CellOutput(limit, spill=self._spilled)
        self._pairs: list[tuple[str, float]] = []
        self._traceback = False
        self._names: dict = {}  # raw printed name -> metric name or None, across cells

    def _spilled(self, text: str) -> None:
        if not self._traceback:
            pairs, self._traceback = scan(text, self.metric_re, self._names)
            self._pairs += pairs

    def start(self) -> None:
        self._pairs, self._traceback = [], False
        self.output.start()

    def follow(self) -> None:
        self.output.follow()

    def end(self) -> list[tuple[str, float]]:
        self.output.end()
        tail = self.output.text()  # older text is read as it is dropped (spilled)
        pairs, self._pairs = self._pairs, []
        if not self._traceback:
            pairs += scan(tail, self.metric_re, self._names)[0]
        return pairs

    def stop(self) -> None:
        self.output.stop()
