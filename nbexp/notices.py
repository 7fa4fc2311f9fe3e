"""A session's notices: warnings printed once per cause and recorded once per run.

The session, its runs and its data watch all report through one :class:`Notices`; it knows
the store it records to and asks, through a callable, which run is current, so it imports
none of them.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

from .capture.secrets import scrub_text


class Notices:
    """Warnings of one session.

    Args:
        store: the session's :class:`~nbexp.ledger.store.Store` (its ``add_event``).
        session_id: the session the events belong to.
        current_run: returns the session's current run (anything with an ``id``), or None.
    """

    def __init__(self, store: Any, session_id: str, current_run: Callable[[], Any]) -> None:
        self.store = store
        self.session_id = session_id
        self.current_run = current_run
        self.warned: set[str] = set()

    def warn(self, cause: str, message: str, record: bool = True) -> None:
        """One line to stderr once per cause; every cause recorded once per run (unless
        ``record`` is False: the writer records the rows it leaves out itself, each time)."""
        lines = message.strip().splitlines() or [""]  # exceptions such as Spark's carry whole plans
        message = lines[0][:300] + (" ..." if len(lines) > 1 or len(lines[0]) > 300 else "")
        run = self.current_run()
        key = f"{cause}:{run.id if run else ''}"
        if record and key not in self.warned:
            self.warned.add(key)
            self.store.add_event(self.session_id, run.id if run else None, time.time(), "warning", cause, message)
        if cause not in self.warned:
            self.warned.add(cause)
            print(f"nbexp: warning: {message}", file=sys.stderr)


def error_text(exc: BaseException | None) -> str | None:
    """An exception as stored: ``Type: message``, scrubbed of secrets, at most 2000 characters."""
    if exc is None:
        return None
    msg = str(exc)
    return scrub_text(f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__)[:2000]
