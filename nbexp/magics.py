"""``%nbexp`` and ``%%nbexp``: the first word picks a subcommand.

Usage::

    %nbexp track [NAME] [--ledger PATH] [--sprint NAME] [--hypothesis TEXT] [--metric-names A,B]
                 [--sample-hz N] [--idle-after SECONDS] [--idle-util PERCENT] [--replay-of RUN]
                 [--no-data] [--no-stdout-metrics] [--outputs-budget MB] [--sync URI]
    %nbexp new [NAME]                 close the current run, open another
    %nbexp stop                       stop tracking
    %nbexp status                     one line: ledger, sprint, session, run, counts
    %nbexp sprint NAME [--hypothesis TEXT]
    %nbexp conclude TEXT              the sprint's conclusion
    %nbexp tag TAG [TAG ...]          tag the current run
    %nbexp note TEXT                  note on the current run
    %nbexp param NAME=VALUE [...]     set params explicitly
    %nbexp params --exclude NAME ...  never record these params (globs allowed)
    %nbexp data [RUN]                 summaries of the data a run used (default: the current run)
    %nbexp drift A B [--var NAME]     data drift of run B against run A
    %nbexp compare [RUN ...]          compare runs (default: the last two) as tabs with figures
    %nbexp explain [RUN] [--vs RUN|best] [--metric M] [--ablate [--budget N]]   why RUN scores differently
    %nbexp runs [--sprint S]          the sprint's runs as a DataFrame
    %nbexp review [--sprint S]        the morning review (default: yesterday's sprint)
    %nbexp export bundle FILE [RUNS|--sprint S|--all]   runs to a portable bundle (as `nbexp export`)
    %nbexp import FILE                merge a bundle into this ledger
    %%nbexp run [NAME]                this cell is exactly one run

Each word's ``--help`` (``%nbexp track --help``) prints its options.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicHelpFormatter, argument, kwds, magic_arguments
from traitlets import Unicode

from . import tracker
from .errors import NbexpError, NotTracking
from .textfmt import count

WORDS = (
    "track",
    "new",
    "stop",
    "status",
    "sprint",
    "conclude",
    "tag",
    "note",
    "param",
    "params",
    "data",
    "drift",
    "compare",
    "explain",
    "runs",
    "review",
    "export",
    "import",
    "run",
)


class _HelpFormatter(MagicHelpFormatter):
    """IPython's magic help, but headed ``usage: %nbexp WORD ...`` as printed at the prompt (IPython's
    own heading opens an RST literal block, meant for docstrings)."""

    def add_usage(self, usage, actions, groups, prefix="usage: %"):
        argparse.RawDescriptionHelpFormatter.add_usage(self, usage, actions, groups, prefix)


def _word(name: str):
    """``magic_arguments`` for the word ``name``: its parser calls itself ``%nbexp NAME`` (not ``%_NAME``,
    after the method) and lists ``-h, --help``; the method's docstring becomes that help, as ``?`` shows."""

    def decorate(func):
        return magic_arguments(f"nbexp {name}")(kwds(add_help=True, formatter_class=_HelpFormatter)(func))

    return decorate


_HELP_SUFFIX = re.compile(r"^(\s*%{1,2}nbexp\s+[\w-]+)\s*\?{1,2}\s*$")


def _help_suffix(lines: list[str]) -> list[str]:
    """An input transformer: ``%nbexp WORD?`` (or ``??``, or ``%%nbexp run?``) becomes ``%nbexp WORD --help``.

    IPython reads a trailing ``?`` as "inspect the last name", so ``%nbexp track?`` would look up
    an object called ``track``; this runs first (a cleanup transformer) and asks the word for its
    help instead. Only a line that is the word alone is rewritten: ``%nbexp note why?`` is left as is."""
    if not any("?" in line and "nbexp" in line for line in lines):  # every cell passes here: stay cheap
        return lines
    return [_HELP_SUFFIX.sub(r"\1 --help", line.rstrip("\n")) + line[len(line.rstrip("\n")) :] for line in lines]


def _session() -> tracker.Session:
    s = tracker.active_session()
    if s is None:
        raise NotTracking("nbexp is not tracking: run %nbexp track first")
    return s


def _scrubbed(name: str | None) -> str | None:
    """A run name as stored: secrets in it replaced."""
    from .capture.secrets import scrub_text

    return scrub_text(name) if name else name


def _sprint_hypothesis(ledger: str | None) -> str | None:
    """Today's sprint's hypothesis in ``ledger``, None when it has none (or there is no ledger yet)."""
    from .errors import LedgerError
    from .ledger import resolve_path
    from .ledger.queries import Reader

    if not resolve_path(ledger).exists():
        return None
    try:
        with Reader(ledger) as r:
            return r.sprint_info(tracker.sprint_of(time.time()))["hypothesis"]
    except LedgerError:
        return None  # tracker.start says what is wrong with the ledger


@magics_class
class NbexpMagics(Magics):
    """The ``%nbexp`` line and cell magic."""

    sync_uri = Unicode(
        "", config=True, help="MLflow server every tracked run is sent to as it runs (as %nbexp track --sync URI)"
    )
    sync_experiment = Unicode("nbexp", config=True, help="MLflow experiment the live sync writes into")

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell, **kwargs)
        if shell is not None and _help_suffix not in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.append(_help_suffix)

    @line_cell_magic
    def nbexp(self, line: str = "", cell: str | None = None):
        """Track experiments: ``%nbexp`` alone lists the words, ``%nbexp WORD --help`` (or ``%nbexp WORD?``)
        prints one word's options."""
        word, _, rest = line.strip().partition(" ")
        if not word:
            print(__doc__.strip())
            return None
        if word not in WORDS:
            raise UsageError(f"%nbexp: unknown word {word!r}; one of: {', '.join(WORDS)}")
        try:
            argv = shlex.split(rest)
        except ValueError as exc:  # unbalanced quotes
            raise UsageError(f"%nbexp {word}: {exc}") from None
        if word not in ("export", "import") and {"-h", "--help"} & set(argv):
            print(getattr(self, f"_{word}").parser.format_help().rstrip())  # also for %nbexp run --help
            return None
        if (word == "run") != (cell is not None):
            raise UsageError(
                "%nbexp run is a cell magic: write %%nbexp run [NAME] as the cell's first line"
                if word == "run"
                else f"%%nbexp takes only the word run, not {word!r}"
            )
        method = getattr(self, f"_{word}")
        if word in ("export", "import"):  # handed to the CLI as they are, --help too
            return self._cli([word, *argv])
        try:
            args = method.parser.parse_args(argv)
        except UsageError as exc:
            raise UsageError(f"%nbexp {word}: {exc}") from None
        except SystemExit:  # argparse's help action (an abbreviation: --hel) printed the help
            return None
        __tracebackhide__ = True  # a %%nbexp run cell's traceback starts at the user's code
        try:
            return method(args, cell) if word == "run" else method(args)
        except NbexpError as exc:
            print(f"nbexp: {exc}", file=sys.stderr)
            return None

    @_word("track")
    @argument("name", nargs="?", help="name of the first run")
    @argument("--ledger", help="ledger file (default $NBEXP_LEDGER, $NBEXP_HOME/ledger.sqlite, ~/.nbexp/ledger.sqlite)")
    @argument("--sprint", help="name today's sprint")
    @argument(
        "--hypothesis",
        help="what today's sprint sets out to show; a sprint that already has a different one "
        "keeps it (%%nbexp sprint NAME --hypothesis TEXT replaces it)",
    )
    @argument("--metric-names", help="extra comma-separated words that make a variable a metric")
    @argument("--sample-hz", type=float, default=1.0, help="GPU/CPU samples per second; 0 turns sampling off")
    @argument(
        "--idle-after",
        type=float,
        default=60.0,
        help="seconds a cell must run before the idle-GPU hint may fire (default 60)",
    )
    @argument(
        "--idle-util",
        type=float,
        default=30.0,
        help="mean GPU utilization (percent) below which a long cell gets the hint (default 30)",
    )
    @argument("--replay-of", metavar="RUN", help="this notebook replays RUN (written by nbexp replay)")
    @argument(
        "--no-data",
        action="store_true",
        help="do not fingerprint or summarize data (a Spark cluster's time, very wide tables)",
    )
    @argument(
        "--no-stdout-metrics",
        action="store_true",
        help="do not read metrics from what cells print (name: number lines such as 'Accuracy: 45.3%%')",
    )
    @argument(
        "--outputs-budget",
        type=float,
        default=50.0,
        metavar="MB",
        help="megabytes of cell outputs (figures, tables, printed text) kept per run (default 50); 0 keeps none",
    )
    @argument(
        "--sync",
        metavar="URI",
        help="send every run to this MLflow server as it runs, from a background thread (default $NBEXP_SYNC_URI, "
        "else c.NbexpMagics.sync_uri; 'off' sends nothing)",
    )
    def _track(self, args):
        """Start tracking this kernel and open its first run.

        Tracking again replaces the session only once the new ledger opens: a ledger that
        cannot be opened leaves the session already tracking as it was. A ``--hypothesis``
        differing from the one today's sprint already has does not replace it (the sprint
        was set out to show that one): the old one is kept and said so; ``%nbexp sprint NAME
        --hypothesis TEXT`` replaces it on purpose."""
        from .capture.secrets import scrub_text
        from .ledger import connect, resolve_path

        if args.sample_hz < 0 or args.sample_hz > 100:
            raise UsageError("%nbexp track: --sample-hz must be between 0 (off) and 100")
        if not 0 <= args.outputs_budget <= 1e6:
            raise UsageError("%nbexp track: --outputs-budget must be between 0 (keep no outputs) and 1000000 MB")
        old = tracker.active_session()
        asked = {**vars(args), "ledger": str(resolve_path(args.ledger))}
        if old is not None and old.shell is self.shell and getattr(old, "track_args", None) == asked:
            # the notebook run again from its top in the same kernel (Run All): its cells go on in this session's
            # runs, so an edit below opens 'NAME #2', not a second run 'NAME' of a new session
            run = old.current
            print(
                f"nbexp: already tracking session {old.id}"
                + (f" (run {run.id}{' ' + repr(run.name) if run.name else ''})" if run is not None else "")
                + " in this kernel: its runs go on (%nbexp stop first for a new session, %nbexp new for a new run)"
            )
            self._resume_sync(old, args.sync)
            return
        if old is not None:
            try:
                connect(args.ledger).close()  # what Session() opens first, before the old one stops
            except NbexpError as exc:
                raise type(exc)(f"{exc}; still tracking session {old.id} in {old.ledger_path}") from None
        hypothesis = args.hypothesis
        kept = _sprint_hypothesis(args.ledger)
        if hypothesis and kept and kept != scrub_text(hypothesis):
            print(
                f"nbexp: sprint {tracker.sprint_of(time.time())} keeps its hypothesis {kept!r}; "
                f"{hypothesis!r} not recorded (%nbexp sprint NAME --hypothesis TEXT replaces it)",
                file=sys.stderr,
            )
            hypothesis = None
        s = tracker.start(
            ledger=args.ledger,
            name=_scrubbed(args.name),
            shell=self.shell,
            sprint_name=args.sprint,
            hypothesis=hypothesis,
            metric_names=args.metric_names,
            sample_hz=args.sample_hz,
            idle_after=args.idle_after,
            idle_util=args.idle_util,
            replay_of=args.replay_of,
            data=not args.no_data,
            stdout_metrics=not args.no_stdout_metrics,
            outputs_budget=args.outputs_budget,
        )
        s.track_args = asked  # the same %nbexp track run again keeps this session
        print(s.status_line())
        self._start_sync(s, args.sync)

    def _resume_sync(self, s: tracker.Session, uri: str | None) -> None:
        """The same ``%nbexp track`` run again: a sync of this session that runs makes a pass now and says how it
        stands; one that could not start (MLflow installed since, say) is started again."""
        from .export import sync

        running = sync.active()
        if running is not None and running.session_id == s.id:
            running.wake()
            print(running.status_line())
        else:
            self._start_sync(s, uri)

    def _start_sync(self, s: tracker.Session, uri: str | None) -> None:
        """Live sync to MLflow (nbexp/export/sync.py): a thread that reads the session's runs from the ledger.
        The session is tracking either way: a sync that cannot start says why on one line."""
        from .export import sync

        sync.stop(timeout=2.0)  # a sync of an earlier session in this kernel
        uri = uri or os.environ.get("NBEXP_SYNC_URI") or self.sync_uri
        if not uri or uri == "off":
            return
        try:
            print(sync.start(str(s.ledger_path), s.id, uri, self.sync_experiment).status_line())
        except NbexpError as exc:
            print(f"nbexp: not syncing: {exc}", file=sys.stderr)

    @_word("new")
    @argument("name", nargs="?", help="name of the new run")
    def _new(self, args):
        """Close the current run and open a new one."""
        s = _session()
        s.new_run(_scrubbed(args.name), kind="new")
        print(s.status_line())

    @_word("stop")
    def _stop(self, args):
        """Stop tracking: close the open run and flush everything to the ledger."""
        from .export import sync

        s = _session()
        s.stop()
        print(f"nbexp: stopped; {count(len(s.runs), 'run')} and {count(s.n_cells, 'cell')} in {s.ledger_path}")
        done = sync.stop()
        if done is not None:
            print(done.status_line() + ("" if done.error is None else "; nbexp sync sends the rest"))

    @_word("status")
    def _status(self, args):
        """One line: ledger, sprint, session, current run, counts (after writing what is queued, so
        the ledger holds what the line says)."""
        s = tracker.active_session()
        if s is not None:
            s.writer.flush(timeout=5.0)
        print(s.status_line() if s else "nbexp: not tracking (%nbexp track starts)")
        from .export import sync

        live = sync.active()
        if live is not None:
            print(live.status_line())

    @_word("sprint")
    @argument("name", help="the sprint's name")
    @argument("--hypothesis", help="what the sprint sets out to show")
    def _sprint(self, args):
        """Name today's sprint and state its hypothesis."""
        _session().label_sprint(args.name, args.hypothesis)
        print(f"nbexp: sprint {tracker.sprint_of(time.time())} is {args.name!r}")

    @_word("conclude")
    @argument("text", nargs="+", help="the conclusion")
    def _conclude(self, args):
        """Record today's sprint conclusion."""
        _session().label_sprint(conclusion=" ".join(args.text))

    @_word("tag")
    @argument("tags", nargs="+", help="tags")
    def _tag(self, args):
        """Tag the current run."""
        s = _session()
        s.store.add_tags(s.ensure_run().id, args.tags)

    @_word("note")
    @argument("text", nargs="+", help="the note")
    def _note(self, args):
        """Attach a note to the current run."""
        s = _session()
        s.store.set_note(s.ensure_run().id, " ".join(args.text))

    @_word("param")
    @argument("assignments", nargs="+", help="NAME=VALUE; VALUE read as a Python literal, else as text")
    def _param(self, args):
        """Set params on the current run explicitly."""
        from .capture.params import parse_assignment

        params = {}
        for item in args.assignments:
            try:
                name, value = parse_assignment(item)
            except ValueError as exc:
                raise UsageError(f"%nbexp param: {exc}") from None
            params[name] = value
        s = _session()
        run = s.stack[-1] if s.stack else s.ensure_run()
        run.log_params(**params)
        s.param_state.update(run.params)

    @_word("params")
    @argument("--exclude", nargs="+", required=True, metavar="NAME", help="params never to record (globs allowed)")
    def _params(self, args):
        """Exclude params from this session's runs (removed from the open run too)."""
        _session().exclude(args.exclude)

    @_word("data")
    @argument("run", nargs="?", help="run id, prefix or name (default: the current run, else the latest)")
    def _data(self, args):
        """Show the summaries of the data a run used."""
        import nbexp

        s = tracker.active_session()
        ref = args.run or (s.current.id if s and s.current else "latest")
        return nbexp.data(ref)

    @_word("drift")
    @argument("run_a", help="reference run")
    @argument("run_b", help="run to compare")
    @argument("--var", help="only this variable")
    @argument("--other", help="... against this variable of run B")
    def _drift(self, args):
        """Show data drift of run B against run A, flagged columns first."""
        import nbexp

        df = nbexp.drift(args.run_a, args.run_b, name=args.var, other=args.other)
        order = {"major": 0, "moderate": 1, "ok": 2}
        return df.sort_values("severity", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)

    @_word("compare")
    @argument("runs", nargs="*", help="runs to compare, the first as baseline (default: latest~1 latest)")
    @argument("--metric", help="the metric for the curves and parallel coordinates")
    def _compare(self, args):
        """Compare runs: tabs with the param diff, metrics, curves, data, system and code diff."""
        import nbexp

        runs = args.runs or ["latest~1", "latest"]
        if len(runs) < 2:
            raise UsageError("%nbexp compare: give two runs or more (or none for the last two)")
        return nbexp.compare(*runs, metric=args.metric)

    @_word("explain")
    @argument("run", nargs="?", default="latest", help="the run to explain (default: the latest)")
    @argument("--vs", default="best", help="against this run, best or tag:NAME (default: best)")
    @argument("--metric", help="the metric to explain (default: the main metric)")
    @argument("--ablate", action="store_true", help="replay the run with each factor reverted, in fresh kernels")
    @argument("--budget", type=int, default=8, help="at most this many replays with --ablate")
    @argument("--timeout", type=int, default=600, help="seconds per replayed cell with --ablate")
    def _explain(self, args):
        """Why a run scores differently from another: the factors that differ, ranked, with their evidence."""
        self._cli(
            ["explain", args.run, "--vs", args.vs]
            + (["--metric", args.metric] if args.metric else [])
            + (["--ablate", "--budget", str(args.budget), "--timeout", str(args.timeout)] if args.ablate else [])
        )

    @_word("runs")
    @argument("--sprint", default="today", help="today, yesterday, all, a date or a sprint name")
    @argument("--status", help="only runs with this status")
    def _runs(self, args):
        """The sprint's runs as a DataFrame."""
        import nbexp

        return nbexp.runs(sprint=args.sprint, status=args.status)

    @_word("review")
    @argument("--sprint", default="yesterday", help="today, yesterday, a date or a sprint name")
    def _review(self, args):
        """The morning review: what ran, how it ended, what won and why, flags."""
        import time

        import nbexp

        from .analysis.review import review
        from .ledger.queries import Reader
        from .report import review_text

        with Reader(nbexp._ledger(None)) as r:
            sprint_id = r.sprint_id(args.sprint) or tracker.sprint_of(time.time())
            rev = review(r, sprint_id)
            print(review_text(rev))

    @_word("export")
    @argument("args", nargs="*", help="as for the nbexp export command: EXPORTER ARGS...")
    def _export(self, args):
        """Export runs (bundle, or a tracker when its exporter is installed), as `nbexp export`."""
        self._cli(["export", *args.args])

    @_word("import")
    @argument("args", nargs="*", help="as for the nbexp import command: FILE [--dry-run]")
    def _import(self, args):
        """Merge a bundle into this session's ledger, as `nbexp import`."""
        self._cli(["import", *args.args])

    def _cli(self, argv: list[str]) -> None:
        import click

        import nbexp

        from .cli import main

        ledger = nbexp._ledger(None)
        try:
            main.main(["--ledger", str(ledger)] + argv if ledger else argv, prog_name="%nbexp", standalone_mode=False)
        except click.ClickException as exc:
            print(f"nbexp: {exc.format_message()}", file=sys.stderr)

    @_word("run")
    @argument("name", nargs="?", help="the run's name")
    def _run(self, args, cell):
        """This cell is exactly one run: it opens before the cell and ends after it.

        The body's exception fails this cell, as it would without the magic (Run All stops
        there), and its traceback is shown once, by this cell."""
        __tracebackhide__ = True  # IPython leaves this frame out of the traceback
        s = _session()
        run = s.new_run(_scrubbed(args.name), kind="cell")
        shell = self.shell
        shown = shell.__dict__.get("showtraceback"), shell.__dict__.get("showsyntaxerror")
        shell.showtraceback = shell.showsyntaxerror = lambda *a, **k: None
        try:
            result = shell.run_cell(cell)
        finally:
            for name, method in zip(("showtraceback", "showsyntaxerror"), shown):
                if method is None:
                    shell.__dict__.pop(name, None)
                else:
                    setattr(shell, name, method)
        if not s.adopt_cell(run, cell, result):
            run.end()
        if result.error_in_exec is not None:
            raise result.error_in_exec
        if result.error_before_exec is not None:  # a SyntaxError: IPython's frames say nothing
            raise result.error_before_exec.with_traceback(None)
